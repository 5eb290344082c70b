package doc

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// checkTranscode holds AppendMsgpack to ParseJSON: the same inputs
// refused, and for the others ReadMsgpackJSON of the MessagePack is the
// tree ParseJSON builds. It returns the MessagePack (nil when refused).
func checkTranscode(t *testing.T, tc *Transcoder, data []byte) []byte {
	t.Helper()
	want, err := ParseJSON(data)
	prefix := []byte{0xc0, 0xc3} // what the buffer held before: kept
	out, ok := tc.AppendMsgpack(prefix, data)
	if !bytes.Equal(out[:len(prefix)], []byte{0xc0, 0xc3}) {
		t.Fatalf("the buffer's earlier bytes changed: % x", out[:len(prefix)])
	}
	if ok != (err == nil) {
		t.Fatalf("AppendMsgpack ok %v, ParseJSON err %v\ninput %q", ok, err, data)
	}
	if !ok {
		if len(out) != len(prefix) {
			t.Fatalf("a refused input left %d bytes", len(out)-len(prefix))
		}
		return nil
	}
	mp := out[len(prefix):]
	got, rest, err := ReadMsgpackJSON(mp)
	if err != nil || len(rest) != 0 {
		t.Fatalf("ReadMsgpackJSON: %v, %d bytes left\ninput %q\nmsgpack % x", err, len(rest), data, mp)
	}
	if !equalNode(got, want) {
		t.Fatalf("trees differ\nParseJSON       %s\nReadMsgpackJSON %s\ninput %q", dump(want), dump(got), data)
	}
	if rest, err := msgp.Skip(mp); err != nil || len(rest) != 0 {
		t.Fatalf("msgp.Skip: %v, %d bytes left", err, len(rest))
	}
	checkTop(t, tc.Top, mp, want)
	return mp
}

// checkTop holds the top-level members a Transcoder noted to the map the
// MessagePack holds.
func checkTop(t *testing.T, top []TopMember, mp []byte, tree *Node) {
	t.Helper()
	if tree.Kind != Object || len(tree.Obj) > 65535 {
		if len(top) != 0 {
			t.Fatalf("%d top-level members noted for a %s", len(top), tree.Kind)
		}
		return
	}
	n, rest, err := msgp.ReadMapHeaderBytes(mp)
	if err != nil || int(n) != len(top) {
		t.Fatalf("%d members noted, the map has %d (%v)", len(top), n, err)
	}
	for _, m := range top {
		k, after, err := msgp.ReadMapKeyZC(rest)
		if err != nil {
			t.Fatal(err)
		}
		next, err := msgp.Skip(after)
		if err != nil {
			t.Fatal(err)
		}
		koff, voff := len(mp)-len(after)-len(k), len(mp)-len(after)
		if int(m.KeyOff) != koff || int(m.KeyLen) != len(k) || int(m.ValOff) != voff || int(m.ValLen) != len(after)-len(next) {
			t.Fatalf("member %q noted at %+v, is at key %d+%d value %d+%d", k, m, koff, len(k), voff, len(after)-len(next))
		}
		rest = next
	}
}

func TestTranscodeAgreesWithParseJSON(t *testing.T) {
	var tc Transcoder
	many := func(n int, obj bool) string {
		var sb strings.Builder
		if obj {
			sb.WriteByte('{')
		} else {
			sb.WriteByte('[')
		}
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			if obj {
				sb.WriteString(`"k` + strconv.Itoa(i) + `":`)
			}
			sb.WriteString(strconv.Itoa(i))
		}
		if obj {
			sb.WriteByte('}')
		} else {
			sb.WriteByte(']')
		}
		return sb.String()
	}
	cases := append([]string{}, jsonSeeds...)
	cases = append(cases,
		// Surrogates as jsoniter decodes them.
		`"\ud83d\ude00"`, `"\ude00\ud83d"`, `"\ud800\ud800\udc00"`, `"\ud800\n"`, `"\ud800\x"`, `"\ud800\"`, `"\ud800\u00"`,
		`"\ud800"`, `"a\udfffb"`, `"\u0000\u001f\u007f\u0080\u07ff\u0800\uffff"`, `"\/\b\f\n\r\t\"\\"`,
		// UTF-8 and control characters, in the fast run and after an escape.
		"\"日本語 \U0001F600 é\"", "\"\\n日本\xe8\"", "\"abcdefgh\xff\"", "\"abcdefghij\x1f\"", "\"\\nabc\x01\"", "\"\xed\xa0\x80\"",
		`"0123456789012345678901234567890"`, `"01234567890123456789012345678901"`, `"\n0123456789012345678901234567890"`,
		`"`+strings.Repeat("x", 70000)+`\n"`, `"`+strings.Repeat("é", 200)+`"`,
		// Numbers kept as written.
		`0`, `-0`, `-0.0`, `0.0`, `1024.0`, `1e5`, `1E+5`, `-1e-5`, `127`, `128`, `255`, `256`, `65535`, `65536`, `-32`, `-33`,
		`-128`, `-129`, `-32768`, `-32769`, `-2147483648`, `-2147483649`, `4294967295`, `4294967296`,
		`9223372036854775807`, `9223372036854775808`, `18446744073709551615`, `18446744073709551616`,
		`-9223372036854775808`, `-9223372036854775809`, `123456789012345678901234567890`, `1.`+strings.Repeat("5", 300),
		// Containers of every header size, empty ones, nesting.
		many(15, true), many(16, true), many(70000, true), many(15, false), many(16, false), many(70000, false),
		`{"a":{},"b":[],"c":[{}],"d":{"e":[[],{}]}}`, `[[[[]]]]`, `{"a":[1,{"b":[2,{"c":3}]}]}`,
		strings.Repeat("[", 512)+strings.Repeat("]", 512), strings.Repeat(`{"a":`, 512)+"1"+strings.Repeat("}", 512),
		strings.Repeat(`{"a":`, 513)+"1"+strings.Repeat("}", 513),
		// Whitespace, literals and what may not follow.
		" \t\r\n{ \"a\" : [ 1 , true , false , null ] } \n", `tru`, `nul`, `falsey`, `{"a" 1}`, `{"a":1 "b":2}`, `[1 2]`,
		`{"a":1}}`, `[1]]`, `{,}`, `[,1]`, `{"a"}`, `"abc`, `{"a":"b`, `[`, `{`, `{"a":`, `{"a":1,`, `{1:2}`,
		`{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventName":"PutObject"}`,
	)
	for _, c := range cases {
		checkTranscode(t, &tc, []byte(c))
	}
	if mp := checkTranscode(t, &tc, []byte(many(16, true))); mp[0] != 0xde {
		t.Fatalf("top level of 16 members: header % x", mp[:3])
	}
	if mp := checkTranscode(t, &tc, []byte(`{"a":`+many(16, false)+`}`)); mp[0] != 0xde || mp[5] != 0xdc {
		t.Fatalf("inner array of 16: % x", mp[:6])
	}
}

// A number the in-place path reads is a MessagePack integer; the others
// are their literal, which ReadMsgpack (for Fluent Bit records) ignores.
func TestTranscodeNumbers(t *testing.T) {
	var tc Transcoder
	for lit, typ := range map[string]msgp.Type{"5": msgp.IntType, "-5": msgp.IntType, "18446744073709551615": msgp.UintType,
		"-0": msgp.ExtensionType, "1.0": msgp.ExtensionType, "1e2": msgp.ExtensionType, "18446744073709551616": msgp.ExtensionType} {
		mp, _ := tc.AppendMsgpack(nil, []byte(lit))
		if got := msgp.NextType(mp); got != typ {
			t.Errorf("%s: %v, want %v", lit, got, typ)
		}
		n, _, err := ReadMsgpack(mp)
		if err != nil {
			t.Fatal(err)
		}
		if typ == msgp.ExtensionType && n.Kind != Null {
			t.Errorf("%s read by ReadMsgpack: %s", lit, dump(n))
		}
	}
}

func TestTranscodeAllocatesNothing(t *testing.T) {
	data, err := os.ReadFile("testdata/cloudtrail.json")
	if err != nil {
		t.Fatal(err)
	}
	var tc Transcoder
	buf := make([]byte, 0, 4*len(data))
	allocs := testing.AllocsPerRun(100, func() {
		var ok bool
		if buf, ok = tc.AppendMsgpack(buf[:0], data); !ok {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations a record", allocs)
	}
}

// FuzzTranscode: AppendMsgpack refuses what ParseJSON refuses, and what it
// writes reads back as ParseJSON's tree.
func FuzzTranscode(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`"\ud800\ud800\udc00"`, `"\ud800\n"`, `[-0,1.0,1e5,18446744073709551616]`, "\"\\n日本\xe8\""} {
		f.Add([]byte(s))
	}
	addFileSeed(f, "testdata/cloudtrail.json")
	var tc Transcoder
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTranscode(t, &tc, data)
	})
}
