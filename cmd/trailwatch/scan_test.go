package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	policyRuleID = "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b"
	accessRuleID = "aed4b9d5-f853-40cf-8489-4fdcff03e272"
)

func event(i int, source, action, arn string, failed bool) map[string]any {
	e := map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAX", "arn": arn, "accountId": "111122223333", "userName": "u"},
		"eventTime":    "2026-11-20T10:00:00Z", "eventSource": source, "eventName": action,
		"awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.1", "userAgent": "aws-cli/2",
		"requestParameters": map[string]any{"resourceArn": "arn:aws:bedrock:us-east-1:111122223333:agent/A1"},
		"eventID":           fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "recipientAccountId": "111122223333",
	}
	if failed {
		e["errorCode"] = "AccessDeniedException"
		e["errorMessage"] = "not authorized"
	}
	return e
}

func writeNDJSON(t *testing.T, events []map[string]any) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range events {
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type alertOut struct {
	RuleID   string   `json:"kibana.alert.rule.rule_id"`
	UUID     string   `json:"kibana.alert.uuid"`
	NewTerms []string `json:"kibana.alert.new_terms"`
	// The alert's times, and the kind of the event it was made from.
	Timestamp    string `json:"@timestamp"`
	OriginalTime string `json:"kibana.alert.original_time"`
	OriginalKind string `json:"kibana.alert.original_event.kind"`
	Event        struct {
		Action string `json:"action"`
		Kind   string `json:"kind"`
	} `json:"event"`
}

func scan(t *testing.T, args ...string) ([]alertOut, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"scan", "--rules", "../../conf/rules"}, args...), strings.NewReader(""), &out, &errb)
	var alerts []alertOut
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var a alertOut
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("alert is not JSON: %v: %s", err, l)
		}
		alerts = append(alerts, a)
	}
	return alerts, errb.String(), code
}

// TestSeedRulesFireThroughScan: the Bedrock resource-policy rule (new_terms)
// and the model-access rule (query) fire on their actions and only on
// successful calls to bedrock.amazonaws.com.
func TestSeedRulesFireThroughScan(t *testing.T) {
	const b = "bedrock.amazonaws.com"
	alice, bob := "arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/bob"
	events := []map[string]any{
		event(1, b, "PutResourcePolicy", alice, false),                                        // new term: alert
		event(2, b, "DeleteResourcePolicy", bob, false),                                       // new term: alert
		event(3, b, "DeleteResourcePolicy", alice, false),                                     // alice already seen: no alert
		event(4, b, "PutFoundationModelEntitlement", alice, false),                            // alert
		event(5, b, "PutUseCaseForModelAccess", alice, false),                                 // alert
		event(6, b, "CreateFoundationModelAgreement", alice, false),                           // alert
		event(7, b, "PutResourcePolicy", "arn:aws:iam::111122223333:user/carol", true),        // failed: none
		event(8, b, "PutFoundationModelEntitlement", alice, true),                             // failed: none
		event(9, "iam.amazonaws.com", "PutResourcePolicy", "arn:aws:iam::1:user/dave", false), // other provider
		event(10, "iam.amazonaws.com", "CreateFoundationModelAgreement", alice, false),        // other provider
		event(11, b, "InvokeModel", alice, false),                                             // other action
		event(12, b, "GetResourcePolicy", "arn:aws:iam::1:user/erin", false),                  // other action
	}
	alerts, stderr, code := scan(t, writeNDJSON(t, events))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []string
	for _, a := range alerts {
		got = append(got, a.RuleID[:8]+":"+a.Event.Action)
		if a.Event.Kind != "signal" || a.UUID == "" {
			t.Errorf("alert shape: %+v", a)
		}
		if a.RuleID == policyRuleID && len(a.NewTerms) != 1 {
			t.Errorf("new_terms alert without its term: %+v", a)
		}
	}
	want := []string{
		"de0e9ed8:PutResourcePolicy", "de0e9ed8:DeleteResourcePolicy",
		"aed4b9d5:PutFoundationModelEntitlement", "aed4b9d5:PutUseCaseForModelAccess", "aed4b9d5:CreateFoundationModelAgreement",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("alerts\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(stderr, "12 records read") {
		t.Errorf("summary: %s", stderr)
	}
}

func TestScanReportsMalformedAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	good, _ := json.Marshal(event(1, "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "arn:aws:iam::1:user/a", false))
	p := filepath.Join(dir, "mixed.ndjson")
	os.WriteFile(p, []byte("{\"truncated\": \n"+string(good)+"\n{\"message\":\"not cloudtrail\"}\n"), 0o600)
	alerts, stderr, code := scan(t, p)
	if code != 1 {
		t.Errorf("exit %d, want 1 (something was malformed)", code)
	}
	if len(alerts) != 1 {
		t.Errorf("%d alerts, want 1 from the good line", len(alerts))
	}
	if !strings.Contains(stderr, "mixed.ndjson:1: malformed record") || !strings.Contains(stderr, "skipped 1: not CloudTrail") {
		t.Errorf("stderr: %s", stderr)
	}
}

func TestScanInputForms(t *testing.T) {
	dir := t.TempDir()
	ev := event(1, "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "arn:aws:iam::1:user/a", false)
	recordsFile, _ := json.MarshalIndent(map[string]any{"Records": []any{ev, event(2, "s3.amazonaws.com", "GetObject", "x", false)}}, "", "  ")
	pretty := filepath.Join(dir, "cloudtrail.json")
	os.WriteFile(pretty, recordsFile, 0o600)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(recordsFile)
	zw.Close()
	gzPath := filepath.Join(dir, "cloudtrail.json.gz")
	os.WriteFile(gzPath, gz.Bytes(), 0o600)
	array, _ := json.Marshal([]any{ev})
	arrPath := filepath.Join(dir, "array.json")
	os.WriteFile(arrPath, array, 0o600)
	for _, p := range []string{pretty, gzPath, arrPath} {
		alerts, stderr, code := scan(t, p)
		if code != 0 || len(alerts) != 1 {
			t.Errorf("%s: exit %d, %d alerts: %s", filepath.Base(p), code, len(alerts), stderr)
		}
	}
	// Alert ids are deterministic: the same record scanned twice gives the same id.
	a1, _, _ := scan(t, pretty)
	a2, _, _ := scan(t, gzPath)
	if a1[0].UUID != a2[0].UUID {
		t.Errorf("alert uuid differs between runs: %s %s", a1[0].UUID, a2[0].UUID)
	}
	// stdin
	var out, errb bytes.Buffer
	line, _ := json.Marshal(ev)
	code := run([]string{"scan", "--rules", "../../conf/rules", "-"}, bytes.NewReader(line), &out, &errb)
	if code != 0 || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("stdin: exit %d, out %q, err %s", code, out.String(), errb.String())
	}
}

func TestScanUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"scan"},
		{"scan", "--rules", "../../conf/rules"},
		{"scan", "--rules", "../../conf/rules", "--time-source", "wall", "x"},
		{"scan", "--rules", "../../testdata/rules/bad", "x"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	// A usage error names what the line lacks before the usage.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"scan"}, []string{"trailwatch scan: no --rules given\n", "trailwatch scan: no file given"}},
		{[]string{"scan", "--rules", "../../conf/rules"}, []string{"trailwatch scan: no file given ('-' reads stdin)\nUsage: trailwatch scan"}},
		{[]string{"backfill", "--rules", "../../conf/rules", "x"}, []string{"trailwatch backfill: no --db given"}},
		{[]string{"backfill", "--db", "x.db"}, []string{"trailwatch backfill: no --rules given\n", "trailwatch backfill: no file given"}},
		{[]string{"rules"}, []string{"trailwatch rules: no rule file or folder given\n"}},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: %q not in:\n%s", tc.args, w, errb.String())
			}
		}
		if strings.Contains(errb.String(), "no --db") != strings.Contains(strings.Join(tc.want, ""), "no --db") {
			t.Errorf("%v: a lack named that is not one:\n%s", tc.args, errb.String())
		}
	}
	var out, errb bytes.Buffer
	code := run([]string{"scan", "--rules", "../../conf/rules", "/nonexistent/file.json"}, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "/nonexistent/file.json") {
		t.Errorf("missing file: exit %d, %s", code, errb.String())
	}
}

func TestRulesCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "../../conf/rules"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "fields: as Elastic's AWS integration (aws 8.8.0) indexes CloudTrail") {
		t.Errorf("rules names no aws package version:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "2 rules: 2 runnable, 0 skipped") || !strings.Contains(out.String(), policyRuleID) {
		t.Errorf("output:\n%s", out.String())
	}
	if strings.Contains(out.String(), "note:") {
		t.Errorf("notes on the bundled rules:\n%s", out.String())
	}
	// A test Elasticsearch refuses (a suffix wildcard on a flattened key)
	// runs, and the listing says where it is and why.
	dir := t.TempDir()
	src := "[rule]\nname = \"k\"\nrule_id = \"k-1\"\ntype = \"query\"\nlanguage = \"kuery\"\nquery = \"\"\"\nevent.provider: s3.amazonaws.com and\n  aws.cloudtrail.flattened.request_parameters.key: *.pem\n\"\"\"\n"
	if err := os.WriteFile(filepath.Join(dir, "k.toml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"rules", dir}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "note: " + filepath.Join(dir, "k.toml") + ":8:52: rule \"k\": query: a wildcard other than a trailing * on aws.cloudtrail.flattened.request_parameters.key: Elasticsearch refuses it"; !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "1 rules: 1 runnable") {
		t.Errorf("listing lacks %q:\n%s", want, out.String())
	}
	const corpus = "../../../shared/detection-rules/aws"
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("skipping the corpus listing: Elastic's rules are not at %s (../shared beside the project)", corpus)
	}
	out.Reset()
	run([]string{"rules", corpus}, nil, &out, &errb)
	for _, want := range []string{"197 rules: 197 runnable, 0 skipped", "eql runs 28", "esql runs 25", "threshold runs 5", "new_terms runs 49", "query runs 90", "cannot fire without --asn-db",
		"note: " + corpus + "/credential_access_credentials_in_s3_bucket.toml:98:9: rule \"AWS S3 Credential File Retrieved from Bucket\": query: a wildcard other than a trailing *"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("corpus listing lacks %q", want)
		}
	}
}

// TestRulesNamesOtherDataStreams: an ES|QL rule that also reads other
// vendors' data streams says so in `trailwatch rules`.
func TestRulesNamesOtherDataStreams(t *testing.T) {
	corpus := "../../../shared/detection-rules/aws"
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("Elastic's rules are not at %s: nothing to list", corpus)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"rules", corpus}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"also reads logs-azure.platformlogs-*, logs-gcp.audit-*, logs-kubernetes.audit_logs-*", "also reads logs-endpoint.events.process-*"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the listing lacks %q", want)
		}
	}
}

// TestRulesNamesESQLRulesNeedingMaxMind: an ES|QL rule that reads
// source.as.* or source.geo.* after its prefilter is listed as needing the
// database.
func TestRulesNamesESQLRulesNeedingMaxMind(t *testing.T) {
	corpus := "../../../shared/detection-rules/aws"
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("Elastic's rules are not at %s: nothing to list", corpus)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"rules", corpus}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "AWS Rare Source AS Organization Activity") && !strings.Contains(line, "cannot fire without --asn-db") {
			t.Errorf("not named as needing the ASN database: %s", line)
		}
	}
}

// TestRescanSummary: scanning the sample again on the same state file
// writes no alert (ids remembered, terms known), and the summary said "5
// alerts" for it; it says 0, and how many were made already.
func TestRescanSummary(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	first, stderr, _ := scan(t, "--db", db, "../../testdata/cloudtrail/sample.ndjson")
	if len(first) == 0 || !strings.Contains(stderr, fmt.Sprintf(", %d alerts in ", len(first))) {
		t.Fatalf("first scan: %d alerts: %s", len(first), stderr)
	}
	again, stderr, _ := scan(t, "--db", db, "../../testdata/cloudtrail/sample.ndjson")
	if len(again) != 0 || !strings.Contains(stderr, ", 0 alerts in ") || !strings.Contains(stderr, "5 alerts not written again") {
		t.Errorf("second scan: %d alerts written: %s", len(again), stderr)
	}
}

// TestRescanCountsARecordOnce: a file scanned again on the same --db (the
// event clock) has its records taken for ones the aggregating ES|QL rules
// counted, and the summary says so; three distinct records alert.
func TestRescanCountsARecordOnce(t *testing.T) {
	dir := t.TempDir()
	login := func(id, at string) string {
		return fmt.Sprintf(`{"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventTime":"2026-05-04T%sZ","eventID":%q,`+
			`"userIdentity":{"type":"Root","accountId":"111"},"sourceIPAddress":"192.0.2.1","responseElements":{"ConsoleLogin":"Failure"}}`, at, id)
	}
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rules := "../../testdata/rules/counting"
	two := write("two.ndjson", login("a", "10:01:00"), login("b", "10:01:10"))
	db := filepath.Join(dir, "state.db")
	scanAgg := func(file string) (string, string) {
		var out, errb bytes.Buffer
		if code := run([]string{"scan", "--rules", rules, "--time-source", "event", "--db", db, file}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("scan %s: exit %d: %s", file, code, errb.String())
		}
		return out.String(), errb.String()
	}
	if out, _ := scanAgg(two); out != "" {
		t.Fatalf("two records alerted: %s", out)
	}
	var stats, errb bytes.Buffer
	if code := run([]string{"db", "stats", "--db", db}, strings.NewReader(""), &stats, &errb); code != 0 || !strings.Contains(stats.String(), "2 records remembered as counted by aggregating rules") {
		t.Errorf("db stats: exit %d: %s%s", code, stats.String(), errb.String())
	}
	out, summary := scanAgg(two)
	if out != "" || !strings.Contains(summary, "2 records counted before by the aggregating ES|QL rules") {
		t.Errorf("the same file again: alerts %q, summary %s", out, summary)
	}
	// The rule disabled in its file is still in the rule set: db prune
	// --rules keeps its state (it was dropped as if the rule were gone).
	src, err := os.ReadFile(filepath.Join(rules, "failures_by_account.toml"))
	if err != nil {
		t.Fatal(err)
	}
	off := filepath.Join(dir, "off")
	os.Mkdir(off, 0o700)
	os.WriteFile(filepath.Join(off, "rule.toml"), bytes.Replace(src, []byte("[rule]\n"), []byte("[rule]\nenabled = false\n"), 1), 0o600)
	var kept, kerr bytes.Buffer
	if code := run([]string{"db", "prune", "--db", db, "--rules", off}, strings.NewReader(""), &kept, &kerr); code != 0 ||
		!strings.Contains(kept.String(), "dropped the windows, runs and sequences of 0 rules") {
		t.Errorf("db prune with the rule disabled: exit %d: %s%s", code, kept.String(), kerr.String())
	}
	// The rule removed from the rule set: db prune --rules drops its
	// windows and last run (db stats lists no scheduled rule after).
	var pruned, perr bytes.Buffer
	if code := run([]string{"db", "prune", "--db", db, "--rules", "../../conf/rules"}, strings.NewReader(""), &pruned, &perr); code != 0 ||
		!strings.Contains(pruned.String(), `dropped the windows, runs and sequences of 1 rule no longer in the rule set: esql-failures`) {
		t.Errorf("db prune: exit %d: %s%s", code, pruned.String(), perr.String())
	}
	stats.Reset()
	if code := run([]string{"db", "stats", "--db", db}, strings.NewReader(""), &stats, &errb); code != 0 || strings.Contains(stats.String(), "SCHEDULED RULE") {
		t.Errorf("db stats after prune: exit %d: %s", code, stats.String())
	}
	// The control, on a fresh state file (on this one the first scan's
	// drain made the runs of that hour, so any record of it is now late):
	// three records alert.
	db = filepath.Join(dir, "fresh.db")
	three := write("three.ndjson", login("a", "10:01:00"), login("b", "10:01:10"), login("c", "10:01:20"))
	if out, _ := scanAgg(three); !strings.Contains(out, `"Esql.count":3`) {
		t.Errorf("three records: %q, want an alert counting 3", out)
	}
}

// TestScanFileShapesLoseNothing: files that lost records without a word.
// A file starting mid-record (a rotated log) was read as one document:
// every later record was lost. A byte order mark made the first record
// malformed. An over-long line shifted the lines named after it by one.
// Gzip past 1 GiB was cut there, the records after it never read.
func TestScanFileShapesLoseNothing(t *testing.T) {
	dir := t.TempDir()
	line := func(i int) string {
		b, _ := json.Marshal(event(i, "bedrock.amazonaws.com", "PutUseCaseForModelAccess", "arn:aws:iam::1:user/a", false))
		return string(b)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name   string
		path   string
		alerts int
		code   int
		errs   []string
	}{
		{"mid-record start", write("rotated.ndjson", []byte(`olicy","sourceIPAddress":"10.0.0.1"}`+"\n"+line(1)+"\n"+line(2)+"\n")), 2, 1, []string{"rotated.ndjson:1: malformed record"}},
		{"byte order mark", write("bom.ndjson", []byte("\ufeff"+line(3)+"\n")), 1, 0, nil},
		{"over-long line", write("long.ndjson", []byte(strings.Repeat("x", 65<<20)+"\ngarbage\n"+line(4)+"\ngarbage2\n")), 1, 1,
			[]string{"long.ndjson:1: malformed record: line longer than", "long.ndjson:2: malformed record", "long.ndjson:4: malformed record"}},
	}
	// 1.1 GiB of blank lines, then a record, in 1 MiB of gzip.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	blank := append(bytes.Repeat([]byte(" "), 1<<20-1), '\n')
	for range 1100 {
		zw.Write(blank)
	}
	zw.Write([]byte(line(5) + "\n"))
	zw.Close()
	cases = append(cases, struct {
		name   string
		path   string
		alerts int
		code   int
		errs   []string
	}{"gzip past 1 GiB", write("big.ndjson.gz", gz.Bytes()), 1, 0, nil})
	for _, c := range cases {
		alerts, stderr, code := scan(t, c.path)
		if len(alerts) != c.alerts || code != c.code {
			t.Errorf("%s: %d alerts, exit %d; want %d, %d: %s", c.name, len(alerts), code, c.alerts, c.code, stderr)
		}
		for _, e := range c.errs {
			if !strings.Contains(stderr, e) {
				t.Errorf("%s: stderr lacks %q: %s", c.name, e, stderr)
			}
		}
	}
}

// A scan's alert suppression groups are closed at its end: a group that
// suppressed alerts prints its alert again with the final docs_count (the
// same kibana.alert.uuid), as the agent's sweep does when a window closes;
// scan printed only the first alert, docs_count 0.
func TestScanPrintsFinalSuppressionCounts(t *testing.T) {
	dir := t.TempDir()
	rule := `[rule]
name = "Bedrock calls"
rule_id = "scan-supp-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
query = 'event.provider: "bedrock.amazonaws.com"'
[rule.alert_suppression]
group_by = ["source.ip"]
[rule.alert_suppression.duration]
value = 1
unit = "h"
`
	if err := os.WriteFile(filepath.Join(dir, "r.toml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	const b = "bedrock.amazonaws.com"
	in := writeNDJSON(t, []map[string]any{
		event(1, b, "InvokeModel", "arn:aws:iam::1:user/a", false),
		event(2, b, "InvokeModel", "arn:aws:iam::1:user/a", false),
		event(3, b, "InvokeModel", "arn:aws:iam::1:user/a", false),
	})
	var out, errb bytes.Buffer
	if code := run([]string{"scan", "--rules", dir, in}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var counts []any
	uuids := map[any]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var d map[string]any
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		counts = append(counts, d["kibana.alert.suppression.docs_count"])
		uuids[d["kibana.alert.uuid"]] = true
	}
	if fmt.Sprint(counts) != "[0 2]" || len(uuids) != 1 {
		t.Errorf("docs_counts %v over %d alert ids, want [0 2] over one:\n%s", counts, len(uuids), out.String())
	}

	// On the event clock, a group whose hour has passed when the next
	// record comes prints its final count before the alert that opens it
	// again (it came at the end of the scan).
	at := func(e map[string]any, ts string) map[string]any { e["eventTime"] = ts; return e }
	in = writeNDJSON(t, []map[string]any{
		at(event(4, b, "InvokeModel", "arn:aws:iam::1:user/a", false), "2026-11-20T00:00:00Z"),
		at(event(5, b, "InvokeModel", "arn:aws:iam::1:user/a", false), "2026-11-20T00:10:00Z"),
		at(event(6, b, "InvokeModel", "arn:aws:iam::1:user/a", false), "2026-11-20T02:00:00Z"),
		at(event(7, b, "InvokeModel", "arn:aws:iam::1:user/a", false), "2026-11-20T02:10:00Z"),
	})
	out.Reset()
	if code := run([]string{"scan", "--time-source", "event", "--rules", dir, in}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var seq []string
	ids := map[any]string{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var d map[string]any
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		id := d["kibana.alert.uuid"]
		if ids[id] == "" {
			ids[id] = string(rune('A' + len(ids)))
		}
		seq = append(seq, fmt.Sprint(ids[id], d["kibana.alert.suppression.docs_count"]))
	}
	if got := strings.Join(seq, " "); got != "A0 A1 B0 B1" {
		t.Errorf("alerts %s, want A0 A1 B0 B1", got)
	}
}
