package esql

import (
	"github.com/trailwatch/trailwatch/matcher"
)

// ctx is what an expression reads while one row is evaluated: the record's
// fields (before STATS), the row's computed columns, and the run's time. A
// ctx serves one evaluation at a time; the Program keeps a pool of them.
type ctx struct {
	f     matcher.Fields
	src   []mv   // the record's source fields, read on first use
	srcOK []bool //
	cols  []mv   // computed columns (before STATS) or the row's columns
	now   int64  // NOW(), epoch milliseconds
	buf   []val  // arena the row's values are carved from
	p     *Program

	// The row Eval gives for an aggregating program, which borrows the
	// ctx: out of the pool until release.
	row    []mv
	gen    uint64 // counts releases: a Row of an earlier generation is stale
	holder *Acc   // the Acc that keeps the ctx out of the pool (Acc.Add)
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
		c.buf = make([]val, 0, max(256, n))
	}
	s := len(c.buf)
	c.buf = c.buf[:s+n]
	return c.buf[s : s+n : s+n]
}

func (c *ctx) one(v val) mv {
	m := c.alloc(1)
	m[0] = v
	return m
}

// source reads source field i of the record, once per row.
func (c *ctx) source(i int) mv {
	if c.srcOK[i] {
		return c.src[i]
	}
	c.srcOK[i] = true
	if c.f == nil {
		return nil
	}
	sf := &c.p.srcFields[i]
	in := c.f.Values(sf.f)
	if len(in) == 0 {
		return nil
	}
	m := readField(sf.f, sf.t, in, c.alloc(len(in))[:0])
	if len(m) == 0 {
		m = nil
	}
	c.src[i] = m
	return m
}

// reset prepares the ctx for a new row; the values of the last one are
// overwritten.
func (c *ctx) reset(f matcher.Fields, now int64) {
	c.f, c.now = f, now
	clear(c.srcOK)
	clear(c.src)
	clear(c.cols)
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
