// Package jsonsplit cuts JSON text into records without building what it
// passes over, so that memory follows one record, not the whole input: the
// elements of a top-level array one at a time, NDJSON lines, values written
// one after another, and a CloudTrail log file object ({"Records": [...]})
// larger than GroupBytes an event at a time. It finds where values end
// by their brackets and strings alone, with a counter for the depth (no
// recursion, whatever the nesting); what is inside a record is left to the
// parser, which reports its errors with the record's place.
package jsonsplit

import (
	"bytes"
	"iter"
)

// GroupBytes is the size past which a CloudTrail log file object is given
// an event at a time (a smaller one is one record, read whole), so that a
// malformed event is named by its place and the file's other events are
// still read.
const GroupBytes = 1 << 20

// Record is one record's text and where it starts.
type Record struct {
	Data []byte
	Line int // 1-based line of the text at which the record starts
	// Element is the record's place (0-based) in a top-level array or in
	// a large log file's Records; -1 otherwise.
	Element int
	// Err says why the text could not be delimited (an array or a value
	// left open); Data then holds what was there. "" for a record to parse
	// (the parser names what else is wrong with it).
	Err string
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the offset just past the string that opens at i, and
// whether its closing quote was found: the next quote not escaped (by an
// odd number of backslashes before it).
func skipString(b []byte, i int) (int, bool) {
	for {
		j := bytes.IndexByte(b[i+1:], '"')
		if j < 0 {
			return len(b), false
		}
		q := i + 1 + j
		k := q - 1
		for k > i && b[k] == '\\' {
			k--
		}
		if (q-1-k)%2 == 0 {
			return q + 1, true
		}
		i = q
	}
}

// End returns the offset just past the value that starts at b[i] (no space
// before it), and whether it was closed: a string by its quote, an array or
// object by the bracket that brings the depth back to zero, anything else
// by the next space, comma, bracket or quote.
func End(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '[', '{':
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ' ', '\t', '\n', '\r', ',', '[', ']', '{', '}', '"':
				return i, true
			}
		}
		return i, true
	}
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, ok := skipString(b, i)
			if !ok {
				return end, false
			}
			i = end - 1
		case '[', '{':
			depth++
		case ']', '}':
			if depth--; depth == 0 {
				return i + 1, true
			}
		}
	}
	return len(b), false
}

// elements yields the elements of the array that opens at b[i], each with
// its offset, and returns the offset past the array and whether it was
// closed with its bracket (or ran out inside an element, which then holds
// the rest of b: the parser refuses it, and the array needs no other
// report). An element that is more than one value runs to the next comma
// or bracket (the parser refuses it).
func elements(b []byte, i int, yield func(el []byte, at int) bool) (int, bool) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	if i >= len(b) {
		return len(b), false
	}
	for {
		start := i
		end, closed := End(b, i)
		for closed {
			end = skipSpace(b, end)
			if end >= len(b) || b[end] == ',' || b[end] == ']' || b[end] == '}' {
				break
			}
			end, closed = End(b, end)
		}
		if !yield(bytes.TrimRight(b[start:end], " \t\r\n"), start) {
			return len(b), false
		}
		if !closed {
			return len(b), true
		}
		if end >= len(b) {
			return len(b), false
		}
		if b[end] != ',' {
			return end + 1, b[end] == ']'
		}
		i = skipSpace(b, end+1)
	}
}

// lineCounter turns offsets of one text, met in increasing order, into
// line numbers.
type lineCounter struct {
	text []byte
	at   int
	line int
}

func (c *lineCounter) lineOf(off int) int {
	c.line += bytes.Count(c.text[c.at:off], []byte{'\n'})
	c.at = off
	return c.line
}

// recordsArray reports whether the object v is a CloudTrail log file
// object: a "Records" member holding an array and nothing else. It returns
// the array's offset.
func recordsArray(v []byte) (int, bool) {
	j := skipSpace(v, 1)
	if !bytes.HasPrefix(v[j:], []byte(`"Records"`)) {
		return 0, false
	}
	j = skipSpace(v, j+len(`"Records"`))
	if j >= len(v) || v[j] != ':' {
		return 0, false
	}
	arr := skipSpace(v, j+1)
	if arr >= len(v) || v[arr] != '[' {
		return 0, false
	}
	end, closed := End(v, arr)
	tail := skipSpace(v, end)
	return arr, closed && tail == len(v)-1 && v[tail] == '}'
}

// walker yields the records of one value after another.
type walker struct {
	yield func(Record) bool
	// stopped: yield returned false, and nothing more may be yielded.
	stopped bool
}

// newWalker is a walker over yield that stops for good once yield says
// so (a walk nested in another cannot yield after the caller stopped).
func newWalker(yield func(Record) bool) *walker {
	w := &walker{}
	w.yield = func(r Record) bool {
		if w.stopped {
			return false
		}
		if !yield(r) {
			w.stopped = true
			return false
		}
		return true
	}
	return w
}

// array yields the elements of the array that opens text (its first line
// numbered line) and returns the offset past it: found by walking its
// elements, so that a large array is read once.
func (w *walker) array(text []byte, line int) (int, bool) {
	lc := lineCounter{text: text, line: line}
	k := 0
	stopped := false
	end, closed := elements(text, 0, func(el []byte, off int) bool {
		k++
		stopped = !w.yield(Record{Data: el, Line: lc.lineOf(off), Element: k - 1})
		return !stopped
	})
	if stopped {
		return end, false
	}
	if !closed {
		return end, w.yield(Record{Line: lc.lineOf(min(end, len(text))), Element: -1, Err: "the array is not closed with ']'"})
	}
	return end, true
}

// units yields the records of one value v, which starts at line: a
// top-level array's elements, a large log file object's events, or v
// itself.
func (w *walker) units(v []byte, line int) bool {
	if len(v) > 0 && v[0] == '[' {
		_, ok := w.array(v, line)
		return ok
	}
	if len(v) > GroupBytes && v[0] == '{' {
		if arr, ok := recordsArray(v); ok {
			return w.events(v, arr, line)
		}
	}
	return w.yield(Record{Data: v, Line: line, Element: -1})
}

// events yields the events of the Records array at v[arr] one at a time.
func (w *walker) events(v []byte, arr, line int) bool {
	lc := lineCounter{text: v, line: line}
	k, ok := 0, true
	elements(v, arr, func(el []byte, off int) bool {
		ok = w.yield(Record{Data: el, Line: lc.lineOf(off), Element: k})
		k++
		return ok
	})
	return ok
}

// values walks text as values one after another. A value that cannot be
// delimited (left open to the end of the text) is given as a record with
// Err up to the end of its line, and the rest of the text is walked as
// lines: each line is then delimited once, where walking on as values
// would search the rest of the text again from every line (time growing
// with the square of the text). An array cut short gives its elements up
// to the cut.
func (w *walker) values(text []byte, line int) {
	lc := lineCounter{text: text, line: line}
	for i := skipSpace(text, 0); i < len(text); i = skipSpace(text, i) {
		if text[i] == '[' {
			// Walked once, by its elements (an array cut short gives its
			// elements up to the cut).
			end, ok := w.array(text[i:], lc.lineOf(i))
			if !ok {
				return
			}
			i += end
			continue
		}
		end, closed := End(text, i)
		if !closed {
			nl := bytes.IndexByte(text[i:], '\n')
			if nl < 0 {
				nl = len(text) - i
			}
			if !w.yield(Record{Data: bytes.TrimRight(text[i:i+nl], " \t\r"), Line: lc.lineOf(i), Element: -1, Err: "a value left open (a bracket or a quote not closed)"}) {
				return
			}
			if i += nl; i < len(text) {
				w.lines(text[i+1:], lc.lineOf(i)+1)
			}
			return
		}
		if end == i {
			// A comma or closing bracket where a value should start: a
			// record of its own (the parser refuses it), so that the walk
			// moves on.
			end = i + 1
		}
		if !w.units(text[i:end], lc.lineOf(i)) {
			return
		}
		i = end
	}
}

// lines walks NDJSON: each non-empty line is one value (a line that is not
// one value is given whole, for the parser to refuse).
func (w *walker) lines(text []byte, line int) {
	for n := line; len(text) > 0; n++ {
		l := text
		if nl := bytes.IndexByte(text, '\n'); nl >= 0 {
			l, text = text[:nl], text[nl+1:]
		} else {
			text = nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		// Most lines are one record as they are (a line that is not one
		// value is, too: the parser refuses it); only an array or a large
		// log file object is cut.
		if !Cut(l) {
			if !w.yield(Record{Data: l, Line: n, Element: -1}) {
				return
			}
			continue
		}
		if end, closed := End(l, 0); closed && end == len(l) {
			if !w.units(l, n) {
				return
			}
			continue
		} else if closed && skipSpace(l, end) < len(l) {
			// Values one after another on one line: log files
			// concatenated (CloudTrail ends none with a newline).
			if w.values(l, n); w.stopped {
				return
			}
			continue
		}
		if !w.yield(Record{Data: l, Line: n, Element: -1}) {
			return
		}
	}
}

// WholeValues returns the offset just past the last value that b holds
// whole, of values one after another from its start (0 when the first is
// not closed in b).
func WholeValues(b []byte) int {
	end := 0
	for pos := skipSpace(b, 0); pos < len(b); pos = skipSpace(b, end) {
		e, closed := End(b, pos)
		if !closed || e == pos {
			break
		}
		end = e
	}
	return end
}

// Cut reports whether the line l (trimmed) is cut into more than one record
// by Lines: an array, or an object larger than GroupBytes (maybe a log file
// object). Any other line is one record, its text as it is.
func Cut(l []byte) bool {
	return len(l) > 0 && (l[0] == '[' || l[0] == '{' && len(l) > GroupBytes)
}

// Values yields the records of JSON text made of values one after another
// (a pretty-printed log file, concatenated JSON, a body that is one array),
// its first line numbered line: each value's elements when it is an array,
// a large log file's events, or the value. A value that cannot be
// delimited is given (with Err) up to the end of its line, and the rest of
// the text is walked as Lines walks it.
func Values(text []byte, line int) iter.Seq[Record] {
	return func(yield func(Record) bool) { newWalker(yield).values(text, line) }
}

// Lines yields the records of NDJSON, its first line numbered line: each
// non-empty line's records as Values gives them for one value; a line that
// is not one value is given whole.
func Lines(text []byte, line int) iter.Seq[Record] {
	return func(yield func(Record) bool) { newWalker(yield).lines(text, line) }
}

// Count returns how many records Values (or, with lines, Lines) gives for
// text; it stops counting past upTo.
func Count(text []byte, lines bool, upTo int) int {
	n := 0
	w := newWalker(func(Record) bool { n++; return n <= upTo })
	if lines {
		w.lines(text, 1)
	} else {
		w.values(text, 1)
	}
	return n
}
