package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/internal/gen"
	"github.com/trailwatch/trailwatch/matcher/kql"
	"github.com/trailwatch/trailwatch/store"
)

// ntRuleText is a new_terms rule in detection-rules TOML.
func ntRuleText(name, id, query, window string, fields []string) string {
	quoted := make([]string, len(fields))
	for i, f := range fields {
		quoted[i] = fmt.Sprintf("%q", f)
	}
	return fmt.Sprintf(`[rule]
name = %q
rule_id = %q
type = "new_terms"
language = "kuery"
severity = "medium"
risk_score = 47
query = '%s'
[rule.new_terms]
field = "new_terms_fields"
value = [%s]
[[rule.new_terms.history_window_start]]
field = "history_window_start"
value = %q
`, name, id, query, strings.Join(quoted, ", "), window)
}

// ntRule writes a new_terms rule on fields with a window and loads it.
func ntRule(t *testing.T, fields []string, window string) *conf.RuleSet {
	t.Helper()
	return ruleSet(t, ntRuleText("nt", "nt-1", `event.provider: "bedrock.amazonaws.com" and event.outcome: success`, window, fields))
}

// ruleSet loads one rule written in detection-rules TOML.
func ruleSet(t *testing.T, src string) *conf.RuleSet {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rule.toml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), p)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

var recSeq atomic.Int64

// rec is a CloudTrail event (each with its own eventID) by the user arn(s)
// at eventTime; extra fields are merged in (JSON snippets).
func rec(t *testing.T, eventTime string, arns []string, extra string) Record {
	t.Helper()
	seq := recSeq.Add(1)
	arn := `"` + arns[0] + `"`
	if len(arns) > 1 {
		arn = `["` + strings.Join(arns, `","`) + `"]`
	}
	js := fmt.Sprintf(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutResourcePolicy","eventTime":%q,
		"eventID":"%d-%s-%s","awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","arn":%s,"accountId":"1"}%s}`,
		eventTime, seq, eventTime, strings.Join(arns, "+"), arn, extra)
	n, err := doc.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return Record{Node: n}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newEngine(t *testing.T, rs *conf.RuleSet, o Options) (*Engine, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o.State = st
	e, err := New(rs, o)
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}

func newTerms(res Result) [][]string {
	var out [][]string
	for _, a := range res.Alerts {
		nt, _ := a.Doc()["kibana.alert.new_terms"].([]string)
		out = append(out, nt)
	}
	return out
}

func TestNewTermsSemantics(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	type step struct {
		at   time.Duration // ingested clock offset
		evAt time.Duration // eventTime offset
		arns []string
		want [][]string // new_terms of the alerts
	}
	cases := []struct {
		name   string
		fields []string
		window string
		source TimeSource
		learn  time.Duration
		extra  string
		steps  []step
	}{
		{"first sighting alerts, repeat does not", []string{"aws.cloudtrail.user_identity.arn"}, "now-7d", Ingested, 0, "", []step{
			{0, 0, []string{"a"}, [][]string{{"a"}}},
			{day, 0, []string{"a"}, nil},
			{day, 0, []string{"b"}, [][]string{{"b"}}},
		}},
		{"window expiry: seen 8 days ago is new again for now-7d", []string{"aws.cloudtrail.user_identity.arn"}, "now-7d", Ingested, 0, "", []step{
			{0, 0, []string{"a"}, [][]string{{"a"}}},
			{6 * day, 0, []string{"a"}, nil},
			{14*day + time.Hour, 0, []string{"a"}, [][]string{{"a"}}},
		}},
		{"arrays give the cartesian product, each new combination alerts", []string{"aws.cloudtrail.user_identity.arn", "cloud.region"}, "now-7d", Ingested, 0, "", []step{
			{0, 0, []string{"a", "b"}, [][]string{{"a", "us-east-1"}, {"b", "us-east-1"}}},
			{time.Hour, 0, []string{"b", "c"}, [][]string{{"c", "us-east-1"}}},
		}},
		{"three fields", []string{"cloud.account.id", "aws.cloudtrail.user_identity.arn", "cloud.region"}, "now-7d", Ingested, 0, "", []step{
			{0, 0, []string{"a"}, [][]string{{"1", "a", "us-east-1"}}},
			{time.Hour, 0, []string{"a"}, nil},
		}},
		{"a record missing a field is skipped", []string{"aws.cloudtrail.user_identity.arn", "user_agent.original"}, "now-7d", Ingested, 0, "", []step{
			{0, 0, []string{"a"}, nil},
		}},
		// A replay: ingested a month after the events.
		{"event clock: windows on eventTime", []string{"aws.cloudtrail.user_identity.arn"}, "now-7d", EventTime, 0, "", []step{
			{30 * day, 0, []string{"a"}, [][]string{{"a"}}},
			{30*day + time.Minute, 8 * day, []string{"a"}, [][]string{{"a"}}}, // 8 event days later, ingested a minute later
		}},
		{"out of order: an older sighting never makes a term new", []string{"aws.cloudtrail.user_identity.arn"}, "now-7d", EventTime, 0, "", []step{
			{30 * day, 20 * day, []string{"a"}, [][]string{{"a"}}},
			{30*day + time.Minute, 0, []string{"a"}, nil}, // 20 days older: delivered late
			{30*day + 2*time.Minute, 21 * day, []string{"a"}, nil},
		}},
		{"event clock: an eventTime more than a day ahead is no sighting", []string{"aws.cloudtrail.user_identity.arn"}, "now-7d", EventTime, 0, "", []step{
			{0, 25 * time.Hour, []string{"a"}, nil},
			{time.Minute, 23 * time.Hour, []string{"a"}, [][]string{{"a"}}},
		}},
		{"learning period records without alerting", []string{"aws.cloudtrail.user_identity.arn"}, "now-7d", Ingested, 24 * time.Hour, "", []step{
			{0, 0, []string{"a"}, nil},
			{23 * time.Hour, 0, []string{"b"}, nil},
			{25 * time.Hour, 0, []string{"b"}, nil},               // known from learning
			{26 * time.Hour, 0, []string{"c"}, [][]string{{"c"}}}, // after learning
		}},
		{"only records that match the query count", []string{"aws.cloudtrail.user_identity.arn"}, "now-7d", Ingested, 0, `,"errorCode":"AccessDenied"`, []step{
			{0, 0, []string{"a"}, nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t0}
			e, _ := newEngine(t, ntRule(t, tc.fields, tc.window), Options{TimeSource: tc.source, Learning: tc.learn, Now: c.now})
			for i, s := range tc.steps {
				c.t = t0.Add(s.at)
				res, err := e.ProcessBatch([]Record{rec(t, ts(s.evAt), s.arns, tc.extra)})
				if err != nil {
					t.Fatal(err)
				}
				if got := newTerms(res); !reflect.DeepEqual(got, s.want) {
					t.Errorf("step %d: new terms %v, want %v", i, got, s.want)
				}
			}
		})
	}
	t.Run("missing-field case also after the term exists with the field", func(t *testing.T) {
		// the query matches but user_agent.original is absent: no alert and no history
		e, st := newEngine(t, ntRule(t, []string{"aws.cloudtrail.user_identity.arn", "user_agent.original"}, "now-7d"), Options{})
		e.ProcessBatch([]Record{rec(t, ts(0), []string{"a"}, "")})
		s, _ := st.Stats()
		if s.Terms != 0 {
			t.Errorf("%d terms recorded for a record missing a field", s.Terms)
		}
	})
}

// TestNewTermsOnIPFieldsCompareAddresses: an ip field's terms are the
// addresses Elasticsearch stores, so spellings of one address (upper case,
// zeros written out, IPv4-mapped) are one term, given in canonical form.
func TestNewTermsOnIPFieldsCompareAddresses(t *testing.T) {
	e, _ := newEngine(t, ntRule(t, []string{"source.ip"}, "now-7d"), Options{})
	var got [][]string
	for _, ip := range []string{"2001:DB8::1", "2001:db8::1", "2001:db8:0:0::1", "::ffff:192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		res, err := e.ProcessBatch([]Record{rec(t, "2026-11-01T00:00:00Z", []string{"a"}, `,"sourceIPAddress":"`+ip+`"`)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, newTerms(res)...)
	}
	want := [][]string{{"2001:db8::1"}, {"192.0.2.1"}, {"192.0.2.2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("new terms %v, want %v", got, want)
	}
}

func TestSameTermTwiceInOneBatch(t *testing.T) {
	e, _ := newEngine(t, ntRule(t, []string{"aws.cloudtrail.user_identity.arn"}, "now-7d"), Options{})
	res, err := e.ProcessBatch([]Record{rec(t, "2026-11-01T00:00:00Z", []string{"a"}, ""), rec(t, "2026-11-01T00:01:00Z", []string{"a"}, "")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 {
		t.Errorf("%d alerts, want 1: the second sighting in the batch is not new", len(res.Alerts))
	}
}

func TestBackfillRecordsWithoutAlerts(t *testing.T) {
	rs := ntRule(t, []string{"aws.cloudtrail.user_identity.arn"}, "now-7d")
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	bf, _ := New(rs, Options{State: st, TimeSource: EventTime, Backfill: true, Now: func() time.Time { return now }})
	res, _ := bf.ProcessBatch([]Record{rec(t, "2026-11-08T00:00:00Z", []string{"a"}, "")})
	if len(res.Alerts) != 0 || st.OutboxLen() != 0 {
		t.Fatalf("backfill emitted %d alerts", len(res.Alerts))
	}
	live, _ := New(rs, Options{State: st, Now: func() time.Time { return now }})
	res, _ = live.ProcessBatch([]Record{rec(t, "2026-11-10T00:00:00Z", []string{"a"}, ""), rec(t, "2026-11-10T00:00:00Z", []string{"b"}, "")})
	if got := newTerms(res); !reflect.DeepEqual(got, [][]string{{"b"}}) {
		t.Errorf("after backfill: new terms %v, want only b", got)
	}
}

func TestAlertDocument(t *testing.T) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e, _ := newEngine(t, rs, Options{Now: func() time.Time { return now }})
	r := rec(t, "2026-11-20T10:00:00Z", []string{"arn:aws:iam::1:user/alice"}, `,"eventVersion":"1.09","sourceIPAddress":"198.51.100.1"`)
	res, err := e.ProcessBatch([]Record{r})
	if err != nil || len(res.Alerts) != 1 {
		t.Fatalf("%v, %d alerts", err, len(res.Alerts))
	}
	d := res.Alerts[0].Doc()
	for k, want := range map[string]any{
		"@timestamp":                         "2026-11-23T10:00:00.000Z",
		"kibana.alert.original_event.kind":   "event",
		"kibana.alert.rule.rule_id":          "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b",
		"kibana.alert.rule.type":             "new_terms",
		"kibana.alert.severity":              "medium",
		"kibana.alert.risk_score":            47,
		"kibana.alert.original_time":         "2026-11-20T10:00:00.000Z",
		"kibana.alert.rule.version":          1,
		"kibana.alert.new_terms":             []string{"arn:aws:iam::1:user/alice"},
		"kibana.alert.rule.severity":         "medium",
		"kibana.alert.original_event.action": "PutResourcePolicy",
	} {
		if !reflect.DeepEqual(d[k], want) {
			t.Errorf("%s = %#v, want %#v", k, d[k], want)
		}
	}
	if !strings.Contains(d["kibana.alert.reason"].(string), "created medium alert AWS Bedrock Resource-Based Policy Modified or Deleted.") {
		t.Errorf("reason %q", d["kibana.alert.reason"])
	}
	if k := d["event"].(map[string]any)["kind"]; k != "signal" {
		t.Errorf("event.kind = %v, want signal", k)
	}
	if _, dotted := d["event.kind"]; dotted {
		t.Error("event.kind must not also appear as a dotted key")
	}
	src := d["source"].(map[string]any)
	if src["ip"] != "198.51.100.1" {
		t.Errorf("ECS source: %v", src)
	}
	if d["kibana.alert.uuid"] != AlertUUID("de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b", 1, fmt.Sprintf("%d-2026-11-20T10:00:00Z-arn:aws:iam::1:user/alice", recSeq.Load()), []string{"arn:aws:iam::1:user/alice"}) {
		t.Errorf("uuid %v is not the deterministic id", d["kibana.alert.uuid"])
	}
	if AlertUUID("r", 1, "e", nil) == AlertUUID("r", 2, "e", nil) || AlertUUID("r", 1, "e", []string{"a"}) == AlertUUID("r", 1, "e", []string{"b"}) {
		t.Error("uuid must change with the rule version and the new terms")
	}
	// The ids alerts already delivered carry: they must not change.
	for _, c := range []struct {
		got, want string
	}{
		{AlertUUID("de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b", 12, "c0ffee-1", []string{"arn:aws:iam::1:user/a", "1.2.3.4"}), "b3bdb379-b79f-4e7f-95d2-917e73e2a453"},
		{AlertUUID("r", 1, "", nil), "13194555-b5f7-415d-9f95-e70e09a6ad2c"},
	} {
		if c.got != c.want {
			t.Errorf("AlertUUID = %s, want %s", c.got, c.want)
		}
	}
}

func TestConcurrentBatches(t *testing.T) {
	e, st := newEngine(t, ntRule(t, []string{"aws.cloudtrail.user_identity.arn"}, "now-7d"), Options{})
	done := make(chan int)
	for w := 0; w < 4; w++ {
		go func(w int) {
			n := 0
			for i := 0; i < 50; i++ {
				res, err := e.ProcessBatch([]Record{rec(t, "2026-11-01T00:00:00Z", []string{fmt.Sprintf("u%d", i)}, "")})
				if err != nil {
					t.Error(err)
				}
				n += len(res.Alerts)
			}
			done <- n
		}(w)
	}
	total := 0
	for w := 0; w < 4; w++ {
		total += <-done
	}
	if total != 50 {
		t.Errorf("%d alerts from 4 workers racing on 50 terms, want exactly 50", total)
	}
	if st.OutboxLen() != 50 {
		t.Errorf("outbox %d, want 50", st.OutboxLen())
	}
}

// TestRetriedBatchMakesNoDuplicate: the same batch given twice (Fluent Bit's
// FLB_RETRY after a lost answer, an HTTP sender's retry) writes its query
// alerts once.
func TestRetriedBatchMakesNoDuplicate(t *testing.T) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
	if err != nil {
		t.Fatal(err)
	}
	e, st := newEngine(t, rs, Options{})
	n, _ := doc.ParseJSON([]byte(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutUseCaseForModelAccess","eventID":"retry-1","eventTime":"2026-11-20T10:00:00Z"}`))
	batch := []Record{{Node: n}}
	first, _ := e.ProcessBatch(batch)
	again, err := e.ProcessBatch(batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Alerts) != 1 || len(again.Alerts) != 0 || again.Stats.Duplicates != 1 || st.OutboxLen() != 1 {
		t.Errorf("first %d alerts, retry %d alerts (%d duplicates), outbox %d; want 1, 0, 1, 1",
			len(first.Alerts), len(again.Alerts), again.Stats.Duplicates, st.OutboxLen())
	}
}

// TestRulesSharingQueryAndFieldsShareOneHistory: rules with the same query,
// exceptions and new_terms fields count the same records, so they read one
// history (as in Kibana, where the history is the indexed data a rule added
// later finds already there); each still makes its own alerts, judged by
// its own window. When the rule a shared history is named after leaves,
// the history moves to the next name with its terms.
func TestRulesSharingQueryAndFieldsShareOneHistory(t *testing.T) {
	dir := t.TempDir()
	write := func(id, window string, fields ...string) {
		src := ntRuleText("nt "+id, id, `event.provider: "bedrock.amazonaws.com"`, window, fields)
		if err := os.WriteFile(filepath.Join(dir, id+".toml"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("copy-1", "now-7d", "aws.cloudtrail.user_identity.arn")
	write("copy-2", "now-7d", "aws.cloudtrail.user_identity.arn")
	write("copy-3", "now-10d", "aws.cloudtrail.user_identity.arn")
	write("other", "now-7d", "aws.cloudtrail.user_identity.arn", "cloud.region")
	load := func(files ...string) *conf.RuleSet {
		t.Helper()
		var paths []string
		for _, f := range files {
			paths = append(paths, filepath.Join(dir, f+".toml"))
		}
		rs, err := conf.LoadRules(cloudtrail.NewSchema(), paths...)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	engine := func(rs *conf.RuleSet) *Engine {
		t.Helper()
		e, err := New(rs, Options{State: st, TimeSource: EventTime})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	rulesOf := func(e *Engine, recs ...Record) map[string][]string {
		t.Helper()
		res, err := e.ProcessBatch(recs)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, a := range res.Alerts {
			nt, _ := a.Doc()["kibana.alert.new_terms"].([]string)
			out[a.RuleID] = append(out[a.RuleID], strings.Join(nt, "|"))
		}
		return out
	}
	check := func(step string, got, want map[string][]string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: alerts by rule %v, want %v", step, got, want)
		}
	}
	// copy-1 alone has seen arn "c".
	check("copy-1 alone", rulesOf(engine(load("copy-1")), rec(t, "2026-11-01T00:00:00Z", []string{"c"}, "")),
		map[string][]string{"copy-1": {"c"}})
	e := engine(load("copy-1", "copy-2", "copy-3", "other"))
	if w := e.Windows(); !reflect.DeepEqual(w, map[string]time.Duration{"copy-1": 10 * 24 * time.Hour, "other": 7 * 24 * time.Hour}) {
		t.Errorf("histories and windows %v", w)
	}
	check("a, new to all", rulesOf(e, rec(t, "2026-11-01T00:01:00Z", []string{"a"}, "")),
		map[string][]string{"copy-1": {"a"}, "copy-2": {"a"}, "copy-3": {"a"}, "other": {"a|us-east-1"}})
	check("a again", rulesOf(e, rec(t, "2026-11-01T00:02:00Z", []string{"a"}, "")), map[string][]string{})
	// The copies added later know "c" from copy-1's history; "other" has
	// its own. Two records of one batch: "c" again is not new for other.
	check("c and b", rulesOf(e, rec(t, "2026-11-01T00:03:00Z", []string{"c"}, ""), rec(t, "2026-11-01T00:04:00Z", []string{"b", "c"}, "")),
		map[string][]string{"copy-1": {"b"}, "copy-2": {"b"}, "copy-3": {"b"}, "other": {"c|us-east-1", "b|us-east-1"}})
	// Eight days on, "a" is new again for the 7-day rules, not for the
	// 10-day one, though they read one history.
	check("a after 8 days", rulesOf(e, rec(t, "2026-11-09T00:03:00Z", []string{"a"}, "")),
		map[string][]string{"copy-1": {"a"}, "copy-2": {"a"}, "other": {"a|us-east-1"}})
	// copy-1 leaves: the history is copy-2's now, with every term ("b",
	// last seen eight days before, is new for the 7-day rule only).
	e = engine(load("copy-2", "copy-3"))
	if w := e.Windows(); !reflect.DeepEqual(w, map[string]time.Duration{"copy-2": 10 * 24 * time.Hour}) {
		t.Errorf("histories and windows after copy-1 left %v", w)
	}
	check("after copy-1 left", rulesOf(e, rec(t, "2026-11-09T00:04:00Z", []string{"a"}, ""), rec(t, "2026-11-09T00:05:00Z", []string{"b", "d"}, "")),
		map[string][]string{"copy-2": {"b", "d"}, "copy-3": {"d"}})
	// An exception on one copy: the records it counts differ, so it reads
	// a history of its own.
	rs := load("copy-2", "copy-3")
	q, err := kql.Compile(rs.Schema, `source.ip: "10.0.0.1"`)
	if err != nil {
		t.Fatal(err)
	}
	x := &conf.Exceptions{ByRule: map[string][]*conf.Exception{"copy-3": {{Name: "office", Query: q}}}}
	e, err = New(rs, Options{State: st, TimeSource: EventTime, Exceptions: x})
	if err != nil {
		t.Fatal(err)
	}
	if w := e.Windows(); !reflect.DeepEqual(w, map[string]time.Duration{"copy-2": 7 * 24 * time.Hour, "copy-3": 10 * 24 * time.Hour}) {
		t.Errorf("histories and windows with an exception on copy-3 %v", w)
	}
}

// TestAlertJSONRendersTheDocument: an alert's JSON, put together from parts
// rendered once (the record's, the rule's, its own), is the bytes its whole
// document renders to, for every alert of Elastic's rules (or the bundled
// ones) over generated CloudTrail, several rules per record included.
func TestAlertJSONRendersTheDocument(t *testing.T) {
	rs, corpus := corpusRules(t)
	least := 3
	if corpus {
		least = 20
	}
	e, _ := newEngine(t, rs, Options{})
	recs, _ := genRecords(t, 3000, 11)
	res, err := e.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	shared := 0
	for i, a := range res.Alerts {
		want, err := alertJSON.Marshal(a.Doc())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Docs[i], want) {
			t.Fatalf("alert %s of %q:\n got %s\nwant %s", a.UUID, a.Rule, res.Docs[i], want)
		}
		if i > 0 && a.rec == res.Alerts[i-1].rec {
			shared++
		}
	}
	if len(res.Alerts) < least {
		t.Fatalf("%d alerts: too few to compare", len(res.Alerts))
	}
	t.Logf("%d alerts, %d sharing their record's part with the one before", len(res.Alerts), shared)
}

// TestRuleMatchesDoNotDependOnOtherRules: every rule matches the same
// records whether it runs alone or with all the others (Elastic's rules, or
// the bundled ones), records read in place and as trees.
func TestRuleMatchesDoNotDependOnOtherRules(t *testing.T) {
	all, corpus := corpusRules(t)
	least := 1 // the bundled rules: a weaker check
	if corpus {
		least = 10
	}
	mp, trees := genRecords(t, 6000, 5)
	matches := func(rs *conf.RuleSet, recs []Record) map[string]int {
		e, err := New(rs, Options{State: fakeState{}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for i := 0; i < len(recs); i += 500 { // batches, as chunks come
			res, err := e.ProcessBatch(recs[i:min(i+500, len(recs))])
			if err != nil {
				t.Fatal(err)
			}
			for r, n := range res.Stats.Matches {
				out[r] += n
			}
		}
		return out
	}
	together := matches(all, mp)
	if tr := matches(all, trees); !reflect.DeepEqual(tr, together) {
		t.Errorf("all rules: in place %v, as trees %v", together, tr)
	}
	matched := 0
	for _, r := range all.Runnable() {
		one := *all
		one.Rules = []*conf.Rule{r}
		alone := matches(&one, mp)[r.Name]
		if alone != together[r.Name] {
			t.Errorf("rule %q: %d matches alone, %d with the other rules", r.Name, alone, together[r.Name])
		}
		if alone > 0 {
			matched++
		}
	}
	if matched < least {
		t.Errorf("only %d rules matched anything: too few to compare", matched)
	}
}

// corpusRules loads Elastic's AWS rules, or, when ../shared is absent, the
// bundled rules (and says so); corpus tells which.
func corpusRules(t testing.TB) (rs *conf.RuleSet, corpus bool) {
	t.Helper()
	path := "../../shared/detection-rules/aws"
	if _, err := os.Stat(path); err != nil {
		t.Logf("Elastic's corpus is not at %s; using the bundled rules", path)
		path = "../conf/rules"
	} else {
		corpus = true
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), path)
	if err != nil {
		t.Fatal(err)
	}
	return rs, corpus
}

// genRecords returns n generated CloudTrail records, as MessagePack bodies
// read in place and as the same records' trees.
func genRecords(t testing.TB, n int, seed uint64) (mp, trees []Record) {
	t.Helper()
	err := gen.Generate(n, seed, func(m map[string]any) error {
		b, err := msgp.AppendIntf(nil, m)
		if err != nil {
			return err
		}
		node, _, err := doc.ReadMsgpack(b)
		mp, trees = append(mp, Record{Msgpack: b}), append(trees, Record{Node: node})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mp, trees
}

// TestLogFileReadInPlace: a CloudTrail log file object given as MessagePack
// (a line of Fluent Bit's tail can hold one) is read event by event in
// place: the same events and alerts as its tree gives, and a file of more
// values than a tree may hold (doc.MaxValues) is read whole.
func TestLogFileReadInPlace(t *testing.T) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
	if err != nil {
		t.Fatal(err)
	}
	logFile := func(n, pad int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"Records":[42,{"not":"an event"}`)
		for i := range n {
			action := "ListFoundationModels"
			if i%3 == 0 {
				action = "PutUseCaseForModelAccess"
			}
			fmt.Fprintf(&b, `,{"eventSource":"bedrock.amazonaws.com","eventName":%q,"eventID":"lf-%d-%d","eventTime":"2026-11-20T10:00:00Z","pad":[%s0]}`, action, pad, i, strings.Repeat("0,", pad))
		}
		b.WriteString(`],"Records2":1}`)
		return b.Bytes()
	}
	asMsgpack := func(js []byte) []byte {
		var m any
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatal(err)
		}
		b, err := msgp.AppendIntf(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	small := logFile(30, 2)
	tree, err := doc.ParseJSON(small)
	if err != nil {
		t.Fatal(err)
	}
	e1, _ := newEngine(t, rs, Options{})
	fromTree, _ := e1.ProcessBatch([]Record{{Node: tree}})
	e2, _ := newEngine(t, rs, Options{})
	inPlace, _ := e2.ProcessBatch([]Record{{Msgpack: asMsgpack(small)}})
	ids := func(r Result) []string {
		var out []string
		for _, a := range r.Alerts {
			out = append(out, a.UUID)
		}
		sort.Strings(out)
		return out
	}
	if inPlace.Stats.Events != 30 || fromTree.Stats.Events != 30 || !reflect.DeepEqual(ids(inPlace), ids(fromTree)) || len(ids(inPlace)) != 10 {
		t.Errorf("in place: %d events, alerts %v; from the tree: %d events, alerts %v", inPlace.Stats.Events, ids(inPlace), fromTree.Stats.Events, ids(fromTree))
	}
	// 6,000 events of 100 values: more than a tree may hold.
	big := asMsgpack(logFile(6000, 95))
	if _, _, err := doc.ReadMsgpack(big); !errors.Is(err, doc.ErrTooManyValues) {
		t.Fatalf("the big file as a tree: %v", err)
	}
	e3, _ := newEngine(t, rs, Options{NoCaps: true}) // 2,000 alerts: past max_signals
	res, err := e3.ProcessBatch([]Record{{Msgpack: big}})
	if err != nil || res.Stats.Events != 6000 || len(res.Alerts) != 2000 || res.Stats.Skipped["malformed"] != 0 {
		t.Errorf("the big file in place: %v, %d events, %d alerts, skipped %v", err, res.Stats.Events, len(res.Alerts), res.Stats.Skipped)
	}
}
