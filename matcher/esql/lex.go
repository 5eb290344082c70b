package esql

import (
	"strings"
)

// The lexer follows the ES|QL grammar's lexer (EsqlBaseLexer.g4 and its
// lexer/*.g4 modes) for what the parser here accepts: keywords and function
// names are case-insensitive, field names are not; `//` and `/* */`
// comments (which nest) are whitespace; a string is "..." with the escapes
// \t \n \r \" \\ only, or """...""" on one line with no escapes at all.
// Tokens are scanned on demand from the parser's position in one of three
// modes, as the grammar's modes do: expressions, FROM's index patterns, and
// the name patterns of KEEP, DROP, RENAME and MV_EXPAND.

type tokKind uint8

const (
	tkEOF     tokKind = iota
	tkIdent           // an unquoted identifier, as written
	tkQuoted          // a `quoted` identifier, unquoted
	tkString          // a string literal, unescaped
	tkInt             // an integer literal: digits
	tkDecimal         // a decimal literal
	tkSource          // FROM mode: an unquoted index pattern
	tkPattern         // name mode: a name part that may hold *
	tkPipe            // |
	tkComma
	tkDot
	tkLP
	tkRP
	tkLB // [
	tkRB // ]
	tkLBrace
	tkRBrace
	tkAssign  // =
	tkEq      // ==
	tkCIEq    // =~
	tkNeq     // !=
	tkLt      // <
	tkLte     // <=
	tkGt      // >
	tkGte     // >=
	tkPlus    // +
	tkMinus   // -
	tkStar    // *
	tkSlash   // /
	tkPercent // %
	tkCast    // ::
	tkColon   // :
	tkParam   // ?
)

var tokNames = map[tokKind]string{
	tkEOF: "end of query", tkPipe: "'|'", tkComma: "','", tkDot: "'.'", tkLP: "'('", tkRP: "')'",
	tkLB: "'['", tkRB: "']'", tkLBrace: "'{'", tkRBrace: "'}'", tkAssign: "'='", tkEq: "'=='", tkCIEq: "'=~'",
	tkNeq: "'!='", tkLt: "'<'", tkLte: "'<='", tkGt: "'>'", tkGte: "'>='", tkPlus: "'+'", tkMinus: "'-'",
	tkStar: "'*'", tkSlash: "'/'", tkPercent: "'%'", tkCast: "'::'", tkColon: "':'", tkParam: "'?'",
}

type token struct {
	kind     tokKind
	text     string // identifier or literal text (strings unescaped)
	pos, end int    // byte offsets in the query
}

func (t token) describe() string {
	switch t.kind {
	case tkIdent, tkPattern, tkSource, tkInt, tkDecimal:
		return "'" + t.text + "'"
	case tkQuoted:
		return "`" + t.text + "`"
	case tkString:
		return "a string"
	}
	return tokNames[t.kind]
}

// is reports whether t is the keyword kw (lower case), which the grammar
// matches case-insensitively.
func (t token) is(kw string) bool { return t.kind == tkIdent && strings.EqualFold(t.text, kw) }

// reserved are the expression mode's keywords: they are never field or
// function names.
var reserved = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "is": true, "like": true, "rlike": true,
	"null": true, "true": true, "false": true, "by": true, "asc": true, "desc": true, "nulls": true,
	"first": true, "last": true, "where": true,
}

func isReserved(s string) bool { return len(s) <= 5 && reserved[strings.ToLower(s)] }

type lexMode uint8

const (
	modeExpr lexMode = iota
	modeSource
	modeName
)

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isIDBody(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' }

// skipSpace steps over whitespace and comments from off; an unterminated
// block comment is an error at its start.
func (p *parser) skipSpace(off int) int {
	s := p.src
	for off < len(s) {
		switch c := s[off]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			off++
		case c == '/' && off+1 < len(s) && s[off+1] == '/':
			for off < len(s) && s[off] != '\n' && s[off] != '\r' {
				off++
			}
		case c == '/' && off+1 < len(s) && s[off+1] == '*':
			start, depth := off, 0
			for {
				if off+1 >= len(s) {
					p.fail(start, "unterminated comment")
				}
				if s[off] == '/' && s[off+1] == '*' {
					depth++
					off += 2
				} else if s[off] == '*' && s[off+1] == '/' {
					depth--
					off += 2
					if depth == 0 {
						break
					}
				} else {
					off++
				}
			}
		default:
			return off
		}
	}
	return off
}

// scan reads the token at off in mode m.
func (p *parser) scan(off int, m lexMode) token {
	off = p.skipSpace(off)
	s := p.src
	if off >= len(s) {
		return token{kind: tkEOF, pos: off, end: off}
	}
	c := s[off]
	tok := func(k tokKind, n int) token { return token{kind: k, text: s[off : off+n], pos: off, end: off + n} }
	switch c {
	case '|':
		return tok(tkPipe, 1)
	case ',':
		return tok(tkComma, 1)
	case '"':
		return p.scanString(off)
	}
	switch m {
	case modeSource:
		if c == '(' || c == ')' || c == '[' || c == ']' {
			p.fail(off, "subqueries and bracketed sources are not supported in FROM")
		}
		end := off
		for end < len(s) && !strings.ContainsRune(" \t\r\n,|\"()[]", rune(s[end])) {
			if s[end] == '/' && end+1 < len(s) && (s[end+1] == '/' || s[end+1] == '*') {
				break
			}
			end++
		}
		return token{kind: tkSource, text: s[off:end], pos: off, end: end}
	case modeName:
		switch {
		case c == '`':
			return p.scanQuoted(off)
		case c == '.':
			return tok(tkDot, 1)
		case c == '=':
			return tok(tkAssign, 1)
		case isIDBody(c) || c == '@' || c == '*':
			end := off
			for end < len(s) && (isIDBody(s[end]) || s[end] == '@' || s[end] == '*') {
				end++
			}
			return token{kind: tkPattern, text: s[off:end], pos: off, end: end}
		}
		p.fail(off, "unexpected character %q", rune(c))
	}
	switch {
	case isDigit(c) || c == '.' && off+1 < len(s) && isDigit(s[off+1]):
		return p.scanNumber(off)
	case isLetter(c):
		end := off + 1
		for end < len(s) && isIDBody(s[end]) {
			end++
		}
		return token{kind: tkIdent, text: s[off:end], pos: off, end: end}
	case c == '_' || c == '@':
		end := off + 1
		for end < len(s) && isIDBody(s[end]) {
			end++
		}
		if end == off+1 {
			p.fail(off, "%q alone is not an identifier", rune(c))
		}
		return token{kind: tkIdent, text: s[off:end], pos: off, end: end}
	case c == '`':
		return p.scanQuoted(off)
	}
	two := ""
	if off+1 < len(s) {
		two = s[off : off+2]
	}
	switch two {
	case "==":
		return tok(tkEq, 2)
	case "=~":
		return tok(tkCIEq, 2)
	case "!=":
		return tok(tkNeq, 2)
	case "<=":
		return tok(tkLte, 2)
	case ">=":
		return tok(tkGte, 2)
	case "::":
		return tok(tkCast, 2)
	}
	switch c {
	case '.':
		return tok(tkDot, 1)
	case '(':
		return tok(tkLP, 1)
	case ')':
		return tok(tkRP, 1)
	case '[':
		return tok(tkLB, 1)
	case ']':
		return tok(tkRB, 1)
	case '{':
		return tok(tkLBrace, 1)
	case '}':
		return tok(tkRBrace, 1)
	case '=':
		return tok(tkAssign, 1)
	case '<':
		return tok(tkLt, 1)
	case '>':
		return tok(tkGt, 1)
	case '+':
		return tok(tkPlus, 1)
	case '-':
		return tok(tkMinus, 1)
	case '*':
		return tok(tkStar, 1)
	case '/':
		return tok(tkSlash, 1)
	case '%':
		return tok(tkPercent, 1)
	case ':':
		return tok(tkColon, 1)
	case '?':
		return tok(tkParam, 1)
	}
	p.fail(off, "unexpected character %q", rune(c))
	return token{}
}

// scanString reads "..." (escapes \t \n \r \" \\; no line breaks) or
// """...""" (one line, no escapes; up to two more quotes at the end belong
// to the text).
func (p *parser) scanString(off int) token {
	s := p.src
	if strings.HasPrefix(s[off:], `"""`) {
		i := off + 3
		for {
			if i >= len(s) || s[i] == '\n' || s[i] == '\r' {
				p.fail(off, "unterminated string")
			}
			if strings.HasPrefix(s[i:], `"""`) {
				break
			}
			i++
		}
		end := i + 3
		for k := 0; k < 2 && end < len(s) && s[end] == '"'; k++ {
			end++
		}
		return token{kind: tkString, text: s[off+3 : end-3], pos: off, end: end}
	}
	var b strings.Builder
	i := off + 1
	for {
		if i >= len(s) || s[i] == '\n' || s[i] == '\r' {
			p.fail(off, "unterminated string")
		}
		c := s[i]
		if c == '"' {
			return token{kind: tkString, text: b.String(), pos: off, end: i + 1}
		}
		if c == '\\' {
			if i+1 >= len(s) {
				p.fail(off, "unterminated string")
			}
			switch s[i+1] {
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case '"':
				b.WriteByte('"')
			case '\\':
				b.WriteByte('\\')
			default:
				p.fail(i, "invalid escape \\%c in a string (ES|QL accepts \\t \\n \\r \\\" \\\\; write the pattern in \"\"\"...\"\"\" to keep backslashes)", s[i+1])
			}
			i += 2
			continue
		}
		b.WriteByte(c)
		i++
	}
}

// scanQuoted reads a `quoted` identifier; “ inside stands for one `.
func (p *parser) scanQuoted(off int) token {
	s := p.src
	var b strings.Builder
	i := off + 1
	for {
		if i >= len(s) {
			p.fail(off, "unterminated quoted identifier")
		}
		if s[i] == '`' {
			if i+1 < len(s) && s[i+1] == '`' {
				b.WriteByte('`')
				i += 2
				continue
			}
			if i == off+1 {
				p.fail(off, "empty quoted identifier")
			}
			return token{kind: tkQuoted, text: b.String(), pos: off, end: i + 1}
		}
		b.WriteByte(s[i])
		i++
	}
}

// scanNumber reads an integer (digits) or a decimal (1.5, 1., .5, 1e5).
func (p *parser) scanNumber(off int) token {
	s := p.src
	i := off
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	dec := false
	if i < len(s) && s[i] == '.' && !(i+1 < len(s) && (isLetter(s[i+1]) || s[i+1] == '_' || s[i+1] == '@' || s[i+1] == '`')) {
		dec = true
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
			dec, i = true, j
		}
	}
	k := tkInt
	if dec {
		k = tkDecimal
	}
	return token{kind: k, text: s[off:i], pos: off, end: i}
}
