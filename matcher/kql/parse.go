package kql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/matcher"
)

// The KQL parser follows Kibana's grammar (kbn-es-query, grammar.peggy) rule
// for rule, so that a query parses here exactly when it parses in Kibana and
// means the same thing:
//
//	OrQuery      = AndQuery (Or AndQuery)*
//	AndQuery     = NotQuery (And NotQuery)*
//	NotQuery     = Not SubQuery / SubQuery
//	SubQuery     = '(' Space* OrQuery Space* ')' / NestedQuery
//	NestedQuery  = Field Space* ':' Space* '{' Space* OrQuery Space* '}' / Expression
//	Expression   = Field Space* RangeOp Space* Literal / Field Space* ':' Space* ListOfValues / Value
//	ListOfValues = '(' Space* OrList Space* ')' / Value   (OrList, AndList, NotList as above)
//	Or = Space+ 'or'i Space+   And = Space+ 'and'i Space+   Not = 'not'i Space+
//
// An unquoted literal runs across spaces until a special character
// (\ ( ) : < > " * { }) or a keyword, and is trimmed; `*` in it is a
// wildcard; `true`, `false` and `null` alone are Kibana's literal values.

// NodeKind tells what an AST node is.
type NodeKind uint8

// AST node kinds.
const (
	NodeOr     NodeKind = iota // Children: any is true
	NodeAnd                    // Children: all are true
	NodeNot                    // Children[0] is false
	NodeIs                     // Field : Value
	NodeRange                  // Field Op Value
	NodeNested                 // Field : { Children[0] }
	NodeAll                    // the empty query: matches everything
)

// Literal is a parsed KQL value.
type Literal struct {
	// Parts is the value split at its unquoted wildcards: one part for a
	// plain value, n+1 parts for n wildcards (`a*b` is ["a", "b"], `*` is
	// ["", ""]). Escapes are already resolved.
	Parts []string
	// Quoted is set for a "quoted string" (a phrase in Kibana's terms).
	Quoted bool
	// Null is set for the unquoted literal null.
	Null bool
}

// Wildcard reports whether the literal holds an unquoted `*`.
func (l Literal) Wildcard() bool { return len(l.Parts) > 1 }

// Text is the literal with wildcards written as `*` (for messages).
func (l Literal) Text() string { return strings.Join(l.Parts, "*") }

// Node is one node of a parsed KQL query.
type Node struct {
	Kind     NodeKind
	Pos      matcher.Pos // where the node starts in the query text
	Field    string      // NodeIs, NodeRange, NodeNested
	Op       string      // NodeRange: "lt", "lte", "gt", "gte"
	Value    Literal     // NodeIs, NodeRange
	Children []*Node
}

// maxDepth bounds the nesting of parentheses and braces, so that a hostile
// query cannot exhaust the stack.
const maxDepth = 256

type parser struct {
	lines matcher.Lines
	src   string
	pos   int
	depth int
}

// Parse parses a KQL query into its AST.
func Parse(src string) (*Node, error) {
	if !utf8.ValidString(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		p := &parser{src: src, lines: matcher.Lines{Src: src}}
		return nil, &matcher.SyntaxError{Pos: p.posAt(i), Msg: "invalid UTF-8 in query"}
	}
	p := &parser{src: src, lines: matcher.Lines{Src: src}}
	p.spaces()
	if p.eof() {
		return &Node{Kind: NodeAll, Pos: p.posAt(0)}, nil
	}
	n, err := p.orQuery()
	if err != nil {
		return nil, err
	}
	p.spaces()
	if !p.eof() {
		return nil, p.errorf("expected AND, OR or end of query, found %s", p.found())
	}
	return n, nil
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() rune {
	if p.eof() {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return r
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\u00a0' }

// spacesAt returns the offset after the run of KQL spaces starting at i.
func (p *parser) spacesAt(i int) int {
	for i < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[i:])
		if !isSpace(r) {
			break
		}
		i += n
	}
	return i
}

func (p *parser) spaces() { p.pos = p.spacesAt(p.pos) }

// wordAt reports whether the keyword w (ASCII, case-insensitive) starts at i.
func (p *parser) wordAt(i int, w string) bool {
	return len(p.src)-i >= len(w) && strings.EqualFold(p.src[i:i+len(w)], w)
}

// binaryKeywordAt reports whether Space+ w Space+ starts at i, returning the
// offset after it.
func (p *parser) binaryKeywordAt(i int, w string) (int, bool) {
	j := p.spacesAt(i)
	if j == i || !p.wordAt(j, w) {
		return i, false
	}
	k := p.spacesAt(j + len(w))
	if k == j+len(w) {
		return i, false
	}
	return k, true
}

// notAt reports whether 'not'i Space+ starts at i.
func (p *parser) notAt(i int) (int, bool) {
	if !p.wordAt(i, "not") {
		return i, false
	}
	k := p.spacesAt(i + 3)
	if k == i+3 {
		return i, false
	}
	return k, true
}

func (p *parser) keywordAt(i int) bool {
	if _, ok := p.binaryKeywordAt(i, "or"); ok {
		return true
	}
	if _, ok := p.binaryKeywordAt(i, "and"); ok {
		return true
	}
	_, ok := p.notAt(i)
	return ok
}

func (p *parser) posAt(off int) matcher.Pos { return p.lines.Pos(off) }

func (p *parser) errorf(format string, args ...any) error {
	return &matcher.SyntaxError{Pos: p.posAt(p.pos), Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) found() string {
	if p.eof() {
		return "end of query"
	}
	rest := p.src[p.pos:]
	if len(rest) > 20 {
		cut := 20
		for cut < len(rest) && !utf8.RuneStart(rest[cut]) {
			cut++
		}
		rest = rest[:cut] + "..."
	}
	return strconv.Quote(rest)
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("query nested deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) orQuery() (*Node, error) {
	return p.binary(NodeOr, "or", p.andQuery)
}

func (p *parser) andQuery() (*Node, error) {
	return p.binary(NodeAnd, "and", p.notQuery)
}

// binary parses head (kw next)*, building a node of kind when there is more
// than one operand.
func (p *parser) binary(kind NodeKind, kw string, next func() (*Node, error)) (*Node, error) {
	start := p.posAt(p.pos)
	head, err := next()
	if err != nil {
		return nil, err
	}
	nodes := []*Node{head}
	for {
		after, ok := p.binaryKeywordAt(p.pos, kw)
		if !ok {
			break
		}
		p.pos = after
		n, err := next()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 1 {
		return head, nil
	}
	return &Node{Kind: kind, Pos: start, Children: nodes}, nil
}

func (p *parser) notQuery() (*Node, error) {
	if after, ok := p.notAt(p.pos); ok {
		start := p.posAt(p.pos)
		p.pos = after
		n, err := p.subQuery()
		if err != nil {
			return nil, err
		}
		return &Node{Kind: NodeNot, Pos: start, Children: []*Node{n}}, nil
	}
	return p.subQuery()
}

func (p *parser) subQuery() (*Node, error) {
	if p.peek() != '(' {
		return p.expression()
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++
	p.spaces()
	n, err := p.orQuery()
	if err != nil {
		return nil, err
	}
	p.spaces()
	if p.peek() != ')' {
		return nil, p.errorf("expected AND, OR or ')', found %s", p.found())
	}
	p.pos++
	return n, nil
}

// expression parses NestedQuery / FieldRangeExpression / FieldValueExpression
// / ValueExpression; they all start with a literal.
func (p *parser) expression() (*Node, error) {
	startOff := p.pos
	start := p.posAt(startOff)
	lit, ok, err := p.literal()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.errorf("expected a field name, a value, '(' or NOT, found %s", p.found())
	}
	afterLit := p.pos
	p.spaces()
	switch {
	case strings.HasPrefix(p.src[p.pos:], "<="), strings.HasPrefix(p.src[p.pos:], ">="),
		p.peek() == '<', p.peek() == '>':
		op := map[string]string{"<=": "lte", ">=": "gte", "<": "lt", ">": "gt"}
		sym := p.src[p.pos : p.pos+1]
		if p.pos+1 < len(p.src) && p.src[p.pos+1] == '=' {
			sym = p.src[p.pos : p.pos+2]
		}
		p.pos += len(sym)
		p.spaces()
		valPos := p.pos
		val, ok, err := p.literal()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, p.errorf("expected a value after %q, found %s", sym, p.found())
		}
		if val.Wildcard() {
			// Kibana turns a range value with `*` into a literal string.
			val = Literal{Parts: []string{val.Text()}, Quoted: val.Quoted}
		}
		if val.Null {
			p.pos = valPos
			return nil, p.errorf("a range needs a value, not null")
		}
		field, err := p.fieldName(lit, startOff)
		if err != nil {
			return nil, err
		}
		return &Node{Kind: NodeRange, Pos: start, Field: field, Op: op[sym], Value: val}, nil
	case p.peek() == ':':
		p.pos++
		p.spaces()
		field, err := p.fieldName(lit, startOff)
		if err != nil {
			return nil, err
		}
		if p.peek() == '{' {
			if err := p.enter(); err != nil {
				return nil, err
			}
			defer func() { p.depth-- }()
			p.pos++
			p.spaces()
			inner, err := p.orQuery()
			if err != nil {
				return nil, err
			}
			p.spaces()
			if p.peek() != '}' {
				return nil, p.errorf("expected AND, OR or '}', found %s", p.found())
			}
			p.pos++
			return &Node{Kind: NodeNested, Pos: start, Field: field, Children: []*Node{inner}}, nil
		}
		return p.listOfValues(field)
	default:
		p.pos = afterLit
		return nil, &matcher.SyntaxError{Pos: start, Msg: fmt.Sprintf(
			"a value without a field (%q) searches every field; write field:value", lit.Text())}
	}
}

// fieldName checks a literal used as a field name.
func (p *parser) fieldName(lit Literal, at int) (string, error) {
	name := lit.Text()
	switch {
	case lit.Null:
		name = "null"
	case lit.Wildcard():
		return "", &matcher.SyntaxError{Pos: p.posAt(at), Msg: fmt.Sprintf(
			"field name %q has a wildcard; name one field", name)}
	case name == "":
		return "", &matcher.SyntaxError{Pos: p.posAt(at), Msg: "empty field name"}
	}
	return name, nil
}

func (p *parser) listOfValues(field string) (*Node, error) {
	if p.peek() != '(' {
		return p.value(field)
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++
	p.spaces()
	n, err := p.binary(NodeOr, "or", func() (*Node, error) {
		return p.binary(NodeAnd, "and", func() (*Node, error) {
			if after, ok := p.notAt(p.pos); ok {
				start := p.posAt(p.pos)
				p.pos = after
				c, err := p.listOfValues(field)
				if err != nil {
					return nil, err
				}
				return &Node{Kind: NodeNot, Pos: start, Children: []*Node{c}}, nil
			}
			return p.listOfValues(field)
		})
	})
	if err != nil {
		return nil, err
	}
	p.spaces()
	if p.peek() != ')' {
		return nil, p.errorf("expected AND, OR or ')' in the value list of %s, found %s", field, p.found())
	}
	p.pos++
	return n, nil
}

func (p *parser) value(field string) (*Node, error) {
	start := p.posAt(p.pos)
	lit, ok, err := p.literal()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.errorf("expected a value for %s, found %s", field, p.found())
	}
	return &Node{Kind: NodeIs, Pos: start, Field: field, Value: lit}, nil
}

// literal parses a QuotedString or an UnquotedLiteral. ok is false when
// neither starts here.
func (p *parser) literal() (Literal, bool, error) {
	if p.peek() == '"' {
		s, err := p.quoted()
		return Literal{Parts: []string{s}, Quoted: true}, err == nil, err
	}
	return p.unquoted()
}

func (p *parser) quoted() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.eof() {
			p.pos = start
			return "", p.errorf("unterminated quoted string")
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\' && p.pos+1 < len(p.src):
			switch next := p.src[p.pos+1]; next {
			case 't':
				b.WriteByte('\t')
				p.pos += 2
				continue
			case 'r':
				b.WriteByte('\r')
				p.pos += 2
				continue
			case 'n':
				b.WriteByte('\n')
				p.pos += 2
				continue
			case '\\', '"':
				b.WriteByte(next)
				p.pos += 2
				continue
			case 'u':
				if r, n, ok := p.unicodeEscape(p.pos); ok {
					b.WriteRune(r)
					p.pos += n
					continue
				}
			}
			// Any other backslash is itself (Kibana's QuotedCharacter).
			b.WriteByte(c)
			p.pos++
		default:
			r, n := utf8.DecodeRuneInString(p.src[p.pos:])
			b.WriteRune(r)
			p.pos += n
		}
	}
}

// unicodeEscape reads the \u escape (four hex digits) at i as a UTF-16
// code unit, as String.fromCharCode does: a high surrogate followed by an
// escaped low one is the character they make together (they were two
// U+FFFD), a lone surrogate becomes U+FFFD in Go strings. It returns how
// many bytes it read.
func (p *parser) unicodeEscape(i int) (rune, int, bool) {
	unit := func(i int) (rune, bool) {
		if i+6 > len(p.src) || p.src[i] != '\\' || p.src[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(p.src[i+2:i+6], 16, 16)
		return rune(v), err == nil
	}
	r, ok := unit(i)
	if !ok {
		return 0, 0, false
	}
	if utf16.IsSurrogate(r) {
		if lo, ok := unit(i + 6); ok {
			if pair := utf16.DecodeRune(r, lo); pair != utf8.RuneError {
				return pair, 12, true
			}
		}
	}
	return r, 6, true
}

func isSpecial(r rune) bool { return strings.ContainsRune(`\():<>"*{}`, r) }

func (p *parser) unquoted() (Literal, bool, error) {
	var parts []string
	var b strings.Builder
	consumed := false
	for !p.eof() {
		c := p.src[p.pos]
		if c == '\\' {
			if p.pos+1 >= len(p.src) {
				return Literal{}, false, p.errorf("a backslash must escape a character")
			}
			next := p.src[p.pos+1]
			switch {
			case next == 't' || next == 'r' || next == 'n':
				b.WriteByte(map[byte]byte{'t': '\t', 'r': '\r', 'n': '\n'}[next])
				p.pos += 2
			case isSpecial(rune(next)):
				b.WriteByte(next)
				p.pos += 2
			case next == 'u':
				r, n, ok := p.unicodeEscape(p.pos)
				if !ok {
					return Literal{}, false, p.errorf(`expected 4 hex digits after \u`)
				}
				b.WriteRune(r)
				p.pos += n
			case p.wordAt(p.pos+1, "and"):
				b.WriteString(p.src[p.pos+1 : p.pos+4])
				p.pos += 4
			case p.wordAt(p.pos+1, "not"):
				b.WriteString(p.src[p.pos+1 : p.pos+4])
				p.pos += 4
			case p.wordAt(p.pos+1, "or"):
				b.WriteString(p.src[p.pos+1 : p.pos+3])
				p.pos += 3
			default:
				return Literal{}, false, p.errorf(`unknown escape \%c: escape only \ ( ) : < > " * { }, whitespace (\t \r \n), \uXXXX and the keywords and/or/not`, next)
			}
			consumed = true
			continue
		}
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if r == '*' {
			parts = append(parts, b.String())
			b.Reset()
			p.pos++
			consumed = true
			continue
		}
		if isSpecial(r) || p.keywordAt(p.pos) {
			break
		}
		b.WriteRune(r)
		p.pos += n
		consumed = true
	}
	if !consumed {
		return Literal{}, false, nil
	}
	parts = append(parts, b.String())
	// Kibana trims the joined sequence (JavaScript's trim) before deciding
	// what the literal is.
	if len(parts) == 1 {
		s := strings.TrimFunc(parts[0], jsSpace)
		switch s {
		case "null":
			return Literal{Parts: []string{s}, Null: true}, true, nil
		}
		return Literal{Parts: []string{s}}, true, nil
	}
	parts[0] = strings.TrimLeftFunc(parts[0], jsSpace)
	parts[len(parts)-1] = strings.TrimRightFunc(parts[len(parts)-1], jsSpace)
	return Literal{Parts: parts}, true, nil
}

// jsSpace is JavaScript's String.prototype.trim set of white space.
func jsSpace(r rune) bool { return unicode.IsSpace(r) || r == '\ufeff' }
