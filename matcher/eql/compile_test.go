package eql

import (
	"errors"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/matcher"
)

// rec builds a record from "field=value" pairs; a field given several times
// is multi-valued.
func rec(pairs ...string) matcher.MapFields {
	m := matcher.MapFields{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = append(m[k], matcher.Value{Text: v})
	}
	return m
}

// TestEQLSemantics pairs each operator and function with a record that
// matches and one that does not, as Elasticsearch decides.
func TestEQLSemantics(t *testing.T) {
	cases := []struct {
		query   string
		yes, no matcher.MapFields
	}{
		// == and != are case-sensitive terms; != is not(==): a missing
		// field passes it.
		{`any where user.name == "Root"`, rec("user.name=Root"), rec("user.name=root")},
		{`any where user.name == "Ro*"`, rec("user.name=Ro*"), rec("user.name=Root")},
		{`any where user.name != "root"`, rec("user.name=x"), rec("user.name=root")},
		{`any where user.name != "root"`, rec("event.action=x"), nil},
		{`any where not user.name == "root"`, rec("event.action=x"), rec("user.name=root")},
		// : folds case and takes * and ? as wildcards.
		{`any where user.name : "ro?t"`, rec("user.name=ROOT"), rec("user.name=roooot")},
		{`any where user.name : ("a*", "b*")`, rec("user.name=Bob"), rec("user.name=cid")},
		// like is case-sensitive, like~ folds; a backslash is literal.
		{`any where user.name like "AK*"`, rec("user.name=AKIA"), rec("user.name=akia")},
		{`any where user.name like~ "AK*"`, rec("user.name=akia"), rec("user.name=ASIA")},
		{`any where user.name like "a\\b*"`, rec(`user.name=a\bc`), rec("user.name=abc")},
		// regex is a Lucene regexp over the whole value; regex~ folds.
		{`any where user.name regex "r[o]+t"`, rec("user.name=root"), rec("user.name=rooted")},
		{`any where user.name regex~ "R[O]+T"`, rec("user.name=root"), rec("user.name=rt")},
		// in is case-sensitive, in~ folds, not in negates.
		{`any where event.action in ("A", "B")`, rec("event.action=B"), rec("event.action=b")},
		{`any where event.action in~ ("A", "B")`, rec("event.action=b"), rec("event.action=c")},
		{`any where event.action not in ("A", "B")`, rec("event.action=C"), rec("event.action=A")},
		// Multi-valued fields match when any value does.
		{`any where related.user == "bob"`, rec("related.user=al", "related.user=bob"), rec("related.user=al")},
		// Ranges on keywords compare bytes; on long fields numbers.
		{`any where user.name > "m"`, rec("user.name=zed"), rec("user.name=al")},
		{`any where source.port >= 1024`, rec("source.port=8080"), rec("source.port=22")},
		// null: == null is a missing field.
		{`any where user.name == null`, rec("event.action=x"), rec("user.name=x")},
		{`any where user.name != null`, rec("user.name=x"), rec("event.action=x")},
		// Categories compare event.category exactly.
		{`iam where true`, rec("event.category=iam"), rec("event.category=IAM")},
		// stringContains is *c* with the constant's wildcards live and
		// backslash escapes; ~ folds.
		{`any where stringContains(aws.cloudtrail.request_parameters, "add=")`, rec("aws.cloudtrail.request_parameters={add=[{x}]}"), rec("aws.cloudtrail.request_parameters={remove=x}")},
		{`any where stringContains(aws.cloudtrail.request_parameters, "valuesToAdd=[*]")`, rec("aws.cloudtrail.request_parameters={valuesToAdd=[123456789012]}"), rec("aws.cloudtrail.request_parameters={valuesToAdd=}")},
		{`any where stringContains(aws.cloudtrail.request_parameters, "Principal=\\*")`, rec("aws.cloudtrail.request_parameters={Principal=*}"), rec("aws.cloudtrail.request_parameters={Principal=arn}")},
		{`any where stringContains~(user_agent.original, "KALI")`, rec("user_agent.original=x distrib#kali"), rec("user_agent.original=ubuntu")},
		{`any where not stringContains(aws.cloudtrail.request_parameters, "LoggingEnabled")`, rec("event.action=x"), rec("aws.cloudtrail.request_parameters={LoggingEnabled={}}")},
		// startsWith and endsWith take the literal (no wildcards).
		{`any where startsWith(user.id, "AIDA*")`, rec("user.id=AIDA*x"), rec("user.id=AIDAx")},
		{`any where endsWith~(user.id, ":I-1")`, rec("user.id=AROA:i-1"), rec("user.id=AROA:i-2")},
		{`any where wildcard(user.id, "a*", "b?")`, rec("user.id=bc"), rec("user.id=bcd")},
		{`any where cidrMatch(source.ip, "10.0.0.0/8", "192.168.0.0/16")`, rec("source.ip=10.1.2.3"), rec("source.ip=11.1.2.3")},
		// Field-to-field stringContains: a script over every pair; a
		// missing second field fails the search (no match either way).
		{`any where stringContains(aws.cloudtrail.request_parameters, cloud.account.id)`, rec("aws.cloudtrail.request_parameters={AWS=111}", "cloud.account.id=111"), rec("aws.cloudtrail.request_parameters={AWS=222}", "cloud.account.id=111")},
		{`any where not stringContains(aws.cloudtrail.request_parameters, cloud.account.id)`, rec("aws.cloudtrail.request_parameters={AWS=222}", "cloud.account.id=111"), rec("aws.cloudtrail.request_parameters={AWS=222}")},
		{`any where not stringContains(aws.cloudtrail.request_parameters, cloud.account.id)`, rec("cloud.account.id=111"), nil},
		// Functions' values, compared: scripts.
		{`any where length(user.name) > 3`, rec("user.name=alice"), rec("user.name=bob")},
		{`any where length(user.name) == 2`, rec("user.name=é€"), rec("user.name=abc")},
		{`any where between(user.id, "AR", ":") == "OA"`, rec("user.id=AROA:s"), rec("user.id=AIDA:s")},
		// Case folds ASCII letters alone, as Lucene's case-insensitive term
		// and wildcard queries: ſ (long s) is no s, the Kelvin sign no k.
		{`any where user_agent.original : "*ansible*"`, rec("user_agent.original=AnSiBle/2.9"), rec("user_agent.original=anſible/2.9")},
		{`any where user.name in~ ("kelvin")`, rec("user.name=KELVIN"), rec("user.name=Kelvin")},
		{`any where user.name like~ "k*"`, rec("user.name=Kate"), rec("user.name=Kate")},
		// Positions of the lowercased text cut the original, in UTF-16 units
		// as in Java (Ⱥ is 2 bytes, its lowercase 3: cut by bytes, it
		// panicked); an empty bound gives the whole text back.
		{`any where between~(user.id, "A", "B") == "zz"`, rec("user.id=xAzzb"), rec("user.id=ȺȺȺȺȺȺab")},
		{`any where between(user.id, "", "x") == "abc"`, rec("user.id=abc"), rec("user.id=abd")},
		{`any where between(user.id, "a", "c", true) == "bcb"`, rec("user.id=abcbc"), rec("user.id=abc")},
		{`any where indexOf(user.name, "b") == 1`, rec("user.name=abb"), rec("user.name=bab")},
		{`any where indexOf~(user.name, "B", 2) == 2`, rec("user.name=abb"), rec("user.name=ab")},
		{`any where substring(user.name, -3) == "ice"`, rec("user.name=alice"), rec("user.name=bob")},
		{`any where substring(user.name, 1, 3) == "li"`, rec("user.name=alice"), rec("user.name=bob")},
		{`any where number(user.name) + 1 == 43`, rec("user.name=42"), rec("user.name=x")},
		{`any where number(user.name, 16) == 255`, rec("user.name=0xff"), rec("user.name=ff1")},
		{`any where string(source.port) == "22"`, rec("source.port=22"), rec("source.port=23")},
		{`any where add(source.port, 1) == 23 and subtract(source.port, 2) == 20`, rec("source.port=22"), rec("source.port=21")},
		{`any where multiply(source.port, 2) == 44 and divide(source.port, 4) == 5 and modulo(source.port, 4) == 2`, rec("source.port=22"), rec("source.port=23")},
		{`any where source.port * 2 - 4 == 40`, rec("source.port=22"), rec("source.port=20")},
		{`any where concat(user.name, "@", cloud.account.id) == "bob@1"`, rec("user.name=bob", "cloud.account.id=1"), rec("user.name=bob")},
		{`any where concat(user.name, "x") : "BOB*"`, rec("user.name=bob"), rec("user.name=al")},
		{`any where concat(user.name, "::", 1.0, "::", true) == "x::1.0::true"`, rec("user.name=x"), rec("user.name=y")},
		{`any where length(related.user) == 3`, rec("related.user=al", "related.user=bob"), rec("related.user=al")},
	}
	for _, tc := range cases {
		c, err := Compile(cloudtrail.NewSchema(), tc.query, "")
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if !c.Query.Match(tc.yes) {
			t.Errorf("%s: does not match %v", tc.query, tc.yes)
		}
		if tc.no != nil && c.Query.Match(tc.no) {
			t.Errorf("%s: matches %v", tc.query, tc.no)
		}
	}
}

func TestEQLCategoryOverrideAndPins(t *testing.T) {
	c, err := Compile(cloudtrail.NewSchema(), `info where event.provider == "s3.amazonaws.com" and event.action in ("PutBucketPolicy", "DeleteBucketPolicy")`, "event.type")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Query.Match(rec("event.type=info", "event.provider=s3.amazonaws.com", "event.action=PutBucketPolicy")) ||
		c.Query.Match(rec("event.category=info", "event.provider=s3.amazonaws.com", "event.action=PutBucketPolicy")) {
		t.Error("info where compares event_category_override (event.type), not event.category")
	}
	pins, pinned := c.Query.Pins()
	if !pinned || len(pins) != 2 || pins[0].Provider != "s3.amazonaws.com" {
		t.Errorf("pins %v %v: an EQL rule pins its provider and actions", pins, pinned)
	}
}

func TestEQLCompileErrors(t *testing.T) {
	for _, tc := range []struct{ query, pos, msg string }{
		{`any where user.name == cloud.account.id`, "1:21", "another field"},
		{`any where nosuch(user.name)`, "1:11", "unknown function nosuch"},
		{`any where length(user.name, 2) > 1`, "1:11", "length takes 1 arguments"},
		{`any where length(user.name)`, "1:11", "does not return a condition"},
		{`any where source.ip == "x"`, "1:21", "not an IP address"},
		{`any where user.name regex "a~b"`, "1:27", "optional operators"},
		{`any where user.name == "a" | head 1`, "1:28", "head pipe"},
		{"any where\n  user.name like 1 + 1", "2:3", "user.name like 1 + 1 is not a condition"},
		// A missing event: without maxspan the parser refuses it, as
		// Elasticsearch does; with maxspan trailwatch does not run it.
		{`sequence [any where true] ![any where true]`, "1:27", "a sequence with a missing event (![...]) needs with maxspan"},
		{"sequence with maxspan=5m\n  [any where true]\n  ![any where true]", "3:3", "a missing event (![...]) is not run at the edge"},
	} {
		_, err := Compile(cloudtrail.NewSchema(), tc.query, "")
		var se *matcher.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a placed error", tc.query, err)
			continue
		}
		if se.Pos.String() != tc.pos || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%q: %v, want %s: ...%s...", tc.query, err, tc.pos, tc.msg)
		}
	}
}

func TestEQLSequenceCompiles(t *testing.T) {
	c, err := Compile(cloudtrail.NewSchema(), `sequence by user.id with maxspan=15m
	  [any where event.action == "ListFoundationModels"] by source.ip
	  [any where event.action : ("InvokeModel", "Converse")] by source.ip
	  until [any where event.action == "DeleteAccessKey"] by source.ip`, "")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sequence
	if s == nil || len(s.Stages) != 2 || s.Until == nil || s.MaxSpan.Minutes() != 15 {
		t.Fatalf("sequence %+v", s)
	}
	if len(s.Stages[0].Keys) != 2 || s.Stages[0].Keys[0].Name != "user.id" || s.Stages[1].Keys[1].Name != "source.ip" {
		t.Errorf("keys %v", s.Stages[0].Keys)
	}
	// The rule's candidate query is any of its stages.
	if !c.Query.Match(rec("event.action=converse")) || !c.Query.Match(rec("event.action=DeleteAccessKey")) || c.Query.Match(rec("event.action=x")) {
		t.Error("the candidate query is not the stages' disjunction")
	}
	if !s.Stages[1].Query.Match(rec("event.action=CONVERSE")) || s.Stages[0].Query.Match(rec("event.action=listfoundationmodels")) {
		t.Error("stage queries")
	}
}
