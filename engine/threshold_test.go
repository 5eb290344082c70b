package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
)

// thRule loads a threshold rule on failed console logins grouped by
// fields, alerting at value events (and card distinct values of
// cardField, when set); from and interval as Kibana's (defaults now-6m,
// 5m).
func thRule(t *testing.T, fields []string, value int, cardField string, card int, extra string) *conf.RuleSet {
	t.Helper()
	quoted := make([]string, len(fields))
	for i, f := range fields {
		quoted[i] = fmt.Sprintf("%q", f)
	}
	cardinality := ""
	if cardField != "" {
		cardinality = fmt.Sprintf("[[rule.threshold.cardinality]]\nfield = %q\nvalue = %d\n", cardField, card)
	}
	src := fmt.Sprintf(`[rule]
name = "brute force"
rule_id = "th-1"
type = "threshold"
language = "kuery"
severity = "high"
risk_score = 73
from = "now-6m"
%s
query = 'event.provider: signin.amazonaws.com and event.action: ConsoleLogin and event.outcome: failure'
[rule.threshold]
field = [%s]
value = %d
%s`, extra, strings.Join(quoted, ", "), value, cardinality)
	rs := ruleSet(t, src)
	if rs.Runnable()[0].ThresholdSpec == nil {
		t.Fatal("the threshold block was not read")
	}
	return rs
}

var loginSeq int

// login is a failed console login at eventTime in account acct from ip
// (a JSON list of addresses for several); user names the identity.
func login(t *testing.T, at time.Time, acct, ip, user string) Record {
	t.Helper()
	loginSeq++
	src := ip
	if !strings.HasPrefix(ip, "[") {
		src = fmt.Sprintf("%q", ip)
	}
	acctJSON := ""
	if acct != "" {
		acctJSON = fmt.Sprintf(`,"accountId":%q`, acct)
	}
	js := fmt.Sprintf(`{"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventTime":%q,
		"eventID":"login-%d","awsRegion":"us-east-1","sourceIPAddress":%s,
		"userIdentity":{"type":"Root","userName":%q%s},
		"responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication"}`,
		at.UTC().Format(time.RFC3339), loginSeq, src, user, acctJSON)
	n, err := doc.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return Record{Node: n}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, "2026-05-04T"+s+"Z")
	if err != nil {
		panic(err)
	}
	return t
}

// logins makes n failed logins from start, a second apart.
func logins(t *testing.T, n int, start time.Time, acct, ip, user string) []Record {
	var out []Record
	for i := range n {
		out = append(out, login(t, start.Add(time.Duration(i)*time.Second), acct, ip, user))
	}
	return out
}

type thResult struct {
	terms []string
	count float64
	from  string
	card  float64
	at    string
}

func thResults(t *testing.T, res Result) []thResult {
	t.Helper()
	var out []thResult
	for _, a := range res.Alerts {
		d := a.Doc()
		tr, ok := d["kibana.alert.threshold_result"].(map[string]any)
		if !ok {
			t.Fatalf("alert without threshold_result: %v", d)
		}
		r := thResult{from: tr["from"].(string), at: d["@timestamp"].(string)}
		switch c := tr["count"].(type) {
		case uint64:
			r.count = float64(c)
		}
		for _, term := range tr["terms"].([]any) {
			m := term.(map[string]any)
			r.terms = append(r.terms, m["field"].(string)+"="+m["value"].(string))
		}
		if cs, ok := tr["cardinality"].([]any); ok {
			r.card = float64(cs[0].(map[string]any)["value"].(int))
		}
		if d["kibana.alert.original_time"] != r.at {
			t.Errorf("original_time %v, @timestamp %v", d["kibana.alert.original_time"], r.at)
		}
		out = append(out, r)
	}
	return out
}

// feedAll processes batches in order and gathers the alerts, then drains.
func feedAll(t *testing.T, e *Engine, batches ...[]Record) []thResult {
	t.Helper()
	var out []thResult
	for _, b := range batches {
		res, err := e.ProcessBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, thResults(t, res)...)
	}
	res, err := e.Drain()
	if err != nil {
		t.Fatal(err)
	}
	return append(out, thResults(t, res)...)
}

func TestThresholdCountsAsKibana(t *testing.T) {
	base := at("10:00:00")
	cases := []struct {
		name   string
		fields []string
		value  int
		recs   func(t *testing.T) []Record
		want   []thResult
	}{
		{"just below", []string{"cloud.account.id"}, 10, func(t *testing.T) []Record {
			return logins(t, 9, base, "111", "192.0.2.1", "root")
		}, nil},
		{"at the threshold", []string{"cloud.account.id"}, 10, func(t *testing.T) []Record {
			return logins(t, 10, base, "111", "192.0.2.1", "root")
		}, []thResult{{terms: []string{"cloud.account.id=111"}, count: 10, from: "2026-05-04T10:00:00.000Z", at: "2026-05-04T10:00:09.000Z"}}},
		{"the same records given twice count once", []string{"cloud.account.id"}, 10, func(t *testing.T) []Record {
			recs := logins(t, 5, base, "111", "192.0.2.1", "root")
			return append(recs, recs...)
		}, nil},
		{"groups apart", []string{"cloud.account.id"}, 10, func(t *testing.T) []Record {
			return append(logins(t, 10, base, "111", "192.0.2.1", "root"), logins(t, 9, base, "222", "192.0.2.1", "root")...)
		}, []thResult{{terms: []string{"cloud.account.id=111"}, count: 10, from: "2026-05-04T10:00:00.000Z", at: "2026-05-04T10:00:09.000Z"}}},
		{"a missing group field drops the event", []string{"cloud.account.id", "source.ip"}, 3, func(t *testing.T) []Record {
			// source.ip is absent for a service name in sourceIPAddress.
			return append(logins(t, 2, base, "111", "192.0.2.1", "root"), logins(t, 2, base, "111", "signin.amazonaws.com", "root")...)
		}, nil},
		{"multi-valued group fields: one group per value", []string{"source.ip"}, 3, func(t *testing.T) []Record {
			return logins(t, 3, base, "111", `["192.0.2.1","192.0.2.2"]`, "root")
		}, []thResult{
			{terms: []string{"source.ip=192.0.2.1"}, count: 3, from: "2026-05-04T10:00:00.000Z", at: "2026-05-04T10:00:02.000Z"},
			{terms: []string{"source.ip=192.0.2.2"}, count: 3, from: "2026-05-04T10:00:00.000Z", at: "2026-05-04T10:00:02.000Z"}}},
		{"no group fields: one group", nil, 4, func(t *testing.T) []Record {
			return append(logins(t, 2, base, "111", "192.0.2.1", "root"), logins(t, 2, base, "222", "192.0.2.9", "root")...)
		}, []thResult{{count: 4, from: "2026-05-04T10:00:00.000Z", at: "2026-05-04T10:00:01.000Z"}}},
		{"outside the window", []string{"cloud.account.id"}, 10, func(t *testing.T) []Record {
			// 5 at 09:58 and 5 at 10:04:30: no 6-minute window starting
			// at a 5-minute mark holds all ten.
			return append(logins(t, 5, at("09:53:30"), "111", "192.0.2.1", "root"), logins(t, 5, at("10:04:30"), "111", "192.0.2.1", "root")...)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEngine(t, thRule(t, tc.fields, tc.value, "", 0, ""), Options{TimeSource: EventTime})
			got := feedAll(t, e, tc.recs(t))
			if len(got) != len(tc.want) {
				t.Fatalf("alerts %+v, want %+v", got, tc.want)
			}
			slices.SortFunc(got, func(a, b thResult) int {
				return strings.Compare(strings.Join(a.terms, ","), strings.Join(b.terms, ","))
			})
			for i := range got {
				if !slices.Equal(got[i].terms, tc.want[i].terms) || got[i].count != tc.want[i].count || got[i].from != tc.want[i].from || got[i].at != tc.want[i].at {
					t.Errorf("alert %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestThresholdCardinality(t *testing.T) {
	// 40 distinct event ids per source: each login has its own eventID.
	rs := thRule(t, []string{"source.ip"}, 1, "event.id", 5, "")
	e, _ := newEngine(t, rs, Options{TimeSource: EventTime})
	recs := logins(t, 5, at("10:00:00"), "111", "192.0.2.1", "root")
	// The same event five times is one distinct id.
	one := login(t, at("10:00:00"), "111", "192.0.2.7", "root")
	for range 5 {
		recs = append(recs, one)
	}
	got := feedAll(t, e, recs)
	if len(got) != 1 || got[0].terms[0] != "source.ip=192.0.2.1" || got[0].card != 5 || got[0].count != 5 {
		t.Fatalf("alerts %+v, want one for 192.0.2.1 with 5 distinct ids", got)
	}
}

// TestThresholdSignalHistory: two overlapping runs see the same events;
// the group that alerted in the first counts only its later events in the
// second, and alerts again only when they reach the threshold themselves.
func TestThresholdSignalHistory(t *testing.T) {
	e, _ := newEngine(t, thRule(t, []string{"cloud.account.id"}, 3, "", 0, ""), Options{TimeSource: EventTime})
	var got []thResult
	for _, b := range [][]Record{
		logins(t, 3, at("10:04:10"), "111", "192.0.2.1", "root"), // run 10:05 alerts; run 10:10 sees them again
		logins(t, 2, at("10:06:00"), "111", "192.0.2.1", "root"), // 2 after the alert: below 3 at run 10:10
		{login(t, at("10:11:00"), "111", "192.0.2.1", "root")},   // moves the clock past 10:10
		logins(t, 3, at("10:12:00"), "111", "192.0.2.1", "root"), // 1+3 after 10:10's window... at run 10:15
		{login(t, at("10:16:00"), "999", "192.0.2.1", "root")},
	} {
		res, err := e.ProcessBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, thResults(t, res)...)
	}
	// Run 10:05 [09:59, 10:05): 3 -> alert. Run 10:10 [10:04, 10:10): 5,
	// but only the 2 since 10:05 count -> none. Run 10:15 [10:09, 10:15):
	// 4 events, all after 10:05 -> alert.
	if len(got) != 2 || got[0].count != 3 || got[1].count != 4 || got[1].from != "2026-05-04T10:11:00.000Z" {
		t.Fatalf("alerts %+v", got)
	}
}

// TestThresholdRestartOutOfOrderAndReplay: the same records give the same
// alerts (same ids) fed in one batch, fed a few at a time across a restart
// of the engine on the same state file, and fed out of order.
func TestThresholdRestartOutOfOrderAndReplay(t *testing.T) {
	var recs []Record
	recs = append(recs, logins(t, 4, at("10:00:10"), "111", "192.0.2.1", "root")...)
	recs = append(recs, logins(t, 4, at("10:01:10"), "222", "192.0.2.2", "root")...)
	recs = append(recs, logins(t, 4, at("10:07:00"), "111", "192.0.2.1", "root")...)
	recs = append(recs, logins(t, 4, at("10:13:00"), "222", "192.0.2.2", "root")...)
	rs := thRule(t, []string{"cloud.account.id"}, 4, "", 0, "")
	ids := func(res []Result) []string {
		var out []string
		for _, r := range res {
			for _, a := range r.Alerts {
				out = append(out, a.UUID)
			}
		}
		slices.Sort(out)
		return out
	}
	whole := func() []string {
		e, _ := newEngine(t, rs, Options{TimeSource: EventTime})
		r1, err := e.ProcessBatch(recs)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := e.Drain()
		if err != nil {
			t.Fatal(err)
		}
		return ids([]Result{r1, r2})
	}()
	if len(whole) != 4 {
		t.Fatalf("%d alerts on the whole stream, want 4 (each group twice)", len(whole))
	}
	path := filepath.Join(t.TempDir(), "state.db")
	var res []Result
	for i := 0; i < len(recs); i += 3 {
		st, err := store.Open(path, store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(rs, Options{State: st, TimeSource: EventTime})
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.ProcessBatch(recs[i:min(i+3, len(recs))])
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
		if i+3 >= len(recs) {
			r, err := e.Drain()
			if err != nil {
				t.Fatal(err)
			}
			res = append(res, r)
		}
		st.Close()
	}
	if got := ids(res); !slices.Equal(got, whole) {
		t.Errorf("across restarts: %v, want %v", got, whole)
	}
	// Out of order: the later records first, then the earlier ones; a
	// late record still counts toward the runs to come whose window holds
	// it (here: every run, as the clock has not passed the first window
	// before the early records arrive in the same batch order reversed).
	rev := slices.Clone(recs)
	slices.Reverse(rev)
	e, _ := newEngine(t, rs, Options{TimeSource: EventTime})
	r1, err := e.ProcessBatch(rev)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.Drain()
	if err != nil {
		t.Fatal(err)
	}
	if got := ids([]Result{r1, r2}); !slices.Equal(got, whole) {
		t.Errorf("reversed in one batch: %v, want %v", got, whole)
	}
	// Replayed on the same file: no second alert (the ids are remembered).
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e2, err := New(rs, Options{State: st, TimeSource: EventTime})
	if err != nil {
		t.Fatal(err)
	}
	r3, err := e2.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(r3.Alerts) != 0 {
		t.Errorf("a replay on the same file made %d alerts", len(r3.Alerts))
	}
}

// TestThresholdRunsOnTheIngestedClock: with the ingested clock, a timer's
// RunDue makes the run when no record arrives, once.
func TestThresholdRunsOnTheIngestedClock(t *testing.T) {
	c := &clock{t: at("10:04:30")}
	e, _ := newEngine(t, thRule(t, []string{"cloud.account.id"}, 3, "", 0, ""), Options{Now: c.now})
	res, err := e.ProcessBatch(logins(t, 3, at("08:00:00"), "111", "192.0.2.1", "root"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 0 {
		t.Fatal("alerted before the run")
	}
	res, err = e.RunDue(at("10:04:59"))
	if err != nil || len(res.Alerts) != 0 {
		t.Fatalf("run before its time: %v %v", res.Alerts, err)
	}
	res, err = e.RunDue(at("10:05:01"))
	if err != nil {
		t.Fatal(err)
	}
	got := thResults(t, res)
	if len(got) != 1 || got[0].at != "2026-05-04T10:04:30.000Z" {
		t.Fatalf("run at 10:05: %+v", got)
	}
	res, err = e.RunDue(at("10:10:01"))
	if err != nil || len(res.Alerts) != 0 {
		t.Fatalf("the next run alerted again: %v %v", res.Alerts, err)
	}
	if res.Stats.Runs != 1 {
		t.Errorf("runs = %d, want 1 (the 10:10 run's window [10:04, 10:10) holds the events)", res.Stats.Runs)
	}
}

func TestThresholdWindowIsBounded(t *testing.T) {
	e, st := newEngine(t, thRule(t, []string{"user.name"}, 2, "", 0, ""), Options{TimeSource: EventTime, WindowCap: 20})
	var recs []Record
	for i := range 50 {
		recs = append(recs, login(t, at("10:00:00").Add(time.Duration(i)*time.Second), "111", "192.0.2.1", fmt.Sprintf("u%d", i)))
	}
	res, err := e.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.WindowFull != 30 {
		t.Errorf("%d counts refused at the cap, want 30", res.Stats.WindowFull)
	}
	ws, err := st.WindowStats()
	if err != nil || len(ws) != 1 || ws[0].Groups != 20 || ws[0].Entries != 20 || ws[0].Buckets != 1 {
		t.Fatalf("window stats %+v %v, want 20 groups kept", ws, err)
	}
	// A group already kept still counts at the cap.
	res, err = e.ProcessBatch([]Record{login(t, at("10:00:55"), "111", "192.0.2.1", "u0")})
	if err != nil || res.Stats.WindowFull != 0 {
		t.Fatalf("a kept group's record was refused: %+v %v", res.Stats, err)
	}
	// A record far past the wall clock does not move the event clock.
	future := login(t, time.Now().Add(48*time.Hour), "111", "192.0.2.1", "u0")
	if _, err := e.ProcessBatch([]Record{future}); err != nil {
		t.Fatal(err)
	}
	ws, _ = st.WindowStats()
	if ws[0].LastRun.After(time.Now()) {
		t.Errorf("a future record moved the runs to %v", ws[0].LastRun)
	}
}

// TestCorpusThresholdRules runs each of Elastic's five AWS threshold rules
// on records written for it: one short of the threshold (or of the
// distinct values) makes no alert; at it, one alert for the group.
func TestCorpusThresholdRules(t *testing.T) {
	all, corpus := corpusRules(t)
	if !corpus {
		t.Skip("Elastic's rules are not at ../../shared/detection-rules/aws: nothing to run")
	}
	// Each record: %[1]d is its number, %[2]s its eventTime.
	cases := []struct {
		rule, record string
		n            int
	}{
		{"AWS Management Console Brute Force of Root User Identity",
			`{"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventTime":%[2]q,"eventID":"e%[1]d",
			"userIdentity":{"type":"Root","accountId":"111122223333"},"recipientAccountId":"111122223333",
			"responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication"}`, 10},
		{"AWS IAM Principal Enumeration via UpdateAssumeRolePolicy",
			`{"eventSource":"iam.amazonaws.com","eventName":"UpdateAssumeRolePolicy","eventTime":%[2]q,"eventID":"e%[1]d",
			"userIdentity":{"type":"IAMUser","userName":"mallory","accountId":"111122223333"},"sourceIPAddress":"198.51.100.7",
			"errorCode":"MalformedPolicyDocumentException","requestParameters":{"roleName":"r%[1]d"}}`, 25},
		{"AWS S3 Bucket Enumeration or Brute Force",
			`{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":%[2]q,"eventID":"e%[1]d",
			"userIdentity":{"type":"AWSAccount"},"sourceIPAddress":"198.51.100.7","errorCode":"AccessDenied",
			"tlsDetails":{"clientProvidedHostHeader":"victim-%[1]d.s3.amazonaws.com"}}`, 0},
		{"AWS Secrets Manager Rapid Secrets Retrieval",
			`{"eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","eventTime":%[2]q,"eventID":"e%[1]d",
			"userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","userName":"svc"},"sourceIPAddress":"198.51.100.7",
			"requestParameters":{"secretId":"prod/db-%[1]d"}}`, 20},
		{"Excessive AWS S3 Object Encryption with SSE-C",
			`{"eventSource":"s3.amazonaws.com","eventName":"PutObject","eventTime":%[2]q,"eventID":"e%[1]d",
			"userIdentity":{"type":"IAMUser"},"sourceIPAddress":"198.51.100.7",
			"requestParameters":{"bucketName":"victim","key":"f%[1]d","x-amz-server-side-encryption-customer-algorithm":"AES256"},
			"tlsDetails":{"clientProvidedHostHeader":"victim.s3.amazonaws.com"}}`, 20},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			one := *all
			one.Rules = nil
			for _, r := range all.Runnable() {
				if r.Name == tc.rule {
					one.Rules = append(one.Rules, r)
				}
			}
			if len(one.Rules) != 1 || one.Rules[0].Type != "threshold" {
				t.Fatalf("rule %q: found %d runnable threshold rules", tc.rule, len(one.Rules))
			}
			record := tc.record
			n := tc.n
			if n == 0 {
				// S3 enumeration: 40 distinct event ids per host, source and
				// identity type: one host for all.
				record = strings.Replace(record, "victim-%[1]d", "victim", 1)
				n = one.Rules[0].ThresholdSpec.Cardinality[0].Value
			}
			mk := func(k int) []Record {
				var out []Record
				for i := range k {
					js := fmt.Sprintf(record, i, at("10:00:00").Add(time.Duration(i)*time.Second).Format(time.RFC3339))
					nd, err := doc.ParseJSON([]byte(js))
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, Record{Node: nd})
				}
				return out
			}
			e, _ := newEngine(t, &one, Options{TimeSource: EventTime})
			if got := feedAll(t, e, mk(n-1)); len(got) != 0 {
				t.Fatalf("%d records (one short): %+v", n-1, got)
			}
			e, _ = newEngine(t, &one, Options{TimeSource: EventTime})
			got := feedAll(t, e, mk(n))
			if len(got) != 1 || int(got[0].count) != n {
				t.Fatalf("%d records: %+v, want one alert counting them all", n, got)
			}
		})
	}
}

// failAfterEmit is a State whose next commit fails after its Emit has run
// (the runs made, then the transaction refused: a full outbox, a disk
// error).
type failAfterEmit struct {
	*store.Store
	fail bool
}

func (f *failAfterEmit) Commit(b store.Batch) (store.CommitResult, error) {
	if f.fail {
		f.fail = false
		emit := b.Emit
		b.Emit = func(v *store.Verdicts) ([]store.Alert, error) {
			if _, err := emit(v); err != nil {
				return nil, err
			}
			return nil, errors.New("injected: the transaction fails after the runs")
		}
	}
	return f.Store.Commit(b)
}

// TestFailedRunIsMadeAtTheNextCall: a RunDue whose transaction fails
// leaves its run due, so the timer's next call makes it (it moved the next
// run time on and the run waited an interval).
func TestFailedRunIsMadeAtTheNextCall(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs := &failAfterEmit{Store: st}
	c := &clock{t: at("10:04:30")}
	e, err := New(thRule(t, []string{"cloud.account.id"}, 3, "", 0, ""), Options{State: fs, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ProcessBatch(logins(t, 3, at("08:00:00"), "111", "192.0.2.1", "root")); err != nil {
		t.Fatal(err)
	}
	fs.fail = true
	if _, err := e.RunDue(at("10:05:01")); err == nil {
		t.Fatal("the injected failure did not happen")
	}
	res, err := e.RunDue(at("10:05:31"))
	if err != nil || len(res.Alerts) != 1 {
		t.Errorf("the timer's call after a failed run: %d alerts, %v; want the 10:05 run's alert", len(res.Alerts), err)
	}
}

// TestReplayAfterAlertCountsOnce: on the ingested clock, the records a
// group alerted on, given again after the alert (a chunk Fluent Bit sends
// again after a crash), made a second alert at the next run (the buckets
// before an alert are passed over, and the record ids they held with
// them). The record memory keeps them from counting again; new records
// still count.
func TestReplayAfterAlertCountsOnce(t *testing.T) {
	recs := logins(t, 3, at("08:00:00"), "111", "192.0.2.1", "root")
	c := &clock{t: at("10:04:30")}
	e, _ := newEngine(t, thRule(t, []string{"cloud.account.id"}, 3, "", 0, ""), Options{Now: c.now})
	if _, err := e.ProcessBatch(recs); err != nil {
		t.Fatal(err)
	}
	if res, err := e.RunDue(at("10:05:01")); err != nil || len(res.Alerts) != 1 {
		t.Fatalf("the run at 10:05: %d alerts, %v", len(res.Alerts), err)
	}
	c.t = at("10:05:30")
	res, err := e.ProcessBatch(recs) // the same records again
	if err != nil || res.Stats.Replayed != 3 {
		t.Fatalf("the same records again: %d replayed, %v", res.Stats.Replayed, err)
	}
	if res, err := e.RunDue(at("10:10:01")); err != nil || len(res.Alerts) != 0 {
		t.Fatalf("the same 3 records given again: %d alerts at 10:10, %v", len(res.Alerts), err)
	}
	c.t = at("10:11:00")
	if _, err := e.ProcessBatch(append(recs, logins(t, 3, at("08:30:00"), "111", "192.0.2.1", "root")...)); err != nil {
		t.Fatal(err)
	}
	res, err = e.RunDue(at("10:15:01"))
	if err != nil || len(res.Alerts) != 1 || res.Alerts[0].Doc()["kibana.alert.threshold_result"].(map[string]any)["count"] != uint64(3) {
		t.Fatalf("3 new records and the 3 again: %d alerts, %v; want one of 3 events", len(res.Alerts), err)
	}
}

// TestMaxSignalsKeepsCompositeOrder: Kibana keeps the first max_signals
// groups of its composite aggregation, ordered by the groups' values, not
// by their counts (the groups with most events were kept here).
func TestMaxSignalsKeepsCompositeOrder(t *testing.T) {
	rs := thRule(t, []string{"cloud.account.id"}, 3, "", 0, "max_signals = 1")
	c := &clock{t: at("10:04:30")}
	e, _ := newEngine(t, rs, Options{Now: c.now})
	recs := append(logins(t, 5, at("10:00:00"), "222", "192.0.2.1", "root"), logins(t, 3, at("10:01:00"), "111", "192.0.2.1", "root")...)
	if _, err := e.ProcessBatch(recs); err != nil {
		t.Fatal(err)
	}
	res, err := e.RunDue(at("10:05:01"))
	if err != nil || len(res.Alerts) != 1 {
		t.Fatalf("%d alerts, %v", len(res.Alerts), err)
	}
	if got := thResults(t, res); len(got) != 1 || got[0].terms[0] != "cloud.account.id=111" {
		t.Errorf("kept %+v, want the group of account 111 (first by value)", got)
	}
}
