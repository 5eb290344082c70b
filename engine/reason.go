package engine

import (
	"math"
	"slices"
	"strconv"
	"strings"

	jsoniter "github.com/json-iterator/go"

	"github.com/trailwatch/trailwatch/conf"
)

// Kibana's alert reason and its per-alert overrides read the document the
// alert is made from (Kibana's "merged doc", its _source): the event's
// document for an alert on a record (with the row's columns for an ES|QL
// row), the group's fields for a threshold alert, the row for an
// aggregating ES|QL alert, the events' shared fields for a sequence.
// Kibana's reason_formatters.ts and mappings/build_*_from_mapping.ts.

// docGet is lodash's get(path, doc): the key itself when the top level
// has it, else the dotted path through nested objects.
func docGet(d map[string]any, path string) any {
	if v, ok := d[path]; ok {
		return v
	}
	var cur any = d
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}

// reasonValue is getFieldTemplateValue: nil, an empty value, a lone "-"
// and anything without a length (a number, a boolean) give nothing; an
// array is joined with ", ".
func reasonValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		if x == "" || x == "-" {
			return "", false
		}
		return x, true
	case []any:
		if len(x) == 0 || len(x) == 1 && x[0] == "-" {
			return "", false
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = jsString(e)
		}
		return strings.Join(parts, ", "), true
	case []string:
		return reasonValue(anySlice(x))
	}
	return "", false
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// jsString is an array element as JavaScript's join writes it.
func jsString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64, int, int64, jsoniter.Number:
		f, _ := number(x)
		return strconv.FormatFloat(f, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = jsString(e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		return "[object Object]"
	}
	return ""
}

// reasonPrefixOf is Kibana's alert reason up to " created <severity>
// alert <name>.": the event's category, then the source, destination,
// process and file fields of interest (after "with"), the user and host.
func reasonPrefixOf(d map[string]any) string {
	interest := false
	get := func(field string, ofInterest bool) (string, bool) {
		s, ok := reasonValue(docGet(d, field))
		if ok && ofInterest {
			interest = true
		}
		// ICU's select takes the text "null" for its null branch.
		return s, ok && s != "null"
	}
	category, hasCategory := get("event.category", false)
	process, hasProcess := get("process.name", true)
	parent, hasParent := get("process.parent.name", true)
	file, hasFile := get("file.name", true)
	src, hasSrc := get("source.ip", true)
	srcPort, hasSrcPort := get("source.port", true)
	dst, hasDst := get("destination.ip", true)
	dstPort, hasDstPort := get("destination.port", true)
	user, hasUser := get("user.name", false)
	host, hasHost := get("host.name", false)
	var b strings.Builder
	if hasCategory {
		b.WriteString(category + " ")
	}
	b.WriteString("event")
	if interest {
		b.WriteString(" with")
	}
	if hasProcess {
		b.WriteString(" process " + process + ",")
	}
	if hasParent {
		b.WriteString(" parent process " + parent + ",")
	}
	if hasFile {
		b.WriteString(" file " + file + ",")
	}
	if hasSrc {
		b.WriteString(" source " + src)
	}
	if hasSrcPort {
		b.WriteString(":" + srcPort + ",")
	}
	if hasDst {
		b.WriteString(" destination " + dst)
	}
	if hasDstPort {
		b.WriteString(":" + dstPort + ",")
	}
	if hasUser {
		b.WriteString(" by " + user)
	}
	if hasHost {
		b.WriteString(" on " + host)
	}
	return b.String()
}

// severityRank orders severities as Kibana sorts severity_mapping.
var severityRank = map[string]int{"low": 0, "medium": 1, "high": 2, "critical": 3}

// overrides are an alert's severity, risk score and rule name when the
// rule maps them from the event (ok false: none applies).
type overrides struct {
	severity  string
	riskScore float64
	name      string
	// which of them the rule's mappings set
	sevSet, riskSet, nameSet bool
}

// part is the alert's keys the mappings set (nil: none).
func (o overrides) part() map[string]any {
	var m map[string]any
	set := func(k string, v any) {
		if m == nil {
			m = map[string]any{}
		}
		m[k] = v
	}
	if o.sevSet {
		set("kibana.alert.severity", o.severity)
	}
	if o.riskSet {
		set("kibana.alert.risk_score", o.riskScore)
	}
	if o.nameSet {
		set("kibana.alert.rule.name", o.name)
	}
	return m
}

// overridesOf applies the rule's severity_mapping (the highest severity
// whose value the field holds), risk_score_mapping (the largest number
// from 0 to 100 in the first mapping's field) and rule_name_override (the
// field's value when it is one string) to the alert's document.
func overridesOf(r *conf.Rule, d map[string]any) overrides {
	o := overrides{severity: r.Severity, riskScore: float64(r.RiskScore), name: r.Name}
	if len(r.SeverityMapping) > 0 {
		sorted := slices.Clone(r.SeverityMapping)
		slices.SortStableFunc(sorted, func(a, b conf.SeverityMapping) int { return severityRank[a.Severity] - severityRank[b.Severity] })
		for _, m := range sorted {
			if severityMatches(m, docGet(d, m.Field)) {
				o.severity, o.sevSet = m.Severity, true
			}
		}
	}
	if len(r.RiskScoreMapping) > 0 {
		best := -1.0
		for _, v := range asList(docGet(d, r.RiskScoreMapping[0].Field)) {
			if n, ok := riskNumber(v); ok && n > best {
				best = n
			}
		}
		if best >= 0 {
			o.riskScore, o.riskSet = best, true
		}
	}
	if r.RuleNameOverride != "" {
		if s, ok := docGet(d, r.RuleNameOverride).(string); ok {
			o.name, o.nameSet = s, true
		}
	}
	return o
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// severityMatches: the field's strings and safe integers, as text, hold
// the mapping's value (event.severity: its safe integers hold the value's
// integer part).
func severityMatches(m conf.SeverityMapping, v any) bool {
	if m.Field == "event.severity" {
		want, err := strconv.ParseFloat(strings.TrimSpace(m.Value), 64)
		if err != nil {
			return false
		}
		for _, e := range asList(v) {
			if n, ok := safeInt(e); ok && float64(n) == math.Floor(want) {
				return true
			}
		}
		return false
	}
	for _, e := range asList(v) {
		if s, ok := e.(string); ok && s == m.Value {
			return true
		}
		if n, ok := safeInt(e); ok && strconv.FormatInt(n, 10) == m.Value {
			return true
		}
	}
	return false
}

// number is a document's number (the document holds them as
// jsoniter.Number, the engine's own fields as int64 or float64).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case jsoniter.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	}
	return 0, false
}

// safeInt is a JSON number that is a safe integer in JavaScript.
func safeInt(v any) (int64, bool) {
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53-1 {
		return 0, false
	}
	return int64(f), true
}

// riskNumber is JavaScript's Number(v) for a number or a string, when it
// is a finite number from 0 to 100.
func riskNumber(v any) (float64, bool) {
	f, isNum := number(v)
	switch x := v.(type) {
	case string:
		t := strings.TrimSpace(x)
		if t == "" {
			f = 0 // Number("") is 0
		} else {
			n, err := strconv.ParseFloat(t, 64)
			if err != nil || strings.ContainsAny(t, "_pP") {
				return 0, false
			}
			f = n
		}
	default:
		if !isNum {
			return 0, false
		}
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 && f <= 100
}
