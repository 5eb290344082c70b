package instance

import (
	"maps"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// collector reads an instance's counters at scrape time.
type collector struct {
	in                                          *Instance
	records, malformed, retries, overflow       *prometheus.Desc
	refused                                     *prometheus.Desc
	matched, alerts, delivered, failures, depth *prometheus.Desc
	storeSize, suppressed, capped, excepted     *prometheus.Desc
	skipped, evalSeconds, evalSamples           *prometheus.Desc
	runs, windowFull, windowGroups              *prometheus.Desc
	replayed, idsForgotten, late                *prometheus.Desc
}

// NewCollector exposes an instance's counters to Prometheus.
func NewCollector(in *Instance) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("trailwatch_"+name, help, labels, nil)
	}
	return &collector{
		in:           in,
		records:      d("records_total", "Records received."),
		malformed:    d("malformed_records_total", "Records that could not be read, skipped."),
		retries:      d("uncommitted_batches_total", "Batches whose state could not be committed (the sender retries)."),
		overflow:     d("alerts_dropped_total", "Alerts dropped because the outbox was full."),
		refused:      d("batches_refused_total", "Batches refused, nothing of them written, because their alerts would not fit in the outbox (the sender retries)."),
		matched:      d("rule_matches_total", "Records matched, by rule.", "rule"),
		alerts:       d("rule_alerts_total", "Alerts made, by rule.", "rule"),
		delivered:    d("sink_alerts_total", "Alerts taken by each sink.", "sink"),
		failures:     d("sink_failures_total", "Failed sends, by sink.", "sink"),
		depth:        d("outbox_alerts", "Alerts waiting in the outbox."),
		storeSize:    d("state_file_bytes", "Size of the state file."),
		suppressed:   d("alerts_suppressed_total", "Alerts counted into a suppression group."),
		capped:       d("alerts_capped_total", "Alerts over their rule's max_signals in its interval."),
		excepted:     d("rule_exceptions_total", "Records that matched a rule but an exception, by rule.", "rule"),
		skipped:      d("records_skipped_total", "Records passed over, by reason (malformed, not CloudTrail).", "reason"),
		evalSeconds:  d("rule_eval_seconds_total", "Time spent evaluating each rule, on sampled records (one in 64).", "rule"),
		evalSamples:  d("rule_eval_samples_total", "Sampled evaluations of each rule.", "rule"),
		runs:         d("rule_runs_total", "Scheduled runs made (threshold and aggregating ES|QL rules), by rule.", "rule"),
		windowFull:   d("window_counts_dropped_total", "Counts of scheduled rules not kept: the rule's window state was full."),
		windowGroups: d("rule_window_groups", "Groups a scheduled rule holds in its window state, by rule_id.", "rule_id"),
		late:         d("window_counts_late_total", "Counts of scheduled rules not kept: older than every run to come."),
		replayed:     d("records_replayed_total", "Records the scheduled rules (threshold, aggregating ES|QL) had counted before (the same eventID), not counted again."),
		idsForgotten: d("record_ids_forgotten_total", "Record ids the aggregating ES|QL rules forgot at their bound (given again, those records would count again)."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.malformed, c.retries, c.overflow, c.refused, c.matched, c.alerts, c.delivered, c.failures,
		c.depth, c.storeSize, c.suppressed, c.capped, c.excepted, c.skipped, c.evalSeconds, c.evalSamples, c.runs, c.windowFull, c.windowGroups, c.replayed, c.idsForgotten, c.late} {
		ch <- d
	}
	describeFleet(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	// A label that is not UTF-8 would make the registry refuse the scrape
	// (and panic in MustNewConstMetric): its bad bytes are replaced.
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		for i, l := range labels {
			labels[i] = strings.ToValidUTF8(l, "\uFFFD")
		}
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		metric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.records, c.in.Records.Load())
	counter(c.malformed, c.in.Malformed.Load())
	counter(c.retries, c.in.Retries.Load())
	counter(c.overflow, c.in.Overflow.Load())
	counter(c.refused, c.in.Refused.Load())
	matches, alerts := c.in.RuleCounts()
	for rule, n := range matches {
		counter(c.matched, n, rule)
	}
	for rule, n := range alerts {
		counter(c.alerts, n, rule)
	}
	delivered, failures := c.in.SinkCounts()
	for s, n := range delivered {
		counter(c.delivered, n, s)
	}
	for s, n := range failures {
		counter(c.failures, n, s)
	}
	counter(c.suppressed, c.in.Suppressed.Load())
	counter(c.capped, c.in.Capped.Load())
	// Copied under the lock and sent after it: the lock is the batches'.
	c.in.mu.Lock()
	excepted, skipped, runs := maps.Clone(c.in.excepted), maps.Clone(c.in.skipped), maps.Clone(c.in.runs)
	c.in.mu.Unlock()
	for rule, n := range excepted {
		counter(c.excepted, n, rule)
	}
	for reason, n := range skipped {
		counter(c.skipped, n, reason)
	}
	for rule, n := range runs {
		counter(c.runs, n, rule)
	}
	counter(c.windowFull, c.in.WindowFull.Load())
	counter(c.late, c.in.Late.Load())
	counter(c.replayed, c.in.Replayed.Load())
	counter(c.idsForgotten, c.in.IDsForgotten.Load())
	if ws, err := c.in.st.WindowStats(); err == nil {
		for _, w := range ws {
			metric(c.windowGroups, prometheus.GaugeValue, float64(w.Groups), w.Rule)
		}
	}
	for rule, v := range c.in.eng.Load().EvalTime() {
		metric(c.evalSeconds, prometheus.CounterValue, float64(v[1])/1e9, rule)
		counter(c.evalSamples, v[0], rule)
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(c.in.OutboxLen()))
	ch <- prometheus.MustNewConstMetric(c.storeSize, prometheus.GaugeValue, float64(c.in.StoreSize()))
	c.in.collectFleet(ch)
}
