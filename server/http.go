// Package server is `trailwatch serve`: the engine as a sidecar for agents
// that cannot load a plugin (Vector above all). It takes CloudTrail records
// over HTTP (what Vector's http sink, EventBridge API destinations and
// Firehose HTTP endpoints send) and over Fluent's forward protocol (Fluent
// Bit's and Fluentd's forward outputs), and answers only after the batch is
// committed, so the sender's acknowledgements give at-least-once delivery.
package server

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/internal/jsonsplit"
	"github.com/trailwatch/trailwatch/store"
)

// HTTPOptions tune the HTTP listener.
type HTTPOptions struct {
	Token   string // bearer token required on POST / ("" = none)
	MaxBody int64  // bytes, after decompression; above it the answer is 413
	// MaxRecords bounds the records of one body (a log file's events
	// counted one by one); above it the answer is 413.
	MaxRecords int
	// Limits, shared with the forward listener, bound the bytes held and
	// the bodies evaluated at once (default: NewLimits with
	// DefaultMaxHeld(MaxBody) and DefaultWorkers).
	Limits *Limits
}

// DefaultMaxBody is the body limit when none is set.
const DefaultMaxBody = 32 << 20

// DefaultMaxRecords is the record limit of a body or a forward message when
// none is set: far above what Vector, Fluent Bit and Firehose send at once
// (a few thousand CloudTrail records).
const DefaultMaxRecords = 100_000

// Handler serves POST / (ingest), GET /healthz and GET /metrics.
type Handler struct {
	in       *instance.Instance
	opts     HTTPOptions
	mux      *http.ServeMux
	registry *prometheus.Registry
}

// NewHandler builds the HTTP handler of an instance. Its senders retry what
// is not answered 200, so the instance refuses a batch whose alerts would
// not fit in the outbox rather than drop them (instance.AtLeastOnce).
func NewHandler(in *instance.Instance, o HTTPOptions) *Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.Limits == nil {
		o.Limits = NewLimits(DefaultMaxHeld(o.MaxBody), DefaultWorkers)
	}
	in.AtLeastOnce.Store(true)
	h := &Handler{in: in, opts: o, mux: http.NewServeMux(), registry: prometheus.NewRegistry()}
	h.registry.MustRegister(instance.NewCollector(in))
	h.mux.HandleFunc("POST /{$}", h.ingest)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	// The metrics name rules and sinks: behind the token too, when one is
	// set (Prometheus sends it with `authorization: credentials`).
	metrics := promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{})
	h.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if !h.authorized(r) {
			h.unauthorized(w, answer{})
			return
		}
		metrics.ServeHTTP(w, r)
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// answer is the JSON body of every ingest response.
type answer struct {
	Records   int    `json:"records"`
	Malformed int    `json:"malformed"`
	Alerts    int    `json:"alerts"`
	Error     string `json:"error,omitempty"`
	// Firehose's HTTP endpoint protocol wants these echoed.
	RequestID    string `json:"requestId,omitempty"`
	Timestamp    int64  `json:"timestamp,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

func reply(w http.ResponseWriter, status int, a answer) {
	if a.Error != "" && a.RequestID != "" {
		a.ErrorMessage = a.Error
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := jsoniter.Marshal(a)
	w.Write(append(b, '\n'))
}

func (h *Handler) ingest(w http.ResponseWriter, r *http.Request) {
	firehoseID := r.Header.Get("X-Amz-Firehose-Request-Id")
	base := answer{RequestID: firehoseID}
	if firehoseID != "" {
		base.Timestamp = time.Now().UnixMilli()
	}
	if !h.authorized(r) {
		h.unauthorized(w, base)
		return
	}
	if h.in.OutboxFull() {
		h.outboxFull(w, base, nil)
		return
	}
	buf, err := h.readBody(w, r)
	if err != nil {
		base.Error = err.Error()
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig) || errors.Is(err, errTooLarge):
			reply(w, http.StatusRequestEntityTooLarge, base)
		case errors.Is(err, errBusy):
			h.retryLater(w, base)
		default:
			reply(w, http.StatusBadRequest, base)
		}
		return
	}
	defer buf.release()
	b, err := splitBody(buf.b, firehoseID != "", h.opts.MaxRecords)
	if err != nil && !errors.Is(err, errTooManyRecords) {
		base.Error = err.Error()
		reply(w, http.StatusBadRequest, base)
		return
	}
	if err != nil || b.count(h.opts.MaxRecords) > h.opts.MaxRecords {
		base.Error = fmt.Sprintf("more than max_records (%d) records: send smaller batches", h.opts.MaxRecords)
		reply(w, http.StatusRequestEntityTooLarge, base)
		return
	}
	done, err := h.opts.Limits.working(r.Context())
	if err != nil {
		base.Error = err.Error()
		h.retryLater(w, base)
		return
	}
	a, err := h.process(b)
	done()
	a.RequestID, a.Timestamp = base.RequestID, base.Timestamp
	switch {
	case errors.Is(err, store.ErrOutboxFull):
		h.outboxFull(w, base, err)
	case errors.Is(err, engine.ErrRecordsInFlight), errors.Is(err, instance.ErrClosed):
		base.Error = "not committed, retry: " + err.Error()
		h.retryLater(w, base)
	case err != nil:
		base.Error = "not committed, retry: " + err.Error()
		reply(w, http.StatusInternalServerError, base)
	case a.Malformed > 0:
		a.Error = fmt.Sprintf("%d malformed records skipped (the %d good ones were processed); first: %s", a.Malformed, a.Records, a.Error)
		reply(w, http.StatusBadRequest, a)
	default:
		reply(w, http.StatusOK, a)
	}
}

// batchRecords is how many records of a body one commit takes, and
// pieceRecords and pieceBytes how many are handed to the engine at a time
// (which reads their text in place and keeps only the records that match
// until their batch commits).
const (
	batchRecords = 4096
	pieceRecords = 256
	pieceBytes   = 256 << 10
)

// process evaluates a body's records, committing every batchRecords: the
// answer is 200 only once all are committed (a batch that fails leaves the
// earlier ones committed: the sender's retry of the body makes no second
// alert, as alert ids are remembered). a.Error holds the first malformed
// record's place and error.
func (h *Handler) process(b *body) (answer, error) {
	var a answer
	next, stop := iter.Pull(b.records())
	defer stop()
	piece := make([]engine.Record, 0, pieceRecords)
	for more := true; more; {
		res, err := h.in.ProcessPieces(func(add func([]engine.Record)) {
			for n := 0; more && n < batchRecords; {
				size := 0
				for more && len(piece) < pieceRecords && size < pieceBytes && n < batchRecords {
					var rec engine.Record
					if rec, more = next(); !more {
						break
					}
					piece = append(piece, rec)
					size += b.last
					n++
				}
				if len(piece) > 0 {
					add(piece)
				}
				for _, rec := range piece { // Err set by the body's reader, or by the engine for JSON text
					if rec.Err != nil {
						if a.Malformed++; a.Malformed == 1 {
							a.Error = fmt.Sprintf("%s: %v", rec.Where, rec.Err)
						}
					} else {
						a.Records++
					}
				}
				clear(piece)
				piece = piece[:0]
			}
		})
		if err != nil {
			return a, err
		}
		a.Alerts += len(res.Alerts)
	}
	return a, nil
}

// outboxFull answers 503 with Retry-After: the sinks are behind (err, when
// set, says the batch's alerts would not fit); nothing of the batch was
// written, and the sender retries it later.
func (h *Handler) outboxFull(w http.ResponseWriter, a answer, err error) {
	a.Error = "the alert outbox is full (sinks are down or slow); retry later"
	if err != nil {
		a.Error += ": " + err.Error()
	}
	h.retryLater(w, a)
}

// retryLater answers 503 with Retry-After and a's error.
func (h *Handler) retryLater(w http.ResponseWriter, a answer) {
	w.Header().Set("Retry-After", "5")
	reply(w, http.StatusServiceUnavailable, a)
}

// unauthorized answers 401 for a missing or wrong bearer token.
func (h *Handler) unauthorized(w http.ResponseWriter, a answer) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="trailwatch"`)
	a.Error = "missing or wrong bearer token"
	reply(w, http.StatusUnauthorized, a)
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	// The scheme is case-insensitive (RFC 9110, 11.1): "bearer" is
	// "Bearer".
	scheme, got, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimLeft(got, " ")), []byte(h.opts.Token)) == 1
}

var errTooLarge = errors.New("body too large")

// readBody reads the body, gunzipping it when the sender says so (or when
// it starts with gzip's magic), within MaxBody before and after, into
// memory held against the Limits.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (*buffer, error) {
	raw := h.opts.Limits.newBuffer(r.Context(), h.opts.MaxBody)
	// Room is taken as the body comes, not for the length it announces: a
	// slow sender holds only what it has sent.
	if err := raw.readAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody), min(r.ContentLength, 64<<10)); err != nil {
		raw.release()
		return nil, err
	}
	enc := strings.ToLower(r.Header.Get("Content-Encoding"))
	if enc == "gzip" || (enc == "" && len(raw.b) > 2 && raw.b[0] == 0x1f && raw.b[1] == 0x8b) {
		defer raw.release()
		zr, err := gzip.NewReader(bytes.NewReader(raw.b))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %v", err)
		}
		out := h.opts.Limits.newBuffer(r.Context(), h.opts.MaxBody)
		if err := out.readAll(zr, inflatedSize(raw.b)); err != nil {
			out.release()
			if errors.Is(err, errTooLarge) {
				return nil, fmt.Errorf("%w: more than %d bytes once decompressed", errTooLarge, h.opts.MaxBody)
			}
			if errors.Is(err, errBusy) {
				return nil, err
			}
			return nil, fmt.Errorf("gzip body: %v", err)
		}
		return out, nil
	}
	if enc != "" && enc != "identity" {
		raw.release()
		return nil, fmt.Errorf("Content-Encoding %q: expected gzip or none", enc)
	}
	return raw, nil
}

// body is a request body's records: JSON text walked one record at a time
// (an array's elements, NDJSON lines, one pretty-printed object), or a
// Firehose delivery's records (each base64 of a record, or of NDJSON).
type body struct {
	texts [][]byte // the JSON text, or each Firehose record's decoded data
	where []string // how the records of each text are named
	lines []bool   // each text is NDJSON (else values one after another)
	last  int      // the size of the record records() gave last
	bad   []engine.Record
}

// errTooManyRecords: a body holds more than max_records records.
var errTooManyRecords = errors.New("too many records")

// splitBody reads what kind of body it is (and decodes a Firehose
// delivery's records, refusing more than maxRecords of them with
// errTooManyRecords); the records themselves are read by records().
func splitBody(raw []byte, firehose bool, maxRecords int) (*body, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return nil, errors.New("empty body")
	}
	if firehose {
		return firehoseBody(t, maxRecords)
	}
	return &body{texts: [][]byte{t}, where: []string{""}, lines: []bool{isLines(t)}}, nil
}

// isLines reports whether the text t (trimmed) is read as NDJSON: an
// array, or one pretty-printed object (an EventBridge event, say), is read
// as values.
func isLines(t []byte) bool {
	if len(t) == 0 {
		return true
	}
	end, closed := jsonsplit.End(t, 0)
	return t[0] != '[' && !(closed && end == len(t))
}

// firehoseBody decodes a Firehose delivery ({"records": [{"data":
// base64}, ...]}) a record at a time, stopping past maxRecords records:
// what it holds is bounded by the body, whatever the body holds.
func firehoseBody(t []byte, maxRecords int) (*body, error) {
	if !jsoniter.Valid(t) {
		var skipped struct{} // the syntax error's place, nothing built
		return nil, fmt.Errorf("Firehose delivery is not JSON: %v", jsoniter.Unmarshal(t, &skipped))
	}
	it := jsoniter.ConfigDefault.BorrowIterator(t)
	defer jsoniter.ConfigDefault.ReturnIterator(it)
	b := &body{}
	n := 0
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		if !strings.EqualFold(field, "records") {
			it.Skip()
			return true
		}
		return it.ReadArrayCB(func(it *jsoniter.Iterator) bool {
			if n++; n > maxRecords {
				return false
			}
			var data string
			it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
				if strings.EqualFold(field, "data") {
					data = it.ReadString()
				} else {
					it.Skip()
				}
				return true
			})
			if it.Error != nil {
				return false
			}
			where := "records[" + strconv.Itoa(n-1) + "]"
			decoded, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				b.bad = append(b.bad, engine.Record{Err: fmt.Errorf("data is not base64: %v", err), Where: where})
				return true
			}
			decoded = bytes.TrimSpace(decoded)
			b.texts, b.where, b.lines = append(b.texts, decoded), append(b.where, where+" "), append(b.lines, isLines(decoded))
			return true
		})
	})
	switch {
	case n > maxRecords:
		return nil, errTooManyRecords
	case it.Error != nil && !errors.Is(it.Error, io.EOF):
		return nil, fmt.Errorf("Firehose delivery: %v", it.Error)
	}
	return b, nil
}

// count is how many records the body holds, counted up to one past upTo.
func (b *body) count(upTo int) int {
	n := len(b.bad)
	for i, t := range b.texts {
		if n > upTo {
			break
		}
		n += jsonsplit.Count(t, b.lines[i], upTo-n)
	}
	return n
}

// records parses the body's records one at a time.
func (b *body) records() iter.Seq[engine.Record] {
	return func(yield func(engine.Record) bool) {
		for _, r := range b.bad {
			if !yield(r) {
				return
			}
		}
		for i, t := range b.texts {
			seq := jsonsplit.Values(t, 1)
			if b.lines[i] {
				seq = jsonsplit.Lines(t, 1)
			}
			for r := range seq {
				b.last = len(r.Data)
				if !yield(parseRecord(r, b.where[i])) {
					return
				}
			}
		}
	}
}

// parseRecord makes one record of a body's text, named for messages by its
// element or line (after prefix).
func parseRecord(r jsonsplit.Record, prefix string) engine.Record {
	where := prefix + "line " + strconv.Itoa(r.Line)
	if r.Element >= 0 {
		where = prefix + "element " + strconv.Itoa(r.Element) + " (line " + strconv.Itoa(r.Line) + ")"
	}
	if r.Err != "" {
		return engine.Record{Err: errors.New(r.Err), Where: where}
	}
	// Read in place by the engine (the text is a view of the body), which
	// sets Err on a malformed record.
	return engine.Record{JSON: r.Data, Where: where}
}
