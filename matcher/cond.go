package matcher

import (
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Query is a compiled query of any rule language: a tree of tests over
// field values that follows Elasticsearch's semantics for the fields'
// mappings, the fields it reads, and the provider/action pins the candidate
// index files it under.
type Query struct {
	Source string
	root   Cond
	fields []*Field
	pins   []Pin // nil: the query pins no provider/action
	pinned bool
	notes  []Note
}

// Note is a test trailwatch evaluates although Elasticsearch refuses it, so
// that the rule fails in Kibana where it runs here; Pos is in the query.
type Note struct {
	Pos Pos
	Msg string
}

// Pin is a necessary condition on a record's event.provider and event.action
// for a query to match: "" means any value.
type Pin struct {
	Provider, Action string
}

// Match reports whether the record's fields satisfy the query.
func (q *Query) Match(f Fields) bool { return q.root.Eval(f) }

// Fields lists the fields the query reads, in order of first use.
func (q *Query) Fields() []*Field { return q.fields }

// Notes lists the tests trailwatch evaluates although Elasticsearch refuses
// them, so that the rule fails in Kibana where it runs here.
func (q *Query) Notes() []Note { return q.notes }

// Pins returns the provider/action pairs of which a matching record must
// have at least one, and false when the query does not pin them.
func (q *Query) Pins() ([]Pin, bool) { return q.pins, q.pinned }

// NewQuery makes a query of a compiled tree; src is the rule's text, fields
// the fields the tree reads (in order of first use) and notes the tests
// Elasticsearch refuses. The pins are derived from the tree.
func NewQuery(src string, root Cond, fields []*Field, notes []Note) *Query {
	q := &Query{Source: src, root: root, fields: fields, notes: notes}
	if p := pinsOf(root); p != nil {
		q.pins, q.pinned = p.list(), true
	}
	return q
}

// Root is the query's compiled tree.
func (q *Query) Root() Cond { return q.root }

// Reads interns the fields a front end reads, in order of first use, and
// collects its notes: what NewQuery takes.
type Reads struct {
	Schema *Schema
	seen   map[*Field]bool
	Fields []*Field
	Notes  []Note
}

// Field returns the schema's field for name and records that it is read.
func (r *Reads) Field(name string) *Field {
	f := r.Schema.Field(name)
	if r.seen == nil {
		r.seen = map[*Field]bool{}
	}
	if !r.seen[f] {
		r.seen[f] = true
		r.Fields = append(r.Fields, f)
	}
	return f
}

// Note records a note once per message, at its first place.
func (r *Reads) Note(pos Pos, msg string) {
	for _, x := range r.Notes {
		if x.Msg == msg {
			return
		}
	}
	r.Notes = append(r.Notes, Note{Pos: pos, Msg: msg})
}

// ProviderField and ActionField are the ECS names the candidate index keys on.
const (
	ProviderField = "event.provider"
	ActionField   = "event.action"
)

// cost estimates what evaluating a condition takes, reading its fields
// included, to order conjunctions. Tests that nearly every CloudTrail record
// passes (the data stream, a successful outcome, a field's existence, a
// negation) count as dearer than they are: a conjunction is decided by its
// first false test, so the ones likely to be false go first.
func cost(c Cond) int {
	const likely = 8
	switch c := c.(type) {
	case constCond:
		return 0
	case anyCond:
		n := fieldCost(c.f) + predCost(c.p)
		if e, ok := c.p.(*eqSet); ok && e.set == nil && usual(c.f, e.one) {
			n += likely
		}
		return n
	case existsCond:
		if c.f.Type == Keyword || c.f.Type == Flattened {
			return fieldCost(c.f) + likely
		}
		return fieldCost(c.f) + 4 + likely // the value is parsed
	case notCond:
		return cost(c.c) + likely
	case andCond:
		n := 0
		for _, k := range c {
			n += cost(k)
		}
		return n
	case orCond:
		n := 0
		for _, k := range c {
			n += cost(k)
		}
		return n
	case nestedCond:
		return 20 + cost(c.c)
	}
	return 10
}

// likelyTrue reports whether nearly every CloudTrail record passes a test:
// the usual value of a field, a field's existence, a negation.
func likelyTrue(c Cond) bool {
	switch c := c.(type) {
	case anyCond:
		e, ok := c.p.(*eqSet)
		return ok && e.set == nil && usual(c.f, e.one)
	case existsCond, notCond:
		return true
	}
	return false
}

// fieldCost is what reading a field takes, as the record reader declared
// it in the field's mapping (1 when it said nothing).
func fieldCost(f *Field) int {
	if f.ReadCost > 0 {
		return f.ReadCost
	}
	return 1
}

// usual reports whether s is the value nearly every record has in f.
func usual(f *Field, s string) bool { return f.Usual != "" && f.Usual == s }

func predCost(p Pred) int {
	switch p := p.(type) {
	case *eqSet:
		return 1
	case *glob:
		if p.kind == globGeneral {
			return 4
		}
		if p.kind == globContains {
			return 3
		}
		return 2
	case *globSet:
		n := 2
		for _, g := range p.others {
			n += predCost(g)
		}
		return n
	case cidr, ipCmp, dateCmp:
		return 5
	}
	return 2
}

// ---- conditions ----

// Cond is a compiled test over one record's fields. Front ends build trees
// of them with the constructors below; a front end may add its own Cond for
// a test the core has no shape for (the core then neither reorders its
// reads by cost nor derives pins from it: it costs 10 and pins nothing).
type Cond interface {
	Eval(Fields) bool
}

type constCond bool

func (c constCond) Eval(Fields) bool { return bool(c) }

type andCond []Cond

func (a andCond) Eval(f Fields) bool {
	for _, c := range a {
		if !c.Eval(f) {
			return false
		}
	}
	return true
}

type orCond []Cond

func (o orCond) Eval(f Fields) bool {
	for _, c := range o {
		if c.Eval(f) {
			return true
		}
	}
	return false
}

type notCond struct{ c Cond }

func (n notCond) Eval(f Fields) bool { return !n.c.Eval(f) }

type nestedCond struct {
	f *Field
	c Cond
}

func (n nestedCond) Eval(f Fields) bool {
	for _, e := range f.Elements(n.f) {
		if n.c.Eval(e) {
			return true
		}
	}
	return false
}

// Searchable reports whether Elasticsearch indexed the value: keywords longer
// than ignore_above are kept in _source only. The length is Java's, in
// UTF-16 units (a character past the Basic Multilingual Plane, an emoji,
// counts two; counted as one, a value Elasticsearch leaves unindexed was
// searchable here).
func Searchable(f *Field, v *Value) bool {
	return f.IgnoreAbove == 0 || len(v.Text) <= f.IgnoreAbove || utf16Len(v.Text) <= f.IgnoreAbove
}

// utf16Len is the length of s in UTF-16 units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n++
		}
		n++
	}
	return n
}

type existsCond struct{ f *Field }

func (e existsCond) Eval(fs Fields) bool {
	vals := fs.Values(e.f)
	for i := range vals {
		if e.f.Type == Keyword && !Searchable(e.f, &vals[i]) {
			continue
		}
		if valueOK(e.f, &vals[i]) {
			return true
		}
	}
	if e.f.Type == Nested {
		return len(fs.Elements(e.f)) > 0
	}
	return false
}

// valueOK reports whether a value would have been accepted by the field's
// mapping (a value Elasticsearch cannot parse is not indexed).
func valueOK(f *Field, v *Value) bool {
	switch f.Type {
	case Long, Double:
		_, ok := docNumber(v)
		return ok
	case IP:
		_, err := netip.ParseAddr(v.Text)
		return err == nil
	case Date:
		_, err := ParseDate(v.Text)
		return err == nil
	case Boolean:
		_, ok := ParseBool(v.Text)
		return ok
	}
	return true
}

// anyCond is true when any searchable value of f satisfies p.
type anyCond struct {
	f *Field
	p Pred
}

func (a anyCond) Eval(fs Fields) bool {
	vals := fs.Values(a.f)
	for i := range vals {
		if !Searchable(a.f, &vals[i]) {
			continue
		}
		if a.p.Test(&vals[i]) {
			return true
		}
	}
	return false
}

// Pred tests one value of a field (a value Elasticsearch indexed: keyword
// values past ignore_above never reach it).
type Pred interface{ Test(*Value) bool }

// eqSet is exact keyword equality against one value or a set of values.
type eqSet struct {
	one string
	set map[string]struct{}
}

func (e *eqSet) Test(v *Value) bool {
	if e.set == nil {
		return v.Text == e.one
	}
	_, ok := e.set[v.Text]
	return ok
}

func (e *eqSet) values() []string {
	if e.set == nil {
		return []string{e.one}
	}
	out := make([]string, 0, len(e.set))
	for s := range e.set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// mergeOr folds exact keyword tests and wildcards on the same field into one
// read of the field and one hashed set, so that `f:(a or b or c ...)` costs
// one lookup. It is linear in the number of tests (a rule may OR tens of
// thousands of values).
func mergeOr(kids []Cond) Cond {
	type merged struct {
		at    int // where the field's test is in out
		n     int // how many tests were folded into it
		vals  map[string]struct{}
		globs []*glob
	}
	out := make([]Cond, 0, len(kids))
	byField := map[*Field]*merged{}
	var order []*Field
	for _, k := range kids {
		a, ok := k.(anyCond)
		var e *eqSet
		var g *glob
		if ok {
			e, _ = a.p.(*eqSet)
			g, _ = a.p.(*glob)
		}
		if e == nil && g == nil {
			out = append(out, k)
			continue
		}
		m := byField[a.f]
		if m == nil {
			m = &merged{at: len(out), vals: map[string]struct{}{}}
			byField[a.f] = m
			order = append(order, a.f)
			out = append(out, a)
		}
		m.n++
		if e != nil {
			for _, v := range e.values() {
				m.vals[v] = struct{}{}
			}
		} else {
			m.globs = append(m.globs, g)
		}
	}
	for _, f := range order {
		m := byField[f]
		if m.n < 2 {
			continue
		}
		var eq *eqSet
		if len(m.vals) > 0 {
			eq = &eqSet{set: m.vals}
		}
		if len(m.globs) == 0 {
			out[m.at] = anyCond{f: f, p: eq} // equalities only: a plain set
			continue
		}
		gs := &globSet{eq: eq}
		for _, g := range m.globs {
			gs.add(g)
		}
		out[m.at] = anyCond{f: f, p: gs}
	}
	if len(out) == 1 {
		return out[0]
	}
	return orCond(out)
}

// globSet is "any of these values or wildcards": one read of the field for
// all of them, and suffix wildcards (*.pem, */id_rsa) tried only when the
// value ends in their last byte.
type globSet struct {
	eq         *eqSet // exact values, or nil
	all        []*glob
	bySuffixOf [256][]string // suffix wildcards' literal, by its last byte
	others     []*glob
}

func (gs *globSet) add(g *glob) {
	gs.all = append(gs.all, g)
	if g.kind == globSuffix && g.parts[1] != "" {
		lit := g.parts[1]
		gs.bySuffixOf[lit[len(lit)-1]] = append(gs.bySuffixOf[lit[len(lit)-1]], lit)
		return
	}
	gs.others = append(gs.others, g)
}

func (gs *globSet) Test(v *Value) bool {
	if gs.eq != nil && gs.eq.Test(v) {
		return true
	}
	s := v.Text
	if len(s) > 0 {
		for _, lit := range gs.bySuffixOf[s[len(s)-1]] {
			if strings.HasSuffix(s, lit) {
				return true
			}
		}
	}
	for _, g := range gs.others {
		if g.match(s) {
			return true
		}
	}
	return false
}

type strCmp struct {
	op string
	s  string
}

func (c strCmp) Test(v *Value) bool { return cmpOp(c.op, strings.Compare(v.Text, c.s)) }

func cmpOp(op string, c int) bool {
	switch op {
	case "eq":
		return c == 0
	case "lt":
		return c < 0
	case "lte":
		return c <= 0
	case "gt":
		return c > 0
	case "gte":
		return c >= 0
	}
	return false
}

type numCmp struct {
	op string
	x  float64
}

// docNumber reads a value into a numeric field as Elasticsearch coerces it:
// numbers and numeric strings are accepted, booleans and other text are not.
func docNumber(v *Value) (float64, bool) {
	switch v.Kind {
	case KindBool:
		if v.Text == "true" {
			return 1, true
		}
		return 0, v.Text == "false"
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(v.Text), 64)
	return x, err == nil && !math.IsNaN(x) && !math.IsInf(x, 0)
}

func (c numCmp) Test(v *Value) bool {
	x, ok := docNumber(v)
	if !ok {
		return false
	}
	switch {
	case x < c.x:
		return cmpOp(c.op, -1)
	case x > c.x:
		return cmpOp(c.op, 1)
	}
	return cmpOp(c.op, 0)
}

// cidr tests addresses the way Elasticsearch stores them: every address as
// 16 bytes, IPv4 mapped into ::ffff:0:0/96, so that ::/0 holds IPv4 too.
type cidr struct{ p netip.Prefix }

func newCIDR(p netip.Prefix) cidr {
	if p.Addr().Is4() {
		p = netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
	}
	return cidr{p}
}

func (c cidr) Test(v *Value) bool {
	a, err := netip.ParseAddr(v.Text)
	if err != nil {
		return false
	}
	return c.p.Contains(netip.AddrFrom16(a.As16()))
}

type ipCmp struct {
	op string
	a  netip.Addr
}

func (c ipCmp) Test(v *Value) bool {
	a, err := netip.ParseAddr(v.Text)
	if err != nil {
		return false
	}
	// Elasticsearch orders all addresses as IPv6 (IPv4 mapped).
	return cmpOp(c.op, netip.AddrFrom16(a.As16()).Compare(netip.AddrFrom16(c.a.As16())))
}

type dateCmp struct {
	op string
	d  DateMath
}

// Now is the clock date math reads; tests replace it.
var Now = time.Now

func (c dateCmp) Test(v *Value) bool {
	t, err := ParseDate(v.Text)
	if err != nil {
		return false
	}
	ms := t.UnixMilli()
	// Rounding follows Elasticsearch: gt and lte round up, gte and lt down.
	up := c.op == "gt" || c.op == "lte"
	if c.op == "eq" {
		lo, hi := c.d.resolve(Now(), false), c.d.resolve(Now(), true)
		return ms >= lo && ms <= hi
	}
	q := c.d.resolve(Now(), up)
	switch {
	case ms < q:
		return cmpOp(c.op, -1)
	case ms > q:
		return cmpOp(c.op, 1)
	}
	return cmpOp(c.op, 0)
}
