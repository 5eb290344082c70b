package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestHostileInputs: each broken or hostile input has a clear outcome (the
// line reported and skipped, the rest scanned), never a panic, a hang, or
// unbounded memory.
func TestHostileInputs(t *testing.T) {
	dir := t.TempDir()
	good, _ := json.Marshal(event(1, "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "arn:aws:iam::1:user/a", false))
	cases := []struct {
		name, line, stderr string
		malformed          bool
	}{
		{"deeply nested JSON", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "nest", true},
		{"invalid UTF-8", "{\"eventSource\":\"a\xff\",\"eventName\":\"b\"}", "UTF-8", true},
		{"truncated JSON", `{"eventSource":"bedrock.amazonaws.com","eventName":`, "malformed record", true},
		{"numbers where strings belong", `{"eventSource":5,"eventName":true}`, "skipped 1: not CloudTrail", false},
		{"eventTime that is not a time", `{"eventSource":"bedrock.amazonaws.com","eventName":"PutUseCaseForModelAccess","eventID":"t","eventTime":"yesterday"}`, "", false},
		{"duplicate keys", `{"eventSource":"x","eventSource":"bedrock.amazonaws.com","eventName":"PutUseCaseForModelAccess","eventID":"d"}`, "", false},
		{"huge string", `{"eventSource":"bedrock.amazonaws.com","eventName":"ListFoundationModels","userAgent":"` + strings.Repeat("a", 8<<20) + `"}`, "", false},
		{"huge array", `{"eventSource":"bedrock.amazonaws.com","eventName":"ListFoundationModels","resources":[` + strings.Repeat(`{"ARN":"x"},`, 200000) + `{}]}`, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".ndjson")
			os.WriteFile(p, []byte(tc.line+"\n"+string(good)+"\n"), 0o600)
			alerts, stderr, code := scan(t, p)
			if (code == 1) != tc.malformed {
				t.Errorf("exit %d (malformed=%v): %s", code, tc.malformed, stderr)
			}
			if len(alerts) < 1 {
				t.Errorf("the good record after it was not scanned: %s", stderr)
			}
			if tc.stderr != "" && !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tc.stderr, stderr)
			}
		})
	}
}

// TestGzipBombToScan: a small .gz that inflates to a 300 MB line is
// reported, with bounded memory, and the scan goes on to the next file.
func TestGzipBombToScan(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the gzip bomb in -short mode")
	}
	dir := t.TempDir()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := range zero {
		zero[i] = 'a'
	}
	for i := 0; i < 300; i++ {
		zw.Write(zero)
	}
	zw.Close()
	bomb := filepath.Join(dir, "bomb.json.gz")
	os.WriteFile(bomb, buf.Bytes(), 0o600)
	good, _ := json.Marshal(event(1, "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "arn:aws:iam::1:user/a", false))
	next := filepath.Join(dir, "next.ndjson")
	os.WriteFile(next, append(good, '\n'), 0o600)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	alerts, stderr, code := scan(t, bomb, next)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if code != 1 || !strings.Contains(stderr, "bomb.json.gz:1: malformed record: line longer than") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if len(alerts) != 1 {
		t.Errorf("the next file was not scanned: %d alerts", len(alerts))
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 256<<20 {
		t.Errorf("heap grew by %d MiB on a bomb", grew>>20)
	}
}

func TestHugeRuleFileRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.toml")
	f, _ := os.Create(p)
	f.Truncate(100 << 20) // a 100 MB file (sparse)
	f.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"rules", p}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "a rule file may be at most") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
