package engine

import (
	"errors"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// Records given as JSON text, and JSON strings that records carry under
// log or message, are read on the MessagePack path: transcoded into the
// worker's buffer in one pass, then read in place, so that a record no rule
// matches builds no tree and allocates nothing. A record that is not a raw
// CloudTrail event is read as a tree, as a MessagePack record is.

// maxKeptJSON is the largest transcoding buffer a worker keeps from one
// batch to the next.
const maxKeptJSON = 16 << 20

// addJSON evaluates a record given as JSON text.
func (b *Batch) addJSON(rec *Record) {
	w, st := b.w, &b.stats
	w.jbuf = w.jbuf[:w.jkeep]
	buf, ok := w.tc.AppendMsgpack(w.jbuf, rec.JSON)
	if !ok {
		// Not well-formed: the tree reader says why, and where.
		n, err := doc.ParseJSON(rec.JSON)
		if err == nil {
			b.split(n) // not reached while the two agree (FuzzTranscode)
			return
		}
		rec.Err = err
		st.skip("malformed")
		return
	}
	w.jbuf = buf
	mp := buf[w.jkeep:]
	if b.evalInPlace(mp, w.tc.Top, true) || b.addRecords(true, true) || b.addEmbedded() {
		return
	}
	n, _, err := doc.ReadMsgpackJSON(mp)
	if err != nil {
		rec.Err = errors.New("unreadable transcoding: " + err.Error()) // not reached
		st.skip("malformed")
		return
	}
	b.split(n)
}

// addRecords evaluates in place the events of a CloudTrail log file held
// by the worker's event ({"Records": [...]}, cloudtrail.Event.RecordsArray);
// json: the record was transcoded from JSON. At the top of a record
// (top) the file is claimed whatever it holds, as Split does; inside a
// string only when it holds an event, so that the tree looks further
// otherwise. false leaves the record to the tree.
func (b *Batch) addRecords(json, top bool) bool {
	e, w, st := b.e, b.w, &b.stats
	arr := w.ev.RecordsArray()
	if arr == nil {
		return false
	}
	found, others := false, 0
	cloudtrail.EachElement(arr, func(el []byte) {
		if msgp.NextType(el) != msgp.MapType {
			others++
			return
		}
		if b.evalInPlace(el, nil, json) {
			found = true
			return
		}
		if !w.ev.NamesEvent() {
			others++
			return
		}
		// An event whose eventSource or eventName the cleanup removes:
		// the tree answers, as for any record.
		n, _, err := w.ev.ReadTree(el)
		if err != nil {
			st.skip(cloudtrail.SkipMalformed) // an element no reader takes: counted
			return
		}
		found = true
		st.Events++
		w.ev.Reset(n, nil, b.ingested, e.enricher)
		b.alerts, b.pending = e.evaluate(w, st, b.alerts, b.pending)
	})
	switch {
	case found:
		// The elements that are no event, counted as Split counts them.
		for range others {
			st.skip(cloudtrail.SkipNotCloudTrail)
		}
	case top:
		st.skip(cloudtrail.SkipNotCloudTrail)
	}
	return found || top
}

// addEmbedded evaluates the JSON text the worker's event carries under
// log or message (cloudtrail.Event.EmbeddedJSON) in place, when it is a raw
// CloudTrail event or a CloudTrail log file: false leaves the record to
// the tree.
func (b *Batch) addEmbedded() bool {
	w := b.w
	text := w.ev.EmbeddedJSON()
	if text == nil {
		return false
	}
	// Appended after the record that carries it: text points into it
	// when the record is JSON too.
	start := len(w.jbuf)
	buf, ok := w.tc.AppendMsgpack(w.jbuf, text)
	if !ok {
		return false
	}
	w.jbuf = buf
	return b.evalInPlace(buf[start:], w.tc.Top, true) || b.addRecords(true, false)
}

// evalInPlace evaluates a record's MessagePack (transcoded from JSON, or
// not) in place if it is a raw CloudTrail event, and keeps the transcoded
// bytes for the batch when it matched.
func (b *Batch) evalInPlace(mp []byte, top []doc.TopMember, json bool) bool {
	e, w, st := b.e, b.w, &b.stats
	if json {
		w.ev.ResetMsgpackJSON(mp, top, b.ingested, e.enricher)
	} else {
		w.ev.ResetMsgpack(mp, b.ingested, e.enricher)
	}
	if !w.ev.RawCloudTrail(e.provider, e.action) {
		return false
	}
	st.Events++
	w.retain = false
	b.alerts, b.pending = e.evaluate(w, st, b.alerts, b.pending)
	if w.retain {
		w.jkeep = len(w.jbuf)
	}
	return true
}

// resetMsgpack points ev at a record's MessagePack, transcoded from JSON
// or not.
func (e *Engine) resetMsgpack(ev *cloudtrail.Event, mp []byte, json bool, ingested time.Time) {
	if json {
		ev.ResetMsgpackJSON(mp, nil, ingested, e.enricher)
	} else {
		ev.ResetMsgpack(mp, ingested, e.enricher)
	}
}
