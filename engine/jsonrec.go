package engine

import (
	"errors"
	"time"

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
	if b.evalTranscoded(mp, w.tc.Top) {
		return
	}
	if b.addEmbedded() {
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

// addEmbedded evaluates the JSON text the worker's event carries under
// log or message (cloudtrail.Event.EmbeddedJSON) in place, when it is a raw
// CloudTrail event: false leaves the record to the tree.
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
	return b.evalTranscoded(buf[start:], w.tc.Top)
}

// evalTranscoded evaluates a transcoded record in place if it is a raw
// CloudTrail event, and keeps its bytes for the batch when it matched.
func (b *Batch) evalTranscoded(mp []byte, top []doc.TopMember) bool {
	e, w, st := b.e, b.w, &b.stats
	w.ev.ResetMsgpackJSON(mp, top, b.ingested, e.enricher)
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
