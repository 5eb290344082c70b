package eql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The lexer follows EqlBase.g4's tokens. Whitespace is space, tab, CR and LF
// only; `// ...` runs to the end of the line and `/* ... */` to the first
// `*/` (ANTLR's non-greedy rule makes a nested `/*` plain text). Every other
// character outside a token is an error, as ANTLR's lexer reports it.

type tokKind uint8

const (
	tEOF         tokKind = iota
	tIdent               // IDENTIFIER: (letter | _ | @) (letter | digit | _)*
	tQuotedIdent         // `...`, two backticks standing for one
	tTildeIdent          // letter (letter | digit | _)* ~ : a case-insensitive function name
	tString              // "...", """..."""
	tInt
	tDecimal

	// keywords
	tAnd
	tAny
	tBy
	tFalse
	tIn
	tInI // in~
	tJoin
	tLike
	tLikeI // like~
	tMaxspan
	tNot
	tNull
	tOf
	tOr
	tRegex
	tRegexI // regex~
	tSample
	tSequence
	tTrue
	tUntil
	tWhere
	tWith

	// operators and punctuation
	tColon
	tAssign // =
	tEq     // ==
	tNeq    // !=
	tLt
	tLte
	tGt
	tGte
	tPlus
	tMinus
	tStar
	tSlash
	tPercent
	tDot
	tComma
	tLBracket
	tRBracket
	tLParen
	tRParen
	tPipe
	tOptional    // ?
	tMissingOpen // ![
)

var keywords = map[string]tokKind{
	"and": tAnd, "any": tAny, "by": tBy, "false": tFalse, "in": tIn, "join": tJoin, "like": tLike,
	"maxspan": tMaxspan, "not": tNot, "null": tNull, "of": tOf, "or": tOr, "regex": tRegex,
	"sample": tSample, "sequence": tSequence, "true": tTrue, "until": tUntil, "where": tWhere, "with": tWith,
}

// tildeKeywords are the keywords that take a `~`; any other word with one is
// a function name.
var tildeKeywords = map[string]tokKind{"in": tInI, "like": tLikeI, "regex": tRegexI}

type token struct {
	kind tokKind
	pos  Pos
	text string // the token as written
	val  string // tString: the value; tIdent, tQuotedIdent, tTildeIdent: the name
}

type lexer struct {
	src  string
	off  int
	line int
	col  int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) pos() Pos { return Pos{Offset: l.off, Line: l.line, Col: l.col} }

// advance moves n bytes on, keeping line and column (in characters).
func (l *lexer) advance(n int) {
	end := l.off + n
	for i := l.off; i < end; i++ {
		c := l.src[i]
		switch {
		case c == '\n':
			l.line++
			l.col = 1
		case c&0xC0 != 0x80:
			l.col++
		}
	}
	l.off = end
}

func (l *lexer) at(i int) byte {
	if l.off+i < len(l.src) {
		return l.src[l.off+i]
	}
	return 0
}

func fail(pos Pos, format string, args ...any) {
	panic(&SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// skip passes over whitespace and comments.
func (l *lexer) skip() {
	for l.off < len(l.src) {
		switch c := l.src[l.off]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.advance(1)
		case c == '/' && l.at(1) == '/':
			n := strings.IndexByte(l.src[l.off:], '\n')
			if n < 0 {
				n = len(l.src) - l.off
			}
			l.advance(n)
		case c == '/' && l.at(1) == '*':
			start := l.pos()
			n := strings.Index(l.src[l.off+2:], "*/")
			if n < 0 {
				fail(start, "comment not closed: /* without */")
			}
			l.advance(n + 4)
		default:
			return
		}
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isIdentChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_'
}

// next scans the next token.
func (l *lexer) next() token {
	l.skip()
	start := l.pos()
	if l.off >= len(l.src) {
		return token{kind: tEOF, pos: start}
	}
	c := l.src[l.off]
	tok := func(kind tokKind, n int) token {
		t := token{kind: kind, pos: start, text: l.src[l.off : l.off+n]}
		l.advance(n)
		return t
	}
	switch {
	case isLetter(c) || c == '_' || c == '@':
		return l.word(start)
	case isDigit(c) || c == '.' && isDigit(l.at(1)):
		return l.number(start)
	case c == '"':
		return l.str(start)
	case c == '`':
		return l.quotedIdent(start)
	case c == '\'':
		fail(start, "strings are written in double quotes (\"...\"), not single quotes")
	case c == '?':
		if d := l.at(1); d == '"' || d == '\'' {
			fail(start, "?%c...%c is not an EQL string; write an unescaped string in triple double quotes (\"\"\"...\"\"\")", d, d)
		}
		return tok(tOptional, 1)
	case c == '!':
		switch l.at(1) {
		case '=':
			return tok(tNeq, 2)
		case '[':
			return tok(tMissingOpen, 2)
		}
		fail(start, "unexpected character \"!\" (expected != or ![)")
	case c == '=':
		if l.at(1) == '=' {
			return tok(tEq, 2)
		}
		return tok(tAssign, 1)
	case c == '<':
		if l.at(1) == '=' {
			return tok(tLte, 2)
		}
		return tok(tLt, 1)
	case c == '>':
		if l.at(1) == '=' {
			return tok(tGte, 2)
		}
		return tok(tGt, 1)
	}
	if k, ok := punct[c]; ok {
		return tok(k, 1)
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.off:])
	fail(start, "unexpected character %s", quoteRune(r))
	panic("unreachable")
}

var punct = map[byte]tokKind{
	':': tColon, '+': tPlus, '-': tMinus, '*': tStar, '/': tSlash, '%': tPercent, '.': tDot,
	',': tComma, '[': tLBracket, ']': tRBracket, '(': tLParen, ')': tRParen, '|': tPipe,
}

func quoteRune(r rune) string {
	if r < 0x20 || r == 0x7f || r > 0x7e {
		return fmt.Sprintf("%q (U+%04X)", r, r)
	}
	return strconv.QuoteRune(r)
}

func (l *lexer) word(start Pos) token {
	i := l.off + 1
	for i < len(l.src) && isIdentChar(l.src[i]) {
		i++
	}
	w := l.src[l.off:i]
	if i < len(l.src) && l.src[i] == '~' && isLetter(w[0]) {
		t := token{kind: tTildeIdent, pos: start, text: l.src[l.off : i+1], val: w}
		if k, ok := tildeKeywords[w]; ok {
			t.kind = k
		}
		l.advance(len(t.text))
		return t
	}
	t := token{kind: tIdent, pos: start, text: w, val: w}
	if k, ok := keywords[w]; ok {
		t.kind = k
	}
	l.advance(len(w))
	return t
}

// number scans INTEGER_VALUE (digits) or DECIMAL_VALUE (digits with a dot,
// a dot with digits, either with an exponent, or digits with an exponent).
func (l *lexer) number(start Pos) token {
	s := l.src
	i := l.off
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	kind := tInt
	if i < len(s) && s[i] == '.' {
		kind = tDecimal
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			kind, i = tDecimal, j
		}
	}
	t := token{kind: kind, pos: start, text: s[l.off:i]}
	l.advance(i - l.off)
	return t
}

// str scans a string: `"` with escapes, or `"""` raw up to the first `"""`
// on the same line (and up to two more quotes, which belong to the value, as
// the grammar's '"""' (~[\r\n])*? '"""' '"'? '"'? has it).
func (l *lexer) str(start Pos) token {
	s := l.src
	if strings.HasPrefix(s[l.off:], `"""`) {
		body := s[l.off+3:]
		n := strings.Index(body, `"""`)
		if n < 0 || strings.ContainsAny(body[:n], "\r\n") {
			fail(start, `raw string not closed: """ without """ on the same line`)
		}
		end := l.off + 3 + n + 3
		for k := 0; k < 2 && end < len(s) && s[end] == '"'; k++ {
			end++
		}
		t := token{kind: tString, pos: start, text: s[l.off:end], val: s[l.off+3 : end-3]}
		l.advance(end - l.off)
		return t
	}
	var b strings.Builder
	i := l.off + 1
	for {
		if i >= len(s) {
			fail(start, "string not closed: \" without \"")
		}
		switch c := s[i]; c {
		case '"':
			t := token{kind: tString, pos: start, text: s[l.off : i+1], val: b.String()}
			l.advance(i + 1 - l.off)
			return t
		case '\r', '\n':
			fail(start, "string not closed before the end of the line (write a line break as \\n)")
		case '\\':
			n := l.escape(&b, i)
			i += n
		default:
			b.WriteByte(c)
			i++
		}
	}
}

// escape decodes the escape at s[i] into b and returns its length.
func (l *lexer) escape(b *strings.Builder, i int) int {
	s := l.src
	if i+1 >= len(s) {
		l.failAt(i, "string not closed: \" without \"")
	}
	switch c := s[i+1]; c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case '"', '\'', '\\':
		b.WriteByte(c)
	case 'u':
		j := i + 2
		if j >= len(s) || s[j] != '{' {
			l.failAt(i, "invalid escape \\u: write a code point as \\u{hhhh} (2 to 8 hex digits)")
		}
		k := j + 1
		for k < len(s) && isHex(s[k]) {
			k++
		}
		if k >= len(s) || s[k] != '}' || k == j+1 {
			l.failAt(i, "invalid escape \\u: write a code point as \\u{hhhh} (2 to 8 hex digits)")
		}
		hex := s[j+1 : k]
		if len(hex) < 2 || len(hex) > 8 {
			l.failAt(i, "\\u{%s} has %d hex digits; a code point takes 2 to 8", hex, len(hex))
		}
		code, err := strconv.ParseUint(hex, 16, 32)
		switch {
		case err != nil || code > utf8.MaxRune:
			l.failAt(i, "\\u{%s} is not a Unicode code point", hex)
		case code >= 0xD800 && code <= 0xDFFF:
			l.failAt(i, "\\u{%s} is a surrogate, not a character", hex)
		}
		b.WriteRune(rune(code))
		return k + 1 - i
	default:
		r, _ := utf8.DecodeRuneInString(s[i+1:])
		l.failAt(i, "invalid escape \\%c in a string (EQL has \\b \\t \\n \\f \\r \\\" \\' \\\\ and \\u{hhhh}; write a backslash as \\\\)", r)
	}
	return 2
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// failAt fails at byte offset off, which is at or after the lexer's place.
func (l *lexer) failAt(off int, format string, args ...any) {
	l.advance(off - l.off)
	fail(l.pos(), format, args...)
}

// quotedIdent scans `...`, where two backticks stand for one.
func (l *lexer) quotedIdent(start Pos) token {
	s := l.src
	var b strings.Builder
	i := l.off + 1
	for {
		n := strings.IndexByte(s[i:], '`')
		if n < 0 {
			fail(start, "quoted field name not closed: ` without `")
		}
		b.WriteString(s[i : i+n])
		i += n
		if i+1 < len(s) && s[i+1] == '`' {
			b.WriteByte('`')
			i += 2
			continue
		}
		t := token{kind: tQuotedIdent, pos: start, text: s[l.off : i+1], val: b.String()}
		l.advance(i + 1 - l.off)
		return t
	}
}
