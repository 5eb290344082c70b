package cloudtrail

import (
	"slices"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/matcher"
)

// JSON text is read in place too: doc.Transcoder writes it as MessagePack
// (strings unescaped, numbers kept as written), and the event reads that as
// it reads a Fluent Bit record. The only difference is how a number that
// MessagePack would not give back as written is read (ReadMsgpackJSON).

// ResetMsgpackJSON points the event at a raw CloudTrail event that
// doc.Transcoder wrote from JSON text, as ResetMsgpack does. top, when
// given, is the Transcoder's list of the record's top-level members (its
// Top), which spares the walk that lists them.
func (e *Event) ResetMsgpackJSON(mp []byte, top []doc.TopMember, ingested time.Time, en Enricher) {
	e.ResetMsgpack(mp, ingested, en)
	e.mpJSON = true
	if len(top) == 0 {
		return
	}
	// As listMap lists a top level, but for userIdentity's maps, which
	// are listed when first read below them.
	// In a list of the event's own: mpIdx may be a chunk's, dropped at
	// the next Reset (borrowed), as this one is.
	idx := slices.Grow(e.jsonIdx[:0], len(top))[:len(top)]
	e.jsonIdx = idx
	e.mpHot = hotPos{}
	for i, t := range top {
		key := bytesString(mp[t.KeyOff : t.KeyOff+t.KeyLen])
		tag := keyTag(key)
		idx[i] = MsgpackMember{tag: tag, koff: t.KeyOff, klen: t.KeyLen, voff: t.ValOff, vlen: t.ValLen, sub: -1}
		if h := int(hotTable[(tag*hotMul)>>58]) - 1; h >= 0 && hotTags[h] == tag && sameTagged(hotKeys[h], key) {
			e.mpHot[h] = int32(i + 1)
		}
	}
	e.mpIdx, e.mpTop, e.mpIdxOK, e.mpIdxBorrowed = idx, len(top), true, true
}

// MsgpackJSON reports whether the event's MessagePack was transcoded from
// JSON (ResetMsgpackJSON).
func (e *Event) MsgpackJSON() bool { return e.mp != nil && e.mpJSON }

// ReadTree builds the tree of MessagePack bytes as the event reads its
// record's (doc.ReadMsgpackJSON for a transcoding, else doc.ReadMsgpack).
func (e *Event) ReadTree(b []byte) (*doc.Node, []byte, error) { return e.readMsgpack(b) }

// readMsgpack builds the tree of MessagePack bytes of the event's record.
func (e *Event) readMsgpack(b []byte) (*doc.Node, []byte, error) {
	if e.mpJSON {
		return doc.ReadMsgpackJSON(b)
	}
	return doc.ReadMsgpack(b)
}

// Top-level keys that make Split take a record for something other than a
// carrier of a JSON string, and the keys of that string, in Split's order.
var (
	kpOtherShapes = []*keyPath{newKeyPath("Records"), newKeyPath("detail-type"), newKeyPath("records"),
		newKeyPath("event"), newKeyPath(matcher.ProviderField), newKeyPath(matcher.ActionField)}
	kpStringKeys = func() (kps []*keyPath) {
		for _, k := range stringKeys {
			kps = append(kps, newKeyPath(k))
		}
		return kps
	}()
)

// EmbeddedJSON returns the JSON text that a MessagePack record (a Fluent
// Bit record from tail without a parser, say) carries as a string under
// log, message or event.original, when that string is where Split would
// look for the record's event: the record is not a raw event (eventSource
// and eventName strings), holds none of the keys of the other shapes
// (Records, detail-type, records, event, event.provider, event.action),
// and the text is the first of those keys' strings that starts with '{'.
// Split then takes the event in that text when it is a raw CloudTrail
// event; anything else (malformed text, another shape inside) is for the
// tree to decide. The text points into the record's bytes. nil when there
// is no such text.
func (e *Event) EmbeddedJSON() []byte {
	if e.mp == nil || !e.listTop() {
		return nil
	}
	if e.NamesEvent() {
		return nil
	}
	for _, kp := range kpOtherShapes {
		if e.topMemberTagged(kp.keys[0], kp.tags, kp.hot) != nil {
			return nil
		}
	}
	for _, kp := range kpStringKeys {
		m := e.topMemberTagged(kp.keys[0], kp.tags, kp.hot)
		if m == nil {
			continue
		}
		if s := mpText(m.val(e.mp)); len(s) >= 2 && s[0] == '{' {
			return s
		}
	}
	return nil
}

// mpText returns the bytes of a str or bin value (what the tree reads as a
// String), nil for anything else. An empty string is not nil.
func mpText(b []byte) []byte {
	var s []byte
	var err error
	switch msgp.NextType(b) {
	case msgp.StrType:
		s, _, err = msgp.ReadStringZC(b)
	case msgp.BinType:
		s, _, err = msgp.ReadBytesZC(b)
	default:
		return nil
	}
	if err != nil {
		return nil
	}
	if s == nil {
		s = b[:0]
	}
	return s
}

// NamesEvent reports whether a MessagePack record has string eventSource
// and eventName at its top level: what Split takes for a raw event,
// whatever the values (RawCloudTrail also wants values the cleanup keeps).
func (e *Event) NamesEvent() bool {
	if e.mp == nil || !e.listTop() {
		return false
	}
	src, name := e.topMemberTagged(kpEventSource.keys[0], kpEventSource.tags, kpEventSource.hot),
		e.topMemberTagged(kpEventName.keys[0], kpEventName.tags, kpEventName.hot)
	return src != nil && name != nil && mpText(src.val(e.mp)) != nil && mpText(name.val(e.mp)) != nil
}

var kpRecords = newKeyPath("Records")

// RecordsArray returns the array a MessagePack record holds under Records
// when Split reads the record as a CloudTrail log file: it is not a raw
// event (NamesEvent) and its Records is an array. Split then takes the
// elements that name an event, and looks no further. nil otherwise.
func (e *Event) RecordsArray() []byte {
	if e.mp == nil || !e.listTop() || e.NamesEvent() {
		return nil
	}
	m := e.topMemberTagged(kpRecords.keys[0], kpRecords.tags, kpRecords.hot)
	if m == nil {
		return nil
	}
	if v := m.val(e.mp); msgp.NextType(v) == msgp.ArrayType {
		return v
	}
	return nil
}

// EachElement calls fn with each element of the MessagePack array arr, and
// reports whether arr was a whole array (the elements before a broken one
// are given).
func EachElement(arr []byte, fn func(el []byte)) bool {
	n, rest, err := msgp.ReadArrayHeaderBytes(arr)
	if err != nil {
		return false
	}
	for range n {
		next, ok := mpSkip(rest)
		if !ok {
			return false
		}
		fn(rest[:len(rest)-len(next)])
		rest = next
	}
	return true
}
