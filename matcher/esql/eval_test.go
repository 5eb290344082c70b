package esql

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/matcher"
)

// testNow is the run's time in these tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rec builds a record from field, value, field, value, ...; a field given
// twice is multi-valued; a value starting with # is a JSON number.
func rec(kv ...string) matcher.MapFields {
	m := matcher.MapFields{}
	for i := 0; i+1 < len(kv); i += 2 {
		v := matcher.Value{Text: kv[i+1]}
		if strings.HasPrefix(v.Text, "#") {
			v = matcher.Value{Text: v.Text[1:], Kind: matcher.KindNumber}
		}
		m[kv[i]] = append(m[kv[i]], v)
	}
	return m
}

// testSchema maps fields as the AWS integration does.
var testSchema = cloudtrail.NewSchema()

func mustCompile(t *testing.T, q string) *Program {
	t.Helper()
	p, err := Compile(testSchema, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return p
}

// texts is a column's values as text; nil for null.
func texts(vs []matcher.Value) []string {
	if vs == nil {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Text
	}
	return out
}

// TestWhere pairs each test with a record that gives a row and one that
// does not, as ES|QL decides: a comparison on a missing or multi-valued
// field is null, and WHERE drops a null.
func TestWhere(t *testing.T) {
	cases := []struct {
		name, where string
		yes, no     matcher.MapFields
	}{
		{"equality", `event.action == "CreateUser"`, rec("event.action", "CreateUser"), rec("event.action", "createuser")},
		{"equality, missing field", `event.action == "CreateUser"`, rec("event.action", "CreateUser"), rec("user.name", "CreateUser")},
		{"equality, multi-valued is null", `f == "a"`, rec("f", "a"), rec("f", "a", "f", "b")},
		{"equality, duplicate keyword values are one", `f == "a"`, rec("f", "a", "f", "a"), rec("f", "a", "f", "A")},
		{"inequality, missing is null", `f != "a"`, rec("f", "b"), rec()},
		{"inequality, multi-valued is null", `f != "a"`, rec("f", "b"), rec("f", "b", "f", "c")},
		{"not of missing is null", `not f == "true"`, rec("f", "false"), rec()},
		{"not over parentheses", `NOT (f == "a" OR f == "b")`, rec("f", "c"), rec("f", "b")},
		{"is null", `f IS NULL`, rec(), rec("f", "")},
		{"is null, multi-valued is not null", `f is not null`, rec("f", "a", "f", "b"), rec("g", "a")},
		{"in", `event.provider IN ("iam.amazonaws.com", "sts.amazonaws.com")`, rec("event.provider", "sts.amazonaws.com"), rec("event.provider", "s3.amazonaws.com")},
		{"in, multi-valued is null", `f in ("a", "b")`, rec("f", "a"), rec("f", "a", "f", "b")},
		{"not in", `f NOT IN ("a", "b")`, rec("f", "c"), rec("f", "a")},
		{"not in, missing is null", `f not in ("a")`, rec("f", "c"), rec()},
		{"in with a null item", `f in ("a", null) OR g == "x"`, rec("f", "a"), rec("f", "b")},
		{"not in with a null item is never true", `f not in ("a", null) OR g == "x"`, rec("g", "x"), rec("f", "b")},
		{"in, many items", `f IN ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")`, rec("f", "j"), rec("f", "k")},
		{"in, many items, multi-valued is null", `f IN ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")`, rec("f", "a"), rec("f", "a", "f", "b")},
		{"not in, many items and a null", `f NOT IN ("a", "b", "c", "d", "e", "f", "g", "h", "i", null) OR g == "x"`, rec("g", "x"), rec("f", "z")},
		{"in, numbers of two types", `source.port IN (1, 2.5, 443)`, rec("source.port", "#443"), rec("source.port", "#444")},
		{"literal on the left", `"a" == f AND 2 < source.port`, rec("f", "a", "source.port", "#3"), rec("f", "a", "source.port", "#2")},
		{"not of an and: null stays null", `NOT (f == "a" AND g == "b")`, rec("f", "x", "g", "b"), rec("g", "b")},
		{"literal in expressions", `true in (starts_with(f, "Get"), starts_with(f, "List"))`, rec("f", "ListUsers"), rec("f", "PutUser")},
		{"like star", `user_agent.original LIKE "*Terraform*"`, rec("user_agent.original", "APN/1.0 HashiCorp/1.0 Terraform/1.5.7"), rec("user_agent.original", "aws-cli/2")},
		{"like is whole value", `f like "Invoke*"`, rec("f", "InvokeModel"), rec("f", "xInvokeModel")},
		{"like question mark", `f like "a?c"`, rec("f", "abc"), rec("f", "abbc")},
		{"like question mark is one character", `f like "caf?"`, rec("f", "café"), rec("f", "cafe\u0301")},
		{"like escape", `f like "a\\*"`, rec("f", "a*"), rec("f", "ab")},
		{"like percent is literal", `f LIKE "%/x"`, rec("f", "%/x"), rec("f", "a/x")},
		{"like across newlines", `f like "a*b"`, rec("f", "a\nb"), rec("f", "a\nc")},
		{"like, multi-valued is null", `f like "a*"`, rec("f", "ab"), rec("f", "ab", "f", "ac")},
		{"not like", `f NOT LIKE "*x*"`, rec("f", "abc"), rec("f", "axc")},
		{"like list", `f LIKE ("a*", "*z")`, rec("f", "xyz"), rec("f", "xya")},
		{"rlike whole value", `f RLIKE "ab+c"`, rec("f", "abbc"), rec("f", "xabbc")},
		{"rlike quotes and escapes", `f RLIKE """.*\"Effect\": *\"Allow\".*"""`, rec("f", `{"Effect":  "Allow"}`), rec("f", `{"Effect": "Deny"}`)},
		{"rlike escaped star", `f rlike """.*\"Principal\": *\"\*\".*"""`, rec("f", `"Principal": "*"`), rec("f", `"Principal": "arn"`)},
		{"rlike dot matches newline", `f rlike "a.b"`, rec("f", "a\nb"), rec("f", "a\n\nb")},
		{"rlike classes", `f rlike """cpu=(8192|16384)[,} ].*"""`, rec("f", "cpu=8192}"), rec("f", "cpu=4096}")},
		{"rlike lucene string", `f rlike """"a.b"x"""`, rec("f", "a.bx"), rec("f", "aXbx")},
		{"rlike predefined class", `f rlike """\d+\s\w+"""`, rec("f", "42 ab_9"), rec("f", "42\fab")},
		{"and, null and false", `f == "a" AND g == "b"`, rec("f", "a", "g", "b"), rec("g", "b")},
		{"or, null or true", `f == "a" OR g == "b"`, rec("g", "b"), rec("g", "c")},
		{"keywords case-insensitive", `f == "a" aNd NoT g Is NuLl`, rec("f", "a", "g", "x"), rec("f", "a")},
		{"string escapes", `f == "a\"b\\c\td"`, rec("f", "a\"b\\c\td"), rec("f", "abcd")},
		{"triple-quoted keeps backslashes", `f == """a\b"""`, rec("f", `a\b`), rec("f", "ab")},
		{"backquoted name", "`source.as.organization.name` != \"AMAZON-AES\"", rec("source.as.organization.name", "Example"), rec("source.as.organization.name", "AMAZON-AES")},
		{"field to field", `user.name != user.target.name`, rec("user.name", "a", "user.target.name", "b"), rec("user.name", "a")},
		{"long field", `source.as.number > 64000`, rec("source.as.number", "#64512"), rec("source.as.number", "#16509")},
		{"long field reads numeric text", `source.as.number == 16509`, rec("source.as.number", "16509"), rec("source.as.number", "x16509")},
		{"ip field and string literal", `source.ip == "10.0.0.1"`, rec("source.ip", "10.0.0.1"), rec("source.ip", "10.0.0.2")},
		{"ip field, IPv4 and mapped IPv6 are one", `source.ip == "::ffff:10.0.0.1"`, rec("source.ip", "10.0.0.1"), rec("source.ip", "10.0.0.2")},
		{"date field and string literal", `@timestamp >= "2026-03-01T11:00:00Z"`, rec("@timestamp", "2026-03-01T11:30:00Z"), rec("@timestamp", "2026-03-01T10:30:00Z")},
		{"date and now", `@timestamp >= NOW() - 1 hour`, rec("@timestamp", "2026-03-01T11:30:00Z"), rec("@timestamp", "2026-03-01T10:59:59.999Z")},
		{"date and now, days", `@timestamp >= now() - 7 days`, rec("@timestamp", "2026-02-22T12:00:00Z"), rec("@timestamp", "2026-02-22T11:59:59Z")},
		{"arithmetic", `source.as.number * 2 + 1 == 33`, rec("source.as.number", "#16"), rec("source.as.number", "#17")},
		{"integer overflow is null", `2147483647 + TO_INTEGER(source.port) > 0 OR g == "x"`, rec("g", "x"), rec("source.port", "#1")},
		{"division by zero is null", `source.port / 0 == 0 OR g == "x"`, rec("g", "x"), rec("source.port", "#1")},
		{"integer division truncates", `source.port / 2 == 3`, rec("source.port", "#7"), rec("source.port", "#8")},
		{"double division", `to_double(source.port) / 2 == 3.5`, rec("source.port", "#7"), rec("source.port", "#8")},
		{"keyword past ignore_above is not there", `user.name IS NOT NULL`, rec("user.name", "bob"), rec("user.name", strings.Repeat("x", 1025))},
		{"comments", "f == \"a\" // line comment\n /* block /* nested */ */ AND g == \"b\"", rec("f", "a", "g", "b"), rec("f", "a")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, "FROM logs-* | WHERE "+c.where)
			if _, ok := p.Eval(c.yes, testNow); !ok {
				t.Errorf("%s: no row for %v", c.where, c.yes)
			}
			if _, ok := p.Eval(c.no, testNow); ok {
				t.Errorf("%s: a row for %v", c.where, c.no)
			}
		})
	}
}

// TestEval checks the value functions and operators compute, one record
// each, with nulls and multi-valued input.
func TestEval(t *testing.T) {
	cases := []struct {
		name, expr string
		r          matcher.MapFields
		want       []string // nil: null
	}{
		{"case first true", `CASE(f == "a", "A", f == "b", "B", "other")`, rec("f", "b"), []string{"B"}},
		{"case default", `CASE(f == "a", "A", "other")`, rec("f", "z"), []string{"other"}},
		{"case no default is null", `CASE(f == "a", "A")`, rec("f", "z"), nil},
		{"case null condition is false", `CASE(f == "a", "A", "other")`, rec(), []string{"other"}},
		{"case multi-valued condition is false", `CASE(f == "a", "A", "other")`, rec("f", "a", "f", "b"), []string{"other"}},
		{"case value multi-valued", `CASE(true, f, null)`, rec("f", "b", "f", "a"), []string{"a", "b"}},
		{"case numbers", `CASE(f == "a", 1, 0)`, rec("f", "a"), []string{"1"}},
		{"coalesce", `COALESCE(f, g, "x")`, rec("g", "b"), []string{"b"}},
		{"coalesce keeps multi-valued", `COALESCE(f, g)`, rec("f", "b", "f", "a"), []string{"a", "b"}},
		{"coalesce all null", `COALESCE(f, g)`, rec(), nil},
		{"concat", `CONCAT("aws:", f, "/", g)`, rec("f", "1", "g", "2"), []string{"aws:1/2"}},
		{"concat null", `CONCAT("aws:", f)`, rec(), nil},
		{"concat multi-valued is null", `CONCAT("aws:", f)`, rec("f", "1", "f", "2"), nil},
		{"to_string of an ip", `TO_STRING(source.ip)`, rec("source.ip", "2001:DB8::0:1"), []string{"2001:db8::1"}},
		{"to_string of each value", `TO_STRING(source.port)`, rec("source.port", "#2", "source.port", "#1"), []string{"1", "2"}},
		{"to_string of a date", `to_string(@timestamp)`, rec("@timestamp", "2026-03-01T11:30:00+01:00"), []string{"2026-03-01T10:30:00.000Z"}},
		{"to_lower", `TO_LOWER(f)`, rec("f", "AbC"), []string{"abc"}},
		// Each value, as Elasticsearch's ChangeCase from 9.1 (null before).
		{"to_lower of each value", `TO_LOWER(f)`, rec("f", "A", "f", "B"), []string{"a", "b"}},
		// Java's toLowerCase(Locale.ROOT): İ is i and a combining dot, a
		// final sigma ς (Go's mapping gave i, σ).
		{"to_lower as Java", `TO_LOWER(f)`, rec("f", "İMPORT ΟΔΟΣ"), []string{"i\u0307mport οδος"}},
		{"to_upper", `to_upper(f)`, rec("f", "aBc"), []string{"ABC"}},
		{"to_double", `TO_DOUBLE(source.port) / TO_DOUBLE(source.as.number)`, rec("source.port", "#1", "source.as.number", "#8"), []string{"0.125"}},
		{"to_double of text", `TO_DOUBLE(f)`, rec("f", "1e3"), []string{"1000.0"}},
		{"to_double of bad text", `TO_DOUBLE(f)`, rec("f", "x"), nil},
		{"to_long of text", `TO_LONG(f)`, rec("f", "12"), []string{"12"}},
		{"to_integer of a double", `TO_INTEGER(2.9)`, rec(), []string{"2"}},
		{"cast", `f::long + 1`, rec("f", "41"), []string{"42"}},
		{"from_base64", `FROM_BASE64(f)`, rec("f", "YmFzaCAtaQ=="), []string{"bash -i"}},
		{"from_base64 unpadded", `FROM_BASE64(f)`, rec("f", "YmFzaCAtaQ"), []string{"bash -i"}},
		{"from_base64 invalid", `FROM_BASE64(f)`, rec("f", "!!"), nil},
		{"from_base64 of bytes that are no UTF-8", `FROM_BASE64(f)`, rec("f", "Y2Fm6SBiYXNoIC1p"), nil},
		{"starts_with", `STARTS_WITH(f, "Desc")`, rec("f", "DescribeInstances"), []string{"true"}},
		{"ends_with", `ENDS_WITH(f, ".js")`, rec("f", "main.css"), []string{"false"}},
		{"ends_with null", `ENDS_WITH(f, ".js")`, rec(), nil},
		{"mv_count", `MV_COUNT(f)`, rec("f", "a", "f", "b", "f", "a"), []string{"2"}},
		{"mv_count null", `MV_COUNT(f)`, rec(), nil},
		{"mv_first reads doc values order", `MV_FIRST(f)`, rec("f", "b", "f", "a"), []string{"a"}},
		{"mv_last", `MV_LAST(source.port)`, rec("source.port", "#9", "source.port", "#3"), []string{"9"}},
		{"mv_dedupe", `MV_DEDUPE(source.port)`, rec("source.port", "#3", "source.port", "#3", "source.port", "#1"), []string{"1", "3"}},
		{"mv_min mv_max", `CONCAT(TO_STRING(MV_MIN(source.port)), "-", TO_STRING(MV_MAX(source.port)))`, rec("source.port", "#9", "source.port", "#3"), []string{"3-9"}},
		{"mv_concat", `MV_CONCAT(f, ",")`, rec("f", "b", "f", "a"), []string{"a,b"}},
		{"length counts characters", `LENGTH(f)`, rec("f", "café"), []string{"4"}},
		{"substring", `SUBSTRING(f, 2, 3)`, rec("f", "abcdef"), []string{"bcd"}},
		{"substring from the end", `SUBSTRING(f, -2)`, rec("f", "abcdef"), []string{"ef"}},
		{"locate", `LOCATE(f, "cd")`, rec("f", "abcdef"), []string{"3"}},
		{"locate absent", `LOCATE(f, "x")`, rec("f", "abcdef"), []string{"0"}},
		{"trim", `TRIM(f)`, rec("f", " \t a b \n"), []string{"a b"}},
		{"split", `SPLIT(f, ",")`, rec("f", "a,,b"), []string{"a", "", "b"}},
		{"contains", `CONTAINS(f, "b")`, rec("f", "abc"), []string{"true"}},
		{"date_trunc seconds", `DATE_TRUNC(30 seconds, @timestamp)`, rec("@timestamp", "2026-03-01T11:30:45.123Z"), []string{"2026-03-01T11:30:30.000Z"}},
		{"date_trunc minutes", `date_trunc(5 minute, @timestamp)`, rec("@timestamp", "2026-03-01T11:34:59Z"), []string{"2026-03-01T11:30:00.000Z"}},
		{"date_trunc before the epoch", `DATE_TRUNC(1 hour, @timestamp)`, rec("@timestamp", "1969-12-31T23:30:00Z"), []string{"1969-12-31T23:00:00.000Z"}},
		{"date_trunc day", `DATE_TRUNC(1 day, @timestamp)`, rec("@timestamp", "2026-03-01T11:34:59Z"), []string{"2026-03-01T00:00:00.000Z"}},
		{"date_trunc week starts monday", `DATE_TRUNC(1 week, @timestamp)`, rec("@timestamp", "2026-03-01T11:34:59Z"), []string{"2026-02-23T00:00:00.000Z"}},
		{"date_trunc month", `DATE_TRUNC(1 month, @timestamp)`, rec("@timestamp", "2026-03-31T11:34:59Z"), []string{"2026-03-01T00:00:00.000Z"}},
		{"date_trunc quarter", `DATE_TRUNC(1 quarter, @timestamp)`, rec("@timestamp", "2026-05-31T11:34:59Z"), []string{"2026-04-01T00:00:00.000Z"}},
		{"date_trunc multi-valued is null", `DATE_TRUNC(1 hour, @timestamp)`, rec("@timestamp", "2026-03-01T11:00:00Z", "@timestamp", "2026-03-01T12:00:00Z"), nil},
		{"date_diff minutes truncates", `DATE_DIFF("minutes", @timestamp, event.ingested)`, rec("@timestamp", "2026-03-01T11:00:00Z", "event.ingested", "2026-03-01T11:05:59Z"), []string{"5"}},
		{"date_diff negative", `DATE_DIFF("seconds", event.ingested, @timestamp)`, rec("@timestamp", "2026-03-01T11:00:00Z", "event.ingested", "2026-03-01T11:00:01.5Z"), []string{"-1"}},
		{"date_diff months", `DATE_DIFF("month", @timestamp, event.ingested)`, rec("@timestamp", "2026-01-31T00:00:00Z", "event.ingested", "2026-03-30T00:00:00Z"), []string{"1"}},
		{"date arithmetic", `@timestamp + 1 month - 2 hours`, rec("@timestamp", "2026-01-31T01:00:00Z"), []string{"2026-02-27T23:00:00.000Z"}},
		{"now", `NOW()`, rec(), []string{"2026-03-01T12:00:00.000Z"}},
		{"boolean column", `f == "a"`, rec("f", "a"), []string{"true"}},
		{"double output as java", `TO_DOUBLE(source.port) * 10000000.0`, rec("source.port", "#2"), []string{"2.0E7"}},
		{"array literal", `["b", "a"]`, rec(), []string{"b", "a"}},
		{"negative literal", `-5 + source.port`, rec("source.port", "#7"), []string{"2"}},
		{"ip values sorted and deduplicated", `source.ip`, rec("source.ip", "10.0.0.2", "source.ip", "10.0.0.1", "source.ip", "::ffff:10.0.0.1"), []string{"10.0.0.1", "10.0.0.2"}},
		{"malformed values are not indexed", `source.ip`, rec("source.ip", "10.0.0.01", "source.ip", "x"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, "FROM logs-* | EVAL out = "+c.expr+" | KEEP out")
			row, ok := p.Eval(c.r, testNow)
			if !ok {
				t.Fatalf("no row")
			}
			if got := texts(row.Values("out")); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s = %q, want %q", c.expr, got, c.want)
			}
		})
	}
}

// countingFields counts the reads of each field of a record.
type countingFields struct {
	matcher.MapFields
	reads map[string]int
}

func (c *countingFields) Values(f *matcher.Field) []matcher.Value {
	c.reads[f.Name]++
	return c.MapFields.Values(f)
}

// TestLazyEval: an EVAL before STATS is computed when its column is first
// read, so that a WHERE that drops the row before then saves it; its
// value is what computing it in place gives, through shadowing names,
// RENAME, DISSECT, chains of EVALs and STATS.
func TestLazyEval(t *testing.T) {
	q := `FROM logs-* | EVAL w = DATE_TRUNC(10 seconds, @timestamp) | WHERE event.action == "A" | KEEP w`
	p := mustCompile(t, q)
	no := &countingFields{rec("event.action", "B", "@timestamp", "2026-03-01T11:30:45.123Z"), map[string]int{}}
	if _, ok := p.Eval(no, testNow); ok {
		t.Fatal("a row for a record WHERE drops")
	}
	if n := no.reads["@timestamp"]; n != 0 {
		t.Errorf("the EVAL read @timestamp %d times for a record WHERE dropped before its column", n)
	}
	yes := &countingFields{rec("event.action", "A", "@timestamp", "2026-03-01T11:30:45.123Z"), map[string]int{}}
	row, ok := p.Eval(yes, testNow)
	if !ok {
		t.Fatal("no row")
	}
	if got := texts(row.Values("w")); !reflect.DeepEqual(got, []string{"2026-03-01T11:30:40.000Z"}) {
		t.Errorf("w = %q", got)
	}

	cases := []struct {
		name, q string
		r       matcher.MapFields
		want    map[string][]string // nil: no row
	}{
		{"shadowing reads the earlier column", `FROM logs-* | EVAL x = 1 | EVAL x = x + 1, y = x * 10 | WHERE y > 0 | KEEP x, y`,
			rec(), map[string][]string{"x": {"2"}, "y": {"20"}}},
		{"a chain read by WHERE", `FROM logs-* | EVAL a = TO_LOWER(f) | EVAL b = CONCAT(a, "!") | WHERE b == "x!" | EVAL a = "z" | KEEP a, b`,
			rec("f", "X"), map[string][]string{"a": {"z"}, "b": {"x!"}}},
		{"a chain WHERE drops", `FROM logs-* | EVAL a = TO_LOWER(f) | EVAL b = CONCAT(a, "!") | WHERE b == "x!" | KEEP a, b`,
			rec("f", "Y"), nil},
		{"renamed", `FROM logs-* | EVAL a = TO_UPPER(f) | RENAME a AS c | WHERE g == "1" | KEEP c`,
			rec("f", "q", "g", "1"), map[string][]string{"c": {"Q"}}},
		{"dissect then eval", `FROM logs-* | DISSECT f "%{p}-%{s}" | EVAL n = CONCAT(s, p) | WHERE p == "a" | KEEP n`,
			rec("f", "a-b"), map[string][]string{"n": {"ba"}}},
		{"eval of a dissected column before dissect redefines it", `FROM logs-* | EVAL p = "e" | EVAL n = p | DISSECT f "%{p}-%{s}" | KEEP n, p`,
			rec("f", "a-b"), map[string][]string{"n": {"e"}, "p": {"a"}}},
		{"never read", `FROM logs-* | EVAL x = TO_LOWER(f) | KEEP g`,
			rec("f", "A", "g", "1"), map[string][]string{"g": {"1"}}},
		{"null", `FROM logs-* | EVAL x = TO_LOWER(f) | WHERE x IS NULL | KEEP x`,
			rec("g", "1"), map[string][]string{"x": nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustCompile(t, c.q)
			row, ok := p.Eval(c.r, testNow)
			if ok != (c.want != nil) {
				t.Fatalf("row %v, want %v", ok, c.want != nil)
			}
			for name, want := range c.want {
				if got := texts(row.Values(name)); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}

	// Aggregating: the EVAL column a BY reads after a WHERE.
	got := results(t, `FROM logs-* | EVAL w = DATE_TRUNC(10 seconds, @timestamp) | WHERE event.action == "A" | STATS n = COUNT(*) BY w`,
		rec("event.action", "A", "@timestamp", "2026-03-01T11:30:45Z"),
		rec("event.action", "B", "@timestamp", "2026-03-01T11:30:55Z"),
		rec("event.action", "A", "@timestamp", "2026-03-01T11:30:41Z"),
		rec("event.action", "A", "@timestamp", "2026-03-01T11:30:51Z"))
	want := []string{"n=2 w=2026-03-01T11:30:40.000Z", "n=1 w=2026-03-01T11:30:50.000Z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats = %q, want %q", got, want)
	}
}
