package engine

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/store"
)

// EQL sequences, as Elasticsearch matches them: events in @timestamp order;
// an event of stage n+1 extends the newest sequence in flight at stage n
// for its join key (and that one only: older ones at that stage are never
// extended again), if it is not older than the sequence's last event and
// the whole span stays within maxspan (inclusive); an event completes at
// most one sequence; join keys must all have a value (a multi-valued key
// joins on each value); an event of the until query ends its key's
// sequences. In-flight sequences live in the state file, in the batch's
// transaction, so they survive restarts and reloads; they are pruned past
// maxspan and bounded per rule (SeqCap, oldest dropped, counted).

// SeqCap is the most sequences in flight a sequence rule keeps.
const SeqCap = 10_000

// seqEvent is one record's part in a sequence rule, found while the batch
// is read and matched against the state at commit.
type seqEvent struct {
	rule   *conf.Rule
	at     int64      // its @timestamp, ms
	stages [][][]byte // per stage (until last): the join keys it takes that stage with; nil when it does not match it
	id     string     // its eventID (or document digest)
	doc    []byte     // its ECS document as JSON
	order  int        // its place in the batch
}

// collectSeq records a record's matches of a sequence rule's stages.
func (e *Engine) collectSeq(w *worker, r *conf.Rule, ev *cloudtrail.Event) {
	seq := r.Sequence
	all := seq.Stages
	if seq.Until != nil {
		all = append(slices.Clip(all), seq.Until)
	}
	se := seqEvent{rule: r, stages: make([][][]byte, len(all)), order: len(w.seqEvents)}
	hit := false
	for i, st := range all {
		if !st.Query.Match(ev) {
			continue
		}
		keys := joinKeys(st.Keys, ev)
		if len(keys) == 0 {
			continue // a null key joins nothing
		}
		se.stages[i], hit = keys, true
	}
	if !hit {
		return
	}
	t := ev.EventTime()
	if r.TimestampField != "" && r.TimestampField != "@timestamp" {
		if v := ev.Values(e.schema.Field(r.TimestampField)); len(v) > 0 {
			if pt, err := matcher.ParseDate(v[0].Text); err == nil {
				t = pt
			}
		}
	}
	if t.IsZero() {
		t = ev.Ingested
	}
	se.at = t.UnixMilli()
	if mp := ev.Msgpack(); mp != nil {
		// A record read in place keeps its bytes: its document is built
		// only if its sequence completes.
		kind := byte(docMsgpack)
		if ev.MsgpackJSON() {
			kind = docJSON
		}
		se.doc = append([]byte{kind}, mp...)
		se.id = ev.Value(e.schema, "event.id")
		if se.id == "" && kind == docJSON {
			// As the record read as a tree is named: by its document.
			doc, err := alertJSON.Marshal(ECSDocument(e.schema, ev))
			if err != nil {
				return
			}
			se.id = eventIDOf("", doc)
		} else if se.id == "" {
			se.id = eventIDOf("", mp)
		}
	} else {
		doc, err := alertJSON.Marshal(ECSDocument(e.schema, ev))
		if err != nil {
			return
		}
		se.id, se.doc = eventIDOf(ev.Value(e.schema, "event.id"), doc), append([]byte{docECS}, doc...)
	}
	w.seqEvents = append(w.seqEvents, se)
}

// How a sequence event's record is kept in the state: the raw CloudTrail
// event's MessagePack (as a Fluent Bit record, or transcoded from JSON
// text), or its ECS document as JSON.
const (
	docMsgpack = 'm'
	docJSON    = 'j'
	docECS     = 'e'
)

// seqDoc is a kept record's ECS document.
func (e *Engine) seqDoc(b []byte) map[string]any {
	d := map[string]any{}
	if len(b) == 0 {
		return d
	}
	switch b[0] {
	case docMsgpack, docJSON:
		ev := &cloudtrail.Event{}
		e.resetMsgpack(ev, b[1:], b[0] == docJSON, e.now())
		return ECSDocument(e.schema, ev)
	case docECS:
		if err := alertJSON.Unmarshal(b[1:], &d); err != nil {
			return map[string]any{}
		}
	}
	return d
}

// joinKeys is the cartesian product of the key fields' values, each
// encoded; nil when a key has no value.
func joinKeys(fields []*matcher.Field, ev *cloudtrail.Event) [][]byte {
	combos := [][]string{nil}
	for _, f := range fields {
		vals := ev.Values(f)
		if len(vals) == 0 {
			return nil
		}
		texts := uniqueTexts(f, vals)
		var next [][]string
		for _, c := range combos {
			for _, t := range texts {
				next = append(next, append(slices.Clip(c), t))
			}
		}
		combos = next
		if len(combos) > 64 {
			combos = combos[:64] // a hostile record cannot fan out without bound
		}
	}
	out := make([][]byte, len(combos))
	for i, c := range combos {
		out[i] = store.EncodeValues(c)
	}
	return out
}

// inflight is a sequence in flight: its events so far.
type inflight struct {
	events []seqStep
}

type seqStep struct {
	at  int64
	id  string
	doc []byte
}

func (s *inflight) start() int64 { return s.events[0].at }
func (s *inflight) last() int64  { return s.events[len(s.events)-1].at }

func (s *inflight) encode() []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(s.events)))
	for _, ev := range s.events {
		b = binary.AppendVarint(b, ev.at)
		b = binary.AppendUvarint(b, uint64(len(ev.id)))
		b = append(b, ev.id...)
		b = binary.AppendUvarint(b, uint64(len(ev.doc)))
		b = append(b, ev.doc...)
	}
	return b
}

var errBadSeq = errors.New("a sequence in flight in the state file is unreadable")

func decodeInflight(b []byte) (*inflight, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > 256 {
		return nil, errBadSeq
	}
	b = b[k:]
	s := &inflight{}
	for range n {
		var st seqStep
		if st.at, k = binary.Varint(b); k <= 0 {
			return nil, errBadSeq
		}
		b = b[k:]
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, errBadSeq
		}
		st.id = string(b[k : k+int(l)])
		b = b[k+int(l):]
		l, k = binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, errBadSeq
		}
		st.doc = b[k : k+int(l) : k+int(l)]
		b = b[k+int(l):]
		s.events = append(s.events, st)
	}
	if len(s.events) == 0 {
		return nil, errBadSeq
	}
	return s, nil
}

// seqStats is what the sequence part of a commit did.
type seqStats struct {
	completed, dropped int
}

// sequenceEmit matches the batch's sequence events against the sequences
// in flight, in @timestamp order, and returns the alerts of the sequences
// they complete.
func (e *Engine) sequenceEmit(ws *store.Windows, events []seqEvent, ss *seqStats) ([]*Alert, error) {
	slices.SortStableFunc(events, func(a, b seqEvent) int { return cmp.Compare(a.at, b.at) })
	var alerts []*Alert
	latest := map[*conf.Rule]int64{}
	for i := range events {
		ev := &events[i]
		as, err := e.seqStep(ws, ev, ss)
		if err != nil {
			return nil, err
		}
		alerts = append(alerts, as...)
		latest[ev.rule] = max(latest[ev.rule], ev.at)
	}
	// Sequences past maxspan can complete no more; the cap keeps the
	// newest. Past maxspan by the batch's latest event, less a maxspan
	// and the event clock's lag of lateness: the batch's latest is
	// another key's, and records arrive out of order (a batch a little
	// more than maxspan ahead pruned every key's sequences, which their
	// next events would have completed).
	for r, now := range latest {
		late := r.Sequence.MaxSpan.Milliseconds() + e.lag.Milliseconds()
		if err := e.pruneSeqs(ws, r, now-late, ss); err != nil {
			return nil, err
		}
	}
	return alerts, nil
}

func (e *Engine) seqStep(ws *store.Windows, ev *seqEvent, ss *seqStats) ([]*Alert, error) {
	r, seq := ev.rule, ev.rule.Sequence
	id := r.RuleID
	n := len(seq.Stages)
	span := seq.MaxSpan.Milliseconds()
	step := seqStep{at: ev.at, id: ev.id, doc: ev.doc}
	var alerts []*Alert
	// Later stages first, so that one event extends a sequence by one
	// stage only. An event that completes a sequence still extends
	// another at an earlier stage (each stage takes an event once, as
	// Elasticsearch matches stage by stage: [A][B][B] over a1 b1 a2 b2 b3
	// is [a1 b1 b2] and [a2 b2 b3]; the second was lost).
	for st := n - 1; st >= 1; st-- {
		for _, k := range ev.stages[st] {
			raw := ws.SeqGet(id, st-1, k)
			if raw == nil {
				continue
			}
			s, err := decodeInflight(raw)
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", id, err)
			}
			if ev.at < s.last() || (span > 0 && ev.at-s.start() > span) || slices.ContainsFunc(s.events, func(x seqStep) bool { return x.id == ev.id }) {
				continue
			}
			s.events = append(s.events, step)
			if err := ws.SeqDelete(id, st-1, k); err != nil {
				return nil, err
			}
			if st == n-1 {
				ss.completed++
				alerts = append(alerts, e.sequenceAlerts(r, s)...)
				break // an event completes at most one sequence
			}
			if err := putNewest(ws, id, st, k, s); err != nil {
				return nil, err
			}
		}
	}
	// An until event ends its key's sequences after it has extended one
	// (Elasticsearch looks for an until strictly before the event that
	// extends: an event that is both extends, then ends what is left), and
	// starts none for that key (an until at a sequence's own start is
	// within it: it was started, and completed by the next stage).
	var ended [][]byte
	if seq.Until != nil && ev.stages[n] != nil {
		ended = ev.stages[n]
		for _, k := range ended {
			for st := range n - 1 {
				if err := ws.SeqDelete(id, st, k); err != nil {
					return nil, err
				}
			}
		}
	}
	if ev.stages[0] != nil {
		s := &inflight{events: []seqStep{step}}
		for _, k := range ev.stages[0] {
			if slices.ContainsFunc(ended, func(u []byte) bool { return bytes.Equal(u, k) }) {
				continue
			}
			if err := putNewest(ws, id, 0, k, s); err != nil {
				return nil, err
			}
		}
	}
	return alerts, nil
}

// putNewest keeps s as the key's sequence at a stage unless the one held
// there is newer: the newest start wins, by event time, not by arrival (a
// start that arrived late replaced a newer one, and the sequence that one
// began was lost).
func putNewest(ws *store.Windows, id string, st int, k []byte, s *inflight) error {
	if raw := ws.SeqGet(id, st, k); raw != nil {
		if held, err := decodeInflight(raw); err == nil && held.last() > s.last() {
			return nil
		}
	}
	return ws.SeqPut(id, st, k, s.encode())
}

// pruneSeqs drops the rule's sequences that started more than maxspan
// before now, and the oldest past SeqCap.
func (e *Engine) pruneSeqs(ws *store.Windows, r *conf.Rule, now int64, ss *seqStats) error {
	span := r.Sequence.MaxSpan.Milliseconds()
	var starts []int64
	left, err := ws.SeqScan(r.RuleID, func(_ int, _, v []byte) bool {
		s, err := decodeInflight(v)
		if err != nil {
			return true // unreadable: it can complete nothing
		}
		if span > 0 && now-s.start() > span {
			return true
		}
		starts = append(starts, s.start())
		return false
	})
	if err != nil {
		return err
	}
	if left <= e.seqCap {
		return nil
	}
	// Past the cap: the oldest go.
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	cut := starts[left-e.seqCap-1]
	over := left - e.seqCap
	_, err = ws.SeqScan(r.RuleID, func(_ int, _, v []byte) bool {
		if over == 0 {
			return false
		}
		s, _ := decodeInflight(v)
		if s != nil && s.start() <= cut {
			over--
			ss.dropped++
			return true
		}
		return false
	})
	return err
}

// sequenceAlerts makes a completed sequence's alerts as Kibana does
// (build_alert_group_from_sequence.ts): one building-block alert per event
// (kibana.alert.building_block_type, kibana.alert.group.id and .index,
// the event's original_event fields, made now) and one shell alert, of
// depth 2, holding what the events' documents share (Kibana's
// objectArrayIntersection). Their ids derive from the rule and the events,
// so a replay makes none twice. Only the shell goes to the sinks unless
// the engine keeps building blocks.
func (e *Engine) sequenceAlerts(r *conf.Rule, s *inflight) []*Alert {
	ids := make([]string, len(s.events))
	for i, ev := range s.events {
		ids[i] = ev.id
	}
	group := AlertUUID(r.RuleID, r.Version, "sequence:"+strings.Join(ids, "\x00"), nil)
	now := e.now()
	var shared map[string]any
	var out []*Alert
	for i, ev := range s.events {
		d := e.seqDoc(ev.doc)
		asEventAlert(d, time.UnixMilli(ev.at).UTC().Format(alertTime))
		if i == 0 {
			shared = d
		} else {
			shared = intersect(shared, d)
		}
		if !e.buildingBlocks {
			continue
		}
		bb := flatCopy(d)
		bb["kibana.alert.building_block_type"] = "default"
		bb["kibana.alert.group.id"] = group
		bb["kibana.alert.group.index"] = i
		a := e.docAlert(r, AlertUUID(r.RuleID, r.Version, ev.id, []string{"building_block", group}), bb, now)
		a.policy = nil // neither capped nor suppressed on its own: it follows the shell
		out = append(out, a)
	}
	if shared == nil {
		shared = map[string]any{}
	}
	shared["kibana.alert.group.id"] = group
	shared["kibana.alert.original_time"] = time.UnixMilli(s.start()).UTC().Format(alertTime)
	shell := e.docAlert(r, group, shared, now)
	shell.extra = map[string]any{"kibana.alert.depth": 2} // its parents are the building blocks
	// Suppression over the shell's fields, as Kibana's
	// bulkCreateSuppressedSequencesInMemory reads them; the building blocks
	// go out only with their shell.
	shell.policy = e.docPolicy(r, shared)
	for _, a := range out {
		a.follows = shell
	}
	shell.leads = len(out) > 0
	return append([]*Alert{shell}, out...)
}

// intersect is Kibana's objectPairIntersection: the keys both documents
// have, objects intersected in turn, equal values kept, arrays (or an
// array and a value) reduced to the elements both hold, in a's order (an
// empty array when none: Kibana keeps it); nil when nothing is left.
func intersect(a, b map[string]any) map[string]any {
	if a == nil || b == nil {
		return nil
	}
	out := map[string]any{}
	for k, av := range a {
		bv, ok := b[k]
		if !ok {
			continue
		}
		am, aObj := av.(map[string]any)
		bm, bObj := bv.(map[string]any)
		_, aArr := av.([]any)
		_, bArr := bv.([]any)
		switch {
		case aObj && bObj:
			if m := intersect(am, bm); m != nil {
				out[k] = m
			}
		case !aArr && !bArr && !aObj && !bObj && sameValue(av, bv):
			out[k] = av
		case aArr || bArr:
			out[k] = arrayIntersection(asArray(av), asArray(bv))
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func asArray(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// arrayIntersection is lodash's intersection: a's distinct elements that b
// holds (objects and arrays are never the same element: JavaScript compares
// them by reference).
func arrayIntersection(a, b []any) []any {
	out := []any{}
	for _, x := range a {
		if slices.ContainsFunc(out, func(y any) bool { return sameValue(x, y) }) {
			continue
		}
		if slices.ContainsFunc(b, func(y any) bool { return sameValue(x, y) }) {
			out = append(out, x)
		}
	}
	return out
}

// sameValue is JavaScript's === on JSON values: strings, booleans and
// numbers by value, objects and arrays never.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	return false
}

// docPolicy is a rule's alert suppression over the values of a document
// made for it (a sequence's shell), and its max_signals cap.
func (e *Engine) docPolicy(r *conf.Rule, d map[string]any) *store.Policy {
	s := r.AlertSuppression
	if s == nil || len(s.GroupBy) == 0 {
		return e.capPolicies[r]
	}
	p := &store.Policy{RuleID: r.RuleID}
	if !e.noCaps {
		p.MaxSignals, p.Interval = r.MaxSignals, r.IntervalDur
	}
	key := []string{r.RuleID}
	missing := false
	for _, f := range s.GroupBy {
		v := docGet(d, f)
		var texts []string
		switch x := v.(type) {
		case nil:
		case []any:
			for _, el := range x {
				if el != nil {
					texts = append(texts, jsonText(el))
				}
			}
		default:
			texts = []string{jsonText(x)}
		}
		if len(texts) == 0 {
			missing = true
			key = append(key, "")
			p.Terms = append(p.Terms, store.SuppressTerm{Field: f, Value: nil})
			continue
		}
		sort.Strings(texts)
		key = append(key, groupValue(texts))
		if l, ok := v.([]any); ok {
			l = slices.Clone(l)
			slices.SortStableFunc(l, func(a, b any) int { return strings.Compare(jsonText(a), jsonText(b)) })
			v = l
		}
		p.Terms = append(p.Terms, store.SuppressTerm{Field: f, Value: v})
	}
	if !missing || s.MissingFieldsStrategy != "doNotSuppress" {
		p.SuppressKey = TermKey(key)
		p.SuppressFor = s.Window(r.IntervalDur)
	}
	if p.SuppressKey == "" && p.MaxSignals <= 0 {
		return nil
	}
	return p
}

// jsonText is a JSON value's text: a string itself, anything else its
// JSON.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := alertJSON.Marshal(v)
	return string(b)
}

// docAlert is an alert of a rule over a document made for it (not read from
// one record).
func (e *Engine) docAlert(r *conf.Rule, uuid string, d map[string]any, at time.Time) *Alert {
	rec := &recordAlerts{e: e, part: newDocPart(d), at: at.UTC().Format(alertTime)}
	rule := e.ruleParts[r]
	if rule == nil {
		rule = rulePart(r)
	}
	return &Alert{UUID: uuid, RuleID: r.RuleID, Rule: r.Name, rec: rec, rule: rule, policy: e.capPolicies[r], e: e, r: r, at: rec.at}
}

// flatCopy copies a document's top level (nested objects are shared).
func flatCopy(d map[string]any) map[string]any {
	out := make(map[string]any, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}
