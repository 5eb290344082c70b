package esql

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
)

// A GROK pattern's needs are strings every text it matches holds; a
// record whose input field lacks one skips the pattern (TextFields).
func TestGrokNeeds(t *testing.T) {
	for _, c := range []struct {
		pattern string
		needs   []string
		match   string
	}{
		{"accessKeyId=%{NOTSPACE:k},", []string{"accessKeyId"}, "{accessKeyId=ASIA1, x=y}"},
		{`.*accessKeyId=(?<k>AKIA[A-Z0-9]{16}).*`, []string{"accessKeyId", "AKIA"}, "{accessKeyId=AKIAABCDEFGHIJKLMNOP}"},
		{`functionName=arn:aws:lambda:[a-z0-9-]*:(?<a>[0-9]{12}):`, []string{"functionName", "arn:aws:lambda:", ":", ":"}, "functionName=arn:aws:lambda:us-east-1:123456789012:function:f"},
		{`(?i)key=(?<k>\w+)`, nil, "KEY=a"},
		{`(?:abc|def)(?<k>\w+)`, nil, "defx"},
		{`(?<k>x?)`, nil, ""},
	} {
		g, msg := compileGrok(c.pattern)
		if msg != "" {
			t.Fatalf("%s: %s", c.pattern, msg)
		}
		if !slices.Equal(g.needs, c.needs) {
			t.Errorf("%s: needs %q, want %q", c.pattern, g.needs, c.needs)
		}
		if !g.re.MatchString(c.match) {
			t.Fatalf("%s does not match %q", c.pattern, c.match)
		}
		for _, n := range g.needs {
			if !strings.Contains(c.match, n) || strings.ContainsAny(n, textPunct) {
				t.Errorf("%s: need %q not in %q, or holds punctuation", c.pattern, n, c.match)
			}
		}
	}
}

// lackingFields is MapFields whose Lacks answers as the text would, and
// counts the reads of the field.
type lackingFields struct {
	matcher.MapFields
	reads *int
}

func (l lackingFields) Values(f *matcher.Field) []matcher.Value {
	*l.reads++
	return l.MapFields.Values(f)
}

func (l lackingFields) Lacks(f *matcher.Field, s string) bool {
	for _, v := range l.MapFields[f.Name] {
		if strings.Contains(v.Text, s) {
			return false
		}
	}
	return true
}

func TestGrokSkipsLackingInput(t *testing.T) {
	p := mustCompile(t, `FROM logs-* | GROK aws.cloudtrail.response_elements "accessKeyId=%{NOTSPACE:k}," | KEEP k`)
	for _, c := range []struct{ text, want string }{
		{"{accessKeyId=ASIA1, x=y}", "[{ASIA1 0}]"},
		{"{secretKey=x, y=z}", "[]"},
		{"", "[]"},
	} {
		n := 0
		rec := lackingFields{matcher.MapFields{"aws.cloudtrail.response_elements": {{Text: c.text}}}, &n}
		if c.text == "" {
			rec.MapFields = matcher.MapFields{}
		}
		row, ok := p.Eval(rec, time.Now())
		if !ok {
			t.Fatalf("%q: no row", c.text)
		}
		if got := fmt.Sprint(row.Values("k")); got != c.want {
			t.Errorf("%q: k = %s, want %s", c.text, got, c.want)
		}
		if wantReads := map[bool]int{true: 1, false: 0}[c.want != "[]"]; n != wantReads {
			t.Errorf("%q: %d reads of the input, want %d", c.text, n, wantReads)
		}
	}
}

func TestLikeNeeds(t *testing.T) {
	for pat, want := range map[string][]string{
		"*static/js/*.js*": {"static/js/", ".js"},
		`a\*b?c`:           {"a*b", "c"},
		"*{x=y, z}*":       {"x", "y", "z"},
		"*":                nil,
	} {
		if got := likeNeeds(pat); !slices.Equal(got, want) {
			t.Errorf("%s: needs %q, want %q", pat, got, want)
		}
	}
}

// A LIKE where only true counts does not read a field that lacks one of
// its pattern's literals; anywhere else (NOT) it reads it.
func TestLikeSkipsLackingInput(t *testing.T) {
	const f = "aws.cloudtrail.request_parameters"
	for _, c := range []struct {
		where, text string
		row         bool
		reads       int
	}{
		{`LIKE "*static/js/*.js*"`, "{key=static/js/a.js}", true, 1},
		{`LIKE "*static/js/*.js*"`, "{key=static/css/a.css}", false, 0},
		{`LIKE "*static/js/*.js*"`, "", false, 0},
		{`LIKE "*static/js/*.js*" OR true`, "{key=static/css/a.css}", true, 1},
		{`NOT LIKE "*static/js/*.js*"`, "{key=static/css/a.css}", true, 1},
	} {
		p := mustCompile(t, "FROM logs-* | WHERE "+f+" "+c.where+" | KEEP "+f)
		n := 0
		rec := lackingFields{matcher.MapFields{f: {{Text: c.text}}}, &n}
		if c.text == "" {
			rec.MapFields = matcher.MapFields{}
		}
		if _, ok := p.Eval(rec, time.Now()); ok != c.row || n != c.reads {
			t.Errorf("%s on %q: row %v after %d reads, want %v after %d", c.where, c.text, ok, n, c.row, c.reads)
		}
	}
}
