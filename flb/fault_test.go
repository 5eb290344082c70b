package flb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiskFullRetries fills the disk under the state file: the chunk comes
// back as Retry with nothing of it written, and the same chunk succeeds,
// exactly once, when space is back. It needs root to mount a small tmpfs.
func TestDiskFullRetries(t *testing.T) {
	dir := t.TempDir()
	fsDir := filepath.Join(dir, "small")
	os.Mkdir(fsDir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", fsDir).CombinedOutput(); err != nil {
		t.Skipf("skipping: this test mounts a 2 MiB tmpfs to fill it, which needs root: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", fsDir).Run()
	alerts := filepath.Join(dir, "alerts.ndjson")
	var logs bytes.Buffer
	in, err := Open("t", props(map[string]string{"rules": "../conf/rules", "db": filepath.Join(fsDir, "state.db"), "alert_file": alerts, "exit_timeout": "5s"}), &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	chunk := func(from, n int) []byte {
		var c []byte
		for i := from; i < from+n; i++ {
			c = append(c, v1(eventTime(time.Now()), body("PutResourcePolicy", fmt.Sprintf("arn:aws:iam::1:user/%s-%06d", strings.Repeat("x", 200), i), false))...)
		}
		return c
	}
	if s := Flush(in, "t", chunk(0, 10)); s != OK {
		t.Fatalf("first flush %v", s)
	}
	// Fill what is left of the file system.
	filler, err := os.Create(filepath.Join(fsDir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()
	big := chunk(1000, 300)
	if s := Flush(in, "t", big); s != Retry {
		t.Fatalf("flush on a full disk: %v, want Retry", s)
	}
	if !strings.Contains(logs.String(), "no space left") {
		t.Errorf("the log does not say the disk is full:\n%s", logs.String())
	}
	os.Remove(filepath.Join(fsDir, "filler"))
	if s := Flush(in, "t", big); s != OK {
		t.Fatalf("retry with space back: %v\n%s", s, logs.String())
	}
	in.Close()
	data, _ := os.ReadFile(alerts)
	// The seed rule's max_signals (100 in 5 minutes) caps the 310 new
	// identities: 100 alerts, the other 210 counted for the summary.
	if n := bytes.Count(data, []byte("\n")); n != 100 {
		t.Errorf("%d alerts, want 100 (max_signals): nothing lost or doubled by the failed attempt", n)
	}
	if uuids := bytes.Count(data, []byte(`"kibana.alert.uuid"`)); uuids != 100 {
		t.Errorf("%d alert ids", uuids)
	}
}
