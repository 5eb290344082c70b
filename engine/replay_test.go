package engine

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
)

// countRule counts an account's failed logins with ES|QL and alerts at 3.
func countRule(t *testing.T) string {
	return esqlRule(t, `FROM logs-aws.cloudtrail-*
| WHERE event.provider == "signin.amazonaws.com"
| STATS Esql.count = COUNT(*) BY cloud.account.id
| WHERE Esql.count >= 3`)
}

// fed gives e the batches, and returns their alerts and counts.
func fed(t *testing.T, e *Engine, batches ...[]Record) (alerts []map[string]any, st Stats) {
	t.Helper()
	for _, b := range batches {
		res, err := e.ProcessBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		alerts = tally(res, alerts, &st)
	}
	return alerts, st
}

// tally adds a result's counts to st and its alerts' documents to alerts.
func tally(res Result, alerts []map[string]any, st *Stats) []map[string]any {
	st.Add(res.Stats)
	for _, a := range res.Alerts {
		alerts = append(alerts, a.Doc())
	}
	return alerts
}

// drained is fed, then the engine drained.
func drained(t *testing.T, e *Engine, batches ...[]Record) (alerts []map[string]any, st Stats) {
	t.Helper()
	alerts, st = fed(t, e, batches...)
	res, err := e.Drain()
	if err != nil {
		t.Fatal(err)
	}
	alerts = tally(res, alerts, &st)
	return alerts, st
}

// TestAggregatesCountARecordOnce: a record given again (in the same batch,
// in a later batch, after a restart on the same state file) counts once in
// an aggregating ES|QL rule, as Elasticsearch indexes a record read again
// once; three distinct records make the alert two given twice do not.
func TestAggregatesCountARecordOnce(t *testing.T) {
	rs := ruleSet(t, countRule(t))
	two := logins(t, 2, at("10:01:00"), "111", "192.0.2.1", "root")
	third := login(t, at("10:01:30"), "111", "192.0.2.1", "root")

	e, _ := newEngine(t, rs, Options{TimeSource: EventTime})
	alerts, st := drained(t, e, append(append([]Record{}, two...), third))
	if replayed := st.Replayed; len(alerts) != 1 || alerts[0]["Esql.count"] != int64(3) || replayed != 0 {
		t.Fatalf("three records: alerts %v, %d replayed; want one alert counting 3", alerts, replayed)
	}

	e, _ = newEngine(t, rs, Options{TimeSource: EventTime})
	if alerts, st = drained(t, e, append(append([]Record{}, two...), two[0])); len(alerts) != 0 || st.Replayed != 1 {
		t.Errorf("a record twice in one batch: alerts %v, %d replayed; want none, 1", alerts, st.Replayed)
	}

	e, _ = newEngine(t, rs, Options{TimeSource: EventTime})
	if alerts, st = drained(t, e, two, two); len(alerts) != 0 || st.Replayed != 2 {
		t.Errorf("a batch given twice: alerts %v, %d replayed; want none, 2", alerts, st.Replayed)
	}

	// Across a restart: the first life counts two records, the second is
	// given them again and a third.
	path := filepath.Join(t.TempDir(), "state.db")
	if _, alerts := life(t, path, rs, false, two); len(alerts) != 0 {
		t.Fatalf("first life: %d alerts", len(alerts))
	}
	if st, _ := life(t, path, rs, false, two); st.Replayed != 2 {
		t.Errorf("after a restart, the same records: %d replayed, want 2", st.Replayed)
	}
	state, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err = New(rs, Options{State: state, TimeSource: EventTime})
	if err != nil {
		t.Fatal(err)
	}
	alerts, counts := drained(t, e, []Record{two[1], third})
	state.Close()
	if len(alerts) != 1 || alerts[0]["Esql.count"] != int64(3) || counts.Replayed != 1 {
		t.Errorf("third life, one record again and a new one: alerts %v, %d replayed; want one alert counting 3, 1", alerts, counts.Replayed)
	}
}

// TestRecordIDsBounded: the records remembered stay within MaxRecordIDs
// (the oldest slots forgotten, counted), in memory and in the state file;
// a record of a slot kept is still known, one of a slot forgotten counts
// again; and slots no window can count any more leave the file.
func TestRecordIDsBounded(t *testing.T) {
	rs := ruleSet(t, countRule(t))
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := New(rs, Options{State: st, TimeSource: EventTime, MaxRecordIDs: 50})
	if err != nil {
		t.Fatal(err)
	}
	// 200 logins 3 s apart: ten minutes, 20 a slot, all within the
	// rule's 11 minutes.
	recs := logins(t, 200, at("10:00:00"), "111", "192.0.2.1", "root")
	forgotten := 0
	for i := 0; i < len(recs); i += 10 {
		res, err := e.ProcessBatch(recs[i : i+10])
		if err != nil {
			t.Fatal(err)
		}
		forgotten += res.Stats.IDsForgotten
		if n := len(e.recIDs.at); n > 50 {
			t.Fatalf("after batch %d: %d ids remembered, bound 50", i/10, n)
		}
	}
	if forgotten < 150 {
		t.Errorf("%d ids forgotten, want at least 150", forgotten)
	}
	inFile := func() int {
		n := 0
		if err := st.RecordIDs(func(_ int64, ids []uint64) bool { n += len(ids); return true }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := inFile(); n != len(e.recIDs.at) {
		t.Errorf("%d ids in the state file, %d in memory", n, len(e.recIDs.at))
	}
	res, err := e.ProcessBatch(recs[190:])
	if err != nil || res.Stats.Replayed != 10 {
		t.Errorf("the last records again: %d replayed (%v), want 10", res.Stats.Replayed, err)
	}
	res, err = e.ProcessBatch(recs[:10])
	if err != nil || res.Stats.Replayed != 0 {
		t.Errorf("the first records again, forgotten: %d replayed (%v), want 0", res.Stats.Replayed, err)
	}

	// An hour later the window holds none of them: their slots leave the
	// file at the next batch.
	later := logins(t, 5, at("11:00:00"), "111", "192.0.2.1", "root")
	if _, err := e.ProcessBatch(later); err != nil {
		t.Fatal(err)
	}
	if n, m := inFile(), len(e.recIDs.at); n != 5 || m != 5 {
		t.Errorf("an hour later: %d ids in the file, %d in memory; want the 5 new ones", n, m)
	}
}

// TestRecordIDsOnlyWithAggregatingRules: an engine without aggregating
// ES|QL rules keeps no record memory, and a threshold rule keeps counting
// by eventID as before.
func TestRecordIDsOnlyWithAggregatingRules(t *testing.T) {
	src := strings.Replace(countRule(t), "| STATS Esql.count = COUNT(*) BY cloud.account.id\n| WHERE Esql.count >= 3", "", 1)
	e, _ := newEngine(t, ruleSet(t, src), Options{TimeSource: EventTime})
	if e.recIDs != nil {
		t.Fatal("a per-record ES|QL rule made a record memory")
	}
	recs := logins(t, 2, at("10:00:00"), "111", "192.0.2.1", "root")
	alerts, st := drained(t, e, recs, recs)
	if st.Replayed != 0 || len(alerts) != 2 {
		t.Errorf("a per-record rule given its records twice: %d alerts (the second time deduplicated by id), %d replayed", len(alerts), st.Replayed)
	}
}

// TestEventClockLag: on the event clock a record that arrives after a
// newer one has moved the clock past the run that would have counted it is
// late (not counted, counted as late); with EventClockLag the runs wait,
// and it counts.
func TestEventClockLag(t *testing.T) {
	rs := ruleSet(t, countRule(t))
	batches := [][]Record{
		logins(t, 2, at("10:00:00"), "111", "192.0.2.1", "root"),
		{login(t, at("10:08:00"), "222", "192.0.2.1", "root")}, // moves the clock past the run of 10:05
		{login(t, at("10:02:00"), "111", "192.0.2.1", "root")}, // six minutes out of order
	}
	for _, c := range []struct {
		lag          time.Duration
		alerts, late int
	}{{0, 0, 1}, {10 * time.Minute, 1, 0}} {
		e, _ := newEngine(t, rs, Options{TimeSource: EventTime, EventClockLag: c.lag})
		alerts, st := drained(t, e, batches...)
		if len(alerts) != c.alerts || st.Late != c.late {
			t.Errorf("lag %v: %d alerts %v, %d late; want %d, %d", c.lag, len(alerts), alerts, st.Late, c.alerts, c.late)
		}
		if c.alerts == 1 && alerts[0]["Esql.count"] != int64(3) {
			t.Errorf("lag %v: alert %v, want a count of 3", c.lag, alerts[0])
		}
	}
}

// TestSameQueryRulesShareTheirAggregates: an aggregating ES|QL rule loaded
// twice under two rule_ids evaluates and aggregates each record once, and
// each rule alerts as it would alone; a third copy with an exception of its
// own keeps its own aggregate, and its exception.
func TestSameQueryRulesShareTheirAggregates(t *testing.T) {
	dir := t.TempDir()
	one := countRule(t)
	copyOf := func(id, name string) string {
		return strings.Replace(strings.Replace(one, `rule_id = "esql-1"`, `rule_id = "`+id+`"`, 1), `name = "esql"`, `name = "`+name+`"`, 1)
	}
	files := map[string]string{"one.toml": one, "two.toml": copyOf("esql-2", "esql copy"), "three.toml": copyOf("esql-3", "esql excepting admin")}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	xdir := t.TempDir()
	export, attach := filepath.Join(xdir, "admin.ndjson"), filepath.Join(xdir, "attach.toml")
	os.WriteFile(export, []byte(`{"list_id":"admin","type":"detection","name":"admin","namespace_type":"single"}
{"item_id":"a","list_id":"admin","type":"simple","name":"admin","namespace_type":"single","entries":[{"field":"user.name","operator":"included","type":"match","value":"admin"}]}
`), 0o600)
	os.WriteFile(attach, []byte("[[attach]]\nlist_id = \"admin\"\nrule_id = \"esql-3\"\n"), 0o600)
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), dir)
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := conf.LoadExceptionsFor(rs, export, attach)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newEngine(t, rs, Options{TimeSource: EventTime, Exceptions: x})
	shared := 0
	for si := range e.scheduled {
		if e.accShared[si] {
			shared++
		}
	}
	if shared != 2 {
		t.Fatalf("%d rules share their aggregates (%v, %v), want the two without the exception", shared, e.accShared, e.accShare)
	}
	recs := append(logins(t, 3, at("10:00:00"), "111", "192.0.2.1", "root"), logins(t, 3, at("10:01:00"), "111", "192.0.2.1", "admin")...)
	alerts, _ := drained(t, e, recs)
	byRule := map[string][]any{}
	for _, a := range alerts {
		name := a["kibana.alert.rule.name"].(string)
		byRule[name] = append(byRule[name], a["Esql.count"])
	}
	six, three := []any{int64(6)}, []any{int64(3)}
	if len(byRule) != 3 || !slices.Equal(byRule["esql"], six) || !slices.Equal(byRule["esql copy"], six) || !slices.Equal(byRule["esql excepting admin"], three) {
		t.Errorf("counts by rule %v, want 6, 6 and 3", byRule)
	}
}

// TestRecordIDsEdges: a clock near 1970 forgets nothing (a negative slot
// once deleted every id in the file); eviction past the newest slot
// remembered keeps the batch's own ids (it once kept none); an engine that
// replaces another (a hot reload) knows the ids the other's batch in
// flight commits after the swap.
func TestRecordIDsEdges(t *testing.T) {
	rs := ruleSet(t, countRule(t))
	path := filepath.Join(t.TempDir(), "state.db")
	life := func(o Options, batches ...[]Record) int {
		st, err := store.Open(path, store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		o.State, o.TimeSource = st, EventTime
		e, err := New(rs, o)
		if err != nil {
			t.Fatal(err)
		}
		_, counts := fed(t, e, batches...)
		return counts.Replayed
	}
	early := logins(t, 2, time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC), "111", "192.0.2.1", "root")
	life(Options{}, early)
	if n := life(Options{}, early); n != 2 {
		t.Errorf("records of 1970 given again after a restart: %d replayed, want 2", n)
	}

	path = filepath.Join(t.TempDir(), "state.db")
	busy := logins(t, 10, at("10:00:00"), "111", "192.0.2.1", "root")
	next := logins(t, 3, at("10:01:00"), "111", "192.0.2.1", "root")
	life(Options{MaxRecordIDs: 10}, busy, next)
	if n := life(Options{MaxRecordIDs: 10}, next); n != 3 {
		t.Errorf("the newest batch after an eviction past every slot: %d replayed, want 3", n)
	}

	e1, st := newEngine(t, rs, Options{TimeSource: EventTime})
	recs := logins(t, 2, at("10:00:00"), "111", "192.0.2.1", "root")
	b := e1.NewBatch()
	b.Add(recs)
	e2, err := New(rs, Options{State: st, TimeSource: EventTime})
	if err != nil {
		t.Fatal(err)
	}
	e2.KeepRecordIDs(e1)
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, st := fed(t, e2, recs); st.Replayed != 2 {
		t.Errorf("after a reload, the old engine's last batch given again: %d replayed, want 2", st.Replayed)
	}
}

// TestRecordsInFlightTwice: two batches in flight at once holding the same
// records (a duplicated CloudTrail event in two chunks of two workers, a
// request retried while the first is processed) both counted them: 2
// records made COUNT 4 and an alert at 3. The second to commit is refused
// with ErrRecordsInFlight, nothing of it written; given again, its records
// are known. Under load: batches of overlapping records from four
// goroutines, each given again until taken, count each record once.
func TestRecordsInFlightTwice(t *testing.T) {
	rs := ruleSet(t, countRule(t))
	two := logins(t, 2, at("10:01:00"), "111", "192.0.2.1", "root")
	e, _ := newEngine(t, rs, Options{TimeSource: EventTime})
	b1, b2 := e.NewBatch(), e.NewBatch()
	b1.Add(two)
	b2.Add(two)
	if _, err := b1.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Commit(); !errors.Is(err, ErrRecordsInFlight) {
		t.Fatalf("the second batch of the same records: %v, want ErrRecordsInFlight", err)
	}
	alerts, st := drained(t, e, two)
	if len(alerts) != 0 || st.Replayed != 2 {
		t.Errorf("given again: %d alerts, %d replayed; want none, 2", len(alerts), st.Replayed)
	}

	// 40 distinct records, each in two of the batches, in one account:
	// COUNT(*) is 40 when each counts once.
	rs = ruleSet(t, esqlRule(t, `FROM logs-aws.cloudtrail-*
| WHERE event.provider == "signin.amazonaws.com"
| STATS Esql.count = COUNT(*) BY cloud.account.id`))
	e, _ = newEngine(t, rs, Options{TimeSource: EventTime})
	recs := logins(t, 40, at("10:01:00"), "111", "192.0.2.1", "root")
	var wg sync.WaitGroup
	var refused atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < 40; i += 2 { // goroutines 0 and 2, 1 and 3 give the same records
				for {
					_, err := e.ProcessBatch([]Record{recs[i], recs[(i+1)%40]})
					if err == nil {
						break
					}
					if !errors.Is(err, ErrRecordsInFlight) {
						t.Error(err)
						return
					}
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res, err := e.Drain()
	if err != nil || len(res.Alerts) != 1 || res.Alerts[0].Doc()["Esql.count"] != int64(40) {
		t.Fatalf("%d alerts, %v; want one of COUNT 40", len(res.Alerts), err)
	}
	t.Logf("%d batches refused and given again", refused.Load())
}

// TestRecordIDsLoadBounded: a state file holding more remembered record
// ids than the bound (another build's, a hostile one) was read whole at
// start before the bound applied: 10 million ids took seconds and 500 MB,
// and a slot larger than the bound was dropped whole, so nothing was
// remembered. Now the newest are read, up to what a commit keeps.
func TestRecordIDsLoadBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	const perSlot, slots = 1 << 20, 3 // three slots, each past the bound
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("aggregated_records"))
		if err != nil {
			return err
		}
		for s := range slots {
			v := make([]byte, 0, 8*perSlot)
			for i := range perSlot {
				v = binary.BigEndian.AppendUint64(v, uint64(s*perSlot+i)*0x9E3779B97F4A7C15)
			}
			k := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(29_000_000+s)), uint64(s))
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st, err = store.Open(path, store.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := New(ruleSet(t, countRule(t)), Options{State: st})
	if err != nil {
		t.Fatal(err)
	}
	keep := MaxRecordIDs - MaxRecordIDs/10
	if n := len(e.recIDs.at); n != keep {
		t.Errorf("%d ids remembered, want %d (the newest, as a commit keeps)", n, keep)
	}
	mul, first := uint64(0x9E3779B97F4A7C15), uint64((slots-1)*perSlot)
	newest := first * mul
	if !e.recIDs.has(newest) {
		t.Error("the newest slot's first id is not remembered")
	}
	if e.recIDs.has(0) {
		t.Error("an id of the oldest slot is remembered")
	}
}

// TestLateCountsEachRecord: records late for an aggregating ES|QL rule
// were counted once per bucket, however many the bucket's part held.
func TestLateCountsEachRecord(t *testing.T) {
	e, _ := newEngine(t, ruleSet(t, countRule(t)), Options{TimeSource: EventTime})
	_, st := drained(t, e,
		logins(t, 2, at("10:00:00"), "111", "192.0.2.1", "root"),
		[]Record{login(t, at("10:08:00"), "222", "192.0.2.1", "root")}, // the clock passes the run of 10:05
		logins(t, 3, at("10:02:00"), "111", "192.0.2.1", "root"))       // three records of one bucket, late
	if st.Late != 3 {
		t.Errorf("%d late, want 3", st.Late)
	}
}
