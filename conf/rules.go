// Package conf loads trailwatch's configuration: Elastic detection rules from
// detection-rules TOML files and Kibana NDJSON exports, and the typed settings
// shared by the Fluent Bit plugin and the command-line tool.
package conf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"

	"github.com/trailwatch/trailwatch/internal/logsafe"
	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/matcher/eql"
	"github.com/trailwatch/trailwatch/matcher/esql"
	"github.com/trailwatch/trailwatch/matcher/kql"
)

// Rule is one detection rule, in the fields trailwatch uses of Elastic's
// rule schema. Runnable rules carry their compiled query.
type Rule struct {
	File string // where it was loaded from
	Line int    // its line in an NDJSON export (1 for a TOML file)

	// Filters are the rule's Kibana filters (query DSL beside the query,
	// each with its meta: negate, disabled), ANDed with the query.
	Filters []any

	RuleID            string
	Name              string
	Description       string
	Type              string // query, new_terms, eql, esql, threshold, ...
	Language          string // kuery, lucene, eql, esql
	Query             string
	Version           int
	Severity          string
	RiskScore         int
	Tags              []string
	From              string
	FromDur           time.Duration // how far back each run looks (From, parsed; now-6m when unset)
	Interval          string
	IntervalDur       time.Duration // Interval, parsed
	MaxSignals        int
	TimestampOverride string
	Index             []string
	Threat            []Threat
	AlertSuppression  *AlertSuppression
	NewTerms          *NewTerms
	Threshold         map[string]any
	ThresholdSpec     *Threshold // Threshold, checked (threshold rules)
	Enabled           bool
	ExceptionsList    []ListRef // Kibana exception lists attached to the rule
	// What Kibana copies onto every alert of the rule.
	BuildingBlockType string // "default": the rule's alerts are building blocks
	References        []string
	Author            []string
	License           string
	FalsePositives    []string
	// Per-alert overrides from the event's fields (Kibana's
	// rule_name_override, severity_mapping, risk_score_mapping).
	RuleNameOverride string
	SeverityMapping  []SeverityMapping
	RiskScoreMapping []RiskScoreMapping

	Compiled *matcher.Query // nil unless the query compiled (KQL or EQL)
	// Sequence is an EQL sequence's stages (Compiled is then any stage).
	Sequence *eql.Sequenced
	// ESQL is an ES|QL rule's program (Compiled is then its prefilter: a
	// necessary condition, for the candidate index).
	ESQL *esql.Program
	// EQL rules: the field `<category> where` compares, and the fields
	// that order events.
	EventCategoryOverride string
	TimestampField        string
	TiebreakerField       string
	Skip                  string // why the rule does not run; "" when it runs
	// Notes are the query's tests that Elasticsearch refuses and trailwatch
	// runs (matcher.Note), placed in the rule's file.
	Notes []*Error
}

// SeverityMapping is one entry of a rule's severity_mapping: an alert
// whose event has value in field takes severity.
type SeverityMapping struct {
	Field    string `toml:"field" json:"field"`
	Operator string `toml:"operator" json:"operator"`
	Value    string `toml:"value" json:"value"`
	Severity string `toml:"severity" json:"severity"`
}

// RiskScoreMapping is an entry of a rule's risk_score_mapping: the first
// entry's field, when the event holds a number from 0 to 100 there, is
// the alert's risk score.
type RiskScoreMapping struct {
	Field     string `toml:"field" json:"field"`
	Operator  string `toml:"operator" json:"operator"`
	Value     string `toml:"value" json:"value"`
	RiskScore *int   `toml:"risk_score" json:"risk_score"`
}

// NewTerms holds a new_terms rule's parameters.
type NewTerms struct {
	Fields             []string
	HistoryWindowStart string
	Window             time.Duration
}

// Threshold is a threshold rule's grouping and counts, as Kibana reads its
// threshold block.
type Threshold struct {
	Fields      []string // 0 to 3 group fields
	Value       int      // a group alerts at this many events
	Cardinality []Cardinality
}

// Cardinality is a threshold's condition on the distinct values of a field
// in a group.
type Cardinality struct {
	Field string
	Value int
}

// Threat is one MITRE ATT&CK mapping, as Kibana stores it.
type Threat struct {
	Framework string      `toml:"framework" json:"framework"`
	Tactic    ThreatRef   `toml:"tactic" json:"tactic"`
	Technique []Technique `toml:"technique" json:"technique,omitempty"`
}

// ThreatRef names a tactic or technique.
type ThreatRef struct {
	ID        string `toml:"id" json:"id"`
	Name      string `toml:"name" json:"name"`
	Reference string `toml:"reference" json:"reference"`
}

// Technique is a technique with its subtechniques.
type Technique struct {
	ID           string      `toml:"id" json:"id"`
	Name         string      `toml:"name" json:"name"`
	Reference    string      `toml:"reference" json:"reference"`
	Subtechnique []ThreatRef `toml:"subtechnique" json:"subtechnique,omitempty"`
}

// AlertSuppression is Elastic's alert_suppression block.
type AlertSuppression struct {
	GroupBy               []string  `toml:"group_by" json:"group_by"`
	Duration              *Duration `toml:"duration" json:"duration,omitempty"`
	MissingFieldsStrategy string    `toml:"missing_fields_strategy" json:"missing_fields_strategy,omitempty"`
}

// Duration is a value and a unit (s, m, h).
type Duration struct {
	Value int    `toml:"value" json:"value"`
	Unit  string `toml:"unit" json:"unit"`
}

// Window is the suppression window: the duration when one is set, else
// the rule's interval (Kibana's "per rule execution").
func (s *AlertSuppression) Window(interval time.Duration) time.Duration {
	if s.Duration == nil || s.Duration.Value <= 0 {
		return interval
	}
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[s.Duration.Unit]
	if unit == 0 {
		unit = time.Minute
	}
	return time.Duration(s.Duration.Value) * unit
}

// Runs reports whether trailwatch evaluates the rule.
func (r *Rule) Runs() bool { return r.Skip == "" && r.Compiled != nil }

// ReadsFields lists the fields the rule reads: its query's, then its
// new_terms fields.
func (r *Rule) ReadsFields() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if r.Compiled != nil {
		for _, f := range r.Compiled.Fields() {
			add(f.Name)
		}
	}
	if r.ESQL != nil {
		// The prefilter reads only some of them.
		for _, f := range r.ESQL.Fields() {
			add(f.Name)
		}
	}
	if r.NewTerms != nil {
		for _, f := range r.NewTerms.Fields {
			add(f)
		}
	}
	if t := r.ThresholdSpec; t != nil {
		for _, f := range t.Fields {
			add(f)
		}
		for _, c := range t.Cardinality {
			add(c.Field)
		}
	}
	return out
}

// Error is one problem in a rule set, with its place.
type Error struct {
	File      string
	Line, Col int // 0 when unknown
	Rule      string
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(logsafe.Name(e.File)) // a name found in a folder: quoted unless plain
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a rule set.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	if len(es) == 1 {
		return msgs[0]
	}
	return fmt.Sprintf("%d errors in the rule set:\n  %s", len(es), strings.Join(msgs, "\n  "))
}

// RuleSet is the rules loaded from a set of paths.
type RuleSet struct {
	Rules  []*Rule
	Schema *matcher.Schema
}

// Runnable returns the rules trailwatch evaluates.
func (rs *RuleSet) Runnable() []*Rule {
	var out []*Rule
	for _, r := range rs.Rules {
		if r.Runs() {
			out = append(out, r)
		}
	}
	return out
}

// maxRuleFile bounds a rule file's size: a rule set is configuration, and a
// file far larger than any rule export is a mistake, not input to read.
const maxRuleFile = 64 << 20

// LoadRules loads every rule under the given files and folders (folders are
// walked recursively for .toml, .ndjson and .json files). It returns all the
// rules it could load and, as Errors, every problem it found: a caller that
// wants an all-or-nothing rule set refuses to start on a non-nil error.
func LoadRules(schema *matcher.Schema, paths ...string) (*RuleSet, error) {
	rs := &RuleSet{Schema: schema}
	var errs Errors
	if len(paths) == 0 {
		errs = append(errs, &Error{File: "(rules)", Msg: "no rule path given"})
	}
	seen := map[string]bool{}
	for _, p := range paths {
		files, err := ruleFiles(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
			continue
		}
		for _, f := range files {
			if abs, err := filepath.Abs(f); err == nil {
				if seen[abs] {
					continue
				}
				seen[abs] = true
			}
			rules, ferrs := loadFile(schema, f)
			rs.Rules = append(rs.Rules, rules...)
			errs = append(errs, ferrs...)
		}
	}
	errs = append(errs, checkDuplicates(rs.Rules)...)
	if len(errs) > 0 {
		return rs, errs
	}
	return rs, nil
}

func ruleFiles(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read rules: %w", errors.Unwrap(err))
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	// A folder given as a link (a Kubernetes volume, a deploy's current/)
	// is walked where it points: WalkDir does not follow its root, and
	// found nothing. Files are named under the path given.
	root := p
	if r, err := filepath.EvalSymlinks(p); err == nil {
		root = r
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".toml", ".ndjson", ".json":
			if rel, err := filepath.Rel(root, path); err == nil {
				path = filepath.Join(p, rel)
			}
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no rule files (.toml, .ndjson, .json) in this folder")
	}
	return files, nil
}

// ReadFile reads a file of at most max bytes, named in errors as what. A
// file that is no regular file is refused unless pipes (a FIFO, a shell's
// <(...)) are allowed; either way no more than max+1 bytes are read,
// whatever its size says (a FIFO in a rules folder waited for ever, and
// /dev/zero filled memory).
func ReadFile(path string, max int64, what string, pipes bool) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch mode := st.Mode(); {
	case mode.IsRegular():
		if st.Size() > max {
			return nil, fmt.Errorf("file is %d bytes; %s may be at most %d", st.Size(), what, max)
		}
	case mode&os.ModeNamedPipe != 0 && pipes:
	default:
		return nil, fmt.Errorf("not a regular file (%s); %s must be one", mode.Type(), what)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("more than %d bytes; %s may be at most %d", max, what, max)
	}
	return data, nil
}

func loadFile(schema *matcher.Schema, path string) ([]*Rule, Errors) {
	data, err := ReadFile(path, maxRuleFile, "a rule file", false)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	if strings.EqualFold(filepath.Ext(path), ".toml") {
		r, errs := parseTOML(schema, path, data)
		if r == nil {
			return nil, errs
		}
		return []*Rule{r}, errs
	}
	return parseNDJSON(schema, path, data)
}

// ruleSpec is the part of a rule both formats spell the same way (the
// TOML [rule] table and the API's JSON object).
type ruleSpec struct {
	RuleID            string             `toml:"rule_id" json:"rule_id"`
	Name              string             `toml:"name" json:"name"`
	Description       string             `toml:"description" json:"description"`
	Type              string             `toml:"type" json:"type"`
	Language          string             `toml:"language" json:"language"`
	Query             string             `toml:"query" json:"query"`
	Version           int                `toml:"version" json:"version"`
	Severity          string             `toml:"severity" json:"severity"`
	RiskScore         int                `toml:"risk_score" json:"risk_score"`
	Tags              []string           `toml:"tags" json:"tags"`
	From              string             `toml:"from" json:"from"`
	Interval          string             `toml:"interval" json:"interval"`
	MaxSignals        int                `toml:"max_signals" json:"max_signals"`
	TimestampOverride string             `toml:"timestamp_override" json:"timestamp_override"`
	Index             []string           `toml:"index" json:"index"`
	Threat            []Threat           `toml:"threat" json:"threat"`
	AlertSuppression  *AlertSuppression  `toml:"alert_suppression" json:"alert_suppression"`
	Threshold         map[string]any     `toml:"threshold" json:"threshold"`
	Enabled           *bool              `toml:"enabled" json:"enabled"`
	ExceptionsList    []ListRef          `toml:"exceptions_list" json:"exceptions_list"`
	BuildingBlockType string             `toml:"building_block_type" json:"building_block_type"`
	References        []string           `toml:"references" json:"references"`
	Author            []string           `toml:"author" json:"author"`
	License           string             `toml:"license" json:"license"`
	FalsePositives    []string           `toml:"false_positives" json:"false_positives"`
	RuleNameOverride  string             `toml:"rule_name_override" json:"rule_name_override"`
	SeverityMapping   []SeverityMapping  `toml:"severity_mapping" json:"severity_mapping"`
	RiskScoreMapping  []RiskScoreMapping `toml:"risk_score_mapping" json:"risk_score_mapping"`
	Filters           []any              `toml:"filters" json:"filters"`
	// EQL
	EventCategoryOverride string `toml:"event_category_override" json:"event_category_override"`
	TimestampField        string `toml:"timestamp_field" json:"timestamp_field"`
	TiebreakerField       string `toml:"tiebreaker_field" json:"tiebreaker_field"`
}

// rule makes a Rule of a spec read from path (line in an NDJSON file).
func (sp *ruleSpec) rule(path string, line int) *Rule {
	return &Rule{
		File: path, Line: line,
		RuleID: sp.RuleID, Name: sp.Name, Description: sp.Description, Type: sp.Type,
		Language: sp.Language, Query: sp.Query, Version: sp.Version, Severity: sp.Severity,
		RiskScore: sp.RiskScore, Tags: sp.Tags, From: sp.From, Interval: sp.Interval,
		MaxSignals: sp.MaxSignals, TimestampOverride: sp.TimestampOverride, Index: sp.Index,
		Threat: sp.Threat, AlertSuppression: sp.AlertSuppression, Threshold: sp.Threshold,
		Enabled: sp.Enabled == nil || *sp.Enabled, ExceptionsList: sp.ExceptionsList,
		EventCategoryOverride: sp.EventCategoryOverride, TimestampField: sp.TimestampField, TiebreakerField: sp.TiebreakerField,
		BuildingBlockType: sp.BuildingBlockType, References: sp.References, Author: sp.Author, License: sp.License,
		FalsePositives: sp.FalsePositives, RuleNameOverride: sp.RuleNameOverride, SeverityMapping: sp.SeverityMapping,
		RiskScoreMapping: sp.RiskScoreMapping, Filters: sp.Filters,
	}
}

// tomlRule mirrors detection-rules' TOML layout.
type tomlRule struct {
	Metadata map[string]any `toml:"metadata"`
	Rule     struct {
		ruleSpec
		NewTerms *struct {
			Field              string `toml:"field"`
			Value              []string
			HistoryWindowStart []struct {
				Field string `toml:"field"`
				Value string `toml:"value"`
			} `toml:"history_window_start"`
		} `toml:"new_terms"`
	} `toml:"rule"`
}

func parseTOML(schema *matcher.Schema, path string, data []byte) (*Rule, Errors) {
	var tr tomlRule
	md, err := DecodeTOML(path, data, &tr)
	if err != nil {
		return nil, Errors{err.(*Error)}
	}
	if !md.IsDefined("rule") {
		return nil, Errors{{File: path, Line: 1, Msg: "no [rule] table: not a detection-rules rule file"}}
	}
	src := tr.Rule
	r := src.rule(path, 1)
	if nt := src.NewTerms; nt != nil {
		r.NewTerms = &NewTerms{Fields: nt.Value}
		if nt.Field != "" && nt.Field != "new_terms_fields" {
			return nil, Errors{{File: path, Line: keyLine(data, "field"), Rule: r.Name, Msg: fmt.Sprintf("[rule.new_terms] field = %q; expected \"new_terms_fields\"", nt.Field)}}
		}
		for _, h := range nt.HistoryWindowStart {
			r.NewTerms.HistoryWindowStart = h.Value
		}
	}
	errs := finish(schema, r, func(qe *matcher.SyntaxError) (int, int) { return queryPlace(data, r.Query, qe) })
	// A key Elastic's rules do not have (a typo: max_signal) is passed over
	// by Kibana's schema too, but changes nothing here either: a note says
	// so, with its line.
	seen := map[string]bool{}
	for _, k := range md.Undecoded() {
		if len(k) < 2 || k[0] != "rule" || seen[k[1]] || elasticRuleKeys[k[1]] {
			continue
		}
		seen[k[1]] = true
		r.Notes = append(r.Notes, &Error{File: path, Line: keyLine(data, k[1]), Rule: r.Name,
			Msg: fmt.Sprintf("[rule] key %q is none of the keys of Elastic's rule format, and is passed over (a misspelling?)", k[1])})
	}
	return r, errs
}

// elasticRuleKeys are keys of Elastic's rule format that trailwatch reads
// nothing from (notes for the analyst, settings of other rule types, of
// notifications, of the UI).
var elasticRuleKeys = map[string]bool{
	"note": true, "setup": true, "investigation_fields": true, "related_integrations": true,
	"required_fields": true, "meta": true, "to": true, "timeline_id": true, "timeline_title": true,
	"output_index": true, "namespace": true, "data_view_id": true, "timestamp_override_fallback_disabled": true,
	"actions": true, "throttle": true, "response_actions": true, "outcome": true, "alias_target_id": true,
	"alias_purpose": true, "rule_source": true, "immutable": true, "revision": true,
	"items_per_search": true, "concurrent_searches": true, "threat_index": true, "threat_query": true,
	"threat_mapping": true, "threat_filters": true, "threat_language": true, "threat_indicator_path": true,
	"machine_learning_job_id": true, "anomaly_threshold": true, "saved_id": true, "exceptions_list": true,
	"created_at": true, "created_by": true, "updated_at": true, "updated_by": true, "id": true,
	// Read, into maps whose nested tables the decoder does not mark.
	"threshold": true, "filters": true,
}

// queryPlace maps a position inside a rule's query to the file's line and
// column: the query text is found verbatim in the file (as it is in a ”'
// literal string); otherwise the line of the query key is given.
func queryPlace(data []byte, query string, qe *matcher.SyntaxError) (int, int) {
	if i := bytes.Index(data, []byte(query)); i >= 0 && query != "" {
		off := i + qe.Pos.Offset
		line := 1 + bytes.Count(data[:off], []byte("\n"))
		col := off - bytes.LastIndexByte(data[:off], '\n')
		return line, col
	}
	return keyLine(data, "query"), 0
}

// keyLine finds the line of the first `key =` in a TOML file.
func keyLine(data []byte, key string) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxRuleFile)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, key) && strings.HasPrefix(strings.TrimSpace(l[len(key):]), "=") {
			return n
		}
	}
	return 0
}

// apiRule is a rule as Kibana's export API writes it.
type apiRule struct {
	ruleSpec
	NewTermsFields     []string `json:"new_terms_fields"`
	HistoryWindowStart string   `json:"history_window_start"`
	// Lines of an export that are not rules.
	ExportedCount *int   `json:"exported_count"`
	ListID        string `json:"list_id"`
}

var jsonAPI = jsoniter.Config{EscapeHTML: false, SortMapKeys: true, DisallowUnknownFields: false}.Froze()

func parseNDJSON(schema *matcher.Schema, path string, data []byte) ([]*Rule, Errors) {
	var rules []*Rule
	var errs Errors
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		// A JSON array of rules (what the rules API returns for a list).
		var arr []jsoniter.RawMessage
		if err := jsonAPI.Unmarshal(trimmed, &arr); err != nil {
			return nil, Errors{{File: path, Line: 1, Msg: "JSON: " + err.Error()}}
		}
		for i, raw := range arr {
			r, es := parseAPIRule(schema, path, 1, raw)
			if r != nil {
				rules = append(rules, r)
			}
			for _, e := range es {
				e.Msg = fmt.Sprintf("element %d: %s", i, e.Msg)
			}
			errs = append(errs, es...)
		}
		return rules, errs
	}
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		r, es := parseAPIRule(schema, path, line, l)
		if r != nil {
			rules = append(rules, r)
		}
		errs = append(errs, es...)
	}
	return rules, errs
}

func parseAPIRule(schema *matcher.Schema, path string, line int, l []byte) (*Rule, Errors) {
	var ar apiRule
	if err := jsonAPI.Unmarshal(l, &ar); err != nil {
		return nil, Errors{{File: path, Line: line, Msg: "not a rule object: " + firstLine(err.Error())}}
	}
	if ar.ExportedCount != nil || (ar.ListID != "" && ar.RuleID == "") {
		return nil, nil // the export summary or an exception list: not rules
	}
	r := ar.rule(path, line)
	if r.Type == "new_terms" || len(ar.NewTermsFields) > 0 {
		r.NewTerms = &NewTerms{Fields: ar.NewTermsFields, HistoryWindowStart: ar.HistoryWindowStart}
	}
	errs := finish(schema, r, func(qe *matcher.SyntaxError) (int, int) { return line, 0 })
	return r, errs
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// runnable types; the others load as metadata and are reported as skipped.
var skippedTypes = map[string]string{
	"machine_learning": "machine learning rules need Elastic's anomaly detection jobs",
	"threat_match":     "indicator match rules need a threat intelligence index",
	"saved_query":      "saved_query rules reference a query saved in Kibana",
}

// finish checks a loaded rule, compiles its query and decides whether it runs.
func finish(schema *matcher.Schema, r *Rule, place func(*matcher.SyntaxError) (int, int)) Errors {
	var errs Errors
	bad := func(msg string, args ...any) {
		errs = append(errs, &Error{File: r.File, Line: r.Line, Rule: r.Name, Msg: fmt.Sprintf(msg, args...)})
	}
	if r.RuleID == "" {
		bad("rule_id is missing")
	} else if strings.ContainsFunc(r.RuleID, unicode.IsControl) {
		bad("rule_id %q has a control character", r.RuleID)
	} else if !utf8.ValidString(r.RuleID) {
		bad("rule_id %q is not valid UTF-8", r.RuleID)
	}
	// Names label metrics and alerts, which must be UTF-8 (a JSON
	// reader keeps a stray byte).
	if r.Name == "" {
		bad("name is missing")
	} else if !utf8.ValidString(r.Name) {
		bad("name %q is not valid UTF-8", r.Name)
	}
	if r.Type == "" {
		bad("type is missing")
	}
	if r.Version == 0 {
		r.Version = 1
	}
	if r.MaxSignals == 0 {
		r.MaxSignals = 100
	}
	if r.Interval == "" {
		r.Interval = "5m"
	}
	if d, err := matcher.ParseDuration(r.Interval); err != nil || d <= 0 {
		bad("interval %q: expected a duration such as 5m", r.Interval)
	} else {
		r.IntervalDur = d
	}
	if r.From == "" {
		r.From = "now-6m"
	}
	if d, err := matcher.ParseDuration(r.From); err != nil || d <= 0 {
		bad("from %q: expected date math such as now-6m", r.From)
	} else {
		r.FromDur = d
	}
	if r.Language == "" && (r.Type == "query" || r.Type == "new_terms" || r.Type == "threshold") {
		r.Language = "kuery"
	}
	if r.Severity == "" {
		r.Severity = "low"
	}
	switch r.Severity {
	case "low", "medium", "high", "critical":
	default:
		bad("severity %q: expected low, medium, high or critical", r.Severity)
	}
	for i, m := range r.SeverityMapping {
		switch {
		case m.Field == "":
			bad("severity_mapping[%d]: field is missing", i)
		case m.Operator != "equals":
			bad("severity_mapping[%d]: operator %q: Kibana knows only \"equals\"", i, m.Operator)
		case m.Severity != "low" && m.Severity != "medium" && m.Severity != "high" && m.Severity != "critical":
			bad("severity_mapping[%d]: severity %q: expected low, medium, high or critical", i, m.Severity)
		}
	}
	for i, m := range r.RiskScoreMapping {
		if m.Field == "" {
			bad("risk_score_mapping[%d]: field is missing", i)
		} else if m.Operator != "equals" {
			bad("risk_score_mapping[%d]: operator %q: Kibana knows only \"equals\"", i, m.Operator)
		}
	}
	if reason, ok := skippedTypes[r.Type]; ok {
		r.Skip = reason
	} else if r.Type != "query" && r.Type != "new_terms" && r.Type != "threshold" && r.Type != "eql" && r.Type != "esql" && r.Type != "" {
		r.Skip = fmt.Sprintf("unknown rule type %q", r.Type)
	}
	if (r.Type == "eql" || r.Type == "esql") && r.Language == "" {
		r.Language = r.Type
	}
	if r.Language == "kuery" || r.Language == "eql" || r.Language == "esql" {
		var q *matcher.Query
		var err error
		if r.Language == "esql" {
			var p *esql.Program
			if p, err = esql.Compile(schema, r.Query); err == nil {
				// Tests of the fields every record has with one value are
				// decided, so that branches for other data streams drop
				// out of the prefilter and the rest can pin.
				r.ESQL, q = p, p.PrefilterAssuming(schema.Constants())
				if q == nil {
					q = matcher.NewQuery(r.Query, matcher.Const(true), p.Fields(), nil)
				}
			}
		} else if r.Language == "eql" {
			var c *eql.Compiled
			if c, err = eql.Compile(schema, r.Query, r.EventCategoryOverride); err == nil {
				q, r.Sequence = c.Query, c.Sequence
			}
		} else {
			q, err = kql.Compile(schema, r.Query)
		}
		if err != nil {
			var qe *matcher.SyntaxError
			if errors.As(err, &qe) {
				line, col := place(qe)
				errs = append(errs, &Error{File: r.File, Line: line, Col: col, Rule: r.Name, Msg: "query: " + qe.Msg})
			} else {
				bad("query: %v", err)
			}
		} else {
			if len(r.Filters) > 0 {
				q, err = withFilters(schema, r, q)
			}
			if err != nil {
				bad("%v", err)
			}
			r.Compiled = q
			for _, n := range q.Notes() {
				line, col := place(&matcher.SyntaxError{Pos: n.Pos, Msg: n.Msg})
				r.Notes = append(r.Notes, &Error{File: r.File, Line: line, Col: col, Rule: r.Name, Msg: "query: " + n.Msg})
			}
		}
	} else if r.Skip == "" {
		r.Skip = fmt.Sprintf("query language %q is not KQL, EQL or ES|QL", r.Language)
	}
	if nt := r.NewTerms; nt != nil && r.Type == "new_terms" {
		if len(nt.Fields) < 1 || len(nt.Fields) > 3 {
			bad("new_terms_fields has %d fields; Kibana allows 1 to 3", len(nt.Fields))
		}
		if nt.HistoryWindowStart == "" {
			bad("history_window_start is missing (date math such as now-7d)")
		} else if d, err := matcher.ParseDuration(nt.HistoryWindowStart); err != nil || d <= 0 {
			bad("history_window_start %q: expected date math such as now-7d", nt.HistoryWindowStart)
		} else {
			nt.Window = d
		}
	}
	if r.Type == "threshold" {
		spec, err := parseThreshold(r.Threshold)
		if err != nil {
			bad("threshold: %v", err)
		}
		r.ThresholdSpec = spec
	}
	if !r.Enabled && r.Skip == "" {
		r.Skip = "disabled in its rule file"
	}
	if len(errs) > 0 {
		r.Compiled = nil
		if r.Skip == "" {
			r.Skip = "has errors"
		}
	}
	return errs
}

func checkDuplicates(rules []*Rule) Errors {
	var errs Errors
	first := map[string]*Rule{}
	for _, r := range rules {
		if r.RuleID == "" {
			continue
		}
		if f, ok := first[r.RuleID]; ok {
			errs = append(errs, &Error{File: r.File, Line: r.Line, Rule: r.Name,
				Msg: fmt.Sprintf("rule_id %s is also used by %q in %s", r.RuleID, f.Name, f.File)})
			continue
		}
		first[r.RuleID] = r
	}
	return errs
}

// parseThreshold checks a threshold block: field (a name or a list of up to
// 3), value (at least 1), and cardinality ([{field, value}], at most one, as
// Kibana allows).
func parseThreshold(m map[string]any) (*Threshold, error) {
	if m == nil {
		return nil, fmt.Errorf("the threshold block is missing")
	}
	t := &Threshold{}
	switch f := m["field"].(type) {
	case nil:
	case string:
		if f != "" {
			t.Fields = []string{f}
		}
	case []any:
		for _, x := range f {
			s, ok := x.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("field: expected field names, found %v", x)
			}
			t.Fields = append(t.Fields, s)
		}
	default:
		return nil, fmt.Errorf("field: expected a field name or a list of them, found %v", f)
	}
	if len(t.Fields) > 3 {
		return nil, fmt.Errorf("field has %d fields; Kibana allows at most 3", len(t.Fields))
	}
	v, ok := intOf(m["value"])
	if !ok || v < 1 {
		return nil, fmt.Errorf("value: expected a whole number of at least 1, found %v", m["value"])
	}
	t.Value = v
	if c, present := m["cardinality"]; present {
		list, ok := c.([]any)
		if !ok {
			if mm, isMap := c.([]map[string]any); isMap {
				for _, x := range mm {
					list = append(list, x)
				}
			} else {
				return nil, fmt.Errorf("cardinality: expected a list of {field, value}, found %v", c)
			}
		}
		if len(list) > 1 {
			return nil, fmt.Errorf("cardinality has %d conditions; Kibana allows one", len(list))
		}
		for _, x := range list {
			cm, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("cardinality: expected {field, value}, found %v", x)
			}
			f, _ := cm["field"].(string)
			n, ok := intOf(cm["value"])
			if f == "" || !ok || n < 1 {
				return nil, fmt.Errorf("cardinality: expected a field and a whole number of at least 1, found %v", x)
			}
			t.Cardinality = append(t.Cardinality, Cardinality{Field: f, Value: n})
		}
	}
	return t, nil
}

// intOf reads a whole number from TOML (int64) or JSON (float64).
func intOf(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), n >= 0 && n <= 1<<31
	case int:
		return n, true
	case float64:
		if n == float64(int(n)) && n >= 0 && n <= 1<<31 {
			return int(n), true
		}
	}
	return 0, false
}
