package doc

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"
)

var jsonSeeds = []string{
	``, `null`, `true`, `false`, `0`, `-0`, `1.5e-3`, `1E2`, `01`, `-`, `1.`, `[1e+]`,
	`"abc"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, "\"\\n\x01\"", "\"\xff\"",
	`[]`, `{}`, `[1,]`, `{"a":1,}`, `{"a":1,null:2}`, `{"":1,"a":2,"":3}`,
	`{"b":1,"a":2,"b":3}`, `{"a":{"b":[1,{"c":null}]},"d":[true,false,"x"]}`,
	`{"bucketName":"x","acl":["a","b"],"nested":{"k":"v"}}`,
	`{"AaAaAaAa":1,"AaAaAaBB":2,"AaAaBBAa":3,"AaAaBBBB":4,"AaBBAaAa":5,"AaBBAaBB":6,"AaBBBBAa":7,"AaBBBBBB":8,"BBAaAaAa":9,"x":10}`,
	`[1,-5,2147483648,9223372036854775808,1.5,1e7,0.0001,123.0,1E2,1e400,5e-324]`,
	strings.Repeat("[", 513) + strings.Repeat("]", 513),
	`{"a":1} x`, `1 2`, "\x00",
}

func addFileSeed(f *testing.F, name string) {
	if data, err := os.ReadFile(name); err == nil {
		f.Add(data)
	}
}

// FuzzParseJSON: never panic; the walk and the strict scanner agree; an
// accepted document survives AppendJSON and a re-parse unchanged.
func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	addFileSeed(f, "testdata/cloudtrail.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseJSON(data)
		_, scanErr := scanDoc(data, true)
		if (err == nil) != (scanErr == nil) {
			t.Fatalf("ParseJSON err %v, scanner err %v", err, scanErr)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(data) {
				t.Fatalf("bad error %v", err)
			}
			// encoding/json agrees, except on what it does not check:
			// UTF-8 validity and nesting deeper than MaxDepth.
			if json.Valid(data) && utf8.Valid(data) && !strings.HasPrefix(se.Msg, "nesting deeper") {
				t.Fatalf("encoding/json accepts what ParseJSON refuses: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("ParseJSON accepts what encoding/json refuses")
		}
		out := n.AppendJSON(nil)
		back, err := ParseJSON(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if !equalNode(n, back) {
			t.Fatalf("round trip changed the tree:\n%s\n%s", dump(n), dump(back))
		}
		if again := back.AppendJSON(nil); string(again) != string(out) {
			t.Fatalf("AppendJSON not stable: %q vs %q", out, again)
		}
		p, used, err := ParseJSONPrefix(data)
		if err != nil || used != len(data) || !equalNode(n, p) {
			t.Fatalf("ParseJSONPrefix: %v, used %d of %d", err, used, len(data))
		}
		_ = n.JavaString()
	})
}

// FuzzReadMsgpack: never panic; what is read renders as valid JSON and as
// Java text.
func FuzzReadMsgpack(f *testing.F) {
	b := msgp.AppendMapHeader(nil, 3)
	b = msgp.AppendString(b, "a")
	b = msgp.AppendFloat64(b, 1.5)
	b = msgp.AppendBytes(b, []byte("k"))
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendNil(b)
	b = msgp.AppendUint64(b, 1<<63)
	b = msgp.AppendString(b, "t")
	b, _ = msgp.AppendExtension(b, eventTime(1714558542, 5))
	f.Add(b)
	f.Add(msgp.AppendTimeExt(nil, time0))
	f.Add(append(msgp.AppendArrayHeader(nil, 1e9), 1, 2, 3))
	f.Add([]byte{0xc1})
	f.Add([]byte{0xc9, 0x3b, 0x9a, 0xca, 0x00, 0x00, 'a'})
	f.Add(msgp.AppendString(nil, "bad \xff utf8"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, rest, err := ReadMsgpack(data)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(data) || len(rest) != len(data) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if len(rest) >= len(data) {
			t.Fatalf("consumed nothing")
		}
		out := n.AppendJSON(nil)
		if _, err := ParseJSON(out); err != nil {
			t.Fatalf("AppendJSON gave invalid JSON %q: %v", out, err)
		}
		_ = n.JavaString()
	})
}

// FuzzJavaString: never panic, and agree with the literal HashMap replay
// of the reference implementation.
func FuzzJavaString(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	addFileSeed(f, "testdata/cloudtrail.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseJSON(data)
		if err != nil {
			return
		}
		got := n.JavaString()
		if hasTreeRisk(n) {
			return
		}
		if want := refJava(n); got != want {
			t.Fatalf("JavaString = %s\nreference  = %s", got, want)
		}
	})
}

func hasTreeRisk(n *Node) bool {
	if n == nil {
		return false
	}
	if n.Kind == Object && treeRisk(n) {
		return true
	}
	for _, e := range n.Arr {
		if hasTreeRisk(e) {
			return true
		}
	}
	for _, m := range n.Obj {
		if hasTreeRisk(m.Val) {
			return true
		}
	}
	return false
}
