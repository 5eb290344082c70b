package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/internal/gen"
)

// The JSON path (Record.JSON: text transcoded and read in place) is an
// optimization of reading the text as a tree: the same records make the
// same counts and the same alert documents, byte for byte.

// treeRecords reads NDJSON as the tree path does: one Record a line.
func treeRecords(lines [][]byte) []Record {
	out := make([]Record, len(lines))
	for i, l := range lines {
		n, err := doc.ParseJSON(l)
		out[i] = Record{Node: n, Err: err}
	}
	return out
}

func jsonRecords(lines [][]byte) []Record {
	out := make([]Record, len(lines))
	for i, l := range lines {
		out[i] = Record{JSON: l}
	}
	return out
}

// checkJSONPath processes lines as JSON text and as trees, one batch each,
// and compares what they made.
func checkJSONPath(t *testing.T, e *Engine, lines [][]byte) Result {
	t.Helper()
	js, trees := jsonRecords(lines), treeRecords(lines)
	got, err := e.ProcessBatch(js)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.ProcessBatch(trees)
	if err != nil {
		t.Fatal(err)
	}
	for i := range js {
		if (js[i].Err == nil) != (trees[i].Err == nil) || js[i].Err != nil && js[i].Err.Error() != trees[i].Err.Error() {
			t.Fatalf("line %d: JSON path error %v, tree reader's %v\n%q", i+1, js[i].Err, trees[i].Err, lines[i])
		}
	}
	if !reflect.DeepEqual(got.Stats, want.Stats) {
		t.Fatalf("counts differ:\nJSON path %+v\ntrees     %+v\n%s", got.Stats, want.Stats, bytes.Join(lines, []byte("\n")))
	}
	if len(got.Docs) != len(want.Docs) {
		t.Fatalf("%d alerts on the JSON path, %d from trees", len(got.Docs), len(want.Docs))
	}
	for i := range got.Docs {
		if !bytes.Equal(got.Docs[i], want.Docs[i]) {
			t.Fatalf("alert %d differs:\nJSON path %s\ntrees     %s", i, got.Docs[i], want.Docs[i])
		}
	}
	return got
}

// logWrapped returns a record as Fluent Bit's tail without a parser hands
// it on: the line as a string under key, as MessagePack and as JSON text.
func logWrapped(t testing.TB, key string, line []byte) (mp, js []byte) {
	mp = msgp.AppendMapHeader(nil, 1)
	mp = msgp.AppendString(mp, key)
	mp = msgp.AppendString(mp, string(line))
	js, err := json.Marshal(map[string]string{key: string(line)})
	if err != nil {
		t.Fatal(err)
	}
	return mp, js
}

// fluentRecords are the lines that are objects as Fluent Bit's json parser
// would hand them on: MessagePack maps.
func fluentRecords(lines [][]byte) [][]byte {
	var tc doc.Transcoder
	var out [][]byte
	for _, l := range lines {
		if mp, ok := tc.AppendMsgpack(nil, l); ok && msgp.NextType(mp) == msgp.MapType {
			out = append(out, mp)
		}
	}
	return out
}

// checkWrapped compares MessagePack records (a line as a log string, or
// parsed), read in place and as trees.
func checkWrapped(t *testing.T, e *Engine, mps [][]byte) {
	t.Helper()
	inPlace := make([]Record, len(mps))
	trees := make([]Record, len(mps))
	for i, mp := range mps {
		inPlace[i] = Record{Msgpack: mp}
		n, _, err := doc.ReadMsgpack(mp)
		if err != nil {
			t.Fatal(err)
		}
		trees[i] = Record{Node: n}
	}
	got, err := e.ProcessBatch(inPlace)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.ProcessBatch(trees)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Stats, want.Stats) || len(got.Docs) != len(want.Docs) {
		t.Fatalf("log strings: in place %+v (%d alerts), trees %+v (%d alerts)", got.Stats, len(got.Docs), want.Stats, len(want.Docs))
	}
	for i := range got.Docs {
		if !bytes.Equal(got.Docs[i], want.Docs[i]) {
			t.Fatalf("log strings: alert %d differs:\nin place %s\ntrees    %s", i, got.Docs[i], want.Docs[i])
		}
	}
}

// jsonPathSeeds are records of every shape and oddity as JSON text: the
// engine's fuzz seeds, the ingest goldens (pipeline failures and refused
// documents among them), hand-made numbers and strings, malformed lines.
func jsonPathSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, s := range fuzzSeeds {
		out = append(out, []byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "ingest", "*.json"))
	for _, p := range files {
		if strings.HasSuffix(p, ".expected.json") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Join(bytes.Fields(b), []byte(" "))) // one line
	}
	if len(files) == 0 {
		t.Fatal("no records in ../testdata/ingest")
	}
	for _, s := range []string{
		`{"eventSource":"s3.amazonaws.com","eventName":"PutBucketPolicy","eventID":"n1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},"requestParameters":{"bucketName":"b","n":-0,"f":0.0,"e":1e5,"big":123456789012345678901234567890},"additionalEventData":{"bytesTransferredIn":0.0,"bytesTransferredOut":1024.0}}`,
		`{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventID":"n2","userIdentity":{"type":"IAMUser","userName":"caf\u00e9 \ud83d\ude00 \ud800 \ud800\u0041","arn":"arn:aws:iam::1:user/\"q\""},"requestParameters":{"userName":"tab\there"}}`,
		`{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventName":"DeleteUser","eventID":"dup","requestParameters":{"userName":"x"}}`,
		`{"eventSource":"","eventName":"CreateUser","eventID":"empty-source"}`,
		`{"eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey","eventTime":20261120,"userIdentity":{"type":"IAMUser","userName":"u","arn":"arn:aws:iam::1:user/u"}}`,
		`{"log":"not json","message":"{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"eventID\":\"m1\",\"requestParameters\":{\"userName\":\"m\"}}"}`,
		`{"log":"{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\"","message":"{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"eventID\":\"m2\"}"}`,
		`{"log":"{\"Records\":[{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"eventID\":\"r1\"}]}"}`,
		`{"event.original":"{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"eventID\":\"o1\"}"}`,
		`{"Records":[{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventID":"r2"}],"log":"{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"eventID\":\"r3\"}"}`,
		`{"Records":[1,"x",{"eventSource":"-","eventName":"CreateUser","eventID":"r4"},{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventID":"r5","requestParameters":{"userName":"a"}},{"eventName":"CreateUser"},[]]}`,
		`{"Records":[]}`, `{"Records":[{"a":1}]}`, `{"Records":{"eventSource":"iam.amazonaws.com"}}`,
		`{"Records":[{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventID":"r6"}],"Records":"x"}`,
		`{"eventSource":"","eventName":"x","Records":[{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventID":"r7"}]}`,
		`{"log":"{\"Records\":[{\"a\":1}]}","message":"{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"eventID\":\"m3\"}"}`,
		`{"eventSource":"iam.amazonaws.com","eventName":"CreateUser"`, `{"eventSource":"iam.amazonaws.com","eventName":"CreateUser"} x`,
		"{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"Create\xffUser\"}", `[1,2]`, `"a string"`, `{}`,
		strings.Repeat(`{"a":`, 600) + "1" + strings.Repeat("}", 600),
	} {
		out = append(out, []byte(s))
	}
	return out
}

func TestJSONPathAgreesWithTree(t *testing.T) {
	e := fuzzEngine(t)
	seeds := jsonPathSeeds(t)
	for _, s := range seeds {
		checkJSONPath(t, e, [][]byte{s})
	}
	// All in one batch: records that alert keep their bytes while the
	// others' are written over.
	checkJSONPath(t, e, seeds)
	var wrapped [][]byte
	for _, s := range seeds {
		for _, key := range []string{"log", "message"} {
			mp, js := logWrapped(t, key, s)
			checkJSONPath(t, e, [][]byte{js})
			wrapped = append(wrapped, mp)
		}
	}
	checkWrapped(t, e, wrapped)
	checkWrapped(t, e, fluentRecords(seeds))
}

// TestJSONPathGenerated: 3,000 generated records in batches of 500, as
// NDJSON lines and as log strings inside MessagePack records.
func TestJSONPathGenerated(t *testing.T) {
	_, corpus := corpusRules(t)
	e := fuzzEngine(t)
	var lines [][]byte
	err := gen.Generate(3000, 3, func(m map[string]any) error {
		b, err := json.Marshal(m)
		lines = append(lines, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for i := 0; i < len(lines); i += 500 {
		batch := lines[i : i+500]
		alerts += len(checkJSONPath(t, e, batch).Docs)
		var mps [][]byte
		for _, l := range batch {
			mp, _ := logWrapped(t, "log", l)
			mps = append(mps, mp)
		}
		checkWrapped(t, e, mps)
	}
	if least := map[bool]int{true: 50, false: 3}[corpus]; alerts < least {
		t.Fatalf("%d alerts: too few to compare", alerts)
	}
	t.Logf("%d alerts compared", alerts)
}

// TestJSONNoMatchAllocatesNothing: a batch of JSON records that no rule
// matches allocates nothing once the engine is warm. (The record is one
// that no rule reads beyond the fields read in place: a KMS Decrypt by an
// AWS service, as the MessagePack no-match benchmark has it, makes an
// ES|QL rule build the pipeline's document on either path.)
func TestJSONNoMatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	rs, _ := corpusRules(t)
	e, err := New(rs, Options{State: fakeState{}})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]Record, 1024)
	for i := range recs {
		recs[i] = Record{JSON: []byte(`{"eventSource":"logs.amazonaws.com","eventName":"PutLogEvents","eventID":"x","eventTime":"2026-11-20T10:00:00Z","awsRegion":"us-east-1","sourceIPAddress":"kms.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}`)}
	}
	allocs := testing.AllocsPerRun(20, func() {
		b := e.NewBatch()
		b.Add(recs)
		if res, err := b.Commit(); err != nil || res.Stats.Events != len(recs) || len(res.Alerts) != 0 {
			t.Fatalf("%v: %+v", err, res.Stats)
		}
	})
	if allocs/float64(len(recs)) > 0.01 {
		t.Fatalf("%.0f allocations a batch of %d records", allocs, len(recs))
	}
}

// FuzzJSONPath: any NDJSON (each line a record), read as JSON text and as
// trees, and each line as a log string in a MessagePack record, read in
// place and as a tree: the same counts and the same alerts.
func FuzzJSONPath(f *testing.F) {
	for _, s := range jsonPathSeeds(f) {
		f.Add(s)
	}
	e := fuzzEngine(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Split(data, []byte("\n"))
		checkJSONPath(t, e, lines)
		var mps [][]byte
		for _, l := range lines {
			mp, _ := logWrapped(t, "log", l)
			mps = append(mps, mp)
		}
		checkWrapped(t, e, mps)
		checkWrapped(t, e, fluentRecords(lines))
	})
}

// TestPassedOverIsCounted: inside a record that holds events, what is no
// event was passed over without a count: a log file's elements that are
// no event (counted only once the file passed 1 MB and was read an event
// at a time), a Firehose delivery's records whose data does not decode or
// parse. Each is counted, the same on the JSON path and from the tree.
func TestPassedOverIsCounted(t *testing.T) {
	e := fuzzEngine(t)
	ev := func(id string) string {
		return `{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventID":"` + id + `","requestParameters":{"userName":"u"}}`
	}
	logFile := `{"Records":[` + ev("a") + `,null,5,"x",[],{},` + ev("b") + `]}`
	res := checkJSONPath(t, e, [][]byte{[]byte(logFile)})
	if res.Stats.Events != 2 || res.Stats.Skipped[cloudtrail.SkipNotCloudTrail] != 5 {
		t.Errorf("log file: %d events, skipped %v", res.Stats.Events, res.Stats.Skipped)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	firehose := `{"requestId":"r","records":[{"data":"` + b64(ev("c")+"\n"+`{"eventSource":"iam`+"\n"+`{"a":1}`) + `"},{"data":"!"},{"x":1},{"data":"` + b64(ev("d")) + `"}]}`
	n, err := doc.ParseJSON([]byte(firehose))
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.ProcessBatch([]Record{{Node: n}})
	if err != nil || res.Stats.Events != 2 || res.Stats.Skipped[cloudtrail.SkipMalformed] != 3 || res.Stats.Skipped[cloudtrail.SkipNotCloudTrail] != 1 {
		t.Errorf("Firehose delivery: %v, %d events, skipped %v", err, res.Stats.Events, res.Stats.Skipped)
	}
}
