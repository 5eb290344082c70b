package sink

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	if _, err := NewHTTP("ftp://x", ""); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := NewForward("nohost"); err == nil {
		t.Error("address without port accepted")
	}
}

// TestForwardSinkWaitsForAck sends to a forward listener that acks, and to
// one that never acks (the send fails and is retried).
func TestForwardSinkWaitsForAck(t *testing.T) {
	for _, ack := range []bool{true, false} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var tags []string
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
				mu.Lock()
				tags = append(tags, tag)
				mu.Unlock()
				r.Skip() // time
				r.Skip() // record
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
		fs, err := NewForward(l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fw := fs.(*forwardSink)
		fw.cfg.ReadTimeout = 300 * time.Millisecond
		err = fs.Send(nil, []Item{{Seq: 1, Tag: "alert.trailwatch", Time: time.Now(), Doc: []byte(`{"x":1}`)}})
		if ack && err != nil {
			t.Errorf("acked send failed: %v", err)
		}
		if !ack && err == nil {
			t.Error("a send without ack succeeded")
		}
		mu.Lock()
		if len(tags) == 0 || tags[0] != "alert.trailwatch" {
			t.Errorf("listener got tags %v", tags)
		}
		mu.Unlock()
		fs.Close()
		l.Close()
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
