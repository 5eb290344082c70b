package cloudtrail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// FuzzIngestBothPaths mutates the golden records (key case, nulls and "-",
// arrays for objects and objects for arrays, numbers and booleans where
// strings belong, long and non-ASCII strings) and checks that the record
// read as a JSON tree and the same record read in place from MessagePack
// (as Fluent Bit hands it on) give the same document, the same pipeline
// failure and the same refusal, and the same values for every field rules
// read in place.
func FuzzIngestBothPaths(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "ingest", "*.json"))
	var records [][]byte
	for _, p := range files {
		if strings.HasSuffix(p, ".expected.json") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		records = append(records, b)
	}
	if len(records) == 0 {
		f.Fatal("no records in ../testdata/ingest")
	}
	for i := range records {
		f.Add(uint16(i), []byte{})
		f.Add(uint16(i), []byte{byte(i), 0, byte(i * 7), 3, byte(i * 3), 5})
	}
	f.Add(uint16(3), []byte{1, 6, 9, 7, 2, 8})
	f.Add(uint16(5), []byte{4, 1, 4, 2, 4, 4})
	f.Fuzz(func(t *testing.T, pick uint16, ops []byte) {
		n, err := doc.ParseJSON(records[int(pick)%len(records)])
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(ops) && i < 32; i += 2 {
			mutate(n, int(ops[i]), ops[i+1])
		}
		if !isRawEvent(n) {
			return // not taken for CloudTrail either way
		}
		compareBothPaths(t, n)
	})
}

// compareBothPaths holds the MessagePack reading of a record to its tree.
func compareBothPaths(t *testing.T, n *doc.Node) {
	t.Helper()
	mp := orderedMsgpack(n)
	tree := NewEvent(n, goldenAt, nil).Document()
	if plainRecord(n) && (tree.Failed || tree.Refused != "") {
		t.Fatalf("a record taken for plain: failed %v refused %q\nrecord %s", tree.Failed, tree.Refused, n.AppendJSON(nil))
	}
	var inPlace Event
	inPlace.ResetMsgpack(mp, goldenAt, nil)
	got := inPlace.Document()
	if got.Failed != tree.Failed || got.Refused != tree.Refused {
		t.Fatalf("in place: failed %v refused %q; tree: failed %v refused %q\nrecord %s",
			got.Failed, got.Refused, tree.Failed, tree.Refused, n.AppendJSON(nil))
	}
	if d := diffFields(flatten(javaNumbers(got.Doc)), flatten(javaNumbers(tree.Doc))); len(d) > 0 {
		t.Fatalf("in place and tree differ:\n%s\nrecord %s", strings.Join(d, "\n"), n.AppendJSON(nil))
	}
	checkInPlace(t, mp)
}

// javaNumbers converts a document for comparison with numbers as the Java
// values the json processor builds print (a literal 1.50 and a float64 1.5
// are the same Double).
func javaNumbers(n *doc.Node) any {
	return treeAny(n, func(n *doc.Node) any { return "number:" + javaToString(n) })
}

// mutate changes the node at a place of a depth-first walk of the record.
func mutate(root *doc.Node, at int, op byte) {
	type spot struct {
		parent *doc.Node
		i      int // member or element index
	}
	var spots []spot
	var walk func(n *doc.Node)
	walk = func(n *doc.Node) {
		switch n.Kind {
		case doc.Object:
			for i := range n.Obj {
				if n.Obj[i].Val != nil {
					spots = append(spots, spot{n, i})
					walk(n.Obj[i].Val)
				}
			}
		case doc.Array:
			for i, el := range n.Arr {
				spots = append(spots, spot{n, i})
				walk(el)
			}
		}
	}
	walk(root)
	if len(spots) == 0 {
		return
	}
	s := spots[at%len(spots)]
	get := func() *doc.Node {
		if s.parent.Kind == doc.Object {
			return s.parent.Obj[s.i].Val
		}
		return s.parent.Arr[s.i]
	}
	put := func(v *doc.Node) {
		if s.parent.Kind == doc.Object {
			s.parent.Obj[s.i].Val = v
		} else {
			s.parent.Arr[s.i] = v
		}
	}
	cur := get()
	switch op % 10 {
	case 0: // key case
		if s.parent.Kind == doc.Object {
			k := s.parent.Obj[s.i].Key
			if up := strings.ToUpper(k[:min(1, len(k))]) + k[min(1, len(k)):]; up != k {
				s.parent.Obj[s.i].Key = up
			} else {
				s.parent.Obj[s.i].Key = strings.ToLower(k)
			}
		}
	case 1:
		put(&doc.Node{Kind: doc.Null})
	case 2:
		put(str1("-"))
	case 3: // an array for the value
		put(&doc.Node{Kind: doc.Array, Arr: []*doc.Node{cur}})
	case 4: // an object for the value
		put(&doc.Node{Kind: doc.Object, Obj: []doc.Member{{Key: "value", Val: cur}}})
	case 5:
		put(&doc.Node{Kind: doc.Number, Str: "42"})
	case 6:
		put(&doc.Node{Kind: doc.Number, Str: "1.5", Float: true})
	case 7:
		put(&doc.Node{Kind: doc.Bool, Str: "true"})
	case 8:
		put(str1(strings.Repeat("x", 33000)))
	case 9:
		put(str1("日本語 \U0001F600 é"))
	}
}
