package sink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/store"
)

type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) Infof(f string, a ...any) { l.add("info: " + fmt.Sprintf(f, a...)) }
func (l *testLog) Warnf(f string, a ...any) { l.add("warn: " + fmt.Sprintf(f, a...)) }
func (l *testLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func openStore(t *testing.T) *store.Store {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func commit(t *testing.T, st *store.Store, n int) {
	t.Helper()
	_, err := st.Commit(store.Batch{Emit: func(*store.Verdicts) ([]store.Alert, error) {
		var out []store.Alert
		for i := 0; i < n; i++ {
			out = append(out, store.Alert{Doc: []byte(fmt.Sprintf(`{"kibana.alert.rule.rule_id":"r-1","kibana.alert.rule.name":"My Rule: Bedrock!","i":%d}`, i))})
		}
		return out, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSinkDownThenBack: a sink that is down keeps alerts in the outbox and
// is retried with backoff; a healthy sink beside it is not held back; when
// the sink is back, everything arrives and the outbox empties.
func TestSinkDownThenBack(t *testing.T) {
	minBackoff, maxBackoff = 20*time.Millisecond, 80*time.Millisecond
	st := openStore(t)
	var down atomic.Bool
	down.Store(true)
	var httpGot atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		httpGot.Add(int64(bytes.Count(b, []byte("\n"))))
	}))
	defer srv.Close()
	hs, _ := NewHTTP(srv.URL, "")
	var buf bytes.Buffer
	w := NewWriter("buffer", &buf)
	log := &testLog{}
	d := NewDispatcher(st, []Sink{hs, w}, "alert.trailwatch", log)
	defer d.Close()
	commit(t, st, 5)
	d.Wake()
	waitFor(t, "the healthy sink", func() bool { return d.Delivered[1].Load() == 5 })
	waitFor(t, "retries", func() bool { return d.Failures[0].Load() >= 3 })
	if st.OutboxLen() != 5 {
		t.Errorf("outbox %d while a sink is down, want 5", st.OutboxLen())
	}
	down.Store(false)
	waitFor(t, "the sink back", func() bool { return httpGot.Load() == 5 })
	waitFor(t, "the outbox to empty", func() bool { return st.OutboxLen() == 0 })
	if strings.Count(buf.String(), "\n") != 5 {
		t.Errorf("the healthy sink got %q", buf.String())
	}
	joined := strings.Join(log.lines, "\n")
	if !strings.Contains(joined, "retrying with backoff") || !strings.Contains(joined, "delivering again") {
		t.Errorf("log:\n%s", joined)
	}
	if strings.Count(joined, "retrying with backoff") != 1 {
		t.Errorf("a down sink must be logged once, not per retry:\n%s", joined)
	}
}

func TestFileSinkAndTags(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alerts.ndjson")
	fs, err := NewFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Send(nil, []Item{{Doc: []byte(`{"a":1}`)}, {Doc: []byte(`{"a":2}`)}}); err != nil {
		t.Fatal(err)
	}
	fs.Close()
	b, _ := os.ReadFile(p)
	if string(b) != "{\"a\":1}\n{\"a\":2}\n" {
		t.Errorf("file %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	// A line cut by a kill is ended before the next alert.
	os.WriteFile(p, []byte("{\"a\":1}\n{\"cut"), 0o600)
	fs, _ = NewFile(p)
	fs.Send(nil, []Item{{Doc: []byte(`{"a":3}`)}})
	fs.Close()
	if b, _ := os.ReadFile(p); string(b) != "{\"a\":1}\n{\"cut\n{\"a\":3}\n" {
		t.Errorf("after a cut line: %q", b)
	}
	doc := []byte(`{"kibana.alert.rule.rule_id":"de0e9ed8","kibana.alert.rule.name":"AWS Bedrock Resource-Based Policy Modified or Deleted"}`)
	for tmpl, want := range map[string]string{
		"alert.trailwatch":             "alert.trailwatch",
		"alert.{rule_id}":              "alert.de0e9ed8",
		"alert.trailwatch.{rule_name}": "alert.trailwatch.aws_bedrock_resource_based_policy_modified_or_deleted",
	} {
		if got := TagTemplate(tmpl).Render(doc); got != want {
			t.Errorf("%s -> %s, want %s", tmpl, got, want)
		}
	}
	// A name with nothing of a-z or 0-9 made an empty part (a tag of just
	// {rule_name} was empty): the rule_id stands in.
	jp := []byte(`{"kibana.alert.rule.rule_id":"de0e9ed8-aa","kibana.alert.rule.name":"権限の変更"}`)
	if got := TagTemplate("{rule_name}").Render(jp); got != "de0e9ed8_aa" {
		t.Errorf("{rule_name} of a name without a-z or 0-9 -> %q, want the rule_id's", got)
	}
	if _, err := NewHTTP("ftp://x", ""); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := NewForward("nohost"); err == nil {
		t.Error("address without port accepted")
	}
}

// forwardListener is a forward receiver at addr that keeps the tags and
// records it is sent, and acknowledges them when ack.
type forwardListener struct {
	l       net.Listener
	mu      sync.Mutex
	tags    []string
	records []map[string]any
}

func listenForward(t *testing.T, ack bool) *forwardListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &forwardListener{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := msgp.NewReader(bufio.NewReader(c))
		for {
			n, err := r.ReadArrayHeader()
			if err != nil {
				return
			}
			tag, _ := r.ReadString()
			r.Skip() // time
			rec := map[string]any{}
			r.ReadMapStrIntf(rec)
			fl.mu.Lock()
			fl.tags, fl.records = append(fl.tags, tag), append(fl.records, rec)
			fl.mu.Unlock()
			var chunk string
			if n == 4 {
				opts := map[string]any{}
				r.ReadMapStrIntf(opts)
				chunk, _ = opts["chunk"].(string)
			}
			if ack && chunk != "" {
				b := msgp.AppendMapHeader(nil, 1)
				b = msgp.AppendString(b, "ack")
				b = msgp.AppendString(b, chunk)
				c.Write(b)
			}
		}
	}()
	return fl
}

// TestForwardSinkWaitsForAck sends to a forward listener that acks, and to
// one that never acks (the send fails and is retried).
func TestForwardSinkWaitsForAck(t *testing.T) {
	for _, ack := range []bool{true, false} {
		fl := listenForward(t, ack)
		fs, err := NewForward(fl.l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fw := fs.(*forwardSink)
		fw.ack = 300 * time.Millisecond
		err = fs.Send(nil, []Item{{Seq: 1, Tag: "alert.trailwatch", Time: time.Now(), Doc: []byte(`{"x":1}`)}})
		if ack && err != nil {
			t.Errorf("acked send failed: %v", err)
		}
		if !ack && err == nil {
			t.Error("a send without ack succeeded")
		}
		fl.mu.Lock()
		if len(fl.tags) == 0 || fl.tags[0] != "alert.trailwatch" {
			t.Errorf("listener got tags %v", fl.tags)
		}
		fl.mu.Unlock()
		fs.Close()
	}
}

// TestForwardSinkNumbers: an alert whose record carries a number no float
// holds (1e400 in its request parameters) was an error the sink retried for
// ever, the outbox filling behind it; large integers were rounded. Integers
// go as integers, fractions as floats, the rest as its text.
func TestForwardSinkNumbers(t *testing.T) {
	fl := listenForward(t, true)
	fs, err := NewForward(fl.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	doc := `{"big":1e400,"u":12345678901234567891,"i":-42,"f":0.5,"deep":{"list":[1e400,7]}}`
	if err := fs.Send(nil, []Item{{Seq: 1, Tag: "alert.trailwatch", Time: time.Now(), Doc: []byte(doc)}}); err != nil {
		t.Fatal(err)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if len(fl.records) != 1 {
		t.Fatalf("%d records received", len(fl.records))
	}
	r := fl.records[0]
	deep, _ := r["deep"].(map[string]any)
	list, _ := deep["list"].([]any)
	if r["big"] != "1e400" || r["u"] != uint64(12345678901234567891) || r["i"] != int64(-42) || r["f"] != 0.5 || len(list) != 2 || list[0] != "1e400" || list[1] != int64(7) {
		t.Errorf("received %#v", r)
	}
}

// TestHTTPRedirectIsNotDelivery: a 302 answer, followed, became a GET
// without the alerts whose 200 acknowledged them. A redirect is an error
// (the batch is sent again).
func TestHTTPRedirectIsNotDelivery(t *testing.T) {
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ingest" {
			http.Redirect(w, r, "/moved", http.StatusFound)
			return
		}
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
	}))
	defer srv.Close()
	s, err := NewHTTP(srv.URL+"/ingest", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), []Item{{Seq: 1, Doc: []byte(`{"a":1}`)}}); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("a redirect: %v, want an error naming the 302", err)
	}
}

// halfWriter writes half of its first write to the file, then fails, as a
// disk that fills does.
type halfWriter struct {
	f      *os.File
	failed bool
}

func (h *halfWriter) Write(p []byte) (int, error) {
	if !h.failed {
		h.failed = true
		n, _ := h.f.Write(p[:len(p)/2])
		return n, errors.New("no space left on device")
	}
	return h.f.Write(p)
}

// TestFilePartialWriteCutOff: a batch whose write failed part-way was
// followed by the retry on the same line, the first alert lost in an
// unparsable line. The part written is cut off; the retry's lines parse.
func TestFilePartialWriteCutOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.ndjson")
	fs, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := fs.(*writerSink)
	s.w = &halfWriter{f: s.f}
	defer s.Close()
	items := []Item{{Seq: 1, Doc: []byte(`{"alert":1}`)}, {Seq: 2, Doc: []byte(`{"alert":2}`)}}
	if err := s.Send(context.Background(), items); err == nil {
		t.Fatal("the failing write was taken")
	}
	if err := s.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "{\"alert\":1}\n{\"alert\":2}\n" {
		t.Errorf("file %q", b)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com":                       "https://hooks.example.com",
		"https://hooks.example.com/":                      "https://hooks.example.com",
		"https://u:p@hooks.example.com:8443/T0/B1/secret": "https://hooks.example.com:8443/…",
		"http://127.0.0.1:8081?token=x":                   "http://127.0.0.1:8081/…",
		"http://h#frag":                                   "http://h/…",
		"not a url at all":                                "(a URL that does not parse)",
		"http://[::1":                                     "(a URL that does not parse)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestForwardHostileReceiver: a receiver that announces an ack of 4 GiB
// made the sink allocate it, at every retry; one that takes its time held
// a cancelled send (Close, a reload) for as long as its timeouts. The
// answer is read to 1 KB, and a cancel cuts the send at once.
func TestForwardHostileReceiver(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	slow := make(chan struct{})
	go func() {
		for n := 0; ; n++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn, n int) {
				defer c.Close()
				c.Read(make([]byte, 1<<16)) // the message
				if n == 0 {
					// {"ack": <a str32 of 0xfffffff0 bytes>}, then bytes.
					b := msgp.AppendMapHeader(nil, 1)
					b = msgp.AppendString(b, "ack")
					b = append(b, 0xdb, 0xff, 0xff, 0xff, 0xf0)
					c.Write(b)
					c.Write(bytes.Repeat([]byte("a"), 1<<20))
					return
				}
				<-slow // never answers until the test ends
			}(c, n)
		}
	}()
	defer close(slow)
	fs, err := NewForward(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	item := []Item{{Seq: 1, Tag: "alert.trailwatch", Time: time.Now(), Doc: []byte(`{"x":1}`)}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = fs.Send(context.Background(), item)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "longer than 1024 bytes") {
		t.Errorf("a 4 GiB ack: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("a 4 GiB ack allocated %d MiB", grew>>20)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if err := fs.Send(ctx, item); err == nil {
		t.Error("a send to a receiver that never answers succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a cancelled send returned after %v", took)
	}
}

// TestHTTPTooLargeHalvesTheBatch: a receiver whose body limit is below a
// batch answered 413 to every retry of it: the sink stalled for ever and
// the outbox filled. The batch is sent again in halves, at once, and
// everything arrives; after each delivery the size doubles, back to the
// dispatcher's batch (500) once the receiver takes it.
func TestHTTPTooLargeHalvesTheBatch(t *testing.T) {
	st := openStore(t)
	var got atomic.Int64
	var limit atomic.Int64 // the receiver's body limit, in alerts
	limit.Store(3)
	var mu sync.Mutex
	var sizes []int // each request's alerts, as the receiver saw them
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := bytes.Count(b, []byte("\n"))
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		if int64(n) > limit.Load() {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		got.Add(int64(n))
	}))
	defer srv.Close()
	hs, _ := NewHTTP(srv.URL, "")
	d := NewDispatcher(st, []Sink{hs}, "alert.trailwatch", &testLog{})
	defer d.Close()
	seen := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), sizes...)
	}
	commit(t, st, 50)
	d.Wake()
	waitFor(t, "every alert through a receiver taking 3 at a time", func() bool { return got.Load() == 50 && st.OutboxLen() == 0 })
	// 50 is halved down to 3, at once; each delivery of 3 doubles the
	// size to 6, answered 413 and halved again; the last 5 are halved
	// to 2, delivered, then 4 takes the last 3.
	want := []int{50, 25, 12, 6, 3}
	for range 14 {
		want = append(want, 6, 3)
	}
	want = append(want, 5, 2, 3)
	if s := seen(); !slices.Equal(s, want) {
		t.Fatalf("requests of %v alerts, want %v", s, want)
	}
	if f := d.Failures[0].Load(); f != 19 {
		t.Errorf("%d failed sends, want 19 (the 413s)", f)
	}
	// The receiver takes any size now: the size grows back from 8 (4
	// after the last delivery) by doubling, up to the batch, not past it.
	limit.Store(1 << 30)
	commit(t, st, 1600)
	d.Wake()
	waitFor(t, "every alert once the receiver takes them all", func() bool { return got.Load() == 1650 && st.OutboxLen() == 0 })
	if s, want := seen()[len(want):], []int{8, 16, 32, 64, 128, 256, 500, 500, 96}; !slices.Equal(s, want) {
		t.Errorf("after the limit was lifted, requests of %v alerts, want %v", s, want)
	}
}

// A rotation (logrotate renames the file, or removes it) sends the next
// batch to a new file at the path; the rotated file keeps what it held.
func TestFileSinkFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.ndjson")
	s, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	send := func(n int) {
		t.Helper()
		if err := s.Send(context.Background(), []Item{{Seq: uint64(n), Doc: fmt.Appendf(nil, `{"alert":%d}`, n)}}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	send(1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	send(2)
	if got := read(path + ".1"); got != "{\"alert\":1}\n" {
		t.Errorf("rotated file %q", got)
	}
	if got := read(path); got != "{\"alert\":2}\n" {
		t.Errorf("new file %q", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	send(3)
	if got := read(path); got != "{\"alert\":3}\n" {
		t.Errorf("file made again %q", got)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, %v", st.Mode(), err)
	}
	// The folder gone: the batch fails (and stays in the outbox), and is
	// taken once the folder is back.
	os.Remove(path)
	os.Remove(path + ".1")
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), []Item{{Seq: 4, Doc: []byte(`{"alert":4}`)}}); err == nil {
		t.Fatal("a batch with nowhere to go was taken")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	send(4)
	if got := read(path); got != "{\"alert\":4}\n" {
		t.Errorf("after the folder came back %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), []Item{{Seq: 5, Doc: []byte(`{"alert":5}`)}}); err == nil {
		t.Error("a batch after Close was taken")
	}
}

// A sink whose backoff has grown past the exit's deadline retries at once
// when Drain starts, and at the shortest backoff after: one back before
// the deadline empties the outbox (it slept through the deadline).
func TestDrainCutsTheBackoff(t *testing.T) {
	minBackoff, maxBackoff = time.Millisecond, time.Hour
	defer func() { minBackoff, maxBackoff = 500*time.Millisecond, 60*time.Second }()
	st := openStore(t)
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	hs, _ := NewHTTP(srv.URL, "")
	d := NewDispatcher(st, []Sink{hs}, "alert.trailwatch", &testLog{})
	defer d.Close()
	commit(t, st, 3)
	d.Wake()
	// 1 ms doubled 10 times: the next retry is a second away.
	waitFor(t, "the backoff to grow", func() bool { return d.Failures[0].Load() >= 11 })
	down.Store(false)
	start := time.Now()
	if !d.Drain(500 * time.Millisecond) {
		t.Fatalf("the outbox was not drained within the deadline (%d left)", st.OutboxLen())
	}
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Errorf("drained in %v", took)
	}
}
