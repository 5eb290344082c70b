// Command gen writes the benchmark's CloudTrail records as NDJSON:
//
//	go run ./testdata/gen -n 1000000 > 1m.ndjson
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/trailwatch/trailwatch/internal/gen"
)

func main() {
	n := flag.Int("n", 200000, "records to write")
	seed := flag.Uint64("seed", 1, "random seed (the same seed gives the same records)")
	flag.Parse()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	enc := json.NewEncoder(w)
	if err := gen.Generate(*n, *seed, func(rec map[string]any) error { return enc.Encode(rec) }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
