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
	stderr, done := startServe(t, addr, "--config", cfg)
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

// startServe runs `trailwatch serve args...` until it listens on addr; done
// gets its exit status (stop it with SIGTERM to this process).
func startServe(t *testing.T, addr string, args ...string) (*syncBuf, chan int) {
	t.Helper()
	stderr := &syncBuf{}
	done := make(chan int, 1)
	go func() { done <- cmdServe(args, &bytes.Buffer{}, stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return stderr, done
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeSecretsFromFileOrEnvironment: http_token (and
// forward_shared_key) on the command line shows in ps; they are read from a
// file or the environment as well, from one place only, and the command
// line earns a warning.
func TestServeSecretsFromFileOrEnvironment(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	str := func(s string) *string { return &s }
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "TRAILWATCH_HTTP_TOKEN" {
				return v
			}
			return ""
		}
	}
	cases := []struct {
		name           string
		flag, file     string
		config         map[string]string
		env            string
		want, err, out string
	}{
		{"the command line, with a warning", "s3cret", "", nil, "", "s3cret", "", "--http-token on the command line shows in ps"},
		{"a file", "", tokenFile, nil, "", "s3cret", "", ""},
		{"a file named in the config", "", "", map[string]string{"http_token_file": tokenFile}, "", "s3cret", "", ""},
		{"the environment", "", "", nil, "s3cret", "s3cret", "", ""},
		{"two places", "", tokenFile, nil, "other", "", "http_token is given by http_token_file and $TRAILWATCH_HTTP_TOKEN: give it in one place", ""},
		{"an empty file", "", empty, nil, "", "", "the file is empty", ""},
		{"no file", "", filepath.Join(dir, "none"), nil, "", "", "http_token_file: stat", ""},
		{"nowhere", "", "", nil, "", "", "", ""},
	}
	for _, tc := range cases {
		var stderr bytes.Buffer
		flags := map[string]*string{"http_token": str(tc.flag), "http_token_file": str(tc.file)}
		got, err := secret("http_token", flags, tc.config, env(tc.env), &stderr)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) || !strings.Contains(stderr.String(), tc.out) || tc.out == "" && stderr.Len() > 0 {
			t.Errorf("%s: %q %v %q", tc.name, got, err, stderr.String())
		}
	}
	// The whole command, with the token from a file.
	addr := freePort(t)
	stderr, done := startServe(t, addr, "--rules", "../../conf/rules", "--db", filepath.Join(dir, "state.db"), "--alert-stdout", "on", "--listen-http", addr, "--http-token-file", tokenFile, "--rules-watch", "0")
	post := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(`{"eventSource":"s3.amazonaws.com","eventName":"ListBuckets"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b := post(""), post("s3cret"); a != 401 || b != 200 {
		t.Errorf("without the token %d, with it %d", a, b)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if code := <-done; code != 0 || strings.Contains(stderr.String(), "s3cret") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
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
