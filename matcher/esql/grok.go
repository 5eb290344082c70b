package esql

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/matcher"
)

// GROK, as ES|QL runs it (Grok.java, GrokEvaluatorExtracter.java): the
// pattern's %{NAME:field:type} references are expanded from the ECS pattern
// bank, and the regular expression (Oniguruma's Ruby syntax, as Joni reads
// it) is searched for anywhere in each value, the first match winning. Each
// named group that took part in the match gives its field a value (a name
// used twice gives two values); a value the pattern does not match gives
// nothing. Here the expression is translated into Go's regexp: the
// constructs Go's regexp has no counterpart for (look-around, atomic groups,
// possessive repetition, back-references) are refused when the rule loads.
//
// grokBank holds the patterns of Elasticsearch's ECS pattern library
// (libs/grok/src/main/resources/patterns/ecs-v1/grok-patterns) that
// translate into Go's regexp; those written with look-behind or atomic
// groups (NUMBER, BASE10NUM, IPV4, QUOTEDSTRING, ...) are not here, and a
// rule naming a pattern not here is refused when it loads.
var grokBank = map[string]string{
	"USERNAME":   `[a-zA-Z0-9._-]+`,
	"USER":       `%{USERNAME}`,
	"INT":        `(?:[+-]?(?:[0-9]+))`,
	"POSINT":     `\b(?:[1-9][0-9]*)\b`,
	"NONNEGINT":  `\b(?:[0-9]+)\b`,
	"WORD":       `\b\w+\b`,
	"NOTSPACE":   `\S+`,
	"SPACE":      `\s*`,
	"DATA":       `.*?`,
	"GREEDYDATA": `.*`,
	"UUID":       `[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}`,
}

// grokRef is Grok.java's reference syntax %{NAME[:subname][=definition]}.
var grokRef = regexp.MustCompile(`%\{((?P<pattern>[A-z0-9]+)(?::(?P<subname>[[:alnum:]@\[\]_:.-]+))?)(?:=(?:[^{}]+|\.+)+)?\}`)

// grokOut is one column GROK writes.
type grokOut struct {
	name   string
	t      typ
	conv   string // "", "int", "long", "float", "double", "boolean"
	groups []int  // the Go regexp's groups that hold it
}

type grokProgram struct {
	re   *regexp.Regexp
	outs []grokOut // sorted by name, as ES|QL orders the new columns
	// needs are strings every text the pattern matches contains: pieces
	// of its literals without punctuation, for Lacks.
	needs []string
}

// compileGrok expands and translates a GROK pattern; the error message
// says what is refused.
func compileGrok(pattern string) (*grokProgram, string) {
	expr, msg := expandGrok(pattern)
	if msg != "" {
		return nil, msg
	}
	tr := onigToGo{src: expr}
	body := tr.translate()
	if tr.msg != "" {
		return nil, tr.msg
	}
	re, err := regexp.Compile(`(?m)` + body)
	if err != nil {
		return nil, "cannot run the pattern's regular expression: " + err.Error()
	}
	byName := map[string]*grokOut{}
	var order []string
	for i, g := range tr.groups {
		// GrokCaptureConfig: "pattern:field:type" or "field".
		parts := strings.Split(g, ":")
		name, conv := parts[0], ""
		if len(parts) >= 2 {
			name = parts[1]
		}
		if len(parts) == 3 {
			conv = parts[2]
		}
		t := tyKeyword
		switch conv {
		case "int":
			t = tyInt
		case "long":
			t = tyLong
		case "float", "double":
			t = tyDouble
		case "boolean":
			t = tyBool
		default:
			conv = ""
		}
		o := byName[name]
		if o == nil {
			o = &grokOut{name: name, t: t, conv: conv}
			byName[name] = o
			order = append(order, name)
		} else if o.t != t {
			return nil, fmt.Sprintf("the attribute [%s] is defined multiple times with different types", name)
		}
		o.groups = append(o.groups, i+1)
	}
	if len(order) == 0 {
		return nil, "the pattern names no field to extract"
	}
	sort.Strings(order)
	g := &grokProgram{re: re, needs: requiredPieces(`(?m)` + body)}
	for _, n := range order {
		g.outs = append(g.outs, *byName[n])
	}
	return g, ""
}

// expandGrok replaces pattern references as Grok.toRegex does: the first
// reference is replaced by its definition, named (NAME:field) or not, and
// the search starts again at the replacement, so that references inside
// definitions are expanded too.
func expandGrok(pattern string) (string, string) {
	var res strings.Builder
	for range 10_000 {
		loc := grokRef.FindStringSubmatchIndex(pattern)
		if loc == nil {
			res.WriteString(pattern)
			return res.String(), ""
		}
		whole := pattern[loc[2]:loc[3]]
		name := pattern[loc[4]:loc[5]]
		def, ok := grokBank[name]
		if !ok {
			return "", fmt.Sprintf("unable to find pattern [%s] in the grok pattern library trailwatch carries (%s)", name, strings.Join(sortedKeys(grokBank), ", "))
		}
		part := "(?:" + def + ")"
		if loc[6] >= 0 {
			part = "(?<" + whole + ">" + def + ")"
		}
		res.WriteString(pattern[:loc[0]])
		pattern = part + pattern[loc[1]:]
		if res.Len()+len(pattern) > 1<<16 {
			return "", "the expanded pattern is too long"
		}
	}
	return "", "cannot convert the grok pattern into a regular expression"
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// extract runs the pattern on one value and appends each column's values.
func (g *grokProgram) extract(s string, out []mv) {
	loc := g.re.FindStringSubmatchIndex(s)
	if loc == nil {
		return
	}
	for i := range g.outs {
		o := &g.outs[i]
		for _, gi := range o.groups {
			if loc[2*gi] < 0 {
				continue
			}
			if v, ok := grokConvert(o.conv, s[loc[2*gi]:loc[2*gi+1]]); ok {
				out[i] = append(out[i], v)
			}
		}
	}
}

// grokConvert converts a capture as GrokCaptureType does.
func grokConvert(conv, s string) (val, bool) {
	switch conv {
	case "int":
		n, err := strconv.ParseInt(s, 10, 32)
		return val{n: n}, err == nil
	case "long":
		n, err := strconv.ParseInt(s, 10, 64)
		return val{n: n}, err == nil
	case "float":
		f, err := strconv.ParseFloat(s, 32)
		return val{f: float64(float32(f))}, err == nil
	case "double":
		f, err := strconv.ParseFloat(s, 64)
		return val{f: f}, err == nil
	case "boolean":
		return boolMV(strings.EqualFold(s, "true"))[0], true
	}
	return val{s: s}, true
}

// onigToGo translates an Oniguruma expression in Ruby syntax (Joni's
// default, with no options: \d \s \w and POSIX brackets are Unicode-aware,
// ^ and $ match at line ends, `.` does not match a newline) into Go's
// regexp. Named groups become g1, g2, ... (Go's names cannot hold the dots
// field names do) and plain groups do not capture, as Oniguruma's
// CAPTURE_ONLY_NAMED_GROUP makes them when named groups are present.
type onigToGo struct {
	src    string
	i      int
	out    strings.Builder
	groups []string // original names, in group order
	msg    string
}

// Unicode classes as Oniguruma reads \s \w \d in UTF-8.
const (
	uniSpace = `\t-\r\x{85}\p{Z}`
	uniWord  = `\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}`
	uniDigit = `\p{Nd}`
	hexDigit = `0-9a-fA-F`
)

func (t *onigToGo) refuse(format string, args ...any) {
	if t.msg == "" {
		t.msg = fmt.Sprintf(format, args...)
	}
}

func (t *onigToGo) translate() string {
	s := t.src
	for t.i < len(s) && t.msg == "" {
		c := s[t.i]
		switch c {
		case '\\':
			t.escape(false)
		case '[':
			t.class()
		case '(':
			t.group()
		case '*', '+', '?', '}':
			t.out.WriteByte(c)
			t.i++
			if t.i < len(s) && s[t.i] == '+' {
				t.refuse("possessive repetition %c+ has no equivalent in Go's regexp", c)
			}
		case '{':
			// Ruby reads {,n} as {0,n}.
			if strings.HasPrefix(s[t.i:], "{,") {
				t.out.WriteString("{0,")
				t.i += 2
				continue
			}
			t.out.WriteByte(c)
			t.i++
		default:
			t.out.WriteByte(c)
			t.i++
		}
	}
	return t.out.String()
}

func (t *onigToGo) group() {
	s := t.src[t.i:]
	switch {
	case strings.HasPrefix(s, "(?<=") || strings.HasPrefix(s, "(?<!"):
		t.refuse("look-behind %s has no equivalent in Go's regexp", s[:4])
	case strings.HasPrefix(s, "(?<"):
		end := strings.IndexByte(s, '>')
		if end < 0 {
			t.refuse("unterminated group name")
			return
		}
		t.groups = append(t.groups, s[3:end])
		fmt.Fprintf(&t.out, "(?P<g%d>", len(t.groups))
		t.i += end + 1
	case strings.HasPrefix(s, "(?:"):
		t.out.WriteString("(?:")
		t.i += 3
	case strings.HasPrefix(s, "(?="), strings.HasPrefix(s, "(?!"), strings.HasPrefix(s, "(?>"), strings.HasPrefix(s, "(?#"), strings.HasPrefix(s, "(?'"), strings.HasPrefix(s, "(?("):
		t.refuse("the construct %s has no equivalent in Go's regexp", s[:3])
	case strings.HasPrefix(s, "(?"):
		// Options: (?imx-imx) or (?imx-imx:...); Ruby's m is Go's s.
		j := 2
		var b strings.Builder
		b.WriteString("(?")
		for ; j < len(s) && s[j] != ')' && s[j] != ':'; j++ {
			switch s[j] {
			case 'i', '-':
				b.WriteByte(s[j])
			case 'm':
				b.WriteByte('s')
			default:
				t.refuse("the option %q in (?...) is not supported", s[j])
				return
			}
		}
		if j >= len(s) {
			t.refuse("unterminated group")
			return
		}
		b.WriteByte(s[j])
		t.out.WriteString(b.String())
		t.i += j + 1
	default:
		t.out.WriteString("(?:")
		t.i++
	}
}

// escape translates \x at t.i, inside a class or not.
func (t *onigToGo) escape(inClass bool) {
	s := t.src
	if t.i+1 >= len(s) {
		t.refuse("the pattern ends with a lone \\")
		return
	}
	c := s[t.i+1]
	t.i += 2
	w := func(out, in string) {
		if inClass {
			if in == "" {
				t.refuse("\\%c inside [...] has no equivalent in Go's regexp", c)
			}
			t.out.WriteString(in)
			return
		}
		t.out.WriteString(out)
	}
	switch c {
	case 'd':
		w(`\p{Nd}`, uniDigit)
	case 'D':
		w(`\P{Nd}`, `\P{Nd}`)
	case 's':
		w(`[`+uniSpace+`]`, uniSpace)
	case 'S':
		w(`[^`+uniSpace+`]`, "")
	case 'w':
		w(`[`+uniWord+`]`, uniWord)
	case 'W':
		w(`[^`+uniWord+`]`, "")
	case 'h':
		w(`[`+hexDigit+`]`, hexDigit)
	case 'H':
		w(`[^`+hexDigit+`]`, "")
	case 'b', 'B', 'A', 'z':
		if inClass {
			t.refuse("\\%c inside [...] is not supported", c)
			return
		}
		t.out.WriteString(`\` + string(c))
	case 't', 'n', 'r', 'f', 'v', 'a':
		t.out.WriteString(`\` + string(c))
	case 'e':
		t.out.WriteString(`\x1b`)
	case 'x':
		t.out.WriteString(`\x`)
	case '0':
		t.out.WriteString(`\0`)
	case 'p', 'P':
		rest := s[t.i:]
		end := strings.IndexByte(rest, '}')
		if !strings.HasPrefix(rest, "{") || end < 0 {
			t.refuse("\\%c needs {property}", c)
			return
		}
		name := rest[1:end]
		if strings.HasPrefix(name, "^") {
			name = name[1:]
			if c == 'p' {
				c = 'P'
			} else {
				c = 'p'
			}
		}
		t.out.WriteString(`\` + string(c) + "{" + name + "}")
		t.i += end + 1
	default:
		switch {
		case c >= '1' && c <= '9', c == 'k', c == 'g':
			t.refuse("back-references and subexpression calls (\\%c) have no equivalent in Go's regexp", c)
		case c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'):
			t.refuse("the escape \\%c is not supported", c)
		case c < 0x80 && c > ' ':
			t.out.WriteString(`\` + string(c))
		default:
			t.i-- // the character itself, taken literally
			j := t.i + 1
			for j < len(s) && s[j]&0xc0 == 0x80 {
				j++
			}
			t.out.WriteString(regexp.QuoteMeta(s[t.i:j]))
			t.i = j
		}
	}
}

// class copies a bracket expression, translating escapes inside it.
func (t *onigToGo) class() {
	s := t.src
	t.out.WriteByte('[')
	t.i++
	if t.i < len(s) && s[t.i] == '^' {
		t.out.WriteByte('^')
		t.i++
	}
	if t.i < len(s) && s[t.i] == ']' {
		t.out.WriteString(`\]`)
		t.i++
	}
	for t.i < len(s) && t.msg == "" {
		c := s[t.i]
		switch {
		case c == ']':
			t.out.WriteByte(']')
			t.i++
			return
		case c == '\\':
			t.escape(true)
		case c == '[' && strings.HasPrefix(s[t.i:], "[:"):
			end := strings.Index(s[t.i:], ":]")
			if end < 0 {
				t.refuse("unterminated POSIX bracket")
				return
			}
			t.out.WriteString(s[t.i : t.i+end+2])
			t.i += end + 2
		case c == '[':
			t.refuse("nested character classes have no equivalent in Go's regexp")
		case c == '&' && strings.HasPrefix(s[t.i:], "&&"):
			t.refuse("class intersection && has no equivalent in Go's regexp")
		default:
			t.out.WriteByte(c)
			t.i++
		}
	}
	if t.msg == "" {
		t.refuse("unterminated character class")
	}
}

// textPunct: cut at matcher.TextSeparators, literal pieces suit a
// TextFields that knows a payload's keys and values.
const textPunct = matcher.TextSeparators

// requiredPieces returns the strings any text the regular expression
// matches must contain: its literals that every match passes through (a
// concatenation's, through captures), case-sensitive, cut at textPunct.
// Nil when there are none or the expression does not parse.
func requiredPieces(expr string) []string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	var out []string
	var walk func(*syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		switch r.Op {
		case syntax.OpConcat:
			for _, sub := range r.Sub {
				walk(sub)
			}
		case syntax.OpCapture:
			walk(r.Sub[0])
		case syntax.OpPlus:
			walk(r.Sub[0]) // at least once
		case syntax.OpLiteral:
			if r.Flags&syntax.FoldCase != 0 {
				return
			}
			for _, p := range strings.FieldsFunc(string(r.Rune), func(c rune) bool { return strings.ContainsRune(textPunct, c) }) {
				out = append(out, p)
			}
		}
	}
	walk(re)
	return out
}
