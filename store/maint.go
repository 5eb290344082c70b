package store

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pruneBatch bounds the deletions of one prune transaction, so that pruning
// never holds the writer long enough to stall record batches.
const pruneBatch = 10_000

// PruneResult counts what Prune removed.
type PruneResult struct {
	Terms int // terms older than their rule's window
	Rules int // rules no longer in the rule set whose history expired
}

// Prune removes terms last seen longer than their history's window before
// now: they can no longer keep a term from being new, so the file stops
// growing once the window is full. windows maps the current histories (or
// rule ids) to their windows; a history also keeps the window it was last
// written with if that is longer, and one not in windows has its bucket
// dropped once empty (a history with no known window keeps nothing stale). With the event clock, now is the latest event time
// recorded (use Now to read it).
func (s *Store) Prune(now time.Time, windows map[string]time.Duration) (PruneResult, error) {
	var res PruneResult
	if err := s.pruneAlertIDs(); err != nil {
		return res, &Error{s.path, "prune", err}
	}
	for {
		n, done, err := s.pruneStep(now, windows, &res)
		if err != nil {
			return res, &Error{s.path, "prune", err}
		}
		res.Terms += n
		if done {
			return res, nil
		}
	}
}

func (s *Store) pruneStep(now time.Time, windows map[string]time.Duration, res *PruneResult) (int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	deleted, done := 0, true
	err := s.db.Update(func(tx *bolt.Tx) error {
		terms, rules := tx.Bucket(bucketTerms), tx.Bucket(bucketRules)
		var emptied [][]byte
		err := terms.ForEachBucket(func(rule []byte) error {
			if deleted >= pruneBatch {
				done = false
				return nil
			}
			// The longer of the given window and the one the history was
			// last written with (the longest of the rules that read it):
			// a term some rule may still need is never dropped.
			w := windows[string(rule)]
			if v := rules.Get(rule); len(v) == 8 {
				w = max(w, time.Duration(binary.BigEndian.Uint64(v)))
			}
			cutoff := now.Add(-w)
			b := terms.Bucket(rule)
			c := b.Cursor()
			for k, v := c.First(); k != nil; {
				if t, ok := getTime(v); ok && !t.Before(cutoff) {
					k, v = c.Next()
					continue
				}
				if err := c.Delete(); err != nil {
					return err
				}
				deleted++
				if deleted >= pruneBatch {
					done = false
					return nil
				}
				k, v = c.Seek(k)
			}
			if first, _ := b.Cursor().First(); first == nil {
				if _, isCurrent := windows[string(rule)]; !isCurrent {
					emptied = append(emptied, append([]byte(nil), rule...))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range emptied {
			if err := terms.DeleteBucket(r); err != nil {
				return err
			}
			if err := rules.Delete(r); err != nil {
				return err
			}
			res.Rules++
		}
		return nil
	})
	return deleted, done, err
}

// pruneAlertIDs forgets alert ids older than DedupWindow (on the wall
// clock: they guard against retries, which happen in real time).
func (s *Store) pruneAlertIDs() error {
	for {
		s.mu.Lock()
		more := false
		err := s.db.Update(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketAlertIDs).Cursor()
			n := 0
			for k, v := c.First(); k != nil; {
				if t, ok := getTime(v); ok && time.Since(t) < DedupWindow {
					k, v = c.Next()
					continue
				}
				if err := c.Delete(); err != nil {
					return err
				}
				if n++; n >= pruneBatch {
					more = true
					return nil
				}
				k, v = c.Seek(k)
			}
			return nil
		})
		s.mu.Unlock()
		if err != nil || !more {
			return err
		}
	}
}

// Now returns the latest term time recorded: "now" on the event clock.
func (s *Store) Now() time.Time {
	var t time.Time
	s.db.View(func(tx *bolt.Tx) error {
		t, _ = getTime(tx.Bucket(bucketMeta).Get(keyLatestSeen))
		return nil
	})
	return t
}

// RuleStats describes the stored history of one rule.
type RuleStats struct {
	RuleID         string        `json:"rule_id"`
	Terms          int           `json:"terms"`
	Oldest, Newest time.Time     `json:"-"`
	Window         time.Duration `json:"-"`
}

// Stats describes the file.
type Stats struct {
	Path       string
	FileSize   int64
	Rules      []RuleStats
	Terms      int
	Outbox     int
	Overflowed int
	FirstSeen  time.Time
	LatestSeen time.Time
}

// Stats reads the file's statistics.
func (s *Store) Stats() (Stats, error) {
	st := Stats{Path: s.path}
	if fi, err := os.Stat(s.path); err == nil {
		st.FileSize = fi.Size()
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.FirstSeen, _ = getTime(meta.Get(keyFirstSeen))
		st.LatestSeen, _ = getTime(meta.Get(keyLatestSeen))
		st.Overflowed, _ = strconv.Atoi(string(meta.Get(keyOverflow)))
		st.Outbox = tx.Bucket(bucketOutbox).Stats().KeyN
		rules := tx.Bucket(bucketRules)
		terms := tx.Bucket(bucketTerms)
		return terms.ForEachBucket(func(rule []byte) error {
			rs := RuleStats{RuleID: string(rule)}
			if v := rules.Get(rule); len(v) == 8 {
				rs.Window = time.Duration(binary.BigEndian.Uint64(v))
			}
			err := terms.Bucket(rule).ForEach(func(_, v []byte) error {
				t, ok := getTime(v)
				if !ok {
					return nil
				}
				rs.Terms++
				if rs.Oldest.IsZero() || t.Before(rs.Oldest) {
					rs.Oldest = t
				}
				if t.After(rs.Newest) {
					rs.Newest = t
				}
				return nil
			})
			st.Terms += rs.Terms
			st.Rules = append(st.Rules, rs)
			return err
		})
	})
	if err != nil {
		return st, &Error{s.path, "stats", err}
	}
	sort.Slice(st.Rules, func(i, j int) bool { return st.Rules[i].RuleID < st.Rules[j].RuleID })
	return st, nil
}

// exported is one line of an export: a term with its last sighting.
type exported struct {
	RuleID   string    `json:"rule_id"`
	Values   []string  `json:"values"`
	LastSeen time.Time `json:"last_seen"`
	Window   string    `json:"window,omitempty"`
}

// Export writes every term as NDJSON, so a replaced node can take its
// history along.
func (s *Store) Export(w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		rules, terms := tx.Bucket(bucketRules), tx.Bucket(bucketTerms)
		return terms.ForEachBucket(func(rule []byte) error {
			win := ""
			if v := rules.Get(rule); len(v) == 8 {
				win = time.Duration(binary.BigEndian.Uint64(v)).String()
			}
			return terms.Bucket(rule).ForEach(func(k, v []byte) error {
				vals, err := DecodeValues(k)
				if err != nil {
					return fmt.Errorf("rule %s: %w", rule, err)
				}
				t, _ := getTime(v)
				line, err := json.Marshal(exported{RuleID: string(rule), Values: vals, LastSeen: t, Window: win})
				if err != nil {
					return err
				}
				bw.Write(line)
				bw.WriteByte('\n')
				n++
				return nil
			})
		})
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, &Error{s.path, "export", err}
	}
	return n, nil
}

// Import reads an export and merges it: a term keeps the later of its
// stored and imported sightings. Lines are committed in batches; a bad line
// is an error naming its line number, and nothing after it is read.
func (s *Store) Import(r io.Reader, name string) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line, total := 0, 0
	var batch []exported
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.cache.reset() // imported sightings may be later than cached ones
		err := s.db.Update(func(tx *bolt.Tx) error {
			rules, terms := tx.Bucket(bucketRules), tx.Bucket(bucketTerms)
			for _, e := range batch {
				b, err := terms.CreateBucketIfNotExists([]byte(e.RuleID))
				if err != nil {
					return err
				}
				if e.Window != "" && rules.Get([]byte(e.RuleID)) == nil {
					if d, err := time.ParseDuration(e.Window); err == nil {
						rules.Put([]byte(e.RuleID), binary.BigEndian.AppendUint64(nil, uint64(d)))
					}
				}
				k := EncodeValues(e.Values)
				if old, ok := getTime(b.Get(k)); ok && !e.LastSeen.After(old) {
					continue
				}
				if err := b.Put(k, putTime(e.LastSeen)); err != nil {
					return err
				}
			}
			return nil
		})
		total += len(batch)
		batch = batch[:0]
		return err
	}
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return total, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if e.RuleID == "" || len(e.Values) == 0 || e.LastSeen.IsZero() {
			return total, fmt.Errorf("%s:%d: expected rule_id, values and last_seen", name, line)
		}
		batch = append(batch, e)
		if len(batch) >= 5000 {
			if err := flush(); err != nil {
				return total, &Error{s.path, "import", err}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return total, fmt.Errorf("%s:%d: %v", name, line+1, err)
	}
	if err := flush(); err != nil {
		return total, &Error{s.path, "import", err}
	}
	return total, nil
}

// Adopt records which history each rule reads (histories maps a history's
// name to its rules' ids) and carries sightings over when a history is new
// to its rules: a rule that read another history when last run (its own,
// before it shared one; or a shared one whose lowest rule id left) brings
// that history's terms into the one it reads now, keeping the later
// sighting of each, so that no change of name makes old terms new again.
// A history that some rule already read is left as it is. It returns how
// many terms were carried over.
func (s *Store) Adopt(histories map[string][]string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	carried := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		carried = 0
		terms, rules, rh := tx.Bucket(bucketTerms), tx.Bucket(bucketRules), tx.Bucket(bucketRuleHistory)
		// The histories some rule read when last run.
		live := map[string]bool{}
		if err := rh.ForEach(func(_, h []byte) error { live[string(h)] = true; return nil }); err != nil {
			return err
		}
		names := make([]string, 0, len(histories))
		for h := range histories {
			names = append(names, h)
		}
		sort.Strings(names)
		for _, h := range names {
			for _, rule := range histories[h] {
				prev := string(rh.Get([]byte(rule)))
				if prev == "" && terms.Bucket([]byte(rule)) != nil {
					prev = rule // a version 1 file: each rule read its own
				}
				if prev != "" && prev != h && !live[h] && terms.Bucket([]byte(prev)) != nil {
					n, err := mergeHistory(terms, rules, prev, h)
					if err != nil {
						return fmt.Errorf("carrying rule %s's history %s over to %s: %w", rule, prev, h, err)
					}
					carried += n
				}
				if prev != h {
					if err := rh.Put([]byte(rule), []byte(h)); err != nil {
						return err
					}
				}
			}
		}
		// A rule no longer run keeps its entry while the history it names
		// exists (it may come back); then it is forgotten.
		running := map[string]bool{}
		for _, rs := range histories {
			for _, r := range rs {
				running[r] = true
			}
		}
		var gone [][]byte
		err := rh.ForEach(func(rule, h []byte) error {
			if !running[string(rule)] && terms.Bucket(h) == nil {
				gone = append(gone, append([]byte(nil), rule...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		return deleteKeys(rh, gone)
	})
	if err != nil {
		return 0, &Error{s.path, "adopt", err}
	}
	if carried > 0 {
		s.cache.reset()
	}
	return carried, nil
}

// mergeHistory copies the terms of history from into history to, keeping
// the later sighting of each, and gives to the longer of the two windows.
func mergeHistory(terms, rules *bolt.Bucket, from, to string) (int, error) {
	src := terms.Bucket([]byte(from))
	dst, err := terms.CreateBucketIfNotExists([]byte(to))
	if err != nil {
		return 0, err
	}
	n := 0
	err = src.ForEach(func(k, v []byte) error {
		t, ok := getTime(v)
		if !ok {
			return nil
		}
		if old, ok := getTime(dst.Get(k)); ok && !t.After(old) {
			return nil
		}
		n++
		return dst.Put(append([]byte(nil), k...), append([]byte(nil), v...))
	})
	if err != nil {
		return n, err
	}
	fw, tw := rules.Get([]byte(from)), rules.Get([]byte(to))
	if len(fw) == 8 && (len(tw) != 8 || binary.BigEndian.Uint64(fw) > binary.BigEndian.Uint64(tw)) {
		if err := rules.Put([]byte(to), append([]byte(nil), fw...)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// deleteKeys deletes keys from b (collected first: a bucket is not changed
// while it is walked).
func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
