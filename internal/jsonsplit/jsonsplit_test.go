package jsonsplit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"
)

type got struct {
	Data          string
	Line, Element int
	Err           bool
}

func collect(seq iter.Seq[Record]) []got {
	var out []got
	for r := range seq {
		out = append(out, got{string(r.Data), r.Line, r.Element, r.Err != ""})
	}
	return out
}

func short(g []got) string {
	s := fmt.Sprint(g)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func TestSplit(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	cases := []struct {
		name  string
		lines bool
		text  string
		want  []got
	}{
		{"array", false, `[{"a":1}, {"b":[2,"]"]}]`, []got{{`{"a":1}`, 1, 0, false}, {`{"b":[2,"]"]}`, 1, 1, false}}},
		{"empty array", false, "[ \n ]", nil},
		{"empty elements", false, "[1,,\n2,]", []got{{"1", 1, 0, false}, {"", 1, 1, false}, {"2", 2, 2, false}, {"", 2, 3, false}}},
		{"an element left open", false, `[{"a":1}, {"b":`, []got{{`{"a":1}`, 1, 0, false}, {`{"b":`, 1, 1, false}}},
		{"array left open", false, "[1,\n2", []got{{"1", 1, 0, false}, {"2", 2, 1, false}, {"", 2, -1, true}}},
		{"array closed by a brace", false, "[1}", []got{{"1", 1, 0, false}, {"", 1, -1, true}}},
		{"two values in an element", false, `[1 2, "x\"]"]`, []got{{"1 2", 1, 0, false}, {`"x\"]"`, 1, 1, false}}},
		{"deep nesting", false, "[" + deep + `,{"a":1}]`, []got{{deep, 1, 0, false}, {`{"a":1}`, 1, 1, false}}},
		{"values", false, "{\"a\":1}\n{\"b\":\n  2}\n[3,\n4] 5", []got{{`{"a":1}`, 1, -1, false}, {"{\"b\":\n  2}", 2, -1, false}, {"3", 4, 0, false}, {"4", 5, 1, false}, {"5", 5, -1, false}}},
		{"a value left open", false, "{\"a\":\"x\n{\"b\":1}", []got{{`{"a":"x`, 1, -1, true}, {`{"b":1}`, 2, -1, false}}},
		{"lines", true, "{\"a\":1}\n\n[1,2]\nnot json\n{\"x\": 1} {\"y\":2}\n", []got{{`{"a":1}`, 1, -1, false}, {"1", 3, 0, false}, {"2", 3, 1, false}, {"not json", 4, -1, false}, {`{"x": 1} {"y":2}`, 5, -1, false}}},
	}
	for _, tc := range cases {
		seq := Values([]byte(tc.text), 1)
		if tc.lines {
			seq = Lines([]byte(tc.text), 1)
		}
		g := collect(seq)
		if fmt.Sprint(g) != fmt.Sprint(tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, short(g), short(tc.want))
		}
		if n := Count([]byte(tc.text), tc.lines, 1000); n != len(tc.want) {
			t.Errorf("%s: Count %d, want %d", tc.name, n, len(tc.want))
		}
	}
}

// TestLargeLogFileByEvents: a CloudTrail log file object larger than
// GroupBytes comes an event at a time, each named by its element and line;
// a malformed event is one record, the others parse; one with another
// member comes whole.
func TestLargeLogFileByEvents(t *testing.T) {
	var b strings.Builder
	b.WriteString("{ \"Records\" : [\n")
	const n, bad = 3000, 1700
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		if i == bad {
			b.WriteString(`{"eventSource":"x","eventName":}`)
			continue
		}
		fmt.Fprintf(&b, `{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"%d","pad":"%s"}`, i, strings.Repeat("x", 900))
	}
	b.WriteString("\n]\n}")
	text := []byte(b.String())
	k := 0
	for r := range Values(text, 1) {
		var e struct{ EventID string }
		err := json.Unmarshal(r.Data, &e)
		if r.Element != k || r.Line != k+2 || r.Err != "" || (err != nil) != (k == bad) || err == nil && e.EventID != fmt.Sprint(k) {
			t.Fatalf("record %d: element %d, line %d, %q, %v, event %q", k, r.Element, r.Line, r.Err, err, e.EventID)
		}
		k++
	}
	if k != n || Count(text, false, n) != n || Count(text, false, 10) != 11 {
		t.Errorf("%d events, Count %d", k, Count(text, false, n))
	}
	other := append(append([]byte(nil), text[:len(text)-1]...), `, "x": 1}`...)
	if g := collect(Values(other, 1)); len(g) != 1 || g[0].Data != string(other) {
		t.Errorf("a log file object with another member: %d records", len(g))
	}
}

// TestOpenValuesLinear: values left open to the end of the text, one a
// line, are each given once with their line, in time that grows with the
// text (searching the rest of the text again from each line took 11 s of
// CPU for 256 KB).
func TestOpenValuesLinear(t *testing.T) {
	text := []byte("[]\n" + strings.Repeat("{\n", 1<<20) + `{"a":1}` + "\n")
	start := time.Now()
	g := collect(Values(text, 1))
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
	if len(g) != 1<<20+1 || g[0].Line != 2 || !g[0].Err || g[1<<20-1].Line != 1<<20+1 || g[1<<20].Data != `{"a":1}` || g[1<<20].Err {
		t.Fatalf("%d records; first %+v; last %+v", len(g), g[0], g[len(g)-1])
	}
	if n := Count(text, false, 1<<21); n != len(g) {
		t.Errorf("Count %d, %d records", n, len(g))
	}
}

// FuzzSplit: any text, as values and as lines: no panic, no hang (deep
// nesting is a counter, not recursion); Count agrees with the records
// given; every record's text is a piece of the input (no group under
// GroupBytes).
func FuzzSplit(f *testing.F) {
	f.Add([]byte(`[{"a":1},{"b":[2,"]"]}]`))
	f.Add([]byte("{\"a\":1}\n[1,\n2] 3\n{\"x\":\"y"))
	f.Add([]byte(strings.Repeat("[", 5000) + strings.Repeat("]", 4999)))
	f.Add([]byte("[" + strings.Repeat("{},", 30000) + "{}]"))
	f.Add([]byte(`{"Records":[{"eventSource":"s","eventName":"n"},{}]}` + "\n" + `["\\\"]",1,,]`))
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, lines := range []bool{false, true} {
			seq := Values(text, 1)
			if lines {
				seq = Lines(text, 1)
			}
			n := 0
			for r := range seq {
				n++
				if len(r.Data) > 0 && !bytes.Contains(text, r.Data) {
					t.Fatalf("record %q is not in the text", r.Data)
				}
			}
			if c := Count(text, lines, 1<<30); c != n {
				t.Fatalf("lines=%v: %d records, Count %d", lines, n, c)
			}
		}
	})
}
