package sink

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/store"
)

// Logger receives the dispatcher's messages.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Dispatcher drains the outbox into the sinks, one goroutine per sink.
type Dispatcher struct {
	st    *store.Store
	sinks []Sink
	names []string // the sinks' Names: their cursors in the state file
	// labels are the sinks' Labels: how logs and metrics name them.
	labels []string
	tag    TagTemplate
	log    Logger
	batch  int

	wake []chan struct{}
	// draining is closed when Drain starts: a failing sink then retries
	// at the shortest backoff, so that one back before the deadline
	// empties the outbox (its backoff could reach past the deadline).
	draining  chan struct{}
	drainOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	Delivered []atomic.Int64 // alerts taken, per sink
	Failures  []atomic.Int64 // failed sends, per sink
}

// Backoff bounds for a failing sink.
var (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 60 * time.Second
)

// NewDispatcher starts delivering the outbox of st to sinks.
func NewDispatcher(st *store.Store, sinks []Sink, tag TagTemplate, log Logger) *Dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{st: st, sinks: sinks, tag: tag, log: log, batch: 500, cancel: cancel,
		draining:  make(chan struct{}),
		Delivered: make([]atomic.Int64, len(sinks)), Failures: make([]atomic.Int64, len(sinks))}
	for _, s := range sinks {
		d.names = append(d.names, s.Name())
		d.labels = append(d.labels, Label(s))
		d.wake = append(d.wake, make(chan struct{}, 1))
	}
	for i := range sinks {
		d.wg.Add(1)
		go d.run(ctx, i)
	}
	return d
}

// Wake tells the sinks that new alerts are in the outbox.
func (d *Dispatcher) Wake() {
	for _, w := range d.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (d *Dispatcher) run(ctx context.Context, i int) {
	defer d.wg.Done()
	s := d.sinks[i]
	cursor := d.st.Cursor(s.Name())
	backoff := minBackoff
	failing := false
	draining := d.draining // nil once seen closed
	size := d.batch        // halved while the sink answers a batch is too large
	for {
		items, err := d.next(cursor, size)
		if err != nil {
			d.log.Warnf("sink %s: reading the outbox: %v", d.labels[i], err)
		}
		if len(items) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-d.wake[i]:
			case <-time.After(time.Second):
			}
			continue
		}
		if err := s.Send(ctx, items); err != nil {
			d.Failures[i].Add(1)
			if errors.Is(err, ErrTooLarge) && len(items) > 1 {
				// Smaller batches, at once (a receiver's body limit
				// below a batch stalled the sink for ever).
				size = max(len(items)/2, 1)
				continue
			}
			if !failing {
				d.log.Warnf("sink %s: %v; retrying with backoff, alerts wait in the outbox", d.labels[i], err)
			}
			failing = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			case <-draining:
				draining = nil
			}
			if draining == nil {
				backoff = minBackoff
			} else {
				backoff = min(backoff*2, maxBackoff)
			}
			continue
		}
		if failing {
			d.log.Infof("sink %s: delivering again", d.labels[i])
		}
		failing, backoff = false, minBackoff
		size = min(size*2, d.batch)
		cursor = items[len(items)-1].Seq
		if err := d.st.Advance(s.Name(), cursor, d.names); err != nil {
			d.log.Warnf("sink %s: %v", d.labels[i], err)
		}
		d.Delivered[i].Add(int64(len(items)))
	}
}

func (d *Dispatcher) next(after uint64, size int) ([]Item, error) {
	ps, err := d.st.PendingAfter(after, size)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	items := make([]Item, len(ps))
	now := time.Now()
	for i, p := range ps {
		items[i] = Item{Seq: p.Seq, Doc: p.Alert, Tag: d.tag.Render(p.Alert), Time: now}
	}
	return items, nil
}

// Drain waits until every sink has taken every alert in the outbox, or the
// deadline passes; it reports whether the outbox was drained.
func (d *Dispatcher) Drain(deadline time.Duration) bool {
	stop := time.Now().Add(deadline)
	d.drainOnce.Do(func() { close(d.draining) })
	for {
		if d.st.OutboxLen() == 0 {
			return true
		}
		if time.Now().After(stop) {
			return false
		}
		d.Wake()
		time.Sleep(20 * time.Millisecond)
	}
}

// closeWait is how long Close waits for the sinks' goroutines before it
// closes the sinks under them.
var closeWait = 2 * time.Second

// Close stops the sinks' goroutines and closes the sinks. Alerts not yet
// delivered stay in the outbox for the next start. A goroutine still in a
// send after closeWait (a write to a pipe no one reads blocks for ever,
// and the exit with it) has its sink closed under it, which ends a write
// to a FIFO or a connection; one that still does not return is left
// behind, and Close returns.
func (d *Dispatcher) Close() {
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
	}
	for _, s := range d.sinks {
		s.Close()
	}
	select {
	case <-done:
	case <-time.After(closeWait):
	}
}

// Counts returns, by sink label (Label), the alerts delivered and the
// failed sends.
func (d *Dispatcher) Counts() (delivered, failures map[string]int64) {
	delivered, failures = map[string]int64{}, map[string]int64{}
	for i, n := range d.labels {
		delivered[n] = d.Delivered[i].Load()
		failures[n] = d.Failures[i].Load()
	}
	return delivered, failures
}
