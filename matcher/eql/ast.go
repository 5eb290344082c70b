// Package eql is the syntax half of trailwatch's EQL front end: a lexer and a
// recursive-descent parser for the Event Query Language as Elasticsearch
// accepts it (x-pack/plugin/eql, EqlBase.g4 and the builders that turn its
// parse tree into a plan), producing an AST with a position on every node.
// It compiles nothing: turning the AST into predicates is the compiler's job.
//
// The grammar, as Elasticsearch has it (keywords are lower case and
// case-sensitive: `AND` is a field name, not a keyword):
//
//	statement   = query ( "|" pipe )*
//	query       = sequence | eventFilter
//	sequence    = "sequence" [ joinKeys [ "with" "maxspan" "=" duration ] | "with" "maxspan" "=" duration ]
//	              term+ [ "until" term ]
//	term        = ( "[" | "![" ) eventFilter "]" [ joinKeys ] [ "with" "runs" "=" integer ]
//	joinKeys    = "by" field ( "," field )*
//	eventFilter = ( "any" | identifier | string ) "where" expr
//	expr        = or;  or = and ( "or" and )*;  and = not ( "and" not )*
//	not         = "not" not | value
//	value       = sum [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) sum ]
//	sum         = product ( ( "+" | "-" ) product )*
//	product     = unary ( ( "*" | "/" | "%" ) unary )*
//	unary       = ( "-" | "+" ) unary | primary [ predicate ]
//	predicate   = [ "not" ] ( "in" | "in~" ) "(" expr ( "," expr )* ")"
//	            | ( ":" | "like" | "like~" | "regex" | "regex~" ) ( constant | "(" constant ( "," constant )* ")" )
//	primary     = constant | name [ "~" ] "(" [ expr ( "," expr )* ] ")" | field | "(" expr ")"
//	field       = [ "?" ] identifier ( "." identifier )*
//	constant    = string | integer | decimal | "true" | "false" | "null"
//
// Refused with the place: sample and join queries, process relationships
// (`descendant of [...]`), array indexes (`f[0]`), pipes other than head and
// tail, single-quoted and `?"..."` strings, `=` as a comparison, and a few
// sequence forms listed at Parse.
package eql

import (
	"fmt"
	"strings"
	"time"
)

// Pos is a place in a query text: 1-based line and column (in characters),
// and the byte offset.
type Pos struct {
	Offset, Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// SyntaxError is an EQL parse error with the place of the offending token.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s: %s", e.Pos, e.Msg) }

// Node is any node of the AST.
type Node interface {
	// Position is where the node starts in the query text.
	Position() Pos
	// String is the node in canonical EQL: parsing it gives the same AST
	// (positions aside).
	String() string
}

// Statement is a whole EQL query: a single-event query or a sequence, and its
// pipes.
type Statement struct {
	Pos   Pos
	Query Query // *EventQuery or *Sequence
	Pipes []*Pipe
}

// Query is an *EventQuery or a *Sequence.
type Query interface {
	Node
	queryNode()
}

// EventQuery is `<category> where <cond>` (an eventFilter in the grammar):
// the whole query of a single-event rule, or one stage of a sequence.
type EventQuery struct {
	Pos      Pos
	Category *Category
	Cond     Expr
}

// Category is the event category before `where`: `any`, or a name written as
// an identifier or a string. Elasticsearch compares the event category field
// with Name (Equals, case-sensitive); `any` adds no condition.
type Category struct {
	Pos  Pos
	Any  bool
	Name string // unquoted; empty when Any
}

// Sequence is `sequence [by keys] [with maxspan=D] stage stage... [until stage]`.
type Sequence struct {
	Pos     Pos
	By      []*Field // keys shared by every stage (and until); may be empty
	MaxSpan *MaxSpan // nil when the sequence has no maxspan
	Stages  []*Stage // at least two queries once Runs are counted
	Until   *Stage   // nil when there is no until
}

// Stage is one `[ ... ]` of a sequence, or its until.
type Stage struct {
	Pos     Pos
	Missing bool // written `![ ... ]`: a missing event
	Query   *EventQuery
	By      []*Field // the stage's own keys, after the sequence's By
	Runs    int      // `with runs=N` (1 to 100): the stage stands N times in a row; 0 when absent
}

// Keys is the stage's join keys as Elasticsearch builds them: the sequence's
// keys, then the stage's own.
func (s *Stage) Keys(seq *Sequence) []*Field {
	keys := make([]*Field, 0, len(seq.By)+len(s.By))
	return append(append(keys, seq.By...), s.By...)
}

// MaxSpan is a sequence's `with maxspan=<Value><Unit>`.
type MaxSpan struct {
	Pos   Pos
	Value int64  // positive
	Unit  string // "ms", "s", "m", "h" or "d"
}

// Duration is the span as a time.Duration.
func (m *MaxSpan) Duration() time.Duration { return time.Duration(m.Value) * unitDurations[m.Unit] }

var unitDurations = map[string]time.Duration{
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
}

// Pipe is `| head N` or `| tail N`, the pipes Elasticsearch runs.
type Pipe struct {
	Pos   Pos
	Name  string // "head" or "tail"
	Count int    // N, at least 0
}

// Expr is a condition or a value.
type Expr interface {
	Node
	exprNode()
}

// LogicalOp is "and" or "or".
type LogicalOp string

// Logical operators.
const (
	And LogicalOp = "and"
	Or  LogicalOp = "or"
)

// Logical is two or more terms joined by one operator. Chains are flattened
// (`a and (b and c)` has three terms), so no term has the node's own Op.
type Logical struct {
	Pos   Pos
	Op    LogicalOp
	Terms []Expr
}

// Not is `not X`.
type Not struct {
	Pos Pos
	X   Expr
}

// CompareOp is a comparison operator.
type CompareOp string

// Comparison operators. Elasticsearch builds `!=` as not(==).
const (
	Eq  CompareOp = "=="
	Neq CompareOp = "!="
	Lt  CompareOp = "<"
	Lte CompareOp = "<="
	Gt  CompareOp = ">"
	Gte CompareOp = ">="
)

// Compare is `X op Y`. Comparisons do not chain.
type Compare struct {
	Pos   Pos // X's
	OpPos Pos
	Op    CompareOp
	X, Y  Expr
}

// In is `X [not] in (List...)` or `X [not] in~ (List...)`.
type In struct {
	Pos             Pos // X's
	OpPos           Pos // of `in` or `not`
	X               Expr
	List            []Expr // one or more
	Not             bool
	CaseInsensitive bool // in~
}

// MatchOp is one of the pattern operators.
type MatchOp string

// Pattern operators.
const (
	Colon  MatchOp = ":"      // case-insensitive equality with * and ? wildcards
	Like   MatchOp = "like"   // case-sensitive wildcards
	LikeI  MatchOp = "like~"  // case-insensitive wildcards
	Regex  MatchOp = "regex"  // case-sensitive regular expression
	RegexI MatchOp = "regex~" // case-insensitive regular expression
)

// Match is `X op pattern` or `X op (pattern, ...)`: true when any pattern
// matches. Patterns are constants (*String, *Int, *Float, *Bool, *Null).
type Match struct {
	Pos      Pos // X's
	OpPos    Pos
	Op       MatchOp
	X        Expr
	Patterns []Expr
}

// ArithOp is an arithmetic operator.
type ArithOp string

// Arithmetic operators.
const (
	Add ArithOp = "+"
	Sub ArithOp = "-"
	Mul ArithOp = "*"
	Div ArithOp = "/"
	Mod ArithOp = "%"
)

// Arith is `X op Y`.
type Arith struct {
	Pos   Pos // X's
	OpPos Pos
	Op    ArithOp
	X, Y  Expr
}

// Neg is `-X`. (A unary `+` leaves no node, as in Elasticsearch.)
type Neg struct {
	Pos Pos
	X   Expr
}

// Call is a function call `name(args)` or `name~(args)`. Name is as written;
// Elasticsearch looks functions up by lower-cased name.
type Call struct {
	Pos             Pos
	Name            string
	CaseInsensitive bool // written name~(...)
	Args            []Expr
}

// Field is a field reference: identifiers joined by dots, each either plain
// or `backtick quoted`; `?` in front marks it optional.
type Field struct {
	Pos      Pos
	Parts    []string // unquoted
	Optional bool
}

// Name is the field's dotted name, as Elasticsearch builds it.
func (f *Field) Name() string { return strings.Join(f.Parts, ".") }

// String is a string constant, escapes resolved (`"..."` and `"""raw"""`
// alike).
type String struct {
	Pos   Pos
	Value string
}

// Int is an integer constant.
type Int struct {
	Pos   Pos
	Value int64
}

// Float is a decimal constant (or an integer too large for int64 and above
// uint64, which Elasticsearch reads as a double).
type Float struct {
	Pos   Pos
	Value float64
}

// Bool is true or false.
type Bool struct {
	Pos   Pos
	Value bool
}

// Null is null.
type Null struct {
	Pos Pos
}

func (n *Statement) Position() Pos  { return n.Pos }
func (n *EventQuery) Position() Pos { return n.Pos }
func (n *Category) Position() Pos   { return n.Pos }
func (n *Sequence) Position() Pos   { return n.Pos }
func (n *Stage) Position() Pos      { return n.Pos }
func (n *MaxSpan) Position() Pos    { return n.Pos }
func (n *Pipe) Position() Pos       { return n.Pos }
func (n *Logical) Position() Pos    { return n.Pos }
func (n *Not) Position() Pos        { return n.Pos }
func (n *Compare) Position() Pos    { return n.Pos }
func (n *In) Position() Pos         { return n.Pos }
func (n *Match) Position() Pos      { return n.Pos }
func (n *Arith) Position() Pos      { return n.Pos }
func (n *Neg) Position() Pos        { return n.Pos }
func (n *Call) Position() Pos       { return n.Pos }
func (n *Field) Position() Pos      { return n.Pos }
func (n *String) Position() Pos     { return n.Pos }
func (n *Int) Position() Pos        { return n.Pos }
func (n *Float) Position() Pos      { return n.Pos }
func (n *Bool) Position() Pos       { return n.Pos }
func (n *Null) Position() Pos       { return n.Pos }

func (*EventQuery) queryNode() {}
func (*Sequence) queryNode()   {}

func (*Logical) exprNode() {}
func (*Not) exprNode()     {}
func (*Compare) exprNode() {}
func (*In) exprNode()      {}
func (*Match) exprNode()   {}
func (*Arith) exprNode()   {}
func (*Neg) exprNode()     {}
func (*Call) exprNode()    {}
func (*Field) exprNode()   {}
func (*String) exprNode()  {}
func (*Int) exprNode()     {}
func (*Float) exprNode()   {}
func (*Bool) exprNode()    {}
func (*Null) exprNode()    {}
