package matcher

import (
	"net/netip"
	"sort"
)

// The constructors a rule language's front end compiles into. Each test has
// Elasticsearch's semantics on the field's mapping: a keyword value past
// ignore_above is invisible, a value the mapping could not parse was never
// indexed, a missing field matches no test (so its negation is true), and a
// multi-valued field matches when any value does.

// Const is the test that is always b.
func Const(b bool) Cond { return constCond(b) }

// And is the conjunction of kids. Its tests are side-effect free, so they
// run in the order that decides most records soonest: cheap ones first, so
// that costly fields (Map.toString() text, flattened payloads) are read
// last, and tests that nearly every record passes after all the others,
// whatever their cost, since only a false test decides.
func And(kids []Cond) Cond {
	kids = append([]Cond(nil), kids...)
	sort.SliceStable(kids, func(i, j int) bool {
		if li, lj := likelyTrue(kids[i]), likelyTrue(kids[j]); li != lj {
			return lj
		}
		return cost(kids[i]) < cost(kids[j])
	})
	return andCond(kids)
}

// Or is the disjunction of kids; exact keyword tests and wildcards on one
// field merge into one read of the field and one hashed set.
func Or(kids []Cond) Cond { return mergeOr(kids) }

// Not is the negation of c (must_not: true when c's field is missing).
func Not(c Cond) Cond { return notCond{c} }

// InNested is true when one element of the nested field f satisfies c.
func InNested(f *Field, c Cond) Cond { return nestedCond{f: f, c: c} }

// Exists is true when f has a value its mapping indexed.
func Exists(f *Field) Cond { return existsCond{f: f} }

// Any is true when a searchable value of f satisfies p.
func Any(f *Field, p Pred) Cond { return anyCond{f: f, p: p} }

// Equal is exact, case-sensitive equality with s (a term query on a
// keyword).
func Equal(s string) Pred { return &eqSet{one: s} }

// Wildcard is Elasticsearch's wildcard query on a keyword: the literal parts
// joined by `*`, which matches any run of characters (newlines included),
// over the whole value.
func Wildcard(parts []string) Pred { return newGlob(parts) }

// TrailingWildcard reports whether the parts are a prefix query (`abc*`),
// the only wildcard Elasticsearch runs on a key of a flattened field.
func TrailingWildcard(parts []string) bool { return newGlob(parts).kind == globPrefix }

// StrCompare compares keyword text byte-wise with s; op is one of eq, lt,
// lte, gt, gte.
func StrCompare(op, s string) Pred { return strCmp{op: op, s: s} }

// NumCompare compares a numeric field's values with x (numeric strings are
// coerced as Elasticsearch coerces them); op as for StrCompare.
func NumCompare(op string, x float64) Pred { return numCmp{op: op, x: x} }

// CIDR tests that an address is in p, as Elasticsearch stores addresses (16
// bytes, IPv4 mapped into ::ffff:0:0/96).
func CIDR(p netip.Prefix) Pred { return newCIDR(p) }

// IPCompare orders addresses as Elasticsearch does (all as IPv6); op as for
// StrCompare.
func IPCompare(op string, a netip.Addr) Pred { return ipCmp{op: op, a: a} }

// DateCompare compares a date field's values with date math resolved at
// evaluation, rounding as Elasticsearch rounds (gt and lte up, gte and lt
// down; eq covers the rounded span); op as for StrCompare.
func DateCompare(op string, d DateMath) Pred { return dateCmp{op: op, d: d} }

// ParseBool reads a boolean as Elasticsearch's boolean field takes it: only
// "true" and "false".
func ParseBool(s string) (bool, bool) {
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
