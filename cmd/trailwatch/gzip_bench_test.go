package main

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/json"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/trailwatch/trailwatch/internal/gen"
)

// gzipped is 20,000 generated CloudTrail records as gzip NDJSON (level 6,
// as AWS and most tools write it).
func gzipped(b *testing.B) ([]byte, int) {
	var plain bytes.Buffer
	err := gen.Generate(20_000, 1, func(rec map[string]any) error {
		line, err := json.Marshal(rec)
		plain.Write(line)
		plain.WriteByte('\n')
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	var z bytes.Buffer
	zw := stdgzip.NewWriter(&z)
	zw.Write(plain.Bytes())
	zw.Close()
	return z.Bytes(), plain.Len()
}

// BenchmarkGunzip compares the standard library's gzip reader with
// klauspost/compress's on the same file: the reader scan, backfill and
// serve use is the faster one.
func BenchmarkGunzip(b *testing.B) {
	z, n := gzipped(b)
	for _, c := range []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"stdlib", func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(r) }},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				r, err := c.open(bytes.NewReader(z))
				if err != nil {
					b.Fatal(err)
				}
				m, err := io.Copy(io.Discard, r)
				if err != nil || int(m) != n {
					b.Fatalf("read %d of %d bytes: %v", m, n, err)
				}
			}
		})
	}
}
