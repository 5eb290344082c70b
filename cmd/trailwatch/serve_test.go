package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/store"
)

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeLifecycle runs `trailwatch serve` from a config file: records in
// over HTTP, SIGHUP reloads the rules, SIGTERM drains and closes the state
// file, and the exit status is 0.
func TestServeLifecycle(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	db, alerts := filepath.Join(dir, "state.db"), filepath.Join(dir, "alerts.ndjson")
	cfg := filepath.Join(dir, "trailwatch.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("rules = [%q]\ndb = %q\nalert_file = %q\nlisten_http = %q\nrules_watch = \"0\"\n", "../../conf/rules", db, alerts, addr)), 0o600)
	var stderr syncBuf
	done := make(chan int)
	go func() { done <- cmdServe([]string{"--config", cfg}, &bytes.Buffer{}, &stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	body := []byte(fmt.Sprintf(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutUseCaseForModelAccess","eventID":"s-1","eventTime":"2026-11-20T10:00:00Z"}` + "\n"))
	resp, err := http.Post("http://"+addr+"/", "application/x-ndjson", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM: %s", stderr.String())
	}
	if b, _ := os.ReadFile(alerts); bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("alerts: %q", b)
	}
	log := stderr.String()
	for _, want := range []string{"rules reloaded", "terminated: no new records", "stopped: 1 records, 1 alerts"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	st, err := store.Open(db, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("the state file was not closed: %v", err)
	}
	st.Close()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
