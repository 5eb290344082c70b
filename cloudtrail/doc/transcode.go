package doc

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// JSON text is read on the fast path by writing it as MessagePack into a
// reused buffer, in one pass and without allocating, and then reading that
// in place as a Fluent Bit record is read. The MessagePack is a faithful
// copy of the tree ParseJSON builds: ReadMsgpackJSON of it gives the same
// tree (FuzzTranscode holds the two together), so every reader of the
// in-place path serves JSON too.

// JSONNumberExt is the MessagePack extension type under which a JSON number
// whose literal a MessagePack number would not give back as written (a
// float such as 0.0 or 1e5, -0, an integer beyond 64 bits) is kept: its
// payload is the literal. Only ReadMsgpackJSON reads it as a number; for
// ReadMsgpack it is an unknown extension, as it would be in a Fluent Bit
// record.
const JSONNumberExt = 'J'

// Transcoder writes JSON text as MessagePack (see AppendMsgpack). Its zero
// value is ready; it keeps a stack between calls, so that a reused
// Transcoder allocates nothing. It is not safe for concurrent use.
type Transcoder struct {
	stack []frame
	// Top lists the members of the last object transcoded at the top
	// level, where its MessagePack holds them (offsets from where that
	// MessagePack begins): reading a record in place needs that list,
	// which then costs no walk. Nil when the value was not an object.
	Top  []TopMember
	base int // where the value's MessagePack begins in dst
}

// TopMember is where one member of a top-level object is in the
// transcoded MessagePack: its key's text and its value.
type TopMember struct {
	KeyOff, KeyLen, ValOff, ValLen uint32
}

// frame is a container being written: where its header is, how many
// members or elements it has so far, and how the header was reserved.
type frame struct {
	hdr  int
	n    uint32
	obj  bool
	wide bool // three bytes reserved (map16/array16), else one (fix)
}

// AppendMsgpack appends the JSON value src as MessagePack to dst and
// returns the extended buffer, or dst (its length unchanged) and false when
// ParseJSON would refuse src. Exactly what ParseJSON accepts is accepted:
// one value with optional whitespace around it, strings of valid UTF-8
// without raw control characters, nesting no deeper than MaxDepth, at most
// MaxValues values. Strings
// are unescaped as ParseJSON unescapes them (a \u escape of a lone UTF-16
// surrogate is U+FFFD, a pair is one character, as jsoniter decodes them);
// object members keep their order and duplicate keys; an integer literal
// that a MessagePack integer gives back as written is one, and any other
// number is kept as its literal under JSONNumberExt.
func (t *Transcoder) AppendMsgpack(dst, src []byte) ([]byte, bool) {
	base := len(dst)
	// MessagePack takes at most 5/3 of the text (a number such as -0 under
	// its extension), plus a top-level header and the 8 bytes a string's
	// copy may run past its end: no growth inside.
	if room := 2*len(src) + 16; cap(dst)-len(dst) < room {
		dst = slices.Grow(dst, room)
	}
	t.Top, t.base = t.Top[:0], base
	out, ok := t.appendValue(dst, src)
	if !ok || len(out)-base > math.MaxUint32 || out[base] != 0xde {
		// Refused; too large for the offsets; not an object (or one
		// whose header outgrew map16, moving its members).
		t.Top = t.Top[:0]
	}
	if !ok {
		return dst[:base], false
	}
	return out, true
}

// key notes a member of the top-level object: its key was written from
// at, and its value begins where dst ends.
func (t *Transcoder) key(dst []byte, at int) {
	h := 1 // fixstr
	switch dst[at] {
	case 0xd9:
		h = 2
	case 0xda:
		h = 3
	case 0xdb:
		h = 5
	}
	t.Top = append(t.Top, TopMember{KeyOff: uint32(at + h - t.base), KeyLen: uint32(len(dst) - at - h), ValOff: uint32(len(dst) - t.base)})
}

func (t *Transcoder) appendValue(dst, src []byte) ([]byte, bool) {
	stack := t.stack[:0]
	defer func() { t.stack = stack[:0] }()
	i := skipSpace(src, 0)
	var ok bool
	for values := 1; ; values++ {
		// A value starts at i (whitespace skipped).
		if i >= len(src) || values > MaxValues {
			return dst, false // ParseJSON says why
		}
		switch c := src[i]; {
		case c == '"':
			if dst, i, ok = appendString(dst, src, i); !ok {
				return dst, false
			}
		case c == '{' || c == '[':
			if len(stack) >= MaxDepth {
				return dst, false
			}
			obj := c == '{'
			wide := len(stack) == 0 // a record's top level has more than 15 members
			f := frame{hdr: len(dst), obj: obj, wide: wide}
			if wide {
				dst = append(dst, 0, 0, 0)
			} else {
				dst = append(dst, 0)
			}
			stack = append(stack, f)
			i = skipSpace(src, i+1)
			if i < len(src) && (obj && src[i] == '}' || !obj && src[i] == ']') {
				i++
				stack = stack[:len(stack)-1]
				dst = closeContainer(dst, f)
				break
			}
			if obj {
				at := len(dst)
				if dst, i, ok = appendKey(dst, src, i); !ok {
					return dst, false
				}
				if len(stack) == 1 {
					t.key(dst, at)
				}
			}
			continue
		case c == '-' || isDigit(c):
			if dst, i, ok = appendNumber(dst, src, i); !ok {
				return dst, false
			}
		case c == 't':
			if !hasLiteral(src, i, "true") {
				return dst, false
			}
			dst, i = append(dst, 0xc3), i+4
		case c == 'f':
			if !hasLiteral(src, i, "false") {
				return dst, false
			}
			dst, i = append(dst, 0xc2), i+5
		case c == 'n':
			if !hasLiteral(src, i, "null") {
				return dst, false
			}
			dst, i = append(dst, 0xc0), i+4
		default:
			return dst, false
		}
		// A value ended at i: what comes next is up to its container.
		for {
			i = skipSpace(src, i)
			if len(stack) == 0 {
				return dst, i == len(src)
			}
			if i >= len(src) {
				return dst, false
			}
			f := &stack[len(stack)-1]
			f.n++
			top := len(stack) == 1 && f.obj
			if top {
				m := &t.Top[len(t.Top)-1]
				m.ValLen = uint32(len(dst)-t.base) - m.ValOff
			}
			c := src[i]
			if c == ',' {
				i = skipSpace(src, i+1)
				if f.obj {
					at := len(dst)
					if dst, i, ok = appendKey(dst, src, i); !ok {
						return dst, false
					}
					if top {
						t.key(dst, at)
					}
				}
				break // the next value
			}
			if f.obj && c == '}' || !f.obj && c == ']' {
				i++
				dst = closeContainer(dst, *f)
				stack = stack[:len(stack)-1]
				continue // the container is a value that ended
			}
			return dst, false
		}
	}
}

// appendKey writes the object key at i and steps over the ':' after it,
// to the value.
func appendKey(dst, src []byte, i int) ([]byte, int, bool) {
	if i >= len(src) || src[i] != '"' {
		return dst, i, false
	}
	dst, i, ok := appendString(dst, src, i)
	if !ok {
		return dst, i, false
	}
	i = skipSpace(src, i)
	if i >= len(src) || src[i] != ':' {
		return dst, i, false
	}
	return dst, skipSpace(src, i+1), true
}

// closeContainer writes a container's header now that its size is known:
// a one-byte header reserved for more than 15 entries makes room for a
// wider one.
func closeContainer(dst []byte, f frame) []byte {
	n := f.n
	var fix, h16, h32 byte = 0x90, 0xdc, 0xdd
	if f.obj {
		fix, h16, h32 = 0x80, 0xde, 0xdf
	}
	if !f.wide {
		if n <= 15 {
			dst[f.hdr] = fix | byte(n)
			return dst
		}
		// Two more header bytes: slide the content up.
		dst = append(dst, 0, 0)
		copy(dst[f.hdr+3:], dst[f.hdr+1:len(dst)-2])
	}
	if n <= math.MaxUint16 {
		dst[f.hdr] = h16
		binary.BigEndian.PutUint16(dst[f.hdr+1:], uint16(n))
		return dst
	}
	dst = append(dst, 0, 0)
	copy(dst[f.hdr+5:], dst[f.hdr+3:len(dst)-2])
	dst[f.hdr] = h32
	binary.BigEndian.PutUint32(dst[f.hdr+1:], n)
	return dst
}

func skipSpace(src []byte, i int) int {
	for i < len(src) && src[i] <= ' ' && isSpace(src[i]) {
		i++
	}
	return i
}

func hasLiteral(src []byte, i int, lit string) bool {
	return len(src)-i >= len(lit) && string(src[i:i+len(lit)]) == lit
}

// plainRun returns the end of the run of bytes from i that a string copies
// as they are: printable ASCII other than '"' and '\\'.
func plainRun(src []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for i+8 <= len(src) {
		w := binary.LittleEndian.Uint64(src[i:])
		// The top bit of a byte's lane is set when the byte is < 0x20,
		// '"', '\\' or >= 0x80. A subtraction borrows only from a lane
		// that tests true, so the lanes below the first such byte are
		// exact: the lowest set bit is the first byte to stop at.
		q, b := w^('"'*ones), w^('\\'*ones)
		t := ((w-0x20*ones)&^w | (q-ones)&^q | (b-ones)&^b | w) & highs
		if t != 0 {
			return i + bits.TrailingZeros64(t)>>3
		}
		i += 8
	}
	for i < len(src) {
		c := src[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return i
		}
		i++
	}
	return i
}

// appendStrHeader appends a str header for n bytes.
func appendStrHeader(dst []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return append(dst, 0xda, byte(n>>8), byte(n))
	}
	return append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendString writes the JSON string whose opening quote is at i as a
// MessagePack str, and returns the offset after its closing quote. dst
// has room for the string and 8 bytes more (AppendMsgpack grows it once).
func appendString(dst, src []byte, i int) ([]byte, int, bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	start := i + 1
	// Copy eight bytes at a time after a two-byte header, while they are
	// printable ASCII other than '"' and '\\' (see plainRun); the copy
	// may run past the string, into room the caller made.
	hdr := len(dst)
	d := dst[:cap(dst)]
	o, j := hdr+2, start
	for j+8 <= len(src) && o+8 <= len(d) {
		w := binary.LittleEndian.Uint64(src[j:])
		binary.LittleEndian.PutUint64(d[o:], w)
		q, b := w^('"'*ones), w^('\\'*ones)
		if t := ((w-0x20*ones)&^w | (q-ones)&^q | (b-ones)&^b | w) & highs; t != 0 {
			k := bits.TrailingZeros64(t) >> 3
			j, o = j+k, o+k
			goto stop
		}
		j, o = j+8, o+8
	}
	for j < len(src) && o < len(d) {
		c := src[j]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			break
		}
		d[o] = c
		j, o = j+1, o+1
	}
stop:
	if j < len(src) && src[j] == '"' {
		// The common case: nothing to decode or check.
		n := j - start
		switch {
		case n <= 31:
			d[hdr] = 0xa0 | byte(n)
			copy(d[hdr+1:hdr+1+n], d[hdr+2:hdr+2+n])
			return d[:hdr+1+n], j + 1, true
		case n <= math.MaxUint8:
			d[hdr], d[hdr+1] = 0xd9, byte(n)
			return d[:hdr+2+n], j + 1, true
		}
	}
	return appendStringSlow(dst, src, start, j)
}

// appendStringSlow is appendString for a string with escapes or bytes
// beyond ASCII, or longer than 255 bytes: src[start:i] is plain text.
func appendStringSlow(dst, src []byte, start, i int) ([]byte, int, bool) {
	if uint64(len(src)) > math.MaxUint32 {
		return dst, i, false
	}
	// Decode after a five-byte header, then move the text down under the
	// header its length needs.
	hdr := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0)
	dst = append(dst, src[start:i]...)
	for {
		if i >= len(src) {
			return dst, i, false
		}
		switch c := src[i]; {
		case c == '"':
			n := len(dst) - hdr - 5
			h := len(appendStrHeader(dst[:hdr], n)) - hdr
			copy(dst[hdr+h:], dst[hdr+5:])
			return dst[:hdr+h+n], i + 1, true
		case c == '\\':
			var ok bool
			if dst, i, ok = appendEscape(dst, src, i); !ok {
				return dst, i, false
			}
		case c < 0x20:
			return dst, i, false
		case c >= utf8.RuneSelf:
			j := i
			for j < len(src) && src[j] >= utf8.RuneSelf {
				r, size := utf8.DecodeRune(src[j:])
				if r == utf8.RuneError && size == 1 {
					return dst, j, false
				}
				j += size
			}
			dst = append(dst, src[i:j]...)
			i = j
		}
		j := plainRun(src, i)
		dst = append(dst, src[i:j]...)
		i = j
	}
}

// appendEscape decodes the escape at src[i] ('\\') as jsoniter does: a \u
// escape of a UTF-16 surrogate is joined with a \u escape right after it
// when the two make a pair; otherwise the surrogate is U+FFFD (and the
// second escape, when it was read for the pair, is taken as it is).
func appendEscape(dst, src []byte, i int) ([]byte, int, bool) {
	if i+1 >= len(src) {
		return dst, i, false
	}
	switch e := src[i+1]; e {
	case '"', '\\', '/':
		return append(dst, e), i + 2, true
	case 'b':
		return append(dst, '\b'), i + 2, true
	case 'f':
		return append(dst, '\f'), i + 2, true
	case 'n':
		return append(dst, '\n'), i + 2, true
	case 'r':
		return append(dst, '\r'), i + 2, true
	case 't':
		return append(dst, '\t'), i + 2, true
	case 'u':
	default:
		return dst, i, false
	}
	r, ok := hex4(src, i+2)
	if !ok {
		return dst, i, false
	}
	i += 6
	if !utf16.IsSurrogate(r) {
		return utf8.AppendRune(dst, r), i, true
	}
	if i+1 < len(src) && src[i] == '\\' && src[i+1] == 'u' {
		r2, ok := hex4(src, i+2)
		if !ok {
			return dst, i, false
		}
		i += 6
		if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
			return utf8.AppendRune(dst, c), i, true
		}
		// No pair: both as they are (a surrogate is U+FFFD).
		return utf8.AppendRune(utf8.AppendRune(dst, utf8.RuneError), r2), i, true
	}
	return utf8.AppendRune(dst, utf8.RuneError), i, true
}

func hex4(src []byte, i int) (rune, bool) {
	if len(src)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range src[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// appendNumber writes the number at i: a MessagePack integer when one
// gives the literal back as written, else the literal under JSONNumberExt.
func appendNumber(dst, src []byte, i int) ([]byte, int, bool) {
	end, msg := scanNumber(src, i)
	if msg != "" {
		return dst, end, false
	}
	lit := src[i:end]
	if v, neg, ok := plainInteger(lit); ok {
		if neg {
			return appendInt(dst, -int64(v)), end, true
		}
		return appendUint(dst, v), end, true
	}
	n := len(lit)
	switch {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc7, byte(n), JSONNumberExt)
	case n <= math.MaxUint16:
		dst = append(dst, 0xc8, byte(n>>8), byte(n), JSONNumberExt)
	case uint64(n) <= math.MaxUint32:
		dst = append(dst, 0xc9, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), JSONNumberExt)
	default:
		return dst, end, false
	}
	return append(dst, lit...), end, true
}

// plainInteger reads an integer literal (the grammar already checked)
// whose value a MessagePack integer holds and prints back the same: not
// -0, no fraction or exponent, within int64 when negative and uint64 when
// not. It returns the magnitude.
func plainInteger(lit []byte) (v uint64, neg bool, ok bool) {
	d := lit
	if d[0] == '-' {
		neg, d = true, d[1:]
	}
	if len(d) > 20 {
		return 0, false, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		if v > (math.MaxUint64-9)/10 && (v > math.MaxUint64/10 || uint64(c-'0') > math.MaxUint64-v*10) {
			return 0, false, false
		}
		v = v*10 + uint64(c-'0')
	}
	if neg && (v == 0 || v > 1<<63) {
		return 0, false, false
	}
	return v, neg, true
}

func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(dst, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(dst, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= -32:
		return append(dst, byte(v))
	case v >= math.MinInt8:
		return append(dst, 0xd0, byte(v))
	case v >= math.MinInt16:
		return append(dst, 0xd1, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return append(dst, 0xd2, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

// StringBytes views s as bytes without copying, for reading only.
func StringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
