// Package sink delivers alerts from the state file's outbox: to a Fluent Bit
// (or Fluentd) in_forward input with the forward protocol's acknowledgement,
// to an NDJSON file, to stdout, or by HTTP POST. Each sink reads the outbox
// at its own pace; an alert leaves the outbox once every sink has taken it.
// A sink that is down is retried with backoff while records keep flowing.
package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jsoniter "github.com/json-iterator/go"
)

// Item is one alert to deliver.
type Item struct {
	Seq  uint64
	Tag  string
	Time time.Time
	Doc  []byte // the alert's JSON
}

// Sink takes batches of alerts. Send returns nil only when the whole batch
// was taken (written, acknowledged, answered 2xx).
type Sink interface {
	Name() string
	Send(ctx context.Context, items []Item) error
	Close() error
}

// ---- stdout and file ----

// writerSink writes NDJSON lines.
type writerSink struct {
	name string
	mu   *sync.Mutex
	w    io.Writer
	sync func() error
	// f is the file of a file sink: a batch whose write fails part-way
	// (a full disk) is cut off it, so that the retry starts a line of its
	// own (it was appended to the cut line: the first alert was lost
	// inside an unparsable line).
	f *os.File
	// path is a file sink's path, checked before each batch for a
	// rotation; open is the file written, for Close, which does not wait
	// for the lock (it ends a write that hangs); closed turns later
	// batches away.
	path   string
	open   atomic.Pointer[os.File]
	closed atomic.Bool
}

var stdoutMu sync.Mutex

// NewStdout writes alerts to standard output, one JSON document a line.
func NewStdout() Sink { return &writerSink{name: "stdout", mu: &stdoutMu, w: os.Stdout} }

// NewWriter writes alerts to w (for tests and embedding).
func NewWriter(name string, w io.Writer) Sink {
	return &writerSink{name: name, mu: &sync.Mutex{}, w: w}
}

// NewFile appends alerts to an NDJSON file, created 0600, synced after each
// batch so that an acknowledged alert is on disk. A file renamed or removed
// under it (logrotate, without copytruncate) is noticed at the next batch,
// which goes to a new file at path.
func NewFile(path string) (Sink, error) {
	f, err := openAlertFile(path)
	if err != nil {
		return nil, err
	}
	s := &writerSink{name: "file:" + path, mu: &sync.Mutex{}, w: f, sync: f.Sync, f: f, path: path}
	s.open.Store(f)
	return s, nil
}

// openAlertFile opens (or creates) an alert file for appending.
func openAlertFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("alert_file %s: %w", path, err)
	}
	// A process killed mid-write leaves a cut last line: end it, so the
	// next alert starts a line of its own (the cut alert is sent again
	// from the outbox, which it never left).
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			f.Write([]byte{'\n'})
		}
	}
	return f, nil
}

// reopenIfMoved opens the file at path again when the one written is no
// longer there (renamed or removed by a log rotation); the lock held. The
// file left behind was synced after its last batch.
func (s *writerSink) reopenIfMoved() error {
	at, err := os.Stat(s.path)
	if err == nil {
		if held, herr := s.f.Stat(); herr == nil && os.SameFile(at, held) {
			return nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("alert_file %s: %w", s.path, err)
	}
	f, err := openAlertFile(s.path)
	if err != nil {
		return err
	}
	s.open.Store(f)
	if s.closed.Load() { // Close ran meanwhile: it may have missed either
		f.Close()
		s.f.Close()
		return errSinkClosed
	}
	s.f.Close()
	s.w, s.sync, s.f = f, f.Sync, f
	return nil
}

func (s *writerSink) Name() string { return s.name }

func (s *writerSink) Send(_ context.Context, items []Item) error {
	var buf bytes.Buffer
	for _, it := range items {
		buf.Write(it.Doc)
		buf.WriteByte('\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path != "" {
		if s.closed.Load() {
			return errSinkClosed
		}
		if err := s.reopenIfMoved(); err != nil {
			return err
		}
	}
	var end int64 = -1
	if s.f != nil {
		end, _ = s.f.Seek(0, io.SeekEnd)
	}
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		if end >= 0 {
			if terr := s.f.Truncate(end); terr != nil {
				return fmt.Errorf("%w (and the part written could not be cut off: %v)", err, terr)
			}
		}
		return err
	}
	if s.sync != nil {
		return s.sync()
	}
	return nil
}

// errSinkClosed: a batch after Close.
var errSinkClosed = errors.New("the sink is closed")

func (s *writerSink) Close() error {
	if s.path != "" {
		s.closed.Store(true)
		return s.open.Load().Close()
	}
	return nil
}

// ---- http ----

type httpSink struct {
	url    string
	token  string
	client *http.Client
}

// NewHTTP POSTs each batch as NDJSON (application/x-ndjson) to url; any 2xx
// answer takes the batch. token, when set, is sent as a bearer token.
func NewHTTP(url, token string) (Sink, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("alert_http %q: expected an http:// or https:// URL", RedactURL(url))
	}
	// A redirect is an answer that did not take the batch: followed, a
	// 302 or 303 became a GET without the alerts, whose 200 acknowledged
	// them.
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &httpSink{url: url, token: token, client: client}, nil
}

// Name is the sink's identity in the state file (its outbox cursor), which
// holds the whole URL; Label is what logs and metrics show.
func (s *httpSink) Name() string { return "http:" + s.url }

// RedactURL shortens a URL to what may be shown: its scheme and host, and
// "/…" for the rest. Credentials (user:password@), a secret in the path and
// tokens in the query stay out of logs and metric labels.
func RedactURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		return "(a URL that does not parse)"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		out += "/…"
	}
	return out
}

// Label is how logs and metrics name a sink: its Name, with an HTTP sink's
// URL redacted (RedactURL).
func Label(s Sink) string {
	if h, ok := s.(*httpSink); ok {
		return "http:" + RedactURL(h.url)
	}
	return s.Name()
}

func (s *httpSink) Send(ctx context.Context, items []Item) error {
	var buf bytes.Buffer
	for _, it := range items {
		buf.Write(it.Doc)
		buf.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			ue.URL = RedactURL(s.url) // it is logged
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusRequestEntityTooLarge {
		return fmt.Errorf("%s answered %s for %d alerts: %w", RedactURL(s.url), resp.Status, len(items), ErrTooLarge)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", RedactURL(s.url), resp.Status)
	}
	return nil
}

// ErrTooLarge is a sink's answer that a batch is too large to take (HTTP
// 413): the dispatcher sends it again in halves.
var ErrTooLarge = errors.New("the batch is too large for the receiver")

func (s *httpSink) Close() error { s.client.CloseIdleConnections(); return nil }

// ---- tags ----

// TagTemplate renders an alert's tag: {rule_id} and {rule_name} are replaced
// by the alert's rule (the name lower-cased, runs of other characters as
// one underscore), so routes can match alert.<rule>.
type TagTemplate string

// Render returns the tag for an alert document.
func (t TagTemplate) Render(doc []byte) string {
	s := string(t)
	if !strings.Contains(s, "{") {
		return s
	}
	if strings.Contains(s, "{rule_id}") {
		s = strings.ReplaceAll(s, "{rule_id}", jsoniter.Get(doc, "kibana.alert.rule.rule_id").ToString())
	}
	if strings.Contains(s, "{rule_name}") {
		name := slug(jsoniter.Get(doc, "kibana.alert.rule.name").ToString())
		if name == "" { // a name with no letter or digit of a-z, 0-9 (one in Japanese): the rule_id's
			name = slug(jsoniter.Get(doc, "kibana.alert.rule.rule_id").ToString())
		}
		s = strings.ReplaceAll(s, "{rule_name}", name)
	}
	return s
}

func slug(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}
