package sink

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/tinylib/msgp/msgp"
)

// forwardSink sends alerts with Fluent's forward protocol, one message a
// alert, each acknowledged by the receiver before the next is sent (the
// chunk option; Fluent Bit's and Fluentd's in_forward answer it). It is
// its own small client: a receiver's answer is read to 1 KB at most (a
// library read an ack of any announced length: 4 GiB for one), a
// cancelled Send (Close, a reload) cuts the connection under it at once,
// and nothing is written to stderr.
type forwardSink struct {
	addr             string
	network, address string
	dial, write, ack time.Duration // timeouts
	mu               sync.Mutex
	conn             net.Conn
}

// maxAck bounds a receiver's answer to one message.
const maxAck = 1 << 10

// NewForward sends alerts with Fluent's forward protocol to addr (host:port,
// or the path of a Unix socket), each under its tag, and waits for the
// receiver's acknowledgement of every message.
func NewForward(addr string) (Sink, error) {
	s := &forwardSink{addr: addr, dial: 5 * time.Second, write: 10 * time.Second, ack: 10 * time.Second}
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix://") {
		s.network, s.address = "unix", strings.TrimPrefix(addr, "unix://")
		return s, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("alert_forward %q: expected host:port or a Unix socket path: %v", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("alert_forward %q: bad port %q", addr, port)
	}
	s.network, s.address = "tcp", net.JoinHostPort(host, port)
	return s, nil
}

func (s *forwardSink) Name() string { return "forward:" + s.addr }

// numberJSON decodes numbers as their text (json.Number), for numbers.
var numberJSON = jsoniter.Config{UseNumber: true}.Froze()

// numbers turns an alert's numbers into MessagePack's: an integer as an
// integer (exact, where float64 rounded 12345678901234567891), a fraction
// as a float, and a number no float holds (1e400, which a record may carry
// in its request parameters) as its text. Decoded as float64, 1e400 was an
// error that the sink retried for ever: the outbox filled behind it.
func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return n
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return string(x)
	}
	return v
}

func (s *forwardSink) Send(ctx context.Context, items []Item) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.send(ctx, it); err != nil {
			if s.conn != nil {
				s.conn.Close() // the next attempt dials again
				s.conn = nil
			}
			return err
		}
	}
	return nil
}

// send sends one alert and waits for its acknowledgement.
func (s *forwardSink) send(ctx context.Context, it Item) error {
	var m map[string]any
	if err := numberJSON.Unmarshal(it.Doc, &m); err != nil {
		return fmt.Errorf("alert %d is not JSON: %w", it.Seq, err)
	}
	var id [16]byte
	rand.Read(id[:])
	chunk := base64.StdEncoding.EncodeToString(id[:])
	msg := msgp.AppendArrayHeader(nil, 4)
	msg = msgp.AppendString(msg, it.Tag)
	msg = appendEventTime(msg, it.Time)
	msg, err := msgp.AppendIntf(msg, numbers(m))
	if err != nil {
		return fmt.Errorf("alert %d: %w", it.Seq, err)
	}
	msg = msgp.AppendMapHeader(msg, 1)
	msg = msgp.AppendString(msgp.AppendString(msg, "chunk"), chunk)
	if s.conn == nil {
		d := net.Dialer{Timeout: s.dial}
		c, err := d.DialContext(ctx, s.network, s.address)
		if err != nil {
			return err
		}
		s.conn = c
	}
	c := s.conn
	c.SetWriteDeadline(time.Now().Add(s.write))
	// A cancelled context ends a write or a wait for the ack in flight at
	// once (watched after the write deadline is set, so that it wins).
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("%s: %w", s.addr, err)
	}
	c.SetReadDeadline(time.Now().Add(s.ack))
	if err := ctx.Err(); err != nil {
		return err // cancelled before the read deadline was set: it may have undone the cancel's
	}
	got, err := readAck(c)
	if err != nil {
		return fmt.Errorf("%s: the acknowledgement of alert %d: %w", s.addr, it.Seq, err)
	}
	if got != chunk {
		return fmt.Errorf("%s: acknowledged %q, not alert %d's chunk", s.addr, got, it.Seq)
	}
	return nil
}

// appendEventTime appends t as the forward protocol's EventTime (the
// MessagePack extension 0: seconds and nanoseconds, big-endian).
func appendEventTime(b []byte, t time.Time) []byte {
	b = append(b, 0xd7, 0x00)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// readAck reads a receiver's answer ({"ack": chunk}) from c, maxAck bytes
// at most, and returns its ack.
func readAck(c net.Conn) (string, error) {
	var arr [maxAck]byte
	have := 0
	for {
		if have > 0 {
			if _, err := msgp.Skip(arr[:have]); err == nil {
				break
			} else if !errors.Is(err, msgp.ErrShortBytes) {
				return "", fmt.Errorf("not MessagePack: %w", err)
			}
		}
		if have == maxAck {
			return "", fmt.Errorf("an answer longer than %d bytes", maxAck)
		}
		m, err := c.Read(arr[have:])
		have += m
		if err != nil && m == 0 {
			return "", err
		}
	}
	n, rest, err := msgp.ReadMapHeaderBytes(arr[:have])
	if err != nil {
		return "", fmt.Errorf("not a map: %w", err)
	}
	for range n {
		var k []byte
		if k, rest, err = msgp.ReadMapKeyZC(rest); err != nil {
			return "", err
		}
		if string(k) == "ack" {
			v, _, err := msgp.ReadStringZC(rest)
			if err != nil {
				return "", fmt.Errorf("ack: %w", err)
			}
			return string(v), nil
		}
		if rest, err = msgp.Skip(rest); err != nil {
			return "", err
		}
	}
	return "", errors.New("no ack in the answer")
}

func (s *forwardSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		err := s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}
