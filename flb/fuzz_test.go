package flb

import (
	"testing"
	"time"
)

// FuzzDecodeChunk: any bytes as a Fluent Bit chunk: no panic, no hang, and
// every record is either readable or carries its error and place.
func FuzzDecodeChunk(f *testing.F) {
	good := body("PutResourcePolicy", "arn:aws:iam::1:user/a", false)
	f.Add(v1(eventTime(time.Unix(1, 0)), good))
	f.Add(v2(eventTime(time.Unix(1, 0)), good))
	f.Add(append(v2(eventTime(time.Unix(0xFFFFFFFF, 0)), good), 0xdc, 0xff, 0xff))
	f.Add([]byte{0x92, 0x01})
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
	})
}
