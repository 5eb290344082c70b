package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/store"
)

// A record given twice (a chunk Fluent Bit sends again after a crash, a
// retried request, a file scanned again on the same state file) must not
// count twice in a scheduled rule (threshold, aggregating ES|QL): Elastic
// Agent gives each CloudTrail record the document id of its S3 object and
// offset, so a record read again is indexed once. The engine remembers the
// eventIDs (64-bit hashes) of the records those rules counted, committed
// with the counts they went into; a record whose id is remembered counts in
// no window again. Ids are kept by the slot (minute) of the record's time
// for as long as a window can still count it (the longest from + interval
// of the scheduled rules), and MaxRecordIDs at most: past it the oldest
// slots are forgotten, and counted. (A threshold group also keeps the ids
// of its records in each bucket, up to its threshold; that alone let a
// record given again after its group alerted count again, once the buckets
// before the alert were passed over.)

// MaxRecordIDs bounds the record ids remembered (about 30 bytes each in
// memory, beside a 2 MiB filter; 8 in the state file).
const MaxRecordIDs = 1_000_000

// idSlot is the width of the slots ids are kept and forgotten by, ms.
const idSlot = int64(time.Minute / time.Millisecond)

type recordIDs struct {
	mu      sync.RWMutex
	at      map[uint64]struct{} // the ids
	slots   map[int64][]uint64  // slot -> its ids (each id in one slot)
	order   []int64             // the slots, sorted
	horizon int64               // ms a record stays countable after its time
	max     int
	// filter has the bit of every id remembered (and of some forgotten
	// since it was built: stale), so that a record never seen, the usual
	// one, costs one load and no lock; stale counts the forgotten.
	filter atomic.Pointer[[]atomic.Uint64]
	stale  int
	// inflight are the ids of the batches whose transaction has written
	// theirs and whose commit is not applied yet (each a worker's
	// batchIDs): a batch committing with one of them, or with an id
	// remembered since it was judged, counted a record another batch
	// counts, and is refused (ErrRecordsInFlight).
	inflight []*map[uint64]int64
}

// ErrRecordsInFlight: a batch holds records another batch counted while
// both were in flight (the same records given twice at once, such as a
// duplicated CloudTrail event in two chunks of two workers). Nothing of it
// is committed; given again, its records are known and counted once.
var ErrRecordsInFlight = errors.New("records counted by another batch committing at the same time; give the batch again")

// claim makes ids (a batch's new ids, in its transaction) in flight,
// unless one of them is remembered or in flight already: it then returns
// how many are, and claims nothing.
func (r *recordIDs) claim(ids *map[uint64]int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id := range *ids {
		if _, ok := r.at[id]; ok {
			n++
			continue
		}
		for _, o := range r.inflight {
			if _, ok := (*o)[id]; ok {
				n++
				break
			}
		}
	}
	if n == 0 {
		r.inflight = append(r.inflight, ids)
	}
	return n
}

// release takes ids out of flight (the lock held).
func (r *recordIDs) release(ids *map[uint64]int64) {
	r.inflight = slices.DeleteFunc(r.inflight, func(o *map[uint64]int64) bool { return o == ids })
}

// filterWords is the filter's size: 2^24 bits (2 MiB), a few percent
// set with a million ids.
const filterWords = 1 << 18

func newFilter() *[]atomic.Uint64 {
	f := make([]atomic.Uint64, filterWords)
	return &f
}

func filterBit(id uint64) (int, uint64) { return int(id>>6) & (filterWords - 1), 1 << (id & 63) }

// recordIDLoader is what a State offers when it keeps record ids
// (*store.Store does).
type recordIDLoader interface {
	RecordIDs(fn func(slot int64, ids []uint64) bool) error
}

// newRecordIDs makes the engine's record memory when it has aggregating
// rules, from what the state file holds.
func (e *Engine) newRecordIDs(bound int) error {
	var horizon int64
	for _, sc := range e.scheduled {
		horizon = max(horizon, sc.from+sc.interval)
	}
	if horizon == 0 {
		return nil
	}
	r := &recordIDs{at: map[uint64]struct{}{}, slots: map[int64][]uint64{}, horizon: horizon, max: bound}
	r.filter.Store(newFilter())
	if l, ok := e.state.(recordIDLoader); ok {
		// The newest slots, as many ids as a commit keeps (90 % of the
		// bound), read newest first: whatever the file holds, no more is
		// read or held (every id was loaded before the bound was applied:
		// seconds of start and hundreds of megabytes for a large file).
		keep := bound - bound/10
		type slotIDs struct {
			slot int64
			ids  []uint64
		}
		var got []slotIDs
		total := 0
		err := l.RecordIDs(func(slot int64, ids []uint64) bool {
			if slot < 0 {
				return true // not a slot the engine writes (records before 1970 count nowhere)
			}
			ids = ids[:min(len(ids), keep-total)]
			got = append(got, slotIDs{slot, slices.Clone(ids)})
			total += len(ids)
			return total < keep
		})
		if err != nil {
			return err
		}
		r.at = make(map[uint64]struct{}, total)
		for i := len(got) - 1; i >= 0; i-- { // oldest first: each slot appended
			for _, id := range got[i].ids {
				r.add(id, got[i].slot)
			}
		}
	}
	e.recIDs = r
	return nil
}

func (r *recordIDs) has(id uint64) bool {
	i, bit := filterBit(id)
	if (*r.filter.Load())[i].Load()&bit == 0 {
		return false
	}
	r.mu.RLock()
	_, ok := r.at[id]
	r.mu.RUnlock()
	return ok
}

// add remembers id under slot (the lock held, or r not shared yet).
func (r *recordIDs) add(id uint64, slot int64) {
	if _, ok := r.at[id]; ok {
		return
	}
	r.at[id] = struct{}{}
	i, bit := filterBit(id)
	(*r.filter.Load())[i].Or(bit)
	s, ok := r.slots[slot]
	if !ok {
		i, _ := slices.BinarySearch(r.order, slot)
		r.order = slices.Insert(r.order, i, slot)
	}
	r.slots[slot] = append(s, id)
}

// evictTo is the first slot to keep so that, with adding more ids, at
// most 90 % of the bound stays (the lock held for reading).
func (r *recordIDs) evictTo(adding int) int64 {
	n := len(r.at) + adding
	if n <= r.max {
		return minSlot
	}
	keep := r.max - r.max/10
	for _, s := range r.order {
		if n <= keep {
			return s
		}
		n -= len(r.slots[s])
	}
	// Every slot remembered goes; the batch's own ids stay (the bound is
	// then passed by one batch at most).
	if len(r.order) == 0 {
		return minSlot
	}
	return r.order[len(r.order)-1] + 1
}

// minSlot: no slot to forget.
const minSlot = -1 << 62

// forget drops the slots before slot, and returns how many ids went. The
// filter is built again once it holds as many forgotten ids as
// remembered ones.
func (r *recordIDs) forget(slot int64) int {
	n := 0
	for len(r.order) > 0 && r.order[0] < slot {
		s := r.order[0]
		for _, id := range r.slots[s] {
			delete(r.at, id)
		}
		n += len(r.slots[s])
		delete(r.slots, s)
		r.order = r.order[1:]
	}
	if r.stale += n; r.stale > 0 && r.stale >= len(r.at) {
		f := newFilter()
		for id := range r.at {
			i, bit := filterBit(id)
			(*f)[i].Or(bit)
		}
		r.filter.Store(f)
		r.stale = 0
	}
	return n
}

// replayed tells whether the record being evaluated was counted by the
// scheduled rules before, in a committed batch or earlier in this one
// (decided once per record; a record without an eventID is never taken
// for another). A record not seen before is noted for the batch at seen,
// its time (ms); one dated before 1970, which no window counts, is not.
func (e *Engine) replayed(w *worker, seen int64) bool {
	if e.recIDs == nil || seen < 0 {
		return false
	}
	if w.idOf == w.n {
		return w.idSeen
	}
	w.idOf, w.idSeen = w.n, false
	v := w.ev.Values(e.eventID)
	if len(v) == 0 || v[0].Text == "" {
		return false
	}
	id := valueHash(v[0].Text)
	if _, ok := w.batchIDs[id]; ok || e.recIDs.has(id) {
		w.idSeen = true
		w.replays++
		return true
	}
	if w.batchIDs == nil {
		w.batchIDs = map[uint64]int64{}
	}
	w.batchIDs[id] = floorDiv(seen, idSlot)
	return false
}

// idCommit is what a batch's commit does to the record memory (and to the
// next run time) once it has succeeded.
type idCommit struct {
	written bool  // the batch's ids went into the state
	claimed bool  // and are in flight (recordIDs.claim)
	horizon int64 // slots before it no window counts any more
	bound   int64 // slots before it are forgotten for the bound
	due     int64 // the scheduled rules' next run time (0: not moved)
	shapes  bool  // the rules' shapes were checked (shape.go)
}

// writeRecordIDs writes the batch's new record ids into the state and
// drops the slots no window can count any more (or past the bound), in the
// commit's transaction; clock is the batch's clock.
func (e *Engine) writeRecordIDs(ws *store.Windows, w *worker, clock time.Time, ic *idCommit) error {
	r := e.recIDs
	if r == nil {
		return nil
	}
	if len(w.batchIDs) > 0 {
		if n := r.claim(&w.batchIDs); n > 0 {
			return fmt.Errorf("%w (%d of its records)", ErrRecordsInFlight, n)
		}
		ic.claimed = true
	}
	by := map[int64][]uint64{}
	for id, slot := range w.batchIDs {
		by[slot] = append(by[slot], id)
	}
	slots := make([]int64, 0, len(by))
	for s := range by {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	for _, s := range slots {
		ids := by[s]
		slices.Sort(ids)
		if err := ws.AddRecordIDs(s, ids); err != nil {
			return err
		}
	}
	r.mu.RLock()
	ic.written, ic.horizon = true, minSlot
	if !clock.IsZero() {
		ic.horizon = floorDiv(clock.UnixMilli()-r.horizon, idSlot)
	}
	ic.bound = r.evictTo(len(w.batchIDs))
	r.mu.RUnlock()
	// Slots are minutes since 1970, never negative: a clock within the
	// horizon of 1970 forgets nothing.
	if before := max(ic.horizon, ic.bound); before > 0 {
		return ws.DropRecordIDsBefore(before)
	}
	return nil
}

// KeepRecordIDs makes e, which replaces old (a hot reload), share old's
// record memory: the ids that old's batches still in flight commit stay
// known to e. The memory takes e's horizon and bound.
func (e *Engine) KeepRecordIDs(old *Engine) {
	if e.recIDs == nil || old == nil || old.recIDs == nil {
		return
	}
	r := old.recIDs
	r.mu.Lock()
	r.horizon, r.max = e.recIDs.horizon, e.recIDs.max
	r.mu.Unlock()
	e.recIDs = r
}

// unclaim takes the ids of a batch whose commit failed out of flight.
func (e *Engine) unclaim(w *worker, ic idCommit) {
	if ic.claimed {
		e.recIDs.mu.Lock()
		e.recIDs.release(&w.batchIDs)
		e.recIDs.mu.Unlock()
	}
}

// applyRecordIDs makes a committed batch's ids part of the memory, and
// returns how many remembered ids the bound made it forget.
func (e *Engine) applyRecordIDs(w *worker, ic idCommit) (forgotten int) {
	r := e.recIDs
	if r == nil || !ic.written {
		return 0
	}
	before := max(ic.horizon, ic.bound)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.release(&w.batchIDs)
	for id, slot := range w.batchIDs {
		if slot >= before {
			r.add(id, slot)
		}
	}
	r.forget(ic.horizon)
	return r.forget(ic.bound)
}
