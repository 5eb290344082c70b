package eql

import (
	"fmt"
	"strconv"
	"strings"
)

// The printer writes the canonical form of a node: keywords in lower case,
// single spaces, strings in double quotes with escapes, names in backticks
// only where they need them, and parentheses only where the grammar needs
// them. Parsing the canonical form gives the same AST, positions aside.

// Binding strength of expressions, loosest first. A predicate (in, :, like,
// regex) binds like a unary minus: its left side is a primary, and the whole
// is an operand of arithmetic (`1 + x in (1)` is `1 + (x in (1))`).
const (
	precOr = iota + 1
	precAnd
	precNot
	precCompare
	precSum
	precProduct
	precUnary
	precPrimary
)

func prec(x Expr) int {
	switch x := x.(type) {
	case *Logical:
		if x.Op == Or {
			return precOr
		}
		return precAnd
	case *Not:
		return precNot
	case *Compare:
		return precCompare
	case *Arith:
		if x.Op == Add || x.Op == Sub {
			return precSum
		}
		return precProduct
	case *Neg, *In, *Match:
		return precUnary
	}
	return precPrimary
}

type printer struct{ strings.Builder }

// expr writes x, in parentheses when it binds looser than min.
func (p *printer) expr(x Expr, min int) {
	if prec(x) < min {
		p.WriteByte('(')
		p.expr(x, 0)
		p.WriteByte(')')
		return
	}
	switch x := x.(type) {
	case *Logical:
		for i, t := range x.Terms {
			if i > 0 {
				p.WriteString(" " + string(x.Op) + " ")
			}
			p.expr(t, prec(x)+1)
		}
	case *Not:
		p.WriteString("not ")
		p.expr(x.X, precNot)
	case *Compare:
		p.expr(x.X, precSum)
		p.WriteString(" " + string(x.Op) + " ")
		p.expr(x.Y, precSum)
	case *In:
		p.expr(x.X, precPrimary)
		if x.Not {
			p.WriteString(" not")
		}
		if x.CaseInsensitive {
			p.WriteString(" in~ ")
		} else {
			p.WriteString(" in ")
		}
		p.list(x.List)
	case *Match:
		p.expr(x.X, precPrimary)
		if x.Op == Colon {
			p.WriteString(" : ")
		} else {
			p.WriteString(" " + string(x.Op) + " ")
		}
		if len(x.Patterns) == 1 {
			p.expr(x.Patterns[0], 0)
		} else {
			p.list(x.Patterns)
		}
	case *Arith:
		p.expr(x.X, prec(x))
		p.WriteString(" " + string(x.Op) + " ")
		p.expr(x.Y, prec(x)+1)
	case *Neg:
		p.WriteByte('-')
		p.expr(x.X, precUnary)
	case *Call:
		p.WriteString(x.Name)
		if x.CaseInsensitive {
			p.WriteByte('~')
		}
		p.list(x.Args)
	case *Field:
		p.field(x)
	case *String:
		p.WriteString(quote(x.Value))
	case *Int:
		p.WriteString(strconv.FormatInt(x.Value, 10))
	case *Float:
		p.WriteString(formatFloat(x.Value))
	case *Bool:
		p.WriteString(strconv.FormatBool(x.Value))
	case *Null:
		p.WriteString("null")
	default:
		panic(fmt.Sprintf("eql: cannot print %T", x))
	}
}

func (p *printer) list(xs []Expr) {
	p.WriteByte('(')
	for i, x := range xs {
		if i > 0 {
			p.WriteString(", ")
		}
		p.expr(x, 0)
	}
	p.WriteByte(')')
}

func (p *printer) field(f *Field) {
	if f.Optional {
		p.WriteByte('?')
	}
	for i, part := range f.Parts {
		if i > 0 {
			p.WriteByte('.')
		}
		if isPlainName(part) {
			p.WriteString(part)
		} else {
			p.WriteString("`" + strings.ReplaceAll(part, "`", "``") + "`")
		}
	}
}

func (p *printer) fields(fs []*Field) {
	for i, f := range fs {
		if i > 0 {
			p.WriteString(", ")
		}
		p.field(f)
	}
}

func (p *printer) category(c *Category) {
	switch {
	case c.Any:
		p.WriteString("any")
	case isPlainName(c.Name):
		p.WriteString(c.Name)
	default:
		p.WriteString(quote(c.Name))
	}
}

func (p *printer) eventQuery(q *EventQuery) {
	p.category(q.Category)
	p.WriteString(" where ")
	p.expr(q.Cond, 0)
}

func (p *printer) stage(s *Stage) {
	if s.Missing {
		p.WriteByte('!')
	}
	p.WriteByte('[')
	p.eventQuery(s.Query)
	p.WriteByte(']')
	if len(s.By) > 0 {
		p.WriteString(" by ")
		p.fields(s.By)
	}
	if s.Runs > 0 {
		fmt.Fprintf(p, " with runs=%d", s.Runs)
	}
}

func (p *printer) sequence(s *Sequence) {
	p.WriteString("sequence")
	if len(s.By) > 0 {
		p.WriteString(" by ")
		p.fields(s.By)
	}
	if s.MaxSpan != nil {
		p.WriteString(" with maxspan=" + s.MaxSpan.String())
	}
	for _, st := range s.Stages {
		p.WriteByte(' ')
		p.stage(st)
	}
	if s.Until != nil {
		p.WriteString(" until ")
		p.stage(s.Until)
	}
}

func (p *printer) query(q Query) {
	switch q := q.(type) {
	case *EventQuery:
		p.eventQuery(q)
	case *Sequence:
		p.sequence(q)
	}
}

// isPlainName reports whether s can be written bare: an IDENTIFIER that is
// not a keyword.
func isPlainName(s string) bool {
	if s == "" || !(isLetter(s[0]) || s[0] == '_' || s[0] == '@') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	_, kw := keywords[s]
	return !kw
}

// quote writes s as an EQL string: the escapes EQL has, \u{..} for other
// control characters, everything else as it is.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u{%02x}`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatFloat writes f so that it reads back as the same decimal (with a dot
// or an exponent, never as an integer).
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

func exprString(x Expr) string {
	var p printer
	p.expr(x, 0)
	return p.String()
}

func (n *Statement) String() string {
	var p printer
	p.query(n.Query)
	for _, pipe := range n.Pipes {
		p.WriteString(" | " + pipe.String())
	}
	return p.String()
}

func (n *EventQuery) String() string {
	var p printer
	p.eventQuery(n)
	return p.String()
}

func (n *Category) String() string {
	var p printer
	p.category(n)
	return p.String()
}

func (n *Sequence) String() string {
	var p printer
	p.sequence(n)
	return p.String()
}

func (n *Stage) String() string {
	var p printer
	p.stage(n)
	return p.String()
}

func (n *MaxSpan) String() string { return strconv.FormatInt(n.Value, 10) + n.Unit }

func (n *Pipe) String() string { return n.Name + " " + strconv.Itoa(n.Count) }

func (n *Logical) String() string { return exprString(n) }
func (n *Not) String() string     { return exprString(n) }
func (n *Compare) String() string { return exprString(n) }
func (n *In) String() string      { return exprString(n) }
func (n *Match) String() string   { return exprString(n) }
func (n *Arith) String() string   { return exprString(n) }
func (n *Neg) String() string     { return exprString(n) }
func (n *Call) String() string    { return exprString(n) }
func (n *Field) String() string   { return exprString(n) }
func (n *String) String() string  { return exprString(n) }
func (n *Int) String() string     { return exprString(n) }
func (n *Float) String() string   { return exprString(n) }
func (n *Bool) String() string    { return exprString(n) }
func (n *Null) String() string    { return exprString(n) }
