package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/internal/heappeak"
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
	t.Run("eventTime that is not a time, on the event clock", eventTimeNotATime)
}

// eventTimeNotATime: a record whose eventTime is no time gets the time it
// was seen as @timestamp (the pipeline's error document, event.kind:
// pipeline_error), and on the event clock (scan --time-source event) its
// clock falls back to the time seen: its new_terms term is last seen when
// it was read (not skipped as a date before 2000, nor dated by another
// record), while a record with a good eventTime beside it goes by that.
func eventTimeNotATime(t *testing.T) {
	dir := t.TempDir()
	const b = "bedrock.amazonaws.com"
	bad := event(1, b, "PutResourcePolicy", "arn:aws:iam::1:user/bad", false)
	bad["eventTime"] = "yesterday"
	good := event(2, b, "PutResourcePolicy", "arn:aws:iam::1:user/good", false) // 2026-11-20T10:00:00Z
	p := filepath.Join(dir, "times.ndjson")
	// The good one first: the bad one must not take the event clock it set.
	os.WriteFile(p, append(append(mustJSON(t, good), '\n'), append(mustJSON(t, bad), '\n')...), 0o600)
	db := filepath.Join(dir, "state.db")
	before := time.Now().UTC()
	found, stderr, code := scan(t, "--db", db, "--time-source", "event", p)
	after := time.Now().UTC()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// seen: a time within the scan (event.ingested keeps whole seconds).
	seen := func(what, text string) {
		t.Helper()
		ts, err := time.Parse(time.RFC3339Nano, text)
		if err != nil || ts.Before(before.Truncate(time.Second)) || ts.After(after) {
			t.Errorf("%s = %q (%v), want the time seen, between %s and %s", what, text, err, before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
		}
	}
	alerts := map[string]alertOut{}
	for _, a := range found {
		if len(a.NewTerms) == 1 {
			alerts[a.NewTerms[0]] = a
		}
	}
	a, okBad := alerts["arn:aws:iam::1:user/bad"]
	g, okGood := alerts["arn:aws:iam::1:user/good"]
	if !okBad || !okGood {
		t.Fatalf("want an alert for each record: %+v\n%s", found, stderr)
	}
	if a.OriginalKind != "pipeline_error" {
		t.Errorf("original event.kind %q, want pipeline_error", a.OriginalKind)
	}
	seen("@timestamp", a.Timestamp)
	seen("kibana.alert.original_time", a.OriginalTime)
	if g.OriginalTime != "2026-11-20T10:00:00.000Z" {
		t.Errorf("the good record's original_time %q, want its eventTime", g.OriginalTime)
	}
	// Its clock: the new_terms history keeps each term's sighting on the
	// record's clock; the bad record's is when it was read, the good
	// one's its eventTime.
	var out, errb bytes.Buffer
	if code := run([]string{"db", "export", "--db", db}, nil, &out, &errb); code != 0 {
		t.Fatalf("db export: exit %d: %s", code, errb.String())
	}
	lastSeen := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var term struct {
			Values   []string `json:"values"`
			LastSeen string   `json:"last_seen"`
		}
		if err := json.Unmarshal([]byte(l), &term); err != nil || len(term.Values) != 1 {
			t.Fatalf("export line %q: %v", l, err)
		}
		lastSeen[term.Values[0]] = term.LastSeen
	}
	seen("the term's last_seen", lastSeen["arn:aws:iam::1:user/bad"])
	if got := lastSeen["arn:aws:iam::1:user/good"]; got != "2026-11-20T10:00:00Z" {
		t.Errorf("the good record's term last_seen %q, want its eventTime", got)
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
	var alerts []alertOut
	var stderr string
	var code int
	peak := heappeak.During(func() { alerts, stderr, code = scan(t, bomb, next) })
	// The README's bound, 64 MB, named in the refusal with the line's place.
	if want := fmt.Sprintf("bomb.json.gz:1: malformed record: line longer than %d bytes", 64<<20); code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, want %q in: %s", code, want, stderr)
	}
	if len(alerts) != 1 {
		t.Errorf("the next file was not scanned: %d alerts", len(alerts))
	}
	if peak > heappeak.Limit {
		t.Errorf("heap in use peaked at %d MiB on a bomb", peak>>20)
	}
	t.Logf("heap peak %d MiB", peak>>20)
}

func TestHugeRuleFileRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.toml")
	f, _ := os.Create(p)
	f.Truncate(100 << 20) // a 100 MB file (sparse)
	f.Close()
	// Refused (64 MB at most) with its name, from a folder too.
	want := fmt.Sprintf("%s: file is %d bytes; a rule file may be at most %d", p, 100<<20, 64<<20)
	for _, arg := range []string{p, filepath.Dir(p)} {
		var out, errb bytes.Buffer
		if code := run([]string{"rules", arg}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), want) {
			t.Errorf("rules %s: exit %d, want %q in: %s", arg, code, want, errb.String())
		}
	}
}

// TestDeepTOMLRefused: TOML nested past conf.MaxTOMLNesting (4,000,000
// arrays in 8 MB overflowed the parser's stack, a fatal error no recover
// catches; 8,000 inline tables took seconds and gigabytes) is refused before
// it is parsed, with the file, line and column, by every command that reads
// TOML; serve's reload keeps the running rules.
func TestDeepTOMLRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const n = 4_000_000
	arrays := write("deep.toml", "x = "+strings.Repeat("[", n)+strings.Repeat("]", n))
	tables := write("tables.toml", "[rule]\nname = \"n\"\nx = "+strings.Repeat("{a = ", 8000)+"1"+strings.Repeat("}", 8000)+"\n")
	// Column of the 65th bracket: after `x = ` (4) and 64 brackets, or 64
	// times `{a = ` (5 bytes each).
	want := map[string]string{
		arrays: "deep.toml:1:69: TOML: arrays and inline tables nested deeper than 64 levels",
		tables: "tables.toml:3:325: TOML: arrays and inline tables nested deeper than 64 levels",
	}
	for p, msg := range want {
		start := time.Now()
		var out, errb bytes.Buffer
		if code := run([]string{"rules", p}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), msg) {
			t.Errorf("rules %s: exit %d: %s", filepath.Base(p), code, errb.String())
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("rules %s took %v", filepath.Base(p), took)
		}
		_, stderr, code := scan(t, "--rules", p, write("empty.ndjson", ""))
		if code != 2 || !strings.Contains(stderr, msg) {
			t.Errorf("scan --rules %s: exit %d: %s", filepath.Base(p), code, stderr)
		}
	}
	exc := write("exceptions.toml", "[[exception]]\nrule_id = \"*\"\nquery = 'a: b'\ncomment = "+strings.Repeat("[", 100)+"\n")
	if _, stderr, code := scan(t, "--exceptions", exc, write("empty.ndjson", "")); code != 2 || !strings.Contains(stderr, "exceptions.toml:4:75: TOML: arrays and inline tables nested deeper") {
		t.Errorf("scan --exceptions: exit %d: %s", code, stderr)
	}
	var errb bytes.Buffer
	if code := cmdServe([]string{"--config", arrays}, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), want[arrays]) {
		t.Errorf("serve --config: exit %d: %s", code, errb.String())
	}
	// A running serve (or plugin) reloads: the deep file is refused, the
	// running rules kept.
	rules := filepath.Join(dir, "rules")
	os.Mkdir(rules, 0o700)
	seed, _ := os.ReadFile("../../conf/rules/bedrock_foundation_model_access_granted.toml")
	os.WriteFile(filepath.Join(rules, "seed.toml"), seed, 0o600)
	props := map[string]string{"rules": rules, "db": filepath.Join(dir, "state.db"), "alert_file": filepath.Join(dir, "alerts.ndjson"), "rules_watch": "0"}
	in, err := instance.Open("test", func(k string) string { return props[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// What the instance alerts on, by rule_id, for records of these actions.
	alertsOn := func(id int, actions ...string) []string {
		t.Helper()
		var recs []engine.Record
		for i, a := range actions {
			js, _ := json.Marshal(event(id+i, "bedrock.amazonaws.com", a, fmt.Sprintf("arn:aws:iam::1:user/u%d", id+i), false))
			recs = append(recs, engine.Record{JSON: js})
		}
		res, err := in.Process(recs)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range res.Alerts {
			got = append(got, a.RuleID)
		}
		slices.Sort(got)
		return got
	}
	if got := alertsOn(1, "PutUseCaseForModelAccess", "PutResourcePolicy"); !slices.Equal(got, []string{accessRuleID}) {
		t.Fatalf("before the reload: alerts of %v", got)
	}
	// The new set: the seed rule gone, another valid rule beside the deep
	// file. Refused whole: the seed rule still runs, the other does not.
	os.Rename(arrays, filepath.Join(rules, "deep.toml"))
	os.Remove(filepath.Join(rules, "seed.toml"))
	policy, _ := os.ReadFile("../../conf/rules/bedrock_resource_policy_modified_or_deleted.toml")
	os.WriteFile(filepath.Join(rules, "policy.toml"), policy, 0o600)
	if err := in.Reload(); err == nil || !strings.Contains(err.Error(), "deep.toml:1:69") {
		t.Errorf("reload: %v", err)
	}
	if got := alertsOn(10, "PutUseCaseForModelAccess", "PutResourcePolicy"); !slices.Equal(got, []string{accessRuleID}) {
		t.Errorf("after the refused reload: alerts of %v, want the running rule's alone (%s)", got, accessRuleID)
	}
	// The deep file gone, the next reload takes the new set.
	os.Remove(filepath.Join(rules, "deep.toml"))
	if err := in.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := alertsOn(20, "PutUseCaseForModelAccess", "PutResourcePolicy"); !slices.Equal(got, []string{policyRuleID}) {
		t.Errorf("after a good reload: alerts of %v, want %s", got, policyRuleID)
	}
}

// TestScanHostileFilesBoundedMemory: a file that is one array of 600,000
// {} (32 MB of them ran out of memory at 8 GB) is read an element at a time;
// a record of 4 million values is malformed (the parser's bound) and the
// scan goes on; a CloudTrail log file object of 3 MB is read in groups of
// its events, every event found. The heap stays under heappeak.Limit.
func TestScanHostileFilesBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	good, _ := json.Marshal(event(1, "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "arn:aws:iam::1:user/a", false))
	array := filepath.Join(dir, "array.json")
	os.WriteFile(array, append(append([]byte("[\n"), bytes.Repeat([]byte("{},"), 600_000)...), append(good, ']')...), 0o600)
	values := filepath.Join(dir, "values.ndjson")
	os.WriteFile(values, append(append([]byte(`{"a":[`), bytes.Repeat([]byte("{},"), 4_000_000)...), append([]byte("{}]}\n"), good...)...), 0o600)
	var logFile bytes.Buffer
	logFile.WriteString(`{"Records":[`)
	for i := range 3000 {
		e, _ := json.Marshal(event(1000+i, "bedrock.amazonaws.com", "ListFoundationModels", fmt.Sprintf("arn:aws:iam::1:user/u%d", i), false))
		if i > 0 {
			logFile.WriteByte(',')
		}
		logFile.Write(e)
	}
	logFile.WriteString(`]}`)
	records := filepath.Join(dir, "records.json")
	os.WriteFile(records, logFile.Bytes(), 0o600)
	for _, tc := range []struct {
		file, summary, stderr string
		code                  int
	}{
		{array, "600001 records read, 1 CloudTrail event found, 1 alert", "", 0},
		{values, "2 records read, 1 CloudTrail event found, 1 alert", "values.ndjson:1: malformed record: json: offset 1572864: more than 524288 values", 1},
		{records, "3000 CloudTrail events found", "", 0},
	} {
		var stderr string
		var code int
		peak := heappeak.During(func() { _, stderr, code = scan(t, tc.file) })
		if code != tc.code || !strings.Contains(stderr, tc.summary) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: exit %d: %s", filepath.Base(tc.file), code, stderr)
		}
		if peak > heappeak.Limit {
			t.Errorf("%s: heap in use peaked at %d MiB", filepath.Base(tc.file), peak>>20)
		}
		t.Logf("%s: heap peak %d MiB", filepath.Base(tc.file), peak>>20)
	}
}

// TestFileNamesQuotedInMessages: a rule file found in a folder, or a
// scanned file, whose name holds a line break or a terminal escape was
// named as it is, forging lines; such a name is quoted (a plain one is not).
func TestFileNamesQuotedInMessages(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	os.Mkdir(rules, 0o700)
	evil := "evil\n[2026-11-23 16:21:26] [ info] forged.toml" // no slash: a file name
	os.WriteFile(filepath.Join(rules, evil), []byte("[rule\n"), 0o600)
	var out, errb bytes.Buffer
	run([]string{"rules", rules}, nil, &out, &errb)
	if want := strconv.Quote(filepath.Join(rules, evil)) + ":2:"; !strings.Contains(errb.String(), want) || strings.Contains(errb.String(), "\n[2026-11-23") {
		t.Errorf("rules: want %s in:\n%s", want, errb.String())
	}
	data := filepath.Join(dir, "cloud\x1b[31m.ndjson")
	os.WriteFile(data, []byte("{broken\n"), 0o600)
	if _, stderr, _ := scan(t, data); !strings.Contains(stderr, strconv.Quote(data)+":1: malformed record") || strings.Contains(stderr, "\x1b") {
		t.Errorf("scan: %q", stderr)
	}
}
