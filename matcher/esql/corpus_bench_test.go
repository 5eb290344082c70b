package esql

import (
	"encoding/json"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/internal/gen"
	"github.com/trailwatch/trailwatch/matcher"
)

// benchASN is a stand-in for a MaxMind database: each generated address
// gets an AS organisation, a city and a country, mostly a cloud's.
type benchASN map[netip.Addr]map[string]matcher.Value

var benchOrgs = []string{"Amazon.com, Inc.", "Amazon.com, Inc.", "Amazon.com, Inc.", "Google LLC", "Microsoft Corporation", "Example Hosting", "AMAZON-02"}

var benchCities = []string{"Ashburn", "Dublin", "Frankfurt", "Tokyo", "Sao Paulo"}

func (e benchASN) Lookup(a netip.Addr) map[string]matcher.Value {
	if m, ok := e[a]; ok {
		return m
	}
	b := a.As16()
	i := int(b[14])*2 + int(b[15])
	m := map[string]matcher.Value{
		"source.as.organization.name": {Text: benchOrgs[i%len(benchOrgs)]},
		"source.as.number":            {Text: "16509", Kind: matcher.KindNumber},
		"source.geo.city_name":        {Text: benchCities[i%len(benchCities)]},
		"source.geo.country_iso_code": {Text: "US"},
	}
	e[a] = m
	return m
}

// benchRecord is a generated record as a Fluent Bit record body, with the
// corpus rules whose prefilter it passes (what the candidate index and the
// prefilter let through to Eval in the engine).
type benchRecord struct {
	mp    []byte    // MessagePack, as Fluent Bit gives it
	tree  *doc.Node // the document tree, as the CLI reads JSON
	at    time.Time
	cands []int
}

// corpusBench compiles the corpus's ES|QL rules (sorted by file name) and
// generates n records for them.
func corpusBench(tb testing.TB, n int, en cloudtrail.Enricher) ([]string, []*Program, []benchRecord) {
	rules := esqlCorpus(tb)
	names := make([]string, 0, len(rules))
	for name := range rules {
		names = append(names, name)
	}
	sort.Strings(names)
	progs := make([]*Program, len(names))
	pres := make([]*matcher.Query, len(names))
	for i, name := range names {
		p, err := Compile(testSchema, rules[name])
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		progs[i], pres[i] = p, p.PrefilterAssuming(testSchema.Constants())
	}
	ingested := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var recs []benchRecord
	err := gen.Generate(n, 7, func(m map[string]any) error {
		mp, err := msgp.AppendIntf(nil, m)
		if err != nil {
			return err
		}
		js, err := json.Marshal(m)
		if err != nil {
			return err
		}
		tree, err := doc.ParseJSON(js)
		if err != nil {
			return err
		}
		ev := cloudtrail.NewEvent(tree, ingested, en)
		r := benchRecord{mp: mp, tree: tree}
		if r.at, err = time.Parse(time.RFC3339, m["eventTime"].(string)); err != nil {
			return err
		}
		for i, q := range pres {
			if q.Match(ev) {
				r.cands = append(r.cands, i)
			}
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return names, progs, recs
}

// resolvedFields is a record whose fields are resolved already: what the
// engine's event answers for a field some rule read before (the event
// keeps them in one table it reuses, by field id; here a shared table maps
// a field's id to its place in the record's list).
type resolvedFields struct {
	at   []int // by field id: the place in vals, -1 for none
	vals [][]matcher.Value
}

func (r *resolvedFields) Values(f *matcher.Field) []matcher.Value {
	if f.ID < len(r.at) && r.at[f.ID] >= 0 {
		return r.vals[r.at[f.ID]]
	}
	return nil
}

func (r *resolvedFields) Elements(*matcher.Field) []matcher.Fields { return nil }

// BenchmarkCorpusRules runs every ES|QL rule of the corpus as the engine
// does on generated records: Eval for each rule its prefilter lets
// through, and Acc.Add of the row for the aggregating ones, with fresh
// accumulators every 1,024 records (a batch). One op is one record.
//
// The records: event, a cloudtrail.Event over the parsed document tree (as
// the CLI reads JSON), so that the rules' first read of a field resolves
// it; mp, the same over MessagePack read in place (as the plugin reads
// Fluent Bit's records: the tree is built when a rule first reads a
// payload); resolved, every field the rules read resolved beforehand, so
// that only ES|QL's own work is timed. An enricher gives every address an
// AS organisation and a city, as a MaxMind database would (the rules that
// need them then run past their first test), except in event-nogeo.
func BenchmarkCorpusRules(b *testing.B) {
	ingested := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, kind := range []string{"resolved", "event", "mp", "event-nogeo"} {
		b.Run(kind, func(b *testing.B) {
			var en cloudtrail.Enricher
			if kind != "event-nogeo" {
				en = benchASN{}
			}
			_, progs, recs := corpusBench(b, 4000, en)
			ev := &cloudtrail.Event{}
			var resolved []resolvedFields
			if kind == "resolved" {
				// Each record's values in one block, as the event keeps
				// the values it resolves.
				var fields []*matcher.Field
				seen := map[*matcher.Field]bool{}
				for _, p := range progs {
					for _, f := range p.Fields() {
						if !seen[f] {
							seen[f] = true
							fields = append(fields, f)
						}
					}
				}
				var at []int
				for j, f := range fields {
					for len(at) <= f.ID {
						at = append(at, -1)
					}
					at[f.ID] = j
				}
				resolved = make([]resolvedFields, len(recs))
				for i := range recs {
					ev.Reset(recs[i].tree, nil, ingested, en)
					var all []matcher.Value
					for _, f := range fields {
						all = append(all, ev.Values(f)...)
					}
					all = slices.Clip(all)
					r := &resolved[i]
					r.at, r.vals = at, make([][]matcher.Value, len(fields))
					for j, f := range fields {
						n := len(ev.Values(f))
						r.vals[j], all = all[:n:n], all[n:]
					}
				}
			}
			accs := make([]*Acc, len(progs))
			i := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if i%1024 == 0 {
					for j, p := range progs {
						accs[j] = p.NewAcc()
					}
				}
				n := i % len(recs)
				r := &recs[n]
				i++
				var f matcher.Fields = ev
				switch kind {
				case "resolved":
					f = &resolved[n]
				case "mp":
					ev.ResetMsgpack(r.mp, ingested, en)
				default:
					ev.Reset(r.tree, nil, ingested, en)
				}
				for _, j := range r.cands {
					if row, ok := progs[j].Eval(f, r.at); ok && accs[j] != nil {
						accs[j].Add(row)
					}
				}
			}
		})
	}
}
