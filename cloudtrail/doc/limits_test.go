package doc

import (
	"errors"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// TestMaxValues: a document of more than MaxValues values is refused by
// every reader (the Transcoder leaves the message to ParseJSON), with the place, before its tree grows past them; one of
// exactly MaxValues is read.
func TestMaxValues(t *testing.T) {
	// [{},{},...]: the array and its objects.
	js := func(n int) []byte { return []byte("[" + strings.TrimSuffix(strings.Repeat("{},", n-1), ",") + "]") }
	mp := func(n int) []byte {
		b := msgp.AppendArrayHeader(nil, uint32(n-1))
		for range n - 1 {
			b = msgp.AppendMapHeader(b, 0)
		}
		return b
	}
	if n, err := ParseJSON(js(MaxValues)); err != nil || len(n.Arr) != MaxValues-1 {
		t.Fatalf("JSON of MaxValues values: %v", err)
	}
	if n, _, err := ReadMsgpack(mp(MaxValues)); err != nil || len(n.Arr) != MaxValues-1 {
		t.Fatalf("MessagePack of MaxValues values: %v", err)
	}
	var tc Transcoder
	if _, ok := tc.AppendMsgpack(nil, js(MaxValues)); !ok {
		t.Fatal("Transcoder refused MaxValues values")
	}
	over := js(MaxValues + 1)
	if out, ok := tc.AppendMsgpack(nil, over); ok || len(out) != 0 {
		t.Errorf("Transcoder took MaxValues+1 values (%d bytes written)", len(out))
	}
	for name, parse := range map[string]func() error{
		"ParseJSON":       func() error { _, err := ParseJSON(over); return err },
		"ParseJSONPrefix": func() error { _, _, err := ParseJSONPrefix(over); return err },
		"ReadMsgpack":     func() error { _, _, err := ReadMsgpack(mp(MaxValues + 1)); return err },
	} {
		err := parse()
		var se *SyntaxError
		if !errors.Is(err, ErrTooManyValues) || !errors.As(err, &se) || se.Offset != len(over)-3 && se.Offset != len(mp(MaxValues+1))-1 {
			t.Errorf("%s: %v", name, err)
		}
	}
}
