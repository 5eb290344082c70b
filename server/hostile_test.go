package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/internal/fwdtest"
	"github.com/trailwatch/trailwatch/internal/heappeak"
	"github.com/trailwatch/trailwatch/internal/netlimit"
)

// gzRepeat is gzip of head, then unit n times, then tail: gzip members one
// after another inflate to their texts one after another, so the units are
// compressed once, a million at a time (fast, under the race detector too).
func gzRepeat(head []byte, unit []byte, n int, tail []byte) []byte {
	const per = 1 << 20
	out := gzBest(head)
	block := gzBest(bytes.Repeat(unit, per))
	for ; n >= per; n -= per {
		out = append(out, block...)
	}
	out = append(out, gzBest(bytes.Repeat(unit, n))...)
	return append(out, gzBest(tail)...)
}

// gzBest compresses parts, one after another, at the best level.
func gzBest(parts ...[]byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	for _, p := range parts {
		zw.Write(p)
	}
	zw.Close()
	return buf.Bytes()
}

// TestArrayBodyKeepsGoodRecords: an array body with one element nested 600
// deep among 18 good records was answered 400 {"records":0}, the good ones
// lost (Vector does not retry a 400). Its good records are processed, as an
// NDJSON body's are, and the bad one is named; so with an array cut short.
func TestArrayBodyKeepsGoodRecords(t *testing.T) {
	in, alerts := newInstance(t, nil)
	h := NewHandler(in, HTTPOptions{})
	var els []string
	for i := range 18 {
		els = append(els, event(100+i, grant))
		if i == 8 {
			els = append(els, strings.Repeat(`{"a":`, 600)+"1"+strings.Repeat("}", 600))
		}
	}
	rr, a := post(t, h, []byte("[\n"+strings.Join(els, ",\n")+"\n]"))
	if rr.Code != 400 || a.Records != 18 || a.Malformed != 1 || a.Alerts != 18 || !strings.Contains(a.Error, "element 9 (line 11): json: offset 2560: nesting deeper than 512") {
		t.Errorf("array with a deep element: %d %+v", rr.Code, a)
	}
	cut := "[" + event(200, grant) + "," + event(201, grant) + `,{"eventSource":"bedr`
	rr, a = post(t, h, gz([]byte(cut)), "Content-Encoding", "gzip")
	if rr.Code != 400 || a.Records != 2 || a.Malformed != 1 || a.Alerts != 2 || !strings.Contains(a.Error, "element 2 (line 1)") {
		t.Errorf("array cut short: %d %+v", rr.Code, a)
	}
	if n := len(alertIDs(t, alerts, 20)); n != 20 {
		t.Errorf("%d alerts delivered, want 20", n)
	}
}

// TestHostileBodiesBoundedMemory: bodies built to blow up memory keep the
// heap under heappeak.Limit, two at a time. 32 KB of gzip inflating to 11
// million {} in an array (it took 3 GB, 5.9 GB for two) is refused past
// max_records before anything is parsed; an array of max_records {} is read
// a piece at a time; a record of 4 million values (in an array, or one
// NDJSON line) stops at the parser's bound on values. A Firehose delivery
// of millions of records (65 KB of gzip took 1.3 GB) is refused past
// max_records as it is decoded; values left open, a line each, are counted
// in time that grows with the body (256 KB of them took 11 s of CPU).
func TestHostileBodiesBoundedMemory(t *testing.T) {
	const many = 11_000_000
	empty := []byte("{},")
	arr := gzRepeat([]byte("["), empty, many, []byte("{}]"))
	// Four million values: 400 MB of tree without the bound.
	deepArr := gzRepeat([]byte(`[{"a":[`), empty, 4_000_000, []byte(`{}]}]`))
	line := gzRepeat([]byte(event(1, grant)+"\n"+`{"a":[`), empty, 4_000_000, []byte("{}]}\n"+event(2, grant)+"\n"))
	most := gzRepeat([]byte("["), empty, DefaultMaxRecords-1, []byte(event(3, grant)+"]"))
	fhData := gzRepeat([]byte(`{"records":[`), []byte(`{"data":"!"},`), 2_400_000, []byte(`{"data":"!"}]}`))
	fhEmpty := gzRepeat([]byte(`{"records":[`), empty, many, []byte(`{}]}`))
	open := gzRepeat([]byte("[]\n"), []byte("{\n"), 4_000_000, nil)
	in, _ := newInstance(t, nil)
	h := NewHandler(in, HTTPOptions{})
	cases := []struct {
		name     string
		h        http.Handler
		body     []byte
		firehose bool
		status   int
		records  int
		msg      string
	}{
		{"11 million {} in an array", h, arr, false, 413, 0, "more than max_records (100000) records"},
		{"one element of 4 million values", h, deepArr, false, 400, 0, "element 0 (line 1): json: offset 1572864: more than 524288 values"},
		{"an NDJSON line of 4 million values", h, line, false, 400, 2, "line 2: json: offset 1572864: more than 524288 values"},
		{"max_records records, all but one {}", h, most, false, 200, DefaultMaxRecords, ""},
		{"a Firehose delivery of 2.4 million records", h, fhData, true, 413, 0, "more than max_records (100000) records"},
		{"a Firehose delivery of 11 million {}", h, fhEmpty, true, 413, 0, "more than max_records (100000) records"},
		{"4 million values left open, a line each", h, open, false, 413, 0, "more than max_records (100000) records"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			peak := heappeak.During(func() {
				var wg sync.WaitGroup
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(tc.body))
						req.Header.Set("Content-Encoding", "gzip")
						if tc.firehose {
							req.Header.Set("X-Amz-Firehose-Request-Id", "r")
						}
						rr := httptest.NewRecorder()
						tc.h.ServeHTTP(rr, req)
						var a answer
						if err := json.Unmarshal(rr.Body.Bytes(), &a); err != nil || rr.Code != tc.status || a.Records != tc.records || !strings.Contains(a.Error, tc.msg) {
							t.Errorf("%d %+v %v", rr.Code, a, err)
						}
					}()
				}
				wg.Wait()
			})
			if peak > heappeak.Limit {
				t.Errorf("heap in use peaked at %d MiB", peak>>20)
			}
			if took := time.Since(start); took > time.Minute {
				t.Errorf("took %v", took)
			}
			t.Logf("%d KB of gzip, two at once: heap peak %d MiB, %v", len(tc.body)>>10, peak>>20, time.Since(start))
		})
	}
}

// forwardConn dials a forward listener.
func forwardConn(t *testing.T, addr string) (net.Conn, *msgp.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, msgp.NewReader(c)
}

// packedMessage is a PackedForward message of entries, gzipped when gz.
func packedMessage(tag string, entries []byte, chunk string, gzipped bool) []byte {
	m := msgp.AppendArrayHeader(nil, 3)
	m = msgp.AppendString(m, tag)
	if gzipped {
		entries = gzBest(entries)
	}
	m = msgp.AppendBytes(m, entries)
	return append(m, option(chunk, gzipped)...)
}

// TestForwardNeverTakenIsAcked: a message that can never be taken (entries
// that do not inflate, a tag that is not a string, more entries than
// max_records) was never acknowledged, so its sender sent it again for
// ever. It is acknowledged and counted as malformed, and the connection
// goes on.
func TestForwardNeverTakenIsAcked(t *testing.T) {
	in, alerts := newInstance(t, nil)
	c, r := forwardConn(t, startForward(t, in, ForwardOptions{MaxRecords: 3}))
	badGzip := packedMessage("cloudtrail", []byte("not gzip"), "c1", false)
	badGzip = append(badGzip[:len(badGzip)-len(option("c1", false))], option("c1", true)...)
	intTag := msgp.AppendArrayHeader(nil, 4)
	intTag = msgp.AppendInt(intTag, 42)
	intTag = msgp.AppendInt64(intTag, 1)
	intTag = append(intTag, recordMap(event(1, grant))...)
	intTag = append(intTag, option("c2", false)...)
	var four []byte
	for i := range 4 {
		four = append(four, entry(event(10+i, grant))...)
	}
	tooMany := packedMessage("cloudtrail", four, "c3", true)
	good := packedMessage("cloudtrail", entry(event(20, grant)), "c4", false)
	// Compressed otherwise than gzip (the protocol's only compression).
	zstd := packedMessage("cloudtrail", entry(event(21, grant)), "c5", false)
	zstd = zstd[:len(zstd)-len(option("c5", false))]
	zstd = msgp.AppendMapHeader(zstd, 2)
	zstd = msgp.AppendString(msgp.AppendString(zstd, "chunk"), "c5")
	zstd = msgp.AppendString(msgp.AppendString(zstd, "compressed"), "zstd")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, m := range []struct {
		msg   []byte
		chunk string
	}{{badGzip, "c1"}, {intTag, "c2"}, {tooMany, "c3"}, {good, "c4"}, {zstd, "c5"}} {
		c.Write(m.msg)
		if got := readAck(t, r); got != m.chunk {
			t.Errorf("ack %q, want %q", got, m.chunk)
		}
	}
	if n := in.Malformed.Load(); n != 4 {
		t.Errorf("%d malformed counted, want 4", n)
	}
	if n := len(alertIDs(t, alerts, 1)); n != 1 {
		t.Errorf("%d alerts, want 1 (of the good message only)", n)
	}
}

// TestForwardHostileMessagesBoundedMemory: 32 KB of CompressedPackedForward
// holding ten million empty entries (33 million took 7.3 GB) is refused past
// max_records; 100,000 (max_records) are read a piece at a time; ten
// connections that each send 29 MB of a 30 MB message and stall
// (they held 580 MB for five minutes) are held to the byte bound and closed
// at MessageTimeout. The heap stays under heappeak.Limit throughout.
func TestForwardHostileMessagesBoundedMemory(t *testing.T) {
	in, _ := newInstance(t, nil)
	lim := NewLimits(DefaultMaxHeld(DefaultMaxBody), DefaultWorkers)
	lim.Wait = time.Second
	addr := startForward(t, in, ForwardOptions{MessageTimeout: 2 * time.Second, Limits: lim})
	empty := msgp.AppendMapHeader(msgp.AppendInt(msgp.AppendArrayHeader(nil, 2), 0), 0)
	bomb := msgp.AppendArrayHeader(nil, 3)
	bomb = msgp.AppendString(bomb, "cloudtrail")
	bomb = msgp.AppendBytes(bomb, gzRepeat(nil, empty, 10_000_000, nil))
	bomb = append(bomb, option("bomb", true)...)
	most := packedMessage("cloudtrail", bytes.Repeat(empty, DefaultMaxRecords), "most", true)
	for _, tc := range []struct {
		name, addr string
		msg        []byte
	}{{"ten million empty entries", addr, bomb}, {"max_records empty entries", addr, most}} {
		t.Run(tc.name, func(t *testing.T) {
			peak := heappeak.During(func() {
				var wg sync.WaitGroup
				for range 2 {
					c, r := forwardConn(t, tc.addr)
					wg.Add(1)
					go func() {
						defer wg.Done()
						c.SetDeadline(time.Now().Add(60 * time.Second))
						c.Write(tc.msg)
						m := map[string]any{}
						if err := r.ReadMapStrIntf(m); err != nil {
							t.Errorf("no ack: %v", err)
						}
					}()
				}
				wg.Wait()
			})
			if peak > heappeak.Limit {
				t.Errorf("heap in use peaked at %d MiB", peak>>20)
			}
			t.Logf("%d KB of gzip, two at once: heap peak %d MiB", len(tc.msg)>>10, peak>>20)
		})
	}
	t.Run("ten stalled messages", func(t *testing.T) {
		head := msgp.AppendArrayHeader(nil, 3)
		head = msgp.AppendString(head, "cloudtrail")
		head = append(head, 0xc6, 0x01, 0xc9, 0xc3, 0x80) // bin32 of 30,000,000 bytes
		part := make([]byte, 29_000_000)
		start := time.Now()
		var closed sync.WaitGroup
		peak := heappeak.During(func() {
			for range 10 {
				c, _ := forwardConn(t, addr)
				closed.Add(1)
				go func() {
					defer closed.Done()
					c.SetDeadline(time.Now().Add(30 * time.Second))
					c.Write(head)
					c.Write(part)
					// The server closes the connection: the read ends.
					io.Copy(io.Discard, c)
				}()
			}
			closed.Wait()
		})
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("the stalled connections were closed after %v", took)
		}
		if peak > heappeak.Limit {
			t.Errorf("heap in use peaked at %d MiB", peak>>20)
		}
		t.Logf("ten stalled 29 MB messages: heap peak %d MiB, all closed in %v", peak>>20, time.Since(start).Round(time.Millisecond))
		// The bound is free again: a message is taken.
		c, r := forwardConn(t, addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(packedMessage("cloudtrail", entry(event(1, grant)), "after", false))
		if got := readAck(t, r); got != "after" {
			t.Errorf("ack %q after the stalled messages", got)
		}
	})
}

// startHTTP serves h as serve does (NewHTTPServer behind LimitListener),
// with timeouts t and at most maxConns connections, on loopback.
func startHTTP(t *testing.T, h http.Handler, to netlimit.Timeouts, maxConns int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := netlimit.NewHTTPServer(h, to)
	go srv.Serve(netlimit.LimitListener(l, maxConns))
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// slowSender opens a connection that sends a request's start and then one
// byte every 100 ms: of its headers, or of a body of 1 MB. It returns a
// channel that gets the time the server closed the connection.
func slowSender(t *testing.T, addr string, inBody bool) <-chan time.Time {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	start := "POST / HTTP/1.1\r\nHost: x\r\n"
	if inBody {
		start += "Content-Length: 1000000\r\n\r\n"
	}
	c.Write([]byte(start))
	closed := make(chan time.Time, 1)
	go func() {
		io.Copy(io.Discard, c) // ends when the server closes
		closed <- time.Now()
	}()
	go func() {
		for {
			time.Sleep(100 * time.Millisecond)
			b := "X-Slow: 1\r\n"
			if inBody {
				b = "a"
			}
			if _, err := c.Write([]byte(b)); err != nil {
				return
			}
		}
	}()
	return closed
}

// TestSlowSendersAreCut: 220 connections that send their headers or their
// bodies a byte at a time (with no body or idle timeout they were held for
// ever, starving /healthz and POST) are closed at the header and read
// timeouts, while /healthz and a POST are answered.
func TestSlowSendersAreCut(t *testing.T) {
	in, _ := newInstance(t, nil)
	to := netlimit.Timeouts{ReadHeader: time.Second, Read: 2 * time.Second, Write: 10 * time.Second, Idle: time.Second}
	addr := startHTTP(t, NewHandler(in, HTTPOptions{}), to, netlimit.DefaultMaxConnections)
	start := time.Now()
	var closed []<-chan time.Time
	for i := range 220 {
		closed = append(closed, slowSender(t, addr, i%2 == 1))
	}
	time.Sleep(200 * time.Millisecond)
	client := &http.Client{Timeout: 5 * time.Second}
	if resp, err := client.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz among 220 slow senders: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := client.Post("http://"+addr+"/", "application/x-ndjson", strings.NewReader(event(1, grant))); err != nil || resp.StatusCode != 200 {
		t.Errorf("POST among 220 slow senders: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	var last time.Duration
	for i, ch := range closed {
		select {
		case at := <-ch:
			last = max(last, at.Sub(start))
		case <-time.After(time.Until(start.Add(to.Read + 5*time.Second))):
			t.Fatalf("slow sender %d (in its body: %v) still connected after %v", i, i%2 == 1, time.Since(start))
		}
	}
	t.Logf("220 slow senders, all closed within %v", last.Round(time.Millisecond))
}

// TestConnectionCap: past max_connections, a new connection waits until one
// is closed (here, a stalled one at the header timeout) before it is served.
func TestConnectionCap(t *testing.T) {
	in, _ := newInstance(t, nil)
	to := netlimit.Timeouts{ReadHeader: time.Second, Read: 2 * time.Second, Write: 10 * time.Second, Idle: time.Second}
	addr := startHTTP(t, NewHandler(in, HTTPOptions{}), to, 20)
	start := time.Now()
	for range 20 {
		slowSender(t, addr, false)
	}
	time.Sleep(200 * time.Millisecond)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz past the cap: %v %v", resp, err)
	}
	resp.Body.Close()
	if took := time.Since(start); took < to.ReadHeader*8/10 {
		t.Errorf("/healthz answered after %v, before any of the 20 stalled connections could be cut: the cap did not hold", took)
	}
}

// TestForwardRefusalTellsNothing: a refused handshake's PONG carried the
// server's digest of the real key (a way to test guesses of it offline);
// like Fluentd's, it now says why and nothing else. An accepted one still
// proves the server knows the key.
func TestForwardRefusalTellsNothing(t *testing.T) {
	in, _ := newInstance(t, nil)
	addr := startForward(t, in, ForwardOptions{SharedKey: "s3cret"})
	if ok, pong := fwdtest.PingPong(t, addr, "client-1", "guess"); ok || pong[0] != "shared_key mismatch" || pong[1] != "" || pong[2] != "" {
		t.Errorf("refusal: %v %q", ok, pong)
	}
	if ok, pong := fwdtest.PingPong(t, addr, "client-1", "s3cret"); !ok || pong[0] != "" || len(pong[2]) != 128 {
		t.Errorf("acceptance: %v %q", ok, pong)
	}
}

// TestPeerStringsQuotedInLogs: a forward tag and a PING host name chosen to
// forge log lines (a line break, a timestamp, a terminal escape) were
// written as they came; they are quoted.
func TestPeerStringsQuotedInLogs(t *testing.T) {
	var logs syncBuffer
	in, _ := newInstanceLog(t, nil, &logs)
	forged := "x\n[2026/11/23 16:21:26] [error] [output:trailwatch:serve] forged\x1b[2J"
	c, r := forwardConn(t, startForward(t, in, ForwardOptions{}))
	bad := msgp.AppendArrayHeader(nil, 3)
	bad = msgp.AppendString(bad, forged)
	bad = msgp.AppendArrayHeader(bad, 1)
	bad = msgp.AppendInt(bad, 7) // an entry that is not [time, record]
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(append(bad, option("c1", false)...))
	readAck(t, r)
	fwdtest.PingPong(t, startForward(t, in, ForwardOptions{SharedKey: "k"}), forged, "wrong")
	time.Sleep(50 * time.Millisecond)
	got := logs.String()
	quoted := `"x\n[2026/11/23 16:21:26] [error] [output:trailwatch:serve] forged\x1b[2J"`
	if strings.Contains(got, "\n[2026/11/23 16:21:26] [error] [output:trailwatch:serve] forged") || strings.Contains(got, "\x1b") || strings.Count(got, quoted) != 2 {
		t.Errorf("log:\n%s", got)
	}
}

// TestSinkURLSecretsKeptOut: an alert_http URL's credentials, path and
// query token appeared in log lines and as a label of /metrics, which the
// HTTP token did not protect. Logs and labels show scheme://host/…, and
// /metrics wants the token when one is set.
func TestSinkURLSecretsKeptOut(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	var logs syncBuffer
	secretURL := "http://alice:p4ssw0rd@" + down + "/hooks/s3cr3tpath?token=t0k3n"
	in, _ := newInstanceLog(t, map[string]string{"alert_file": "", "alert_http": secretURL, "exit_timeout": "0s"}, &logs)
	h := NewHandler(in, HTTPOptions{Token: "metrics-token"})
	post(t, h, []byte(event(1, grant)), "Authorization", "Bearer metrics-token")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "retrying with backoff") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	rr := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer metrics-token")
	h.ServeHTTP(rr, req)
	label := `sink="http:http://` + down + `/…"`
	if !strings.Contains(logs.String(), "sink http:http://"+down+"/…: ") || !strings.Contains(rr.Body.String(), label) {
		t.Errorf("the redacted URL is not where expected:\nlog:\n%s\nmetrics:\n%s", logs.String(), rr.Body.String())
	}
	for _, secret := range []string{"p4ssw0rd", "alice", "s3cr3tpath", "t0k3n"} {
		if strings.Contains(logs.String(), secret) || strings.Contains(rr.Body.String(), secret) {
			t.Errorf("%q appears in the logs or the metrics", secret)
		}
	}
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rr.Code != 401 {
		t.Errorf("/metrics without the token: %d", rr.Code)
	}
}
