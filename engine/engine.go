// Package engine ties rules, CloudTrail field resolution, new_terms history
// and alert building together. The Fluent Bit plugin and the command-line
// tool both drive it.
package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/matcher/esql"
	"github.com/trailwatch/trailwatch/store"
)

// TimeSource decides which clock judges new_terms history windows.
type TimeSource string

// Time sources.
const (
	// Ingested is the time trailwatch sees the record (Elastic's
	// timestamp_override = event.ingested).
	Ingested TimeSource = "ingested"
	// EventTime is CloudTrail's eventTime, for replays and backfills.
	EventTime TimeSource = "event"
)

// ParseTimeSource reads a time_source setting.
func ParseTimeSource(s string) (TimeSource, error) {
	switch TimeSource(s) {
	case Ingested, EventTime:
		return TimeSource(s), nil
	case "":
		return Ingested, nil
	}
	return "", fmt.Errorf("time_source %q: expected ingested or event", s)
}

// State keeps the new_terms history and the alert outbox; *store.Store is
// the implementation.
type State interface {
	Commit(b store.Batch) (store.CommitResult, error)
	// Adopt makes the rule set's new_terms histories hold what their rules
	// have seen; see store.Store.Adopt.
	Adopt(histories []store.History) (int, error)
}

// Engine evaluates a rule set on CloudTrail records. It is safe for
// concurrent use.
type Engine struct {
	schema   *matcher.Schema
	rules    []*conf.Rule
	index    *matcher.Index
	byID     map[string]*conf.Rule
	enricher cloudtrail.Enricher
	state    State
	source   TimeSource
	learning time.Duration
	now      func() time.Time

	backfill bool
	groups   [][]member // per distinct query, the rules using it
	provider *matcher.Field
	action   *matcher.Field
	eventID  *matcher.Field
	// recIDs remembers the records the aggregating ES|QL rules counted
	// (nil without such rules); see replay.go.
	recIDs *recordIDs
	// accShare gives, for each scheduled rule, the first scheduled rule
	// whose batch aggregates it shares (itself when none): aggregating
	// ES|QL rules with one program, bucket width and exceptions see the
	// same rows, so a batch adds each row once and writes the same part
	// under each rule. accShared: whether any other rule shares its own.
	accShare  []int
	accShared []bool
	// progs holds one program per ES|QL query text: rules with the same
	// query (a rule loaded twice under two ids, in two spaces) evaluate
	// and aggregate it once per record.
	progs   map[string]*esql.Program
	lag     time.Duration // Options.EventClockLag
	excepts map[*conf.Rule][]*conf.Exception
	noCaps  bool
	// evalNanos and evalCount time sampled evaluations, per query.
	evalNanos []atomic.Int64
	evalCount []atomic.Int64
	// termSets are the distinct lists of new_terms fields, resolved once;
	// termSet is each new_terms rule's list. Rules that share a query and a
	// list (copies under other ids) share the record's terms too.
	termSets [][]*matcher.Field
	termSet  map[*conf.Rule]int
	// histories are the new_terms histories: rules with one query, one set
	// of exceptions and one list of fields count the same records, so they
	// read and write one history (its terms looked up and written once).
	histories []history
	// ruleParts are the rule-given keys of each rule's alerts, rendered once.
	ruleParts map[*conf.Rule]*docPart
	// capPolicies are the policies of rules without alert suppression (the
	// max_signals cap alone, or nil), made once.
	capPolicies map[*conf.Rule]*store.Policy
	queries     []*matcher.Query // the distinct queries, indexed
	// scheduled are the rules evaluated in runs (threshold); schedOf is
	// each one's place in it.
	scheduled []*scheduled
	schedOf   map[*conf.Rule]int
	maxFrom   time.Duration
	windowCap int
	// seqCap and buildingBlocks: Options.SeqCap and BuildingBlocks.
	seqCap         int
	buildingBlocks bool
	// nextDue is the earliest run time (Unix ms) not made yet, as far as
	// the last commit knew (0: unknown, look at the state).
	nextDue atomic.Int64
	// eventClock is, on the event clock, the latest eventTime of the
	// batches committed (Unix nanoseconds; 0: none yet): the clock
	// suppression and max_signals windows are judged and closed on.
	eventClock atomic.Int64
	// shapes are the stateful rules' shapes (shape.go), checked against
	// the state file's by the first commit that succeeds (shapesChecked).
	shapes        map[string][]byte
	shapesChecked atomic.Bool
	pool          sync.Pool
	// fleet shares history and alert ids with the other nodes (nil: this
	// node alone); histIdx finds a term's history by name for it.
	fleet   *fleet.Client
	histIdx map[string]int
}

// history is one new_terms history and the rules that read it.
type history struct {
	name     string // the lowest rule_id of its rules: its name in the state
	identity string // what it counts: a digest of the query, exceptions and fields
	set      int    // its list of fields, in termSets
	// window is the longest of its rules' history windows (how long the
	// state keeps a term); refresh is store.Term.Refresh for the shortest,
	// which shortest is.
	window, refresh, shortest time.Duration
	rules                     []string
}

// Options configure an engine.
type Options struct {
	Enricher   cloudtrail.Enricher
	State      State      // required: history and outbox
	TimeSource TimeSource // default Ingested
	// Learning: for this long after the first term the state records,
	// new terms are recorded but not alerted.
	Learning time.Duration
	// Backfill records new_terms history and emits no alert at all.
	Backfill bool
	// Exceptions are applied to the rules they attach to.
	Exceptions *conf.Exceptions
	// NoCaps turns off the rules' max_signals caps (scans of history write
	// every alert; the running agent caps them as Kibana does).
	NoCaps bool
	// WindowCap bounds each scheduled rule's (bucket, group) entries
	// (default WindowCap).
	WindowCap int
	// SeqCap bounds each EQL sequence rule's sequences in flight (default
	// SeqCap); BuildingBlocks sends a sequence's building-block alerts to
	// the sinks beside its shell alert.
	SeqCap         int
	BuildingBlocks bool
	// MaxRecordIDs bounds the records the aggregating ES|QL rules
	// remember, so as to count none twice (default MaxRecordIDs).
	MaxRecordIDs int
	// EventClockLag: on the event clock, the scheduled rules' runs trail
	// the latest eventTime by this much, so that records arriving that
	// much out of order still count.
	EventClockLag time.Duration
	// Fleet, when set, shares new_terms history and alert ids with the
	// other nodes of a fleet (see fleet.go).
	Fleet *fleet.Client
	Now   func() time.Time
}

// New builds an engine over the runnable rules of a rule set.
func New(rs *conf.RuleSet, o Options) (*Engine, error) {
	if o.State == nil {
		return nil, fmt.Errorf("engine: no state store")
	}
	e := &Engine{schema: rs.Schema, enricher: o.Enricher, state: o.State, source: o.TimeSource,
		learning: o.Learning, backfill: o.Backfill, now: o.Now, byID: map[string]*conf.Rule{}, noCaps: o.NoCaps}
	if e.source == "" {
		e.source = Ingested
	}
	if e.now == nil {
		e.now = time.Now
	}
	// Rules with the same query share one evaluation: the index is over
	// distinct queries, each with the rules that use it.
	var qs []*matcher.Query
	bySource := map[string]int{}
	for _, r := range rs.Runnable() {
		e.rules = append(e.rules, r)
		e.byID[r.RuleID] = r
		g, ok := bySource[r.Compiled.Source]
		if !ok {
			g = len(e.groups)
			bySource[r.Compiled.Source] = g
			e.groups = append(e.groups, nil)
			qs = append(qs, r.Compiled)
		}
		e.groups[g] = append(e.groups[g], member{rule: r, i: len(e.rules) - 1, set: -1, prog: e.program(r)})
	}
	e.queries = qs
	e.index = matcher.NewIndex(qs)
	e.evalNanos, e.evalCount = make([]atomic.Int64, len(qs)), make([]atomic.Int64, len(qs))
	e.provider, e.action = e.schema.Field(matcher.ProviderField), e.schema.Field(matcher.ActionField)
	e.eventID = e.schema.Field("event.id")
	e.excepts = map[*conf.Rule][]*conf.Exception{}
	for _, r := range e.rules {
		xs := o.Exceptions.For(r)
		for _, x := range xs {
			// Field ids index each event's value cache: every query must
			// come from the rule set's schema.
			for _, f := range x.Query.Fields() {
				if e.schema.Field(f.Name) != f {
					return nil, fmt.Errorf("exception %q (%s) was compiled against another schema than the rules", x.Name, x.Where)
				}
			}
		}
		if len(xs) > 0 {
			e.excepts[r] = xs
		}
	}
	e.termSet = map[*conf.Rule]int{}
	byFields := map[string]int{}
	for _, r := range e.rules {
		if r.NewTerms == nil {
			continue
		}
		key := strings.Join(r.NewTerms.Fields, "\x00")
		id, ok := byFields[key]
		if !ok {
			id = len(e.termSets)
			byFields[key] = id
			var fs []*matcher.Field
			for _, name := range r.NewTerms.Fields {
				fs = append(fs, e.schema.Field(name))
			}
			e.termSets = append(e.termSets, fs)
		}
		e.termSet[r] = id
	}
	histOf := e.buildHistories()
	for _, g := range e.groups {
		for i := range g {
			if id, ok := e.termSet[g[i].rule]; ok {
				g[i].set = id
				g[i].hist = histOf[g[i].rule]
			}
		}
	}
	if len(e.histories) > 0 {
		hs := make([]store.History, len(e.histories))
		for i, h := range e.histories {
			hs[i] = store.History{Name: h.name, Identity: h.identity, Rules: h.rules}
		}
		if _, err := e.state.Adopt(hs); err != nil {
			return nil, err
		}
	}
	e.ruleParts = map[*conf.Rule]*docPart{}
	e.capPolicies = map[*conf.Rule]*store.Policy{}
	for _, r := range e.rules {
		e.ruleParts[r] = rulePart(r)
		if s := r.AlertSuppression; s == nil || len(s.GroupBy) == 0 {
			var p *store.Policy
			if !e.noCaps && r.MaxSignals > 0 {
				p = &store.Policy{RuleID: r.RuleID, MaxSignals: r.MaxSignals, Interval: r.IntervalDur}
			}
			e.capPolicies[r] = p
		}
	}
	e.windowCap = o.WindowCap
	if e.windowCap <= 0 {
		e.windowCap = WindowCap
	}
	e.seqCap, e.buildingBlocks = o.SeqCap, o.BuildingBlocks
	if e.seqCap <= 0 {
		e.seqCap = SeqCap
	}
	e.setFleet(o.Fleet)
	e.schedOf = map[*conf.Rule]int{}
	for _, r := range e.rules {
		if (r.Type == "threshold" && r.ThresholdSpec != nil) || (r.ESQL != nil && r.ESQL.IsAggregating()) {
			e.schedOf[r] = len(e.scheduled)
			e.scheduled = append(e.scheduled, newScheduled(e.schema, r))
			e.maxFrom = max(e.maxFrom, r.FromDur)
		}
	}
	e.shareAccs()
	e.shapes = e.stateShapes()
	e.lag = max(o.EventClockLag, 0)
	maxIDs := o.MaxRecordIDs
	if maxIDs <= 0 {
		maxIDs = MaxRecordIDs
	}
	if !o.Backfill {
		if err := e.newRecordIDs(maxIDs); err != nil {
			return nil, err
		}
	}
	sets, rules, hists := len(e.termSets), len(e.rules), len(e.histories)
	e.pool.New = func() any {
		return &worker{terms: make([]termMemo, sets), hists: make([]histMemo, hists), matches: make([]int, rules)}
	}
	return e, nil
}

// buildHistories gives each new_terms rule its history: one per query,
// exceptions and list of fields. It returns each rule's place in
// e.histories.
func (e *Engine) buildHistories() map[*conf.Rule]int {
	histOf := map[*conf.Rule]int{}
	byKey := map[string]int{}
	for _, r := range e.rules {
		set, ok := e.termSet[r]
		if !ok || r.Type != "new_terms" {
			continue
		}
		var xs []string
		for _, x := range e.excepts[r] {
			xs = append(xs, x.Identity())
		}
		slices.Sort(xs)
		key := strings.Join(append([]string{r.Compiled.Source, strings.Join(r.NewTerms.Fields, "\x00")}, xs...), "\x01")
		id, ok := byKey[key]
		if !ok {
			id = len(e.histories)
			byKey[key] = id
			sum := sha256.Sum256([]byte(key))
			e.histories = append(e.histories, history{name: r.RuleID, identity: hex.EncodeToString(sum[:12]), set: set,
				window: r.NewTerms.Window, refresh: r.NewTerms.Window})
		}
		h := &e.histories[id]
		h.name = min(h.name, r.RuleID)
		h.window = max(h.window, r.NewTerms.Window)
		h.refresh = min(h.refresh, r.NewTerms.Window)
		h.rules = append(h.rules, r.RuleID)
		histOf[r] = id
	}
	for i := range e.histories {
		e.histories[i].shortest = e.histories[i].refresh
		e.histories[i].refresh = store.RefreshEvery(e.histories[i].refresh)
	}
	return histOf
}

// Rules returns the rules the engine runs.
func (e *Engine) Rules() []*conf.Rule { return e.rules }

// Stats counts what a batch held.
type Stats struct {
	Records     int            // records given
	Events      int            // CloudTrail events found in them
	Skipped     map[string]int // records passed over, by reason
	Matches     map[string]int // matches by rule name
	Alerts      int            // alerts written to the outbox
	NewTermsHit int            // new_terms matches whose terms were new
	Overflow    int            // alerts dropped because the outbox was full
	Duplicates  int            // alerts already made for the same records (a retried batch)
	Suppressed  int            // alerts counted into an open suppression group
	Capped      int            // alerts over their rule's max_signals in its interval
	Excepted    map[string]int // records that matched a rule but an exception, by rule name
	Runs        int            // scheduled rules' runs made
	RunsBy      map[string]int // the same by rule name
	WindowFull  int            // counts of scheduled rules refused at their WindowCap
	Late        int            // counts older than every run to come (not kept)
	Sequences   int            // EQL sequences completed
	SeqDropped  int            // sequences in flight dropped at a rule's SeqCap
	// Replayed are records the scheduled rules (threshold, aggregating
	// ES|QL) had counted before
	// (the same eventID: a chunk or request sent again, a file scanned
	// again), not counted again; IDsForgotten the remembered ids dropped
	// at MaxRecordIDs (a record of theirs given again would count again).
	Replayed     int
	IDsForgotten int
	// StateDropped are the rules (by rule_id) whose state in the file was
	// written for another definition of theirs, and dropped (shape.go).
	StateDropped []string
	// EvalFailure is the first panic of a rule's evaluation on a record,
	// with its stack (the records are counted under SkipEvalFailed).
	EvalFailure string
	// FleetDuplicates are alerts another node of the fleet sent (not sent
	// again); Unconfirmed alerts went out on the local verdict, the fleet
	// not answering (trailwatch.fleet.unconfirmed in their documents).
	FleetDuplicates int
	Unconfirmed     int
}

// SkipEventTime is the reason of a new_terms match whose eventTime is
// refused as its sighting (store.SaneSighting), with the event clock: no
// term is recorded, no alert made.
const SkipEventTime = "eventTime before 2000 or more than 24h ahead (not counted as new_terms history)"

func (s *Stats) skip(reason string) {
	if s.Skipped == nil {
		s.Skipped = map[string]int{}
	}
	s.Skipped[reason]++
}

// Add folds another batch's counts into s.
func (s *Stats) Add(o Stats) {
	s.Records += o.Records
	s.Events += o.Events
	s.Alerts += o.Alerts
	s.NewTermsHit += o.NewTermsHit
	s.Overflow += o.Overflow
	s.Duplicates += o.Duplicates
	s.Suppressed += o.Suppressed
	s.Capped += o.Capped
	s.Runs += o.Runs
	for k, v := range o.RunsBy {
		if s.RunsBy == nil {
			s.RunsBy = map[string]int{}
		}
		s.RunsBy[k] += v
	}
	s.WindowFull += o.WindowFull
	s.Late += o.Late
	s.Sequences += o.Sequences
	s.SeqDropped += o.SeqDropped
	s.Replayed += o.Replayed
	s.IDsForgotten += o.IDsForgotten
	s.StateDropped = append(s.StateDropped, o.StateDropped...)
	if s.EvalFailure == "" {
		s.EvalFailure = o.EvalFailure
	}
	s.FleetDuplicates += o.FleetDuplicates
	s.Unconfirmed += o.Unconfirmed
	for k, v := range o.Excepted {
		if s.Excepted == nil {
			s.Excepted = map[string]int{}
		}
		s.Excepted[k] += v
	}
	for k, v := range o.Skipped {
		if s.Skipped == nil {
			s.Skipped = map[string]int{}
		}
		s.Skipped[k] += v
	}
	for k, v := range o.Matches {
		if s.Matches == nil {
			s.Matches = map[string]int{}
		}
		s.Matches[k] += v
	}
}

// Record is one input record: its parsed tree, or a parse error, with where
// it came from (for messages).
type Record struct {
	Node *doc.Node
	// Msgpack, instead of Node, is a record body as Fluent Bit holds it: a
	// MessagePack map, read in place (it must outlive ProcessBatch's call).
	Msgpack []byte
	// Index, when set, lists Msgpack's top-level members (read with the
	// chunk, so the record is walked once).
	Index cloudtrail.MsgpackIndex
	// JSON, instead of Node or Msgpack, is a record as JSON text (an
	// NDJSON line, a request body's line): Add writes it as MessagePack
	// into a buffer of its own and reads that in place, as it reads
	// Msgpack, and sets Err when the text is not well-formed JSON. The
	// text may be reused once Add returns.
	JSON  []byte
	Err   error
	Where string // file:line, or the Fluent Bit tag and index
}

// evalSample: one record in this many has its rule evaluations timed.
const evalSample = 64

// EvalTime returns, by rule name, the sampled evaluations and their total
// time (rules sharing a query share its figures).
func (e *Engine) EvalTime() map[string][2]int64 {
	out := map[string][2]int64{}
	for id, rules := range e.groups {
		for _, m := range rules {
			out[m.rule.Name] = [2]int64{e.evalCount[id].Load(), e.evalNanos[id].Load()}
		}
	}
	return out
}

type worker struct {
	// emitted: the batch's alerts as the store took them (it completes
	// their documents), from the commit until its results are read.
	emitted []store.Alert
	n       uint64 // the record being evaluated, counted
	ev      cloudtrail.Event
	// JSON records (and JSON strings inside records) are transcoded into
	// jbuf; the bytes of records that matched a rule stay until the batch
	// is committed (jkeep of them), since what the batch holds of them
	// points there. retain: the record being evaluated matched.
	tc     doc.Transcoder
	jbuf   []byte
	jkeep  int
	retain bool
	cands  []int
	provs  []string
	acts   []string
	terms  []termMemo // by term set: the current record's terms
	hists  []histMemo // by history: the current record's terms in batchTerms
	// matches counts the batch's matches by rule (as Engine.rules), folded
	// into Stats.Matches when the batch is done.
	matches []int
	// The batch being made, and buffers for it.
	batch      Batch
	alerts     []*Alert
	pending    []pendingTerm
	batchTerms []store.Term
	// The batch's term values, combinations and keys (termsOf).
	strArena   []string
	comboArena [][]string
	keyArena   []byte
	keyHeads   [][]byte
	uniq       [][]string
	// counts are the batch's threshold counts; maxEvent the latest event
	// time of its records (the event clock, when scheduled rules run on it).
	counts map[countKey]*groupAgg
	accs   map[accKey]*esql.Acc // the batch's ES|QL partial aggregates
	// spare are emptied aggregates of earlier batches, by program, for
	// the next ones to reuse.
	spare map[*esql.Program][]*esql.Acc
	// row is the current record's row of the ES|QL program rowQuery
	// (rowOf: worker.n of the record), for the rules that share it.
	row      esql.Row
	rowOK    bool
	rowOf    uint64
	rowQuery *esql.Program
	maxEvent time.Time
	// seqEvents are the batch's records that match a sequence rule's
	// stages, matched against the sequences in flight at commit.
	seqEvents []seqEvent
	// The record memory of the aggregating rules: the current record's
	// verdict (idOf: worker.n of the record), the batch's new ids by slot
	// and its records given again.
	idOf     uint64
	idSeen   bool
	batchIDs map[uint64]int64
	replays  int
	// addedTo: the record (worker.n) last added to a shared aggregate, by
	// its first rule's key; spared: the aggregates spareAccs has seen.
	addedTo map[accKey]uint64
	spared  map[*esql.Acc]bool
}

// member is one rule of a query's group: the rule, its place in
// Engine.rules and its term set (-1 for a query rule).
type member struct {
	rule *conf.Rule
	i    int
	set  int
	hist int           // its place in Engine.histories (new_terms rules)
	prog *esql.Program // an ES|QL rule's program (Engine.program)
}

// termMemo is one record's terms for one list of new_terms fields, with
// their encoded keys.
type termMemo struct {
	n      uint64 // worker.n of the record they belong to
	combos [][]string
	keys   [][]byte
}

// histMemo is where one record's terms for one history are in the batch's
// terms.
type histMemo struct {
	n            uint64 // worker.n of the record
	start, count int
}

// pendingTerm is a new_terms match waiting for the batch's history lookup.
type pendingTerm struct {
	term int // its term: its place in the batch's terms
	rule *conf.Rule
	raw  *doc.Node // the event: its alert is built only if the term is new
	mp   []byte    // or its MessagePack bytes
	json bool      // mp was transcoded from JSON
	ecs  bool
	at   int // the alert's place in the batch's alert list (nil until built)
}

// Result is what one batch produced: its alerts, their JSON as committed
// to the outbox, their outbox sequence numbers (all three in the same
// order), and the batch's counts.
type Result struct {
	Alerts []*Alert
	Docs   [][]byte
	Seqs   []uint64
	Stats  Stats
}

// ProcessBatch evaluates every runnable rule on a batch of records. Its
// new_terms history updates and all its alerts are committed in one State
// transaction; on error nothing of the batch is recorded, and the same batch
// can be given again.
func (e *Engine) ProcessBatch(recs []Record) (Result, error) {
	b := e.NewBatch()
	b.Add(recs)
	return b.Commit()
}

// Batch is ProcessBatch in steps, for a caller that reads its records a
// piece at a time (a Fluent Bit chunk, whose pieces' member lists then stay
// in the processor's caches): Add evaluates records, Commit commits what
// they made in one State transaction. Once Add returns, the Record values
// and their Index may be reused; their Msgpack bytes must stay unchanged
// until Commit returns. A Batch is for one goroutine, and is done with
// after Commit.
type Batch struct {
	// RefuseOverflow makes Commit fail (wrapping store.ErrOutboxFull),
	// nothing written, when the batch's alerts do not fit in the outbox,
	// rather than drop the ones past its bound (store.Batch).
	RefuseOverflow bool

	e        *Engine
	w        *worker
	stats    Stats
	alerts   []*Alert
	pending  []pendingTerm
	ingested time.Time
	drain    bool // Drain's batch
}

// NewBatch starts a batch.
func (e *Engine) NewBatch() *Batch {
	w := e.pool.Get().(*worker)
	clear(w.matches) // a batch cut short by a panic may have left counts
	w.resetArenas()
	if cap(w.jbuf) > maxKeptJSON {
		w.jbuf = nil // a huge record's buffer is not kept for the next batch
	}
	w.jbuf, w.jkeep = w.jbuf[:0], 0
	clear(w.batchIDs)
	w.replays = 0
	// The batch lives in the worker, with buffers kept from batch to batch
	// (cleared, so that they hold on to no record): nothing of a batch that
	// no rule matches goes to the heap.
	b := &w.batch
	*b = Batch{e: e, w: w, alerts: w.alerts[:0], pending: w.pending[:0], ingested: e.now()}
	return b
}

// Add evaluates records.
func (b *Batch) Add(recs []Record) {
	e, w, st := b.e, b.w, &b.stats
	for i := range recs {
		rec := &recs[i] // not copied: a Record is 150 bytes
		st.Records++
		if rec.Err != nil {
			st.skip("malformed")
			continue
		}
		if rec.JSON != nil {
			b.addJSON(rec)
			continue
		}
		node := rec.Node
		if rec.Msgpack != nil {
			// The common case, a raw CloudTrail event, is read in place:
			// a record that no rule can match builds nothing.
			if rec.Index.Members != nil {
				w.ev.ResetMsgpackIndexed(rec.Msgpack, &rec.Index, b.ingested, e.enricher)
			} else {
				w.ev.ResetMsgpack(rec.Msgpack, b.ingested, e.enricher)
			}
			if w.ev.RawCloudTrail(e.provider, e.action) {
				st.Events++
				b.alerts, b.pending = e.evaluate(w, st, b.alerts, b.pending)
				continue
			}
			w.jbuf = w.jbuf[:w.jkeep]
			if b.addRecords(false, true) || b.addEmbedded() {
				continue
			}
			n, _, err := doc.ReadMsgpack(rec.Msgpack)
			if err != nil {
				// Set on the record too, so that its reader counts and
				// names it (it went by with no log line).
				rec.Err = err
				st.skip("malformed")
				continue
			}
			node = n
		}
		b.split(node)
	}
}

// split evaluates the events of a record read as a tree, in whatever shape
// it came.
func (b *Batch) split(node *doc.Node) {
	e, w, st := b.e, b.w, &b.stats
	shape := cloudtrail.Split(node, func(n *doc.Node, ecs bool) {
		st.Events++
		if ecs {
			w.ev.Reset(nil, n, b.ingested, nil)
		} else {
			w.ev.Reset(n, nil, b.ingested, e.enricher)
		}
		b.alerts, b.pending = e.evaluate(w, st, b.alerts, b.pending)
	}, st.skip)
	if shape == cloudtrail.ShapeUnknown {
		st.skip(cloudtrail.SkipNotCloudTrail)
	}
}

// Commit commits the batch: its new_terms history and its alerts, in one
// State transaction.
func (b *Batch) Commit() (Result, error) {
	e, w, st := b.e, b.w, &b.stats
	defer func() {
		clear(b.pending)
		clear(b.alerts)
		clear(w.batchTerms)
		w.pending, w.alerts, w.batchTerms = b.pending[:0], b.alerts[:0], w.batchTerms[:0]
		w.resetArenas()
		clear(w.batchIDs)
		w.replays = 0
		*b = Batch{}
		e.pool.Put(w)
	}()
	for i, n := range w.matches {
		if n > 0 {
			if st.Matches == nil {
				st.Matches = map[string]int{}
			}
			st.Matches[e.rules[i].Name] += n
			w.matches[i] = 0
		}
	}
	st.Replayed += w.replays
	clock := e.clockOf(b)
	if len(b.alerts) == 0 && len(w.counts) == 0 && len(w.accs) == 0 && len(w.seqEvents) == 0 && !b.drain && (clock.IsZero() || clock.UnixMilli() < e.nextDue.Load()) {
		return Result{Stats: b.stats}, nil
	}
	res, err := e.commit(w, b.stats, b.alerts, b.pending, b.ingested, clock, b.drain, b.RefuseOverflow)
	clear(w.counts)
	w.spareAccs()
	clear(w.seqEvents)
	w.seqEvents = w.seqEvents[:0]
	w.maxEvent = time.Time{}
	return res, err
}

// ControlClock is the clock alert suppression and max_signals windows are
// closed on (Store.Sweep): wall on the ingested clock; on the event clock,
// the latest eventTime committed, or false before any.
func (e *Engine) ControlClock(wall time.Time) (time.Time, bool) {
	if e.source != EventTime {
		return wall, true
	}
	c := e.eventClock.Load()
	return time.Unix(0, c).UTC(), c != 0
}

// clockOf is the time a batch moves the scheduled rules' clock to: when
// it was read, or the latest event time in it (zero: it moves nothing).
func (e *Engine) clockOf(b *Batch) time.Time {
	if len(e.scheduled) == 0 {
		return time.Time{}
	}
	if e.source == EventTime {
		if b.w.maxEvent.IsZero() {
			return time.Time{}
		}
		return b.w.maxEvent.Add(-e.lag)
	}
	return b.ingested
}

// RunDue makes the scheduled runs the clock has passed and commits their
// alerts: at now with the ingested clock (a timer calls it, so that runs
// happen when no record arrives), at the state's event clock otherwise.
func (e *Engine) RunDue(now time.Time) (Result, error) {
	if len(e.scheduled) == 0 {
		return Result{}, nil
	}
	b := e.NewBatch()
	b.ingested = now
	return b.Commit()
}

// Drain moves the scheduled rules' clock past the latest time counted by
// the longest window, so that every run that covers a counted record is
// made (the end of a scan or backfill), and commits their alerts.
func (e *Engine) Drain() (Result, error) {
	if len(e.scheduled) == 0 {
		return Result{}, nil
	}
	b := e.NewBatch()
	b.drain = true
	return b.Commit()
}

// commit looks the batch's terms up, builds the alerts of the new ones and
// commits the lot in one State transaction.
func (e *Engine) commit(w *worker, stats Stats, alerts []*Alert, pending []pendingTerm, ingested, clock time.Time, drain, refuse bool) (Result, error) {
	res := Result{Stats: stats}
	st := &res.Stats
	terms := w.batchTerms
	var kept []*Alert
	var docs [][]byte
	var fc *fleetCommit
	var ic idCommit
	emit := func(v *store.Verdicts) ([]store.Alert, error) {
		if e.backfill {
			return nil, nil
		}
		if e.fleet != nil {
			// The terms new to this node are the fleet's to judge: one
			// round of questions for the batch, under one deadline.
			fc = e.fleetTerms(v, terms, alerts)
			defer fc.cl.Done()
		}
		drop := make([]bool, len(alerts))
		var rec *recordAlerts
		var of *pendingTerm // the record rec is of
		for i := range pending {
			p := &pending[i]
			if !v.NewFor(p.term, p.rule.NewTerms.Window) {
				drop[p.at] = true
				continue
			}
			st.NewTermsHit++
			// A record's terms are side by side: its alerts share one
			// reading of it, over its own copy (the alert outlives the
			// chunk).
			if of == nil || !sameRecord(of, p) {
				ev := &cloudtrail.Event{}
				switch {
				case p.ecs:
					ev.Reset(nil, p.raw, ingested, nil)
				case p.mp != nil:
					e.resetMsgpack(ev, bytes.Clone(p.mp), p.json, ingested)
				default:
					ev.Reset(p.raw, nil, ingested, e.enricher)
				}
				rec, of = &recordAlerts{e: e, ev: ev}, p
			}
			if !e.alertStands(p.rule, rec, st) {
				drop[p.at] = true
				continue
			}
			alerts[p.at] = e.buildAlert(p.rule, rec, terms[p.term].Values)
			alerts[p.at].unconfirmed = fc != nil && fc.unconfirmed[p.term]
		}
		kept, docs = kept[:0], docs[:0]
		var out []store.Alert
		if len(e.shapes) > 0 && !e.shapesChecked.Load() && v.Windows() != nil {
			dropped, err := e.checkShapes(v.Windows())
			if err != nil {
				return nil, err
			}
			st.StateDropped, ic.shapes = dropped, true
		}
		if len(w.seqEvents) > 0 && v.Windows() != nil {
			var ss seqStats
			seq, err := e.sequenceEmit(v.Windows(), w.seqEvents, &ss)
			if err != nil {
				return nil, err
			}
			st.Sequences += ss.completed
			st.SeqDropped += ss.dropped
			for _, a := range seq {
				alerts = append(alerts, a)
				drop = append(drop, false)
			}
		}
		if len(e.scheduled) > 0 && v.Windows() != nil {
			var rs runStats
			if drain {
				clock = e.drainClock(v.Windows(), ingested)
			}
			if err := e.writeRecordIDs(v.Windows(), w, clock, &ic); err != nil {
				return nil, err
			}
			if err := e.mergeAccs(v.Windows(), w.accs, &rs); err != nil {
				return nil, err
			}
			sched, err := e.scheduledEmit(v.Windows(), w.counts, clock, &rs)
			if err != nil {
				return nil, err
			}
			ic.due = rs.due
			st.Runs += rs.runs
			st.RunsBy = rs.by
			st.WindowFull += rs.overflow
			st.Late += rs.late
			for _, a := range sched {
				alerts = append(alerts, a)
				drop = append(drop, false)
			}
		}
		if fc != nil {
			e.fleetAlerts(fc, v, alerts, drop, st)
		}
		var led map[*Alert]int // where each alert that others follow is in out
		for i, a := range alerts {
			if drop[i] {
				continue
			}
			follows := 0
			if a.follows != nil {
				j, ok := led[a.follows]
				if !ok {
					continue // the alert it follows is not written
				}
				follows = j + 1
			}
			at := len(kept)
			kept = append(kept, a)
			docs = append(docs, nil)
			if a.leads {
				if led == nil {
					led = map[*Alert]int{}
				}
				led[a] = len(out)
			}
			out = append(out, store.Alert{ID: a.UUID, Policy: a.policy, Follows: follows, Render: func() ([]byte, error) {
				b, err := a.JSON()
				if err != nil {
					return nil, fmt.Errorf("alert %s of rule %q: %w", a.UUID, a.Rule, err)
				}
				docs[at] = b
				return b, nil
			}})
		}
		w.emitted = out // the store completes their documents (suppression fields)
		return out, nil
	}
	w.emitted = nil
	// Suppression and max_signals windows go by the execution's clock:
	// on the event clock, the latest eventTime committed (it never goes
	// back, so an older batch does not reopen a window).
	ctl := ingested
	if e.source == EventTime {
		if !w.maxEvent.IsZero() {
			for c := e.eventClock.Load(); w.maxEvent.UnixNano() > c && !e.eventClock.CompareAndSwap(c, w.maxEvent.UnixNano()); c = e.eventClock.Load() {
			}
		}
		if c := e.eventClock.Load(); c != 0 {
			ctl = time.Unix(0, c).UTC()
		}
	}
	cr, err := e.state.Commit(store.Batch{Terms: terms, Emit: emit, Learning: e.learning, Now: ctl, Summarize: e.Summarize, RefuseOverflow: refuse})
	if err != nil {
		e.unclaim(w, ic)
		if fc != nil {
			fc.cl.Release()
		}
		return Result{Stats: res.Stats}, err
	}
	if fc != nil {
		fc.cl.Committed()
		e.fleet.Publish(fc.publish)
	}
	st.IDsForgotten += e.applyRecordIDs(w, ic)
	if ic.due != 0 {
		e.nextDue.Store(ic.due)
	}
	if ic.shapes {
		e.shapesChecked.Store(true)
	}
	st.Overflow += cr.Overflow
	st.Duplicates += cr.Duplicates
	st.Suppressed += cr.Suppressed
	st.Capped += cr.Capped
	// Keep what the outbox took: not the duplicates, not the overflow.
	for i, seq := range cr.Seqs {
		if seq != 0 {
			if kept[i].unconfirmed {
				st.Unconfirmed++
			}
			res.Alerts = append(res.Alerts, kept[i])
			if d := w.emitted[i].Doc; d != nil {
				docs[i] = d // as the outbox has it: a suppression group's first alert carries its fields
			}
			res.Docs = append(res.Docs, docs[i])
			res.Seqs = append(res.Seqs, seq)
		}
	}
	w.emitted = nil
	// Alerts written: not the duplicates (counted in Duplicates), nor
	// those past a full outbox (Overflow).
	st.Alerts = len(res.Alerts)
	return res, nil
}

// Windows maps each new_terms history to its window (the longest of its
// rules'), for pruning.
func (e *Engine) Windows() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, h := range e.histories {
		out[h.name] = h.window
	}
	return out
}

// SkipEvalFailed is the reason a record is counted as skipped when a
// rule's evaluation failed on it (a defect the record brought out, with
// Stats.EvalFailure saying what): the record's alerts are dropped, and the
// batch goes on.
const SkipEvalFailed = "a rule's evaluation failed on the record (a defect: see the log)"

// evaluate judges one record with every candidate rule. A panic in a
// rule's evaluation (a defect some record brings out) is the record's
// alone: it is counted, its alerts and terms are dropped, and the batch
// goes on, where it stopped the process (scan, serve) or made Fluent Bit
// drop the chunk.
func (e *Engine) evaluate(w *worker, st *Stats, alerts []*Alert, pending []pendingTerm) (outAlerts []*Alert, outPending []pendingTerm) {
	na, np := len(alerts), len(pending)
	defer func() {
		if p := recover(); p != nil {
			st.skip(SkipEvalFailed)
			if st.EvalFailure == "" {
				st.EvalFailure = fmt.Sprintf("%v\n%s", p, debug.Stack())
			}
			outAlerts, outPending = alerts[:na], pending[:np]
		}
	}()
	return e.evaluateRecord(w, st, alerts, pending)
}

func (e *Engine) evaluateRecord(w *worker, st *Stats, alerts []*Alert, pending []pendingTerm) ([]*Alert, []pendingTerm) {
	ev := &w.ev
	if e.source == EventTime {
		// On the event clock a record is taken as read when it happened:
		// windows, runs and event.ingested (which ES|QL rules compare with
		// NOW()) all follow its eventTime. Every record moves the event
		// clock that scheduled runs follow, but none beyond the wall
		// clock's reach.
		if t := ev.EventTime(); !t.IsZero() {
			if t.After(w.maxEvent) && !t.After(ev.Ingested.Add(futureSlack)) {
				w.maxEvent = t
			}
			ev.Ingested = t
		}
	}
	w.provs = textsOf(w.provs[:0], ev.Values(e.provider))
	w.acts = textsOf(w.acts[:0], ev.Values(e.action))
	w.cands = e.index.Candidates(w.cands[:0], w.provs, w.acts)
	var ra *recordAlerts // the event as alerts see it, made on first need
	// One record in evalSample has its evaluations timed, per query.
	w.n++
	timed := w.n%evalSample == 0
	for _, id := range w.cands {
		var t0 time.Time
		if timed {
			t0 = time.Now()
		}
		ok := e.queries[id].Match(ev)
		if timed {
			e.evalNanos[id].Add(int64(time.Since(t0)))
			e.evalCount[id].Add(1)
		}
		if !ok {
			continue
		}
		w.retain = true
		for _, m := range e.groups[id] {
			alerts, pending = e.matched(w, m, &ra, st, alerts, pending)
		}
	}
	return alerts, pending
}

// matched records one rule's match: an alert for a query rule, terms for a
// new_terms rule.
func (e *Engine) matched(w *worker, rm member, ra **recordAlerts, st *Stats, alerts []*Alert, pending []pendingTerm) ([]*Alert, []pendingTerm) {
	ev, r := &w.ev, rm.rule
	// An excepted record neither alerts nor counts as history (Kibana).
	for _, x := range e.excepts[r] {
		if x.Holds(ev, ev.Ingested) {
			if st.Excepted == nil {
				st.Excepted = map[string]int{}
			}
			st.Excepted[r.Name]++
			return alerts, pending
		}
	}
	if r.ESQL != nil {
		return e.matchedESQL(w, rm, ra, alerts), pending
	}
	w.matches[rm.i]++
	if si, ok := e.schedOf[r]; ok {
		seen := e.seenAt(ev)
		if e.replayed(w, seen.UnixMilli()) {
			return alerts, pending // counted when it was given before
		}
		e.countThreshold(w, si, seen)
		return alerts, pending
	}
	if r.Sequence != nil {
		e.collectSeq(w, r, ev)
		return alerts, pending
	}
	if r.Type != "new_terms" {
		if *ra == nil {
			*ra = &recordAlerts{e: e, ev: e.owned(ev)}
		}
		if !e.alertStands(r, *ra, st) {
			return alerts, pending
		}
		alerts = append(alerts, e.buildAlert(r, *ra, nil))
		return alerts, pending
	}
	seen := e.seenAt(ev)
	if e.source == EventTime && !store.SaneSighting(seen, w.batch.ingested) {
		// A date before CloudTrail or far ahead (2200, 9999): not a
		// sighting to judge or prune history by.
		st.skip(SkipEventTime)
		return alerts, pending
	}
	ecs, mp, json := ev.IsECS(), ev.Msgpack(), ev.MsgpackJSON()
	var node *doc.Node
	switch {
	case ecs:
		node = ev.ECSNode()
	case mp == nil:
		node = ev.Raw()
	}
	// The record's terms: once per list of fields, and given to the state
	// once per history, whatever the number of rules that read it.
	h := &w.hists[rm.hist]
	if h.n != w.n {
		m := &w.terms[rm.set]
		if m.n != w.n {
			m.n = w.n
			m.combos, m.keys = w.termsOf(e.termSets[rm.set], ev)
		}
		hd := &e.histories[rm.hist]
		h.n, h.start, h.count = w.n, len(w.batchTerms), len(m.combos)
		for i, values := range m.combos {
			w.batchTerms = append(w.batchTerms, store.Term{History: hd.name, Values: values, Key: m.keys[i], Seen: seen, Window: hd.window, Refresh: hd.refresh})
		}
	}
	for i := range h.count {
		pending = append(pending, pendingTerm{term: h.start + i, rule: r, raw: node, mp: mp, json: json, ecs: ecs, at: len(alerts)})
		alerts = append(alerts, nil)
	}
	return alerts, pending
}

// seenAt is the time the engine's clock gives a record: when it was read,
// or its eventTime (when it has one) with the event clock (evaluate set it
// so).
func (e *Engine) seenAt(ev *cloudtrail.Event) time.Time { return ev.Ingested }

// sameRecord reports whether two pending terms come from the same record.
func sameRecord(a, b *pendingTerm) bool {
	if a.mp != nil || b.mp != nil {
		return len(a.mp) > 0 && len(b.mp) == len(a.mp) && &a.mp[0] == &b.mp[0]
	}
	return a.raw == b.raw && a.ecs == b.ecs
}

// owned returns a fresh event over the same record, which the worker's
// event (reset for the next record) is not; its values do not point into
// borrowed bytes: an event read in place from MessagePack gets its own copy
// of them (a record the tree reader refuses still gives its alert, with the
// fields that could be read).
func (e *Engine) owned(ev *cloudtrail.Event) *cloudtrail.Event {
	x := &cloudtrail.Event{}
	switch {
	case ev.Msgpack() != nil:
		e.resetMsgpack(x, bytes.Clone(ev.Msgpack()), ev.MsgpackJSON(), ev.Ingested)
	case ev.IsECS():
		x.Reset(nil, ev.ECSNode(), ev.Ingested, nil)
	default:
		x.Reset(ev.Raw(), nil, ev.Ingested, e.enricher)
	}
	x.EntityMapping = ev.EntityMapping
	return x
}

func textsOf(dst []string, vs []matcher.Value) []string {
	for _, v := range vs {
		dst = append(dst, v.Text)
	}
	return dst
}

// termsOf returns the cartesian product of the values of new_terms fields
// on the event (nothing when a field is missing), with each combination's
// encoded key. Both live in the worker's batch arenas: the values are views
// of the record, good until the batch is done (an alert copies its own).
func (w *worker) termsOf(fields []*matcher.Field, ev *cloudtrail.Event) ([][]string, [][]byte) {
	if cap(w.uniq) < len(fields) {
		w.uniq = make([][]string, len(fields))
	}
	uniq := w.uniq[:len(fields)]
	total := 1
	for i, f := range fields {
		vals := ev.Values(f)
		if len(vals) == 0 {
			return nil, nil
		}
		u := uniq[i][:0]
		for j := range vals {
			// Terms are what Elasticsearch aggregates: doc values, which
			// a keyword past ignore_above has none of (a record whose
			// only value is such counts as missing the field).
			if matcher.Searchable(f, &vals[j]) {
				u = append(u, f.TermText(vals[j]))
			}
		}
		if len(u) == 0 {
			uniq[i] = u
			return nil, nil
		}
		slices.Sort(u)
		u = slices.Compact(u)
		uniq[i] = u
		total *= len(u)
	}
	c0, k0 := len(w.comboArena), len(w.keyHeads)
	for n := range total {
		// The last field varies fastest: combinations in the order of the
		// fields' sorted values.
		start := len(w.strArena)
		w.strArena = slices.Grow(w.strArena, len(fields))[:start+len(fields)]
		for i := len(fields) - 1; i >= 0; i-- {
			w.strArena[start+i] = uniq[i][n%len(uniq[i])]
			n /= len(uniq[i])
		}
		combo := w.strArena[start : start+len(fields) : start+len(fields)]
		kstart := len(w.keyArena)
		w.keyArena = store.AppendValues(w.keyArena, combo)
		w.comboArena = append(w.comboArena, combo)
		w.keyHeads = append(w.keyHeads, w.keyArena[kstart:len(w.keyArena):len(w.keyArena)])
	}
	return w.comboArena[c0:len(w.comboArena):len(w.comboArena)], w.keyHeads[k0:len(w.keyHeads):len(w.keyHeads)]
}

// resetArenas empties the worker's batch arenas (cleared: they hold on to
// no record).
func (w *worker) resetArenas() {
	clear(w.strArena)
	clear(w.comboArena)
	clear(w.keyHeads)
	w.strArena, w.comboArena, w.keyHeads, w.keyArena = w.strArena[:0], w.comboArena[:0], w.keyHeads[:0], w.keyArena[:0]
}

// uniqueTexts returns the distinct values of f, as a terms aggregation
// gives them, sorted and copied (values read in place point into a chunk
// that is gone after the batch).
func uniqueTexts(f *matcher.Field, vs []matcher.Value) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, f.TermText(v))
	}
	sort.Strings(out)
	out = slices.Compact(out)
	for i, s := range out {
		out[i] = strings.Clone(s)
	}
	return out
}
