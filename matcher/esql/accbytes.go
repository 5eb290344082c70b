package esql

// The serialisation of an Acc (see agg.go), as the engine stores a time
// bucket's partial aggregate.

import (
	"encoding/binary"
	"errors"
	"math"
)

const accMagic = "esqlacc1"

// MarshalBinary writes the accumulator: its groups, their states and the
// overflow counts, with a fingerprint of the STATS it belongs to.
func (a *Acc) MarshalBinary() ([]byte, error) {
	// Room for the text it keeps and a few bytes a state: most of what
	// it writes, in one allocation.
	b := make([]byte, 0, 64+a.text.total+len(a.gkeys)*(4*len(a.plan.aggs)+8))
	b = append(b, accMagic...)
	b = binary.BigEndian.AppendUint64(b, a.plan.fp)
	b = binary.AppendUvarint(b, uint64(a.dropRows))
	b = binary.AppendUvarint(b, uint64(a.dropVals))
	b = binary.AppendUvarint(b, uint64(len(a.gkeys)))
	for _, g := range a.sortedGroups() {
		key := a.gkeys[g]
		b = binary.AppendUvarint(b, uint64(len(key)))
		b = append(b, key...)
		for i := range a.plan.aggs {
			b = a.appendState(b, &a.plan.aggs[i], g)
		}
	}
	return b, nil
}

// appendState writes aggregation s's state in group g: its flags (1 a
// value was seen, 2 overflow), then by kind.
func (a *Acc) appendState(b []byte, s *aggSpec, g int32) []byte {
	b = append(b, *a.flag(g, s))
	switch s.kind {
	case aggCountRows, aggCount:
		b = binary.AppendUvarint(b, uint64(*a.num(g, s)))
	case aggCountDistinct, aggValues:
		a.sorted = appendSorted(a.sorted[:0], s.t, a.set(g, s))
		b = binary.AppendUvarint(b, uint64(len(a.sorted)))
		for _, v := range a.sorted {
			b = appendVal(b, s.t, v)
		}
	case aggMin, aggMax:
		if *a.flag(g, s)&flagHas != 0 {
			b = appendVal(b, s.t, *a.value(g, s))
		}
	case aggSum:
		if s.t == tyDouble {
			b = binary.BigEndian.AppendUint64(b, uint64(*a.num(g, s)))
		} else {
			b = binary.AppendVarint(b, *a.num(g, s))
		}
	case aggAvg:
		n := a.avg(g, s)
		b = binary.AppendUvarint(b, uint64(n[0]))
		b = binary.BigEndian.AppendUint64(b, uint64(n[1]))
	}
	return b
}

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
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New("esql: accumulator: " + msg)
	}
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	d.advance(n)
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b)
	d.advance(n)
	return x
}

// advance steps over a varint of n bytes (n <= 0: none could be read).
func (d *decoder) advance(n int) {
	if d.err != nil {
		return
	}
	if n <= 0 {
		d.fail("truncated")
		return
	}
	d.b = d.b[n:]
}

func (d *decoder) bytes(n uint64) string {
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) u64() uint64 {
	s := d.bytes(8)
	if d.err != nil {
		return 0
	}
	return binary.BigEndian.Uint64([]byte(s))
}

func (d *decoder) byte1() byte {
	s := d.bytes(1)
	if d.err != nil {
		return 0
	}
	return s[0]
}

func (d *decoder) val(t typ) val {
	switch t {
	case tyKeyword:
		return val{s: d.bytes(d.uvarint())}
	case tyIP:
		s := d.bytes(d.uvarint())
		if d.err == nil && len(s) != 16 {
			d.fail("bad address")
		}
		return val{s: s}
	case tyDouble:
		return val{f: math.Float64frombits(d.u64())}
	case tyBool:
		n := d.varint()
		if n != 0 && n != 1 {
			d.fail("bad boolean")
		}
		return val{n: n}
	case tyInt:
		n := d.varint()
		if n < math.MinInt32 || n > math.MaxInt32 {
			d.fail("bad integer")
		}
		return val{n: n}
	}
	return val{n: d.varint()}
}

// UnmarshalBinary replaces a's content with what MarshalBinary wrote for
// an accumulator of the same STATS; anything else (another query's STATS,
// damaged or truncated bytes, more groups or values than a's limits) is
// an error and leaves a empty.
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
	if len(data) < len(accMagic)+8 || string(data[:len(accMagic)]) != accMagic {
		return errors.New("esql: accumulator: not an ES|QL accumulator")
	}
	d := &decoder{b: data[len(accMagic):]}
	if d.u64() != a.plan.fp {
		return errors.New("esql: accumulator: written for another STATS")
	}
	a.dropRows = int64(d.uvarint() & math.MaxInt64)
	a.dropVals = int64(d.uvarint() & math.MaxInt64)
	n := d.uvarint()
	if n > uint64(a.lim.Groups) {
		d.fail("more groups than the limit")
	}
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
			a.readState(d, &a.plan.aggs[j], g)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

func (a *Acc) decodeKey(key string) ([]mv, bool) {
	d := &decoder{b: []byte(key)}
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
	return keys, d.err == nil && len(d.b) == 0
}

func (a *Acc) readState(d *decoder, s *aggSpec, g int32) {
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
	case aggSum:
		if s.t == tyDouble {
			*a.num(g, s) = int64(d.u64())
		} else {
			*a.num(g, s) = d.varint()
		}
	case aggAvg:
		n := a.avg(g, s)
		n[0] = int64(d.uvarint() & math.MaxInt64)
		n[1] = int64(d.u64())
	}
}
