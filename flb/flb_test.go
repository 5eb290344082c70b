package flb

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

func eventTime(t time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(t.Unix()))
	binary.BigEndian.PutUint32(b[4:], uint32(t.Nanosecond()))
	out, err := msgp.AppendExtension(nil, &msgp.RawExtension{Type: 0, Data: b[:]})
	if err != nil {
		panic(err)
	}
	return out
}

// body is a CloudTrail event as a msgpack map.
func body(action, arn string, failed bool) []byte {
	b := msgp.AppendMapHeader(nil, uint32(6+map[bool]int{true: 1}[failed]))
	b = msgp.AppendString(b, "eventSource")
	b = msgp.AppendString(b, "bedrock.amazonaws.com")
	b = msgp.AppendString(b, "eventName")
	b = msgp.AppendString(b, action)
	b = msgp.AppendString(b, "eventID")
	b = msgp.AppendString(b, action+"-"+arn)
	b = msgp.AppendString(b, "eventTime")
	b = msgp.AppendString(b, "2026-11-20T10:00:00Z")
	b = msgp.AppendString(b, "awsRegion")
	b = msgp.AppendString(b, "us-east-1")
	b = msgp.AppendString(b, "userIdentity")
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendString(b, "type")
	b = msgp.AppendString(b, "IAMUser")
	b = msgp.AppendString(b, "arn")
	b = msgp.AppendString(b, arn)
	if failed {
		b = msgp.AppendString(b, "errorCode")
		b = msgp.AppendString(b, "AccessDenied")
	}
	return b
}

// v1 is [ts, body]; v2 is [[ts, {}], body].
func v1(ts, body []byte) []byte {
	b := msgp.AppendArrayHeader(nil, 2)
	return append(append(b, ts...), body...)
}

func v2(ts, body []byte) []byte {
	b := msgp.AppendArrayHeader(nil, 2)
	b = msgp.AppendArrayHeader(b, 2)
	b = append(b, ts...)
	b = msgp.AppendMapHeader(b, 0)
	return append(b, body...)
}

func TestDecodeChunk(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 5, time.UTC)
	good := body("PutFoundationModelEntitlement", "arn:aws:iam::1:user/a", false)
	var chunk []byte
	chunk = append(chunk, v2(msgp.AppendInt64(nil, -1), msgp.AppendMapHeader(nil, 0))...) // group start
	chunk = append(chunk, v1(eventTime(now), good)...)
	chunk = append(chunk, v1(msgp.AppendInt64(nil, now.Unix()), good)...)
	chunk = append(chunk, v2(eventTime(now), good)...)
	chunk = append(chunk, v2(msgp.AppendUint64(nil, uint64(now.Unix())), good)...)
	chunk = append(chunk, msgp.AppendArrayHeader(nil, 1)...)                               // [ts] only
	chunk = append(chunk, msgp.AppendInt64(nil, 1)...)                                     //
	chunk = append(chunk, v1(msgp.AppendInt64(nil, 1), msgp.AppendString(nil, "text"))...) // body not a map
	chunk = append(chunk, v1(msgp.AppendString(nil, "when"), good)...)                     // bad timestamp
	chunk = append(chunk, v2(msgp.AppendInt64(nil, -2), msgp.AppendMapHeader(nil, 0))...)  // group end
	// Markers as Fluent Bit writes them: EventTime seconds 0xFFFFFFFF and
	// 0xFFFFFFFE, with a body that must not be taken for a record.
	chunk = append(chunk, v2(eventTime(time.Unix(0xFFFFFFFF, 0)), good)...)
	chunk = append(chunk, v2(eventTime(time.Unix(0xFFFFFFFE, 0)), good)...)
	recs, st := DecodeChunk("cloudtrail", chunk)
	if st.Events != 4 || st.Groups != 4 || st.Malformed != 3 {
		t.Fatalf("stats %+v", st)
	}
	if len(recs) != 7 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		if r.Err != nil && !strings.Contains(r.Where, "tag cloudtrail, event") {
			t.Errorf("malformed record without its place: %+v", r)
		}
	}
	// A record with a map key that is no string (well-formed MessagePack
	// no CloudTrail reader takes) is malformed alone: the records after it
	// were lost with it.
	intKey := msgp.AppendMapHeader(nil, 1)
	intKey = msgp.AppendString(msgp.AppendInt(intKey, 1), "x")
	odd := append(append(v2(eventTime(now), good), v2(eventTime(now), intKey)...), append(v2(eventTime(now), good), v2(eventTime(now), good)...)...)
	recs, st = DecodeChunk("t", odd)
	if st.Events != 3 || st.Malformed != 1 || len(recs) != 4 || recs[1].Err == nil || !strings.Contains(recs[1].Where, "event 1") {
		t.Errorf("a record with an integer key: %+v, %d records", st, len(recs))
	}
	// A broken stream: the rest of the chunk is one malformed record.
	broken := append(v1(eventTime(now), good), 0xdc, 0xff, 0xff) // array16 claiming 65535 elements
	recs, st = DecodeChunk("t", broken)
	if st.Events != 1 || st.Malformed != 1 || len(recs) != 2 {
		t.Errorf("broken stream: %+v, %d records", st, len(recs))
	}
	// Read a piece at a time (as Flush does), a chunk of several pieces,
	// malformed records, markers and a broken end among them, reads the
	// same as whole.
	var big []byte
	for range 3*piece/7 + 1 {
		big = append(big, chunk...)
	}
	big = append(big, broken...)
	recs, st = DecodeChunk("fuzz", big)
	if len(recs) <= 2*piece {
		t.Fatalf("%d records: fewer than three pieces", len(recs))
	}
	checkPieces(t, big, recs, st)
}

func props(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestInstanceFlushAndReopen(t *testing.T) {
	dir := t.TempDir()
	p := map[string]string{
		"rules": "../conf/rules", "db": filepath.Join(dir, "state.db"),
		"alert_file": filepath.Join(dir, "alerts.ndjson"), "exit_timeout": "5s",
	}
	var logs bytes.Buffer
	in, err := Open("trailwatch.0", props(p), &logs)
	if err != nil {
		t.Fatal(err)
	}
	chunk := append(v2(eventTime(time.Now()), body("PutFoundationModelEntitlement", "arn:aws:iam::1:user/a", false)),
		v1(eventTime(time.Now()), body("PutResourcePolicy", "arn:aws:iam::1:user/b", false))...)
	chunk = append(chunk, v1(eventTime(time.Now()), body("PutResourcePolicy", "arn:aws:iam::1:user/c", true))...)
	if s := Flush(in, "cloudtrail", chunk); s != OK {
		t.Fatalf("flush: %v", s)
	}
	// Same db from a second instance: refused with the file named.
	if _, err := Open("trailwatch.1", props(p), &logs); err == nil || !strings.Contains(err.Error(), "state.db") {
		t.Errorf("second instance on the same db: %v", err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p["alert_file"])
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Errorf("%d alerts in the file, want 2:\n%s", n, data)
	}
	if fi, _ := os.Stat(p["alert_file"]); fi.Mode().Perm() != 0o600 {
		t.Errorf("alert file mode %v", fi.Mode().Perm())
	}
	// Hot reload: the same instance opens again, history kept.
	in2, err := Open("trailwatch.0", props(p), &logs)
	if err != nil {
		t.Fatalf("reopen after exit: %v", err)
	}
	defer in2.Close()
	if s := Flush(in2, "cloudtrail", v1(eventTime(time.Now()), body("PutResourcePolicy", "arn:aws:iam::1:user/b", false))); s != OK {
		t.Fatal(s)
	}
	in2.Close()
	data, _ = os.ReadFile(p["alert_file"])
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Errorf("b was already seen before the reload: %d alerts, want still 2", n)
	}
	if !strings.Contains(logs.String(), "[ info] [output:trailwatch:trailwatch.0] 2 rules running") {
		t.Errorf("log lines are not in Fluent Bit's format:\n%s", logs.String())
	}
}

// TestInstanceWarnsOfTestsElasticsearchRefuses: a rule whose query has a
// test Elasticsearch refuses runs, with a warning naming the place.
func TestInstanceWarnsOfTestsElasticsearchRefuses(t *testing.T) {
	dir := t.TempDir()
	rule := "[rule]\nname = \"k\"\nrule_id = \"k-1\"\ntype = \"query\"\nquery = 'aws.cloudtrail.flattened.request_parameters.key >= a'\n"
	if err := os.WriteFile(filepath.Join(dir, "k.toml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	in, err := Open("trailwatch.0", props(map[string]string{"rules": dir, "db": filepath.Join(dir, "s.db"), "alert_stdout": "on"}), &logs)
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	want := "[ warn] [output:trailwatch:trailwatch.0] " + filepath.Join(dir, "k.toml") + ":5:10: rule \"k\": query: a range on aws.cloudtrail.flattened.request_parameters.key: Elasticsearch refuses it"
	if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "1 rules running") {
		t.Errorf("logs lack %q:\n%s", want, logs.String())
	}
}

func TestInstancePropertyErrors(t *testing.T) {
	cases := []struct {
		props map[string]string
		want  []string
	}{
		{map[string]string{}, []string{"property rules is missing", "no alert sink"}},
		{map[string]string{"rules": "../conf/rules", "alert_stdout": "maybe", "time_source": "wall", "learning_period": "soon", "outbox_max": "-1", "alert_tag": "a {x}"},
			[]string{`alert_stdout = "maybe": expected on or off`, `time_source = "wall": expected ingested or event`, `learning_period = "soon"`, `outbox_max = "-1"`, `alert_tag = "a {x}"`}},
		{map[string]string{"rules": "../testdata/rules/bad", "alert_stdout": "on"}, []string{"property rules: the rule set has errors", "bad_query.toml:11:1"}},
		{map[string]string{"rules": "../conf/rules", "alert_forward": "nohost", "db": filepath.Join(t.TempDir(), "s.db")}, []string{"alert_forward \"nohost\": expected host:port"}},
		{map[string]string{"rules": "../conf/rules", "alert_http": "ftp://x", "db": filepath.Join(t.TempDir(), "s.db")}, []string{"alert_http \"ftp://x\""}},
		{map[string]string{"rules": "../conf/rules", "alert_stdout": "on", "db": "/nonexistent/dir/s.db"}, []string{"property db", "/nonexistent/dir/s.db"}},
	}
	for _, tc := range cases {
		_, err := Open("t", props(tc.props), &bytes.Buffer{})
		if err == nil {
			t.Errorf("%v: no error", tc.props)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", tc.props, err, w)
			}
		}
	}
}

func TestConcurrentFlushes(t *testing.T) {
	dir := t.TempDir()
	in, err := Open("t", props(map[string]string{"rules": "../conf/rules", "db": filepath.Join(dir, "s.db"), "alert_file": filepath.Join(dir, "a.ndjson")}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Status)
	for w := 0; w < 4; w++ {
		go func(w int) {
			for i := 0; i < 25; i++ {
				arn := "arn:aws:iam::1:user/u" + string(rune('a'+i))
				done <- Flush(in, "t", v1(eventTime(time.Now()), body("PutResourcePolicy", arn, false)))
			}
		}(w)
	}
	for i := 0; i < 100; i++ {
		if s := <-done; s != OK {
			t.Errorf("flush %v", s)
		}
	}
	in.Close()
	data, _ := os.ReadFile(filepath.Join(dir, "a.ndjson"))
	if n := strings.Count(string(data), "\n"); n != 25 {
		t.Errorf("%d alerts from 4 workers on 25 identities, want 25", n)
	}
}
