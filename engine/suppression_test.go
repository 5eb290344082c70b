package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	jsoniter "github.com/json-iterator/go"

	"github.com/trailwatch/trailwatch/store"
)

// suppressRule is a query rule suppressed by the user's ARN for an hour,
// max_signals %d a 5 minute interval; %s adds to [rule.alert_suppression].
const suppressRule = `[rule]
name = "Suppressed"
rule_id = "supp-2"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
interval = "5m"
max_signals = %d
query = 'event.provider: "bedrock.amazonaws.com"'
[rule.alert_suppression]
group_by = ["aws.cloudtrail.user_identity.arn"]
%s
[rule.alert_suppression.duration]
value = 1
unit = "h"
`

func outboxDocs(t *testing.T, st *store.Store) []map[string]any {
	t.Helper()
	p, err := st.Pending(1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, x := range p {
		var d map[string]any
		if err := jsoniter.Unmarshal(x.Alert, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func termsOf(d map[string]any) string {
	b, _ := json.Marshal(d["kibana.alert.suppression.terms"]) // keys sorted
	return string(b)
}

// A group's first alert that max_signals held back opened the group: the
// group's alerts in the next intervals were swallowed into an alert that
// was never sent. Kibana truncates new alerts to max_signals before any is
// written, so the next execution alerts.
func TestCappedAlertOpensNoGroup(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 20, 10, 0, 10, 0, time.UTC)}
	e, _ := newEngine(t, ruleSet(t, fmt.Sprintf(suppressRule, 1, "")), Options{Now: c.now})
	r1, err := e.ProcessBatch([]Record{rec(t, "2026-11-20T10:00:00Z", []string{"arn:a"}, ""), rec(t, "2026-11-20T10:00:01Z", []string{"arn:b"}, "")})
	if err != nil || len(r1.Alerts) != 1 || r1.Stats.Capped != 1 {
		t.Fatalf("first batch: %d alerts, %d capped, %v", len(r1.Alerts), r1.Stats.Capped, err)
	}
	c.t = c.t.Add(6 * time.Minute) // the next max_signals interval
	r2, err := e.ProcessBatch([]Record{rec(t, "2026-11-20T10:06:00Z", []string{"arn:b"}, "")})
	if err != nil || len(r2.Alerts) != 1 || r2.Stats.Suppressed != 0 {
		t.Fatalf("arn:b in the next interval: %d alerts, %d suppressed (want its alert), %v", len(r2.Alerts), r2.Stats.Suppressed, err)
	}
	c.t = c.t.Add(20 * time.Minute)
	r3, _ := e.ProcessBatch([]Record{rec(t, "2026-11-20T10:26:00Z", []string{"arn:b"}, "")})
	if len(r3.Alerts) != 0 || r3.Stats.Suppressed != 1 {
		t.Errorf("arn:b again: %d alerts, %d suppressed: want it suppressed into the alert sent", len(r3.Alerts), r3.Stats.Suppressed)
	}
}

// A group whose window had closed with no sweep since (a stop longer than
// the window, scan) was overwritten by the next alert: the count of the
// alerts suppressed into it never went out.
func TestClosedGroupFinalCountNotLost(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 20, 10, 0, 10, 0, time.UTC)}
	e, st := newEngine(t, ruleSet(t, fmt.Sprintf(suppressRule, 100, "")), Options{Now: c.now})
	e.ProcessBatch([]Record{rec(t, "2026-11-20T10:00:00Z", []string{"arn:a"}, "")})
	c.t = c.t.Add(10 * time.Minute)
	e.ProcessBatch([]Record{rec(t, "2026-11-20T10:10:00Z", []string{"arn:a"}, ""), rec(t, "2026-11-20T10:10:01Z", []string{"arn:a"}, "")})
	c.t = c.t.Add(70 * time.Minute) // past the hour, no sweep ran
	r3, err := e.ProcessBatch([]Record{rec(t, "2026-11-20T11:20:00Z", []string{"arn:a"}, "")})
	if err != nil || len(r3.Alerts) != 1 {
		t.Fatalf("after the window: %d alerts, %v", len(r3.Alerts), err)
	}
	var counts []any
	for _, d := range outboxDocs(t, st) {
		counts = append(counts, d["kibana.alert.suppression.docs_count"])
	}
	// The first alert (0), its final count (2) written before the new
	// group's alert (0).
	if fmt.Sprint(counts) != "[0 2 0]" {
		t.Errorf("outbox docs_counts %v, want [0 2 0]", counts)
	}
}

// Kibana reads the suppression terms of a record's alert from the event's
// fields: an array, sorted, for each field present; null for one missing.
// Values that join with a separator made one group of different values.
func TestSuppressionTermsAndKeys(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 20, 10, 0, 10, 0, time.UTC)}
	e, _ := newEngine(t, ruleSet(t, fmt.Sprintf(suppressRule, 100, "")), Options{Now: c.now})
	res, err := e.ProcessBatch([]Record{
		rec(t, "2026-11-20T10:00:00Z", []string{"arn:b", "arn:a"}, ""),
		rec(t, "2026-11-20T10:00:01Z", []string{`arn:a\u001farn:b`}, ""),
		rec(t, "2026-11-20T10:00:02Z", []string{"arn:c"}, ""),
	})
	if err != nil || len(res.Docs) != 3 {
		t.Fatalf("%d alerts (want 3: different values are different groups), %v", len(res.Docs), err)
	}
	var d0, d2 map[string]any
	jsoniter.Unmarshal(res.Docs[0], &d0)
	jsoniter.Unmarshal(res.Docs[2], &d2)
	if got := termsOf(d0); got != `[{"field":"aws.cloudtrail.user_identity.arn","value":["arn:a","arn:b"]}]` {
		t.Errorf("multi-valued terms %s", got)
	}
	if got := termsOf(d2); got != `[{"field":"aws.cloudtrail.user_identity.arn","value":["arn:c"]}]` {
		t.Errorf("single-valued terms %s (Kibana: an array)", got)
	}
}

// Suppression start and end are the events' own times (the rule's
// timestamp_override, else @timestamp), not when trailwatch read them; and
// on the event clock the window is judged on the records' times, as
// Kibana judges it on each execution's.
func TestSuppressionOnTheEventClock(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	e, _ := newEngine(t, ruleSet(t, fmt.Sprintf(suppressRule, 100, "")), Options{Now: c.now, TimeSource: EventTime})
	res, err := e.ProcessBatch([]Record{
		rec(t, "2023-01-01T00:00:00Z", []string{"arn:a"}, ""),
		rec(t, "2023-01-01T00:20:00Z", []string{"arn:a"}, ""),
		rec(t, "2023-01-01T03:00:00Z", []string{"arn:a"}, ""),
	})
	if err != nil || len(res.Docs) != 2 || res.Stats.Suppressed != 1 {
		t.Fatalf("%d alerts, %d suppressed (want 2 and 1: 03:00 is past 00:00's hour), %v", len(res.Docs), res.Stats.Suppressed, err)
	}
	var d map[string]any
	jsoniter.Unmarshal(res.Docs[0], &d)
	if s := fmt.Sprint(d["kibana.alert.suppression.start"]); !strings.HasPrefix(s, "2023-01-01T00:00:00") {
		t.Errorf("suppression.start %s, want the event's time", s)
	}
}

// Sequences: the shell alerts are suppressed over the shell's fields, and
// capped by max_signals; building blocks go out only with their shell.
// Suppression switched both off.
func TestSequenceSuppressedAndCapped(t *testing.T) {
	const seq = `[rule]
name = "SeqSupp"
rule_id = "seqsupp-1"
type = "eql"
language = "eql"
severity = "high"
risk_score = 73
interval = "5m"
max_signals = %d
query = '''sequence by user.id with maxspan=15m
  [any where event.action == "A"]
  [any where event.action == "B"]'''
[rule.alert_suppression]
group_by = ["source.ip"]
[rule.alert_suppression.duration]
value = 1
unit = "h"
`
	for _, max := range []int{100, 1} {
		c := &clock{t: at("10:00:30")}
		e, _ := newEngine(t, ruleSet(t, fmt.Sprintf(seq, max)), Options{Now: c.now, BuildingBlocks: true})
		var recs []Record
		for i := range 3 {
			recs = append(recs, call(t, fmt.Sprintf("a%d-%d", max, i), "A", "P1", fmt.Sprintf("10:0%d:00", i)), call(t, fmt.Sprintf("b%d-%d", max, i), "B", "P1", fmt.Sprintf("10:0%d:10", i)))
		}
		res, err := e.ProcessBatch(recs)
		// One shell (and its two building blocks) goes out; the other
		// two sequences share its source.ip and are suppressed into it.
		if err != nil || len(res.Alerts) != 3 || res.Stats.Suppressed != 2 {
			t.Errorf("max_signals %d: %d alerts, %d suppressed, %d capped (want 3, 2, 0), %v", max, len(res.Alerts), res.Stats.Suppressed, res.Stats.Capped, err)
			continue
		}
		var shell map[string]any
		jsoniter.Unmarshal(res.Docs[0], &shell)
		if got := termsOf(shell); got != `[{"field":"source.ip","value":"192.0.2.1"}]` {
			t.Errorf("shell terms %s", got)
		}
	}
}

// An aggregating ES|QL rule with missing_fields_strategy doNotSuppress: a
// row missing a group_by value alerts on its own at each run (Kibana's
// partitionMissingFieldsEvents); with suppress it is suppressed into the
// first.
func TestESQLRowMissingFieldNotSuppressed(t *testing.T) {
	for _, strategy := range []string{"doNotSuppress", "suppress"} {
		src := esqlRule(t, `FROM logs-aws.cloudtrail-*
| WHERE event.provider == "signin.amazonaws.com"
| STATS Esql.count = COUNT(*) BY user.name
| KEEP user.name, Esql.count`) + `interval = "5m"
[rule.alert_suppression]
group_by = ["user.name"]
missing_fields_strategy = "` + strategy + `"
[rule.alert_suppression.duration]
value = 1
unit = "h"
`
		e, _ := newEngine(t, ruleSet(t, src), Options{TimeSource: EventTime})
		alerts, suppressed := 0, 0
		for _, tm := range []string{"10:01:00", "10:21:00", "10:41:00", "11:30:00"} {
			res, err := e.ProcessBatch([]Record{login(t, at(tm), "111", "192.0.2.1", "")})
			if err != nil {
				t.Fatal(err)
			}
			alerts += len(res.Alerts)
			suppressed += res.Stats.Suppressed
		}
		want := 3
		if strategy == "suppress" {
			want = 1
		}
		if alerts != want {
			t.Errorf("%s: %d alerts (%d suppressed), want %d", strategy, alerts, suppressed, want)
		}
	}
}

// On the event clock, max_signals and suppression windows are closed on
// the event clock (the agent sweeps every few seconds): swept on the wall
// clock, every window closed at once, so caps never held and a group
// opened by records 20 minutes old was closed before its next record.
// Out of order, or with suppression set, the cap window held too; a
// record dated 2099 held its group open until then.
func TestEventClockWindows(t *testing.T) {
	wall := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	c := &clock{t: wall}
	sweep := func(e *Engine, st *store.Store) {
		if now, ok := e.ControlClock(c.t); ok {
			if _, err := st.Sweep(now, e.Summarize); err != nil {
				t.Fatal(err)
			}
		}
	}
	ts := func(d time.Duration) string { return wall.Add(d).Format(time.RFC3339) }
	feed := func(e *Engine, st *store.Store, recs ...Record) (alerts, suppressed, capped int) {
		for _, r := range recs {
			res, err := e.ProcessBatch([]Record{r})
			if err != nil {
				t.Fatal(err)
			}
			alerts += len(res.Alerts)
			suppressed += res.Stats.Suppressed
			capped += res.Stats.Capped
			sweep(e, st)
		}
		return
	}
	// Caps: four users in one interval, max_signals 1.
	capRule := strings.Replace(fmt.Sprintf(suppressRule, 1, ""), `[rule.alert_suppression]
group_by = ["aws.cloudtrail.user_identity.arn"]
`, "", 1)
	capRule = capRule[:strings.Index(capRule, "\n[rule.alert_suppression.duration]")]
	e, st := newEngine(t, ruleSet(t, capRule), Options{Now: c.now, TimeSource: EventTime})
	if a, _, capped := feed(e, st, rec(t, ts(-24*time.Minute), []string{"arn:a"}, ""), rec(t, ts(-23*time.Minute), []string{"arn:b"}, ""),
		rec(t, ts(-22*time.Minute), []string{"arn:c"}, ""), rec(t, ts(-21*time.Minute), []string{"arn:d"}, "")); a != 1 || capped != 3 {
		t.Errorf("caps: %d alerts, %d capped, want 1 and 3", a, capped)
	}
	// Suppression with caps, out of order: six users, max_signals 1.
	e, st = newEngine(t, ruleSet(t, fmt.Sprintf(suppressRule, 1, "")), Options{Now: c.now, TimeSource: EventTime})
	var recs []Record
	for i, m := range []int{-56, -61, -57, -62, -58, -63} {
		recs = append(recs, rec(t, ts(time.Duration(m)*time.Minute), []string{fmt.Sprintf("arn:%d", i)}, ""))
	}
	if a, _, capped := feed(e, st, recs...); a > 2 || capped < 4 {
		t.Errorf("out of order with suppression: %d alerts, %d capped: the cap did not hold", a, capped)
	}
	// Suppression by a 10 minute window, records 20 minutes old.
	tenMin := strings.Replace(fmt.Sprintf(suppressRule, 100, ""), "value = 1\nunit = \"h\"", "value = 10\nunit = \"m\"", 1)
	e, st = newEngine(t, ruleSet(t, tenMin), Options{Now: c.now, TimeSource: EventTime})
	if a, s, _ := feed(e, st, rec(t, ts(-20*time.Minute), []string{"arn:a"}, ""), rec(t, ts(-19*time.Minute), []string{"arn:a"}, "")); a != 1 || s != 1 {
		t.Errorf("old records: %d alerts, %d suppressed, want 1 and 1", a, s)
	}
	// A record dated 2099 opens its group no further ahead than the
	// event clock may go: records an hour and more later alert again.
	e, st = newEngine(t, ruleSet(t, fmt.Sprintf(suppressRule, 100, "")), Options{Now: c.now, TimeSource: EventTime})
	feed(e, st, rec(t, "2099-01-01T00:00:00Z", []string{"arn:a"}, ""))
	c.t = wall.Add(3 * time.Hour)
	if a, _, _ := feed(e, st, rec(t, ts(3*time.Hour), []string{"arn:a"}, "")); a != 1 {
		t.Errorf("after a record dated 2099: %d alerts, want 1", a)
	}
}
