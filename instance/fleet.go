package instance

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/store"
)

// openFleet connects the instance to its fleet when shared_state is set
// (nil otherwise). The node is named by its state file; the terms bucket
// keeps keys for the longest new_terms window of the rule set.
func openFleet(set *conf.Settings, st *store.Store, rs *conf.RuleSet, log *Logger) (*fleet.Client, error) {
	fc, err := engine.OpenFleet(set, rs, st, log)
	if err != nil {
		return nil, fmt.Errorf("property %w", err)
	}
	return fc, nil
}

// The fleet's metrics.
var (
	fleetClaims = prometheus.NewDesc("trailwatch_fleet_claims_total",
		"Questions the fleet answered: terms new to this node (kind=term), ids of alerts about to be sent (kind=alert).", []string{"kind"}, nil)
	fleetConflicts = prometheus.NewDesc("trailwatch_fleet_conflicts_total",
		"Answers that another node had it first: a term seen elsewhere within its window (no alert), an alert id another node sent (not sent again).", []string{"kind"}, nil)
	fleetFallbacks = prometheus.NewDesc("trailwatch_fleet_fallbacks_total",
		"Questions the fleet did not answer in time or while it was lost: decided on the local tier, alerts marked unconfirmed.", nil, nil)
	fleetReconnects = prometheus.NewDesc("trailwatch_fleet_reconnects_total", "Times the fleet came back after it was lost.", nil, nil)
	fleetOps        = prometheus.NewDesc("trailwatch_fleet_operations_total", "Key-value requests made to NATS.", nil, nil)
	fleetPublished  = prometheus.NewDesc("trailwatch_fleet_published_total",
		"Sightings and alert ids published after their chunk (refreshes of known terms, what was decided while the fleet was lost).", nil, nil)
	fleetBacklog        = prometheus.NewDesc("trailwatch_fleet_backlog", "Sightings and alert ids waiting to be published.", nil, nil)
	fleetBacklogDropped = prometheus.NewDesc("trailwatch_fleet_backlog_dropped_total", "Sightings and alert ids not kept: the backlog was full.", nil, nil)
	fleetUp             = prometheus.NewDesc("trailwatch_fleet_up", "1 when the fleet answers, 0 when chunks are judged on the local tier.", nil, nil)
)

func describeFleet(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{fleetClaims, fleetConflicts, fleetFallbacks, fleetReconnects, fleetOps, fleetPublished, fleetBacklog, fleetBacklogDropped, fleetUp} {
		ch <- d
	}
}

func (in *Instance) collectFleet(ch chan<- prometheus.Metric) {
	f := in.fleet
	if f == nil {
		return
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(fleetClaims, f.C.TermClaims.Load(), "term")
	counter(fleetClaims, f.C.AlertClaims.Load(), "alert")
	counter(fleetConflicts, f.C.TermConflicts.Load(), "term")
	counter(fleetConflicts, f.C.AlertConflicts.Load(), "alert")
	counter(fleetFallbacks, f.C.Fallbacks.Load())
	counter(fleetReconnects, f.C.Reconnects.Load())
	counter(fleetOps, f.C.Ops.Load())
	counter(fleetPublished, f.C.Published.Load())
	counter(fleetBacklogDropped, f.C.BacklogDropped.Load())
	ch <- prometheus.MustNewConstMetric(fleetBacklog, prometheus.GaugeValue, float64(f.BacklogLen()))
	up := 0.0
	if f.Ready() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(fleetUp, prometheus.GaugeValue, up)
}
