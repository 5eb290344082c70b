package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
