package cloudtrail

import (
	"math/rand/v2"
	"testing"
	"time"
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
