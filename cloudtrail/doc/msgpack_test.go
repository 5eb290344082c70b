package doc

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

func eventTime(sec, nsec uint32) *msgp.RawExtension {
	return &msgp.RawExtension{Type: EventTimeExt, Data: []byte{
		byte(sec >> 24), byte(sec >> 16), byte(sec >> 8), byte(sec),
		byte(nsec >> 24), byte(nsec >> 16), byte(nsec >> 8), byte(nsec),
	}}
}

func appendExt(t testing.TB, b []byte, e msgp.Extension) []byte {
	b, err := msgp.AppendExtension(b, e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadMsgpack(t *testing.T) {
	ts := time.Date(2024, 5, 1, 10, 15, 42, 123456789, time.UTC)
	tests := []struct {
		name string
		in   func() []byte
		want string
	}{
		{"scalars", func() []byte {
			b := msgp.AppendArrayHeader(nil, 12)
			b = msgp.AppendNil(b)
			b = msgp.AppendBool(b, true)
			b = msgp.AppendBool(b, false)
			b = msgp.AppendInt64(b, -5)
			b = msgp.AppendInt64(b, 7)
			b = msgp.AppendInt64(b, math.MinInt64)
			b = msgp.AppendUint64(b, math.MaxUint64)
			b = msgp.AppendFloat64(b, 1.5)
			b = msgp.AppendFloat64(b, 1e21)
			b = msgp.AppendFloat32(b, 0.1)
			b = msgp.AppendFloat64(b, 2)
			b = msgp.AppendString(b, "héllo")
			return b
		}, "[null b:true b:false i:-5 i:7 i:-9223372036854775808 i:18446744073709551615 f:1.5 f:1e+21 f:0.1 f:2 s:héllo]"},
		{"non-finite floats become null", func() []byte {
			b := msgp.AppendArrayHeader(nil, 3)
			b = msgp.AppendFloat64(b, math.NaN())
			b = msgp.AppendFloat64(b, math.Inf(1))
			b = msgp.AppendFloat32(b, float32(math.Inf(-1)))
			return b
		}, "[null null null]"},
		{"map with str and bin keys, bin value", func() []byte {
			b := msgp.AppendMapHeader(nil, 3)
			b = msgp.AppendString(b, "a")
			b = msgp.AppendBytes(b, []byte("bin value"))
			b = msgp.AppendBytes(b, []byte("binkey"))
			b = msgp.AppendArrayHeader(b, 2)
			b = msgp.AppendInt(b, 1)
			b = msgp.AppendMapHeader(b, 0)
			b = msgp.AppendString(b, "a")
			b = msgp.AppendString(b, "dup")
			return b
		}, "{a=s:bin value binkey=[i:1 {}] a=s:dup}"},
		{"event time", func() []byte {
			return appendExt(t, nil, eventTime(uint32(ts.Unix()), uint32(ts.Nanosecond())))
		}, "s:2024-05-01T10:15:42.123456789Z"},
		{"event time whole second", func() []byte {
			return appendExt(t, nil, eventTime(uint32(ts.Unix()), 0))
		}, "s:2024-05-01T10:15:42Z"},
		{"msgpack timestamp", func() []byte { return msgp.AppendTimeExt(nil, ts) }, "s:2024-05-01T10:15:42.123456789Z"},
		{"msgp time", func() []byte { return msgp.AppendTime(nil, ts.In(time.FixedZone("x", 3600))) }, "s:2024-05-01T10:15:42.123456789Z"},
		{"other extension", func() []byte {
			return appendExt(t, nil, &msgp.RawExtension{Type: 42, Data: []byte("payload")})
		}, "null"},
		{"event time with wrong size", func() []byte {
			return appendExt(t, nil, &msgp.RawExtension{Type: EventTimeExt, Data: []byte{1, 2, 3, 4}})
		}, "null"},
		{"empty extension", func() []byte {
			return appendExt(t, nil, &msgp.RawExtension{Type: 9, Data: nil})
		}, "null"},
		{"complex", func() []byte { return msgp.AppendComplex128(nil, 1+2i) }, "null"},
		{"fluent bit record", func() []byte {
			b := msgp.AppendArrayHeader(nil, 2)
			b = msgp.AppendArrayHeader(b, 2)
			b = appendExt(t, b, eventTime(1714558542, 5))
			b = msgp.AppendMapHeader(b, 0)
			b = msgp.AppendMapHeader(b, 1)
			b = msgp.AppendString(b, "log")
			b = msgp.AppendString(b, `{"eventName":"PutBucketPolicy"}`)
			return b
		}, `[[s:2024-05-01T10:15:42.000000005Z {}] {log=s:{"eventName":"PutBucketPolicy"}}]`},
		{"depth 512", func() []byte {
			var b []byte
			for i := 0; i < 512; i++ {
				b = msgp.AppendArrayHeader(b, 1)
			}
			return msgp.AppendNil(b)
		}, strings.Repeat("[", 512) + "null" + strings.Repeat("]", 512)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			in = append(in, 0xc0, 0x01) // a following object stays in rest
			n, rest, err := ReadMsgpack(in)
			if err != nil {
				t.Fatalf("ReadMsgpack: %v", err)
			}
			if got := dump(n); got != tt.want {
				t.Errorf("ReadMsgpack = %s, want %s", got, tt.want)
			}
			if string(rest) != "\xc0\x01" {
				t.Errorf("rest = %q", rest)
			}
			// Whatever was read renders as valid JSON.
			if _, err := ParseJSON(n.AppendJSON(nil)); err != nil {
				t.Errorf("AppendJSON output invalid: %v", err)
			}
		})
	}
}

func TestReadMsgpackErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		off  int
		want error  // matched with errors.Is, when set
		msg  string // substring of the message, when set
	}{
		{"empty", nil, 0, msgp.ErrShortBytes, ""},
		{"invalid prefix", []byte{0xc1}, 0, nil, "invalid prefix byte 0xc1"},
		{"array claims 1e9 elements", append(msgp.AppendArrayHeader(nil, 1e9), 1, 2, 3), 8, msgp.ErrShortBytes, ""},
		{"map claims 2^32-1 pairs", append(msgp.AppendMapHeader(nil, math.MaxUint32), 0xa1, 'a', 1), 8, msgp.ErrShortBytes, ""},
		{"str32 claims 1e9 bytes", []byte{0xdb, 0x3b, 0x9a, 0xca, 0x00, 'a'}, 0, msgp.ErrShortBytes, ""},
		{"bin32 claims 1e9 bytes", []byte{0xc6, 0x3b, 0x9a, 0xca, 0x00, 'a'}, 0, msgp.ErrShortBytes, ""},
		{"ext32 claims 1e9 bytes", []byte{0xc9, 0x3b, 0x9a, 0xca, 0x00, 0x00, 'a'}, 0, msgp.ErrShortBytes, ""},
		{"fixext8 short", []byte{0xd7, 0x00, 1, 2, 3}, 0, msgp.ErrShortBytes, ""},
		{"ext header short", []byte{0xc9, 0, 0}, 0, msgp.ErrShortBytes, ""},
		{"truncated float64", []byte{0xcb, 0, 0}, 0, msgp.ErrShortBytes, ""},
		{"int map key", append(msgp.AppendInt(msgp.AppendMapHeader(nil, 1), 1), 0xc0), 1, nil, "map key must be str or bin, found int"},
		{"nested error offset", func() []byte {
			b := msgp.AppendMapHeader(nil, 2)
			b = msgp.AppendString(b, "a")
			b = msgp.AppendNil(b)
			b = msgp.AppendString(b, "b")
			return append(b, 0xc1)
		}(), 6, nil, "invalid prefix byte 0xc1"},
		{"too deep", func() []byte {
			var b []byte
			for i := 0; i < 513; i++ {
				b = msgp.AppendArrayHeader(b, 1)
			}
			return msgp.AppendNil(b)
		}(), 512, ErrDepth, "nesting deeper than 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, rest, err := ReadMsgpack(tt.in)
			if err == nil {
				t.Fatalf("ReadMsgpack = %s, want error", dump(n))
			}
			if n != nil || len(rest) != len(tt.in) {
				t.Errorf("on error got node %v and rest of %d bytes, want nil and the input", n, len(rest))
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			if se.Offset != tt.off {
				t.Errorf("offset = %d, want %d (%v)", se.Offset, tt.off, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v is not %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "msgpack: offset ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error text %q", err)
			}
		})
	}
}

// TestReadMsgpackTruncated cuts a valid object at every length: each cut
// must fail, none may panic.
func TestReadMsgpackTruncated(t *testing.T) {
	b := msgp.AppendMapHeader(nil, 4)
	b = msgp.AppendString(b, "time")
	b = appendExt(t, b, eventTime(1714558542, 5))
	b = msgp.AppendString(b, "list")
	b = msgp.AppendArrayHeader(b, 3)
	b = msgp.AppendFloat64(b, 2.5)
	b = msgp.AppendUint64(b, 1<<40)
	b = msgp.AppendTimeExt(b, time.Unix(1, 2))
	b = msgp.AppendBytes(b, []byte("k"))
	b = msgp.AppendString(b, strings.Repeat("x", 300))
	b = msgp.AppendString(b, "m")
	b = msgp.AppendMapHeader(b, 1)
	b = msgp.AppendString(b, "n")
	b = msgp.AppendInt64(b, -70000)
	if _, rest, err := ReadMsgpack(b); err != nil || len(rest) != 0 {
		t.Fatalf("full input: %v, rest %d", err, len(rest))
	}
	for i := 0; i < len(b); i++ {
		if n, _, err := ReadMsgpack(b[:i]); err == nil {
			t.Fatalf("cut at %d of %d read %s", i, len(b), dump(n))
		}
	}
}

// TestReadMsgpackLyingLengthAllocs checks that a header claiming a huge
// count does not make the reader allocate for it.
func TestReadMsgpackLyingLengthAllocs(t *testing.T) {
	for _, in := range [][]byte{
		append(msgp.AppendArrayHeader(nil, math.MaxUint32), 0xc0, 0xc0),
		append(msgp.AppendMapHeader(nil, math.MaxUint32), 0xa1, 'a', 0xc0),
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, err := ReadMsgpack(in); err == nil {
				t.Fatal("no error")
			}
		})
		if allocs > 8 {
			t.Errorf("%d allocations for a lying header", int(allocs))
		}
	}
}

// TestReadMsgpackChunkTail checks that reading one small record at the head
// of a large chunk costs memory for the record, not for the chunk.
func TestReadMsgpackChunkTail(t *testing.T) {
	rec := msgp.AppendMapHeader(nil, 2)
	rec = msgp.AppendString(rec, "eventName")
	rec = msgp.AppendString(rec, "PutBucketPolicy")
	rec = msgp.AppendString(rec, "n")
	rec = msgp.AppendInt(rec, 1)
	chunk := append(rec, make([]byte, 1<<20)...)
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		n, rest, err := ReadMsgpack(chunk)
		if err != nil || len(rest) != 1<<20 || n.Get("eventName").Str != "PutBucketPolicy" {
			t.Fatalf("ReadMsgpack: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 4096 {
		t.Errorf("%d bytes allocated per small record", per)
	}
}
