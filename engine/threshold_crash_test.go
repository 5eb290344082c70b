package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
)

const crashRule = `[rule]
name = "brute force"
rule_id = "th-crash"
type = "threshold"
language = "kuery"
severity = "high"
risk_score = 73
query = 'event.provider: signin.amazonaws.com and event.outcome: failure'
[rule.threshold]
field = ["cloud.account.id"]
value = 6
`

// crashStream is a fixed stream of failed logins over two hours in eight
// accounts, in event-time order with some disorder, as JSON.
func crashStream() []string {
	r := rand.New(rand.NewPCG(7, 7))
	start := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	var out []string
	for i := range 6000 {
		t := start.Add(time.Duration(i)*time.Second - time.Duration(r.IntN(60))*time.Second)
		out = append(out, fmt.Sprintf(`{"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventTime":%q,
			"eventID":"crash-%d","userIdentity":{"type":"Root","accountId":"acct-%d"},"sourceIPAddress":"192.0.2.1",
			"responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication"}`,
			t.Format(time.RFC3339), i, r.IntN(8)))
	}
	return out
}

// crashESQLRule counts the same failures with ES|QL's STATS: a record
// given again after a kill (the child replays the stream from its start)
// must not count twice, or the rows' counts, and so the alerts, differ.
const crashESQLRule = `[rule]
name = "failures by account"
rule_id = "esql-crash"
type = "esql"
language = "esql"
severity = "high"
risk_score = 73
from = "now-10m"
interval = "5m"
query = '''
from logs-aws.cloudtrail-*
| where event.provider == "signin.amazonaws.com" and event.outcome == "failure"
| stats Esql.failures = count(*) by cloud.account.id
| where Esql.failures >= 70
'''
`

func crashRules(dir string) (*conf.RuleSet, error) {
	for name, rule := range map[string]string{"rule.toml": crashRule, "esql.toml": crashESQLRule} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(rule), 0o600); err != nil {
			return nil, err
		}
	}
	return conf.LoadRules(cloudtrail.NewSchema(), dir)
}

// crashBatch is the batches' size, the same in every life: an agent
// retries the chunks it had, as they were (records that come after a run
// that could have counted them are late whatever the batches, so the same
// records in other batches may make other runs).
const crashBatch = 37

// thresholdCrashChild feeds the whole stream from its start (as an agent
// retries what it had not seen acknowledged), delivering each batch's
// alerts to a log (fsync'd) before acknowledging them, then drains the
// clock and writes "done".
func thresholdCrashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	rs, err := crashRules(dir)
	if err != nil {
		fail(err)
	}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		fail(err)
	}
	e, err := New(rs, Options{State: st, TimeSource: EventTime})
	if err != nil {
		fail(err)
	}
	deliver := deliverer(st, filepath.Join(dir, "delivered.log"), fail)
	deliver()
	stream := crashStream()
	for i := 0; i < len(stream); {
		n := crashBatch
		var recs []Record
		for _, js := range stream[i:min(i+n, len(stream))] {
			nd, err := doc.ParseJSON([]byte(js))
			if err != nil {
				fail(err)
			}
			recs = append(recs, Record{Node: nd})
		}
		if _, err := e.ProcessBatch(recs); err != nil {
			fail(err)
		}
		deliver()
		i += n
	}
	if _, err := e.Drain(); err != nil {
		fail(err)
	}
	deliver()
	st.Close()
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	os.Exit(0)
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("TRAILWATCH_THRESHOLD_CRASH_CHILD"); dir != "" {
		thresholdCrashChild(dir)
		return
	}
	if dir := os.Getenv("TRAILWATCH_FLEET_CRASH_CHILD"); dir != "" {
		fleetCrashChild(dir, os.Getenv("TRAILWATCH_FLEET_URL"))
		return
	}
	os.Exit(m.Run())
}

// TestThresholdSurvivesSIGKILL kills a process streaming records through a
// threshold rule at random moments, while its runs happen, and restarts it
// on the same file each time: the alerts delivered in the end are exactly
// those of one uninterrupted run (none lost, none made twice; an alert
// delivered but not yet acknowledged when killed is delivered again, with
// the same id and document).
func TestThresholdSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the SIGKILL test in -short mode (it kills a child process 15 times)")
	}
	// The uninterrupted run, in process.
	ref := t.TempDir()
	rs, err := crashRules(ref)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newEngine(t, rs, Options{TimeSource: EventTime})
	want := map[string]string{}
	var recs []Record
	for _, js := range crashStream() {
		nd, err := doc.ParseJSON([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, Record{Node: nd})
	}
	for i := 0; i < len(recs); i += crashBatch {
		res, err := e.ProcessBatch(recs[i:min(i+crashBatch, len(recs))])
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range res.Alerts {
			want[a.UUID] = string(res.Docs[i])
		}
	}
	res, err := e.Drain()
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range res.Alerts {
		want[a.UUID] = string(res.Docs[i])
	}
	if len(want) < 20 {
		t.Fatalf("the stream makes only %d alerts: too few to test", len(want))
	}
	// How long a child lives when nobody kills it, so that the kills fall
	// within its stream (it was often over before the kill).
	life := func() time.Duration {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TRAILWATCH_THRESHOLD_CRASH_CHILD="+t.TempDir())
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v: %s", err, out)
		}
		return time.Since(t0)
	}()
	esqlAlerts := 0
	for _, d := range want {
		if strings.Contains(d, `"esql-crash"`) {
			esqlAlerts++
		}
	}
	if esqlAlerts < 20 || esqlAlerts == len(want) {
		t.Fatalf("the stream makes %d alerts of the ES|QL rule among %d: both rules must alert", esqlAlerts, len(want))
	}

	dir := t.TempDir()
	kills := 0
	for round := 0; ; round++ {
		if round > 200 {
			t.Fatalf("after %d rounds, %d kills and no child that finished after the last", round, kills)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TRAILWATCH_THRESHOLD_CRASH_CHILD="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if kills < 15 {
			time.Sleep(rand.N(life * 9 / 10))
			cmd.Process.Signal(syscall.SIGKILL)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
			continue
		}
		if err != nil {
			t.Fatalf("child: %v: %s", err, stderr.String())
		}
		// A child that finished before its kill is followed by another,
		// which replays the whole stream on the finished state (and must
		// make nothing new), until 15 kills have landed.
		if _, err := os.Stat(filepath.Join(dir, "done")); err == nil && kills >= 15 {
			break
		}
	}
	got := map[string]string{}
	f, err := os.Open(filepath.Join(dir, "delivered.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		var a map[string]any
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			continue // a line torn by the kill; its alert is delivered again
		}
		lines++
		id := a["kibana.alert.uuid"].(string)
		if prev, ok := got[id]; ok && prev != sc.Text() {
			t.Errorf("alert %s delivered twice with different documents", id)
		}
		got[id] = sc.Text()
	}
	var missing, extra []string
	for id := range want {
		if _, ok := got[id]; !ok {
			missing = append(missing, id)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("after %d kills: %d alerts missing %v, %d not made by the uninterrupted run %v", kills, len(missing), missing, len(extra), extra)
	}
	t.Logf("%d kills (a child lives %v): %d alerts, as the uninterrupted run (%d lines delivered, redeliveries included)", kills, life, len(got), lines)
}
