package flb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/internal/gen"
	"github.com/trailwatch/trailwatch/store"
)

// The JSON path beside the MessagePack one: the same generated records as
// NDJSON lines, handed to the engine as text (as scan and serve hand them),
// and as Fluent Bit's tail without a parser hands them (each line a string
// under log in a chunk).

var (
	linesOnce sync.Once
	lines     [][]byte
	logChunks [][]byte
)

func benchLines(b testing.TB) ([][]byte, [][]byte) {
	linesOnce.Do(func() {
		ts := eventTime(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
		var cur []byte
		err := gen.Generate(benchRecords(), 1, func(rec map[string]any) error {
			line, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			lines = append(lines, line)
			body := msgp.AppendMapHeader(nil, 1)
			body = msgp.AppendString(body, "log")
			body = msgp.AppendStringFromBytes(body, line)
			cur = append(cur, v2(ts, body)...)
			if len(lines)%1024 == 0 {
				logChunks, cur = append(logChunks, cur), nil
			}
			return nil
		})
		if err != nil {
			panic(err)
		}
		if len(cur) > 0 {
			logChunks = append(logChunks, cur)
		}
	})
	return lines, logChunks
}

// benchRuleSets runs a benchmark with one rule and with every runnable
// rule (as BenchmarkChunkPath/rules=1 and rules=x1).
func benchRuleSets(b *testing.B, run func(b *testing.B, e *engine.Engine, st *store.Store, rules int)) {
	b.Run("rules=1", func(b *testing.B) {
		e, st, n := benchOneRule(b)
		run(b, e, st, n)
	})
	b.Run("rules=x1", func(b *testing.B) {
		e, st, n := benchEngine(b, 1)
		run(b, e, st, n)
	})
}

// commitEach makes count batches each time round, filling batch i with
// fill, reports records/s and the number of rules, and returns the records.
func commitEach(b *testing.B, e *engine.Engine, st *store.Store, rules, count int, fill func(i int, batch *engine.Batch)) int {
	records := 0
	cpu0 := cpuTime()
	var patching time.Duration
	b.ResetTimer()
	for pass := 0; b.Loop(); pass++ {
		if pass > 0 {
			// Each pass gives the same records under new eventIDs, as
			// new traffic would: the aggregating rules count the records
			// of a pass they have seen before only once (engine
			// Stats.Replayed).
			b.StopTimer()
			c0 := cpuTime()
			newEventIDs()
			patching += cpuTime() - c0
			b.StartTimer()
		}
		for i := range count {
			batch := e.NewBatch()
			fill(i, batch)
			res, err := batch.Commit()
			if err != nil {
				b.Fatal(err)
			}
			st.Ack(res.Seqs)
			records += res.Stats.Records
			if res.Stats.Replayed > 0 {
				b.Fatalf("pass %d: %d records taken for ones given before: the passes must be new traffic", pass, res.Stats.Replayed)
			}
		}
	}
	cpu := cpuTime() - cpu0 - patching
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(max(records, 1)), "cpu-ns/record")
	b.ReportMetric(float64(rules), "rules")
	return records
}

// The generated eventIDs ("%08x-1111-4000-8000-%012x", internal/gen) carry
// a mark that newEventIDs changes in place: chunkMark is the chunks' mark,
// lineMark the lines' and log chunks' (each set was made with 0x1111, when
// its first benchmark needed it), nextMark the last mark given.
var chunkMark, lineMark, nextMark = 0x1111, 0x1111, 0x1111

// newEventIDs gives every generated record made so far (the chunks, the
// lines and the log chunks) a new eventID.
func newEventIDs() {
	if nextMark++; nextMark > 0xffff {
		nextMark = 0x1112 // never 0000, the requestIDs' mark
	}
	patch := func(bufs [][]byte, from int) {
		old := []byte(fmt.Sprintf("-%04x-4000-8000-", from))
		mark := []byte(fmt.Sprintf("-%04x-4000-8000-", nextMark))
		for _, c := range bufs {
			for i := 0; ; {
				j := bytes.Index(c[i:], old)
				if j < 0 {
					break
				}
				copy(c[i+j:], mark)
				i += j + len(mark)
			}
		}
	}
	if chunks != nil {
		patch(chunks, chunkMark)
		chunkMark = nextMark
	}
	if lines != nil {
		patch(lines, lineMark)
		patch(logChunks, lineMark)
		lineMark = nextMark
	}
}

// cpuTime is the CPU time the process has used (user and system, every
// thread): beside records/s, which another busy process on the machine
// lowers, what a record costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// feedChunks is the plugin's whole path over chunks: each read and
// evaluated a piece at a time, committed once.
func feedChunks(b *testing.B, e *engine.Engine, st *store.Store, rules int, cs [][]byte) int {
	buf := &chunkBuf{}
	return commitEach(b, e, st, rules, len(cs), func(i int, batch *engine.Batch) { buf.feed("cloudtrail", cs[i], batch.Add) })
}

// BenchmarkJSONPath is BenchmarkChunkPath on the same records as JSON
// text: 1,024 lines a batch, added 128 at a time (as a chunk's pieces),
// committed once.
func BenchmarkJSONPath(b *testing.B) {
	benchRuleSets(b, func(b *testing.B, e *engine.Engine, st *store.Store, rules int) {
		ls, _ := benchLines(b)
		recs := make([]engine.Record, piece)
		commitEach(b, e, st, rules, (len(ls)+1023)/1024, func(i int, batch *engine.Batch) {
			batchLines := ls[i*1024 : min(i*1024+1024, len(ls))]
			for j := 0; j < len(batchLines); j += piece {
				part := batchLines[j:min(j+piece, len(batchLines))]
				for k, l := range part {
					recs[k] = engine.Record{JSON: l}
				}
				batch.Add(recs[:len(part)])
			}
		})
	})
}

// BenchmarkLogPath is the plugin's whole path on chunks of the same records
// as tail without a parser makes them: each line a string under log.
func BenchmarkLogPath(b *testing.B) {
	benchRuleSets(b, func(b *testing.B, e *engine.Engine, st *store.Store, rules int) {
		_, cs := benchLines(b)
		feedChunks(b, e, st, rules, cs)
	})
}

// BenchmarkJSONNoMatchPath is BenchmarkNoMatchPath's records as JSON text.
func BenchmarkJSONNoMatchPath(b *testing.B) {
	e, _, _ := benchEngine(b, 1)
	recs := make([]engine.Record, 1024)
	for i := range recs {
		recs[i] = engine.Record{JSON: []byte(noMatchJSON)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		batch := e.NewBatch()
		for i := 0; i < len(recs); i += piece {
			batch.Add(recs[i : i+piece])
		}
		res, err := batch.Commit()
		if err != nil || len(res.Alerts) != 0 || res.Stats.Events != len(recs) {
			b.Fatalf("%v, %d alerts, %+v", err, len(res.Alerts), res.Stats)
		}
		n += res.Stats.Records
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
