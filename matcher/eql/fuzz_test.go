package eql

import (
	"errors"
	"testing"
)

// FuzzParseEQL: parsing never panics; an error is a *SyntaxError placed in
// the query; a parsed query's nodes are placed in the query, and its
// canonical form parses to the same AST and prints unchanged. The same holds
// for ParseExpr. Seeds: every query of the parse and error tables, and
// testdata/fuzz/FuzzParseEQL.
func FuzzParseEQL(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.in)
	}
	for _, c := range errorCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, src string) {
		st, err := Parse(src)
		checkFuzzed(t, src, st, err)
		x, err := ParseExpr(src)
		checkFuzzed(t, src, x, err)
	})
}

func checkFuzzed[N Node](t *testing.T, src string, n N, err error) {
	t.Helper()
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		assertPosConsistent(t, src, se.Pos)
		return
	}
	assertPositions(t, src, n)
	out := n.String()
	var again Node
	switch any(n).(type) {
	case *Statement:
		again, err = Parse(out)
	default:
		again, err = ParseExpr(out)
	}
	if err != nil {
		t.Fatalf("%q parses, but its canonical form %q does not: %v", src, out, err)
	}
	if !sameAST(n, again) {
		t.Fatalf("%q and its canonical form %q parse to different ASTs", src, out)
	}
	if again.String() != out {
		t.Fatalf("canonical form of %q not stable: %q then %q", src, out, again.String())
	}
}
