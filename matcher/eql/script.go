package eql

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/trailwatch/trailwatch/matcher"
)

// Scripts: what Elasticsearch evaluates per document rather than as a query
// (a function's value compared, arithmetic, a field against a field). A
// script reads the fields' values (numbers as numbers on numeric fields,
// booleans on boolean ones, text otherwise) and is true when any
// combination of them makes it true; a missing field is null, and null
// propagates (a comparison with null is not true).

type function struct {
	min, max int  // arguments; max -1: any number
	boolean  bool // returns a condition
}

func (f function) arity() string {
	switch {
	case f.max < 0:
		return fmt.Sprintf("%d or more", f.min)
	case f.min == f.max:
		return strconv.Itoa(f.min)
	}
	return fmt.Sprintf("%d to %d", f.min, f.max)
}

// functions are EQL's string, network and math functions, by lower-case
// name (Elasticsearch looks them up so).
var functions = map[string]function{
	"add": {2, 2, false}, "subtract": {2, 2, false}, "multiply": {2, 2, false},
	"divide": {2, 2, false}, "modulo": {2, 2, false},
	"between":        {3, 4, false},
	"cidrmatch":      {2, -1, true},
	"concat":         {1, -1, false},
	"endswith":       {2, 2, true},
	"indexof":        {2, 3, false},
	"length":         {1, 1, false},
	"number":         {1, 2, false},
	"startswith":     {2, 2, true},
	"string":         {1, 1, false},
	"stringcontains": {2, 2, true},
	"substring":      {2, 3, false},
	"wildcard":       {2, -1, true},
}

// maxCombos bounds the combinations of multi-valued fields a script tries.
const maxCombos = 1024

// script compiles x to a test evaluated on each record's values.
func (c *compiler) script(x Expr) (matcher.Cond, error) {
	if err := c.checkScript(x); err != nil {
		return nil, err
	}
	return scriptCond{c: c.reads.Schema, x: x, fields: c.fieldsOf(x)}, nil
}

// checkScript refuses what a script cannot evaluate, with its place.
func (c *compiler) checkScript(x Expr) error {
	var err error
	Inspect(x, func(n Node) bool {
		if err != nil {
			return false
		}
		switch n := n.(type) {
		case *Call:
			fn, ok := functions[strings.ToLower(n.Name)]
			if !ok {
				err = at(n.Pos, "unknown function %s", n.Name)
			} else if len(n.Args) < fn.min || (fn.max >= 0 && len(n.Args) > fn.max) {
				err = at(n.Pos, "%s takes %s arguments, not %d", strings.ToLower(n.Name), fn.arity(), len(n.Args))
			}
		case *Match:
			for _, p := range n.Patterns {
				if _, _, null, ok := constant(p); !ok || null {
					err = at(p.Position(), "a pattern must be a constant")
				} else if n.Op == Regex || n.Op == RegexI {
					s, _, _, _ := constant(p)
					if _, rerr := matcher.Regexp(s, false); rerr != nil {
						err = at(p.Position(), "%v", rerr)
					}
				}
			}
		}
		return true
	})
	return err
}

func (c *compiler) fieldsOf(x Expr) map[string]*matcher.Field {
	out := map[string]*matcher.Field{}
	for _, name := range FieldNames(x) {
		out[name] = c.reads.Field(name)
	}
	return out
}

type scriptCond struct {
	c      *matcher.Schema
	x      Expr
	fields map[string]*matcher.Field
}

func (s scriptCond) Eval(fs matcher.Fields) bool {
	for _, v := range s.eval(s.x, fs) {
		if b, ok := v.(bool); ok && b {
			return true
		}
	}
	return false
}

// combos calls fn with every combination of the argument lists' values,
// at most maxCombos.
func combos(args [][]any, fn func([]any)) {
	n := 1
	for _, a := range args {
		n *= len(a)
		if n > maxCombos {
			n = maxCombos
		}
	}
	cur := make([]any, len(args))
	for i := range n {
		k := i
		for j := len(args) - 1; j >= 0; j-- {
			cur[j] = args[j][k%len(args[j])]
			k /= len(args[j])
		}
		fn(cur)
	}
}

func (s scriptCond) eval(x Expr, fs matcher.Fields) []any {
	switch x := x.(type) {
	case *Field:
		f := s.fields[x.Name()]
		vals := fs.Values(f)
		if len(vals) == 0 {
			return []any{nil}
		}
		out := make([]any, 0, len(vals))
		for i := range vals {
			if !matcher.Searchable(f, &vals[i]) {
				continue
			}
			out = append(out, fieldValue(f, vals[i]))
		}
		if len(out) == 0 {
			return []any{nil}
		}
		return out
	case *String:
		return []any{x.Value}
	case *Int:
		return []any{x.Value}
	case *Float:
		return []any{x.Value}
	case *Bool:
		return []any{x.Value}
	case *Null:
		return []any{nil}
	case *Neg:
		var out []any
		for _, v := range s.eval(x.X, fs) {
			out = append(out, arith(Sub, int64(0), v))
		}
		return out
	case *Not:
		var out []any
		for _, v := range s.eval(x.X, fs) {
			b, ok := v.(bool)
			if !ok {
				out = append(out, nil)
				continue
			}
			out = append(out, !b)
		}
		return out
	case *Logical:
		// Any combination: a term is true when any of its values is.
		res := x.Op == And
		for _, t := range x.Terms {
			hit := false
			for _, v := range s.eval(t, fs) {
				if b, ok := v.(bool); ok && b {
					hit = true
				}
			}
			if x.Op == And && !hit {
				return []any{false}
			}
			if x.Op == Or && hit {
				return []any{true}
			}
		}
		return []any{res}
	}
	var args [][]any
	var apply func([]any) any
	switch x := x.(type) {
	case *Arith:
		args = [][]any{s.eval(x.X, fs), s.eval(x.Y, fs)}
		apply = func(v []any) any { return arith(x.Op, v[0], v[1]) }
	case *Compare:
		args = [][]any{s.eval(x.X, fs), s.eval(x.Y, fs)}
		apply = func(v []any) any { return compareValues(x.Op, v[0], v[1]) }
	case *In:
		args = [][]any{s.eval(x.X, fs)}
		for _, el := range x.List {
			args = append(args, s.eval(el, fs))
		}
		apply = func(v []any) any {
			if v[0] == nil {
				return nil
			}
			found := false
			for _, el := range v[1:] {
				if x.CaseInsensitive {
					a, aok := v[0].(string)
					b, bok := el.(string)
					if aok && bok && strings.EqualFold(a, b) {
						found = true
					}
				} else if r, ok := compareValues(Eq, v[0], el).(bool); ok && r {
					found = true
				}
			}
			return found != x.Not
		}
	case *Match:
		args = [][]any{s.eval(x.X, fs)}
		apply = func(v []any) any {
			str, ok := v[0].(string)
			if !ok {
				if v[0] == nil {
					return nil
				}
				str = toString(v[0])
			}
			for _, p := range x.Patterns {
				pat, _, _, _ := constant(p)
				var pred matcher.Pred
				switch x.Op {
				case Colon:
					pred = matcher.LikeNoEscape(pat, true)
				case Like, LikeI:
					pred = matcher.LikeNoEscape(pat, x.Op == LikeI)
				default:
					pred, _ = matcher.Regexp(pat, x.Op == RegexI)
				}
				if pred.Test(&matcher.Value{Text: str}) {
					return true
				}
			}
			return false
		}
	case *Call:
		for _, a := range x.Args {
			args = append(args, s.eval(a, fs))
		}
		name := strings.ToLower(x.Name)
		apply = func(v []any) any { return callFunction(name, x.CaseInsensitive, v) }
	default:
		return []any{nil}
	}
	var out []any
	combos(args, func(v []any) { out = append(out, apply(v)) })
	return out
}

// fieldValue is a field's value as a script reads it.
func fieldValue(f *matcher.Field, v matcher.Value) any {
	switch f.Type {
	case matcher.Long, matcher.Double:
		if n, err := strconv.ParseInt(strings.TrimSpace(v.Text), 10, 64); err == nil {
			return n
		}
		if x, err := strconv.ParseFloat(strings.TrimSpace(v.Text), 64); err == nil {
			return x
		}
		return nil
	case matcher.Boolean:
		if b, ok := matcher.ParseBool(v.Text); ok {
			return b
		}
		return nil
	}
	return v.Text
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		// As Java's Double.toString for usual magnitudes: 1.0, not 1.
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.ContainsAny(s, ".eEIN") {
			s += ".0"
		}
		return s
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func number(v any) (float64, bool, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true, true
	case float64:
		return v, false, true
	}
	return 0, false, false
}

func arith(op ArithOp, a, b any) any {
	x, xi, ok1 := number(a)
	y, yi, ok2 := number(b)
	if !ok1 || !ok2 {
		return nil
	}
	if xi && yi {
		p, q := a.(int64), b.(int64)
		switch op {
		case Add:
			return p + q
		case Sub:
			return p - q
		case Mul:
			return p * q
		case Div:
			if q == 0 {
				return nil
			}
			return p / q
		case Mod:
			if q == 0 {
				return nil
			}
			return p % q
		}
	}
	switch op {
	case Add:
		return x + y
	case Sub:
		return x - y
	case Mul:
		return x * y
	case Div:
		if y == 0 {
			return nil
		}
		return x / y
	case Mod:
		if y == 0 {
			return nil
		}
		return math.Mod(x, y)
	}
	return nil
}

func compareValues(op CompareOp, a, b any) any {
	if a == nil || b == nil {
		return nil
	}
	var c int
	if x, _, ok := number(a); ok {
		y, _, ok := number(b)
		if !ok {
			return nil
		}
		switch {
		case x < y:
			c = -1
		case x > y:
			c = 1
		}
	} else if x, ok := a.(string); ok {
		y, ok := b.(string)
		if !ok {
			return nil
		}
		c = strings.Compare(x, y)
	} else if x, ok := a.(bool); ok {
		y, ok := b.(bool)
		if !ok {
			return nil
		}
		if x != y {
			c = 1
		}
		if op != Eq && op != Neq {
			return nil
		}
	}
	switch op {
	case Eq:
		return c == 0
	case Neq:
		return c != 0
	case Lt:
		return c < 0
	case Lte:
		return c <= 0
	case Gt:
		return c > 0
	case Gte:
		return c >= 0
	}
	return nil
}

// javaLen is a string's length as Java counts it (UTF-16 units), which is
// what Elasticsearch's functions return and take as positions.
func javaLen(s string) int { return len(utf16.Encode([]rune(s))) }

func javaSub(s string, from, to int) string {
	u := utf16.Encode([]rune(s))
	return string(utf16.Decode(u[from:to]))
}

// between is Elasticsearch's between (BetweenUtils): positions found in
// the lowercased text (in UTF-16 units, as Java's) cut the original text,
// so that a character whose lowercase is longer shifts the cut as it does
// there; where Java's substring would throw (the query fails), no value.
func between(s, left, right string, greedy, fold bool) any {
	if s == "" || left == "" || right == "" {
		return s
	}
	ms := s
	if fold {
		ms, left, right = strings.ToLower(s), strings.ToLower(left), strings.ToLower(right)
	}
	i := javaIndex(ms, left, 0)
	if i < 0 {
		return ""
	}
	start := i + len(utf16.Encode([]rune(left)))
	var j int
	if greedy {
		j = javaLastIndex(ms, right)
	} else {
		j = javaIndex(ms, right, start)
	}
	if j < 0 {
		return ""
	}
	if j < start || j > len(utf16.Encode([]rune(s))) {
		return nil
	}
	return javaSub(s, start, j)
}

// javaLastIndex is Java's String.lastIndexOf: the last position of sub in
// s, in UTF-16 units, or -1.
func javaLastIndex(s, sub string) int {
	u, v := utf16.Encode([]rune(s)), utf16.Encode([]rune(sub))
	for i := len(u) - len(v); i >= 0; i-- {
		if slices.Equal(u[i:i+len(v)], v) {
			return i
		}
	}
	return -1
}

func javaIndex(s, sub string, from int) int {
	u, v := utf16.Encode([]rune(s)), utf16.Encode([]rune(sub))
	for i := max(from, 0); i+len(v) <= len(u); i++ {
		ok := true
		for j := range v {
			if u[i+j] != v[j] {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

func strArg(v any) (string, bool) {
	if v == nil {
		return "", false
	}
	if s, ok := v.(string); ok {
		return s, true
	}
	return toString(v), true
}

func intArg(v any) (int, bool) {
	switch v := v.(type) {
	case int64:
		return int(v), true
	case float64:
		if v == math.Trunc(v) {
			return int(v), true
		}
	}
	return 0, false
}

// callFunction evaluates an EQL function on one combination of values;
// fold is the ~ form.
func callFunction(name string, fold bool, v []any) any {
	lower := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	switch name {
	case "add":
		return arith(Add, v[0], v[1])
	case "subtract":
		return arith(Sub, v[0], v[1])
	case "multiply":
		return arith(Mul, v[0], v[1])
	case "divide":
		return arith(Div, v[0], v[1])
	case "modulo":
		return arith(Mod, v[0], v[1])
	case "concat":
		var b strings.Builder
		for _, x := range v {
			s, ok := strArg(x)
			if !ok {
				return nil
			}
			b.WriteString(s)
		}
		return b.String()
	case "length":
		s, ok := strArg(v[0])
		if !ok {
			return nil
		}
		return int64(javaLen(s))
	case "string":
		s, ok := strArg(v[0])
		if !ok {
			return nil
		}
		return s
	case "number":
		s, ok := strArg(v[0])
		if !ok {
			return nil
		}
		base := 10
		if len(v) > 1 {
			if b, ok := intArg(v[1]); ok {
				base = b
			}
		}
		s = strings.TrimSpace(s)
		if base == 16 {
			s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
		}
		if n, err := strconv.ParseInt(s, base, 64); err == nil {
			return n
		}
		if base == 10 {
			if x, err := strconv.ParseFloat(s, 64); err == nil {
				return x
			}
		}
		return nil
	case "startswith", "endswith", "stringcontains":
		s, ok1 := strArg(v[0])
		p, ok2 := strArg(v[1])
		if !ok1 || !ok2 {
			return nil
		}
		s, p = lower(s), lower(p)
		switch name {
		case "startswith":
			return strings.HasPrefix(s, p)
		case "endswith":
			return strings.HasSuffix(s, p)
		}
		return strings.Contains(s, p)
	case "wildcard":
		s, ok := strArg(v[0])
		if !ok {
			return nil
		}
		for _, p := range v[1:] {
			if ps, ok := strArg(p); ok && matcher.LikeNoEscape(ps, fold).Test(&matcher.Value{Text: s}) {
				return true
			}
		}
		return false
	case "cidrmatch":
		s, ok := strArg(v[0])
		if !ok {
			return nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil
		}
		for _, c := range v[1:] {
			cs, _ := strArg(c)
			if p, err := netip.ParsePrefix(cs); err == nil && matcher.CIDR(p.Masked()).Test(&matcher.Value{Text: a.String()}) {
				return true
			}
		}
		return false
	case "indexof":
		s, ok1 := strArg(v[0])
		sub, ok2 := strArg(v[1])
		if !ok1 || !ok2 {
			return nil
		}
		from := 0
		if len(v) > 2 {
			if f, ok := intArg(v[2]); ok {
				from = f
			} else if v[2] != nil {
				return nil
			}
		}
		if i := javaIndex(lower(s), lower(sub), from); i >= 0 {
			return int64(i)
		}
		return nil
	case "substring":
		s, ok := strArg(v[0])
		if !ok {
			return nil
		}
		n := javaLen(s)
		start, ok := intArg(v[1])
		if !ok {
			return nil
		}
		end := n
		if len(v) > 2 && v[2] != nil {
			if end, ok = intArg(v[2]); !ok {
				return nil
			}
		}
		// Python's slicing: negative positions count from the end.
		if start < 0 {
			start = max(n+start, 0)
		}
		if end < 0 {
			end = max(n+end, 0)
		}
		start, end = min(start, n), min(end, n)
		if start >= end {
			return ""
		}
		return javaSub(s, start, end)
	case "between":
		s, ok1 := strArg(v[0])
		left, ok2 := strArg(v[1])
		right, ok3 := strArg(v[2])
		if !ok1 || !ok2 || !ok3 {
			return nil
		}
		greedy := false
		if len(v) > 3 {
			greedy, _ = v[3].(bool)
		}
		return between(s, left, right, greedy, fold)
	}
	return nil
}
