package esql

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// DISSECT, as Elasticsearch's dissect library reads and applies a pattern
// (libs/dissect: DissectParser.java, DissectKey.java, DissectMatch.java):
//
//   - The pattern is a leading delimiter (the text before the first %{),
//     then keys, each followed by its delimiter: the shortest non-empty text
//     up to the next %{, or, when there is none, everything to the end. A
//     key's text runs to the first }.
//   - A key's modifier is the last of + / * & ? it holds (+ then / is the
//     one pair allowed): + appends to the key of that name (joined with the
//     APPEND_SEPARATOR, in order, or by /N), ? (or an empty name) skips,
//     -> after the name skips repeats of the delimiter that follows. * and &
//     (reference keys) are refused by ES|QL.
//   - Matching walks the value once: each delimiter is searched from where
//     the last one ended; repeated delimiters give the next keys empty values
//     unless the key has ->; the last key takes the rest of the value when
//     it has no delimiter. All keys must be reached, or nothing is extracted.

type dissectMod uint8

const (
	modNone dissectMod = iota
	modAppend
	modAppendOrder
	modSkip
)

type dissectKey struct {
	name    string
	mod     dissectMod
	skip    bool
	padding bool // -> : skip repeated delimiters to the right
	order   int  // /N of an ordered append
}

type dissectPair struct {
	key   dissectKey
	delim string
}

type dissectProgram struct {
	leading string
	pairs   []dissectPair
	sep     string
	outs    []string // the columns, sorted by name
	outIdx  map[string]int
	names   int // distinct names that are not skipped
}

const dissectKeyDelim = "%{"

// compileDissect reads a dissect pattern; the message says why it is
// refused.
func compileDissect(pattern, sep string) (*dissectProgram, string) {
	d := &dissectProgram{sep: sep, outIdx: map[string]int{}}
	first := strings.Index(pattern, dissectKeyDelim)
	if first < 0 {
		return nil, "unable to find any keys or delimiters"
	}
	d.leading = pattern[:first]
	rest := pattern[first:]
	if strings.ContainsAny(d.leading, "\n\r\u0085\u2028\u2029") {
		// LEADING_DELIMITER_PATTERN's `.` stops at a line break: such a
		// leading text is not found, not required, and skipped.
		d.leading = ""
	}
	// KEY_DELIMITER_FIELD_PATTERN, found repeatedly:
	// %\{([^}]*?)}(.+?(?=%\{)|.*$)
	for len(rest) > 0 {
		i := strings.Index(rest, dissectKeyDelim)
		if i < 0 {
			break
		}
		rest = rest[i+2:]
		close := strings.IndexByte(rest, '}')
		if close < 0 {
			break
		}
		keyText := rest[:close]
		rest = rest[close+1:]
		var delim string
		if next := strings.Index(rest[min(1, len(rest)):], dissectKeyDelim); next >= 0 && len(rest) > 0 {
			delim, rest = rest[:next+1], rest[next+1:]
		} else {
			delim, rest = rest, ""
		}
		k, msg := parseDissectKey(keyText)
		if msg != "" {
			return nil, msg
		}
		d.pairs = append(d.pairs, dissectPair{key: k, delim: delim})
	}
	seen := map[string]bool{}
	appendNames := map[string]bool{}
	for _, p := range d.pairs {
		if !p.key.skip && !seen[p.key.name] {
			seen[p.key.name] = true
			d.outs = append(d.outs, p.key.name)
		}
		if p.key.mod == modAppend || p.key.mod == modAppendOrder {
			appendNames[p.key.name] = true
		}
	}
	d.names = len(d.outs)
	if len(d.pairs) == 0 || d.names == 0 {
		return nil, "unable to find any keys or delimiters"
	}
	// A plain key whose name is also appended to becomes an append.
	for i := range d.pairs {
		if k := &d.pairs[i].key; k.mod == modNone && appendNames[k.name] {
			k.mod = modAppend
		}
	}
	sort.Strings(d.outs)
	for i, n := range d.outs {
		d.outIdx[n] = i
	}
	return d, ""
}

// parseDissectKey reads a key's modifiers as DissectKey does.
func parseDissectKey(text string) (dissectKey, string) {
	k := dissectKey{}
	mod := modNone
	count := 0
	for _, c := range text {
		var m dissectMod
		switch c {
		case '+':
			m = modAppend
		case '/':
			m = modAppendOrder
		case '?':
			m = modSkip
		case '*', '&':
			return k, fmt.Sprintf("reference keys (%%{*%[1]s} and %%{&%[1]s}) are not supported in dissect patterns", strings.Trim(text, "*&"))
		default:
			continue
		}
		count++
		if count > 1 && !(mod == modAppend && m == modAppendOrder) {
			return k, fmt.Sprintf("invalid dissect key %%{%s}: multiple modifiers are not allowed", text)
		}
		mod = m
	}
	k.mod = mod
	name := text
	switch mod {
	case modNone:
		name, k.padding = strings.CutSuffix(text, "->")
		k.skip = name == ""
		k.name = name
		return k, ""
	case modAppendOrder:
		// [+](.*?)(/)([0-9]+)(->)?$
		plus := strings.IndexByte(text, '+')
		slash := strings.LastIndexByte(text, '/')
		if plus < 0 || slash < plus {
			return k, fmt.Sprintf("invalid dissect key %%{%s}: the key name could not be determined", text)
		}
		num := text[slash+1:]
		num, k.padding = strings.CutSuffix(num, "->")
		n, err := strconv.ParseInt(num, 10, 16)
		if err != nil {
			return k, fmt.Sprintf("invalid dissect key %%{%s}: the key name could not be determined", text)
		}
		k.name, k.order = text[plus+1:slash], int(n)
	default:
		// ([+*&?])(.*?)(->)?$, found from the first modifier character.
		i := strings.IndexAny(text, "+?")
		name = text[i+1:]
		name, k.padding = strings.CutSuffix(name, "->")
		k.name = name
		k.skip = mod == modSkip
	}
	if k.name == "" && !k.skip {
		return k, fmt.Sprintf("invalid dissect key %%{%s}: the key name could not be determined", text)
	}
	return k, ""
}

type dissectPart struct {
	s     string
	order int
}

// parse dissects one value; false when the pattern does not match.
func (d *dissectProgram) parse(in string) (map[string]string, bool) {
	if !(len(in) > len(d.leading) && strings.HasPrefix(in, d.leading)) {
		return nil, false
	}
	simple := map[string]string{}
	appends := map[string][]dissectPart{}
	implicit := -1000
	matches := 0
	add := func(k dissectKey, v string) {
		matches++
		if k.skip {
			return
		}
		switch k.mod {
		case modAppend:
			appends[k.name] = append(appends[k.name], dissectPart{v, implicit})
			implicit++
		case modAppendOrder:
			appends[k.name] = append(appends[k.name], dissectPart{v, k.order})
		default:
			simple[k.name] = v
		}
	}
	at := 0
	key, delim := d.pairs[0].key, d.pairs[0].delim
	i := len(d.leading)
	start := i
	n := len(in)
walk:
	for i < n {
		if delim == "" || !strings.HasPrefix(in[i:], delim) {
			i++
			continue
		}
		add(key, in[start:i])
		i += len(delim)
		// Repeated delimiters: empty values for the next keys, unless ->.
		for i < n && strings.HasPrefix(in[i:], delim) {
			i += len(delim)
			if !key.padding {
				if at+1 == len(d.pairs) {
					break
				}
				at++
				key = d.pairs[at].key
				add(key, "")
			}
		}
		if at+1 == len(d.pairs) {
			break walk
		}
		at++
		key, delim = d.pairs[at].key, d.pairs[at].delim
		start = i
	}
	if matches != len(d.pairs) && delim == "" {
		add(key, in[start:])
	}
	if matches != len(d.pairs) {
		return nil, false
	}
	out := simple
	for name, vs := range appends {
		sort.SliceStable(vs, func(a, b int) bool { return vs[a].order < vs[b].order })
		parts := make([]string, len(vs))
		for j, v := range vs {
			parts[j] = v.s
		}
		out[name] = strings.Join(parts, d.sep)
	}
	if len(out) != d.names {
		return nil, false
	}
	return out, true
}

// extract dissects one value and appends each column's value.
func (d *dissectProgram) extract(s string, out []mv) {
	res, ok := d.parse(s)
	if !ok {
		return
	}
	for name, v := range res {
		if i, ok := d.outIdx[name]; ok {
			out[i] = append(out[i], val{s: v})
		}
	}
}
