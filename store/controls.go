package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Alert suppression and per-rule caps, as Elastic defines them, kept in the
// state file so that they survive restarts.

var (
	// bucketSuppress holds one open suppression group per key: its
	// window, count and the alert that opened it.
	bucketSuppress = []byte("suppress")
	// bucketCaps holds, per rule, the current max_signals window.
	bucketCaps = []byte("caps")
	// bucketCapDocs holds, per rule, one alert of its current max_signals
	// window, the summary's template: apart from the windows, so that
	// counting an alert rewrites a page of small counters, not documents.
	bucketCapDocs = []byte("cap_docs")
)

// Policy is what the store enforces on one alert.
type Policy struct {
	// LegacyKey is the group's key as builds before the values were
	// length-prefixed made it: a group such a build opened is found under
	// it once, and moved to SuppressKey.
	LegacyKey string
	// SuppressKey groups alerts (rule id and group_by values); "" means no
	// suppression. The first alert of a group goes out; the rest within
	// SuppressFor are counted into it, and when the window closes the
	// alert goes out again with its final count.
	SuppressKey string
	SuppressFor time.Duration
	// Terms are the group's field values, for kibana.alert.suppression.terms.
	Terms []SuppressTerm
	// At is the alert's own time (its event's timestamp, a threshold
	// group's first and last events): kibana.alert.suppression.start and
	// .end come from it, as Kibana's getSuppressionAlertFields takes the
	// event's primary timestamp. Zero: the batch's clock.
	At, AtEnd time.Time
	// Now, when set, is the clock the alert's windows are judged on (a
	// scheduled run's time), as Kibana judges them on the execution's
	// time; zero: the batch's. SuppressNow, when set, is the suppression
	// window's alone (a record's eventTime on the event clock: the
	// max_signals window stays on the batch's, which never goes back).
	Now, SuppressNow time.Time
	// MaxSignals caps the alerts of RuleID per Interval; 0 means no cap.
	RuleID     string
	MaxSignals int
	Interval   time.Duration
}

// SuppressTerm is one group_by field and its value.
type SuppressTerm struct {
	Field string `json:"field"`
	Value any    `json:"value"`
}

type suppressState struct {
	Start time.Time      `json:"start"`
	End   time.Time      `json:"end"`
	Until time.Time      `json:"until"`
	Count int            `json:"count"` // alerts suppressed into it
	Terms []SuppressTerm `json:"terms"`
	Doc   []byte         `json:"doc"`
}

// capState is a rule's max_signals window: start and end (Unix
// nanoseconds), alerts sent and alerts capped, 8 bytes each. One of the
// rule's alerts of the window, the summary's template, is kept in
// bucketCapDocs, written once per window.
type capState struct {
	Start, End    time.Time
	Count, Capped int
}

// capCache holds a commit's max_signals windows, read on first use and
// written once at its end (flush): a rule's alerts in one batch cost one
// write, not one each.
type capCache struct {
	m     map[string]*capState
	order []string // rule ids in first-use order, for flush
}

func (c *capCache) get(tx *bolt.Tx, rule string) *capState {
	if st, ok := c.m[rule]; ok {
		return st
	}
	if c.m == nil {
		c.m = map[string]*capState{}
	}
	st, _ := readCap(tx.Bucket(bucketCaps).Get([]byte(rule)))
	c.m[rule] = &st
	c.order = append(c.order, rule)
	return &st
}

// flush writes the windows the commit used.
func (c *capCache) flush(tx *bolt.Tx) error {
	b := tx.Bucket(bucketCaps)
	for _, rule := range c.order {
		if err := b.Put([]byte(rule), c.m[rule].bytes()); err != nil {
			return err
		}
	}
	return nil
}

// capDocSuffix marked the template in bucketCaps in version 1 files (moved
// to bucketCapDocs when such a file is opened).
const capDocSuffix = "\x00doc"

func (c capState) bytes() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(c.Start.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.End.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Count))
	return binary.BigEndian.AppendUint64(b, uint64(c.Capped))
}

func readCap(v []byte) (capState, bool) {
	if len(v) != 32 {
		return capState{}, false
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(v[i*8:]) }
	return capState{time.Unix(0, int64(u(0))).UTC(), time.Unix(0, int64(u(1))).UTC(), int(u(2)), int(u(3))}, true
}

// SummaryFunc builds the summary alert of a capped window from one of the
// rule's alerts.
type SummaryFunc func(ruleDoc []byte, ruleID string, capped int, start, end time.Time) []byte

// controlAlert applies a policy inside a commit: it reports whether the
// alert goes to the outbox, and may add documents (a closed window's
// summary) that go out first.
func controlAlert(tx *bolt.Tx, caps *capCache, a *Alert, now time.Time, summarize SummaryFunc, res *CommitResult) (emit bool, extra [][]byte, err error) {
	p := a.Policy
	if p == nil {
		return true, nil, nil
	}
	if !p.Now.IsZero() {
		now = p.Now
	}
	snow := now
	if !p.SuppressNow.IsZero() {
		snow = p.SuppressNow
	}
	start, end := p.At, p.AtEnd
	if start.IsZero() {
		start = now
	}
	if end.Before(start) {
		end = start
	}
	var sb *bolt.Bucket
	if p.SuppressKey != "" {
		sb = tx.Bucket(bucketSuppress)
		var g suppressState
		v := sb.Get([]byte(p.SuppressKey))
		if v == nil && p.LegacyKey != "" && p.LegacyKey != p.SuppressKey {
			if lv := sb.Get([]byte(p.LegacyKey)); lv != nil {
				v = bytes.Clone(lv)
				if err := sb.Delete([]byte(p.LegacyKey)); err != nil {
					return false, nil, err
				}
			}
		}
		if v != nil && json.Unmarshal(v, &g) == nil {
			if snow.Before(g.Until) {
				g.Count++
				g.End = maxTime(g.End, end)
				res.Suppressed++
				v, _ := json.Marshal(g)
				return false, nil, sb.Put([]byte(p.SuppressKey), v)
			}
			// The group's window closed with no sweep since (a stop
			// longer than the window, or scan): its final count goes out
			// now, before the group is opened again.
			if g.Count > 0 {
				extra = append(extra, withSuppression(g.Doc, g))
			}
			if err := sb.Delete([]byte(p.SuppressKey)); err != nil {
				return false, nil, err
			}
		}
	}
	emit = true
	if p.MaxSignals > 0 && p.Interval > 0 {
		docs := tx.Bucket(bucketCapDocs)
		key := []byte(p.RuleID)
		c := caps.get(tx, p.RuleID)
		wstart := now.Truncate(p.Interval)
		if !c.Start.Equal(wstart) {
			if c.Capped > 0 && summarize != nil {
				extra = append(extra, summarize(docs.Get(key), p.RuleID, c.Capped, c.Start, c.End))
			}
			*c = capState{Start: wstart, End: wstart.Add(p.Interval)}
			doc, err := a.document()
			if err != nil {
				return false, nil, err
			}
			if err := docs.Put(key, doc); err != nil {
				return false, nil, err
			}
		}
		if c.Count >= p.MaxSignals {
			c.Capped++
			res.Capped++
			emit = false
		} else {
			c.Count++
		}
	}
	// Only an alert that goes out opens a group (Kibana truncates the
	// new alerts to max_signals before any is written: a capped one
	// leaves nothing to suppress into).
	if emit && sb != nil {
		g := suppressState{Start: start, End: end, Until: snow.Add(p.SuppressFor), Terms: p.Terms}
		doc, err := a.document()
		if err != nil {
			return false, nil, err
		}
		a.Doc = withSuppression(doc, g)
		g.Doc = a.Doc
		v, _ := json.Marshal(g)
		if err := sb.Put([]byte(p.SuppressKey), v); err != nil {
			return false, nil, err
		}
	}
	return emit, extra, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// withSuppression sets kibana.alert.suppression.* on an alert document.
func withSuppression(doc []byte, g suppressState) []byte {
	var m map[string]any
	if json.Unmarshal(doc, &m) != nil {
		return doc
	}
	m["kibana.alert.suppression.terms"] = g.Terms
	m["kibana.alert.suppression.start"] = g.Start.UTC().Format(time.RFC3339Nano)
	m["kibana.alert.suppression.end"] = g.End.UTC().Format(time.RFC3339Nano)
	m["kibana.alert.suppression.docs_count"] = g.Count
	out, err := json.Marshal(m)
	if err != nil {
		return doc
	}
	return out
}

// SweepResult counts what Sweep sent out.
type SweepResult struct {
	Suppressed int // closed suppression windows whose final count went out
	Summaries  int // capped windows summarized
}

// Sweep closes suppression windows and max_signals windows that ended
// before now: a group that suppressed alerts sends its alert again with the
// final docs_count (same kibana.alert.uuid, so a backend that indexes by it
// updates the alert), and a window that capped alerts sends one summary.
func (s *Store) Sweep(now time.Time, summarize SummaryFunc) (res SweepResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.guard("sweep", &err)()
	written := 0
	err = s.update(func(tx *bolt.Tx) error {
		out := tx.Bucket(bucketOutbox)
		put := func(doc []byte) error {
			seq, err := out.NextSequence()
			if err != nil {
				return err
			}
			written++
			return out.Put(binary.BigEndian.AppendUint64(nil, seq), doc)
		}
		sb := tx.Bucket(bucketSuppress)
		var done [][]byte
		err := sb.ForEach(func(k, v []byte) error {
			var g suppressState
			if json.Unmarshal(v, &g) != nil || !now.Before(g.Until) {
				done = append(done, bytes.Clone(k))
				if g.Count > 0 {
					res.Suppressed++
					return put(withSuppression(g.Doc, g))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := deleteKeys(sb, done); err != nil {
			return err
		}
		cb, docs := tx.Bucket(bucketCaps), tx.Bucket(bucketCapDocs)
		done = done[:0]
		err = cb.ForEach(func(k, v []byte) error {
			c, ok := readCap(v)
			if !ok || !now.Before(c.End) {
				done = append(done, bytes.Clone(k))
				if c.Capped > 0 && summarize != nil {
					res.Summaries++
					return put(summarize(docs.Get(k), string(k), c.Capped, c.Start, c.End))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := deleteKeys(docs, done); err != nil {
			return err
		}
		return deleteKeys(cb, done)
	})
	if err != nil {
		return res, &Error{s.path, "sweep", err}
	}
	s.outboxN += written
	return res, nil
}

// moveCapDocs moves the templates a version 1 file kept in bucketCaps (under
// the rule id plus capDocSuffix) to bucketCapDocs.
func moveCapDocs(tx *bolt.Tx) error {
	cb, docs := tx.Bucket(bucketCaps), tx.Bucket(bucketCapDocs)
	if cb == nil || docs == nil {
		return nil
	}
	var moved [][]byte
	err := cb.ForEach(func(k, v []byte) error {
		if rule, ok := bytes.CutSuffix(k, []byte(capDocSuffix)); ok {
			moved = append(moved, bytes.Clone(k))
			return docs.Put(bytes.Clone(rule), bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return deleteKeys(cb, moved)
}
