package eql

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestDepthLimit: nesting past MaxDepth is refused at the token that goes
// past it, whatever nests (a hostile query must not exhaust the stack); up to
// MaxDepth parses, and the AST can be walked and printed.
func TestDepthLimit(t *testing.T) {
	const prefix = "any where "
	deep := func(open, atom, close string, n int) string {
		return prefix + strings.Repeat(open, n) + atom + strings.Repeat(close, n)
	}
	for _, c := range []struct {
		name              string
		open, atom, close string
		levels            int // levels of nesting one opener adds
		at                int // where in the opener the level past the limit is entered
	}{
		{"parentheses", "(", "a", ")", 1, 0},
		{"not", "not ", "a", "", 1, 0},
		{"unary minus", "-", "a", "", 1, 0},
		{"unary plus", "+", "a", "", 1, 0},
		{"calls", "f(", "a", ")", 1, 1},
		{"in lists", "a in (", "1", ")", 1, 5},
		{"mixed", "not (-f(", "a", "))", 4, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			fit := MaxDepth / c.levels
			ok := deep(c.open, c.atom, c.close, fit)
			st, err := Parse(ok)
			if err != nil {
				t.Fatalf("nesting up to the limit: %v", err)
			}
			assertRoundTrip(t, st)
			assertPositions(t, ok, st)

			for _, n := range []int{fit + 1, 100000} {
				src := deep(c.open, c.atom, c.close, n)
				_, err := Parse(src)
				var se *SyntaxError
				if !errors.As(err, &se) || se.Msg != fmt.Sprintf("expression nested deeper than %d levels", MaxDepth) {
					t.Fatalf("%d levels: %v", n, err)
				}
				if want := len(prefix) + fit*len(c.open) + c.at; se.Pos.Offset != want {
					t.Fatalf("%d levels: error at %v (offset %d), want offset %d", n, se.Pos, se.Pos.Offset, want)
				}
				assertPosConsistent(t, src, se.Pos)
			}
		})
	}

	// An arithmetic chain is as deep as it is long.
	chain := func(n int) string { return prefix + "1" + strings.Repeat(" + 1", n) }
	if _, err := Parse(chain(MaxDepth)); err != nil {
		t.Fatalf("chain of %d: %v", MaxDepth, err)
	}
	_, err := Parse(chain(MaxDepth + 1))
	if err == nil || err.Error() != fmt.Sprintf("1:%d: expression nested deeper than %d levels", len(prefix)+2+MaxDepth*4+1, MaxDepth) {
		t.Fatalf("chain of %d: %v", MaxDepth+1, err)
	}

	// A chain whose first operand is a parenthesised chain stacks on it: the
	// text nests three levels, the tree 600. The AST check refuses it, in
	// Parse and in ParseExpr.
	stacked := "1"
	for range 3 {
		stacked = "(" + stacked + strings.Repeat(" + 1", 200) + ")"
	}
	for _, parse := range []func(string) (Node, error){
		func(s string) (Node, error) { return Parse(prefix + s) },
		func(s string) (Node, error) { return ParseExpr(s) },
	} {
		_, err = parse(stacked)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Msg != fmt.Sprintf("expression nested deeper than %d levels", MaxDepth) {
			t.Fatalf("stacked chains: %v", err)
		}
	}
	if _, err := Parse(prefix + "(" + strings.Repeat("1 + ", 128) + "1)" + strings.Repeat(" + 1", 127)); err != nil {
		t.Fatalf("stacked chains within the limit: %v", err)
	}
}

// TestInspectDeepTree: Inspect keeps its own stack, so even a tree built by
// hand far deeper than the parser allows is walked whole.
func TestInspectDeepTree(t *testing.T) {
	var x Expr = &Field{Parts: []string{"leaf"}}
	const n = 1000000
	for range n {
		x = &Not{X: x}
	}
	count := 0
	Inspect(x, func(Node) bool { count++; return true })
	if count != n+1 {
		t.Fatalf("visited %d nodes, want %d", count, n+1)
	}
	if got := FieldNames(x); len(got) != 1 || got[0] != "leaf" {
		t.Fatalf("FieldNames = %q", got)
	}
}

// TestLongFlatQueries: long chains of and/or and long lists are flat, not
// deep: they parse, walk and print whatever their length.
func TestLongFlatQueries(t *testing.T) {
	const n = 20000
	terms := make([]string, n)
	for i := range terms {
		terms[i] = fmt.Sprintf("f%d == %d", i%7, i)
	}
	st := mustParse(t, "any where "+strings.Join(terms, " or "))
	or := st.Query.(*EventQuery).Cond.(*Logical)
	if len(or.Terms) != n {
		t.Fatalf("%d terms", len(or.Terms))
	}
	if got := FieldNames(st); len(got) != 7 {
		t.Fatalf("fields %q", got)
	}
	assertRoundTrip(t, st)

	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%q", fmt.Sprint(i))
	}
	in := mustExpr(t, "a in ("+strings.Join(items, ", ")+")").(*In)
	if len(in.List) != n || in.List[n-1].(*String).Value != fmt.Sprint(n-1) {
		t.Fatalf("list of %d", len(in.List))
	}
}

// TestLinearTime: parsing time grows with the size of the query, not faster:
// sixteen times the text must not take much more than sixteen times as long
// (a quadratic step would take 256 times). The bound leaves room for a busy
// machine and the collector: 128 times, and a quarter of a second.
func TestLinearTime(t *testing.T) {
	shapes := map[string]func(n int) string{
		"or chain":        func(n int) string { return "any where " + strings.Repeat(`a.b == "x" or `, n) + "c" },
		"in list":         func(n int) string { return "any where a in (" + strings.Repeat(`"x", `, n) + `"y")` },
		"string":          func(n int) string { return `any where a == "` + strings.Repeat(`x\t`, n) + `"` },
		"raw strings":     func(n int) string { return "any where a : (" + strings.Repeat(`"""x""", `, n) + `"y")` },
		"comment":         func(n int) string { return "any where /*" + strings.Repeat("* /", n) + "*/ a" },
		"line comments":   func(n int) string { return "any where " + strings.Repeat("// c\n", n) + "a" },
		"quoted name":     func(n int) string { return "any where `" + strings.Repeat("a``", n) + "` == 1" },
		"dotted name":     func(n int) string { return "any where a" + strings.Repeat(".b", n) + " == 1" },
		"multi-line":      func(n int) string { return "any where a in (" + strings.Repeat("\n\"é\",", n) + "1)" },
		"sequence stages": func(n int) string { return "sequence" + strings.Repeat(" [a where b]", n) },
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			small, large := shape(4000), shape(64000)
			ts, tl := parseTime(t, small), parseTime(t, large)
			if tl > 128*ts && tl > 250*time.Millisecond {
				t.Fatalf("%d bytes took %v, %d bytes %v: not linear", len(small), ts, len(large), tl)
			}
		})
	}
}

// parseTime is the shortest of three parses of src.
func parseTime(t *testing.T, src string) time.Duration {
	best := time.Duration(1 << 62)
	for range 3 {
		runtime.GC()
		start := time.Now()
		if _, err := Parse(src); err != nil {
			t.Fatalf("%.40s...: %v", src, err)
		}
		best = min(best, time.Since(start))
	}
	return best
}
