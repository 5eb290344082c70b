package matcher

import "strings"

// glob is a compiled KQL wildcard value: literal parts joined by `*`, where
// `*` matches any run of characters, spaces and newlines included, and the
// pattern must cover the whole value (Elasticsearch's wildcard query on a
// keyword). Common shapes get a direct test instead of the general scan.
type glob struct {
	parts []string
	kind  globKind
}

type globKind uint8

const (
	globGeneral  globKind = iota
	globPrefix            // abc*
	globSuffix            // *abc
	globContains          // *abc*
)

func newGlob(parts []string) *glob {
	g := &glob{parts: parts}
	n := len(parts)
	switch {
	case n == 2 && parts[1] == "":
		g.kind = globPrefix
	case n == 2 && parts[0] == "":
		g.kind = globSuffix
	case n == 3 && parts[0] == "" && parts[2] == "":
		g.kind = globContains
	}
	return g
}

func (g *glob) Test(v *Value) bool { return g.match(v.Text) }

func (g *glob) match(s string) bool {
	p := g.parts
	switch g.kind {
	case globPrefix:
		return strings.HasPrefix(s, p[0])
	case globSuffix:
		return strings.HasSuffix(s, p[1])
	case globContains:
		return strings.Contains(s, p[1])
	}
	first, last := p[0], p[len(p)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	// The leftmost occurrence of each middle part leaves the most room for
	// the rest, so a greedy scan decides a `*`-only pattern exactly.
	for _, mid := range p[1 : len(p)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}
