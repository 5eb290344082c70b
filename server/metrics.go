package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailwatch/trailwatch/instance"
)

// collector reads an instance's counters at scrape time.
type collector struct {
	in                                          *instance.Instance
	records, malformed, retries, overflow       *prometheus.Desc
	matched, alerts, delivered, failures, depth *prometheus.Desc
	storeSize                                   *prometheus.Desc
}

func newCollector(in *instance.Instance) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("trailwatch_"+name, help, labels, nil)
	}
	return &collector{
		in:        in,
		records:   d("records_total", "Records received."),
		malformed: d("malformed_records_total", "Records that could not be read, skipped."),
		retries:   d("uncommitted_batches_total", "Batches whose state could not be committed (the sender retries)."),
		overflow:  d("alerts_dropped_total", "Alerts dropped because the outbox was full."),
		matched:   d("rule_matches_total", "Records matched, by rule.", "rule"),
		alerts:    d("rule_alerts_total", "Alerts made, by rule.", "rule"),
		delivered: d("sink_alerts_total", "Alerts taken by each sink.", "sink"),
		failures:  d("sink_failures_total", "Failed sends, by sink.", "sink"),
		depth:     d("outbox_alerts", "Alerts waiting in the outbox."),
		storeSize: d("state_file_bytes", "Size of the state file."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.malformed, c.retries, c.overflow, c.matched, c.alerts, c.delivered, c.failures, c.depth, c.storeSize} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.records, c.in.Records.Load())
	counter(c.malformed, c.in.Malformed.Load())
	counter(c.retries, c.in.Retries.Load())
	counter(c.overflow, c.in.Overflow.Load())
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
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(c.in.OutboxLen()))
	ch <- prometheus.MustNewConstMetric(c.storeSize, prometheus.GaugeValue, float64(c.in.StoreSize()))
}
