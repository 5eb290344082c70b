package engine

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
)

// A rule's state in the file (threshold counts by group, ES|QL partial
// aggregates, EQL sequences in flight) is read with the rule's definition:
// its group fields, its STATS, its stages, its bucket width. A rule edited
// under the same rule_id (a newer version of Elastic's rule, a local
// change) would read what its former definition wrote: a group of one
// value where two are expected, the parts of another STATS, which failed
// every commit from then on. So the shape of the definition is kept beside
// each stateful rule's state, and the first commit of an engine (a start,
// a hot reload) drops the state of each rule whose shape changed: its
// windows start empty, as a new rule's do. Exceptions, the threshold's
// value, max_signals and the rule's other settings are not part of the
// shape: the state stays valid across their changes.

// ruleShape is the fingerprint of what a stateful rule's state depends on.
func ruleShape(r *conf.Rule) []byte {
	parts := []string{r.Type, r.Language, r.Query, r.EventCategoryOverride, r.TimestampField, r.TiebreakerField, r.FromDur.String(), r.IntervalDur.String()}
	if t := r.ThresholdSpec; t != nil {
		parts = append(parts, strings.Join(t.Fields, ","))
		for _, c := range t.Cardinality {
			parts = append(parts, "cardinality:"+c.Field)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return sum[:16]
}

// stateShapes is the shape of each rule that keeps state in windows or
// sequences, by rule_id.
func (e *Engine) stateShapes() map[string][]byte {
	out := map[string][]byte{}
	for _, sc := range e.scheduled {
		out[sc.rule.RuleID] = ruleShape(sc.rule)
	}
	for _, r := range e.rules {
		if r.Sequence != nil {
			out[r.RuleID] = ruleShape(r)
		}
	}
	return out
}

// checkShapes drops the state of each stateful rule whose recorded shape
// differs from its definition's, and records the shapes; it returns the
// rule ids dropped. A rule without a recorded shape (new, or state from a
// build before shapes) keeps its state.
func (e *Engine) checkShapes(ws *store.Windows) ([]string, error) {
	var dropped []string
	ids := make([]string, 0, len(e.shapes))
	for id := range e.shapes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		want := e.shapes[id]
		got := ws.Shape(id)
		if bytes.Equal(got, want) {
			continue
		}
		if got != nil {
			if err := ws.DropRule(id); err != nil {
				return nil, err
			}
			dropped = append(dropped, id)
		}
		if err := ws.SetShape(id, want); err != nil {
			return nil, err
		}
	}
	return dropped, nil
}
