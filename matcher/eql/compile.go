package eql

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
)

// The compiler turns an EQL AST into the core's tests, as Elasticsearch's
// EQL plugin turns it into a query (x-pack/plugin/eql, its QueryTranslator
// and the ql ExpressionTranslators): `==`, `in`, `like`, `regex` are
// case-sensitive term, terms, wildcard and regexp queries; `:`, `in~`,
// `like~`, `regex~` and functions called as `name~` are the same queries
// with case_insensitive set; `!=` and `not` are must_not (so a missing field
// makes them true); stringContains(f, "c") is the wildcard query *c* with the
// constant not escaped; startsWith and endsWith are prefix and suffix
// queries on the literal. A comparison that is not a field against
// constants (a function's value, arithmetic, two fields) runs as
// Elasticsearch runs it, as a script over the record's values: true when
// any combination of the values of the fields it reads makes it true, and
// false when one of them is missing (a script's null). Anything else is an
// error with its place, never a silent non-match.

// Compiled is an EQL query compiled for a schema.
type Compiled struct {
	// Query is the condition a record must meet to take part: the whole
	// query of a single-event rule; for a sequence, any of its stages (or
	// its until), so that the candidate index pins the rule.
	Query *matcher.Query
	// Sequence is the sequence's stages, nil for a single-event query.
	Sequence *Sequenced
}

// Sequenced is a compiled sequence.
type Sequenced struct {
	MaxSpan time.Duration // 0: none
	Stages  []*SeqStage
	Until   *SeqStage // nil: none
}

// SeqStage is one stage of a sequence: its condition and its join keys
// (the sequence's, then its own).
type SeqStage struct {
	Query *matcher.Query
	Keys  []*matcher.Field
}

// Compile parses and compiles an EQL query. categoryField is the field the
// `<category> where` form compares (the rule's event_category_override, or
// event.category).
func Compile(s *matcher.Schema, src, categoryField string) (*Compiled, error) {
	stmt, err := Parse(src)
	if err != nil {
		return nil, placed(err)
	}
	if len(stmt.Pipes) > 0 {
		p := stmt.Pipes[0]
		return nil, at(p.Pos, "the | %s pipe limits a search's results; a rule alerts on every match (max_signals caps them), so trailwatch does not run it", p.Name)
	}
	if categoryField == "" {
		categoryField = "event.category"
	}
	c := &compiler{reads: matcher.Reads{Schema: s}, category: categoryField, src: src}
	switch q := stmt.Query.(type) {
	case *EventQuery:
		root, err := c.event(q)
		if err != nil {
			return nil, err
		}
		return &Compiled{Query: matcher.NewQuery(src, root, c.reads.Fields, c.reads.Notes)}, nil
	case *Sequence:
		return c.sequence(q)
	}
	return nil, at(stmt.Pos, "unknown query")
}

func (c *compiler) sequence(q *Sequence) (*Compiled, error) {
	seq := &Sequenced{}
	if q.MaxSpan != nil {
		seq.MaxSpan = q.MaxSpan.Duration()
	}
	var stages []matcher.Cond
	stage := func(st *Stage) (*SeqStage, error) {
		if st.Missing {
			return nil, at(st.Pos, "a missing event (![...]) is not run at the edge")
		}
		if st.Runs > 1 {
			return nil, at(st.Pos, "with runs=%d is not run at the edge", st.Runs)
		}
		sc := &compiler{reads: matcher.Reads{Schema: c.reads.Schema}, category: c.category, src: c.src}
		root, err := sc.event(st.Query)
		if err != nil {
			return nil, err
		}
		out := &SeqStage{}
		for _, k := range st.Keys(q) {
			f := sc.reads.Field(k.Name())
			out.Keys = append(out.Keys, f)
			c.reads.Field(k.Name())
		}
		out.Query = matcher.NewQuery(st.Query.String(), root, sc.reads.Fields, sc.reads.Notes)
		for _, f := range sc.reads.Fields {
			c.reads.Field(f.Name)
		}
		c.reads.Notes = append(c.reads.Notes, sc.reads.Notes...)
		stages = append(stages, root)
		return out, nil
	}
	for _, st := range q.Stages {
		s, err := stage(st)
		if err != nil {
			return nil, err
		}
		seq.Stages = append(seq.Stages, s)
	}
	if q.Until != nil {
		s, err := stage(q.Until)
		if err != nil {
			return nil, err
		}
		seq.Until = s
	}
	if len(seq.Stages) < 2 {
		return nil, at(q.Pos, "a sequence needs at least two stages")
	}
	return &Compiled{Query: matcher.NewQuery(c.src, matcher.Or(stages), c.reads.Fields, c.reads.Notes), Sequence: seq}, nil
}

type compiler struct {
	reads    matcher.Reads
	category string
	src      string
	// guards are fields whose absence makes Elasticsearch fail the whole
	// search (the second argument of a field-to-field stringContains): a
	// record without them matches nothing.
	guards []*matcher.Field
}

// event compiles `<category> where <cond>`.
func (c *compiler) event(q *EventQuery) (matcher.Cond, error) {
	cond, err := c.cond(q.Cond)
	if err != nil {
		return nil, err
	}
	kids := []matcher.Cond{cond}
	if !q.Category.Any {
		kids = append(kids, matcher.Any(c.reads.Field(c.category), matcher.Equal(q.Category.Name)))
	}
	for _, g := range c.guards {
		kids = append(kids, matcher.Exists(g))
	}
	c.guards = nil
	if len(kids) == 1 {
		return cond, nil
	}
	return matcher.And(kids), nil
}

func placed(err error) error {
	var se *SyntaxError
	if errors.As(err, &se) {
		return &matcher.SyntaxError{Pos: matcher.Pos(se.Pos), Msg: se.Msg}
	}
	return err
}

func at(p Pos, format string, args ...any) error {
	return &matcher.SyntaxError{Pos: matcher.Pos(p), Msg: fmt.Sprintf(format, args...)}
}

// cond compiles a condition.
func (c *compiler) cond(x Expr) (matcher.Cond, error) {
	switch x := x.(type) {
	case *Logical:
		kids := make([]matcher.Cond, 0, len(x.Terms))
		for _, t := range x.Terms {
			k, err := c.cond(t)
			if err != nil {
				return nil, err
			}
			kids = append(kids, k)
		}
		if x.Op == Or {
			return matcher.Or(kids), nil
		}
		return matcher.And(kids), nil
	case *Not:
		k, err := c.cond(x.X)
		if err != nil {
			return nil, err
		}
		return matcher.Not(k), nil
	case *Compare:
		return c.compare(x)
	case *In:
		return c.in(x)
	case *Match:
		return c.match(x)
	case *Call:
		return c.call(x)
	case *Bool:
		return matcher.Const(x.Value), nil
	case *Field:
		f := c.reads.Field(x.Name())
		if f.Type != matcher.Boolean {
			return nil, at(x.Pos, "%s is mapped as %s; a field alone is a condition only when it is a boolean", f.Name, f.Type)
		}
		return matcher.Any(f, matcher.Equal("true")), nil
	}
	// Arithmetic, constants and the like as conditions: Elasticsearch
	// refuses a non-boolean where a condition is expected.
	return nil, at(x.Position(), "%s is not a condition", x.String())
}

// constant returns the text and kind of a constant, and whether x is one.
func constant(x Expr) (text string, kind matcher.ValueKind, null, ok bool) {
	switch x := x.(type) {
	case *String:
		return x.Value, matcher.KindString, false, true
	case *Int:
		return strconv.FormatInt(x.Value, 10), matcher.KindNumber, false, true
	case *Float:
		return strconv.FormatFloat(x.Value, 'g', -1, 64), matcher.KindNumber, false, true
	case *Bool:
		return strconv.FormatBool(x.Value), matcher.KindBool, false, true
	case *Null:
		return "", 0, true, true
	}
	return "", 0, false, false
}

var flip = map[CompareOp]CompareOp{Eq: Eq, Neq: Neq, Lt: Gt, Lte: Gte, Gt: Lt, Gte: Lte}

var rangeOp = map[CompareOp]string{Eq: "eq", Lt: "lt", Lte: "lte", Gt: "gt", Gte: "gte"}

func (c *compiler) compare(x *Compare) (matcher.Cond, error) {
	fx, lx, op := x.X, x.Y, x.Op
	if _, _, _, ok := constant(fx); ok {
		if _, isField := lx.(*Field); isField {
			fx, lx, op = lx, fx, flip[op]
		}
	}
	field, isField := fx.(*Field)
	text, kind, null, isConst := constant(lx)
	if _, other := lx.(*Field); isField && other {
		// Elasticsearch refuses it ("comparing a field with a field").
		return nil, at(x.OpPos, "a field compared with another field: Elasticsearch's EQL refuses it")
	}
	if !isField || !isConst {
		return c.script(x)
	}
	f := c.reads.Field(field.Name())
	if null {
		// field == null is "the field has no value"; != null "it has one".
		switch op {
		case Eq:
			return matcher.Not(matcher.Exists(f)), nil
		case Neq:
			return matcher.Exists(f), nil
		}
		return matcher.Const(false), nil // an order against null is null
	}
	if op == Neq {
		eq, err := c.term(x.OpPos, f, text, kind, false)
		if err != nil {
			return nil, err
		}
		return matcher.Not(eq), nil
	}
	if op == Eq {
		return c.term(x.OpPos, f, text, kind, false)
	}
	return c.rangeCond(x.OpPos, f, rangeOp[op], text)
}

// term is an equality of a field with a constant, as a term query on the
// field's mapping (case-insensitive with fold, on keywords).
func (c *compiler) term(p Pos, f *matcher.Field, text string, kind matcher.ValueKind, fold bool) (matcher.Cond, error) {
	switch f.Type {
	case matcher.Keyword, matcher.Flattened:
		if fold {
			return matcher.Any(f, matcher.FoldEqual(text)), nil
		}
		return matcher.Any(f, matcher.Equal(text)), nil
	case matcher.Long, matcher.Double:
		x, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, at(p, "%s is mapped as %s; %q is not a number", f.Name, f.Type, text)
		}
		return matcher.Any(f, matcher.NumCompare("eq", x)), nil
	case matcher.IP:
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, at(p, "%s is an ip field; %q is not an IP address (cidrMatch tests a block)", f.Name, text)
		}
		return matcher.Any(f, matcher.CIDR(netip.PrefixFrom(a, a.BitLen()))), nil
	case matcher.Date:
		d, err := matcher.ParseDateMath(text)
		if err != nil {
			return nil, at(p, "%s is a date field; %v", f.Name, err)
		}
		return matcher.Any(f, matcher.DateCompare("eq", d)), nil
	case matcher.Boolean:
		b, ok := matcher.ParseBool(text)
		if !ok {
			return nil, at(p, "%s is a boolean field; %q is not true or false", f.Name, text)
		}
		return matcher.Any(f, matcher.Equal(strconv.FormatBool(b))), nil
	}
	return nil, at(p, "%s is mapped as %s; EQL cannot compare it with a value", f.Name, f.Type)
}

func (c *compiler) rangeCond(p Pos, f *matcher.Field, op, text string) (matcher.Cond, error) {
	switch f.Type {
	case matcher.Keyword, matcher.Flattened:
		return matcher.Any(f, matcher.StrCompare(op, text)), nil
	case matcher.Long, matcher.Double:
		x, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsNaN(x) {
			return nil, at(p, "%s is mapped as %s; %q is not a number", f.Name, f.Type, text)
		}
		return matcher.Any(f, matcher.NumCompare(op, x)), nil
	case matcher.Date:
		d, err := matcher.ParseDateMath(text)
		if err != nil {
			return nil, at(p, "%s is a date field; %v", f.Name, err)
		}
		return matcher.Any(f, matcher.DateCompare(op, d)), nil
	case matcher.IP:
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, at(p, "%s is an ip field; %q is not an IP address", f.Name, text)
		}
		return matcher.Any(f, matcher.IPCompare(op, a)), nil
	}
	return nil, at(p, "%s is mapped as %s; it has no order", f.Name, f.Type)
}

func (c *compiler) in(x *In) (matcher.Cond, error) {
	field, ok := x.X.(*Field)
	if !ok {
		return c.script(x)
	}
	f := c.reads.Field(field.Name())
	kids := make([]matcher.Cond, 0, len(x.List))
	for _, el := range x.List {
		text, kind, null, isConst := constant(el)
		if !isConst {
			return c.script(x)
		}
		if null {
			kids = append(kids, matcher.Not(matcher.Exists(f)))
			continue
		}
		k, err := c.term(el.Position(), f, text, kind, x.CaseInsensitive)
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	var out matcher.Cond = matcher.Or(kids)
	if x.Not {
		out = matcher.Not(out)
	}
	return out, nil
}

func (c *compiler) match(x *Match) (matcher.Cond, error) {
	field, ok := x.X.(*Field)
	if !ok {
		return c.script(x)
	}
	f := c.reads.Field(field.Name())
	kids := make([]matcher.Cond, 0, len(x.Patterns))
	for _, el := range x.Patterns {
		text, kind, null, _ := constant(el)
		if null {
			return nil, at(el.Position(), "a pattern cannot be null")
		}
		if f.Type != matcher.Keyword && f.Type != matcher.Flattened {
			if x.Op == Colon {
				k, err := c.term(el.Position(), f, text, kind, false)
				if err != nil {
					return nil, err
				}
				kids = append(kids, k)
				continue
			}
			return nil, at(x.OpPos, "%s is mapped as %s; %s runs only on keyword fields", f.Name, f.Type, x.Op)
		}
		var p matcher.Pred
		switch x.Op {
		case Colon:
			// Patterns as StringUtils.toLikePattern builds them: * and ?
			// are wildcards, a backslash an ordinary character.
			p = matcher.LikeNoEscape(text, true)
		case Like, LikeI:
			p = matcher.LikeNoEscape(text, x.Op == LikeI)
		case Regex, RegexI:
			var err error
			if p, err = matcher.Regexp(text, x.Op == RegexI); err != nil {
				return nil, at(el.Position(), "%v", err)
			}
		}
		kids = append(kids, matcher.Any(f, p))
	}
	return matcher.Or(kids), nil
}

// escapeLike makes a literal a wildcard pattern that matches it alone.
func escapeLike(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// call compiles a function used as a condition. The ones Elasticsearch
// turns into queries when their first argument is a field and the rest are
// constants are compiled to the same tests; the rest run as scripts.
func (c *compiler) call(x *Call) (matcher.Cond, error) {
	name := strings.ToLower(x.Name)
	fold := x.CaseInsensitive
	fn, known := functions[name]
	if !known {
		return nil, at(x.Pos, "unknown function %s", x.Name)
	}
	if len(x.Args) < fn.min || (fn.max >= 0 && len(x.Args) > fn.max) {
		return nil, at(x.Pos, "%s takes %s arguments, not %d", name, fn.arity(), len(x.Args))
	}
	if !fn.boolean {
		return nil, at(x.Pos, "%s does not return a condition; compare its value", name)
	}
	field, isField := x.Args[0].(*Field)
	consts := true
	var texts []string
	for _, a := range x.Args[1:] {
		t, kind, null, ok := constant(a)
		if !ok || null || (kind != matcher.KindString && name != "cidrmatch") {
			consts = false
			break
		}
		texts = append(texts, t)
	}
	if !isField || !consts {
		if name == "stringcontains" && isField {
			if g, ok := x.Args[1].(*Field); ok {
				return c.fieldContains(field, g, fold)
			}
		}
		return c.script(x)
	}
	f := c.reads.Field(field.Name())
	if name != "cidrmatch" && f.Type != matcher.Keyword && f.Type != matcher.Flattened {
		return nil, at(x.Pos, "%s is mapped as %s; %s runs only on keyword fields", f.Name, f.Type, name)
	}
	var kids []matcher.Cond
	for i, t := range texts {
		var p matcher.Pred
		switch name {
		case "stringcontains":
			// The constant is not escaped: its * and ? are wildcards.
			p = matcher.Like("*"+t+"*", fold)
		case "startswith":
			p = matcher.Like(escapeLike(t)+"*", fold)
		case "endswith":
			p = matcher.Like("*"+escapeLike(t), fold)
		case "wildcard":
			p = matcher.LikeNoEscape(t, fold)
		case "cidrmatch":
			if f.Type != matcher.IP {
				return nil, at(x.Pos, "%s is mapped as %s; cidrMatch needs an ip field", f.Name, f.Type)
			}
			pfx, err := netip.ParsePrefix(t)
			if err != nil {
				a, aerr := netip.ParseAddr(t)
				if aerr != nil {
					return nil, at(x.Args[i+1].Position(), "%q is not a CIDR block", t)
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			p = matcher.CIDR(pfx.Masked())
		}
		kids = append(kids, matcher.Any(f, p))
	}
	return matcher.Or(kids), nil
}

// fieldContains is stringContains(a, b) of two fields: a script over every
// pair of their values. A record without a value of a makes it false (and
// its negation true); one without b makes Elasticsearch fail the search, so
// the rule matches nothing on that record, negated or not.
func (c *compiler) fieldContains(a, b *Field, fold bool) (matcher.Cond, error) {
	fa, fb := c.reads.Field(a.Name()), c.reads.Field(b.Name())
	c.guards = append(c.guards, fb)
	return containsCond{a: fa, b: fb, fold: fold}, nil
}

type containsCond struct {
	a, b *matcher.Field
	fold bool
}

func (k containsCond) Eval(fs matcher.Fields) bool {
	av, bv := fs.Values(k.a), fs.Values(k.b)
	for i := range av {
		for j := range bv {
			x, y := av[i].Text, bv[j].Text
			if k.fold {
				x, y = strings.ToLower(x), strings.ToLower(y)
			}
			if strings.Contains(x, y) {
				return true
			}
		}
	}
	return false
}
