package esql

import (
	"unsafe"

	"github.com/trailwatch/trailwatch/matcher"
)

// ctx is what an expression reads while one row is evaluated: the record's
// fields (before STATS), the row's computed columns, and the run's time. A
// ctx serves one evaluation at a time; the Program keeps a pool of them.
type ctx struct {
	f    matcher.Fields
	src  []srcSlot // the record's source fields, read on first use
	cols []mv      // computed columns (before STATS) or the row's columns
	done []bool    // which of cols an EVAL before STATS has computed (lazy)
	outs []mv      // DISSECT's and GROK's scratch
	now  int64     // NOW(), epoch milliseconds
	buf  []val     // arena the row's values are carved from
	addr []byte    // arena of the 16-byte forms of the row's ip values
	p    *Program

	// The row Eval gives for an aggregating program, which borrows the
	// ctx: out of the pool until release.
	row    []mv
	gen    uint64 // counts releases: a Row of an earlier generation is stale
	holder *Acc   // the Acc that keeps the ctx out of the pool (Acc.Add)

	where []whereOrder // the order of each WHERE's conjuncts (Program.nwhere)
}

// srcSlot is a source field's values once read.
type srcSlot struct {
	m  mv
	ok bool
}

// whereOrder is the order in which a ctx tests the conjuncts of a WHERE:
// those that drop the largest share of the rows they see first, as learnt
// from the rows it evaluated (halved at each reordering, so that it
// follows a change in the records). WHERE has no side effects and keeps a
// row only when every conjunct is true, so the order changes what a row
// costs, never whether it is kept.
type whereOrder struct {
	order         []uint32
	seen, dropped []uint32
	n             int // rows since the last reordering
}

// reorderEvery is how many rows a whereOrder sees between reorderings.
const reorderEvery = 128

// newWhereOrders makes the orders of WHEREs of n[i] conjuncts, in one
// block.
func newWhereOrders(n []int) []whereOrder {
	total := 0
	for _, x := range n {
		total += x
	}
	block := make([]uint32, 3*total)
	ws := make([]whereOrder, len(n))
	for i, x := range n {
		w := &ws[i]
		w.order, w.seen, w.dropped, block = block[:x:x], block[x:2*x:2*x], block[2*x:3*x:3*x], block[3*x:]
		for j := range w.order {
			w.order[j] = uint32(j)
		}
	}
	return ws
}

// run tests the conjuncts in the ctx's order; false at the first that is
// not true.
func (w *whereOrder) run(k *ctx, conds []func(*ctx) bool) bool {
	if w.n++; w.n >= reorderEvery {
		w.reorder()
	}
	for _, i := range w.order {
		w.seen[i]++
		if !conds[i](k) {
			w.dropped[i]++
			return false
		}
	}
	return true
}

// reorder sorts the conjuncts by the share of rows each dropped, highest
// first (ties keep their order).
func (w *whereOrder) reorder() {
	w.n = 0
	higher := func(a, b uint32) bool { // a's share above b's
		return uint64(w.dropped[a])*uint64(w.seen[b]) > uint64(w.dropped[b])*uint64(w.seen[a])
	}
	for i := 1; i < len(w.order); i++ {
		for j := i; j > 0 && higher(w.order[j], w.order[j-1]); j-- {
			w.order[j], w.order[j-1] = w.order[j-1], w.order[j]
		}
	}
	for i := range w.seen {
		w.seen[i] /= 2
		w.dropped[i] /= 2
	}
}

// release puts a ctx that a row borrowed back in its program's pool.
func (c *ctx) release() {
	clear(c.row)
	c.gen++
	c.holder = nil
	c.p.pool.Put(c)
}

// alloc returns room for n values, valid until the ctx is reset.
func (c *ctx) alloc(n int) mv {
	if len(c.buf)+n > cap(c.buf) {
		// A new block: the values given out so far stay where they are.
		c.buf = make([]val, 0, max(2*cap(c.buf), 64, n))
	}
	s := len(c.buf)
	c.buf = c.buf[:s+n]
	return c.buf[s : s+n : s+n]
}

// ipText is the 16-byte form of an address as the text of an ip value,
// valid until the ctx is reset: what outlives the row is copied (the rows
// of queries without STATS, an Acc's values and keys).
func (c *ctx) ipText(b [16]byte) string {
	if len(c.addr)+16 > cap(c.addr) {
		// A new block: the addresses given out so far stay where they are.
		c.addr = make([]byte, 0, max(2*cap(c.addr), 256))
	}
	s := len(c.addr)
	c.addr = append(c.addr, b[:]...)
	return unsafe.String(&c.addr[s], 16)
}

func (c *ctx) one(v val) mv {
	m := c.alloc(1)
	m[0] = v
	return m
}

// source reads source field i of the record, once per row.
func (c *ctx) source(i int) mv {
	if c.src[i].ok {
		return c.src[i].m
	}
	c.src[i].ok = true
	if c.f == nil {
		return nil
	}
	sf := &c.p.srcFields[i]
	if sf.t == tyDate {
		if d, ok := c.f.(matcher.DateFields); ok {
			if ms, ok := d.Millis(sf.f); ok {
				m := c.one(val{n: ms})
				c.src[i].m = m
				return m
			}
		}
	}
	in := c.f.Values(sf.f)
	if len(in) == 0 {
		return nil
	}
	m := readField(c, sf.f, sf.t, in, c.alloc(len(in))[:0])
	if len(m) == 0 {
		m = nil
	}
	c.src[i].m = m
	return m
}

// lazy is the value of the EVAL column in slot, ev computing it on first
// read.
func (c *ctx) lazy(slot int, ev func(*ctx) mv) mv {
	if !c.done[slot] {
		c.done[slot] = true
		c.cols[slot] = ev(c)
	}
	return c.cols[slot]
}

// reset prepares the ctx for a new row; the values of the last one are
// overwritten.
func (c *ctx) reset(f matcher.Fields, now int64) {
	c.f, c.now = f, now
	clear(c.src)
	c.addr = c.addr[:0]
	clear(c.cols)
	clear(c.done)
	c.buf = c.buf[:0]
}

// single is the one value of m, false when m is null or multi-valued
// (scalar functions and operators answer null for both: "single-value
// function encountered multi-value").
func single(m mv) (val, bool) {
	if len(m) != 1 {
		return val{}, false
	}
	return m[0], true
}

// truth is a boolean's value in three-valued logic: 1 true, 0 false, -1
// null (a multi-valued boolean is null).
func truth(m mv) int {
	v, ok := single(m)
	if !ok {
		return -1
	}
	return int(v.n)
}
