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

// Prune removes terms last seen longer than their rule's window before now:
// they can no longer keep a term from being new, so the file stops growing
// once the window is full. windows maps the current rules to their windows;
// a rule not in it keeps the window it was last run with, and its bucket is
// dropped once empty. With the event clock, now is the latest event time
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
			w, ok := windows[string(rule)]
			if !ok {
				if v := rules.Get(rule); len(v) == 8 {
					w = time.Duration(binary.BigEndian.Uint64(v))
				} else {
					w = 0 // unknown window: keep nothing stale
				}
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
