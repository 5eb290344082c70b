package cloudtrail

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/internal/gen"
)

// A record given as JSON text is transcoded to MessagePack and read in
// place: every field rules read, and the pipeline's whole document, must
// be what the same text read as a tree gives.

// checkJSON holds the JSON path of one text to its tree.
func checkJSON(t *testing.T, tc *doc.Transcoder, text []byte) {
	t.Helper()
	tree, err := doc.ParseJSON(text)
	mp, ok := tc.AppendMsgpack(nil, text)
	if ok != (err == nil) {
		t.Fatalf("transcoded %v, ParseJSON error %v\n%q", ok, err, text)
	}
	if err != nil || tree.Kind != doc.Object {
		return
	}
	checkInPlaceAs(t, mp, true, nil, tree)
	checkInPlaceAs(t, mp, true, tc.Top, tree)
	var ev Event
	ev.ResetMsgpackJSON(mp, tc.Top, goldenAt, nil)
	got, want := ev.Document(), NewEvent(tree, goldenAt, nil).Document()
	if got.Failed != want.Failed || got.Refused != want.Refused {
		t.Fatalf("JSON path: failed %v refused %q; tree: failed %v refused %q\n%s", got.Failed, got.Refused, want.Failed, want.Refused, text)
	}
	if g, w := got.Doc.AppendJSON(nil), want.Doc.AppendJSON(nil); !bytes.Equal(g, w) {
		t.Fatalf("documents differ:\nJSON path %s\ntree      %s", g, w)
	}
	if v := ev.Verdict(); v != (Verdict{Failed: want.Failed, Refused: want.Refused}) {
		t.Fatalf("verdict %+v, document failed %v refused %q", v, want.Failed, want.Refused)
	}
}

func jsonSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, p := range goldenRecords(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range []string{
		`{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2026-11-20T10:00:00Z","additionalEventData":{"bytesTransferredIn":0.0,"bytesTransferredOut":1024.0,"n":-0,"big":123456789012345678901234567890,"e":1e5},"requestParameters":{"bucketName":"b","list-type":2,"max":1.5}}`,
		`{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","userIdentity":{"type":"IAMUser","userName":"caf\u00e9 \ud83d\ude00 \ud800","arn":"arn:aws:iam::1:user/\"q\"","accountId":"1"},"requestParameters":{"userName":"tab\there","tags":[{"key":"k","value":"v"}]}}`,
		`{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventName":"DeleteUser","userIdentity":{"type":"IAMUser"},"userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"}}`,
		`{"eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventTime":1.5e9,"readOnly":1,"sourceIPAddress":-0.0}`,
	} {
		out = append(out, []byte(s))
	}
	err := gen.Generate(200, 9, func(m map[string]any) error {
		b, err := json.Marshal(m)
		out = append(out, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJSONInPlaceAgreesWithTree(t *testing.T) {
	var tc doc.Transcoder
	for _, s := range jsonSeeds(t) {
		checkJSON(t, &tc, s)
	}
}

// TestEmbeddedJSON: the text EmbeddedJSON gives is where Split finds the
// record's event, and it gives none where Split looks elsewhere first.
func TestEmbeddedJSON(t *testing.T) {
	ev := `{"eventSource":"iam.amazonaws.com","eventName":"CreateUser"}`
	rec := func(kvs ...any) []byte {
		b := msgp.AppendMapHeader(nil, uint32(len(kvs)/2))
		for i := 0; i < len(kvs); i += 2 {
			b = msgp.AppendString(b, kvs[i].(string))
			var err error
			if b, err = msgp.AppendIntf(b, kvs[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	for _, c := range []struct {
		mp   []byte
		want string
	}{
		{rec("log", ev), ev},
		{rec("message", ev), ev},
		{rec("event.original", ev), ev},
		{rec("log", "plain text", "message", ev), ev},
		{rec("log", "{not json", "message", ev), "{not json"}, // Split tries the log first: the tree decides
		{rec("log", []byte(ev)), ev},                          // bin is a string too
		{rec("log", ev, "log", "x"), ""},                      // the last of duplicates counts
		{rec("log", "x", "log", ev), ev},
		{rec("log", 5, "message", ev), ev},
		{rec("log", "{"), ""},
		{rec("log", ev, "Records", []any{}), ""},
		{rec("log", ev, "detail-type", "x"), ""},
		{rec("log", ev, "records", 1), ""},
		{rec("log", ev, "event", map[string]any{"kind": "x"}), ""},
		{rec("log", ev, "event.action", "x"), ""},
		{rec("log", ev, "eventSource", "", "eventName", "-"), ""}, // a raw event to Split
		{rec("log", ev, "eventSource", "x"), ev},
		{rec("log", ev, "eventSource", 1, "eventName", "x"), ev},
		{rec("message", map[string]any{"a": ev}), ""},
	} {
		var e Event
		e.ResetMsgpack(c.mp, goldenAt, nil)
		if got := string(e.EmbeddedJSON()); got != c.want {
			t.Errorf("% x: %q, want %q", c.mp, got, c.want)
		}
		// Split agrees where the text holds a raw event.
		tree, _, err := doc.ReadMsgpack(c.mp)
		if err != nil {
			t.Fatal(err)
		}
		var found []*doc.Node
		Split(tree, func(n *doc.Node, _ bool) { found = append(found, n) }, nil)
		if c.want == ev && (len(found) != 1 || string(found[0].AppendJSON(nil)) != ev) {
			t.Errorf("% x: Split found %d events", c.mp, len(found))
		}
	}
}

// FuzzJSONInPlace: JSON text (or a golden record changed as
// FuzzIngestBothPaths changes it, written as text) read in place from its
// transcoding gives what its tree gives, field by field and as a whole
// document.
func FuzzJSONInPlace(f *testing.F) {
	seeds := jsonSeeds(f)
	for i, s := range seeds {
		f.Add(s, uint16(0), []byte{})
		if i < 60 {
			f.Add([]byte{}, uint16(i), []byte{byte(i), 1, byte(i * 7), 6, byte(i * 3), 9})
		}
	}
	var tc doc.Transcoder
	f.Fuzz(func(t *testing.T, text []byte, pick uint16, ops []byte) {
		if len(text) == 0 {
			n, err := doc.ParseJSON(seeds[int(pick)%len(seeds)])
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(ops) && i < 32; i += 2 {
				mutate(n, int(ops[i]), ops[i+1])
			}
			text = n.AppendJSON(nil)
		}
		checkJSON(t, &tc, text)
	})
}

// One Event read record after record keeps each record's verdict for that
// record only: an alert asks for it once per rule, and the next record must
// be judged anew.
func TestVerdictPerRecord(t *testing.T) {
	var tc doc.Transcoder
	var ev Event
	kinds := map[Verdict]int{}
	for round := range 2 {
		for _, text := range jsonSeeds(t) {
			tree, err := doc.ParseJSON(text)
			if err != nil || tree.Kind != doc.Object {
				continue
			}
			want := NewEvent(tree, goldenAt, nil).Document()
			wv := Verdict{Failed: want.Failed, Refused: want.Refused}
			mp, ok := tc.AppendMsgpack(nil, text)
			if !ok {
				t.Fatalf("not transcoded: %s", text)
			}
			if round == 0 {
				ev.ResetMsgpackJSON(mp, tc.Top, goldenAt, nil)
			} else {
				ev.Reset(tree, nil, goldenAt, nil)
			}
			for range 2 {
				if v := ev.Verdict(); v != wv {
					t.Fatalf("round %d: verdict %+v, want %+v\n%s", round, v, wv, text)
				}
			}
			kinds[wv]++
		}
	}
	if kinds[Verdict{}] == 0 || len(kinds) < 2 {
		t.Fatalf("the records should hold plain and failed or refused ones: %v", kinds)
	}
}
