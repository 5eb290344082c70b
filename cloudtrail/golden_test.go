package cloudtrail

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

var update = flag.Bool("update", false, "rewrite the expected documents of testdata/ingest")

// goldenAt is when the golden records are read (the agent's @timestamp).
var goldenAt = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// golden is what an expected file holds: the document the AWS
// integration's pipeline indexes for the record, and whether the pipeline
// failed or Elasticsearch would refuse the document.
type golden struct {
	Failed   bool           `json:"failed"`
	Refused  string         `json:"refused,omitempty"`
	Document map[string]any `json:"document"`
}

func goldenRecords(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "ingest", "*.json"))
	var recs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".expected.json") {
			recs = append(recs, f)
		}
	}
	if len(recs) == 0 {
		t.Fatal("no records in ../testdata/ingest")
	}
	return recs
}

// TestIngestGoldens runs each raw CloudTrail record of testdata/ingest
// through the pipeline and compares the document, field by field, with the
// record's .expected.json: one per derivation, and one per service of the
// entity enrichment (svc_*). The expected documents were checked against
// the AWS integration's pipeline (aws 8.8.0) and its own test fixtures for
// the same kinds of events.
func TestIngestGoldens(t *testing.T) {
	for _, path := range goldenRecords(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := doc.ParseJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			ix := NewEvent(n, goldenAt, nil).Document()
			if plainRecord(n) && (ix.Failed || ix.Refused != "") {
				t.Errorf("taken for plain, but failed %v refused %q", ix.Failed, ix.Refused)
			}
			got := golden{Failed: ix.Failed, Refused: ix.Refused, Document: nodeAny(ix.Doc).(map[string]any)}
			want := strings.TrimSuffix(path, ".json") + ".expected.json"
			if *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(want, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (go test -run TestIngestGoldens -update writes it; check it by hand)", err)
			}
			var exp golden
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.UseNumber()
			if err := dec.Decode(&exp); err != nil {
				t.Fatal(err)
			}
			if got.Failed != exp.Failed || got.Refused != exp.Refused {
				t.Errorf("failed %v refused %q, want failed %v refused %q", got.Failed, got.Refused, exp.Failed, exp.Refused)
			}
			for _, d := range diffFields(flatten(got.Document), flatten(exp.Document)) {
				t.Error(d)
			}
		})
	}
}

// nodeAny converts a document tree for comparison (removed keys dropped,
// numbers as their literal).
func nodeAny(n *doc.Node) any {
	return treeAny(n, func(n *doc.Node) any { return json.Number(n.Str) })
}

// treeAny converts a document tree, numbers through num.
func treeAny(n *doc.Node, num func(*doc.Node) any) any {
	switch n.Kind {
	case doc.Object:
		m := map[string]any{}
		for _, mem := range n.Obj {
			if mem.Val != nil {
				m[mem.Key] = treeAny(mem.Val, num)
			}
		}
		return m
	case doc.Array:
		a := make([]any, 0, len(n.Arr))
		for _, el := range n.Arr {
			a = append(a, treeAny(el, num))
		}
		return a
	case doc.String:
		return n.Str
	case doc.Bool:
		return n.Str == "true"
	case doc.Number:
		return num(n)
	}
	return nil
}

// flatten lists a document's leaves by path (array elements by index), each
// as its JSON text.
func flatten(v any) map[string]string {
	out := map[string]string{}
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				out[p] = "{}"
			}
			for k, el := range x {
				walk(strings.TrimPrefix(p+"."+k, "."), el)
			}
		case []any:
			if len(x) == 0 {
				out[p] = "[]"
			}
			for i, el := range x {
				walk(fmt.Sprintf("%s[%d]", p, i), el)
			}
		default:
			b, _ := json.Marshal(x)
			out[p] = string(b)
		}
	}
	walk("", v)
	return out
}

// diffFields names each field that differs, is missing or is extra.
func diffFields(got, want map[string]string) []string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%s: missing, want %s", k, w))
		} else if g != w {
			out = append(out, fmt.Sprintf("%s = %s, want %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s = %s, not expected", k, g))
		}
	}
	sort.Strings(out)
	return out
}

// TestFieldsAgreeWithDocument holds what rules read to the document: for
// every golden record that the pipeline indexes whole, read as a tree and
// in place from MessagePack, each field of the document (but the flattened
// copies, read by key) has the same values through the field readers as in
// the document, in the same order.
func TestFieldsAgreeWithDocument(t *testing.T) {
	s := NewSchema()
	for _, path := range goldenRecords(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := doc.ParseJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		ix := NewEvent(n, goldenAt, nil).Document()
		if ix.Failed || ix.Refused != "" {
			continue // rules never see this record as it is: the engine's tests cover it
		}
		want := map[string][]string{}
		collectLeaves(ix.Doc, "", want)
		var inPlace Event
		inPlace.ResetMsgpack(orderedMsgpack(n), goldenAt, nil)
		for how, ev := range map[string]*Event{"tree": NewEvent(n, goldenAt, nil), "in place": &inPlace} {
			for field, vals := range want {
				if strings.HasPrefix(field, "aws.cloudtrail.flattened.") {
					continue
				}
				got := textsOf(ev.Values(s.Field(field)))
				if strings.Join(got, "\x00") != strings.Join(vals, "\x00") {
					t.Errorf("%s, %s: %s = %q, document %q", name, how, field, got, vals)
				}
			}
		}
	}
}

// collectLeaves lists a document's scalar values by dotted field name, as
// Elasticsearch's fields see them (arrays flattened through).
func collectLeaves(n *doc.Node, path string, out map[string][]string) {
	switch n.Kind {
	case doc.Object:
		for _, m := range n.Obj {
			if m.Val != nil {
				collectLeaves(m.Val, strings.TrimPrefix(path+"."+m.Key, "."), out)
			}
		}
	case doc.Array:
		for _, el := range n.Arr {
			collectLeaves(el, path, out)
		}
	case doc.Null:
	default:
		text, _ := n.KeywordText()
		out[path] = append(out[path], text)
	}
}

// orderedMsgpack encodes a tree as Fluent Bit's JSON parser would hand it
// on: members in order (duplicates kept), integers as integers, other
// numbers as float64.
func orderedMsgpack(n *doc.Node) []byte { return appendMsgpack(nil, n) }

func appendMsgpack(b []byte, n *doc.Node) []byte {
	switch n.Kind {
	case doc.Object:
		live := 0
		for _, m := range n.Obj {
			if m.Val != nil {
				live++
			}
		}
		b = msgp.AppendMapHeader(b, uint32(live))
		for _, m := range n.Obj {
			if m.Val != nil {
				b = msgp.AppendString(b, m.Key)
				b = appendMsgpack(b, m.Val)
			}
		}
	case doc.Array:
		b = msgp.AppendArrayHeader(b, uint32(len(n.Arr)))
		for _, el := range n.Arr {
			b = appendMsgpack(b, el)
		}
	case doc.String:
		b = msgp.AppendString(b, n.Str)
	case doc.Bool:
		b = msgp.AppendBool(b, n.Str == "true")
	case doc.Number:
		if i, err := strconv.ParseInt(n.Str, 10, 64); err == nil && !n.Float {
			return msgp.AppendInt64(b, i)
		}
		f, _ := strconv.ParseFloat(n.Str, 64)
		b = msgp.AppendFloat64(b, f)
	default:
		b = msgp.AppendNil(b)
	}
	return b
}
