package instance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/engine"
)

const queryRule = `[rule]
name = "Bedrock model access"
rule_id = "10000000-0000-0000-0000-000000000001"
type = "query"
severity = "medium"
risk_score = 47
max_signals = %d
interval = "5m"
query = 'event.provider: "bedrock.amazonaws.com" and event.action: %s and event.outcome: success'
%s
`

func writeRule(t *testing.T, dir, action string, maxSignals int, extra string) string {
	t.Helper()
	p := filepath.Join(dir, "rule.toml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(queryRule, maxSignals, action, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func record(t *testing.T, id int, action, arn, user string) engine.Record {
	js := fmt.Sprintf(`{"eventSource":"bedrock.amazonaws.com","eventName":%q,"eventID":"e-%d","eventTime":"2026-11-20T10:00:00Z",
		"userIdentity":{"type":"AssumedRole","arn":%q,"accountId":"1","sessionContext":{"sessionIssuer":{"userName":%q}}}}`, action, id, arn, user)
	n, err := doc.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return engine.Record{Node: n}
}

func open(t *testing.T, props map[string]string) (*Instance, string, *syncWriter) {
	t.Helper()
	dir := t.TempDir()
	p := map[string]string{"db": filepath.Join(dir, "state.db"), "alert_file": filepath.Join(dir, "alerts.ndjson"), "exit_timeout": "5s", "no_sync": "on", "rules_watch": "0"}
	for k, v := range props {
		p[k] = v
	}
	logs := &syncWriter{w: &bytes.Buffer{}}
	in, err := Open("test", func(k string) string { return p[k] }, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in, p["alert_file"], logs
}

// syncWriter is a log that goroutines write while a test reads it.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// String is what was written so far.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func readAlerts(t *testing.T, path string, want int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []map[string]any
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<24)
			for sc.Scan() {
				var m map[string]any
				if json.Unmarshal(sc.Bytes(), &m) == nil {
					out = append(out, m)
				}
			}
			f.Close()
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKibanaExceptionExport: an exception list from a Kibana export,
// attached through the rule's exceptions_list, excepts exactly the records
// it names; a local TOML exception for every rule excepts too.
func TestKibanaExceptionExport(t *testing.T) {
	dir := t.TempDir()
	rules := writeRule(t, dir, "PutFoundationModelEntitlement", 1000,
		`exceptions_list = [{id = "1", list_id = "iac-roles", type = "detection", namespace_type = "single"}]`)
	export := filepath.Join(dir, "exceptions.ndjson")
	os.WriteFile(export, []byte(`{"list_id":"iac-roles","type":"detection","name":"IaC roles","namespace_type":"single"}
{"item_id":"terraform","list_id":"iac-roles","type":"simple","name":"Terraform deployer","namespace_type":"single","entries":[{"field":"aws.cloudtrail.user_identity.arn","operator":"included","type":"wildcard","value":"*:assumed-role/terraform-*"},{"field":"user.name","operator":"excluded","type":"match","value":"break-glass"}]}
{"item_id":"ci","list_id":"iac-roles","type":"simple","name":"CI","namespace_type":"single","entries":[{"field":"user.name","operator":"included","type":"match_any","value":["ci-runner","gh-actions"]}]}
{"exported_exception_list_count":1,"exported_exception_list_item_count":2,"missing_exception_list_item_count":0}
`), 0o600)
	local := filepath.Join(dir, "local.toml")
	os.WriteFile(local, []byte(`[[exception]]
rule_id = "*"
query = 'user.name: sandbox-*'
comment = "sandbox accounts"
`), 0o600)
	in, alerts, _ := open(t, map[string]string{"rules": rules, "exceptions": export + "," + local})
	recs := []engine.Record{
		record(t, 1, "PutFoundationModelEntitlement", "arn:aws:sts::1:assumed-role/terraform-deployer/run-1", "terraform-deployer"), // excepted
		record(t, 2, "PutFoundationModelEntitlement", "arn:aws:sts::1:assumed-role/terraform-deployer/run-2", "break-glass"),        // excluded entry: alerts
		record(t, 3, "PutFoundationModelEntitlement", "arn:aws:sts::1:assumed-role/ci/x", "gh-actions"),                             // excepted
		record(t, 4, "PutFoundationModelEntitlement", "arn:aws:sts::1:assumed-role/admin/alice", "admin"),                           // alerts
		record(t, 5, "PutFoundationModelEntitlement", "arn:aws:sts::1:assumed-role/s/x", "sandbox-7"),                               // excepted (local)
	}
	res, err := in.Process(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 2 || res.Stats.Excepted["Bedrock model access"] != 3 {
		t.Fatalf("%d alerts, %v excepted; want 2 alerts, 3 excepted", len(res.Alerts), res.Stats.Excepted)
	}
	got := readAlerts(t, alerts, 2)
	ids := map[string]bool{}
	for _, a := range got {
		ids[a["event"].(map[string]any)["id"].(string)] = true
	}
	if !ids["e-2"] || !ids["e-4"] || len(ids) != 2 {
		t.Errorf("alerts for %v, want e-2 and e-4", ids)
	}
}

func TestExceptionFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(bad, []byte("{\"item_id\":\"x\",\"list_id\":\"l\",\"entries\":[{\"field\":\"a\",\"operator\":\"included\",\"type\":\"list\",\"list\":{}}]}\nnot json\n"), 0o600)
	p := map[string]string{"rules": writeRule(t, dir, "X", 100, ""), "alert_stdout": "on", "exceptions": bad, "db": filepath.Join(dir, "s.db")}
	_, err := Open("t", func(k string) string { return p[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bad.ndjson:1") || !strings.Contains(err.Error(), "value lists") || !strings.Contains(err.Error(), "bad.ndjson:2") {
		t.Errorf("err = %v", err)
	}
}

// TestSuppressionCountsIntoOneAlert: alerts of one group within the
// suppression window go out once; when the window closes the alert goes
// out again with the final count; state survives a restart.
func TestSuppressionCountsIntoOneAlert(t *testing.T) {
	dir := t.TempDir()
	rules := writeRule(t, dir, "PutUseCaseForModelAccess", 100, `[rule.alert_suppression]
group_by = ["user.name"]
missing_fields_strategy = "suppress"
[rule.alert_suppression.duration]
value = 10
unit = "m"`)
	in, alerts, _ := open(t, map[string]string{"rules": rules})
	var recs []engine.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, record(t, i, "PutUseCaseForModelAccess", "arn:aws:sts::1:assumed-role/admin/a", "admin"))
	}
	recs = append(recs, record(t, 99, "PutUseCaseForModelAccess", "arn:aws:sts::1:assumed-role/other/b", "other"))
	res, err := in.Process(recs[:3])
	if err != nil {
		t.Fatal(err)
	}
	res2, _ := in.Process(recs[3:])
	if len(res.Alerts)+len(res2.Alerts) != 2 || res.Stats.Suppressed+res2.Stats.Suppressed != 4 {
		t.Fatalf("%d+%d alerts, %d suppressed; want 2 alerts (one per user), 4 suppressed", len(res.Alerts), len(res2.Alerts), res.Stats.Suppressed+res2.Stats.Suppressed)
	}
	first := readAlerts(t, alerts, 2)
	if first[0]["kibana.alert.suppression.docs_count"] != float64(0) {
		t.Errorf("first alert docs_count %v", first[0]["kibana.alert.suppression.docs_count"])
	}
	in.Sweep(time.Now().Add(11 * time.Minute))
	all := readAlerts(t, alerts, 3)
	if len(all) != 3 {
		t.Fatalf("%d alerts after the window closed, want 3", len(all))
	}
	last := all[2]
	terms, _ := last["kibana.alert.suppression.terms"].([]any)
	if last["kibana.alert.suppression.docs_count"] != float64(4) || last["kibana.alert.uuid"] != first[0]["kibana.alert.uuid"] || len(terms) != 1 {
		t.Errorf("final alert: docs_count %v, uuid %v (first %v), terms %v", last["kibana.alert.suppression.docs_count"], last["kibana.alert.uuid"], first[0]["kibana.alert.uuid"], terms)
	}
}

// TestStormIsCapped: 10,000 matching records in one interval yield
// max_signals (100) alerts and, once the interval is over, one summary.
func TestStormIsCapped(t *testing.T) {
	// max_signals windows are aligned on the clock (the rule's 5-minute
	// interval): the storm must not straddle two of them.
	if d := time.Until(time.Now().Truncate(5 * time.Minute).Add(5 * time.Minute)); d < 30*time.Second {
		t.Logf("waiting %v for the next 5-minute window", d.Round(time.Second))
		time.Sleep(d + time.Second)
	}
	dir := t.TempDir()
	in, alerts, _ := open(t, map[string]string{"rules": writeRule(t, dir, "PutUseCaseForModelAccess", 100, "")})
	for b := 0; b < 10; b++ {
		var recs []engine.Record
		for i := 0; i < 1000; i++ {
			recs = append(recs, record(t, b*1000+i, "PutUseCaseForModelAccess", "arn:aws:sts::1:assumed-role/admin/a", "admin"))
		}
		if _, err := in.Process(recs); err != nil {
			t.Fatal(err)
		}
	}
	if in.Capped.Load() != 9900 {
		t.Errorf("capped %d, want 9900", in.Capped.Load())
	}
	in.Sweep(time.Now().Add(6 * time.Minute))
	got := readAlerts(t, alerts, 101)
	if len(got) != 101 {
		t.Fatalf("%d alerts, want 100 and a summary", len(got))
	}
	sum := got[100]
	if sum["trailwatch.max_signals.capped"] != float64(9900) || !strings.Contains(sum["kibana.alert.reason"].(string), "9900 more alerts") {
		t.Errorf("summary: %v", sum)
	}
}

// TestRuleFileEditedWhileRecordsFlow: the rule file changes under a running
// instance; the new rule set is picked up between batches and no record is
// lost: every record is evaluated by the old or the new set.
func TestRuleFileEditedWhileRecordsFlow(t *testing.T) {
	dir := t.TempDir()
	rules := writeRule(t, dir, "PutUseCaseForModelAccess", 100000, "")
	in, alerts, logs := open(t, map[string]string{"rules": rules, "rules_watch": "50ms"})
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			// Both actions every batch: before the edit only the first alerts.
			in.Process([]engine.Record{
				record(t, 2*i, "PutUseCaseForModelAccess", "arn:x", "u"),
				record(t, 2*i+1, "CreateFoundationModelAgreement", "arn:x", "u"),
			})
			n += 2
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	// A broken edit is refused and the running rules kept.
	os.WriteFile(rules, []byte("[rule]\nname = \"broken\"\nquery = 'a: ('\n"), 0o600)
	time.Sleep(200 * time.Millisecond)
	writeRule(t, dir, "CreateFoundationModelAgreement", 100000, "")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	sent := <-done
	if got := in.Records.Load(); got != int64(sent) {
		t.Errorf("%d records evaluated, %d sent", got, sent)
	}
	all := readAlerts(t, alerts, 1)
	before, after := 0, 0
	for _, a := range all {
		switch a["event"].(map[string]any)["action"] {
		case "PutUseCaseForModelAccess":
			before++
		case "CreateFoundationModelAgreement":
			after++
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("alerts before the edit %d, after %d: both must be there", before, after)
	}
	l := logs.String()
	if !strings.Contains(l, "reload refused, keeping the running rules") || !strings.Contains(l, "rules reloaded: 1 running") {
		t.Errorf("log:\n%s", l)
	}
}

func TestMetricsListen(t *testing.T) {
	in, _, _ := open(t, map[string]string{"rules": writeRule(t, t.TempDir(), "PutUseCaseForModelAccess", 100, ""), "metrics_listen": "127.0.0.1:0"})
	in.Process([]engine.Record{record(t, 1, "PutUseCaseForModelAccess", "arn:x", "u")})
	resp, err := http.Get("http://" + in.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"trailwatch_records_total 1", `trailwatch_rule_alerts_total{rule="Bedrock model access"} 1`, "trailwatch_alerts_capped_total 0", "trailwatch_rule_eval_samples_total"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestMetricsListenTakenFailsClean: a metrics_listen address already in
// use fails Open with the property named, and leaves nothing running: the
// timers were started before the listener, ran on with the instance the
// caller never got, and crashed the process a second later.
func TestMetricsListenTakenFailsClean(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	p := map[string]string{"db": filepath.Join(dir, "state.db"), "alert_file": filepath.Join(dir, "alerts.ndjson"), "no_sync": "on",
		"rules": writeRule(t, t.TempDir(), "PutUseCaseForModelAccess", 100, ""), "metrics_listen": l.Addr().String()}
	before := runtime.NumGoroutine()
	in, err := Open("test", func(k string) string { return p[k] }, &syncWriter{w: &bytes.Buffer{}})
	if err == nil || in != nil || !strings.Contains(err.Error(), "property metrics_listen") {
		t.Fatalf("Open: %v, %v", in, err)
	}
	time.Sleep(1500 * time.Millisecond) // past a tick of the timers
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the failed Open, %d before", n, before)
	}
}

// TestMalformedFloodLoggedOnce: a batch of 1,000 malformed records wrote
// 1,000 log lines; the first ten are logged with their place, the rest in
// one line, and all are counted.
func TestMalformedFloodLoggedOnce(t *testing.T) {
	in, _, logs := open(t, map[string]string{"rules": writeRule(t, t.TempDir(), "PutUseCaseForModelAccess", 100, "")})
	recs := make([]engine.Record, 1000)
	for i := range recs {
		recs[i] = engine.Record{Err: fmt.Errorf("broken %d", i), Where: fmt.Sprintf("line %d", i+1)}
	}
	if _, err := in.Process(recs); err != nil {
		t.Fatal(err)
	}
	l := logs.String()
	if n := strings.Count(l, "malformed"); n != 11 || !strings.Contains(l, "(line 10): broken 9") || !strings.Contains(l, "skipped 990 more malformed records") || in.Malformed.Load() != 1000 {
		t.Errorf("%d log lines about malformed records, %d counted:\n%.2000s", n, in.Malformed.Load(), l)
	}
}

// TestEventTimeFarAheadWarned: with the event clock, a new_terms match
// dated 2200 is no sighting (engine.SkipEventTime); the plugin and serve
// say so in their log.
func TestEventTimeFarAheadWarned(t *testing.T) {
	in, _, logs := open(t, map[string]string{"rules": "../conf/rules", "time_source": "event"})
	n, err := doc.ParseJSON([]byte(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutResourcePolicy","eventID":"far","eventTime":"2200-01-01T00:00:00Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/m"}}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := in.Process([]engine.Record{{Node: n}})
	if err != nil || len(res.Alerts) != 0 || !strings.Contains(logs.String(), "1 new_terms matches skipped: eventTime before 2000 or more than 24h ahead") {
		t.Errorf("%v, %d alerts; log:\n%s", err, len(res.Alerts), logs.String())
	}
}

// TestLateCountsWarned: on the event clock, a record that arrives after the
// runs that could have counted it (a backlog flushed after newer chunks) is
// not kept by the scheduled rules: the plugin says so once and counts it,
// rather than losing it silently; a record given again to an aggregating
// ES|QL rule is counted as replayed.
func TestLateCountsWarned(t *testing.T) {
	in, _, logs := open(t, map[string]string{"rules": "../testdata/rules/counting", "time_source": "event", "metrics_listen": "127.0.0.1:0"})
	login := func(id, at string) engine.Record {
		n, err := doc.ParseJSON([]byte(fmt.Sprintf(`{"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventID":%q,"eventTime":"2026-05-04T%sZ","userIdentity":{"type":"Root","accountId":"111"}}`, id, at)))
		if err != nil {
			t.Fatal(err)
		}
		return engine.Record{Node: n}
	}
	for _, batch := range [][]engine.Record{
		{login("a", "10:00:00")},
		{login("b", "11:00:00")}, // the clock passes the runs of ten o'clock
		{login("c", "10:00:30")}, // late
		{login("b", "11:00:00")}, // given again
	} {
		if _, err := in.Process(batch); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs.String(), "1 counts of scheduled rules not kept: older than every run to come") {
		t.Errorf("no warning of the late record; log:\n%s", logs.String())
	}
	resp, err := http.Get("http://" + in.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"trailwatch_window_counts_late_total 1", "trailwatch_records_replayed_total 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestTimerPanicIsLogged: a panic in a timer's task (a defect) ended the
// process, Fluent Bit with it: nothing catches a panic in a goroutine of
// its own. It is logged with its stack, and the timer goes on.
func TestTimerPanicIsLogged(t *testing.T) {
	in, _, logs := open(t, map[string]string{"rules": writeRule(t, t.TempDir(), "PutUseCaseForModelAccess", 100, "")})
	var calls atomic.Int32
	in.wg.Add(1)
	go in.every(10*time.Millisecond, func() {
		calls.Add(1)
		var m map[string]int
		m["x"] = 1 // a nil map: a panic
	})
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if calls.Load() < 3 || !strings.Contains(logs.String(), "a timer's task failed") || !strings.Contains(logs.String(), "nil map") {
		t.Errorf("%d calls; log:\n%s", calls.Load(), logs.String())
	}
}
