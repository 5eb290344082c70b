package matcher

import (
	"strings"
	"testing"
	"time"
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

// TestParseUTCStampAgreesWithTheGeneralParser: the fast form gives what the
// layouts give, and leaves to them what it does not take.
func TestParseUTCStampAgreesWithTheGeneralParser(t *testing.T) {
	for _, s := range []string{"2026-05-04T10:00:00Z", "2026-05-04T10:00:00.1Z", "2026-05-04T10:00:00.123456789Z",
		"2024-02-29T23:59:59.000Z", "2026-02-30T10:00:00Z", "2026-13-01T00:00:00Z", "2026-05-04T24:00:00Z",
		"2026-05-04T10:00:00.Z", "2026-05-04T10:00:00.1234567890Z", "2026-05-04T10:00:00+00:00", "2026-05-04 10:00:00Z"} {
		fast, ok := parseUTCStamp(s)
		if !ok {
			continue
		}
		general, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !fast.Equal(general) {
			t.Errorf("%s: fast %v, general %v %v", s, fast, general, err)
		}
	}
	if _, ok := parseUTCStamp("2026-02-30T10:00:00Z"); ok {
		t.Error("February 30th taken")
	}
}
