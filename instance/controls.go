package instance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/internal/netlimit"
)

// loadExceptions compiles the exception files against the rule set's
// schema (field ids must agree with the rules') and holds them against its
// rules: a Kibana list that applies to no running rule is logged as a
// warning.
func loadExceptions(set *conf.Settings, rs *conf.RuleSet, log *Logger) (*conf.Exceptions, error) {
	if len(set.Exceptions) == 0 {
		return nil, nil
	}
	exc, warnings, err := conf.LoadExceptionsFor(rs, set.Exceptions...)
	for _, w := range warnings {
		log.Warnf("exceptions: %v", w)
	}
	if err != nil {
		var es conf.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				log.Errorf("exceptions: %v", e)
			}
		}
		return nil, fmt.Errorf("property exceptions: %w", err)
	}
	return exc, nil
}

// sweepInterval is how often closed suppression and max_signals windows
// are sent out.
var sweepInterval = 5 * time.Second

// every runs fn every d until the instance closes. A panic in fn (a
// defect) is logged with its stack and the timer goes on: in a goroutine
// of its own, nothing else would catch it, and it would end the process
// (Fluent Bit with it).
func (in *Instance) every(d time.Duration, fn func()) {
	defer in.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-in.done:
			return
		case <-t.C:
			in.safely(fn)
		}
	}
}

func (in *Instance) safely(fn func()) {
	defer func() {
		if p := recover(); p != nil {
			in.Log.Errorf("a timer's task failed (a defect in trailwatch; please report it with this message): %v\n%s", p, debug.Stack())
		}
	}()
	fn()
}

// Sweep sends out what closed windows hold: suppressed groups' final
// counts and capped rules' summaries.
func (in *Instance) Sweep(now time.Time) {
	eng := in.eng.Load()
	// On the event clock windows close as the records' time passes them.
	now, ok := eng.ControlClock(now)
	if !ok {
		return
	}
	res, err := in.st.Sweep(now, eng.Summarize)
	if err != nil {
		in.Log.Warnf("closing alert windows: %v", err)
		return
	}
	if res.Suppressed+res.Summaries > 0 {
		in.Log.Debugf("closed windows: %d suppressed groups, %d max_signals summaries", res.Suppressed, res.Summaries)
		in.disp.Wake()
	}
}

// checkFiles reloads the rules when their files changed.
func (in *Instance) checkFiles() {
	if fp := fingerprint(in.set); fp != in.watched {
		in.watched = fp
		in.Log.Infof("rule or exception files changed; reloading")
		in.Reload()
	}
}

// fingerprint summarizes the rule and exception files (names, sizes,
// modification times), so that an edit is noticed.
func fingerprint(set *conf.Settings) string {
	var lines []string
	// Links are followed, the root's and each file's: a Kubernetes
	// ConfigMap's files are links into a folder swapped on each update, so
	// the links' own size and time never change (an edit was never seen).
	add := func(p string) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fi, err := os.Stat(path); err == nil {
				target, _ := filepath.EvalSymlinks(path)
				lines = append(lines, fmt.Sprintf("%s %s %d %d", path, target, fi.Size(), fi.ModTime().UnixNano()))
			}
			return nil
		})
	}
	for _, p := range append(append([]string(nil), set.Rules...), set.Exceptions...) {
		if _, err := os.Stat(p); err != nil {
			lines = append(lines, p+" missing")
			continue
		}
		add(p)
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// metricsConns is how many connections /metrics holds open at once, and
// metricsTimeouts its bounds: serve's, with a kept-alive connection let go
// after 10 s (a scraper comes back a scrape interval later, and connects
// again at a trifling cost).
const metricsConns = 64

var metricsTimeouts = netlimit.Timeouts{ReadHeader: 10 * time.Second, Read: time.Minute, Write: 2 * time.Minute, Idle: 10 * time.Second}

// serveMetrics serves /metrics (Fluent Bit does not expose Go plugins'
// metrics).
func (in *Instance) serveMetrics(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(in))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// serve's bounds: every timeout, 64 KB of headers, and a cap on
	// connections (a client that sends nothing held its connection for
	// ever, and any number of them could).
	in.metrics = netlimit.NewHTTPServer(mux, metricsTimeouts)
	in.metricsAddr = l.Addr().String()
	go in.metrics.Serve(netlimit.LimitListener(l, metricsConns))
	in.Log.Infof("metrics on http://%s/metrics", l.Addr())
	return nil
}
