package esql

// The parsed query: a source command and the processing commands piped
// after it. Offsets are bytes in the query text; the compiler turns them
// into places for its errors.

type exprKind uint8

const (
	exLit    exprKind = iota // a literal: lit
	exSpan                   // a time span literal: n units
	exArray                  // [a, b, ...] of literals: args
	exField                  // a column or field: name
	exCall                   // name(args...); star for name(*)
	exNeg                    // -args[0]
	exArith                  // args[0] op args[1]: + - * / %
	exCmp                    // args[0] op args[1]: == != < <= > >=
	exAnd                    // args[0] and args[1]
	exOr                     // args[0] or args[1]
	exNot                    // not args[0]
	exIn                     // args[0] [not] in (args[1:]...)
	exIsNull                 // args[0] is [not] null
	exLike                   // args[0] [not] like patterns
	exRLike                  // args[0] [not] rlike patterns
	exCast                   // args[0] :: name
)

// litKind is the kind of a literal as written.
type litKind uint8

const (
	litNull litKind = iota
	litBool
	litInt     // text holds the digits
	litDecimal // text holds the number
	litString
)

type expr struct {
	kind     exprKind
	pos, end int
	op       string // operator; function, field, cast type or span unit
	name     string
	lit      litKind
	text     string // literal text (unescaped for strings)
	neg      bool   // NOT IN, NOT LIKE, IS NOT NULL
	star     bool   // name(*)
	args     []*expr
	patterns []string // LIKE / RLIKE patterns
	patPos   []int
}

type cmdKind uint8

const (
	cmdFrom cmdKind = iota
	cmdWhere
	cmdEval
	cmdStats
	cmdKeep
	cmdDrop
	cmdRename
	cmdSort
	cmdLimit
	cmdDissect
	cmdGrok
	cmdMvExpand
)

var cmdNames = [...]string{"FROM", "WHERE", "EVAL", "STATS", "KEEP", "DROP", "RENAME", "SORT", "LIMIT", "DISSECT", "GROK", "MV_EXPAND"}

func (k cmdKind) String() string { return cmdNames[k] }

// field is `[name =] expr [WHERE filter]` in EVAL, STATS and BY.
type field struct {
	name    string // "" when unnamed: the column is named by the expression's text
	namePos int
	e       *expr
	filter  *expr
}

// namePattern is a column name in KEEP, DROP, RENAME or MV_EXPAND; `*` in
// an unquoted part is a wildcard.
type namePattern struct {
	text     string
	wildcard bool
	pos      int
}

type rename struct{ from, to namePattern }

type order struct {
	e          *expr
	desc       bool
	nullsFirst bool // after defaults: ASC puts nulls last, DESC first
}

type command struct {
	kind     cmdKind
	pos, end int
	indices  []string
	metadata []string
	cond     *expr
	fields   []field
	by       []field
	names    []namePattern
	renames  []rename
	orders   []order
	limit    int
	input    *expr
	pattern  []string // DISSECT: one; GROK: one or more
	patPos   []int
	appendSp string
}

type query struct {
	cmds []command
}
