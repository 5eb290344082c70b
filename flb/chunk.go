// Package flb is trailwatch's side of Fluent Bit's Go output plugin
// interface, in pure Go so that tests drive it without Fluent Bit: it reads
// the chunks Fluent Bit flushes and hands them to an instance, one per
// [OUTPUT] section, mapping the outcome to Fluent Bit's return codes. The
// cgo shim in plugin/ only hands bytes and properties to it.
package flb

import (
	"fmt"
	"io"
	"sync"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/internal/logsafe"
)

// Status is what a flush returns to Fluent Bit.
type Status int

// Fluent Bit's return codes (flb_output.h).
const (
	Error Status = 0
	OK    Status = 1
	Retry Status = 2
)

// Open starts the instance of one [OUTPUT] section from its properties.
func Open(name string, get func(string) string, logw io.Writer) (*instance.Instance, error) {
	return instance.Open(name, get, logw)
}

// Flush evaluates one chunk. It returns OK once the chunk's history and
// alerts are committed, Retry when they could not be (Fluent Bit then sends
// the same chunk again), and never Error for malformed records: they are
// counted and skipped.
func Flush(in *instance.Instance, tag string, data []byte) Status {
	if _, err := Process(in, tag, data); err != nil {
		return Retry
	}
	return OK
}

// Process evaluates one chunk (or the entries of a forward protocol
// message, which are laid out as a chunk), read and evaluated a piece at a
// time, and commits it: instance.ProcessPieces.
func Process(in *instance.Instance, tag string, data []byte) (engine.Result, error) {
	b := bufs.Get().(*chunkBuf)
	defer b.put()
	return in.ProcessPieces(func(add func([]engine.Record)) { b.feed(tag, data, add) })
}

// piece is how many records of a chunk are read and evaluated at a time:
// their member lists (a few hundred bytes a record) stay in the
// processor's cache between reading and evaluating.
const piece = 128

// feed reads a chunk a piece at a time, handing each piece's records to
// add before it reads the next.
func (b *chunkBuf) feed(tag string, data []byte, add func([]engine.Record)) ChunkStats {
	var total ChunkStats
	for i := 0; len(data) > 0; {
		var st ChunkStats
		b.recs, st, data, i = decodeChunk(b.recs[:0], &b.arena, tag, data, i, piece)
		total.Events += st.Events
		total.Groups += st.Groups
		total.Malformed += st.Malformed
		if len(b.recs) > 0 {
			add(b.recs)
		}
		clear(b.recs)
	}
	return total
}

// chunkBuf holds what reading a chunk needs, reused from chunk to chunk:
// nothing of it outlives the flush that reads it.
type chunkBuf struct {
	recs  []engine.Record
	arena []cloudtrail.MsgpackMember
}

var bufs = sync.Pool{New: func() any { return &chunkBuf{} }}

func (b *chunkBuf) put() {
	clear(b.recs) // drop references to the chunk and its records
	b.recs = b.recs[:0]
	b.arena = b.arena[:0]
	bufs.Put(b)
}

// ChunkStats counts what a chunk held besides records.
type ChunkStats struct {
	Events    int // records read
	Groups    int // group start/end markers skipped
	Malformed int // records that could not be read
}

// DecodeChunk reads a Fluent Bit chunk: a sequence of events, each either
// [timestamp, body] or [[timestamp, metadata], body], the timestamp an
// EventTime extension or an integer. Group markers (timestamp -1 and -2) are
// skipped. A malformed event is returned as a record with Err set; when the
// stream itself is broken, the rest of the chunk is one malformed record.
func DecodeChunk(tag string, data []byte) ([]engine.Record, ChunkStats) {
	// About a kilobyte a CloudTrail record: size the slice once.
	return DecodeChunkInto(make([]engine.Record, 0, len(data)/1024+16), tag, data)
}

// DecodeChunkInto is DecodeChunk appending to recs.
func DecodeChunkInto(recs []engine.Record, tag string, data []byte) ([]engine.Record, ChunkStats) {
	var arena []cloudtrail.MsgpackMember
	recs, st, _, _ := decodeChunk(recs, &arena, tag, data, 0, -1)
	return recs, st
}

// decodeChunk reads a chunk's events from the first-th on, up to limit
// records (no limit when negative), listing the records' members in
// *arenap (emptied first, grown as needed; records keep slices of it). It
// returns the rest of the chunk and the number of its first event.
func decodeChunk(recs []engine.Record, arenap *[]cloudtrail.MsgpackMember, tag string, data []byte, first, limit int) ([]engine.Record, ChunkStats, []byte, int) {
	var st ChunkStats
	// One walk: each event's header, then its body's top level, which both
	// indexes the record for the engine and finds where the next begins.
	arena := (*arenap)[:0]
	defer func() { *arenap = arena }()
	start := len(recs)
	i := first
	for ; len(data) > 0 && (limit < 0 || len(recs)-start < limit); i++ {
		body, group, err := eventBody(data)
		if err != nil {
			st.Malformed++
			next, serr := msgp.Skip(data)
			if serr != nil {
				// The event cannot even be delimited: the rest is lost.
				recs = append(recs, engine.Record{Err: fmt.Errorf("unreadable MessagePack from event %d on: %v", i, serr), Where: where(tag, i)})
				data = nil
				break
			}
			recs = append(recs, engine.Record{Err: err, Where: where(tag, i)})
			data = next
			continue
		}
		if t := msgp.NextType(body); t != msgp.MapType {
			// Skip this event's body and go on with the next.
			next, err := msgp.Skip(body)
			if err != nil {
				st.Malformed++
				recs = append(recs, engine.Record{Err: fmt.Errorf("unreadable MessagePack from event %d on: %v", i, err), Where: where(tag, i)})
				data = nil
				break
			}
			data = next
			if group {
				st.Groups++
				continue
			}
			st.Malformed++
			recs = append(recs, engine.Record{Err: fmt.Errorf("record body is a %s, not a map", t), Where: where(tag, i)})
			continue
		}
		if cap(arena) == 0 {
			n := len(data) / 40
			if limit >= 0 {
				n = min(n, limit*64)
			}
			arena = make([]cloudtrail.MsgpackMember, 0, n+64)
		}
		// The record is put in place first and its index written into it:
		// a Record is 150 bytes, not to be copied per record.
		recs = append(recs, engine.Record{})
		r := &recs[len(recs)-1]
		grown, next, ok := cloudtrail.IndexMsgpackInto(&r.Index, body, arena)
		if !ok {
			st.Malformed++
			if rest, err := msgp.Skip(body); err == nil {
				// Well-formed MessagePack the index refuses (a map key
				// that is no string): this record alone, where the rest
				// of the chunk went with it.
				*r = engine.Record{Err: fmt.Errorf("a record no CloudTrail reader takes (a map key that is not a string?)"), Where: where(tag, i)}
				data = rest
				continue
			}
			*r = engine.Record{Err: fmt.Errorf("unreadable MessagePack from event %d on", i), Where: where(tag, i)}
			data = nil
			break
		}
		arena = grown
		body = body[:len(body)-len(next)]
		data = next
		if group {
			st.Groups++
			recs = recs[:len(recs)-1]
			continue
		}
		st.Events++
		r.Msgpack = body
	}
	return recs, st, data, i
}

// where names an event of a chunk (the tag may come from a forward peer:
// quoted when it is not plain text).
func where(tag string, i int) string { return fmt.Sprintf("tag %s, event %d", logsafe.Name(tag), i) }

// eventBody reads one event's array header and timestamp header, and
// returns the bytes from its body on (the rest of the chunk included), and
// whether the event is a group marker.
func eventBody(ev []byte) (body []byte, group bool, err error) {
	n, rest, err := msgp.ReadArrayHeaderBytes(ev)
	if err != nil {
		return nil, false, fmt.Errorf("event is not an array: %v", err)
	}
	if n != 2 {
		return nil, false, fmt.Errorf("event is an array of %d, expected [timestamp, body]", n)
	}
	header, ts := rest, rest
	if msgp.NextType(header) == msgp.ArrayType {
		// [[timestamp, metadata], body]: the timestamp is inside.
		hn, h, err := msgp.ReadArrayHeaderBytes(header)
		if err != nil || hn < 1 {
			return nil, false, fmt.Errorf("event header is not [timestamp, metadata]")
		}
		ts = h
	}
	group = isGroupMarker(ts)
	if !group {
		if err := checkTimestamp(ts); err != nil {
			return nil, false, err
		}
	}
	if body, err = msgp.Skip(header); err != nil {
		return nil, false, err
	}
	return body, group, nil
}

// isGroupMarker recognizes the start and end of a record group: Fluent Bit
// writes them as an EventTime with seconds 0xFFFFFFFF (-1) or 0xFFFFFFFE
// (-2) and no nanoseconds; the integer -1 and -2 are accepted too.
func isGroupMarker(ts []byte) bool {
	switch msgp.NextType(ts) {
	case msgp.IntType:
		v, _, err := msgp.ReadInt64Bytes(ts)
		return err == nil && (v == -1 || v == -2)
	case msgp.ExtensionType:
		// fixext8 (0xd7), type 0, then 4 bytes seconds and 4 nanoseconds.
		if len(ts) < 10 || ts[0] != 0xd7 || ts[1] != 0 {
			return false
		}
		sec := uint32(ts[2])<<24 | uint32(ts[3])<<16 | uint32(ts[4])<<8 | uint32(ts[5])
		nsec := uint32(ts[6])<<24 | uint32(ts[7])<<16 | uint32(ts[8])<<8 | uint32(ts[9])
		return nsec == 0 && (sec == 0xFFFFFFFF || sec == 0xFFFFFFFE)
	}
	return false
}

func checkTimestamp(ts []byte) error {
	switch msgp.NextType(ts) {
	case msgp.IntType, msgp.UintType, msgp.Float64Type, msgp.Float32Type, msgp.ExtensionType:
		return nil
	}
	return fmt.Errorf("event timestamp is a %s, expected EventTime or an integer", msgp.NextType(ts))
}
