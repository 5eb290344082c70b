package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/store"
)

// stderrLog writes the fleet client's messages on stderr.
type stderrLog struct {
	w   io.Writer
	cmd string
}

func (l stderrLog) Infof(f string, a ...any) {
	fmt.Fprintf(l.w, "trailwatch %s: "+f+"\n", append([]any{l.cmd}, a...)...)
}
func (l stderrLog) Warnf(f string, a ...any) { l.Infof(f, a...) }

// openFleet joins the fleet given by --shared-state (nil without it); its
// settings are checked as the plugin's properties are, and named as flags.
func (f *engineFlags) openFleet(st *store.Store, rs *conf.RuleSet, stderr io.Writer, cmd string) (*fleet.Client, error) {
	if f.shared == nil || *f.shared["shared_state"] == "" {
		return nil, nil
	}
	set, err := conf.ParseSettings(func(k string) string {
		switch {
		case f.shared[k] != nil:
			return *f.shared[k]
		case k == "rules":
			return "given"
		case k == "alert_stdout":
			return "on"
		}
		return ""
	})
	if err != nil {
		return nil, flagNames(err)
	}
	fc, err := engine.OpenFleet(set, rs, st, stderrLog{stderr, cmd})
	if err != nil {
		return nil, flagNames(err)
	}
	return fc, nil
}

// flagNames names settings as the command line's flags.
func flagNames(err error) error {
	msg := strings.ReplaceAll(err.Error(), "property ", "")
	for _, p := range conf.Properties {
		if strings.HasPrefix(p.Name, "shared_state") {
			msg = strings.ReplaceAll(msg, p.Name+" ", "--"+strings.ReplaceAll(p.Name, "_", "-")+" ")
		}
	}
	return fmt.Errorf("%s", msg)
}

// perNodeNote is what `trailwatch rules` says of a rule whose state stays
// on each node of a fleet: how its records must be routed.
func perNodeNote(r *conf.Rule) string {
	fields, ok := engine.PerNode(r)
	if !ok || !r.Runs() {
		return ""
	}
	if len(fields) == 0 {
		return "per-node state: in a fleet, all its records to one node"
	}
	return "per-node state: in a fleet, route by " + strings.Join(fields, " or ")
}
