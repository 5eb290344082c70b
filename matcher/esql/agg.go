package esql

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// STATS ... BY, as an accumulator the engine keeps per time bucket and
// merges over a run's window.
//
// Groups: the BY values of a row; a multi-valued BY column puts the row in
// the group of each of its values (every combination, for several such
// columns), and a null BY value is a group of its own (stats.csv-spec,
// multi-mv-group; the null group of ES|QL's hash grouping).
//
// Aggregations (each with an optional `WHERE` filter on the row):
// COUNT(*) and COUNT() count rows; COUNT(x) counts x's values (each value
// of a multi-valued one); COUNT_DISTINCT(x) the distinct values (exact
// here, up to the value cap; Elasticsearch estimates it); VALUES(x) the
// distinct values (in order here; Elasticsearch gives no order); MIN and
// MAX over every value; SUM of every value (null when it overflows a long);
// AVG as a double. Over no values, COUNT and COUNT_DISTINCT are 0, the
// others null.
//
// Bounds: an Acc holds at most Limits.Groups groups and at most
// Limits.Values distinct values in each VALUES and COUNT_DISTINCT; what
// does not fit is counted (Overflow), never an error: a row whose group
// does not fit is dropped, a value that does not fit is not kept (a
// COUNT_DISTINCT past the cap is a lower bound).

// Limits bounds an Acc.
type Limits struct {
	Groups int // groups kept
	Values int // distinct values kept in each VALUES or COUNT_DISTINCT
}

// DefaultLimits are the bounds NewAcc uses.
var DefaultLimits = Limits{Groups: 100_000, Values: 10_000}

// maxCombinations bounds the groups one row joins when several BY
// columns are multi-valued.
const maxCombinations = 4096

type aggKind uint8

const (
	aggCountRows aggKind = iota
	aggCount
	aggCountDistinct
	aggValues
	aggMin
	aggMax
	aggSum
	aggAvg
)

type aggSpec struct {
	kind   aggKind
	arg    cexpr
	filter func(*ctx) bool // nil: none
	t      typ             // the argument's type
	out    typ             // the result's type
	at     int             // its place among the aggregations
	slot   int             // its place among those of its storage (see Acc)
}

type statsPlan struct {
	inShape *shape // the columns Eval gives STATS
	by      []cexpr
	aggs    []aggSpec
	nin     int
	fp      uint64
	// What a group holds: numbers (COUNT, SUM, and two for AVG), values
	// (MIN, MAX) and sets (VALUES, COUNT_DISTINCT).
	nNum, nVal, nSet int
}

// place gives each aggregation its slot in a group's storage.
func (plan *statsPlan) place() {
	for i := range plan.aggs {
		s := &plan.aggs[i]
		s.at = i
		switch s.kind {
		case aggMin, aggMax:
			s.slot = plan.nVal
			plan.nVal++
		case aggCountDistinct, aggValues:
			s.slot = plan.nSet
			plan.nSet++
		case aggAvg:
			s.slot = plan.nNum
			plan.nNum += 2
		default:
			s.slot = plan.nNum
			plan.nNum++
		}
	}
}

// statsScope resolves names in STATS against the columns before it, and
// makes each one read the input row.
type statsScope struct {
	c      *compiler
	e      *env
	inputs map[string]int
	cols   []column
}

func (s *statsScope) lookup(name string, pos int) cexpr {
	i, ok := s.inputs[name]
	if !ok {
		col := s.c.resolve(s.e, name, pos)
		if col.t == tyUnsupported {
			s.c.fail(pos, "cannot use [%s]: its mapping (%s) has no ES|QL type trailwatch evaluates", name, mappingName(col.field))
		}
		i = len(s.cols)
		s.inputs[name] = i
		col.name = name
		s.cols = append(s.cols, col)
	}
	t := s.cols[i].t
	return cexpr{t: t, field: s.cols[i].field, ev: func(k *ctx) mv { return k.cols[i] }}
}

// stats compiles STATS against the columns before it; Eval's row becomes
// the columns STATS reads.
func (c *compiler) stats(cmd command, e *env) {
	sc := &statsScope{c: c, e: e, inputs: map[string]int{}}
	plan := &statsPlan{}
	post := &env{}
	h := fnv.New64a()
	fmt.Fprintf(h, "esql-stats/1")
	for _, f := range cmd.fields {
		a := c.aggregate(f, sc)
		plan.aggs = append(plan.aggs, a)
		name := f.name
		if name == "" {
			name = c.text(f.e)
		}
		post.define(column{name: name, t: a.out, slot: len(plan.aggs) - 1})
		fmt.Fprintf(h, "|a%d:%d", a.kind, a.t)
	}
	for _, f := range cmd.by {
		x := c.expr(f.e, sc)
		switch x.t {
		case tyDuration, tyPeriod, tyUnsupported:
			c.fail(f.e.pos, "cannot group by [%s] of type %s", c.text(f.e), x.t)
		}
		plan.by = append(plan.by, x)
		name := f.name
		if name == "" {
			name = c.text(f.e)
			if f.e.kind == exField {
				name = f.e.name
			}
		}
		fmt.Fprintf(h, "|b%d", x.t)
		post.define(column{name: name, t: x.t, slot: len(cmd.fields) + len(plan.by) - 1})
	}
	plan.fp = h.Sum64()
	plan.nin = len(sc.cols)
	plan.place()
	plan.inShape = &shape{}
	p := c.p
	for _, col := range sc.cols {
		plan.inShape.names = append(plan.inShape.names, col.name)
		plan.inShape.types = append(plan.inShape.types, col.t)
		p.out = append(p.out, outCol{name: col.name, t: col.t, read: readColumn(col).ev})
	}
	p.stats = plan
	p.post = &postPlan{env: post, nslots: len(cmd.fields) + len(plan.by)}
}

// aggregate compiles one `[name =] AGG(arg) [WHERE filter]`.
func (c *compiler) aggregate(f field, sc *statsScope) aggSpec {
	e := f.e
	if e.kind != exCall || !aggNames[e.op] {
		c.fail(e.pos, "[%s] is not an aggregation; STATS takes COUNT, COUNT_DISTINCT, VALUES, MIN, MAX, SUM or AVG here", c.text(e))
	}
	a := aggSpec{}
	if f.filter != nil {
		x := c.expr(f.filter, sc)
		if x.t != tyBool && x.t != tyNull {
			c.fail(f.filter.pos, "the filter of an aggregation must be a boolean, found [%s] of type %s", c.text(f.filter), x.t)
		}
		a.filter = truthy(x)
	}
	name := strings.ToUpper(e.name)
	if e.op == "count" && (e.star || len(e.args) == 0) {
		a.kind, a.out = aggCountRows, tyLong
		return a
	}
	if e.star {
		c.fail(e.pos, "%s does not take *", name)
	}
	if e.op == "count_distinct" {
		if len(e.args) < 1 || len(e.args) > 2 {
			c.fail(e.pos, "COUNT_DISTINCT takes a field and an optional precision")
		}
	} else if len(e.args) != 1 {
		c.fail(e.pos, "%s takes one argument, found %d", name, len(e.args))
	}
	for _, arg := range e.args {
		if arg.kind == exCall && aggNames[arg.op] {
			c.fail(arg.pos, "aggregations do not nest")
		}
	}
	a.arg = c.expr(e.args[0], sc)
	a.t = a.arg.t
	switch a.t {
	case tyDuration, tyPeriod, tyUnsupported:
		c.fail(e.args[0].pos, "%s cannot take [%s] of type %s", name, c.text(e.args[0]), a.t)
	}
	switch e.op {
	case "count":
		a.kind, a.out = aggCount, tyLong
	case "count_distinct":
		a.kind, a.out = aggCountDistinct, tyLong
		if len(e.args) == 2 {
			pr := c.expr(e.args[1], sc)
			if !pr.konst || !pr.t.numeric() {
				c.fail(e.args[1].pos, "COUNT_DISTINCT's precision must be a number")
			}
		}
	case "values":
		a.kind, a.out = aggValues, a.t
	case "min", "max":
		a.kind, a.out = aggMin, a.t
		if e.op == "max" {
			a.kind = aggMax
		}
		if a.t == tyNull {
			a.out = tyNull
		}
	case "sum", "avg":
		if !a.t.numeric() && a.t != tyNull {
			c.fail(e.args[0].pos, "%s needs a number, found [%s] of type %s", name, c.text(e.args[0]), a.t)
		}
		a.kind, a.out = aggSum, tyLong
		if a.t == tyDouble {
			a.out = tyDouble
		}
		if e.op == "avg" {
			a.kind, a.out = aggAvg, tyDouble
		}
	}
	return a
}

// valSet is a set's values: in small while they are few (in the order
// added), then in m.
type valSet struct {
	small []val
	m     map[val]struct{}
}

// smallSet is how many values a set holds in a list before a map.
const smallSet = 8

// The flags of an aggregation's state in a group.
const (
	flagHas      = 1 // MIN, MAX, SUM: a value was seen
	flagOverflow = 2 // SUM: overflowed; sets: values were left out
)

// Acc accumulates STATS over rows; it is mergeable and serialisable, so
// that per-bucket accumulators can be kept and a run's window merged.
//
// The groups (numbered in the order made) keep their states in tables
// of a few bytes a group, so that making one writes little memory: a
// flags byte for each aggregation, numbers (COUNT's count; SUM's integer
// sum or double sum's bits; AVG's count and sum's bits), values (MIN, MAX)
// and sets. The tables come in blocks of 8, 16, ... 256 groups, never
// copied; numbers and flags hold no pointers, so the collector does not
// scan them.
type Acc struct {
	p        *Program
	plan     *statsPlan
	shape    *shape // the rows Add takes: Eval's of the same program
	lim      Limits
	groups   map[string]int32 // by the BY values, encoded (appendVal)
	gkeys    []string         // by group
	blocks   []stateBlock
	dropRows int64 // rows (or row combinations) whose group did not fit
	dropVals int64 // values not kept in a full VALUES or COUNT_DISTINCT
	rows     int64 // rows Add took
	keyBuf   []byte
	held     *ctx // the ctx of the last row added (see Row), released at the next

	// Add's scratch, reused from row to row.
	keys []mv
	ins  []aggInput
	idx  []int

	sorted mv          // a set's values in order (MarshalBinary, Merge)
	enc    *accEncoder // MarshalBinary's scratch

	// Storage carved for small sets and the text the Acc keeps (group
	// keys, set values, MIN and MAX), so that a row that makes a group or
	// adds a value costs no allocation of its own.
	vslab []val
	slabs [][]val // every block carved, kept for Reuse; vslab is slabs[cur]
	cur   int
	text  textArena
}

// stateBlock holds the states of a block of groups.
type stateBlock struct {
	flags []uint8
	nums  []int64
	vals  []val
	sets  []valSet
}

// blockOf is the block of group g and g's place in it: blocks of 8, 16,
// 32, 64 and 128 groups, then of 256.
func blockOf(g int32) (int, int) {
	if g < 248 {
		b := bits.Len32(uint32(g/8+1)) - 1
		return b, int(g) - 8*(1<<b-1)
	}
	return 5 + int(g-248)/256, int(g-248) % 256
}

// aggInput is an aggregation's input for one row.
type aggInput struct {
	vals mv
	skip bool // filtered out
}

// textArena keeps strings in shared blocks. A block is only appended to
// (strings.Builder never changes bytes it has written), so each string
// handed out stays as it was.
type textArena struct {
	b    strings.Builder
	next int // the size of the next block
}

// keep returns a copy of s that does not share s's memory.
func (t *textArena) keep(s string) string {
	if !t.room(len(s)) {
		return strings.Clone(s)
	}
	t.b.WriteString(s)
	return t.last(len(s))
}

// join returns x+y, kept as keep keeps a string.
func (t *textArena) join(x, y string) string {
	n := len(x) + len(y)
	if !t.room(n) {
		return x + y
	}
	t.b.WriteString(x)
	t.b.WriteString(y)
	return t.last(n)
}

// keepBytes is keep of b's text.
func (t *textArena) keepBytes(b []byte) string {
	if !t.room(len(b)) {
		return string(b)
	}
	t.b.Write(b)
	return t.last(len(b))
}

// last is the text of the last n bytes written.
func (t *textArena) last(n int) string {
	s := t.b.String()
	return s[len(s)-n:]
}

// room makes room for n more bytes in the current block; false when n is
// too large for a block (the caller allocates it on its own).
func (t *textArena) room(n int) bool {
	const maxBlock = 32 << 10
	if n > maxBlock/8 {
		return false
	}
	if t.b.Cap()-t.b.Len() >= n {
		return true
	}
	t.next = min(max(2*t.next, 1024), maxBlock)
	t.b = strings.Builder{}
	t.b.Grow(t.next)
	return true
}

// NewAcc returns an empty accumulator for an aggregating program, with
// DefaultLimits; nil for a program without STATS.
func (p *Program) NewAcc() *Acc { return p.NewAccLimits(DefaultLimits) }

// NewAccLimits is NewAcc with other bounds.
func (p *Program) NewAccLimits(l Limits) *Acc {
	if p.stats == nil {
		return nil
	}
	return &Acc{p: p, plan: p.stats, shape: p.shape, lim: l, groups: map[string]int32{}}
}

// Reuse empties a for more rows of its program, keeping the memory of its
// tables (allocating them is most of what a new Acc's groups cost). Rows
// a gave before stay as they were.
func (a *Acc) Reuse() {
	if a.held != nil {
		a.held.release()
		a.held = nil
	}
	clear(a.groups)
	clear(a.gkeys)
	a.gkeys = a.gkeys[:0]
	a.rows = 0
	for i := range a.blocks {
		b := &a.blocks[i]
		clear(b.flags)
		clear(b.nums)
		clear(b.vals)
		clear(b.sets)
	}
	a.dropRows, a.dropVals = 0, 0
	// The value lists were the sets': their blocks are carved again.
	if a.vslab != nil {
		a.slabs[a.cur] = a.vslab
		for i, s := range a.slabs[:a.cur+1] {
			clear(s)
			a.slabs[i] = s[:0]
		}
	}
	a.vslab, a.cur = nil, 0
	clear(a.slabs[min(len(a.slabs), maxReusedSlabs):])
	a.slabs = a.slabs[:min(len(a.slabs), maxReusedSlabs)]
}

// maxReusedSlabs bounds the blocks of value lists Reuse keeps (of 1,024
// values at most).
const maxReusedSlabs = 64

// Program is the program whose rows a takes.
func (a *Acc) Program() *Program { return a.p }

// Groups is the number of groups held.
func (a *Acc) Groups() int { return len(a.gkeys) }

// Overflow counts what the bounds left out: rows whose group did not fit,
// and values a full VALUES or COUNT_DISTINCT did not keep.
func (a *Acc) Overflow() (rows, values int64) { return a.dropRows, a.dropVals }

// Rows is how many rows Add took since the Acc was made or reused.
func (a *Acc) Rows() int64 { return a.rows }

// setKey is a value's identity in a set: doubles by their bits.
func setKey(t typ, v val) val {
	if t == tyDouble {
		if v.f == 0 {
			v.f = 0 // -0.0 and 0.0 are one value
		}
		return val{n: int64(math.Float64bits(v.f))}
	}
	return v
}

func setVal(t typ, k val) val {
	if t == tyDouble {
		return val{f: math.Float64frombits(uint64(k.n))}
	}
	return k
}

// Add accumulates one row Eval gave; a row of another program (or the
// zero Row) is ignored.
func (a *Acc) Add(r Row) {
	if r.shape != a.shape {
		return
	}
	a.rows++
	r.check()
	plan := a.plan
	k := a.p.addPool.Get().(*ctx)
	defer a.p.addPool.Put(k)
	k.buf = k.buf[:0]
	k.now = r.now
	copy(k.cols, r.vals)
	// Each BY column's values (null: one null value).
	keys := a.keys[:0]
	combos := 1
	for _, b := range plan.by {
		m := b.ev(k)
		if len(m) > 1 {
			m = distinct(b.t, m)
		}
		keys = append(keys, m)
		if n := len(m); n > 1 {
			combos *= n
			if combos > maxCombinations {
				combos = maxCombinations + 1
			}
		}
	}
	a.keys = keys
	// Each aggregation's input for this row.
	ins := a.ins[:0]
	for i := range plan.aggs {
		s := &plan.aggs[i]
		var in aggInput
		if s.filter != nil && !s.filter(k) {
			in.skip = true
		} else if s.kind != aggCountRows {
			in.vals = s.arg.ev(k)
		}
		ins = append(ins, in)
	}
	a.ins = ins
	idx := a.idx[:0]
	for range keys {
		idx = append(idx, 0)
	}
	a.idx = idx
	for c := 0; ; c++ {
		if c >= maxCombinations {
			a.dropRows += int64(combos - c)
			break
		}
		if g := a.group(keys, idx); g >= 0 {
			for i := range plan.aggs {
				if !ins[i].skip {
					a.update(&plan.aggs[i], g, ins[i].vals)
				}
			}
		}
		// Next combination.
		j := len(idx) - 1
		for ; j >= 0; j-- {
			idx[j]++
			if idx[j] < len(keys[j]) {
				break
			}
			idx[j] = 0
		}
		if j < 0 {
			break
		}
	}
	clear(k.cols)
	clear(keys)
	clear(ins)
	// The row's memory stays the row's until this Acc takes another.
	if l := r.lend; l != nil && l.holder == nil {
		if a.held != nil {
			a.held.release()
		}
		l.holder, a.held = a, l
	}
}

// distinct is m without its repeated values: Elasticsearch puts a row in
// each group of a multi-valued BY key once (MultivalueDedupe), however
// often the value repeats. m itself when nothing repeats.
func distinct(t typ, m mv) mv {
	eq := func(a, b val) bool { return compareVals(t, a, b) == 0 }
	if len(m) <= 16 {
		for i := 1; i < len(m); i++ {
			for j := range i {
				if eq(m[i], m[j]) {
					out := slices.Clone(m[:i])
					for _, v := range m[i+1:] {
						if !slices.ContainsFunc(out, func(w val) bool { return eq(v, w) }) {
							out = append(out, v)
						}
					}
					return out
				}
			}
		}
		return m
	}
	out := slices.Clone(m)
	slices.SortFunc(out, func(a, b val) int { return compareVals(t, a, b) })
	return slices.CompactFunc(out, eq)
}

// group finds or makes the group of the combination idx of keys; -1
// when it does not fit.
func (a *Acc) group(keys []mv, idx []int) int32 {
	b := a.keyBuf[:0]
	for i, m := range keys {
		if len(m) == 0 {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = appendVal(b, a.plan.by[i].t, m[idx[i]])
	}
	a.keyBuf = b
	if g, ok := a.groups[string(b)]; ok {
		return g
	}
	if len(a.gkeys) >= a.lim.Groups {
		a.dropRows++
		return -1
	}
	return a.newGroup(a.text.keepBytes(b))
}

// newGroup adds an empty group.
func (a *Acc) newGroup(key string) int32 {
	g := int32(len(a.gkeys))
	a.gkeys = append(a.gkeys, key)
	a.groups[key] = g
	if b, off := blockOf(g); off == 0 && b == len(a.blocks) {
		n, plan := 256, a.plan
		if b < 5 {
			n = 8 << b
		}
		a.blocks = append(a.blocks, stateBlock{
			flags: make([]uint8, n*len(plan.aggs)),
			nums:  make([]int64, n*plan.nNum),
			vals:  make([]val, n*plan.nVal),
			sets:  make([]valSet, n*plan.nSet),
		})
	}
	return g
}

// The state of aggregation s in group g.
func (a *Acc) flag(g int32, s *aggSpec) *uint8 {
	b, off := blockOf(g)
	return &a.blocks[b].flags[off*len(a.plan.aggs)+s.at]
}

func (a *Acc) num(g int32, s *aggSpec) *int64 {
	b, off := blockOf(g)
	return &a.blocks[b].nums[off*a.plan.nNum+s.slot]
}

func (a *Acc) value(g int32, s *aggSpec) *val {
	b, off := blockOf(g)
	return &a.blocks[b].vals[off*a.plan.nVal+s.slot]
}

func (a *Acc) set(g int32, s *aggSpec) *valSet {
	b, off := blockOf(g)
	return &a.blocks[b].sets[off*a.plan.nSet+s.slot]
}

// avg is AVG's count and sum's bits.
func (a *Acc) avg(g int32, s *aggSpec) []int64 {
	b, off := blockOf(g)
	i := off*a.plan.nNum + s.slot
	return a.blocks[b].nums[i : i+2 : i+2]
}

// carve returns an empty list with room for n values from the Acc's
// storage.
func (a *Acc) carve(n int) []val {
	if len(a.vslab)+n > cap(a.vslab) {
		// The next block: one Reuse emptied, or a new one.
		if a.vslab != nil {
			a.slabs[a.cur] = a.vslab
			a.cur++
		}
		if a.cur < len(a.slabs) && cap(a.slabs[a.cur]) >= n {
			a.vslab = a.slabs[a.cur]
		} else {
			a.vslab = make([]val, 0, max(n, min(max(2*cap(a.vslab), 64), 1024)))
			a.slabs = append(a.slabs[:a.cur], a.vslab)
		}
	}
	s := len(a.vslab)
	a.vslab = a.vslab[:s+n]
	return a.vslab[s : s : s+n]
}

// update folds values into aggregation s of group g.
func (a *Acc) update(s *aggSpec, g int32, vals mv) {
	switch s.kind {
	case aggCountRows:
		*a.num(g, s)++
	case aggCount:
		*a.num(g, s) += int64(len(vals))
	case aggCountDistinct, aggValues:
		for _, v := range vals {
			a.addToSet(s.t, a.set(g, s), a.flag(g, s), setKey(s.t, v))
		}
	case aggMin, aggMax:
		for _, v := range vals {
			a.extreme(s, g, v)
		}
	case aggSum:
		for _, v := range vals {
			sumAdd(s.t, a.num(g, s), a.flag(g, s), v)
		}
	case aggAvg:
		n := a.avg(g, s)
		for _, v := range vals {
			n[0]++
			addFloat(&n[1], asFloat(s.t, v))
		}
	}
}

// addFloat adds x to the double whose bits *n holds.
func addFloat(n *int64, x float64) {
	*n = int64(math.Float64bits(math.Float64frombits(uint64(*n)) + x))
}

func floatOf(n int64) float64 { return math.Float64frombits(uint64(n)) }

func (a *Acc) addToSet(t typ, vs *valSet, flags *uint8, key val) {
	if vs.has(key) {
		return
	}
	if vs.len() >= a.lim.Values {
		*flags |= flagOverflow
		a.dropVals++
		return
	}
	if t == tyKeyword || t == tyIP {
		key.s = a.text.keep(key.s) // the row's text may live in a record's buffer
	}
	a.setInsert(vs, key)
}

// has reports whether the set holds key.
func (vs *valSet) has(key val) bool {
	if vs.m != nil {
		_, ok := vs.m[key]
		return ok
	}
	for i := range vs.small {
		if vs.small[i] == key {
			return true
		}
	}
	return false
}

func (vs *valSet) len() int {
	if vs.m != nil {
		return len(vs.m)
	}
	return len(vs.small)
}

// setInsert adds a key the set does not hold.
func (a *Acc) setInsert(vs *valSet, key val) {
	switch {
	case vs.m != nil:
		vs.m[key] = struct{}{}
	case len(vs.small) < cap(vs.small):
		vs.small = append(vs.small, key)
	case len(vs.small) < smallSet:
		l := a.carve(min(max(2*len(vs.small), 1), smallSet))
		vs.small = append(append(l, vs.small...), key)
	default:
		vs.m = make(map[val]struct{}, 2*smallSet)
		for _, v := range vs.small {
			vs.m[v] = struct{}{}
		}
		vs.m[key] = struct{}{}
		vs.small = nil
	}
}

func (a *Acc) extreme(s *aggSpec, g int32, v val) {
	f, cur := a.flag(g, s), a.value(g, s)
	if *f&flagHas != 0 {
		d := compareVals(s.t, v, *cur)
		if !(s.kind == aggMin && d < 0 || s.kind == aggMax && d > 0) {
			return
		}
	}
	*f |= flagHas
	*cur = v
	if s.t == tyKeyword || s.t == tyIP {
		cur.s = a.text.keep(v.s)
	}
}

func sumAdd(t typ, n *int64, flags *uint8, v val) {
	*flags |= flagHas
	if t == tyDouble {
		addFloat(n, v.f)
		return
	}
	if *flags&flagOverflow != 0 {
		return
	}
	z, ok := intArith("+", *n, v.n)
	if !ok {
		*flags |= flagOverflow
		return
	}
	*n = z
}

// Merge folds another accumulator of the same program into a.
func (a *Acc) Merge(b *Acc) error {
	if b == nil {
		return nil
	}
	if b.plan.fp != a.plan.fp {
		return errors.New("esql: merging accumulators of different STATS")
	}
	a.dropRows += b.dropRows
	a.dropVals += b.dropVals
	for _, bg := range b.sortedGroups() {
		key := b.gkeys[bg]
		g, ok := a.groups[key]
		if !ok {
			if len(a.gkeys) >= a.lim.Groups {
				a.dropRows++
				continue
			}
			g = a.newGroup(key)
		}
		for i := range a.plan.aggs {
			a.mergeState(&a.plan.aggs[i], g, b, bg)
		}
	}
	return nil
}

// foldSum folds a SUM seen elsewhere (its flags of, its sum o) into a's
// group g.
func (a *Acc) foldSum(s *aggSpec, g int32, of uint8, o int64) {
	flags, n := a.flag(g, s), a.num(g, s)
	if s.t == tyDouble {
		*flags |= flagHas
		addFloat(n, floatOf(o))
		return
	}
	if of&flagOverflow != 0 {
		*flags |= flagHas | flagOverflow
		return
	}
	sumAdd(s.t, n, flags, val{n: o})
}

// mergeState folds aggregation s of b's group bg into a's group g.
func (a *Acc) mergeState(s *aggSpec, g int32, b *Acc, bg int32) {
	flags, of := a.flag(g, s), *b.flag(bg, s)
	switch s.kind {
	case aggCountRows, aggCount:
		*a.num(g, s) += *b.num(bg, s)
	case aggCountDistinct, aggValues:
		*flags |= of & flagOverflow
		vs := a.set(g, s)
		a.sorted = appendSorted(a.sorted[:0], s.t, b.set(bg, s))
		for _, k := range a.sorted {
			a.addToSet(s.t, vs, flags, setKey(s.t, k))
		}
	case aggMin, aggMax:
		if of&flagHas != 0 {
			a.extreme(s, g, *b.value(bg, s))
		}
	case aggSum:
		if of&flagHas != 0 {
			a.foldSum(s, g, of, *b.num(bg, s))
		}
	case aggAvg:
		n, o := a.avg(g, s), b.avg(bg, s)
		n[0] += o[0]
		addFloat(&n[1], floatOf(o[1]))
	}
}

// sortedGroups lists the groups in the order of their keys.
func (a *Acc) sortedGroups() []int32 {
	gs := make([]int32, len(a.gkeys))
	for i := range gs {
		gs[i] = int32(i)
	}
	slices.SortFunc(gs, func(x, y int32) int { return strings.Compare(a.gkeys[x], a.gkeys[y]) })
	return gs
}

// sortedSet lists a set's values in order.
func sortedSet(t typ, vs *valSet) mv { return appendSorted(make(mv, 0, vs.len()), t, vs) }

// appendSorted appends a set's values to out, in order.
func appendSorted(out mv, t typ, vs *valSet) mv {
	s := len(out)
	for _, k := range vs.small {
		out = append(out, setVal(t, k))
	}
	for k := range vs.m {
		out = append(out, setVal(t, k))
	}
	if len(out)-s > 1 {
		slices.SortFunc(out[s:], func(x, y val) int { return compareVals(t, x, y) })
	}
	return out
}

// result is aggregation s's value over group g.
func (a *Acc) result(s *aggSpec, g int32) mv {
	flags := *a.flag(g, s)
	switch s.kind {
	case aggCountRows, aggCount:
		return mv{{n: *a.num(g, s)}}
	case aggCountDistinct:
		return mv{{n: int64(a.set(g, s).len())}}
	case aggValues:
		if a.set(g, s).len() == 0 {
			return nil
		}
		return sortedSet(s.t, a.set(g, s))
	case aggMin, aggMax:
		if flags&flagHas == 0 {
			return nil
		}
		return mv{*a.value(g, s)}
	case aggSum:
		if flags&flagHas == 0 || flags&flagOverflow != 0 {
			return nil
		}
		if s.t == tyDouble {
			f := floatOf(*a.num(g, s))
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil
			}
			return mv{{f: f}}
		}
		return mv{{n: *a.num(g, s)}}
	case aggAvg:
		n := a.avg(g, s)
		if n[0] == 0 {
			return nil
		}
		return mv{{f: floatOf(n[1]) / float64(n[0])}}
	}
	return nil
}
