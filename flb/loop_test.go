package flb

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// TestAlertsRoutedBackAreNoEvents: an alert holds its event's ECS fields,
// so an alert re-routed into the agent under alert_tag and taken by this
// output again (a Match that covers the tag) matched its rule again, round
// after round (only the alert id kept a second alert out, for 24 hours).
// An alert is passed over as not CloudTrail.
func TestAlertsRoutedBackAreNoEvents(t *testing.T) {
	dir := t.TempDir()
	p := map[string]string{"rules": "../conf/rules", "db": filepath.Join(dir, "state.db"),
		"alert_file": filepath.Join(dir, "alerts.ndjson"), "exit_timeout": "5s"}
	var logs bytes.Buffer
	in, err := Open("trailwatch.0", props(p), &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	res, err := Process(in, "cloudtrail", v2(eventTime(time.Now()), body("PutFoundationModelEntitlement", "arn:aws:iam::1:user/a", false)))
	if err != nil || len(res.Docs) != 1 {
		t.Fatalf("%d alerts, %v", len(res.Docs), err)
	}
	var alert map[string]any
	if err := json.Unmarshal(res.Docs[0], &alert); err != nil {
		t.Fatal(err)
	}
	rec, err := msgp.AppendIntf(nil, alert)
	if err != nil {
		t.Fatal(err)
	}
	res, err = Process(in, "trailwatch.alert", v2(eventTime(time.Now()), rec))
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Stats.Matches; len(m) != 0 || len(res.Docs) != 0 || res.Stats.Skipped["not CloudTrail"] != 1 {
		t.Errorf("the alert given back: matches %v, %d alerts, skipped %v; want it passed over as not CloudTrail", m, len(res.Docs), res.Stats.Skipped)
	}
}
