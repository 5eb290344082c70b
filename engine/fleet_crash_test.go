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
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/internal/natstest"
	"github.com/trailwatch/trailwatch/store"
)

const fleetCrashRecords = 20000

// loadFleetCrashRules loads the corpus's rules, or the bundled ones, less
// the aggregating ES|QL rules: the child feeds the stream again from its
// start at each life, and a record given twice counts twice in an ES|QL
// aggregate (README, ES|QL), which no fleet setting changes.
func loadFleetCrashRules() (*conf.RuleSet, error) {
	path := "../../shared/detection-rules/aws"
	if _, err := os.Stat(path); err != nil {
		path = "../conf/rules"
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), path)
	if err != nil {
		return nil, err
	}
	var keep []*conf.Rule
	for _, r := range rs.Rules {
		if r.ESQL == nil || !r.ESQL.IsAggregating() {
			keep = append(keep, r)
		}
	}
	rs.Rules = keep
	return rs, nil
}

// fleetCrashChild is one node of a fleet, in a child process: it feeds the
// whole stream from its start (as an agent retries what was not
// acknowledged), delivering each batch's alerts to a log (fsync'd) before
// acknowledging them, then drains and writes "done".
func fleetCrashChild(dir, url string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	rs, err := loadFleetCrashRules()
	if err != nil {
		fail(err)
	}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		fail(err)
	}
	id, err := st.NodeID()
	if err != nil {
		fail(err)
	}
	fc, err := fleet.Open(fleet.Options{URL: url, Node: id, Prefix: "fleettest", TermsTTL: 7 * 24 * time.Hour, Timeout: 10 * time.Second})
	if err != nil {
		fail(err)
	}
	if !fc.Ready() {
		fail(fmt.Errorf("the fleet at %s did not answer", url))
	}
	e, err := New(rs, Options{State: st, Fleet: fc, TimeSource: EventTime, NoCaps: true})
	if err != nil {
		fail(err)
	}
	deliver := deliverer(st, filepath.Join(dir, "delivered.log"), fail)
	deliver()
	stream, err := genFleetStream(fleetCrashRecords)
	if err != nil {
		fail(err)
	}
	progress, err := os.OpenFile(filepath.Join(dir, "progress"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		fail(err)
	}
	for i := 0; i < len(stream); i += fleetBatch {
		if _, err := e.ProcessBatch(records(stream[i:min(i+fleetBatch, len(stream))])); err != nil {
			fail(err)
		}
		deliver()
		fmt.Fprintf(progress, "%d\n", i) // this life's batches committed so far
	}
	if _, err := e.Drain(); err != nil {
		fail(err)
	}
	deliver()
	fc.Close()
	st.Close()
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	os.Exit(0)
}

// deliverer returns what a crash test's child calls after each batch: the
// outbox's alerts appended to a log (fsync'd), then acknowledged, as a sink
// does.
func deliverer(st *store.Store, path string, fail func(error)) func() {
	log, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fail(err)
	}
	return func() {
		ps, err := st.Pending(1 << 30)
		if err != nil {
			fail(err)
		}
		var seqs []uint64
		for _, p := range ps {
			log.Write(append(p.Alert, '\n'))
			seqs = append(seqs, p.Seq)
		}
		log.Sync()
		if err := st.Ack(seqs); err != nil {
			fail(err)
		}
	}
}

// TestFleetNodeSurvivesSIGKILL kills a node of a fleet at random moments
// (mid-batch: between its claims in the fleet and its commit, among
// others) and restarts it on its state file each time: in the end it has
// delivered exactly the alerts of one uninterrupted engine (its own claims
// that no commit followed are still its own), and a second node fed the
// same stream afterwards makes none (every term and alert id is claimed).
func TestFleetNodeSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the SIGKILL test in -short mode (it kills a child process 8 times)")
	}
	srv := natstest.Start(t)
	rs, err := loadFleetCrashRules()
	if err != nil {
		t.Fatal(err)
	}
	stream := fleetStream(t, fleetCrashRecords)
	want := oneEngine(t, rs, stream)
	dir := t.TempDir()
	kills, midStream := 0, 0
	for round := 0; ; round++ {
		if round > 40 {
			t.Fatal("the child never finished")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TRAILWATCH_FLEET_CRASH_CHILD="+dir, "TRAILWATCH_FLEET_URL="+srv.URL())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if kills < 8 {
			// Once this life streams (its first batch committed), at a
			// random moment of the next batches.
			for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(5 * time.Millisecond) {
				if b, _ := os.ReadFile(filepath.Join(dir, "progress")); len(b) > 0 {
					break
				}
			}
			time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
			if b, _ := os.ReadFile(filepath.Join(dir, "progress")); len(b) > 0 {
				midStream++ // killed after this life had committed a batch
			}
			os.Remove(filepath.Join(dir, "progress"))
			continue
		}
		if err != nil {
			t.Fatalf("child: %v: %s", err, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
			break
		}
	}
	f, err := os.Open(filepath.Join(dir, "delivered.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byID := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		var a map[string]any
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			continue // a line torn by the kill; its alert is delivered again
		}
		lines++
		byID[a["kibana.alert.uuid"].(string)] = slices.Clone(sc.Bytes())
	}
	var got []string
	for _, d := range byID {
		k, u := alertKey(t, d)
		if u {
			t.Fatalf("alert %s unconfirmed with the fleet up", k)
		}
		got = append(got, k)
	}
	sameAlerts(t, want, got)
	if midStream < 6 {
		t.Fatalf("only %d of %d kills came while the child was streaming", midStream, kills)
	}
	// A second node, the stream again: everything is claimed.
	b := newFleetNode(t, rs, srv.URL())
	for i := 0; i < len(stream); i += fleetBatch {
		b.run(t, records(stream[i:min(i+fleetBatch, len(stream))]))
	}
	b.drain(t)
	if len(b.got) > 0 {
		t.Fatalf("the second node made %d alerts after the first had made them all: %.5q", len(b.got), b.got)
	}
	t.Logf("%d kills (%d while streaming): %d alerts, as one uninterrupted engine (%d lines delivered, redeliveries included); the second node made none (%d term claims, %d alert ids held by the first)",
		kills, midStream, len(got), lines, b.fc.C.TermClaims.Load(), b.fc.C.AlertConflicts.Load())
}
