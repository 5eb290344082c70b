package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// damageFixture writes a state file with three histories of n terms each
// and a few alerts in the outbox, and returns its bytes.
func damageFixture(t testing.TB, n int) (good []byte, terms int) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "good.db")
	s, err := Open(p, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for h := range 3 {
		var batch []Term
		for i := range n {
			batch = append(batch, term(fmt.Sprintf("history-%d", h), time.Duration(i)*time.Second, fmt.Sprintf("arn:aws:iam::123456789012:user/u%05d", i)))
		}
		_, err := s.Commit(Batch{Terms: batch, Emit: func(v *Verdicts) ([]Alert, error) {
			// The scheduled rules' state too: windows, a run, a sequence,
			// the aggregating rules' record ids.
			w := v.Windows()
			rule := fmt.Sprintf("rule-%d", h)
			for i := range n {
				if err := w.Append(rule, int64(i%4)*60_000, []byte(fmt.Sprintf("g%d", i)), []byte{1, 2, 3}, 0); err != nil {
					return nil, err
				}
			}
			if err := w.SetLastRun(rule, t0); err != nil {
				return nil, err
			}
			if err := w.SeqPut(rule, 1, []byte("key"), []byte("seq")); err != nil {
				return nil, err
			}
			if err := w.AddRecordIDs(int64(h), []uint64{1, 2, uint64(h) << 32}); err != nil {
				return nil, err
			}
			return []Alert{{Doc: []byte(`{"a":1}`)}, {Doc: []byte(`{"a":2}`)}}, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	good, err = os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return good, 3 * n
}

// salvageLines runs Salvage and checks every line it writes is an export
// line; it returns the lines.
func salvageLines(t *testing.T, p string) ([]exported, SalvageResult) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Salvage(p, &buf)
	if err != nil && res.Terms > 0 {
		t.Fatalf("salvage: %v after %d terms", err, res.Terms)
	}
	var out []exported
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.RuleID == "" || len(e.Values) != 1 || e.LastSeen.IsZero() {
			t.Fatalf("salvaged line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if len(out) != res.Terms {
		t.Fatalf("%d lines, %d terms counted", len(out), res.Terms)
	}
	return out, res
}

// refused checks that Open refuses a damaged file with a message naming it
// and saying what to do, and does not leave it marked open.
func refused(t *testing.T, p, what string) {
	t.Helper()
	s, err := Open(p, Options{NoSync: true, LockTimeout: time.Second})
	if err == nil {
		s.Close()
		t.Fatalf("%s: opened", what)
	}
	if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, "db export") || !errors.Is(err, ErrDamaged) && !strings.Contains(msg, "too short") {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestDamagedFileRefusedAndSalvaged: a state file cut short anywhere (bbolt
// faulted with SIGBUS on the pages past its end), a page zeroed (an
// assertion panic inside Adopt), or bytes flipped at random, is refused by
// Open with a message naming the file; or, when the damage is where no
// reader looks (a free page), opened and used without a crash. Salvage
// reads what is left of the history: every term of an intact page.
func TestDamagedFileRefusedAndSalvaged(t *testing.T) {
	good, total := damageFixture(t, 300)
	dir := t.TempDir()
	ps := int(binary.NativeEndian.Uint32(good[pageHeaderSize+8:]))
	p := filepath.Join(dir, "s.db")
	write := func(b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good)
	if got, res := salvageLines(t, p); len(got) != total || len(res.Problems) != 0 {
		t.Fatalf("salvage of a good file: %d terms of %d, problems %v", len(got), total, res.Problems)
	}
	// Cut short: at every kilobyte from 4 KB to 20 KB, then at every
	// fourth page and one byte short of it. Past the pages the meta counts, the file
	// grew ahead of its use: a cut there loses nothing.
	var bf boltFile
	m, _ := bf.choose(bf.metasOf(good))
	used := int(m.pgid) * ps
	var cuts []int
	for n := 4096; n < 20<<10; n += 1024 {
		cuts = append(cuts, n)
	}
	for n := 20 << 10; n <= len(good); n += 4 * ps {
		cuts = append(cuts, n, n-1)
	}
	salvaged := 0
	for _, n := range cuts {
		write(good[:n])
		if n >= used {
			s, err := Open(p, Options{NoSync: true})
			if err != nil {
				t.Fatalf("cut at %d, past the %d bytes in use: %v", n, used, err)
			}
			useAll(t, s)
			continue
		}
		refused(t, p, fmt.Sprintf("cut at %d", n))
		got, _ := salvageLines(t, p)
		salvaged = max(salvaged, len(got))
	}
	if salvaged == 0 {
		t.Errorf("no cut file gave back a term")
	}
	// Each page in use zeroed in turn.
	pages := used / ps
	refusedZero, salvagedSome := 0, 0
	for pg := 2; pg < pages; pg++ {
		b := bytes.Clone(good)
		clear(b[pg*ps : (pg+1)*ps])
		write(b)
		s, err := Open(p, Options{NoSync: true})
		if err == nil {
			// A free page: nothing reads it.
			useAll(t, s)
			continue
		}
		refusedZero++
		refused(t, p, fmt.Sprintf("page %d zeroed", pg))
		got, res := salvageLines(t, p)
		if len(got) > 0 && len(got) < total {
			salvagedSome++
		}
		if len(res.Problems) == 0 && len(got) != total {
			// The freelist page: salvage does not read it.
			t.Errorf("page %d zeroed: %d terms of %d salvaged, and no problem seen", pg, len(got), total)
		}
	}
	if refusedZero < pages/2 || salvagedSome == 0 {
		t.Errorf("of %d pages zeroed, %d refused, %d partly salvaged", pages-2, refusedZero, salvagedSome)
	}
	// Random bytes of random pages.
	rng := rand.New(rand.NewSource(1))
	opened := 0
	for range 100 {
		b := bytes.Clone(good)
		for range 1 + rng.Intn(8) {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		write(b)
		if s, err := Open(p, Options{NoSync: true, LockTimeout: time.Second}); err == nil {
			opened++
			useAll(t, s)
		} else if !strings.Contains(err.Error(), p) {
			t.Fatalf("flipped bytes: %v", err)
		}
		salvageLines(t, p)
	}
	t.Logf("%d pages: %d zeroed pages refused (%d partly salvaged); 100 random damages: %d opened", pages, refusedZero, salvagedSome, opened)
}

// useAll reads and writes everything of an open store, which must not
// panic, whatever it finds.
func useAll(t *testing.T, s *Store) {
	t.Helper()
	defer s.Close()
	s.Stats()
	s.Export(&bytes.Buffer{})
	s.Pending(100)
	s.Adopt([]History{{Name: "history-0", Identity: "x", Rules: []string{"r"}}})
	s.Commit(Batch{Terms: []Term{term("history-1", time.Hour, "new")}})
	s.WindowStats()
	s.RecordIDs(func(int64, []uint64) bool { return true })
	s.DropRuleState(map[string]bool{"rule-0": true})
	s.Commit(Batch{Emit: func(v *Verdicts) ([]Alert, error) {
		w := v.Windows()
		w.Scan("rule-0", 0, 1<<40, func(int64, []byte, []byte) error { return nil })
		w.Compact("rule-0", 0, []byte("g"), func(parts [][]byte) ([]byte, error) { return []byte{1}, nil })
		w.DropBefore("rule-1", 120_000)
		w.SeqScan("rule-2", func(int, []byte, []byte) bool { return true })
		w.AddRecordIDs(9, []uint64{9})
		w.DropRecordIDsBefore(1)
		return nil, nil
	}})
	s.Prune(t0.Add(30*24*time.Hour), nil)
	s.Sweep(time.Now(), nil)
}
