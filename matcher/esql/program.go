package esql

import (
	"strings"
	"sync"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
)

// Program is a compiled ES|QL query. Its parts:
//
//   - Eval: the commands before the first STATS (all of them in a query
//     without STATS), on one record: zero or one row.
//   - Prefilter: a necessary condition for Eval to give a row, in the
//     core's tests, so that the candidate index pins the rule.
//   - For an aggregating query (IsAggregating), NewAcc: the STATS
//     aggregation, fed Eval's rows, mergeable and serialisable; and Results:
//     the commands after STATS on the merged groups.
//
// A Program is safe for concurrent use; an Acc is not.
type Program struct {
	src      string
	indices  []string
	metadata []string
	fields   []*matcher.Field

	srcFields []srcField // the record fields the query reads, by index
	pre       []step     // the commands before STATS
	nslots    int        // computed columns before STATS
	nwhere    []int      // conjuncts of each WHERE before STATS that has several
	out       []outCol   // Eval's row
	shape     *shape
	final     env // the columns visible at the end (a query without STATS)
	limit     int // LIMIT of a query without STATS, -1 when none

	stats *statsPlan // nil: not aggregating
	post  *postPlan

	prefilterTree *pnode
	pool          sync.Pool // ctx for Eval
	addPool       sync.Pool // ctx for Acc.Add: the row's columns
}

type srcField struct {
	f *matcher.Field
	t typ
}

type outCol struct {
	name string
	t    typ
	read func(*ctx) mv
}

// shape is the names and types of a row's columns.
type shape struct {
	names []string
	types []typ
}

type stepKind uint8

const (
	stepWhere stepKind = iota
	stepEval
	stepExtract
	stepSort
	stepLimit
	stepExpand
)

// step is one command evaluated on a row.
type step struct {
	kind    stepKind
	conds   []func(*ctx) bool // WHERE: its conjuncts
	wi      int               // WHERE before STATS with several conjuncts: its order in a ctx; else -1
	slot    int               // EVAL's column; MV_EXPAND's
	val     func(*ctx) mv     // EVAL
	in      func(*ctx) mv     // DISSECT, GROK
	extract func(string, []mv)
	// DISSECT, GROK reading a source field: strings every value it
	// extracts from holds (a GROK pattern's literals); a record whose
	// field lacks one (matcher.TextFields) extracts nothing.
	inField *matcher.Field
	needs   []string
	slots   []int // DISSECT, GROK columns
	orders  []sortKey
	limit   int
}

func (p *Program) newCtx() *ctx {
	cols := make([]mv, p.nslots+len(p.out)) // and the row
	k := &ctx{
		p:    p,
		src:  make([]srcSlot, len(p.srcFields)),
		cols: cols[:p.nslots:p.nslots],
		done: make([]bool, p.nslots),
		row:  cols[p.nslots:p.nslots],
	}
	if len(p.nwhere) > 0 {
		k.where = newWhereOrders(p.nwhere)
	}
	return k
}

// run applies a row-by-row step; false when WHERE drops the row.
func (s *step) run(k *ctx) bool {
	switch s.kind {
	case stepWhere:
		if s.wi >= 0 && k.where != nil {
			return k.where[s.wi].run(k, s.conds)
		}
		for _, c := range s.conds {
			if !c(k) {
				return false
			}
		}
		return true
	case stepEval:
		k.cols[s.slot] = s.val(k)
	case stepExtract:
		if s.lacking(k) {
			for _, slot := range s.slots {
				k.cols[slot] = nil
			}
			return true
		}
		in := s.in(k)
		outs := k.outs[:0]
		for range s.slots {
			outs = append(outs, nil)
		}
		k.outs = outs
		for _, v := range in {
			s.extract(v.s, outs)
		}
		for i, slot := range s.slots {
			k.cols[slot] = outs[i]
		}
		clear(outs)
	}
	return true
}

// lacking reports whether the record's input field lacks one of the
// strings the step needs (then no value of it can match).
func (s *step) lacking(k *ctx) bool { return lacksAny(k, s.inField, s.needs) }

// lacksAny reports whether the record's field f lacks one of needs, as
// far as its matcher.TextFields knows.
func lacksAny(k *ctx, f *matcher.Field, needs []string) bool {
	if needs == nil {
		return false
	}
	tf, ok := k.f.(matcher.TextFields)
	if !ok {
		return false
	}
	for _, n := range needs {
		if tf.Lacks(f, n) {
			return true
		}
	}
	return false
}

// Row is one row: named columns, each null or one or more values.
//
// A row Eval gives for an aggregating program borrows the program's
// working memory and the record's text (it is meant for Acc.Add, which
// copies what it keeps): it can be read and added (to one Acc or more,
// any number of times) until an Acc it was given to takes a row of
// another Eval, and while the record is unchanged. Any other row owns its
// values.
type Row struct {
	shape *shape
	vals  []mv
	now   int64
	lend  *ctx   // the ctx whose memory vals are, nil when the row owns them
	gen   uint64 // lend's generation when the row was made
}

// check panics when the memory a row borrowed went back to its program.
func (r *Row) check() {
	if r.lend != nil && r.lend.gen != r.gen {
		panic("esql: a Row of an aggregating query used after an Acc it was added to took another row")
	}
}

// Names lists the row's columns in order.
func (r Row) Names() []string { return r.shape.names }

// Len is the number of columns.
func (r Row) Len() int { return len(r.vals) }

// Value is column i's values (nil for null), as Elasticsearch writes them
// in a result: text as it is, numbers as ES|QL prints them, booleans true
// or false, dates in ISO 8601 UTC with milliseconds, addresses canonical.
func (r Row) Value(i int) []matcher.Value {
	r.check()
	m := r.vals[i]
	if len(m) == 0 {
		return nil
	}
	out := make([]matcher.Value, len(m))
	for j, v := range m {
		out[j] = output(r.shape.types[i], v)
	}
	return out
}

// Values is the named column's values; nil when it is null or absent.
func (r Row) Values(name string) []matcher.Value {
	for i, n := range r.shape.names {
		if n == name {
			return r.Value(i)
		}
	}
	return nil
}

// Map is the row as a map from column name to values (null columns
// included, with no values).
func (r Row) Map() map[string][]matcher.Value {
	m := make(map[string][]matcher.Value, len(r.vals))
	for i, n := range r.shape.names {
		m[n] = r.Value(i)
	}
	return m
}

// Eval runs the commands before STATS (the whole query when it has none)
// on one record; now is the run's time, which NOW() answers. It reports
// false when the record gives no row. Eval reads only the fields the query
// needs, when it needs them. The row of an aggregating program borrows
// memory until an Acc takes it (see Row).
func (p *Program) Eval(f matcher.Fields, now time.Time) (Row, bool) {
	k := p.pool.Get().(*ctx)
	k.reset(f, now.UnixMilli())
	for i := range p.pre {
		if !p.pre[i].run(k) {
			k.f = nil
			p.pool.Put(k)
			return Row{}, false
		}
	}
	if p.stats != nil {
		// The row is the ctx's: no copy, the ctx stays out of the pool
		// until an Acc that took the row takes another (Acc.Add).
		row := k.row[:0]
		for _, o := range p.out {
			row = append(row, o.read(k))
		}
		k.row, k.f = row, nil
		return Row{shape: p.shape, vals: row, now: k.now, lend: k, gen: k.gen}, true
	}
	defer p.pool.Put(k)
	vals := make([]mv, len(p.out))
	n, text := 0, 0
	for i, o := range p.out {
		vals[i] = o.read(k)
		n += len(vals[i])
		if o.t == tyKeyword || o.t == tyIP {
			for _, v := range vals[i] {
				text += len(v.s)
			}
		}
	}
	// Copy out of the ctx's arena, and the text out of the record (whose
	// reader may lend it from a buffer it reuses): one allocation each.
	var sb strings.Builder
	sb.Grow(text)
	for i, m := range vals {
		if p.out[i].t == tyKeyword || p.out[i].t == tyIP {
			for _, v := range m {
				sb.WriteString(v.s)
			}
		}
	}
	all := sb.String()
	store := make([]val, 0, n)
	for i, m := range vals {
		if len(m) == 0 {
			vals[i] = nil
			continue
		}
		s := len(store)
		store = append(store, m...)
		vals[i] = store[s:len(store):len(store)]
		if p.out[i].t == tyKeyword || p.out[i].t == tyIP {
			for j := range vals[i] {
				l := len(vals[i][j].s)
				vals[i][j].s, all = all[:l], all[l:]
			}
		}
	}
	k.f = nil
	return Row{shape: p.shape, vals: vals, now: k.now}, true
}

// Source is the query's text.
func (p *Program) Source() string { return p.src }

// IsAggregating reports whether the query has STATS: Kibana then makes
// one alert per result row of each run, and the rows come from NewAcc and
// Results; otherwise one alert per record Eval gives a row for.
func (p *Program) IsAggregating() bool { return p.stats != nil }

// Indices lists FROM's index patterns as written.
func (p *Program) Indices() []string { return p.indices }

// Metadata lists the metadata fields FROM asks for (_id, _index,
// _version): Eval reads them from the record as fields of those names.
func (p *Program) Metadata() []string { return p.metadata }

// Fields lists the record fields the query reads, in order of first use.
func (p *Program) Fields() []*matcher.Field { return p.fields }

// Columns lists the names of Eval's row: for a query without STATS, the
// columns visible at its end that are computed (EVAL, DISSECT, GROK,
// RENAME) or that KEEP names exactly; for an aggregating query, the
// columns STATS reads.
func (p *Program) Columns() []string { return p.shape.names }

// Limit is the LIMIT of a query without STATS (at most that many rows a
// run), false when it has none.
func (p *Program) Limit() (int, bool) { return p.limit, p.limit >= 0 }

// KeepsField reports whether the record field name is among the columns
// at the end of a query without STATS (a KEEP or DROP pattern may have
// taken it away, an EVAL or RENAME replaced it): what the alert carries of
// the record when Kibana merges the row into the document is the
// document, so this only tells what the query's own result would show.
func (p *Program) KeepsField(name string) bool {
	if p.stats != nil {
		return false
	}
	if i := p.final.find(name); i >= 0 {
		return p.final.cols[i].slot < 0 && p.final.cols[i].field.Name == name
	}
	return p.final.sourceVisible(name)
}
