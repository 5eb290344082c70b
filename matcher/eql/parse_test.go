package eql

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseCases: each query and its canonical form. The canonical form must
// parse to the same AST and print unchanged (checked for every case).
var parseCases = []struct{ name, in, want string }{
	// queries and categories
	{"category", `process where true`, `process where true`},
	{"any", `any where true`, `any where true`},
	{"quoted category", `"my-category" where true`, `"my-category" where true`},
	{"quoted plain category", `"process" where true`, `process where true`},
	{"raw category", `"""my category""" where true`, `"my category" where true`},
	{"category named like a keyword", `"any" where true`, `"any" where true`},
	{"category at sign", `@cat where true`, `@cat where true`},
	{"spacing and comments", "any\twhere /* c */ a ==\r\n 1 // done", `any where a == 1`},
	{"comment with a nested opener", `any where /* a /* b */ x`, `any where x`},

	// logic
	{"and binds tighter than or", `any where a or b and c`, `any where a or b and c`},
	{"parenthesised or under and", `any where (a or b) and c`, `any where (a or b) and c`},
	{"not binds tighter than and", `any where not a and b`, `any where not a and b`},
	{"not over a group", `any where not (a and b)`, `any where not (a and b)`},
	{"not not", `any where not not a`, `any where not not a`},
	{"not over a comparison", `any where not a == 1`, `any where not a == 1`},
	{"chains flatten", `any where a and (b and c) and ((d))`, `any where a and b and c and d`},
	{"or chains flatten", `any where (a or b) or (c or d)`, `any where a or b or c or d`},

	// comparisons
	{"==", `any where a == "x"`, `any where a == "x"`},
	{"!=", `any where a != "x"`, `any where a != "x"`},
	{"< <= > >=", `any where a < 1 and b <= 2 and c > 3 and d >= 4`, `any where a < 1 and b <= 2 and c > 3 and d >= 4`},
	{"comparison of two fields", `any where a == b`, `any where a == b`},
	{"comparison with a predicate operand", `any where a in (1) == true`, `any where a in (1) == true`},
	{"comparison of a group", `any where (a and b) == true`, `any where (a and b) == true`},

	// pattern and list operators
	{":", `any where a:"x*"`, `any where a : "x*"`},
	{": list", `any where a : ("x", "y?")`, `any where a : ("x", "y?")`},
	{": one-element list", `any where a : ("x")`, `any where a : "x"`},
	{"like", `any where a like "X*"`, `any where a like "X*"`},
	{"like~ list", `any where a like~ ("x*", "y")`, `any where a like~ ("x*", "y")`},
	{"regex", `any where a regex "[a-z]+\\d"`, `any where a regex "[a-z]+\\d"`},
	{"regex~ list", `any where a regex~ ("a.*", "b")`, `any where a regex~ ("a.*", "b")`},
	{"pattern constants", `any where a : (1, 2.5, true, null)`, `any where a : (1, 2.5, true, null)`},
	{"in", `any where a in ("x", "y")`, `any where a in ("x", "y")`},
	{"in~", `any where a in~ ("x")`, `any where a in~ ("x")`},
	{"not in", `any where a not in (1, 2)`, `any where a not in (1, 2)`},
	{"not in~", `any where a not in~ ("x", "y")`, `any where a not in~ ("x", "y")`},
	{"in with expressions", `any where a in (b, 1 + 2, f(c))`, `any where a in (b, 1 + 2, f(c))`},
	{"predicate on a call", `any where length(a) in (1, 2)`, `any where length(a) in (1, 2)`},
	{"predicate on a group", `any where (a + b) in (1)`, `any where (a + b) in (1)`},
	{"predicate on a string", `any where "abc" : "a*"`, `any where "abc" : "a*"`},
	{"not before a predicate", `any where not a : "x"`, `any where not a : "x"`},

	// functions
	{"call", `any where stringContains(a, "b")`, `any where stringContains(a, "b")`},
	{"call~", `any where startsWith~(a, "B")`, `any where startsWith~(a, "B")`},
	{"call with a space", `any where stringContains (a.b, "c")`, `any where stringContains(a.b, "c")`},
	{"call~ with a space", `any where endsWith~ (a, "c")`, `any where endsWith~(a, "c")`},
	{"call without arguments", `any where f()`, `any where f()`},
	{"call in a comparison", `any where length(a) > 3`, `any where length(a) > 3`},
	{"nested calls", `any where substring(concat(a, "x"), 1, -1) == "y"`, `any where substring(concat(a, "x"), 1, -1) == "y"`},
	{"call with conditions", `any where f(a and b, not c)`, `any where f(a and b, not c)`},
	{"call named like an operator", `any where and~(a)`, `any where and~(a)`},
	{"every function the issue names", `any where between(a, "x", "y", true) and cidrMatch(source.ip, "10.0.0.0/8", "::1/128") and indexOf(a, "x", 2) == 3 and number(a, 16) == 255 and string(1) == "1" and wildcard(a, "x*") and add(1, 2) == subtract(5, 2) and multiply(2, 3) == divide(12, 2) and modulo(7, 4) == 3`,
		`any where between(a, "x", "y", true) and cidrMatch(source.ip, "10.0.0.0/8", "::1/128") and indexOf(a, "x", 2) == 3 and number(a, 16) == 255 and string(1) == "1" and wildcard(a, "x*") and add(1, 2) == subtract(5, 2) and multiply(2, 3) == divide(12, 2) and modulo(7, 4) == 3`},

	// arithmetic
	{"precedence", `any where a + b * c == 1`, `any where a + b * c == 1`},
	{"group", `any where (a + b) * c == 1`, `any where (a + b) * c == 1`},
	{"left association", `any where a - b - c == 1`, `any where a - b - c == 1`},
	{"right group", `any where a - (b - c) == 1`, `any where a - (b - c) == 1`},
	{"/ and %", `any where a / 2 % 3 == 1`, `any where a / 2 % 3 == 1`},
	{"right group of a product", `any where a / (b * c) == 1`, `any where a / (b * c) == 1`},
	{"unary minus binds tightest", `any where -a * b == 1`, `any where -a * b == 1`},
	{"minus over a group", `any where -(a * b) == 1`, `any where -(a * b) == 1`},
	{"minus minus", `any where - -a == 1`, `any where --a == 1`},
	{"minus of a negative", `any where a - -1 == 1`, `any where a - -1 == 1`},
	{"unary plus leaves no node", `any where +a == +1`, `any where a == 1`},
	{"predicate under minus", `any where -a in (1)`, `any where -a in (1)`},
	{"predicate under plus", `any where 1 + a in (1)`, `any where 1 + a in (1)`},
	{"arithmetic as a condition", `any where a + 1`, `any where a + 1`},

	// literals
	{"integers", `any where a == 0 or a == 42 or a == 9223372036854775807`, `any where a == 0 or a == 42 or a == 9223372036854775807`},
	{"integer beyond unsigned long", `any where a == 99999999999999999999`, `any where a == 1e+20`},
	{"decimals", `any where a == 1.5 or a == .5 or a == 2. or a == 1e3 or a == 1.5E-3 or a == 1e+21`, `any where a == 1.5 or a == 0.5 or a == 2.0 or a == 1000.0 or a == 0.0015 or a == 1e+21`},
	{"exponent needs digits", `process where a == 1 and b == 2`, `process where a == 1 and b == 2`},
	{"booleans and null", `any where a == true or b == false or c == null`, `any where a == true or b == false or c == null`},
	{"escapes", `any where a == "t\tn\nr\rb\bf\f q\" a\' s\\"`, `any where a == "t\tn\nr\rb\bf\f q\" a' s\\"`},
	{"unicode escapes", `any where a == "\u{e9}\u{0000200F}\u{1F600}\u{00}"`, "any where a == \"é\u200f😀\\u{00}\""},
	{"characters as they are", "any where a == \"é\u00a0\u2028\"", "any where a == \"é\u00a0\u2028\""},
	{"raw string", `any where a == """C:\Windows\*"""`, `any where a == "C:\\Windows\\*"`},
	{"raw string with quotes", `any where a == """say "hi""""`, `any where a == "say \"hi\""`},
	{"raw string with two closing quotes", `any where a == """x"""""`, `any where a == "x\"\""`},
	{"empty raw string", `any where a == """"""`, `any where a == ""`},
	{"empty string", `any where a == ""`, `any where a == ""`},
	{"a star in a string", `any where stringContains(a, "x=*")`, `any where stringContains(a, "x=*")`},

	// fields
	{"dotted", `any where a.b.c == 1`, `any where a.b.c == 1`},
	{"spaces around dots", `any where a . b == 1`, `any where a.b == 1`},
	{"at sign and underscore", `any where @timestamp > 0 and _id == "x" and a.@b == 1`, `any where @timestamp > 0 and _id == "x" and a.@b == 1`},
	{"backticks", "any where `my field`.x == 1", "any where `my field`.x == 1"},
	{"needless backticks", "any where `plain`.`x` == 1", `any where plain.x == 1`},
	{"doubled backtick", "any where `a``b` == 1", "any where `a``b` == 1"},
	{"keyword as a name", "any where a.`sequence` == 1 and `AND` == 2", "any where a.`sequence` == 1 and AND == 2"},
	{"backticks around a dot", "any where `a.b` == 1", "any where `a.b` == 1"},
	{"digits first", "any where `6field` == 1", "any where `6field` == 1"},
	{"optional", `any where ?a.b != null`, `any where ?a.b != null`},
	{"optional with a space", "any where ? `a b` == null", "any where ?`a b` == null"},
	{"upper-case keywords are names", `any where AND == OR`, `any where AND == OR`},

	// sequences
	{"sequence", `sequence [process where a] [file where b]`, `sequence [process where a] [file where b]`},
	{"sequence by with maxspan", "sequence by a, ?b with maxspan=15m\n  [process where x] by c\n  [any where y] by d\nuntil [file where z] by e",
		`sequence by a, ?b with maxspan=15m [process where x] by c [any where y] by d until [file where z] by e`},
	{"maxspan spaced", `sequence with maxspan = 30 s [a where x] [b where y]`, `sequence with maxspan=30s [a where x] [b where y]`},
	{"maxspan units", `sequence with maxspan=250ms [a where x] [b where y]`, `sequence with maxspan=250ms [a where x] [b where y]`},
	{"missing event", `sequence with maxspan=1h [a where x] ![b where y] [c where z]`, `sequence with maxspan=1h [a where x] ![b where y] [c where z]`},
	{"missing event first", `sequence by k with maxspan=5s ![a where x] [b where y]`, `sequence by k with maxspan=5s ![a where x] [b where y]`},
	{"runs", `sequence [a where x] by k with runs=3 [b where y] by j`, `sequence [a where x] by k with runs=3 [b where y] by j`},
	{"runs alone makes two", `sequence [a where x] with runs=2`, `sequence [a where x] with runs=2`},
	{"stage categories", `sequence ["x-y" where a] [any where b]`, `sequence ["x-y" where a] [any where b]`},
	{"stage keys only", "sequence [a where x] by `k 1` [b where y] by k2", "sequence [a where x] by `k 1` [b where y] by k2"},

	// pipes
	{"head", `any where a | head 5`, `any where a | head 5`},
	{"tail zero", `any where a | tail 0`, `any where a | tail 0`},
	{"two pipes", `sequence [a where x] [b where y] | head 10 | tail 2`, `sequence [a where x] [b where y] | head 10 | tail 2`},
}

func TestParse(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			st, err := Parse(c.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if got := st.String(); got != c.want {
				t.Fatalf("Parse(%q) printed\n got %s\nwant %s", c.in, got, c.want)
			}
			assertRoundTrip(t, st)
		})
	}
}

// assertRoundTrip checks that st's canonical form parses to the same AST and
// prints unchanged.
func assertRoundTrip(t *testing.T, st *Statement) {
	t.Helper()
	out := st.String()
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("canonical form %q does not parse: %v", out, err)
	}
	if !sameAST(st, again) {
		t.Fatalf("canonical form %q parses to another AST:\n%#v\n%#v", out, st, again)
	}
	if again.String() != out {
		t.Fatalf("canonical form not stable: %q then %q", out, again.String())
	}
}

var posType = reflect.TypeOf(Pos{})

// sameAST compares two nodes, positions aside.
func sameAST(a, b Node) bool {
	return reflect.DeepEqual(withoutPos(a), withoutPos(b))
}

// withoutPos is a copy of n (made by parsing its canonical form would lose
// nothing, but a deep copy keeps the test independent of the printer) with
// every Pos zeroed.
func withoutPos(n Node) any {
	v := reflect.New(reflect.TypeOf(n).Elem())
	v.Elem().Set(reflect.ValueOf(n).Elem())
	cp := deepCopy(v)
	zeroPos(cp)
	return cp.Interface()
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(deepCopy(v.Elem()))
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(deepCopy(v.Elem()))
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			c.Field(i).Set(deepCopy(v.Field(i)))
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	}
	return v
}

func zeroPos(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			zeroPos(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == posType {
			v.Set(reflect.Zero(posType))
			return
		}
		for i := range v.NumField() {
			zeroPos(v.Field(i))
		}
	case reflect.Slice:
		for i := range v.Len() {
			zeroPos(v.Index(i))
		}
	}
}

func mustParse(t *testing.T, src string) *Statement {
	t.Helper()
	st, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return st
}

func mustExpr(t *testing.T, src string) Expr {
	t.Helper()
	x, err := ParseExpr(src)
	if err != nil {
		t.Fatalf("ParseExpr(%q): %v", src, err)
	}
	return x
}

// TestTreeShapes checks the nodes themselves where the canonical form could
// hide a difference: operators, flags, values and the grouping of terms.
func TestTreeShapes(t *testing.T) {
	x := mustExpr(t, `a or b and not c`)
	or, ok := x.(*Logical)
	if !ok || or.Op != Or || len(or.Terms) != 2 {
		t.Fatalf("a or b and not c: %#v", x)
	}
	and, ok := or.Terms[1].(*Logical)
	if !ok || and.Op != And || len(and.Terms) != 2 {
		t.Fatalf("b and not c: %#v", or.Terms[1])
	}
	if n, ok := and.Terms[1].(*Not); !ok || n.X.(*Field).Name() != "c" {
		t.Fatalf("not c: %#v", and.Terms[1])
	}

	in := mustExpr(t, `a not in~ ("x", 1)`).(*In)
	if !in.Not || !in.CaseInsensitive || len(in.List) != 2 || in.List[0].(*String).Value != "x" || in.List[1].(*Int).Value != 1 {
		t.Fatalf("not in~: %#v", in)
	}
	for src, op := range map[string]MatchOp{`a : "x"`: Colon, `a like "x"`: Like, `a like~ "x"`: LikeI, `a regex "x"`: Regex, `a regex~ "x"`: RegexI} {
		if m := mustExpr(t, src).(*Match); m.Op != op || len(m.Patterns) != 1 {
			t.Errorf("%s: %#v", src, m)
		}
	}
	for src, op := range map[string]CompareOp{`a == 1`: Eq, `a != 1`: Neq, `a < 1`: Lt, `a <= 1`: Lte, `a > 1`: Gt, `a >= 1`: Gte} {
		if c := mustExpr(t, src).(*Compare); c.Op != op {
			t.Errorf("%s: %#v", src, c)
		}
	}
	for src, op := range map[string]ArithOp{`a + 1`: Add, `a - 1`: Sub, `a * 1`: Mul, `a / 1`: Div, `a % 1`: Mod} {
		if c := mustExpr(t, src).(*Arith); c.Op != op {
			t.Errorf("%s: %#v", src, c)
		}
	}
	c := mustExpr(t, `stringContains~(a, "b")`).(*Call)
	if c.Name != "stringContains" || !c.CaseInsensitive || len(c.Args) != 2 {
		t.Fatalf("call: %#v", c)
	}
	f := mustExpr(t, "?`a b`.c").(*Field)
	if !f.Optional || !reflect.DeepEqual(f.Parts, []string{"a b", "c"}) || f.Name() != "a b.c" {
		t.Fatalf("field: %#v", f)
	}
	if v := mustExpr(t, `1.5e3`).(*Float).Value; v != 1500 {
		t.Fatalf("1.5e3 = %v", v)
	}
	if v := mustExpr(t, `-9223372036854775807`).(*Neg).X.(*Int).Value; v != 9223372036854775807 {
		t.Fatalf("negative literal: %v", v)
	}
	if s := mustExpr(t, `"""a\b"""`).(*String).Value; s != `a\b` {
		t.Fatalf("raw string: %q", s)
	}
	if n := mustExpr(t, `null`); reflect.TypeOf(n) != reflect.TypeOf(&Null{}) {
		t.Fatalf("null: %#v", n)
	}
	if b := mustExpr(t, `false`).(*Bool); b.Value {
		t.Fatalf("false: %#v", b)
	}
}

func TestCategories(t *testing.T) {
	for src, want := range map[string]Category{
		`any where true`:       {Any: true},
		`iam where true`:       {Name: "iam"},
		`"any" where true`:     {Name: "any"},
		`"a b" where true`:     {Name: "a b"},
		`"""x\y""" where true`: {Name: `x\y`},
	} {
		got := *mustParse(t, src).Query.(*EventQuery).Category
		got.Pos = Pos{}
		if got != want {
			t.Errorf("%s: category %+v, want %+v", src, got, want)
		}
	}
}

func TestSequence(t *testing.T) {
	src := "sequence by a with maxspan=2h\n[x where true] by b with runs=2\n![y where true] by c\nuntil [z where true] by d"
	st := mustParse(t, src)
	seq, ok := st.Query.(*Sequence)
	if !ok {
		t.Fatalf("not a sequence: %T", st.Query)
	}
	if seq.MaxSpan.Duration() != 2*time.Hour || seq.MaxSpan.Pos != (Pos{Offset: 27, Line: 1, Col: 28}) {
		t.Fatalf("maxspan %+v", seq.MaxSpan)
	}
	if len(seq.Stages) != 2 || seq.Stages[0].Runs != 2 || seq.Stages[0].Missing || !seq.Stages[1].Missing || seq.Stages[1].Runs != 0 {
		t.Fatalf("stages %+v %+v", seq.Stages[0], seq.Stages[1])
	}
	if seq.Stages[1].Pos != (Pos{Offset: strings.Index(src, "!["), Line: 3, Col: 1}) {
		t.Fatalf("second stage at %v", seq.Stages[1].Pos)
	}
	if seq.Until == nil || seq.Until.Query.Category.Name != "z" {
		t.Fatalf("until %+v", seq.Until)
	}
	var keys []string
	for _, k := range seq.Stages[1].Keys(seq) {
		keys = append(keys, k.Name())
	}
	if !reflect.DeepEqual(keys, []string{"a", "c"}) {
		t.Fatalf("keys of the second stage: %v", keys)
	}
	for unit, d := range map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour} {
		seq := mustParse(t, "sequence with maxspan=3"+unit+" [a where true] [b where true]").Query.(*Sequence)
		if seq.MaxSpan.Duration() != 3*d {
			t.Errorf("3%s is %v", unit, seq.MaxSpan.Duration())
		}
	}
	if seq := mustParse(t, "sequence [a where true] [b where true]").Query.(*Sequence); seq.MaxSpan != nil || seq.By != nil || seq.Until != nil {
		t.Fatalf("bare sequence: %+v", seq)
	}
}

func TestPipes(t *testing.T) {
	st := mustParse(t, "any where true | head 3 | tail 0")
	if len(st.Pipes) != 2 || *st.Pipes[0] != (Pipe{Pos: Pos{Offset: 15, Line: 1, Col: 16}, Name: "head", Count: 3}) || st.Pipes[1].Name != "tail" || st.Pipes[1].Count != 0 {
		t.Fatalf("pipes %+v %+v", st.Pipes[0], st.Pipes[1])
	}
}

// TestPositions: every node carries the place it starts, in characters;
// binary nodes also carry their operator's.
func TestPositions(t *testing.T) {
	src := "any where\n  `é`.x == \"é\" and\n\tf(a) : \"b\" or -c in (1)"
	st := mustParse(t, src)
	check := func(what string, got, want Pos) {
		t.Helper()
		if got != want {
			t.Errorf("%s at %+v, want %+v", what, got, want)
		}
	}
	or := st.Query.(*EventQuery).Cond.(*Logical)
	and := or.Terms[0].(*Logical)
	cmp := and.Terms[0].(*Compare)
	check("statement", st.Pos, Pos{0, 1, 1})
	check("category", st.Query.(*EventQuery).Category.Pos, Pos{0, 1, 1})
	check("or", or.Pos, Pos{12, 2, 3})
	check("comparison", cmp.Pos, Pos{12, 2, 3})
	check("field", cmp.X.Position(), Pos{12, 2, 3})
	check("==", cmp.OpPos, Pos{19, 2, 9})
	check("string", cmp.Y.Position(), Pos{22, 2, 12})
	m := and.Terms[1].(*Match)
	check("call", m.X.Position(), Pos{32, 3, 2})
	check(":", m.OpPos, Pos{37, 3, 7})
	check("pattern", m.Patterns[0].Position(), Pos{39, 3, 9})
	neg := or.Terms[1].(*Neg)
	check("neg", neg.Pos, Pos{46, 3, 16})
	in := neg.X.(*In)
	check("in", in.Pos, Pos{47, 3, 17})
	check("in operator", in.OpPos, Pos{49, 3, 19})
	check("list item", in.List[0].Position(), Pos{53, 3, 23})
}
