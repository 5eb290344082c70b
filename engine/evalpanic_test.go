package engine

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
)

// panicky is an enricher with defects two addresses bring out.
type panicky struct{}

func (panicky) Lookup(ip netip.Addr) map[string]matcher.Value {
	switch ip {
	case netip.MustParseAddr("203.0.113.66"):
		var m map[string]matcher.Value
		m["x"] = matcher.Value{} // a nil map: a panic
	case netip.MustParseAddr("203.0.113.67"):
		panic("another defect")
	}
	return map[string]matcher.Value{"source.as.organization.name": {Text: "Example", Kind: matcher.KindString}}
}

// TestEvaluationPanicIsTheRecordsAlone: a panic while a rule judges a
// record (a defect some record brings out: EQL's between~ on a text whose
// lowercase is longer was one) stopped scan and serve, and made Fluent
// Bit drop the chunk. The record is counted as skipped with what failed,
// its alerts dropped; the batch's other records alert and commit. The
// first failure is reported with its stack (Stats.EvalFailure: instance
// logs it, scan prints it and exits 1 when it is set), and stays in the
// totals scan adds up.
func TestEvaluationPanicIsTheRecordsAlone(t *testing.T) {
	rs := ruleSet(t, `[rule]
name = "org"
rule_id = "org-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
query = 'event.provider: signin.amazonaws.com and source.as.organization.name: Example'
`)
	e, st := newEngine(t, rs, Options{Enricher: panicky{}})
	recs := append(logins(t, 2, at("10:00:00"), "111", "192.0.2.1", "root"), logins(t, 1, at("10:00:05"), "111", "203.0.113.66", "root")...)
	recs = append(recs, logins(t, 2, at("10:00:10"), "111", "192.0.2.2", "root")...)
	recs = append(recs, logins(t, 1, at("10:00:15"), "111", "203.0.113.67", "root")...)
	res, err := e.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	// The two records that panic are skipped; the four others alert, and
	// their alerts are committed to the outbox.
	if len(res.Alerts) != 4 || len(res.Seqs) != 4 || st.OutboxLen() != 4 || res.Stats.Skipped[SkipEvalFailed] != 2 || len(res.Stats.Skipped) != 1 {
		t.Fatalf("%d alerts, %d committed, outbox %d, skipped %v", len(res.Alerts), len(res.Seqs), st.OutboxLen(), res.Stats.Skipped)
	}
	// The first failure alone, with the panic and its stack: the
	// goroutine's header and the function that panicked, with its file.
	f := res.Stats.EvalFailure
	if !strings.HasPrefix(f, "assignment to entry in nil map\n") || len(regexp.MustCompile(`(?m)^goroutine \d+ \[`).FindAllString(f, -1)) != 1 ||
		!strings.Contains(f, "engine.panicky.Lookup(") || strings.Contains(f, "another defect") || !strings.Contains(f, "evalpanic_test.go:") {
		t.Errorf("the failure reported is not the first panic with its stack:\n%s", f)
	}
	// scan adds each batch's Stats to its total and exits 1 when the
	// total's EvalFailure is set: a clean batch after does not clear it.
	var total Stats
	total.Add(res.Stats)
	clean, err := e.ProcessBatch(logins(t, 1, at("10:00:20"), "111", "192.0.2.3", "root"))
	if err != nil || len(clean.Alerts) != 1 || clean.Stats.EvalFailure != "" {
		t.Fatalf("a clean batch after: %v, %d alerts, failure %q", err, len(clean.Alerts), clean.Stats.EvalFailure)
	}
	total.Add(clean.Stats)
	if total.EvalFailure != f || total.Skipped[SkipEvalFailed] != 2 {
		t.Errorf("the totals lost the failure: skipped %v, failure %q", total.Skipped, total.EvalFailure)
	}
}

// TestRecordsNoReaderTakesAreNamed: a record that the tree reader refuses
// (an integer map key in an EventBridge event's request parameters) went
// by counted as skipped but with no error on it, so its reader neither
// counted nor logged it; an element of a log file no reader takes went by
// uncounted. Both are malformed, the record with its error.
func TestRecordsNoReaderTakesAreNamed(t *testing.T) {
	e, _ := newEngine(t, ruleSet(t, countRule(t)), Options{})
	params := msgp.AppendMapHeader(nil, 1)
	params = msgp.AppendString(msgp.AppendInt(params, 7), "x")
	detail := msgp.AppendMapHeader(nil, 3)
	detail = msgp.AppendString(msgp.AppendString(detail, "eventSource"), "signin.amazonaws.com")
	detail = msgp.AppendString(msgp.AppendString(detail, "eventName"), "ConsoleLogin")
	detail = append(msgp.AppendString(detail, "requestParameters"), params...)
	rec := msgp.AppendMapHeader(nil, 2)
	rec = msgp.AppendString(msgp.AppendString(rec, "detail-type"), "AWS API Call via CloudTrail")
	rec = append(msgp.AppendString(rec, "detail"), detail...)
	recs := []Record{{Msgpack: rec}}
	res, err := e.ProcessBatch(recs)
	if err != nil || recs[0].Err == nil || res.Stats.Skipped["malformed"] != 1 {
		t.Errorf("EventBridge with an integer key: %v, record error %v, skipped %v", err, recs[0].Err, res.Stats.Skipped)
	}
	// {"Records": [an event, an element nested 20,000 deep, 5]} as
	// MessagePack (as JSON text the whole record is refused past 512
	// levels).
	ev := func(b []byte, source string) []byte {
		b = msgp.AppendMapHeader(b, 3)
		b = msgp.AppendString(msgp.AppendString(b, "eventSource"), source)
		b = msgp.AppendString(msgp.AppendString(b, "eventName"), "ConsoleLogin")
		return msgp.AppendString(b, "deep")
	}
	file := msgp.AppendMapHeader(nil, 1)
	file = msgp.AppendArrayHeader(msgp.AppendString(file, "Records"), 3)
	file = msgp.AppendNil(ev(file, "signin.amazonaws.com"))
	file = ev(file, "-")
	for range 20000 {
		file = msgp.AppendArrayHeader(file, 1)
	}
	file = msgp.AppendInt(msgp.AppendNil(file), 5)
	res, err = e.ProcessBatch([]Record{{Msgpack: file}})
	if err != nil || res.Stats.Events != 1 || res.Stats.Skipped[cloudtrail.SkipMalformed] != 1 || res.Stats.Skipped[cloudtrail.SkipNotCloudTrail] != 1 {
		t.Errorf("a log file with an element no reader takes: %v, %d events, skipped %v", err, res.Stats.Events, res.Stats.Skipped)
	}
}

// TestManyKeysLinear: a record that matches a rule with 200,000 members
// took a minute (each key compared with every earlier one to find a
// duplicate, as the ingest pipeline refuses one).
func TestManyKeysLinear(t *testing.T) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newEngine(t, rs, Options{})
	var b strings.Builder
	b.WriteString(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutUseCaseForModelAccess","eventID":"k","requestParameters":{`)
	for i := range 200_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":1`, i)
	}
	b.WriteString(`}}`)
	start := time.Now()
	res, err := e.ProcessBatch([]Record{{JSON: []byte(b.String())}})
	if err != nil || len(res.Alerts) != 1 {
		t.Fatalf("%v, %d alerts", err, len(res.Alerts))
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a record of 200,000 members took %v", took)
	}
}

// TestNewTermsPastIgnoreAbove: a new_terms field's value past its
// ignore_above has no doc value in Elasticsearch, so Kibana's aggregation
// takes the record as missing the field: no term, no alert (one was made
// here). A value within it is a term.
func TestNewTermsPastIgnoreAbove(t *testing.T) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newEngine(t, rs, Options{})
	rec := func(id, arn string) Record {
		return Record{JSON: []byte(`{"eventSource":"bedrock.amazonaws.com","eventName":"PutResourcePolicy","eventID":"` + id + `","eventTime":"2026-11-20T10:00:00Z","userIdentity":{"type":"IAMUser","arn":"` + arn + `"}}`)}
	}
	res, err := e.ProcessBatch([]Record{rec("long", "arn:aws:iam::1:user/"+strings.Repeat("x", 1100)), rec("short", "arn:aws:iam::1:user/x")})
	if err != nil || len(res.Alerts) != 1 || res.Stats.NewTermsHit != 1 {
		t.Errorf("%v: %d alerts, %d new terms; want the short ARN's alone", err, len(res.Alerts), res.Stats.NewTermsHit)
	}
}
