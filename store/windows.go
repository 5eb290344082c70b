package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Scheduled rules (threshold, aggregating ES|QL) are evaluated in runs, each
// over a window of time. Their state is counts by group in time buckets:
// records are folded into the bucket of their time as they arrive (in the
// transaction of their batch), and a run merges its window's buckets.
// Nothing is kept per record.
var (
	// bucketWindows holds a sub-bucket per rule_id; in it, key = 8-byte
	// big-endian bucket start (Unix milliseconds) then the encoded group,
	// value = the group's partial aggregate for that bucket (the engine's
	// encoding).
	bucketWindows = []byte("windows")
	// bucketWindowSizes holds, per rule_id, how many entries its windows
	// sub-bucket has (8 bytes), so that its cap costs no count.
	bucketWindowSizes = []byte("window_sizes")
	// bucketWindowRuns holds, per rule_id, the time of its last run (8
	// bytes, Unix nanoseconds).
	bucketWindowRuns = []byte("window_runs")
	// bucketWindowSignals holds a sub-bucket per rule_id; in it, key = the
	// encoded group, value = when the group last alerted (the run's time):
	// later runs count only its events from then on (threshold's signal
	// history).
	bucketWindowSignals = []byte("window_signals")
	// keyRunClock in the meta bucket is the scheduler's clock: the latest
	// time runs were made up to.
	keyRunClock = []byte("run_clock")
	// bucketRuleShapes holds, per rule_id, the shape of the definition its
	// state was written for (the engine's fingerprint): a rule edited under
	// the same id must not read what its former definition wrote.
	bucketRuleShapes = []byte("rule_shapes")
)

// ruleStateBuckets are the top-level buckets holding a rule's scheduled
// and sequence state under its rule_id.
var ruleStateBuckets = [][]byte{bucketWindows, bucketWindowSignals, bucketSequences, bucketWindowSizes, bucketWindowRuns, bucketRuleShapes}

// dropRule deletes what the top bucket holds under name (a sub-bucket or a
// value), reporting whether it held anything.
func dropRule(tx *bolt.Tx, top, name []byte) (bool, error) {
	b := tx.Bucket(top)
	switch {
	case b == nil:
		return false, nil
	case b.Bucket(name) != nil:
		return true, b.DeleteBucket(name)
	case b.Get(name) != nil:
		return true, b.Delete(name)
	}
	return false, nil
}

// Shape returns the shape the rule's state was written for (nil: none
// recorded).
func (w *Windows) Shape(rule string) []byte {
	b := w.tx.Bucket(bucketRuleShapes)
	if b == nil {
		return nil
	}
	return b.Get([]byte(rule))
}

// SetShape records the shape the rule's state is written for.
func (w *Windows) SetShape(rule string, shape []byte) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketRuleShapes)
	if err != nil {
		return err
	}
	return b.Put([]byte(rule), shape)
}

// DropRule deletes the rule's scheduled and sequence state (windows, their
// size, last run, signal history, sequences in flight, shape).
func (w *Windows) DropRule(rule string) error {
	for _, top := range ruleStateBuckets {
		if _, err := dropRule(w.tx, top, []byte(rule)); err != nil {
			return err
		}
	}
	return nil
}

// Windows is the scheduled rules' state inside one write transaction
// (Verdicts.Windows). It is valid only during the Emit call it came with.
type Windows struct {
	tx *bolt.Tx
}

func (w *Windows) sub(top []byte, rule string) (*bolt.Bucket, error) {
	b, err := w.tx.CreateBucketIfNotExists(top)
	if err != nil {
		return nil, err
	}
	return b.CreateBucketIfNotExists([]byte(rule))
}

// peek returns a rule's sub-bucket under top, or nil when it has none.
func (w *Windows) peek(top []byte, rule string) *bolt.Bucket {
	b := w.tx.Bucket(top)
	if b == nil {
		return nil
	}
	return b.Bucket([]byte(rule))
}

func windowKey(bucket int64, group []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(group)), uint64(bucket))
	return append(k, group...)
}

// Get returns a group's aggregate in a bucket (nil when absent). The bytes
// are valid until the transaction ends and must not be changed.
func (w *Windows) Get(rule string, bucket int64, group []byte) []byte {
	b := w.peek(bucketWindows, rule)
	if b == nil {
		return nil
	}
	return b.Get(windowKey(bucket, group))
}

// Put stores a group's aggregate in a bucket. With limit > 0, a new entry
// past limit entries for the rule is refused with ErrWindowFull (an update
// of an existing entry always goes through).
func (w *Windows) Put(rule string, bucket int64, group, v []byte, limit int) error {
	b, err := w.sub(bucketWindows, rule)
	if err != nil {
		return err
	}
	k := windowKey(bucket, group)
	if b.Get(k) == nil {
		n := w.Size(rule)
		if limit > 0 && n >= limit {
			return ErrWindowFull
		}
		if err := w.setSize(rule, n+1); err != nil {
			return err
		}
	}
	return b.Put(k, v)
}

// Append stores another partial aggregate of a group in a bucket, beside
// the ones it holds (the group key gets a sequence number appended), so
// that a batch writes only what it adds: a bucket read and written whole at
// every batch would cost its size each time. Scan gives every partial;
// Compact merges them. limit as for Put.
func (w *Windows) Append(rule string, bucket int64, group, v []byte, limit int) error {
	b, err := w.sub(bucketWindows, rule)
	if err != nil {
		return err
	}
	n := w.Size(rule)
	if limit > 0 && n >= limit {
		return ErrWindowFull
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	if err := w.setSize(rule, n+1); err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(windowKey(bucket, group), seq), v)
}

// Compact replaces a bucket's entries with one under group: merge is given
// their values and returns the merged value. It does nothing for a bucket of
// one entry or none.
func (w *Windows) Compact(rule string, bucket int64, group []byte, merge func(parts [][]byte) ([]byte, error)) error {
	b := w.peek(bucketWindows, rule)
	if b == nil {
		return nil
	}
	var keys, parts [][]byte
	prefix := binary.BigEndian.AppendUint64(nil, uint64(bucket))
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, bytes.Clone(k))
		parts = append(parts, bytes.Clone(v))
	}
	if len(keys) < 2 {
		return nil
	}
	merged, err := merge(parts)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	if err := b.Put(windowKey(bucket, group), merged); err != nil {
		return err
	}
	return w.setSize(rule, max(0, w.Size(rule)-len(keys)+1))
}

// ErrWindowFull is Put's answer when a rule holds its cap of entries.
var ErrWindowFull = errors.New("the rule's window state is full")

// Size is how many (bucket, group) entries a rule holds.
func (w *Windows) Size(rule string) int {
	b := w.tx.Bucket(bucketWindowSizes)
	if b == nil {
		return 0
	}
	if v := b.Get([]byte(rule)); len(v) == 8 {
		if n := binary.BigEndian.Uint64(v); n <= math.MaxInt32 {
			return int(n)
		}
		// Not a count any build wrote (it read as negative, and the cap
		// never held): the entries are counted again.
		if wb := w.peek(bucketWindows, rule); wb != nil {
			return wb.Stats().KeyN
		}
	}
	return 0
}

func (w *Windows) setSize(rule string, n int) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketWindowSizes)
	if err != nil {
		return err
	}
	return b.Put([]byte(rule), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// Bucket starts are Unix milliseconds, never before 1970 (the engine
// counts no record dated earlier).

// Scan calls fn for each entry of the rule's buckets in [from, to), in
// bucket order. The bytes are valid only during the call.
func (w *Windows) Scan(rule string, from, to int64, fn func(bucket int64, group, v []byte) error) error {
	b := w.peek(bucketWindows, rule)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	start := binary.BigEndian.AppendUint64(nil, uint64(max(from, 0)))
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if len(k) < 8 {
			return fmt.Errorf("window entry of rule %q has a short key", rule)
		}
		at := int64(binary.BigEndian.Uint64(k[:8]))
		if at >= to {
			break
		}
		if err := fn(at, k[8:], v); err != nil {
			return err
		}
	}
	return nil
}

// Buckets returns the starts of the rule's buckets at or after from, in
// order, without repeats, at most limit of them (to find the next run with
// data).
func (w *Windows) Buckets(rule string, from int64, limit int) []int64 {
	b := w.peek(bucketWindows, rule)
	if b == nil {
		return nil
	}
	var out []int64
	c := b.Cursor()
	for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, uint64(max(from, 0)))); k != nil && len(out) < limit; {
		if len(k) < 8 {
			break
		}
		at := int64(binary.BigEndian.Uint64(k[:8]))
		out = append(out, at)
		// Skip to the next bucket.
		k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, uint64(at)+1))
	}
	return out
}

// DropBefore deletes the rule's buckets that start before bucket, and
// returns how many entries went.
func (w *Windows) DropBefore(rule string, bucket int64) (int, error) {
	b := w.peek(bucketWindows, rule)
	if b == nil {
		return 0, nil
	}
	n, err := deleteBefore(b, binary.BigEndian.AppendUint64(nil, uint64(bucket)))
	if err != nil {
		return 0, err
	}
	if n > 0 {
		if err := w.setSize(rule, max(0, w.Size(rule)-n)); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// deleteBefore deletes b's keys that sort before end, and returns how
// many went.
func deleteBefore(b *bolt.Bucket, end []byte) (int, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Signal returns when a group of the rule last alerted.
func (w *Windows) Signal(rule string, group []byte) (time.Time, bool) {
	b := w.peek(bucketWindowSignals, rule)
	if b == nil {
		return time.Time{}, false
	}
	return getTime(b.Get(group))
}

// SetSignal records that a group alerted at t.
func (w *Windows) SetSignal(rule string, group []byte, t time.Time) error {
	b, err := w.sub(bucketWindowSignals, rule)
	if err != nil {
		return err
	}
	return b.Put(group, putTime(t))
}

// DropSignalsBefore forgets the rule's groups that alerted before t (they
// fell out of every later window).
func (w *Windows) DropSignalsBefore(rule string, t time.Time) error {
	b := w.peek(bucketWindowSignals, rule)
	if b == nil {
		return nil
	}
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if at, ok := getTime(v); !ok || at.Before(t) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// LastRun returns the time of the rule's last run.
func (w *Windows) LastRun(rule string) (time.Time, bool) {
	b := w.tx.Bucket(bucketWindowRuns)
	if b == nil {
		return time.Time{}, false
	}
	return getTime(b.Get([]byte(rule)))
}

// SetLastRun records the rule's last run.
func (w *Windows) SetLastRun(rule string, t time.Time) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketWindowRuns)
	if err != nil {
		return err
	}
	return b.Put([]byte(rule), putTime(t))
}

// Clock returns the scheduler's clock: the time runs were last made up to.
func (w *Windows) Clock() (time.Time, bool) {
	return getTime(w.tx.Bucket(bucketMeta).Get(keyRunClock))
}

// SetClock moves the scheduler's clock.
func (w *Windows) SetClock(t time.Time) error {
	return w.tx.Bucket(bucketMeta).Put(keyRunClock, putTime(t))
}

// WindowStat is what db stats shows of a scheduled rule's state.
type WindowStat struct {
	Rule    string
	Entries int       // (bucket, group) entries
	Buckets int       // distinct buckets
	Groups  int       // distinct groups
	Signals int       // groups in the signal history
	LastRun time.Time // zero when it never ran
}

// WindowStats lists every scheduled rule's state.
func (s *Store) WindowStats() (_ []WindowStat, err error) {
	defer s.guard("window stats", &err)()
	var out []WindowStat
	err = s.view(func(tx *bolt.Tx) error {
		w := &Windows{tx: tx}
		top := tx.Bucket(bucketWindows)
		if top == nil {
			return nil
		}
		return top.ForEach(func(name, _ []byte) error {
			rule := string(name)
			st := WindowStat{Rule: rule}
			buckets, groups := map[int64]bool{}, map[string]bool{}
			err := w.Scan(rule, 0, 1<<62, func(b int64, g, _ []byte) error {
				st.Entries++
				buckets[b], groups[string(g)] = true, true
				return nil
			})
			if err != nil {
				return err
			}
			st.Buckets, st.Groups = len(buckets), len(groups)
			if sb := w.peek(bucketWindowSignals, rule); sb != nil {
				st.Signals = sb.Stats().KeyN
			}
			st.LastRun, _ = w.LastRun(rule)
			out = append(out, st)
			return nil
		})
	})
	if err != nil {
		return nil, &Error{s.path, "window stats", err}
	}
	return out, nil
}

// EQL sequences in flight: bucketSequences holds a sub-bucket per rule_id;
// in it, key = the stage the sequence has reached (one byte) then its
// encoded join key, value = the sequence (the engine's encoding). A join key
// holds at most one sequence per stage: the newest, which is the one a
// later event extends.
var bucketSequences = []byte("sequences")

// SeqGet returns the sequence at a stage for a join key (nil: none).
func (w *Windows) SeqGet(rule string, stage int, key []byte) []byte {
	b := w.peek(bucketSequences, rule)
	if b == nil {
		return nil
	}
	return b.Get(seqKey(stage, key))
}

func seqKey(stage int, key []byte) []byte {
	return append([]byte{byte(stage)}, key...)
}

// SeqPut stores the sequence at a stage for a join key.
func (w *Windows) SeqPut(rule string, stage int, key, v []byte) error {
	b, err := w.sub(bucketSequences, rule)
	if err != nil {
		return err
	}
	return b.Put(seqKey(stage, key), v)
}

// SeqDelete drops the sequence at a stage for a join key.
func (w *Windows) SeqDelete(rule string, stage int, key []byte) error {
	b := w.peek(bucketSequences, rule)
	if b == nil {
		return nil
	}
	return b.Delete(seqKey(stage, key))
}

// SeqScan calls fn for every sequence of the rule; fn returns whether to
// delete it.
func (w *Windows) SeqScan(rule string, fn func(stage int, key, v []byte) (drop bool)) (int, error) {
	b := w.peek(bucketSequences, rule)
	if b == nil {
		return 0, nil
	}
	var drop [][]byte
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		if len(k) < 1 {
			return nil
		}
		n++
		if fn(int(k[0]), k[1:], v) {
			drop = append(drop, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return n - len(drop), nil
}

// DropRuleState deletes the scheduled and sequence state (windows, their
// sizes, last runs, signal history, sequences in flight) of every rule
// not in keep, and returns the rule ids dropped, sorted: a rule removed
// from the rule set keeps none of it otherwise.
func (s *Store) DropRuleState(keep map[string]bool) (dropped []string, err error) {
	defer s.guard("drop rule state", &err)()
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.update(func(tx *bolt.Tx) error {
		gone := map[string]bool{}
		for _, top := range ruleStateBuckets {
			b := tx.Bucket(top)
			if b == nil {
				continue
			}
			var names [][]byte
			err := b.ForEach(func(k, _ []byte) error {
				if !keep[string(k)] {
					names = append(names, bytes.Clone(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range names {
				if _, err := dropRule(tx, top, k); err != nil {
					return err
				}
				gone[string(k)] = true
			}
		}
		for k := range gone {
			dropped = append(dropped, k)
		}
		return nil
	})
	if err != nil {
		return nil, &Error{s.path, "drop rule state", err}
	}
	slices.Sort(dropped)
	return dropped, nil
}
