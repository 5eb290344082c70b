package esql

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
)

// TestErrors: every query trailwatch refuses is refused with the place of
// the construct, as a *matcher.SyntaxError.
func TestErrors(t *testing.T) {
	cases := []struct{ q, at, msg string }{
		{`FROM x | WHERE`, "1:15", "expected an expression"},
		{"FROM x\n| FOO bar", "2:3", "command FOO is not supported"},
		{"FROM x\n| ENRICH p", "2:3", "ENRICH is not supported"},
		{`ROW a = 1`, "1:1", "must start with FROM"},
		{`FROM x | WHERE f == "abc`, "1:21", "unterminated string"},
		{`FROM x | WHERE f == "a\d"`, "1:23", "invalid escape"},
		{`FROM x | WHERE f == """a`, "1:21", "unterminated string"},
		{"FROM x | WHERE f == 1 /* open", "1:23", "unterminated comment"},
		{`FROM x | WHERE f ==`, "1:20", "expected an expression"},
		{`FROM x | WHERE a < b < c`, "1:22", "do not chain"},
		{`FROM x | WHERE f IS NOT`, "1:24", "expected NULL"},
		{`FROM x | WHERE f LIKE g`, "1:23", "pattern string"},
		{`FROM x | WHERE f =~ "a"`, "1:18", "=~ is not supported"},
		{`FROM x | WHERE f : "a"`, "1:18", "match operator"},
		{`FROM x | WHERE f == ?p`, "1:21", "parameters"},
		{`FROM x | WHERE FOO(f)`, "1:16", "function FOO is not supported"},
		{`FROM x | WHERE count(f) > 1`, "1:16", "only allowed in STATS"},
		{`FROM x | WHERE f == 1`, "1:16", "cannot compare [f] of type keyword with [1] of type integer"},
		{`FROM x | WHERE f`, "1:16", "boolean"},
		{`FROM x | WHERE f LIKE "a\\b"`, "1:23", "escape character"},
		{`FROM x | WHERE f RLIKE "a&b"`, "1:24", "intersection"},
		{`FROM x | WHERE f RLIKE "~a"`, "1:24", "complement"},
		{`FROM x | WHERE f RLIKE "<1-5>"`, "1:24", "numeric intervals"},
		{`FROM x | WHERE f RLIKE "\\q"`, "1:24", "invalid character class"},
		{`FROM x | WHERE f RLIKE "(a"`, "1:24", "expected ')'"},
		{`FROM x | KEEP a | WHERE b == "x"`, "1:25", "unknown column [b]"},
		{`FROM x | DROP a | WHERE a == "x"`, "1:25", "unknown column [a]"},
		{`FROM x | RENAME a AS b | WHERE a == "x"`, "1:32", "unknown column [a]"},
		{`FROM x | KEEP _id`, "1:15", "METADATA"},
		{`FROM x METADATA _score`, "1:17", "_score is not supported"},
		{`FROM x | WHERE aws.cloudtrail.flattened.request_parameters.k == "x"`, "1:16", "flattened"},
		{`FROM x | EVAL d = DATE_TRUNC(5 months, @timestamp)`, "1:30", "not supported by DATE_TRUNC"},
		{`FROM x | EVAL d = DATE_TRUNC(1 fortnight, @timestamp)`, "1:30", "temporal unit"},
		{`FROM x | EVAL d = DATE_DIFF("eons", @timestamp, @timestamp)`, "1:29", "DATE_DIFF unit"},
		{`FROM x | EVAL d = CASE(true, 1, "a")`, "1:33", "one type"},
		{`FROM x | EVAL d = COALESCE(f, 1)`, "1:31", "COALESCE"},
		{`FROM x | EVAL d = CONCAT(f)`, "1:19", "at least 2"},
		{`FROM x | EVAL d = TO_LOWER(source.port)`, "1:28", "must be keyword"},
		{`FROM x | EVAL d = f + 1`, "1:19", "cannot apply"},
		{`FROM x | LIMIT 5 | STATS c = COUNT(*)`, "1:10", "LIMIT before STATS"},
		{`FROM x | LIMIT 5 | WHERE f == "a"`, "1:20", "after LIMIT"},
		{`FROM x | SORT f | LIMIT 5`, "1:19", "SORT then LIMIT"},
		{`FROM x | MV_EXPAND f`, "1:10", "MV_EXPAND"},
		{`FROM x | STATS f`, "1:16", "not an aggregation"},
		{`FROM x | STATS c = COUNT(*) | STATS d = COUNT(*)`, "1:31", "second STATS"},
		{`FROM x | STATS c = COUNT(*) BY f | WHERE g == "a"`, "1:42", "unknown column [g]"},
		{`FROM x | STATS c = SUM(f)`, "1:24", "needs a number"},
		{`FROM x | STATS c = MAX(COUNT(*))`, "1:24", "do not nest"},
		{`FROM x | STATS c = COUNT(*) WHERE f`, "1:35", "boolean"},
		{`FROM x | GROK f "a" , "b"`, "1:23", "several patterns"},
		{`FROM x | DISSECT f "no keys"`, "1:20", "unable to find any keys"},
	}
	for _, c := range cases {
		_, err := Compile(testSchema, c.q)
		var se *matcher.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: %v, want a *matcher.SyntaxError", c.q, err)
			continue
		}
		if se.Pos.String() != c.at || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("%s: %v, want %s ...%s...", c.q, err, c.at, c.msg)
		}
	}
}

// TestNestingDepth: nesting is capped, with an error at the place.
func TestNestingDepth(t *testing.T) {
	for _, q := range []string{
		"FROM x | WHERE " + strings.Repeat("(", 500) + "f == \"a\"" + strings.Repeat(")", 500),
		"FROM x | WHERE " + strings.Repeat("NOT ", 500) + "f == \"a\"",
		"FROM x | EVAL y = " + strings.Repeat("-", 500) + "source.port",
		"FROM x | EVAL y = " + strings.Repeat("TO_LOWER(", 500) + "f" + strings.Repeat(")", 500),
		// Chains of operators nest their tree too (a million terms
		// overflowed the compiler's stack, and their filters took time in
		// the square of their length).
		"FROM x | WHERE source.port" + strings.Repeat(" + 1", 1_000_000) + " > 3",
		"FROM x | WHERE " + strings.Repeat(`f == "a" OR `, 200_000) + `f == "b"`,
		"FROM x | EVAL y = source.port" + strings.Repeat("::long", 100_000),
	} {
		_, err := Compile(testSchema, q)
		var se *matcher.SyntaxError
		if !errors.As(err, &se) || !strings.Contains(se.Msg, "nested deeper") {
			t.Errorf("%.40s...: %v", q, err)
		}
	}
	// Within the cap, deep expressions compile and evaluate: 293 terms of
	// OR, the most Elasticsearch takes.
	q := "FROM x | WHERE " + strings.Repeat("(", 150) + "f == \"a\"" + strings.Repeat(")", 150)
	p := mustCompile(t, q)
	if _, ok := p.Eval(rec("f", "a"), testNow); !ok {
		t.Error("deep parentheses: no row")
	}
	p = mustCompile(t, "FROM x | WHERE "+strings.Repeat(`f == "a" OR `, 292)+`f == "b"`)
	if _, ok := p.Eval(rec("f", "b"), testNow); !ok {
		t.Error("293 terms of OR: no row")
	}
	// A regular expression's alternatives are not levels (Elasticsearch
	// takes hundreds); repeat operators stacked on one atom are.
	p = mustCompile(t, `FROM x | WHERE f RLIKE "`+strings.Repeat("a|", 1000)+`b"`)
	if _, ok := p.Eval(rec("f", "b"), testNow); !ok {
		t.Error("1,001 alternatives: no row")
	}
	start := time.Now()
	if _, err := Compile(testSchema, `FROM x | WHERE f RLIKE "a`+strings.Repeat("?", 100_000)+`"`); err == nil || !strings.Contains(err.Error(), "repeat operators") || time.Since(start) > 5*time.Second {
		t.Errorf("100,000 repeat operators on one atom: %v after %v", err, time.Since(start))
	}
}

// TestLinearTime: long queries parse in time proportional to their length.
func TestLinearTime(t *testing.T) {
	build := func(n int) string {
		var b strings.Builder
		b.WriteString("FROM x | WHERE event.action IN (")
		for i := range n {
			if i > 0 {
				b.WriteString(", /* c */ ")
			}
			b.WriteString(`"Action`)
			b.WriteString(strings.Repeat("x", i%7))
			b.WriteString(`"`)
		}
		b.WriteString(") OR f == \"a\" AND g == \"b\"")
		return b.String()
	}
	measure := func(n int) time.Duration {
		q := build(n)
		best := time.Hour
		for range 3 {
			start := time.Now()
			if _, err := parse(q); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	small, large := measure(2_000), measure(40_000)
	if large > 60*small+50*time.Millisecond {
		t.Errorf("20x the query took %v against %v", large, small)
	}
}

// TestNames: commands and their keywords are case-insensitive, field names
// are not; backquotes allow any name; a column without a name is named by
// its expression's text.
func TestNames(t *testing.T) {
	p := mustCompile(t, "from logs-aws.cloudtrail-*, logs-endpoint.events.process-* metaDATA _id, _index\n"+
		"| Where `f` == \"a\"\n| eVaL f2 = TO_LOWER(F), f == \"a\"\n| KEEP f2, `f == \"a\"`, _id")
	if got := p.Indices(); !reflect.DeepEqual(got, []string{"logs-aws.cloudtrail-*", "logs-endpoint.events.process-*"}) {
		t.Errorf("indices %q", got)
	}
	if got := p.Metadata(); !reflect.DeepEqual(got, []string{"_id", "_index"}) {
		t.Errorf("metadata %q", got)
	}
	if got := p.Columns(); !reflect.DeepEqual(got, []string{"f2", `f == "a"`, "_id"}) {
		t.Errorf("columns %q", got)
	}
	row, ok := p.Eval(rec("f", "a", "F", "BIG", "_id", "doc1"), testNow)
	if !ok {
		t.Fatal("no row")
	}
	want := map[string][]string{"f2": {"big"}, `f == "a"`: {"true"}, "_id": {"doc1"}}
	for k, v := range want {
		if got := texts(row.Values(k)); !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := p.Eval(rec("f", "A"), testNow); ok {
		t.Error("field names are case-sensitive: a row for f=A")
	}
}
