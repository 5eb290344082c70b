package kql

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/matcher"
)

// rec builds matcher.MapFields from "field=value" pairs; a field given several times
// is an array. "field=#5" is the number 5, "field=?true" the boolean true.
func rec(pairs ...string) matcher.MapFields {
	m := matcher.MapFields{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		val := matcher.Value{Text: v}
		switch {
		case strings.HasPrefix(v, "#"):
			val = matcher.Value{Text: v[1:], Kind: matcher.KindNumber}
		case strings.HasPrefix(v, "?"):
			val = matcher.Value{Text: v[1:], Kind: matcher.KindBool}
		}
		m[k] = append(m[k], val)
	}
	return m
}

// TestKQLSemantics pairs every construct with a record that matches and one
// that does not, as Elasticsearch decides on the AWS integration's mappings.
func TestKQLSemantics(t *testing.T) {
	cases := []struct {
		name  string
		query string
		yes   matcher.MapFields
		no    matcher.MapFields
	}{
		{"exact keyword", `event.action: CreateUser`, rec("event.action=CreateUser"), rec("event.action=CreateUserX")},
		{"case-sensitive", `event.action: CreateUser`, rec("event.action=CreateUser"), rec("event.action=createuser")},
		{"quoted", `event.action: "CreateUser"`, rec("event.action=CreateUser"), rec("event.action=Create")},
		{"unquoted spans spaces", `user_agent.original: aws cli/2`, rec("user_agent.original=aws cli/2"), rec("user_agent.original=aws")},
		{"trailing spaces trimmed", `(event.action: Foo   )`, rec("event.action=Foo"), rec("event.action=Foo   ")},
		{"wildcard prefix", `event.action: Invoke*`, rec("event.action=InvokeModel"), rec("event.action=ListInvoke")},
		{"wildcard suffix", `event.action: *Model`, rec("event.action=InvokeModel"), rec("event.action=InvokeModels")},
		{"wildcard contains", `aws.cloudtrail.request_parameters: *AdministratorAccess*`, rec("aws.cloudtrail.request_parameters={policyArn=arn:aws:iam::aws:policy/AdministratorAccess}"), rec("aws.cloudtrail.request_parameters={policyArn=ReadOnly}")},
		{"wildcard general", `aws.cloudtrail.request_parameters: *includeManagementEvents*false*`, rec("aws.cloudtrail.request_parameters={x=[{includeManagementEvents=false}]}"), rec("aws.cloudtrail.request_parameters={includeManagementEvents=true}")},
		{"wildcard across spaces", `user_agent.original: (*S3 Browser* or *Cyberduck*)`, rec("user_agent.original=S3 Browser 9.5"), rec("user_agent.original=S3Browser")},
		{"wildcard across newline", `f: a*b`, rec("f=a\nb"), rec("f=a\nc")},
		{"wildcard middle", `f: a*b*c`, rec("f=aXbYc"), rec("f=aXcYb")},
		{"wildcard overlap", `f: ab*ba`, rec("f=abba"), rec("f=aba")},
		{"quoted star literal", `f: "a*"`, rec("f=a*"), rec("f=abc")},
		{"escaped star literal", `f: a\*`, rec("f=a*"), rec("f=abc")},
		{"exists", `source.ip: *`, rec("source.ip=1.2.3.4"), rec("source.address=x")},
		{"exists keyword", `aws.cloudtrail.user_identity.invoked_by:*`, rec("aws.cloudtrail.user_identity.invoked_by=ec2.amazonaws.com"), rec()},
		{"not exists", `not aws.cloudtrail.user_identity.invoked_by: *`, rec(), rec("aws.cloudtrail.user_identity.invoked_by=x")},
		{"value list or", `event.action: ("PutResourcePolicy" or "DeleteResourcePolicy")`, rec("event.action=DeleteResourcePolicy"), rec("event.action=GetResourcePolicy")},
		{"value list and on array", `f: (a and b)`, rec("f=a", "f=b"), rec("f=a", "f=c")},
		{"value list and not", `aws.cloudtrail.user_identity.arn:(* and not *AWSServiceRoleForConfig*)`, rec("aws.cloudtrail.user_identity.arn=arn:aws:iam::1:user/bob"), rec("aws.cloudtrail.user_identity.arn=arn:aws:sts::1:assumed-role/AWSServiceRoleForConfig/x")},
		{"value list and not, missing", `f:(* and not x)`, rec("f=y"), rec()},
		{"not on missing is true", `not f: x`, rec(), rec("f=x")},
		{"missing makes false", `f: x`, rec("f=x"), rec("g=x")},
		{"array any value", `f: b`, rec("f=a", "f=b"), rec("f=a", "f=c")},
		{"not on array", `not f: b`, rec("f=a", "f=c"), rec("f=a", "f=b")},
		{"parentheses", `(a: 1 or b: 2) and c: 3`, rec("b=2", "c=3"), rec("a=1", "b=2")},
		{"precedence and over or", `a: 1 or b: 2 and c: 3`, rec("a=1"), rec("b=2")},
		{"keywords case-insensitive", `a: 1 AND NOT b: 2 Or c: 3`, rec("a=1"), rec("a=1", "b=2")},
		{"keyword needs spaces", `f: band`, rec("f=band"), rec("f=b")},
		{"escaped keyword", `f: a \and b`, rec("f=a and b"), rec("f=a")},
		{"escaped colon", `user.id: *\:i-*`, rec("user.id=AROA:i-0abc"), rec("user.id=AROA:x")},
		{"escaped specials", `f: \(\)\<\>\{\}\"\\`, rec(`f=()<>{}"\`), rec("f=x")},
		{"escaped related entity", `related.entity: arn\:aws\:iam\:\:aws\:policy*`, rec("related.entity=arn:aws:iam::aws:policy/Admin"), rec("related.entity=arn:aws:iam::1:policy/x")},
		{"unicode escape quoted", `f: "caf\u00e9"`, rec("f=café"), rec("f=cafe")},
		{"unicode escape unquoted", `f: caf\u00e9`, rec("f=café"), rec("f=cafe")},
		// A surrogate pair is one character, as String.fromCharCode makes it.
		{"unicode escape surrogate pair", `f: "x\ud83d\ude00"`, rec("f=x\U0001F600"), rec("f=x")},
		{"unicode escape surrogate pair unquoted", `f: x\ud83d\ude00`, rec("f=x\U0001F600"), rec("f=x")},
		{"quoted escapes", `f: "a\"b\\c\td"`, rec("f=a\"b\\c\td"), rec("f=abcd")},
		{"quoted other backslash kept", `f: "a\*"`, rec(`f=a\*`), rec("f=a*")},
		{"true matches keyword text", `aws.cloudtrail.flattened.request_parameters.withDecryption: true`, rec("aws.cloudtrail.flattened.request_parameters.withDecryption=?true"), rec("aws.cloudtrail.flattened.request_parameters.withDecryption=?false")},
		{"true matches string true", `aws.cloudtrail.session_credential_from_console: true`, rec("aws.cloudtrail.session_credential_from_console=true"), rec("aws.cloudtrail.session_credential_from_console=True")},
		{"number stays text on keyword", `f: 01`, rec("f=01"), rec("f=#1")},
		{"number on keyword from number", `aws.cloudtrail.flattened.request_parameters.ipPermissions.items.fromPort: 22`, rec("aws.cloudtrail.flattened.request_parameters.ipPermissions.items.fromPort=#22"), rec("aws.cloudtrail.flattened.request_parameters.ipPermissions.items.fromPort=#22.0")},
		{"number on long field", `source.as.number: 016509`, rec("source.as.number=#16509"), rec("source.as.number=#16510")},
		{"decimal on long field matches nothing", `not source.as.number: 1.5`, rec("source.as.number=#1"), nil},
		{"boolean field", `aws.cloudtrail.console_login.additional_eventdata.mfa_used: false`, rec("aws.cloudtrail.console_login.additional_eventdata.mfa_used=?false"), rec("aws.cloudtrail.console_login.additional_eventdata.mfa_used=?true")},
		{"cidr on ip", `source.ip: 10.0.0.0/8`, rec("source.ip=10.1.2.3"), rec("source.ip=11.1.2.3")},
		{"cidr quoted on ip", `source.ip: "192.168.0.0/16"`, rec("source.ip=192.168.7.7"), rec("source.ip=192.169.0.1")},
		{"ipv6 cidr holds mapped v4", `source.ip: "::/0"`, rec("source.ip=1.2.3.4"), rec("source.ip=not-an-ip")},
		{"ipv6 cidr", `source.ip: "2001:db8::/32"`, rec("source.ip=2001:db8::1"), rec("source.ip=2001:db9::1")},
		{"ip exact", `source.ip: 1.2.3.4`, rec("source.ip=::ffff:1.2.3.4"), rec("source.ip=1.2.3.5")},
		{"cidr is text on keyword", `source.address: 10.0.0.0/8`, rec("source.address=10.0.0.0/8"), rec("source.address=10.1.2.3")},
		{"cidr text on flattened", `aws.cloudtrail.flattened.request_parameters.ipPermissions.items.ipRanges.items.cidrIp: ("0.0.0.0/0" or "::/0")`, rec("aws.cloudtrail.flattened.request_parameters.ipPermissions.items.ipRanges.items.cidrIp=::/0"), rec("aws.cloudtrail.flattened.request_parameters.ipPermissions.items.ipRanges.items.cidrIp=10.0.0.0/8")},
		{"range number", `source.as.number >= 100`, rec("source.as.number=#100"), rec("source.as.number=#99")},
		{"range number lt", `source.port < 1024`, rec("source.port=#22"), rec("source.port=#1024")},
		{"range number from string", `source.port > 9`, rec("source.port=10"), rec("source.port=9")},
		{"range keyword is lexicographic", `f > 9`, rec("f=a"), rec("f=10")},
		{"range date", `@timestamp >= "2024-01-01T00:00:00Z"`, rec("@timestamp=2024-01-01T00:00:00.000Z"), rec("@timestamp=2023-12-31T23:59:59.999Z")},
		{"range date epoch", `@timestamp < 1704067200000`, rec("@timestamp=2023-12-31T23:59:59Z"), rec("@timestamp=2024-01-01T00:00:00Z")},
		{"range date math now", `@timestamp > now-1h`, rec("@timestamp=2024-06-01T11:30:00Z"), rec("@timestamp=2024-06-01T10:30:00Z")},
		{"range date rounding lte rounds up", `@timestamp <= "2024-06-01||/d"`, rec("@timestamp=2024-06-01T23:00:00Z"), rec("@timestamp=2024-06-02T00:00:00Z")},
		{"range ip", `source.ip < 10.0.0.10`, rec("source.ip=10.0.0.9"), rec("source.ip=10.0.0.10")},
		{"date exact", `@timestamp: "2024-06-01T12:00:00Z"`, rec("@timestamp=2024-06-01T12:00:00.000Z"), rec("@timestamp=2024-06-01T12:00:00.001Z")},
		{"ignore_above hides long keyword", `f: *a*`, rec("f=" + strings.Repeat("a", 1024)), rec("f=" + strings.Repeat("a", 1025))},
		{"ignore_above hides from exists", `f: *`, rec("f=" + strings.Repeat("a", 10)), rec("f=" + strings.Repeat("a", 2000))},
		// Java's length, in UTF-16 units: an emoji counts two (1,000 of
		// them are 2,000 units, past 1,024; 1,000 é are 1,000).
		{"ignore_above counts UTF-16 units", `f: *`, rec("f=" + strings.Repeat("é", 1000)), rec("f=" + strings.Repeat("\U0001F600", 1000))},
		{"request_parameters limit 8191", `aws.cloudtrail.request_parameters: *x*`, rec("aws.cloudtrail.request_parameters=" + strings.Repeat("x", 8191)), rec("aws.cloudtrail.request_parameters=" + strings.Repeat("x", 8192))},
		{"flattened root matches any leaf", `aws.cloudtrail.flattened.request_parameters: bucket1`, rec("aws.cloudtrail.flattened.request_parameters=bucket1"), rec("aws.cloudtrail.flattened.request_parameters=bucket2")},
		{"empty query matches all", ``, rec(), nil},
		{"nbsp is space", "a:\u00a01", rec("a=1"), rec("a=2")},
		{"newlines between clauses", "a: 1\n  and\n  b: 2", rec("a=1", "b=2"), rec("a=1")},
		{"double not", `not not a: 1`, nil, nil},
		{"field quoted", `"event.action": X`, rec("event.action=X"), rec("event.action=Y")},
		{"not in value list", `f: (not a)`, rec("f=b"), rec("f=a")},
		{"keyword without a space after is text", `a: 1 and`, rec("a=1 and"), rec("a=1")},
		{"not needs a space after", `f: notes`, rec("f=notes"), rec("f=no")},
		{"nested value lists", `f: (a or (b and c))`, rec("f=b", "f=c"), rec("f=b")},
	}
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	matcher.Now = func() time.Time { return now }
	defer func() { matcher.Now = time.Now }()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Compile(cloudtrail.NewSchema(), tc.query)
			if tc.name == "double not" {
				// Kibana's grammar: Not SubQuery, and SubQuery cannot start with NOT.
				if err == nil {
					t.Fatalf("%q compiled; Kibana rejects it", tc.query)
				}
				return
			}
			if err != nil {
				t.Fatalf("compile %q: %v", tc.query, err)
			}
			if tc.yes != nil && !q.Match(tc.yes) {
				t.Errorf("%q should match %v", tc.query, tc.yes)
			}
			if tc.no != nil && q.Match(tc.no) {
				t.Errorf("%q should not match %v", tc.query, tc.no)
			}
		})
	}
}

// TestPythonEvaluatorDivergences covers the places where Elastic's Python
// KQL evaluator (detection-rules' kql package) and Elasticsearch disagree;
// trailwatch follows Elasticsearch.
func TestPythonEvaluatorDivergences(t *testing.T) {
	cases := []struct {
		name, query string
		doc         matcher.MapFields
		want        bool
		why         string
	}{
		{"unquoted true vs keyword text", `f: true`, rec("f=true"), true, "Python compares the boolean True to the string and fails; ES matches the keyword text"},
		{"unquoted false vs boolean", `f: false`, rec("f=?false"), true, "ES indexes the boolean as keyword text false"},
		{"leading zero stays text", `f: 01`, rec("f=01"), true, "Python converts 01 to the integer 1"},
		{"leading zero is not 1 on keyword", `f: 01`, rec("f=1"), false, "Python's 1 == 1 matches; ES compares the keyword text"},
		{"case-sensitive exact", `f: Admin`, rec("f=admin"), false, "Python lowercases both sides"},
		{"case-sensitive wildcard", `f: *Admin*`, rec("f=xadminx"), false, "Python's wildcard match ignores case"},
		{"quoted star is literal", `f: "*"`, rec("f=anything"), false, "a quoted * is a phrase, not exists"},
		{"cidr on keyword is text", `source.address: 10.0.0.0/8`, rec("source.address=10.0.0.1"), false, "only ip fields understand CIDR"},
		{"number on keyword", `f: 1.0`, rec("f=#1"), false, "keyword text 1 is not 1.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Compile(cloudtrail.NewSchema(), tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Match(tc.doc); got != tc.want {
				t.Errorf("%q on %v = %v, want %v (%s)", tc.query, tc.doc, got, tc.want, tc.why)
			}
		})
	}
}

// nestedDoc is a record with a nested field "n" holding elements.
type nestedDoc struct {
	matcher.MapFields
	elems []matcher.Fields
}

func (d nestedDoc) Elements(f *matcher.Field) []matcher.Fields {
	if f.Name == "n" {
		return d.elems
	}
	return nil
}

func TestNestedSameElement(t *testing.T) {
	s := cloudtrail.NewSchema()
	s.Declare("n", matcher.Nested, 0)
	q, err := Compile(s, `n:{ k: a and v: 1 }`)
	if err != nil {
		t.Fatal(err)
	}
	same := nestedDoc{elems: []matcher.Fields{rec("n.k=a", "n.v=1"), rec("n.k=b", "n.v=2")}}
	split := nestedDoc{elems: []matcher.Fields{rec("n.k=a", "n.v=2"), rec("n.k=b", "n.v=1")}}
	if !q.Match(same) {
		t.Error("conditions met in one element should match")
	}
	if q.Match(split) {
		t.Error("conditions met only across elements must not match")
	}
	if _, err := Compile(cloudtrail.NewSchema(), `user:{ name: x }`); err == nil || !strings.Contains(err.Error(), "not a nested field") {
		t.Errorf("nested query on an object field: err = %v, want 'not a nested field'", err)
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct{ query, pos, msg string }{
		{`event.action: (a or b`, "1:22", "expected AND, OR or ')'"},
		{"a: 1 and\n  b", "2:3", "searches every field"},
		{`a: "unterminated`, "1:4", "unterminated quoted string"},
		{`a: 1 b: 2`, "1:1", ""},
		{`a: x\q`, "1:5", `unknown escape \q`},
		{`(a: 1`, "1:6", "expected AND, OR or ')'"},
		{`a: `, "1:4", "expected a value for a"},
		{`a > `, "1:5", "expected a value after"},
		{`a*: x`, "1:1", "wildcard"},
		{`a: null`, "1:4", "null"},
		{`source.ip: 10.*`, "1:12", "wildcards only on keyword"},
		{`source.as.number: abc`, "1:19", "not a number"},
		{`source.ip: not-an-ip`, "1:12", "neither an IP"},
		{`a: cannot x`, "1:1", ""},
		{"a: 1\n\tand b: \"x", "2:9", "unterminated"},
		{strings.Repeat("(", 300) + "a:1" + strings.Repeat(")", 300), "1:257", "nested deeper"},
		{"a: \xff", "1:4", "invalid UTF-8"},
		{strings.Repeat("(", 10000) + "a:1" + strings.Repeat(")", 10000), "1:257", "nested deeper"},
		{"a:" + strings.Repeat("(", 10000) + "b" + strings.Repeat(")", 10000), "1:259", "nested deeper"},
	}
	for _, tc := range cases {
		_, err := Compile(cloudtrail.NewSchema(), tc.query)
		if err == nil {
			t.Errorf("%q: no error", tc.query)
			continue
		}
		se, ok := err.(*matcher.SyntaxError)
		if !ok {
			t.Errorf("%q: error %T, want *matcher.SyntaxError", tc.query, err)
			continue
		}
		if tc.msg != "" && se.Pos.String() != tc.pos {
			t.Errorf("%q: error at %s, want %s (%v)", tc.query, se.Pos, tc.pos, err)
		}
		if !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%q: %q does not say %q", tc.query, se.Msg, tc.msg)
		}
	}
}

func TestPins(t *testing.T) {
	cases := []struct {
		query  string
		pinned bool
		pins   []matcher.Pin
	}{
		{`event.provider: iam.amazonaws.com and event.action: (CreateUser or DeleteUser)`, true,
			[]matcher.Pin{{Provider: "iam.amazonaws.com", Action: "CreateUser"}, {Provider: "iam.amazonaws.com", Action: "DeleteUser"}}},
		{`event.provider: s3.amazonaws.com and event.action: Put*`, true, []matcher.Pin{{Provider: "s3.amazonaws.com"}}},
		{`event.action: Put*`, false, nil},
		{`not event.provider: x`, false, nil},
		{`(event.provider: a and event.action: x) or (event.provider: b and event.action: y)`, true, []matcher.Pin{{Provider: "a", Action: "x"}, {Provider: "b", Action: "y"}}},
		{`event.provider: a or user.name: root`, false, nil},
		{`event.action: (x or y) and data_stream.dataset: aws.cloudtrail`, true, []matcher.Pin{{Action: "x"}, {Action: "y"}}},
		{`source.as.number: 1.5 and event.action: x`, true, nil}, // can never match: no candidate
	}
	for _, tc := range cases {
		q, err := Compile(cloudtrail.NewSchema(), tc.query)
		if err != nil {
			t.Fatal(err)
		}
		pins, ok := q.Pins()
		if ok != tc.pinned {
			t.Errorf("%q pinned = %v, want %v", tc.query, ok, tc.pinned)
			continue
		}
		if len(pins) != len(tc.pins) {
			t.Errorf("%q pins = %v, want %v", tc.query, pins, tc.pins)
			continue
		}
		for i := range pins {
			if pins[i] != tc.pins[i] {
				t.Errorf("%q pins = %v, want %v", tc.query, pins, tc.pins)
				break
			}
		}
	}
}

// TestNotesOnFlattenedKeys: Elasticsearch has no wildcard (other than a
// prefix) and no one-sided range query on a key of a flattened field; the
// rule fails there, and the compiled query says so, once per field and test.
func TestNotesOnFlattenedKeys(t *testing.T) {
	const key = "aws.cloudtrail.flattened.request_parameters.key"
	cases := []struct {
		query string
		notes []string // the note's place (line:col of the value) and its start
	}{
		{key + `: (*.pem or *.key)`, []string{"1:51 a wildcard other than a trailing * on " + key}},
		{key + `: secret* and ` + key + `: *`, nil}, // a prefix query and existence work
		{key + ` >= a`, []string{"1:1 a range on " + key}},
		{`user.name: *admin* and aws.cloudtrail.request_parameters: *x*`, nil}, // keyword fields
		{"event.action: x and\n  " + key + `: *x`, []string{"2:52 a wildcard other than a trailing * on " + key}},
	}
	for _, tc := range cases {
		q, err := Compile(cloudtrail.NewSchema(), tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range q.Notes() {
			got = append(got, n.Pos.String()+" "+n.Msg)
		}
		if len(got) != len(tc.notes) {
			t.Errorf("%q: notes %q, want %q", tc.query, got, tc.notes)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.notes[i]) || !strings.Contains(got[i], "Elasticsearch refuses it") {
				t.Errorf("%q: note %q, want %q...", tc.query, got[i], tc.notes[i])
			}
		}
	}
}

func TestIndexCandidates(t *testing.T) {
	s := cloudtrail.NewSchema()
	var qs []*matcher.Query
	for _, src := range []string{
		`event.provider: iam.amazonaws.com and event.action: CreateUser`, // 0
		`event.provider: iam.amazonaws.com`,                              // 1
		`event.action: CreateUser`,                                       // 2
		`user.name: root`,                                                // 3
		`event.provider: s3.amazonaws.com`,                               // 4
	} {
		q, err := Compile(s, src)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	ix := matcher.NewIndex(qs)
	check := func(p, a []string, want ...int) {
		t.Helper()
		got := ix.Candidates(nil, p, a)
		if len(got) != len(want) {
			t.Fatalf("candidates(%v,%v) = %v, want %v", p, a, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("candidates(%v,%v) = %v, want %v", p, a, got, want)
			}
		}
	}
	check([]string{"iam.amazonaws.com"}, []string{"CreateUser"}, 0, 1, 2, 3)
	check([]string{"iam.amazonaws.com"}, []string{"DeleteUser"}, 1, 3)
	check([]string{"ec2.amazonaws.com"}, []string{"CreateUser"}, 2, 3)
	check([]string{"ec2.amazonaws.com"}, []string{"RunInstances"}, 3)
	check(nil, nil, 3)
	check([]string{"iam.amazonaws.com", "s3.amazonaws.com"}, []string{"x"}, 1, 3, 4)

	// As the engine calls it, each result given back as the next call's
	// buffer: a precomputed answer must not be overwritten by a later one.
	var buf []int
	for range 3 {
		for _, c := range []struct {
			p, a string
			want []int
		}{
			{"iam.amazonaws.com", "CreateUser", []int{0, 1, 2, 3}},
			{"ec2.amazonaws.com", "RunInstances", []int{3}},
			{"s3.amazonaws.com", "PutObject", []int{3, 4}},
			{"iam.amazonaws.com", "CreateUser", []int{0, 1, 2, 3}},
		} {
			buf = ix.Candidates(buf[:0], []string{c.p}, []string{c.a})
			if fmt.Sprint(buf) != fmt.Sprint(c.want) {
				t.Fatalf("reusing the result: candidates(%s, %s) = %v, want %v", c.p, c.a, buf, c.want)
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"now-7d": 7 * 24 * time.Hour, "now-10d": 240 * time.Hour, "14d": 14 * 24 * time.Hour,
		"24h": 24 * time.Hour, "30m": 30 * time.Minute, "now-1w": 7 * 24 * time.Hour,
	} {
		got, err := matcher.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("matcher.ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "now", "7x", "yesterday"} {
		if _, err := matcher.ParseDuration(bad); err == nil {
			t.Errorf("matcher.ParseDuration(%q): no error", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`event.provider: "iam.amazonaws.com" and event.action: (CreateUser or DeleteUser) and not user.name: root`,
		`a:{ b: 1 and c: (x or "y") }`, `source.ip: 10.0.0.0/8`, `f: *a\*b*`, `x >= now-7d/d`,
		`f: "\u00e9\t"`, `not (a: 1 or b: 2)`, `a:`, `((((`, `"`, `\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q, err := Compile(cloudtrail.NewSchema(), src)
		if err != nil {
			if _, ok := err.(*matcher.SyntaxError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		q.Match(rec("a=1", "f=x", "source.ip=10.0.0.1"))
	})
}

// TestOrOfWildcardsOnOneField: `f: (a or *b or c* or ...)` evaluates as the
// disjunction of its parts (it is compiled into one set of values and
// wildcards), for values that end, begin and contain what the parts name.
func TestOrOfWildcardsOnOneField(t *testing.T) {
	s := cloudtrail.NewSchema()
	parts := []string{`*/.aws/credentials`, `*/id_rsa`, `*.pem`, `*.key`, `*private_key*`, `*/.env.*`,
		`exact`, `other`, `pre*`, `*a*b*c`, `*`, `"*.pem"`, `x?y`}
	whole, err := Compile(s, `aws.cloudtrail.user_identity.arn: (`+strings.Join(parts, " or ")+`)`)
	if err != nil {
		t.Fatal(err)
	}
	withoutStar, err := Compile(s, `aws.cloudtrail.user_identity.arn: (`+strings.Join(slices.Delete(slices.Clone(parts), 10, 11), " or ")+`)`)
	if err != nil {
		t.Fatal(err)
	}
	var one []*matcher.Query
	for _, p := range slices.Delete(slices.Clone(parts), 10, 11) {
		q, err := Compile(s, `aws.cloudtrail.user_identity.arn: `+p)
		if err != nil {
			t.Fatal(err)
		}
		one = append(one, q)
	}
	values := []string{"", "a", "exact", "exactly", "other", "prefix", "pre", "home/u/.aws/credentials", "/.aws/credentials.bak",
		"k/id_rsa", "id_rsa", "cert.pem", ".pem", "*.pem", "x.key", "keys", "my_private_key_1", "/.env.prod", "/.env", "axbyc", "abc", "ab",
		"x?y", "xzy", "q.pem.txt", "PRE"}
	for _, v := range values {
		f := matcher.MapFields{"aws.cloudtrail.user_identity.arn": {{Text: v}}}
		want := false
		for _, q := range one {
			want = want || q.Match(f)
		}
		if got := withoutStar.Match(f); got != want {
			t.Errorf("%q: the disjunction gives %v, its parts %v", v, got, want)
		}
		if !whole.Match(f) {
			t.Errorf("%q: a disjunction with `*` must match", v)
		}
	}
}

// TestLongQueryLoadsInLinearTime: a query that ORs 50,000 values (690 KB on
// one line) asks the parser for a place at every value; each must cost no
// more than a lookup, so the whole load takes well under a second where a
// count from the start of the text took minutes.
func TestLongQueryLoadsInLinearTime(t *testing.T) {
	var b strings.Builder
	b.WriteString("user.name: (")
	for i := range 50000 {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "u%07d", i)
	}
	b.WriteString(")")
	start := time.Now()
	q, err := Compile(cloudtrail.NewSchema(), b.String())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a %d-byte query took %v to compile", b.Len(), d)
	}
	if !q.Match(rec("user.name=u0049999")) || q.Match(rec("user.name=u0050000")) {
		t.Error("the long query does not test its values")
	}
	// An error at its end still names the place.
	_, err = Parse(b.String() + " and (")
	var se *matcher.SyntaxError
	if !errors.As(err, &se) || se.Pos.Col < b.Len() {
		t.Errorf("error at the end: %v", err)
	}
}
