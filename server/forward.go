package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
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

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/flb"
	"github.com/trailwatch/trailwatch/instance"
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

// limitWriter refuses to grow past max bytes.
type limitWriter struct {
	buf *bytes.Buffer
	max int64
}

var errMessageTooLarge = errors.New("forward message too large")

func (w *limitWriter) Write(p []byte) (int, error) {
	if int64(w.buf.Len()+len(p)) > w.max {
		return 0, errMessageTooLarge
	}
	return w.buf.Write(p)
}

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
	var buf bytes.Buffer
	for {
		c.SetReadDeadline(time.Now().Add(f.opts.IdleTimeout))
		buf.Reset()
		if _, err := r.CopyNext(&limitWriter{&buf, f.opts.MaxMessage}); err != nil {
			if !errors.Is(err, io.EOF) && !isTimeout(err) {
				f.in.Log.Warnf("forward %s: %v; closing the connection", remote, err)
			}
			return
		}
		recs, chunk, err := decodeForward(buf.Bytes(), f.opts.MaxMessage)
		if err != nil {
			f.in.Log.Warnf("forward %s: malformed message skipped: %v", remote, err)
			continue
		}
		if _, err := f.in.Process(recs); err != nil {
			// No ack: the sender retries the message.
			f.in.Log.Errorf("forward %s: not committed, no ack sent; closing the connection: %v", remote, err)
			return
		}
		if chunk != "" {
			ack := msgp.AppendMapHeader(nil, 1)
			ack = msgp.AppendString(ack, "ack")
			ack = msgp.AppendString(ack, chunk)
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(ack); err != nil {
				return
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// decodeForward reads one forward message into records and its ack chunk id.
func decodeForward(b []byte, maxSize int64) ([]engine.Record, string, error) {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, "", fmt.Errorf("not an array: %v", err)
	}
	if n < 2 || n > 4 {
		return nil, "", fmt.Errorf("an array of %d; expected [tag, time, record(, option)] or [tag, entries(, option)]", n)
	}
	tag, b, err := msgp.ReadStringBytes(b)
	if err != nil {
		return nil, "", fmt.Errorf("tag: %v", err)
	}
	var recs []engine.Record
	var optBytes []byte
	switch msgp.NextType(b) {
	case msgp.ArrayType: // Forward mode: [[time, record], ...]
		m, rest, err := msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			return nil, "", err
		}
		entries := rest
		for i := uint32(0); i < m; i++ {
			if rest, err = msgp.Skip(rest); err != nil {
				return nil, "", fmt.Errorf("entry %d: %v", i, err)
			}
		}
		recs, _ = flb.DecodeChunk(tag, entries[:len(entries)-len(rest)])
		if n == 3 {
			optBytes = rest
		}
	case msgp.BinType, msgp.StrType: // PackedForward, maybe compressed
		var packed []byte
		if msgp.NextType(b) == msgp.BinType {
			packed, b, err = msgp.ReadBytesZC(b)
		} else {
			var s string
			s, b, err = msgp.ReadStringBytes(b)
			packed = []byte(s)
		}
		if err != nil {
			return nil, "", err
		}
		if n == 3 {
			optBytes = b
		}
		if compressed(optBytes) {
			zr, err := gzip.NewReader(bytes.NewReader(packed))
			if err != nil {
				return nil, "", fmt.Errorf("compressed entries: %v", err)
			}
			if packed, err = io.ReadAll(io.LimitReader(zr, maxSize+1)); err != nil {
				return nil, "", fmt.Errorf("compressed entries: %v", err)
			}
			if int64(len(packed)) > maxSize {
				return nil, "", errMessageTooLarge
			}
		}
		recs, _ = flb.DecodeChunk(tag, packed)
	default: // Message mode: time, record
		if b, err = msgp.Skip(b); err != nil {
			return nil, "", fmt.Errorf("time: %v", err)
		}
		node, rest, err := doc.ReadMsgpack(b)
		if err != nil {
			recs = append(recs, engine.Record{Err: err, Where: "tag " + tag})
			if rest, err = msgp.Skip(b); err != nil {
				return nil, "", err
			}
		} else {
			recs = append(recs, engine.Record{Node: node})
		}
		if n == 4 {
			optBytes = rest
		}
	}
	return recs, chunkOption(optBytes), nil
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

func chunkOption(b []byte) string { return options(b)["chunk"] }

func compressed(b []byte) bool { return options(b)["compressed"] == "gzip" }

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
	var buf bytes.Buffer
	if _, err := r.CopyNext(&limitWriter{&buf, 64 << 10}); err != nil {
		return err
	}
	b := buf.Bytes()
	n, b, err := msgp.ReadArrayHeaderBytes(b)
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
	pong := msgp.AppendArrayHeader(nil, 5)
	pong = msgp.AppendString(pong, "PONG")
	pong = msgp.AppendBool(pong, ok)
	if ok {
		pong = msgp.AppendString(pong, "")
	} else {
		pong = msgp.AppendString(pong, "shared_key mismatch")
	}
	pong = msgp.AppendString(pong, f.host)
	pong = msgp.AppendString(pong, sha512hex(salt, f.host, nonce, f.opts.SharedKey))
	if _, err := c.Write(pong); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("shared key mismatch from %s", host)
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
