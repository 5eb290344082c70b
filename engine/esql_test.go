package engine

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/store"
)

func esqlRule(t *testing.T, query string) string {
	t.Helper()
	return fmt.Sprintf(`[rule]
name = "esql"
rule_id = "esql-1"
type = "esql"
language = "esql"
severity = "medium"
risk_score = 47
from = "now-6m"
query = '''%s'''
`, query)
}

// TestESQLPerRecord: a query without STATS alerts once per record that
// gives a row, with the row's computed columns beside the record's fields.
func TestESQLPerRecord(t *testing.T) {
	rs := ruleSet(t, esqlRule(t, `FROM logs-aws.cloudtrail-* METADATA _id, _version, _index
| WHERE event.dataset == "aws.cloudtrail" AND event.provider == "signin.amazonaws.com" AND user.name IS NOT NULL
| EVAL Esql.user_lower = TO_LOWER(user.name)
| WHERE Esql.user_lower LIKE "ro*"
| KEEP event.action, user.name, Esql.user_lower`))
	r := rs.Runnable()[0]
	if r.ESQL == nil || r.ESQL.IsAggregating() {
		t.Fatal("not a per-record ES|QL rule")
	}
	if pins, pinned := r.Compiled.Pins(); !pinned || len(pins) != 1 || pins[0].Provider != "signin.amazonaws.com" {
		t.Errorf("pins %v %v: the WHERE on event.provider pins the rule", pins, pinned)
	}
	e, _ := newEngine(t, rs, Options{TimeSource: EventTime})
	res, err := e.ProcessBatch([]Record{
		login(t, at("10:00:00"), "111", "192.0.2.1", "ROOT"),
		login(t, at("10:00:01"), "111", "192.0.2.1", "alice"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(res.Alerts))
	}
	d := res.Alerts[0].Doc()
	if d["Esql.user_lower"] != "root" || d["kibana.alert.rule.type"] != "esql" || d["user"].(map[string]any)["name"] != "ROOT" {
		t.Errorf("alert %v", d)
	}
	if _, ok := d["user.name"]; ok {
		t.Error("a kept field of the record is repeated as a column")
	}
}

// TestESQLAggregatingRuns: an aggregating query alerts once per result row
// per run; a later overlapping run that still finds the group alerts again
// (its window differs), as in Kibana; the same runs across a restart make
// the same ids; a replay of the same run makes none.
func TestESQLAggregatingRuns(t *testing.T) {
	src := esqlRule(t, `FROM logs-aws.cloudtrail-*
| WHERE event.provider == "signin.amazonaws.com" AND event.outcome == "failure"
| STATS Esql.count = COUNT(*), Esql.users = VALUES(user.name) BY cloud.account.id
| WHERE Esql.count >= 3
| KEEP cloud.account.id, Esql.count, Esql.users`)
	rs := ruleSet(t, src)
	batches := [][]Record{
		logins(t, 3, at("10:04:10"), "111", "192.0.2.1", "root"),
		logins(t, 2, at("10:04:20"), "222", "192.0.2.1", "root"),
		{login(t, at("10:11:00"), "333", "192.0.2.1", "root")}, // moves the clock past 10:10
	}
	run := func(restart bool) ([]string, []map[string]any) {
		path := filepath.Join(t.TempDir(), "state.db")
		var ids []string
		var docs []map[string]any
		var st *store.Store
		var e *Engine
		open := func() {
			var err error
			if st, err = store.Open(path, store.Options{NoSync: true}); err != nil {
				t.Fatal(err)
			}
			if e, err = New(rs, Options{State: st, TimeSource: EventTime}); err != nil {
				t.Fatal(err)
			}
		}
		open()
		for _, b := range batches {
			if restart {
				st.Close()
				open()
			}
			res, err := e.ProcessBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range res.Alerts {
				ids = append(ids, a.UUID)
				docs = append(docs, a.Doc())
			}
		}
		// A replay of the last batch: the same runs, no new alert.
		res, err := e.ProcessBatch(batches[len(batches)-1])
		if err != nil || len(res.Alerts) != 0 {
			t.Fatalf("replay: %d alerts, %v", len(res.Alerts), err)
		}
		st.Close()
		return ids, docs
	}
	ids, docs := run(false)
	// Run 10:05 [09:59, 10:05) and run 10:10 [10:04, 10:10) both hold 111's
	// three failures.
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("alerts %v, want two, one per run", ids)
	}
	if docs[0]["cloud.account.id"] != "111" || docs[0]["Esql.count"] != int64(3) || docs[0]["kibana.alert.original_time"] != "2026-05-04T10:05:00.000Z" {
		t.Errorf("first alert %v", docs[0])
	}
	again, _ := run(true)
	if !slices.Equal(again, ids) {
		t.Errorf("across restarts %v, want %v", again, ids)
	}
}

// TestESQLIngestedOnTheEventClock: replayed on the event clock, a record is
// taken as read when it happened, so a rule comparing event.ingested with
// NOW() (the run's time) sees it fresh in the first runs only, as a live
// feed would: one alert, not one per run of its seven-day window.
func TestESQLIngestedOnTheEventClock(t *testing.T) {
	src := esqlRule(t, `FROM logs-aws.cloudtrail-*
| WHERE event.provider == "signin.amazonaws.com"
| STATS Esql.ingested_min = MIN(event.ingested), Esql.count = COUNT(*) BY cloud.account.id
| WHERE Esql.ingested_min >= NOW() - 10 minutes`)
	src = strings.Replace(src, `from = "now-6m"`, "from = \"now-7d\"\ninterval = \"10m\"", 1)
	e, _ := newEngine(t, ruleSet(t, src), Options{TimeSource: EventTime})
	res, err := e.ProcessBatch([]Record{login(t, at("10:02:00"), "111", "192.0.2.1", "root")})
	if err != nil {
		t.Fatal(err)
	}
	n := len(res.Alerts)
	res, err = e.Drain()
	if err != nil {
		t.Fatal(err)
	}
	if n += len(res.Alerts); n != 1 {
		t.Errorf("%d alerts, want 1 (the run at 10:10)", n)
	}
}

// TestDocPartWith: a row's columns set into a record's rendered document
// give what rendering the whole merged document gives, keys added before,
// between and after the document's, one replaced, and a value that does
// not render.
func TestDocPartWith(t *testing.T) {
	base := map[string]any{
		"aws":   map[string]any{"cloudtrail": map[string]any{"event_version": "1.08"}},
		"event": map[string]any{"action": "CreateAccessKey", "kind": "signal"},
		"m":     []any{"x", 1.5},
		"user":  map[string]any{"name": "alice"},
	}
	for _, extra := range []map[string]any{
		{},
		{"Esql.count": int64(3)},
		{"@a": "first", "f": true, "zz": []any{"a", "b"}},
		{"event": "replaced", "Esql.x": nil},
		{"bad": make(chan int)},
	} {
		m := flatCopy(base)
		for k, v := range extra {
			m[k] = v
		}
		want := newDocPart(m)
		got := newDocPart(base).with(extra)
		if !slices.Equal(got.keys, want.keys) || fmt.Sprint(got.m) != fmt.Sprint(want.m) || (got.err == nil) != (want.err == nil) {
			t.Fatalf("with %v: keys %q err %v, want %q err %v", extra, got.keys, got.err, want.keys, want.err)
		}
		for i := range want.raw {
			if string(got.raw[i]) != string(want.raw[i]) {
				t.Errorf("with %v: %s renders %s, want %s", extra, want.keys[i], got.raw[i], want.raw[i])
			}
		}
	}
	bad := newDocPart(map[string]any{"a": make(chan int), "b": 1})
	got, want := bad.with(map[string]any{"c": 2}), newDocPart(map[string]any{"a": make(chan int), "b": 1, "c": 2})
	if got.err == nil || !slices.Equal(got.keys, want.keys) {
		t.Errorf("a part that does not render: keys %q err %v", got.keys, got.err)
	}
}
