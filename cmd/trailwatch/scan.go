package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/matcher"
)

// listFlag collects a repeatable flag; each value may hold comma-separated
// paths, as the plugin's rules property does.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// batchSize is how many records the scan hands the engine at once: one
// new_terms history transaction per batch.
const batchSize = 4096

func cmdScan(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rules listFlag
	fs.Var(&rules, "rules", "rule file or folder (repeatable, or comma-separated)")
	timeSource := fs.String("time-source", "ingested", "clock for new_terms windows: ingested (when trailwatch reads the record) or event (CloudTrail's eventTime, for replays)")
	quiet := fs.Bool("quiet", false, "no summary on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: trailwatch scan --rules PATH [--rules PATH] FILE... ('-' reads stdin)")
		fmt.Fprintln(stderr, "Reads CloudTrail files (.json, .json.gz, NDJSON, {\"Records\":[...]} files), writes one alert a line to stdout.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(rules) == 0 || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	ts, err := engine.ParseTimeSource(*timeSource)
	if err != nil {
		fmt.Fprintln(stderr, "trailwatch scan: --"+strings.ReplaceAll(err.Error(), "time_source", "time-source"))
		return 2
	}
	rs, err := conf.LoadRules(matcher.NewSchema(), rules...)
	if err != nil {
		fmt.Fprintf(stderr, "trailwatch scan: the rule set has errors; fix them or remove the rules:\n%v\n", err)
		return 2
	}
	eng, err := engine.New(rs, engine.Options{History: engine.NewMemHistory(), TimeSource: ts})
	if err != nil {
		fmt.Fprintln(stderr, "trailwatch scan:", err)
		return 2
	}
	out := bufio.NewWriterSize(stdout, 1<<16)
	defer out.Flush()
	var total engine.Stats
	byRule := map[string]int{}
	malformed := 0
	start := time.Now()
	progress := !*quiet && isTerminal(stderr)
	lastDraw := time.Time{}
	for _, name := range fs.Args() {
		src, err := openSource(name, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "trailwatch scan: %v\n", err)
			malformed++
			continue
		}
		for {
			recs, rerr := src.next(batchSize)
			if len(recs) > 0 {
				for _, r := range recs {
					if r.Err != nil {
						malformed++
						fmt.Fprintf(stderr, "%s: malformed record: %v\n", r.Where, r.Err)
					}
				}
				alerts, st, perr := eng.ProcessBatch(recs)
				if perr != nil {
					fmt.Fprintln(stderr, "trailwatch scan:", perr)
					return 1
				}
				total.Add(st)
				for _, a := range alerts {
					byRule[a.Rule]++
					b, err := a.JSON()
					if err != nil {
						fmt.Fprintf(stderr, "trailwatch scan: alert %s: %v\n", a.UUID, err)
						continue
					}
					out.Write(b)
					out.WriteByte('\n')
				}
			}
			if progress && time.Since(lastDraw) > 200*time.Millisecond {
				lastDraw = time.Now()
				drawProgress(stderr, src, total, start)
			}
			if rerr != nil {
				fmt.Fprintf(stderr, "trailwatch scan: %v\n", rerr)
				malformed++
				break
			}
			if len(recs) == 0 {
				break
			}
		}
		src.close()
	}
	if progress {
		fmt.Fprint(stderr, "\r\033[K")
	}
	out.Flush()
	if !*quiet {
		summary(stderr, total, byRule, time.Since(start))
	}
	if malformed > 0 {
		return 1
	}
	return 0
}

func drawProgress(w io.Writer, src *source, st engine.Stats, start time.Time) {
	pct := ""
	if src.size > 0 {
		pct = fmt.Sprintf(" %3.0f%%", 100*float64(src.counter.n)/float64(src.size))
	}
	rate := float64(st.Records) / time.Since(start).Seconds()
	fmt.Fprintf(w, "\r\033[K%s%s  %d records  %d alerts  %.0f records/s", src.name, pct, st.Records, st.Alerts, rate)
}

func summary(w io.Writer, st engine.Stats, byRule map[string]int, took time.Duration) {
	rate := float64(st.Records) / took.Seconds()
	fmt.Fprintf(w, "%s read, %s found, %s in %s (%.0f records/s)\n",
		plural(st.Records, "record"), plural(st.Events, "CloudTrail event"), plural(st.Alerts, "alert"), took.Round(time.Millisecond), rate)
	reasons := make([]string, 0, len(st.Skipped))
	for r := range st.Skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "  skipped %d: %s\n", st.Skipped[r], r)
	}
	names := make([]string, 0, len(st.Matches))
	for n := range st.Matches {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  rule %q: %s matched, %s\n", n, plural(st.Matches[n], "record"), plural(byRule[n], "alert"))
	}
}
