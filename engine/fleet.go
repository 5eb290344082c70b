package engine

import (
	"slices"
	"time"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/store"
)

// A fleet of nodes shares one new_terms history and one set of alert ids
// (package fleet, on NATS JetStream key-value buckets); the state file
// stays the local tier. Inside a batch's commit (so that two batches of one
// node never ask about the same term at once):
//
//   - a term the local tier knows within the shortest window of the rules
//     that read it is answered locally; its refreshed sighting (written at
//     most once per 1/10080 of the window, as the local tier writes it) is
//     published after the commit, in the background;
//   - a term new to the node is claimed in the fleet, the batch's claims
//     at once under one deadline: the sighting the fleet held before this
//     one becomes the term's last sighting, so that exactly one node finds
//     it new and alerts;
//   - the ids of the other alerts (query, EQL, threshold: a new_terms
//     alert's id is decided with its term) are claimed before they are
//     written: the node that creates an id's key sends the alert, the
//     others drop it (Stats.FleetDuplicates).
//
// A question the fleet does not answer in time is decided locally, and the
// alert that depended on it is marked unconfirmed.

// fleetCommit is a batch's fleet decisions.
type fleetCommit struct {
	cl          *fleet.Claims
	unconfirmed map[int]bool     // terms judged locally: the fleet did not answer
	publish     []fleet.Sighting // refreshed sightings to publish after the commit
	asked       map[int]int      // alerts asked about with the terms: their claims
}

// setFleet attaches the fleet (nil: none).
func (e *Engine) setFleet(f *fleet.Client) {
	if f == nil {
		return
	}
	e.fleet = f
	e.histIdx = make(map[string]int, len(e.histories))
	for i, h := range e.histories {
		e.histIdx[h.name] = i
	}
}

// fleetTerms asks the fleet about the batch's terms that are new to this
// node and folds its answers into the verdicts. The ids of the alerts made
// already (query and single-event EQL rules) are asked in the same round.
func (e *Engine) fleetTerms(v *store.Verdicts, terms []store.Term, alerts []*Alert) *fleetCommit {
	fc := &fleetCommit{cl: e.fleet.Begin()}
	for i, a := range alerts {
		if claimsID(v, a) {
			if fc.asked == nil {
				fc.asked = map[int]int{}
			}
			fc.asked[i] = fc.cl.Alert(a.UUID)
		}
	}
	type ask struct{ term, claim int }
	var asks []ask
	for i := range terms {
		t := &terms[i]
		hi, ok := e.histIdx[t.History]
		if !ok {
			continue
		}
		h := &e.histories[hi]
		last, known := v.Local(i)
		if store.IsNew(last, known, t.Seen, h.shortest) {
			asks = append(asks, ask{i, fc.cl.Term(h.identity, t.Key, t.Seen, last, known, h.shortest)})
			continue
		}
		if known && t.Seen.Sub(last) >= h.refresh {
			fc.publish = append(fc.publish, fleet.Sighting{Space: h.identity, Key: t.Key, Seen: t.Seen})
		}
	}
	fc.cl.Wait()
	for _, a := range asks {
		prior, has, ok := fc.cl.Prior(a.claim)
		switch {
		case !ok:
			if fc.unconfirmed == nil {
				fc.unconfirmed = map[int]bool{}
			}
			fc.unconfirmed[a.term] = true
		case has:
			v.Merge(a.term, prior)
		}
	}
	return fc
}

// fleetAlerts claims the ids of the alerts about to be written that were
// not asked with the terms (sequences' and scheduled runs'): an id another
// node holds is dropped; one the fleet did not answer goes out
// unconfirmed.
func (e *Engine) fleetAlerts(fc *fleetCommit, v *store.Verdicts, alerts []*Alert, drop []bool, st *Stats) {
	type ask struct{ at, claim int }
	var asks []ask
	for i, a := range alerts {
		if c, ok := fc.asked[i]; ok {
			asks = append(asks, ask{i, c})
		} else if !drop[i] && claimsID(v, a) {
			asks = append(asks, ask{i, fc.cl.Alert(a.UUID)})
		}
	}
	fc.cl.Wait()
	for _, q := range asks {
		switch fc.cl.AlertOutcome(q.claim) {
		case fleet.Lost:
			drop[q.at] = true
			st.FleetDuplicates++
		case fleet.Fallback:
			alerts[q.at].unconfirmed = true
		}
	}
}

// claimsID tells whether an alert's id is claimed in the fleet: not a
// new_terms alert's (decided with its term), not an id the local tier holds
// (a retried batch: it drops it itself).
func claimsID(v *store.Verdicts, a *Alert) bool {
	return a != nil && a.r != nil && a.r.Type != "new_terms" && !v.AlertSeen(a.UUID)
}

// fleetMark is the part of an unconfirmed alert's document that says so.
var fleetMark = newDocPart(map[string]any{"trailwatch.fleet.unconfirmed": true})

// noPart is an empty part.
var noPart = &docPart{}

// fleetPart is the alert's fleet mark, when it has one.
func (a *Alert) fleetPart() *docPart {
	if a.unconfirmed {
		return fleetMark
	}
	return noPart
}

// PerNode tells whether a rule keeps state that is not shared in a fleet,
// and the fields whose equal values must reach one node for its verdicts
// to be right: a threshold rule's group fields (its counts), an EQL
// sequence's join keys (its sequences in flight), alert suppression's
// group_by (its open groups), an aggregating ES|QL rule's (none: all of
// its records). An empty list with perNode true means all of
// the rule's records must reach one node (no group fields, no join key).
// max_signals caps count per node whatever the rule.
func PerNode(r *conf.Rule) (fields []string, perNode bool) {
	add := func(fs ...string) {
		for _, f := range fs {
			if !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
	}
	switch {
	case r.ThresholdSpec != nil:
		perNode = true
		add(r.ThresholdSpec.Fields...)
	case r.Sequence != nil:
		perNode = true
		for _, st := range r.Sequence.Stages {
			for _, k := range st.Keys {
				add(k.Name)
			}
		}
	case r.ESQL != nil && r.ESQL.IsAggregating():
		// Its aggregates: the BY groups are computed columns as often as
		// fields, so every record it reads must reach one node.
		perNode = true
	}
	if s := r.AlertSuppression; s != nil && len(s.GroupBy) > 0 {
		perNode = true
		add(s.GroupBy...)
	}
	if fields == nil {
		fields = []string{}
	}
	return fields, perNode
}

// OpenFleet joins the fleet that set's shared_state names (nil when it
// names none), as the node st's state file names: the terms bucket keeps
// keys for the longest new_terms window of the rule set. Errors name the
// settings (shared_state_ca, ...) without the word property.
func OpenFleet(set *conf.Settings, rs *conf.RuleSet, st *store.Store, log fleet.Logger) (*fleet.Client, error) {
	if set.SharedState == "" {
		return nil, nil
	}
	id, err := st.NodeID()
	if err != nil {
		return nil, err
	}
	return fleet.Open(fleet.Options{URL: set.SharedState, Prefix: set.SharedStatePrefix, Creds: set.SharedStateCreds,
		CA: set.SharedStateCA, Cert: set.SharedStateCert, Key: set.SharedStateKey, Timeout: set.SharedStateTimeout,
		Node: id, TermsTTL: TermsWindow(rs), Log: log})
}

// TermsWindow is the longest new_terms window of a rule set: how long the
// fleet's terms bucket keeps a key (and a day more).
func TermsWindow(rs *conf.RuleSet) time.Duration {
	var w time.Duration
	for _, r := range rs.Runnable() {
		if r.NewTerms != nil {
			w = max(w, r.NewTerms.Window)
		}
	}
	return w
}
