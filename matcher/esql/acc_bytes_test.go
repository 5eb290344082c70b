package esql

import (
	"regexp"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
)

// accPartials accumulates the corpus's aggregating rules whose file name
// matches re on generated records as the engine does: one Acc per rule
// and one-minute bucket in each batch of 1,024 records, each marshalled at
// the batch's end. It returns the partials' bytes.
func accPartials(tb testing.TB, re *regexp.Regexp) ([]*Program, [][][]byte) {
	names, progs, recs := corpusBench(tb, 4096, benchASN{})
	var keep []*Program
	var idx []int
	for i, p := range progs {
		if p.IsAggregating() && re.MatchString(names[i]) {
			keep = append(keep, p)
			idx = append(idx, i)
		}
	}
	if len(keep) == 0 {
		tb.Skip("no aggregating rule matches")
	}
	at := map[int]int{}
	for j, i := range idx {
		at[i] = j
	}
	parts := make([][][]byte, len(keep))
	type key struct {
		rule   int
		bucket int64
	}
	en, ev := benchASN{}, &cloudtrail.Event{}
	ingested := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for start := 0; start < len(recs); start += 1024 {
		accs := map[key]*Acc{}
		for _, r := range recs[start:min(start+1024, len(recs))] {
			ev.Reset(r.tree, nil, ingested, en)
			for _, i := range r.cands {
				j, ok := at[i]
				if !ok {
					continue
				}
				row, ok := keep[j].Eval(ev, r.at)
				if !ok {
					continue
				}
				k := key{j, r.at.UnixMilli() / 60000}
				if accs[k] == nil {
					accs[k] = keep[j].NewAcc()
				}
				accs[k].Add(row)
			}
		}
		for k, acc := range accs {
			b, err := acc.MarshalBinary()
			if err != nil {
				tb.Fatal(err)
			}
			parts[k.rule] = append(parts[k.rule], b)
		}
	}
	return keep, parts
}

// BenchmarkAccBytes reports the size of the partial aggregates a batch
// writes (bytes/partial, bytes/batch) and times writing them again and
// reading them back; rule=discovery is "AWS Discovery API Calls via CLI
// from a Single Resource", rule=all every aggregating rule of the corpus.
func BenchmarkAccBytes(b *testing.B) {
	for _, c := range []struct{ name, re string }{{"discovery", `multiple_discovery_api_calls_via_cli`}, {"all", `.`}} {
		b.Run("rule="+c.name, func(b *testing.B) {
			progs, parts := accPartials(b, regexp.MustCompile(c.re))
			total, n := 0, 0
			var accs []*Acc
			var owners []*Program
			for j, ps := range parts {
				for _, p := range ps {
					total += len(p)
					n++
					acc := progs[j].NewAcc()
					if err := acc.UnmarshalBinary(p); err != nil {
						b.Fatal(err)
					}
					accs = append(accs, acc)
					owners = append(owners, progs[j])
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i, acc := range accs {
					out, err := acc.MarshalBinary()
					if err != nil {
						b.Fatal(err)
					}
					back := owners[i].NewAcc()
					if err := back.UnmarshalBinary(out); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(total)/float64(max(n, 1)), "bytes/partial")
			b.ReportMetric(float64(total)/4, "bytes/batch")
			b.ReportMetric(float64(n), "partials")
		})
	}
}
