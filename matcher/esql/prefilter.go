package esql

import (
	"github.com/trailwatch/trailwatch/matcher"
)

// The prefilter is a necessary condition for a record to give a row: the
// tests of the WHEREs before STATS that are equalities of a keyword field
// of the record with string literals (`f == "x"`, `"x" == f`,
// `f IN ("x", "y")`), joined by the AND and OR around them; everything else
// is left out (an AND keeps the conjuncts it can express, an OR is left out
// unless every branch can be). In ES|QL such a comparison is true only when
// the field has exactly one value and it is the literal, so the core's
// Any(f, Equal(x)) holds whenever it does. Equalities on event.provider
// and event.action are what the candidate index pins a rule by.

type pkind uint8

const (
	pTrue pkind = iota
	pFalse
	pEq  // field among vals
	pAnd // kids
	pOr  // kids
)

type pnode struct {
	kind  pkind
	field *matcher.Field
	vals  []string
	kids  []*pnode
}

var (
	pnTrue  = &pnode{kind: pTrue}
	pnFalse = &pnode{kind: pFalse}
)

func andNode(kids []*pnode) *pnode { return joinNodes(pAnd, pTrue, pFalse, kids) }

func orNode(kids []*pnode) *pnode { return joinNodes(pOr, pFalse, pTrue, kids) }

// joinNodes is the conjunction (pAnd) or disjunction (pOr) of kids,
// flattened, with the identity left out and the absorbing constant
// deciding.
func joinNodes(kind, identity, absorbing pkind, kids []*pnode) *pnode {
	var keep []*pnode
	for _, k := range kids {
		switch k.kind {
		case identity:
			continue
		case absorbing:
			return k
		case kind:
			keep = append(keep, k.kids...)
			continue
		}
		keep = append(keep, k)
	}
	switch len(keep) {
	case 0:
		if identity == pTrue {
			return pnTrue
		}
		return pnFalse
	case 1:
		return keep[0]
	}
	return &pnode{kind: kind, kids: keep}
}

// approx is the necessary condition of a WHERE's condition (pTrue when it
// implies nothing expressible).
func (c *compiler) approx(e *expr, en *env) *pnode {
	switch e.kind {
	case exAnd:
		return andNode([]*pnode{c.approx(e.args[0], en), c.approx(e.args[1], en)})
	case exOr:
		return orNode([]*pnode{c.approx(e.args[0], en), c.approx(e.args[1], en)})
	case exLit:
		if e.lit == litBool && e.text == "false" || e.lit == litNull {
			return pnFalse
		}
	case exCmp:
		if e.op != "==" {
			return pnTrue
		}
		f, lit := e.args[0], e.args[1]
		if f.kind != exField {
			f, lit = lit, f
		}
		if fld := c.keywordField(f, en); fld != nil && lit.kind == exLit && lit.lit == litString {
			return &pnode{kind: pEq, field: fld, vals: []string{lit.text}}
		}
	case exIn:
		fld := c.keywordField(e.args[0], en)
		if fld == nil || e.neg {
			return pnTrue
		}
		n := &pnode{kind: pEq, field: fld}
		for _, it := range e.args[1:] {
			if it.kind != exLit || it.lit != litString && it.lit != litNull {
				return pnTrue
			}
			if it.lit == litString {
				n.vals = append(n.vals, it.text)
			}
		}
		if len(n.vals) == 0 {
			return pnFalse
		}
		return n
	}
	return pnTrue
}

// keywordField is the record's keyword field e names, when e is a field
// reference that reaches the record as it is (not a computed or renamed
// column).
func (c *compiler) keywordField(e *expr, en *env) *matcher.Field {
	if e.kind != exField || en.find(e.name) >= 0 || !en.sourceVisible(e.name) {
		return nil
	}
	col := c.sourceColumn(e.name, e.pos)
	if col.t != tyKeyword || col.field.Name != e.name || col.field.FlattenedRoot != "" || col.field.Type != matcher.Keyword {
		return nil
	}
	return col.field
}

// assume replaces tests of fields whose value is known.
func (n *pnode) assume(known map[string]string) *pnode {
	switch n.kind {
	case pEq:
		v, ok := known[n.field.Name]
		if !ok {
			return n
		}
		for _, x := range n.vals {
			if x == v {
				return pnTrue
			}
		}
		return pnFalse
	case pAnd, pOr:
		kids := make([]*pnode, len(n.kids))
		for i, k := range n.kids {
			kids[i] = k.assume(known)
		}
		if n.kind == pAnd {
			return andNode(kids)
		}
		return orNode(kids)
	}
	return n
}

func (n *pnode) cond() matcher.Cond {
	switch n.kind {
	case pTrue:
		return matcher.Const(true)
	case pFalse:
		return matcher.Const(false)
	case pEq:
		kids := make([]matcher.Cond, len(n.vals))
		for i, v := range n.vals {
			kids[i] = matcher.Any(n.field, matcher.Equal(v))
		}
		if len(kids) == 1 {
			return kids[0]
		}
		return matcher.Or(kids)
	}
	kids := make([]matcher.Cond, len(n.kids))
	for i, k := range n.kids {
		kids[i] = k.cond()
	}
	if n.kind == pAnd {
		return matcher.And(kids)
	}
	return matcher.Or(kids)
}

func (n *pnode) fields(seen map[*matcher.Field]bool, out []*matcher.Field) []*matcher.Field {
	if n.kind == pEq && !seen[n.field] {
		seen[n.field] = true
		out = append(out, n.field)
	}
	for _, k := range n.kids {
		out = k.fields(seen, out)
	}
	return out
}

// Prefilter is a necessary condition for Eval to give a row, as a query of
// the core's tests (see above): evaluate the program only on records it
// matches. Its pins are the rule's pins in the candidate index.
func (p *Program) Prefilter() *matcher.Query { return p.prefilter(p.prefilterTree) }

// PrefilterAssuming is Prefilter for records whose fields named in known
// each have exactly that one value (data_stream.dataset is aws.cloudtrail
// on every CloudTrail record, say): tests of those fields are decided, so
// that branches for other data streams drop out and the rest can pin.
func (p *Program) PrefilterAssuming(known map[string]string) *matcher.Query {
	return p.prefilter(p.prefilterTree.assume(known))
}

func (p *Program) prefilter(n *pnode) *matcher.Query {
	return matcher.NewQuery(p.src, n.cond(), n.fields(map[*matcher.Field]bool{}, nil), nil)
}
