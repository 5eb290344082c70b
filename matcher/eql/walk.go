package eql

// Inspect walks the AST depth-first from n, in the order the nodes are
// written, calling f for each node; when f returns false the node's children
// are skipped. The parser's depth limit bounds the recursion.
func Inspect(n Node, f func(Node) bool) {
	if n == nil || !f(n) {
		return
	}
	switch n := n.(type) {
	case *Statement:
		Inspect(n.Query, f)
		for _, p := range n.Pipes {
			Inspect(p, f)
		}
	case *EventQuery:
		Inspect(n.Category, f)
		Inspect(n.Cond, f)
	case *Sequence:
		for _, k := range n.By {
			Inspect(k, f)
		}
		if n.MaxSpan != nil {
			Inspect(n.MaxSpan, f)
		}
		for _, s := range n.Stages {
			Inspect(s, f)
		}
		if n.Until != nil {
			Inspect(n.Until, f)
		}
	case *Stage:
		Inspect(n.Query, f)
		for _, k := range n.By {
			Inspect(k, f)
		}
	case *Logical:
		inspectAll(n.Terms, f)
	case *Not:
		Inspect(n.X, f)
	case *Compare:
		Inspect(n.X, f)
		Inspect(n.Y, f)
	case *In:
		Inspect(n.X, f)
		inspectAll(n.List, f)
	case *Match:
		Inspect(n.X, f)
		inspectAll(n.Patterns, f)
	case *Arith:
		Inspect(n.X, f)
		Inspect(n.Y, f)
	case *Neg:
		Inspect(n.X, f)
	case *Call:
		inspectAll(n.Args, f)
	}
}

func inspectAll(xs []Expr, f func(Node) bool) {
	for _, x := range xs {
		Inspect(x, f)
	}
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
