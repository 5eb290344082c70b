package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/flb"
	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/internal/logsafe"
)

// ForwardOptions tune the forward protocol listener.
type ForwardOptions struct {
	// SharedKey, when set, requires the forward protocol's handshake
	// (HELO/PING/PONG) with this key, as Fluent Bit's Shared_Key and
	// Fluentd's secure forward do.
	SharedKey string
	// MaxMessage bounds one forward message in bytes (after decompression).
	MaxMessage int64
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
	// MessageTimeout closes a connection whose message, once begun, has
	// not arrived whole within this long (default one minute).
	MessageTimeout time.Duration
	// MaxRecords bounds the entries of one message (default
	// DefaultMaxRecords).
	MaxRecords int
	// Limits, shared with the HTTP listener, bound the bytes held and the
	// messages evaluated at once (default: NewLimits with
	// DefaultMaxHeld(MaxMessage) and DefaultWorkers).
	Limits *Limits
}

// Forward serves Fluent's forward protocol: Message, Forward, PackedForward
// and CompressedPackedForward modes; the ack option is answered after the
// message's records are committed.
type Forward struct {
	in   *instance.Instance
	opts ForwardOptions
	host string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  bool
}

// NewForward builds a forward protocol server for an instance. Its senders
// retry what is not acknowledged, so the instance refuses a batch whose
// alerts would not fit in the outbox (instance.AtLeastOnce).
func NewForward(in *instance.Instance, o ForwardOptions) *Forward {
	in.AtLeastOnce.Store(true)
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxBody
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = time.Minute
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.Limits == nil {
		o.Limits = NewLimits(DefaultMaxHeld(o.MaxMessage), DefaultWorkers)
	}
	host, _ := os.Hostname()
	return &Forward{in: in, opts: o, host: host, conns: map[net.Conn]struct{}{}}
}

// Serve accepts connections until the listener is closed.
func (f *Forward) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			f.mu.Lock()
			done := f.done
			f.mu.Unlock()
			if done || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		f.mu.Lock()
		if f.done {
			f.mu.Unlock()
			c.Close()
			continue
		}
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			f.handle(c)
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
			c.Close()
		}()
	}
}

// Shutdown stops taking new messages: it waits up to timeout for the
// messages being processed, then closes every connection.
func (f *Forward) Shutdown(timeout time.Duration) {
	f.mu.Lock()
	f.done = true
	for c := range f.conns {
		// Unblock readers waiting for the next message; a message being
		// processed finishes (its ack may not be written).
		c.SetReadDeadline(time.Now())
	}
	f.mu.Unlock()
	ch := make(chan struct{})
	go func() { f.wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(timeout):
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	}
}

var errMessageTooLarge = errors.New("forward message too large")

func (f *Forward) handle(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	r := msgp.NewReader(br)
	remote := c.RemoteAddr().String()
	if f.opts.SharedKey != "" {
		if err := f.handshake(c, r); err != nil {
			f.in.Log.Warnf("forward %s: handshake refused: %v", remote, err)
			return
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		// Idle until a message starts; then it must arrive whole within
		// MessageTimeout, so a stalled one holds no memory for long.
		c.SetReadDeadline(time.Now().Add(f.opts.IdleTimeout))
		if _, err := r.R.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) && !isTimeout(err) {
				f.in.Log.Warnf("forward %s: %v; closing the connection", remote, err)
			}
			return
		}
		c.SetReadDeadline(time.Now().Add(f.opts.MessageTimeout))
		msg := f.opts.Limits.newBuffer(ctx, f.opts.MaxMessage)
		if _, err := r.CopyNext(msg); err != nil {
			msg.release()
			if errors.Is(err, errTooLarge) {
				err = fmt.Errorf("%w (max_body %d)", errMessageTooLarge, f.opts.MaxMessage)
			} else if isTimeout(err) {
				err = fmt.Errorf("the message did not arrive within %v", f.opts.MessageTimeout)
			}
			f.in.Log.Warnf("forward %s: %v; closing the connection", remote, err)
			return
		}
		ok := f.message(c, remote, msg)
		msg.release()
		if !ok {
			return
		}
	}
}

// message evaluates one forward message and acknowledges it when asked
// (its chunk option) once it is committed. A message that can never be
// taken (not a forward message, entries that do not inflate, more than
// max_records) is counted as one malformed record and acknowledged, so its
// sender does not send it again for ever. It returns false when the
// connection is to be closed: a message not committed is not acknowledged,
// and its sender sends it again.
func (f *Forward) message(c net.Conn, remote string, msg *buffer) bool {
	inflated := f.opts.Limits.newBuffer(context.Background(), f.opts.MaxMessage)
	defer inflated.release()
	m, err := decodeForward(msg.b, f.opts.MaxRecords, func(packed []byte) ([]byte, error) {
		if err := gunzip(inflated, packed); err != nil {
			return nil, err
		}
		return inflated.b, nil
	})
	if errors.Is(err, errBusy) {
		f.in.Log.Warnf("forward %s: %v; closing the connection, not acknowledged", remote, err)
		return false
	}
	done, werr := f.opts.Limits.working(context.Background())
	if werr != nil {
		f.in.Log.Warnf("forward %s: %v; closing the connection, not acknowledged", remote, werr)
		return false
	}
	if err != nil {
		_, err = f.in.Process([]engine.Record{{Err: err, Where: fmt.Sprintf("forward message from %s, tag %s", remote, logsafe.Name(m.tag))}})
	} else {
		_, err = flb.Process(f.in, m.tag, m.entries)
	}
	done()
	if err != nil {
		// No ack: the sender retries the message.
		f.in.Log.Errorf("forward %s: not committed, no ack sent; closing the connection: %v", remote, err)
		return false
	}
	if m.chunk != "" {
		ack := msgp.AppendMapHeader(nil, 1)
		ack = msgp.AppendString(ack, "ack")
		ack = msgp.AppendString(ack, m.chunk)
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(ack); err != nil {
			return false
		}
	}
	return true
}

// gunzip inflates packed into out, within out's bound.
func gunzip(out *buffer, packed []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(packed))
	if err != nil {
		return fmt.Errorf("compressed entries: %v", err)
	}
	if err := out.readAll(zr, inflatedSize(packed)); err != nil {
		if errors.Is(err, errTooLarge) {
			return fmt.Errorf("compressed entries: %w (more than %d bytes inflated)", errMessageTooLarge, out.max)
		}
		if errors.Is(err, errBusy) {
			return err
		}
		return fmt.Errorf("compressed entries: %v", err)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// forwardMessage is one forward protocol message, read.
type forwardMessage struct {
	tag   string
	chunk string // the chunk option: the id to acknowledge, "" for none
	// entries are the message's events laid out as a Fluent Bit chunk
	// ([time, record] one after another).
	entries []byte
}

// decodeForward reads one forward message: its tag, its chunk option and its
// entries (inflate inflates CompressedPackedForward entries). An error means
// the message can never be taken; the chunk option is read even then, when
// it can be found, so that the message is acknowledged. More than
// maxRecords entries is such an error.
func decodeForward(b []byte, maxRecords int, inflate func([]byte) ([]byte, error)) (forwardMessage, error) {
	var m forwardMessage
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return m, fmt.Errorf("not an array: %v", err)
	}
	if n < 2 || n > 4 {
		return m, fmt.Errorf("an array of %d; expected [tag, time, record(, option)] or [tag, entries(, option)]", n)
	}
	// The option is the last element: of 3 in the Forward modes, of 4 in
	// Message mode; found first, so that a message wrong in any other way
	// is still acknowledged.
	second, err := msgp.Skip(b)
	if err != nil {
		return m, fmt.Errorf("tag: %v", err)
	}
	packedMode := msgp.NextType(second) == msgp.ArrayType || msgp.NextType(second) == msgp.BinType || msgp.NextType(second) == msgp.StrType
	optAt := 3
	if packedMode {
		optAt = 2
	}
	var opts map[string]string
	if int(n) == optAt+1 {
		rest := b
		for range optAt {
			if rest, err = msgp.Skip(rest); err != nil {
				break
			}
		}
		if err == nil {
			opts = options(rest)
			m.chunk = opts["chunk"]
		}
	}
	if m.tag, b, err = msgp.ReadStringBytes(b); err != nil {
		return m, fmt.Errorf("tag: %v", err)
	}
	switch msgp.NextType(b) {
	case msgp.ArrayType: // Forward mode: [[time, record], ...]
		k, entries, err := msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			return m, err
		}
		if int64(k) > int64(maxRecords) {
			return m, fmt.Errorf("%d entries, more than max_records (%d)", k, maxRecords)
		}
		rest := entries
		for i := uint32(0); i < k; i++ {
			if rest, err = msgp.Skip(rest); err != nil {
				return m, fmt.Errorf("entry %d: %v", i, err)
			}
		}
		m.entries = entries[:len(entries)-len(rest)]
	case msgp.BinType, msgp.StrType: // PackedForward, maybe compressed
		var packed []byte
		if msgp.NextType(b) == msgp.BinType {
			packed, _, err = msgp.ReadBytesZC(b)
		} else {
			packed, _, err = msgp.ReadStringZC(b)
		}
		if err != nil {
			return m, err
		}
		switch c := opts["compressed"]; c {
		case "gzip":
			if packed, err = inflate(packed); err != nil {
				return m, err
			}
		case "", "text":
		default:
			return m, fmt.Errorf("entries compressed with %s: the forward protocol's compression is gzip (set compress gzip on the sender)", logsafe.Name(c))
		}
		k := 0
		for rest := packed; len(rest) > 0; k++ {
			if k >= maxRecords {
				return m, fmt.Errorf("more than max_records (%d) entries", maxRecords)
			}
			if rest, err = msgp.Skip(rest); err != nil {
				break // the chunk reader reports the rest as malformed
			}
		}
		m.entries = packed
	default: // Message mode: time, record; laid out as one entry
		end, err := msgp.Skip(b)
		if err == nil {
			end, err = msgp.Skip(end)
		}
		if err != nil {
			return m, fmt.Errorf("time and record: %v", err)
		}
		m.entries = append(msgp.AppendArrayHeader(nil, 2), b[:len(b)-len(end)]...)
	}
	return m, nil
}

// options reads the option map's string values.
func options(b []byte) map[string]string {
	out := map[string]string{}
	if len(b) == 0 || msgp.NextType(b) != msgp.MapType {
		return out
	}
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return out
	}
	for i := uint32(0); i < n; i++ {
		var k string
		if k, b, err = msgp.ReadStringBytes(b); err != nil {
			return out
		}
		if msgp.NextType(b) == msgp.StrType {
			var v string
			if v, b, err = msgp.ReadStringBytes(b); err != nil {
				return out
			}
			out[k] = v
			continue
		}
		if b, err = msgp.Skip(b); err != nil {
			return out
		}
	}
	return out
}

// handshake runs the forward protocol's shared-key authentication: HELO
// with a nonce, the client's PING with its digest, PONG with ours.
func (f *Forward) handshake(c net.Conn, r *msgp.Reader) error {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	helo := msgp.AppendArrayHeader(nil, 2)
	helo = msgp.AppendString(helo, "HELO")
	helo = msgp.AppendMapHeader(helo, 3)
	helo = msgp.AppendString(helo, "nonce")
	helo = msgp.AppendBytes(helo, nonce)
	helo = msgp.AppendString(helo, "auth")
	helo = msgp.AppendBytes(helo, nil)
	helo = msgp.AppendString(helo, "keepalive")
	helo = msgp.AppendBool(helo, true)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(helo); err != nil {
		return err
	}
	ping := f.opts.Limits.newBuffer(context.Background(), 64<<10)
	defer ping.release()
	if _, err := r.CopyNext(ping); err != nil {
		return err
	}
	n, b, err := msgp.ReadArrayHeaderBytes(ping.b)
	if err != nil || n < 4 {
		return errors.New("expected PING")
	}
	var kind, host, digest string
	var salt []byte
	if kind, b, err = readStrOrBin(b); err != nil || kind != "PING" {
		return errors.New("expected PING")
	}
	if host, b, err = readStrOrBin(b); err != nil {
		return err
	}
	var s string
	if s, b, err = readStrOrBin(b); err != nil {
		return err
	}
	salt = []byte(s)
	if digest, _, err = readStrOrBin(b); err != nil {
		return err
	}
	want := sha512hex(salt, host, nonce, f.opts.SharedKey)
	ok := subtle.ConstantTimeCompare([]byte(digest), []byte(want)) == 1
	// A refusal says why and nothing more, as Fluentd's does: our digest
	// of the key would let the client test guesses of it offline.
	pong := msgp.AppendArrayHeader(nil, 5)
	pong = msgp.AppendString(pong, "PONG")
	pong = msgp.AppendBool(pong, ok)
	if ok {
		pong = msgp.AppendString(pong, "")
		pong = msgp.AppendString(pong, f.host)
		pong = msgp.AppendString(pong, sha512hex(salt, f.host, nonce, f.opts.SharedKey))
	} else {
		pong = msgp.AppendString(pong, "shared_key mismatch")
		pong = msgp.AppendString(pong, "")
		pong = msgp.AppendString(pong, "")
	}
	if _, err := c.Write(pong); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("shared key mismatch from host %s", logsafe.Name(host))
	}
	return nil
}

func readStrOrBin(b []byte) (string, []byte, error) {
	if msgp.NextType(b) == msgp.BinType {
		v, rest, err := msgp.ReadBytesZC(b)
		return string(v), rest, err
	}
	return msgp.ReadStringBytes(b)
}

func sha512hex(salt []byte, host string, nonce []byte, key string) string {
	h := sha512.New()
	h.Write(salt)
	h.Write([]byte(host))
	h.Write(nonce)
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
