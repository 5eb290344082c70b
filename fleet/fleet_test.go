package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailwatch/trailwatch/internal/natstest"
)

// logBuf collects a client's log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) Infof(f string, a ...any) { l.add("info", f, a...) }
func (l *logBuf) Warnf(f string, a ...any) { l.add("warn", f, a...) }
func (l *logBuf) add(level, f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(f, a...))
}

// count is how many lines hold s.
func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			n++
		}
	}
	return n
}

func open(t *testing.T, url, node string, log Logger) *Client {
	t.Helper()
	c, err := Open(Options{URL: url, Node: node, Prefix: "test", TermsTTL: 7 * 24 * time.Hour, Timeout: 2 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !c.Ready() {
		t.Fatalf("node %s: the fleet at %s did not answer within ConnectWait", node, url)
	}
	return c
}

// claimTerm asks one term of a chunk that commits.
func claimTerm(c *Client, key string, seen, last time.Time, known bool) (time.Time, bool, bool) {
	cl := c.Begin()
	defer cl.Done()
	i := cl.Term("h1", []byte(key), seen, last, known, 7*24*time.Hour)
	cl.Wait()
	cl.Committed()
	return cl.Prior(i)
}

// claimAlert asks one alert id of a chunk that commits.
func claimAlert(c *Client, id string) Outcome {
	cl := c.Begin()
	defer cl.Done()
	i := cl.Alert(id)
	cl.Wait()
	cl.Committed()
	return cl.AlertOutcome(i)
}

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func TestTermClaims(t *testing.T) {
	srv := natstest.Start(t)
	a, b := open(t, srv.URL(), "node-a", nil), open(t, srv.URL(), "node-b", nil)

	// The first node to claim a term finds no earlier sighting.
	if p, has, ok := claimTerm(a, "x", t0, time.Time{}, false); !ok || has {
		t.Fatalf("first claim: prior %v has %v answered %v; want no prior, answered", p, has, ok)
	}
	// The second finds the first's sighting: not new for it.
	if p, has, ok := claimTerm(b, "x", t0.Add(time.Second), time.Time{}, false); !ok || !has || !p.Equal(t0) {
		t.Fatalf("second claim: prior %v has %v answered %v; want %v", p, has, ok, t0)
	}
	if got := b.C.TermConflicts.Load(); got != 1 {
		t.Fatalf("conflicts %d, want 1", got)
	}
	// A sighting older than the fleet's (out of order) writes nothing and
	// gets the later one.
	if p, has, ok := claimTerm(a, "x", t0.Add(-time.Hour), time.Time{}, false); !ok || !has || !p.Equal(t0.Add(time.Second)) {
		t.Fatalf("older claim: prior %v has %v; want %v", p, has, t0.Add(time.Second))
	}
	// Stale after the window: re-claimed by compare-and-set, with the last
	// sighting as prior (the caller finds it new for a 7-day window).
	late := t0.Add(8 * 24 * time.Hour)
	if p, has, ok := claimTerm(a, "x", late, t0, true); !ok || !has || !p.Equal(t0.Add(time.Second)) {
		t.Fatalf("stale claim: prior %v has %v; want %v", p, has, t0.Add(time.Second))
	}
	if p, _, _ := claimTerm(b, "x", late.Add(time.Minute), t0.Add(time.Second), true); !p.Equal(late) {
		t.Fatalf("after the re-claim: prior %v, want %v", p, late)
	}
	if a.C.TermClaims.Load() != 3 || b.C.TermClaims.Load() != 2 || a.C.Fallbacks.Load()+b.C.Fallbacks.Load() != 0 {
		t.Fatalf("claims a=%d b=%d fallbacks %d", a.C.TermClaims.Load(), b.C.TermClaims.Load(), a.C.Fallbacks.Load()+b.C.Fallbacks.Load())
	}
}

// A node killed between its claim and its commit finds its own claim when it
// retries the chunk: not a sighting (the state file never got it), so the
// term is still new to it, and the sighting before its claim still counts.
func TestOwnUncommittedClaim(t *testing.T) {
	srv := natstest.Start(t)
	a, b := open(t, srv.URL(), "node-a", nil), open(t, srv.URL(), "node-b", nil)
	if _, has, _ := claimTerm(a, "y", t0, time.Time{}, false); has {
		t.Fatal("first claim found a prior")
	}
	// The retry (ingested clock: a later time): no prior.
	if p, has, ok := claimTerm(a, "y", t0.Add(5*time.Second), time.Time{}, false); !ok || has {
		t.Fatalf("retried claim: prior %v has %v answered %v; want none", p, has, ok)
	}
	// The same retry with the event clock (the same time): no prior either.
	if p, has, _ := claimTerm(a, "y", t0.Add(5*time.Second), time.Time{}, false); has {
		t.Fatalf("retried claim at the same time: prior %v", p)
	}
	// Once committed (the state file has it), it is a sighting.
	if p, has, _ := claimTerm(a, "y", t0.Add(8*24*time.Hour), t0.Add(5*time.Second), true); !has || !p.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after the commit: prior %v has %v", p, has)
	}
	// Another node's sighting before an uncommitted claim survives it.
	claimTerm(b, "z", t0, time.Time{}, false)
	claimTerm(a, "z", t0.Add(time.Hour), time.Time{}, false) // a's claim: prior b's t0; a is killed
	if p, has, _ := claimTerm(a, "z", t0.Add(2*time.Hour), time.Time{}, false); !has || !p.Equal(t0) {
		t.Fatalf("retry over another node's sighting: prior %v has %v; want %v", p, has, t0)
	}
}

func TestAlertClaims(t *testing.T) {
	srv := natstest.Start(t)
	a, b := open(t, srv.URL(), "node-a", nil), open(t, srv.URL(), "node-b", nil)
	id := "3f0e0c5a-1111-4000-8000-000000000001"
	if o := claimAlert(a, id); o != Won {
		t.Fatalf("first claim: %v", o)
	}
	if o := claimAlert(b, id); o != Lost {
		t.Fatalf("second node: %v, want Lost", o)
	}
	if o := claimAlert(a, id); o != Won {
		t.Fatalf("the holder again (a retried chunk): %v, want Won", o)
	}
	if b.C.AlertConflicts.Load() != 1 || a.C.AlertConflicts.Load() != 0 {
		t.Fatalf("conflicts a=%d b=%d", a.C.AlertConflicts.Load(), b.C.AlertConflicts.Load())
	}
}

// A key holding what trailwatch never writes (another program, a damaged
// value) is judged locally once and replaced; a value larger than the
// bucket allows is refused by the server.
func TestUnreadableValue(t *testing.T) {
	srv := natstest.Start(t)
	a := open(t, srv.URL(), "node-a", nil)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "test_terms")
	if err != nil {
		t.Fatal(err)
	}
	key := TermKey("h1", []byte("w"))
	if _, err := kv.Put(ctx, key, []byte("1 not-a-time 0 someone")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key+"x", make([]byte, maxValue+1)); err == nil {
		t.Fatal("the bucket took a value larger than its limit")
	}
	if _, _, ok := claimTerm(a, "w", t0, time.Time{}, false); ok {
		t.Fatal("an unreadable value was taken as an answer")
	}
	if !a.Ready() {
		t.Fatal("an unreadable value made the fleet count as lost")
	}
	if _, has, ok := claimTerm(a, "w", t0.Add(time.Second), t0, true); !ok || !has {
		t.Fatalf("after the replacement: answered %v has %v", ok, has)
	}
	for _, bad := range []string{"", "1 1 0", "2 1 0 n", "1 -5 0 n", "1 1 -1 n", strings.Repeat("9", 200)} {
		if _, err := decode([]byte(bad)); err == nil {
			t.Errorf("decode(%q) took it", bad)
		}
	}
}

// The fleet stopped: questions fall back at once (no wait past the first
// deadline), the loss and the return are logged once each, and what was
// decided meanwhile is published when it is back.
func TestFleetLostAndBack(t *testing.T) {
	srv := natstest.Start(t)
	log := &logBuf{}
	a := open(t, srv.URL(), "node-a", log)
	b := open(t, srv.URL(), "node-b", nil)
	srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for a.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a.Ready() {
		t.Fatal("the client did not notice the server was gone")
	}
	start := time.Now()
	for i := range 50 {
		if _, _, ok := claimTerm(a, fmt.Sprintf("k%d", i), t0, time.Time{}, false); ok {
			t.Fatal("a claim was answered with the server stopped")
		}
	}
	if o := claimAlert(a, "alert-1"); o != Fallback {
		t.Fatalf("alert claim with the server stopped: %v", o)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("51 fallbacks took %s: the chunks waited on a lost fleet", took)
	}
	if a.C.Fallbacks.Load() != 51 || a.BacklogLen() != 51 {
		t.Fatalf("fallbacks %d backlog %d, want 51 and 51", a.C.Fallbacks.Load(), a.BacklogLen())
	}
	srv.Restart()
	deadline = time.Now().Add(30 * time.Second)
	for (a.C.Published.Load() < 51 || !a.Ready()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.BacklogLen() != 0 || !a.Ready() {
		t.Fatalf("backlog %d ready %v 30s after the server came back", a.BacklogLen(), a.Ready())
	}
	if n := log.count("fleet lost"); n != 1 {
		t.Fatalf("%d 'fleet lost' lines, want 1: %q", n, log.lines)
	}
	if n := log.count("fleet back"); n != 1 {
		t.Fatalf("%d 'fleet back' lines, want 1: %q", n, log.lines)
	}
	if a.C.Reconnects.Load() != 1 || a.C.Published.Load() != 51 {
		t.Fatalf("reconnects %d published %d", a.C.Reconnects.Load(), a.C.Published.Load())
	}
	// The other node now finds what a decided while the fleet was lost.
	for !b.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	if p, has, _ := claimTerm(b, "k7", t0.Add(time.Minute), time.Time{}, false); !has || !p.Equal(t0) {
		t.Fatalf("a sighting published after the return: prior %v has %v", p, has)
	}
	if o := claimAlert(b, "alert-1"); o != Lost {
		t.Fatalf("an alert id published after the return: %v, want Lost", o)
	}
}

// A full backlog drops and counts, and says so once.
func TestBacklogBound(t *testing.T) {
	log := &logBuf{}
	c, err := Open(Options{URL: "nats://127.0.0.1:1", Node: "n", Backlog: 10, ConnectWait: -1, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 25 {
		c.Publish([]Sighting{{Space: "h", Key: []byte{byte(i)}, Seen: t0}})
	}
	if c.BacklogLen() != 10 || c.C.BacklogDropped.Load() != 15 || log.count("backlog") != 1 {
		t.Fatalf("backlog %d dropped %d, %d log lines", c.BacklogLen(), c.C.BacklogDropped.Load(), log.count("backlog"))
	}
	// A later sighting of a queued term replaces it, taking no room.
	c.Publish([]Sighting{{Space: "h", Key: []byte{0}, Seen: t0.Add(time.Hour)}})
	if c.BacklogLen() != 10 || c.C.BacklogDropped.Load() != 15 {
		t.Fatalf("a later sighting took room: backlog %d dropped %d", c.BacklogLen(), c.C.BacklogDropped.Load())
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	os.WriteFile(pem, []byte("not a certificate"), 0o600)
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{URL: "host:4222"}, `shared_state "host:4222"`},
		{Options{URL: "http://h:4222"}, "the scheme must be nats:// or tls://"},
		{Options{URL: "nats://user:secret@h:4222/x"}, "a NATS URL has no path"},
		{Options{URL: "nats://h:4222,"}, "expected a NATS URL"},
		{Options{URL: "nats://h:4222", Prefix: "a.b"}, `shared_state_prefix "a.b"`},
		{Options{URL: "nats://h:4222", Creds: filepath.Join(dir, "none.creds")}, "shared_state_creds " + filepath.Join(dir, "none.creds")},
		{Options{URL: "nats://h:4222", CA: filepath.Join(dir, "none.pem")}, "shared_state_ca "},
		{Options{URL: "nats://h:4222", Cert: pem}, "shared_state_cert is set without shared_state_key"},
		{Options{URL: "nats://h:4222", Key: pem}, "shared_state_key is set without shared_state_cert"},
		{Options{URL: "nats://h:4222", Cert: pem, Key: pem}, "shared_state_cert " + pem},
	} {
		if c.o.Node == "" {
			c.o.Node = "n"
		}
		_, err := Open(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want an error with %q", c.o, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// Close ends every goroutine the client started (Fluent Bit's hot reload
// opens and closes instances in one process), whether the fleet answered
// or not.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	srv := natstest.Start(t)
	open(t, srv.URL(), "first", nil).Close() // the buckets made: the server's goroutines for them started
	before := clientGoroutines()
	for i := range 5 {
		url := srv.URL()
		if i%2 == 1 {
			url = "nats://127.0.0.1:1" // nothing listens: reconnecting in the background
		}
		c, err := Open(Options{URL: url, Node: "n", Prefix: "test", ConnectWait: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		claimTerm(c, "k", t0, time.Time{}, false)
		c.Publish([]Sighting{{Space: "h", Key: []byte("k2"), Seen: t0}})
		c.Close()
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for clientGoroutines() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := clientGoroutines(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d client goroutines after five Open/Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// clientGoroutines counts the goroutines of the NATS client and of this
// package (the embedded server's own are not the client's to end).
func clientGoroutines() int {
	buf := make([]byte, 1<<22)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "nats-io/nats.go") || strings.Contains(g, "trailwatch/fleet.(*Client)") {
			n++
		}
	}
	return n
}

// rawKV opens a bucket as another client would, to write what a peer (or
// anyone with access) could.
func rawKV(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestHostilePeerValues: what others write in the buckets decides nothing
// it should not. A value under an alert's id that is not a node's id made
// every node drop the alert as another's: it is taken over. A term's
// sighting in 2262 kept the term from ever being new again: it is replaced
// and the term judged locally.
func TestHostilePeerValues(t *testing.T) {
	srv := natstest.Start(t)
	a := open(t, srv.URL(), "node-a", nil)
	js := rawKV(t, srv.URL())
	ctx := context.Background()
	alerts, err := js.KeyValue(ctx, "test_alerts")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"", "garbage not a node", strings.Repeat("n", 65)} {
		id := fmt.Sprintf("8a6c1f2e-0000-4000-8000-00000000000%d", i)
		if _, err := alerts.Put(ctx, id, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got := claimAlert(a, id); got != Won {
			t.Errorf("an alert id holding %q: %v, want Won", v, got)
		}
	}
	if _, err := alerts.Put(ctx, "other", []byte("node-b")); err != nil {
		t.Fatal(err)
	}
	if got := claimAlert(a, "other"); got != Lost {
		t.Errorf("an alert id another node holds: %v, want Lost", got)
	}
	terms, err := js.KeyValue(ctx, "test_terms")
	if err != nil {
		t.Fatal(err)
	}
	key := TermKey("h1", []byte("w"))
	if _, err := terms.Put(ctx, key, fmt.Appendf(nil, "1 %d 0 evil", int64(1<<63-1))); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := claimTerm(a, "w", t0, time.Time{}, false); ok {
		t.Fatal("a sighting in 2262 was taken as the fleet's answer")
	}
	if prior, has, ok := claimTerm(a, "w", t0.Add(time.Minute), t0, true); !ok || !has || !prior.Equal(t0) {
		t.Fatalf("after the replacement: %v %v %v, want the node's own sighting", prior, has, ok)
	}
}

// TestBacklogRefusedWithBackoff: a fleet that answers reads but refuses
// writes (a bucket out of room) had the keeper publish its backlog again
// at once, thousands of times a second (a "fleet back" line each), and
// Close waited for ever. It backs off, and Close returns.
func TestBacklogRefusedWithBackoff(t *testing.T) {
	srv := natstest.Start(t)
	js := rawKV(t, srv.URL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test_alerts", TTL: AlertTTL, MaxValueSize: maxValue, History: 1, MaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := kv.Put(ctx, fmt.Sprint("filler", i), []byte("someone")); err != nil {
			break
		}
	}
	log := &logBuf{}
	c, err := Open(Options{URL: srv.URL(), Node: "node-a", Prefix: "test", TermsTTL: 7 * 24 * time.Hour, Timeout: 2 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	claimAlert(c, "8a6c1f2e-0000-4000-8000-000000000001") // refused: into the backlog
	time.Sleep(2 * time.Second)
	if n := log.count("fleet back"); n > 5 {
		t.Errorf("%d 'fleet back' lines in 2 s", n)
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

// TestTTLRaiseKeepsTheBucket: a bucket made beforehand (memory storage, a
// size, compression) whose TTL is shorter than the node's window: raising
// it sent the node's whole configuration (storage cannot change: the node
// never joined; the size and compression were reset). The TTL alone
// changes.
func TestTTLRaiseKeepsTheBucket(t *testing.T) {
	srv := natstest.Start(t)
	js := rawKV(t, srv.URL())
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "test_terms", TTL: time.Hour, MaxValueSize: maxValue, History: 1, Storage: jetstream.MemoryStorage, MaxBytes: 1 << 20, Compression: true}); err != nil {
		t.Fatal(err)
	}
	open(t, srv.URL(), "node-a", nil)
	s, err := js.Stream(ctx, "KV_test_terms")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	if cfg.MaxAge != 8*24*time.Hour || cfg.Storage != jetstream.MemoryStorage || cfg.MaxBytes != 1<<20 || cfg.Compression != jetstream.S2Compression {
		t.Errorf("after the raise: MaxAge %s, storage %v, MaxBytes %d, compression %v", cfg.MaxAge, cfg.Storage, cfg.MaxBytes, cfg.Compression)
	}
}

// TestReleaseTakesClaimsBack: a chunk whose commit failed takes its claims
// back: a key it made is gone, a key it moved on holds the sighting it
// replaced, and what the fleet did not answer is not published.
func TestReleaseTakesClaimsBack(t *testing.T) {
	srv := natstest.Start(t)
	a := open(t, srv.URL(), "node-a", nil)
	b := open(t, srv.URL(), "node-b", nil)
	claimTerm(b, "old", t0, time.Time{}, false)
	cl := a.Begin()
	cl.Term("h1", []byte("old"), t0.Add(time.Minute), time.Time{}, false, 7*24*time.Hour)
	cl.Term("h1", []byte("new"), t0.Add(time.Minute), time.Time{}, false, 7*24*time.Hour)
	cl.Alert("alert-1")
	cl.Wait()
	cl.Release()
	cl.Done()
	if p, has, ok := claimTerm(b, "old", t0.Add(2*time.Minute), t0, true); !ok || !has || !p.Equal(t0) {
		t.Errorf("the moved key after the release: prior %v has %v ok %v, want node b's own", p, has, ok)
	}
	if _, has, ok := claimTerm(b, "new", t0.Add(2*time.Minute), time.Time{}, false); !ok || has {
		t.Errorf("the made key after the release: has %v ok %v, want none", has, ok)
	}
	if o := claimAlert(b, "alert-1"); o != Won {
		t.Errorf("the alert id after the release: %v, want Won", o)
	}
	if n := a.BacklogLen(); n != 0 {
		t.Errorf("%d entries to publish after the release", n)
	}
}
