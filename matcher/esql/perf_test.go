package esql

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/matcher"
)

// perfQuery has the shape of the rules that pin no provider or action and
// so run on every record: tests of common fields, then an extraction.
const perfQuery = `FROM logs-* | WHERE event.dataset == "aws.cloudtrail" AND event.outcome == "success"
	AND source.as.organization.name IS NOT NULL AND user.name IS NOT NULL
	| GROK aws.cloudtrail.request_parameters """roleArn=(?<role>[^,}]+)"""
	| EVAL trusted = CASE(source.as.organization.name LIKE "Amazon*", true, false)
	| STATS n = COUNT(*), r = VALUES(role) BY user.name, trusted`

var (
	perfMiss = rec("event.dataset", "aws.cloudtrail", "event.outcome", "success", "user.name", "alice")
	perfHit  = rec("event.dataset", "aws.cloudtrail", "event.outcome", "success", "user.name", "alice",
		"source.as.organization.name", "Example Hosting", "aws.cloudtrail.request_parameters", "{roleArn=arn:aws:iam::1:role/x, roleSessionName=s}")
)

// TestEvalAllocs: a record the WHERE drops costs no allocation once the
// program's buffers are warm; one that gives a row allocates only the row.
func TestEvalAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	p := mustCompile(t, perfQuery)
	p.Eval(perfMiss, testNow)
	if n := testing.AllocsPerRun(200, func() { p.Eval(perfMiss, testNow) }); n != 0 {
		t.Errorf("%v allocations for a dropped record", n)
	}
	if n := testing.AllocsPerRun(200, func() { p.Eval(perfHit, testNow) }); n > 12 {
		t.Errorf("%v allocations for a record that gives a row", n)
	}
}

// TestAddAllocs: a row whose group and values the accumulator holds
// already costs no allocation.
func TestAddAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	p := mustCompile(t, perfQuery)
	acc := p.NewAcc()
	row, ok := p.Eval(perfHit, testNow)
	if !ok {
		t.Fatal("no row")
	}
	acc.Add(row)
	if n := testing.AllocsPerRun(200, func() { acc.Add(row) }); n != 0 {
		t.Errorf("%v allocations for a row of a known group", n)
	}
	if got := render(p.Results(acc, testNow)); !reflect.DeepEqual(got, []string{"n=202 r=arn:aws:iam::1:role/x user.name=alice trusted=false"}) {
		t.Errorf("results: %q", got)
	}
}

// TestBorrowedRows: the row of an aggregating program can be read and
// added again until the Acc it was added to takes another row; then it
// is stale and using it panics rather than read memory another row uses.
func TestBorrowedRows(t *testing.T) {
	p := mustCompile(t, perfQuery)
	acc, other := p.NewAcc(), p.NewAcc()
	row, _ := p.Eval(perfHit, testNow)
	want := render([]Row{row})
	acc.Add(row)
	other.Add(row)
	acc.Add(row)
	if got := render([]Row{row}); !reflect.DeepEqual(got, want) {
		t.Errorf("after Add: %q, want %q", got, want)
	}
	second, _ := p.Eval(with(perfHit, "user.name", "bob"), testNow)
	acc.Add(second)
	for name, use := range map[string]func(){"Value": func() { row.Value(0) }, "Add": func() { other.Add(row) }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s of a stale row did not panic", name)
				}
			}()
			use()
		}()
	}
	if got := render(p.Results(acc, testNow)); !reflect.DeepEqual(got, []string{
		"n=1 r=arn:aws:iam::1:role/x user.name=bob trusted=false", "n=2 r=arn:aws:iam::1:role/x user.name=alice trusted=false"}) {
		t.Errorf("results %q", got)
	}
	if got := render(p.Results(other, testNow)); !reflect.DeepEqual(got, []string{"n=1 r=arn:aws:iam::1:role/x user.name=alice trusted=false"}) {
		t.Errorf("results %q", got)
	}
}

// TestConcurrentEval: one program evaluated from several goroutines at
// once (the plugin's workers) gives each the same rows as alone.
func TestConcurrentEval(t *testing.T) {
	p := mustCompile(t, perfQuery)
	recs := []matcher.MapFields{perfMiss, perfHit,
		with(perfHit, "aws.cloudtrail.request_parameters", "{roleArn=arn:aws:iam::1:role/y}", "source.as.organization.name", "Amazon.com, Inc.")}
	want := make([][]string, len(recs))
	for i, r := range recs {
		if row, ok := p.Eval(r, testNow); ok {
			want[i] = render([]Row{row})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := p.NewAcc()
			for n := range 500 {
				i := (n + g) % len(recs)
				row, ok := p.Eval(recs[i], testNow)
				var got []string
				if ok {
					got = render([]Row{row})
					acc.Add(row)
				}
				if !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Sprintf("record %d: %q, want %q", i, got, want[i])
					return
				}
			}
			if rows := p.Results(acc, testNow); len(rows) != 2 {
				errs <- "results"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkEvalDropped(b *testing.B) {
	p, _ := Compile(testSchema, perfQuery)
	b.ReportAllocs()
	for b.Loop() {
		p.Eval(perfMiss, testNow)
	}
}

func BenchmarkEvalRowAndAdd(b *testing.B) {
	p, _ := Compile(testSchema, perfQuery)
	acc := p.NewAcc()
	b.ReportAllocs()
	for b.Loop() {
		if row, ok := p.Eval(perfHit, testNow); ok {
			acc.Add(row)
		}
	}
}

// TestWhereOrder: a ctx learns to test first the conjunct that drops the
// rows, and the answer never depends on the order.
func TestWhereOrder(t *testing.T) {
	var calls [3]int
	conds := []func(*ctx) bool{
		func(*ctx) bool { calls[0]++; return true },
		func(*ctx) bool { calls[1]++; return true },
		func(*ctx) bool { calls[2]++; return false },
	}
	w := newWhereOrders([]int{3})[0]
	for range 1000 {
		if w.run(nil, conds) {
			t.Fatal("kept a row a conjunct drops")
		}
	}
	calls = [3]int{}
	for range 500 {
		w.run(nil, conds)
	}
	if calls != [3]int{0, 0, 500} {
		t.Errorf("tests in the last 500 rows: %v, want [0 0 500]", calls)
	}
	// The records change: now the first conjunct drops them.
	conds[0] = func(*ctx) bool { calls[0]++; return false }
	conds[2] = func(*ctx) bool { calls[2]++; return true }
	for range 1000 {
		w.run(nil, conds)
	}
	calls = [3]int{}
	for range 500 {
		w.run(nil, conds)
	}
	if calls != [3]int{500, 0, 0} {
		t.Errorf("after the change: %v, want [500 0 0]", calls)
	}
}

// TestCorpusDropAllocs: each corpus rule's Eval of a generated record its
// WHERE drops allocates nothing once warm.
func TestCorpusDropAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	names, progs, recs := corpusBench(t, 400, nil)
	ev := &cloudtrail.Event{}
	for j, p := range progs {
		checked := 0
		for _, r := range recs {
			ev.Reset(r.tree, nil, r.at, nil)
			fields := matcher.MapFields{}
			for _, f := range p.Fields() {
				fields[f.Name] = ev.Values(f)
			}
			if _, ok := p.Eval(fields, r.at); ok || checked >= 20 {
				continue
			}
			checked++
			if n := testing.AllocsPerRun(20, func() { p.Eval(fields, r.at) }); n != 0 {
				t.Errorf("%s: %v allocations for a dropped record", names[j], n)
				break
			}
		}
	}
}
