package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/store"
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

// batchSize is how many records the CLI commits at once: one state
// transaction per batch. They are read, parsed and evaluated pieceSize (or
// pieceBytes of text) at a time, so that only the records that match stay
// until their batch commits.
const (
	batchSize  = 4096
	pieceSize  = 256
	pieceBytes = 1 << 20
)

func cmdScan(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef engineFlags
	ef.register(fs, true)
	ef.registerShared(fs)
	quiet := fs.Bool("quiet", false, "no summary on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: trailwatch scan --rules PATH [--rules PATH] [--db FILE] FILE... ('-' reads stdin)")
		fmt.Fprintln(stderr, "Reads CloudTrail files (.json, .json.gz, NDJSON, {\"Records\":[...]} files), writes one alert a line to stdout.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(ef.rules) == 0 || fs.NArg() == 0 {
		return usageError(stderr, fs, "scan", lacking(len(ef.rules) == 0, "no --rules given"),
			lacking(fs.NArg() == 0, "no file given ('-' reads stdin)"))
	}
	eng, st, cleanup, code := ef.open(stderr, "scan", false)
	if code != 0 {
		return code
	}
	defer cleanup()
	out := bufio.NewWriterSize(stdout, 1<<16)
	byRule := map[string]int{}
	deliver := func(docs [][]byte, seqs []uint64) error {
		for _, d := range docs {
			out.Write(d)
			out.WriteByte('\n')
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("writing alerts: %w", err)
		}
		// Only alerts written out leave the outbox.
		return st.Ack(seqs)
	}
	// Alerts an earlier run committed but did not deliver go out first.
	pend, err := st.Pending(1 << 30)
	if err != nil {
		fmt.Fprintln(stderr, "trailwatch scan:", err)
		return 1
	}
	if len(pend) > 0 {
		docs, seqs := make([][]byte, len(pend)), make([]uint64, len(pend))
		for i, p := range pend {
			docs[i], seqs[i] = p.Alert, p.Seq
		}
		fmt.Fprintf(stderr, "trailwatch scan: delivering %s left in the outbox by an earlier run\n", plural(len(pend), "alert"))
		if err := deliver(docs, seqs); err != nil {
			fmt.Fprintln(stderr, "trailwatch scan:", err)
			return 1
		}
	}
	start := time.Now()
	var progress io.Writer
	if !*quiet && isTerminal(stderr) {
		progress = stderr
	}
	total, malformed, err := feed(eng, fs.Args(), stdin, progress, stderr, func(res engine.Result) error {
		for _, a := range res.Alerts {
			byRule[a.Rule]++
		}
		if st.OutboxLen() > len(res.Seqs) {
			// The commit wrote more than its alerts (a closed group's
			// final count, before the alert that opens it again): the
			// outbox, in its order.
			return deliverPending(st, deliver)
		}
		return deliver(res.Docs, res.Seqs)
	})
	var stopped *interrupted
	if errors.As(err, &stopped) {
		err = nil
	}
	if err == nil && stopped == nil {
		err = closeWindows(st, eng, ef.db == "", deliver)
	}
	if err != nil {
		fmt.Fprintln(stderr, "trailwatch scan:", err)
		return 1
	}
	if !*quiet {
		summary(stderr, total, byRule, time.Since(start))
	}
	if stopped != nil {
		fmt.Fprintln(stderr, "trailwatch scan:", stopped)
		return stopped.exitCode()
	}
	if total.EvalFailure != "" {
		fmt.Fprintf(stderr, "trailwatch scan: %d records skipped: a rule's evaluation failed on them (a defect in trailwatch; please report it with this message); the first: %s\n", total.Skipped[engine.SkipEvalFailed], total.EvalFailure)
	}
	if malformed > 0 || total.EvalFailure != "" {
		return 1
	}
	return 0
}

// closeWindows ends a scan's alert suppression groups and max_signals
// windows: a group that suppressed alerts sends its alert again with its
// final docs_count (same kibana.alert.uuid), as the agent's sweep does when
// a window closes. A temporary state closes them all (no later scan will
// add to them); a state file those whose window has passed. What the
// commits wrote beside their alerts (a closed group's final count) goes
// out too.
func closeWindows(st *store.Store, eng *engine.Engine, temporary bool, deliver func([][]byte, []uint64) error) error {
	now, ok := eng.ControlClock(time.Now()) // the event clock's, with --time-source event
	if temporary {
		now, ok = time.Unix(1<<40, 0), true // past every window
	}
	if ok {
		if _, err := st.Sweep(now, eng.Summarize); err != nil {
			return err
		}
	}
	return deliverPending(st, deliver)
}

// deliverPending writes out what the outbox holds, in its order.
func deliverPending(st *store.Store, deliver func([][]byte, []uint64) error) error {
	pend, err := st.Pending(1 << 30)
	if err != nil || len(pend) == 0 {
		return err
	}
	docs, seqs := make([][]byte, len(pend)), make([]uint64, len(pend))
	for i, p := range pend {
		docs[i], seqs[i] = p.Alert, p.Seq
	}
	return deliver(docs, seqs)
}

// feed reads every file in batches through the engine, reporting malformed
// input on stderr and going on. onResult sees each batch's result.
func feed(eng *engine.Engine, files []string, stdin io.Reader, progress, stderr io.Writer, onResult func(engine.Result) error) (engine.Stats, int, error) {
	// SIGINT or SIGTERM ends the reading after the batch in flight (it is
	// committed), so that the caller cleans up (a temporary state file was
	// left behind) and says where it stopped.
	stopping := watchSignals()
	defer stopping.stop()
	var total engine.Stats
	malformed := 0
	start, lastDraw := time.Now(), time.Time{}
	for _, name := range files {
		src, err := openSource(name, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			malformed++
			continue
		}
		for more := true; more; {
			b := eng.NewBatch()
			var rerr error
			for n := 0; n < batchSize; {
				stopping.reads.Add(1)
				stopping.reading.Store(true)
				recs, err := src.next(min(pieceSize, batchSize-n), pieceBytes)
				stopping.reading.Store(false)
				b.Add(recs)
				for _, r := range recs { // Err set by the reader, or by the engine for JSON text
					if r.Err != nil {
						malformed++
						fmt.Fprintf(stderr, "%s: malformed record: %v\n", r.Where, r.Err)
					}
				}
				n += len(recs)
				if rerr = err; err != nil || len(recs) == 0 {
					more = false
					break
				}
			}
			res, err := b.Commit()
			if err != nil {
				src.close()
				return total, malformed, err
			}
			total.Add(res.Stats)
			if onResult != nil {
				if err := onResult(res); err != nil {
					src.close()
					return total, malformed, err
				}
			}
			if progress != nil && time.Since(lastDraw) > 200*time.Millisecond {
				lastDraw = time.Now()
				drawProgress(progress, src, total, start)
			}
			if rerr != nil {
				fmt.Fprintf(stderr, "%v\n", rerr)
				malformed++
			}
			select {
			case s := <-stopping.asked:
				src.close()
				return total, malformed, &interrupted{s, src.name, src.line}
			default:
			}
		}
		src.close()
	}
	// Scheduled rules (threshold): the clock moves past the last record by
	// the longest window, so every run that covers a scanned record is made.
	res, err := eng.Drain()
	if err != nil {
		return total, malformed, err
	}
	total.Add(res.Stats)
	if onResult != nil {
		if err := onResult(res); err != nil {
			return total, malformed, err
		}
	}
	if progress != nil {
		fmt.Fprint(progress, "\r\033[K")
	}
	return total, malformed, nil
}

// signalWatch passes SIGINT and SIGTERM to feed, which stops after the
// batch in flight. A read that never returns (stdin a pipe whose writer
// stays open) would keep feed from ever seeing it: a second signal, or the
// first unanswered after stopGrace, ends the process as the signal would
// have without it.
type signalWatch struct {
	asked chan os.Signal
	done  chan struct{}
	sig   chan os.Signal
	// reading: feed waits on its input, in its reads-th read (a batch
	// being evaluated is never cut: the grace runs out only on one read
	// that lasts it whole).
	reading atomic.Bool
	reads   atomic.Uint64
}

const stopGrace = 3 * time.Second

func watchSignals() *signalWatch {
	w := &signalWatch{asked: make(chan os.Signal, 1), done: make(chan struct{}), sig: make(chan os.Signal, 2)}
	signal.Notify(w.sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		var s os.Signal
		select {
		case s = <-w.sig:
		case <-w.done:
			return
		}
		w.asked <- s
		for stuck, last := false, w.reads.Load(); !stuck; {
			select {
			case <-w.done:
				return
			case <-w.sig:
				stuck = true
			case <-time.After(stopGrace):
				n := w.reads.Load()
				stuck = w.reading.Load() && n == last
				last = n
			}
		}
		signal.Stop(w.sig)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Signal(s) // the signal's own action, now that no one catches it
		}
	}()
	return w
}

func (w *signalWatch) stop() {
	close(w.done)
	signal.Stop(w.sig)
}

// interrupted is feed's error when a signal stopped it.
type interrupted struct {
	sig  os.Signal
	file string
	line int
}

func (i *interrupted) Error() string {
	return fmt.Sprintf("interrupted (%v) in %s near line %d: what was read before is committed", i.sig, i.file, i.line)
}

// exitCode is the shell's status for a process a signal ended.
func (i *interrupted) exitCode() int {
	if i.sig == syscall.SIGTERM {
		return 143
	}
	return 130
}

func drawProgress(w io.Writer, src *source, st engine.Stats, start time.Time) {
	pct := ""
	if src.size > 0 {
		pct = fmt.Sprintf(" %3.0f%%", 100*float64(src.counter.n)/float64(src.size))
	}
	rate := float64(st.Records) / time.Since(start).Seconds()
	fmt.Fprintf(w, "\r\033[K%s%s  %d records  %d alerts  %.0f records/s", src.name, pct, st.Records, st.Alerts, rate)
}

// skipped writes the records passed over, by reason.
func skipped(w io.Writer, st engine.Stats) {
	reasons := make([]string, 0, len(st.Skipped))
	for r := range st.Skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "  skipped %d: %s\n", st.Skipped[r], r)
	}
}

func summary(w io.Writer, st engine.Stats, byRule map[string]int, took time.Duration) {
	rate := float64(st.Records) / took.Seconds()
	fmt.Fprintf(w, "%s read, %s found, %s in %s (%.0f records/s)\n",
		plural(st.Records, "record"), plural(st.Events, "CloudTrail event"), plural(st.Alerts, "alert"), took.Round(time.Millisecond), rate)
	skipped(w, st)
	if st.Duplicates > 0 {
		fmt.Fprintf(w, "  %s not written again: made already, by an earlier run or batch, within 24 hours\n", plural(st.Duplicates, "alert"))
	}
	if st.Overflow > 0 {
		fmt.Fprintf(w, "  dropped %d alerts: the outbox was full\n", st.Overflow)
	}
	if st.Suppressed > 0 {
		fmt.Fprintf(w, "  suppressed %d alerts into their groups (alert_suppression)\n", st.Suppressed)
	}
	if st.FleetDuplicates > 0 {
		fmt.Fprintf(w, "  %s already sent by another node of the fleet\n", plural(st.FleetDuplicates, "alert"))
	}
	if st.Unconfirmed > 0 {
		fmt.Fprintf(w, "  %s sent unconfirmed: the fleet did not answer (trailwatch.fleet.unconfirmed)\n", plural(st.Unconfirmed, "alert"))
	}
	if st.Runs > 0 {
		fmt.Fprintf(w, "  %s of scheduled rules (threshold, aggregating ES|QL)\n", plural(st.Runs, "run"))
	}
	if st.WindowFull > 0 {
		fmt.Fprintf(w, "  %d counts of scheduled rules not kept: a rule's window state was full (%d entries)\n", st.WindowFull, engine.WindowCap)
	}
	for _, id := range st.StateDropped {
		fmt.Fprintf(w, "  rule %q: its definition changed since its state in the file was written: that state was dropped\n", id)
	}
	if st.Late > 0 {
		fmt.Fprintf(w, "  %d counts of scheduled rules not kept: older than every run to come\n", st.Late)
	}
	if st.Replayed > 0 {
		fmt.Fprintf(w, "  %s counted before by the aggregating ES|QL rules (the same eventID), not counted again\n", plural(st.Replayed, "record"))
	}
	if st.IDsForgotten > 0 {
		fmt.Fprintf(w, "  %d record ids forgotten past the %d the scheduled rules remember (given again, those records would count again)\n", st.IDsForgotten, engine.MaxRecordIDs)
	}
	for rule, n := range st.Excepted {
		fmt.Fprintf(w, "  rule %q: %s excepted\n", rule, plural(n, "record"))
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
