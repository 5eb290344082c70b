package eql

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of an expression: in the text (parentheses,
// not, unary minus, calls, lists, and each operator of an arithmetic chain)
// and in the AST (no node of a condition has more than MaxDepth ancestors
// within it), so that a hostile query can exhaust neither the parser's stack
// nor that of a recursive walk over the AST.
const MaxDepth = 256

// MaxRuns is the largest `with runs=N` Elasticsearch accepts.
const MaxRuns = 100

type parser struct {
	lex   *lexer
	tok   token    // the current token
	ahead []token  // tokens scanned past tok, at most one
	depth int      // expression nesting
	scan  [1]token // backing store for ahead
}

// Parse parses an EQL query. Besides what the grammar refuses, it refuses with
// the place, as Elasticsearch's builders do: sample and join queries, process
// relationships, array indexes, `with` before `by` in a sequence, a maxspan
// that is not a positive integer with a unit of ms, s, m, h or d, join keys
// that are not fields or differ in number between stages, fewer than two
// sequence queries, missing events without maxspan or without a positive
// stage, pipes other than head and tail, and a head or tail count that is not
// a non-negative integer. It also refuses, though Elasticsearch's grammar
// admits them, a missing event or `with runs` on until.
func Parse(src string) (stmt *Statement, err error) {
	defer catch(&err)
	p := newParser(src)
	stmt = p.statement()
	return stmt, nil
}

// ParseExpr parses a condition alone, as Elasticsearch's singleExpression
// does (for tests and tools; rules hold whole queries).
func ParseExpr(src string) (x Expr, err error) {
	defer catch(&err)
	p := newParser(src)
	x = p.expr()
	if p.tok.kind != tEOF {
		p.expected("and, or or the end of the expression")
	}
	return checkDepth(x), nil
}

// catch turns a *SyntaxError panic into the error result; any other panic
// is a bug and goes on.
func catch(err *error) {
	if r := recover(); r != nil {
		se, ok := r.(*SyntaxError)
		if !ok {
			panic(r)
		}
		*err = se
	}
}

func newParser(src string) *parser {
	if !utf8.ValidString(src) {
		// The first byte that is not part of a valid character.
		for i, r := range src {
			if r == utf8.RuneError && !strings.HasPrefix(src[i:], "\uFFFD") {
				l := newLexer(src)
				l.advance(i)
				fail(l.pos(), "invalid UTF-8 in query")
			}
		}
	}
	p := &parser{lex: newLexer(src)}
	p.tok = p.lex.next()
	return p
}

func (p *parser) next() {
	if len(p.ahead) > 0 {
		p.tok = p.ahead[0]
		p.ahead = p.ahead[:0]
		return
	}
	p.tok = p.lex.next()
}

// peek is the token after the current one.
func (p *parser) peek() token {
	if len(p.ahead) == 0 {
		p.ahead = append(p.scan[:0], p.lex.next())
	}
	return p.ahead[0]
}

// found describes the current token for messages.
func (p *parser) found() string { return describe(p.tok) }

func describe(t token) string {
	if t.kind == tEOF {
		return "end of query"
	}
	text := t.text
	if r := []rune(text); len(r) > 24 {
		text = string(r[:24]) + "..."
	}
	if t.kind == tString {
		return "string " + strconv.Quote(text)
	}
	return strconv.Quote(text)
}

func (p *parser) expected(what string) {
	fail(p.tok.pos, "expected %s, found %s", what, p.found())
}

// expect consumes a token of kind k, or fails saying what was expected.
func (p *parser) expect(k tokKind, what string) token {
	if p.tok.kind != k {
		p.expected(what)
	}
	t := p.tok
	p.next()
	return t
}

func (p *parser) enter() {
	p.depth++
	if p.depth > MaxDepth {
		fail(p.tok.pos, "expression nested deeper than %d levels", MaxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// statement = query ( "|" pipe )* EOF
func (p *parser) statement() *Statement {
	st := &Statement{Pos: p.tok.pos}
	end := "and, or, a pipe (|) or the end of the query"
	switch p.tok.kind {
	case tSequence:
		st.Query = p.sequence()
		end = "[, ![, until, a pipe (|) or the end of the query"
	case tSample:
		fail(p.tok.pos, "sample queries are not supported")
	case tJoin:
		fail(p.tok.pos, "join queries are not supported (nor are they in Elasticsearch)")
	default:
		st.Query = p.eventFilter()
	}
	for p.tok.kind == tPipe {
		st.Pipes = append(st.Pipes, p.pipe())
		end = "a pipe (|) or the end of the query"
	}
	if p.tok.kind != tEOF {
		p.expected(end)
	}
	return st
}

// eventFilter = ( "any" | identifier | string ) "where" expr
func (p *parser) eventFilter() *EventQuery {
	cat := &Category{Pos: p.tok.pos}
	switch p.tok.kind {
	case tAny:
		cat.Any = true
	case tIdent, tString:
		cat.Name = p.tok.val
	default:
		p.expected("an event category (a name, a string or any) or sequence")
	}
	p.next()
	p.expect(tWhere, "where")
	return &EventQuery{Pos: cat.Pos, Category: cat, Cond: checkDepth(p.expr())}
}

// checkDepth refuses a condition deeper than MaxDepth. The parser's own count
// stops most deep queries at the token that goes too deep; this catches the
// rest (a chain whose first operand is a parenthesised chain, and so on), so
// that no expression in an AST is deeper than MaxDepth.
func checkDepth(x Expr) Expr {
	walk(x, func(n Node, depth int) bool {
		if depth > MaxDepth {
			fail(n.Position(), "expression nested deeper than %d levels", MaxDepth)
		}
		return true
	})
	return x
}

// sequence = "sequence" [ joinKeys ] [ "with" "maxspan" "=" duration ] term+ [ "until" term ]
func (p *parser) sequence() *Sequence {
	seq := &Sequence{Pos: p.tok.pos}
	p.next()
	if p.tok.kind == tBy {
		seq.By = p.joinKeys()
	}
	if p.tok.kind == tWith {
		seq.MaxSpan = p.maxSpan()
		if p.tok.kind == tBy && seq.By == nil {
			fail(p.tok.pos, "sequence by must come before with maxspan, not after")
		}
	}
	for p.tok.kind == tLBracket || p.tok.kind == tMissingOpen {
		seq.Stages = append(seq.Stages, p.stage())
	}
	if len(seq.Stages) == 0 {
		p.expected("[ starting the first query of the sequence")
	}
	if p.tok.kind == tUntil {
		at := p.tok.pos
		p.next()
		if p.tok.kind != tLBracket && p.tok.kind != tMissingOpen {
			p.expected("[ after until")
		}
		seq.Until = p.stage()
		if seq.Until.Missing {
			fail(at, "until cannot be a missing event (![...])")
		}
		if seq.Until.Runs != 0 {
			fail(at, "until cannot have with runs")
		}
	}
	p.checkSequence(seq)
	return seq
}

func (p *parser) checkSequence(seq *Sequence) {
	queries, positive := 0, false
	var missing *Stage
	all := seq.Stages
	if seq.Until != nil {
		all = append(all[:len(all):len(all)], seq.Until)
	}
	for i, st := range all {
		if i > 0 && len(st.By) != len(all[0].By) {
			at := st.Pos
			if len(st.By) > 0 {
				at = st.By[0].Pos
			}
			fail(at, "inconsistent number of join keys: the first query has %d and this one %d", len(all[0].By)+len(seq.By), len(st.By)+len(seq.By))
		}
	}
	for _, st := range seq.Stages {
		n := 1
		if st.Runs > 0 {
			n = st.Runs
		}
		queries += n
		if st.Missing {
			if missing == nil {
				missing = st
			}
		} else {
			positive = true
		}
	}
	switch {
	case queries < 2:
		fail(seq.Pos, "a sequence needs at least two queries, found %d", queries)
	case missing != nil && seq.MaxSpan == nil:
		fail(missing.Pos, "a sequence with a missing event (![...]) needs with maxspan")
	case !positive:
		fail(seq.Pos, "a sequence needs at least one query that is not a missing event")
	}
}

// stage = ( "[" | "![" ) eventFilter "]" [ joinKeys ] [ "with" "runs" "=" integer ]
func (p *parser) stage() *Stage {
	st := &Stage{Pos: p.tok.pos, Missing: p.tok.kind == tMissingOpen}
	p.next()
	st.Query = p.eventFilter()
	p.expect(tRBracket, "and, or or ] closing the query")
	if p.tok.kind == tBy {
		st.By = p.joinKeys()
	}
	if p.tok.kind == tWith {
		p.next()
		if p.tok.kind != tIdent || p.tok.val != "runs" {
			p.expected("runs (the only setting of a sequence query)")
		}
		p.next()
		p.expect(tAssign, "= after runs")
		at := p.tok.pos
		if p.tok.kind != tInt {
			p.expected("an integer from 1 to 100 after runs=")
		}
		n, err := strconv.ParseInt(p.tok.text, 10, 64)
		if err != nil || n < 1 || n > MaxRuns {
			fail(at, "runs must be from 1 to %d, found %s", MaxRuns, p.tok.text)
		}
		st.Runs = int(n)
		p.next()
	}
	return st
}

// joinKeys = "by" field ( "," field )*: Elasticsearch parses expressions and
// refuses any that is not a field.
func (p *parser) joinKeys() []*Field {
	p.next()
	var keys []*Field
	for {
		x := p.expr()
		f, ok := x.(*Field)
		if !ok {
			fail(x.Position(), "a join key must be a field, found %s", x)
		}
		keys = append(keys, f)
		if p.tok.kind != tComma {
			return keys
		}
		p.next()
	}
}

// maxSpan = "with" "maxspan" "=" integer unit
func (p *parser) maxSpan() *MaxSpan {
	p.next()
	p.expect(tMaxspan, "maxspan after with")
	p.expect(tAssign, "= after maxspan")
	m := &MaxSpan{Pos: p.tok.pos}
	switch p.tok.kind {
	case tInt:
	case tDecimal:
		fail(p.tok.pos, "maxspan must be a whole number, found %s", p.tok.text)
	default:
		p.expected("a time span after maxspan= (such as 15m)")
	}
	v, err := strconv.ParseInt(p.tok.text, 10, 64)
	if err != nil {
		fail(p.tok.pos, "maxspan %s is too large", p.tok.text)
	}
	if v <= 0 {
		fail(p.tok.pos, "maxspan must be positive, found %d", v)
	}
	m.Value = v
	num := p.tok
	p.next()
	if p.tok.kind != tIdent {
		fail(num.pos, "maxspan %s has no time unit (ms, s, m, h or d), found %s after it", num.text, p.found())
	}
	unit, ok := unitDurations[p.tok.val]
	if !ok {
		fail(p.tok.pos, "unknown time unit %q in maxspan: use ms, s, m, h or d", p.tok.val)
	}
	if v > math.MaxInt64/int64(unit) {
		fail(num.pos, "maxspan %s%s is too large", num.text, p.tok.val)
	}
	m.Unit = p.tok.val
	p.next()
	return m
}

var pipesUnsupported = map[string]bool{"count": true, "filter": true, "sort": true, "unique": true, "unique_count": true}

// pipe = "|" name [ expr ( "," expr )* ]: head and tail take one integer.
func (p *parser) pipe() *Pipe {
	pipe := &Pipe{Pos: p.tok.pos}
	p.next()
	if p.tok.kind != tIdent {
		p.expected("a pipe name (head or tail) after |")
	}
	name := p.tok
	switch {
	case name.val == "head" || name.val == "tail":
	case pipesUnsupported[name.val]:
		fail(name.pos, "pipe %s is not supported (Elasticsearch runs only head and tail)", name.val)
	default:
		fail(name.pos, "unknown pipe %q (Elasticsearch's EQL has head and tail)", name.val)
	}
	pipe.Name = name.val
	p.next()
	var args []Expr
	if startsExpr(p.tok.kind) {
		args = append(args, p.expr())
		for p.tok.kind == tComma {
			p.next()
			args = append(args, p.expr())
		}
	}
	if len(args) != 1 {
		fail(name.pos, "pipe %s takes exactly one argument, found %d", name.val, len(args))
	}
	n, ok := args[0].(*Int)
	if !ok || n.Value > math.MaxInt32 {
		fail(args[0].Position(), "pipe %s takes a whole number from 0 to %d, found %s", name.val, math.MaxInt32, args[0])
	}
	pipe.Count = int(n.Value)
	return pipe
}

func startsExpr(k tokKind) bool {
	switch k {
	case tNot, tIdent, tQuotedIdent, tTildeIdent, tString, tInt, tDecimal, tTrue, tFalse, tNull,
		tLParen, tMinus, tPlus, tOptional:
		return true
	}
	return false
}

func (p *parser) expr() Expr { return p.logical(Or) }

// logical parses a chain of `and` (below `or`) into one flattened node.
func (p *parser) logical(op LogicalOp) Expr {
	kind, sub := tOr, func() Expr { return p.logical(And) }
	if op == And {
		kind, sub = tAnd, p.not
	}
	first := sub()
	if p.tok.kind != kind {
		return first
	}
	n := &Logical{Pos: first.Position(), Op: op, Terms: flatten(nil, op, first)}
	for p.tok.kind == kind {
		p.next()
		n.Terms = flatten(n.Terms, op, sub())
	}
	return n
}

// flatten appends x to terms, splicing in the terms of a node with the same
// operator (`a and (b and c)`).
func flatten(terms []Expr, op LogicalOp, x Expr) []Expr {
	if l, ok := x.(*Logical); ok && l.Op == op {
		return append(terms, l.Terms...)
	}
	return append(terms, x)
}

// not = "not" not | identifier "of" ... (refused) | value
func (p *parser) not() Expr {
	switch p.tok.kind {
	case tNot:
		at := p.tok.pos
		p.enter()
		p.next()
		x := p.not()
		p.leave()
		return &Not{Pos: at, X: x}
	case tIdent:
		if p.peek().kind == tOf {
			fail(p.tok.pos, "process relationships (%s of [...]) are not supported", p.tok.val)
		}
	}
	return p.value()
}

var compareOps = map[tokKind]CompareOp{tEq: Eq, tNeq: Neq, tLt: Lt, tLte: Lte, tGt: Gt, tGte: Gte}

// value = sum [ compareOp sum ]
func (p *parser) value() Expr {
	x := p.sum()
	op, ok := compareOps[p.tok.kind]
	if !ok {
		if p.tok.kind == tAssign {
			fail(p.tok.pos, "= is not a comparison in EQL: use == (or : to ignore case)")
		}
		return x
	}
	at := p.tok.pos
	p.next()
	y := p.sum()
	if _, chained := compareOps[p.tok.kind]; chained {
		fail(p.tok.pos, "comparisons do not chain: join them with and")
	}
	return &Compare{Pos: x.Position(), OpPos: at, Op: op, X: x, Y: y}
}

var sumOps = map[tokKind]ArithOp{tPlus: Add, tMinus: Sub}
var productOps = map[tokKind]ArithOp{tStar: Mul, tSlash: Div, tPercent: Mod}

func (p *parser) sum() Expr { return p.arith(sumOps, p.product) }

func (p *parser) product() Expr { return p.arith(productOps, p.unary) }

// arith parses a left-associative chain; each operator counts as a level of
// nesting, since the chain makes the tree that deep.
func (p *parser) arith(ops map[tokKind]ArithOp, sub func() Expr) Expr {
	x := sub()
	levels := 0
	for {
		op, ok := ops[p.tok.kind]
		if !ok {
			break
		}
		at := p.tok.pos
		p.enter()
		levels++
		p.next()
		x = &Arith{Pos: x.Position(), OpPos: at, Op: op, X: x, Y: sub()}
	}
	p.depth -= levels
	return x
}

// unary = ( "-" | "+" ) unary | primary [ predicate ]
func (p *parser) unary() Expr {
	if k := p.tok.kind; k == tMinus || k == tPlus {
		at := p.tok.pos
		p.enter()
		p.next()
		x := p.unary()
		p.leave()
		if k == tPlus {
			return x
		}
		return &Neg{Pos: at, X: x}
	}
	x := p.primary()
	switch p.tok.kind {
	case tNot:
		at := p.tok.pos
		if k := p.peek().kind; k != tIn && k != tInI {
			p.next()
			p.expected("in or in~ after not")
		}
		p.next()
		return p.in(x, at, true)
	case tIn, tInI:
		return p.in(x, p.tok.pos, false)
	case tColon, tLike, tLikeI, tRegex, tRegexI:
		return p.match(x)
	}
	return x
}

func (p *parser) in(x Expr, at Pos, not bool) Expr {
	n := &In{Pos: x.Position(), OpPos: at, X: x, Not: not, CaseInsensitive: p.tok.kind == tInI}
	op := p.tok.text
	p.next()
	if p.tok.kind != tLParen {
		p.expected("( after " + op)
	}
	p.enter()
	p.next()
	for {
		n.List = append(n.List, p.expr())
		if p.tok.kind != tComma {
			break
		}
		p.next()
	}
	p.expect(tRParen, ", or ) in the list after "+op)
	p.leave()
	return n
}

var matchOps = map[tokKind]MatchOp{tColon: Colon, tLike: Like, tLikeI: LikeI, tRegex: Regex, tRegexI: RegexI}

// match = op ( constant | "(" constant ( "," constant )* ")" )
func (p *parser) match(x Expr) Expr {
	n := &Match{Pos: x.Position(), OpPos: p.tok.pos, Op: matchOps[p.tok.kind], X: x}
	p.next()
	what := "a string, number, true, false or null"
	if p.tok.kind != tLParen {
		c := p.constant()
		if c == nil {
			p.expected(what + " after " + string(n.Op))
		}
		n.Patterns = []Expr{c}
		return n
	}
	p.next()
	for {
		c := p.constant()
		if c == nil {
			p.expected(what + " in the list after " + string(n.Op))
		}
		n.Patterns = append(n.Patterns, c)
		if p.tok.kind != tComma {
			break
		}
		p.next()
	}
	p.expect(tRParen, ", or ) in the list after "+string(n.Op))
	return n
}

// constant parses a literal, or returns nil (consuming nothing) when the
// current token is not one.
func (p *parser) constant() Expr {
	t := p.tok
	var x Expr
	switch t.kind {
	case tString:
		x = &String{Pos: t.pos, Value: t.val}
	case tInt:
		x = p.integer(t)
	case tDecimal:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil && (!errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0)) {
			fail(t.pos, "number %s is too large", t.text)
		}
		x = &Float{Pos: t.pos, Value: f}
	case tTrue, tFalse:
		x = &Bool{Pos: t.pos, Value: t.kind == tTrue}
	case tNull:
		x = &Null{Pos: t.pos}
	default:
		return nil
	}
	p.next()
	return x
}

// integer reads an integer as Elasticsearch does: a long when it fits, a
// double when it is beyond unsigned long. In between Elasticsearch makes an
// unsigned_long, which trailwatch does not have, so it refuses the number.
func (p *parser) integer(t token) Expr {
	v, err := strconv.ParseInt(t.text, 10, 64)
	if err == nil {
		return &Int{Pos: t.pos, Value: v}
	}
	if _, err := strconv.ParseUint(t.text, 10, 64); err == nil {
		fail(t.pos, "integer %s is out of range (above %d)", t.text, int64(math.MaxInt64))
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil {
		fail(t.pos, "number %s is too large", t.text)
	}
	return &Float{Pos: t.pos, Value: f}
}

// primary = constant | call | field | "(" expr ")"
func (p *parser) primary() Expr {
	if c := p.constant(); c != nil {
		return c
	}
	switch p.tok.kind {
	case tIdent:
		if p.peek().kind == tLParen {
			return p.call()
		}
		return p.field()
	case tTildeIdent:
		if p.peek().kind != tLParen {
			fail(p.tok.pos, "%s is not a field name; name~ is for calls, as in %s(...)", p.tok.text, p.tok.text)
		}
		return p.call()
	case tQuotedIdent, tOptional:
		return p.field()
	case tLParen:
		p.enter()
		p.next()
		x := p.expr()
		p.expect(tRParen, "and, or or ) closing (")
		p.leave()
		return x
	}
	p.expected("a field, a value, a function call or (")
	return nil
}

func (p *parser) call() Expr {
	c := &Call{Pos: p.tok.pos, Name: p.tok.val, CaseInsensitive: p.tok.kind == tTildeIdent}
	p.next()
	p.enter()
	p.next() // (
	if p.tok.kind != tRParen {
		for {
			c.Args = append(c.Args, p.expr())
			if p.tok.kind != tComma {
				break
			}
			p.next()
		}
	}
	p.expect(tRParen, ", or ) in the arguments of "+c.Name)
	p.leave()
	return c
}

// field = [ "?" ] identifier ( "." identifier )*; `[` and an integer after it
// would be an array index, which Elasticsearch refuses.
func (p *parser) field() Expr {
	f := &Field{Pos: p.tok.pos}
	if p.tok.kind == tOptional {
		f.Optional = true
		p.next()
	}
	for {
		if p.tok.kind != tIdent && p.tok.kind != tQuotedIdent {
			if len(f.Parts) == 0 {
				p.expected("a field name after ?")
			}
			p.expected("a field name after . (quote a keyword in backticks)")
		}
		f.Parts = append(f.Parts, p.tok.val)
		p.next()
		if p.tok.kind == tLBracket && p.peek().kind == tInt {
			fail(p.peek().pos, "array indexes are not supported")
		}
		if p.tok.kind != tDot {
			return f
		}
		p.next()
	}
}
