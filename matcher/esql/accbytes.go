package esql

// The serialisation of an Acc (see agg.go), as the engine stores a time
// bucket's partial aggregate.
//
// Both forms begin with a magic naming the form, the fingerprint of the
// STATS (8 bytes), the overflow counts (rows, values) and the number of
// groups (uvarints); the groups follow in the order of their keys.
//
// The first form ("esqlacc1", which older state files hold) writes each
// group's key (its length and bytes: appendVal of each BY value after a
// byte 1, or a byte 0 for null), then each aggregation's flags byte and
// state, every value in full.
//
// The second ("esqlacc2", which MarshalBinary writes) writes each text
// value once: a string is a uvarint, 2*i where it is the i-th string
// written before (a table the reader builds as it goes), or where it first
// occurs 2*n+1, then a byte p (at most maxPrefix) and n bytes: the string
// is the first p bytes of the last string written for its column (a BY
// column or an aggregation), then the n bytes. Integers (long, integer,
// datetime) are zigzag varints of the difference from the last value
// written for their column, and in a set, after the first, the uvarint
// difference from the value before (sets are written in order). A group is
// its null BY columns (a bit each, in (n+7)/8 bytes), its other BY values,
// then each aggregation's state:
//
//	COUNT(*), COUNT(x)      the count (uvarint)
//	COUNT_DISTINCT, VALUES  2*n+overflow (uvarint), then the n values
//	MIN, MAX                a byte 1 and the value, or a byte 0
//	SUM                     its flags byte, then the sum when one was seen
//	                        (zigzag varint; a double's bits, 8 bytes)
//	AVG                     the count (uvarint), the sum's bits (8 bytes)
//
// Flags that mean nothing for a kind (a count's, a set's "seen") are not
// written.

import (
	"encoding/binary"
	"errors"
	"math"
)

const (
	accMagicV1 = "esqlacc1"
	accMagic   = "esqlacc2"
)

// maxPrefix bounds the bytes a new string takes from the one before: as
// each costs two bytes at least, what a reader makes of them is at most
// 32 times the bytes it reads.
const maxPrefix = 63

// accEncoder is MarshalBinary's scratch, kept by the Acc between calls.
type accEncoder struct {
	b    []byte
	strs map[string]uint64 // each string written, by its place in the table
	prev []int64           // by column: the last integer written
	last []string          // by column: the last string written
}

// MarshalBinary writes the accumulator: its groups, their states and the
// overflow counts, with a fingerprint of the STATS it belongs to (the
// second form above).
func (a *Acc) MarshalBinary() ([]byte, error) {
	e := a.enc
	if e == nil {
		e = &accEncoder{strs: map[string]uint64{}}
		a.enc = e
	}
	clear(e.strs)
	plan := a.plan
	nby := len(plan.by)
	ncol := nby + len(plan.aggs)
	if cap(e.prev) < ncol {
		e.prev, e.last = make([]int64, ncol), make([]string, ncol)
	}
	e.prev, e.last = e.prev[:ncol], e.last[:ncol]
	clear(e.prev)
	b := append(e.b[:0], accMagic...)
	b = binary.BigEndian.AppendUint64(b, plan.fp)
	b = binary.AppendUvarint(b, uint64(a.dropRows))
	b = binary.AppendUvarint(b, uint64(a.dropVals))
	b = binary.AppendUvarint(b, uint64(len(a.gkeys)))
	e.b = b
	for _, g := range a.sortedGroups() {
		// The key's values, read from its bytes (written by appendVal).
		kd := decoder{s: a.gkeys[g]}
		at := len(e.b)
		for range (nby + 7) / 8 {
			e.b = append(e.b, 0)
		}
		for i, by := range plan.by {
			if kd.byte1() == 0 {
				e.b[at+i/8] |= 1 << (i % 8)
				continue
			}
			e.val(by.t, i, kd.val(by.t))
		}
		if kd.err != nil {
			return nil, errors.New("esql: accumulator: a group's key is damaged")
		}
		for i := range plan.aggs {
			a.encodeState(e, &plan.aggs[i], nby+i, g)
		}
	}
	// The scratch stays the Acc's; the caller gets bytes of its own.
	clear(e.last)
	return append([]byte(nil), e.b...), nil
}

// str writes a string of column c: where it first occurs, what it shares
// with the column's last string and the rest; its place in the table
// after.
func (e *accEncoder) str(c int, s string) {
	last := e.last[c]
	e.last[c] = s
	if i, ok := e.strs[s]; ok {
		e.b = binary.AppendUvarint(e.b, i<<1)
		return
	}
	e.strs[s] = uint64(len(e.strs))
	p := 0
	for n := min(len(s), len(last), maxPrefix); p < n && s[p] == last[p]; {
		p++
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(s)-p)<<1|1)
	e.b = append(e.b, byte(p))
	e.b = append(e.b, s[p:]...)
}

// val writes a value of type t of column c.
func (e *accEncoder) val(t typ, c int, v val) {
	switch t {
	case tyKeyword, tyIP:
		e.str(c, v.s)
	case tyDouble:
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(v.f))
	case tyInt, tyLong, tyDate:
		e.b = binary.AppendVarint(e.b, v.n-e.prev[c])
		e.prev[c] = v.n
	default:
		e.b = binary.AppendVarint(e.b, v.n)
	}
}

// encodeState writes aggregation s's state in group g; c is its column.
func (a *Acc) encodeState(e *accEncoder, s *aggSpec, c int, g int32) {
	flags := *a.flag(g, s)
	switch s.kind {
	case aggCountRows, aggCount:
		e.b = binary.AppendUvarint(e.b, uint64(*a.num(g, s)))
	case aggCountDistinct, aggValues:
		a.sorted = appendSorted(a.sorted[:0], s.t, a.set(g, s))
		e.b = binary.AppendUvarint(e.b, uint64(len(a.sorted))<<1|uint64(flags&flagOverflow)>>1)
		for i, v := range a.sorted {
			if i > 0 && isInteger(s.t) {
				e.b = binary.AppendUvarint(e.b, uint64(v.n-a.sorted[i-1].n))
				e.prev[c] = v.n
				continue
			}
			e.val(s.t, c, v)
		}
	case aggMin, aggMax:
		if flags&flagHas == 0 {
			e.b = append(e.b, 0)
			return
		}
		e.b = append(e.b, 1)
		e.val(s.t, c, *a.value(g, s))
	case aggSum:
		e.b = append(e.b, flags)
		if flags&flagHas == 0 {
			return
		}
		if s.t == tyDouble {
			e.b = binary.BigEndian.AppendUint64(e.b, uint64(*a.num(g, s)))
		} else {
			e.b = binary.AppendVarint(e.b, *a.num(g, s))
		}
	case aggAvg:
		n := a.avg(g, s)
		e.b = binary.AppendUvarint(e.b, uint64(n[0]))
		e.b = binary.BigEndian.AppendUint64(e.b, uint64(n[1]))
	}
}

// isInteger reports whether t's values are integers written as
// differences.
func isInteger(t typ) bool { return t == tyInt || t == tyLong || t == tyDate }

// appendVal writes one value of type t.
func appendVal(b []byte, t typ, v val) []byte {
	switch t {
	case tyKeyword, tyIP:
		b = binary.AppendUvarint(b, uint64(len(v.s)))
		return append(b, v.s...)
	case tyDouble:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v.f))
	}
	return binary.AppendVarint(b, v.n)
}

// decoder reads what MarshalBinary wrote, refusing anything out of bounds.
// The strings it gives share the text it reads.
type decoder struct {
	s   string
	err error

	// The second form's: the strings read, and each column's last integer
	// and last string; text, where strings are made of a prefix and the
	// rest.
	strs []string
	prev []int64
	last []string
	text *textArena
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New("esql: accumulator: " + msg)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	for i, sh := 0, uint(0); i < len(d.s); i, sh = i+1, sh+7 {
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			d.fail("varint overflows")
			return 0
		}
		if c < 0x80 {
			d.s = d.s[i+1:]
			return x | uint64(c)<<sh
		}
		x |= uint64(c&0x7f) << sh
	}
	d.fail("truncated")
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) bytes(n uint64) string {
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.fail("truncated")
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) u64() uint64 {
	s := d.bytes(8)
	if d.err != nil {
		return 0
	}
	var x uint64
	for i := range 8 {
		x = x<<8 | uint64(s[i])
	}
	return x
}

func (d *decoder) byte1() byte {
	s := d.bytes(1)
	if d.err != nil {
		return 0
	}
	return s[0]
}

// val reads a value of the first form.
func (d *decoder) val(t typ) val {
	switch t {
	case tyKeyword:
		return val{s: d.bytes(d.uvarint())}
	case tyIP:
		return val{s: d.checkIP(d.bytes(d.uvarint()))}
	case tyDouble:
		return val{f: math.Float64frombits(d.u64())}
	}
	return val{n: d.checkInt(t, d.varint())}
}

func (d *decoder) checkIP(s string) string {
	if d.err == nil && len(s) != 16 {
		d.fail("bad address")
	}
	return s
}

// checkInt refuses an integer out of t's range.
func (d *decoder) checkInt(t typ, n int64) int64 {
	switch {
	case t == tyBool && n != 0 && n != 1:
		d.fail("bad boolean")
	case t == tyInt && (n < math.MinInt32 || n > math.MaxInt32):
		d.fail("bad integer")
	}
	return n
}

// str reads a string of column col, of the second form.
func (d *decoder) str(col int) string {
	c := d.uvarint()
	if c&1 == 0 {
		if c>>1 >= uint64(len(d.strs)) {
			d.fail("bad string reference")
			return ""
		}
		s := d.strs[c>>1]
		d.last[col] = s
		return s
	}
	p := int(d.byte1())
	rest := d.bytes(c >> 1)
	if p > min(maxPrefix, len(d.last[col])) {
		d.fail("bad string prefix")
	}
	if d.err != nil {
		return ""
	}
	s := rest
	if p > 0 {
		s = d.text.join(d.last[col][:p], rest)
	}
	d.strs = append(d.strs, s)
	d.last[col] = s
	return s
}

// val2 reads a value of type t of column c, of the second form.
func (d *decoder) val2(t typ, c int) val {
	switch t {
	case tyKeyword:
		return val{s: d.str(c)}
	case tyIP:
		return val{s: d.checkIP(d.str(c))}
	case tyDouble:
		return val{f: math.Float64frombits(d.u64())}
	case tyInt, tyLong, tyDate:
		d.prev[c] += d.varint()
		return val{n: d.checkInt(t, d.prev[c])}
	}
	return val{n: d.checkInt(t, d.varint())}
}

// UnmarshalBinary replaces a's content with what MarshalBinary wrote for
// an accumulator of the same STATS, in either form; anything else (another
// query's STATS, damaged or truncated bytes, more groups or values than
// a's limits) is an error and leaves a empty.
func (a *Acc) UnmarshalBinary(data []byte) error {
	a.reset()
	if err := a.unmarshal(data); err != nil {
		a.reset()
		return err
	}
	return nil
}

// reset empties a.
func (a *Acc) reset() {
	a.groups = map[string]int32{}
	a.gkeys, a.blocks = nil, nil
	a.dropRows, a.dropVals = 0, 0
}

func (a *Acc) unmarshal(data []byte) error {
	d, h, err := a.header(data)
	if err != nil {
		return err
	}
	a.dropRows, a.dropVals = h.dropRows, h.dropVals
	if h.v1 {
		a.readGroupsV1(d, h.groups)
	} else {
		a.readGroups(d, h.groups)
	}
	if d.err == nil && len(d.s) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// accHeader is what precedes the groups.
type accHeader struct {
	v1                 bool
	dropRows, dropVals int64
	groups             uint64
}

// ErrOtherStats: an accumulator's bytes were written by another STATS
// (a rule's query edited since): they are not this one's to merge.
var ErrOtherStats = errors.New("esql: accumulator: written for another STATS")

// header reads the form, fingerprint, overflow counts and number of groups
// of a's serialisation, and returns the decoder at the first group.
func (a *Acc) header(data []byte) (*decoder, accHeader, error) {
	var h accHeader
	n := len(accMagic)
	if len(data) < n+8 || string(data[:n]) != accMagic && string(data[:n]) != accMagicV1 {
		return nil, h, errors.New("esql: accumulator: not an ES|QL accumulator")
	}
	// One copy of the bytes, which the strings read share.
	d := &decoder{s: string(data[n:])}
	if d.u64() != a.plan.fp {
		return nil, h, ErrOtherStats
	}
	h.v1 = string(data[:n]) == accMagicV1
	h.dropRows = int64(d.uvarint() & math.MaxInt64)
	h.dropVals = int64(d.uvarint() & math.MaxInt64)
	h.groups = d.uvarint()
	if h.groups > uint64(a.lim.Groups) {
		d.fail("more groups than the limit")
	}
	return d, h, d.err
}

// MergeBinary folds what MarshalBinary wrote (either form, an accumulator
// with a's limits) into a, as Merge of the accumulator UnmarshalBinary
// would read does, without building that accumulator (a scheduled run
// merges its window's parts). On an error a holds part of the bytes: it
// is to be thrown away.
func (a *Acc) MergeBinary(data []byte) error {
	d, h, err := a.header(data)
	if err != nil {
		return err
	}
	if h.v1 {
		part := a.p.NewAccLimits(a.lim)
		if err := part.UnmarshalBinary(data); err != nil {
			return err
		}
		return a.Merge(part)
	}
	a.dropRows += h.dropRows
	a.dropVals += h.dropVals
	plan := a.plan
	nby := len(plan.by)
	d.prev = make([]int64, nby+len(plan.aggs))
	d.last = make([]string, nby+len(plan.aggs))
	d.text = &a.text
	var skip *Acc // a group past the limit is read into it, and left
	seen := map[string]bool{}
	for range h.groups {
		key := a.readKey(d)
		if d.err != nil {
			return d.err
		}
		if seen[string(key)] {
			d.fail("duplicate group")
			return d.err
		}
		seen[string(key)] = true
		into, g := a, int32(0)
		if eg, ok := a.groups[string(key)]; ok {
			g = eg
		} else if len(a.gkeys) < a.lim.Groups {
			g = a.newGroup(a.text.keepBytes(key))
		} else {
			a.dropRows++
			if skip == nil {
				skip = a.p.NewAccLimits(a.lim)
			}
			into, g = skip, skip.newGroup("")
		}
		for j := range plan.aggs {
			if into == a {
				a.mergeState2(d, &plan.aggs[j], nby+j, g)
			} else {
				skip.readState(d, &plan.aggs[j], nby+j, g)
			}
			if d.err != nil {
				return d.err
			}
		}
		if skip != nil && into == skip {
			skip.Reuse()
		}
	}
	if d.err == nil && len(d.s) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// mergeState2 reads aggregation s's state of the second form and folds it
// into a's group g, as mergeState folds another accumulator's.
func (a *Acc) mergeState2(d *decoder, s *aggSpec, c int, g int32) {
	flags := a.flag(g, s)
	switch s.kind {
	case aggCountRows, aggCount:
		*a.num(g, s) += int64(d.uvarint() & math.MaxInt64)
	case aggCountDistinct, aggValues:
		h := d.uvarint()
		*flags |= uint8(h&1) << 1 & flagOverflow
		n := h >> 1
		if n > uint64(a.lim.Values) {
			d.fail("more values than the limit")
			return
		}
		vs := a.set(g, s)
		d.setValues(s.t, c, n, func(v val) { a.addToSet(s.t, vs, flags, setKey(s.t, v)) })
	case aggMin, aggMax:
		switch d.byte1() {
		case 0:
		case 1:
			if v := d.val2(s.t, c); d.err == nil {
				a.extreme(s, g, v)
			}
		default:
			d.fail("bad state")
		}
	case aggSum:
		of := d.byte1()
		if of > flagHas|flagOverflow {
			d.fail("bad state")
			return
		}
		if of&flagHas == 0 {
			return
		}
		var o int64
		if s.t == tyDouble {
			o = int64(d.u64())
		} else {
			o = d.varint()
		}
		if d.err == nil {
			a.foldSum(s, g, of, o)
		}
	case aggAvg:
		cnt := int64(d.uvarint() & math.MaxInt64)
		sum := int64(d.u64())
		if d.err != nil {
			return
		}
		n := a.avg(g, s)
		n[0] += cnt
		addFloat(&n[1], floatOf(sum))
	}
}

// readGroups reads n groups of the second form.
func (a *Acc) readGroups(d *decoder, n uint64) {
	plan := a.plan
	nby := len(plan.by)
	d.prev = make([]int64, nby+len(plan.aggs))
	d.last = make([]string, nby+len(plan.aggs))
	d.text = &a.text
	for range n {
		key := a.readKey(d)
		if d.err != nil {
			return
		}
		if _, dup := a.groups[string(key)]; dup {
			d.fail("duplicate group")
			return
		}
		g := a.newGroup(a.text.keepBytes(key))
		for j := range plan.aggs {
			a.readState(d, &plan.aggs[j], nby+j, g)
			if d.err != nil {
				return
			}
		}
	}
}

// readState reads aggregation s's state in group g, of the second form; c
// is its column.
func (a *Acc) readState(d *decoder, s *aggSpec, c int, g int32) {
	switch s.kind {
	case aggCountRows, aggCount:
		*a.num(g, s) = int64(d.uvarint() & math.MaxInt64)
	case aggCountDistinct, aggValues:
		h := d.uvarint()
		*a.flag(g, s) = uint8(h&1) << 1 // flagOverflow
		n := h >> 1
		if n > uint64(a.lim.Values) {
			d.fail("more values than the limit")
			return
		}
		vs := a.set(g, s)
		d.setValues(s.t, c, n, func(v val) {
			if k := setKey(s.t, v); !vs.has(k) {
				a.setInsert(vs, k)
			}
		})
	case aggMin, aggMax:
		switch d.byte1() {
		case 0:
		case 1:
			*a.flag(g, s) = flagHas
			*a.value(g, s) = d.val2(s.t, c)
		default:
			d.fail("bad state")
		}
	case aggSum:
		flags := d.byte1()
		if flags > flagHas|flagOverflow {
			d.fail("bad state")
		}
		*a.flag(g, s) = flags
		if flags&flagHas != 0 {
			a.readNums(d, s, g)
		}
	case aggAvg:
		a.readNums(d, s, g)
	}
}

// readGroupsV1 reads n groups of the first form.
func (a *Acc) readGroupsV1(d *decoder, n uint64) {
	for i := uint64(0); i < n && d.err == nil; i++ {
		key := d.bytes(d.uvarint())
		if _, ok := a.decodeKey(key); !ok {
			d.fail("bad group key")
			break
		}
		if _, dup := a.groups[key]; dup {
			d.fail("duplicate group")
			break
		}
		g := a.newGroup(key)
		for j := range a.plan.aggs {
			a.readStateV1(d, &a.plan.aggs[j], g)
		}
	}
}

func (a *Acc) decodeKey(key string) ([]mv, bool) {
	d := &decoder{s: key}
	keys := make([]mv, len(a.plan.by))
	for i, b := range a.plan.by {
		switch d.byte1() {
		case 0:
		case 1:
			keys[i] = mv{d.val(b.t)}
		default:
			return nil, false
		}
	}
	return keys, d.err == nil && len(d.s) == 0
}

// readStateV1 reads aggregation s's state in group g, of the first form.
func (a *Acc) readStateV1(d *decoder, s *aggSpec, g int32) {
	flags := d.byte1()
	if flags > flagHas|flagOverflow {
		d.fail("bad state")
	}
	*a.flag(g, s) = flags
	switch s.kind {
	case aggCountRows, aggCount:
		*a.num(g, s) = int64(d.uvarint() & math.MaxInt64)
	case aggCountDistinct, aggValues:
		vs := a.set(g, s)
		n := d.uvarint()
		if n > uint64(a.lim.Values) {
			d.fail("more values than the limit")
			return
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			if k := setKey(s.t, d.val(s.t)); !vs.has(k) {
				a.setInsert(vs, k)
			}
		}
	case aggMin, aggMax:
		if flags&flagHas != 0 {
			*a.value(g, s) = d.val(s.t)
		}
	case aggSum, aggAvg:
		a.readNums(d, s, g)
	}
}

// readNums reads SUM's sum or AVG's count and sum, as both forms write
// them.
func (a *Acc) readNums(d *decoder, s *aggSpec, g int32) {
	switch {
	case s.kind == aggAvg:
		n := a.avg(g, s)
		n[0] = int64(d.uvarint() & math.MaxInt64)
		n[1] = int64(d.u64())
	case s.t == tyDouble:
		*a.num(g, s) = int64(d.u64())
	default:
		*a.num(g, s) = d.varint()
	}
}

// readKey reads a group's key of the second form (its null BY columns,
// then its other BY values) into a.keyBuf.
func (a *Acc) readKey(d *decoder) []byte {
	plan := a.plan
	nby := len(plan.by)
	nulls := d.bytes(uint64(nby+7) / 8)
	if d.err != nil {
		return nil
	}
	key := a.keyBuf[:0]
	for i, by := range plan.by {
		if nulls[i/8]&(1<<(i%8)) != 0 {
			key = append(key, 0)
			continue
		}
		key = appendVal(append(key, 1), by.t, d.val2(by.t, i))
	}
	a.keyBuf = key
	if nby%8 != 0 && nulls[nby/8]>>(nby%8) != 0 {
		d.fail("bad group key")
	}
	return key
}

// setValues reads a set's n values of type t (column c), in order, calling
// fn with each while the bytes are good.
func (d *decoder) setValues(t typ, c int, n uint64, fn func(val)) {
	for i := uint64(0); i < n && d.err == nil; i++ {
		var v val
		if i > 0 && isInteger(t) {
			d.prev[c] += int64(d.uvarint())
			v.n = d.checkInt(t, d.prev[c])
		} else {
			v = d.val2(t, c)
		}
		if d.err == nil {
			fn(v)
		}
	}
}
