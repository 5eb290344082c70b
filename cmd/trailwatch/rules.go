package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
)

func cmdRules(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	geoip := fs.String("geoip-db", "", "MaxMind GeoIP2/GeoLite2 City database (fills source.geo.*)")
	asn := fs.String("asn-db", "", "MaxMind GeoLite2 ASN database (fills source.as.*)")
	var exceptions listFlag
	fs.Var(&exceptions, "exceptions", "exception file: a Kibana exception-list export (.ndjson) or trailwatch TOML (repeatable, or comma-separated)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: trailwatch rules [--exceptions FILE] [--geoip-db FILE] [--asn-db FILE] PATH...")
		fmt.Fprintln(stderr, "Lists each rule: name, rule_id, type, whether it runs (or why not), the exceptions that apply to it and the fields it reads.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		return usageError(stderr, fs, "rules", "no rule file or folder given")
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), fs.Args()...)
	var exc *conf.Exceptions
	var warnings conf.Errors
	if len(exceptions) > 0 {
		var xerr error
		exc, warnings, xerr = conf.LoadExceptionsFor(rs, exceptions...)
		err = errors.Join(err, xerr)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRULE_ID\tTYPE\tSTATUS\tEXCEPTIONS\tFIELDS")
	type key struct{ typ, status string }
	counts := map[key]int{}
	for _, r := range rs.Rules {
		status := "runs"
		if !r.Runs() {
			status = "skipped (" + r.Skip + ")"
		} else if need := missingEnrichment(r, *geoip != "", *asn != ""); need != "" {
			status = "runs (cannot fire without " + need + ")"
		}
		if r.ESQL != nil && r.Runs() {
			var other []string
			for _, ix := range r.ESQL.Indices() {
				if !strings.Contains(ix, "aws.cloudtrail") {
					other = append(other, ix)
				}
			}
			if len(other) > 0 {
				status += " (also reads " + strings.Join(other, ", ") + ": it fires only with their records)"
			}
			if r.ESQL.IsAggregating() {
				status += fmt.Sprintf(" (every %s over %s)", r.Interval, r.From)
			}
		}
		if t := r.ThresholdSpec; t != nil && r.Runs() {
			status += fmt.Sprintf(" (every %s over %s, by [%s], >= %d", r.Interval, r.From, strings.Join(t.Fields, ","), t.Value)
			for _, c := range t.Cardinality {
				status += fmt.Sprintf(", %d distinct %s", c.Value, c.Field)
			}
			status += ")"
		}
		if n := perNodeNote(r); n != "" {
			status += " (" + n + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.RuleID, r.Type, status, exceptionsColumn(exc, r), strings.Join(r.ReadsFields(), ","))
		short := "runs"
		if !r.Runs() {
			short = "skipped"
		}
		counts[key{r.Type, short}]++
	}
	tw.Flush()
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].status != keys[j].status {
			return keys[i].status > keys[j].status
		}
		return keys[i].typ < keys[j].typ
	})
	runs, skipped := 0, 0
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s %d", k.typ, k.status, counts[k]))
		if k.status == "runs" {
			runs += counts[k]
		} else {
			skipped += counts[k]
		}
	}
	fmt.Fprintf(stdout, "\n%d rules: %d runnable, %d skipped (%s)\n", len(rs.Rules), runs, skipped, strings.Join(parts, ", "))
	fmt.Fprintf(stdout, "fields: as Elastic's AWS integration (%s) indexes CloudTrail\n", cloudtrail.AWSPackage)
	for _, r := range rs.Rules {
		for _, n := range r.Notes {
			fmt.Fprintf(stdout, "note: %v\n", n)
		}
	}
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %v\n", w)
	}
	printExceptions(stdout, exc, rs)
	if err != nil {
		var errs []*conf.Error
		for _, e := range unwrapAll(err) {
			var es conf.Errors
			if errors.As(e, &es) {
				errs = append(errs, es...)
			} else {
				fmt.Fprintln(stderr, e)
			}
		}
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "%d errors in the rule set and its exceptions\n", len(errs))
		return 1
	}
	return 0
}

// unwrapAll lists the errors errors.Join put together.
func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// exceptionsColumn names the Kibana lists that apply to a rule and counts
// its local exceptions.
func exceptionsColumn(x *conf.Exceptions, r *conf.Rule) string {
	var parts []string
	for _, u := range x.ListsFor(r) {
		if u.List == nil {
			parts = append(parts, u.ListID+" (not loaded)")
		} else {
			parts = append(parts, u.ListID)
		}
	}
	if n := len(x.Local(r)); n > 0 {
		parts = append(parts, fmt.Sprintf("%d local", n))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// printExceptions writes, for each rule that has any, the exceptions that
// apply to it: each Kibana list, where it was loaded from and how it is
// attached, and each local exception with its place.
func printExceptions(w io.Writer, x *conf.Exceptions, rs *conf.RuleSet) {
	header := false
	for _, r := range rs.Rules {
		lists, local := x.ListsFor(r), x.Local(r)
		if len(lists)+len(local) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nexceptions that apply:")
			header = true
		}
		fmt.Fprintf(w, "  %s (%s):\n", r.Name, r.RuleID)
		for _, u := range lists {
			how := "named in its exceptions_list"
			if u.Via != "exceptions_list" {
				how = "attached at " + u.Via
			}
			if u.List == nil {
				fmt.Fprintf(w, "    list %q: %s; no exception file given holds it (in that namespace)\n", u.ListID, how)
				continue
			}
			name := ""
			if u.List.Name != "" {
				name = fmt.Sprintf(" (%s)", u.List.Name)
			}
			left := ""
			if u.List.Expired > 0 {
				left += fmt.Sprintf("; %s past their expire_time (they except only records dated before it, on the event clock)", plural(u.List.Expired, "of them"))
			}
			if u.List.OSOnly > 0 {
				left += fmt.Sprintf("; %s limited to an operating system (os_types, which no CloudTrail record has) left out", plural(u.List.OSOnly, "item"))
			}
			fmt.Fprintf(w, "    list %q%s: %s from %s:%d, %s%s\n", u.ListID, name, plural(u.List.Items, "item"), u.List.File, u.List.Line, how, left)
		}
		for _, e := range local {
			fmt.Fprintf(w, "    local %q (%s)\n", e.Name, e.Where)
		}
	}
}

// missingEnrichment names the database a rule needs that is not configured:
// without it the fields it reads are never present, and the rule cannot fire
// (or, for a negated test, fires on every record).
func missingEnrichment(r *conf.Rule, haveGeo, haveASN bool) string {
	var need []string
	geo, as := false, false
	for _, f := range r.ReadsFields() {
		geo = geo || strings.HasPrefix(f, "source.geo.")
		as = as || strings.HasPrefix(f, "source.as.")
	}
	if geo && !haveGeo {
		need = append(need, "--geoip-db")
	}
	if as && !haveASN {
		need = append(need, "--asn-db")
	}
	return strings.Join(need, " and ")
}
