package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/internal/jsonsplit"
	"github.com/trailwatch/trailwatch/internal/logsafe"
)

// maxLine bounds one NDJSON line, and maxDocument a file that is one JSON
// document (a CloudTrail log file): both far above what CloudTrail writes,
// and low enough that a hostile or broken input cannot exhaust memory.
const (
	maxDocument = 1 << 30
	arenaSize   = 1 << 20 // the lines' arena (readLine)
)

var maxLine = 64 << 20 // a variable for the tests

// source reads the records of one input file in batches.
type source struct {
	name        string
	r           *bufio.Reader
	closers     []io.Closer
	counter     *countingReader
	size        int64
	line        int
	whole       bool            // the file is one JSON document, read at once
	pending     []engine.Record // records read, to take before any others
	pendingText int             // the text size of pending's records
	arena       []byte          // where lines are read (readLine)
	// The records of the text being read (a line, or the document), cut
	// out one at a time and parsed as they are taken.
	pull func() (jsonsplit.Record, bool)
	stop func()
	done bool
	// carry: a document's bytes read past the value taken; readErr: a
	// read error to give once what was read before it is taken.
	carry   []byte
	readErr error
}

// gzipMembers reads the members of a gzip stream one after another (log
// files concatenated: cat *.gz), and ends, as gzip -d does, at zeros after
// the last member (padding, which the reader took for a bad header and
// lost the file with); other bytes there are an error, after what was
// read before them.
type gzipMembers struct {
	src *bufio.Reader
	zr  *gzip.Reader
}

var errTrailingGzip = errors.New("gzip: data after the last member that is not gzip (what came before it was read)")

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if err != io.EOF {
			return n, err
		}
		if n > 0 {
			return n, nil // the member's end is found at the next Read
		}
		magic, _ := g.src.Peek(2)
		switch {
		case len(magic) == 0:
			return 0, io.EOF
		case len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b:
			if err := g.zr.Reset(g.src); err != nil {
				return 0, err
			}
			g.zr.Multistream(false)
			continue
		}
		for { // padding: zeros to the end
			if _, err := g.src.Peek(1); err == io.EOF {
				return 0, io.EOF
			} else if err != nil {
				return 0, err
			}
			b, _ := g.src.Peek(g.src.Buffered())
			for _, c := range b {
				if c != 0 {
					return 0, errTrailingGzip
				}
			}
			g.src.Discard(len(b))
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func openSource(name string, stdin io.Reader) (*source, error) {
	s := &source{name: logsafe.Name(name)} // named in messages
	var raw io.Reader
	if name == "-" {
		s.name = "(stdin)"
		raw = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, errors.Unwrap(err))
		}
		if st, err := f.Stat(); err == nil {
			if st.IsDir() {
				f.Close()
				return nil, fmt.Errorf("%s is a folder; give the files in it", s.name)
			}
			s.size = st.Size()
		}
		s.closers = append(s.closers, f)
		raw = f
	}
	s.counter = &countingReader{r: raw}
	br := bufio.NewReaderSize(s.counter, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%s: gzip: %w", s.name, err)
		}
		zr.Multistream(false)
		s.closers = append(s.closers, zr)
		// No limit on the whole: lines are bounded one by one (maxLine),
		// a document by readWhole. (A limit here cut NDJSON past 1 GiB
		// without a word: the records after it were never read.)
		br = bufio.NewReaderSize(&gzipMembers{src: br, zr: zr}, 1<<20)
	}
	// A byte order mark is no part of the first record.
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\ufeff")) {
		br.Discard(3)
	}
	s.r = br
	return s, nil
}

func (s *source) close() {
	s.read(nil)
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i].Close()
	}
}

// read makes seq the records to take next (nil: none).
func (s *source) read(seq iter.Seq[jsonsplit.Record]) {
	if s.stop != nil {
		s.stop()
	}
	s.pull, s.stop = nil, nil
	if seq != nil {
		s.pull, s.stop = iter.Pull(seq)
	}
}

// next returns up to n records, of about maxBytes of text at most (a tree
// takes up to some 35 times its text); an empty result means the file is
// done. Malformed input comes back as records with Err set, and reading
// goes on.
func (s *source) next(n, maxBytes int) ([]engine.Record, error) {
	var out []engine.Record
	size := 0
	for len(out) < n && size < maxBytes {
		if len(s.pending) > 0 {
			out = append(out, s.pending...)
			size += s.pendingText
			clear(s.pending) // hold on to no tree
			s.pending, s.pendingText = s.pending[:0], 0
			continue
		}
		if s.pull != nil {
			if r, ok := s.pull(); ok {
				out = append(out, s.parse(r))
				size += len(r.Data)
				continue
			}
			s.read(nil)
		}
		if s.done {
			break
		}
		if err := s.fill(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// parse makes one record of its text, named by its file, line and (in an array) place.
func (s *source) parse(r jsonsplit.Record) engine.Record {
	where := s.name + ":" + strconv.Itoa(r.Line)
	if r.Element >= 0 {
		where += " (element " + strconv.Itoa(r.Element) + ")"
	}
	if r.Err != "" {
		return engine.Record{Err: errors.New(r.Err), Where: where}
	}
	// Read in place by the engine, which sets Err on a malformed record.
	return engine.Record{JSON: r.Data, Where: where}
}

// fill reads the next line (NDJSON) or, when the input turns out to be one
// multi-line JSON document, the whole document.
func (s *source) fill() error {
	if s.line == 0 {
		// Decide the format from the first line: a line that is not a
		// whole JSON value starts a pretty-printed document.
		first, err := s.r.Peek(4096)
		// An error after some bytes comes again once they are read.
		if err != nil && len(first) == 0 && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		t := bytes.TrimLeft(first, " \t\r\n")
		if len(t) > 0 && (t[0] == '[' || t[0] == '{' && (firstLineOpen(t) || recordsFirst(t) && s.longFirstLine())) {
			s.whole = true
		}
	}
	if s.whole {
		return s.readWhole()
	}
	line, err := s.readLine()
	if err != nil {
		if err == io.EOF {
			s.done = true
			return nil
		}
		return err
	}
	s.line++
	trimmed := bytes.TrimSpace(line)
	switch {
	case len(trimmed) == 0:
	case jsonsplit.Cut(trimmed):
		s.read(jsonsplit.Lines(trimmed, s.line))
	case bytes.Contains(trimmed, []byte("}{")) && valuesOnLine(trimmed):
		// Values one after another on one line: log files concatenated
		// (CloudTrail ends none with a newline).
		s.read(jsonsplit.Values(trimmed, s.line))
	default:
		s.pending = append(s.pending, s.parse(jsonsplit.Record{Data: trimmed, Line: s.line, Element: -1}))
		s.pendingText += len(trimmed)
	}
	return nil
}

// valuesOnLine reports whether a line holds a closed value with more text
// after it.
func valuesOnLine(l []byte) bool {
	end, closed := jsonsplit.End(l, 0)
	return closed && len(bytes.TrimSpace(l[end:])) > 0
}

// recordsFirst reports whether the object that opens b has "Records" for
// its first key: a CloudTrail log file, read as a document whatever its
// length (as a first line past 64 MB it was refused as an over-long line).
func recordsFirst(b []byte) bool {
	t := bytes.TrimLeft(b[1:], " \t\r\n")
	if !bytes.HasPrefix(t, []byte(`"Records"`)) {
		return false
	}
	t = bytes.TrimLeft(t[len(`"Records"`):], " \t\r\n")
	return len(t) > 0 && t[0] == ':'
}

// longFirstLine reports whether the first line is longer than the
// reader's buffer (1 MB). A log file shorter is read as NDJSON (a line that
// holds several values is split), so that a line cut short costs that line
// alone: read as a document, it held the rest of the file.
func (s *source) longFirstLine() bool {
	b, _ := s.r.Peek(s.r.Size())
	return len(b) == s.r.Size() && bytes.IndexByte(b, '\n') < 0
}

// firstLineOpen reports whether the object that opens b is still open at
// the end of its first line: a pretty-printed document. A first line that
// closes what it opens is NDJSON, even when it does not parse (a file that
// starts mid-record, as a rotated log does: read whole, it lost every
// record after the first line).
func firstLineOpen(b []byte) bool {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return false // one line (or a longer first line): read as NDJSON
	}
	_, closed := jsonsplit.End(bytes.TrimSpace(b[:i]), 0)
	return !closed
}

func (s *source) readLine() ([]byte, error) {
	if err := s.readErr; err != nil {
		s.readErr = nil
		return nil, err
	}
	// Lines are read into an arena (a new one when little is left: lines
	// handed out stay as they are until their records are read), so that
	// a line costs no allocation of its own; a line longer than what is
	// left gets its own.
	if cap(s.arena)-len(s.arena) < arenaSize/4 {
		s.arena = make([]byte, 0, arenaSize)
	}
	buf := s.arena[len(s.arena):]
	room := cap(buf)
	done := func() []byte {
		if cap(buf) == room { // still in the arena
			s.arena = s.arena[:len(s.arena)+len(buf)]
		}
		return buf[:len(buf):len(buf)]
	}
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine {
			// Skip the rest of an over-long line and report it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = s.r.ReadSlice('\n')
			}
			// fill counts the line.
			s.pending = append(s.pending, engine.Record{Err: fmt.Errorf("line longer than %d bytes", maxLine), Where: fmt.Sprintf("%s:%d", s.name, s.line+1)})
			return nil, nil
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return done(), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(buf) > 0 {
				return done(), nil
			}
			return nil, io.EOF
		default:
			err = fmt.Errorf("%s: %w", s.name, err)
			if len(buf) > 0 { // what came before the error is read
				s.readErr = err
				return done(), nil
			}
			return nil, err
		}
	}
}

// readWhole reads the next value of a document file (a pretty-printed log
// file, an array, or values one after another: log files concatenated),
// whose records (its events, its elements, or the value) are then taken
// one at a time. Values are read one by one, each up to maxDocument bytes,
// so that any number of log files concatenated is read.
func (s *source) readWhole() error {
	if err := s.readErr; err != nil {
		s.readErr = nil
		s.done = true
		return err
	}
	// The carry is this value's buffer already (the last one's records
	// still point into the buffer before it).
	buf := s.carry
	if buf == nil {
		buf = make([]byte, 0, 1<<20)
	}
	s.carry = nil
	scanned := 0 // buf[:scanned] is known to hold no closed value
	for {
		if len(buf) > scanned {
			// Every value the buffer holds whole is taken at once, the
			// rest carried to the next (taking one value at a time copied
			// the rest for each: log files concatenated cost the square
			// of their number).
			last := jsonsplit.WholeValues(buf)
			if last > 0 {
				s.take(buf[:last])
				rest := buf[last:]
				s.carry = append(make([]byte, 0, max(2*len(rest), 1<<20)), rest...)
				return nil
			}
			scanned = len(buf)
		}
		if len(buf) > maxDocument {
			s.done = true
			return fmt.Errorf("%s: a JSON value larger than %d bytes (as NDJSON, one event a line, any size is read)", s.name, maxDocument)
		}
		// Read as much again as there is (at least 1 MB, no further than
		// just past the bound): a value's text is searched again after each
		// read, so reads that double keep the searching linear.
		want := min(max(len(buf), 1<<20), maxDocument+1-len(buf))
		buf = slices.Grow(buf, want)
		n, err := readFull(s.r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			s.done = true
			if len(bytes.TrimSpace(buf)) > 0 { // a value left open: named, with what follows it read as lines
				s.take(buf)
			}
			return nil
		}
		if err != nil { // a gzip cut short (io.ErrUnexpectedEOF) among them
			err = fmt.Errorf("%s: %w", s.name, err)
			if len(bytes.TrimSpace(buf)) > 0 { // what came before the error is read
				s.take(buf)
				s.readErr = err
				return nil
			}
			s.done = true
			return err
		}
	}
}

// readFull fills b from r; only the end of the input is io.EOF (a
// decompressor's io.ErrUnexpectedEOF is an error, which io.ReadAtLeast
// would have taken for a short read).
func readFull(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// take makes the records of text (values from the file's current line)
// the next to take.
func (s *source) take(text []byte) {
	s.read(jsonsplit.Values(text, s.line+1))
	s.line += bytes.Count(text, []byte{'\n'})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, word[:len(word)-1])
	}
	if strings.HasSuffix(word, "ch") || strings.HasSuffix(word, "s") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
