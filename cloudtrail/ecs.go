package cloudtrail

import (
	"bytes"
	"net/netip"
	"slices"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/matcher"

	"sort"
	"strings"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// This file derives, from a raw CloudTrail event, the ECS fields that
// Elastic's AWS integration (AWSPackage, its cloudtrail data stream ingest
// pipeline) would have indexed, so that Elastic's rules see the same values
// at the edge. The fields rules read on most records have a resolver that
// reads the record in place; the others are read from the document the
// pipeline makes (Ingest, in pipeline.go), built once per event and only
// when a rule or an alert needs it. Resolvers run lazily, when a query
// first reads the field, and their results are cached per event.

// Dataset is the data stream every CloudTrail event belongs to.
const Dataset = "aws.cloudtrail"

// Enricher fills the GeoIP and ASN fields from source.ip. A nil Enricher, or
// one without a database, leaves them absent.
type Enricher interface {
	// Lookup returns the ECS fields (source.geo.*, source.as.*) for an
	// address; absent ones are not in the map.
	Lookup(ip netip.Addr) map[string]matcher.Value
}

// Event is one CloudTrail record seen through ECS field names. It is not
// safe for concurrent use; reuse one per goroutine with Reset.
type Event struct {
	raw     *doc.Node       // the CloudTrail event (eventSource, eventName, ...)
	mp      []byte          // or the event as MessagePack, read lazily
	mpTree  bool            // raw was built from mp
	mpIdx   []MsgpackMember // mp's members (top level first), listed on first use
	mpTop   int             // how many of mpIdx are the top level
	mpHot   hotPos          // where the hot keys are in the top level
	mpIdxOK bool
	// mpIdxBorrowed: mpIdx is the caller's, not to be reused for the next
	// record's index.
	mpIdxBorrowed bool
	mpSubs        []mpSub // maps the listing left out, listed when read below
	// mpJSON: mp was transcoded from JSON text (doc.Transcoder), its
	// numbers read with doc.ReadMsgpackJSON.
	mpJSON bool
	// jsonIdx holds the top-level members ResetMsgpackJSON lists.
	jsonIdx  []MsgpackMember
	ecs      *doc.Node // an already-ECS document, used as it is
	Ingested time.Time
	enricher Enricher
	// EntityMapping derives related.entity and entity.target.id, as the
	// integration does when the actor_target_mapping tag is set.
	EntityMapping bool

	// cache holds resolved values by Field.ID; gen marks which entries
	// belong to the current record, so Reset costs nothing per field.
	cache []cached
	gen   uint32
	// at is @timestamp's time when atGen is gen.
	at    time.Time
	atGen uint32
	// verdict is the record's Verdict when verdictGen is gen: every alert
	// on a record asks for it.
	verdict    Verdict
	verdictGen uint32
	arena      []matcher.Value     // backing store for resolved values
	clean      map[string]*payload // cleaned payloads (requestParameters, ...)
	geo        map[string]matcher.Value
	geoSet     bool
	// ecsGeo: an error document's GeoIP/ASN fields (ErrorDocument), which
	// its tree lacks.
	ecsGeo map[string]matcher.Value
	// indexed is the event as the integration's pipeline indexes it,
	// built on first need.
	indexed *Indexed
	// ents is the entity enrichment's outcome, run on first need (entsOK:
	// it ran; entsRan: it succeeded).
	ents            entities
	entsOK, entsRan bool
	// resources is aws.cloudtrail.resources, made on first need.
	resources    *doc.Node
	resourcesSet bool
}

type cached struct {
	gen  uint32
	vals []matcher.Value
}

// payload is a raw payload object after the integration's cleanup, with its
// Map.toString() text once rendered.
type payload struct {
	node     *doc.Node
	text     string
	rendered bool
}

// NewEvent returns an Event over a raw CloudTrail event object.
func NewEvent(raw *doc.Node, ingested time.Time, e Enricher) *Event {
	ev := &Event{}
	ev.Reset(raw, nil, ingested, e)
	return ev
}

// NewECSEvent returns an Event over an already-ECS document.
func NewECSEvent(ecs *doc.Node, ingested time.Time) *Event {
	ev := &Event{}
	ev.Reset(nil, ecs, ingested, nil)
	return ev
}

// Reset points the event at a new record, dropping cached values.
func (e *Event) Reset(raw, ecs *doc.Node, ingested time.Time, en Enricher) {
	e.raw, e.ecs, e.Ingested, e.enricher = raw, ecs, ingested, en
	e.mp, e.mpTree, e.mpIdxOK, e.mpJSON = nil, false, false, false
	if e.mpIdxBorrowed {
		e.mpIdx, e.mpIdxBorrowed = nil, false
	}
	e.mpSubs = e.mpSubs[:0]
	e.EntityMapping = true
	e.gen++
	if e.gen == 0 { // wrapped: forget every entry
		clear(e.cache)
		e.gen, e.atGen, e.verdictGen = 1, 0, 0
	}
	e.arena = e.arena[:0]
	if len(e.clean) > 0 {
		clear(e.clean)
	}
	e.geo, e.geoSet, e.ecsGeo = nil, false, nil
	e.indexed = nil
	e.ents, e.entsOK, e.entsRan = entities{}, false, false
	e.resources, e.resourcesSet = nil, false
}

// ResetMsgpack points the event at a raw CloudTrail event held as a
// MessagePack map (a Fluent Bit record body). Scalar fields are read from
// the bytes directly; the tree is built only when a field needs it. The
// bytes must stay unchanged while the event is in use, and values the event
// returns may point into them: copy what must outlive the bytes.
func (e *Event) ResetMsgpack(mp []byte, ingested time.Time, en Enricher) {
	e.Reset(nil, nil, ingested, en)
	e.mp = mp
}

// ResetMsgpackIndexed is ResetMsgpack with the top level already listed
// (by IndexMsgpack, while reading the chunk). The event does not keep idx
// past the next Reset.
func (e *Event) ResetMsgpackIndexed(mp []byte, idx *MsgpackIndex, ingested time.Time, en Enricher) {
	e.Reset(nil, nil, ingested, en)
	e.mp = mp
	e.mpIdx, e.mpTop, e.mpHot, e.mpIdxOK = idx.Members, idx.Top, idx.hot, true
	e.mpIdxBorrowed = true
}

// RawCloudTrail reports whether a MessagePack event is a raw CloudTrail
// event (string eventSource and eventName at its top level), reading only
// its top level. What it reads are the values of event.provider and
// event.action: given those fields, it keeps them, so that reading them
// next (as the candidate index does) reads nothing again.
func (e *Event) RawCloudTrail(provider, action *matcher.Field) bool {
	if e.mp == nil {
		return false
	}
	var vals [2]matcher.Value
	for i, kp := range [2]*keyPath{kpEventSource, kpEventName} {
		v, st := e.mpScalarTagged(kp.keys, kp.tags, kp.hot)
		if st != mpFound || v.Kind != matcher.KindString {
			return false
		}
		vals[i] = v
	}
	if provider != nil && provider.Name == matcher.ProviderField {
		e.keep(provider, e.one(vals[0]))
	}
	if action != nil && action.Name == matcher.ActionField {
		e.keep(action, e.one(vals[1]))
	}
	return true
}

// tree returns the raw event tree, building it from MessagePack on first
// use.
func (e *Event) tree() *doc.Node {
	if e.raw == nil && e.mp != nil && !e.mpTree {
		e.mpTree = true
		if n, _, err := e.readMsgpack(e.mp); err == nil {
			e.raw = n
		}
	}
	return e.raw
}

// IsECS reports whether the event is an already-ECS document.
func (e *Event) IsECS() bool { return e.ecs != nil }

// Raw returns the raw CloudTrail event (nil for an ECS document).
func (e *Event) Raw() *doc.Node { return e.tree() }

// Msgpack returns the MessagePack bytes the event reads (nil for a tree).
func (e *Event) Msgpack() []byte { return e.mp }

// Values implements Fields.
func (e *Event) Values(f *matcher.Field) []matcher.Value {
	if f.ID < len(e.cache) {
		if c := &e.cache[f.ID]; c.gen == e.gen {
			return c.vals
		}
	}
	var out []matcher.Value
	fr, _ := f.Reader.(*fieldReader)
	switch {
	case e.ecs != nil:
		out = ecsValues(e.ecs, f.Name, nil)
		if out == nil && e.ecsGeo != nil {
			if v, ok := e.ecsGeo[f.Name]; ok {
				out = []matcher.Value{v}
			}
		}
	case fr != nil && fr.kp != nil:
		out = e.scalarPath(fr.kp)
	default:
		out = e.resolve(f, fr)
	}
	e.keep(f, out)
	return out
}

// keep caches a field's values for the current record.
func (e *Event) keep(f *matcher.Field, vals []matcher.Value) {
	if f.ID >= len(e.cache) {
		e.cache = append(e.cache, make([]cached, f.ID+1-len(e.cache))...)
	}
	e.cache[f.ID] = cached{gen: e.gen, vals: vals}
}

// Elements implements Fields: CloudTrail's ECS view has no nested fields.
func (e *Event) Elements(*matcher.Field) []matcher.Fields { return nil }

// Value returns the first value of a field by name (for alert reasons and
// keys), or "".
func (e *Event) Value(s *matcher.Schema, name string) string {
	if v := e.Values(s.Field(name)); len(v) > 0 {
		return v[0].Text
	}
	return ""
}

func (e *Event) resolve(f *matcher.Field, fr *fieldReader) []matcher.Value {
	if fr != nil && fr.res != nil {
		return fr.res(e)
	}
	if f.FlattenedRoot != "" || (f.Type == matcher.Flattened) {
		root, key := f.FlattenedRoot, f.FlattenedKey
		if root == "" {
			root = f.Name
		}
		if key != "" && e.mp != nil && !e.mpTree {
			if v, ok := e.mpFlattenedLeaf(root, key); ok {
				return v
			}
		}
		src := e.flattened(root)
		if key == "" {
			return leaves(src, nil) // the root field holds every leaf
		}
		return keyedLeaves(walkPath(src, key), nil)
	}
	if strings.HasPrefix(f.Name, "source.geo.") || strings.HasPrefix(f.Name, "source.as.") {
		if v, ok := e.geoFields()[f.Name]; ok {
			return []matcher.Value{v}
		}
		return nil
	}
	if !mayIndex(f.Name) {
		return nil // no processor of the pipeline writes it
	}
	return e.indexedValues(f.Name)
}

// userAgentField reads one of the user_agent processor's fields ("" is
// absent) from the record's userAgent string.
func userAgentField(get func(*userAgent) string) resolver {
	return func(e *Event) []matcher.Value {
		v := e.scalarPath(kpUserAgent)
		if len(v) != 1 || v[0].Kind != matcher.KindString {
			return nil // absent, or the processor fails: no user_agent.*
		}
		if s := get(parseUserAgent(v[0].Text)); s != "" {
			return str(s)
		}
		return nil
	}
}

// pipelineRoots are the first parts of every field the integration's
// pipeline (with the entity enrichment) can write; a field outside them
// (host.name, process.*, kubernetes.*: another data stream's) is absent
// from every CloudTrail document, so reading it runs no pipeline.
var pipelineRoots = map[string]bool{
	"@timestamp": true, "event": true, "cloud": true, "aws": true, "user": true, "user_agent": true,
	"source": true, "related": true, "tls": true, "entity": true, "actor": true, "target": true,
	"service": true, "ecs": true, "error": true, "data_stream": true, "group": true, "tags": true,
}

// mayIndex reports whether the pipeline can write a field.
func mayIndex(name string) bool {
	root, rest, _ := strings.Cut(name, ".")
	if root == "host" {
		return strings.Contains(rest, "entity") || strings.HasPrefix(rest, "target.") // host.entity.id, host.target.*
	}
	return pipelineRoots[root]
}

// Document returns the event as the AWS integration's pipeline indexes it
// (nil for an already-ECS document), built on first use.
func (e *Event) Document() *Indexed {
	if e.indexed == nil && e.ecs == nil {
		raw := e.tree()
		if raw == nil {
			raw = &doc.Node{Kind: doc.Object}
		}
		e.indexed = Ingest(raw, e.Ingested, e.EntityMapping)
	}
	return e.indexed
}

// indexedValues reads a field from the pipeline's document.
func (e *Event) indexedValues(name string) []matcher.Value {
	d := e.Document()
	if d == nil {
		return nil
	}
	return ecsValues(d.Doc, name, nil)
}

// removed reports whether the integration's first cleanup drops a value.
func removed(n *doc.Node) bool {
	if n == nil || n.Kind == doc.Null {
		return true
	}
	if n.Kind == doc.String {
		switch n.Str {
		case "", "-", "none":
			return true
		}
	}
	return false
}

// get reads a raw path, nil when absent or removed by the cleanup.
func (e *Event) get(path ...string) *doc.Node {
	n := e.tree().Path(path...)
	if removed(n) {
		return nil
	}
	if (n.Kind == doc.Object || n.Kind == doc.Array) && !isClean(n) {
		return cleaned(n)
	}
	return n
}

// keyPath is a path of keys with their tags worked out once (the ECS
// derivations' paths): reading it does no hashing of keys.
type keyPath struct {
	keys []string
	tags []uint64
	hot  int // the first key's hot number, or -1
}

func newKeyPath(keys ...string) *keyPath {
	kp := &keyPath{keys: keys, tags: make([]uint64, len(keys)), hot: -1}
	for i, k := range keys {
		kp.tags[i] = keyTag(k)
	}
	if len(keys) > 0 {
		kp.hot = hotKey(kp.tags[0], keys[0])
	}
	return kp
}

// hotUnknown, as a path's hot number: not worked out yet.
const hotUnknown = -2

// listTop lists the record's top level on first need; false when the
// bytes cannot be walked.
func (e *Event) listTop() bool {
	if !e.mpIdxOK {
		idx, list, _, ok := IndexMsgpack(e.mp, e.mpIdx[:0])
		if !ok {
			return false
		}
		e.mpIdx, e.mpTop, e.mpHot, e.mpIdxOK = list, idx.Top, idx.hot, true
	}
	return true
}

// mpScalar reads a path from the MessagePack bytes through the record's
// member lists.
func (e *Event) mpScalar(path []string) (matcher.Value, mpStatus) {
	return e.mpScalarTagged(path, nil, hotUnknown)
}

// mpScalarTagged is mpScalar with the keys' tags given (nil: worked out
// here) and the first key's hot number (hotUnknown: worked out here).
func (e *Event) mpScalarTagged(path []string, tags []uint64, hot int) (matcher.Value, mpStatus) {
	if !e.listTop() {
		return matcher.Value{}, mpContainer // unreadable: let the tree decide
	}
	if len(path) == 0 {
		return matcher.Value{}, mpAbsent
	}
	if len(path) == 1 {
		m := e.topMemberTagged(path[0], tags, hot)
		if m == nil {
			return matcher.Value{}, mpAbsent
		}
		return mpScalar(m.val(e.mp))
	}
	last := len(path) - 1
	members, st := e.mpParentTagged(path[:last], tags, hot)
	if st != mpFound {
		return matcher.Value{}, st
	}
	tag := tagAt(path, tags, last)
	m := mpMemberTag(e.mp, members, tag, path[last])
	if m == nil {
		return matcher.Value{}, mpAbsent
	}
	return mpScalar(m.val(e.mp))
}

// tagAt returns the tag of path[i], from tags when given.
func tagAt(path []string, tags []uint64, i int) uint64 {
	if tags != nil {
		return tags[i]
	}
	return keyTag(path[i])
}

// topMember finds a member of the record's top level (the last of
// duplicates), nil when there is none.
func (e *Event) topMember(key string) *MsgpackMember { return e.topMemberTagged(key, nil, hotUnknown) }

// topMemberTagged is topMember with the key's tag in tags[0] (nil: worked
// out here) and its hot number (hotUnknown: worked out here).
func (e *Event) topMemberTagged(key string, tags []uint64, hot int) *MsgpackMember {
	var tag uint64
	if tags != nil {
		tag = tags[0]
	} else {
		tag = keyTag(key)
	}
	if hot == hotUnknown {
		hot = hotKey(tag, key)
	}
	if hot >= 0 {
		if p := e.mpHot[hot]; p > 0 {
			return &e.mpIdx[p-1]
		}
		return nil
	}
	return mpMemberTag(e.mp, e.mpIdx[:e.mpTop], tag, key)
}

// mpParentTagged returns the members of the map at a path of keys: the
// record's walk listed userIdentity and the maps in it; any other map is
// listed on its first read (with the maps inside it) and kept for the
// record. The keys' tags are given (nil: worked out here), and the first
// key's hot number (hotUnknown: worked out here).
func (e *Event) mpParentTagged(parent []string, tags []uint64, hot int) ([]MsgpackMember, mpStatus) {
	list, cur := e.mpIdx, e.mpIdx[:e.mpTop]
	for d, key := range parent {
		var m *MsgpackMember
		if d == 0 {
			m = e.topMemberTagged(key, tags, hot)
		} else {
			m = mpMemberTag(e.mp, cur, tagAt(parent, tags, d), key)
		}
		if m == nil {
			return nil, mpAbsent
		}
		if m.sub >= 0 {
			cur = list[m.sub : m.sub+m.n]
			continue
		}
		switch msgp.NextType(m.val(e.mp)) {
		case msgp.MapType:
		case msgp.NilType:
			return nil, mpAbsent
		default:
			return nil, mpContainer // not a map: let the tree decide
		}
		sub := e.listed(parent[:d+1], int(m.voff))
		if !sub.ok {
			return nil, mpContainer
		}
		list, cur = sub.idx, sub.idx[:sub.top]
	}
	return cur, mpFound
}

// listed returns the map at path (at pos in the record) listed, listing it
// on first use.
func (e *Event) listed(path []string, pos int) *mpSub {
	for i := range e.mpSubs {
		if slices.Equal(e.mpSubs[i].path, path) {
			return &e.mpSubs[i]
		}
	}
	if len(e.mpSubs) < cap(e.mpSubs) {
		e.mpSubs = e.mpSubs[:len(e.mpSubs)+1]
	} else {
		e.mpSubs = append(e.mpSubs, mpSub{})
	}
	sub := &e.mpSubs[len(e.mpSubs)-1]
	sub.path = append(sub.path[:0], path...) // a copy: callers pass stack slices
	sub.idx, sub.top, _, sub.ok = listMap(e.mp, pos, sub.idx[:0], 0, 1, nil)
	return sub
}

// present reports whether a raw path has a value the cleanup keeps.
func (e *Event) present(path ...string) bool { return e.presentTagged(path, nil, hotUnknown) }

// presentPath is present over a key path made once.
func (e *Event) presentPath(kp *keyPath) bool { return e.presentTagged(kp.keys, kp.tags, kp.hot) }

func (e *Event) presentTagged(path []string, tags []uint64, hot int) bool {
	if e.mp != nil && !e.mpTree {
		switch _, st := e.mpScalarTagged(path, tags, hot); st {
		case mpAbsent, mpRemoved:
			return false
		case mpFound:
			return true
		}
	}
	return e.get(path...) != nil
}

// scalar reads a raw path as one keyword value.
func (e *Event) scalar(path ...string) []matcher.Value { return e.scalarTagged(path, nil, hotUnknown) }

// scalarPath is scalar over a key path made once.
func (e *Event) scalarPath(kp *keyPath) []matcher.Value {
	return e.scalarTagged(kp.keys, kp.tags, kp.hot)
}

func (e *Event) scalarTagged(path []string, tags []uint64, hot int) []matcher.Value {
	if e.mp != nil && !e.mpTree {
		v, st := e.mpScalarTagged(path, tags, hot)
		switch st {
		case mpAbsent, mpRemoved:
			return nil
		case mpFound:
			return e.one(v)
		}
		// A container: the tree answers (arrays, cleanup of objects).
	}
	return e.scalarValue(e.get(path...))
}

func (e *Event) scalarValue(n *doc.Node) []matcher.Value {
	if n == nil {
		return nil
	}
	if t, ok := n.KeywordText(); ok {
		return e.one(matcher.Value{Text: t, Kind: kindOf(n)})
	}
	if n.Kind == doc.Array {
		return leaves(n, nil)
	}
	return nil
}

func kindOf(n *doc.Node) matcher.ValueKind {
	switch n.Kind {
	case doc.Number:
		return matcher.KindNumber
	case doc.Bool:
		return matcher.KindBool
	}
	return matcher.KindString
}

func str(s string) []matcher.Value { return []matcher.Value{{Text: s}} }

// payload returns a cleaned copy of a raw payload object (requestParameters,
// responseElements, ...), memoized per event.
func (e *Event) payload(key string) *doc.Node { return e.payloadOf(key).node }

func (e *Event) payloadOf(key string) *payload {
	if p, ok := e.clean[key]; ok {
		return p
	}
	p := &payload{}
	if key != "" {
		if n := e.topValue(key); n != nil {
			p.node = cleaned(n)
		}
		if key == "additionalEventData" && e.movesUserName() && p.node != nil && p.node.Kind == doc.Object && p.node.Get("UserName") != nil {
			// The pipeline moves UserName to user.name before it renders
			// the payload; the key stays in the HashMap's table.
			p.node = deepCopy(p.node)
			removeMember(p.node, "UserName")
		}
	}
	if e.clean == nil {
		e.clean = map[string]*payload{}
	}
	e.clean[key] = p
	return p
}

// topValue is the value of a top-level key as a tree. A record read in
// place builds the tree of that value alone (or nothing, when the key is
// absent), not of the whole record.
func (e *Event) topValue(key string) *doc.Node {
	if e.raw != nil || e.mp == nil || e.mpTree {
		return e.tree().Get(key)
	}
	if !e.listTop() {
		return e.tree().Get(key) // unreadable: the tree decides
	}
	m := e.topMember(key)
	if m == nil {
		return nil
	}
	n, _, err := e.readMsgpack(m.val(e.mp))
	if err != nil {
		return e.tree().Get(key) // as the whole record's reading decides
	}
	return n
}

// payloadText is a payload's Map.toString() text, rendered once per event.
func (e *Event) payloadText(key string) (string, bool) {
	p := e.payloadOf(key)
	if p.node == nil {
		return "", false
	}
	if !p.rendered {
		if p.node.Kind == doc.String {
			p.text = p.node.Str
		} else {
			p.text = string(p.node.AppendJava(nil))
		}
		p.rendered = true
	}
	return p.text, true
}

// cleaned returns n with the values the integration's cleanup removes taken
// out (null, "", "-", "none", then maps and lists left empty), or nil when
// nothing is left. Removed object keys stay as members with a nil value: a
// Java HashMap never shrinks, so they still decide its table size and with
// it the order Map.toString() prints the others in.
func cleaned(n *doc.Node) *doc.Node {
	if removed(n) {
		return nil
	}
	if isClean(n) {
		return n
	}
	switch n.Kind {
	case doc.Object:
		out := &doc.Node{Kind: doc.Object, Obj: make([]doc.Member, len(n.Obj))}
		live := 0
		for i, m := range n.Obj {
			out.Obj[i] = doc.Member{Key: m.Key, Val: cleaned(m.Val)}
			if out.Obj[i].Val != nil {
				live++
			}
		}
		if live == 0 {
			return nil
		}
		return out
	case doc.Array:
		out := &doc.Node{Kind: doc.Array}
		for _, el := range n.Arr {
			if c := cleaned(el); c != nil {
				out.Arr = append(out.Arr, c)
			}
		}
		if len(out.Arr) == 0 {
			return nil
		}
		return out
	}
	return n
}

// isClean reports whether the cleanup would leave n as it is.
func isClean(n *doc.Node) bool {
	switch n.Kind {
	case doc.Object:
		if len(n.Obj) == 0 {
			return false
		}
		for _, m := range n.Obj {
			if m.Val == nil || removed(m.Val) || !isClean(m.Val) {
				return false
			}
		}
	case doc.Array:
		if len(n.Arr) == 0 {
			return false
		}
		for _, el := range n.Arr {
			if removed(el) || !isClean(el) {
				return false
			}
		}
	}
	return true
}

// walkPath follows a dotted key path through objects and arrays of objects
// (as a flattened field's keyed paths do), collecting what it reaches into an
// array node when arrays are crossed.
func walkPath(n *doc.Node, path string) *doc.Node {
	if n == nil {
		return nil
	}
	// Keys may themselves contain dots; try the longest key first.
	if n.Kind == doc.Array {
		out := &doc.Node{Kind: doc.Array}
		for _, el := range n.Arr {
			if r := walkPath(el, path); r != nil {
				out.Arr = append(out.Arr, r)
			}
		}
		if len(out.Arr) == 0 {
			return nil
		}
		return out
	}
	if n.Kind != doc.Object {
		return nil
	}
	if v := n.Get(path); v != nil {
		return v
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		if v := n.Get(path[:i]); v != nil {
			if r := walkPath(v, path[i+1:]); r != nil {
				return r
			}
		}
	}
	return nil
}

// leaves appends every scalar below n as keyword text, arrays and objects
// flattened through, as a flattened field indexes its leaves.
func leaves(n *doc.Node, dst []matcher.Value) []matcher.Value {
	if n == nil {
		return dst
	}
	switch n.Kind {
	case doc.Object:
		for _, m := range n.Obj {
			if m.Val != nil {
				dst = leaves(m.Val, dst)
			}
		}
	case doc.Array:
		for _, el := range n.Arr {
			dst = leaves(el, dst)
		}
	case doc.Null:
	default:
		t, _ := n.KeywordText()
		if n.Kind == doc.Number && n.Float {
			// Flattened leaves are the Java value re-serialized: Double.
			t = string(javaText(n))
		}
		dst = append(dst, matcher.Value{Text: t, Kind: kindOf(n)})
	}
	return dst
}

// keyedLeaves appends the values of a keyed flattened subfield: the
// scalars at its path, arrays flattened through. An object there holds
// leaves of longer paths, which Elasticsearch indexes under their own keys,
// not this one.
func keyedLeaves(n *doc.Node, dst []matcher.Value) []matcher.Value {
	if n == nil {
		return dst
	}
	switch n.Kind {
	case doc.Object:
		return dst
	case doc.Array:
		for _, el := range n.Arr {
			dst = keyedLeaves(el, dst)
		}
		return dst
	}
	return leaves(n, dst)
}

func javaText(n *doc.Node) []byte { return n.AppendJava(nil) }

// flattenedSource maps a flattened ECS field to its raw payload key.
var flattenedSource = map[string]string{
	"aws.cloudtrail.flattened.request_parameters":    "requestParameters",
	"aws.cloudtrail.flattened.response_elements":     "responseElements",
	"aws.cloudtrail.flattened.additional_eventdata":  "additionalEventData",
	"aws.cloudtrail.flattened.service_event_details": "serviceEventDetails",
}

// mpFlattenedLeaf reads a keyed flattened field whose key is a scalar
// member of its payload straight from the MessagePack bytes, when the
// payload is too small for its text to reach maxFlattenedText (no rendering
// needed to know the flattened copy is kept: each byte of MessagePack gives
// fewer than eight characters of Map.toString() text). Anything else, and
// ok is false: the tree answers.
func (e *Event) mpFlattenedLeaf(root, key string) (vals []matcher.Value, ok bool) {
	src := flattenedSource[root]
	if src == "" || strings.IndexByte(key, '.') >= 0 || src == "additionalEventData" && key == "UserName" {
		return nil, false
	}
	if _, st := e.mpScalar([]string{src}); st != mpContainer {
		return nil, st == mpAbsent || st == mpRemoved // no payload; a scalar payload is the tree's
	}
	if m := e.topMember(src); m == nil || int(m.vlen)*8 >= maxFlattenedText {
		return nil, false
	}
	v, st := e.mpScalar([]string{src, key})
	switch st {
	case mpFound:
		return e.one(v), true
	case mpAbsent, mpRemoved:
		return nil, true
	}
	return nil, false
}

// maxFlattenedText is the length from which the integration keeps only the
// text of a payload and no flattened copy: a Java String's length, in
// UTF-16 code units.
const maxFlattenedText = 32766

// javaLengthAtLeast reports whether s, as a Java String, has at least n
// UTF-16 code units. Text never has more units than bytes (a byte that is
// not valid UTF-8 decodes as one U+FFFD), so shorter text is decided by its
// size alone.
func javaLengthAtLeast(s string, n int) bool {
	if len(s) < n {
		return false
	}
	units := 0
	for _, r := range s {
		if units++; r >= 0x10000 {
			units++ // a surrogate pair
		}
		if units >= n {
			return true
		}
	}
	return false
}

func (e *Event) identityType() string { return e.scalarTextPath(kpIdentityType) }

func (e *Event) assumed() bool {
	t := e.identityType()
	return t == "AssumedRole" || t == "FederatedUser"
}

// isIP reports whether s is an address Elasticsearch's ip field accepts
// (Go's parser refuses IPv4 octets with leading zeros, as Elasticsearch does).
func isIP(s string) bool {
	// Host names (cloudtrail.amazonaws.com, AWS Internal) are the common
	// non-address here: refuse them before the parser builds an error.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':' || c == '%') {
			return false
		}
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func (e *Event) geoFields() map[string]matcher.Value {
	if e.geoSet {
		return e.geo
	}
	e.geoSet = true
	if e.enricher == nil {
		return nil
	}
	src := e.scalarPath(kpSourceIP)
	if len(src) == 0 {
		return nil
	}
	a, err := netip.ParseAddr(src[0].Text)
	if err != nil {
		return nil
	}
	e.geo = e.enricher.Lookup(a)
	return e.geo
}

func (e *Event) userName() []matcher.Value {
	if e.assumed() {
		if v := e.scalarPath(kpIssuerUserName); v != nil {
			return v
		}
	}
	if v := e.scalarPath(kpUserName); v != nil {
		return v
	}
	if e.scalarTextPath(kpEventName) == "UserAuthentication" {
		return e.scalar("additionalEventData", "UserName")
	}
	return nil
}

func (e *Event) scalarText(path ...string) string { return firstText(e.scalar(path...)) }

// scalarTextPath is scalarText over a key path made once.
func (e *Event) scalarTextPath(kp *keyPath) string { return firstText(e.scalarPath(kp)) }

func firstText(v []matcher.Value) string {
	if len(v) > 0 {
		return v[0].Text
	}
	return ""
}

// Key paths the derivations read from most records.
var (
	kpEventName      = newKeyPath("eventName")
	kpEventID        = newKeyPath("eventID")
	kpUserAgent      = newKeyPath("userAgent")
	kpEventSource    = newKeyPath("eventSource")
	kpErrorCode      = newKeyPath("errorCode")
	kpErrorMessage   = newKeyPath("errorMessage")
	kpSourceIP       = newKeyPath("sourceIPAddress")
	kpRecipient      = newKeyPath("recipientAccountId")
	kpIdentityType   = newKeyPath("userIdentity", "type")
	kpUserName       = newKeyPath("userIdentity", "userName")
	kpAccountID      = newKeyPath("userIdentity", "accountId")
	kpPrincipalID    = newKeyPath("userIdentity", "principalId")
	kpIdentityARN    = newKeyPath("userIdentity", "arn")
	kpIssuerUserName = newKeyPath("userIdentity", "sessionContext", "sessionIssuer", "userName")
	kpResources      = newKeyPath("resources")
)

var (
	outcomeSuccess = []matcher.Value{{Text: "success"}}
	outcomeFailure = []matcher.Value{{Text: "failure"}}
)

func (e *Event) outcome() []matcher.Value {
	out := outcomeSuccess
	if e.presentPath(kpErrorCode) || e.presentPath(kpErrorMessage) {
		out = outcomeFailure
	}
	if e.scalarTextPath(kpEventName) == "ConsoleLogin" {
		// The categorization reads it as a string; anything else is an
		// error it notes (the document is then the judge).
		if v := e.scalar("responseElements", "ConsoleLogin"); len(v) > 0 && v[0].Kind == matcher.KindString {
			return str(strings.ToLower(v[0].Text))
		}
	}
	return out[:1:1]
}

// javaPayload renders a payload as the integration's keyword text field.
func (e *Event) javaPayload(key string) []matcher.Value {
	if t, ok := e.payloadText(key); ok {
		return e.one(matcher.Value{Text: t})
	}
	return nil
}

// payloadFields are the fields javaPayload renders, by the top-level key
// of their payload.
var payloadFields = map[string]string{
	"aws.cloudtrail.request_parameters":    "requestParameters",
	"aws.cloudtrail.response_elements":     "responseElements",
	"aws.cloudtrail.additional_eventdata":  "additionalEventData",
	"aws.cloudtrail.service_event_details": "serviceEventDetails",
}

// renderedOnly are the bytes a payload's text can hold outside its keys'
// and strings' own bytes: punctuation, and the renderings of numbers,
// booleans, null and timestamps.
const renderedOnly = "{}[]=, 0123456789.-+:EINTZaefilnrstuy"

// Lacks implements matcher.TextFields: true when f is a payload's text
// (javaPayload), s has no punctuation the text puts between keys and
// values and a byte no number, boolean, null or timestamp renders, and
// the record read in place has no such payload or its MessagePack bytes
// do not hold s. Each key and string of the text is one of those bytes'
// strings (cleaning only takes values out), so s, which lies within one
// of them, would be in the bytes.
func (e *Event) Lacks(f *matcher.Field, s string) bool {
	if e.ecs != nil || e.raw != nil || e.mp == nil || e.mpTree {
		return false
	}
	if f.ID < len(e.cache) && e.cache[f.ID].gen == e.gen {
		return false // read already: the caller reads it cheaply
	}
	key, ok := payloadFields[f.Name]
	if !ok || strings.ContainsAny(s, textPunct) || strings.Trim(s, renderedOnly) == "" || !ascii(s) {
		// Only ASCII is answered: the text's other bytes could come from
		// a rendering rather than from the record's own.
		return false
	}
	if !e.listTop() {
		return false
	}
	m := e.topMember(key)
	if m == nil {
		return true // no payload: topValue finds none
	}
	return !bytes.Contains(m.val(e.mp), []byte(s))
}

// ascii reports whether s is all ASCII.
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// textPunct are the bytes a payload's text puts between its keys and
// values.
const textPunct = matcher.TextSeparators

// one returns a one-value slice carved from the event's arena.
func (e *Event) one(v matcher.Value) []matcher.Value {
	e.arena = append(e.arena, v)
	n := len(e.arena)
	return e.arena[n-1 : n : n]
}

func (e *Event) tls(part string) []matcher.Value {
	v := e.scalarText("tlsDetails", "tlsVersion")
	if v == "tlsVersion" {
		return nil
	}
	switch part {
	case "version_protocol", "version":
		proto, ver, ok := strings.Cut(v, "v")
		if !ok || v == "" {
			if part == "version" && v != "" {
				return str(v)
			}
			return nil
		}
		if part == "version" {
			return str(ver)
		}
		return str(strings.ToLower(proto))
	case "cipher":
		return e.scalar("tlsDetails", "cipherSuite")
	}
	return e.scalar("tlsDetails", "clientProvidedHostHeader")
}

type resolver func(e *Event) []matcher.Value

func constant(s string) resolver {
	v := []matcher.Value{{Text: s}}
	return func(*Event) []matcher.Value { return v[:1:1] }
}

// resolvers is the CloudTrail-to-ECS derivation, one entry per ECS field.
var resolvers map[string]resolver

// rawPaths holds the key path of each field that is one raw path.
var rawPaths map[string]*keyPath

func init() {
	resolvers = map[string]resolver{
		"@timestamp":          func(e *Event) []matcher.Value { return e.timestamp() },
		"event.ingested":      func(e *Event) []matcher.Value { return str(ingestedText(e.Ingested)) },
		"event.dataset":       constant(Dataset),
		"data_stream.dataset": constant(Dataset),
		"data_stream.type":    constant("logs"),
		// The user_agent processor's fields, from userAgent alone (not the
		// whole pipeline): parsed once per distinct agent string.
		"user_agent.name":        userAgentField(func(u *userAgent) string { return u.name }),
		"user_agent.version":     userAgentField(func(u *userAgent) string { return u.version }),
		"user_agent.os.name":     userAgentField(func(u *userAgent) string { return u.osName }),
		"user_agent.os.version":  userAgentField(func(u *userAgent) string { return u.osVersion }),
		"user_agent.os.full":     userAgentField(func(u *userAgent) string { return u.osFull }),
		"user_agent.device.name": userAgentField(func(u *userAgent) string { return u.deviceName }),
		// Elastic Agent's data stream namespace, which the pipeline leaves
		// as the agent set it: the default one.
		"data_stream.namespace": constant("default"),
		// Metadata ES|QL rules ask for (FROM ... METADATA): the document's
		// id is the event's (what alerts are deduplicated by), its index
		// the data stream's, its version the first.
		"_id":            func(e *Event) []matcher.Value { return e.scalarPath(kpEventID) },
		"_index":         constant("logs-aws.cloudtrail-default"),
		"_version":       func(*Event) []matcher.Value { return []matcher.Value{{Text: "1", Kind: matcher.KindNumber}} },
		"event.outcome":  func(e *Event) []matcher.Value { return e.outcome() },
		"event.category": func(e *Event) []matcher.Value { return e.category(true) },
		"event.type":     func(e *Event) []matcher.Value { return e.category(false) },
		"cloud.account.id": func(e *Event) []matcher.Value {
			if v := e.scalarPath(kpAccountID); v != nil {
				return v
			}
			return e.scalarPath(kpRecipient)
		},
		"source.ip": func(e *Event) []matcher.Value {
			if v := e.scalarPath(kpSourceIP); len(v) > 0 && v[0].Kind == matcher.KindString && esIP(v[0].Text) {
				return v
			}
			return nil
		},
		"user.name": func(e *Event) []matcher.Value { return e.userName() },
		"user.id": func(e *Event) []matcher.Value {
			if v := e.scalarPath(kpPrincipalID); v != nil {
				return v
			}
			if e.identityType() == "IdentityCenterUser" {
				return e.scalar("userIdentity", "onBehalfOf", "userId")
			}
			return nil
		},
		"tls.client.server_name":               func(e *Event) []matcher.Value { return e.tls("server_name") },
		"tls.version":                          func(e *Event) []matcher.Value { return e.tls("version") },
		"tls.version_protocol":                 func(e *Event) []matcher.Value { return e.tls("version_protocol") },
		"tls.cipher":                           func(e *Event) []matcher.Value { return e.tls("cipher") },
		"aws.cloudtrail.request_parameters":    func(e *Event) []matcher.Value { return e.javaPayload("requestParameters") },
		"aws.cloudtrail.response_elements":     func(e *Event) []matcher.Value { return e.javaPayload("responseElements") },
		"aws.cloudtrail.additional_eventdata":  func(e *Event) []matcher.Value { return e.javaPayload("additionalEventData") },
		"aws.cloudtrail.service_event_details": func(e *Event) []matcher.Value { return e.javaPayload("serviceEventDetails") },
		"aws.cloudtrail.resources.arn":         func(e *Event) []matcher.Value { return e.resourceValues("arn") },
		"aws.cloudtrail.resources.account_id":  func(e *Event) []matcher.Value { return e.resourceValues("account_id") },
		"aws.cloudtrail.resources.type":        func(e *Event) []matcher.Value { return e.resourceValues("type") },
		"aws.cloudtrail.management_event": func(e *Event) []matcher.Value {
			return e.scalar("managementEvent")
		},
	}
	// Fields that are one raw path: read through their key path, with no
	// resolver in between (Event.Values reads them directly).
	rawPaths = map[string]*keyPath{}
	for name, keys := range map[string][]string{
		"event.provider":                                 {"eventSource"},
		"event.action":                                   {"eventName"},
		"event.id":                                       {"eventID"},
		"cloud.region":                                   {"awsRegion"},
		"source.address":                                 {"sourceIPAddress"},
		"user_agent.original":                            {"userAgent"},
		"user.target.name":                               {"requestParameters", "userName"},
		"user.target.id":                                 {"responseElements", "user", "userId"},
		"user.changes.name":                              {"requestParameters", "newUserName"},
		"group.id":                                       {"responseElements", "group", "groupId"},
		"group.name":                                     {"requestParameters", "groupName"},
		"aws.cloudtrail.event_version":                   {"eventVersion"},
		"aws.cloudtrail.event_category":                  {"eventCategory"},
		"aws.cloudtrail.event_type":                      {"eventType"},
		"aws.cloudtrail.request_id":                      {"requestID"},
		"aws.cloudtrail.api_version":                     {"apiVersion"},
		"aws.cloudtrail.recipient_account_id":            {"recipientAccountId"},
		"aws.cloudtrail.vpc_endpoint_id":                 {"vpcEndpointId"},
		"aws.cloudtrail.read_only":                       {"readOnly"},
		"aws.cloudtrail.error_code":                      {"errorCode"},
		"aws.cloudtrail.error_message":                   {"errorMessage"},
		"aws.cloudtrail.session_credential_from_console": {"sessionCredentialFromConsole"},
		"aws.cloudtrail.user_identity.type":              {"userIdentity", "type"},
		"aws.cloudtrail.user_identity.arn":               {"userIdentity", "arn"},
		"aws.cloudtrail.user_identity.access_key_id":     {"userIdentity", "accessKeyId"},
		"aws.cloudtrail.user_identity.invoked_by":        {"userIdentity", "invokedBy"},
		"aws.cloudtrail.user_identity.session_context.mfa_authenticated":           {"userIdentity", "sessionContext", "attributes", "mfaAuthenticated"},
		"aws.cloudtrail.user_identity.session_context.session_issuer.type":         {"userIdentity", "sessionContext", "sessionIssuer", "type"},
		"aws.cloudtrail.user_identity.session_context.session_issuer.arn":          {"userIdentity", "sessionContext", "sessionIssuer", "arn"},
		"aws.cloudtrail.user_identity.session_context.session_issuer.principal_id": {"userIdentity", "sessionContext", "sessionIssuer", "principalId"},
		"aws.cloudtrail.user_identity.session_context.session_issuer.account_id":   {"userIdentity", "sessionContext", "sessionIssuer", "accountId"},
	} {
		kp := newKeyPath(keys...)
		rawPaths[name] = kp
		resolvers[name] = func(e *Event) []matcher.Value { return e.scalarPath(kp) }
	}
	for _, name := range entityFields {
		resolvers[name] = func(e *Event) []matcher.Value { return e.entityValues(name) }
	}
	resolvedFields = listResolvedFields()
}

// timestamp is eventTime through the date processor; the time the event
// was read when it is not a date.
func (e *Event) timestamp() []matcher.Value { return str(formatESDate(e.timestampTime())) }

// timestampTime is @timestamp's time, parsed once a record.
func (e *Event) timestampTime() time.Time {
	if e.atGen != e.gen {
		e.at = e.EventTime()
		if e.at.IsZero() {
			e.at = e.Ingested
		}
		e.atGen = e.gen
	}
	return e.at
}

// Millis implements matcher.DateFields for @timestamp of a raw CloudTrail
// event (an ECS document's is its text): the milliseconds its text stands
// for, without writing it (formatESDate keeps the milliseconds, in four
// digit years).
func (e *Event) Millis(f *matcher.Field) (int64, bool) {
	if fr, _ := f.Reader.(*fieldReader); e.ecs != nil || f.Name != "@timestamp" || fr == nil || fr.kp != nil || fr.res == nil {
		return 0, false // Values does not run the resolver
	}
	t := e.timestampTime().UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return 0, false
	}
	return t.UnixMilli(), true
}

// EventTime is CloudTrail's eventTime as the date processor parses it
// (zero when absent or not a date).
func (e *Event) EventTime() time.Time {
	if e.ecs != nil {
		v := ecsValues(e.ecs, "@timestamp", nil)
		if len(v) == 0 {
			return time.Time{}
		}
		t, err := matcher.ParseDate(v[0].Text)
		if err != nil {
			return time.Time{}
		}
		return t
	}
	// As the date processor reads it: the value's text, before the
	// cleanup, as ISO8601.
	s := e.eventTimeText()
	if s == "" {
		return time.Time{}
	}
	t, ok := parseISO8601(s)
	if !ok {
		return time.Time{}
	}
	return t
}

// ResolvedFields lists the ECS fields a raw CloudTrail event can have, for
// building the full document of an alert.
// The slice is shared: callers must not modify it.
func ResolvedFields() []string { return resolvedFields }

// resolvedFields is set once resolvers exist (see init).
var resolvedFields []string

func listResolvedFields() []string {
	out := make([]string, 0, len(resolvers)+len(flattenedSource))
	for k := range resolvers {
		out = append(out, k)
	}
	for k := range flattenedSource {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ecsValues reads a dotted field name from an ECS document, where each dot
// may be an object level or part of a key ("event.action" or
// {"event":{"action":...}}), collecting through arrays.
func ecsValues(n *doc.Node, name string, dst []matcher.Value) []matcher.Value {
	if n == nil {
		return dst
	}
	if n.Kind == doc.Array {
		for _, el := range n.Arr {
			dst = ecsValues(el, name, dst)
		}
		return dst
	}
	if name == "" {
		return leaves(n, dst)
	}
	if n.Kind != doc.Object {
		return dst
	}
	for _, m := range n.Obj {
		if m.Val == nil {
			continue
		}
		switch {
		case m.Key == name:
			dst = leaves(m.Val, dst)
		case strings.HasPrefix(name, m.Key) && name[len(m.Key)] == '.':
			dst = ecsValues(m.Val, name[len(m.Key)+1:], dst)
		}
	}
	return dst
}

// ECSNode returns the already-ECS document (nil for a raw event).
func (e *Event) ECSNode() *doc.Node { return e.ecs }

// Payload returns the cleaned raw payload behind a flattened field (nil when
// absent, or when its text is too long for the integration to keep a copy).
func (e *Event) Payload(f *matcher.Field) *doc.Node { return e.flattened(f.Name) }

func (e *Event) flattened(root string) *doc.Node {
	key := flattenedSource[root]
	n := e.payload(key)
	if n == nil {
		return nil
	}
	if t, _ := e.payloadText(key); javaLengthAtLeast(t, maxFlattenedText) {
		return nil
	}
	return n
}

// GeoFields returns the GeoIP/ASN fields of the event's source address.
func (e *Event) GeoFields() map[string]matcher.Value { return e.geoFields() }

// IndexedGeoFields returns the GeoIP/ASN fields the indexed document holds:
// none when the pipeline failed before its geoip processors.
func (e *Event) IndexedGeoFields() map[string]matcher.Value {
	if e.ecs == nil && e.Raw() != nil && !e.Document().Geo {
		return nil
	}
	return e.geoFields()
}

// ErrorDocument is the event Elasticsearch would index for a record the
// pipeline fails on: its error document, with the geoip processors'
// fields when the failure came after them.
func (e *Event) ErrorDocument() *Event {
	d := e.Document()
	out := NewECSEvent(d.Doc, e.Ingested)
	if d.Geo {
		out.ecsGeo = e.geoFields()
	}
	return out
}

// eventTimeText is eventTime's text as the date processor reads it (before
// the cleanup: "-" is text to parse), "" when absent or null.
func (e *Event) eventTimeText() string {
	if e.mp != nil && !e.mpTree {
		v, st := e.mpScalar([]string{"eventTime"})
		switch {
		case st == mpAbsent:
			return ""
		case st == mpFound && v.Kind != matcher.KindNumber:
			return v.Text
		}
		// Removed values ("-" is still text to parse) and numbers (their
		// Java text): the tree answers.
	}
	n := e.tree().Get("eventTime")
	if n == nil || n.Kind == doc.Null {
		return ""
	}
	return javaToString(n)
}

// category is event.category (or event.type) from the categorization
// table; ConsoleLogin, whose categorization can stop on an unexpected
// value, is read from the document.
func (e *Event) category(category bool) []matcher.Value {
	action := e.scalarTextPath(kpEventName)
	if action == "ConsoleLogin" && !consoleLoginCategorizes(e.topValue("responseElements")) {
		// The categorization script fails on this record: the pipeline
		// decides what is left.
		if category {
			return e.indexedValues("event.category")
		}
		return e.indexedValues("event.type")
	}
	return categorize(action, category)
}

// consoleLoginCategorizes reports whether the categorization script runs
// through on a ConsoleLogin's responseElements (absent, or an object whose
// ConsoleLogin is absent or a string; null, "", "-" and "none" are gone
// before the script runs), so that the table decides
// event.category and event.type as for any other action.
func consoleLoginCategorizes(re *doc.Node) bool {
	if re == nil || removed(re) {
		return true // absent, or dropped by the first cleanup
	}
	if re.Kind != doc.Object {
		return false
	}
	v := re.Get("ConsoleLogin")
	return v == nil || v.Kind == doc.String
}

// movesUserName reports whether the pipeline moves additionalEventData's
// UserName to user.name: a UserAuthentication event whose identity gave no
// user name.
func (e *Event) movesUserName() bool {
	if e.scalarTextPath(kpEventName) != "UserAuthentication" {
		return false
	}
	if e.assumed() && e.scalarPath(kpIssuerUserName) != nil {
		return false
	}
	return e.scalarPath(kpUserName) == nil
}

// entityFields are the fields the entity enrichment sets.
var entityFields = []string{"actor.entity.id", "user.entity.id", "service.entity.id", "host.entity.id", "entity.id",
	"target.entity.id", "user.target.entity.id", "host.target.entity.id", "service.target.entity.id",
	"entity.target.id", "related.entity"}

// entityValues reads an entity field from the enrichment, run over the
// cleaned event on first need (without the rest of the pipeline).
func (e *Event) entityValues(name string) []matcher.Value {
	if !e.entsOK {
		e.entsOK = true
		if raw := e.tree(); raw != nil && e.EntityMapping {
			if json := cleaned(raw); json != nil && json.Get("eventName") != nil {
				e.ents, e.entsRan = runEntityScript(json)
			}
		}
	}
	if !e.entsRan {
		return nil
	}
	for _, f := range e.ents.fields {
		if f.name != name {
			continue
		}
		if f.actor != nil {
			return leaves(f.actor, nil)
		}
		out := make([]matcher.Value, len(f.vals))
		for i, v := range f.vals {
			out[i] = matcher.Value{Text: v}
		}
		return out
	}
	return nil
}

// resourceValues reads a key of aws.cloudtrail.resources, as the
// pipeline's resources script leaves them.
func (e *Event) resourceValues(key string) []matcher.Value {
	if !e.resourcesSet {
		e.resourcesSet = true
		if e.mp != nil && !e.mpTree && !e.presentPath(kpResources) {
			return nil
		}
		if rs := e.get("resources"); rs != nil {
			e.resources = dedupeResources(rs)
		}
	}
	if e.resources == nil {
		return nil
	}
	return ecsValues(e.resources, key, nil)
}
