package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/engine"
)

// maxLine bounds one NDJSON line, and maxDocument a file that is one JSON
// document (a CloudTrail log file): both far above what CloudTrail writes,
// and low enough that a hostile or broken input cannot exhaust memory.
const (
	maxLine     = 64 << 20
	maxDocument = 1 << 30
)

// source reads the records of one input file in batches.
type source struct {
	name    string
	r       *bufio.Reader
	closers []io.Closer
	counter *countingReader
	size    int64
	line    int
	whole   bool // the file is one JSON document, read at once
	pending []engine.Record
	done    bool
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
	s := &source{name: name}
	var raw io.Reader
	if name == "-" {
		s.name = "(stdin)"
		raw = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		if st, err := f.Stat(); err == nil {
			if st.IsDir() {
				f.Close()
				return nil, fmt.Errorf("%s is a folder; give the files in it", name)
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
		s.closers = append(s.closers, zr)
		br = bufio.NewReaderSize(io.LimitReader(zr, maxDocument+1), 1<<20)
	}
	s.r = br
	return s, nil
}

func (s *source) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i].Close()
	}
}

// next returns up to n records; an empty result means the file is done.
// Malformed input comes back as records with Err set, and reading goes on.
func (s *source) next(n int) ([]engine.Record, error) {
	var out []engine.Record
	for len(out) < n {
		if len(s.pending) > 0 {
			k := min(n-len(out), len(s.pending))
			out = append(out, s.pending[:k]...)
			s.pending = s.pending[k:]
			continue
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

// fill reads the next line (NDJSON) or, when the input turns out to be one
// multi-line JSON document, the whole document.
func (s *source) fill() error {
	if s.line == 0 {
		// Decide the format from the first line: a line that is not a
		// whole JSON value starts a pretty-printed document.
		first, err := s.r.Peek(4096)
		if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		t := bytes.TrimLeft(first, " \t\r\n\ufeff")
		if len(t) > 0 && (t[0] == '[' || !firstLineComplete(t)) {
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
	if len(trimmed) == 0 {
		return nil
	}
	where := fmt.Sprintf("%s:%d", s.name, s.line)
	// Read in place by the engine, which sets Err on a malformed line.
	s.pending = append(s.pending, engine.Record{JSON: trimmed, Where: where})
	return nil
}

func firstLineComplete(b []byte) bool {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return true // one line (or a longer first line): read as NDJSON
	}
	_, err := doc.ParseJSON(bytes.TrimSpace(b[:i]))
	return err == nil
}

func (s *source) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine {
			// Skip the rest of an over-long line and report it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = s.r.ReadSlice('\n')
			}
			s.line++
			s.pending = append(s.pending, engine.Record{Err: fmt.Errorf("line longer than %d bytes", maxLine), Where: fmt.Sprintf("%s:%d", s.name, s.line)})
			return nil, nil
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(buf) > 0 {
				return buf, nil
			}
			return nil, io.EOF
		default:
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
}

// readWhole reads a document file and splits it into its JSON values
// (usually one {"Records": [...]} object, or an array of events).
func (s *source) readWhole() error {
	s.done = true
	data, err := io.ReadAll(io.LimitReader(s.r, maxDocument+1))
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if len(data) > maxDocument {
		return fmt.Errorf("%s: a JSON document larger than %d bytes (as NDJSON, one event a line, any size is read)", s.name, maxDocument)
	}
	off, line := 0, 1
	for {
		skip := len(data[off:]) - len(bytes.TrimLeft(data[off:], " \t\r\n\ufeff"))
		line += bytes.Count(data[off:off+skip], []byte("\n"))
		off += skip
		if off >= len(data) {
			return nil
		}
		where := fmt.Sprintf("%s:%d", s.name, line)
		n, used, perr := doc.ParseJSONPrefix(data[off:])
		if perr != nil {
			s.pending = append(s.pending, engine.Record{Err: perr, Where: where})
			// Resume after the next line break.
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				return nil
			}
			used = i + 1
		} else if n.Kind == doc.Array {
			for _, el := range n.Arr {
				s.pending = append(s.pending, engine.Record{Node: el, Where: where})
			}
		} else {
			s.pending = append(s.pending, engine.Record{Node: n, Where: where})
		}
		line += bytes.Count(data[off:off+used], []byte("\n"))
		off += used
	}
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
	return fmt.Sprintf("%d %ss", n, word)
}
