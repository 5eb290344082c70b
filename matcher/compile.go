package matcher

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Query is a compiled KQL query: a tree of predicates over field values that
// follows Elasticsearch's semantics for the fields' mappings.
type Query struct {
	Source string
	root   cond
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
func (q *Query) Match(f Fields) bool { return q.root.eval(f) }

// Fields lists the fields the query reads, in order of first use.
func (q *Query) Fields() []*Field { return q.fields }

// Notes lists the tests trailwatch evaluates although Elasticsearch refuses
// them, so that the rule fails in Kibana where it runs here.
func (q *Query) Notes() []Note { return q.notes }

// Pins returns the provider/action pairs of which a matching record must
// have at least one, and false when the query does not pin them.
func (q *Query) Pins() ([]Pin, bool) { return q.pins, q.pinned }

// ProviderField and ActionField are the ECS names the candidate index keys on.
const (
	ProviderField = "event.provider"
	ActionField   = "event.action"
)

// Compile parses and compiles a KQL query against a schema.
func Compile(s *Schema, src string) (*Query, error) {
	ast, err := Parse(src)
	if err != nil {
		return nil, err
	}
	c := &compiler{schema: s, src: src, seen: map[*Field]bool{}}
	root, err := c.compile(ast, "")
	if err != nil {
		return nil, err
	}
	q := &Query{Source: src, root: root, fields: c.fields, notes: c.notes}
	if p := pinsOf(root); p != nil {
		q.pins, q.pinned = p.list(), true
	}
	return q, nil
}

type compiler struct {
	schema *Schema
	src    string
	seen   map[*Field]bool
	fields []*Field
	notes  []Note
}

// refusedOnKey notes a test that Elasticsearch refuses on a keyed flattened
// subfield (it has no wildcard or one-sided range query there: the search
// fails, elastic/elasticsearch#157064); trailwatch runs it as on a keyword.
// One note per field and kind of test, at its first place.
func (c *compiler) refusedOnKey(n *Node, f *Field, what string) {
	msg := fmt.Sprintf("%s on %s: Elasticsearch refuses it on a key of a flattened field (the rule fails in Kibana); trailwatch tests it as on a keyword", what, f.Name)
	for _, x := range c.notes {
		if x.Msg == msg {
			return
		}
	}
	c.notes = append(c.notes, Note{Pos: n.Pos, Msg: msg})
}

func (c *compiler) errorf(pos Pos, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (c *compiler) field(name string) *Field {
	f := c.schema.Field(name)
	if !c.seen[f] {
		c.seen[f] = true
		c.fields = append(c.fields, f)
	}
	return f
}

// compile turns an AST node into a condition; nested is the path of the
// enclosing nested query, which prefixes field names inside it.
func (c *compiler) compile(n *Node, nested string) (cond, error) {
	switch n.Kind {
	case NodeAll:
		return constCond(true), nil
	case NodeOr, NodeAnd:
		kids := make([]cond, 0, len(n.Children))
		for _, k := range n.Children {
			kc, err := c.compile(k, nested)
			if err != nil {
				return nil, err
			}
			kids = append(kids, kc)
		}
		if n.Kind == NodeOr {
			return mergeOr(kids), nil
		}
		// A conjunction of side-effect-free tests may run in any order:
		// cheap ones first, so that most records are decided before the
		// costly fields (Map.toString() text, flattened payloads) are read.
		// Tests that nearly every record passes go after all the others,
		// whatever their cost: only a false test decides.
		sort.SliceStable(kids, func(i, j int) bool {
			if li, lj := likelyTrue(kids[i]), likelyTrue(kids[j]); li != lj {
				return lj
			}
			return cost(kids[i]) < cost(kids[j])
		})
		return andCond(kids), nil
	case NodeNot:
		k, err := c.compile(n.Children[0], nested)
		if err != nil {
			return nil, err
		}
		return notCond{k}, nil
	case NodeNested:
		name := fullName(nested, n.Field)
		f := c.field(name)
		if f.Type != Nested {
			return nil, c.errorf(n.Pos, "%s is not a nested field (it is mapped as %s); Elasticsearch refuses a nested query on it", name, f.Type)
		}
		inner, err := c.compile(n.Children[0], name)
		if err != nil {
			return nil, err
		}
		return nestedCond{f: f, c: inner}, nil
	case NodeIs:
		return c.is(n, c.field(fullName(nested, n.Field)))
	case NodeRange:
		return c.rangeCond(n, c.field(fullName(nested, n.Field)))
	}
	return nil, c.errorf(n.Pos, "unknown query node")
}

func fullName(nested, field string) string {
	if nested == "" {
		return field
	}
	return nested + "." + field
}

// is compiles field:value the way Kibana builds it (exists for `*`,
// query_string for wildcards, match or match_phrase otherwise) and
// Elasticsearch runs it on the field's mapping.
func (c *compiler) is(n *Node, f *Field) (cond, error) {
	v := n.Value
	if v.Null {
		return nil, c.errorf(n.Pos, "%s: null: Elasticsearch refuses a match query without text; quote it (\"null\") to match the text null", f.Name)
	}
	if v.Wildcard() && len(v.Parts) == 2 && v.Parts[0] == "" && v.Parts[1] == "" {
		return existsCond{f: f}, nil
	}
	switch f.Type {
	case Keyword, Flattened:
		if v.Wildcard() {
			g := newGlob(v.Parts)
			if f.FlattenedKey != "" && g.kind != globPrefix {
				c.refusedOnKey(n, f, "a wildcard other than a trailing *")
			}
			return anyCond{f: f, p: g}, nil
		}
		return anyCond{f: f, p: &eqSet{one: v.Parts[0]}}, nil
	case Nested:
		// A nested object's fields are not in the parent document.
		return constCond(false), nil
	case GeoPoint:
		return nil, c.errorf(n.Pos, "%s is a geo_point; KQL can only test that it exists (%s:*)", f.Name, f.Name)
	}
	if v.Wildcard() {
		return nil, c.errorf(n.Pos, "%s is mapped as %s; Elasticsearch runs wildcards only on keyword fields (use %s:* to test that it exists)", f.Name, f.Type, f.Name)
	}
	text := v.Parts[0]
	switch f.Type {
	case Long, Double:
		x, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, c.errorf(n.Pos, "%s is mapped as %s; %q is not a number", f.Name, f.Type, text)
		}
		if f.Type == Long && x != math.Trunc(x) {
			// Elasticsearch answers "no documents" for a decimal on a long.
			return constCond(false), nil
		}
		return anyCond{f: f, p: numCmp{op: "eq", x: x}}, nil
	case IP:
		if pfx, err := netip.ParsePrefix(text); err == nil {
			return anyCond{f: f, p: newCIDR(pfx.Masked())}, nil
		}
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is an ip field; %q is neither an IP address nor a CIDR block", f.Name, text)
		}
		return anyCond{f: f, p: newCIDR(netip.PrefixFrom(a, a.BitLen()))}, nil
	case Date:
		dm, err := parseDateMath(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is a date field; %v", f.Name, err)
		}
		return anyCond{f: f, p: dateCmp{op: "eq", d: dm}}, nil
	case Boolean:
		b, ok := parseBool(text)
		if !ok {
			return nil, c.errorf(n.Pos, "%s is a boolean field; %q is not true or false", f.Name, text)
		}
		return anyCond{f: f, p: &eqSet{one: strconv.FormatBool(b)}}, nil
	}
	return nil, c.errorf(n.Pos, "%s: unsupported field type %s", f.Name, f.Type)
}

func (c *compiler) rangeCond(n *Node, f *Field) (cond, error) {
	text := n.Value.Parts[0]
	switch f.Type {
	case Keyword, Flattened:
		if f.FlattenedKey != "" {
			c.refusedOnKey(n, f, "a range")
		}
		return anyCond{f: f, p: strCmp{op: n.Op, s: text}}, nil
	case Long, Double:
		x, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsNaN(x) {
			return nil, c.errorf(n.Pos, "%s is mapped as %s; %q is not a number", f.Name, f.Type, text)
		}
		return anyCond{f: f, p: numCmp{op: n.Op, x: x}}, nil
	case Date:
		dm, err := parseDateMath(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is a date field; %v", f.Name, err)
		}
		return anyCond{f: f, p: dateCmp{op: n.Op, d: dm}}, nil
	case IP:
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is an ip field; %q is not an IP address", f.Name, text)
		}
		return anyCond{f: f, p: ipCmp{op: n.Op, a: a}}, nil
	case Boolean:
		b, ok := parseBool(text)
		if !ok {
			return nil, c.errorf(n.Pos, "%s is a boolean field; %q is not true or false", f.Name, text)
		}
		return anyCond{f: f, p: numCmp{op: n.Op, x: boolNum(b)}}, nil
	}
	return nil, c.errorf(n.Pos, "%s is mapped as %s; it has no order for a range", f.Name, f.Type)
}

func parseBool(s string) (bool, bool) {
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func boolNum(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// cost estimates what evaluating a condition takes, reading its fields
// included, to order conjunctions. Tests that nearly every CloudTrail record
// passes (the data stream, a successful outcome, a field's existence, a
// negation) count as dearer than they are: a conjunction is decided by its
// first false test, so the ones likely to be false go first.
func cost(c cond) int {
	const likely = 8
	switch c := c.(type) {
	case constCond:
		return 0
	case anyCond:
		n := fieldCost(c.f) + predCost(c.p)
		if e, ok := c.p.(*eqSet); ok && e.set == nil && usual[c.f.Name] == e.one {
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
func likelyTrue(c cond) bool {
	switch c := c.(type) {
	case anyCond:
		e, ok := c.p.(*eqSet)
		return ok && e.set == nil && usual[c.f.Name] == e.one
	case existsCond, notCond:
		return true
	}
	return false
}

// usual is the value most CloudTrail records have in a field.
var usual = map[string]string{
	"data_stream.dataset": Dataset,
	"event.dataset":       Dataset,
	"event.outcome":       "success",
	"event.kind":          "event",
	// Most CloudTrail events are calls made by assumed roles.
	"aws.cloudtrail.user_identity.type": "AssumedRole",
}

func fieldCost(f *Field) int {
	switch {
	case f.FlattenedRoot != "" || f.Type == Flattened:
		return 20 // the payload is cleaned and walked
	case strings.HasPrefix(f.Name, "aws.cloudtrail.request_parameters"), strings.HasPrefix(f.Name, "aws.cloudtrail.response_elements"),
		strings.HasPrefix(f.Name, "aws.cloudtrail.additional_eventdata"), strings.HasPrefix(f.Name, "aws.cloudtrail.service_event_details"):
		return 30 // Map.toString() of the payload
	case strings.HasPrefix(f.Name, "related."), strings.HasPrefix(f.Name, "entity."), strings.HasPrefix(f.Name, "aws.cloudtrail.resources."):
		return 15
	}
	return 1
}

func predCost(p pred) int {
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

type cond interface {
	eval(Fields) bool
}

type constCond bool

func (c constCond) eval(Fields) bool { return bool(c) }

type andCond []cond

func (a andCond) eval(f Fields) bool {
	for _, c := range a {
		if !c.eval(f) {
			return false
		}
	}
	return true
}

type orCond []cond

func (o orCond) eval(f Fields) bool {
	for _, c := range o {
		if c.eval(f) {
			return true
		}
	}
	return false
}

type notCond struct{ c cond }

func (n notCond) eval(f Fields) bool { return !n.c.eval(f) }

type nestedCond struct {
	f *Field
	c cond
}

func (n nestedCond) eval(f Fields) bool {
	for _, e := range f.Elements(n.f) {
		if n.c.eval(e) {
			return true
		}
	}
	return false
}

// searchable reports whether Elasticsearch indexed the value: keywords longer
// than ignore_above (in characters) are kept in _source only.
func searchable(f *Field, v *Value) bool {
	return f.IgnoreAbove == 0 || len(v.Text) <= f.IgnoreAbove || utf8.RuneCountInString(v.Text) <= f.IgnoreAbove
}

type existsCond struct{ f *Field }

func (e existsCond) eval(fs Fields) bool {
	vals := fs.Values(e.f)
	for i := range vals {
		if e.f.Type == Keyword && !searchable(e.f, &vals[i]) {
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
		_, err := parseDate(v.Text)
		return err == nil
	case Boolean:
		_, ok := parseBool(v.Text)
		return ok
	}
	return true
}

// anyCond is true when any searchable value of f satisfies p.
type anyCond struct {
	f *Field
	p pred
}

func (a anyCond) eval(fs Fields) bool {
	vals := fs.Values(a.f)
	for i := range vals {
		if !searchable(a.f, &vals[i]) {
			continue
		}
		if a.p.test(&vals[i]) {
			return true
		}
	}
	return false
}

type pred interface{ test(*Value) bool }

// eqSet is exact keyword equality against one value or a set of values.
type eqSet struct {
	one string
	set map[string]struct{}
}

func (e *eqSet) test(v *Value) bool {
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

// mergeOr folds exact keyword tests on the same field into one hashed set, so
// that `f:(a or b or c ...)` costs one lookup.
func mergeOr(kids []cond) cond {
	out := make([]cond, 0, len(kids))
	at := map[*Field]int{}
	for _, k := range kids {
		a, ok := k.(anyCond)
		if !ok {
			out = append(out, k)
			continue
		}
		e, isEq := a.p.(*eqSet)
		_, isGlob := a.p.(*glob)
		if !isEq && !isGlob {
			out = append(out, k)
			continue
		}
		i, seen := at[a.f]
		if !seen {
			at[a.f] = len(out)
			if isEq {
				a.p = &eqSet{one: e.one, set: e.set}
			}
			out = append(out, a)
			continue
		}
		out[i] = anyCond{f: a.f, p: orPred(out[i].(anyCond).p, a.p)}
	}
	if len(out) == 1 {
		return out[0]
	}
	return orCond(out)
}

// orPred is the predicate "x or y" for keyword equalities and wildcards on
// one field: exact values merge into one set, wildcards into a globSet.
func orPred(x, y pred) pred {
	gs := &globSet{}
	for _, p := range [2]pred{x, y} {
		switch p := p.(type) {
		case *eqSet:
			if gs.eq == nil {
				gs.eq = &eqSet{one: p.one, set: maps.Clone(p.set)}
				continue
			}
			if gs.eq.set == nil {
				gs.eq.set = map[string]struct{}{gs.eq.one: {}}
			}
			for _, v := range p.values() {
				gs.eq.set[v] = struct{}{}
			}
		case *glob:
			gs.add(p)
		case *globSet:
			if p.eq != nil {
				gs.eq = &eqSet{one: p.eq.one, set: maps.Clone(p.eq.set)}
			}
			for _, g := range p.all {
				gs.add(g)
			}
		}
	}
	if len(gs.all) == 0 {
		return gs.eq // equalities only: a plain set
	}
	return gs
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

func (gs *globSet) test(v *Value) bool {
	if gs.eq != nil && gs.eq.test(v) {
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

func (c strCmp) test(v *Value) bool { return cmpOp(c.op, strings.Compare(v.Text, c.s)) }

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

func (c numCmp) test(v *Value) bool {
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

func (c cidr) test(v *Value) bool {
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

func (c ipCmp) test(v *Value) bool {
	a, err := netip.ParseAddr(v.Text)
	if err != nil {
		return false
	}
	// Elasticsearch orders all addresses as IPv6 (IPv4 mapped).
	return cmpOp(c.op, netip.AddrFrom16(a.As16()).Compare(netip.AddrFrom16(c.a.As16())))
}

type dateCmp struct {
	op string
	d  dateMath
}

// nowFunc is the clock date math reads; tests replace it.
var nowFunc = time.Now

func (c dateCmp) test(v *Value) bool {
	t, err := parseDate(v.Text)
	if err != nil {
		return false
	}
	ms := t.UnixMilli()
	// Rounding follows Elasticsearch: gt and lte round up, gte and lt down.
	up := c.op == "gt" || c.op == "lte"
	if c.op == "eq" {
		lo, hi := c.d.resolve(nowFunc(), false), c.d.resolve(nowFunc(), true)
		return ms >= lo && ms <= hi
	}
	q := c.d.resolve(nowFunc(), up)
	switch {
	case ms < q:
		return cmpOp(c.op, -1)
	case ms > q:
		return cmpOp(c.op, 1)
	}
	return cmpOp(c.op, 0)
}
