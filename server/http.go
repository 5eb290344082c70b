// Package server is `trailwatch serve`: the engine as a sidecar for agents
// that cannot load a plugin (Vector above all). It takes CloudTrail records
// over HTTP (what Vector's http sink, EventBridge API destinations and
// Firehose HTTP endpoints send) and over Fluent's forward protocol (Fluent
// Bit's and Fluentd's forward outputs), and answers only after the batch is
// committed, so the sender's acknowledgements give at-least-once delivery.
package server

import (
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/store"
)

// HTTPOptions tune the HTTP listener.
type HTTPOptions struct {
	Token   string // bearer token required on POST / ("" = none)
	MaxBody int64  // bytes, after decompression; above it the answer is 413
}

// DefaultMaxBody is the body limit when none is set.
const DefaultMaxBody = 32 << 20

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
	in.AtLeastOnce.Store(true)
	h := &Handler{in: in, opts: o, mux: http.NewServeMux(), registry: prometheus.NewRegistry()}
	h.registry.MustRegister(instance.NewCollector(in))
	h.mux.HandleFunc("POST /{$}", h.ingest)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{}))
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
		w.Header().Set("WWW-Authenticate", `Bearer realm="trailwatch"`)
		base.Error = "missing or wrong bearer token"
		reply(w, http.StatusUnauthorized, base)
		return
	}
	if h.in.OutboxFull() {
		h.outboxFull(w, base, nil)
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		base.Error = err.Error()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, errTooLarge) {
			reply(w, http.StatusRequestEntityTooLarge, base)
			return
		}
		reply(w, http.StatusBadRequest, base)
		return
	}
	recs, err := splitBody(body, firehoseID != "")
	if err != nil {
		base.Error = err.Error()
		reply(w, http.StatusBadRequest, base)
		return
	}
	res, err := h.in.Process(recs)
	if errors.Is(err, store.ErrOutboxFull) {
		h.outboxFull(w, base, err)
		return
	}
	if err != nil {
		base.Error = "not committed, retry: " + err.Error()
		reply(w, http.StatusInternalServerError, base)
		return
	}
	bad := 0
	for _, rec := range recs { // Err set by splitBody, or by the engine for JSON text
		if rec.Err != nil {
			bad++
		}
	}
	a := base
	a.Records, a.Malformed, a.Alerts = len(recs)-bad, bad, len(res.Alerts)
	if bad > 0 {
		first := ""
		for _, rec := range recs {
			if rec.Err != nil {
				first = fmt.Sprintf("%s: %v", rec.Where, rec.Err)
				break
			}
		}
		a.Error = fmt.Sprintf("%d malformed records skipped (the %d good ones were processed); first: %s", bad, a.Records, first)
		reply(w, http.StatusBadRequest, a)
		return
	}
	reply(w, http.StatusOK, a)
}

// outboxFull answers 503 with Retry-After: the sinks are behind (err, when
// set, says the batch's alerts would not fit); nothing of the batch was
// written, and the sender retries it later.
func (h *Handler) outboxFull(w http.ResponseWriter, a answer, err error) {
	w.Header().Set("Retry-After", "5")
	a.Error = "the alert outbox is full (sinks are down or slow); retry later"
	if err != nil {
		a.Error += ": " + err.Error()
	}
	reply(w, http.StatusServiceUnavailable, a)
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) == 1
}

var errTooLarge = errors.New("body too large")

// readBody reads the body, gunzipping it when the sender says so (or when
// it starts with gzip's magic), within MaxBody before and after.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		return nil, err
	}
	enc := strings.ToLower(r.Header.Get("Content-Encoding"))
	if enc == "gzip" || (enc == "" && len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %v", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, h.opts.MaxBody+1))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %v", err)
		}
		if int64(len(out)) > h.opts.MaxBody {
			return nil, fmt.Errorf("%w: more than %d bytes once decompressed", errTooLarge, h.opts.MaxBody)
		}
		return out, nil
	}
	if enc != "" && enc != "identity" {
		return nil, fmt.Errorf("Content-Encoding %q: expected gzip or none", enc)
	}
	return raw, nil
}

// splitBody turns a body into records: a JSON array of records, NDJSON (one
// record a line, which covers a single JSON object), or a Firehose delivery
// whose records carry base64 data (each a record, or NDJSON lines).
func splitBody(body []byte, firehose bool) ([]engine.Record, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return nil, errors.New("empty body")
	}
	if firehose {
		var fh struct {
			Records []struct {
				Data string `json:"data"`
			} `json:"records"`
		}
		if err := jsoniter.Unmarshal(t, &fh); err != nil {
			return nil, fmt.Errorf("Firehose delivery is not JSON: %v", err)
		}
		var out []engine.Record
		for i, r := range fh.Records {
			data, err := base64.StdEncoding.DecodeString(r.Data)
			if err != nil {
				out = append(out, engine.Record{Err: fmt.Errorf("data is not base64: %v", err), Where: fmt.Sprintf("records[%d]", i)})
				continue
			}
			out = append(out, lines(data, fmt.Sprintf("records[%d]", i))...)
		}
		return out, nil
	}
	if t[0] == '[' {
		n, err := doc.ParseJSON(t)
		if err != nil {
			return nil, fmt.Errorf("body is not a JSON array: %v", err)
		}
		out := make([]engine.Record, 0, len(n.Arr))
		for _, el := range n.Arr {
			out = append(out, engine.Record{Node: el})
		}
		return out, nil
	}
	if t[0] == '{' && bytes.IndexByte(t, '\n') >= 0 {
		// One pretty-printed object (an EventBridge event, say), not NDJSON.
		if n, err := doc.ParseJSON(t); err == nil {
			return []engine.Record{{Node: n}}, nil
		}
	}
	return lines(t, "line"), nil
}

func lines(data []byte, where string) []engine.Record {
	var out []engine.Record
	for n := 1; len(data) > 0; n++ {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if l = bytes.TrimSpace(l); len(l) == 0 {
			continue
		}
		// Read in place by the engine (the line is a view of the body),
		// which sets Err on a malformed line.
		out = append(out, engine.Record{JSON: l, Where: where + " " + strconv.Itoa(n)})
	}
	return out
}
