package esql

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/matcher"
)

// feed evaluates records and accumulates the rows they give.
func feed(p *Program, acc *Acc, recs ...matcher.MapFields) {
	for _, r := range recs {
		if row, ok := p.Eval(r, testNow); ok {
			acc.Add(row)
		}
	}
}

// results runs a query over records and renders each result row as
// "col=v1,v2 col2=..." in the row's column order (null as "-").
func results(t *testing.T, q string, recs ...matcher.MapFields) []string {
	t.Helper()
	p := mustCompile(t, q)
	acc := p.NewAcc()
	feed(p, acc, recs...)
	return render(p.Results(acc, testNow))
}

func render(rows []Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		parts := make([]string, r.Len())
		for j, n := range r.Names() {
			v := texts(r.Value(j))
			s := "-"
			if v != nil {
				s = strings.Join(v, ",")
			}
			parts[j] = n + "=" + s
		}
		out[i] = strings.Join(parts, " ")
	}
	return out
}

// mergeThroughBytes writes each accumulator, reads it back and merges it
// into a new one, as the engine does with stored buckets.
func mergeThroughBytes(t *testing.T, p *Program, accs ...*Acc) *Acc {
	t.Helper()
	merged := p.NewAcc()
	for _, a := range accs {
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back := p.NewAcc()
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if err := merged.Merge(back); err != nil {
			t.Fatal(err)
		}
	}
	return merged
}

// TestAggregations: each aggregation over values, nulls and multi-valued
// fields, with and without a WHERE filter.
func TestAggregations(t *testing.T) {
	recs := []matcher.MapFields{
		rec("user.name", "a", "f", "x", "f", "y", "source.port", "#10", "@timestamp", "2026-03-01T10:00:00Z", "source.ip", "10.0.0.2", "event.outcome", "success"),
		rec("user.name", "a", "f", "y", "source.port", "#5", "source.port", "#7", "@timestamp", "2026-03-01T09:00:00Z", "source.ip", "10.0.0.1"),
		rec("user.name", "a", "source.port", "#1", "@timestamp", "2026-03-01T11:00:00Z", "event.outcome", "success"),
	}
	cases := []struct{ agg, want string }{
		{"COUNT(*)", "3"},
		{"COUNT()", "3"},
		{"COUNT(f)", "3"},
		{"COUNT(source.port)", "4"},
		{"COUNT(g)", "0"},
		{"COUNT_DISTINCT(f)", "2"},
		{"COUNT_DISTINCT(g)", "0"},
		{"VALUES(f)", "x,y"},
		{"VALUES(g)", "-"},
		{"VALUES(source.ip)", "10.0.0.1,10.0.0.2"},
		{"MIN(source.port)", "1"},
		{"MAX(source.port)", "10"},
		{"MIN(@timestamp)", "2026-03-01T09:00:00.000Z"},
		{"MAX(f)", "y"},
		{"MAX(g)", "-"},
		{"MAX(f == \"y\")", "true"},
		{"MIN(f == \"y\" OR user.name == \"a\")", "true"},
		{"SUM(source.port)", "23"},
		{"SUM(TO_DOUBLE(source.port))", "23.0"},
		{"SUM(g::long)", "-"},
		{"AVG(source.port)", "5.75"},
		{"COUNT(*) WHERE event.outcome == \"success\"", "2"},
		{"VALUES(f) WHERE event.outcome == \"success\"", "x,y"},
		{"MIN(@timestamp) WHERE event.outcome == \"success\"", "2026-03-01T10:00:00.000Z"},
		{"SUM(CASE(event.outcome == \"success\", 1, 0))", "2"},
		{"MIN(CASE(event.outcome == \"success\", @timestamp, null))", "2026-03-01T10:00:00.000Z"},
		{"COUNT(*) WHERE g == \"none\"", "0"},
	}
	for _, c := range cases {
		got := results(t, "FROM x | STATS r = "+c.agg+" BY user.name | KEEP r", recs...)
		if len(got) != 1 || got[0] != "r="+c.want {
			t.Errorf("%s = %q, want r=%s", c.agg, got, c.want)
		}
	}
	// A long sum that overflows is null.
	got := results(t, "FROM x | STATS s = SUM(source.port)", rec("source.port", "#9223372036854775807"), rec("source.port", "#1"))
	if !reflect.DeepEqual(got, []string{"s=-"}) {
		t.Errorf("overflowing SUM: %q", got)
	}
}

// TestGroups: BY puts a row in the group of each value of a multi-valued
// column (every combination of two), null is a group of its own, a BY
// expression is named by its text or its name, and a STATS without BY
// gives one row even over no rows.
func TestGroups(t *testing.T) {
	cases := []struct {
		q    string
		recs []matcher.MapFields
		want []string
	}{
		{`FROM x | STATS c = COUNT(*) BY f`,
			[]matcher.MapFields{rec("f", "a"), rec("f", "a", "f", "b"), rec("g", "z")},
			[]string{"c=1 f=-", "c=2 f=a", "c=1 f=b"}},
		{`FROM x | STATS c = COUNT(*) BY f, g`,
			[]matcher.MapFields{rec("f", "a", "f", "b", "g", "1", "g", "2")},
			[]string{"c=1 f=a g=1", "c=1 f=a g=2", "c=1 f=b g=1", "c=1 f=b g=2"}},
		{`FROM x | STATS c = COUNT(*) BY w = DATE_TRUNC(1 hour, @timestamp)`,
			[]matcher.MapFields{rec("@timestamp", "2026-03-01T10:10:00Z"), rec("@timestamp", "2026-03-01T10:50:00Z"), rec("@timestamp", "2026-03-01T11:00:00Z")},
			[]string{"c=2 w=2026-03-01T10:00:00.000Z", "c=1 w=2026-03-01T11:00:00.000Z"}},
		{`FROM x | STATS COUNT(*) BY TO_LOWER(f)`,
			[]matcher.MapFields{rec("f", "A"), rec("f", "a")},
			[]string{"COUNT(*)=2 TO_LOWER(f)=a"}},
		{`FROM x | STATS c = COUNT(*), v = VALUES(f)`, nil, []string{"c=0 v=-"}},
		{`FROM x | STATS c = COUNT(*) BY f`, nil, []string{}},
		{`FROM x | STATS BY f`, []matcher.MapFields{rec("f", "b"), rec("f", "a"), rec("f", "b")}, []string{"f=a", "f=b"}},
		{`FROM x | STATS c = COUNT(*) BY source.ip`,
			[]matcher.MapFields{rec("source.ip", "10.0.0.1"), rec("source.ip", "::ffff:10.0.0.1")},
			[]string{"c=2 source.ip=10.0.0.1"}},
	}
	for _, c := range cases {
		got := results(t, c.q, c.recs...)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.q, got, c.want)
		}
	}
}

// TestAfterStats: WHERE, EVAL, KEEP, DROP, RENAME, SORT, LIMIT and
// MV_EXPAND on the result rows.
func TestAfterStats(t *testing.T) {
	recs := []matcher.MapFields{
		rec("f", "a", "g", "1"), rec("f", "a", "g", "2"), rec("f", "b", "g", "3"),
		rec("f", "c", "g", "1"), rec("f", "c", "g", "2"), rec("f", "c", "g", "4"), rec("g", "9"),
	}
	const stats = `FROM x | STATS n = COUNT(*), v = VALUES(g) BY f`
	cases := []struct {
		post string
		want []string
	}{
		{`| WHERE n >= 2 | KEEP f, n`, []string{"f=a n=2", "f=c n=3"}},
		{`| SORT n DESC | KEEP f`, []string{"f=c", "f=a", "f=-", "f=b"}},
		{`| SORT f | KEEP f`, []string{"f=a", "f=b", "f=c", "f=-"}},
		{`| SORT f DESC | KEEP f`, []string{"f=-", "f=c", "f=b", "f=a"}},
		{`| SORT f NULLS FIRST | KEEP f`, []string{"f=-", "f=a", "f=b", "f=c"}},
		{`| SORT v DESC, f | KEEP f | LIMIT 2`, []string{"f=-", "f=c"}},
		{`| EVAL r = TO_DOUBLE(n) / 7.0, m = MV_COUNT(v) | WHERE m > 1 | KEEP f, r, m`, []string{"f=a r=0.2857142857142857 m=2", "f=c r=0.42857142857142855 m=3"}},
		{`| WHERE f == "c" | MV_EXPAND v | KEEP v, n`, []string{"v=1 n=3", "v=2 n=3", "v=4 n=3"}},
		{`| WHERE f == "b" | RENAME f AS who | DROP v`, []string{"n=1 who=b"}},
		{`| WHERE f IS NULL | EVAL f = "none" | KEEP f*`, []string{"f=none"}},
		{`| EVAL late = NOW() - 1 hour | WHERE f == "b" | KEEP late`, []string{"late=2026-03-01T11:00:00.000Z"}},
		{`| LIMIT 0`, []string{}},
	}
	for _, c := range cases {
		got := results(t, stats+" "+c.post, recs...)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.post, got, c.want)
		}
	}
	p := mustCompile(t, stats+" | KEEP f, n")
	if got := p.ResultColumns(); !reflect.DeepEqual(got, []string{"f", "n"}) {
		t.Errorf("result columns %q", got)
	}
	if got := p.Columns(); !reflect.DeepEqual(got, []string{"g", "f"}) {
		t.Errorf("the columns Eval gives STATS: %q", got)
	}
}

// TestMergeAndBytes: accumulators of parts of the records, merged, give
// what one accumulator of all gives; and they give it again after a round
// trip through their bytes, as the engine stores them between runs.
func TestMergeAndBytes(t *testing.T) {
	q := `FROM x | EVAL d = source.port::double | STATS n = COUNT(*), c = COUNT_DISTINCT(f), v = VALUES(source.ip), lo = MIN(@timestamp),
		hi = MAX(f), s = SUM(source.port), sd = SUM(d), a = AVG(source.port), w = COUNT(*) WHERE f == "b" BY g, t = DATE_TRUNC(1 hour, @timestamp)`
	p := mustCompile(t, q)
	var recs []matcher.MapFields
	for i := range 40 {
		recs = append(recs, rec("g", []string{"x", "y", "z"}[i%3], "f", []string{"a", "b", "c", "d"}[i%4],
			"source.ip", "10.0.0."+string(rune('1'+i%5)), "@timestamp", "2026-03-01T1"+string(rune('0'+i%2))+":0"+string(rune('0'+i%6))+":00Z",
			"source.port", "#"+string(rune('1'+i%9))))
	}
	recs = append(recs, rec("f", "a")) // a null group
	all := p.NewAcc()
	feed(p, all, recs...)
	parts := []*Acc{p.NewAcc(), p.NewAcc(), p.NewAcc()}
	for i, r := range recs {
		feed(p, parts[i%3], r)
	}
	merged := mergeThroughBytes(t, p, parts...)
	want := render(p.Results(all, testNow))
	if got := render(p.Results(merged, testNow)); !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(want) != 7 || all.Groups() != 7 {
		t.Errorf("%d rows, %d groups, want 7", len(want), all.Groups())
	}
	b1, _ := merged.MarshalBinary()
	b2, _ := all.MarshalBinary()
	if string(b1) != string(b2) {
		t.Error("the same groups write different bytes")
	}

	// Refusals: another STATS, damage, truncation, trailing bytes.
	other := mustCompile(t, `FROM x | STATS n = COUNT(*) BY g`).NewAcc()
	if err := other.UnmarshalBinary(b2); err == nil {
		t.Error("bytes of another STATS accepted")
	}
	if err := other.Merge(all); err == nil {
		t.Error("merged accumulators of different STATS")
	}
	for _, bad := range [][]byte{nil, []byte("x"), b2[:len(b2)-1], append(append([]byte(nil), b2...), 0), append([]byte("esqlacc3"), b2[8:]...)} {
		acc := p.NewAcc()
		feed(p, acc, recs[0])
		if err := acc.UnmarshalBinary(bad); err == nil || acc.Groups() != 0 {
			t.Errorf("%d bytes: err %v, %d groups", len(bad), err, acc.Groups())
		}
	}
}

// TestReuse: an Acc emptied by Reuse takes rows as a new one does (its
// groups in blocks it had made, sets past the small list, overflow counts
// from zero), and the rows it gave before stay as they were.
func TestReuse(t *testing.T) {
	q := `FROM x | STATS n = COUNT(*), c = COUNT_DISTINCT(f), v = VALUES(f), lo = MIN(f), s = SUM(source.port), w = COUNT(*) WHERE f == "b" BY g`
	p := mustCompile(t, q)
	batch := func(seed, n int) []matcher.MapFields {
		var recs []matcher.MapFields
		for i := range n {
			recs = append(recs, rec("g", fmt.Sprint((i*seed)%300), "f", fmt.Sprint("v", (i+seed)%23), "source.port", fmt.Sprint("#", i%7)))
		}
		return append(recs, rec("f", "b")) // a null group
	}
	lim := Limits{Groups: 250, Values: 10}
	acc := p.NewAccLimits(lim)
	feed(p, acc, batch(7, 6000)...)
	before := p.Results(acc, testNow)
	first := render(before)
	rows, vals := acc.Overflow()
	if rows == 0 || vals == 0 {
		t.Fatalf("the first batch overflows nothing (%d rows, %d values): the test does not reach the caps", rows, vals)
	}
	for _, seed := range []int{3, 11, 1, 7} {
		acc.Reuse()
		if acc.Groups() != 0 {
			t.Fatalf("%d groups after Reuse", acc.Groups())
		}
		recs := batch(seed, 100*seed)
		fresh := p.NewAccLimits(lim)
		feed(p, fresh, recs...)
		feed(p, acc, recs...)
		want := render(p.Results(fresh, testNow))
		if got := render(p.Results(acc, testNow)); !reflect.DeepEqual(got, want) {
			t.Errorf("seed %d: reused:\n%s\nwant\n%s", seed, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		b1, _ := acc.MarshalBinary()
		b2, _ := fresh.MarshalBinary()
		if string(b1) != string(b2) {
			t.Errorf("seed %d: a reused Acc writes other bytes than a new one", seed)
		}
		r1, v1 := acc.Overflow()
		r2, v2 := fresh.Overflow()
		if r1 != r2 || v1 != v2 {
			t.Errorf("seed %d: overflow %d %d, want %d %d", seed, r1, v1, r2, v2)
		}
	}
	if got := render(before); !reflect.DeepEqual(got, first) {
		t.Error("rows given before Reuse changed")
	}
}

// TestLimits: past the group cap rows are dropped and counted; past the
// value cap values are not kept and counted; bytes with more than the
// limits are refused.
func TestLimits(t *testing.T) {
	p := mustCompile(t, `FROM x | STATS c = COUNT(*), v = VALUES(g), d = COUNT_DISTINCT(g) BY f`)
	acc := p.NewAccLimits(Limits{Groups: 2, Values: 3})
	for _, f := range []string{"a", "b", "c", "a", "d"} {
		feed(p, acc, rec("f", f, "g", "1"))
	}
	for _, g := range []string{"2", "3", "4", "5", "2"} {
		feed(p, acc, rec("f", "a", "g", g))
	}
	rows, values := acc.Overflow()
	if acc.Groups() != 2 || rows != 2 || values != 4 {
		t.Errorf("groups %d, dropped rows %d values %d; want 2, 2, 4", acc.Groups(), rows, values)
	}
	got := render(p.Results(acc, testNow))
	want := []string{"c=7 v=1,2,3 d=3 f=a", "c=1 v=1 d=1 f=b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
	b, _ := acc.MarshalBinary()
	small := p.NewAccLimits(Limits{Groups: 1, Values: 3})
	if err := small.UnmarshalBinary(b); err == nil {
		t.Error("more groups than the limit accepted")
	}
	big := p.NewAcc()
	if err := big.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if r, v := big.Overflow(); r != 2 || v != 4 {
		t.Errorf("overflow counts after a round trip: %d %d", r, v)
	}
	other := mustCompile(t, `FROM x | STATS c = COUNT(*) BY f`)
	row, _ := other.Eval(rec("f", "a"), testNow)
	fresh := p.NewAcc()
	fresh.Add(row)
	fresh.Add(Row{})
	if fresh.Groups() != 0 {
		t.Error("a row of another program was accumulated")
	}
	if mustCompile(t, `FROM x | WHERE f == "a"`).NewAcc() != nil {
		t.Error("an accumulator for a query without STATS")
	}
}

// TestLargeSets: a set keeps its values exactly as it grows from a few
// to many (each value once, -0.0 and 0.0 one value), up to its cap, and
// through a merge and a round trip through bytes.
func TestLargeSets(t *testing.T) {
	p := mustCompile(t, `FROM x | EVAL d = TO_DOUBLE(source.port) * CASE(g == "v00", -1.0, 1.0)
		| STATS v = VALUES(g), c = COUNT_DISTINCT(g), dv = VALUES(d), dc = COUNT_DISTINCT(d) BY f`)
	var recs []matcher.MapFields
	for i := range 60 {
		recs = append(recs, rec("f", "a", "g", fmt.Sprintf("v%02d", i%30), "source.port", fmt.Sprintf("#%d", i%25)))
	}
	acc := p.NewAcc()
	feed(p, acc, recs...)
	// g: v00 to v29; d: -0.0 (v00, port 0), -5.0 (v00, port 5), 0.0 to 24.0.
	var gs []string
	for i := range 30 {
		gs = append(gs, fmt.Sprintf("v%02d", i))
	}
	ds := []string{"-5.0"}
	for i := range 25 {
		ds = append(ds, fmt.Sprintf("%d.0", i))
	}
	want := []string{"v=" + strings.Join(gs, ",") + " c=30 dv=" + strings.Join(ds, ",") + " dc=26 f=a"}
	if got := render(p.Results(acc, testNow)); !reflect.DeepEqual(got, want) {
		t.Errorf("%q\nwant %q", got, want)
	}
	parts := []*Acc{p.NewAcc(), p.NewAcc()}
	for i, r := range recs {
		feed(p, parts[i%2], r)
	}
	if got := render(p.Results(mergeThroughBytes(t, p, parts...), testNow)); !reflect.DeepEqual(got, want) {
		t.Errorf("merged: %q\nwant %q", got, want)
	}
	// Capped at 12, the first 12 values in the records' order stay: v00
	// to v11 (rows 12-29 and 42-59 leave theirs out), 0.0 to 11.0 (rows
	// 12-24 and 37-49 leave theirs out, and row 30 its -5.0).
	capped := p.NewAccLimits(Limits{Groups: 1, Values: 12})
	feed(p, capped, recs...)
	want = []string{"v=" + strings.Join(gs[:12], ",") + " c=12 dv=" + strings.Join(ds[1:13], ",") + " dc=12 f=a"}
	if got := render(p.Results(capped, testNow)); !reflect.DeepEqual(got, want) {
		t.Errorf("capped: %q\nwant %q", got, want)
	}
	if _, v := capped.Overflow(); v != 2*36+2*27 {
		t.Errorf("%d values left out, want %d", v, 2*36+2*27)
	}
}

// TestBlockOf: groups fill blocks of 8, 16, 32, 64, 128 and then 256, in
// order, each place once.
func TestBlockOf(t *testing.T) {
	wantB, wantOff := 0, 0
	for g := int32(0); g < 2000; g++ {
		b, off := blockOf(g)
		if b != wantB || off != wantOff {
			t.Fatalf("group %d: block %d place %d, want %d %d", g, b, off, wantB, wantOff)
		}
		size := 256
		if b < 5 {
			size = 8 << b
		}
		if wantOff++; wantOff == size {
			wantB, wantOff = wantB+1, 0
		}
	}
}

// TestMultiValuedKeyOncePerGroup: a row whose multi-valued BY key repeats
// a value was counted in its group once per copy; Elasticsearch dedupes
// the row's key (MultivalueDedupe) and counts it once.
func TestMultiValuedKeyOncePerGroup(t *testing.T) {
	for _, c := range []struct {
		q    string
		recs []matcher.MapFields
		want string
	}{
		{`FROM x | STATS c = COUNT(*) BY TO_LOWER(f)`, []matcher.MapFields{rec("f", "A", "f", "a")}, "c=1 TO_LOWER(f)=a"},
		{`FROM x | STATS c = COUNT(*) BY source.port`, []matcher.MapFields{rec("source.port", "#1", "source.port", "#1")}, "c=1 source.port=1"},
		{`FROM x | STATS c = COUNT(*) BY source.port, f`, []matcher.MapFields{rec("source.port", "#1", "source.port", "#1", "f", "z")}, "c=1 source.port=1 f=z"},
		{`FROM x | STATS c = COUNT(*) BY TO_LOWER(f)`, []matcher.MapFields{rec("f", "A", "f", "b", "f", "a", "f", "B")}, "c=1 TO_LOWER(f)=a"},
	} {
		got := results(t, c.q, c.recs...)
		if len(got) == 0 || got[0] != c.want {
			t.Errorf("%s: %q, want first %q", c.q, got, c.want)
		}
	}
}
