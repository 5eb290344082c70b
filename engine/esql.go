package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/matcher/esql"
	"github.com/trailwatch/trailwatch/store"
)

// ES|QL rules, as Kibana runs them. A query without STATS alerts once per
// record that gives a row (the record's document with the row's columns,
// deduplicated by record, as Kibana deduplicates by document id). A query
// with STATS is a scheduled rule: each record's row (the commands before
// STATS, on the candidate path) is aggregated into the state's time buckets
// as a partial aggregate, and each run merges its window's buckets, runs
// what follows STATS, and alerts once per result row, with an id of the
// run's window, the query, the rule and the row: the same run replayed
// makes no second alert, while a later overlapping run may alert again, as
// in Kibana.

// accKey names one ES|QL rule's partial aggregate of one bucket in a batch.
type accKey struct {
	sched  int
	bucket int64
}

// esqlGroup is the key an ES|QL rule's bucket aggregate is stored under:
// one entry per bucket, the groups inside it.
var esqlGroup = []byte{2}

// matchedESQL evaluates an ES|QL rule on a record its prefilter let
// through.
func (e *Engine) matchedESQL(w *worker, rm member, ra **recordAlerts, alerts []*Alert) []*Alert {
	ev, r := &w.ev, rm.rule
	seen := e.seenAt(ev)
	// Rules with one query (copies under other ids) share the record's row.
	if w.rowOf != w.n || w.rowQuery != rm.prog {
		w.row, w.rowOK = rm.prog.Eval(ev, seen)
		w.rowOf, w.rowQuery = w.n, rm.prog
	}
	row, ok := w.row, w.rowOK
	if !ok {
		return alerts
	}
	w.matches[rm.i]++
	if si, ok := e.schedOf[r]; ok {
		sc := e.scheduled[si]
		ms := seen.UnixMilli()
		if ms < 0 {
			return alerts
		}
		if e.replayed(w, ms) {
			return alerts // counted when it was given before
		}
		k := accKey{sched: si, bucket: floorDiv(ms, sc.bucket) * sc.bucket}
		if w.accs == nil {
			w.accs = map[accKey]*esql.Acc{}
		}
		if !e.accShared[si] {
			acc := w.accs[k]
			if acc == nil {
				acc = w.newAcc(rm.prog)
				w.accs[k] = acc
			}
			acc.Add(row)
			return alerts
		}
		// Rules that share the aggregate: one under each rule's key, the
		// row added once.
		lead := accKey{sched: e.accShare[si], bucket: k.bucket}
		acc := w.accs[lead]
		if acc == nil {
			acc = w.newAcc(rm.prog)
			w.accs[lead] = acc
		}
		w.accs[k] = acc
		if w.addedTo == nil {
			w.addedTo = map[accKey]uint64{}
		}
		if n, ok := w.addedTo[lead]; !ok || n != w.n {
			w.addedTo[lead] = w.n
			acc.Add(row)
		}
		return alerts
	}
	if *ra == nil {
		*ra = &recordAlerts{e: e, ev: e.owned(ev)}
	}
	return append(alerts, e.rowAlert(r, *ra, row))
}

// maxSpareGroups bounds the groups of an aggregate kept for reuse, and
// maxSpare the aggregates kept for one program.
const (
	maxSpareGroups = 4096
	maxSpare       = 8
)

// newAcc is an empty aggregate of p, a spare one when there is one.
func (w *worker) newAcc(p *esql.Program) *esql.Acc {
	if s := w.spare[p]; len(s) > 0 {
		acc := s[len(s)-1]
		s[len(s)-1] = nil
		w.spare[p] = s[:len(s)-1]
		return acc
	}
	return p.NewAcc()
}

// spareAccs empties the batch's aggregates (written into the state by
// now) and keeps those of a moderate size for the next batches.
func (w *worker) spareAccs() {
	clear(w.addedTo)
	if w.spared == nil {
		w.spared = map[*esql.Acc]bool{}
	}
	defer clear(w.spared)
	for k, acc := range w.accs {
		delete(w.accs, k)
		if w.spared[acc] {
			continue // shared by rules: kept once
		}
		w.spared[acc] = true
		p := acc.Program()
		if acc.Groups() > maxSpareGroups || len(w.spare[p]) >= maxSpare {
			continue
		}
		acc.Reuse()
		if w.spare == nil {
			w.spare = map[*esql.Program][]*esql.Acc{}
		}
		w.spare[p] = append(w.spare[p], acc)
	}
}

// rowAlert is a non-aggregating ES|QL rule's alert on a record: the
// record's alert with the row's columns that are not the record's fields.
func (e *Engine) rowAlert(r *conf.Rule, rec *recordAlerts, row esql.Row) *Alert {
	a := e.buildAlert(r, rec, nil)
	cols := map[string]any{}
	for i, name := range row.Names() {
		if e.isDocField(rec, name) {
			continue // the record's own field, already in the document
		}
		if v := rowValue(row.Value(i)); v != nil {
			cols[name] = v
		}
	}
	// The record's document (rendered once for all its alerts) with the
	// row's columns.
	a.rec = &recordAlerts{e: e, ev: rec.ev, base: rec, cols: cols, at: rec.at}
	return a
}

// isDocField reports whether a row column is a field of the record (as
// opposed to a column the query computed).
func (e *Engine) isDocField(rec *recordAlerts, name string) bool {
	return len(rec.ev.Values(e.schema.Field(name))) > 0
}

// rowValue is a column's values for JSON: null, one value, or a list.
func rowValue(vs []matcher.Value) any {
	switch len(vs) {
	case 0:
		return nil
	case 1:
		return jsonValue(vs[0])
	}
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = jsonValue(v)
	}
	return out
}

func jsonValue(v matcher.Value) any {
	switch v.Kind {
	case matcher.KindNumber:
		if n, err := strconv.ParseInt(v.Text, 10, 64); err == nil {
			return n
		}
		if x, err := strconv.ParseFloat(v.Text, 64); err == nil {
			return x
		}
	case matcher.KindBool:
		return v.Text == "true"
	}
	return v.Text
}

// mergeAccs writes a batch's partial aggregates into the state, each
// merged with what its bucket already holds.
func (e *Engine) mergeAccs(ws *store.Windows, accs map[accKey]*esql.Acc, rs *runStats) error {
	var parts map[*esql.Acc][]byte // an aggregate rules share, written once
	keys := make([]accKey, 0, len(accs))
	for k := range accs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b accKey) int {
		if a.sched != b.sched {
			return a.sched - b.sched
		}
		return int(a.bucket - b.bucket)
	})
	for _, k := range keys {
		acc := accs[k]
		sc := e.scheduled[k.sched]
		id := sc.rule.RuleID
		if last, ok := ws.LastRun(id); ok && k.bucket < last.UnixMilli()+sc.interval-sc.from {
			rs.late += int(acc.Rows()) // each record the bucket's part counted
			continue
		}
		if rows, _ := acc.Overflow(); rows > 0 {
			rs.overflow += int(rows)
		}
		b, ok := parts[acc]
		if !ok {
			var err error
			if b, err = acc.MarshalBinary(); err != nil {
				return fmt.Errorf("rule %q: %w", id, err)
			}
			if e.accShared[k.sched] {
				if parts == nil {
					parts = map[*esql.Acc][]byte{}
				}
				parts[acc] = b
			}
		}
		// The batch's part only: the bucket's other parts are merged when
		// a run reads them, and compacted after it.
		err := ws.Append(id, k.bucket, esqlGroup, b, e.windowCap)
		if errors.Is(err, store.ErrWindowFull) {
			rs.overflow++
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// compactESQL merges each bucket a later run will read into one entry.
func (e *Engine) compactESQL(ws *store.Windows, sc *scheduled, from, to int64) error {
	p := sc.rule.ESQL
	for _, b := range ws.Buckets(sc.rule.RuleID, from, 1<<20) {
		if b >= to {
			break
		}
		err := ws.Compact(sc.rule.RuleID, b, esqlGroup, func(parts [][]byte) ([]byte, error) {
			acc := p.NewAcc()
			for _, v := range parts {
				if err := acc.MergeBinary(v); err != nil && !errors.Is(err, esql.ErrOtherStats) {
					return nil, fmt.Errorf("rule %q: an aggregate in the state file is unreadable: %w", sc.rule.RuleID, err)
				}
			}
			return acc.MarshalBinary()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// esqlRun is one run of an aggregating ES|QL rule at t (ms) over
// [t-from, t): the window's buckets merged, what follows STATS run on them,
// one alert per result row.
func (e *Engine) esqlRun(ws *store.Windows, sc *scheduled, t int64) ([]*Alert, error) {
	r, p := sc.rule, sc.rule.ESQL
	acc := p.NewAcc()
	err := ws.Scan(r.RuleID, t-sc.from, t, func(_ int64, _, v []byte) error {
		// A part of another STATS (written before the rule was edited, by
		// a build that kept no shapes: shape.go) is passed over.
		if err := acc.MergeBinary(v); err != nil && !errors.Is(err, esql.ErrOtherStats) {
			return fmt.Errorf("rule %q: an aggregate in the state file is unreadable: %w", r.RuleID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	run := time.UnixMilli(t).UTC()
	rows := p.Results(acc, run)
	if !e.noCaps && r.MaxSignals > 0 && len(rows) > r.MaxSignals {
		rows = rows[:r.MaxSignals]
	}
	sum := sha256.Sum256([]byte(r.Query))
	query := hex.EncodeToString(sum[:8])
	var out []*Alert
	for _, row := range rows {
		d := map[string]any{}
		var texts []string
		for i, name := range row.Names() {
			vs := row.Value(i)
			if v := rowValue(vs); v != nil {
				d[name] = v
			}
			texts = append(texts, name)
			for _, v := range vs {
				texts = append(texts, v.Text)
			}
			texts = append(texts, "\x00")
		}
		d["kibana.alert.original_time"] = run.Format(alertTime)
		setPath(d, "event.kind", "signal")
		window := fmt.Sprintf("esql:%d:%d:%s", t-sc.from, t, query)
		a := e.docAlert(r, AlertUUID(r.RuleID, r.Version, window, texts), d, run)
		if a.policy = e.rowPolicy(r, row); a.policy != nil {
			a.policy.Now = run
		}
		out = append(out, a)
	}
	return out, nil
}

// rowPolicy is an aggregating ES|QL rule's alert suppression over its
// row's values for the group_by fields (its max_signals applies per run).
func (e *Engine) rowPolicy(r *conf.Rule, row esql.Row) *store.Policy {
	s := r.AlertSuppression
	if s == nil || len(s.GroupBy) == 0 {
		return nil
	}
	p := &store.Policy{RuleID: r.RuleID}
	key, legacy := []string{r.RuleID}, []string{r.RuleID}
	missing := false
	for _, f := range s.GroupBy {
		vs := row.Values(f)
		texts := make([]string, len(vs))
		for i, v := range vs {
			texts[i] = v.Text
		}
		legacy = append(legacy, strings.Join(texts, "\x1f"))
		var v any
		switch len(texts) {
		case 0:
			missing = true
			key = append(key, "")
		case 1:
			v = texts[0]
		default:
			sort.Strings(texts)
			v = texts
		}
		if len(texts) > 0 {
			key = append(key, groupValue(texts))
		}
		p.Terms = append(p.Terms, store.SuppressTerm{Field: f, Value: v})
	}
	// missing_fields_strategy doNotSuppress: a row missing a group_by
	// value alerts on its own (Kibana's partitionMissingFieldsEvents).
	if missing && s.MissingFieldsStrategy == "doNotSuppress" {
		return nil
	}
	p.SuppressKey, p.LegacyKey = TermKey(key), TermKey(legacy)
	p.SuppressFor = s.Window(r.IntervalDur)
	return p
}

// shareAccs finds the aggregating ES|QL rules whose batch aggregates are
// the same: one program (rules loaded as copies of one query), one bucket
// width and the same exceptions.
func (e *Engine) shareAccs() {
	e.accShare, e.accShared = make([]int, len(e.scheduled)), make([]bool, len(e.scheduled))
	first := map[string]int{}
	for si, sc := range e.scheduled {
		e.accShare[si] = si
		if sc.rule.ESQL == nil {
			continue
		}
		var xs []string
		for _, x := range e.excepts[sc.rule] {
			xs = append(xs, x.Identity())
		}
		slices.Sort(xs)
		key := fmt.Sprintf("%p\x00%d\x00%s", e.program(sc.rule), sc.bucket, strings.Join(xs, "\x00"))
		if f, ok := first[key]; ok {
			e.accShare[si] = f
			e.accShared[si], e.accShared[f] = true, true
			continue
		}
		first[key] = si
	}
}

// program is the program e evaluates for an ES|QL rule: the first loaded
// of those with its query text (nil for other rules).
func (e *Engine) program(r *conf.Rule) *esql.Program {
	if r.ESQL == nil {
		return nil
	}
	if e.progs == nil {
		e.progs = map[string]*esql.Program{}
	}
	p, ok := e.progs[r.ESQL.Source()]
	if !ok {
		p = r.ESQL
		e.progs[r.ESQL.Source()] = p
	}
	return p
}
