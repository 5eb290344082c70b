// Package store keeps trailwatch's state in an embedded bbolt file: the
// new_terms history (when each combination of values was last seen, per
// rule) and the alert outbox (alerts committed together with the history
// they imply, removed only once a sink has taken them).
//
// Every batch of records is one write transaction: its term updates and the
// alerts they cause commit together or not at all, so a crash at any point
// loses no alert and never leaves a term recorded without its alert.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this code reads and writes. A file of a newer
// or unknown version is refused, never misread; a version 1 file (every
// history named by its one rule, no rule_history bucket, max_signals
// templates among the windows) is upgraded in place when opened.
const SchemaVersion = 2

// The buckets, named in one place.
var (
	// bucketMeta holds keySchema and the learning and clock marks.
	bucketMeta = []byte("meta")
	// bucketTerms holds one sub-bucket per history; in it, key = the encoded
	// term values, value = last seen (8-byte big-endian Unix nanoseconds).
	// A history is named by the lowest rule_id of the rules that read it
	// (rules with the same query, exceptions and new_terms fields count the
	// same records, so they share one): usually the rule's own id.
	bucketTerms = []byte("terms")
	// bucketRules holds, per history, its window (8 bytes) so that a
	// history no rule reads any more can still be pruned after its window.
	bucketRules = []byte("rules")
	// bucketRuleHistory holds, per rule_id, the history the rule read when
	// last run (Adopt), so that a rule whose history changes name takes
	// its sightings along.
	bucketRuleHistory = []byte("rule_history")
	// bucketHistoryIDs holds, per history, the identity of what it counts
	// (its rules' query, exceptions and fields, as the engine names them),
	// so that a history name that comes to count something else is rebuilt.
	bucketHistoryIDs = []byte("history_ids")
	// bucketOutbox holds alerts not yet taken by a sink: key = 8-byte
	// big-endian sequence, value = the alert's JSON.
	bucketOutbox = []byte("outbox")
	// bucketSinks holds, per sink name, the last outbox sequence that sink
	// has taken (8 bytes). An alert leaves the outbox once every configured
	// sink has taken it.
	bucketSinks = []byte("sinks")
	// bucketAlertIDs holds the ids of alerts written in the last
	// DedupWindow (value: when), so a retried batch makes no duplicate.
	bucketAlertIDs = []byte("alert_ids")
)

var (
	keySchema     = []byte("schema_version")
	keyFirstSeen  = []byte("first_seen")  // earliest term time ever recorded (learning period start)
	keyLatestSeen = []byte("latest_seen") // latest term time ever recorded (the event clock's "now")
	keyOverflow   = []byte("outbox_overflow")
)

// Options tune a store.
type Options struct {
	// NoSync skips fsync at commit: faster, but a power loss (not a process
	// crash) can lose the last batches. Off by default.
	NoSync bool
	// LockTimeout is how long Open waits for another process's lock.
	LockTimeout time.Duration
	// MaxOutbox bounds the alerts waiting for a sink; 0 means 100,000.
	MaxOutbox int
}

// Store is an open state file. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	path      string
	maxOutbox int

	mu     sync.Mutex // serializes batches (bbolt has one writer anyway)
	closed bool
	// broken: the file faulted while bbolt began or committed a
	// transaction, so its locks may be held for ever: no transaction is
	// begun after that, and Close leaves the handle as it is.
	broken  atomic.Bool
	outboxN int // alerts in the outbox, kept in step with Commit and Ack
	cache   termCache
}

// termCache remembers the committed last sighting of recent terms, so that a
// busy term (seen again within its refresh interval) costs no page read.
// It only ever holds what the file holds: it learns after a commit.
type termCache struct {
	m   map[string]time.Time
	max int
}

func (c *termCache) get(k string) (time.Time, bool) {
	t, ok := c.m[k]
	return t, ok
}

func (c *termCache) put(k string, t time.Time) {
	if c.m == nil {
		c.m = map[string]time.Time{}
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		// Full: drop an arbitrary eighth (map order is random enough).
		n := c.max / 8
		for k := range c.m {
			delete(c.m, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	c.m[k] = t
}

func (c *termCache) reset() { c.m = nil }

// termCacheSize bounds the read cache (about 100 bytes a term).
const termCacheSize = 200_000

// open paths of this process, so that a second instance pointed at the same
// file gets an immediate, clear error instead of waiting on its own lock.
var (
	openMu    sync.Mutex
	openPaths = map[string]bool{}
)

// Error is a store failure that names the file.
type Error struct {
	Path string
	Op   string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("state file %s: %s: %v", e.Path, e.Op, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// ErrDiskFull is wrapped by errors from a commit that failed for lack of
// space; nothing of the batch was written.
var ErrDiskFull = errors.New("no space left on the device")

// Open opens or creates the state file (mode 0600).
func Open(path string, o Options) (s *Store, err error) {
	abs, err := canonical(path)
	if err != nil {
		return nil, &Error{path, "open", err}
	}
	openMu.Lock()
	if openPaths[abs] {
		openMu.Unlock()
		return nil, &Error{path, "open", errors.New("already open in this process (two instances cannot share one state file; give each its own db)")}
	}
	openPaths[abs] = true
	openMu.Unlock()
	defer func() {
		if err != nil {
			openMu.Lock()
			delete(openPaths, abs)
			openMu.Unlock()
		}
	}()
	defer func() {
		// bbolt can panic on a damaged file; turn it into an error.
		if r := recover(); r != nil {
			s, err = nil, &Error{path, "open", damaged(r)}
		}
	}()
	if o.LockTimeout == 0 {
		o.LockTimeout = 2 * time.Second
	}
	if st, serr := os.Stat(path); serr == nil && st.IsDir() {
		return nil, &Error{path, "open", errors.New("a directory, not a state file")}
	} else if serr == nil && !st.Mode().IsRegular() {
		return nil, &Error{path, "open", fmt.Errorf("not a regular file (%s): a state file is one", st.Mode().Type())}
	} else if serr == nil && st.Size() > 0 {
		if st.Size() < 4096 {
			return nil, &Error{path, "open", fmt.Errorf("the file is too short to be a state file (%d bytes); %s", st.Size(), recoverHint)}
		}
		// An existing file is walked before bbolt maps it (see check.go).
		if err := checkLocked(path, o.LockTimeout); err != nil {
			return nil, &Error{path, "open", err}
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, &Error{path, "open", errLocked}
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return nil, &Error{path, "open", fmt.Errorf("not a readable state file (%v); %s", err, recoverHint)}
		}
		return nil, &Error{path, "open", err}
	}
	// bbolt's own consistency check: key order, pages reachable or free.
	if err := consistent(db); err != nil {
		db.Close()
		return nil, &Error{path, "open", damaged(err)}
	}
	s = &Store{db: db, path: path, maxOutbox: o.MaxOutbox, cache: termCache{max: termCacheSize}}
	if s.maxOutbox <= 0 {
		s.maxOutbox = 100_000
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// canonical names a file by its absolute path with symbolic links
// resolved (the folder's, and the file's when it exists), so that two
// spellings of one file are known as one.
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs)), nil
	}
	return abs, nil
}

const recoverHint = "move it aside and start with a new one; `trailwatch db export` on a copy may still save the history"

func (s *Store) init() error {
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if c := tx.Cursor(); func() bool { k, _ := c.First(); return k != nil }() {
				return errors.New("has data but no schema version: it was not written by trailwatch")
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
				return err
			}
		}
		v, err := strconv.Atoi(string(meta.Get(keySchema)))
		if err != nil {
			return fmt.Errorf("unreadable schema version %q", meta.Get(keySchema))
		}
		v1 := v == 1
		if v1 {
			v = SchemaVersion
		}
		if v != SchemaVersion {
			if v > SchemaVersion {
				return fmt.Errorf("written by a newer trailwatch (schema %d; this one reads %d): upgrade trailwatch, or start a new file", v, SchemaVersion)
			}
			return fmt.Errorf("unknown schema version %d (this trailwatch reads %d)", v, SchemaVersion)
		}
		for _, b := range [][]byte{bucketTerms, bucketRules, bucketRuleHistory, bucketHistoryIDs, bucketOutbox, bucketSinks, bucketAlertIDs, bucketSuppress, bucketCaps, bucketCapDocs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if v1 {
			// Version 1 named every history by its one rule, which is a
			// version 2 history; its max_signals templates move out of the
			// windows' bucket.
			if err := moveCapDocs(tx); err != nil {
				return err
			}
			if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
				return err
			}
		}
		s.outboxN = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	if err != nil {
		return &Error{s.path, "open", err}
	}
	return nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file. It is safe to call twice.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	abs, _ := canonical(s.path)
	openMu.Lock()
	delete(openPaths, abs)
	openMu.Unlock()
	if s.broken.Load() {
		return &Error{s.path, "close", errBroken}
	}
	return s.db.Close()
}

// errBroken is every operation's error once the file has faulted under
// bbolt itself.
var errBroken = damaged("the file faulted while in use (cut short or changed by someone else); nothing more is read or written until it is reopened")

// view and update are bbolt's View and Update, refused once the store is
// broken. A panic (a memory fault, with guard's SetPanicOnFault) inside fn
// is rolled back by bbolt; one outside it, while bbolt began or committed
// the transaction, may leave bbolt's locks held, so the store is marked
// broken before the panic goes on to the caller's guard.
func (s *Store) view(fn func(*bolt.Tx) error) error   { return s.tx(false, fn) }
func (s *Store) update(fn func(*bolt.Tx) error) error { return s.tx(true, fn) }

func (s *Store) tx(write bool, fn func(*bolt.Tx) error) error {
	if s.broken.Load() {
		return errBroken
	}
	inFn := false
	defer func() {
		if r := recover(); r != nil {
			if !inFn {
				s.broken.Store(true)
			}
			panic(r)
		}
	}()
	body := func(tx *bolt.Tx) error {
		inFn = true
		err := fn(tx)
		inFn = false
		return err
	}
	if write {
		return s.db.Update(body)
	}
	return s.db.View(body)
}

// Term is one new_terms combination of a history and when it was seen.
type Term struct {
	// History names the history the term belongs to: the bucket of the
	// rule, or of the rules, whose records it counts (see Adopt).
	History string
	Values  []string
	Key     []byte // EncodeValues(Values), when the caller has it already
	Seen    time.Time
	// Window is how long the history keeps a term (the longest history
	// window of the rules that read it).
	Window time.Duration
	// Refresh is how much newer a sighting must be than the stored one to
	// be written; 0 means RefreshEvery(Window). Rules sharing a history
	// with different windows take the shortest window's.
	Refresh time.Duration
}

func (t *Term) refresh() time.Duration {
	if t.Refresh > 0 {
		return t.Refresh
	}
	return RefreshEvery(t.Window)
}

// EncodeValues encodes term values unambiguously: each value as its
// length (uvarint) and bytes.
func EncodeValues(values []string) []byte { return AppendValues(nil, values) }

// AppendValues appends EncodeValues(values) to out.
func AppendValues(out []byte, values []string) []byte {
	for _, v := range values {
		out = binary.AppendUvarint(out, uint64(len(v)))
		out = append(out, v...)
	}
	return out
}

// termRef is one term of a batch: its place in the batch, its name in
// memory (history, NUL, key) and its key in the history's bucket.
type termRef struct {
	i   int
	ck  string
	key []byte
}

// DecodeValues reverses EncodeValues.
func DecodeValues(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("damaged term key")
		}
		out = append(out, string(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	return out, nil
}

func putTime(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

// MinSighting and MaxAhead bound the sightings a history keeps: none is
// older than CloudTrail, none more than MaxAhead past the clock that
// records it (a clock a little fast, not a date decades away, which would
// make every term look expired to pruning on the event clock; past 2262 a
// time does not even fit the file's nanoseconds, and wraps).
var MinSighting = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxAhead: see MinSighting.
const MaxAhead = 24 * time.Hour

// SaneSighting reports whether t is a sighting to keep, now being the
// clock of the batch that records it.
func SaneSighting(t, now time.Time) bool {
	return !t.Before(MinSighting) && !t.After(now.Add(MaxAhead))
}

func getTime(b []byte) (time.Time, bool) {
	if len(b) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(), true
}

// RefreshEvery is how much newer a sighting must be than the stored one to
// be written: 1/10080 of the window (one minute for 7 days). Busy terms then
// cost a page write a minute instead of one per batch; the price is that a
// term can turn new again up to that much before its window is over.
func RefreshEvery(window time.Duration) time.Duration {
	if d := window / 10080; d > 0 {
		return d
	}
	return time.Nanosecond
}

// IsNew is Kibana's rule for one term: new when never seen, or when last
// seen longer than window before seen. A sighting older than the last one
// (CloudTrail delivers files out of order) is never new.
func IsNew(last time.Time, known bool, seen time.Time, window time.Duration) bool {
	if !known {
		return true
	}
	if seen.Before(last) {
		return false
	}
	return seen.Sub(last) > window
}

// Batch is what one Commit decides and writes.
type Batch struct {
	Terms []Term
	// Emit is called inside the transaction with the terms' verdicts; it
	// returns the alerts to put in the outbox.
	Emit func(v *Verdicts) ([]Alert, error)
	// Learning: terms seen before FirstSeen+Learning are recorded, not new.
	Learning time.Duration
	// Now is the alerts' clock for suppression and caps (default time.Now).
	Now time.Time
	// Summarize builds the summary alert of a capped max_signals window.
	Summarize SummaryFunc
	// RefuseOverflow makes a batch whose alerts do not all fit in the
	// outbox fail with ErrOutboxFull, nothing of it written, instead of
	// dropping the alerts past the bound: for senders that retry a batch
	// until it is taken. A batch given to an empty outbox is taken whole,
	// past the bound if need be (it could never fit otherwise).
	RefuseOverflow bool
}

// ErrOutboxFull is wrapped by the error of a RefuseOverflow batch that did
// not fit in the outbox.
var ErrOutboxFull = errors.New("the alert outbox is full")

// Verdicts tells, for each term of a batch, whether it is new: for its own
// Window, or for the window of any rule that reads its history.
type Verdicts struct {
	terms    []Term
	last     []time.Time // the sighting before this one: in the file, or earlier in the batch
	known    []bool
	first    time.Time // the history's first sighting (learning period start)
	learning time.Duration
	windows  *Windows
}

// Windows is the scheduled rules' state, in the commit's transaction: what
// Emit reads and writes of it commits with the batch, or not at all.
func (v *Verdicts) Windows() *Windows { return v.windows }

// AllNew is the verdicts of a state that keeps no history: every term is
// new (tests, and runs that only look at the record path).
func AllNew(terms []Term) *Verdicts {
	return &Verdicts{terms: terms, last: make([]time.Time, len(terms)), known: make([]bool, len(terms))}
}

// New reports whether term i is new for its own Window.
func (v *Verdicts) New(i int) bool { return v.NewFor(i, v.terms[i].Window) }

// NewFor reports whether term i is new for a rule whose history window is
// window: never seen, or last seen longer than window before, and not
// within the learning period.
func (v *Verdicts) NewFor(i int, window time.Duration) bool {
	t := &v.terms[i]
	return IsNew(v.last[i], v.known[i], t.Seen, window) &&
		!(v.learning > 0 && t.Seen.Before(v.first.Add(v.learning)))
}

// Alert is one alert for the outbox.
type Alert struct {
	// ID is the alert's deterministic id: an alert whose id was already
	// written within DedupWindow is not written again, so a retried batch
	// (Fluent Bit's FLB_RETRY, an HTTP sender's retry) makes no duplicate.
	// "" turns that off.
	ID  string
	Doc []byte // the alert's JSON
	// Render, when Doc is nil, makes the alert's JSON: called only for an
	// alert that is not a duplicate and that its policy lets through (or
	// whose document a policy keeps), so that capped and repeated alerts
	// cost no rendering.
	Render func() ([]byte, error)
	// Policy, when set, applies the rule's alert suppression and
	// max_signals cap.
	Policy *Policy
	// Follows, when set, is 1 + the index of the batch's alert whose fate
	// this one shares (a sequence's building blocks follow its shell):
	// written only if that one was.
	Follows int
}

// document returns the alert's JSON, rendering it on first use.
func (a *Alert) document() ([]byte, error) {
	if a.Doc == nil && a.Render != nil {
		d, err := a.Render()
		if err != nil {
			return nil, err
		}
		a.Doc = d
	}
	return a.Doc, nil
}

// DedupWindow is how long alert ids are remembered.
const DedupWindow = 24 * time.Hour

// CommitResult tells what a commit did.
type CommitResult struct {
	// Seqs holds, for each alert Emit returned, its outbox sequence number,
	// or 0 when it was not written (a duplicate, or no room).
	Seqs       []uint64
	Written    int
	Overflow   int // alerts dropped because the outbox was full
	Duplicates int // alerts already written within DedupWindow
	Suppressed int // alerts counted into an open suppression group
	Capped     int // alerts over their rule's max_signals in the window
	Extra      int // written first: summaries of closed capped windows, final counts of closed suppression groups
}

// Commit runs one batch in one write transaction: it looks up and updates
// every term, and writes the alerts Emit returns to the outbox. On error
// nothing of the batch is written.
func (s *Store) Commit(b Batch) (res CommitResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return res, &Error{s.path, "commit", errors.New("closed")}
	}
	defer s.guard("commit", &err)()
	// Terms written by this batch, and terms read from the file: the read
	// cache learns them once the transaction has committed.
	written, seenInFile := map[string]time.Time{}, map[string]time.Time{}
	err = s.update(func(tx *bolt.Tx) error {
		clear(written)
		clear(seenInFile)
		meta, terms, rules, outbox := tx.Bucket(bucketMeta), tx.Bucket(bucketTerms), tx.Bucket(bucketRules), tx.Bucket(bucketOutbox)
		first, hasFirst := getTime(meta.Get(keyFirstSeen))
		latest, hasLatest := getTime(meta.Get(keyLatestSeen))
		first0, latest0 := first, latest
		// The history's first and latest sightings take the whole batch in
		// first: the learning period starts at the earliest sighting,
		// whatever order the batch's terms are looked at in.
		for _, t := range b.Terms {
			if !hasFirst || t.Seen.Before(first) {
				first, hasFirst = t.Seen, true
			}
			if !hasLatest || t.Seen.After(latest) {
				latest, hasLatest = t.Seen, true
			}
		}
		v := &Verdicts{terms: b.Terms, last: make([]time.Time, len(b.Terms)), known: make([]bool, len(b.Terms)), first: first, learning: b.Learning, windows: &Windows{tx: tx}}
		decide := func(i int, last time.Time, known bool) { v.last[i], v.known[i] = last, known }
		// One buffer holds every term's history and key; the strings that
		// name terms in memory are views of it, copied only when kept.
		size := 0
		for _, t := range b.Terms {
			size += len(t.History) + 1 + len(t.Key)
			if t.Key == nil {
				size += 8 * (len(t.Values) + 1)
			}
		}
		buf := make([]byte, 0, size)
		// A term seen again within its refresh interval is answered from
		// the read cache, with nothing to write (every sighting of it in
		// the batch is, as they share the cache's answer). The others go
		// to the file, in key order: neighbouring pages, fewer page reads.
		var refs []termRef
		for i, t := range b.Terms {
			start := len(buf)
			buf = append(append(buf, t.History...), 0)
			if t.Key != nil {
				buf = append(buf, t.Key...)
			} else {
				buf = AppendValues(buf, t.Values)
			}
			ckb := buf[start:len(buf):len(buf)]
			ck := unsafe.String(&ckb[0], len(ckb))
			if last, known := s.cache.get(ck); known && t.Seen.Sub(last) < t.refresh() {
				decide(i, last, true)
				continue
			}
			refs = append(refs, termRef{i: i, ck: ck, key: ckb[len(t.History)+1:]})
		}
		slices.SortFunc(refs, func(x, y termRef) int {
			if c := strings.Compare(x.ck, y.ck); c != 0 {
				return c
			}
			return x.i - y.i // the same term twice: in batch order
		})
		var rb *bolt.Bucket
		var rbID string
		for _, ref := range refs {
			i, t, ck := ref.i, b.Terms[ref.i], ref.ck
			last, known := written[ck]
			if !known {
				last, known = s.cache.get(ck)
			}
			if !known || t.Seen.Sub(last) >= t.refresh() {
				// Not answered from memory (or a write is due): the file.
				if rb == nil || rbID != t.History {
					var err error
					if rb, err = terms.CreateBucketIfNotExists([]byte(t.History)); err != nil {
						return err
					}
					rbID = t.History
					w := binary.BigEndian.AppendUint64(nil, uint64(t.Window))
					if !bytes.Equal(rules.Get([]byte(t.History)), w) {
						if err := rules.Put([]byte(t.History), w); err != nil {
							return err
						}
					}
				}
				if _, done := written[ck]; !done {
					last, known = getTime(rb.Get(ref.key))
				}
			}
			decide(i, last, known)
			if !known || t.Seen.Sub(last) >= t.refresh() {
				if err := rb.Put(ref.key, putTime(t.Seen)); err != nil {
					return err
				}
				if _, done := written[ck]; !done {
					ck = strings.Clone(ck) // kept past the batch
				}
				written[ck] = t.Seen
			} else if _, done := written[ck]; !done {
				if _, cached := s.cache.get(ck); !cached {
					seenInFile[strings.Clone(ck)] = last
				}
			}
		}
		if len(b.Terms) > 0 && (!first.Equal(first0) || !latest.Equal(latest0)) {
			if err := meta.Put(keyFirstSeen, putTime(first)); err != nil {
				return err
			}
			if err := meta.Put(keyLatestSeen, putTime(latest)); err != nil {
				return err
			}
		}
		var alerts []Alert
		if b.Emit != nil {
			var err error
			if alerts, err = b.Emit(v); err != nil {
				return err
			}
		}
		ids := tx.Bucket(bucketAlertIDs)
		now := putTime(time.Now())
		clock := b.Now
		if clock.IsZero() {
			clock = time.Now()
		}
		room := s.maxOutbox - s.outboxN
		if b.RefuseOverflow && s.outboxN == 0 {
			room = len(alerts)
		}
		res.Seqs = make([]uint64, len(alerts))
		var caps capCache
		for i := range alerts {
			a := &alerts[i]
			if f := a.Follows - 1; f >= 0 && (f >= i || res.Seqs[f] == 0) {
				continue
			}
			if a.ID != "" {
				if t, ok := getTime(ids.Get([]byte(a.ID))); ok && time.Since(t) < DedupWindow {
					res.Duplicates++
					continue
				}
			}
			emit, extra, err := controlAlert(tx, &caps, a, clock, b.Summarize, &res)
			if err != nil {
				return err
			}
			for _, d := range extra {
				seq, err := outbox.NextSequence()
				if err != nil {
					return err
				}
				if err := outbox.Put(binary.BigEndian.AppendUint64(nil, seq), d); err != nil {
					return err
				}
				res.Extra++
			}
			if !emit {
				// Not remembered: an alert held back is a random write
				// each, many in a storm; a retried batch may count it again
				// in its window's summary.
				continue
			}
			if room <= 0 {
				if b.RefuseOverflow {
					return fmt.Errorf("%w (%d alerts waiting, outbox_max %d): the batch's alerts do not fit; nothing of it was written", ErrOutboxFull, s.outboxN, s.maxOutbox)
				}
				res.Overflow++
				continue
			}
			seq, err := outbox.NextSequence()
			if err != nil {
				return err
			}
			doc, err := a.document()
			if err != nil {
				return err
			}
			if err := outbox.Put(binary.BigEndian.AppendUint64(nil, seq), doc); err != nil {
				return err
			}
			if a.ID != "" {
				if err := ids.Put([]byte(a.ID), now); err != nil {
					return err
				}
			}
			res.Seqs[i] = seq
			res.Written++
			room--
		}
		if err := caps.flush(tx); err != nil {
			return err
		}
		if res.Overflow > 0 {
			n, _ := strconv.Atoi(string(meta.Get(keyOverflow)))
			return meta.Put(keyOverflow, []byte(strconv.Itoa(n+res.Overflow)))
		}
		return nil
	})
	if err == nil {
		s.outboxN += res.Written + res.Extra
		for k, v := range seenInFile {
			s.cache.put(k, v)
		}
		for k, v := range written {
			s.cache.put(k, v)
		}
	}
	if err != nil {
		res = CommitResult{}
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: %v", ErrDiskFull, err)
		}
		var se *Error
		if !errors.As(err, &se) {
			err = &Error{s.path, "commit", err}
		}
	}
	return res, err
}

// Pending is one alert waiting in the outbox.
type Pending struct {
	Seq   uint64
	Alert []byte
}

// Pending returns up to limit alerts from the outbox, oldest first.
func (s *Store) Pending(limit int) (out []Pending, err error) {
	defer s.guard("read outbox", &err)()
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			if len(k) != 8 {
				continue // not an alert's sequence (Open refuses such a file)
			}
			out = append(out, Pending{Seq: binary.BigEndian.Uint64(k), Alert: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, &Error{s.path, "read outbox", err}
	}
	return out, nil
}

// Ack removes alerts a sink has taken from the outbox.
func (s *Store) Ack(seqs []uint64) (err error) {
	if len(seqs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.guard("ack", &err)()
	removed := 0
	err = s.update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		removed = 0
		for _, q := range seqs {
			k := binary.BigEndian.AppendUint64(nil, q)
			if ob.Get(k) == nil {
				continue
			}
			if err := ob.Delete(k); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return &Error{s.path, "ack", err}
	}
	s.outboxN -= removed
	return nil
}

// OutboxLen is the number of alerts waiting for a sink.
func (s *Store) OutboxLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outboxN
}

// PendingAfter returns up to limit alerts with a sequence above after,
// oldest first.
func (s *Store) PendingAfter(after uint64, limit int) (out []Pending, err error) {
	defer s.guard("read outbox", &err)()
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(out) < limit; k, v = c.Next() {
			if len(k) != 8 {
				continue // not an alert's sequence (Open refuses such a file)
			}
			out = append(out, Pending{Seq: binary.BigEndian.Uint64(k), Alert: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, &Error{s.path, "read outbox", err}
	}
	return out, nil
}

// Cursor returns the last sequence the named sink has taken (0: none).
func (s *Store) Cursor(sink string) (seq uint64) {
	var err error
	defer s.guard("read cursor", &err)()
	s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSinks).Get([]byte(sink)); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq
}

// Advance records that sink has taken every alert up to seq, and removes
// from the outbox the alerts that all of sinks have taken. Cursors of sinks
// not in sinks (no longer configured) are forgotten.
func (s *Store) Advance(sink string, seq uint64, sinks []string) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.guard("advance "+sink, &err)()
	removed := 0
	err = s.update(func(tx *bolt.Tx) error {
		sb, ob := tx.Bucket(bucketSinks), tx.Bucket(bucketOutbox)
		if err := sb.Put([]byte(sink), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return err
		}
		low := seq
		keep := map[string]bool{}
		for _, n := range sinks {
			keep[n] = true
			v := sb.Get([]byte(n))
			if len(v) != 8 {
				return nil // a sink that has taken nothing yet
			}
			low = min(low, binary.BigEndian.Uint64(v))
		}
		var gone [][]byte
		sb.ForEach(func(k, _ []byte) error {
			if !keep[string(k)] {
				gone = append(gone, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range gone {
			sb.Delete(k)
		}
		removed = 0
		c := ob.Cursor()
		for k, _ := c.First(); k != nil && len(k) == 8 && binary.BigEndian.Uint64(k) <= low; {
			if err := c.Delete(); err != nil {
				return err
			}
			removed++
			next, _ := c.First()
			if next != nil && bytes.Compare(next, k) <= 0 {
				return errOutOfOrder
			}
			k = next
		}
		return nil
	})
	if err != nil {
		return &Error{s.path, "advance " + sink, err}
	}
	s.outboxN -= removed
	return nil
}
