// Command benchreport reads `go test -bench` output of the flb package's
// chunk benchmarks (several -count runs) and prints the medians `make bench`
// reports, ending with the line `ratio vs decoder floor: <x>`.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	metrics := map[string]map[string][]float64{} // benchmark -> unit -> values
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		if metrics[name] == nil {
			metrics[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				metrics[name][f[i+1]] = append(metrics[name][f[i+1]], v)
			}
		}
	}
	med := func(name, unit string) float64 {
		vs := append([]float64(nil), metrics[name][unit]...)
		if len(vs) == 0 {
			fmt.Fprintf(os.Stderr, "benchreport: no %s for %s in the input\n", unit, name)
			os.Exit(1)
		}
		sort.Float64s(vs)
		return vs[len(vs)/2]
	}
	floor := med("BenchmarkDecoderFloor", "records/s")
	one := med("BenchmarkChunkPath/rules=1", "records/s")
	all := med("BenchmarkChunkPath/rules=x1", "records/s")
	ten := med("BenchmarkChunkPath/rules=x10", "records/s")
	n1, n10 := med("BenchmarkChunkPath/rules=x1", "rules"), med("BenchmarkChunkPath/rules=x10", "rules")
	noMatch := med("BenchmarkNoMatchPath", "allocs/op") / 1024
	// Ratios of runs made side by side: the i-th run of each benchmark
	// belongs to round i.
	ratio := func(num, den string) float64 {
		a, b := metrics[num]["records/s"], metrics[den]["records/s"]
		var rs []float64
		for i := 0; i < len(a) && i < len(b); i++ {
			rs = append(rs, a[i]/b[i])
		}
		if len(rs) == 0 {
			fmt.Fprintf(os.Stderr, "benchreport: no rounds of %s and %s\n", num, den)
			os.Exit(1)
		}
		sort.Float64s(rs)
		return rs[len(rs)/2]
	}
	fmt.Printf("medians of %d rounds (figures, and ratios within each round)\n", len(metrics["BenchmarkDecoderFloor"]["records/s"]))
	fmt.Printf("1. decoder floor (fluent-bit-go NewDecoder/GetRecord): %.0f records/s\n", floor)
	fmt.Printf("2. trailwatch whole chunk path, %.0f rules: %.0f records/s\n", n1, all)
	fmt.Printf("3. allocations per record on the no-match path: %.3f\n", noMatch)
	fmt.Printf("4. rules: 1 -> %.0f records/s; %.0f -> %.0f records/s; %.0f -> %.0f records/s (%.0f rules cost %.2fx what %.0f cost; %.0f cost %.2fx what 1 costs)\n",
		one, n1, all, n10, ten, n10, ratio("BenchmarkChunkPath/rules=x1", "BenchmarkChunkPath/rules=x10"), n1,
		n1, ratio("BenchmarkChunkPath/rules=1", "BenchmarkChunkPath/rules=x1"))
	if len(metrics["BenchmarkChunkPath/rules=threshold"]["records/s"]) > 0 {
		fmt.Printf("5. the threshold rules alone (bucket counting): %.0f records/s (%.2fx the whole set's rate)\n",
			med("BenchmarkChunkPath/rules=threshold", "records/s"), ratio("BenchmarkChunkPath/rules=threshold", "BenchmarkChunkPath/rules=x1"))
	}
	if len(metrics["BenchmarkChunkPathShared"]["records/s"]) > 0 {
		fmt.Printf("6. with shared_state (a fleet on an embedded nats-server), %.0f rules: %.0f records/s, %.2fx the bbolt-only path; %.2f NATS operations per 1,000 records\n",
			n1, med("BenchmarkChunkPathShared", "records/s"), ratio("BenchmarkChunkPathShared", "BenchmarkChunkPath/rules=x1"),
			med("BenchmarkChunkPathShared", "nats-ops/1000rec"))
	}
	if len(metrics["BenchmarkJSONPath/rules=x1"]["records/s"]) > 0 {
		fmt.Printf("7. JSON text (NDJSON lines), %.0f rules: %.0f records/s, %.2fx the MessagePack chunk path; 1 rule: %.0f records/s, %.2fx; allocations per no-match record: %.3f\n",
			n1, med("BenchmarkJSONPath/rules=x1", "records/s"), ratio("BenchmarkJSONPath/rules=x1", "BenchmarkChunkPath/rules=x1"),
			med("BenchmarkJSONPath/rules=1", "records/s"), ratio("BenchmarkJSONPath/rules=1", "BenchmarkChunkPath/rules=1"),
			med("BenchmarkJSONNoMatchPath", "allocs/op")/1024)
	}
	if len(metrics["BenchmarkLogPath/rules=x1"]["records/s"]) > 0 {
		fmt.Printf("8. JSON strings under log (tail without a parser), %.0f rules: %.0f records/s, %.2fx the MessagePack chunk path; 1 rule: %.0f records/s, %.2fx\n",
			n1, med("BenchmarkLogPath/rules=x1", "records/s"), ratio("BenchmarkLogPath/rules=x1", "BenchmarkChunkPath/rules=x1"),
			med("BenchmarkLogPath/rules=1", "records/s"), ratio("BenchmarkLogPath/rules=1", "BenchmarkChunkPath/rules=1"))
	}
	fmt.Printf("ratio vs decoder floor: %.2f\n", ratio("BenchmarkChunkPath/rules=x1", "BenchmarkDecoderFloor"))
}
