package cloudtrail_test

import (
	"os"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
)

// benchRules loads Elastic's AWS rules beside the project, or the bundled
// seed rules when they are absent.
func benchRules(b *testing.B) (*matcher.Schema, []*conf.Rule) {
	s := cloudtrail.NewSchema()
	path := "../../shared/detection-rules/aws"
	if _, err := os.Stat(path); err != nil {
		b.Logf("Elastic's corpus is not at %s; benchmarking the bundled rules", path)
		path = "../conf/rules"
	}
	rs, err := conf.LoadRules(s, path)
	if err != nil {
		b.Fatal(err)
	}
	return s, rs.Runnable()
}

func benchEvent(b *testing.B, file string) *doc.Node {
	data, err := os.ReadFile("../testdata/ecs/" + file)
	if err != nil {
		b.Fatal(err)
	}
	n, err := doc.ParseJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkRules compares evaluating every runnable rule on one CloudTrail
// record through the candidate index with evaluating all of them.
func BenchmarkRules(b *testing.B) {
	s, rules := benchRules(b)
	qs := make([]*matcher.Query, len(rules))
	for i, r := range rules {
		qs[i] = r.Compiled
	}
	ix := matcher.NewIndex(qs)
	provider, action := s.Field(matcher.ProviderField), s.Field(matcher.ActionField)
	for _, file := range []string{"iam_create_user.json", "service_call_cleanup.json"} {
		raw := benchEvent(b, file)
		now := time.Now()
		b.Run("index/"+file, func(b *testing.B) {
			var ev cloudtrail.Event
			var cands []int
			var ps, as []string
			b.ReportAllocs()
			for b.Loop() {
				ev.Reset(raw, nil, now, nil)
				ps, as = ps[:0], as[:0]
				for _, v := range ev.Values(provider) {
					ps = append(ps, v.Text)
				}
				for _, v := range ev.Values(action) {
					as = append(as, v.Text)
				}
				cands = ix.Candidates(cands[:0], ps, as)
				for _, id := range cands {
					qs[id].Match(&ev)
				}
			}
		})
		b.Run("all/"+file, func(b *testing.B) {
			var ev cloudtrail.Event
			b.ReportAllocs()
			for b.Loop() {
				ev.Reset(raw, nil, now, nil)
				for _, q := range qs {
					q.Match(&ev)
				}
			}
		})
	}
}
