package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/store"
)

// TestBackfillThenScanAndDBCommands: backfill records history without
// alerting; a later scan with the same file knows those identities; db
// stats, export, import and prune work on the file and name it in errors.
func TestBackfillThenScanAndDBCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	const b = "bedrock.amazonaws.com"
	// Events from October: more than the rule's 7 days before today, so
	// prune drops them at the end.
	oct := func(e map[string]any) map[string]any { e["eventTime"] = "2026-10-01T00:00:00Z"; return e }
	old := writeNDJSON(t, []map[string]any{oct(event(1, b, "PutResourcePolicy", "arn:aws:iam::1:user/alice", false))})
	var out, errb bytes.Buffer
	if code := run([]string{"backfill", "--rules", "../../conf/rules", "--db", db, old}, nil, &out, &errb); code != 0 || out.Len() != 0 {
		t.Fatalf("backfill: exit %d, stdout %q: %s", code, out.String(), errb.String())
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	// backfill's clock is the event clock: another one asked for is
	// refused (it was passed over without a word); event is taken.
	errb.Reset()
	if code := run([]string{"backfill", "--time-source", "ingested", "--rules", "../../conf/rules", "--db", db, old}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), `--time-source "ingested"`) {
		t.Errorf("backfill --time-source ingested: exit %d: %s", code, errb.String())
	}
	if code := run([]string{"backfill", "--time-source", "event", "--rules", "../../conf/rules", "--db", db, old}, nil, &out, &errb); code != 0 {
		t.Errorf("backfill --time-source event: exit %d: %s", code, errb.String())
	}
	live := writeNDJSON(t, []map[string]any{
		oct(event(2, b, "PutResourcePolicy", "arn:aws:iam::1:user/alice", false)),
		oct(event(3, b, "PutResourcePolicy", "arn:aws:iam::1:user/bob", false)),
	})
	alerts, stderr, code := scan(t, "--db", db, "--time-source", "event", live)
	if code != 0 || len(alerts) != 1 || alerts[0].NewTerms[0] != "arn:aws:iam::1:user/bob" {
		t.Fatalf("scan after backfill: exit %d, %+v: %s", code, alerts, stderr)
	}
	out.Reset()
	if code := run([]string{"db", "stats", "--db", db}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b  2") {
		t.Errorf("stats: exit %d\n%s", code, out.String())
	}
	export := filepath.Join(dir, "terms.ndjson")
	if code := run([]string{"db", "export", "--db", db, "--out", export}, nil, &out, &errb); code != 0 {
		t.Fatalf("export: %s", errb.String())
	}
	other := filepath.Join(dir, "other.db")
	if code := run([]string{"db", "import", "--db", other, "--in", export}, nil, &out, &errb); code != 0 {
		t.Fatalf("import: %s", errb.String())
	}
	out.Reset()
	run([]string{"db", "stats", "--db", other}, nil, &out, &errb)
	if !strings.Contains(out.String(), "2 terms in 1 history") {
		t.Errorf("imported stats:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"db", "prune", "--db", other, "--rules", "../../conf/rules"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "pruned 2 terms") {
		t.Errorf("prune (events from October, more than 7 days before now): exit %d %s %s", code, out.String(), errb.String())
	}
	errb.Reset()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("x"), 8192), 0o600)
	if code := run([]string{"db", "stats", "--db", junk}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), junk) || !strings.Contains(errb.String(), "move it aside") {
		t.Errorf("junk file: exit %d: %s", code, errb.String())
	}
}

// TestDamagedStateFile: a state file cut short (bbolt faulted with SIGBUS:
// scan, serve and db export died) or with a zeroed page (an assertion panic
// at open) is refused by scan, backfill, serve and db stats with a message
// naming it; db export salvages the terms it can read, which db import
// takes to a new file.
func TestDamagedStateFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	var events []map[string]any
	for i := range 600 {
		e := event(i, "bedrock.amazonaws.com", "PutResourcePolicy", fmt.Sprintf("arn:aws:iam::123456789012:user/identity-%04d", i), false)
		e["eventTime"] = "2026-11-20T10:00:00Z"
		events = append(events, e)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"backfill", "--rules", "../../conf/rules", "--db", db, writeNDJSON(t, events)}, nil, &out, &errb); code != 0 {
		t.Fatalf("backfill: %s", errb.String())
	}
	good, _ := os.ReadFile(db)
	zeroed := bytes.Clone(good)
	clear(zeroed[4*4096 : 5*4096])
	for name, b := range map[string][]byte{"cut at 12 KB": good[:12<<10], "cut at 20 KB": good[:20<<10], "page 4 zeroed": zeroed} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "damaged.db")
			os.WriteFile(p, b, 0o600)
			for _, args := range [][]string{{"scan", "--rules", "../../conf/rules", "--db", p, "-"}, {"backfill", "--rules", "../../conf/rules", "--db", p, "-"}} {
				var out, errb bytes.Buffer
				if code := run(args, strings.NewReader(""), &out, &errb); code != 2 || !strings.Contains(errb.String(), p) || !strings.Contains(errb.String(), "damaged") {
					t.Errorf("%s: exit %d: %s", args[0], code, errb.String())
				}
			}
			props := map[string]string{"rules": "../../conf/rules", "db": p, "alert_stdout": "on", "rules_watch": "0"}
			if in, err := instance.Open("serve", func(k string) string { return props[k] }, io.Discard); err == nil {
				in.Close()
				t.Error("serve opened the damaged file")
			} else if !strings.Contains(err.Error(), "damaged") {
				t.Errorf("serve: %v", err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"db", "stats", "--db", p}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "move it aside") {
				t.Errorf("db stats: exit %d: %s", code, errb.String())
			}
			saved := filepath.Join(t.TempDir(), "saved.ndjson")
			errb.Reset()
			code := run([]string{"db", "export", "--db", p, "--out", saved}, nil, &out, &errb)
			lines, _ := os.ReadFile(saved)
			n := bytes.Count(lines, []byte("\n"))
			if code != 1 || !strings.Contains(errb.String(), fmt.Sprintf("salvaged %d terms", n)) {
				t.Errorf("db export: exit %d, %d lines: %s", code, n, errb.String())
			}
			if name == "page 4 zeroed" && (n == 0 || n >= 600) {
				t.Errorf("db export of a file with one page zeroed salvaged %d of 600 terms: %s", n, errb.String())
			}
			fresh := filepath.Join(t.TempDir(), "fresh.db")
			errb.Reset()
			if code := run([]string{"db", "import", "--db", fresh, "--in", saved}, nil, &out, &errb); code != 0 || !strings.Contains(errb.String(), fmt.Sprintf("imported %d terms", n)) {
				t.Errorf("db import of the salvage: exit %d: %s", code, errb.String())
			}
			t.Logf("%d of 600 terms salvaged: %s", n, strings.TrimSpace(errb.String()))
		})
	}
}

// TestEventTimesOutOfRange: a backfill of one record dated 2200 moved the
// event clock there, and db prune then dropped every term (a known
// identity alerted again); 9999 wrapped to 1815. Such a record is counted
// and skipped, the clock stays, prune keeps the history; an import line
// dated 9999 is refused with its line. (A file whose clock an earlier build
// moved decades ahead: store TestClockNeverFarAhead.)
func TestEventTimesOutOfRange(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	at := func(e map[string]any, ts string) map[string]any { e["eventTime"] = ts; return e }
	const b = "bedrock.amazonaws.com"
	hourAgo := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	old := writeNDJSON(t, []map[string]any{
		at(event(1, b, "PutResourcePolicy", "arn:aws:iam::1:user/alice", false), hourAgo),
		at(event(2, b, "PutResourcePolicy", "arn:aws:iam::1:user/mallory", false), "2200-01-01T00:00:00Z"),
		at(event(3, b, "PutResourcePolicy", "arn:aws:iam::1:user/mallory", false), "9999-01-01T00:00:00Z"),
		at(event(4, b, "PutResourcePolicy", "arn:aws:iam::1:user/mallory", false), "1970-01-01T00:00:00Z"),
	})
	var out, errb bytes.Buffer
	if code := run([]string{"backfill", "--rules", "../../conf/rules", "--db", db, old}, nil, &out, &errb); code != 0 || !strings.Contains(errb.String(), "skipped 3: eventTime before 2000 or more than 24h ahead") {
		t.Fatalf("backfill: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"db", "prune", "--db", db, "--rules", "../../conf/rules"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "pruned 0 terms") {
		t.Errorf("prune: exit %d: %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	run([]string{"db", "stats", "--db", db}, nil, &out, &errb)
	if !strings.Contains(out.String(), "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b  1 ") || !strings.Contains(out.String(), hourAgo) {
		t.Errorf("stats after prune:\n%s", out.String())
	}
	again := writeNDJSON(t, []map[string]any{at(event(5, b, "PutResourcePolicy", "arn:aws:iam::1:user/alice", false), time.Now().UTC().Format(time.RFC3339))})
	if alerts, stderr, code := scan(t, "--db", db, "--time-source", "event", again); code != 0 || len(alerts) != 0 {
		t.Errorf("a known identity alerted again: %d alerts, exit %d: %s", len(alerts), code, stderr)
	}
	imp := filepath.Join(dir, "import.ndjson")
	os.WriteFile(imp, []byte(`{"rule_id":"r","values":["a"],"last_seen":"2026-11-20T10:00:00Z"}`+"\n"+`{"rule_id":"r","values":["b"],"last_seen":"9999-01-01T00:00:00Z"}`+"\n"), 0o600)
	errb.Reset()
	if code := run([]string{"db", "import", "--db", db, "--in", imp}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "import.ndjson:2: last_seen 9999-01-01T00:00:00Z is outside") {
		t.Errorf("import of 9999: exit %d: %s", code, errb.String())
	}
}

// TestExportOutIsNotTheStateFile: `db export --out` naming the state file
// (a typo, a link to it) truncated it before reading: the whole history
// lost, then the export hung on the emptied file. A folder given as --db
// was called a damaged file, and export "salvaged" it.
func TestExportOutIsNotTheStateFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.db")
	s, err := store.Open(p, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(store.Batch{Terms: []store.Term{{History: "h", Values: []string{"u"}, Seen: time.Now().Add(-time.Hour), Window: time.Hour * 24}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	for _, out := range []string{p, link} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"db", "export", "--db", p, "--out", out}, nil, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "is the state file itself") {
			t.Errorf("--out %s: exit %d: %s", out, code, stderr.String())
		}
	}
	if after, _ := os.Stat(p); after.Size() != before.Size() {
		t.Errorf("the state file went from %d to %d bytes", before.Size(), after.Size())
	}
	for _, sub := range []string{"stats", "export"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"db", sub, "--db", dir}, nil, &stdout, &stderr)
		if msg := stderr.String(); code != 1 || !strings.Contains(msg, "a directory, not a state file") || strings.Contains(msg, "salvag") {
			t.Errorf("db %s on a folder: exit %d: %s", sub, code, msg)
		}
	}
}
