package cloudtrail

import (
	"bytes"
	"encoding/base64"

	"github.com/trailwatch/trailwatch/matcher"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// Shape is the form a record came in.
type Shape uint8

// Record shapes.
const (
	ShapeUnknown     Shape = iota // not CloudTrail
	ShapeEvent                    // one raw CloudTrail event
	ShapeRecords                  // a CloudTrail log file object {"Records": [...]}
	ShapeEventBridge              // an EventBridge event, the CloudTrail event under detail
	ShapeECS                      // an already-ECS document (Elastic Agent, Filebeat)
	ShapeFirehose                 // a Firehose HTTP-endpoint delivery, records base64 under records[].data
)

var shapeNames = [...]string{"not CloudTrail", "CloudTrail event", "CloudTrail log file", "EventBridge event", "ECS document", "Firehose delivery"}

func (s Shape) String() string { return shapeNames[s] }

// maxStringDepth bounds how many JSON-in-a-string layers are unwrapped.
const maxStringDepth = 2

// stringKeys are the keys under which an agent without a parser carries the
// raw line: Fluent Bit's tail (log), syslog and others (message).
var stringKeys = []string{"log", "message", "event.original"}

// Skip reasons Split gives for what it passes over inside a record that
// holds events: an element of a log file's Records that is no event, a
// Firehose record whose data does not decode or parse.
const (
	SkipNotCloudTrail = "not CloudTrail"
	SkipMalformed     = "malformed"
)

// Split finds the CloudTrail events in one record and calls fn for each,
// with ecs set for an already-ECS document, and skip (when not nil) for
// each part of it that it passes over (one of the Skip reasons), so that
// nothing of a record goes uncounted. It returns the record's shape;
// ShapeUnknown means fn was not called (nor skip: the record is not
// CloudTrail as a whole).
func Split(root *doc.Node, fn func(ev *doc.Node, ecs bool), skip func(reason string)) Shape {
	var skipped []string
	shape := split(root, fn, &skipped, 0)
	if shape != ShapeUnknown && skip != nil {
		for _, r := range skipped {
			skip(r)
		}
	}
	return shape
}

func split(n *doc.Node, fn func(*doc.Node, bool), skipped *[]string, depth int) Shape {
	if n == nil || n.Kind != doc.Object {
		return ShapeUnknown
	}
	if isRawEvent(n) {
		fn(n, false)
		return ShapeEvent
	}
	if recs := n.Get("Records"); recs != nil && recs.Kind == doc.Array {
		found, others := false, 0
		for _, el := range recs.Arr {
			if isRawEvent(el) {
				fn(el, false)
				found = true
			} else {
				others++
			}
		}
		if found {
			for range others {
				*skipped = append(*skipped, SkipNotCloudTrail)
			}
			return ShapeRecords
		}
		return ShapeUnknown
	}
	if dt := n.Get("detail-type"); dt != nil && dt.Kind == doc.String {
		if d := n.Get("detail"); isRawEvent(d) {
			fn(d, false)
			return ShapeEventBridge
		}
	}
	if isECS(n) {
		if isAlert(n) {
			// An alert (trailwatch's or Kibana's) holds its event's fields:
			// routed back into the agent (a Match that takes alert_tag
			// too), it matched its rule again, round after round.
			return ShapeUnknown
		}
		fn(n, true)
		return ShapeECS
	}
	if recs := n.Get("records"); recs != nil && recs.Kind == doc.Array && n.Get("requestId") != nil && depth < maxStringDepth {
		// Firehose: each record's data is base64 of a record, or of
		// newline-separated records.
		found := false
		var passed []string
		for _, r := range recs.Arr {
			d := r.Get("data")
			if d == nil || d.Kind != doc.String {
				passed = append(passed, SkipMalformed)
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(d.Str)
			if err != nil {
				passed = append(passed, SkipMalformed)
				continue
			}
			for _, line := range bytes.Split(raw, []byte{'\n'}) {
				if line = bytes.TrimSpace(line); len(line) == 0 {
					continue
				}
				inner, err := doc.ParseJSON(line)
				switch {
				case err != nil:
					passed = append(passed, SkipMalformed)
				case split(inner, fn, &passed, depth+1) != ShapeUnknown:
					found = true
				default:
					passed = append(passed, SkipNotCloudTrail)
				}
			}
		}
		if found {
			*skipped = append(*skipped, passed...)
			return ShapeFirehose
		}
	}
	if depth < maxStringDepth {
		for _, k := range stringKeys {
			s := n.Get(k)
			if s == nil || s.Kind != doc.String || len(s.Str) < 2 || s.Str[0] != '{' {
				continue
			}
			inner, err := doc.ParseJSON([]byte(s.Str))
			if err != nil {
				continue
			}
			if shape := split(inner, fn, skipped, depth+1); shape != ShapeUnknown {
				return shape
			}
		}
	}
	return ShapeUnknown
}

func isRawEvent(n *doc.Node) bool {
	if n == nil || n.Kind != doc.Object {
		return false
	}
	src, name := n.Get("eventSource"), n.Get("eventName")
	return src != nil && src.Kind == doc.String && name != nil && name.Kind == doc.String
}

// isAlert recognizes a detection alert: kibana.alert.* keys (dotted or
// nested), or event.kind "signal".
func isAlert(n *doc.Node) bool {
	if n.Get("kibana.alert.uuid") != nil || n.Get("kibana.alert.rule.rule_id") != nil {
		return true
	}
	if k := n.Get("kibana"); k != nil && k.Kind == doc.Object && k.Get("alert") != nil {
		return true
	}
	for _, v := range ecsValues(n, "event.kind", nil) {
		if v.Text == "signal" {
			return true
		}
	}
	return false
}

// isECS recognizes an ECS document by its event.provider or event.action,
// written nested or with dotted keys.
func isECS(n *doc.Node) bool {
	return len(ecsValues(n, matcher.ProviderField, nil)) > 0 || len(ecsValues(n, matcher.ActionField, nil)) > 0
}
