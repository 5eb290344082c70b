package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logFile is a CloudTrail log file as CloudTrail writes it: one line, no
// newline at its end.
func logFile(t *testing.T, evs ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"Records": evs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var w bytes.Buffer
	zw := gzip.NewWriter(&w)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return w.Bytes()
}

func putFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func modelAccess(i int) map[string]any {
	return event(i, "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "arn:aws:iam::1:user/a", false)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestLogFilesAsS3HoldsThem: CloudTrail log files as they come out of S3
// and the shell. Each ends without a newline, so `zcat *.json.gz >
// all.json` and `cat *.json.gz > all.json.gz` (a gzip of many members)
// put them on one line: every event was lost as one malformed line. A
// gzip padded with zeros (which gzip -t accepts) lost the whole file; one
// followed by other bytes lost what came before them too. A log file
// longer than a line may be (64 MB) was refused whole.
func TestLogFilesAsS3HoldsThem(t *testing.T) {
	a, b, c := logFile(t, modelAccess(1)), logFile(t, modelAccess(2), modelAccess(3)), logFile(t, modelAccess(4))
	cases := []struct {
		name   string
		data   []byte
		alerts int
		code   int
		err    string
	}{
		{"cat.json", concat(a, b, c), 4, 0, ""},
		{"cat.json.gz", concat(gzipBytes(t, a), gzipBytes(t, b), gzipBytes(t, c)), 4, 0, ""},
		{"events-then-cat.ndjson", concat(mustJSON(t, modelAccess(5)), []byte("\n"), a, b, []byte("\n"), mustJSON(t, modelAccess(6)), []byte("\n")), 5, 0, ""},
		{"padded.json.gz", concat(gzipBytes(t, b), make([]byte, 512)), 2, 0, ""},
		{"trailing.json.gz", concat(gzipBytes(t, b), []byte("garbage")), 2, 1, "data after the last member that is not gzip"},
		{"ndjson-trailing.json.gz", concat(gzipBytes(t, concat(mustJSON(t, modelAccess(7)), []byte("\n"), mustJSON(t, modelAccess(8)))), []byte("garbage")), 2, 1, "data after the last member"},
	}
	for _, c := range cases {
		alerts, stderr, code := scan(t, putFile(t, c.name, c.data))
		if len(alerts) != c.alerts || code != c.code || !strings.Contains(stderr, c.err) {
			t.Errorf("%s: %d alerts, exit %d, want %d, %d (%q):\n%s", c.name, len(alerts), code, c.alerts, c.code, c.err, stderr)
		}
	}

	// A log file longer than a line may be, on one line (maxLine lowered
	// here, 64 MB in use).
	defer func(old int) { maxLine = old }(maxLine)
	maxLine = 1 << 20
	var evs []map[string]any
	for i := range 300 {
		e := modelAccess(100 + i)
		e["requestParameters"] = map[string]any{"pad": strings.Repeat("x", 4<<10)}
		evs = append(evs, e)
	}
	alerts, stderr, code := scan(t, putFile(t, "large.json.gz", gzipBytes(t, logFile(t, evs...))))
	if len(alerts) != 300 || code != 0 {
		t.Errorf("a log file past the line bound: %d alerts, exit %d, want 300, 0:\n%s", len(alerts), code, stderr)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestScanInterrupted: SIGINT during a scan without --db left its
// temporary state file behind, and said nothing of where it stopped. The
// batch in flight is committed (with --db, the state file holds every
// record the summary says was read), the summary written with the line
// reached, the file removed, and the exit status is the shell's for the
// signal (130 for SIGINT, 143 for SIGTERM).
func TestScanInterrupted(t *testing.T) {
	if file := os.Getenv("TRAILWATCH_SCAN_CHILD"); file != "" {
		args := []string{"scan", "--rules", "../../conf/rules"}
		if db := os.Getenv("TRAILWATCH_SCAN_CHILD_DB"); db != "" {
			args = append(args, "--db", db)
		}
		os.Exit(run(append(args, file), os.Stdin, io.Discard, os.Stderr))
	}
	// Each record a new term of the new_terms rule (a user of its own):
	// the state file keeps one term per record committed.
	line := string(mustJSON(t, event(0, "bedrock.amazonaws.com", "PutResourcePolicy", "arn:aws:iam::1:user/USER", false)))
	lines := func(from, to int) []byte {
		var b bytes.Buffer
		for i := from; i < to; i++ {
			b.WriteString(strings.Replace(strings.Replace(line, "USER", strconv.Itoa(i), 1), "000000000000", fmt.Sprintf("%012d", i), 1))
			b.WriteByte('\n')
		}
		return b.Bytes()
	}
	const records = 60_000
	file := putFile(t, "big.ndjson", lines(0, records))
	summary := regexp.MustCompile(`(?m)^([0-9]+) records? read, `)
	for _, tc := range []struct {
		name string
		sig  os.Signal
		db   bool // reading a pipe into a state file
		code int
	}{
		{"SIGINT", os.Interrupt, false, 130},
		{"SIGTERM", syscall.SIGTERM, false, 143},
		{"SIGINT with --db, mid-batch", os.Interrupt, true, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestScanInterrupted$")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			db, name := filepath.Join(t.TempDir(), "state.db"), file
			var stdin io.WriteCloser
			if tc.db {
				// Fewer records than a batch, the pipe left open: the
				// signal comes while the batch is being read.
				name = "(stdin)"
				cmd.Env = append(cmd.Env, "TRAILWATCH_SCAN_CHILD=-", "TRAILWATCH_SCAN_CHILD_DB="+db)
				var err error
				if stdin, err = cmd.StdinPipe(); err != nil {
					t.Fatal(err)
				}
				defer stdin.Close()
			} else {
				cmd.Env = append(cmd.Env, "TRAILWATCH_SCAN_CHILD="+file)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if tc.db {
				stdin.Write(lines(0, 1000))
			}
			// Signalled once it reads: its state file made, a moment after.
			made := tmp
			if tc.db {
				made = filepath.Dir(db)
			}
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if made, _ := os.ReadDir(made); len(made) > 0 {
					break
				}
			}
			time.Sleep(500 * time.Millisecond)
			cmd.Process.Signal(tc.sig)
			if tc.db {
				// The rest of the batch never comes: the input ends
				// within the grace.
				time.Sleep(200 * time.Millisecond)
				stdin.Close()
			}
			cmd.Wait()
			want := fmt.Sprintf("interrupted (%v) in %s near line", tc.sig, name)
			if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(stderr.String(), want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, tc.code, want, stderr.String())
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left behind: %s", left[0].Name())
			}
			m := summary.FindStringSubmatch(stderr.String())
			if m == nil {
				t.Fatalf("no summary:\n%s", stderr.String())
			}
			read, _ := strconv.Atoi(m[1])
			if read == 0 || read == records || tc.db && read != 1000 {
				t.Fatalf("%d records read: the signal did not come during the scan, or the batch in flight was lost:\n%s", read, stderr.String())
			}
			// The line reached is the last one read: each line a record,
			// none read and left out of the commit.
			if want := fmt.Sprintf("interrupted (%v) in %s near line %d: what was read before is committed", tc.sig, name, read); !strings.Contains(stderr.String(), want) {
				t.Errorf("want %q:\n%s", want, stderr.String())
			}
			if !tc.db {
				return
			}
			// What the summary says was read is committed: a term for
			// each record, nothing waiting in the outbox.
			var out, errb bytes.Buffer
			if code := run([]string{"db", "stats", "--db", db}, nil, &out, &errb); code != 0 {
				t.Fatalf("db stats: exit %d: %s", code, errb.String())
			}
			want = fmt.Sprintf("%d terms in 1 history, 0 alerts in the outbox", read)
			if !strings.Contains(out.String(), want) {
				t.Errorf("the summary says %d records read; want %q in the state file's stats:\n%s", read, want, out.String())
			}
		})
	}
}

// TestScanInterruptedWhileReadingStdin: with SIGINT caught by scan to stop
// between batches, a scan waiting on a pipe whose writer stays open never
// reached the next batch and ignored Ctrl-C for good. A signal unanswered
// for 3 s (stopGrace) ends it as the signal would: killed by SIGINT, the
// shell's 130.
func TestScanInterruptedWhileReadingStdin(t *testing.T) {
	if os.Getenv("TRAILWATCH_SIGINT_CHILD") != "" {
		os.Exit(run([]string{"scan", "--rules", "../../conf/rules", "-"}, os.Stdin, io.Discard, os.Stderr))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScanInterruptedWhileReadingStdin$")
	cmd.Env = append(os.Environ(), "TRAILWATCH_SIGINT_CHILD=1", "TMPDIR="+t.TempDir())
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("{\"a\":1}\n"))
	time.Sleep(time.Second)
	cmd.Process.Signal(os.Interrupt)
	signalled := time.Now()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	// The grace the README states (3 s), and room for a loaded machine.
	const grace = 3 * time.Second
	const bound = grace + 4*time.Second
	select {
	case <-done:
	case <-time.After(bound):
		cmd.Process.Kill()
		<-done
		t.Fatalf("SIGINT ignored: scan still waits on stdin %v later:\n%s", bound, stderr.String())
	}
	took := time.Since(signalled)
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("ended with %v, want killed by SIGINT (the shell's 130), as the signal would end it:\n%s", cmd.ProcessState, stderr.String())
	}
	if took < grace-500*time.Millisecond {
		t.Errorf("ended %v after the signal: the read was not given its grace (%v)", took, grace)
	}
	t.Logf("ended %v after SIGINT", took)
}

// TestCutLineReadAsALine: a file of log files one a line (the first line
// {"Records":...}) was read as one document, so a line cut short held
// everything after it until the end of the input (a pipe that stays open:
// nothing more came out). Such a file is read line by line; a cut line is
// that line's loss alone.
func TestCutLineReadAsALine(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		line := `{"Records":[{"eventSource":"s3.amazonaws.com","eventName":"GetObject","p":"` + strings.Repeat("x", 1000) + `"}]}` + "\n"
		pw.Write([]byte(line))
		pw.Write([]byte(`{"Records":[{"eventSource":"s3.amazonaws.com","eventName":"GetObject","n":1` + "\n"))
		for range 4000 {
			pw.Write([]byte(line))
		}
	}()
	s, err := openSource("-", pr)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		recs, _ := s.next(100, 1<<30)
		got <- len(recs)
	}()
	select {
	case n := <-got:
		if n < 100 {
			t.Errorf("%d records, want 100", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no record after the cut line until the input ends")
	}
}

// TestTruncatedGzipReported: a log file's gzip cut in its trailer passed
// with exit 0: the decompressor's "unexpected EOF" was taken for the end
// of the input.
func TestTruncatedGzipReported(t *testing.T) {
	b := gzipBytes(t, logFile(t, modelAccess(1)))
	_, stderr, code := scan(t, putFile(t, "cut.json.gz", b[:len(b)-4]))
	if code != 1 || !strings.Contains(stderr, "unexpected EOF") {
		t.Errorf("exit %d, want 1 with the cut named:\n%s", code, stderr)
	}
}
