package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// histories is a closed state file of 3 histories of 100 terms.
func histories(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.db")
	s := openT(t, p)
	for h := range 3 {
		var batch []Term
		for i := range 100 {
			batch = append(batch, term(fmt.Sprintf("h%d", h), time.Duration(i)*time.Second, fmt.Sprintf("user-%03d", i)))
		}
		if _, err := s.Commit(Batch{Terms: batch}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	return p
}

// rawUpdate changes the file with bbolt directly, as another program could.
func rawUpdate(t *testing.T, p string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestLayoutChecked: a bucket where trailwatch keeps a value (or a value
// where it keeps a bucket), or an outbox key that is no sequence, passed
// Open, then failed every commit, prune or start that met it with bbolt's
// bare "incompatible value" (a chunk retried for ever), or stopped every
// delivery. Open now refuses such a file, naming bucket and key.
func TestLayoutChecked(t *testing.T) {
	cases := []struct {
		name, want string
		change     func(tx *bolt.Tx) error
	}{
		{"a bucket among a history's terms", `bucket "terms/h0": key "\x01x": a bucket where trailwatch keeps a value`, func(tx *bolt.Tx) error {
			_, err := tx.Bucket(bucketTerms).Bucket([]byte("h0")).CreateBucket([]byte("\x01x"))
			return err
		}},
		{"a bucket in rule_history", `bucket "rule_history": key "rule-a": a bucket where`, func(tx *bolt.Tx) error {
			_, err := tx.Bucket(bucketRuleHistory).CreateBucket([]byte("rule-a"))
			return err
		}},
		{"a value where a history is", `bucket "terms": key "h9": a value where trailwatch keeps a bucket`, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketTerms).Put([]byte("h9"), []byte("x"))
		}},
		{"a short outbox key", `bucket "outbox": key "zz" is not an alert's sequence`, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketOutbox).Put([]byte("zz"), []byte(`{}`))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := histories(t)
			rawUpdate(t, p, c.change)
			s, err := Open(p, Options{})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// TestExportPassesOverBadTerms: one term whose value had changed bytes
// (Open passes it) made Export write nothing of the others.
func TestExportPassesOverBadTerms(t *testing.T) {
	p := histories(t)
	rawUpdate(t, p, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTerms).Bucket([]byte("h0")).Put(EncodeValues([]string{"user-000"}), []byte{1, 2, 3, 4})
	})
	s := openT(t, p)
	defer s.Close()
	var buf bytes.Buffer
	n, err := s.Export(&buf)
	if lines := bytes.Count(buf.Bytes(), []byte("\n")); n != 299 || lines != 299 {
		t.Errorf("%d terms counted, %d lines written, want 299", n, lines)
	}
	if err == nil || !strings.Contains(err.Error(), "1 terms could not be read and were passed over (the first: history h0: a last sighting of 4 bytes)") {
		t.Errorf("err = %v, want the bad term named", err)
	}
}

// afterCut opens a state file, cuts it to nothing under the store, and
// makes the calls in turn: each must return an error naming the file, and
// none may hang.
func afterCut(t *testing.T, calls ...func(*Store) error) {
	t.Helper()
	p := histories(t)
	s := openT(t, p)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan []error, 1)
	go func() {
		var errs []error
		for _, call := range calls {
			errs = append(errs, call(s))
		}
		done <- errs
	}()
	select {
	case errs := <-done:
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("call %d after the cut: %v, want an error naming the file", i, err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the store hangs after a fault")
	}
}

func commitOne(s *Store) error {
	_, err := s.Commit(Batch{Terms: []Term{term("h0", time.Hour, "x")}})
	return err
}

func closeStore(s *Store) error { return s.Close() }

// TestFaultUnderBboltBreaksTheStore: a file cut short while open faulted
// inside bbolt's start of a transaction; the error came back, but bbolt's
// lock stayed held, and every later commit, and Close, waited for ever.
// WindowStats and NodeID were not guarded at all: the fault killed the
// process (a /metrics scrape could).
func TestFaultUnderBboltBreaksTheStore(t *testing.T) {
	afterCut(t,
		func(s *Store) error { _, err := s.Stats(); return err },
		func(s *Store) error { _, err := s.WindowStats(); return err },
		func(s *Store) error { _, err := s.NodeID(); return err },
		commitOne, closeStore)
}

// TestFaultInPruneDoesNotHang: Prune's pass over the alert ids took the
// store's lock without a defer, so the fault's panic left it held and every
// later commit and Close waited for ever.
func TestFaultInPruneDoesNotHang(t *testing.T) {
	afterCut(t,
		func(s *Store) error { _, err := s.Prune(time.Now(), nil); return err },
		commitOne, closeStore)
}

// TestWindowSizeGarbageRecounted: a window size with its top bit set read
// as negative, and the rule's cap never held again.
func TestWindowSizeGarbageRecounted(t *testing.T) {
	p := histories(t)
	rawUpdate(t, p, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWindowSizes)
		if err != nil {
			return err
		}
		return b.Put([]byte("rule"), binary.BigEndian.AppendUint64(nil, 1<<63))
	})
	s := openT(t, p)
	defer s.Close()
	accepted := 0
	_, err := s.Commit(Batch{Emit: func(v *Verdicts) ([]Alert, error) {
		for i := range 50 {
			if v.Windows().Put("rule", 0, []byte(fmt.Sprint(i)), []byte{1}, 10) == nil {
				accepted++
			}
		}
		return nil, nil
	}})
	if err != nil || accepted != 10 {
		t.Errorf("cap 10: %d entries accepted (err %v)", accepted, err)
	}
}

// TestDirectoryIsNoStateFile: a folder given as the state file was called
// damaged (move it aside), and db export "salvaged" it.
func TestDirectoryIsNoStateFile(t *testing.T) {
	d := t.TempDir()
	_, err := Open(d, Options{})
	if err == nil || !strings.Contains(err.Error(), "a directory, not a state file") || strings.Contains(err.Error(), "damaged") {
		t.Errorf("err = %v", err)
	}
}
