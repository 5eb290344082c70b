package engine

import (
	"testing"
	"time"

	jsoniter "github.com/json-iterator/go"

	"github.com/trailwatch/trailwatch/conf"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// TestAlertShapeAsKibana: what Kibana writes on every alert and what a
// rule maps from its event, which were missing or ignored:
// building_block_type (seven of Elastic's AWS rules are building blocks:
// their alerts went out unmarked, as ordinary alerts), severity_mapping,
// risk_score_mapping and rule_name_override (ignored without a word), and
// the reason in Kibana's own words (reason_formatters.ts).
func TestAlertShapeAsKibana(t *testing.T) {
	rs := ruleSet(t, `[rule]
name = "Custom IAM change"
rule_id = "custom-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
building_block_type = "default"
references = ["https://example.com/a"]
author = ["Example"]
license = "Elastic License v2"
false_positives = ["admins"]
rule_name_override = "event.action"
severity_mapping = [
  {field = "user.name", operator = "equals", value = "alice", severity = "critical"},
  {field = "user.name", operator = "equals", value = "alice", severity = "high"},
]
risk_score_mapping = [{field = "aws.cloudtrail.request_parameters", operator = "equals", value = ""}]
query = 'event.provider: "iam.amazonaws.com"'
`)
	e, _ := newEngine(t, rs, Options{})
	mk := func(user, params string) Record {
		n, err := doc.ParseJSON([]byte(`{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventID":"` + user + `","eventTime":"2026-11-20T10:00:00Z",
			"sourceIPAddress":"203.0.113.10","userIdentity":{"type":"IAMUser","userName":"` + user + `","arn":"arn:aws:iam::1:user/` + user + `","accountId":"1"},
			"requestParameters":` + params + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return Record{Node: n}
	}
	res, err := e.ProcessBatch([]Record{mk("alice", `{"userName":"x"}`), mk("bob", `{"userName":"y"}`)})
	if err != nil || len(res.Alerts) != 2 {
		t.Fatalf("%d alerts, %v", len(res.Alerts), err)
	}
	byUser := map[string]map[string]any{}
	for _, a := range res.Alerts {
		d := a.Doc()
		byUser[d["user"].(map[string]any)["name"].(string)] = d
	}
	alice, bob := byUser["alice"], byUser["bob"]
	for name, d := range byUser {
		if d["kibana.alert.building_block_type"] != "default" {
			t.Errorf("%s: building_block_type %v", name, d["kibana.alert.building_block_type"])
		}
		if d["kibana.alert.rule.name"] != "CreateUser" {
			t.Errorf("%s: rule.name %v, want the event.action it maps", name, d["kibana.alert.rule.name"])
		}
		if d["kibana.alert.rule.license"] != "Elastic License v2" || len(d["kibana.alert.rule.references"].([]string)) != 1 ||
			d["kibana.alert.rule.to"] != "now" || len(d["kibana.space_ids"].([]string)) != 1 {
			t.Errorf("%s: rule fields %v %v %v %v", name, d["kibana.alert.rule.license"], d["kibana.alert.rule.references"], d["kibana.alert.rule.to"], d["kibana.space_ids"])
		}
	}
	// The highest severity whose value matches; the rule's own otherwise.
	if alice["kibana.alert.severity"] != "critical" || bob["kibana.alert.severity"] != "low" {
		t.Errorf("severity: alice %v, bob %v", alice["kibana.alert.severity"], bob["kibana.alert.severity"])
	}
	// The flattened request parameters are no number: the rule's own score.
	if bob["kibana.alert.risk_score"] != 21 {
		t.Errorf("risk score %v", bob["kibana.alert.risk_score"])
	}
	want := "iam event with source 203.0.113.10 by alice created critical alert CreateUser."
	if alice["kibana.alert.reason"] != want {
		t.Errorf("reason %q\nwant   %q", alice["kibana.alert.reason"], want)
	}
}

// TestReasonAsKibana holds reasonPrefixOf to Kibana's template on the
// documents of each kind of alert.
func TestReasonAsKibana(t *testing.T) {
	for _, c := range []struct {
		doc  map[string]any
		want string
	}{
		{map[string]any{}, "event"},
		{map[string]any{"event": map[string]any{"category": []any{"iam", "configuration"}}, "user": map[string]any{"name": "alice"}}, "iam, configuration event by alice"},
		{map[string]any{"source": map[string]any{"ip": "192.0.2.1", "port": int64(443)}, "host": map[string]any{"name": "h"}}, "event with source 192.0.2.1 on h"},
		{map[string]any{"source.ip": []any{"192.0.2.1", "192.0.2.2"}, "destination": map[string]any{"ip": "-"}}, "event with source 192.0.2.1, 192.0.2.2"},
		{map[string]any{"file": map[string]any{"name": "a.txt"}, "process": map[string]any{"name": "sh", "parent": map[string]any{"name": "init"}}}, "event with process sh, parent process init, file a.txt,"},
		{map[string]any{"user": map[string]any{"name": ""}, "cloud": map[string]any{"account": map[string]any{"id": "1"}}}, "event"},
	} {
		if got := reasonPrefixOf(c.doc); got != c.want {
			t.Errorf("%v: %q, want %q", c.doc, got, c.want)
		}
	}
}

// TestRiskScoreMapping: the largest number from 0 to 100 the first
// mapping's field holds (numbers, or text JavaScript's Number reads).
func TestRiskScoreMapping(t *testing.T) {
	r := &conf.Rule{Severity: "low", RiskScore: 21, RiskScoreMapping: []conf.RiskScoreMapping{{Field: "x.score", Operator: "equals"}}}
	for _, c := range []struct {
		v    any
		want float64
		set  bool
	}{
		{[]any{"12", jsoniter.Number("57.5"), "200", "abc"}, 57.5, true},
		{" 40 ", 40, true},
		{jsoniter.Number("101"), 21, false},
		{true, 21, false},
		{nil, 21, false},
	} {
		o := overridesOf(r, map[string]any{"x": map[string]any{"score": c.v}})
		if o.riskScore != c.want || o.riskSet != c.set {
			t.Errorf("%v: %v %v, want %v %v", c.v, o.riskScore, o.riskSet, c.want, c.set)
		}
	}
}

// TestSuppressionFieldsInResult: a suppression group's first alert went
// to the outbox with kibana.alert.suppression.*, but the documents a
// batch returns (what scan prints) lacked them.
func TestSuppressionFieldsInResult(t *testing.T) {
	rs := ruleSet(t, `[rule]
name = "Suppressed"
rule_id = "supp-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
query = 'event.provider: "bedrock.amazonaws.com"'
[rule.alert_suppression]
group_by = ["aws.cloudtrail.user_identity.arn"]
missing_fields_strategy = "suppress"
[rule.alert_suppression.duration]
value = 1
unit = "h"
`)
	e, _ := newEngine(t, rs, Options{})
	res, err := e.ProcessBatch([]Record{rec(t, "2026-11-20T10:00:00Z", []string{"arn:a"}, ""), rec(t, "2026-11-20T10:00:01Z", []string{"arn:a"}, "")})
	if err != nil || len(res.Docs) != 1 || res.Stats.Suppressed != 1 {
		t.Fatalf("%d documents, %d suppressed, %v", len(res.Docs), res.Stats.Suppressed, err)
	}
	var d map[string]any
	if err := jsoniter.Unmarshal(res.Docs[0], &d); err != nil {
		t.Fatal(err)
	}
	if _, ok := d["kibana.alert.suppression.terms"]; !ok {
		t.Errorf("the group's first alert lacks kibana.alert.suppression.terms: %s", res.Docs[0])
	}
}

// TestSequenceAlertsAsKibana: the shell kept a field only when every
// event had the same value (Kibana intersects arrays: related.user of
// [bob, X, alice] and [carol, X, alice] share [X, alice]), had depth 1
// (its parents are the building blocks: 2), and the building blocks were
// stamped with their event's time instead of when they were made, and
// lacked kibana.alert.original_event.*.
func TestSequenceAlertsAsKibana(t *testing.T) {
	c := &clock{t: at("12:00:00")}
	e, _ := newEngine(t, seqRules(t, abSeq), Options{BuildingBlocks: true, Now: c.now})
	mk := func(id, action, users string) Record {
		n, err := doc.ParseJSON([]byte(`{"eventSource":"iam.amazonaws.com","eventName":"` + action + `","eventTime":"` + at("10:00:00").Format(time.RFC3339) + `","eventID":"` + id + `",
			"userIdentity":{"type":"IAMUser","principalId":"P1"},"sourceIPAddress":"192.0.2.1","requestParameters":{"userName":"` + users + `"}}`))
		if err != nil {
			t.Fatal(err)
		}
		return Record{Node: n}
	}
	res, err := e.ProcessBatch([]Record{mk("e1", "A", "bob"), mk("e2", "B", "carol")})
	if err != nil || len(res.Alerts) != 3 {
		t.Fatalf("%d alerts, %v", len(res.Alerts), err)
	}
	shell := res.Alerts[0].Doc()
	if shell["kibana.alert.depth"] != 2 {
		t.Errorf("shell depth %v", shell["kibana.alert.depth"])
	}
	related, _ := shell["related"].(map[string]any)
	users, _ := related["user"].([]any)
	if len(users) != 1 || users[0] != "P1" {
		t.Errorf("shell related.user %v, want the value both events hold", related["user"])
	}
	if shell["kibana.alert.original_event.provider"] != "iam.amazonaws.com" {
		t.Errorf("shell original_event.provider %v", shell["kibana.alert.original_event.provider"])
	}
	for _, a := range res.Alerts[1:] {
		d := a.Doc()
		if d["@timestamp"] != c.t.UTC().Format(alertTime) {
			t.Errorf("building block @timestamp %v, want when it was made", d["@timestamp"])
		}
		if d["kibana.alert.original_event.action"] == nil || d["kibana.alert.original_time"] != at("10:00:00").UTC().Format(alertTime) {
			t.Errorf("building block: original_event.action %v, original_time %v", d["kibana.alert.original_event.action"], d["kibana.alert.original_time"])
		}
	}
}
