package doc

import (
	"strconv"
	"strings"
	"testing"
)

// equalNode reports whether two trees are the same: kinds, texts, float
// flags, element and member order (nil and empty slices are the same).
func equalNode(a, b *Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || a.Str != b.Str || a.Float != b.Float ||
		len(a.Arr) != len(b.Arr) || len(a.Obj) != len(b.Obj) {
		return false
	}
	for i := range a.Arr {
		if !equalNode(a.Arr[i], b.Arr[i]) {
			return false
		}
	}
	for i := range a.Obj {
		if a.Obj[i].Key != b.Obj[i].Key || !equalNode(a.Obj[i].Val, b.Obj[i].Val) {
			return false
		}
	}
	return true
}

// dump renders a tree with kinds and float flags, for failure messages and
// for tests that pin the exact shape.
func dump(n *Node) string {
	var sb strings.Builder
	var walk func(*Node)
	walk = func(n *Node) {
		if n == nil {
			sb.WriteString("<nil>")
			return
		}
		switch n.Kind {
		case Null:
			sb.WriteString("null")
		case Bool:
			sb.WriteString("b:" + n.Str)
		case Number:
			if n.Float {
				sb.WriteString("f:" + n.Str)
			} else {
				sb.WriteString("i:" + n.Str)
			}
		case String:
			sb.WriteString("s:" + n.Str)
		case Array:
			sb.WriteString("[")
			for i, e := range n.Arr {
				if i > 0 {
					sb.WriteString(" ")
				}
				walk(e)
			}
			sb.WriteString("]")
		case Object:
			sb.WriteString("{")
			for i, m := range n.Obj {
				if i > 0 {
					sb.WriteString(" ")
				}
				sb.WriteString(m.Key + "=")
				walk(m.Val)
			}
			sb.WriteString("}")
		}
	}
	walk(n)
	return sb.String()
}

func mustParse(t testing.TB, s string) *Node {
	t.Helper()
	n, err := ParseJSON([]byte(s))
	if err != nil {
		t.Fatalf("ParseJSON(%q): %v", s, err)
	}
	return n
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
func parseInt(s string) (int64, error)     { return strconv.ParseInt(s, 10, 64) }
