package doc

import (
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"
)

// SyntaxError reports input that is not one well-formed value, with the
// byte offset at which the problem was found.
type SyntaxError struct {
	Format string // "json" or "msgpack"
	Offset int    // byte offset into the input
	Msg    string
	Err    error // underlying decoder error, if any
}

// Error returns "<format>: offset <n>: <msg>".
func (e *SyntaxError) Error() string {
	return e.Format + ": offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Unwrap returns the underlying decoder error, if any.
func (e *SyntaxError) Unwrap() error { return e.Err }

// ParseJSON parses data, which must hold exactly one JSON value with
// optional whitespace around it.
//
// Strings must be valid UTF-8 and free of raw control characters (a \u
// escape of a lone UTF-16 surrogate decodes to U+FFFD); number literals keep
// their text exactly; nesting deeper than MaxDepth is refused (the error
// wraps ErrDepth). Every error is a *SyntaxError that names the byte offset.
// ParseJSON is safe for concurrent use.
func ParseJSON(data []byte) (*Node, error) {
	p := getParser(data, len(data)/24)
	defer putParser(p)
	n := p.value()
	if n != nil {
		// The value must be followed by nothing but whitespace.
		p.iter.WhatIsNext()
		if p.iter.Error != io.EOF {
			n = nil
		}
	}
	if n == nil {
		return nil, p.syntaxError(true)
	}
	if p.verify {
		// A rare construct that the token walk alone cannot vouch for
		// (an empty key, a control character in a string with escapes):
		// check the text strictly once.
		if _, err := scanDoc(data, true); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ParseJSONPrefix parses one JSON value at the start of data and returns it
// with the number of bytes consumed: the value and the whitespace around it.
// It suits concatenated or newline-delimited JSON; what follows the value is
// left for the next call.
func ParseJSONPrefix(data []byte) (*Node, int, error) {
	end, err := scanDoc(data, false)
	if err != nil {
		return nil, 0, err
	}
	p := getParser(data[:end], end/24)
	defer putParser(p)
	n := p.value()
	if n == nil {
		return nil, 0, p.syntaxError(false)
	}
	for end < len(data) && isSpace(data[end]) {
		end++
	}
	return n, end, nil
}

// parser walks the tokens of one document with a jsoniter Iterator and
// builds the tree. Children are gathered on shared stacks and copied into
// exact-size slices from the slab when their container closes.
type parser struct {
	data   []byte
	iter   *jsoniter.Iterator
	depth  int
	values int  // values met so far
	failed bool // a check of ours failed (jsoniter's own errors are in iter.Error)
	verify bool // the text needs a strict pass before it can be trusted
	slab   slab
	nstack []*Node
	mstack []Member
	arrCB  func(*jsoniter.Iterator) bool
	objCB  func(*jsoniter.Iterator, string) bool
}

var parserPool = sync.Pool{New: func() any {
	p := new(parser)
	p.arrCB = p.element
	p.objCB = p.member
	return p
}}

func getParser(data []byte, hint int) *parser {
	p := parserPool.Get().(*parser)
	p.data = data
	p.iter = jsoniter.ConfigCompatibleWithStandardLibrary.BorrowIterator(data)
	p.depth, p.values = 0, 0
	p.failed = false
	p.verify = false
	p.slab.reset(hint)
	return p
}

func putParser(p *parser) {
	p.iter.ResetBytes(nil)
	jsoniter.ConfigCompatibleWithStandardLibrary.ReturnIterator(p.iter)
	p.iter = nil
	p.data = nil
	p.slab = slab{}
	if cap(p.nstack) > 4096 || cap(p.mstack) > 4096 {
		p.nstack, p.mstack = nil, nil
	} else {
		clear(p.nstack[:cap(p.nstack)])
		clear(p.mstack[:cap(p.mstack)])
		p.nstack, p.mstack = p.nstack[:0], p.mstack[:0]
	}
	parserPool.Put(p)
}

// syntaxError explains why the walk failed. jsoniter's errors carry no
// reliable offset, so the strict scanner, which accepts exactly what the
// walk accepts, finds the place and says what was expected there.
func (p *parser) syntaxError(whole bool) error {
	if _, err := scanDoc(p.data, whole); err != nil {
		return err
	}
	// Not reached while the two agree; keep a usable message regardless.
	msg := "malformed JSON"
	if p.iter.Error != nil && p.iter.Error != io.EOF {
		msg += " (" + p.iter.Error.Error() + ")"
	}
	return &SyntaxError{Format: "json", Msg: msg, Err: p.iter.Error}
}

// value reads the next value; nil means failure (see p.failed, iter.Error).
func (p *parser) value() *Node {
	if p.values++; p.values > MaxValues {
		p.failed = true
		return nil
	}
	it := p.iter
	switch it.WhatIsNext() {
	case jsoniter.StringValue:
		s := it.ReadString()
		if it.Error != nil || !p.checkString(s) {
			return nil
		}
		return p.slab.scalar(String, s, false)
	case jsoniter.NumberValue:
		num := string(it.ReadNumber())
		if it.Error == io.EOF {
			// The number ran to the end of the input. Whatever must
			// follow it is checked (and reported) by the caller.
			it.Error = nil
		}
		if it.Error != nil {
			return nil
		}
		if end, msg := scanNumber(num, 0); msg != "" || end != len(num) {
			p.failed = true
			return nil
		}
		return p.slab.scalar(Number, num, isFloatLiteral(num))
	case jsoniter.NilValue:
		it.ReadNil()
		if it.Error != nil {
			return nil
		}
		return p.slab.node(Null)
	case jsoniter.BoolValue:
		b := it.ReadBool()
		if it.Error != nil {
			return nil
		}
		if b {
			return p.slab.scalar(Bool, "true", false)
		}
		return p.slab.scalar(Bool, "false", false)
	case jsoniter.ArrayValue:
		if p.depth >= MaxDepth {
			p.failed = true
			return nil
		}
		p.depth++
		base := len(p.nstack)
		it.ReadArrayCB(p.arrCB)
		p.depth--
		if p.failed || it.Error != nil {
			p.nstack = p.nstack[:base]
			return nil
		}
		n := p.slab.node(Array)
		n.Arr = p.slab.elems(p.nstack[base:])
		p.nstack = p.nstack[:base]
		return n
	case jsoniter.ObjectValue:
		if p.depth >= MaxDepth {
			p.failed = true
			return nil
		}
		p.depth++
		base := len(p.mstack)
		it.ReadObjectCB(p.objCB)
		p.depth--
		if p.failed || it.Error != nil {
			p.mstack = p.mstack[:base]
			return nil
		}
		n := p.slab.node(Object)
		n.Obj = p.slab.members(p.mstack[base:])
		p.mstack = p.mstack[:base]
		return n
	}
	p.failed = true
	return nil
}

func (p *parser) element(it *jsoniter.Iterator) bool {
	if it.Error != nil || p.failed {
		return false
	}
	n := p.value()
	if n == nil {
		return false
	}
	p.nstack = append(p.nstack, n)
	return true
}

func (p *parser) member(it *jsoniter.Iterator, key string) bool {
	if it.Error != nil || p.failed {
		return false
	}
	if key == "" {
		// jsoniter reads a key after ',' with ReadString, which also
		// takes a bare null as "": only the strict pass can tell.
		p.verify = true
	}
	if !p.checkString(key) {
		return false
	}
	n := p.value()
	if n == nil {
		return false
	}
	p.mstack = append(p.mstack, Member{Key: key, Val: n})
	return true
}

// checkString vets a decoded string: invalid UTF-8 fails; a control
// character may be a legal escape or a raw byte that jsoniter's slow path
// let through, so it marks the text for the strict pass.
func (p *parser) checkString(s string) bool {
	i := 0
	// Eight bytes at a time while all are printable ASCII: a byte >= 0x80
	// has its top bit set, and one < 0x20 sets it when 0x20 is subtracted.
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if (w|(w-0x2020202020202020))&0x8080808080808080 != 0 {
			break
		}
	}
	var ctl, high bool
	for ; i < len(s); i++ {
		c := s[i]
		ctl = ctl || c < 0x20
		high = high || c >= utf8.RuneSelf
	}
	if high && !utf8.ValidString(s) {
		p.failed = true
		return false
	}
	if ctl {
		p.verify = true
	}
	return true
}

func isFloatLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', 'e', 'E':
			return true
		}
	}
	return false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber checks the JSON number grammar from s[i] and returns the offset
// just past the number, or the offset of the first bad byte and a message.
func scanNumber[T string | []byte](s T, i int) (int, string) {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return i, "unexpected end of input in number"
	case s[i] == '0':
		i++
	case isDigit(s[i]):
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return i, "expected digit in number, found " + quoteByte(s[i])
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) {
			return i, "unexpected end of input in number"
		}
		if !isDigit(s[i]) {
			return i, "expected digit after decimal point, found " + quoteByte(s[i])
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) {
			return i, "unexpected end of input in number"
		}
		if !isDigit(s[i]) {
			return i, "expected digit in exponent, found " + quoteByte(s[i])
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i, ""
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f && c != '\'' {
		return "'" + string(rune(c)) + "'"
	}
	const hex = "0123456789abcdef"
	return "byte 0x" + string([]byte{hex[c>>4], hex[c&15]})
}

// scanDoc strictly checks one JSON value at the start of data. With whole,
// only whitespace may follow it. It returns the offset just past the value.
// It is the reference for what ParseJSON accepts and the source of every
// JSON error message.
func scanDoc(data []byte, whole bool) (int, *SyntaxError) {
	s := scanner{data: data}
	end := s.value(s.skip(0), 0)
	if s.err != nil {
		return 0, s.err
	}
	if whole {
		if i := s.skip(end); i < len(data) {
			return 0, s.fail(i, "expected end of input after JSON value, found "+quoteByte(data[i]))
		}
	}
	return end, nil
}

type scanner struct {
	data   []byte
	err    *SyntaxError
	values int // values met so far
}

func (s *scanner) fail(off int, msg string) *SyntaxError {
	if s.err == nil {
		s.err = &SyntaxError{Format: "json", Offset: off, Msg: msg}
	}
	return s.err
}

func (s *scanner) failDepth(off int) {
	s.fail(off, ErrDepth.Error()).Err = ErrDepth
}

func (s *scanner) skip(i int) int {
	for i < len(s.data) && isSpace(s.data[i]) {
		i++
	}
	return i
}

// expect reports what was wanted at i: the end of input or the byte found.
func (s *scanner) expect(i int, want string) int {
	if i >= len(s.data) {
		s.fail(i, "unexpected end of input, expected "+want)
	} else {
		s.fail(i, "expected "+want+", found "+quoteByte(s.data[i]))
	}
	return i
}

// value scans the value at i (whitespace already skipped) at the given
// nesting depth and returns the offset just past it.
func (s *scanner) value(i, depth int) int {
	d := s.data
	if i >= len(d) {
		return s.expect(i, "value")
	}
	if s.values++; s.values > MaxValues {
		s.fail(i, ErrTooManyValues.Error()).Err = ErrTooManyValues
		return i
	}
	switch c := d[i]; {
	case c == '{':
		if depth >= MaxDepth {
			s.failDepth(i)
			return i
		}
		i = s.skip(i + 1)
		if i < len(d) && d[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(d) || d[i] != '"' {
				return s.expect(i, "string for object key")
			}
			if i = s.str(i); s.err != nil {
				return i
			}
			if i = s.skip(i); i >= len(d) || d[i] != ':' {
				return s.expect(i, "':' after object key")
			}
			if i = s.value(s.skip(i+1), depth+1); s.err != nil {
				return i
			}
			i = s.skip(i)
			if i < len(d) && d[i] == '}' {
				return i + 1
			}
			if i >= len(d) || d[i] != ',' {
				return s.expect(i, "',' or '}' after object member")
			}
			i = s.skip(i + 1)
		}
	case c == '[':
		if depth >= MaxDepth {
			s.failDepth(i)
			return i
		}
		i = s.skip(i + 1)
		if i < len(d) && d[i] == ']' {
			return i + 1
		}
		for {
			if i = s.value(i, depth+1); s.err != nil {
				return i
			}
			i = s.skip(i)
			if i < len(d) && d[i] == ']' {
				return i + 1
			}
			if i >= len(d) || d[i] != ',' {
				return s.expect(i, "',' or ']' after array element")
			}
			i = s.skip(i + 1)
		}
	case c == '"':
		return s.str(i)
	case c == '-' || isDigit(c):
		end, msg := scanNumber(d, i)
		if msg != "" {
			s.fail(end, msg)
		}
		return end
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	default:
		return s.expect(i, "value")
	}
}

func (s *scanner) literal(i int, lit string) int {
	for j := 0; j < len(lit); j++ {
		if i+j >= len(s.data) {
			s.fail(i+j, "unexpected end of input in literal "+lit)
			return i + j
		}
		if s.data[i+j] != lit[j] {
			s.fail(i+j, "invalid literal, expected "+lit)
			return i + j
		}
	}
	return i + len(lit)
}

// str scans the string whose opening quote is at i.
func (s *scanner) str(i int) int {
	d := s.data
	i++
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(d) {
				s.fail(i+1, "unexpected end of input in string escape")
				return i + 1
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(d) {
						s.fail(j, "unexpected end of input in \\u escape")
						return j
					}
					if !isHex(d[j]) {
						s.fail(j, "expected hex digit in \\u escape, found "+quoteByte(d[j]))
						return j
					}
				}
				i += 6
			default:
				s.fail(i+1, "invalid escape character "+quoteByte(d[i+1]))
				return i + 1
			}
		case c < 0x20:
			s.fail(i, "control character "+quoteByte(c)+" in string")
			return i
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				s.fail(i, "invalid UTF-8 in string")
				return i
			}
			i += size
		}
	}
	s.fail(i, "unexpected end of input in string")
	return i
}

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// AppendJSON appends n as compact JSON: object members in document order
// (duplicates kept), strings escaped as JSON requires (invalid UTF-8 becomes
// U+FFFD). A nil node, and a Number whose text is not a JSON number, are
// written as null so that the output is always valid JSON.
func (n *Node) AppendJSON(dst []byte) []byte {
	if n == nil {
		return append(dst, "null"...)
	}
	switch n.Kind {
	case Bool:
		if n.Str == "true" {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		if end, msg := scanNumber(n.Str, 0); msg == "" && end == len(n.Str) {
			return append(dst, n.Str...)
		}
		return append(dst, "null"...)
	case String:
		return appendJSONString(dst, n.Str)
	case Array:
		dst = append(dst, '[')
		for i, e := range n.Arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.AppendJSON(dst)
		}
		return append(dst, ']')
	case Object:
		dst = append(dst, '{')
		first := true
		for _, m := range n.Obj {
			if m.Val == nil {
				continue // a removed member (see Member)
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, m.Key)
			dst = append(dst, ':')
			dst = m.Val.AppendJSON(dst)
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
