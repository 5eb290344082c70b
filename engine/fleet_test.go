package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/internal/gen"
	"github.com/trailwatch/trailwatch/internal/natstest"
	"github.com/trailwatch/trailwatch/store"
)

// fleetAccounts are the generated stream's accounts: a user's calls are in
// one of them.
var fleetAccounts = []string{"111122223333", "444455556666", "777788889999"}

// fleetRecord is one record of the fleet tests' stream and its account.
type fleetRecord struct {
	rec     Record
	account int
}

// fleetStream is n generated records spread over three accounts (each
// user in one), with failed root console logins mixed in (so that the
// threshold rules grouped by account alert), as MessagePack bodies.
func fleetStream(t testing.TB, n int) []fleetRecord {
	t.Helper()
	out, err := genFleetStream(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func genFleetStream(n int) ([]fleetRecord, error) {
	var out []fleetRecord
	add := func(m map[string]any, acct int) error {
		b, err := msgp.AppendIntf(nil, m)
		out = append(out, fleetRecord{Record{Msgpack: b}, acct})
		return err
	}
	i := 0
	err := gen.Generate(n, 5, func(m map[string]any) error {
		var u int
		fmt.Sscanf(m["userIdentity"].(map[string]any)["principalId"].(string)[len("AIDAEXAMPLE"):], "%d", &u)
		acct := u % len(fleetAccounts)
		if err := add(replaceAll(m, "111122223333", fleetAccounts[acct]).(map[string]any), acct); err != nil {
			return err
		}
		if i++; i%25 == 0 {
			a := (i / 25) % len(fleetAccounts)
			return add(map[string]any{"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "eventTime": m["eventTime"],
				"eventID": fmt.Sprintf("root-login-%d", i), "userIdentity": map[string]any{"type": "Root", "accountId": fleetAccounts[a]},
				"sourceIPAddress": "192.0.2.1", "responseElements": map[string]any{"ConsoleLogin": "Failure"},
				"errorMessage": "Failed authentication", "recipientAccountId": fleetAccounts[a]}, a)
		}
		return nil
	})
	return out, err
}

// replaceAll replaces old by new in every string of a record.
func replaceAll(v any, old, new string) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, old, new)
	case map[string]any:
		for k, e := range x {
			x[k] = replaceAll(e, old, new)
		}
	case []any:
		for i, e := range x {
			x[i] = replaceAll(e, old, new)
		}
	}
	return v
}

// requireCorpus skips a test that shows nothing with the bundled rules,
// and says so.
func requireCorpus(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("../../shared/detection-rules/aws"); err != nil {
		t.Skip("needs Elastic's corpus at ../../shared/detection-rules/aws: the two bundled rules make no term, alert or threshold group for a fleet's nodes to share")
	}
}

// fleetRules are the corpus's runnable rules (the bundled ones without the
// corpus), less the rules whose per-node state the routing does not keep
// right: keep tells which per-node rules stay.
func fleetRules(t testing.TB, keep func(fields []string) bool) *conf.RuleSet {
	t.Helper()
	rs, _ := corpusRules(t)
	var rules []*conf.Rule
	for _, r := range rs.Runnable() {
		if fields, perNode := PerNode(r); perNode && !keep(fields) {
			continue
		}
		rules = append(rules, r)
	}
	rs.Rules = rules
	return rs
}

const fleetBatch = 128

// fleetNode is one node of a test fleet.
type fleetNode struct {
	e   *Engine
	st  *store.Store
	fc  *fleet.Client
	mu  sync.Mutex
	got []string // its alerts' keys (alertKey)
	unc []string // the keys of those marked unconfirmed
}

// fleetState is a new state file and its node's client of the fleet at url.
func fleetState(t testing.TB, url string) (*store.Store, *fleet.Client) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.NodeID()
	if err != nil {
		t.Fatal(err)
	}
	// A generous deadline: the race detector slows everything down.
	fc, err := fleet.Open(fleet.Options{URL: url, Node: id, Prefix: "fleettest", TermsTTL: 7 * 24 * time.Hour, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close(); st.Close() })
	if !fc.Ready() {
		t.Fatal("the embedded fleet did not answer")
	}
	return st, fc
}

func newFleetNode(t testing.TB, rs *conf.RuleSet, url string) *fleetNode {
	t.Helper()
	st, fc := fleetState(t, url)
	e, err := New(rs, Options{State: st, Fleet: fc, TimeSource: EventTime, NoCaps: true})
	if err != nil {
		t.Fatal(err)
	}
	return &fleetNode{e: e, st: st, fc: fc}
}

// alertKey names an alert by what makes it the same alert on any node: a
// new_terms alert by its rule and terms (which record of the term's first
// sightings carries it depends on which node claimed first), any other by
// its id.
func alertKey(t testing.TB, d []byte) (key string, unconfirmed bool) {
	var m map[string]any
	if err := json.Unmarshal(d, &m); err != nil {
		t.Fatal(err)
	}
	u, _ := m["trailwatch.fleet.unconfirmed"].(bool)
	rule := m["kibana.alert.rule.rule_id"].(string)
	if m["kibana.alert.rule.type"] == "new_terms" {
		var ts []string
		for _, x := range m["kibana.alert.new_terms"].([]any) {
			ts = append(ts, x.(string))
		}
		return rule + " new_terms " + strings.Join(ts, ","), u
	}
	return rule + " " + m["kibana.alert.uuid"].(string), u
}

func (n *fleetNode) run(t testing.TB, recs []Record) {
	res, err := n.e.ProcessBatch(recs)
	if err != nil {
		t.Error(err)
		return
	}
	n.collect(t, res)
}

func (n *fleetNode) collect(t testing.TB, res Result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, d := range res.Docs {
		k, u := alertKey(t, d)
		n.got = append(n.got, k)
		if u {
			n.unc = append(n.unc, k)
		}
	}
	n.st.Ack(res.Seqs)
}

func (n *fleetNode) drain(t testing.TB) {
	res, err := n.e.Drain()
	if err != nil {
		t.Fatal(err)
	}
	n.collect(t, res)
}

// oneEngine is what a single engine alerts on the whole stream.
func oneEngine(t *testing.T, rs *conf.RuleSet, stream []fleetRecord) []string {
	t.Helper()
	e, st := newEngine(t, rs, Options{TimeSource: EventTime, NoCaps: true})
	n := &fleetNode{e: e, st: st}
	for i := 0; i < len(stream); i += fleetBatch {
		n.run(t, records(stream[i:min(i+fleetBatch, len(stream))]))
	}
	n.drain(t)
	slices.Sort(n.got)
	return n.got
}

func records(fs []fleetRecord) []Record {
	out := make([]Record, len(fs))
	for i, f := range fs {
		out[i] = f.rec
	}
	return out
}

// union is every node's alerts, sorted.
func union(nodes []*fleetNode) (all, unconfirmed []string) {
	for _, n := range nodes {
		all = append(all, n.got...)
		unconfirmed = append(unconfirmed, n.unc...)
	}
	slices.Sort(all)
	return all, unconfirmed
}

// sameAlerts fails the test when got is not want: none missing, none
// doubled.
func sameAlerts(t testing.TB, want, got []string) {
	t.Helper()
	count := func(xs []string) map[string]int {
		m := map[string]int{}
		for _, x := range xs {
			m[x]++
		}
		return m
	}
	w, g := count(want), count(got)
	var missing, doubled, extra []string
	for k, n := range w {
		switch {
		case g[k] < n:
			missing = append(missing, k)
		case g[k] > n:
			doubled = append(doubled, k)
		}
	}
	for k := range g {
		if w[k] == 0 {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(doubled)+len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(doubled)
		slices.Sort(extra)
		t.Fatalf("the fleet made %d alerts, one engine %d: missing %d %.5q, doubled %d %.5q, not made by one engine %d %.5q",
			len(got), len(want), len(missing), missing, len(doubled), doubled, len(extra), extra)
	}
}

// finish drains the nodes' scheduled runs and holds their alerts to
// want's, none unconfirmed (the fleet was up); it returns them.
func finish(t *testing.T, nodes []*fleetNode, want []string) []string {
	t.Helper()
	for _, n := range nodes {
		n.drain(t)
	}
	got, unc := union(nodes)
	if len(unc) > 0 {
		t.Fatalf("%d alerts unconfirmed with the fleet up", len(unc))
	}
	sameAlerts(t, want, got)
	return got
}

// kinds counts alerts by kind, for the log.
func kinds(keys []string) string {
	m := map[string]int{}
	for _, k := range keys {
		if strings.Contains(k, " new_terms ") {
			m["new_terms"]++
		} else {
			m["other"]++
		}
	}
	return fmt.Sprint(m)
}

// feed runs each node's batches, the nodes at once.
func feed(t *testing.T, nodes []*fleetNode, batches [][][]Record) {
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range batches[i] {
				n.run(t, b)
			}
		}()
	}
	wg.Wait()
}

const fleetRecords = 6000

// Three nodes share one fleet and get one stream between them, a batch
// each in turn: their alerts are exactly those of one engine on the whole
// stream. Rules with per-node state (threshold, sequences) are left out:
// round-robin routing does not keep their records together.
func TestFleetSplitRoundRobin(t *testing.T) {
	requireCorpus(t)
	srv := natstest.Start(t)
	rs := fleetRules(t, func([]string) bool { return false })
	stream := fleetStream(t, fleetRecords)
	want := oneEngine(t, rs, stream)
	nodes := []*fleetNode{newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL())}
	batches := make([][][]Record, 3)
	for i, k := 0, 0; i < len(stream); i, k = i+fleetBatch, k+1 {
		batches[k%3] = append(batches[k%3], records(stream[i:min(i+fleetBatch, len(stream))]))
	}
	feed(t, nodes, batches)
	got := finish(t, nodes, want)
	claims, conflicts := 0, 0
	for _, n := range nodes {
		claims += int(n.fc.C.TermClaims.Load())
		conflicts += int(n.fc.C.TermConflicts.Load())
	}
	if conflicts == 0 {
		t.Fatal("no node met a term another had claimed: the test shares nothing")
	}
	t.Logf("%d records, %d alerts %s; %d term claims, %d conflicts", len(stream), len(got), kinds(got), claims, conflicts)
}

// Routed by account, the threshold rules grouped by account stay right too.
func TestFleetSplitByAccount(t *testing.T) {
	requireCorpus(t)
	srv := natstest.Start(t)
	rs := fleetRules(t, func(fields []string) bool { return slices.Contains(fields, "cloud.account.id") })
	stream := fleetStream(t, fleetRecords)
	want := oneEngine(t, rs, stream)
	thresholds := 0
	for _, k := range want {
		for _, r := range rs.Rules {
			if r.Type == "threshold" && strings.HasPrefix(k, r.RuleID+" ") {
				thresholds++
			}
		}
	}
	if thresholds == 0 {
		t.Fatal("the stream makes no threshold alert: the routing of per-node state is not tested")
	}
	nodes := []*fleetNode{newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL())}
	byAcct := make([][]Record, 3)
	for _, f := range stream {
		byAcct[f.account] = append(byAcct[f.account], f.rec)
	}
	batches := make([][][]Record, 3)
	for a, recs := range byAcct {
		for i := 0; i < len(recs); i += fleetBatch {
			batches[a] = append(batches[a], recs[i:min(i+fleetBatch, len(recs))])
		}
	}
	feed(t, nodes, batches)
	got := finish(t, nodes, want)
	t.Logf("%d records, %d alerts %s (%d of threshold rules grouped by account)", len(stream), len(got), kinds(got), thresholds)
}

// Two nodes fed the same whole stream (an active-active pair) send each
// alert once, per-node rules included: both count and run them, and the
// alert ids they make are claimed once.
func TestFleetActiveActive(t *testing.T) {
	requireCorpus(t)
	srv := natstest.Start(t)
	rs := fleetRules(t, func([]string) bool { return true })
	stream := fleetStream(t, fleetRecords/2)
	want := oneEngine(t, rs, stream)
	nodes := []*fleetNode{newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL())}
	var all [][]Record
	for i := 0; i < len(stream); i += fleetBatch {
		all = append(all, records(stream[i:min(i+fleetBatch, len(stream))]))
	}
	feed(t, nodes, [][][]Record{all, all})
	got := finish(t, nodes, want)
	dups := nodes[0].fc.C.AlertConflicts.Load() + nodes[1].fc.C.AlertConflicts.Load()
	if dups == 0 {
		t.Fatal("no alert id was found held by the other node")
	}
	t.Logf("%d records to each node, %d alerts %s; %d alert ids held by the other node", len(stream), len(got), kinds(got), dups)
}

// Two nodes meet the same new term at once, 1,000 times (the same record,
// as an HA pair gets it, or two records of one identity): exactly one alert
// each time.
func TestFleetRaceOnNewTerm(t *testing.T) {
	srv := natstest.Start(t)
	rs := ntRule(t, []string{"aws.cloudtrail.user_identity.arn"}, "now-7d")
	a, b := newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL())
	rounds := 1000
	for i := range rounds {
		ts := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		arn := fmt.Sprintf("arn:aws:iam::1:user/racer%d", i)
		ra := rec(t, ts, []string{arn}, "")
		rb := ra
		if i%2 == 1 {
			rb = rec(t, ts, []string{arn}, "")
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		var na, nb int
		for _, x := range []struct {
			n *fleetNode
			r Record
			c *int
		}{{a, ra, &na}, {b, rb, &nb}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := x.n.e.ProcessBatch([]Record{x.r})
				if err != nil {
					t.Error(err)
					return
				}
				*x.c = len(res.Alerts)
			}()
		}
		close(start)
		wg.Wait()
		if na+nb != 1 {
			t.Fatalf("round %d: %d alerts (node a %d, node b %d), want exactly one", i, na+nb, na, nb)
		}
	}
	wa, wb := a.fc.C.TermClaims.Load(), b.fc.C.TermClaims.Load()
	if wa+wb != int64(2*rounds) || a.fc.C.TermConflicts.Load()+b.fc.C.TermConflicts.Load() != int64(rounds) {
		t.Fatalf("claims %d+%d, conflicts %d+%d; want %d claims, %d conflicts", wa, wb,
			a.fc.C.TermConflicts.Load(), b.fc.C.TermConflicts.Load(), 2*rounds, rounds)
	}
	t.Logf("%d rounds: one alert each; node a lost %d, node b lost %d", rounds, a.fc.C.TermConflicts.Load(), b.fc.C.TermConflicts.Load())
}

// The server stopped for a third of the stream and started again: records
// are judged on each node's local tier meanwhile (alerts marked
// unconfirmed, none lost), the nodes reconnect, publish what they decided,
// and no confirmed alert is made twice.
func TestFleetServerRestartMidStream(t *testing.T) {
	srv := natstest.Start(t)
	rs := fleetRules(t, func([]string) bool { return false })
	stream := fleetStream(t, fleetRecords)
	want := oneEngine(t, rs, stream)
	nodes := []*fleetNode{newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL()), newFleetNode(t, rs, srv.URL())}
	third := make([][][][]Record, 3)
	for i, k := 0, 0; i < len(stream); i, k = i+fleetBatch, k+1 {
		part := min(3*i/len(stream), 2)
		if third[part] == nil {
			third[part] = make([][][]Record, 3)
		}
		third[part][k%3] = append(third[part][k%3], records(stream[i:min(i+fleetBatch, len(stream))]))
	}
	feed(t, nodes, third[0])
	srv.Stop()
	for _, n := range nodes {
		waitFor(t, "the node to notice the fleet is gone", func() bool { return !n.fc.Ready() })
	}
	feed(t, nodes, third[1])
	srv.Restart()
	for _, n := range nodes {
		waitFor(t, "the node to publish what it decided while the fleet was gone", func() bool { return n.fc.Ready() && n.fc.BacklogLen() == 0 })
	}
	// The backlog's last entries may still be in flight: wait until the
	// published counts stop moving.
	time.Sleep(500 * time.Millisecond)
	feed(t, nodes, third[2])
	for _, n := range nodes {
		n.drain(t)
	}
	got, unc := union(nodes)
	if len(unc) == 0 {
		t.Fatal("no alert was marked unconfirmed while the fleet was gone")
	}
	// None missing; doubles only among alerts made while the fleet was gone.
	var confirmed []string
	uncSet := map[string]int{}
	for _, k := range unc {
		uncSet[k]++
	}
	left := maps.Clone(uncSet)
	for _, k := range got {
		if left[k] > 0 {
			left[k]--
			continue
		}
		confirmed = append(confirmed, k)
	}
	have := map[string]int{}
	for _, k := range got {
		have[k]++
	}
	for _, k := range want {
		if have[k] == 0 {
			t.Fatalf("alert %s of one engine is missing", k)
		}
	}
	seen := map[string]bool{}
	for _, k := range confirmed {
		if seen[k] {
			t.Fatalf("alert %s confirmed twice", k)
		}
		seen[k] = true
	}
	var fallbacks, reconnects, published int64
	for _, n := range nodes {
		fallbacks += n.fc.C.Fallbacks.Load()
		reconnects += n.fc.C.Reconnects.Load()
		published += n.fc.C.Published.Load()
		if r := n.fc.C.Reconnects.Load(); r != 1 {
			t.Errorf("a node reconnected %d times, want 1", r)
		}
	}
	doubled := len(got) - len(want)
	t.Logf("%d alerts (one engine: %d), %d unconfirmed, %d made twice while the fleet was gone; %d fallbacks, %d reconnects, %d published after",
		len(got), len(want), len(unc), doubled, fallbacks, reconnects, published)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFleetRefusedBatchTakesItsClaimsBack: a node whose commit fails after
// its chunk claimed in the fleet (an outbox refusing the batch, a disk
// error: nothing of it written) left its claims, so the chunk given again
// to another node made nothing there: the alert was taken for the first
// node's, the term for one seen before. The claims are taken back; the
// other node makes the query alert and the new_terms alert.
func TestFleetRefusedBatchTakesItsClaimsBack(t *testing.T) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	st, fc := fleetState(t, srv.URL())
	failing := &failAfterEmit{Store: st, fail: true}
	a, err := New(rs, Options{State: failing, Fleet: fc})
	if err != nil {
		t.Fatal(err)
	}
	recs := jsonRecords([][]byte{
		[]byte(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutUseCaseForModelAccess","eventID":"grant-1","eventTime":"2026-11-20T10:00:00Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/x"}}`),
		[]byte(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutResourcePolicy","eventID":"policy-1","eventTime":"2026-11-20T10:00:01Z","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/x"}}`),
	})
	if _, err := a.ProcessBatch(recs); err == nil {
		t.Fatal("the injected failure did not happen")
	}
	b := newFleetNode(t, rs, srv.URL())
	res, err := b.e.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 2 || res.Stats.FleetDuplicates != 0 {
		var rules []string
		for _, a := range res.Alerts {
			rules = append(rules, a.Rule)
		}
		t.Fatalf("the other node: alerts %v, %d taken for another node's", rules, res.Stats.FleetDuplicates)
	}
}
