package server

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/internal/fwdtest"
)

// newInstance starts an instance over the bundled rules with a file sink.
func newInstance(t testing.TB, extra map[string]string) (*instance.Instance, string) {
	t.Helper()
	return newInstanceLog(t, extra, io.Discard)
}

func newInstanceLog(t testing.TB, extra map[string]string, logw io.Writer) (*instance.Instance, string) {
	t.Helper()
	dir := t.TempDir()
	p := map[string]string{
		"rules": "../conf/rules", "db": filepath.Join(dir, "state.db"),
		"alert_file": filepath.Join(dir, "alerts.ndjson"), "exit_timeout": "10s", "no_sync": "on",
	}
	for k, v := range extra {
		p[k] = v
	}
	in, err := instance.Open("test", func(k string) string { return p[k] }, logw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in, p["alert_file"]
}

func event(id int, action string) string {
	return fmt.Sprintf(`{"eventSource":"bedrock.amazonaws.com","eventName":%q,"eventID":"ev-%d","eventTime":"2026-11-20T10:00:00Z","awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/u%d"}}`, action, id, id)
}

const grant = "PutUseCaseForModelAccess" // fires the bundled query rule

func alertIDs(t testing.TB, path string, want int) map[string]int {
	t.Helper()
	ids := map[string]int{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ids = map[string]int{}
		if b, err := os.ReadFile(path); err == nil {
			// Whole lines only: the sink may be writing the last one.
			lines := bytes.Split(b, []byte("\n"))
			for _, line := range lines[:len(lines)-1] {
				var a map[string]any
				if err := json.Unmarshal(line, &a); err != nil {
					t.Fatalf("alert is not JSON: %v", err)
				}
				ids[a["kibana.alert.uuid"].(string)]++
			}
		}
		total := 0
		for _, n := range ids {
			total += n
		}
		if total >= want || time.Now().After(deadline) {
			return ids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func post(t *testing.T, h http.Handler, body []byte, headers ...string) (*httptest.ResponseRecorder, answer) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	var a answer
	json.Unmarshal(rr.Body.Bytes(), &a)
	return rr, a
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestHTTPAsVectorSends covers what Vector's http sink (and EventBridge and
// Firehose) send, and every error answer.
func TestHTTPAsVectorSends(t *testing.T) {
	in, alerts := newInstance(t, nil)
	h := NewHandler(in, HTTPOptions{MaxBody: 64 << 10})
	ndjson := []byte(event(1, grant) + "\n" + event(2, "ListFoundationModels") + "\n")
	array := []byte("[" + event(3, grant) + "," + event(4, grant) + "]")
	pretty := []byte(strings.ReplaceAll(event(5, grant), ",", ",\n  "))
	firehose := []byte(`{"requestId":"r-1","timestamp":1,"records":[{"data":"` + base64.StdEncoding.EncodeToString([]byte(event(6, grant))) + `"}]}`)
	// Firehose records of NDJSON, of an array, and of one pretty-printed
	// event (read line by line, it was malformed lines).
	firehoseShapes := []byte(`{"requestId":"r-2","timestamp":1,"records":[{"data":"` +
		base64.StdEncoding.EncodeToString([]byte(event(10, grant)+"\n"+event(11, grant)+"\n")) + `"},{"data":"` +
		base64.StdEncoding.EncodeToString([]byte("["+event(12, grant)+","+event(13, grant)+"]")) + `"},{"data":"` +
		base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(event(14, grant), ",", ",\n  "))) + `"}]}`)
	cases := []struct {
		name    string
		body    []byte
		headers []string
		status  int
		records int
		alerts  int
	}{
		{"ndjson", ndjson, nil, 200, 2, 1},
		{"json array", array, []string{"Content-Type", "application/json"}, 200, 2, 2},
		{"gzip", gz([]byte(event(7, grant) + "\n")), []string{"Content-Encoding", "gzip"}, 200, 1, 1},
		{"one pretty object (EventBridge)", pretty, nil, 200, 1, 1},
		{"firehose", firehose, []string{"X-Amz-Firehose-Request-Id", "r-1"}, 200, 1, 1},
		{"firehose records of NDJSON, an array, a pretty object", firehoseShapes, []string{"X-Amz-Firehose-Request-Id", "r-2"}, 200, 5, 5},
		{"malformed among good", []byte(event(8, grant) + "\n{\"broken\": \n"), nil, 400, 1, 1},
		{"not JSON at all", []byte("hello"), nil, 400, 0, 0},
		{"empty", nil, nil, 400, 0, 0},
		{"oversized", bytes.Repeat([]byte(event(9, grant)+"\n"), 1000), nil, 413, 0, 0},
		{"gzip bomb", gz(bytes.Repeat([]byte(" "), 10<<20)), []string{"Content-Encoding", "gzip"}, 413, 0, 0},
		{"unknown encoding", ndjson, []string{"Content-Encoding", "br"}, 400, 0, 0},
	}
	total := 0
	for _, tc := range cases {
		rr, a := post(t, h, tc.body, tc.headers...)
		if rr.Code != tc.status || a.Records != tc.records || a.Alerts != tc.alerts {
			t.Errorf("%s: %d %+v, want status %d, %d records, %d alerts", tc.name, rr.Code, a, tc.status, tc.records, tc.alerts)
		}
		if tc.status != 200 && a.Error == "" {
			t.Errorf("%s: an error answer without a message", tc.name)
		}
		total += tc.alerts
	}
	if _, a := post(t, h, firehose, "X-Amz-Firehose-Request-Id", "r-1"); a.RequestID != "r-1" || a.Timestamp == 0 {
		t.Errorf("Firehose answer must echo requestId and a timestamp: %+v", a)
	}
	if n := len(alertIDs(t, alerts, total)); n != total {
		t.Errorf("%d distinct alerts delivered, want %d", n, total)
	}
}

func TestHTTPTokenHealthMetrics(t *testing.T) {
	in, _ := newInstance(t, nil)
	h := NewHandler(in, HTTPOptions{Token: "t0ken"})
	if rr, _ := post(t, h, []byte(event(1, grant))); rr.Code != 401 {
		t.Errorf("no token: %d", rr.Code)
	}
	if rr, _ := post(t, h, []byte(event(1, grant)), "Authorization", "Bearer wrong"); rr.Code != 401 {
		t.Errorf("wrong token: %d", rr.Code)
	}
	if rr, _ := post(t, h, []byte(event(1, grant)), "Authorization", "Bearer t0ken"); rr.Code != 200 {
		t.Errorf("right token: %d", rr.Code)
	}
	get := func(path string, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		return rr
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/metrics": `trailwatch_rule_alerts_total{rule="AWS Bedrock Foundation Model Access Enabled or Entitlement Granted"} 1`,
	} {
		if rr := get(path, "Authorization", "Bearer t0ken"); rr.Code != 200 || !strings.Contains(rr.Body.String(), want) {
			t.Errorf("%s: %d\n%s", path, rr.Code, rr.Body.String())
		}
	}
	for _, m := range []string{"trailwatch_records_total 1", "trailwatch_outbox_alerts", "trailwatch_malformed_records_total 0", "trailwatch_state_file_bytes", "trailwatch_sink_alerts_total"} {
		if rr := get("/metrics", "Authorization", "Bearer t0ken"); !strings.Contains(rr.Body.String(), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	// The metrics are behind the token; /healthz is not.
	if rr := get("/metrics"); rr.Code != 401 {
		t.Errorf("/metrics without the token: %d", rr.Code)
	}
	if rr := get("/healthz"); rr.Code != 200 {
		t.Errorf("/healthz without the token: %d", rr.Code)
	}
	// The scheme is case-insensitive; another scheme is no bearer token.
	for auth, want := range map[string]int{"bearer t0ken": 200, "BEARER  t0ken": 200, "Basic t0ken": 401, "Bearert0ken": 401, "Bearer": 401} {
		if rr, _ := post(t, h, []byte(event(1, grant)), "Authorization", auth); rr.Code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, rr.Code, want)
		}
	}
}

func TestHTTPFullOutboxAnswers503(t *testing.T) {
	// A sink that is down (nothing listens) and an outbox of 2.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	in, _ := newInstance(t, map[string]string{"alert_file": "", "alert_forward": addr, "outbox_max": "2", "exit_timeout": "0s"})
	h := NewHandler(in, HTTPOptions{})
	post(t, h, []byte(event(1, grant)+"\n"+event(2, grant)+"\n"))
	rr, a := post(t, h, []byte(event(3, grant)))
	if rr.Code != 503 || rr.Header().Get("Retry-After") == "" || !strings.Contains(a.Error, "outbox is full") {
		t.Errorf("full outbox: %d %q %+v", rr.Code, rr.Header().Get("Retry-After"), a)
	}
}

// ---- forward ----

func startForward(t *testing.T, in *instance.Instance, o ForwardOptions) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := NewForward(in, o)
	go f.Serve(l)
	t.Cleanup(func() { l.Close(); f.Shutdown(time.Second) })
	return l.Addr().String()
}

func recordMap(js string) []byte {
	var m map[string]any
	json.Unmarshal([]byte(js), &m)
	b, _ := msgp.AppendIntf(nil, m)
	return b
}

func entry(js string) []byte {
	b := msgp.AppendArrayHeader(nil, 2)
	b = msgp.AppendInt64(b, time.Now().Unix())
	return append(b, recordMap(js)...)
}

func option(chunk string, compressed bool) []byte {
	n := uint32(1)
	if compressed {
		n = 2
	}
	b := msgp.AppendMapHeader(nil, n)
	b = msgp.AppendString(b, "chunk")
	b = msgp.AppendString(b, chunk)
	if compressed {
		b = msgp.AppendString(b, "compressed")
		b = msgp.AppendString(b, "gzip")
	}
	return b
}

func readAck(t *testing.T, r *msgp.Reader) string {
	t.Helper()
	m := map[string]any{}
	if err := r.ReadMapStrIntf(m); err != nil {
		t.Fatalf("no ack: %v", err)
	}
	return fmt.Sprint(m["ack"])
}

// TestForwardModesWithAck speaks each mode as Fluent Bit's and Fluentd's
// forward outputs do, and checks the ack after commit.
func TestForwardModesWithAck(t *testing.T) {
	in, alerts := newInstance(t, nil)
	addr := startForward(t, in, ForwardOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := msgp.NewReader(c)
	// Message mode: [tag, time, record, option]
	m := msgp.AppendArrayHeader(nil, 4)
	m = msgp.AppendString(m, "cloudtrail")
	m = msgp.AppendInt64(m, time.Now().Unix())
	m = append(m, recordMap(event(1, grant))...)
	m = append(m, option("c1", false)...)
	c.Write(m)
	if got := readAck(t, r); got != "c1" {
		t.Errorf("ack %q", got)
	}
	// Forward mode: [tag, [[time, record], ...], option]
	f := msgp.AppendArrayHeader(nil, 3)
	f = msgp.AppendString(f, "cloudtrail")
	f = msgp.AppendArrayHeader(f, 2)
	f = append(f, entry(event(2, grant))...)
	f = append(f, entry(event(3, "ListFoundationModels"))...)
	f = append(f, option("c2", false)...)
	c.Write(f)
	if got := readAck(t, r); got != "c2" {
		t.Errorf("ack %q", got)
	}
	// PackedForward, then CompressedPackedForward.
	packed := append(entry(event(4, grant)), entry(event(5, grant))...)
	p := msgp.AppendArrayHeader(nil, 3)
	p = msgp.AppendString(p, "cloudtrail")
	p = msgp.AppendBytes(p, packed)
	p = append(p, option("c3", false)...)
	c.Write(p)
	if got := readAck(t, r); got != "c3" {
		t.Errorf("ack %q", got)
	}
	cp := msgp.AppendArrayHeader(nil, 3)
	cp = msgp.AppendString(cp, "cloudtrail")
	cp = msgp.AppendBytes(cp, gz(entry(event(6, grant))))
	cp = append(cp, option("c4", true)...)
	c.Write(cp)
	if got := readAck(t, r); got != "c4" {
		t.Errorf("ack %q", got)
	}
	// A malformed message is skipped; the connection goes on.
	bad := msgp.AppendArrayHeader(nil, 2)
	bad = msgp.AppendInt64(bad, 1)
	bad = msgp.AppendInt64(bad, 2)
	c.Write(bad)
	c.Write(m[:0])
	m2 := msgp.AppendArrayHeader(nil, 4)
	m2 = msgp.AppendString(m2, "cloudtrail")
	m2 = msgp.AppendInt64(m2, 0)
	m2 = append(m2, recordMap(event(7, grant))...)
	m2 = append(m2, option("c5", false)...)
	c.Write(m2)
	if got := readAck(t, r); got != "c5" {
		t.Errorf("ack after a malformed message: %q", got)
	}
	if n := len(alertIDs(t, alerts, 6)); n != 6 {
		t.Errorf("%d alerts, want 6", n)
	}
}

func TestForwardSharedKey(t *testing.T) {
	var logs syncBuffer
	in, _ := newInstanceLog(t, nil, &logs)
	addr := startForward(t, in, ForwardOptions{SharedKey: "s3cret"})
	try := func(key string) bool {
		ok, _ := fwdtest.PingPong(t, addr, "client-1", key)
		return ok
	}
	if !try("s3cret") {
		t.Error("the right shared key was refused")
	}
	if try("wrong") {
		t.Error("a wrong shared key was accepted")
	}
	time.Sleep(50 * time.Millisecond)
	if got := logs.String(); !strings.Contains(got, "handshake refused") || strings.Contains(got, "s3cret") {
		t.Errorf("the refusal must be logged, the key never:\n%s", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBurstFromEightClients: 100,000 records from 8 concurrent HTTP clients
// end with every expected alert delivered exactly once per id, and the
// heap stays bounded.
func TestBurstFromEightClients(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 100,000-record burst in -short mode")
	}
	// The bundled rules with max_signals raised: this test counts delivery,
	// not the cap.
	rules := t.TempDir()
	for _, name := range []string{"bedrock_foundation_model_access_granted.toml", "bedrock_resource_policy_modified_or_deleted.toml"} {
		b, err := os.ReadFile(filepath.Join("../conf/rules", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(rules, name), bytes.Replace(b, []byte("max_signals = 100"), []byte("max_signals = 1000000"), 1), 0o600)
	}
	in, alerts := newInstance(t, map[string]string{"rules": rules})
	srv := httptest.NewServer(NewHandler(in, HTTPOptions{}))
	defer srv.Close()
	const clients, perClient, batch = 8, 12500, 500
	expected := 0
	for i := 0; i < clients*perClient; i++ {
		if i%50 == 0 {
			expected++
		}
	}
	var wg sync.WaitGroup
	var peak uint64
	var mu sync.Mutex
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for start := 0; start < perClient; start += batch {
				var b bytes.Buffer
				for i := start; i < start+batch; i++ {
					id := c*perClient + i
					action := "ListFoundationModels"
					if id%50 == 0 {
						action = grant
					}
					b.WriteString(event(id, action))
					b.WriteByte('\n')
				}
				for attempt := 0; ; attempt++ {
					resp, err := http.Post(srv.URL, "application/x-ndjson", bytes.NewReader(b.Bytes()))
					if err != nil {
						errs <- err
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
					if resp.StatusCode != 503 || attempt > 100 {
						errs <- fmt.Errorf("status %d", resp.StatusCode)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				mu.Lock()
				peak = max(peak, ms.HeapInuse)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ids := alertIDs(t, alerts, expected)
	dups := 0
	for _, n := range ids {
		if n > 1 {
			dups++
		}
	}
	if len(ids) != expected || dups != 0 {
		t.Errorf("%d distinct alerts (%d duplicated), want %d exactly once", len(ids), dups, expected)
	}
	if peak > 512<<20 {
		t.Errorf("heap in use peaked at %d MiB", peak>>20)
	}
	t.Logf("%d records, %d alerts, heap peak %d MiB", clients*perClient, len(ids), peak>>20)
}

// TestFullOutboxRefusesWholeBatch: with the sink down, a batch whose alerts
// do not fit in the outbox is refused whole (HTTP 503 with Retry-After; no
// forward ack) and counted, where the alerts past outbox_max were dropped
// with a 200; a batch given to an empty outbox is taken whole.
func TestFullOutboxRefusesWholeBatch(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	batch := func(from, n int) []byte {
		var b bytes.Buffer
		for i := from; i < from+n; i++ {
			b.WriteString(event(i, grant) + "\n")
		}
		return b.Bytes()
	}
	metric := func(h http.Handler, name string) string {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for _, l := range strings.Split(rr.Body.String(), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				return v
			}
		}
		return "absent"
	}
	in, _ := newInstance(t, map[string]string{"alert_file": "", "alert_forward": down, "outbox_max": "5", "exit_timeout": "0s"})
	h := NewHandler(in, HTTPOptions{})
	if rr, a := post(t, h, batch(0, 3)); rr.Code != 200 || a.Alerts != 3 {
		t.Fatalf("3 alerts into an empty outbox of 5: %d %+v", rr.Code, a)
	}
	rr, a := post(t, h, batch(10, 7))
	if rr.Code != 503 || rr.Header().Get("Retry-After") == "" || !strings.Contains(a.Error, "outbox is full") {
		t.Errorf("7 alerts with room for 2: %d %+v", rr.Code, a)
	}
	if n := in.OutboxLen(); n != 3 {
		t.Errorf("outbox %d after the refused batch, want 3 (nothing of it written)", n)
	}
	if got, dropped := metric(h, "trailwatch_batches_refused_total"), metric(h, "trailwatch_alerts_dropped_total"); got != "1" || dropped != "0" {
		t.Errorf("refused %s, dropped %s; want 1 and 0", got, dropped)
	}
	// The same over the forward protocol: no ack, the connection closed.
	c, err := net.Dial("tcp", startForward(t, in, ForwardOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := msgp.AppendArrayHeader(nil, 3)
	m = msgp.AppendString(m, "cloudtrail")
	m = msgp.AppendArrayHeader(m, 3)
	for i := range 3 {
		m = append(m, entry(event(20+i, grant))...)
	}
	c.Write(append(m, option("c1", false)...))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Errorf("forward: %q %v, want the connection closed without an ack", b, err)
	}
	if n := in.OutboxLen(); n != 3 {
		t.Errorf("outbox %d after the refused message", n)
	}
	// An empty outbox takes a batch larger than its bound whole.
	in2, _ := newInstance(t, map[string]string{"alert_file": "", "alert_forward": down, "outbox_max": "5", "exit_timeout": "0s"})
	h2 := NewHandler(in2, HTTPOptions{})
	if rr, a := post(t, h2, batch(30, 7)); rr.Code != 200 || a.Alerts != 7 || in2.OutboxLen() != 7 {
		t.Errorf("7 alerts into an empty outbox of 5: %d %+v, outbox %d", rr.Code, a, in2.OutboxLen())
	}
	if rr, _ := post(t, h2, batch(40, 1)); rr.Code != 503 {
		t.Errorf("then 1 more: %d", rr.Code)
	}
}
