package cloudtrail

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/matcher"
)

// TestFormatESDate: the digit-by-digit writer gives what time's Format
// gives, in every zone, for the years it writes and past them.
func TestFormatESDate(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	ts := []time.Time{
		{},
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 1e6-1, time.UTC),
		time.Date(2026, 11, 20, 0, 0, 5, 0, time.UTC),
		time.Date(2026, 1, 1, 3, 0, 0, 123456789, east),
		time.Date(2024, 2, 29, 12, 30, 45, 7e6, east),
		time.UnixMilli(-1),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		ts = append(ts, time.Unix(r.Int64N(400e9)-200e9, r.Int64N(1e9)).In(east))
	}
	for _, x := range ts {
		if got, want := formatESDate(x), x.UTC().Format(esDateLayout); got != want {
			t.Fatalf("formatESDate(%v) = %q, want %q", x, got, want)
		}
	}
}

func BenchmarkFormatESDate(b *testing.B) {
	x := time.Date(2026, 11, 20, 0, 0, 5, 123e6, time.UTC)
	for b.Loop() {
		_ = formatESDate(x)
	}
}

// TestTimestampMillis: Millis gives @timestamp as the milliseconds its
// text stands for, over the tree and in place over MessagePack, eventTime
// missing, malformed, offset, fractional, past four digits or not a string;
// an ECS document's is not given.
func TestTimestampMillis(t *testing.T) {
	s := NewSchema()
	f := s.Field("@timestamp")
	ingested := time.Date(2026, 11, 20, 12, 0, 0, 987654321, time.UTC)
	for _, et := range []any{
		"2026-11-20T00:00:05Z", "2026-11-20T00:00:05.123456789Z", "2026-11-20T01:00:05+02:00", "2026-11-20",
		"1969-12-31T23:59:59.9999Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "10000-01-01T00:00:00Z",
		"-0001-01-01T00:00:00Z", "x", "", "-", 1700000000000, nil, true,
	} {
		rec := map[string]any{"eventSource": "iam.amazonaws.com", "eventName": "ListUsers", "eventVersion": "1.08"}
		if et != nil {
			rec["eventTime"] = et
		}
		js, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := doc.ParseJSON(js)
		if err != nil {
			t.Fatal(err)
		}
		mp, err := msgp.AppendIntf(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		evs := map[string]*Event{"tree": NewEvent(tree, ingested, nil), "msgpack": {}}
		evs["msgpack"].ResetMsgpack(mp, ingested, nil)
		for name, ev := range evs {
			for _, first := range []string{"millis", "text"} {
				if first == "text" {
					ev.Values(f)
				}
				ms, ok := ev.Millis(f)
				vs := ev.Values(f)
				if len(vs) != 1 {
					t.Fatalf("%v (%s): %d values", et, name, len(vs))
				}
				d, err := matcher.ParseDate(vs[0].Text)
				if !ok {
					if err == nil && d.Year() >= 0 && d.Year() <= 9999 {
						t.Errorf("%v (%s): no milliseconds for %q", et, name, vs[0].Text)
					}
					continue
				}
				if err != nil || d.UnixMilli() != ms {
					t.Errorf("%v (%s, %s first): %d ms, the text %q says %v (%v)", et, name, first, ms, vs[0].Text, d.UnixMilli(), err)
				}
			}
			if et == "2026-11-20T00:00:05Z" {
				ev.Reset(tree, nil, ingested, nil)
				if _, ok := ev.Millis(s.Field("event.ingested")); ok {
					t.Error("milliseconds of another field")
				}
			}
		}
	}
	ecs, err := doc.ParseJSON([]byte(`{"@timestamp":"2026-11-20T00:00:05Z","event":{"provider":"iam.amazonaws.com"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := NewECSEvent(ecs, ingested).Millis(f); ok {
		t.Error("milliseconds of an ECS document's @timestamp")
	}
}
