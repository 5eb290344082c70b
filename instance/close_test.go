package instance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/store"
)

// TestCloseWaitsForBatches: Close closed the state file and unmapped the
// GeoIP database while batches were still being evaluated (serve's
// shutdown gives up on slow requests after 10 s and closes anyway): a
// lookup then read unmapped memory and the process died (SIGSEGV). Close
// now waits for the batches in flight, and a batch given after it is
// turned away with ErrClosed.
func TestCloseWaitsForBatches(t *testing.T) {
	dir := t.TempDir()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 28, IPVersion: 6, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := net.ParseCIDR("198.51.100.0/24")
	if err := tree.Insert(n, mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64500), "autonomous_system_organization": mmdbtype.String("X")}); err != nil {
		t.Fatal(err)
	}
	asn := filepath.Join(dir, "asn.mmdb")
	f, err := os.Create(asn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rules := filepath.Join(dir, "r.toml")
	os.WriteFile(rules, []byte("[rule]\nname = \"asn\"\nrule_id = \"r1\"\ntype = \"query\"\nseverity = \"low\"\nrisk_score = 1\nquery = 'source.as.number: 1'\n"), 0o600)
	in, _, _ := open(t, map[string]string{"rules": rules, "asn_db": asn})
	recs := make([]engine.Record, 500)
	for i := range recs {
		node, err := doc.ParseJSON(fmt.Appendf(nil, `{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"%d","sourceIPAddress":"198.51.100.%d"}`, i, i%250))
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = engine.Record{Node: node}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				if _, err := in.Process(recs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("a batch during Close: %v, want ErrClosed", err)
		}
	}
	if _, err := in.Process(recs[:1]); !errors.Is(err, ErrClosed) {
		t.Errorf("a batch after Close: %v, want ErrClosed", err)
	}
}

// TestMetricsListenBounded: metrics_listen's server had a header timeout
// only, so a client that began a second request and sent nothing more
// held its connection (and goroutine) for ever, and any number of them
// could. It now keeps serve's bounds: headers within 10 s, an idle
// connection let go after 10 s, 64 connections at once (past them a
// newcomer waits for one to close).
func TestMetricsListenBounded(t *testing.T) {
	in, _, _ := open(t, map[string]string{"rules": writeRule(t, t.TempDir(), "X", 100, ""), "metrics_listen": "127.0.0.1:0"})
	c, err := net.Dial("tcp", in.metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.Write([]byte("GET")) // the next request's first bytes, then nothing

	// 63 more clients that send as little: with c, the 64 connections
	// held at once. A 65th's request waits until one of them closes.
	var held []net.Conn
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	for range 63 {
		h, err := net.Dial("tcp", in.metricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
		h.Write([]byte("GET"))
	}
	last, err := net.Dial("tcp", in.metricsAddr) // the kernel queues it
	if err != nil {
		t.Fatal(err)
	}
	defer last.Close()
	last.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	lr := bufio.NewReader(last)
	last.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := lr.ReadByte(); err == nil {
		t.Fatal("a 65th connection was served while 64 were held")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("a 65th connection: %v, want it to wait for a slot", err)
	}
	held[0].Close()
	last.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(lr, nil)
	if err != nil {
		t.Fatalf("the 65th connection once one of the 64 closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the 65th connection's answer: %s", resp.Status)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the server answered a request that never finished")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open 20 s after a request that never finished (headers are due within 10 s, an idle connection is let go after 10 s)")
	}
}

// TestAlertFileNoReaderExitEnds: an alert_file that is a FIFO no one reads
// (or stdout piped to a stalled reader) blocked a sink's write, and Close
// waited for it for ever: Fluent Bit's exit or reload hung, whatever
// exit_timeout said. Close now returns after exit_timeout and 2 s more
// (the sinks closed under their goroutines), and the alerts not taken stay
// in the outbox for the next start.
func TestAlertFileNoReaderExitEnds(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "alerts.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	const exitTimeout, closeWait = time.Second, 2 * time.Second
	db := filepath.Join(dir, "s.db")
	p := map[string]string{"rules": writeRule(t, dir, "PutUseCaseForModelAccess", 100000, ""), "db": db,
		"alert_file": fifo, "rules_watch": "0", "exit_timeout": exitTimeout.String(), "no_sync": "on"}
	in, err := Open("t", func(k string) string { return p[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var recs []engine.Record
	for i := range 300 {
		recs = append(recs, record(t, i, "PutUseCaseForModelAccess", "arn:x", "u"))
	}
	if _, err := in.Process(recs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the sink fills the pipe and blocks
	done := make(chan struct{})
	start := time.Now()
	go func() { in.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Close hangs on a sink blocked in a write")
	}
	// Slack for what Close does once the sinks are closed (the state file
	// closed, under -race on a busy machine), short of another closeWait.
	if took := time.Since(start); took > exitTimeout+closeWait+closeWait*9/10 {
		t.Errorf("Close took %v, want exit_timeout (%v) and %v more", took, exitTimeout, closeWait)
	}
	made := in.Alerts.Load()
	delivered, _ := in.SinkCounts()
	var taken int64
	for _, n := range delivered {
		taken += n
	}
	if made != int64(len(recs)) || taken >= made {
		t.Fatalf("%d alerts made, %d reported taken by a sink no one reads: want %d made, fewer taken", made, taken, len(recs))
	}
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := st.OutboxLen(); int64(n) != made-taken {
		t.Errorf("%d alerts in the outbox after Close, want the %d not taken by the sink", n, made-taken)
	}
}

// TestAlertFileIsTheStateFile: alert_file naming the state file was
// taken: the sink reported alerts delivered, and the state's pages
// overwrote them.
func TestAlertFileIsTheStateFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	link := filepath.Join(dir, "alerts.ndjson")
	if err := os.Symlink(db, link); err != nil {
		t.Fatal(err)
	}
	for _, af := range []string{db, link} {
		p := map[string]string{"rules": writeRule(t, dir, "X", 100, ""), "db": db, "alert_file": af, "rules_watch": "0"}
		in, err := Open("t", func(k string) string { return p[k] }, io.Discard)
		if err == nil {
			in.Close()
			t.Errorf("alert_file %s = db taken", af)
		} else if !strings.Contains(err.Error(), "property alert_file: "+af+" is the state file (property db)") {
			t.Errorf("err = %v", err)
		}
	}
}
