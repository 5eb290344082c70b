package esql

import (
	"errors"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
)

// fuzzSeeds are queries of every construct the front end takes (the seed
// corpus in testdata/fuzz/FuzzParseESQL holds more).
var fuzzSeeds = []string{
	`FROM logs-aws.cloudtrail-* METADATA _id, _version | WHERE event.provider == "iam.amazonaws.com" AND event.action IN ("CreateUser", "DeleteUser") | KEEP _id, user.*`,
	`from x | where f like "a*b?" and not g rlike """.*\"k\": *\"v\".*""" or h is not null`,
	`FROM x | EVAL t = DATE_TRUNC(30 seconds, @timestamp), c = CASE(f == "a", 1, 0) | STATS n = COUNT(*), v = VALUES(f) WHERE c == 1, d = COUNT_DISTINCT(g) BY t, user.name | WHERE n >= 2 | SORT n DESC NULLS LAST | LIMIT 5`,
	`FROM x | DISSECT aws.cloudtrail.request_parameters "{%{?k}=%{v}, %{+v}=%{w->}}" APPEND_SEPARATOR="/" | GROK v """(?<a.b>[^,}]+)%{NOTSPACE:c}""" | RENAME a.b AS ab | DROP w`,
	`FROM x | STATS s = SUM(source.port), m = MIN(@timestamp), a = AVG(source.as.number) BY source.ip | EVAL r = TO_DOUBLE(s) / 2 | MV_EXPAND source.ip | KEEP r, m`,
	`FROM x | EVAL a = COALESCE(f, CONCAT("x", TO_LOWER(g))), b = MV_COUNT(SPLIT(f, ",")), c = DATE_DIFF("minutes", @timestamp, NOW() - 1 hour) | WHERE b > 1 OR c < 5`,
	"FROM x // c\n| /* d /* e */ */ WHERE `a.b` == \"\\t\\\"\" AND f::long > -5",
	`FROM x | WHERE ((((f == "a"))))`,
	`FROM x | STATS BY f`,
	`FROM x | WHERE f == "`,
	`FROM x | EVAL = 1`,
	`FROM | WHERE`,
}

// FuzzParseESQL: any text is compiled or refused with a placed
// *matcher.SyntaxError, never a panic; what compiles evaluates a record,
// and an aggregating query's accumulator round-trips through its bytes.
func FuzzParseESQL(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	r := rec("event.provider", "iam.amazonaws.com", "event.action", "CreateUser", "f", "a,b", "f", "c", "g", "X",
		"user.name", "bob", "@timestamp", "2026-03-01T11:59:00Z", "source.ip", "10.0.0.1", "source.port", "#443",
		"aws.cloudtrail.request_parameters", "{key=v, k2=w}")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 1<<14 {
			return
		}
		p, err := Compile(testSchema, src)
		if err != nil {
			var se *matcher.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		row, ok := p.Eval(r, now)
		if ok {
			_ = row.Map()
		}
		if !p.IsAggregating() {
			return
		}
		acc := p.NewAcc()
		if ok {
			acc.Add(row)
			acc.Add(row)
		}
		b, err := acc.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back := p.NewAcc()
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if err := back.Merge(acc); err != nil {
			t.Fatal(err)
		}
		for _, res := range p.Results(back, now) {
			_ = res.Map()
		}
	})
}

// FuzzAccBytes: any bytes given to UnmarshalBinary (either form) are
// refused with an error or read into groups that write back to bytes read
// the same way; never a panic.
func FuzzAccBytes(f *testing.F) {
	p, err := Compile(testSchema, `FROM x | STATS n = COUNT(*), v = VALUES(f), d = COUNT_DISTINCT(source.ip), m = MIN(@timestamp),
		s = SUM(source.port), a = AVG(source.port), x = MAX(TO_DOUBLE(source.port)), t = VALUES(@timestamp) BY f, source.ip`)
	if err != nil {
		f.Fatal(err)
	}
	acc := p.NewAcc()
	feed(p, acc, rec("f", "a", "source.ip", "10.0.0.1", "@timestamp", "2026-03-01T11:00:00Z", "source.port", "#3"),
		rec("f", "a", "f", "b", "source.port", "#9223372036854775807"), rec("source.ip", "::1"),
		rec("f", "a", "source.ip", "10.0.0.1", "@timestamp", "2026-03-01T11:00:07.250Z", "source.port", "#-4"))
	b, err := acc.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	// Both forms: the second, which MarshalBinary writes, and the first,
	// which older state files hold.
	for _, b := range [][]byte{b, acc.marshalV1()} {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(accMagic)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a := p.NewAccLimits(Limits{Groups: 64, Values: 64})
		if err := a.UnmarshalBinary(data); err != nil {
			if a.Groups() != 0 {
				t.Fatalf("refused bytes left %d groups", a.Groups())
			}
			return
		}
		out, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		again := p.NewAccLimits(Limits{Groups: 64, Values: 64})
		if err := again.UnmarshalBinary(out); err != nil {
			t.Fatalf("written bytes refused: %v", err)
		}
		if out2, _ := again.MarshalBinary(); string(out2) != string(out) {
			t.Fatal("bytes read back write differently")
		}
		_ = render(p.Results(a, testNow))
		// MergeBinary into an accumulator that holds the seed already
		// gives what Merge of the bytes read gives.
		merged, folded := p.NewAccLimits(Limits{Groups: 64, Values: 64}), p.NewAccLimits(Limits{Groups: 64, Values: 64})
		for _, m := range []*Acc{merged, folded} {
			if err := m.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := merged.Merge(a); err != nil {
			t.Fatal(err)
		}
		if err := folded.MergeBinary(data); err != nil {
			t.Fatalf("MergeBinary refused bytes UnmarshalBinary took: %v", err)
		}
		mb, _ := merged.MarshalBinary()
		fb, _ := folded.MarshalBinary()
		mr, mv := merged.Overflow()
		fr, fv := folded.Overflow()
		if string(mb) != string(fb) || mr != fr || mv != fv {
			t.Fatalf("MergeBinary differs from Merge: overflow %d/%d against %d/%d", fr, fv, mr, mv)
		}
	})
}
