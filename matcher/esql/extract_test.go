package esql

import (
	"reflect"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/matcher"
)

// TestDissect runs DISSECT patterns on the Java Map.toString() text the
// pipeline writes for request_parameters, and on the dissect library's own
// cases: padding (->), appends (+, with APPEND_SEPARATOR and /N), named
// skips (?), empty keys, repeated delimiters, and the all-or-nothing match.
func TestDissect(t *testing.T) {
	cases := []struct {
		name, pattern, sep, in string
		want                   map[string][]string // nil: no match, every column null
	}{
		{"map text", `{%{?k1}=%{bucket}, %{?k2}=%{key}}`, "", "{bucketName=logs, key=a/b.txt}",
			map[string][]string{"bucket": {"logs"}, "key": {"a/b.txt"}}},
		{"map text, no match", `{%{?k1}=%{bucket}, %{?k2}=%{key}}`, "", "{bucketName=logs}", nil},
		{"leading text must match", `x%{a}`, "", "ya", nil},
		{"trailing delimiter must be found", `%{a},`, "", "abc", nil},
		{"last key takes the rest", `%{a}=%{b}`, "", "k=v=w", map[string][]string{"a": {"k"}, "b": {"v=w"}}},
		{"skip with empty name", `%{}/document/%{id}/%{}`, "", "/var/lib/document/abc/x", map[string][]string{"id": {"abc"}}},
		{"repeated delimiters give empty values", `%{a},%{b},%{c}`, "", "x,,z", map[string][]string{"a": {"x"}, "b": {""}, "c": {"z"}}},
		{"right padding skips repeats", `%{a->} %{b}`, "", "x    y", map[string][]string{"a": {"x"}, "b": {"y"}}},
		{"append", `%{a} %{+a} %{+a}`, "", "x y z", map[string][]string{"a": {"xyz"}}},
		{"append with separator", `%{a} %{+a}`, "-", "x y", map[string][]string{"a": {"x-y"}}},
		{"append in order", `%{+a/2} %{+a/1}`, ",", "x y", map[string][]string{"a": {"y,x"}}},
		{"named skip", `%{a} %{?skipped} %{c}`, "", "x y z", map[string][]string{"a": {"x"}, "c": {"z"}}},
		{"first key opens at brace", `%{{?k}=%{v}}`, "", "{bucketName=x}", map[string][]string{"v": {"x"}}},
		{"empty input does not match", `%{a}`, "", "", nil},
		{"a key right after a key is the first one's delimiter", `%{a}%{b}`, "", "xy", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, msg := compileDissect(c.pattern, c.sep)
			if msg != "" {
				t.Fatalf("%s: %s", c.pattern, msg)
			}
			got, ok := d.parse(c.in)
			if c.want == nil {
				if ok {
					t.Errorf("%s on %q: %v, want no match", c.pattern, c.in, got)
				}
				return
			}
			want := map[string]string{}
			for k, v := range c.want {
				want[k] = v[0]
			}
			if !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("%s on %q: %v (%v), want %v", c.pattern, c.in, got, ok, want)
			}
		})
	}
}

// TestDissectCommand runs DISSECT in queries: columns named by the keys,
// null when the pattern does not match or the input is null, one value a
// matching value of a multi-valued input.
func TestDissectCommand(t *testing.T) {
	q := `FROM logs-* | DISSECT aws.cloudtrail.request_parameters "{%{?b}=%{bucket}, %{?h}=%{host}}" | KEEP bucket, host`
	p := mustCompile(t, q)
	cases := []struct {
		r            matcher.MapFields
		bucket, host []string
	}{
		{rec("aws.cloudtrail.request_parameters", "{bucketName=b1, Host=b1.s3.amazonaws.com}"), []string{"b1"}, []string{"b1.s3.amazonaws.com"}},
		{rec("aws.cloudtrail.request_parameters", "{bucketName=b1}"), nil, nil},
		{rec(), nil, nil},
		{rec("aws.cloudtrail.request_parameters", "{a=x, b=y}", "aws.cloudtrail.request_parameters", "nothing", "aws.cloudtrail.request_parameters", "{a=z, b=w}"), []string{"x", "z"}, []string{"y", "w"}},
	}
	for _, c := range cases {
		row, ok := p.Eval(c.r, testNow)
		if !ok {
			t.Fatalf("%v: no row", c.r)
		}
		if b, h := texts(row.Values("bucket")), texts(row.Values("host")); !reflect.DeepEqual(b, c.bucket) || !reflect.DeepEqual(h, c.host) {
			t.Errorf("%v: bucket %q host %q, want %q %q", c.r, b, h, c.bucket, c.host)
		}
	}
	if _, err := Compile(testSchema, `FROM x | DISSECT f "%{*a} %{&a}"`); err == nil || !strings.Contains(err.Error(), "reference keys") {
		t.Errorf("reference keys: %v", err)
	}
	if _, err := Compile(testSchema, `FROM x | DISSECT f "%{a}" FOO=","`); err == nil || !strings.Contains(err.Error(), "1:27") {
		t.Errorf("unknown option: %v", err)
	}
	if _, err := Compile(testSchema, `FROM x | DISSECT source.port "%{a}"`); err == nil || !strings.Contains(err.Error(), "keyword input") {
		t.Errorf("numeric input: %v", err)
	}
	p = mustCompile(t, `FROM x | DISSECT f "%{a} %{+a}" APPEND_SEPARATOR = "," | KEEP a`)
	if row, _ := p.Eval(rec("f", "x y"), testNow); !reflect.DeepEqual(texts(row.Values("a")), []string{"x,y"}) {
		t.Errorf("APPEND_SEPARATOR: %q", texts(row.Values("a")))
	}
}

// TestGrok runs GROK: a search anywhere in the value, named groups with
// dots, the pattern library, a name used twice, types, no match, and
// multi-valued input.
func TestGrok(t *testing.T) {
	cases := []struct {
		name, pattern, col string
		r                  matcher.MapFields
		want               []string
	}{
		{"named group with dots", `instanceId=(?<Esql.instance_id>[^,}\]]+)`, "Esql.instance_id",
			rec("f", "{instancesSet={items=[{instanceId=i-0abc}, {instanceId=i-0def}]}, force=false}"), []string{"i-0abc"}},
		{"library pattern", `accessKeyId=%{NOTSPACE:key_id},`, "key_id",
			rec("f", "{credentials={accessKeyId=ASIAEXAMPLE, sessionToken=x}}"), []string{"ASIAEXAMPLE"}},
		{"no match is null", `accessKeyId=%{NOTSPACE:key_id},`, "key_id", rec("f", "{roleArn=x}"), nil},
		{"null input", `(?<x>.+)`, "x", rec(), nil},
		{"name used twice", `%{WORD:part} %{WORD:part}`, "part", rec("f", "CA 94108"), []string{"CA", "94108"}},
		{"typed capture", `port=%{INT:port:int}`, "port", rec("f", "{port=8443}"), []string{"8443"}},
		{"multi-valued input", `id=(?<id>\d+)`, "id", rec("f", "id=1", "f", "x", "f", "id=2"), []string{"1", "2"}},
		{"account from an arn", `:(?<acct>[0-9]{12}):`, "acct", rec("f", "arn:aws:iam::123456789012:user/bob"), []string{"123456789012"}},
		{"unicode space", `a%{SPACE}(?<b>\S+)`, "b", rec("f", "a\u00a0x"), []string{"x"}},
		{"caret is a line start", `^(?<l>b\w*)`, "l", rec("f", "a\nbc"), []string{"bc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, "FROM x | GROK f \"\"\""+c.pattern+"\"\"\" | KEEP `"+c.col+"`")
			row, ok := p.Eval(c.r, testNow)
			if !ok {
				t.Fatalf("no row")
			}
			if got := texts(row.Values(c.col)); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s = %q, want %q", c.pattern, got, c.want)
			}
		})
	}
	for _, bad := range []string{`(?<=a)b`, `%{NUMBER:n}`, `a++`, `(a)\1`, `%{NOPE:x}`, `(?<a:x>a)(?<b:x:int>b)`} {
		if _, err := Compile(testSchema, `FROM x | GROK f """`+bad+`"""`); err == nil || !strings.Contains(err.Error(), "1:17") {
			t.Errorf("%s: %v, want an error at the pattern (1:17)", bad, err)
		}
	}
}
