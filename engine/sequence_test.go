package engine

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
)

func seqRules(t *testing.T, query string) *conf.RuleSet {
	t.Helper()
	src := fmt.Sprintf(`[rule]
name = "seq"
rule_id = "seq-1"
type = "eql"
language = "eql"
severity = "high"
risk_score = 73
query = '''%s'''
`, query)
	rs := ruleSet(t, src)
	if rs.Runnable()[0].Sequence == nil {
		t.Fatal("not a sequence")
	}
	return rs
}

const abSeq = `sequence by user.id with maxspan=15m
  [any where event.action == "A"]
  [any where event.action == "B"]
until [any where event.action == "X"]`

// call is a CloudTrail event named action by principal at a time of day.
func call(t *testing.T, id, action, principal, clock string) Record {
	t.Helper()
	p := fmt.Sprintf("%q", principal)
	if strings.HasPrefix(principal, "[") || principal == "" {
		p = principal
		if p == "" {
			p = "null"
		}
	}
	js := fmt.Sprintf(`{"eventSource":"iam.amazonaws.com","eventName":%q,"eventTime":%q,"eventID":%q,
		"userIdentity":{"type":"IAMUser","principalId":%s},"sourceIPAddress":"192.0.2.1"}`,
		action, at(clock).Format(time.RFC3339), id, p)
	n, err := doc.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return Record{Node: n}
}

// sequences returns each completed sequence's event ids (from its
// building blocks), in order.
func sequences(t *testing.T, res Result) [][]string {
	t.Helper()
	groups := map[string][]string{}
	var order []string
	for _, a := range res.Alerts {
		d := a.Doc()
		g, _ := d["kibana.alert.group.id"].(string)
		if g == "" {
			t.Fatalf("alert without a group id: %v", d)
		}
		if _, ok := d["kibana.alert.building_block_type"]; !ok {
			if a.UUID != g {
				t.Errorf("the shell's id %s is not its group's %s", a.UUID, g)
			}
			order = append(order, g)
			continue
		}
		i := d["kibana.alert.group.index"].(int)
		ids := groups[g]
		for len(ids) <= i {
			ids = append(ids, "")
		}
		ids[i] = d["event"].(map[string]any)["id"].(string)
		groups[g] = ids
	}
	var out [][]string
	for _, g := range order {
		out = append(out, groups[g])
	}
	return out
}

func runSeq(t *testing.T, e *Engine, batches ...[]Record) [][]string {
	t.Helper()
	var out [][]string
	for _, b := range batches {
		res, err := e.ProcessBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sequences(t, res)...)
	}
	return out
}

func TestSequenceSemantics(t *testing.T) {
	cases := []struct {
		name    string
		batches func(t *testing.T) [][]Record
		want    [][]string
	}{
		{"a sequence", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00"), call(t, "b1", "B", "u1", "10:01:00")}}
		}, [][]string{{"a1", "b1"}}},
		{"the newest start wins", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00"), call(t, "a2", "A", "u1", "10:00:30")},
				{call(t, "b1", "B", "u1", "10:01:00"), call(t, "b2", "B", "u1", "10:02:00")}}
		}, [][]string{{"a2", "b1"}}},
		{"other keys do not join", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00"), call(t, "b1", "B", "u2", "10:01:00")}}
		}, nil},
		{"a null key joins nothing", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "", "10:00:00"), call(t, "b1", "B", "", "10:01:00")}}
		}, nil},
		{"a multi-valued key joins on each value", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", `["u1","u2"]`, "10:00:00"), call(t, "b1", "B", "u2", "10:01:00")}}
		}, [][]string{{"a1", "b1"}}},
		{"maxspan is inclusive", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00"), call(t, "b1", "B", "u1", "10:15:00")}}
		}, [][]string{{"a1", "b1"}}},
		{"maxspan exceeded", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00")}, {call(t, "b1", "B", "u1", "10:15:01")}}
		}, nil},
		{"until ends the key's sequences", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00"), call(t, "x1", "X", "u1", "10:00:30"), call(t, "b1", "B", "u1", "10:01:00")}}
		}, nil},
		{"until of another key does not", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00"), call(t, "x1", "X", "u2", "10:00:30"), call(t, "b1", "B", "u1", "10:01:00")}}
		}, [][]string{{"a1", "b1"}}},
		{"an event completes one sequence", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00"), call(t, "b1", "B", "u1", "10:01:00"), call(t, "b2", "B", "u1", "10:02:00")}}
		}, [][]string{{"a1", "b1"}}},
		{"out of order within a batch: taken in @timestamp order", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "b1", "B", "u1", "10:01:00"), call(t, "a1", "A", "u1", "10:00:00")}}
		}, [][]string{{"a1", "b1"}}},
		{"out of order across batches: the later stage came first", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "b1", "B", "u1", "10:01:00")}, {call(t, "a1", "A", "u1", "10:00:00")}}
		}, nil},
		{"a later stage older than the sequence does not extend it", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00")}, {call(t, "b1", "B", "u1", "09:59:00")}}
		}, nil},
		// The newest start by event time, not by arrival: a late, older
		// start replaced a1, and b1 was then past maxspan from it.
		// Pruning allows a maxspan of lateness: a batch of another key
		// 20 minutes ahead pruned a1, which b1 then completed nothing.
		{"a batch of another key a little ahead prunes nothing yet", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00")}, {call(t, "a9", "A", "u9", "10:20:00")}, {call(t, "b1", "B", "u1", "10:01:00")}}
		}, [][]string{{"a1", "b1"}}},
		{"a late, older start does not replace a newer one", func(t *testing.T) [][]Record {
			return [][]Record{{call(t, "a1", "A", "u1", "10:00:00")}, {call(t, "a2", "A", "u1", "09:50:00")}, {call(t, "b1", "B", "u1", "10:10:00")}}
		}, [][]string{{"a1", "b1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEngine(t, seqRules(t, abSeq), Options{BuildingBlocks: true})
			got := runSeq(t, e, tc.batches(t)...)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("sequences %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCompletingEventExtendsAnother: an event that completes a sequence
// still extends another at an earlier stage, as Elasticsearch matches
// stage by stage: [A][B][B] over a1 b1 a2 b2 b3 is two sequences (the
// second was lost).
func TestCompletingEventExtendsAnother(t *testing.T) {
	e, _ := newEngine(t, seqRules(t, `sequence by user.id with maxspan=15m
  [any where event.action == "A"]
  [any where event.action == "B"]
  [any where event.action == "B"]`), Options{BuildingBlocks: true})
	got := runSeq(t, e, []Record{call(t, "a1", "A", "u1", "10:00:00"), call(t, "b1", "B", "u1", "10:01:00"),
		call(t, "a2", "A", "u1", "10:02:00"), call(t, "b2", "B", "u1", "10:03:00"), call(t, "b3", "B", "u1", "10:04:00")})
	if fmt.Sprint(got) != "[[a1 b1 b2] [a2 b2 b3]]" {
		t.Errorf("sequences %v, want [[a1 b1 b2] [a2 b2 b3]]", got)
	}
}

// TestSequenceSurvivesRestart: a sequence half-way when the engine stops
// completes after it reopens the state file; a replay makes no second
// alert; only the shell reaches the sinks by default.
func TestSequenceSurvivesRestart(t *testing.T) {
	rs := seqRules(t, abSeq)
	path := filepath.Join(t.TempDir(), "state.db")
	open := func(o Options) (*Engine, *store.Store) {
		st, err := store.Open(path, store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		o.State = st
		e, err := New(rs, o)
		if err != nil {
			t.Fatal(err)
		}
		return e, st
	}
	e, st := open(Options{})
	if res, err := e.ProcessBatch([]Record{call(t, "a1", "A", "u1", "10:00:00")}); err != nil || len(res.Alerts) != 0 {
		t.Fatal(res.Alerts, err)
	}
	st.Close()
	e, st = open(Options{})
	res, err := e.ProcessBatch([]Record{call(t, "b1", "B", "u1", "10:05:00")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 {
		t.Fatalf("%d alerts after the restart, want the shell alone", len(res.Alerts))
	}
	shell := res.Alerts[0].Doc()
	if shell["kibana.alert.rule.type"] != "eql" || shell["kibana.alert.original_time"] != "2026-05-04T10:00:00.000Z" {
		t.Errorf("shell %v", shell)
	}
	// The events' shared fields are the shell's; the others are not.
	if shell["source"].(map[string]any)["address"] != "192.0.2.1" || shell["event"].(map[string]any)["action"] != nil {
		t.Errorf("shell fields: source %v event %v", shell["source"], shell["event"])
	}
	// The same records again: the sequence is made again with the same
	// id, which the state remembers.
	if _, err := e.ProcessBatch([]Record{call(t, "a1", "A", "u1", "10:00:00")}); err != nil {
		t.Fatal(err)
	}
	res, err = e.ProcessBatch([]Record{call(t, "b1", "B", "u1", "10:05:00")})
	if err != nil || len(res.Alerts) != 0 || res.Stats.Duplicates != 1 {
		t.Fatalf("replay: %d alerts, %d duplicates, %v", len(res.Alerts), res.Stats.Duplicates, err)
	}
	st.Close()
}

func TestSequencesInFlightAreBounded(t *testing.T) {
	e, st := newEngine(t, seqRules(t, abSeq), Options{SeqCap: 10})
	var recs []Record
	for i := range 25 {
		recs = append(recs, call(t, fmt.Sprintf("a%d", i), "A", fmt.Sprintf("u%d", i), at("10:00:00").Add(time.Duration(i)*time.Second).Format("15:04:05")))
	}
	res, err := e.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.SeqDropped != 15 {
		t.Errorf("%d dropped, want 15", res.Stats.SeqDropped)
	}
	// The newest are kept: u24's completes, u0's does not.
	res, err = e.ProcessBatch([]Record{call(t, "b0", "B", "u0", "10:01:00"), call(t, "b24", "B", "u24", "10:01:00")})
	if err != nil || len(res.Alerts) != 1 {
		t.Fatalf("%d alerts, %v", len(res.Alerts), err)
	}
	_ = st
}

// TestCorpusEQLRules runs each of Elastic's 28 AWS EQL rules on a record
// written for it, and on a near miss.
func TestCorpusEQLRules(t *testing.T) {
	all, corpus := corpusRules(t)
	if !corpus {
		t.Skip("Elastic's rules are not at ../../shared/detection-rules/aws: nothing to run")
	}
	byName := map[string]*conf.Rule{}
	for _, r := range all.Runnable() {
		if r.Type == "eql" {
			byName[r.Name] = r
		}
	}
	if len(byName) != 28 {
		t.Fatalf("%d runnable EQL rules, want 28", len(byName))
	}
	for _, tc := range eqlCorpusCases {
		t.Run(tc.rule, func(t *testing.T) {
			r := byName[tc.rule]
			if r == nil {
				t.Fatalf("no rule %q", tc.rule)
			}
			one := *all
			one.Rules = []*conf.Rule{r}
			try := func(records []string) int {
				e, _ := newEngine(t, &one, Options{})
				var recs []Record
				for _, js := range records {
					n, err := doc.ParseJSON([]byte(js))
					if err != nil {
						t.Fatalf("%v: %s", err, js)
					}
					recs = append(recs, Record{Node: n})
				}
				res, err := e.ProcessBatch(recs)
				if err != nil {
					t.Fatal(err)
				}
				return len(res.Alerts)
			}
			if n := try(tc.hit); n != 1 {
				t.Errorf("%d alerts on the records written for it, want 1", n)
			}
			if n := try(tc.miss); n != 0 {
				t.Errorf("%d alerts on the near miss, want 0", n)
			}
		})
	}
	seen := map[string]bool{}
	for _, tc := range eqlCorpusCases {
		seen[tc.rule] = true
	}
	var untested []string
	for name := range byName {
		if !seen[name] {
			untested = append(untested, name)
		}
	}
	slices.Sort(untested)
	if len(untested) > 0 {
		t.Errorf("rules without a test: %v", untested)
	}
}

// TestSequenceOfRecordsReadInPlace: records read from MessagePack (the
// plugin's path) keep their bytes in the state; the alerts' documents are
// built from them when the sequence completes.
func TestSequenceOfRecordsReadInPlace(t *testing.T) {
	mp := func(id, action, clock string) Record {
		var m map[string]any
		js := fmt.Sprintf(`{"eventSource":"iam.amazonaws.com","eventName":%q,"eventTime":%q,"eventID":%q,
			"userIdentity":{"type":"IAMUser","principalId":"u1"},"sourceIPAddress":"192.0.2.1"}`, action, at(clock).Format(time.RFC3339), id)
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatal(err)
		}
		b, err := msgp.AppendIntf(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return Record{Msgpack: b}
	}
	e, _ := newEngine(t, seqRules(t, abSeq), Options{BuildingBlocks: true})
	got := runSeq(t, e, []Record{mp("a1", "A", "10:00:00")}, []Record{mp("b1", "B", "10:00:05")})
	if fmt.Sprint(got) != "[[a1 b1]]" {
		t.Errorf("sequences %v", got)
	}
}

// TestUntilThatIsAlsoAStage: an until event that also matches a stage
// query, as Elasticsearch orders them: one that would start a sequence
// starts none (the until at its own start is within it), one that extends
// a sequence extends it (the until it ends with is strictly before the
// event that extends).
func TestUntilThatIsAlsoAStage(t *testing.T) {
	starts, _ := newEngine(t, seqRules(t, `sequence by user.id with maxspan=15m
  [any where event.action in ("A", "X")]
  [any where event.action == "B"]
until [any where event.action == "X"]`), Options{BuildingBlocks: true})
	if got := runSeq(t, starts, []Record{call(t, "x1", "X", "u1", "10:00:00"), call(t, "b1", "B", "u1", "10:01:00")}); got != nil {
		t.Errorf("an until that would start a sequence: %v, want none", got)
	}
	extends, _ := newEngine(t, seqRules(t, `sequence by user.id with maxspan=15m
  [any where event.action == "A"]
  [any where event.action in ("B", "X")]
until [any where event.action == "X"]`), Options{BuildingBlocks: true})
	if got := runSeq(t, extends, []Record{call(t, "a1", "A", "u1", "10:00:00"), call(t, "x1", "X", "u1", "10:01:00")}); fmt.Sprint(got) != "[[a1 x1]]" {
		t.Errorf("an until that extends a sequence: %v, want [[a1 x1]]", got)
	}
}

// TestSequencesPrunedPastMaxspan: sequences in flight are pruned once the
// batches' event time is past their maxspan and a maxspan of lateness: a
// start then completes nothing, and the state holds none.
func TestSequencesPrunedPastMaxspan(t *testing.T) {
	e, st := newEngine(t, seqRules(t, abSeq), Options{})
	runSeq(t, e, []Record{call(t, "a1", "A", "u1", "10:00:00")}, []Record{call(t, "a9", "A", "u9", "10:30:01")})
	if got := runSeq(t, e, []Record{call(t, "b1", "B", "u1", "10:01:00")}); got != nil {
		t.Errorf("a start pruned completed %v", got)
	}
	n := 0
	st.Commit(store.Batch{Emit: func(v *store.Verdicts) ([]store.Alert, error) {
		n, _ = v.Windows().SeqScan("seq-1", func(int, []byte, []byte) bool { return false })
		return nil, nil
	}})
	if n != 1 {
		t.Errorf("%d sequences in flight, want u9's alone", n)
	}
}
