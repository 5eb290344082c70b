package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/matcher"
)

// panicky is an enricher with a defect one address brings out.
type panicky struct{}

func (panicky) Lookup(ip netip.Addr) map[string]matcher.Value {
	if ip == netip.MustParseAddr("203.0.113.66") {
		var m map[string]matcher.Value
		m["x"] = matcher.Value{} // a nil map: a panic
	}
	return map[string]matcher.Value{"source.as.organization.name": {Text: "Example", Kind: matcher.KindString}}
}

// TestEvaluationPanicIsTheRecordsAlone: a panic while a rule judges a
// record (a defect some record brings out: EQL's between~ on a text whose
// lowercase is longer was one) stopped scan and serve, and made Fluent
// Bit drop the chunk. The record is counted as skipped with what failed,
// its alerts dropped; the batch's other records alert and commit.
func TestEvaluationPanicIsTheRecordsAlone(t *testing.T) {
	rs := ruleSet(t, `[rule]
name = "org"
rule_id = "org-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
query = 'event.provider: signin.amazonaws.com and source.as.organization.name: Example'
`)
	e, _ := newEngine(t, rs, Options{Enricher: panicky{}})
	recs := append(logins(t, 2, at("10:00:00"), "111", "192.0.2.1", "root"), logins(t, 1, at("10:00:05"), "111", "203.0.113.66", "root")...)
	recs = append(recs, logins(t, 2, at("10:00:10"), "111", "192.0.2.2", "root")...)
	res, err := e.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 4 || res.Stats.Skipped[SkipEvalFailed] != 1 || !strings.Contains(res.Stats.EvalFailure, "nil map") {
		t.Fatalf("%d alerts, skipped %v, failure %q", len(res.Alerts), res.Stats.Skipped, res.Stats.EvalFailure)
	}
}
