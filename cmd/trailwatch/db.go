package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/internal/logsafe"
	"github.com/trailwatch/trailwatch/store"
)

// cmdBackfill records the new_terms history of historical CloudTrail files
// without alerting, so that a fresh node does not alert on every term.
func cmdBackfill(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef engineFlags
	ef.register(fs, false)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: trailwatch backfill --rules PATH --db FILE FILE...")
		fmt.Fprintln(stderr, "Records the new_terms history of CloudTrail files (S3 exports, .json.gz included) at their eventTime, without alerting.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(ef.rules) == 0 || ef.db == "" || fs.NArg() == 0 {
		return usageError(stderr, fs, "backfill", lacking(len(ef.rules) == 0, "no --rules given"),
			lacking(ef.db == "", "no --db given (the state file to record the history in)"), lacking(fs.NArg() == 0, "no file given ('-' reads stdin)"))
	}
	// History is recorded at each record's eventTime: another clock
	// asked for is refused, not passed over.
	if ef.timeSource != "event" && flagSet(fs, "time-source") {
		fmt.Fprintf(stderr, "trailwatch backfill: --time-source %q: backfill records history on the event clock only (each record at its eventTime); leave the flag out\n", ef.timeSource)
		return 2
	}
	eng, _, cleanup, code := ef.open(stderr, "backfill", true)
	if code != 0 {
		return code
	}
	defer cleanup()
	start := time.Now()
	total, malformed, err := feed(eng, fs.Args(), stdin, nil, stderr, nil)
	var stopped *interrupted
	if errors.As(err, &stopped) {
		err = nil
	}
	if err != nil {
		fmt.Fprintln(stderr, "trailwatch backfill:", err)
		return 1
	}
	fmt.Fprintf(stderr, "%s read, %s found, %s recorded in %s\n", plural(total.Records, "record"),
		plural(total.Events, "CloudTrail event"), plural(matches(total), "rule match"), time.Since(start).Round(time.Millisecond))
	skipped(stderr, total)
	if stopped != nil {
		fmt.Fprintln(stderr, "trailwatch backfill:", stopped)
		return stopped.exitCode()
	}
	if malformed > 0 {
		return 1
	}
	return 0
}

func matches(st engine.Stats) int {
	n := 0
	for _, c := range st.Matches {
		n += c
	}
	return n
}

func cmdDB(args []string, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, `Usage: trailwatch db stats|prune|export|import --db FILE [options]
  stats                      terms per rule (oldest and newest), outbox, file size
  prune [--rules PATH]       drop terms older than their rule's window (rules given: their current windows,
                             and the windows, runs and sequences of rules no longer in the set)
  export [--out FILE]        every term as NDJSON (default stdout)
  import [--in FILE]         merge an export (default stdin); a term keeps its later sighting`)
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	sub := args[0]
	fs := flag.NewFlagSet("db "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "the state file")
	var rules listFlag
	fs.Var(&rules, "rules", "rule file or folder (prune: current windows)")
	outPath := fs.String("out", "", "export to this file (created 0600) instead of stdout")
	inPath := fs.String("in", "", "import from this file instead of stdin")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *db == "" {
		return usage()
	}
	if sub != "import" {
		dbInfo, err := os.Stat(*db)
		if err != nil {
			fmt.Fprintf(stderr, "trailwatch db %s: %v\n", sub, err)
			return 1
		}
		// An --out that is the state file (a typo, a link) was truncated
		// before it was read: the whole history lost.
		if outInfo, err := os.Stat(*outPath); sub == "export" && err == nil && os.SameFile(dbInfo, outInfo) {
			fmt.Fprintf(stderr, "trailwatch db export: --out %s is the state file itself: the export would overwrite the history it reads\n", *outPath)
			return 2
		}
	}
	st, err := store.Open(*db, store.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "trailwatch db %s: %v\n", sub, err)
		if sub == "export" && errors.Is(err, store.ErrDamaged) {
			salvage(*db, *outPath, stdout, stderr)
		}
		return 1
	}
	defer st.Close()
	switch sub {
	case "stats":
		s, err := st.Stats()
		if err != nil {
			fmt.Fprintln(stderr, "trailwatch db stats:", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HISTORY\tTERMS\tWINDOW\tOLDEST\tNEWEST") // named by its lowest rule_id
		for _, r := range s.Rules {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.RuleID, r.Terms, r.Window, stamp(r.Oldest), stamp(r.Newest))
		}
		tw.Flush()
		ws, err := st.WindowStats()
		if err != nil {
			fmt.Fprintln(stderr, "trailwatch db stats:", err)
			return 1
		}
		if len(ws) > 0 {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nSCHEDULED RULE\tGROUPS\tBUCKETS\tENTRIES\tSIGNALS\tLAST RUN")
			for _, w := range ws {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", w.Rule, w.Groups, w.Buckets, w.Entries, w.Signals, stamp(w.LastRun))
			}
			tw.Flush()
		}
		fmt.Fprintf(stdout, "\n%s: %d bytes, %s in %s, %s in the outbox, %d dropped on a full outbox, %s remembered as counted by aggregating rules\n",
			s.Path, s.FileSize, plural(s.Terms, "term"), plural(len(s.Rules), "history"), plural(s.Outbox, "alert"), s.Overflowed, plural(s.RecordIDs, "record"))
	case "prune":
		windows := map[string]time.Duration{}
		var keep map[string]bool // the rule ids of the rule set given
		if len(rules) > 0 {
			rs, err := conf.LoadRules(cloudtrail.NewSchema(), rules...)
			if err != nil {
				fmt.Fprintf(stderr, "trailwatch db prune: the rule set has errors:\n%v\n", err)
				return 2
			}
			keep = map[string]bool{}
			// Every rule of the set, the disabled ones too: a rule
			// switched off for a while is not removed (its state was
			// dropped as if it were).
			for _, r := range rs.Rules {
				keep[r.RuleID] = true
				if r.NewTerms != nil {
					windows[r.RuleID] = r.NewTerms.Window
				}
			}
		}
		now := time.Now()
		if evNow := st.Now(); evNow.After(now) {
			now = evNow
		}
		res, err := st.Prune(now, windows)
		if err != nil {
			fmt.Fprintln(stderr, "trailwatch db prune:", err)
			return 1
		}
		fmt.Fprintf(stdout, "pruned %s and %s no longer in the rule set\n", plural(res.Terms, "term"), plural(res.Rules, "rule"))
		if keep != nil {
			// The rule set is known: the scheduled and sequence state of
			// rules no longer in it goes too.
			dropped, err := st.DropRuleState(keep)
			if err != nil {
				fmt.Fprintln(stderr, "trailwatch db prune:", err)
				return 1
			}
			fmt.Fprintf(stdout, "dropped the windows, runs and sequences of %s no longer in the rule set%s\n", plural(len(dropped), "rule"), listed(dropped))
		}
	case "export":
		w, closeOut, err := exportOut(*outPath, stdout)
		if err != nil {
			fmt.Fprintln(stderr, "trailwatch db export:", err)
			return 1
		}
		defer closeOut()
		n, err := st.Export(w)
		if err != nil {
			fmt.Fprintln(stderr, "trailwatch db export:", err)
			return 1
		}
		fmt.Fprintf(stderr, "exported %s\n", plural(n, "term"))
	case "import":
		var r io.Reader = os.Stdin
		name := "(stdin)"
		if *inPath != "" {
			f, err := os.Open(*inPath)
			if err != nil {
				fmt.Fprintln(stderr, "trailwatch db import:", err)
				return 1
			}
			defer f.Close()
			r, name = f, *inPath
		}
		n, err := st.Import(r, name)
		if err != nil {
			fmt.Fprintf(stderr, "trailwatch db import: %v (%s imported before it)\n", err, plural(n, "term"))
			return 1
		}
		fmt.Fprintf(stderr, "imported %s\n", plural(n, "term"))
	default:
		return usage()
	}
	return 0
}

// exportOut is where an export goes: the --out file (created 0600) or
// stdout.
func exportOut(path string, stdout io.Writer) (io.Writer, func(), error) {
	if path == "" {
		return stdout, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// salvage exports what can be read of a state file too damaged to open.
func salvage(db, outPath string, stdout, stderr io.Writer) {
	w, closeOut, err := exportOut(outPath, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "trailwatch db export:", err)
		return
	}
	defer closeOut()
	fmt.Fprintln(stderr, "trailwatch db export: salvaging what can be read, page by page")
	res, err := store.Salvage(db, w)
	for i, p := range res.Problems {
		if i == 10 {
			fmt.Fprintf(stderr, "  ... and %d more\n", len(res.Problems)-i)
			break
		}
		fmt.Fprintf(stderr, "  could not read: %s\n", p)
	}
	if err != nil {
		fmt.Fprintln(stderr, "trailwatch db export:", err)
	}
	fmt.Fprintf(stderr, "salvaged %s; `trailwatch db import` takes them to a new file\n", plural(res.Terms, "term"))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// listed is ": a, b, c" for a short list of names (quoted as logs quote
// them), "" for none, the first ten and a count past that.
func listed(names []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(": ")
	for i, n := range names {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(names)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(logsafe.Name(n))
	}
	return b.String()
}
