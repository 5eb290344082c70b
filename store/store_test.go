package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openT(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func term(rule string, at time.Duration, vals ...string) Term {
	return Term{History: rule, Values: vals, Seen: t0.Add(at), Window: 7 * 24 * time.Hour}
}

func TestFileModeAndReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	s := openT(t, p)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := s.Commit(Batch{Terms: []Term{term("r", 0, "a")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openT(t, p)
	st, _ := s2.Stats()
	if st.Terms != 1 {
		t.Errorf("%d terms after reopen", st.Terms)
	}
}

func TestOpenErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.db")
	s := openT(t, p)
	// A second instance in this process.
	if _, err := Open(p, Options{}); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "already open") {
		t.Errorf("second open: %v", err)
	}
	s.Close()

	// A newer schema version is refused, not misread.
	db, _ := bolt.Open(p, 0o600, nil)
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("7")) })
	db.Close()
	if _, err := Open(p, Options{}); err == nil || !strings.Contains(err.Error(), "newer trailwatch (schema 7") {
		t.Errorf("newer schema: %v", err)
	}

	// A bbolt file with foreign data and no schema.
	foreign := filepath.Join(dir, "foreign.db")
	db, _ = bolt.Open(foreign, 0o600, nil)
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	db.Close()
	if _, err := Open(foreign, Options{}); err == nil || !strings.Contains(err.Error(), "not written by trailwatch") {
		t.Errorf("foreign file: %v", err)
	}

	// Not a bbolt file at all.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	if _, err := Open(junk, Options{}); err == nil || !strings.Contains(err.Error(), junk) || !strings.Contains(err.Error(), "move it aside") {
		t.Errorf("junk file: %v", err)
	}
	short := filepath.Join(dir, "short.db")
	os.WriteFile(short, []byte("x"), 0o600)
	if _, err := Open(short, Options{}); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short file: %v", err)
	}
	// A folder that does not exist.
	if _, err := Open(filepath.Join(dir, "no", "such", "s.db"), Options{}); err == nil || !strings.Contains(err.Error(), "no/such") {
		t.Errorf("missing folder: %v", err)
	}
}

func TestOutboxCommitAndAck(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "s.db"))
	res, err := s.Commit(Batch{
		Terms: []Term{term("r", 0, "a"), term("r", 0, "b")},
		Emit: func(v *Verdicts) ([]Alert, error) {
			var out []Alert
			for i := range 2 {
				if v.New(i) {
					out = append(out, Alert{Doc: []byte(fmt.Sprintf(`{"i":%d}`, i))})
				}
			}
			return out, nil
		},
	})
	if err != nil || res.Written != 2 {
		t.Fatalf("%v %v", res, err)
	}
	p, _ := s.Pending(10)
	if len(p) != 2 || string(p[0].Alert) != `{"i":0}` {
		t.Fatalf("pending %v", p)
	}
	s.Ack([]uint64{p[0].Seq})
	if s.OutboxLen() != 1 {
		t.Errorf("outbox %d after ack", s.OutboxLen())
	}
	// An Emit error writes nothing of the batch: terms stay unknown.
	_, err = s.Commit(Batch{Terms: []Term{term("r", time.Hour, "c")}, Emit: func(*Verdicts) ([]Alert, error) { return nil, errors.New("boom") }})
	if err == nil {
		t.Fatal("no error")
	}
	res, _ = s.Commit(Batch{Terms: []Term{term("r", 2*time.Hour, "c")}, Emit: func(v *Verdicts) ([]Alert, error) {
		if !v.New(0) {
			t.Error("c must still be new after the failed batch")
		}
		return nil, nil
	}})
}

func TestOutboxBound(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true, MaxOutbox: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Commit(Batch{Emit: func(*Verdicts) ([]Alert, error) {
		return []Alert{{Doc: []byte("1")}, {Doc: []byte("2")}, {Doc: []byte("3")}, {Doc: []byte("4")}, {Doc: []byte("5")}}, nil
	}})
	if err != nil || res.Written != 3 || res.Overflow != 2 || res.Seqs[3] != 0 {
		t.Fatalf("res %+v err %v", res, err)
	}
	st, _ := s.Stats()
	if st.Overflowed != 2 || st.Outbox != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestPruneBoundsTheFile(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "s.db"))
	w := map[string]time.Duration{"keep": 7 * 24 * time.Hour}
	var terms []Term
	for i := 0; i < 100; i++ {
		terms = append(terms, term("keep", time.Duration(i)*time.Hour, fmt.Sprint(i)))
		terms = append(terms, term("gone", time.Duration(i)*time.Hour, fmt.Sprint(i)))
	}
	s.Commit(Batch{Terms: terms})
	// At t0+8d, terms of "keep" seen before t0+1d are past the window; the
	// rule "gone" left the rule set and keeps its stored 7-day window.
	res, err := s.Prune(t0.Add(8*24*time.Hour), w)
	if err != nil {
		t.Fatal(err)
	}
	if res.Terms != 48 || res.Rules != 0 {
		t.Errorf("pruned %+v, want 48 terms (24 per rule)", res)
	}
	res, _ = s.Prune(t0.Add(30*24*time.Hour), w)
	if res.Rules != 1 {
		t.Errorf("the removed rule's bucket must go once its window passed: %+v", res)
	}
	st, _ := s.Stats()
	if st.Terms != 0 || len(st.Rules) != 1 || st.Rules[0].RuleID != "keep" {
		t.Errorf("after pruning: %+v", st)
	}
}

func TestExportImport(t *testing.T) {
	a := openT(t, filepath.Join(t.TempDir(), "a.db"))
	a.Commit(Batch{Terms: []Term{term("r1", 0, "x", "y"), term("r1", time.Hour, "x:y"), term("r2", 0, "")}})
	var buf bytes.Buffer
	n, err := a.Export(&buf)
	if err != nil || n != 3 {
		t.Fatalf("export %d %v", n, err)
	}
	b := openT(t, filepath.Join(t.TempDir(), "b.db"))
	b.Commit(Batch{Terms: []Term{term("r1", 5*time.Hour, "x", "y")}}) // later than the export's
	if n, err := b.Import(bytes.NewReader(buf.Bytes()), "export.ndjson"); err != nil || n != 3 {
		t.Fatalf("import %d %v", n, err)
	}
	var again bytes.Buffer
	b.Export(&again)
	if !strings.Contains(again.String(), `"values":["x","y"],"last_seen":"2026-11-01T05:00:00Z"`) {
		t.Errorf("the later sighting must win:\n%s", again.String())
	}
	if !strings.Contains(again.String(), `"values":["x:y"]`) || !strings.Contains(again.String(), `"rule_id":"r2","values":[""]`) {
		t.Errorf("values must survive exactly:\n%s", again.String())
	}
	_, err = b.Import(strings.NewReader("{\"rule_id\":\"r\",\"values\":[\"a\"],\"last_seen\":\"2026-11-01T00:00:00Z\"}\nnot json\n"), "bad.ndjson")
	if err == nil || !strings.Contains(err.Error(), "bad.ndjson:2") {
		t.Errorf("bad line: %v", err)
	}
}

// TestImportRefusesWhatWouldHarm: an import line with a NUL in its rule_id
// (the store's own names: it stopped every later start), a window that is
// not positive (prune then dropped terms seen a minute before), or values
// past bbolt's key size (the batch failed whole, no line named, its terms
// counted as imported) is refused with its line, and nothing of it kept.
func TestImportRefusesWhatWouldHarm(t *testing.T) {
	seen := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	good := `{"rule_id":"r","values":["a"],"last_seen":"` + seen + `"}`
	for _, c := range []struct{ line, want string }{
		{`{"rule_id":"\u0000rebuild\u0000r","values":["x"],"last_seen":"` + seen + `"}`, "bad.ndjson:2: rule_id"},
		{`{"rule_id":"r","values":["x"],"last_seen":"` + seen + `","window":"-48h"}`, "bad.ndjson:2: window \"-48h\""},
		{`{"rule_id":"r","values":["` + strings.Repeat("v", 40000) + `"],"last_seen":"` + seen + `"}`, "bad.ndjson:2: values of"},
	} {
		st := openT(t, filepath.Join(t.TempDir(), "s.db"))
		n, err := st.Import(strings.NewReader(good+"\n"+c.line+"\n"), "bad.ndjson")
		if err == nil || !strings.Contains(err.Error(), c.want) || n != 0 {
			t.Errorf("%.60s: %d imported, %v; want %q", c.line, n, err, c.want)
		}
		var out bytes.Buffer
		if m, _ := st.Export(&out); m != 0 {
			t.Errorf("%.60s: %d terms kept", c.line, m)
		}
	}
}

// TestPruneKeepsAHistoryOfNoWindow: a history imported without a window,
// that no rule given reads, had every term dropped by prune (a window of
// zero); its window unknown, it is kept.
func TestPruneKeepsAHistoryOfNoWindow(t *testing.T) {
	st := openT(t, filepath.Join(t.TempDir(), "s.db"))
	seen := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	if _, err := st.Import(strings.NewReader(`{"rule_id":"r","values":["a"],"last_seen":"`+seen+`"}`+"\n"), "in.ndjson"); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Prune(time.Now(), nil); err != nil || res.Terms != 0 {
		t.Errorf("prune: %+v, %v; want nothing pruned", res, err)
	}
	var out bytes.Buffer
	if n, _ := st.Export(&out); n != 1 {
		t.Errorf("%d terms after prune, want 1", n)
	}
}

func TestEncodeValuesUnambiguous(t *testing.T) {
	pairs := [][2][]string{
		{{"a", "bc"}, {"ab", "c"}},
		{{"a:b"}, {"a", "b"}},
		{{""}, {}},
		{{"", ""}, {""}},
	}
	for _, p := range pairs {
		if bytes.Equal(EncodeValues(p[0]), EncodeValues(p[1])) {
			t.Errorf("%q and %q encode the same", p[0], p[1])
		}
	}
	for _, v := range [][]string{{"a", "", "ü\x00z"}, {strings.Repeat("x", 300)}} {
		got, err := DecodeValues(EncodeValues(v))
		if err != nil || strings.Join(got, "|") != strings.Join(v, "|") {
			t.Errorf("round trip %q: %q %v", v, got, err)
		}
	}
}

// TestOnlyWrittenAlertsAreRendered: an alert's document is made only when it
// is written (or kept for its policy): a repeated id and an alert over its
// rule's max_signals cost no rendering; a render error fails the batch.
func TestOnlyWrittenAlertsAreRendered(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "s.db"))
	rendered := map[string]int{}
	alert := func(id string) Alert {
		return Alert{ID: id, Policy: &Policy{RuleID: "r", MaxSignals: 2, Interval: time.Hour},
			Render: func() ([]byte, error) { rendered[id]++; return []byte(`{"id":"` + id + `"}`), nil }}
	}
	commit := func(ids ...string) CommitResult {
		t.Helper()
		res, err := s.Commit(Batch{Now: t0, Emit: func(*Verdicts) ([]Alert, error) {
			var out []Alert
			for _, id := range ids {
				out = append(out, alert(id))
			}
			return out, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := commit("a", "b", "c", "a")
	if res.Written != 2 || res.Capped != 1 || res.Duplicates != 1 {
		t.Errorf("first batch: %+v", res)
	}
	res = commit("a", "d")
	if res.Written != 0 || res.Duplicates != 1 || res.Capped != 1 {
		t.Errorf("second batch: %+v", res)
	}
	if fmt.Sprint(rendered) != "map[a:1 b:1]" {
		t.Errorf("rendered %v, want a and b once each", rendered)
	}
	p, _ := s.Pending(10)
	if len(p) != 2 || string(p[0].Alert) != `{"id":"a"}` || string(p[1].Alert) != `{"id":"b"}` {
		t.Errorf("outbox %v", p)
	}
	_, err := s.Commit(Batch{Now: t0.Add(2 * time.Hour), Emit: func(*Verdicts) ([]Alert, error) {
		return []Alert{{ID: "e", Render: func() ([]byte, error) { return nil, errors.New("no document") }}}, nil
	}})
	if err == nil || !strings.Contains(err.Error(), "no document") {
		t.Errorf("render error: %v", err)
	}
	if s.OutboxLen() != 2 {
		t.Errorf("outbox %d after a failed batch", s.OutboxLen())
	}
}

// TestVersion1FileAndAdopt: a version 1 file (each history named by its one
// rule, no rule_history) opens as version 2; Adopt carries a rule's terms
// into the history it reads now, keeping the later sighting of each, and
// leaves a history some rule already read as it is.
func TestVersion1FileAndAdopt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	s := openT(t, p)
	if _, err := s.Commit(Batch{Terms: []Term{term("r1", 0, "a"), term("r1", time.Hour, "b"), term("r2", 2*time.Hour, "a"), term("r2", 0, "c")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		tx.DeleteBucket(bucketRuleHistory)
		tx.DeleteBucket(bucketCapDocs)
		// Version 1 kept a max_signals template beside its window.
		tx.Bucket(bucketCaps).Put([]byte("r1"), capState{Start: t0, End: t0.Add(time.Hour), Count: 1}.bytes())
		tx.Bucket(bucketCaps).Put([]byte("r1"+capDocSuffix), []byte(`{"a":1}`))
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	})
	db.Close()
	s = openT(t, p)
	s.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "2" {
			t.Errorf("schema %q after opening a version 1 file", v)
		}
		if d := tx.Bucket(bucketCapDocs).Get([]byte("r1")); string(d) != `{"a":1}` {
			t.Errorf("max_signals template %q after opening a version 1 file", d)
		}
		if tx.Bucket(bucketCaps).Get([]byte("r1"+capDocSuffix)) != nil || tx.Bucket(bucketCaps).Get([]byte("r1")) == nil {
			t.Error("the windows' bucket still holds the template, or lost the window")
		}
		return nil
	})
	lastSeen := func(h string) map[string]time.Duration {
		t.Helper()
		out := map[string]time.Duration{}
		s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketTerms).Bucket([]byte(h))
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				vals, _ := DecodeValues(k)
				at, _ := getTime(v)
				out[strings.Join(vals, "|")] = at.Sub(t0)
				return nil
			})
		})
		return out
	}
	adopt := func(want int, hs ...History) {
		t.Helper()
		n, err := s.Adopt(hs)
		if err != nil || n != want {
			t.Errorf("Adopt(%v) = %d, %v; want %d carried", hs, n, err, want)
		}
	}
	check := func(h string, want map[string]time.Duration) {
		t.Helper()
		if got := lastSeen(h); !reflect.DeepEqual(got, want) {
			t.Errorf("history %s: %v, want %v", h, got, want)
		}
	}
	// r1 and r2 now share r1's history, which r1 read (a version 1 file:
	// each rule read its own): it is left as it is.
	adopt(0, History{"r1", "q", []string{"r1", "r2"}})
	check("r1", map[string]time.Duration{"a": 0, "b": time.Hour})
	if _, err := s.Commit(Batch{Terms: []Term{term("r1", 3*time.Hour, "d")}}); err != nil {
		t.Fatal(err)
	}
	adopt(0, History{"r1", "q", []string{"r1", "r2"}})
	// r1 leaves: r2's history takes r1's terms (its own version 1 history,
	// read by no rule since, is kept: the later sighting of each term).
	adopt(2, History{"r2", "q", []string{"r2"}})
	check("r2", map[string]time.Duration{"a": 2 * time.Hour, "b": time.Hour, "c": 0, "d": 3 * time.Hour})
	// r3 joins r2's history, which r2 reads for the same query: as it is.
	if _, err := s.Commit(Batch{Terms: []Term{term("r3", 0, "z")}}); err != nil {
		t.Fatal(err)
	}
	adopt(0, History{"r2", "q", []string{"r2", "r3"}})
	check("r2", map[string]time.Duration{"a": 2 * time.Hour, "b": time.Hour, "c": 0, "d": 3 * time.Hour})
	// m counts something else; then its query is edited to r2's: the
	// history named m (now the lowest id) is rebuilt from r2's alone.
	if _, err := s.Commit(Batch{Terms: []Term{term("m", 0, "m1")}}); err != nil {
		t.Fatal(err)
	}
	adopt(0, History{"r2", "q", []string{"r2", "r3"}}, History{"m", "qm", []string{"m"}})
	adopt(4, History{"m", "q", []string{"m", "r2", "r3"}})
	check("m", map[string]time.Duration{"a": 2 * time.Hour, "b": time.Hour, "c": 0, "d": 3 * time.Hour})
	// y counts qy. Then m and y swap queries: y joins r2 and r3 in q's
	// history (now named r2, rebuilt from m's while m's is being rebuilt
	// from y's), and m takes qy's history.
	if _, err := s.Commit(Batch{Terms: []Term{term("y", 0, "y1")}}); err != nil {
		t.Fatal(err)
	}
	adopt(0, History{"m", "q", []string{"m", "r2", "r3"}}, History{"y", "qy", []string{"y"}})
	adopt(1, History{"r2", "q", []string{"r2", "r3", "y"}}, History{"m", "qy", []string{"m"}})
	check("r2", map[string]time.Duration{"a": 2 * time.Hour, "b": time.Hour, "c": 0, "d": 3 * time.Hour})
	check("m", map[string]time.Duration{"y1": 0})
	// A query edited to one no history counts: the rule keeps what it had
	// seen.
	adopt(0, History{"r2", "q2", []string{"r2", "r3", "y"}}, History{"m", "qy", []string{"m"}})
	check("r2", map[string]time.Duration{"a": 2 * time.Hour, "b": time.Hour, "c": 0, "d": 3 * time.Hour})
}

// TestClockNeverFarAhead: a file whose event clock an earlier build moved
// to 2200 (one record so dated) is pruned on a clock at most MaxAhead past
// the machine's, so its terms stay.
func TestClockNeverFarAhead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.db")
	s := openT(t, p)
	recent := time.Now().Add(-time.Hour)
	if _, err := s.Commit(Batch{Terms: []Term{{History: "r", Values: []string{"a"}, Seen: recent, Window: 7 * 24 * time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyLatestSeen, putTime(far)) })
	now := s.Now()
	if now.After(time.Now().Add(MaxAhead)) {
		t.Errorf("Now %v, more than MaxAhead ahead", now)
	}
	if res, err := s.Prune(now, map[string]time.Duration{"r": 7 * 24 * time.Hour}); err != nil || res.Terms != 0 {
		t.Errorf("prune on the event clock: %+v %v", res, err)
	}
	if !SaneSighting(recent, time.Now()) || SaneSighting(far, time.Now()) || SaneSighting(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()) {
		t.Error("SaneSighting")
	}
}

// TestDropRuleState: the scheduled and sequence state of the rules not
// kept goes, every part of it; the kept rule's stays whole.
func TestDropRuleState(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Commit(Batch{Emit: func(v *Verdicts) ([]Alert, error) {
		w := v.Windows()
		for _, rule := range []string{"kept", "gone", "gone too"} {
			if err := w.Put(rule, 60_000, []byte("g"), []byte{1}, 0); err != nil {
				return nil, err
			}
			if err := w.SetSignal(rule, []byte("g"), t0); err != nil {
				return nil, err
			}
			if err := w.SetLastRun(rule, t0); err != nil {
				return nil, err
			}
		}
		return nil, w.SeqPut("gone", 1, []byte("k"), []byte("v"))
	}})
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := s.DropRuleState(map[string]bool{"kept": true})
	if err != nil || !slices.Equal(dropped, []string{"gone", "gone too"}) {
		t.Fatalf("dropped %v (%v), want the two rules not kept", dropped, err)
	}
	ws, err := s.WindowStats()
	if err != nil || len(ws) != 1 || ws[0].Rule != "kept" || ws[0].Entries != 1 || ws[0].Signals != 1 || ws[0].LastRun.IsZero() {
		t.Errorf("window stats after: %+v (%v), want the kept rule's whole state", ws, err)
	}
	_, err = s.Commit(Batch{Emit: func(v *Verdicts) ([]Alert, error) {
		w := v.Windows()
		if _, ok := w.LastRun("gone"); ok || w.Size("gone") != 0 || w.Get("gone", 60_000, []byte("g")) != nil {
			t.Error("a dropped rule's run, size or window is left")
		}
		if n, _ := w.SeqScan("gone", func(int, []byte, []byte) bool { return false }); n != 0 {
			t.Errorf("%d sequences of a dropped rule left", n)
		}
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLegacySuppressionKey: a group that a build before length-prefixed
// group values opened (under its LegacyKey) is found once and moved to the
// new key: an upgrade does not alert again for an open group.
func TestLegacySuppressionKey(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "s.db"))
	g, _ := json.Marshal(suppressState{Start: t0, End: t0, Until: t0.Add(time.Hour), Doc: []byte(`{}`)})
	if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSuppress).Put([]byte("old"), g) }); err != nil {
		t.Fatal(err)
	}
	commit := func() CommitResult {
		t.Helper()
		res, err := s.Commit(Batch{Now: t0.Add(time.Minute), Emit: func(*Verdicts) ([]Alert, error) {
			return []Alert{{Doc: []byte(`{}`), Policy: &Policy{RuleID: "r", SuppressKey: "new", LegacyKey: "old", SuppressFor: time.Hour}}}, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := commit(); res.Suppressed != 1 || res.Written != 0 {
		t.Fatalf("first: %+v, want it suppressed into the group under the old key", res)
	}
	if res := commit(); res.Suppressed != 1 {
		t.Fatalf("second: %+v, want it suppressed into the moved group", res)
	}
	s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSuppress).Get([]byte("old")) != nil {
			t.Error("the group is still under the old key")
		}
		return nil
	})
}
