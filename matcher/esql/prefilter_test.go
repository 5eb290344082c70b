package esql

import (
	"reflect"
	"testing"

	"github.com/trailwatch/trailwatch/matcher"
)

// TestPrefilter: the WHEREs before STATS that test keyword fields for
// equality with literals become the prefilter (and the candidate index's
// pins); what cannot be expressed is left out, so the prefilter holds for
// every record that gives a row.
func TestPrefilter(t *testing.T) {
	cases := []struct {
		q      string
		pinned bool
		pins   []matcher.Pin
	}{
		{`FROM x | WHERE event.provider == "iam.amazonaws.com" AND event.action IN ("CreateUser", "DeleteUser")`, true,
			[]matcher.Pin{{Provider: "iam.amazonaws.com", Action: "CreateUser"}, {Provider: "iam.amazonaws.com", Action: "DeleteUser"}}},
		{`FROM x | WHERE "sts.amazonaws.com" == event.provider`, true, []matcher.Pin{{Provider: "sts.amazonaws.com"}}},
		{`FROM x | WHERE event.action == "A" OR event.action == "B"`, true, []matcher.Pin{{Action: "A"}, {Action: "B"}}},
		{`FROM x | WHERE event.action == "A" OR user.name == "B"`, false, nil},
		{`FROM x | WHERE event.action LIKE "Invoke*"`, false, nil},
		{`FROM x | WHERE NOT event.action == "A"`, false, nil},
		{`FROM x | WHERE event.action != "A"`, false, nil},
		{`FROM x | EVAL event.action = "A" | WHERE event.action == "A"`, false, nil},
		{`FROM x | RENAME user.name AS event.action | WHERE event.action == "A"`, false, nil},
		{`FROM x | WHERE event.provider == "s3.amazonaws.com" | STATS c = COUNT(*) BY user.name | WHERE user.name == "A"`, true, []matcher.Pin{{Provider: "s3.amazonaws.com"}}},
		{`FROM x | WHERE false`, true, []matcher.Pin{}},
	}
	for _, c := range cases {
		p := mustCompile(t, c.q)
		pins, ok := p.Prefilter().Pins()
		if ok != c.pinned || c.pinned && !reflect.DeepEqual(pins, c.pins) {
			t.Errorf("%s: pins %v %v, want %v %v", c.q, pins, ok, c.pins, c.pinned)
		}
	}

	// Multi-vendor branches drop out once the data stream is known.
	q := `FROM logs-* | WHERE (data_stream.dataset == "aws.cloudtrail" AND event.action == "GetSecretValue") OR
		(data_stream.dataset == "azure.platformlogs" AND event.action IN ("SecretGet", "KeyGet")) OR
		(data_stream.dataset == "kubernetes.audit_logs" AND kubernetes.audit.verb IN ("get", "list"))`
	p := mustCompile(t, q)
	if _, ok := p.Prefilter().Pins(); ok {
		t.Error("pinned without knowing the data stream")
	}
	pf := p.PrefilterAssuming(map[string]string{"data_stream.dataset": "aws.cloudtrail"})
	if pins, ok := pf.Pins(); !ok || !reflect.DeepEqual(pins, []matcher.Pin{{Action: "GetSecretValue"}}) {
		t.Errorf("assuming aws.cloudtrail: pins %v %v", pins, ok)
	}
	yes := rec("data_stream.dataset", "aws.cloudtrail", "event.action", "GetSecretValue")
	if !pf.Match(yes) || !p.Prefilter().Match(yes) {
		t.Error("prefilter refuses a record that gives a row")
	}
	if _, ok := p.Eval(yes, testNow); !ok {
		t.Error("no row")
	}
	if pf.Match(rec("data_stream.dataset", "aws.cloudtrail", "event.action", "SecretGet")) {
		t.Error("prefilter takes an Azure action on a CloudTrail record")
	}
}
