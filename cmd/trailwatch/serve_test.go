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

	"github.com/trailwatch/trailwatch/internal/fwdtest"
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

// TestServeSecretsFromFileOrEnvironment: http_token and forward_shared_key
// on the command line show in ps; they are read from a file or the
// environment as well, from one place only, and the command line earns a
// warning.
func TestServeSecretsFromFileOrEnvironment(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	str := func(s string) *string { return &s }
	for _, key := range []string{"http_token", "forward_shared_key"} {
		envName := "TRAILWATCH_" + strings.ToUpper(key)      // TRAILWATCH_FORWARD_SHARED_KEY
		flagName := "--" + strings.ReplaceAll(key, "_", "-") // --forward-shared-key
		env := func(v string) func(string) string {
			return func(k string) string {
				if k == envName {
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
			{"the command line, with a warning", "s3cret", "", nil, "", "s3cret", "", flagName + " on the command line shows in ps"},
			{"a file", "", tokenFile, nil, "", "s3cret", "", ""},
			{"a file named in the config", "", "", map[string]string{key + "_file": tokenFile}, "", "s3cret", "", ""},
			{"the environment", "", "", nil, "s3cret", "s3cret", "", ""},
			{"two places", "", tokenFile, nil, "other", "", key + " is given by " + key + "_file and $" + envName + ": give it in one place", ""},
			{"the command line and the environment", "s3cret", "", nil, "other", "", key + " is given by " + flagName + " and $" + envName + ": give it in one place", ""},
			{"an empty file", "", empty, nil, "", "", "the file is empty", ""},
			{"no file", "", filepath.Join(dir, "none"), nil, "", "", key + "_file: stat", ""},
			{"nowhere", "", "", nil, "", "", "", ""},
		}
		for _, tc := range cases {
			var stderr bytes.Buffer
			// Both keys' flags are there, as in cmdServe: only key's are set.
			flags := map[string]*string{"http_token": str(""), "http_token_file": str(""), "forward_shared_key": str(""), "forward_shared_key_file": str("")}
			flags[key], flags[key+"_file"] = str(tc.flag), str(tc.file)
			got, err := secret(key, flags, tc.config, env(tc.env), &stderr)
			if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) || !strings.Contains(stderr.String(), tc.out) || tc.out == "" && stderr.Len() > 0 {
				t.Errorf("%s, %s: %q %v %q", key, tc.name, got, err, stderr.String())
			}
		}
	}
	post := func(addr, token string) int {
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
	// The whole command, with the token and the shared key from files, then
	// from the environment: the right ones taken, wrong ones refused, none
	// of them ever in the log, and no warning.
	for _, from := range []string{"files", "the environment"} {
		addr, fwd := freePort(t), freePort(t)
		args := []string{"--rules", "../../conf/rules", "--db", filepath.Join(dir, "state-"+from+".db"), "--alert-stdout", "on", "--listen-http", addr, "--listen-forward", fwd, "--rules-watch", "0"}
		if from == "files" {
			keyFile := filepath.Join(dir, "shared-key")
			os.WriteFile(keyFile, []byte("k3y-from-file\n"), 0o600)
			args = append(args, "--http-token-file", tokenFile, "--forward-shared-key-file", keyFile)
		} else {
			t.Setenv("TRAILWATCH_HTTP_TOKEN", "s3cret")
			t.Setenv("TRAILWATCH_FORWARD_SHARED_KEY", "k3y-from-env")
		}
		key := map[string]string{"files": "k3y-from-file", "the environment": "k3y-from-env"}[from]
		stderr, done := startServe(t, addr, args...)
		if a, b := post(addr, ""), post(addr, "s3cret"); a != 401 || b != 200 {
			t.Errorf("%s: without the token %d, with it %d", from, a, b)
		}
		if !forwardHandshake(t, fwd, key) {
			t.Errorf("%s: the forward shared key was refused", from)
		}
		if forwardHandshake(t, fwd, "wrong") || forwardHandshake(t, fwd, "") {
			t.Errorf("%s: a wrong forward shared key was accepted", from)
		}
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		if code := <-done; code != 0 || strings.Contains(stderr.String(), "s3cret") || strings.Contains(stderr.String(), key) || strings.Contains(stderr.String(), "shows in ps") {
			t.Errorf("%s: exit %d: %s", from, code, stderr.String())
		}
	}
}

// forwardHandshake tells whether the forward input at addr accepts a
// client with key.
func forwardHandshake(t *testing.T, addr, key string) bool {
	ok, _ := fwdtest.PingPong(t, addr, "client-1", key)
	return ok
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
