package doc

import (
	"errors"
	"strings"
	"testing"
)

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"null", "null", "null"},
		{"true with space", " \t\r\n true \n", "b:true"},
		{"false", "false", "b:false"},
		{"zero", "0", "i:0"},
		{"negative zero", "-0", "i:-0"},
		{"number text kept", "1.50e-3", "f:1.50e-3"},
		{"capital E is float", "1E2", "f:1E2"},
		{"big integer", "123456789012345678901234567890", "i:123456789012345678901234567890"},
		{"string", `"abc"`, "s:abc"},
		{"escapes", `"a\"b\\c\/d\b\f\n\r\t"`, "s:a\"b\\c/d\b\f\n\r\t"},
		{"unicode escapes", `"\u00e9\ud83d\ude00x"`, "s:é😀x"},
		{"raw utf8", `"日本😀"`, "s:日本😀"},
		{"escaped control char", `"a\u0001b"`, "s:a\x01b"},
		{"empty array", "[]", "[]"},
		{"empty object", "{ }", "{}"},
		{"nested", `{"a":{"b":[1,{"c":null}]},"d":[true,false,"x"]}`, "{a={b=[i:1 {c=null}]} d=[b:true b:false s:x]}"},
		{"duplicates kept in order", `{"b":1,"a":2,"b":3}`, "{b=i:1 a=i:2 b=i:3}"},
		{"empty keys", `{"":1,"a":2,"":3}`, "{=i:1 a=i:2 =i:3}"},
		{"whitespace everywhere", " { \"a\" : [ 1 , 2 ] , \"b\" : { } } ", "{a=[i:1 i:2] b={}}"},
		{"depth 512", strings.Repeat("[", 512) + strings.Repeat("]", 512), strings.Repeat("[", 512) + strings.Repeat("]", 512)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseJSON(%q): %v", tt.in, err)
			}
			if got := dump(n); got != tt.want {
				t.Errorf("ParseJSON(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	deep := strings.Repeat("[", 513) + strings.Repeat("]", 513)
	deepObj := strings.Repeat(`{"a":`, 513) + "1" + strings.Repeat("}", 513)
	tests := []struct {
		name, in string
		off      int
		msg      string
	}{
		{"empty", "", 0, "unexpected end of input, expected value"},
		{"blank", "   ", 3, "unexpected end of input, expected value"},
		{"missing colon", `{"a" 1}`, 5, "expected ':' after object key, found '1'"},
		{"trailing comma in object", `{"a":1,}`, 7, "expected string for object key, found '}'"},
		{"trailing comma in array", `[1,]`, 3, "expected value, found ']'"},
		{"missing comma", `[1 2]`, 3, "expected ',' or ']' after array element, found '2'"},
		{"null key after comma", `{"a":1,null:2}`, 7, "expected string for object key, found 'n'"},
		{"null key first", `{null:2}`, 1, "expected string for object key, found 'n'"},
		{"number key", `{1:2}`, 1, "expected string for object key, found '1'"},
		{"unterminated string", `"abc`, 4, "unexpected end of input in string"},
		{"raw control char", "\"a\x01b\"", 2, "control character byte 0x01 in string"},
		{"raw control char after escape", "\"\\n\x01\"", 3, "control character byte 0x01 in string"},
		{"raw newline in key after escape", "{\"\\t\n\":1}", 4, "control character byte 0x0a in string"},
		{"invalid utf8", "\"ab\xffc\"", 3, "invalid UTF-8 in string"},
		{"invalid utf8 after escape", "\"\\n\xc3\"", 3, "invalid UTF-8 in string"},
		{"invalid utf8 in key", "{\"\xff\":1}", 2, "invalid UTF-8 in string"},
		{"utf8 surrogate", "\"\xed\xa0\x80\"", 1, "invalid UTF-8 in string"},
		{"bad escape", `"\x"`, 2, "invalid escape character 'x'"},
		{"bad unicode escape", `"\u12g4"`, 5, "expected hex digit in \\u escape, found 'g'"},
		{"short unicode escape", `"\u12`, 5, "unexpected end of input in \\u escape"},
		{"leading zero", "01", 1, "expected end of input after JSON value, found '1'"},
		{"lone minus", "-", 1, "unexpected end of input in number"},
		{"minus letter", "-a", 1, "expected digit in number, found 'a'"},
		{"dot at end", "1.", 2, "unexpected end of input in number"},
		{"dot then exponent", "1.e5", 2, "expected digit after decimal point, found 'e'"},
		{"empty exponent", "[1e+]", 4, "expected digit in exponent, found ']'"},
		{"plus sign", "+1", 0, "expected value, found '+'"},
		{"minus inside number", "[1-2]", 2, "expected ',' or ']' after array element, found '-'"},
		{"two dots", "[1.5.3]", 4, "expected ',' or ']' after array element, found '.'"},
		{"short literal", "tru", 3, "unexpected end of input in literal true"},
		{"bad literal", "trUe", 2, "invalid literal, expected true"},
		{"bad null", "[nul]", 4, "invalid literal, expected null"},
		{"long literal", "nulll", 4, "expected end of input after JSON value, found 'l'"},
		{"trailing garbage", `{"a":1} x`, 8, "expected end of input after JSON value, found 'x'"},
		{"second value", `1 2`, 2, "expected end of input after JSON value, found '2'"},
		{"nul byte", "\x00", 0, "expected value, found byte 0x00"},
		{"unclosed array", "[", 1, "unexpected end of input, expected value"},
		{"unclosed array after element", "[1", 2, "unexpected end of input, expected ',' or ']' after array element"},
		{"unclosed object", "{", 1, "unexpected end of input, expected string for object key"},
		{"value missing at end", `{"a":1,"":`, 10, "unexpected end of input, expected value"},
		{"mismatched close", `{"a":[1,2}`, 9, "expected ',' or ']' after array element, found '}'"},
		{"too deep array", deep, 512, "nesting deeper than 512"},
		{"too deep object", deepObj, 512 * 5, "nesting deeper than 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseJSON([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseJSON(%q) = %s, want error", tt.in, dump(n))
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			if se.Offset != tt.off || se.Msg != tt.msg {
				t.Errorf("ParseJSON(%q) error = offset %d %q, want offset %d %q", tt.in, se.Offset, se.Msg, tt.off, tt.msg)
			}
			if strings.HasPrefix(tt.msg, "nesting") != errors.Is(err, ErrDepth) {
				t.Errorf("errors.Is(%v, ErrDepth) wrong", err)
			}
			if !strings.HasPrefix(err.Error(), "json: offset ") {
				t.Errorf("error text %q lacks the offset prefix", err)
			}
		})
	}
}

func TestParseJSONPrefix(t *testing.T) {
	in := []byte("{\"a\":1} {\"b\":[2]}\n3 \"s\"\t")
	want := []struct {
		dump string
		n    int
	}{{"{a=i:1}", 8}, {"{b=[i:2]}", 10}, {"i:3", 2}, {"s:s", 4}}
	rest := in
	for i, w := range want {
		n, used, err := ParseJSONPrefix(rest)
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if got := dump(n); got != w.dump || used != w.n {
			t.Fatalf("value %d = %s, %d bytes; want %s, %d bytes", i, got, used, w.dump, w.n)
		}
		rest = rest[used:]
	}
	if len(rest) != 0 {
		t.Fatalf("left %q", rest)
	}
	if _, _, err := ParseJSONPrefix(rest); err == nil || err.Error() != "json: offset 0: unexpected end of input, expected value" {
		t.Fatalf("empty input: %v", err)
	}
	if _, _, err := ParseJSONPrefix([]byte(`{"a":1,null:2} {}`)); err == nil || err.Error() != "json: offset 7: expected string for object key, found 'n'" {
		t.Fatalf("null key: %v", err)
	}
	if _, _, err := ParseJSONPrefix([]byte("[\"\\n\x01\"]")); err == nil || err.Error() != "json: offset 4: control character byte 0x01 in string" {
		t.Fatalf("control char: %v", err)
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{` { "b" : 1 , "a" : [ true , null , -0.5E+3 ] , "b" : "x" } `, `{"b":1,"a":[true,null,-0.5E+3],"b":"x"}`},
		{`"\u0000\u001f\"\\\/\b\f\n\r\t\u2028é😀"`, "\"\\u0000\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\u2028é😀\""},
		{`{"":{},"x":[]}`, `{"":{},"x":[]}`},
		{`123456789012345678901234567890`, `123456789012345678901234567890`},
	}
	for _, tt := range tests {
		n := mustParse(t, tt.in)
		got := string(n.AppendJSON(nil))
		if got != tt.want {
			t.Errorf("AppendJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
		back := mustParse(t, got)
		if !equalNode(n, back) {
			t.Errorf("round trip of %s: %s != %s", tt.in, dump(back), dump(n))
		}
	}
	// Hand-built trees: invalid UTF-8 and bad numbers still give valid JSON.
	odd := &Node{Kind: Array, Arr: []*Node{
		{Kind: String, Str: "a\xffb"},
		{Kind: Number, Str: "NaN"},
		nil,
		{Kind: Kind(42)},
		{Kind: Bool, Str: "yes"},
	}}
	if got, want := string(odd.AppendJSON([]byte("x"))), `x["a\ufffdb",null,null,null,false]`; got != want {
		t.Errorf("AppendJSON(odd) = %s, want %s", got, want)
	}
	if _, err := ParseJSON(odd.AppendJSON(nil)); err != nil {
		t.Errorf("AppendJSON(odd) is not valid JSON: %v", err)
	}
}

func TestKeywordText(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`true`, "true", true},
		{`false`, "false", true},
		{`1.50`, "1.50", true},
		{`-7`, "-7", true},
		{`null`, "", false},
		{`[1]`, "", false},
		{`{}`, "", false},
	}
	for _, tt := range tests {
		got, ok := mustParse(t, tt.in).KeywordText()
		if got != tt.want || ok != tt.ok {
			t.Errorf("KeywordText(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	var nilNode *Node
	if _, ok := nilNode.KeywordText(); ok {
		t.Error("KeywordText(nil) reported a value")
	}
}

func TestGetPath(t *testing.T) {
	n := mustParse(t, `{"a":{"b":{"c":"deep"}},"d":1,"d":2,"arr":[{"x":1}]}`)
	if got := n.Path("a", "b", "c").Str; got != "deep" {
		t.Errorf("Path(a,b,c) = %q", got)
	}
	if got := n.Get("d").Str; got != "2" {
		t.Errorf("Get(d) with duplicates = %q, want the last, 2", got)
	}
	if n.Path() != n {
		t.Error("Path() is not the node itself")
	}
	for _, keys := range [][]string{{"zz"}, {"a", "zz"}, {"d", "x"}, {"arr", "x"}, {"a", "b", "c", "d"}} {
		if got := n.Path(keys...); got != nil {
			t.Errorf("Path(%v) = %s, want nil", keys, dump(got))
		}
	}
	var nilNode *Node
	if nilNode.Get("a") != nil || nilNode.Path("a") != nil {
		t.Error("nil node lookups returned a value")
	}
	if Kind(3).String() != "string" || Kind(9).String() != "kind(9)" {
		t.Error("Kind.String")
	}
}

// TestParseJSONShared checks that trees from one parse do not share child
// slices in a way that appending to one would overwrite another.
func TestParseJSONShared(t *testing.T) {
	n := mustParse(t, `[[1],[2],{"a":1},{"b":2}]`)
	n.Arr[0].Arr = append(n.Arr[0].Arr, &Node{Kind: Null})
	n.Arr[2].Obj = append(n.Arr[2].Obj, Member{Key: "z", Val: &Node{Kind: Null}})
	if got, want := dump(n), "[[i:1 null] [i:2] {a=i:1 z=null} {b=i:2}]"; got != want {
		t.Errorf("after appends: %s, want %s", got, want)
	}
}

// TestConcurrentParse runs the pooled parsers from several goroutines; run
// with -race to check that pooled state is not shared.
func TestConcurrentParse(t *testing.T) {
	inputs := []string{
		`{"a":[1,2,{"b":"c"}],"":null}`,
		`{"bucketName":"x","acl":["a","b"],"nested":{"k":"v"}}`,
		"[\"\\n\", 1.5, true]",
		`{"a":1,null:2}`,
	}
	want := make([]string, len(inputs))
	for i, in := range inputs {
		n, err := ParseJSON([]byte(in))
		want[i] = dump(n) + "|" + errString(err)
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for r := 0; r < 200; r++ {
				for i, in := range inputs {
					n, err := ParseJSON([]byte(in))
					if got := dump(n) + "|" + errString(err); got != want[i] {
						t.Errorf("concurrent parse of %s = %s, want %s", in, got, want[i])
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
