package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSFilesBounded: tls_cert and tls_key were read whole, unbounded:
// /dev/zero filled memory until the process died. They are now read to
// 1 MB, and anything larger, or not a file, is refused with its name.
func TestTLSFilesBounded(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"/dev/zero", filepath.Join(dir, "missing.pem")} {
		var out, errb bytes.Buffer
		code := run([]string{"serve", "--rules", "../../conf/rules", "--db", filepath.Join(dir, "s.db"), "--alert-stdout", "on",
			"--listen-http", "127.0.0.1:0", "--tls-cert", f, "--tls-key", f}, strings.NewReader(""), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "tls_cert/tls_key: "+f) {
			t.Errorf("%s: exit %d, want 2 with the file named: %.300s", f, code, errb.String())
		}
	}
}
