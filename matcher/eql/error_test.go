package eql

import (
	"errors"
	"strings"
	"testing"
)

// errorCases: queries that must fail, with the place of the offending token
// and a part of the message (what was expected and what was found, or what is
// refused).
var errorCases = []struct{ name, in, at, msg string }{
	// tokens
	{"empty", ``, "1:1", `expected an event category (a name, a string or any) or sequence, found end of query`},
	{"only a comment", `// nothing`, "1:11", `found end of query`},
	{"no where", `process`, "1:8", `expected where, found end of query`},
	{"backticked category", "`process` where true", "1:1", "expected an event category (a name, a string or any) or sequence, found \"`process`\""},
	{"stage outside a sequence", `[a where true]`, "1:1", `found "["`},
	{"upper-case keyword", `PROCESS WHERE a`, "1:9", `expected where, found "WHERE"`},
	{"no condition", `process where`, "1:14", `expected a field, a value, a function call or (, found end of query`},
	{"dangling operator", `process where a ==`, "1:19", `expected a field, a value, a function call or (, found end of query`},
	{"upper-case AND", `process where a == 1 AND b == 2`, "1:22", `expected and, or, a pipe (|) or the end of the query, found "AND"`},
	{"stray token", `any where a ]`, "1:13", `found "]"`},
	{"unknown character", `any where #`, "1:11", `unexpected character '#'`},
	{"bang alone", `any where a !~ b`, "1:13", `unexpected character "!" (expected != or ![)`},
	{"tilde alone", `any where a ~ b`, "1:13", `unexpected character '~'`},
	{"non-ASCII outside a string", `any where "é" == é`, "1:18", `unexpected character 'é' (U+00E9)`},
	{"non-breaking space", "any where a ==\u00a01", "1:15", `(U+00A0)`},
	{"invalid UTF-8", "any where a == \"\xff\"", "1:17", `invalid UTF-8 in query`},
	{"position on a later line", "any where a == 1\n  and b === 2", "2:11", `expected a field, a value, a function call or (, found "="`},
	{"comment not closed", `any where a /* b`, "1:13", `comment not closed`},

	// strings
	{"single quotes", `any where a == 'x'`, "1:16", `double quotes`},
	{"?\" strings", `any where a == ?"x"`, "1:16", `triple double quotes`},
	{"?' strings", `any where a == ?'x'`, "1:16", `triple double quotes`},
	{"string not closed", `any where a == "abc`, "1:16", `string not closed`},
	{"line break in a string", "any where a == \"a\nb\"", "1:16", `before the end of the line`},
	{"unknown escape", `any where a == "a\qb"`, "1:18", `invalid escape \q`},
	{"escaped star", `any where a == "a\*"`, "1:18", `invalid escape \*`},
	{"old unicode escape", `any where a == "\u00e9"`, "1:17", `write a code point as \u{hhhh}`},
	{"one hex digit", `any where a == "\u{1}"`, "1:17", `\u{1} has 1 hex digits`},
	{"nine hex digits", `any where a == "\u{000000041}"`, "1:17", `has 9 hex digits`},
	{"empty unicode escape", `any where a == "\u{}"`, "1:17", `write a code point as \u{hhhh}`},
	{"surrogate", `any where a == "\u{d800}"`, "1:17", `surrogate`},
	{"beyond Unicode", `any where a == "\u{110000}"`, "1:17", `not a Unicode code point`},
	{"raw string not closed", `any where a == """abc""`, "1:16", `raw string not closed`},
	{"raw string across lines", "any where a == \"\"\"a\nb\"\"\"", "1:16", `raw string not closed`},
	{"quoted name not closed", "any where `abc == 1", "1:11", "quoted field name not closed"},

	// expressions
	{"= as a comparison", `any where a = 1`, "1:13", `= is not a comparison in EQL: use ==`},
	{"chained comparison", `any where a < b < c`, "1:17", `comparisons do not chain`},
	{"not like", `any where a not like "x"`, "1:17", `expected in or in~ after not, found "like"`},
	{"not at the end", `any where a not`, "1:16", `expected in or in~ after not, found end of query`},
	{"field after :", `any where a : b`, "1:15", `expected a string, number, true, false or null after :, found "b"`},
	{"negative number after like", `any where a like -1`, "1:18", `expected a string, number, true, false or null after like`},
	{"empty pattern list", `any where a like ()`, "1:19", `in the list after like, found ")"`},
	{"pattern list not closed", `any where a regex ("x" "y")`, "1:24", `expected , or ) in the list after regex, found string "\"y\""`},
	{"in without a list", `any where a in "x"`, "1:16", `expected ( after in, found string`},
	{"empty in list", `any where a in~ ()`, "1:18", `expected a field, a value, a function call or (, found ")"`},
	{"in list not closed", `any where a in (1, 2`, "1:21", `expected , or ) in the list after in, found end of query`},
	{"group not closed", `any where (a or b`, "1:18", `expected and, or or ) closing (, found end of query`},
	{"arguments not closed", `any where f(a b)`, "1:15", `expected , or ) in the arguments of f, found "b"`},
	{"empty argument", `any where f(a,)`, "1:15", `found ")"`},
	{"tilde name without a call", `any where a~ == 1`, "1:11", `a~ is not a field name`},
	{"backticked call", "any where `f`(a)", "1:14", `found "("`},
	{"optional without a name", `any where ?`, "1:12", `expected a field name after ?, found end of query`},
	{"optional call", `any where ?f(a)`, "1:13", `found "("`},
	{"dot at the end", `any where a. == 1`, "1:14", `expected a field name after . (quote a keyword in backticks), found "=="`},
	{"keyword in a name", `any where event.sequence == 1`, "1:17", `found "sequence"`},
	{"array index", `any where a.b[0] == 1`, "1:15", `array indexes are not supported`},
	{"process relationship", `any where descendant of [process where true]`, "1:11", `process relationships (descendant of [...]) are not supported`},
	{"integer in the unsigned long range", `any where a == 18446744073709551615`, "1:16", `integer 18446744073709551615 is out of range`},
	{"decimal too large", `any where a == 1e999`, "1:16", `number 1e999 is too large`},
	{"not as an operand", `any where a == not b`, "1:16", `found "not"`},

	// queries
	{"sample", `sample by h [a where true] [b where true]`, "1:1", `sample queries are not supported`},
	{"join", `join [a where true] [b where true]`, "1:1", `join queries are not supported`},
	{"one query", `sequence [a where true]`, "1:1", `a sequence needs at least two queries, found 1`},
	{"one query and until", `sequence [a where true] until [b where true]`, "1:1", `at least two queries, found 1`},
	{"no query", `sequence by a`, "1:14", `expected [ starting the first query of the sequence, found end of query`},
	{"stage not closed", `sequence [a where x [b where y]`, "1:21", `expected and, or or ] closing the query, found "["`},
	{"by after with", `sequence with maxspan=5m by x [a where true] [b where true]`, "1:26", `sequence by must come before with maxspan`},
	{"by twice", `sequence by x with maxspan=5m by y [a where true] [b where true]`, "1:31", `expected [ starting the first query of the sequence, found "by"`},
	{"long token in a message", `any where a == 1 abcdefghijklmnopqrstuvwxyz0123`, "1:18", `found "abcdefghijklmnopqrstuvwx..."`},
	{"decimal maxspan", `sequence with maxspan=1.5m [a where true] [b where true]`, "1:23", `maxspan must be a whole number, found 1.5`},
	{"zero maxspan", `sequence with maxspan=0s [a where true] [b where true]`, "1:23", `maxspan must be positive, found 0`},
	{"maxspan without a unit", `sequence with maxspan=5 [a where true] [b where true]`, "1:23", `maxspan 5 has no time unit (ms, s, m, h or d), found "[" after it`},
	{"unknown unit", `sequence with maxspan=5w [a where true] [b where true]`, "1:24", `unknown time unit "w"`},
	{"long unit", `sequence with maxspan=5 minutes [a where true] [b where true]`, "1:25", `unknown time unit "minutes"`},
	{"maxspan too large", `sequence with maxspan=9999999999999d [a where true] [b where true]`, "1:23", `too large`},
	{"maxspan without =", `sequence with maxspan 5m [a where true] [b where true]`, "1:23", `expected = after maxspan, found "5"`},
	{"with without maxspan", `sequence with runs=2 [a where true] [b where true]`, "1:15", `expected maxspan after with, found "runs"`},
	{"missing event without maxspan", `sequence [a where true] ![b where true]`, "1:25", `needs with maxspan`},
	{"only missing events", `sequence with maxspan=1m ![a where true] ![b where true]`, "1:1", `at least one query that is not a missing event`},
	{"missing event in until", `sequence [a where true] [b where true] until ![c where true]`, "1:40", `until cannot be a missing event`},
	{"runs in until", `sequence [a where true] [b where true] until [c where true] with runs=2`, "1:40", `until cannot have with runs`},
	{"until without a query", `sequence [a where true] [b where true] until c`, "1:46", `expected [ after until, found "c"`},
	{"uneven keys", `sequence by x [a where true] by y [b where true]`, "1:35", `inconsistent number of join keys: the first query has 2 and this one 1`},
	{"uneven keys in until", `sequence [a where true] by x [b where true] by y until [c where true]`, "1:56", `the first query has 1 and this one 0`},
	{"key that is not a field", `sequence [a where true] by f(x) [b where true] by y`, "1:28", `a join key must be a field, found f(x)`},
	{"key that is a comparison", `sequence by x == 1 [a where true] [b where true]`, "1:13", `a join key must be a field, found x == 1`},
	{"runs zero", `sequence [a where true] with runs=0 [b where true]`, "1:35", `runs must be from 1 to 100, found 0`},
	{"runs too many", `sequence [a where true] with runs=101 [b where true]`, "1:35", `found 101`},
	{"runs decimal", `sequence [a where true] with runs=1.5 [b where true]`, "1:35", `expected an integer from 1 to 100 after runs=, found "1.5"`},
	{"other stage setting", `sequence [a where true] with fork=1 [b where true]`, "1:30", `expected runs (the only setting of a sequence query), found "fork"`},
	{"stage maxspan", `sequence [a where true] with maxspan=1m [b where true]`, "1:30", `found "maxspan"`},
	{"trailing tokens after a sequence", `sequence [a where true] [b where true] x`, "1:40", `expected [, ![, until, a pipe (|) or the end of the query, found "x"`},
	{"bang space bracket", `sequence with maxspan=1m [a where true] ! [b where true]`, "1:41", `unexpected character "!"`},

	// pipes
	{"unsupported pipe", `any where a | sort a`, "1:15", `pipe sort is not supported (Elasticsearch runs only head and tail)`},
	{"unique pipe", `any where a | unique a`, "1:15", `pipe unique is not supported`},
	{"unknown pipe", `any where a | top 5`, "1:15", `unknown pipe "top"`},
	{"pipe without a name", `any where a | 5`, "1:15", `expected a pipe name (head or tail) after |, found "5"`},
	{"head without a count", `any where a | head`, "1:15", `pipe head takes exactly one argument, found 0`},
	{"head with two counts", `any where a | head 1, 2`, "1:15", `found 2`},
	{"negative head", `any where a | head -1`, "1:20", `pipe head takes a whole number from 0 to 2147483647, found -1`},
	{"head of a field", `any where a | tail x`, "1:20", `found x`},
	{"huge head", `any where a | head 2147483648`, "1:20", `found 2147483648`},
	{"tokens after a pipe", `any where a | head 1 where`, "1:22", `expected a pipe (|) or the end of the query, found "where"`},
}

func TestSyntaxErrors(t *testing.T) {
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			st, err := Parse(c.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error at %s", c.in, st, c.at)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error of type %T: %v", c.in, err, err)
			}
			if se.Pos.String() != c.at || !strings.Contains(se.Msg, c.msg) {
				t.Fatalf("Parse(%q):\n got %v\nwant %s: ...%s...", c.in, err, c.at, c.msg)
			}
			if err.Error() != se.Pos.String()+": "+se.Msg {
				t.Fatalf("Error() = %q", err.Error())
			}
			assertPosConsistent(t, c.in, se.Pos)
		})
	}
}

// assertPosConsistent checks that p's line and column are those of its
// offset in src.
func assertPosConsistent(t *testing.T, src string, p Pos) {
	t.Helper()
	if p.Offset < 0 || p.Offset > len(src) {
		t.Fatalf("position %+v outside the query (%d bytes)", p, len(src))
	}
	before := src[:p.Offset]
	line := strings.Count(before, "\n") + 1
	col := len([]rune(before[strings.LastIndexByte(before, '\n')+1:])) + 1
	if p.Line != line || p.Col != col {
		t.Fatalf("position %+v: offset %d is at %d:%d", p, p.Offset, line, col)
	}
}

func TestParseExprErrors(t *testing.T) {
	for in, want := range map[string]string{
		``:              `1:1: expected a field, a value, a function call or (, found end of query`,
		`a == 1 b`:      `1:8: expected and, or or the end of the expression, found "b"`,
		`a == 1 | head`: `1:8: expected and, or or the end of the expression, found "|"`,
	} {
		if _, err := ParseExpr(in); err == nil || err.Error() != want {
			t.Errorf("ParseExpr(%q) = %v, want %s", in, err, want)
		}
	}
}
