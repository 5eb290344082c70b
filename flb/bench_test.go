package flb

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/internal/gen"
	"github.com/trailwatch/trailwatch/store"
)

// benchRecords is how many generated records the chunk benchmarks use
// (BENCH_RECORDS overrides), in Fluent Bit's chunk format, 1024 a chunk.
func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

var (
	chunksOnce sync.Once
	chunks     [][]byte
)

func benchChunks(b testing.TB) [][]byte {
	chunksOnce.Do(func() {
		var cur []byte
		n := 0
		ts := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		err := gen.Generate(benchRecords(), 1, func(rec map[string]any) error {
			body, err := msgp.AppendIntf(nil, rec)
			if err != nil {
				return err
			}
			cur = append(cur, v2(eventTime(ts), body)...)
			if n++; n%1024 == 0 {
				chunks = append(chunks, cur)
				cur = nil
			}
			return nil
		})
		if err != nil {
			panic(err)
		}
		if len(cur) > 0 {
			chunks = append(chunks, cur)
		}
	})
	return chunks
}

// BenchmarkDecoderFloor is what almost every Go output plugin pays: fluent-
// bit-go's NewDecoder/GetRecord over each chunk, building Go maps.
func BenchmarkDecoderFloor(b *testing.B) {
	cs := benchChunks(b)
	records := 0
	b.ResetTimer()
	for b.Loop() {
		for _, c := range cs {
			dec := output.NewDecoder(unsafe.Pointer(&c[0]), len(c))
			for {
				ret, _, rec := output.GetRecord(dec)
				if ret != 0 {
					break
				}
				_ = rec
				records++
			}
		}
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// benchEngine builds the engine over the corpus's runnable rules (or the
// bundled rules when ../shared is absent), repeated `copies` times under
// new rule ids, with state in a temporary bbolt file.
func benchEngine(b testing.TB, copies int) (*engine.Engine, *store.Store, int) {
	rs := benchRules(b, copies)
	e, st := benchState(b, rs)
	return e, st, len(rs.Rules)
}

// benchRules is the rule set benchEngine runs.
func benchRules(b testing.TB, copies int) *conf.RuleSet {
	path := "../../shared/detection-rules/aws"
	if _, err := os.Stat(path); err != nil {
		b.Logf("Elastic's corpus is not at %s; benchmarking the bundled rules", path)
		path = "../conf/rules"
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), path)
	if err != nil {
		b.Fatal(err)
	}
	base := rs.Runnable()
	// BENCH_SKIP_TYPES (comma-separated rule types) leaves types out, to
	// measure what each type costs.
	if skip := os.Getenv("BENCH_SKIP_TYPES"); skip != "" {
		var kept []*conf.Rule
		for _, r := range base {
			if !slices.Contains(strings.Split(skip, ","), r.Type) {
				kept = append(kept, r)
			}
		}
		base = kept
	}
	// BENCH_RULES (a regular expression on names) keeps the rules it
	// matches, to measure what one rule costs.
	if re := os.Getenv("BENCH_RULES"); re != "" {
		m := regexp.MustCompile(re)
		base = slices.DeleteFunc(base, func(r *conf.Rule) bool { return !m.MatchString(r.Name) })
	}
	// BENCH_SKIP_RULES (a regular expression on names) leaves the rules it
	// matches out, to measure what they cost among the others.
	if re := os.Getenv("BENCH_SKIP_RULES"); re != "" {
		m := regexp.MustCompile(re)
		base = slices.DeleteFunc(base, func(r *conf.Rule) bool { return m.MatchString(r.Name) })
	}
	var rules []*conf.Rule
	for c := 0; c < copies; c++ {
		for _, r := range base {
			cp := *r
			if c > 0 {
				cp.RuleID = fmt.Sprintf("%s-copy%d", r.RuleID, c)
			}
			rules = append(rules, &cp)
		}
	}
	rs.Rules = rules
	return rs
}

// benchState opens a temporary state file (fsync off unless BENCH_SYNC is
// set) and an engine over rs.
func benchState(b testing.TB, rs *conf.RuleSet) (*engine.Engine, *store.Store) {
	st, err := store.Open(filepath.Join(b.TempDir(), "state.db"), store.Options{NoSync: os.Getenv("BENCH_SYNC") == ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	// BENCH_TIME_SOURCE=event judges the records on their eventTime, as
	// scan and replays do: the scheduled rules' runs then happen as the
	// records' hour passes (on the ingested clock a benchmark ends before
	// a run is due, so it measures no run).
	ts, err := engine.ParseTimeSource(os.Getenv("BENCH_TIME_SOURCE"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.New(rs, engine.Options{State: st, TimeSource: ts})
	if err != nil {
		b.Fatal(err)
	}
	return e, st
}

// BenchmarkChunkPath is trailwatch's whole path for each chunk: reading it,
// finding candidates, evaluating rules, new_terms history and the outbox
// in bbolt, alerts taken by a discarding sink.
func BenchmarkChunkPath(b *testing.B) {
	for _, copies := range []int{0, 1, 10, -1} {
		name := "rules=1"
		if copies > 0 {
			name = fmt.Sprintf("rules=x%d", copies)
		}
		if copies < 0 {
			name = "rules=threshold"
		}
		b.Run(name, func(b *testing.B) {
			cs := benchChunks(b)
			var e *engine.Engine
			var st *store.Store
			var n int
			switch {
			case copies < 0:
				e, st, n = benchThreshold(b)
			case copies == 0:
				e, st, n = benchOneRule(b)
			default:
				e, st, n = benchEngine(b, copies)
			}
			// As Flush does: the chunk read and evaluated a piece at a
			// time, committed once.
			feedChunks(b, e, st, n, cs)
		})
	}
}

// benchThreshold is an engine with Elastic's threshold rules alone: the
// bucket counting on the chunk path.
func benchThreshold(b *testing.B) (*engine.Engine, *store.Store, int) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../../shared/detection-rules/aws")
	if err != nil {
		b.Skipf("Elastic's rules are not at ../../shared/detection-rules/aws (%v): no threshold rules to measure", err)
	}
	var th []*conf.Rule
	for _, r := range rs.Runnable() {
		if r.Type == "threshold" {
			th = append(th, r)
		}
	}
	rs.Rules = th
	e, st := benchState(b, rs)
	return e, st, len(th)
}

func benchOneRule(b *testing.B) (*engine.Engine, *store.Store, int) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules/bedrock_resource_policy_modified_or_deleted.toml")
	if err != nil {
		b.Fatal(err)
	}
	e, st := benchState(b, rs)
	return e, st, 1
}

// noMatchChunk is a chunk of CloudTrail records that no rule pins (logs
// PutLogEvents by an AWS service; a KMS Decrypt, which this benchmark read
// before, is pinned by an ES|QL rule of Elastic's that reads fields of the
// pipeline's document), noMatchJSON one of them as JSON text.
func noMatchChunk() []byte {
	var c []byte
	for i := 0; i < 1024; i++ {
		b := msgp.AppendMapHeader(nil, 7)
		for _, kv := range [][2]string{
			{"eventSource", "logs.amazonaws.com"}, {"eventName", "PutLogEvents"}, {"eventID", "x"},
			{"eventTime", "2026-11-20T10:00:00Z"}, {"awsRegion", "us-east-1"}, {"sourceIPAddress", "kms.amazonaws.com"},
		} {
			b = msgp.AppendString(b, kv[0])
			b = msgp.AppendString(b, kv[1])
		}
		b = msgp.AppendString(b, "userIdentity")
		b = msgp.AppendMapHeader(b, 2)
		b = msgp.AppendString(b, "type")
		b = msgp.AppendString(b, "AWSService")
		b = msgp.AppendString(b, "invokedBy")
		b = msgp.AppendString(b, "s3.amazonaws.com")
		c = append(c, v2(eventTime(time.Now()), b)...)
	}
	return c
}

const noMatchJSON = `{"eventSource":"logs.amazonaws.com","eventName":"PutLogEvents","eventID":"x","eventTime":"2026-11-20T10:00:00Z",` +
	`"awsRegion":"us-east-1","sourceIPAddress":"kms.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}`

// BenchmarkNoMatchPath measures allocations per record for records that no
// rule matches, with every runnable rule loaded.
func BenchmarkNoMatchPath(b *testing.B) {
	e, _, _ := benchEngine(b, 1)
	c := noMatchChunk()
	buf := &chunkBuf{}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		batch := e.NewBatch()
		buf.feed("t", c, batch.Add)
		res, err := batch.Commit()
		if err != nil || len(res.Alerts) != 0 {
			b.Fatalf("%v, %d alerts", err, len(res.Alerts))
		}
		n += res.Stats.Records
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
