package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
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
func (s *Store) Prune(now time.Time, windows map[string]time.Duration) (res PruneResult, err error) {
	defer s.guard("prune", &err)()
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
	err := s.update(func(tx *bolt.Tx) error {
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
			if w <= 0 {
				// No window known (an import without one, no rule of
				// the set reading it): kept, where a window of zero
				// dropped every term.
				return nil
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
				var err error
				if k, v, err = seekAfter(c, k); err != nil {
					return err
				}
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
		more, err := s.pruneAlertIDsStep()
		if err != nil || !more {
			return err
		}
	}
}

// pruneAlertIDsStep forgets up to pruneBatch of them, and reports whether
// more are left. (The lock is let go by a defer: a fault under bbolt
// panics through here to Prune's guard, and the lock it kept hung every
// later commit and Close.)
func (s *Store) pruneAlertIDsStep() (more bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.update(func(tx *bolt.Tx) error {
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
			var err error
			if k, v, err = seekAfter(c, k); err != nil {
				return err
			}
		}
		return nil
	})
	return more, err
}

// Now returns the latest term time recorded: "now" on the event clock; but
// never more than MaxAhead past the wall clock (a file written before
// sightings were bounded may hold one decades ahead, which would make
// pruning drop every term).
func (s *Store) Now() (t time.Time) {
	var err error
	defer s.guard("read the clock", &err)()
	s.view(func(tx *bolt.Tx) error {
		t, _ = getTime(tx.Bucket(bucketMeta).Get(keyLatestSeen))
		return nil
	})
	if limit := time.Now().Add(MaxAhead); t.After(limit) {
		t = limit
	}
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
	// RecordIDs are the records the scheduled rules remember having
	// counted (engine.MaxRecordIDs at most).
	RecordIDs  int
	FirstSeen  time.Time
	LatestSeen time.Time
}

// Stats reads the file's statistics.
func (s *Store) Stats() (st Stats, err error) {
	defer s.guard("stats", &err)()
	st = Stats{Path: s.path}
	if fi, err := os.Stat(s.path); err == nil {
		st.FileSize = fi.Size()
	}
	err = s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.FirstSeen, _ = getTime(meta.Get(keyFirstSeen))
		st.LatestSeen, _ = getTime(meta.Get(keyLatestSeen))
		st.Overflowed, _ = strconv.Atoi(string(meta.Get(keyOverflow)))
		st.Outbox = tx.Bucket(bucketOutbox).Stats().KeyN
		if b := tx.Bucket(bucketRecordIDs); b != nil {
			if err := b.ForEach(func(_, v []byte) error { st.RecordIDs += len(v) / 8; return nil }); err != nil {
				return err
			}
		}
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
	RuleID   string        `json:"rule_id"`
	Values   []string      `json:"values"`
	LastSeen time.Time     `json:"last_seen"`
	Window   string        `json:"window,omitempty"`
	window   time.Duration // Window, parsed (import)
}

// exportWriter writes terms as export lines.
type exportWriter struct{ bw *bufio.Writer }

func newExportWriter(w io.Writer) *exportWriter { return &exportWriter{bufio.NewWriter(w)} }

// term writes one term of history rule: its encoded values k and last
// sighting v, with the history's window.
func (ew *exportWriter) term(rule string, k, v []byte, win string) error {
	vals, err := DecodeValues(k)
	if err != nil {
		return &unreadableTerm{fmt.Errorf("history %s: %w", rule, err)}
	}
	t, ok := getTime(v)
	if !ok {
		return &unreadableTerm{fmt.Errorf("history %s: a last sighting of %d bytes", rule, len(v))}
	}
	line, err := json.Marshal(exported{RuleID: rule, Values: vals, LastSeen: t, Window: win})
	if err != nil {
		return err
	}
	ew.bw.Write(line)
	return ew.bw.WriteByte('\n')
}

func (ew *exportWriter) flush() error { return ew.bw.Flush() }

// Export writes every term as NDJSON, so a replaced node can take its
// history along.
func (s *Store) Export(w io.Writer) (n int, err error) {
	defer s.guard("export", &err)()
	ew := newExportWriter(w)
	// What was read goes out whatever happens after it (a fault included).
	defer func() {
		if ferr := ew.flush(); ferr != nil && err == nil {
			err = &Error{s.path, "export", ferr}
		}
	}()
	var bad []string
	err = s.view(func(tx *bolt.Tx) error {
		rules, terms := tx.Bucket(bucketRules), tx.Bucket(bucketTerms)
		return terms.ForEachBucket(func(rule []byte) error {
			win := ""
			if v := rules.Get(rule); len(v) == 8 {
				win = time.Duration(binary.BigEndian.Uint64(v)).String()
			}
			return terms.Bucket(rule).ForEach(func(k, v []byte) error {
				// A term that does not decode is passed over and named: one
				// changed byte lost every term of the export.
				var ut *unreadableTerm
				if err := ew.term(string(rule), k, v, win); errors.As(err, &ut) {
					bad = append(bad, ut.Error())
					return nil
				} else if err != nil {
					return err
				}
				n++
				return nil
			})
		})
	})
	if err != nil {
		return n, &Error{s.path, "export", err}
	}
	if len(bad) > 0 {
		return n, &Error{s.path, "export", fmt.Errorf("%d terms could not be read and were passed over (the first: %s); the others are exported", len(bad), bad[0])}
	}
	return n, nil
}

// unreadableTerm is a stored term that does not decode.
type unreadableTerm struct{ error }

// Import reads an export and merges it: a term keeps the later of its
// stored and imported sightings. Lines are committed in batches; a bad line
// is an error naming its line number, and nothing after it is read.
func (s *Store) Import(r io.Reader, name string) (_ int, err error) {
	defer s.guard("import", &err)()
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
		err := s.update(func(tx *bolt.Tx) error {
			rules, terms := tx.Bucket(bucketRules), tx.Bucket(bucketTerms)
			for _, e := range batch {
				b, err := terms.CreateBucketIfNotExists([]byte(e.RuleID))
				if err != nil {
					return err
				}
				if e.window > 0 && rules.Get([]byte(e.RuleID)) == nil {
					rules.Put([]byte(e.RuleID), binary.BigEndian.AppendUint64(nil, uint64(e.window)))
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
		if err == nil {
			total += len(batch) // committed
		}
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
		if !SaneSighting(e.LastSeen, time.Now()) {
			return total, fmt.Errorf("%s:%d: last_seen %s is outside %s to %s from now", name, line, e.LastSeen.Format(time.RFC3339), MinSighting.Format("2006-01-02"), MaxAhead)
		}
		// A history's name is a rule_id: no NUL (names with one are the
		// store's own: one imported stopped every later start), and a key
		// bbolt takes; a window is a positive duration (a negative one
		// made prune drop terms seen a minute before).
		if strings.ContainsRune(e.RuleID, 0) || len(e.RuleID) > bolt.MaxKeySize {
			return total, fmt.Errorf("%s:%d: rule_id %q is no rule_id", name, line, e.RuleID)
		}
		if k := EncodeValues(e.Values); len(k) > bolt.MaxKeySize {
			return total, fmt.Errorf("%s:%d: values of %d bytes (a term may be at most %d)", name, line, len(k), bolt.MaxKeySize)
		}
		if e.Window != "" {
			d, err := time.ParseDuration(e.Window)
			if err != nil || d <= 0 {
				return total, fmt.Errorf("%s:%d: window %q: expected a positive duration such as 168h", name, line, e.Window)
			}
			e.window = d
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

// History is one new_terms history as the rule set defines it: its name,
// what it counts (Identity: the same for rules with one query, exceptions
// and list of fields, and for no other) and the rules that read it.
type History struct {
	Name     string
	Identity string
	Rules    []string
}

// Adopt makes each history hold what its rules have seen, and records which
// history each rule reads and what each history counts. A history some rule
// read when last run, for the same identity, is left as it is. Any other
// (new, stale, or holding another query's terms) is rebuilt from the
// up-to-date histories of the same identity when there are any (a rule
// joining or leaving a shared history brings exactly its terms; a query
// another history already counts comes with what it has seen, as in
// Kibana, where the history is the indexed data), else from the histories
// its rules read when last run (a rule whose query was edited keeps what it
// had seen, so an edit does not make every term new again); each term keeps
// its later sighting. It returns how many terms were carried over.
func (s *Store) Adopt(hs []History) (_ int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.guard("adopt", &err)()
	carried := 0
	err = s.update(func(tx *bolt.Tx) error {
		carried = 0
		terms, rules := tx.Bucket(bucketTerms), tx.Bucket(bucketRules)
		rh, ids := tx.Bucket(bucketRuleHistory), tx.Bucket(bucketHistoryIDs)
		// What each rule read when last run, and the histories that were
		// read; a file written before histories were shared had each rule
		// read its own.
		prev := map[string]string{}
		live := map[string]bool{}
		if err := rh.ForEach(func(r, h []byte) error {
			prev[string(r)] = string(h)
			live[string(h)] = true
			return nil
		}); err != nil {
			return err
		}
		if len(prev) == 0 {
			err := terms.ForEachBucket(func(r []byte) error {
				prev[string(r)] = string(r)
				live[string(r)] = true
				return nil
			})
			if err != nil {
				return err
			}
		}
		identity := func(name string) (string, bool) {
			v := ids.Get([]byte(name))
			return string(v), v != nil
		}
		// The up-to-date histories of each query.
		liveOf := map[string][]string{}
		for name := range live {
			if id, ok := identity(name); ok && terms.Bucket([]byte(name)) != nil {
				liveOf[id] = append(liveOf[id], name)
			}
		}
		for _, names := range liveOf {
			sort.Strings(names)
		}
		// Rebuilt histories are put together aside first: a history being
		// rebuilt may be another's source.
		var rebuilt []string
		for _, h := range hs {
			id, known := identity(h.Name)
			if live[h.Name] && (!known || id == h.Identity) {
				continue // up to date, for this query
			}
			same := slices.Clone(liveOf[h.Identity])
			var other []string
			for _, r := range h.Rules {
				p, ok := prev[r]
				if !ok || terms.Bucket([]byte(p)) == nil || slices.Contains(same, p) || slices.Contains(other, p) {
					continue
				}
				if pid, ok := identity(p); ok && pid == h.Identity {
					same = append(same, p)
				} else {
					other = append(other, p)
				}
			}
			from := same
			if len(same) == 0 {
				from = other
			}
			if (!known || id == h.Identity) && terms.Bucket([]byte(h.Name)) != nil && !slices.Contains(from, h.Name) {
				// Stale but of this query, or of no known one (imported,
				// or from before identities were recorded): kept.
				from = append([]string{h.Name}, from...)
			}
			tmp := rebuildPrefix + h.Name
			if _, err := terms.CreateBucket([]byte(tmp)); err != nil {
				return err
			}
			for _, p := range from {
				n, err := mergeHistory(terms, rules, p, tmp)
				if err != nil {
					return fmt.Errorf("carrying history %s over to %s: %w", p, h.Name, err)
				}
				if p != h.Name {
					carried += n
				}
			}
			rebuilt = append(rebuilt, h.Name)
		}
		for _, name := range rebuilt {
			tmp := rebuildPrefix + name
			if terms.Bucket([]byte(name)) != nil {
				if err := terms.DeleteBucket([]byte(name)); err != nil {
					return err
				}
			}
			if _, err := mergeHistory(terms, rules, tmp, name); err != nil {
				return err
			}
			if err := terms.DeleteBucket([]byte(tmp)); err != nil {
				return err
			}
			if err := rules.Delete([]byte(tmp)); err != nil {
				return err
			}
		}
		// Record what each history counts and which one each rule reads.
		running := map[string]bool{}
		for _, h := range hs {
			if err := ids.Put([]byte(h.Name), []byte(h.Identity)); err != nil {
				return err
			}
			for _, r := range h.Rules {
				running[r] = true
				if prev[r] != h.Name {
					if err := rh.Put([]byte(r), []byte(h.Name)); err != nil {
						return err
					}
				}
			}
		}
		// Only the rules run now are remembered (a rule that comes back
		// finds its history by name, or its query's), and the identities
		// of histories that are gone are dropped.
		var gone [][]byte
		err := rh.ForEach(func(rule, _ []byte) error {
			if !running[string(rule)] {
				gone = append(gone, bytes.Clone(rule))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := deleteKeys(rh, gone); err != nil {
			return err
		}
		gone = gone[:0]
		err = ids.ForEach(func(name, _ []byte) error {
			if terms.Bucket(name) == nil {
				gone = append(gone, bytes.Clone(name))
			}
			return nil
		})
		if err != nil {
			return err
		}
		return deleteKeys(ids, gone)
	})
	if err != nil {
		return 0, &Error{s.path, "adopt", err}
	}
	s.cache.reset() // a history may have been rebuilt
	return carried, nil
}

// rebuildPrefix names the bucket a history is rebuilt in during Adopt (a
// rule_id cannot hold a NUL byte).
const rebuildPrefix = "\x00rebuild\x00"

// mergeHistory copies the terms of history from into history to, keeping
// the later sighting of each, and keeps the longer of the two windows.
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
