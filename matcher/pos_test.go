package matcher

import (
	"strings"
	"testing"
)

// naivePos is the place of off counted from the start, character by
// character: what Lines must answer.
func naivePos(src string, off int) Pos {
	line, col := 1, 1
	for i, r := range src {
		if i >= off {
			break
		}
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return Pos{Offset: off, Line: line, Col: col}
}

func TestLinesAgreesWithCounting(t *testing.T) {
	src := "a: b and\n  héllo: \"wörld\" or\n\n" + strings.Repeat("x:é or ", 40) + "\ny: 1"
	l := Lines{Src: src}
	for off := 0; off <= len(src); off++ {
		if got, want := l.Pos(off), naivePos(src, off); got != want {
			t.Fatalf("Pos(%d) = %+v, want %+v", off, got, want)
		}
	}
	if got := (&Lines{}).Pos(0); got != (Pos{Line: 1, Col: 1}) {
		t.Errorf("empty text: %+v", got)
	}
}
