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
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: trailwatch rules [--geoip-db FILE] [--asn-db FILE] PATH...")
		fmt.Fprintln(stderr, "Lists each rule: name, rule_id, type, whether it runs (or why not) and the fields it reads.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), fs.Args()...)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRULE_ID\tTYPE\tSTATUS\tFIELDS")
	type key struct{ typ, status string }
	counts := map[key]int{}
	for _, r := range rs.Rules {
		status := "runs"
		if !r.Runs() {
			status = "skipped (" + r.Skip + ")"
		} else if need := missingEnrichment(r, *geoip != "", *asn != ""); need != "" {
			status = "runs (cannot fire without " + need + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.RuleID, r.Type, status, strings.Join(r.ReadsFields(), ","))
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
	if err != nil {
		var errs conf.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e)
			}
			fmt.Fprintf(stderr, "%d errors in the rule set\n", len(errs))
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	return 0
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
