package matcher

import (
	"slices"
	"sort"
)

// maxPins bounds the provider/action pairs kept for one query; a query with
// more is treated as unpinned (evaluated for every record), which is never
// wrong, only slower.
const maxPins = 4096

// pinSet is a necessary condition: a matching record has, for at least one
// pin, the pin's provider among its event.provider values (unless "") and
// the pin's action among its event.action values (unless "").
type pinSet map[Pin]struct{}

func (p pinSet) list() []Pin {
	out := make([]Pin, 0, len(p))
	for k := range p {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Action < out[j].Action
	})
	return out
}

// pinsOf derives the pins a condition implies; nil means none.
func pinsOf(c Cond) pinSet {
	switch c := c.(type) {
	case anyCond:
		e, ok := c.p.(*eqSet)
		if !ok || (c.f.Name != ProviderField && c.f.Name != ActionField) {
			return nil
		}
		out := pinSet{}
		for _, v := range e.values() {
			if c.f.Name == ProviderField {
				out[Pin{Provider: v}] = struct{}{}
			} else {
				out[Pin{Action: v}] = struct{}{}
			}
		}
		return out
	case constCond:
		if !bool(c) {
			return pinSet{} // never matches: no record is a candidate
		}
	case orCond:
		out := pinSet{}
		for _, k := range c {
			p := pinsOf(k)
			if p == nil {
				return nil
			}
			for pin := range p {
				out[pin] = struct{}{}
			}
			if len(out) > maxPins {
				return nil
			}
		}
		return out
	case andCond:
		var acc pinSet
		for _, k := range c {
			p := pinsOf(k)
			switch {
			case p == nil:
				continue
			case acc == nil:
				acc = p
				continue
			}
			acc = meetPins(acc, p)
		}
		return acc
	}
	return nil
}

// meetPins combines the pins of two conjuncts. A record that satisfies both
// has one pin of each; keeping, field by field, the first pin's value where
// it has one and the second's otherwise gives a pin the record also has (with
// multi-valued fields both values may be present, so a conflict keeps the
// first rather than proving the conjunction impossible).
func meetPins(a, b pinSet) pinSet {
	if len(a)*len(b) > maxPins {
		if len(a) <= len(b) {
			return a
		}
		return b
	}
	out := pinSet{}
	for x := range a {
		for y := range b {
			m := x
			if m.Provider == "" {
				m.Provider = y.Provider
			}
			if m.Action == "" {
				m.Action = y.Action
			}
			out[m] = struct{}{}
		}
	}
	return out
}

// Index finds the queries that can match a record from its event.provider
// and event.action alone, so that a record costs a map lookup, not an
// evaluation of every query.
type Index struct {
	exact    map[Pin][]int // (provider, action), (provider, ""), ("", action)
	anywhere []int         // unpinned queries
	merged   map[Pin][]int // precomputed answer for a (provider, action) seen at build
	// For the pairs merged does not hold (most records): the answer for a
	// provider with no action-only pin on the action, and the actions that
	// have such pins.
	byProvider map[string][]int
	actionOnly map[string]bool
}

// NewIndex builds an index over queries; the ids returned by Candidates are
// positions in qs.
func NewIndex(qs []*Query) *Index {
	ix := &Index{exact: map[Pin][]int{}, merged: map[Pin][]int{}, byProvider: map[string][]int{}, actionOnly: map[string]bool{}}
	for i, q := range qs {
		pins, ok := q.Pins()
		if !ok {
			ix.anywhere = append(ix.anywhere, i)
			continue
		}
		for _, p := range pins {
			ix.exact[p] = append(ix.exact[p], i)
		}
	}
	for p := range ix.exact {
		switch {
		case p.Provider != "" && p.Action != "":
			ix.merged[p] = ix.collect(nil, p.Provider, p.Action)
		case p.Provider != "":
			ix.byProvider[p.Provider] = sortUnique(append(slices.Clone(ix.anywhere), ix.exact[p]...), 0)
		case p.Action != "":
			ix.actionOnly[p.Action] = true
		}
	}
	return ix
}

// collect appends the sorted, distinct candidates for one provider/action.
func (ix *Index) collect(dst []int, provider, action string) []int {
	start := len(dst)
	dst = append(dst, ix.anywhere...)
	dst = append(dst, ix.exact[Pin{provider, action}]...)
	dst = append(dst, ix.exact[Pin{Provider: provider}]...)
	dst = append(dst, ix.exact[Pin{Action: action}]...)
	return sortUnique(dst, start)
}

func sortUnique(dst []int, start int) []int {
	s := dst[start:]
	if len(s) < 2 {
		return dst
	}
	sort.Ints(s)
	w := 1
	for r := 1; r < len(s); r++ {
		if s[r] != s[w-1] {
			s[w] = s[r]
			w++
		}
	}
	return dst[:start+w]
}

// Candidates returns, in dst's storage, the ids of the queries that may
// match a record with the given provider and action values (usually one of
// each). The result never shares the index's own storage: a caller may give
// it back as the next call's dst.
func (ix *Index) Candidates(dst []int, providers, actions []string) []int {
	if len(providers) == 1 && len(actions) == 1 {
		if m, ok := ix.merged[Pin{providers[0], actions[0]}]; ok {
			return append(dst[:0], m...)
		}
		if !ix.actionOnly[actions[0]] {
			if m, ok := ix.byProvider[providers[0]]; ok {
				return append(dst[:0], m...)
			}
			return append(dst[:0], ix.anywhere...)
		}
	}
	if len(providers) == 0 {
		providers = []string{""}
	}
	if len(actions) == 0 {
		actions = []string{""}
	}
	dst = dst[:0]
	for _, p := range providers {
		for _, a := range actions {
			dst = append(dst, ix.anywhere...)
			dst = append(dst, ix.exact[Pin{p, a}]...)
			dst = append(dst, ix.exact[Pin{Provider: p}]...)
			dst = append(dst, ix.exact[Pin{Action: a}]...)
		}
	}
	return sortUnique(dst, 0)
}
