package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailwatch/trailwatch/store"
)

// A term's key holds its last sighting in the fleet, the sighting it
// replaced, and the node that wrote it: "1 <seen> <prev> <node>" (Unix
// nanoseconds, prev 0 for none). The previous sighting is what a node
// killed between its claim and its commit finds again when it retries the
// chunk: its own claim, which no alert followed, is not a sighting that
// makes the term old.
type value struct {
	seen, prev time.Time
	node       string
}

func (v value) encode() []byte {
	b := make([]byte, 0, 64)
	b = append(b, "1 "...)
	b = strconv.AppendInt(b, v.seen.UnixNano(), 10)
	b = append(b, ' ')
	var p int64
	if !v.prev.IsZero() {
		p = v.prev.UnixNano()
	}
	b = strconv.AppendInt(b, p, 10)
	b = append(b, ' ')
	return append(b, v.node...)
}

var errUnreadable = errors.New("unreadable value")

// saneValue reports whether a term's value holds sightings a node could
// have written, seen being the sighting this node claims with: none before
// store.MinSighting, none more than store.MaxAhead past both it and the
// clock (a peer's sighting in 2262 was the term's for good: no node ever
// saw it new again, and nothing replaced it), as the local tier keeps them.
func saneValue(v value, seen time.Time) bool {
	now := time.Now()
	if seen.After(now) {
		now = seen
	}
	return store.SaneSighting(v.seen, now) && (v.prev.IsZero() || store.SaneSighting(v.prev, now))
}

func decode(b []byte) (value, error) {
	if len(b) > maxValue {
		return value{}, errUnreadable
	}
	f := strings.Split(string(b), " ")
	if len(f) != 4 || f[0] != "1" || f[3] == "" {
		return value{}, errUnreadable
	}
	s, err1 := strconv.ParseInt(f[1], 10, 64)
	p, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || s <= 0 || p < 0 {
		return value{}, errUnreadable
	}
	v := value{seen: time.Unix(0, s).UTC(), node: f[3]}
	if p > 0 {
		v.prev = time.Unix(0, p).UTC()
	}
	return v, nil
}

// Claims are one chunk's questions to the fleet: terms new to this node,
// then the ids of the alerts it is about to write. Each Wait asks what was
// added since the last, at most claimWorkers requests in flight, all under
// the chunk's one deadline; Done ends it. A Claims is for one goroutine.
type Claims struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	down   bool
	terms  []termClaim
	alerts []alertClaim
	// fallen are the entries the fleet did not answer, published once the
	// chunk has committed (Committed).
	fallen []fallen
	ranT   int
	ranA   int
	tkv    jetstream.KeyValue
	akv    jetstream.KeyValue
}

type termClaim struct {
	key        string
	seen, last time.Time
	known      bool
	window     time.Duration
	prior      time.Time
	hasPrior   bool
	answered   bool
	undo       undo
}

type alertClaim struct {
	id   string
	out  Outcome
	undo undo
}

// undo is how a claim's write is taken back when the chunk's commit fails:
// the key put back as it was (old), or deleted (old nil), if it still holds
// the write (rev). A claim that wrote nothing has rev 0.
type undo struct {
	rev uint64
	old []byte
}

// Outcome is the fleet's answer about an alert id.
type Outcome int

// Outcomes.
const (
	Fallback Outcome = iota // not answered: the alert goes out on the local verdict, marked unconfirmed
	Won                     // this node sends it (or already held it: a retried chunk)
	Lost                    // another node sent it: not sent again
)

// Begin starts a chunk's questions; they must be asked (Wait) before the
// deadline, Timeout from now.
func (c *Client) Begin() *Claims {
	cl := &Claims{c: c}
	c.mu.Lock()
	cl.tkv, cl.akv = c.terms, c.alerts
	c.mu.Unlock()
	if !c.ready.Load() || cl.tkv == nil {
		cl.down = true
		return cl
	}
	cl.ctx, cl.cancel = context.WithTimeout(context.Background(), c.o.Timeout)
	return cl
}

// Done ends the chunk's questions.
func (cl *Claims) Done() {
	if cl.cancel != nil {
		cl.cancel()
	}
}

// Term asks about a term new to this node: space is its history's identity,
// key its encoded values, seen this sighting, last and known the local
// tier's answer, window the shortest history window of the rules that read
// it (for the conflict count). It returns the claim's index for Prior.
func (cl *Claims) Term(space string, key []byte, seen, last time.Time, known bool, window time.Duration) int {
	cl.terms = append(cl.terms, termClaim{key: TermKey(space, key), seen: seen, last: last, known: known, window: window})
	return len(cl.terms) - 1
}

// Alert asks to send an alert id; it returns the claim's index for
// AlertOutcome.
func (cl *Claims) Alert(id string) int {
	cl.alerts = append(cl.alerts, alertClaim{id: id})
	return len(cl.alerts) - 1
}

// Prior is the fleet's answer about term i: the sighting before this one
// anywhere in the fleet (has false when there was none), and ok false when
// the fleet did not answer (the local verdict stands, unconfirmed).
func (cl *Claims) Prior(i int) (prior time.Time, has, ok bool) {
	t := &cl.terms[i]
	return t.prior, t.hasPrior, t.answered
}

// AlertOutcome is the fleet's answer about alert id i.
func (cl *Claims) AlertOutcome(i int) Outcome { return cl.alerts[i].out }

// Wait asks what was added since the last Wait and returns when every
// question is answered or the deadline has passed.
func (cl *Claims) Wait() {
	nt, na := len(cl.terms)-cl.ranT, len(cl.alerts)-cl.ranA
	if nt+na == 0 {
		return
	}
	t0, a0 := cl.ranT, cl.ranA
	cl.ranT, cl.ranA = len(cl.terms), len(cl.alerts)
	c := cl.c
	var trouble atomic.Pointer[error]
	if !cl.down && cl.ctx.Err() == nil {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(nt+na, claimWorkers) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					j := int(next.Add(1) - 1)
					if j >= nt+na {
						return
					}
					var err error
					if j < nt {
						t := &cl.terms[t0+j]
						t.prior, t.hasPrior, t.undo, err = c.claimTerm(cl.ctx, cl.tkv, t.key, t.seen, t.last, t.known)
						t.answered = err == nil
					} else {
						a := &cl.alerts[a0+j-nt]
						a.out, a.undo, err = c.claimAlert(cl.ctx, cl.akv, a.id)
					}
					if err != nil && !errors.Is(err, errUnreadable) {
						trouble.CompareAndSwap(nil, &err)
					}
				}
			}()
		}
		wg.Wait()
	}
	fell := 0
	for i := t0; i < len(cl.terms); i++ {
		t := &cl.terms[i]
		if !t.answered {
			c.C.Fallbacks.Add(1)
			fell++
			cl.fallen = append(cl.fallen, fallen{"t" + t.key, pub{seen: t.seen}})
			continue
		}
		c.C.TermClaims.Add(1)
		if t.hasPrior && (t.seen.Before(t.prior) || t.seen.Sub(t.prior) <= t.window) {
			c.C.TermConflicts.Add(1)
		}
	}
	for i := a0; i < len(cl.alerts); i++ {
		a := &cl.alerts[i]
		switch a.out {
		case Fallback:
			c.C.Fallbacks.Add(1)
			fell++
			cl.fallen = append(cl.fallen, fallen{"a" + a.id, pub{alert: true}})
		case Won:
			c.C.AlertClaims.Add(1)
		case Lost:
			c.C.AlertClaims.Add(1)
			c.C.AlertConflicts.Add(1)
		}
	}
	if e := trouble.Load(); e != nil {
		c.lose(*e)
	} else if !cl.down && cl.ctx.Err() != nil && fell > 0 {
		c.lose(fmt.Errorf("no answer within %s", c.o.Timeout))
	}
}

// fallen is an entry the fleet did not answer, to publish.
type fallen struct {
	k string
	p pub
}

// Committed says the chunk's commit succeeded: what the fleet did not
// answer (sightings and alerts that are real now) is published when it
// can be.
func (cl *Claims) Committed() {
	for _, f := range cl.fallen {
		cl.c.queue(f.k, f.p)
	}
	cl.fallen = nil
}

// Release says the chunk's commit failed (nothing of it was written): its
// claims are taken back, each key put back as it was unless written since,
// and what the fleet did not answer is not published. The chunk given
// again, here or on another node, finds the fleet as it was: a claim left
// behind made the other node drop the alert as this one's, and take the
// term for one seen before.
func (cl *Claims) Release() {
	cl.fallen = nil
	if cl.down {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cl.c.o.Timeout)
	defer cancel()
	for _, t := range cl.terms {
		cl.c.takeBack(ctx, cl.tkv, t.key, t.undo)
	}
	for _, a := range cl.alerts {
		cl.c.takeBack(ctx, cl.akv, a.id, a.undo)
	}
}

// takeBack takes a claim's write back, if the key still holds it.
func (c *Client) takeBack(ctx context.Context, kv jetstream.KeyValue, key string, u undo) {
	if u.rev == 0 || ctx.Err() != nil {
		return
	}
	c.C.Ops.Add(1)
	if u.old == nil {
		_ = kv.Delete(ctx, key, jetstream.LastRevision(u.rev))
	} else {
		_, _ = kv.Update(ctx, key, u.old, u.rev)
	}
}

// claimTerm records this sighting of a term in the fleet, unless the fleet
// holds a later one, and returns the sighting it replaced (or found):
// Create when the key is absent (exactly one node succeeds), else
// compare-and-set on the revision read. A key that this node wrote and its
// state file does not hold (a claim whose commit never happened) counts as
// the sighting before it.
func (c *Client) claimTerm(ctx context.Context, kv jetstream.KeyValue, key string, seen, last time.Time, known bool) (time.Time, bool, undo, error) {
	mine := value{seen: seen, node: c.o.Node}
	for range 6 {
		c.C.Ops.Add(1)
		rev, err := kv.Create(ctx, key, mine.encode())
		if err == nil {
			return time.Time{}, false, undo{rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return time.Time{}, false, undo{}, err
		}
		c.C.Ops.Add(2) // Create read the key to tell it exists
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // expired meanwhile
		}
		if err != nil {
			return time.Time{}, false, undo{}, err
		}
		v, err := decode(e.Value())
		if err == nil && !saneValue(v, seen) {
			err = errUnreadable
		}
		if err != nil {
			// Not a value trailwatch writes: replaced, and this chunk
			// judges the term locally.
			c.C.Ops.Add(1)
			if _, uerr := kv.Update(ctx, key, mine.encode(), e.Revision()); uerr != nil && !errors.Is(uerr, jetstream.ErrKeyRevisionMismatch) {
				return time.Time{}, false, undo{}, uerr
			}
			return time.Time{}, false, undo{}, errUnreadable
		}
		prior, has := v.seen, true
		if v.node == c.o.Node && (!known || last.Before(v.seen)) {
			prior, has = v.prev, !v.prev.IsZero()
		}
		if !seen.After(v.seen) {
			return prior, has, undo{}, nil // the fleet's sighting is as late as this one
		}
		mine.prev = prior
		if !has {
			mine.prev = time.Time{}
		}
		c.C.Ops.Add(1)
		rev, err = kv.Update(ctx, key, mine.encode(), e.Revision())
		if err == nil {
			return prior, has, undo{rev: rev, old: bytes.Clone(e.Value())}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return time.Time{}, false, undo{}, err
		}
		mine.prev = time.Time{} // another node wrote meanwhile: read again
	}
	return time.Time{}, false, undo{}, errors.New("the key kept changing under six claims")
}

// nodeName reports whether b can be a node's id (a state file's is 16 hex
// digits; Options.Node takes any name of letters, digits, '.', '_', '-').
func nodeName(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// claimAlert creates an alert id's key; the node that creates it sends the
// alert. A key this node holds already (a chunk retried after a crash) is
// still this node's to send.
func (c *Client) claimAlert(ctx context.Context, kv jetstream.KeyValue, id string) (Outcome, undo, error) {
	for range 3 {
		c.C.Ops.Add(1)
		rev, err := kv.Create(ctx, id, []byte(c.o.Node))
		if err == nil {
			return Won, undo{rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Fallback, undo{}, err
		}
		c.C.Ops.Add(2)
		e, err := kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // expired meanwhile
		}
		if err != nil {
			return Fallback, undo{}, err
		}
		if string(e.Value()) == c.o.Node {
			return Won, undo{}, nil
		}
		if !nodeName(e.Value()) {
			// Not a node's id (nothing trailwatch writes): taken over, so
			// that no garbage under an alert's id keeps every node from
			// sending it.
			c.C.Ops.Add(1)
			if rev, err := kv.Update(ctx, id, []byte(c.o.Node), e.Revision()); err == nil {
				return Won, undo{rev: rev}, nil
			} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return Fallback, undo{}, err
			}
			continue // another node wrote meanwhile: read again
		}
		return Lost, undo{}, nil
	}
	return Fallback, undo{}, errors.New("the key kept expiring under three claims")
}

// Sighting is a term seen by this node, to publish.
type Sighting struct {
	Space string // its history's identity
	Key   []byte // its encoded values
	Seen  time.Time
}

// Publish queues sightings of terms this node knows (its refreshes, at most
// one per term per 1/10080 of the window), published in the background:
// the chunk does not wait for them.
func (c *Client) Publish(s []Sighting) {
	if len(s) == 0 {
		return
	}
	for _, x := range s {
		c.queue("t"+TermKey(x.Space, x.Key), pub{seen: x.Seen})
	}
	c.poke()
}

// queue adds an entry to the backlog (a later sighting replaces an
// earlier one); past Backlog entries it is dropped and counted.
func (c *Client) queue(k string, p pub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.backlog[k]; ok {
		if p.seen.After(old.seen) {
			c.backlog[k] = p
		}
		return
	}
	if len(c.backlog) >= c.o.Backlog {
		c.C.BacklogDropped.Add(1)
		if !c.full {
			c.full = true
			c.logWarn("fleet: the backlog of sightings to publish is full (%d); further ones are dropped until the fleet is back (the fleet learns them at their next refresh)", c.o.Backlog)
		}
		return
	}
	c.backlog[k] = p
}

// flush publishes up to publishBatch backlog entries; more tells whether
// entries remain. Entries that fail go back to the backlog.
func (c *Client) flush() (more bool, err error) {
	c.mu.Lock()
	tkv, akv := c.terms, c.alerts
	type entry struct {
		k string
		p pub
	}
	var batch []entry
	for k, p := range c.backlog {
		if len(batch) == publishBatch {
			break
		}
		batch = append(batch, entry{k, p})
		delete(c.backlog, k)
	}
	more = len(c.backlog) > 0
	c.mu.Unlock()
	if len(batch) == 0 || tkv == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(10*c.o.Timeout, 2*time.Second))
	defer cancel()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(len(batch), claimWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(batch) {
					return
				}
				en := batch[j]
				if failed.Load() != nil {
					c.queue(en.k, en.p) // not tried: back to the backlog
					continue
				}
				var err error
				if en.p.alert {
					_, _, err = c.claimAlert(ctx, akv, en.k[1:])
				} else {
					// A published sighting was committed on this node:
					// its own key is a real sighting.
					_, _, _, err = c.claimTerm(ctx, tkv, en.k[1:], en.p.seen, en.p.seen, true)
				}
				if err != nil && !errors.Is(err, errUnreadable) {
					failed.CompareAndSwap(nil, &err)
					c.queue(en.k, en.p)
					continue
				}
				c.C.Published.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return true, *e
	}
	return more, nil
}
