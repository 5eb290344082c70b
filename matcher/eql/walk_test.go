package eql

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestFieldNames(t *testing.T) {
	for src, want := range map[string][]string{
		`any where true`: nil,
		`process where a.b == 1 and (c : "x" or not d in (e, "y")) and f(g, length(h)) > -i + j * 2 and a.b != k`: {"a.b", "c", "d", "e", "g", "h", "i", "j", "k"},
		"any where ?`x y`.z == null and `x y`.z == 1":                                                             {"x y.z"},
		`sequence by k with maxspan=1m [a where p] by q [b where r] by s until [c where u] by v`:                  {"k", "p", "q", "r", "s", "u", "v"},
		`any where a like~ ("x", "y") and "lit" : "l*"`:                                                           {"a"},
	} {
		if got := FieldNames(mustParse(t, src)); !reflect.DeepEqual(got, want) {
			t.Errorf("FieldNames(%s) = %q, want %q", src, got, want)
		}
	}
}

func TestCalls(t *testing.T) {
	var got []string
	for _, c := range Calls(mustParse(t, `any where stringContains(a, "x") or not startsWith~(concat(b, "y"), "z")`)) {
		got = append(got, fmt.Sprintf("%s %v %d", c.Name, c.CaseInsensitive, len(c.Args)))
	}
	if want := []string{"stringContains false 2", "startsWith true 2", "concat false 2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Calls = %q, want %q", got, want)
	}
}

// TestInspectOrder: nodes come in the order they are written, each once, and
// returning false skips a node's children.
func TestInspectOrder(t *testing.T) {
	st := mustParse(t, `sequence by k with maxspan=1m [a where x == 1] by y [b where not z] by v until [c where w] by u | head 2`)
	var got []string
	Inspect(st, func(n Node) bool {
		got = append(got, fmt.Sprintf("%T %s", n, n))
		return true
	})
	want := []string{
		"*eql.Statement " + st.String(),
		"*eql.Sequence " + st.Query.String(),
		"*eql.Field k",
		"*eql.MaxSpan 1m",
		"*eql.Stage [a where x == 1] by y",
		"*eql.EventQuery a where x == 1",
		"*eql.Category a",
		"*eql.Compare x == 1",
		"*eql.Field x",
		"*eql.Int 1",
		"*eql.Field y",
		"*eql.Stage [b where not z] by v",
		"*eql.EventQuery b where not z",
		"*eql.Category b",
		"*eql.Not not z",
		"*eql.Field z",
		"*eql.Field v",
		"*eql.Stage [c where w] by u",
		"*eql.EventQuery c where w",
		"*eql.Category c",
		"*eql.Field w",
		"*eql.Field u",
		"*eql.Pipe head 2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Inspect order:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var visited []string
	Inspect(mustParse(t, `any where f(a) and not b`), func(n Node) bool {
		visited = append(visited, n.String())
		_, isCall := n.(*Call)
		_, isNot := n.(*Not)
		return !isCall && !isNot
	})
	if want := []string{"any where f(a) and not b", "any where f(a) and not b", "any", "f(a) and not b", "f(a)", "not b"}; !reflect.DeepEqual(visited, want) {
		t.Fatalf("Inspect with pruning visited %q, want %q", visited, want)
	}
}

// TestNodeStrings: each node prints on its own as it would inside a query.
func TestNodeStrings(t *testing.T) {
	st := mustParse(t, `sequence by k with maxspan=90s [any where x : ("a", "b")] by `+"`y z`"+` with runs=3 ![c where true] by q | tail 4`)
	seq := st.Query.(*Sequence)
	for got, want := range map[string]string{
		seq.MaxSpan.String():                   "90s",
		seq.Stages[0].String():                 "[any where x : (\"a\", \"b\")] by `y z` with runs=3",
		seq.Stages[1].String():                 "![c where true] by q",
		seq.Stages[0].Query.Category.String():  "any",
		seq.Stages[1].Query.Category.String():  "c",
		seq.Stages[0].Query.Cond.String():      `x : ("a", "b")`,
		st.Pipes[0].String():                   "tail 4",
		mustExpr(t, `"a\"b"`).String():         `"a\"b"`,
		mustExpr(t, `-(1 + 2) * 3`).String():   `-(1 + 2) * 3`,
		mustExpr(t, `1.0`).String():            `1.0`,
		(&Category{Name: "x y"}).String():      `"x y"`,
		(&Category{Name: "sequence"}).String(): `"sequence"`,
		(&String{Value: "\x01\x7f"}).String():  `"\u{01}\u{7f}"`,
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
