// Package fleet shares what one trailwatch node has seen with the other
// nodes of a fleet, through two NATS JetStream key-value buckets: the
// new_terms history (a key per history and term, holding its last sighting)
// and the ids of alerts sent (a key per alert id, kept for the dedup
// window). The state file stays the local tier: the engine asks the fleet
// only about terms that are new to the node, and about the ids of the alerts
// it is about to write, a chunk's questions at once, under one deadline.
//
// When the fleet cannot be reached nothing waits for it: the chunk is judged
// on the local tier, its fleet decisions are reported as fallbacks (the
// engine marks their alerts unconfirmed), the client reconnects with backoff,
// and what was decided meanwhile is published once the fleet is back.
package fleet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults.
const (
	DefaultPrefix  = "trailwatch"
	DefaultTimeout = 250 * time.Millisecond
	// DefaultBacklog bounds the sightings and alert ids waiting to be
	// published (about 150 bytes each).
	DefaultBacklog = 100_000
	// AlertTTL is how long an alert id is held: the dedup window of the
	// local tier (store.DedupWindow).
	AlertTTL = 24 * time.Hour
)

const (
	// maxValue bounds what a key holds (a peer cannot make a node read
	// more): the bucket refuses larger values, and a larger one read is
	// unreadable.
	maxValue = 128
	// claimWorkers bounds the requests a chunk has in flight at once.
	claimWorkers = 16
	// publishBatch is how many backlog entries the keeper publishes at a
	// time.
	publishBatch = 256
	minBackoff   = 500 * time.Millisecond
	maxBackoff   = 30 * time.Second
)

// Logger receives the client's messages.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Options configure a client. The names in errors are the settings'
// (shared_state, shared_state_creds, ...).
type Options struct {
	// URL is one NATS server URL, or several comma-separated (nats:// or
	// tls://); every node of a fleet is given the same.
	URL   string
	Creds string // NATS credentials file (JWT and seed)
	CA    string // CA bundle (PEM) the servers' certificates are checked against
	Cert  string // client certificate (PEM), with Key
	Key   string
	// Prefix names the buckets: PREFIX_terms and PREFIX_alerts.
	Prefix string
	// Node is this node's id (the state file's): the fleet's keys say
	// which node wrote them.
	Node string
	// Timeout is the deadline of one chunk's questions (DefaultTimeout).
	Timeout time.Duration
	// TermsTTL is how long a term's key is kept after its last sighting:
	// the longest new_terms window of the rule set (a bucket made with a
	// shorter one is raised, never lowered).
	TermsTTL time.Duration
	// ConnectWait is how long Open waits for the fleet before it returns
	// (the node runs on its local tier until the fleet answers).
	ConnectWait time.Duration
	// Backlog bounds the entries waiting to be published (DefaultBacklog).
	Backlog int
	Log     Logger
}

// Counters count what the client did.
type Counters struct {
	TermClaims     atomic.Int64 // terms new to this node that the fleet answered
	TermConflicts  atomic.Int64 // of them, terms another node had seen within the window
	AlertClaims    atomic.Int64 // alert ids the fleet answered
	AlertConflicts atomic.Int64 // of them, ids another node had sent: not sent again
	Fallbacks      atomic.Int64 // questions not answered in time or while the fleet was lost: local verdicts
	Reconnects     atomic.Int64 // times the fleet came back after it was lost
	Ops            atomic.Int64 // key-value requests made
	Published      atomic.Int64 // sightings and ids published after their chunk (refreshes, the backlog)
	BacklogDropped atomic.Int64 // entries not kept: the backlog was full
}

type state int

const (
	starting state = iota
	up
	lost
)

// Client is one node's connection to its fleet. It is safe for concurrent
// use.
type Client struct {
	o     Options
	where string // the servers, for messages (no credentials)
	nc    *nats.Conn
	js    jetstream.JetStream

	ready atomic.Bool // the fleet answers: chunks ask it
	// window is the longest new_terms window the node's rules have (from
	// Options.TermsTTL, raised by RaiseTermsTTL on a reload).
	window atomic.Int64

	mu      sync.Mutex
	state   state
	lostAt  time.Time
	terms   jetstream.KeyValue
	alerts  jetstream.KeyValue
	backlog map[string]pub // by "t"+term key or "a"+alert id
	full    bool           // the backlog overflowed since the fleet was lost (logged once)

	closing   atomic.Bool
	wake      chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	C Counters
}

// pub is a backlog entry: a term's sighting, or an alert id.
type pub struct {
	alert bool
	seen  time.Time
}

// Open checks the options and starts connecting. It waits up to
// ConnectWait for the fleet, and returns a working client either way: an
// unreachable fleet is retried with backoff in the background.
func Open(o Options) (*Client, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Backlog <= 0 {
		o.Backlog = DefaultBacklog
	}
	if o.ConnectWait == 0 {
		o.ConnectWait = 2 * time.Second
	}
	if o.Node == "" {
		return nil, errors.New("shared_state: no node id")
	}
	if !nodeName([]byte(o.Node)) {
		return nil, fmt.Errorf("shared_state: node id %q: at most 64 letters, digits, '.', '_' or '-'", o.Node)
	}
	where, err := CheckURL(o.URL)
	if err != nil {
		return nil, err
	}
	if err := CheckPrefix(o.Prefix); err != nil {
		return nil, err
	}
	opts, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	c := &Client{o: o, where: where, backlog: map[string]pub{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.window.Store(int64(o.TermsTTL))
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				err = errors.New("disconnected")
			}
			c.lose(err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) { c.poke() }),
	)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("shared_state %s: %w", where, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("shared_state %s: %w", where, err)
	}
	c.nc, c.js = nc, js
	c.wg.Add(1)
	go c.keep()
	if o.ConnectWait > 0 {
		stop := time.Now().Add(o.ConnectWait)
		for !c.ready.Load() && time.Now().Before(stop) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return c, nil
}

// CheckURL checks a shared_state value (one URL or several,
// comma-separated) and returns the servers without credentials, for
// messages.
func CheckURL(s string) (string, error) {
	var hosts []string
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || p.Hostname() == "" {
			return "", fmt.Errorf("shared_state %q: expected a NATS URL such as nats://host:4222 (several comma-separated)", redact(u))
		}
		switch p.Scheme {
		case "nats", "tls":
		default:
			return "", fmt.Errorf("shared_state %q: the scheme must be nats:// or tls://", redact(u))
		}
		if p.Path != "" && p.Path != "/" || p.RawQuery != "" {
			return "", fmt.Errorf("shared_state %q: a NATS URL has no path or query", redact(u))
		}
		hosts = append(hosts, p.Scheme+"://"+p.Host)
	}
	return strings.Join(hosts, ","), nil
}

// redact drops a URL's credentials, for messages.
func redact(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil {
		p.User = nil
		return p.String()
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		return "…" + u[i:]
	}
	return u
}

// CheckPrefix checks a bucket prefix: letters, digits, - and _, at most
// 48 characters.
func CheckPrefix(p string) error {
	ok := p != "" && len(p) <= 48
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("shared_state_prefix %q: expected letters, digits, - and _ (at most 48)", p)
	}
	return nil
}

// natsOptions checks the credential and TLS files and makes the
// connection's options.
func (o *Options) natsOptions() ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("trailwatch " + o.Node),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := minBackoff
			for i := 1; i < attempts && d < maxBackoff; i++ {
				d *= 2
			}
			return min(d, maxBackoff)
		}),
		// No buffering while reconnecting: a request then fails at once
		// and the chunk falls back, rather than waiting for its deadline.
		nats.ReconnectBufSize(-1),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.NoCallbacksAfterClientClose(),
	}
	readable := func(setting, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%s %s: %w", setting, path, err)
		}
		return f.Close()
	}
	if o.Creds != "" {
		if err := readable("shared_state_creds", o.Creds); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.CA != "" {
		if err := readable("shared_state_ca", o.CA); err != nil {
			return nil, err
		}
		opts = append(opts, nats.RootCAs(o.CA))
	}
	switch {
	case o.Cert != "" && o.Key != "":
		if _, err := tls.LoadX509KeyPair(o.Cert, o.Key); err != nil {
			return nil, fmt.Errorf("shared_state_cert %s / shared_state_key %s: %w", o.Cert, o.Key, err)
		}
		opts = append(opts, nats.ClientCert(o.Cert, o.Key))
	case o.Cert != "":
		return nil, errors.New("shared_state_cert is set without shared_state_key")
	case o.Key != "":
		return nil, errors.New("shared_state_key is set without shared_state_cert")
	}
	return opts, nil
}

// Node is this node's id.
func (c *Client) Node() string { return c.o.Node }

// Ready reports whether the fleet answers (chunks ask it).
func (c *Client) Ready() bool { return c.ready.Load() }

// Where names the servers (without credentials).
func (c *Client) Where() string { return c.where }

// Buckets names the two buckets.
func (c *Client) Buckets() (terms, alerts string) {
	return c.o.Prefix + "_terms", c.o.Prefix + "_alerts"
}

// BacklogLen is how many entries wait to be published.
func (c *Client) BacklogLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.backlog)
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// lose marks the fleet lost: chunks stop asking it until the keeper's
// probe answers. Said once in the log.
func (c *Client) lose(err error) {
	if c.closing.Load() {
		return
	}
	c.ready.Store(false)
	c.mu.Lock()
	was := c.state
	if was != lost {
		c.state, c.lostAt = lost, time.Now()
	}
	c.mu.Unlock()
	switch was {
	case up:
		c.logWarn("fleet lost (%s: %v): judging on the local tier, alerts that needed the fleet are marked unconfirmed; reconnecting with backoff", c.where, err)
	case starting:
		c.logWarn("fleet unreachable (%s: %v): judging on the local tier, alerts that needed the fleet are marked unconfirmed; retrying with backoff", c.where, err)
	}
	c.poke()
}

// back marks the fleet answering again.
func (c *Client) back() {
	c.mu.Lock()
	was, since, n := c.state, time.Since(c.lostAt), len(c.backlog)
	c.state, c.full = up, false
	c.mu.Unlock()
	c.ready.Store(true)
	terms, alerts := c.Buckets()
	switch was {
	case starting:
		c.logInfo("fleet connected: %s, buckets %s and %s, node %s", c.where, terms, alerts, c.o.Node)
	case lost:
		c.C.Reconnects.Add(1)
		c.logInfo("fleet back (%s) after %s: publishing %d sightings and alert ids decided meanwhile", c.where, since.Round(time.Millisecond), n)
	}
}

func (c *Client) logWarn(format string, args ...any) {
	if c.o.Log != nil {
		c.o.Log.Warnf(format, args...)
	}
}

func (c *Client) logInfo(format string, args ...any) {
	if c.o.Log != nil {
		c.o.Log.Infof(format, args...)
	}
}

// keep probes a lost fleet with backoff and publishes the backlog while
// the fleet answers. A backlog the fleet refuses while it answers reads (a
// bucket or an account out of room) waits with its own backoff: it was
// published again at once, thousands of times a second, and Close waited
// for ever.
func (c *Client) keep() {
	defer c.wg.Done()
	backoff, flushBackoff := minBackoff, minBackoff
	for {
		if !c.ready.Load() {
			if err := c.probe(); err != nil {
				c.lose(err)
				if !c.sleep(backoff) {
					return
				}
				backoff = min(backoff*2, maxBackoff)
				continue
			}
			backoff = minBackoff
			c.back()
		}
		more, err := c.flush()
		if err != nil {
			c.lose(err)
			// Not cut short by a wake (lose itself wakes the keeper).
			if !c.pause(flushBackoff) {
				return
			}
			flushBackoff = min(flushBackoff*2, maxBackoff)
			continue
		}
		flushBackoff = minBackoff
		if more {
			select {
			case <-c.done:
				return
			default:
			}
			continue
		}
		if !c.sleep(time.Second) {
			return
		}
	}
}

// pause waits d, or until Close; false when closing.
func (c *Client) pause(d time.Duration) bool { return c.wait(d, nil) }

// sleep waits d, or less when poked; false when the client is closing.
func (c *Client) sleep(d time.Duration) bool { return c.wait(d, c.wake) }

// wait waits d, or until wake (never, when nil) or Close; false when
// closing.
func (c *Client) wait(d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return false
	case <-wake:
	case <-t.C:
	}
	return true
}

// probe opens (or makes) the buckets and reads a key: the fleet answers.
func (c *Client) probe() error {
	if s := c.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("not connected (%v)", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(10*c.o.Timeout, 2*time.Second))
	defer cancel()
	tn, an := c.Buckets()
	terms, err := c.bucket(ctx, jetstream.KeyValueConfig{Bucket: tn, Description: termsDescription, TTL: c.termsTTL(), MaxValueSize: maxValue, History: 1})
	if err != nil {
		return err
	}
	alerts, err := c.bucket(ctx, jetstream.KeyValueConfig{Bucket: an, Description: "trailwatch alert ids sent, for the dedup window", TTL: AlertTTL, MaxValueSize: maxValue, History: 1})
	if err != nil {
		return err
	}
	c.C.Ops.Add(1)
	if _, err := terms.Get(ctx, "probe"); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	c.mu.Lock()
	c.terms, c.alerts = terms, alerts
	c.mu.Unlock()
	return nil
}

func (c *Client) termsTTL() time.Duration {
	w := time.Duration(c.window.Load())
	if w <= 0 {
		return 0
	}
	// A day beyond the longest window: a term is judged by its value, the
	// bucket's age only bounds the bucket.
	return w + 24*time.Hour
}

const termsDescription = "trailwatch new_terms history: last sighting of each term"

// RaiseTermsTTL makes the terms bucket keep keys for window (a reload's
// longest new_terms window) when it keeps them for less: at once when the
// fleet answers, else when it next does. It never lowers the TTL.
func (c *Client) RaiseTermsTTL(window time.Duration) {
	for {
		old := c.window.Load()
		if int64(window) <= old {
			return
		}
		if c.window.CompareAndSwap(old, int64(window)) {
			break
		}
	}
	if !c.ready.Load() {
		return // the next probe opens the bucket with it
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(10*c.o.Timeout, 2*time.Second))
	defer cancel()
	tn, _ := c.Buckets()
	if _, err := c.bucket(ctx, jetstream.KeyValueConfig{Bucket: tn, Description: termsDescription, TTL: c.termsTTL(), MaxValueSize: maxValue, History: 1}); err != nil {
		c.logWarn("fleet bucket %s: its TTL could not be raised for the reloaded rules' %s window (%v): it is tried again when the fleet is next found", tn, window, err)
	}
}

// bucket opens a bucket, making it when it is missing, and raises its TTL
// when it keeps keys for less than cfg asks (never lowers it): the TTL
// alone, the bucket's other settings (storage, replicas, size, compression:
// the operator's, when made beforehand) as they are. A TTL that cannot be
// raised is said, and the bucket used as it is.
func (c *Client) bucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	c.C.Ops.Add(1)
	kv, err := c.js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		c.C.Ops.Add(1)
		kv, err = c.js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // made by another node meanwhile
			c.C.Ops.Add(1)
			kv, err = c.js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	c.C.Ops.Add(1)
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	if have := st.TTL(); have > 0 && (cfg.TTL == 0 || have < cfg.TTL) {
		if err := c.raiseTTL(ctx, cfg.Bucket, cfg.TTL); err != nil {
			c.logWarn("fleet bucket %s: its keys are kept %s after their last write, less than the %s asked; raising it failed (%v): a term its key forgot is judged as the node knows it", cfg.Bucket, have, cfg.TTL, err)
		} else {
			c.logInfo("fleet bucket %s: keys now kept %s after their last write (was %s)", cfg.Bucket, cfg.TTL, have)
		}
	}
	return kv, nil
}

// raiseTTL sets a bucket's TTL (its stream's MaxAge), leaving the rest of
// its configuration as it is.
func (c *Client) raiseTTL(ctx context.Context, bucket string, ttl time.Duration) error {
	c.C.Ops.Add(2)
	s, err := c.js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	cfg := info.Config
	cfg.MaxAge = ttl
	c.C.Ops.Add(1)
	_, err = c.js.UpdateStream(ctx, cfg)
	return err
}

// Close stops the keeper and closes the connection. Entries not yet
// published are dropped (the state file has them; the fleet learns a term
// again at its next refresh). It is safe to call twice.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		close(c.done)
		c.wg.Wait()
		c.ready.Store(false)
		c.nc.Close()
		if n := c.BacklogLen(); n > 0 {
			c.logWarn("fleet: %d sightings and alert ids not published at exit (the fleet learns a term again at its next refresh)", n)
		}
	})
	return nil
}

// TermKey is the fleet's key of a term: its history's identity (what the
// history counts, the same on every node that runs the same rules) and a
// digest of its encoded values.
func TermKey(space string, key []byte) string {
	sum := sha256.Sum256(key)
	return space + "." + hex.EncodeToString(sum[:16])
}
