package matcher

import (
	"fmt"
	"sort"
)

// Pos is a place in a rule's query text: 1-based line and column (in
// characters), and the byte offset. Every front end reports its errors with
// one.
type Pos struct {
	Offset, Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// SyntaxError is an error in a query text (syntax, or a test the field's
// mapping cannot take) with the place it was found.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s: %s", e.Pos, e.Msg) }

// Lines turns byte offsets of a text into places, each in time logarithmic
// in the text's length (a parser that asks for many places in a long query
// stays linear). The zero value over Src is ready; Src must not change.
type Lines struct {
	Src    string
	starts []int   // byte offset of each line's start
	chars  []int32 // characters before each block of linesBlock bytes
}

const linesBlock = 64

// Pos is the place of byte offset off (clamped to the text).
func (l *Lines) Pos(off int) Pos {
	if l.starts == nil {
		l.index()
	}
	off = max(0, min(off, len(l.Src)))
	line := sort.Search(len(l.starts), func(i int) bool { return l.starts[i] > off }) - 1
	return Pos{Offset: off, Line: line + 1, Col: l.charsBefore(off) - l.charsBefore(l.starts[line]) + 1}
}

func (l *Lines) index() {
	l.starts = []int{0}
	l.chars = make([]int32, 0, len(l.Src)/linesBlock+1)
	n := int32(0)
	for i := 0; i < len(l.Src); i++ {
		if i%linesBlock == 0 {
			l.chars = append(l.chars, n)
		}
		c := l.Src[i]
		if c&0xc0 != 0x80 {
			n++
		}
		if c == '\n' {
			l.starts = append(l.starts, i+1)
		}
	}
}

// charsBefore counts the characters (UTF-8 lead bytes) before off.
func (l *Lines) charsBefore(off int) int {
	b := off / linesBlock
	if b >= len(l.chars) {
		b = len(l.chars) - 1
	}
	if b < 0 {
		return 0
	}
	n := int(l.chars[b])
	for i := b * linesBlock; i < off; i++ {
		if l.Src[i]&0xc0 != 0x80 {
			n++
		}
	}
	return n
}
