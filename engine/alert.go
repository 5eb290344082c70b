package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	jsoniter "github.com/json-iterator/go"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/store"
)

// Alert is one alert document, shaped like the alerts Elastic Security
// writes: the event's ECS fields as nested objects (event.kind: signal,
// @timestamp the alert's time) and kibana.alert.* as dotted keys at the top.
//
// An alert's top-level keys come from three parts: the event's (its ECS
// fields, shared by every alert of the record), the rule's (kibana.alert.rule.*
// and the like, shared by every alert of the rule) and its own (@timestamp,
// uuid, reason, new terms). Each part's values are rendered to JSON once,
// and only for an alert that is written: a capped or repeated alert costs
// its id and its policy, no document.
type Alert struct {
	UUID   string
	RuleID string
	Rule   string // the rule's name
	rec    *recordAlerts
	rule   *docPart
	own    *docPart // made on first need, from r, at and newTerms
	// override: the severity, risk score and rule name the rule maps from
	// the event (noPart when none applies), made with own, and extra, the
	// keys of this alert that win over the rule's (a shell's depth).
	override *docPart
	extra    map[string]any
	policy   *store.Policy // suppression and max_signals, enforced by the store
	follows  *Alert        // an alert of the same batch whose fate this one shares
	leads    bool          // others follow this one
	e        *Engine
	r        *conf.Rule
	at       string   // @timestamp
	terms    []string // new terms (views of the batch's records until own is made)
	// unconfirmed: the fleet did not answer the question this alert
	// depended on, and it goes out on the local verdict.
	unconfirmed bool
}

// recordAlerts is what a record's alerts share: the event they read (made
// on the first match, over the record's own copy) and, made on first need,
// its part of their documents.
type recordAlerts struct {
	e    *Engine
	ev   *cloudtrail.Event
	part *docPart
	// base and cols: an ES|QL row's alert on the record, whose document
	// is base's with the row's columns, made on first need (most alerts
	// past max_signals never need it).
	base *recordAlerts
	cols map[string]any
	// why is the record's half of its alerts' reason, made on first need.
	why    string
	whySet bool
	at     string // its alerts' @timestamp, taken at the first
	// refusedSeen: the record's refusal is counted; failed is the error
	// document the pipeline leaves when it fails, as rules read it.
	refusedSeen bool
	failed      *cloudtrail.Event
}

// alertStands reports whether a rule's alert on a record stands once the
// record is indexed as the AWS integration's pipeline indexes it (judged
// here, for records that alert, never for the others; a record judged
// before, as in a retried chunk, builds no document).
// A document Elasticsearch refuses makes no alert: Elastic never sees it.
// It is counted once, with the reason, among the skipped records (the
// scan summary and the metric of skipped records by reason). When the
// pipeline fails, Elastic's rules see the error document it leaves, and the
// rule is judged again on that.
func (e *Engine) alertStands(r *conf.Rule, rec *recordAlerts, st *Stats) bool {
	if rec.ev.IsECS() {
		return true
	}
	v := rec.ev.Verdict()
	if v.Refused != "" {
		if !rec.refusedSeen {
			rec.refusedSeen = true
			st.skip("refused by Elasticsearch: " + v.Refused)
		}
		return false
	}
	if !v.Failed || r.Compiled == nil {
		return true
	}
	if rec.failed == nil {
		rec.failed = rec.ev.ErrorDocument()
	}
	if r.Compiled.Match(rec.failed) {
		return true
	}
	st.skip("no alert: the ingest pipeline fails on the record, and the rule does not match its error document")
	return false
}

// reason is Kibana's alert reason for an alert of the given severity and
// rule name on the record.
func (ra *recordAlerts) reason(severity, name string) string {
	return ra.reasonPrefix() + " created " + severity + " alert " + name + "."
}

// reasonPrefix is the record's half of its alerts' reason, read from the
// document its alerts are made from.
func (ra *recordAlerts) reasonPrefix() string {
	if !ra.whySet {
		ra.why, ra.whySet = reasonPrefixOf(ra.eventPart().m), true
	}
	return ra.why
}

func (ra *recordAlerts) eventPart() *docPart {
	if ra.part == nil {
		if ra.base != nil {
			ra.part = ra.base.eventPart().with(ra.cols)
		} else {
			ra.part = ra.e.eventPart(ra.ev)
		}
	}
	return ra.part
}

// eventID is the id alerts of the record derive their uuid from.
func (ra *recordAlerts) eventID() string {
	if id := ra.ev.Value(ra.e.schema, "event.id"); id != "" {
		return id
	}
	return ra.eventPart().eventID
}

// parts returns the alert's three parts, making what is not made yet.
func (a *Alert) parts() (event, rule, own *docPart) {
	if a.own == nil {
		var terms []string
		if a.terms != nil {
			// A copy: the batch's term values are views of its records.
			terms = cloneStrings(a.terms)
			a.terms = nil
		}
		o := overridesOf(a.r, a.rec.eventPart().m)
		a.own = ownPart(a.at, a.UUID, a.rec.reason(o.severity, o.name), terms)
		a.override = noPart
		m := o.part()
		for k, v := range a.extra {
			if m == nil {
				m = map[string]any{}
			}
			m[k] = v
		}
		if m != nil {
			a.override = newDocPart(m)
		}
	}
	return a.rec.eventPart(), a.rule, a.own
}

var alertJSON = jsoniter.Config{EscapeHTML: false, SortMapKeys: true}.Froze()

// docPart is some of an alert's top-level keys, sorted, with each value's
// JSON.
type docPart struct {
	m    map[string]any
	keys []string
	raw  [][]byte // `"key":value` of each key, in keys' order
	err  error    // a value that does not render
	// eventID is, for an event's part, the id alerts derive their uuid from.
	eventID string
}

func newDocPart(m map[string]any) *docPart {
	p := &docPart{m: m, keys: make([]string, 0, len(m))}
	for k := range m {
		p.keys = append(p.keys, k)
	}
	slices.Sort(p.keys)
	p.raw = make([][]byte, len(p.keys))
	for i, k := range p.keys {
		kb, _ := alertJSON.Marshal(k)
		vb, err := alertJSON.Marshal(m[k])
		if err != nil && p.err == nil {
			p.err = fmt.Errorf("%s: %w", k, err)
		}
		p.raw[i] = append(append(kb, ':'), vb...)
	}
	return p
}

// with is p with extra's keys added (or replaced): what newDocPart of p's
// map with them set gives, rendering only extra's values.
func (p *docPart) with(extra map[string]any) *docPart {
	m := flatCopy(p.m)
	for k, v := range extra {
		m[k] = v
	}
	if p.err != nil {
		return newDocPart(m) // which value fails first, as newDocPart finds it
	}
	x := newDocPart(extra)
	out := &docPart{m: m, err: x.err, keys: make([]string, 0, len(m)), raw: make([][]byte, 0, len(m))}
	i, j := 0, 0
	for i < len(p.keys) || j < len(x.keys) {
		switch {
		case j == len(x.keys) || i < len(p.keys) && p.keys[i] < x.keys[j]:
			out.keys, out.raw = append(out.keys, p.keys[i]), append(out.raw, p.raw[i])
			i++
		default:
			if i < len(p.keys) && p.keys[i] == x.keys[j] {
				i++ // replaced
			}
			out.keys, out.raw = append(out.keys, x.keys[j]), append(out.raw, x.raw[j])
			j++
		}
	}
	return out
}

// The keys of an alert's own part, sorted, with and without new terms.
var (
	ownKeys      = []string{"@timestamp", "kibana.alert.new_terms", "kibana.alert.reason", "kibana.alert.uuid"}
	ownKeysQuery = []string{"@timestamp", "kibana.alert.reason", "kibana.alert.uuid"}
)

// ownPart is an alert's own part: its values are strings (and the new
// terms, a list of strings), rendered into one buffer as newDocPart would.
func ownPart(at, uuid, reason string, terms []string) *docPart {
	m := map[string]any{"@timestamp": at, "kibana.alert.reason": reason, "kibana.alert.uuid": uuid}
	keys := ownKeysQuery
	if terms != nil {
		m["kibana.alert.new_terms"] = terms
		keys = ownKeys
	}
	st := alertJSON.BorrowStream(nil)
	defer alertJSON.ReturnStream(st)
	var ends []int
	field := func(k string) {
		st.WriteString(k)
		st.WriteRaw(":")
	}
	field("@timestamp")
	st.WriteString(at)
	ends = append(ends, st.Buffered())
	if terms != nil {
		field("kibana.alert.new_terms")
		st.WriteArrayStart()
		for j, t := range terms {
			if j > 0 {
				st.WriteMore()
			}
			st.WriteString(t)
		}
		st.WriteArrayEnd()
		ends = append(ends, st.Buffered())
	}
	field("kibana.alert.reason")
	st.WriteString(reason)
	ends = append(ends, st.Buffered())
	field("kibana.alert.uuid")
	st.WriteString(uuid)
	ends = append(ends, st.Buffered())
	buf := append([]byte(nil), st.Buffer()...)
	p := &docPart{m: m, keys: keys, raw: make([][]byte, len(keys))}
	start := 0
	for i, end := range ends {
		p.raw[i] = buf[start:end:end]
		start = end
	}
	return p
}

// Doc returns the alert document as one map (the parts merged).
func (a *Alert) Doc() map[string]any {
	event, rule, own := a.parts()
	d := make(map[string]any, len(event.m)+len(rule.m)+len(own.m)+1)
	for _, p := range [...]*docPart{a.fleetPart(), event, rule, own, a.override} { // later parts win
		for k, v := range p.m {
			d[k] = v
		}
	}
	return d
}

// JSON renders the alert as one line of JSON, keys sorted (so equal alerts
// give equal bytes): the bytes Doc() would render to, from the parts'
// rendered values.
func (a *Alert) JSON() ([]byte, error) {
	event, rule, own := a.parts()
	parts := [...]*docPart{a.override, own, rule, event, a.fleetPart()} // first wins a key they share
	size := 2
	for _, p := range parts {
		if p.err != nil {
			return nil, p.err
		}
		for _, r := range p.raw {
			size += len(r) + 1
		}
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	var at [len(parts)]int
	for {
		best := -1
		var key string
		for i, p := range parts {
			if at[i] < len(p.keys) && (best < 0 || p.keys[at[i]] < key) {
				best, key = i, p.keys[at[i]]
			}
		}
		if best < 0 {
			break
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, parts[best].raw[at[best]]...)
		for i, p := range parts {
			if at[i] < len(p.keys) && p.keys[at[i]] == key {
				at[i]++
			}
		}
	}
	return append(out, '}'), nil
}

// AlertUUID is the deterministic id of an alert: the same rule, rule version,
// CloudTrail event and new terms always give the same id, so a record that
// is delivered twice never makes a second, different alert.
func AlertUUID(ruleID string, version int, eventID string, newTerms []string) string {
	var buf [512]byte
	var num [20]byte
	b := appendPart(buf[:0], ruleID)
	b = appendPart(b, string(strconv.AppendInt(num[:0], int64(version), 10)))
	b = appendPart(b, eventID)
	for _, t := range newTerms {
		b = appendPart(b, t)
	}
	sum := sha256.Sum256(b)
	// Shaped as a version-4-style UUID for tools that expect one.
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	var x [32]byte
	hex.Encode(x[:], sum[:16])
	var u [36]byte
	copy(u[0:8], x[0:8])
	copy(u[9:13], x[8:12])
	copy(u[14:18], x[12:16])
	copy(u[19:23], x[16:20])
	copy(u[24:36], x[20:32])
	u[8], u[13], u[18], u[23] = '-', '-', '-', '-'
	return string(u[:])
}

// appendPart appends s, prefixed by its length and a colon (the unambiguous
// encoding of AlertUUID and TermKey).
func appendPart(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func cloneStrings(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

// eventPart is the part of an event's alerts that comes from the event.
func (e *Engine) eventPart(ev *cloudtrail.Event) *docPart {
	d := ECSDocument(e.schema, ev)
	eventID := ev.Value(e.schema, "event.id")
	if eventID == "" {
		b, _ := alertJSON.Marshal(d)
		eventID = eventIDOf("", b)
	}
	asEventAlert(d, ev.Value(e.schema, "@timestamp"))
	delete(d, "@timestamp") // the alert's own
	p := newDocPart(d)
	p.eventID = eventID
	return p
}

// asEventAlert makes an event's document its alert's event part, as Kibana
// does: the event's event.* kept under kibana.alert.original_event.*, its
// time as kibana.alert.original_time, and event.kind: signal.
func asEventAlert(d map[string]any, originalTime string) {
	if evm, ok := d["event"].(map[string]any); ok {
		for k, v := range evm {
			d["kibana.alert.original_event."+k] = v
		}
	}
	d["kibana.alert.original_time"] = originalTime
	setPath(d, "event.kind", "signal")
}

// eventIDOf is the id a record's alerts derive their uuid from: its
// eventID, or for a record without one (a hand-made record) a digest of
// its document.
func eventIDOf(eventID string, doc []byte) string {
	if eventID != "" {
		return eventID
	}
	sum := sha256.Sum256(doc)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// rulePart is the part of a rule's alerts that comes from the rule.
func rulePart(r *conf.Rule) *docPart {
	threat := r.Threat
	if threat == nil {
		threat = []conf.Threat{}
	}
	tags := r.Tags
	if tags == nil {
		tags = []string{}
	}
	d := map[string]any{}
	d["kibana.alert.status"] = "active"
	d["kibana.alert.workflow_status"] = "open"
	d["kibana.alert.severity"] = r.Severity
	d["kibana.alert.risk_score"] = r.RiskScore
	d["kibana.alert.depth"] = 1
	d["kibana.alert.rule.name"] = r.Name
	d["kibana.alert.rule.rule_id"] = r.RuleID
	d["kibana.alert.rule.uuid"] = r.RuleID
	d["kibana.alert.rule.type"] = r.Type
	d["kibana.alert.rule.severity"] = r.Severity
	d["kibana.alert.rule.risk_score"] = r.RiskScore
	d["kibana.alert.rule.tags"] = tags
	d["kibana.alert.rule.threat"] = threat
	d["kibana.alert.rule.version"] = r.Version
	d["kibana.alert.rule.description"] = r.Description
	d["kibana.alert.rule.from"] = r.From
	d["kibana.alert.rule.interval"] = r.Interval
	d["kibana.alert.rule.max_signals"] = r.MaxSignals
	d["kibana.alert.rule.producer"] = "siem"
	d["kibana.alert.rule.to"] = "now"
	d["kibana.alert.rule.references"] = orEmpty(r.References)
	d["kibana.alert.rule.author"] = orEmpty(r.Author)
	d["kibana.alert.rule.false_positives"] = orEmpty(r.FalsePositives)
	if r.License != "" {
		d["kibana.alert.rule.license"] = r.License
	}
	if r.TimestampOverride != "" {
		d["kibana.alert.rule.timestamp_override"] = r.TimestampOverride
	}
	if r.RuleNameOverride != "" {
		d["kibana.alert.rule.rule_name_override"] = r.RuleNameOverride
	}
	// A building-block rule's alerts are marked so (the Alerts table
	// hides them; correlation rules read them).
	if r.BuildingBlockType != "" {
		d["kibana.alert.building_block_type"] = r.BuildingBlockType
	}
	d["kibana.space_ids"] = []string{"default"}
	return newDocPart(d)
}

// orEmpty is a list, [] when there is none (as Kibana writes a rule's
// list parameters).
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// buildAlert makes a rule's alert on a record: its id and policy now, its
// document when it is written. newTerms must stay unchanged until then.
func (e *Engine) buildAlert(r *conf.Rule, rec *recordAlerts, newTerms []string) *Alert {
	id := AlertUUID(r.RuleID, r.Version, rec.eventID(), newTerms)
	rule := e.ruleParts[r]
	if rule == nil { // not one of the engine's rules (tests)
		rule = rulePart(r)
	}
	if rec.at == "" {
		rec.at = e.now().UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return &Alert{UUID: id, RuleID: r.RuleID, Rule: r.Name, rec: rec, rule: rule, policy: e.policy(r, rec.ev),
		e: e, r: r, at: rec.at, terms: newTerms}
}

// policy is the rule's alert suppression (group values read from the
// event) and max_signals cap.
func (e *Engine) policy(r *conf.Rule, ev *cloudtrail.Event) *store.Policy {
	if s := r.AlertSuppression; s == nil || len(s.GroupBy) == 0 {
		if p, ok := e.capPolicies[r]; ok {
			return p // the rule's cap alone: the same for all its alerts
		}
	}
	p := &store.Policy{RuleID: r.RuleID}
	if !e.noCaps {
		p.MaxSignals, p.Interval = r.MaxSignals, r.IntervalDur
	}
	if s := r.AlertSuppression; s != nil && len(s.GroupBy) > 0 {
		key, legacy := []string{r.RuleID}, []string{r.RuleID}
		missing := false
		for _, f := range s.GroupBy {
			field := e.schema.Field(f)
			vals := ev.Values(field)
			if len(vals) == 0 {
				missing = true
				p.Terms = append(p.Terms, store.SuppressTerm{Field: f, Value: nil})
				key, legacy = append(key, ""), append(legacy, "")
				continue
			}
			legacy = append(legacy, strings.Join(uniqueTexts(field, vals), "\x1f"))
			// As Kibana reads them from the event's fields: an array,
			// sorted.
			texts := make([]string, len(vals))
			for i, v := range vals {
				texts[i] = strings.Clone(field.TermText(v))
			}
			sort.Strings(texts)
			p.Terms = append(p.Terms, store.SuppressTerm{Field: f, Value: texts})
			key = append(key, groupValue(texts))
		}
		// missing_fields_strategy: suppress (the default) groups records
		// missing a field together; doNotSuppress lets each one alert.
		if !missing || s.MissingFieldsStrategy != "doNotSuppress" {
			p.SuppressKey, p.LegacyKey = TermKey(key), TermKey(legacy)
			p.SuppressFor = s.Window(r.IntervalDur)
			p.At = e.suppressionTime(r, ev)
			if e.source == EventTime {
				// Its eventTime, no further ahead than the event clock
				// may go: a record dated 2099 would hold its group open
				// until then.
				p.SuppressNow = ev.Ingested
				if lim := e.now().Add(futureSlack); p.SuppressNow.After(lim) {
					p.SuppressNow = lim
				}
			}
		}
	}
	if p.SuppressKey == "" && p.MaxSignals <= 0 {
		return nil
	}
	return p
}

// groupValue is one group_by field's part of a suppression key: its
// values, each length-prefixed, after a byte that tells a missing field
// ("" in the key) from values; so that no value can pose as several.
func groupValue(texts []string) string {
	return "v" + TermKey(texts)
}

// suppressionTime is the event's primary timestamp, the rule's
// timestamp_override field (CloudTrail's event.ingested: when the record
// was read, its eventTime on the event clock), else @timestamp.
func (e *Engine) suppressionTime(r *conf.Rule, ev *cloudtrail.Event) time.Time {
	if r.TimestampOverride == "event.ingested" {
		return ev.Ingested
	}
	return ev.EventTime()
}

// TermKey encodes strings unambiguously (each part length-prefixed).
func TermKey(parts []string) string {
	var b []byte
	for _, s := range parts {
		b = appendPart(b, s)
	}
	return string(b)
}

// Summarize builds the summary alert of a rule's capped max_signals window
// from one of the rule's alerts in it.
func (e *Engine) Summarize(ruleDoc []byte, ruleID string, capped int, start, end time.Time) []byte {
	var src map[string]any
	alertJSON.Unmarshal(ruleDoc, &src)
	d := map[string]any{}
	for k, v := range src {
		if strings.HasPrefix(k, "kibana.alert.rule.") {
			d[k] = v
		}
	}
	name, _ := src["kibana.alert.rule.name"].(string)
	version := 1
	if v, ok := src["kibana.alert.rule.version"].(float64); ok {
		version = int(v)
	}
	d["@timestamp"] = e.now().UTC().Format("2006-01-02T15:04:05.000Z")
	d["event"] = map[string]any{"kind": "signal"}
	d["kibana.alert.uuid"] = AlertUUID(ruleID, version, "max_signals:"+start.UTC().Format(time.RFC3339), nil)
	d["kibana.alert.status"] = "active"
	d["kibana.alert.workflow_status"] = "open"
	d["kibana.alert.severity"] = src["kibana.alert.severity"]
	d["kibana.alert.risk_score"] = src["kibana.alert.risk_score"]
	d["kibana.alert.reason"] = fmt.Sprintf("%d more alerts of rule %s between %s and %s were not sent: the rule's max_signals was reached.",
		capped, name, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	d["trailwatch.max_signals.capped"] = capped
	d["trailwatch.max_signals.window.start"] = start.UTC().Format(time.RFC3339)
	d["trailwatch.max_signals.window.end"] = end.UTC().Format(time.RFC3339)
	b, _ := alertJSON.Marshal(d)
	return b
}

// ECSDocument builds the full ECS view of an event: the document Elastic's
// AWS integration indexes (its ingest pipeline's output, built by
// cloudtrail.Ingest), with the GeoIP and ASN fields when a database is
// configured. An already-ECS document is returned as it came.
func ECSDocument(s *matcher.Schema, ev *cloudtrail.Event) map[string]any {
	if ev.IsECS() {
		return nodeToAny(ev.ECSNode()).(map[string]any)
	}
	if ev.Raw() == nil {
		// MessagePack the tree reader refuses: the fields that could be
		// read in place.
		return readableFields(s, ev)
	}
	out := nodeToAny(ev.Document().Doc).(map[string]any)
	for k, v := range ev.IndexedGeoFields() {
		setPath(out, k, valueAny(s.Field(k), v))
	}
	return out
}

// readableFields is the document of a record only its in-place readers can
// read: each field they give.
func readableFields(s *matcher.Schema, ev *cloudtrail.Event) map[string]any {
	out := map[string]any{}
	for _, name := range cloudtrail.ResolvedFields() {
		f := s.Field(name)
		if f.Type == matcher.Flattened {
			continue
		}
		vals := ev.Values(f)
		switch len(vals) {
		case 0:
		case 1:
			setPath(out, name, valueAny(f, vals[0]))
		default:
			arr := make([]any, len(vals))
			for i, v := range vals {
				arr[i] = valueAny(f, v)
			}
			setPath(out, name, arr)
		}
	}
	return out
}

func valueAny(f *matcher.Field, v matcher.Value) any {
	switch {
	case v.Kind == matcher.KindBool || f.Type == matcher.Boolean:
		return v.Text == "true"
	case v.Kind == matcher.KindNumber || f.Type == matcher.Long:
		if n, err := strconv.ParseInt(v.Text, 10, 64); err == nil {
			return n
		}
		if x, err := strconv.ParseFloat(v.Text, 64); err == nil {
			return x
		}
	}
	return v.Text
}

func setPath(m map[string]any, name string, v any) {
	parts := strings.Split(name, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// nodeToAny converts a document tree for JSON output (removed keys dropped).
func nodeToAny(n *doc.Node) any {
	switch n.Kind {
	case doc.Object:
		m := make(map[string]any, len(n.Obj))
		for _, mem := range n.Obj {
			if mem.Val != nil {
				m[mem.Key] = nodeToAny(mem.Val)
			}
		}
		return m
	case doc.Array:
		a := make([]any, 0, len(n.Arr))
		for _, el := range n.Arr {
			a = append(a, nodeToAny(el))
		}
		return a
	case doc.String:
		return n.Str
	case doc.Bool:
		return n.Str == "true"
	case doc.Number:
		return jsoniter.Number(n.Str)
	}
	return nil
}
