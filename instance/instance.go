// Package instance runs one configured trailwatch: its rules, state file,
// GeoIP databases, alert sinks and pruning schedule. The Fluent Bit plugin
// runs one per [OUTPUT] section; `trailwatch serve` runs one.
package instance

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/sink"
	"github.com/trailwatch/trailwatch/store"
)

// ErrClosed is a batch given to an Instance after Close began.
var ErrClosed = errors.New("trailwatch is stopping: the batch was not taken")

// Instance is one configured trailwatch: its rules, state file and sinks.
type Instance struct {
	reloading sync.Mutex // Reload's
	Name      string
	Log       *Logger
	set       *conf.Settings
	eng       atomic.Pointer[engine.Engine]
	opts      engine.Options
	st        *store.Store
	geo       *enrich.DB
	// fleet shares history and alert ids with the other nodes (shared_state).
	fleet *fleet.Client
	disp  *sink.Dispatcher
	done  chan struct{}
	wg    sync.WaitGroup

	closeOnce sync.Once
	// life is held for reading by each batch and run, and for writing by
	// Close, which waits for those in flight (serve's shutdown gives up
	// on slow requests; their batches must not meet a closed state file or
	// GeoIP database) and turns later ones away with ErrClosed.
	life   sync.RWMutex
	closed bool

	Records   atomic.Int64
	Alerts    atomic.Int64
	Malformed atomic.Int64
	Retries   atomic.Int64
	Overflow  atomic.Int64
	// Refused counts batches refused because their alerts would not fit
	// in the outbox (AtLeastOnce).
	Refused atomic.Int64
	// AtLeastOnce refuses a batch whose alerts do not fit in the outbox
	// (Process returns an error wrapping store.ErrOutboxFull; the sender
	// retries it) instead of dropping the alerts past outbox_max. serve
	// sets it: its senders retry what is not acknowledged.
	AtLeastOnce atomic.Bool
	// Suppressed alerts counted into a suppression group; Capped alerts
	// over their rule's max_signals.
	Suppressed atomic.Int64
	Capped     atomic.Int64
	// WindowFull counts scheduled rules' counts refused at their cap;
	// Late those older than every run to come.
	WindowFull atomic.Int64
	Late       atomic.Int64
	// Replayed counts records the aggregating rules had counted before
	// (not counted again); IDsForgotten remembered record ids dropped at
	// engine.MaxRecordIDs.
	Replayed     atomic.Int64
	IDsForgotten atomic.Int64
	watched      string // fingerprint of the rule and exception files
	metrics      *http.Server
	metricsAddr  string

	mu       sync.Mutex
	matches  map[string]int64 // records matched, by rule name
	alertsBy map[string]int64 // alerts made, by rule name
	excepted map[string]int64 // records excepted, by rule name
	skipped  map[string]int64 // records skipped, by reason
	runs     map[string]int64 // scheduled runs made, by rule name
}

// Open builds an instance from its properties. Every invalid property and
// every rule-set error is reported in the returned error.
func Open(name string, get func(string) string, logw io.Writer) (in *Instance, err error) {
	set, err := conf.ParseSettings(get)
	if err != nil {
		return nil, err
	}
	log := NewLogger(logw, name, ParseLevel(set.LogLevel))
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), set.Rules...)
	if err != nil {
		var es conf.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				log.Errorf("rules: %v", e)
			}
		}
		return nil, fmt.Errorf("property rules: the rule set has errors: %w", err)
	}
	exc, err := loadExceptions(set, rs, log)
	if err != nil {
		return nil, err
	}
	enr, geo, err := openEnricher(set)
	if err != nil {
		return nil, fmt.Errorf("property geoip_db/asn_db: %w", err)
	}
	defer func() {
		if err != nil && geo != nil {
			geo.Close()
		}
	}()
	st, err := store.Open(set.DB, store.Options{NoSync: set.NoSync, MaxOutbox: set.OutboxMax})
	if err != nil {
		return nil, fmt.Errorf("property db: %w", err)
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	fc, err := openFleet(set, st, rs, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && fc != nil {
			fc.Close()
		}
	}()
	ts, _ := engine.ParseTimeSource(set.TimeSource)
	opts := engine.Options{State: st, TimeSource: ts, EventClockLag: set.EventClockLag, Learning: set.LearningPeriod, Enricher: enr, Exceptions: exc, BuildingBlocks: set.BuildingBlocks, Fleet: fc}
	eng, err := engine.New(rs, opts)
	if err != nil {
		return nil, err
	}
	sinks, err := openSinks(set)
	if err != nil {
		return nil, err
	}
	n := &Instance{Name: name, Log: log, set: set, st: st, geo: geo, fleet: fc, opts: opts, done: make(chan struct{}), matches: map[string]int64{}, alertsBy: map[string]int64{}, excepted: map[string]int64{}, skipped: map[string]int64{}, runs: map[string]int64{}}
	n.eng.Store(eng)
	n.disp = sink.NewDispatcher(st, sinks, sink.TagTemplate(set.AlertTag), log)
	// The metrics listener before the timers: an instance that fails to
	// start leaves nothing running (timers started first ran on after the
	// failure, on an instance the caller never got, and crashed the
	// process).
	if set.MetricsListen != "" {
		if err := n.serveMetrics(set.MetricsListen); err != nil {
			n.disp.Close()
			return nil, fmt.Errorf("property metrics_listen: %w", err)
		}
	}
	n.wg.Add(3)
	go n.every(set.PruneInterval, n.prune)
	go n.every(time.Second, func() { n.RunDue(time.Now()) })
	go n.every(sweepInterval, func() { n.Sweep(time.Now()) })
	if set.RulesWatch > 0 {
		n.watched = fingerprint(set)
		n.wg.Add(1)
		go n.every(set.RulesWatch, n.checkFiles)
	}
	in = n
	runs := len(eng.Rules())
	log.Infof("%d rules running (%d loaded), state %s, %d alerts waiting in the outbox", runs, len(rs.Rules), set.DB, st.OutboxLen())
	for _, r := range rs.Rules {
		if !r.Runs() {
			log.Debugf("rule %q (%s) skipped: %s", r.Name, r.Type, r.Skip)
			continue
		}
		for _, n := range r.Notes {
			log.Warnf("%v", n)
		}
	}
	return in, nil
}

// sameFile reports whether two paths name one file (through links too).
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	x, errA := filepath.Abs(a)
	y, errB := filepath.Abs(b)
	return errA == nil && errB == nil && x == y
}

func openSinks(set *conf.Settings) ([]sink.Sink, error) {
	var out []sink.Sink
	fail := func(err error) ([]sink.Sink, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	if set.AlertForward != "" {
		s, err := sink.NewForward(set.AlertForward)
		if err != nil {
			return fail(fmt.Errorf("property %w", err))
		}
		out = append(out, s)
	}
	if set.AlertFile != "" {
		if set.DB != "" && sameFile(set.AlertFile, set.DB) {
			return fail(fmt.Errorf("property alert_file: %s is the state file (property db): the state would overwrite the alerts written there", set.AlertFile))
		}
		s, err := sink.NewFile(set.AlertFile)
		if err != nil {
			return fail(fmt.Errorf("property %w", err))
		}
		out = append(out, s)
	}
	if set.AlertHTTP != "" {
		s, err := sink.NewHTTP(set.AlertHTTP, "")
		if err != nil {
			return fail(fmt.Errorf("property %w", err))
		}
		out = append(out, s)
	}
	if set.AlertStdout {
		out = append(out, sink.NewStdout())
	}
	return out, nil
}

// malformedLogged is how many malformed records of a batch are logged one
// by one: a batch of thousands would otherwise flood the log (all are
// counted).
const malformedLogged = 10

// Process evaluates a batch of records. It returns once the batch's
// history and alerts are committed; on error nothing of the batch is
// recorded and the same batch can be given again. Malformed records (Err
// set) are counted, logged with their place, and skipped.
func (in *Instance) Process(recs []engine.Record) (engine.Result, error) {
	return in.ProcessPieces(func(add func([]engine.Record)) { add(recs) })
}

// ProcessPieces is Process for a batch read a piece at a time: feed calls
// add with each piece (records and their Index may be reused once add
// returns; their bytes must stay until ProcessPieces returns).
func (in *Instance) ProcessPieces(feed func(add func([]engine.Record))) (engine.Result, error) {
	in.life.RLock()
	defer in.life.RUnlock()
	if in.closed {
		return engine.Result{}, ErrClosed
	}
	batch := in.eng.Load().NewBatch()
	batch.RefuseOverflow = in.AtLeastOnce.Load()
	malformed := 0
	feed(func(recs []engine.Record) {
		batch.Add(recs) // which sets Err on malformed JSON text
		for _, r := range recs {
			if r.Err != nil {
				in.Malformed.Add(1)
				if malformed++; malformed <= malformedLogged {
					in.Log.Warnf("skipped a malformed record (%s): %v", r.Where, r.Err)
				}
			}
		}
	})
	if malformed > malformedLogged {
		in.Log.Warnf("skipped %d more malformed records in this batch (logged: the first %d)", malformed-malformedLogged, malformedLogged)
	}
	res, err := batch.Commit()
	if errors.Is(err, store.ErrOutboxFull) {
		in.Refused.Add(1)
		in.Log.Warnf("batch of %d records refused: %v", res.Stats.Records, err)
		return res, err
	}
	if errors.Is(err, engine.ErrRecordsInFlight) {
		in.Retries.Add(1)
		in.Log.Warnf("batch of %d records not committed, to be given again: %v", res.Stats.Records, err)
		return res, err
	}
	if err != nil {
		in.Retries.Add(1)
		in.Log.Errorf("batch of %d records not committed: %v", res.Stats.Records, err)
		return res, err
	}
	in.account(res)
	return res, nil
}

// RunDue makes the scheduled rules' runs that the ingested clock has
// passed (a timer calls it every second, so that runs happen when no
// record arrives).
func (in *Instance) RunDue(now time.Time) {
	in.life.RLock()
	defer in.life.RUnlock()
	if in.closed {
		return
	}
	res, err := in.eng.Load().RunDue(now)
	if err != nil {
		in.Log.Errorf("scheduled runs not made (they will be at the next tick): %v", err)
		return
	}
	in.account(res)
}

// account counts a committed batch's result and wakes the sinks.
func (in *Instance) account(res engine.Result) {
	in.Records.Add(int64(res.Stats.Records))
	if len(res.Stats.RunsBy) > 0 {
		in.mu.Lock()
		for rule, n := range res.Stats.RunsBy {
			in.runs[rule] += int64(n)
		}
		in.mu.Unlock()
	}
	in.WindowFull.Add(int64(res.Stats.WindowFull))
	if n := int64(res.Stats.Late); n > 0 && in.Late.Add(n) == n {
		in.Log.Warnf("%d counts of scheduled rules not kept: older than every run to come (on the event clock, records that arrive after the runs that could have counted them, such as a backlog flushed after newer chunks: event_clock_lag makes runs wait for records that far out of order, the ingested clock counts them at arrival); logged once, counted in trailwatch_window_counts_late_total", n)
	}
	if f := res.Stats.EvalFailure; f != "" {
		in.Log.Errorf("%d records skipped: a rule's evaluation failed on them (a defect in trailwatch; please report it with this message); the first: %s", res.Stats.Skipped[engine.SkipEvalFailed], f)
	}
	for _, id := range res.Stats.StateDropped {
		in.Log.Warnf("rule %q: its definition changed (query, group fields, STATS, stages, from or interval) since its state was written: its window counts, signal history and sequences in flight are dropped, and its windows start empty", id)
	}
	in.Replayed.Add(int64(res.Stats.Replayed))
	if res.Stats.IDsForgotten > 0 && in.IDsForgotten.Add(int64(res.Stats.IDsForgotten)) == int64(res.Stats.IDsForgotten) {
		in.Log.Infof("the scheduled rules remember the %d records they counted last (a record among them given again counts once); older ones are forgotten from now on, counted in trailwatch_record_ids_forgotten_total (logged once)", engine.MaxRecordIDs)
	}
	if res.Stats.WindowFull > 0 {
		in.Log.Warnf("%d counts of scheduled rules not kept: a rule's window state is full (%d entries)", res.Stats.WindowFull, engine.WindowCap)
	}
	if len(res.Stats.Matches) > 0 || len(res.Alerts) > 0 {
		in.mu.Lock()
		for rule, n := range res.Stats.Matches {
			in.matches[rule] += int64(n)
		}
		for _, a := range res.Alerts {
			in.alertsBy[a.Rule]++
		}
		in.mu.Unlock()
	}
	if len(res.Alerts) > 0 {
		in.Alerts.Add(int64(len(res.Alerts)))
		in.disp.Wake()
		for _, a := range res.Alerts {
			in.Log.Debugf("alert %s: %s", a.UUID, a.Rule)
		}
	}
	in.Suppressed.Add(int64(res.Stats.Suppressed))
	in.Capped.Add(int64(res.Stats.Capped))
	if len(res.Stats.Excepted) > 0 || len(res.Stats.Skipped) > 0 {
		in.mu.Lock()
		for rule, n := range res.Stats.Excepted {
			in.excepted[rule] += int64(n)
		}
		for reason, n := range res.Stats.Skipped {
			in.skipped[reason] += int64(n)
		}
		in.mu.Unlock()
	}
	if n := res.Stats.Skipped[engine.SkipEventTime]; n > 0 {
		in.Log.Warnf("%d new_terms matches skipped: %s", n, engine.SkipEventTime)
	}
	if res.Stats.Overflow > 0 {
		in.Overflow.Add(int64(res.Stats.Overflow))
		in.Log.Warnf("outbox full (outbox_max %d): %d alerts dropped; are the sinks down?", in.set.OutboxMax, res.Stats.Overflow)
	}
}

// Reload loads the rule set again from the configured paths and swaps it in
// between batches. An invalid rule set is refused, every error logged, and
// the running one kept. History of unchanged rules is kept (it lives in the
// state file, keyed by rule_id).
func (in *Instance) Reload() error {
	// One at a time (a SIGHUP and the file watcher may ask at once): the
	// later reload reads the files after the earlier is in place, so the
	// newest files are the ones that run.
	in.reloading.Lock()
	defer in.reloading.Unlock()
	rs, err := conf.LoadRules(cloudtrail.NewSchema(), in.set.Rules...)
	if err != nil {
		var es conf.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				in.Log.Errorf("reload refused, keeping the running rules: %v", e)
			}
		}
		return fmt.Errorf("the new rule set has errors; the running one is kept: %w", err)
	}
	exc, err := loadExceptions(in.set, rs, in.Log)
	if err != nil {
		in.Log.Errorf("reload refused, keeping the running rules: %v", err)
		return err
	}
	opts := in.opts
	opts.Exceptions = exc
	eng, err := engine.New(rs, opts)
	if err != nil {
		return err
	}
	eng.KeepRecordIDs(in.eng.Load())
	in.eng.Store(eng)
	if in.fleet != nil {
		// A longer window reloaded: the fleet keeps terms that long too
		// (its bucket kept the first rule set's, and terms other nodes saw
		// past it came back as new).
		in.fleet.RaiseTermsTTL(engine.TermsWindow(rs))
	}
	in.Log.Infof("rules reloaded: %d running (%d loaded)", len(eng.Rules()), len(rs.Rules))
	return nil
}

// RuleCounts returns, by rule name, the records matched and alerts made.
func (in *Instance) RuleCounts() (matches, alerts map[string]int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	matches, alerts = make(map[string]int64, len(in.matches)), make(map[string]int64, len(in.alertsBy))
	for k, v := range in.matches {
		matches[k] = v
	}
	for k, v := range in.alertsBy {
		alerts[k] = v
	}
	return matches, alerts
}

// OutboxLen is the number of alerts waiting for the sinks.
func (in *Instance) OutboxLen() int { return in.st.OutboxLen() }

// StoreSize is the state file's size in bytes.
func (in *Instance) StoreSize() int64 {
	st, err := os.Stat(in.set.DB)
	if err != nil {
		return 0
	}
	return st.Size()
}

// SinkCounts returns, by sink name, the alerts delivered and failed sends.
func (in *Instance) SinkCounts() (delivered, failures map[string]int64) {
	return in.disp.Counts()
}

// OutboxFull reports whether the outbox is at its bound (new alerts would
// be dropped).
func (in *Instance) OutboxFull() bool { return in.st.OutboxLen() >= in.set.OutboxMax }

// prune drops terms past their rule's window.
func (in *Instance) prune() {
	now := time.Now()
	if in.set.TimeSource == string(engine.EventTime) {
		now = in.st.Now()
	}
	res, err := in.st.Prune(now, in.eng.Load().Windows())
	if err != nil {
		in.Log.Warnf("pruning: %v", err)
	} else if res.Terms > 0 || res.Rules > 0 {
		in.Log.Debugf("pruned %d terms and %d rules no longer configured", res.Terms, res.Rules)
	}
}

// Close drains the outbox within exit_timeout, stops the sinks and closes
// the state file, so that a hot reload can open it again. It is safe to call
// more than once.
func (in *Instance) Close() error {
	var err error
	in.closeOnce.Do(func() {
		in.life.Lock()
		in.closed = true
		in.life.Unlock()
		in.disp.Drain(in.set.ExitTimeout)
		close(in.done)
		if in.metrics != nil {
			in.metrics.Close()
		}
		in.wg.Wait()
		in.disp.Close()
		if n := in.st.OutboxLen(); n > 0 {
			in.Log.Warnf("exit: %d alerts not yet taken by the sinks stay in %s for the next start", n, in.set.DB)
		}
		if in.fleet != nil {
			in.fleet.Close()
		}
		err = in.st.Close()
		if in.geo != nil {
			in.geo.Close()
		}
		in.Log.Infof("stopped: %d records, %d alerts, %d malformed records", in.Records.Load(), in.Alerts.Load(), in.Malformed.Load())
	})
	return err
}
