package server

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// FuzzForwardMessage: any bytes as one forward protocol message: no panic,
// no hang, no unbounded memory (the decompression limit holds).
func FuzzForwardMessage(f *testing.F) {
	m := msgp.AppendArrayHeader(nil, 4)
	m = msgp.AppendString(m, "t")
	m = msgp.AppendInt64(m, 1)
	m = append(m, recordMap(event(1, grant))...)
	m = append(m, option("c", false)...)
	f.Add(m)
	p := msgp.AppendArrayHeader(nil, 3)
	p = msgp.AppendString(p, "t")
	p = msgp.AppendBytes(p, gz(entry(event(2, grant))))
	p = append(p, option("c", true)...)
	f.Add(p)
	// Deep nesting, a huge array of entries, a small gzip inflating past
	// the bound.
	deep := msgp.AppendArrayHeader(nil, 3)
	deep = msgp.AppendString(deep, "t")
	deep = append(deep, bytes.Repeat([]byte{0x91}, 20000)...)
	f.Add(append(deep, 0xc0))
	many := msgp.AppendArrayHeader(nil, 2)
	many = msgp.AppendString(many, "t")
	many = msgp.AppendArrayHeader(many, 30000)
	for range 30000 {
		many = append(many, 0x92, 0x00, 0x80)
	}
	f.Add(many)
	bomb := msgp.AppendArrayHeader(nil, 3)
	bomb = msgp.AppendString(bomb, "t")
	bomb = msgp.AppendBytes(bomb, gz(bytes.Repeat([]byte{0xc0}, 2<<20)))
	f.Add(append(bomb, option("c", true)...))
	lim := NewLimits(MinMaxHeld(1<<20), 1)
	f.Fuzz(func(t *testing.T, data []byte) {
		out := lim.newBuffer(context.Background(), 1<<20)
		defer out.release()
		decodeForward(data, 1000, func(packed []byte) ([]byte, error) {
			err := gunzip(out, packed)
			return out.b, err
		})
	})
}

// FuzzHTTPBody: any request body, as NDJSON, an array or a Firehose
// delivery: no panic, no hang.
func FuzzHTTPBody(f *testing.F) {
	f.Add([]byte(event(1, grant)+"\n"+event(2, grant)), false)
	f.Add([]byte("["+event(3, grant)+"]"), false)
	f.Add([]byte(`{"requestId":"r","records":[{"data":"e30="}]}`), true)
	// Deep nesting and a huge array, whole or cut short.
	f.Add([]byte("["+strings.Repeat(`{"a":`, 1000)+"1"+strings.Repeat("}", 1000)+","+event(4, grant)+"]"), false)
	huge := "[" + strings.Repeat("{},", 30000) + event(5, grant) + "]"
	f.Add([]byte(huge), false)
	f.Add([]byte(huge[:len(huge)/2]), false)
	f.Fuzz(func(t *testing.T, data []byte, firehose bool) {
		b, err := splitBody(data, firehose, 1<<30)
		if err != nil {
			return
		}
		n, got := b.count(1<<30), 0
		for range b.records() {
			got++
		}
		if got != n {
			t.Fatalf("%d records read, %d counted", got, n)
		}
	})
}
