package flb

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/engine"
)

// FuzzDecodeChunk: any bytes as a Fluent Bit chunk: no panic, no hang, and
// every record is either readable or carries its error and place.
func FuzzDecodeChunk(f *testing.F) {
	good := body("PutResourcePolicy", "arn:aws:iam::1:user/a", false)
	f.Add(v1(eventTime(time.Unix(1, 0)), good))
	f.Add(v2(eventTime(time.Unix(1, 0)), good))
	f.Add(append(v2(eventTime(time.Unix(0xFFFFFFFF, 0)), good), 0xdc, 0xff, 0xff))
	f.Add([]byte{0x92, 0x01})
	// Deep nesting in a body, and many empty events.
	f.Add(append(append([]byte{0x92, 0x01, 0x81, 0xa1, 'a'}, bytes.Repeat([]byte{0x91}, 20000)...), 0xc0))
	f.Add(bytes.Repeat([]byte{0x92, 0x00, 0x80}, 30000))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, st := DecodeChunk("fuzz", data)
		if st.Events+st.Malformed != len(recs) {
			t.Fatalf("%d records for %+v", len(recs), st)
		}
		for _, r := range recs {
			if (r.Err == nil) == (r.Msgpack == nil) || (r.Err != nil && r.Where == "") {
				t.Fatalf("record %+v", r)
			}
		}
		checkPieces(t, data, recs, st)
	})
}

// checkPieces holds reading a chunk a piece at a time (as Flush does) to
// reading it whole: the same records, errors and places, the same counts.
func checkPieces(t *testing.T, data []byte, whole []engine.Record, wst ChunkStats) {
	t.Helper()
	var got []engine.Record
	b := &chunkBuf{}
	st := b.feed("fuzz", data, func(recs []engine.Record) {
		if len(recs) > piece {
			t.Fatalf("a piece of %d records", len(recs))
		}
		for _, r := range recs {
			r.Index = cloudtrail.MsgpackIndex{} // reused by the next piece
			got = append(got, r)
		}
	})
	if st != wst || len(got) != len(whole) {
		t.Fatalf("pieces: %d records, %+v; whole: %d records, %+v", len(got), st, len(whole), wst)
	}
	for i := range got {
		w := whole[i]
		if !bytes.Equal(got[i].Msgpack, w.Msgpack) || got[i].Where != w.Where || fmt.Sprint(got[i].Err) != fmt.Sprint(w.Err) {
			t.Fatalf("record %d: pieces %+v, whole %+v", i, got[i], w)
		}
	}
}
