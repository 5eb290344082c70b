package instance

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailwatch/trailwatch/engine"
)

// TestMetricsLabelsUTF8AndLockNotHeld: a label that is not UTF-8 (a rule
// name a JSON reader kept) made the scrape fail, and the collector's
// panic left the batches' lock held, so every later batch waited for
// ever. Labels are made UTF-8, and the collector sends with the lock let
// go, so a scrape that stalls holds back no batch. (conf refuses such
// names at load: the counters are given one directly here.)
func TestMetricsLabelsUTF8AndLockNotHeld(t *testing.T) {
	in, _, _ := open(t, map[string]string{"rules": writeRule(t, t.TempDir(), "X", 100, ""), "metrics_listen": "127.0.0.1:0"})
	in.mu.Lock()
	in.excepted["bad\xffname"] = 3
	in.skipped["bad\xfe\xfdreason"] = 2
	in.mu.Unlock()

	resp, err := http.Get("http://" + in.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	if !utf8.Valid(body) {
		t.Errorf("scrape output is not UTF-8:\n%q", body)
	}
	for _, want := range []string{`trailwatch_rule_exceptions_total{rule="bad` + "\uFFFD" + `name"} 3`,
		`trailwatch_records_skipped_total{reason="bad` + "\uFFFD" + `reason"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape output lacks %s:\n%s", want, body)
		}
	}

	// A scrape that stalls once the collector has copied the counters
	// kept under the batches' lock: a batch goes through meanwhile.
	col := NewCollector(in).(*collector)
	ch := make(chan prometheus.Metric)
	collected := make(chan struct{})
	go func() { col.Collect(ch); close(collected) }()
	defer func() {
		for {
			select {
			case <-ch:
			case <-collected:
				return
			}
		}
	}()
	for seen := false; !seen; {
		select {
		case m := <-ch:
			seen = m.Desc() == col.excepted // sent after the copy under the lock
		case <-collected:
			t.Fatal("the collector sent no rule_exceptions_total")
		case <-time.After(5 * time.Second):
			t.Fatal("the collector sends nothing")
		}
	}
	recs := []engine.Record{record(t, 1, "X", "arn:x", "u")}
	processed := make(chan error, 1)
	go func() {
		_, err := in.Process(recs)
		processed <- err
	}()
	select {
	case err := <-processed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a batch waits for a stalled scrape: the collector holds the batches' lock while it sends")
	}
	if m, _ := in.RuleCounts(); len(m) == 0 {
		t.Error("the batch matched nothing: it did not take the batches' lock")
	}
}
