package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// crashChild runs in a child process: it commits batches of terms with the
// alerts they imply, "delivers" each batch's alerts to a log (fsync'd) and
// acks them, until it is killed.
func crashChild(dir string) {
	s, err := Open(filepath.Join(dir, "state.db"), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	log, err := os.OpenFile(filepath.Join(dir, "delivered.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		os.Exit(3)
	}
	deliver := func(ps []Pending) {
		var seqs []uint64
		for _, p := range ps {
			log.Write(append(p.Alert, '\n'))
			seqs = append(seqs, p.Seq)
		}
		log.Sync()
		s.Ack(seqs)
	}
	// Alerts left by the previous life first.
	if ps, _ := s.Pending(1 << 30); len(ps) > 0 {
		deliver(ps)
	}
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	seen := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(1000)) * time.Second)
	for {
		var terms []Term
		for i := 0; i < 1+r.IntN(40); i++ {
			terms = append(terms, Term{History: "rule", Values: []string{fmt.Sprintf("v%d", r.IntN(200000))}, Seen: seen, Window: 1000 * time.Hour})
		}
		res, err := s.Commit(Batch{Terms: terms, Emit: func(v *Verdicts) ([]Alert, error) {
			var out []Alert
			for i := range terms {
				if v.New(i) {
					b, _ := json.Marshal(map[string]string{"term": terms[i].Values[0]})
					out = append(out, Alert{ID: terms[i].Values[0], Doc: b})
				}
			}
			return out, nil
		}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		if len(res.Seqs) > 0 {
			ps, _ := s.Pending(1 << 30)
			deliver(ps)
		}
	}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("TRAILWATCH_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// TestCrashLosesNoAlert kills a writer with SIGKILL at random points many
// times. After each kill, every recorded term has its alert either delivered
// or waiting in the outbox, and no alert names a term that is not recorded.
func TestCrashLosesNoAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the crash test in -short mode (it kills a child process 40 times)")
	}
	dir := t.TempDir()
	kills := 40
	made := false // a round found the store made (its file and buckets)
	for i := 0; i < kills; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TRAILWATCH_CRASH_CHILD="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rand.IntN(120)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child %d ended on its own (%v): %s", i, err, stderr.String())
		}
		made = checkCrashInvariant(t, dir, i, made)
	}
}

// checkCrashInvariant checks the state after a kill, and returns whether
// the store was made by then: until one round finds it made, the child may
// have been killed before it made the file or committed its first
// transaction (a slow start on a loaded machine), which leaves nothing.
func checkCrashInvariant(t *testing.T, dir string, round int, made bool) bool {
	t.Helper()
	alerted := map[string]bool{}
	if f, err := os.Open(filepath.Join(dir, "delivered.log")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var a map[string]string
			if json.Unmarshal(sc.Bytes(), &a) == nil {
				alerted[a["term"]] = true
			}
			// A torn last line (killed mid-write, before its ack) is
			// redelivered from the outbox, so it may be skipped here.
		}
		f.Close()
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); errors.Is(err, os.ErrNotExist) && !made {
		return false // killed before it made the file: nothing written
	}
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("round %d: the state file does not open after SIGKILL: %v", round, err)
	}
	defer db.Close()
	terms := map[string]bool{}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOutbox) == nil && !made {
			// Killed after bbolt made the file but before the store's
			// first transaction (which makes every bucket) committed:
			// nothing written.
			if tx.Bucket(bucketTerms) != nil {
				return errors.New("a terms bucket without an outbox")
			}
			return nil
		}
		made = true
		tx.Bucket(bucketOutbox).ForEach(func(_, v []byte) error {
			var a map[string]string
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("outbox entry %q: %v", v, err)
			}
			alerted[a["term"]] = true
			return nil
		})
		if b := tx.Bucket(bucketTerms).Bucket([]byte("rule")); b != nil {
			return b.ForEach(func(k, _ []byte) error {
				v, err := DecodeValues(k)
				if err != nil {
					return err
				}
				terms[v[0]] = true
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	for term := range terms {
		if !alerted[term] {
			t.Fatalf("round %d: term %s is recorded but its alert is neither delivered nor in the outbox", round, term)
		}
	}
	for term := range alerted {
		if !terms[term] {
			t.Fatalf("round %d: alert for %s but the term is not recorded", round, term)
		}
	}
	t.Logf("round %d: %d terms, all with their alerts", round, len(terms))
	return made
}
