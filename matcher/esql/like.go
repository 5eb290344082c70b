package esql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/matcher"
)

// LIKE and RLIKE match the whole value, case-sensitively.
//
// LIKE is Lucene's wildcard syntax (WildcardPattern.java, built with
// WildcardQuery.toAutomaton): `*` is any run of characters, `?` one
// character (a code point), `\` makes the next * ? or \ literal.
//
// RLIKE is Lucene's RegExp with every optional syntax flag on
// (RLikePattern.java: RegExp.ALL), translated here into Go's regexp:
// `.` is any character, newlines included; `"..."` is a literal string;
// `\` makes any other character literal, except that \d \D \s \S \w \W are
// the ASCII classes [0-9], [ \t\n\r], [a-zA-Z_0-9] and their complements;
// `@` is any string and `#` the empty language. Intersection (&),
// complement (~) and numeric intervals (<1-9>) have no counterpart in Go's
// regexp and are refused when the rule loads.

// strMatcher tests a whole value.
type strMatcher func(string) bool

// compileLike turns a LIKE pattern into a matcher; msg is why it is refused.
func compileLike(pat string) (strMatcher, string) {
	var parts []string // literal parts between * wildcards
	var cur strings.Builder
	hasQ := false
	for i := 0; i < len(pat); i++ {
		switch ch := pat[i]; ch {
		case '\\':
			if i+1 >= len(pat) {
				return nil, "invalid sequence: the escape character \\ ends the pattern"
			}
			switch pat[i+1] {
			case '*', '?', '\\':
				cur.WriteByte(pat[i+1])
				i++
			default:
				return nil, "invalid sequence: the escape character \\ is not followed by *, ? or \\"
			}
		case '*':
			parts = append(parts, cur.String())
			cur.Reset()
		case '?':
			hasQ = true
			cur.WriteByte(0) // placeholder, only used when hasQ is false
		default:
			cur.WriteByte(ch)
		}
	}
	parts = append(parts, cur.String())
	if hasQ {
		var b strings.Builder
		b.WriteString(`(?s)\A`)
		for i := 0; i < len(pat); i++ {
			switch ch := pat[i]; ch {
			case '\\':
				b.WriteString(regexp.QuoteMeta(pat[i+1 : i+2]))
				i++
			case '*':
				b.WriteString(`.*`)
			case '?':
				b.WriteString(`.`)
			default:
				r, n := utf8.DecodeRuneInString(pat[i:])
				b.WriteString(regexp.QuoteMeta(string(r)))
				i += n - 1
			}
		}
		b.WriteString(`\z`)
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, err.Error()
		}
		return re.MatchString, ""
	}
	if len(parts) == 1 {
		lit := parts[0]
		return func(s string) bool { return s == lit }, ""
	}
	return wildcard(parts), ""
}

// wildcard matches the parts joined by `*` (any run of characters) over
// the whole value: the core's wildcard query on a keyword.
func wildcard(parts []string) strMatcher {
	p := matcher.Wildcard(parts)
	return func(s string) bool {
		v := matcher.Value{Text: s}
		return p.Test(&v)
	}
}

// compileRLike translates a Lucene regular expression into Go's, anchored
// at both ends.
func compileRLike(pat string) (strMatcher, string) {
	t := luceneRE{src: pat}
	body, msg := t.translate()
	if msg != "" {
		return nil, msg
	}
	re, err := regexp.Compile(`(?s)\A(?:` + body + `)\z`)
	if err != nil {
		return nil, "cannot run the regular expression: " + err.Error()
	}
	return re.MatchString, ""
}

// luceneRE walks Lucene's RegExp grammar (RegExp.java):
//
//	union = inter ('|' union)?      inter = concat ('&' inter)?
//	concat = repeat concat?         repeat = compl ('?' | '*' | '+' | '{n}' | '{n,}' | '{n,m}')*
//	compl = '~' compl | charclass   charclass = '[' '^'? classes ']' | simple
//	simple = '.' | '#' | '@' | '"' string '"' | '(' ')' | '(' union ')' | '<' ... '>' | charexp
type luceneRE struct {
	src   string
	pos   int
	depth int
	msg   string
}

func (t *luceneRE) more() bool { return t.pos < len(t.src) }

func (t *luceneRE) peekIs(chars string) bool {
	if !t.more() {
		return false
	}
	r, _ := utf8.DecodeRuneInString(t.src[t.pos:])
	return strings.ContainsRune(chars, r)
}

func (t *luceneRE) match(c byte) bool {
	if t.more() && t.src[t.pos] == c {
		t.pos++
		return true
	}
	return false
}

func (t *luceneRE) next() (rune, bool) {
	if !t.more() {
		t.refuse("unexpected end of the regular expression")
		return 0, false
	}
	r, n := utf8.DecodeRuneInString(t.src[t.pos:])
	t.pos += n
	return r, true
}

func (t *luceneRE) refuse(format string, args ...any) {
	if t.msg == "" {
		t.msg = fmt.Sprintf(format, args...)
	}
}

func (t *luceneRE) translate() (string, string) {
	if t.src == "" {
		return "", ""
	}
	out := t.union()
	if t.msg == "" && t.more() {
		t.refuse("end of the regular expression expected at position %d", t.pos)
	}
	return out, t.msg
}

func (t *luceneRE) union() string {
	t.depth++
	defer func() { t.depth-- }()
	if t.depth > maxDepth {
		t.refuse("regular expression nested too deeply")
		return ""
	}
	// Alternatives one after another (not a level each: Elasticsearch
	// takes hundreds of them).
	var b strings.Builder
	b.WriteString(t.inter())
	for t.msg == "" && t.match('|') {
		b.WriteByte('|')
		b.WriteString(t.inter())
	}
	return b.String()
}

func (t *luceneRE) inter() string {
	e := t.concat()
	if t.peekIs("&") {
		t.refuse("the intersection operator & has no equivalent here (escape it as \\& to match the character)")
	}
	return e
}

func (t *luceneRE) concat() string {
	var b strings.Builder
	for t.msg == "" && t.more() && !t.peekIs(")|&") {
		b.WriteString(t.repeat())
	}
	return b.String()
}

func (t *luceneRE) repeat() string {
	e := "(?:" + t.compl() + ")"
	// Each operator wraps what it repeats: a level of nesting, and a copy
	// of it (thousands stacked on one atom took seconds to write out).
	for stacked := 0; t.msg == "" && t.peekIs("?*+{"); stacked++ {
		if stacked == maxDepth {
			t.refuse("more than %d repeat operators on one atom", maxDepth)
			return ""
		}
		switch {
		case t.match('?'):
			e = "(?:" + e + ")?"
		case t.match('*'):
			e = "(?:" + e + ")*"
		case t.match('+'):
			e = "(?:" + e + ")+"
		case t.match('{'):
			n := t.digits()
			m := n
			if t.match(',') {
				m = ""
				if t.peekIs("0123456789") {
					m = t.digits()
				}
			}
			if !t.match('}') {
				t.refuse("expected '}' at position %d", t.pos)
				return ""
			}
			if m == n {
				e = "(?:" + e + "){" + n + "}"
			} else {
				e = "(?:" + e + "){" + n + "," + m + "}"
			}
		}
	}
	return e
}

func (t *luceneRE) digits() string {
	start := t.pos
	for t.peekIs("0123456789") {
		t.pos++
	}
	if start == t.pos {
		t.refuse("integer expected at position %d", t.pos)
	}
	s := t.src[start:t.pos]
	if n, err := strconv.Atoi(s); err != nil || n > 1000 {
		t.refuse("repetition count %s is above 1000", s)
	}
	return s
}

func (t *luceneRE) compl() string {
	if t.peekIs("~") {
		t.refuse("the complement operator ~ has no equivalent here (escape it as \\~ to match the character)")
		return ""
	}
	if t.match('[') {
		neg := t.match('^')
		var b strings.Builder
		for {
			b.WriteString(t.classItem())
			if t.msg != "" {
				return ""
			}
			if !t.more() || t.peekIs("]") {
				break
			}
		}
		if !t.match(']') {
			t.refuse("expected ']' at position %d", t.pos)
			return ""
		}
		if neg {
			return "[^" + b.String() + "]"
		}
		return "[" + b.String() + "]"
	}
	return t.simple()
}

// classItem is one item of a character class: a predefined class, a
// character or a range of characters.
func (t *luceneRE) classItem() string {
	if p, ok := t.predefined(true); ok {
		return p
	}
	c, ok := t.charExp()
	if !ok {
		return ""
	}
	if t.match('-') {
		d, ok := t.charExp()
		if !ok {
			return ""
		}
		if d < c {
			t.refuse("invalid range: from (%d) cannot be > to (%d)", c, d)
			return ""
		}
		return quoteRuneInClass(c) + "-" + quoteRuneInClass(d)
	}
	return quoteRuneInClass(c)
}

var predefinedIn = map[byte]string{'d': `0-9`, 's': ` \t\n\r`, 'w': `a-zA-Z_0-9`}

// predefined reads \d \D \s \S \w \W; other escapes of letters are errors
// in Lucene (as in java.util.regex), a backslash before anything else is
// the character itself.
func (t *luceneRE) predefined(inClass bool) (string, bool) {
	if !t.peekIs(`\`) || t.pos+1 >= len(t.src) {
		return "", false
	}
	c := t.src[t.pos+1]
	switch c {
	case 'd', 's', 'w':
		t.pos += 2
		if inClass {
			return predefinedIn[c], true
		}
		return "[" + predefinedIn[c] + "]", true
	case 'D', 'S', 'W':
		t.pos += 2
		if inClass {
			// Go's \D and \W are Lucene's; Go's \S also leaves out \f,
			// which Lucene's \s does not hold.
			if c == 'S' {
				return `\S\f`, true
			}
			return `\` + string(c), true
		}
		return "[^" + predefinedIn[c+'a'-'A'] + "]", true
	}
	if c != 'd' && c != 's' && c != 'w' && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		t.refuse("invalid character class \\%c", c)
		return "", true
	}
	return "", false
}

// charExp reads a character, escaped or not.
func (t *luceneRE) charExp() (rune, bool) {
	t.match('\\')
	return t.next()
}

func (t *luceneRE) simple() string {
	switch {
	case t.match('.'):
		return "."
	case t.match('#'):
		return `[^\x00-\x{10FFFF}]`
	case t.match('@'):
		return ".*"
	case t.match('"'):
		start := t.pos
		for t.more() && t.src[t.pos] != '"' {
			t.pos++
		}
		if !t.match('"') {
			t.refuse("expected '\"' at position %d", t.pos)
			return ""
		}
		return regexp.QuoteMeta(t.src[start : t.pos-1])
	case t.match('('):
		if t.match(')') {
			return ""
		}
		e := t.union()
		if t.msg == "" && !t.match(')') {
			t.refuse("expected ')' at position %d", t.pos)
		}
		return e
	case t.peekIs("<"):
		t.refuse("numeric intervals and named automata <...> have no equivalent here (escape it as \\< to match the character)")
		return ""
	}
	if p, ok := t.predefined(false); ok {
		return p
	}
	c, ok := t.charExp()
	if !ok {
		return ""
	}
	return regexp.QuoteMeta(string(c))
}

func quoteRuneInClass(r rune) string {
	switch r {
	case '\\', ']', '[', '^', '-':
		return `\` + string(r)
	}
	if r < 0x20 || r == 0x7f {
		return `\x{` + strconv.FormatInt(int64(r), 16) + `}`
	}
	return string(r)
}

// like compiles `x [NOT] LIKE pattern(s)` and `x [NOT] RLIKE pattern(s)`:
// true when a pattern matches the whole value, null when x is null or
// multi-valued.
func (c *compiler) like(e *expr, s scope) cexpr {
	x := c.expr(e.args[0], s)
	op := "LIKE"
	if e.kind == exRLike {
		op = "RLIKE"
	}
	if x.t != tyKeyword && x.t != tyNull {
		c.fail(e.pos, "%s needs a keyword, found [%s] of type %s", op, c.text(e.args[0]), x.t)
	}
	ms := make([]strMatcher, len(e.patterns))
	for i, pat := range e.patterns {
		var m strMatcher
		var msg string
		if e.kind == exLike {
			m, msg = compileLike(pat)
		} else {
			m, msg = compileRLike(pat)
		}
		if msg != "" {
			c.fail(e.patPos[i], "invalid %s pattern: %s", op, msg)
		}
		ms[i] = m
	}
	neg, ev := e.neg, x.ev
	out := singleTest(ev, func(_ *ctx, v val) int {
		for _, m := range ms {
			if m(v.s) {
				return b2i(!neg)
			}
		}
		return b2i(neg)
	})
	if e.kind == exLike && !neg && len(e.patterns) == 1 && x.field != nil {
		// Where only true counts, a record whose field lacks a literal
		// of the pattern is not read: the test is false or null.
		if needs := likeNeeds(e.patterns[0]); needs != nil {
			f, isTrue := x.field, out.isTrue
			out.isTrue = func(k *ctx) bool { return !lacksAny(k, f, needs) && isTrue(k) }
		}
	}
	return out
}

// likeNeeds are strings every text a LIKE pattern matches holds: the
// pattern's literal runs, cut at textPunct. Nil when there are none.
func likeNeeds(pat string) []string {
	var needs []string
	var cur strings.Builder
	flush := func() {
		needs = append(needs, strings.FieldsFunc(cur.String(), func(c rune) bool { return strings.ContainsRune(textPunct, c) })...)
		cur.Reset()
	}
	for i := 0; i < len(pat); i++ {
		switch ch := pat[i]; ch {
		case '\\':
			if i+1 < len(pat) {
				cur.WriteByte(pat[i+1])
				i++
			}
		case '*', '?':
			flush()
		default:
			cur.WriteByte(ch)
		}
	}
	flush()
	return needs
}
