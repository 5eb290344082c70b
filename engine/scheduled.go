package engine

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/store"
)

// Scheduled rules (threshold) are Kibana's runs replayed at the edge: the
// rule runs every interval, each run over [run - from, run), on the
// engine's clock (ingested or event time). Runs sit at multiples of the
// interval since the Unix epoch, so two nodes, a restart and a replay agree.
// Matching records are counted into the state as they arrive, per group in
// time buckets of gcd(interval, from), which answer every run's window
// exactly; a run merges its window's buckets.

// WindowCap is the most (bucket, group) entries a scheduled rule keeps in
// the state by default (Options.WindowCap); records of new groups past it are counted as overflow, not
// kept (memory and file size stay bounded whatever the input).
const WindowCap = 100_000

// DistinctCap is the most distinct values of a threshold's cardinality
// field kept per group and bucket: the count is exact up to it.
const DistinctCap = 10_000

// futureSlack is how far past the wall clock an event time may move the
// event clock (CloudTrail's clocks are close to real time; a record dated
// years ahead must not make every run at once).
const futureSlack = 15 * time.Minute

// scheduled is one scheduled rule's schedule (threshold: and grouping; an
// aggregating ES|QL rule groups with its STATS).
type scheduled struct {
	rule     *conf.Rule
	fields   []*matcher.Field // group fields
	distinct *matcher.Field   // the cardinality field, or nil
	bucket   int64            // bucket width, ms
	interval int64            // ms
	from     int64            // ms
}

// idCap is how many record ids a group keeps per bucket: enough to decide
// the threshold exactly.
func (sc *scheduled) idCap() int { return max(sc.rule.ThresholdSpec.Value, 1) }

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func newScheduled(s *matcher.Schema, r *conf.Rule) *scheduled {
	sc := &scheduled{rule: r, interval: r.IntervalDur.Milliseconds(), from: r.FromDur.Milliseconds()}
	sc.bucket = gcd(sc.interval, sc.from)
	if sc.bucket <= 0 {
		sc.bucket = max(sc.interval, 1)
	}
	if r.ThresholdSpec == nil {
		return sc // an aggregating ES|QL rule
	}
	for _, f := range r.ThresholdSpec.Fields {
		sc.fields = append(sc.fields, s.Field(f))
	}
	if c := r.ThresholdSpec.Cardinality; len(c) > 0 {
		sc.distinct = s.Field(c[0].Field)
	}
	return sc
}

// groupAgg is one group's counts in one bucket (or merged over a window).
// Besides the raw count it keeps the ids of the records it counted (their
// eventID, hashed) up to idCap, the rule's threshold: a record given twice
// (a chunk retried after a crash, a file scanned again) is one event, as
// one document is one hit in Kibana, so a replay never makes an alert on
// its own. Past idCap the decision is made and the raw count is reported.
type groupAgg struct {
	count    uint64 // records counted, repeats included
	anon     uint64 // records without an eventID (counted as they come)
	min, max int64  // event times, ms
	hashes   map[uint64]struct{}
	capped   bool // hashes reached DistinctCap
	ids      map[uint64]struct{}
	idsFull  bool // ids reached idCap
}

// events is the number of events the group holds, as Kibana counts
// documents: exact while below the cap of ids, the raw count past it.
func (g *groupAgg) events() uint64 {
	if g.idsFull {
		return max(g.count, uint64(len(g.ids))+g.anon)
	}
	return uint64(len(g.ids)) + g.anon
}

func (g *groupAgg) add(o *groupAgg, idCap int) {
	if g.count == 0 || o.min < g.min {
		g.min = o.min
	}
	if g.count == 0 || o.max > g.max {
		g.max = o.max
	}
	g.count += o.count
	g.anon += o.anon
	for h := range o.hashes {
		g.addHash(h)
	}
	g.capped = g.capped || o.capped
	for id := range o.ids {
		g.addID(id, idCap)
	}
	g.idsFull = g.idsFull || o.idsFull
}

func (g *groupAgg) addHash(h uint64) {
	if g.hashes == nil {
		g.hashes = map[uint64]struct{}{}
	}
	if len(g.hashes) >= DistinctCap {
		if _, ok := g.hashes[h]; !ok {
			g.capped = true
		}
		return
	}
	g.hashes[h] = struct{}{}
}

func (g *groupAgg) addID(id uint64, idCap int) {
	if g.ids == nil {
		g.ids = map[uint64]struct{}{}
	}
	if len(g.ids) >= idCap {
		if _, ok := g.ids[id]; !ok {
			g.idsFull = true
		}
		return
	}
	g.ids[id] = struct{}{}
}

// encode is the state's form: count, anon, min, max, flags, the number of
// cardinality hashes, then they and the ids, each sorted.
func (g *groupAgg) encode() []byte {
	b := make([]byte, 0, 40+8*(len(g.hashes)+len(g.ids)))
	b = binary.AppendUvarint(b, g.count)
	b = binary.AppendUvarint(b, g.anon)
	b = binary.AppendVarint(b, g.min)
	b = binary.AppendVarint(b, g.max)
	flags := byte(0)
	if g.capped {
		flags |= 1
	}
	if g.idsFull {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(g.hashes)))
	for _, set := range []map[uint64]struct{}{g.hashes, g.ids} {
		hs := make([]uint64, 0, len(set))
		for h := range set {
			hs = append(hs, h)
		}
		slices.Sort(hs)
		for _, h := range hs {
			b = binary.BigEndian.AppendUint64(b, h)
		}
	}
	return b
}

var errBadAgg = errors.New("a threshold count in the state file is unreadable")

func decodeAgg(b []byte, idCap int) (*groupAgg, error) {
	g := &groupAgg{}
	var n int
	if g.count, n = binary.Uvarint(b); n <= 0 {
		return nil, errBadAgg
	}
	b = b[n:]
	if g.anon, n = binary.Uvarint(b); n <= 0 {
		return nil, errBadAgg
	}
	b = b[n:]
	if g.min, n = binary.Varint(b); n <= 0 {
		return nil, errBadAgg
	}
	b = b[n:]
	if g.max, n = binary.Varint(b); n <= 0 {
		return nil, errBadAgg
	}
	b = b[n:]
	if len(b) < 1 {
		return nil, errBadAgg
	}
	g.capped, g.idsFull = b[0]&1 != 0, b[0]&2 != 0
	b = b[1:]
	nh, n := binary.Uvarint(b)
	if n <= 0 || len(b[n:])%8 != 0 || nh > uint64(len(b[n:])/8) {
		return nil, errBadAgg
	}
	b = b[n:]
	for i := uint64(0); i < nh; i++ {
		g.addHash(binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	for ; len(b) >= 8; b = b[8:] {
		g.addID(binary.BigEndian.Uint64(b), idCap)
	}
	return g, nil
}

// compareTerm orders two values of a field of type t as Elasticsearch's
// composite terms source does.
func compareTerm(t matcher.FieldType, a, b string) int {
	switch t {
	case matcher.Long, matcher.Double:
		x, errX := strconv.ParseFloat(a, 64)
		y, errY := strconv.ParseFloat(b, 64)
		if errX == nil && errY == nil {
			return cmp.Compare(x, y)
		}
	case matcher.IP:
		x, errX := netip.ParseAddr(a)
		y, errY := netip.ParseAddr(b)
		if errX == nil && errY == nil {
			// As indexed: IPv4 as IPv4-mapped IPv6.
			return netip.AddrFrom16(x.As16()).Compare(netip.AddrFrom16(y.As16()))
		}
	}
	return strings.Compare(a, b)
}

// countKey names one group's counts in one bucket within a batch.
type countKey struct {
	sched  int
	bucket int64
	group  string // store.EncodeValues of the group's values
}

// valueHash is a stable 64-bit hash of a value (FNV-1a, then mixed), for
// exact distinct counts without keeping the values.
func valueHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	// splitmix64's finaliser spreads FNV's low-entropy high bits.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// countThreshold folds a matching record into the batch's counts: one
// entry per combination of its group values (none when a group field is
// missing, as Kibana drops such events).
func (e *Engine) countThreshold(w *worker, si int, seen time.Time) {
	sc := e.scheduled[si]
	ev := &w.ev
	combos, keys := w.termsOf(sc.fields, ev)
	if len(sc.fields) == 0 {
		combos, keys = [][]string{nil}, [][]byte{nil}
	}
	if combos == nil {
		return
	}
	ms := seen.UnixMilli()
	if ms < 0 {
		return // dated before 1970: no window holds it
	}
	b := floorDiv(ms, sc.bucket) * sc.bucket
	id, hasID := uint64(0), false
	if v := ev.Values(e.eventID); len(v) > 0 {
		id, hasID = valueHash(v[0].Text), true
	}
	var hashes []uint64
	if sc.distinct != nil {
		vals := ev.Values(sc.distinct)
		for i := range vals {
			if matcher.Searchable(sc.distinct, &vals[i]) {
				hashes = append(hashes, valueHash(sc.distinct.TermText(vals[i])))
			}
		}
	}
	if w.counts == nil {
		w.counts = map[countKey]*groupAgg{}
	}
	for i := range combos {
		// A leading byte keeps the key of a rule without group fields
		// non-empty.
		k := countKey{sched: si, bucket: b, group: "\x01" + string(keys[i])}
		g := w.counts[k]
		if g == nil {
			g = &groupAgg{min: ms, max: ms}
			w.counts[k] = g
		}
		one := &groupAgg{count: 1, min: ms, max: ms}
		if hasID {
			one.addID(id, sc.idCap())
		} else {
			one.anon = 1
		}
		g.add(one, sc.idCap())
		for _, h := range hashes {
			g.addHash(h)
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// runStats is what the scheduled part of a commit did.
type runStats struct {
	runs, overflow, late int
	by                   map[string]int // runs by rule name
	// due is the earliest run after the clock: the engine's nextDue once
	// the transaction has committed (a failed one leaves its runs due).
	due int64
}

// scheduledEmit writes the batch's counts into the state, moves the clock
// and makes every run that is due, returning their alerts. It runs inside
// the batch's transaction.
func (e *Engine) scheduledEmit(ws *store.Windows, counts map[countKey]*groupAgg, clock time.Time, rs *runStats) ([]*Alert, error) {
	// Counts first: a run made now sees this batch's records. In key
	// order, so that which groups a full window keeps does not depend on
	// a map's order.
	keys := make([]countKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		if a.sched != b.sched {
			return a.sched - b.sched
		}
		if a.bucket != b.bucket {
			return cmp.Compare(a.bucket, b.bucket)
		}
		return strings.Compare(a.group, b.group)
	})
	for _, k := range keys {
		g := counts[k]
		sc := e.scheduled[k.sched]
		id := sc.rule.RuleID
		if last, ok := ws.LastRun(id); ok && k.bucket < last.UnixMilli()+sc.interval-sc.from {
			rs.late += int(g.events()) // no run to come reads its bucket
			continue
		}
		if old := ws.Get(id, k.bucket, []byte(k.group)); old != nil {
			prev, err := decodeAgg(old, sc.idCap())
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", id, err)
			}
			prev.add(g, sc.idCap())
			g = prev
		}
		err := ws.Put(id, k.bucket, []byte(k.group), g.encode(), e.windowCap)
		if errors.Is(err, store.ErrWindowFull) {
			rs.overflow++
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	if prev, ok := ws.Clock(); ok && clock.Before(prev) {
		clock = prev
	}
	if err := ws.SetClock(clock); err != nil {
		return nil, err
	}
	var alerts []*Alert
	for _, sc := range e.scheduled {
		as, err := e.runDue(ws, sc, clock.UnixMilli(), rs)
		if err != nil {
			return nil, err
		}
		alerts = append(alerts, as...)
	}
	rs.due = e.dueAfter(clock.UnixMilli())
	return alerts, nil
}

// dueAfter is the earliest run time after clock, over every scheduled rule.
func (e *Engine) dueAfter(clock int64) int64 {
	next := int64(1<<62 - 1)
	for _, sc := range e.scheduled {
		next = min(next, (floorDiv(clock, sc.interval)+1)*sc.interval)
	}
	return next
}

// runDue makes the rule's runs that the clock has passed since its last
// run, skipping runs whose window holds no data (they make nothing).
func (e *Engine) runDue(ws *store.Windows, sc *scheduled, clock int64, rs *runStats) ([]*Alert, error) {
	id := sc.rule.RuleID
	latest := floorDiv(clock, sc.interval) * sc.interval // the last run the clock has passed
	var next int64
	if last, ok := ws.LastRun(id); ok {
		if last.UnixMilli() >= latest {
			return nil, nil // no run due, nothing newly out of every window
		}
		next = last.UnixMilli() + sc.interval
	} else {
		bs := ws.Buckets(id, 0, 1)
		if len(bs) == 0 {
			return nil, nil // nothing counted yet
		}
		next = (floorDiv(bs[0], sc.interval) + 1) * sc.interval
	}
	var alerts []*Alert
	ran := false
	for next <= latest {
		bs := ws.Buckets(id, next-sc.from, 1)
		if len(bs) == 0 {
			break
		}
		if bs[0] >= next {
			// An empty window: go to the first run whose window holds bs[0].
			next = (floorDiv(bs[0], sc.interval) + 1) * sc.interval
			continue
		}
		run := e.thresholdRun
		if sc.rule.ESQL != nil {
			run = e.esqlRun
		}
		as, err := run(ws, sc, next)
		if err != nil {
			return nil, err
		}
		rs.runs++
		ran = true
		if rs.by == nil {
			rs.by = map[string]int{}
		}
		rs.by[sc.rule.Name]++
		alerts = append(alerts, as...)
		next += sc.interval
	}
	if last, ok := ws.LastRun(id); !ok || last.UnixMilli() < latest {
		if err := ws.SetLastRun(id, time.UnixMilli(latest)); err != nil {
			return nil, err
		}
	}
	// What the next run cannot read: older buckets and signals.
	horizon := latest + sc.interval - sc.from
	if sc.rule.ESQL != nil && ran {
		// The parts batches appended to the buckets the next runs read
		// again, merged into one each once their time has passed (a bucket
		// still filling is merged at a later run).
		if err := e.compactESQL(ws, sc, horizon, latest); err != nil {
			return nil, err
		}
	}
	if _, err := ws.DropBefore(id, floorDiv(horizon, sc.bucket)*sc.bucket); err != nil {
		return nil, err
	}
	if err := ws.DropSignalsBefore(id, time.UnixMilli(horizon+1)); err != nil {
		return nil, err
	}
	return alerts, nil
}

// thresholdGroup is one group's result in a run.
type thresholdGroup struct {
	key    string
	values []string
	agg    *groupAgg
}

// thresholdRun is one run of a threshold rule at t (ms) over [t-from, t):
// the groups that reach the threshold (and the cardinality), each counting
// only its events since it last alerted, become alerts.
func (e *Engine) thresholdRun(ws *store.Windows, sc *scheduled, t int64) ([]*Alert, error) {
	id, spec := sc.rule.RuleID, sc.rule.ThresholdSpec
	groups := map[string]*thresholdGroup{}
	signals := map[string]int64{}
	err := ws.Scan(id, t-sc.from, t, func(bucket int64, group, v []byte) error {
		lower, ok := signals[string(group)]
		if !ok {
			lower = -1 << 62
			if at, ok := ws.Signal(id, group); ok {
				lower = at.UnixMilli()
			}
			signals[string(group)] = lower
		}
		if bucket < lower {
			return nil // counted toward the group's last alert
		}
		a, err := decodeAgg(v, sc.idCap())
		if err != nil {
			return fmt.Errorf("rule %q: %w", id, err)
		}
		g := groups[string(group)]
		if g == nil {
			g = &thresholdGroup{key: string(group), agg: &groupAgg{}}
			groups[string(group)] = g
		}
		g.agg.add(a, sc.idCap())
		return nil
	})
	if err != nil {
		return nil, err
	}
	var hits []*thresholdGroup
	for _, g := range groups {
		if g.agg.events() < uint64(spec.Value) {
			continue
		}
		if len(spec.Cardinality) > 0 && len(g.agg.hashes) < spec.Cardinality[0].Value {
			continue
		}
		vals, err := store.DecodeValues([]byte(g.key[1:]))
		if err != nil && len(sc.fields) > 0 {
			return nil, fmt.Errorf("rule %q: a group key in the state file is unreadable: %w", id, err)
		}
		if len(vals) != len(sc.fields) {
			continue // written for other group fields, by a build that kept no shapes (shape.go)
		}
		g.values = vals
		hits = append(hits, g)
	}
	// As Kibana's composite aggregation orders its buckets before it keeps
	// max_signals of them: by the group's values, field by field, each as
	// its type sorts (keywords by their bytes, numbers and addresses by
	// value). They were ordered by events, most first, and a cap kept
	// other groups than Kibana's.
	sort.Slice(hits, func(i, j int) bool {
		for f, field := range sc.fields {
			if c := compareTerm(field.Type, hits[i].values[f], hits[j].values[f]); c != 0 {
				return c < 0
			}
		}
		return hits[i].key < hits[j].key
	})
	if !e.noCaps && sc.rule.MaxSignals > 0 && len(hits) > sc.rule.MaxSignals {
		hits = hits[:sc.rule.MaxSignals]
	}
	var out []*Alert
	run := time.UnixMilli(t).UTC()
	for _, g := range hits {
		out = append(out, e.thresholdAlert(sc, g, run))
		if err := ws.SetSignal(id, []byte(g.key), run); err != nil {
			return nil, err
		}
	}
	return out, nil
}

const alertTime = "2006-01-02T15:04:05.000Z"

// thresholdAlert is a group's alert as Kibana writes it: the group's field
// values at the top level, kibana.alert.threshold_result, and the group's
// last event time as @timestamp and kibana.alert.original_time.
func (e *Engine) thresholdAlert(sc *scheduled, g *thresholdGroup, run time.Time) *Alert {
	r, spec := sc.rule, sc.rule.ThresholdSpec
	d := map[string]any{}
	terms := make([]any, 0, len(sc.fields))
	for i, f := range sc.fields {
		v := g.values[i]
		setPath(d, f.Name, v)
		terms = append(terms, map[string]any{"field": f.Name, "value": v})
	}
	last := time.UnixMilli(g.agg.max).UTC().Format(alertTime)
	result := map[string]any{
		"terms": terms,
		"count": g.agg.events(),
		"from":  time.UnixMilli(g.agg.min).UTC().Format(alertTime),
	}
	if len(spec.Cardinality) > 0 {
		result["cardinality"] = []any{map[string]any{"field": spec.Cardinality[0].Field, "value": len(g.agg.hashes)}}
		if g.agg.capped {
			d["trailwatch.threshold.cardinality_capped"] = true
		}
	}
	d["kibana.alert.threshold_result"] = result
	d["kibana.alert.original_time"] = last
	setPath(d, "event.kind", "signal")
	part := newDocPart(d)
	rec := &recordAlerts{e: e, part: part, at: last}
	uuid := AlertUUID(r.RuleID, r.Version, "threshold:"+run.Format(time.RFC3339Nano), g.values)
	rule := e.ruleParts[r]
	if rule == nil {
		rule = rulePart(r)
	}
	return &Alert{UUID: uuid, RuleID: r.RuleID, Rule: r.Name, rec: rec, rule: rule, policy: e.groupPolicy(r, sc.fields, g.values, g.agg.min, g.agg.max, run),
		e: e, r: r, at: last}
}

// groupPolicy is a scheduled rule's alert suppression over its group's
// values (its max_signals applies per run, in the run itself).
func (e *Engine) groupPolicy(r *conf.Rule, fields []*matcher.Field, values []string, first, last int64, run time.Time) *store.Policy {
	s := r.AlertSuppression
	if s == nil {
		return nil
	}
	// Suppression start and end: the group's first and last events, as
	// Kibana's wrap_suppressed_threshold_alerts takes them.
	p := &store.Policy{RuleID: r.RuleID, At: time.UnixMilli(first).UTC(), AtEnd: time.UnixMilli(last).UTC(), Now: run}
	key := []string{r.RuleID}
	for i, f := range fields {
		p.Terms = append(p.Terms, store.SuppressTerm{Field: f.Name, Value: values[i]})
		key = append(key, values[i])
	}
	p.SuppressKey = TermKey(key)
	p.SuppressFor = s.Window(r.IntervalDur)
	return p
}

// drainClock is the clock a Drain moves to: past the latest time the
// scheduled rules' clock reached (or now, with the ingested clock) by the
// longest window.
func (e *Engine) drainClock(ws *store.Windows, now time.Time) time.Time {
	c, ok := ws.Clock()
	if e.source != EventTime && (!ok || now.After(c)) {
		c = now
	}
	return c.Add(e.maxFrom + e.lag)
}
