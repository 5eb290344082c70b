package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
)

const policyRule = "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b"

func userARN(i int) string { return fmt.Sprintf("arn:aws:iam::111122223333:user/u%07d", i) }

// benchBatch is 4096 PutResourcePolicy records on Bedrock by users drawn
// from [0, users): with a large history most terms are known, a few new.
func benchBatch(b *testing.B, users, offset int) []Record {
	recs := make([]Record, 4096)
	for i := range recs {
		u := (offset*7919 + i*104729) % users
		js := fmt.Sprintf(`{"eventVersion":"1.09","eventSource":"bedrock.amazonaws.com","eventName":"PutResourcePolicy","eventTime":"2026-11-20T10:00:00Z","eventID":"e-%d-%d","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.1","userIdentity":{"type":"IAMUser","principalId":"AIDA","arn":%q,"accountId":"111122223333","userName":"u"},"requestParameters":{"resourceArn":"arn:aws:bedrock:us-east-1:111122223333:agent/A"}}`, offset, i, userARN(u))
		n, err := doc.ParseJSON([]byte(js))
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = Record{Node: n}
	}
	return recs
}

// BenchmarkNewTermsHistory measures records/s through new_terms evaluation
// with bbolt persistence (one transaction and fsync per 4096-record batch),
// with an empty history and with 1,000,000 distinct terms already stored,
// and reports the file size per million terms.
func BenchmarkNewTermsHistory(b *testing.B) {
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
	if err != nil {
		b.Fatal(err)
	}
	for _, stored := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "state.db")
			st, err := store.Open(path, store.Options{NoSync: os.Getenv("BENCH_NOSYNC") != ""})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			seen := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
			for i := 0; i < stored; i += 10_000 {
				terms := make([]store.Term, 0, 10_000)
				for j := i; j < i+10_000 && j < stored; j++ {
					terms = append(terms, store.Term{History: policyRule, Values: []string{userARN(j)}, Seen: seen, Window: 7 * 24 * time.Hour})
				}
				if _, err := st.Commit(store.Batch{Terms: terms}); err != nil {
					b.Fatal(err)
				}
			}
			var size int64
			if fi, err := os.Stat(path); err == nil {
				size = fi.Size()
			}
			e, err := New(rs, Options{State: st})
			if err != nil {
				b.Fatal(err)
			}
			users := max(stored, 1) + 2000 // a few new terms in every batch
			batches := make([][]Record, 8)
			for i := range batches {
				batches[i] = benchBatch(b, users, i)
			}
			b.ResetTimer()
			n := 0
			for i := 0; b.Loop(); i++ {
				res, err := e.ProcessBatch(batches[i%len(batches)])
				if err != nil {
					b.Fatal(err)
				}
				st.Ack(res.Seqs)
				n += len(batches[0])
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			if stored > 0 {
				b.ReportMetric(float64(size)*1e6/float64(stored)/(1<<20), "MiB/1M-terms")
			}
		})
	}
}
