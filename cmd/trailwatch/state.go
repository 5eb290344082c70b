package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/store"
)

// engineFlags are the settings scan and backfill share with the plugin's
// properties (same names, dashes for underscores).
type engineFlags struct {
	rules          listFlag
	exceptions     listFlag
	db             string
	timeSource     string
	learningPeriod string
	noSync         bool
	buildingBlocks bool
	geoipDB        string
	asnDB          string
	// shared is the fleet's settings (--shared-state and the rest); only
	// scan takes them.
	shared map[string]*string
}

func (f *engineFlags) register(fs *flag.FlagSet, withLearning bool) {
	fs.Var(&f.rules, "rules", "rule file or folder (repeatable, or comma-separated)")
	fs.Var(&f.exceptions, "exceptions", "exception file: a Kibana exception-list export (.ndjson) or trailwatch TOML (repeatable, or comma-separated)")
	fs.StringVar(&f.db, "db", "", "new_terms history and alert outbox (bbolt file, created 0600); default: a fresh temporary one")
	fs.StringVar(&f.timeSource, "time-source", "ingested", "clock for new_terms windows: ingested (when trailwatch reads the record) or event (CloudTrail's eventTime, for replays)")
	if withLearning {
		fs.StringVar(&f.learningPeriod, "learning-period", "", "record new terms without alerting for this long after the history's first term (e.g. 24h, 7d)")
	}
	fs.StringVar(&f.geoipDB, "geoip-db", "", "MaxMind GeoIP2/GeoLite2 City database (fills source.geo.*)")
	fs.StringVar(&f.asnDB, "asn-db", "", "MaxMind GeoLite2 ASN database (fills source.as.*)")
	fs.BoolVar(&f.noSync, "no-sync", false, "skip fsync at each batch commit (faster; a power loss can lose the last batches)")
	fs.BoolVar(&f.buildingBlocks, "building-blocks", false, "write an EQL sequence's building-block alerts (one per event) beside its shell alert")
}

// registerShared adds the fleet's flags (the plugin's shared_state
// properties, dashes for underscores).
func (f *engineFlags) registerShared(fs *flag.FlagSet) {
	f.shared = map[string]*string{}
	for _, p := range conf.Properties {
		if strings.HasPrefix(p.Name, "shared_state") {
			f.shared[p.Name] = fs.String(strings.ReplaceAll(p.Name, "_", "-"), p.Default, p.Help)
		}
	}
}

// open loads the rules, opens the state and builds the engine. The returned
// cleanup closes (and, for a temporary state, removes) the file.
func (f *engineFlags) open(stderr io.Writer, cmd string, backfill bool) (*engine.Engine, *store.Store, func(), int) {
	fail := func(format string, args ...any) (*engine.Engine, *store.Store, func(), int) {
		fmt.Fprintf(stderr, "trailwatch %s: "+format+"\n", append([]any{cmd}, args...)...)
		return nil, nil, nil, 2
	}
	ts, err := engine.ParseTimeSource(f.timeSource)
	if err != nil {
		return fail("--%s", strings.ReplaceAll(err.Error(), "time_source", "time-source"))
	}
	if backfill {
		ts = engine.EventTime
	}
	var learning time.Duration
	if f.learningPeriod != "" {
		if learning, err = matcher.ParseDuration(f.learningPeriod); err != nil || learning <= 0 {
			return fail("--learning-period %q: expected a duration such as 24h or 7d", f.learningPeriod)
		}
	}
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), f.rules...)
	if err != nil {
		return fail("the rule set has errors; fix them or remove the rules:\n%v", err)
	}
	var exc *conf.Exceptions
	if len(f.exceptions) > 0 {
		var warnings conf.Errors
		exc, warnings, err = conf.LoadExceptionsFor(rs, f.exceptions...)
		for _, w := range warnings {
			fmt.Fprintf(stderr, "trailwatch %s: warning: %v\n", cmd, w)
		}
		if err != nil {
			return fail("the exceptions have errors:\n%v", err)
		}
	}
	geo, err := enrich.Open(f.geoipDB, f.asnDB)
	if err != nil {
		return fail("%v", err)
	}
	var enr cloudtrail.Enricher
	if geo != nil {
		enr = geo
	}
	path, temp := f.db, false
	if path == "" {
		tmp, err := os.CreateTemp("", "trailwatch-*.db")
		if err != nil {
			return fail("temporary state: %v", err)
		}
		tmp.Close()
		os.Remove(tmp.Name()) // bbolt creates it with its own header
		path, temp = tmp.Name(), true
	}
	st, err := store.Open(path, store.Options{NoSync: f.noSync || temp})
	if err != nil {
		return fail("%v", err)
	}
	cleanup := func() {
		st.Close()
		if geo != nil {
			geo.Close()
		}
		if temp {
			os.Remove(path)
		}
	}
	fc, err := f.openFleet(st, rs, stderr, cmd)
	if err != nil {
		cleanup()
		return fail("%v", err)
	}
	if fc != nil {
		closeState := cleanup
		cleanup = func() { fc.Close(); closeState() }
	}
	eng, err := engine.New(rs, engine.Options{State: st, TimeSource: ts, Learning: learning, Backfill: backfill, Enricher: enr, NoCaps: true, Exceptions: exc, BuildingBlocks: f.buildingBlocks, Fleet: fc})
	if err != nil {
		cleanup()
		return fail("%v", err)
	}
	return eng, st, cleanup, 0
}

// flagSet tells whether the command line gave the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
