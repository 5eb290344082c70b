package eql

// Inspect walks the AST depth-first from n, in the order the nodes are
// written, calling f for each node; when f returns false the node's children
// are skipped. It keeps its own stack, so no tree is too deep for it.
func Inspect(n Node, f func(Node) bool) {
	walk(n, func(n Node, _ int) bool { return f(n) })
}

// walk is Inspect with each node's depth below n (n's own is 0).
func walk(n Node, f func(n Node, depth int) bool) {
	type frame struct {
		n     Node
		depth int
	}
	stack := []frame{{n, 0}}
	var kids []Node
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if isNil(top.n) || !f(top.n, top.depth) {
			continue
		}
		kids = children(kids[:0], top.n)
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, frame{kids[i], top.depth + 1})
		}
	}
}

// isNil reports whether n is nil or a nil pointer of a node type (an absent
// MaxSpan or Until).
func isNil(n Node) bool {
	switch n := n.(type) {
	case nil:
		return true
	case *MaxSpan:
		return n == nil
	case *Stage:
		return n == nil
	}
	return false
}

// children appends n's children to dst in the order they are written.
func children(dst []Node, n Node) []Node {
	switch n := n.(type) {
	case *Statement:
		dst = append(dst, n.Query)
		for _, p := range n.Pipes {
			dst = append(dst, p)
		}
	case *EventQuery:
		dst = append(dst, n.Category, n.Cond)
	case *Sequence:
		dst = appendFields(dst, n.By)
		dst = append(dst, n.MaxSpan)
		for _, s := range n.Stages {
			dst = append(dst, s)
		}
		dst = append(dst, n.Until)
	case *Stage:
		dst = append(dst, n.Query)
		dst = appendFields(dst, n.By)
	case *Logical:
		dst = appendExprs(dst, n.Terms)
	case *Not:
		dst = append(dst, n.X)
	case *Compare:
		dst = append(dst, n.X, n.Y)
	case *In:
		dst = appendExprs(append(dst, n.X), n.List)
	case *Match:
		dst = appendExprs(append(dst, n.X), n.Patterns)
	case *Arith:
		dst = append(dst, n.X, n.Y)
	case *Neg:
		dst = append(dst, n.X)
	case *Call:
		dst = appendExprs(dst, n.Args)
	}
	return dst
}

func appendExprs(dst []Node, xs []Expr) []Node {
	for _, x := range xs {
		dst = append(dst, x)
	}
	return dst
}

func appendFields(dst []Node, fs []*Field) []Node {
	for _, f := range fs {
		dst = append(dst, f)
	}
	return dst
}

// FieldNames lists the names of the fields n reads, join keys included, each
// once, in the order they are first written. The event category field is not
// among them: which field that is depends on the rule
// (event_category_override), not on the query.
func FieldNames(n Node) []string {
	var names []string
	seen := map[string]bool{}
	Inspect(n, func(n Node) bool {
		if f, ok := n.(*Field); ok && !seen[f.Name()] {
			seen[f.Name()] = true
			names = append(names, f.Name())
		}
		return true
	})
	return names
}

// Calls lists the function calls in n, in the order they are written.
func Calls(n Node) []*Call {
	var calls []*Call
	Inspect(n, func(n Node) bool {
		if c, ok := n.(*Call); ok {
			calls = append(calls, c)
		}
		return true
	})
	return calls
}
