package doc

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// EventTimeExt is the MessagePack extension type of Fluent Bit's and
// Fluentd's EventTime: 4 bytes of big-endian seconds, then 4 of nanoseconds.
const EventTimeExt = 0

// ReadMsgpack reads one MessagePack object from the start of b and returns
// it with the bytes that follow it. On error it returns b unchanged and a
// *SyntaxError with the offset of the object that could not be read.
//
// The strings of the tree share one copy of the object's bytes (one
// allocation instead of one per string); a caller that keeps a small string
// long after the tree is gone may want to strings.Clone it.
//
// Map keys must be str or bin. bin becomes a String. Integers become a
// Number with decimal text. float32 and float64 become a Number with Float
// set and the shortest text that reads back to the same value (strconv's
// 'g' format, a valid JSON number; a float32 gets the shortest text for a
// float32: "0.1", not "0.10000000149011612"). NaN and infinities, which
// JSON cannot hold, become Null. An EventTime (extension type 0, 8 bytes)
// and the MessagePack timestamp (extension type -1) become a String in
// RFC 3339 with nanoseconds, UTC; any other extension is skipped as Null.
// Nesting deeper than MaxDepth is an error (wrapping ErrDepth). Declared
// lengths are never trusted for allocation, so a header that claims more
// elements than the bytes can hold fails fast with msgp.ErrShortBytes.
// ReadMsgpack is safe for concurrent use.
func ReadMsgpack(b []byte) (*Node, []byte, error) { return readMsgpack(b, false) }

// ReadMsgpackJSON is ReadMsgpack for what Transcoder.AppendMsgpack wrote:
// a JSONNumberExt extension holding a number literal is that Number, as
// ParseJSON reads the literal.
func ReadMsgpackJSON(b []byte) (*Node, []byte, error) { return readMsgpack(b, true) }

func readMsgpack(b []byte, json bool) (*Node, []byte, error) {
	r := readerPool.Get().(*mpReader)
	r.json = json
	r.total, r.values = len(b), 0
	size := len(b)
	if rest, err := msgp.Skip(b); err == nil {
		// One copy of the object's bytes backs all its strings.
		size = len(b) - len(rest)
		r.whole = string(b[:size])
	}
	r.slab.reset(size / 24)
	n, rest, err := r.read(b, 0)
	r.release()
	if err != nil {
		msg := err.Error()
		if se, ok := err.(*mpError); ok {
			err = se.err
			msg = se.msg
			if msg == "" {
				msg = err.Error()
			}
			return nil, b, &SyntaxError{Format: "msgpack", Offset: len(b) - len(se.at), Msg: msg, Err: err}
		}
		return nil, b, &SyntaxError{Format: "msgpack", Msg: msg, Err: err}
	}
	return n, rest, nil
}

// mpError records where in the input a read failed.
type mpError struct {
	at  []byte // the input from the failing object on
	msg string
	err error
}

func (e *mpError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return e.err.Error()
}

// ErrDepth is wrapped by errors about nesting deeper than MaxDepth.
var ErrDepth = errors.New("nesting deeper than " + strconv.Itoa(MaxDepth))

// ErrTooManyValues is wrapped by errors about a document of more than
// MaxValues values.
var ErrTooManyValues = errors.New("more than " + strconv.Itoa(MaxValues) + " values")

type mpReader struct {
	values int    // values read so far
	total  int    // length of the input
	whole  string // copy of the object's bytes, "" if it could not be sized
	slab   slab
	nstack []*Node
	mstack []Member
	ext    rawExt
	json   bool // JSONNumberExt is a number (ReadMsgpackJSON)
}

var readerPool = sync.Pool{New: func() any { return new(mpReader) }}

// str returns v, the bytes just before o in the input, as a string.
func (r *mpReader) str(v, o []byte) string {
	end := r.total - len(o)
	if end <= len(r.whole) {
		return r.whole[end-len(v) : end]
	}
	return string(v)
}

func (r *mpReader) release() {
	r.slab = slab{}
	r.whole = ""
	r.ext = rawExt{}
	if cap(r.nstack) > 4096 || cap(r.mstack) > 4096 {
		r.nstack, r.mstack = nil, nil
	} else {
		clear(r.nstack[:cap(r.nstack)])
		clear(r.mstack[:cap(r.mstack)])
		r.nstack, r.mstack = r.nstack[:0], r.mstack[:0]
	}
	readerPool.Put(r)
}

func fail(at []byte, err error) (*Node, []byte, error) {
	return nil, at, &mpError{at: at, err: err}
}

func (r *mpReader) read(b []byte, depth int) (*Node, []byte, error) {
	if r.values++; r.values > MaxValues {
		return fail(b, ErrTooManyValues)
	}
	switch msgp.NextType(b) {
	case msgp.StrType:
		v, o, err := msgp.ReadStringZC(b)
		if err != nil {
			return fail(b, err)
		}
		return r.slab.scalar(String, r.str(v, o), false), o, nil
	case msgp.BinType:
		v, o, err := msgp.ReadBytesZC(b)
		if err != nil {
			return fail(b, err)
		}
		return r.slab.scalar(String, r.str(v, o), false), o, nil
	case msgp.IntType:
		i, o, err := msgp.ReadInt64Bytes(b)
		if err != nil {
			return fail(b, err)
		}
		return r.slab.scalar(Number, strconv.FormatInt(i, 10), false), o, nil
	case msgp.UintType:
		u, o, err := msgp.ReadUint64Bytes(b)
		if err != nil {
			return fail(b, err)
		}
		return r.slab.scalar(Number, strconv.FormatUint(u, 10), false), o, nil
	case msgp.Float32Type:
		f, o, err := msgp.ReadFloat32Bytes(b)
		if err != nil {
			return fail(b, err)
		}
		return r.float(float64(f), 32), o, nil
	case msgp.Float64Type:
		f, o, err := msgp.ReadFloat64Bytes(b)
		if err != nil {
			return fail(b, err)
		}
		return r.float(f, 64), o, nil
	case msgp.BoolType:
		v, o, err := msgp.ReadBoolBytes(b)
		if err != nil {
			return fail(b, err)
		}
		if v {
			return r.slab.scalar(Bool, "true", false), o, nil
		}
		return r.slab.scalar(Bool, "false", false), o, nil
	case msgp.NilType:
		o, err := msgp.ReadNilBytes(b)
		if err != nil {
			return fail(b, err)
		}
		return r.slab.node(Null), o, nil
	case msgp.ArrayType:
		sz, o, err := msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			return fail(b, err)
		}
		if depth >= MaxDepth {
			return fail(b, ErrDepth)
		}
		base := len(r.nstack)
		for i := uint32(0); i < sz; i++ {
			var e *Node
			if e, o, err = r.read(o, depth+1); err != nil {
				r.nstack = r.nstack[:base]
				return nil, b, err
			}
			r.nstack = append(r.nstack, e)
		}
		n := r.slab.node(Array)
		n.Arr = r.slab.elems(r.nstack[base:])
		r.nstack = r.nstack[:base]
		return n, o, nil
	case msgp.MapType:
		sz, o, err := msgp.ReadMapHeaderBytes(b)
		if err != nil {
			return fail(b, err)
		}
		if depth >= MaxDepth {
			return fail(b, ErrDepth)
		}
		base := len(r.mstack)
		for i := uint32(0); i < sz; i++ {
			k, o2, err := msgp.ReadMapKeyZC(o)
			if err != nil {
				r.mstack = r.mstack[:base]
				var te msgp.TypeError
				if errors.As(err, &te) {
					return nil, b, &mpError{at: o, msg: "map key must be str or bin, found " + te.Encoded.String(), err: err}
				}
				return fail(o, err)
			}
			var v *Node
			if v, o, err = r.read(o2, depth+1); err != nil {
				r.mstack = r.mstack[:base]
				return nil, b, err
			}
			r.mstack = append(r.mstack, Member{Key: r.str(k, o2), Val: v})
		}
		n := r.slab.node(Object)
		n.Obj = r.slab.members(r.mstack[base:])
		r.mstack = r.mstack[:base]
		return n, o, nil
	case msgp.TimeType:
		if t, o, err := msgp.ReadTimeBytes(b); err == nil {
			return r.slab.scalar(String, t.UTC().Format(time.RFC3339Nano), false), o, nil
		}
		// A malformed timestamp is skipped like any other extension.
		return r.extension(b)
	case msgp.ExtensionType, msgp.Complex64Type, msgp.Complex128Type:
		return r.extension(b)
	case msgp.InvalidType:
		if len(b) == 0 {
			return fail(b, msgp.ErrShortBytes)
		}
		return nil, b, &mpError{at: b, msg: "invalid prefix byte 0x" + strconv.FormatUint(uint64(b[0]), 16), err: msgp.InvalidPrefixError(b[0])}
	}
	// Any type the reader might add later: skip it.
	o, err := msgp.Skip(b)
	if err != nil {
		return fail(b, err)
	}
	return r.slab.node(Null), o, nil
}

func (r *mpReader) float(f float64, bits int) *Node {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return r.slab.node(Null)
	}
	return r.slab.scalar(Number, strconv.FormatFloat(f, 'g', -1, bits), true)
}

// extension reads an extension object: an EventTime becomes its RFC 3339
// text, anything else Null.
func (r *mpReader) extension(b []byte) (*Node, []byte, error) {
	typ, ok := peekExtType(b)
	if !ok {
		return fail(b, msgp.ErrShortBytes)
	}
	r.ext = rawExt{typ: typ}
	o, err := msgp.ReadExtensionBytes(b, &r.ext)
	if err != nil {
		return fail(b, err)
	}
	if typ == EventTimeExt && len(r.ext.data) == 8 {
		sec := int64(binary.BigEndian.Uint32(r.ext.data))
		nsec := int64(binary.BigEndian.Uint32(r.ext.data[4:]))
		t := time.Unix(sec, nsec).UTC()
		return r.slab.scalar(String, t.Format(time.RFC3339Nano), false), o, nil
	}
	if r.json && typ == JSONNumberExt {
		if end, msg := scanNumber(r.ext.data, 0); msg == "" && end == len(r.ext.data) {
			lit := r.str(r.ext.data, o)
			return r.slab.scalar(Number, lit, isFloatLiteral(lit)), o, nil
		}
	}
	return r.slab.node(Null), o, nil
}

// peekExtType returns the type byte of the extension object at b[0].
func peekExtType(b []byte) (int8, bool) {
	if len(b) == 0 {
		return 0, false
	}
	at := 0
	switch b[0] {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		at = 1
	case 0xc7: // ext 8
		at = 2
	case 0xc8: // ext 16
		at = 3
	case 0xc9: // ext 32
		at = 5
	default:
		return 0, false
	}
	if len(b) <= at {
		return 0, false
	}
	return int8(b[at]), true
}

// rawExt receives an extension's payload without copying it.
type rawExt struct {
	typ  int8
	data []byte
}

func (e *rawExt) ExtensionType() int8            { return e.typ }
func (e *rawExt) Len() int                       { return len(e.data) }
func (e *rawExt) MarshalBinaryTo(b []byte) error { copy(b, e.data); return nil }
func (e *rawExt) UnmarshalBinary(b []byte) error { e.data = b; return nil }
