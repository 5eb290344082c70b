package esql

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/matcher"
)

// The parser is a recursive descent over EsqlBaseParser.g4's rules, with its
// precedences (lowest first): OR; AND; NOT; the predicates (IN, LIKE, RLIKE,
// IS NULL) on a value; a comparison (not associative); + and -; * / and %;
// unary + and -; a primary (literal, field, call, parenthesised
// expression) with `::` casts after it.
//
//	query    = FROM sources [METADATA names] ('|' command)*
//	command  = WHERE bool | EVAL fields | STATS [aggs] [BY fields] | KEEP names
//	         | DROP names | RENAME old AS new, ... | SORT orders | LIMIT int
//	         | DISSECT primary string [APPEND_SEPARATOR = string]
//	         | GROK primary string (, string)* | MV_EXPAND name
//	field    = [name '='] bool        agg = field [WHERE bool]
//
// Every error is a *matcher.SyntaxError with the place it was found. Nesting
// is capped at maxDepth, and the parser reads each token a bounded number of
// times, so that any query parses in time linear in its length.

const maxDepth = 400 // Elasticsearch's MAX_EXPRESSION_DEPTH

type parser struct {
	src   string
	lines matcher.Lines
	off   int // where the next token starts scanning
	depth int
}

// parseError carries a syntax error out of the recursion.
type parseError struct{ err *matcher.SyntaxError }

func (p *parser) fail(off int, format string, args ...any) {
	panic(parseError{&matcher.SyntaxError{Pos: p.lines.Pos(off), Msg: fmt.Sprintf(format, args...)}})
}

// parse parses an ES|QL query.
func parse(src string) (q *query, err error) {
	p := &parser{src: src, lines: matcher.Lines{Src: src}}
	defer catch(&err)
	return p.query(), nil
}

// catch turns a parseError panic into the error it carries.
func catch(err *error) {
	if r := recover(); r != nil {
		pe, ok := r.(parseError)
		if !ok {
			panic(r)
		}
		*err = pe.err
	}
}

func (p *parser) peek(m lexMode) token { return p.scan(p.off, m) }

func (p *parser) next(m lexMode) token {
	t := p.scan(p.off, m)
	p.off = t.end
	return t
}

func (p *parser) expect(k tokKind, m lexMode, what string) token {
	t := p.next(m)
	if t.kind != k {
		p.fail(t.pos, "expected %s, found %s", what, t.describe())
	}
	return t
}

func (p *parser) enter(off int) {
	p.depth++
	if p.depth > maxDepth {
		p.fail(off, "expression nested deeper than %d levels", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) query() *query {
	q := &query{}
	t := p.next(modeExpr)
	if !t.is("from") {
		if t.kind == tkIdent {
			p.fail(t.pos, "a query must start with FROM; %s is not supported", strings.ToUpper(t.text))
		}
		p.fail(t.pos, "a query must start with FROM, found %s", t.describe())
	}
	q.cmds = append(q.cmds, p.from(t))
	for {
		t := p.next(modeExpr)
		if t.kind == tkEOF {
			return q
		}
		if t.kind != tkPipe {
			p.fail(t.pos, "expected '|' or the end of the query, found %s", t.describe())
		}
		q.cmds = append(q.cmds, p.command())
	}
}

func (p *parser) from(kw token) command {
	c := command{kind: cmdFrom, pos: kw.pos}
	for {
		t := p.next(modeSource)
		switch t.kind {
		case tkSource, tkString:
		default:
			p.fail(t.pos, "expected an index pattern, found %s", t.describe())
		}
		if t.kind == tkSource && strings.EqualFold(t.text, "metadata") {
			p.fail(t.pos, "expected an index pattern before METADATA")
		}
		c.indices = append(c.indices, t.text)
		if p.peek(modeSource).kind != tkComma {
			break
		}
		p.next(modeSource)
	}
	if t := p.peek(modeSource); t.kind == tkSource && strings.EqualFold(t.text, "metadata") {
		p.next(modeSource)
		for {
			t := p.next(modeSource)
			if t.kind != tkSource {
				p.fail(t.pos, "expected a metadata field, found %s", t.describe())
			}
			switch t.text {
			case "_id", "_index", "_version":
			default:
				p.fail(t.pos, "metadata field %s is not supported (trailwatch knows _id, _index and _version)", t.text)
			}
			c.metadata = append(c.metadata, t.text)
			if p.peek(modeSource).kind != tkComma {
				break
			}
			p.next(modeSource)
		}
	}
	c.end = p.off
	return c
}

func (p *parser) command() command {
	t := p.next(modeExpr)
	if t.kind != tkIdent {
		p.fail(t.pos, "expected a command, found %s", t.describe())
	}
	c := command{pos: t.pos}
	switch strings.ToLower(t.text) {
	case "where":
		c.kind = cmdWhere
		c.cond = p.boolean()
	case "eval":
		c.kind = cmdEval
		c.fields = p.fields(false)
	case "stats":
		c.kind = cmdStats
		if n := p.peek(modeExpr); !n.is("by") && n.kind != tkPipe && n.kind != tkEOF {
			c.fields = p.fields(true)
		}
		if p.peek(modeExpr).is("by") {
			p.next(modeExpr)
			c.by = p.fields(false)
		}
		if len(c.fields) == 0 && len(c.by) == 0 {
			p.fail(t.pos, "STATS needs aggregations or BY groups")
		}
	case "keep", "drop":
		c.kind = cmdKeep
		if strings.EqualFold(t.text, "drop") {
			c.kind = cmdDrop
		}
		p.list(modeName, func() { c.names = append(c.names, p.namePattern()) })
	case "rename":
		c.kind = cmdRename
		p.list(modeName, func() {
			first := p.namePattern()
			var r rename
			if n := p.peek(modeName); n.kind == tkAssign {
				p.next(modeName)
				r = rename{from: p.namePattern(), to: first}
			} else if n.kind == tkPattern && strings.EqualFold(n.text, "as") {
				p.next(modeName)
				r = rename{from: first, to: p.namePattern()}
			} else {
				p.fail(n.pos, "expected AS or '=' in RENAME, found %s", n.describe())
			}
			if r.from.wildcard || r.to.wildcard {
				p.fail(r.from.pos, "RENAME takes names, not patterns")
			}
			c.renames = append(c.renames, r)
		})
	case "sort":
		c.kind = cmdSort
		p.list(modeExpr, func() {
			o := order{e: p.boolean()}
			if n := p.peek(modeExpr); n.is("asc") || n.is("desc") {
				p.next(modeExpr)
				o.desc = n.is("desc")
			}
			o.nullsFirst = o.desc
			if p.peek(modeExpr).is("nulls") {
				p.next(modeExpr)
				n := p.next(modeExpr)
				if !n.is("first") && !n.is("last") {
					p.fail(n.pos, "expected FIRST or LAST after NULLS, found %s", n.describe())
				}
				o.nullsFirst = n.is("first")
			}
			c.orders = append(c.orders, o)
		})
	case "limit":
		c.kind = cmdLimit
		n := p.next(modeExpr)
		v, err := strconv.Atoi(n.text)
		if n.kind != tkInt || err != nil || v < 0 {
			p.fail(n.pos, "LIMIT takes a non-negative integer, found %s", n.describe())
		}
		c.limit = v
	case "dissect", "grok":
		c.kind = cmdDissect
		if strings.EqualFold(t.text, "grok") {
			c.kind = cmdGrok
		}
		c.input = p.primary()
		for {
			s := p.expect(tkString, modeExpr, "a pattern string")
			c.pattern = append(c.pattern, s.text)
			c.patPos = append(c.patPos, s.pos)
			if c.kind == cmdDissect || p.peek(modeExpr).kind != tkComma {
				break
			}
			p.next(modeExpr)
		}
		if c.kind == cmdDissect {
			p.dissectOptions(&c)
		}
	case "mv_expand":
		c.kind = cmdMvExpand
		c.names = []namePattern{p.namePattern()}
		if c.names[0].wildcard {
			p.fail(c.names[0].pos, "MV_EXPAND takes a name, not a pattern")
		}
	default:
		p.fail(t.pos, "command %s is not supported", strings.ToUpper(t.text))
	}
	c.end = p.off
	return c
}

// list reads items separated by commas.
func (p *parser) list(m lexMode, item func()) {
	for {
		item()
		if p.peek(m).kind != tkComma {
			return
		}
		p.next(m)
	}
}

func (p *parser) dissectOptions(c *command) {
	for {
		n := p.peek(modeExpr)
		if n.kind != tkIdent || isReserved(n.text) {
			return
		}
		p.next(modeExpr)
		if !strings.EqualFold(n.text, "append_separator") {
			p.fail(n.pos, "invalid option for DISSECT: [%s] (the one option is APPEND_SEPARATOR)", n.text)
		}
		p.expect(tkAssign, modeExpr, "'='")
		v := p.next(modeExpr)
		if v.kind != tkString {
			p.fail(v.pos, "invalid value for APPEND_SEPARATOR: expected a string, found %s", v.describe())
		}
		c.appendSp = v.text
		if p.peek(modeExpr).kind != tkComma {
			return
		}
		p.next(modeExpr)
	}
}

// namePattern reads a column name or pattern: parts joined by dots, each
// `quoted` or made of letters, digits, _ @ and the wildcard *.
func (p *parser) namePattern() namePattern {
	var b strings.Builder
	start := -1
	wild := false
	for {
		t := p.next(modeName)
		switch t.kind {
		case tkPattern:
			wild = wild || strings.Contains(t.text, "*")
		case tkQuoted:
		default:
			p.fail(t.pos, "expected a column name, found %s", t.describe())
		}
		if start < 0 {
			start = t.pos
		}
		b.WriteString(t.text)
		if p.peek(modeName).kind != tkDot {
			break
		}
		p.next(modeName)
		b.WriteByte('.')
	}
	return namePattern{text: b.String(), wildcard: wild, pos: start}
}

// fields reads `[name =] expr` items; aggs also reads `WHERE filter` after
// each.
func (p *parser) fields(aggs bool) []field {
	var out []field
	for {
		f := field{}
		save := p.off
		if name, pos, ok := p.tryQualifiedName(); ok && p.peek(modeExpr).kind == tkAssign {
			p.next(modeExpr)
			f.name, f.namePos = name, pos
		} else {
			p.off = save
		}
		f.e = p.boolean()
		if aggs && p.peek(modeExpr).is("where") {
			p.next(modeExpr)
			f.filter = p.boolean()
		}
		out = append(out, f)
		if p.peek(modeExpr).kind != tkComma {
			return out
		}
		p.next(modeExpr)
	}
}

// tryQualifiedName reads name(.name)* if one starts here.
func (p *parser) tryQualifiedName() (string, int, bool) {
	t := p.peek(modeExpr)
	if !(t.kind == tkIdent && !isReserved(t.text) || t.kind == tkQuoted) {
		return "", 0, false
	}
	name, _ := p.qualifiedName()
	return name, t.pos, true
}

// qualifiedName reads identifiers joined by dots.
func (p *parser) qualifiedName() (string, int) {
	var b strings.Builder
	end := p.off
	for {
		t := p.next(modeExpr)
		switch {
		case t.kind == tkQuoted:
		case t.kind == tkIdent && !isReserved(t.text):
		default:
			p.fail(t.pos, "expected a name, found %s", t.describe())
		}
		b.WriteString(t.text)
		end = t.end
		if n := p.peek(modeExpr); n.kind != tkDot {
			return b.String(), end
		}
		p.next(modeExpr)
		b.WriteByte('.')
	}
}

func (p *parser) boolean() *expr { return p.or() }

func (p *parser) or() *expr { return p.logical("or", exOr, p.and) }

func (p *parser) and() *expr { return p.logical("and", exAnd, p.not) }

// logical reads operands joined by the keyword kw, left to right. Each
// operand past the first nests the tree one level deeper (and is counted
// as a level, as Elasticsearch counts the levels of its parse tree: a
// million terms overflowed the stack of the compiler that walks it).
func (p *parser) logical(kw string, kind exprKind, operand func() *expr) *expr {
	l := operand()
	levels := 0
	for t := p.peek(modeExpr); t.is(kw); t = p.peek(modeExpr) {
		p.next(modeExpr)
		p.enter(t.pos)
		levels++
		r := operand()
		l = &expr{kind: kind, pos: l.pos, end: r.end, args: []*expr{l, r}}
	}
	p.depth -= levels
	return l
}

func (p *parser) not() *expr {
	if t := p.peek(modeExpr); t.is("not") {
		p.next(modeExpr)
		p.enter(t.pos)
		x := p.not()
		p.leave()
		return &expr{kind: exNot, pos: t.pos, end: x.end, args: []*expr{x}}
	}
	return p.predicate()
}

// predicate reads a value and what may follow it: [NOT] IN (...),
// [NOT] LIKE / RLIKE pattern(s), IS [NOT] NULL.
func (p *parser) predicate() *expr {
	v := p.value()
	t := p.peek(modeExpr)
	neg := false
	if t.is("not") {
		save := p.off
		p.next(modeExpr)
		n := p.peek(modeExpr)
		if !n.is("in") && !n.is("like") && !n.is("rlike") {
			p.off = save
			return v
		}
		neg, t = true, n
	}
	switch {
	case t.is("in"):
		p.next(modeExpr)
		p.expect(tkLP, modeExpr, "'(' after IN")
		e := &expr{kind: exIn, pos: v.pos, neg: neg, args: []*expr{v}}
		e.end = p.items(tkRP, "the IN list", func() { e.args = append(e.args, p.value()) })
		return e
	case t.is("like"), t.is("rlike"):
		p.next(modeExpr)
		e := &expr{kind: exLike, pos: v.pos, neg: neg, args: []*expr{v}}
		if t.is("rlike") {
			e.kind = exRLike
		}
		if p.peek(modeExpr).kind == tkLP {
			p.next(modeExpr)
			e.end = p.items(tkRP, "the pattern list", func() {
				s := p.expect(tkString, modeExpr, "a pattern string")
				e.patterns, e.patPos = append(e.patterns, s.text), append(e.patPos, s.pos)
			})
			return e
		}
		s := p.expect(tkString, modeExpr, "a pattern string after "+strings.ToUpper(t.text))
		e.patterns, e.patPos, e.end = []string{s.text}, []int{s.pos}, s.end
		return e
	case t.is("is") && !neg:
		p.next(modeExpr)
		e := &expr{kind: exIsNull, pos: v.pos, args: []*expr{v}}
		n := p.next(modeExpr)
		if n.is("not") {
			e.neg = true
			n = p.next(modeExpr)
		}
		if !n.is("null") {
			p.fail(n.pos, "expected NULL after IS, found %s", n.describe())
		}
		e.end = n.end
		return e
	}
	return v
}

var cmpOps = map[tokKind]string{tkEq: "==", tkNeq: "!=", tkLt: "<", tkLte: "<=", tkGt: ">", tkGte: ">="}

func (p *parser) value() *expr {
	l := p.additive()
	t := p.peek(modeExpr)
	if t.kind == tkCIEq {
		p.fail(t.pos, "the case-insensitive comparison =~ is not supported")
	}
	if t.kind == tkColon {
		p.fail(t.pos, "the match operator ':' is not supported")
	}
	op, ok := cmpOps[t.kind]
	if !ok {
		return l
	}
	p.next(modeExpr)
	r := p.additive()
	if n := p.peek(modeExpr); cmpOps[n.kind] != "" {
		p.fail(n.pos, "comparisons do not chain; use AND")
	}
	return &expr{kind: exCmp, op: op, pos: l.pos, end: r.end, args: []*expr{l, r}}
}

func (p *parser) additive() *expr { return p.arithmetic(p.multiplicative, tkPlus, tkMinus) }

func (p *parser) multiplicative() *expr {
	return p.arithmetic(p.unary, tkStar, tkSlash, tkPercent)
}

// arithmetic reads operands joined by the operators ops, left to right
// (each past the first a level, as in logical).
func (p *parser) arithmetic(operand func() *expr, ops ...tokKind) *expr {
	l := operand()
	levels := 0
	defer func() { p.depth -= levels }()
	for {
		t := p.peek(modeExpr)
		if !slices.Contains(ops, t.kind) {
			return l
		}
		p.next(modeExpr)
		p.enter(t.pos)
		levels++
		r := operand()
		l = &expr{kind: exArith, op: t.text, pos: l.pos, end: r.end, args: []*expr{l, r}}
	}
}

func (p *parser) unary() *expr {
	t := p.peek(modeExpr)
	if t.kind != tkMinus && t.kind != tkPlus {
		return p.primary()
	}
	p.next(modeExpr)
	p.enter(t.pos)
	x := p.unary()
	p.leave()
	if t.kind == tkPlus {
		return x
	}
	// A signed number is one literal in the grammar (integerValue,
	// decimalValue), and so is a signed time span.
	if (x.kind == exLit && (x.lit == litInt || x.lit == litDecimal) || x.kind == exSpan) && !strings.HasPrefix(x.text, "-") {
		y := *x
		y.pos, y.text = t.pos, "-"+x.text
		return &y
	}
	return &expr{kind: exNeg, pos: t.pos, end: x.end, args: []*expr{x}}
}

func (p *parser) primary() *expr {
	e := p.atom()
	levels := 0
	defer func() { p.depth -= levels }()
	for p.peek(modeExpr).kind == tkCast {
		p.enter(p.next(modeExpr).pos) // each cast a level
		levels++
		t := p.next(modeExpr)
		if t.kind != tkIdent {
			p.fail(t.pos, "expected a type after '::', found %s", t.describe())
		}
		e = &expr{kind: exCast, op: strings.ToLower(t.text), pos: e.pos, end: t.end, args: []*expr{e}}
	}
	return e
}

func (p *parser) atom() *expr {
	t := p.peek(modeExpr)
	switch t.kind {
	case tkLP:
		p.next(modeExpr)
		p.enter(t.pos)
		e := p.boolean()
		p.leave()
		r := p.expect(tkRP, modeExpr, "')'")
		// The parentheses belong to the expression's text.
		c := *e
		c.pos, c.end = t.pos, r.end
		return &c
	case tkString:
		p.next(modeExpr)
		return &expr{kind: exLit, lit: litString, text: t.text, pos: t.pos, end: t.end}
	case tkInt, tkDecimal:
		p.next(modeExpr)
		e := &expr{kind: exLit, lit: litInt, text: t.text, pos: t.pos, end: t.end}
		if t.kind == tkDecimal {
			e.lit = litDecimal
			return e
		}
		if u := p.peek(modeExpr); u.kind == tkIdent && !isReserved(u.text) {
			p.next(modeExpr)
			return &expr{kind: exSpan, text: t.text, op: strings.ToLower(u.text), pos: t.pos, end: u.end}
		}
		return e
	case tkLB:
		p.next(modeExpr)
		e := &expr{kind: exArray, pos: t.pos}
		e.end = p.items(tkRB, "the array", func() {
			x := p.unary()
			if x.kind != exLit || x.lit == litNull {
				p.fail(x.pos, "an array holds only numbers, booleans or strings")
			}
			e.args = append(e.args, x)
		})
		return e
	case tkParam:
		p.fail(t.pos, "query parameters are not supported")
	case tkQuoted:
		name, end := p.qualifiedName()
		return &expr{kind: exField, name: name, pos: t.pos, end: end}
	case tkIdent:
		switch strings.ToLower(t.text) {
		case "null":
			p.next(modeExpr)
			return &expr{kind: exLit, lit: litNull, pos: t.pos, end: t.end}
		case "true", "false":
			p.next(modeExpr)
			return &expr{kind: exLit, lit: litBool, text: strings.ToLower(t.text), pos: t.pos, end: t.end}
		}
		if isReserved(t.text) {
			break
		}
		if n := p.scan(t.end, modeExpr); n.kind == tkLP {
			p.next(modeExpr)
			p.next(modeExpr)
			return p.call(t)
		}
		name, end := p.qualifiedName()
		return &expr{kind: exField, name: name, pos: t.pos, end: end}
	}
	p.fail(t.pos, "expected an expression, found %s", t.describe())
	return nil
}

// call reads a function's arguments after its '('.
func (p *parser) call(name token) *expr {
	e := &expr{kind: exCall, op: strings.ToLower(name.text), name: name.text, pos: name.pos}
	p.enter(name.pos)
	defer p.leave()
	if t := p.peek(modeExpr); t.kind == tkStar {
		p.next(modeExpr)
		e.star = true
		e.end = p.expect(tkRP, modeExpr, "')' after *").end
		return e
	} else if t.kind == tkRP {
		p.next(modeExpr)
		e.end = t.end
		return e
	}
	e.end = p.items(tkRP, "the arguments of "+strings.ToUpper(name.text), func() {
		if t := p.peek(modeExpr); t.kind == tkLBrace {
			p.fail(t.pos, "function options {...} are not supported")
		}
		e.args = append(e.args, p.boolean())
	})
	return e
}

// items reads items separated by commas up to the closing token, and
// returns where that ends.
func (p *parser) items(closing tokKind, where string, item func()) int {
	for {
		item()
		n := p.next(modeExpr)
		if n.kind == closing {
			return n.end
		}
		if n.kind != tkComma {
			p.fail(n.pos, "expected ',' or %s in %s, found %s", tokNames[closing], where, n.describe())
		}
	}
}
