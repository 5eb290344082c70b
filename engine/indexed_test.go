package engine

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
)

// queryRule writes a query rule and loads it.
func queryRule(t *testing.T, query string) *conf.RuleSet {
	t.Helper()
	src := `[rule]
name = "q"
rule_id = "q-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
query = '''` + query + `'''
`
	p := filepath.Join(t.TempDir(), "q.toml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), p)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestAlertsOnlyOnWhatElasticIndexes: a record whose document Elasticsearch
// refuses (readOnly "True" in a boolean field) makes no alert and is
// counted with the reason; a record on which the pipeline fails (userAgent
// not a string) alerts only if the rule matches the error document it
// leaves; the same records, well formed, alert.
func TestAlertsOnlyOnWhatElasticIndexes(t *testing.T) {
	const base = `{"eventVersion":"1.09","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"%ID%",
		"eventTime":"2026-11-20T10:00:00Z","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7",
		"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice","userName":"alice"},%X%}`
	record := func(id, extra string) Record {
		n, err := doc.ParseJSON([]byte(strings.NewReplacer("%ID%", id, "%X%", extra).Replace(base)))
		if err != nil {
			t.Fatal(err)
		}
		return Record{Node: n, Where: id}
	}
	cases := []struct {
		name, query, extra string
		alerts             int
		skipped            string
	}{
		{"indexed", `event.action: ListBuckets`, `"readOnly":true,"userAgent":"aws-cli/2.15.30"`, 1, ""},
		{"refused", `event.action: ListBuckets`, `"readOnly":"True"`, 0,
			"refused by Elasticsearch: a string that is not a boolean in the boolean field aws.cloudtrail.read_only"},
		// The error document keeps what came before the user_agent
		// processor: event.action, but not event.category.
		{"failed, still matching", `event.action: ListBuckets`, `"userAgent":{"name":"sdk"}`, 1, ""},
		{"failed, no longer matching", `event.category: file`, `"userAgent":{"name":"sdk"}`, 0,
			"no alert: the ingest pipeline fails on the record, and the rule does not match its error document"},
		{"well formed, matching", `event.category: file`, `"userAgent":"aws-cli/2.15.30"`, 1, ""},
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _ := newEngine(t, queryRule(t, c.query), Options{Now: func() time.Time { return now }})
			res, err := e.ProcessBatch([]Record{record(string(rune('a'+i)), c.extra)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Alerts) != c.alerts {
				t.Errorf("%d alerts, want %d", len(res.Alerts), c.alerts)
			}
			if c.skipped != "" && res.Stats.Skipped[c.skipped] != 1 {
				t.Errorf("skipped %v, want %q once", res.Stats.Skipped, c.skipped)
			}
			if c.skipped == "" && len(res.Stats.Skipped) != 0 {
				t.Errorf("skipped %v", res.Stats.Skipped)
			}
			if c.alerts == 1 && strings.HasPrefix(c.name, "failed") {
				d := res.Alerts[0].Doc()
				if d["kibana.alert.original_event.kind"] != "pipeline_error" {
					t.Errorf("the alert's event kind %v, want pipeline_error", d["kibana.alert.original_event.kind"])
				}
			}
		})
	}
}

// TestRoleAssumptionByServiceOnLowerCaseARN: Elastic's "AWS STS Role
// Assumption by Service" (new_terms on invoked_by and
// aws.cloudtrail.resources.arn) alerts on an AssumeRole by Lambda whose
// resources carry a lower-case "arn" key, as the integration keeps it.
func TestRoleAssumptionByServiceOnLowerCaseARN(t *testing.T) {
	p := filepath.Join("..", "..", "shared", "detection-rules", "aws", "privilege_escalation_role_assumption_by_service.toml")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("needs Elastic's rule at %s (../shared): %v", p, err)
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), p)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "ingest", "resources_lower_case_arn.json"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := doc.ParseJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e, _ := newEngine(t, rs, Options{Now: func() time.Time { return now }})
	res, err := e.ProcessBatch([]Record{{Node: n, Where: "resources_lower_case_arn"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(res.Alerts))
	}
	terms := res.Alerts[0].Doc()["kibana.alert.new_terms"]
	if want := []string{"lambda.amazonaws.com", "arn:aws:iam::111122223333:role/lambda-exec"}; !reflect.DeepEqual(terms, want) {
		t.Errorf("new terms %v, want %v", terms, want)
	}
}
