package matcher

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Patterns as Elasticsearch's wildcard and regexp queries run them on a
// keyword, optionally case-insensitive (case_insensitive: true), for front
// ends whose operators have them (EQL's `:`, `like`, `like~`, `regex`,
// `regex~`, `in~`, and functions called as `name~`).

// FoldEqual is equality ignoring case, as a case-insensitive term query
// compares: the ASCII letters alone have another case (Lucene's
// AutomatonQueries.toCaseInsensitiveChar gives none to a character past
// 128), so `ansible` does not match `anſible`, nor `kelvin` the Kelvin sign.
// Unicode folding let a user agent written with ſ pass a rule's exclusion
// here while Elasticsearch alerts.
func FoldEqual(s string) Pred { return foldEq(s) }

type foldEq string

func (f foldEq) Test(v *Value) bool { return asciiFoldEqual(v.Text, string(f)) }

func asciiFoldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] && !foldsTo(rune(a[i]), rune(b[i])) {
			return false
		}
	}
	return true
}

// Like is Elasticsearch's wildcard query: `*` matches any run of characters,
// `?` any one character, `\` escapes the next character; the pattern covers
// the whole value. With fold, characters compare ignoring case.
func Like(pattern string, fold bool) Pred { return like(likeTokens(pattern, true), fold) }

// LikeNoEscape is Like where `\` is an ordinary character, as EQL's `like`
// and `:` build their patterns (a `*` or `?` there is always a wildcard).
func LikeNoEscape(pattern string, fold bool) Pred { return like(likeTokens(pattern, false), fold) }

func like(toks []likeTok, fold bool) Pred {
	if !fold {
		// `*`-only patterns take the glob's direct tests.
		if parts, ok := starParts(toks); ok {
			if len(parts) == 1 {
				return Equal(parts[0]) // no wildcard: a term
			}
			return newGlob(parts)
		}
	}
	return &likePat{toks: toks, fold: fold}
}

// likeTok is a literal rune, or one of the wildcards.
type likeTok struct {
	r    rune
	kind byte // 0 literal, '*' any run, '?' one character
}

func likeTokens(p string, escapes bool) []likeTok {
	var out []likeTok
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		i += n
		switch {
		case r == '\\' && escapes:
			if i < len(p) {
				r, n = utf8.DecodeRuneInString(p[i:])
				i += n
			}
			out = append(out, likeTok{r: r})
		case r == '*':
			if len(out) > 0 && out[len(out)-1].kind == '*' {
				continue // `**` is `*`
			}
			out = append(out, likeTok{kind: '*'})
		case r == '?':
			out = append(out, likeTok{kind: '?'})
		default:
			out = append(out, likeTok{r: r})
		}
	}
	return out
}

// starParts splits tokens with no `?` into the literal parts between `*`s.
func starParts(toks []likeTok) ([]string, bool) {
	var parts []string
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case '?':
			return nil, false
		case '*':
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteRune(t.r)
		}
	}
	return append(parts, b.String()), true
}

type likePat struct {
	toks []likeTok
	fold bool
}

func (l *likePat) Test(v *Value) bool { return l.match(v.Text) }

// match is the classic linear-backtracking wildcard match: on a mismatch it
// resumes from the last `*`, one rune further, so it is O(len(p)*len(s)) at
// worst, never exponential.
func (l *likePat) match(s string) bool {
	p := l.toks
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		r, n := utf8.DecodeRuneInString(s[si:])
		if pi < len(p) {
			t := p[pi]
			switch {
			case t.kind == '*':
				star, mark = pi, si
				pi++
				continue
			case t.kind == '?' || t.r == r || (l.fold && foldsTo(t.r, r)):
				pi++
				si += n
				continue
			}
		}
		if star < 0 {
			return false
		}
		_, m := utf8.DecodeRuneInString(s[mark:])
		mark += m
		si, pi = mark, star+1
	}
	for pi < len(p) && p[pi].kind == '*' {
		pi++
	}
	return pi == len(p)
}

// foldsTo reports whether a and b are the same ASCII letter in another
// case (see FoldEqual).
func foldsTo(a, b rune) bool {
	return a^b == 0x20 && isASCIILetter(a) && isASCIILetter(b)
}

func isASCIILetter(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' }

// Regexp is Elasticsearch's regexp query: a Lucene regular expression that
// must match the whole value. It supports what Lucene's syntax shares with
// the usual one: literals, `.`, `[...]` classes (ranges, `^` negation), `(`
// `)` groups, `|`, the quantifiers `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`
// (a quantifier on a quantifier applies to what it follows, as in Lucene),
// and `\` escapes of one character. Lucene's optional operators (`~`
// complement, `&` intersection, `<n-m>` intervals, `@` any string, `#` the
// empty language) are refused, as are anchors and Perl classes that Lucene
// reads as literals: the error says which character, and where.
func Regexp(pattern string, fold bool) (Pred, error) {
	src, err := luceneToRE2(pattern)
	if err != nil {
		return nil, err
	}
	flags := "(?s)"
	if fold {
		flags = "(?si)"
	}
	re, err := regexp.Compile(flags + "^(?:" + src + ")$")
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %v", pattern, err)
	}
	return regexPred{re}, nil
}

type regexPred struct{ re *regexp.Regexp }

func (r regexPred) Test(v *Value) bool { return r.re.MatchString(v.Text) }

// luceneToRE2 rewrites a Lucene regexp in Go's syntax, character by
// character: literals are quoted, classes copied with their escapes made
// Go's, quantifiers stacked on one another grouped so that Go reads them as
// Lucene does (Lucene's `a+?` is (a+)?, Go's is a lazy a+).
func luceneToRE2(p string) (string, error) {
	var b strings.Builder
	quantified := false // the last item written ends with a quantifier
	last := 0           // where the last item starts in b
	var groups []int    // where each open group starts in b
	// wrap groups the last item with its quantifier, for another one.
	wrap := func() {
		s := b.String()
		b.Reset()
		b.WriteString(s[:last] + "(?:" + s[last:] + ")")
	}
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		at := i
		i += n
		if r != '*' && r != '+' && r != '?' && r != '{' && r != ')' {
			last = b.Len()
		}
		switch r {
		case '\\':
			if i >= len(p) {
				return "", fmt.Errorf("regular expression %q: a \\ at the end", p)
			}
			r, n = utf8.DecodeRuneInString(p[i:])
			i += n
			b.WriteString(regexp.QuoteMeta(string(r)))
			quantified = false
		case '.':
			b.WriteByte('.')
			quantified = false
		case '(':
			groups = append(groups, b.Len())
			b.WriteString("(?:")
			quantified = false
		case ')':
			if len(groups) == 0 {
				return "", fmt.Errorf("regular expression %q: a ) at %d closes nothing", p, at)
			}
			last = groups[len(groups)-1]
			groups = groups[:len(groups)-1]
			b.WriteByte(')')
			quantified = false
		case '|':
			b.WriteByte('|')
			quantified = false
		case '*', '+', '?':
			if quantified {
				wrap() // Lucene applies it to what the last quantifier made
			}
			b.WriteRune(r)
			quantified = true
		case '{':
			end := strings.IndexByte(p[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("regular expression %q: a { at %d is not closed", p, at)
			}
			body := p[i : i+end]
			i += end + 1
			if !isRepeat(body) {
				return "", fmt.Errorf("regular expression %q: {%s} at %d is not a repetition {n}, {n,} or {n,m}", p, body, at)
			}
			if quantified {
				wrap()
			}
			b.WriteString("{" + body + "}")
			quantified = true
		case '[':
			cls, next, err := luceneClass(p, i)
			if err != nil {
				return "", err
			}
			i = next
			b.WriteString(cls)
			quantified = false
		case '~', '&', '<', '@', '#':
			return "", fmt.Errorf("regular expression %q: %q at %d is one of Lucene's optional operators, which trailwatch does not run", p, r, at)
		case '^', '$':
			// Lucene has no anchors: these are literal characters.
			b.WriteString(regexp.QuoteMeta(string(r)))
			quantified = false
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
			quantified = false
		}
	}
	if len(groups) != 0 {
		return "", fmt.Errorf("regular expression %q: a ( is not closed", p)
	}
	return b.String(), nil
}

// luceneClass reads a character class starting after its `[` at i.
func luceneClass(p string, i int) (string, int, error) {
	var b strings.Builder
	b.WriteByte('[')
	if i < len(p) && p[i] == '^' {
		b.WriteByte('^')
		i++
	}
	first := true
	for i < len(p) {
		r, n := utf8.DecodeRuneInString(p[i:])
		i += n
		switch {
		case r == ']' && !first:
			b.WriteByte(']')
			return b.String(), i, nil
		case r == '\\':
			if i >= len(p) {
				return "", 0, fmt.Errorf("regular expression %q: a \\ at the end", p)
			}
			r, n = utf8.DecodeRuneInString(p[i:])
			i += n
			b.WriteString(classLiteral(r))
		case r == '-':
			b.WriteByte('-')
		default:
			b.WriteString(classLiteral(r))
		}
		first = false
	}
	return "", 0, fmt.Errorf("regular expression %q: a [ is not closed", p)
}

func classLiteral(r rune) string {
	switch r {
	case '\\', ']', '[', '^', '-':
		return `\` + string(r)
	}
	return string(r)
}

func isRepeat(s string) bool {
	lo, hi, comma := strings.Cut(s, ",")
	digits := func(x string) bool {
		if x == "" {
			return false
		}
		for _, c := range x {
			if c < '0' || c > '9' {
				return false
			}
		}
		return len(x) <= 4
	}
	return digits(lo) && (!comma || hi == "" || digits(hi))
}
