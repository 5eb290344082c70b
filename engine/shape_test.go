package engine

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
	bolt "go.etcd.io/bbolt"
)

// life opens the state file at path, gives an engine over rs the batches
// (with Drain last when drain), and closes the file: one run of the
// process.
func life(t *testing.T, path string, rs *conf.RuleSet, drain bool, batches ...[]Record) (Stats, []*Alert) {
	t.Helper()
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := New(rs, Options{State: st, TimeSource: EventTime})
	if err != nil {
		t.Fatal(err)
	}
	var all Stats
	var alerts []*Alert
	for _, b := range batches {
		res, err := e.ProcessBatch(b)
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		all.Add(res.Stats)
		alerts = append(alerts, res.Alerts...)
	}
	if drain {
		res, err := e.Drain()
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		all.Add(res.Stats)
		alerts = append(alerts, res.Alerts...)
	}
	return all, alerts
}

// TestEditedRuleDropsItsState: a stateful rule edited under its rule_id
// (group fields, STATS, stages) does not read what its former definition
// wrote: a threshold rule given a second group field panicked on the
// groups of one value (the store's guard then called the file damaged),
// an ES|QL rule given another STATS failed every commit. Its state is
// dropped once, said in Stats.StateDropped, and it counts afresh; a rule
// left as it was keeps its state across the same restart.
func TestEditedRuleDropsItsState(t *testing.T) {
	t.Run("threshold group fields", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		before := thRule(t, []string{"cloud.account.id"}, 3, "", 0, "")
		life(t, path, before, false, logins(t, 3, at("10:00:10"), "111", "192.0.2.1", "root"))
		after := thRule(t, []string{"cloud.account.id", "source.ip"}, 3, "", 0, "")
		st, alerts := life(t, path, after, true, logins(t, 1, at("10:00:20"), "111", "192.0.2.1", "root"))
		if !slices.Equal(st.StateDropped, []string{after.Rules[0].RuleID}) || len(alerts) != 0 {
			t.Errorf("dropped %v, %d alerts (the 3 records counted before the edit must not count)", st.StateDropped, len(alerts))
		}
		st, alerts = life(t, path, after, true, logins(t, 3, at("10:20:00"), "111", "192.0.2.1", "root"))
		if len(st.StateDropped) != 0 || len(alerts) != 1 {
			t.Errorf("the next life: dropped %v, %d alerts, want 1", st.StateDropped, len(alerts))
		}
	})
	t.Run("ES|QL STATS", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		life(t, path, ruleSet(t, countRule(t)), false, logins(t, 2, at("10:00:10"), "111", "192.0.2.1", "root"))
		edited := ruleSet(t, esqlRule(t, `FROM logs-aws.cloudtrail-*
| WHERE event.provider == "signin.amazonaws.com"
| STATS Esql.count = COUNT(*) BY source.ip
| WHERE Esql.count >= 3`))
		st, alerts := life(t, path, edited, true, logins(t, 1, at("10:00:20"), "111", "192.0.2.1", "root"))
		if !slices.Equal(st.StateDropped, []string{"esql-1"}) || len(alerts) != 0 {
			t.Errorf("dropped %v, %d alerts", st.StateDropped, len(alerts))
		}
		for i := range 2 {
			st, _ := life(t, path, edited, false, logins(t, 1, at("10:30:00"), "111", "192.0.2.1", "root"))
			if len(st.StateDropped) != 0 {
				t.Errorf("life %d: dropped %v again", i, st.StateDropped)
			}
		}
	})
	t.Run("sequence stages", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		life(t, path, seqRules(t, abSeq), false, []Record{call(t, "a1", "A", "u1", "10:00:00")})
		edited := seqRules(t, `sequence by user.id with maxspan=15m
  [any where event.action == "A"]
  [any where event.action == "C"]
  [any where event.action == "B"]`)
		st, alerts := life(t, path, edited, false, []Record{call(t, "b1", "B", "u1", "10:05:00")})
		if !slices.Equal(st.StateDropped, []string{"seq-1"}) || len(alerts) != 0 {
			t.Errorf("dropped %v, %d alerts", st.StateDropped, len(alerts))
		}
	})
	// A file from a build that kept no shapes: the edited rules' runs pass
	// over what they cannot read (groups of other fields, parts of another
	// STATS) instead of failing or panicking.
	t.Run("a file without shapes", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		before := thRule(t, []string{"cloud.account.id"}, 3, "", 0, "")
		before.Rules = append(before.Rules, ruleSet(t, countRule(t)).Rules...)
		life(t, path, before, false, logins(t, 3, at("10:00:10"), "111", "192.0.2.1", "root"))
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("rule_shapes")) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		after := thRule(t, []string{"cloud.account.id", "source.ip"}, 3, "", 0, "")
		after.Rules = append(after.Rules, ruleSet(t, esqlRule(t, `FROM logs-aws.cloudtrail-*
| WHERE event.provider == "signin.amazonaws.com"
| STATS Esql.count = COUNT(*) BY source.ip
| WHERE Esql.count >= 1`)).Rules...)
		st, alerts := life(t, path, after, true, logins(t, 1, at("10:00:20"), "111", "192.0.2.1", "root"))
		if len(st.StateDropped) != 0 || len(alerts) != 1 || alerts[0].RuleID != "esql-1" {
			t.Errorf("dropped %v, %d alerts, want the ES|QL rule's on the new record alone", st.StateDropped, len(alerts))
		}
	})
	t.Run("unchanged", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		rs := thRule(t, []string{"cloud.account.id"}, 3, "", 0, "")
		life(t, path, rs, false, logins(t, 2, at("10:00:10"), "111", "192.0.2.1", "root"))
		// The same rule with another max_signals: the state stays.
		again := thRule(t, []string{"cloud.account.id"}, 3, "", 0, "max_signals = 7")
		st, alerts := life(t, path, again, true, logins(t, 1, at("10:00:20"), "111", "192.0.2.1", "root"))
		if len(st.StateDropped) != 0 || len(alerts) != 1 {
			t.Errorf("dropped %v, %d alerts, want the 3 records' alert", st.StateDropped, len(alerts))
		}
	})
}
