package conf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	jsoniter "github.com/json-iterator/go"

	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/matcher/kql"
)

// Exception is one compiled exception: a record it matches neither alerts
// nor counts as new_terms history for the rules it applies to.
type Exception struct {
	Name  string // the list item or local entry, for messages and metrics
	Query *matcher.Query
	Where string // file:line
	// Expires is a list item's expire_time (zero: never): from then on it
	// excepts nothing, as Kibana drops items whose expire_time is before
	// a run's start (removeExpiredExceptions).
	Expires time.Time
	file    string
	line    int
}

// Holds tells whether the exception excepts a record read at t (the
// execution's clock: when it was read, or its eventTime on the event
// clock).
func (x *Exception) Holds(f matcher.Fields, t time.Time) bool {
	if !x.Expires.IsZero() && !t.Before(x.Expires) {
		return false
	}
	return x.Query.Match(f)
}

// Identity is what makes two rules' exceptions the same: the query and
// its expiry.
func (x *Exception) Identity() string {
	if x.Expires.IsZero() {
		return x.Query.Source
	}
	return x.Query.Source + "\x00expires " + x.Expires.Format(time.RFC3339Nano)
}

// Exceptions holds the exceptions of a rule set: by rule_id, by Kibana
// exception list_id (applied through a rule's exceptions_list or an
// [[attach]] table), and for every rule.
type Exceptions struct {
	ByRule map[string][]*Exception
	ByList map[string][]*Exception
	All    []*Exception
	// Lists are the Kibana exception lists the exports hold, by list_id.
	Lists map[string]*List
	// Attached are the [[attach]] tables of trailwatch TOML files.
	Attached []*Attachment
}

// List is a Kibana exception list read from an export.
type List struct {
	ID, Name string
	// NamespaceType is single (a space's list, the default) or agnostic.
	NamespaceType string
	File          string
	Line          int // its container's line, or its first item's
	Items         int
	// Expired counts items whose expire_time had passed at load (they
	// except only records dated before it, on the event clock); OSOnly
	// those limited to an operating system (os_types), which no
	// CloudTrail record has.
	Expired, OSOnly int
}

// Attachment is one [[attach]] table: a Kibana list applied to rules by
// rule_id, or to every rule, as if each named it in its exceptions_list.
type Attachment struct {
	ListID   string
	RuleIDs  []string // nil: every rule (rule_id = "*")
	File     string
	Line     int // its list_id's line
	RuleLine int // its rule_id's line
}

func (a *Attachment) where() string { return fmt.Sprintf("%s:%d", a.File, a.Line) }

// ListUse is a Kibana list that applies to a rule, and how.
type ListUse struct {
	ListID string
	List   *List  // nil when no export given holds it
	Via    string // "exceptions_list", or the [[attach]]'s file:line
}

// ListsFor returns the Kibana lists that apply to a rule, each once: those its
// exceptions_list names, then those an [[attach]] attaches to it.
func (x *Exceptions) ListsFor(r *Rule) []ListUse {
	var out []ListUse
	seen := map[string]bool{}
	add := func(id, ns, via string) {
		if seen[id] {
			return
		}
		seen[id] = true
		u := ListUse{ListID: id, Via: via}
		if x != nil {
			// Kibana finds a list by list_id in the reference's
			// namespace (single unless it says agnostic).
			if l := x.Lists[id]; l != nil && (ns == "" || namespace(ns) == l.NamespaceType) {
				u.List = l
			}
		}
		out = append(out, u)
	}
	for _, ref := range r.ExceptionsList {
		add(ref.ListID, ref.NamespaceType, "exceptions_list")
	}
	if x != nil {
		for _, a := range x.Attached {
			if a.RuleIDs == nil || slices.Contains(a.RuleIDs, r.RuleID) {
				add(a.ListID, "", a.where())
			}
		}
	}
	return out
}

// Local returns trailwatch TOML's [[exception]] entries that apply to a
// rule: those for every rule, then its own.
func (x *Exceptions) Local(r *Rule) []*Exception {
	if x == nil {
		return nil
	}
	return append(append([]*Exception(nil), x.All...), x.ByRule[r.RuleID]...)
}

// For returns the exceptions that apply to a rule: the local ones, then the
// items of its Kibana lists.
func (x *Exceptions) For(r *Rule) []*Exception {
	if x == nil {
		return nil
	}
	out := x.Local(r)
	for _, u := range x.ListsFor(r) {
		if u.List != nil {
			out = append(out, x.ByList[u.ListID]...)
		}
	}
	return out
}

// ListRef is one entry of a rule's exceptions_list.
type ListRef struct {
	ID            string `toml:"id" json:"id"`
	ListID        string `toml:"list_id" json:"list_id"`
	Type          string `toml:"type" json:"type"`
	NamespaceType string `toml:"namespace_type" json:"namespace_type"`
}

// LoadExceptionsFor reads exception files for a rule set (LoadExceptions)
// and holds them against it (Check). Warnings do not stop a rule set; every
// error is in err, each with its place.
func LoadExceptionsFor(rs *RuleSet, paths ...string) (x *Exceptions, warnings Errors, err error) {
	x, err = LoadExceptions(rs.Schema, paths...)
	var errs Errors
	if err != nil && !errors.As(err, &errs) {
		return x, nil, err
	}
	warnings, cerrs := x.Check(rs)
	if errs = append(errs, cerrs...); len(errs) > 0 {
		return x, warnings, errs
	}
	return x, warnings, nil
}

// LoadExceptions reads exception files: Kibana's exception-list export
// (.ndjson) and trailwatch's own TOML of KQL filters per rule_id ("*" for
// every rule) and of Kibana lists attached to rules. Every problem is
// reported, each with its place; an [[attach]] of a list no export holds
// is one.
func LoadExceptions(schema *matcher.Schema, paths ...string) (*Exceptions, error) {
	x := &Exceptions{ByRule: map[string][]*Exception{}, ByList: map[string][]*Exception{}, Lists: map[string]*List{}}
	var errs Errors
	for _, p := range paths {
		data, err := ReadFile(p, maxRuleFile, "an exception file", false)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
			continue
		}
		if strings.EqualFold(filepath.Ext(p), ".toml") {
			errs = append(errs, x.loadTOML(schema, p, data)...)
		} else {
			errs = append(errs, x.loadKibana(schema, p, data)...)
		}
	}
	for _, a := range x.Attached {
		if x.Lists[a.ListID] == nil {
			errs = append(errs, &Error{File: a.File, Line: a.Line, Msg: fmt.Sprintf("[[attach]] list_id %q: no exception-list export given holds that list (%s)", a.ListID, x.listsLoaded())})
		}
	}
	if len(errs) > 0 {
		return x, errs
	}
	return x, nil
}

func (x *Exceptions) listsLoaded() string {
	if len(x.Lists) == 0 {
		return "no Kibana list is loaded"
	}
	return "lists loaded: " + strings.Join(slices.Sorted(maps.Keys(x.Lists)), ", ")
}

// Check holds the exceptions against the rule set they apply to. An
// [[attach]] naming a rule_id the set does not hold is an error with its
// place. A Kibana list that applies to no running rule, through a rule's
// exceptions_list or an [[attach]], excepts nothing: it is a warning
// naming the list and its file.
func (x *Exceptions) Check(rs *RuleSet) (warnings, errs Errors) {
	if x == nil {
		return nil, nil
	}
	ids := map[string]bool{}
	for _, r := range rs.Rules {
		ids[r.RuleID] = true
	}
	for _, a := range x.Attached {
		for _, id := range a.RuleIDs {
			if !ids[id] {
				errs = append(errs, &Error{File: a.File, Line: a.RuleLine, Msg: fmt.Sprintf("[[attach]] rule_id %q: no rule of the rule set has that rule_id", id)})
			}
		}
	}
	// An [[exception]] for a rule_id the set lacks excepts nothing: a
	// warning, not an error, as one exception file may serve nodes that
	// run different rules (an [[attach]] is an error: it names rules).
	for _, id := range slices.Sorted(maps.Keys(x.ByRule)) {
		if !ids[id] {
			e := x.ByRule[id][0]
			warnings = append(warnings, &Error{File: e.file, Line: e.line, Msg: fmt.Sprintf("[[exception]] rule_id %q: no rule of the rule set has that rule_id, so it excepts nothing", id)})
		}
	}
	used := map[string]bool{}
	for _, r := range rs.Runnable() {
		for _, u := range x.ListsFor(r) {
			if u.List != nil {
				used[u.ListID] = true
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(x.Lists)) {
		if l := x.Lists[id]; !used[id] {
			warnings = append(warnings, &Error{File: l.File, Line: l.Line, Msg: fmt.Sprintf(
				"exception list %q is attached to no running rule, so it excepts nothing: name it in a rule's exceptions_list, or attach it in an exception TOML ([[attach]] list_id = %q, rule_id = \"*\" or the rule_ids)", id, id)})
		}
	}
	return warnings, errs
}

func (x *Exceptions) loadTOML(schema *matcher.Schema, path string, data []byte) Errors {
	var f struct {
		Exception []struct {
			RuleID  string `toml:"rule_id"`
			Query   string `toml:"query"`
			Comment string `toml:"comment"`
		} `toml:"exception"`
		Attach []struct {
			ListID  string `toml:"list_id"`
			RuleID  any    `toml:"rule_id"`
			Comment string `toml:"comment"`
		} `toml:"attach"`
	}
	md, err := DecodeTOML(path, data, &f)
	if err != nil {
		return Errors{err.(*Error)}
	}
	var errs Errors
	for _, k := range md.Undecoded() {
		errs = append(errs, &Error{File: path, Msg: fmt.Sprintf("unknown key %q (an [[exception]] has rule_id, query and comment; an [[attach]] has list_id, rule_id and comment)", k.String())})
	}
	for i, e := range f.Exception {
		line := tableKeyLine(data, "exception", i, "")
		if e.RuleID == "" || e.Query == "" {
			errs = append(errs, &Error{File: path, Line: line, Msg: fmt.Sprintf("exception %d: rule_id and query are required (rule_id \"*\" for every rule)", i+1)})
			continue
		}
		q, err := kql.Compile(schema, e.Query)
		if err != nil {
			errs = append(errs, &Error{File: path, Line: max(queryLineIn(data, e.Query, err), line), Msg: fmt.Sprintf("exception %d: query: %v", i+1, err)})
			continue
		}
		ex := &Exception{Name: firstNonEmpty(e.Comment, e.Query), Query: q, Where: fmt.Sprintf("%s:%d", path, line), file: path, line: line}
		if e.RuleID == "*" {
			x.All = append(x.All, ex)
		} else {
			x.ByRule[e.RuleID] = append(x.ByRule[e.RuleID], ex)
		}
	}
	for i, a := range f.Attach {
		place := func(key string) *Error { return &Error{File: path, Line: tableKeyLine(data, "attach", i, key)} }
		if a.ListID == "" {
			e := place("list_id")
			e.Msg = "[[attach]]: list_id is required (the list_id of a list in a Kibana exception-list export)"
			errs = append(errs, e)
			continue
		}
		ids, err := attachRuleIDs(a.RuleID)
		if err != nil {
			e := place("rule_id")
			e.Msg = fmt.Sprintf("[[attach]] of %q: rule_id %v", a.ListID, err)
			errs = append(errs, e)
			continue
		}
		x.Attached = append(x.Attached, &Attachment{ListID: a.ListID, RuleIDs: ids, File: path, Line: place("list_id").Line, RuleLine: place("rule_id").Line})
	}
	return errs
}

// attachRuleIDs reads an [[attach]]'s rule_id: "*" (every rule: nil), one
// rule_id, or a list of them.
func attachRuleIDs(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, fmt.Errorf("is required: \"*\" for every rule, a rule_id, or a list of them")
	case string:
		switch v {
		case "*":
			return nil, nil
		case "":
			return nil, fmt.Errorf("is empty: \"*\" for every rule, a rule_id, or a list of them")
		}
		return []string{v}, nil
	case []any:
		if len(v) == 0 {
			return nil, fmt.Errorf("is an empty list: \"*\" for every rule, a rule_id, or a list of them")
		}
		var ids []string
		for _, e := range v {
			s, ok := e.(string)
			switch {
			case !ok || s == "":
				return nil, fmt.Errorf("holds %#v: a list of rule_ids holds non-empty strings", e)
			case s == "*":
				return nil, fmt.Errorf("holds \"*\": for every rule write rule_id = \"*\", not in a list")
			}
			ids = append(ids, s)
		}
		return ids, nil
	}
	return nil, fmt.Errorf("is %#v: \"*\" for every rule, a rule_id, or a list of them", v)
}

// tableKeyLine finds, in a TOML file, the line of `key =` in the n-th
// (from 0) [[table]] of the given name, or the table's header line when
// key is "" or not found there; 0 when the file has no such table.
func tableKeyLine(data []byte, table string, n int, key string) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxRuleFile)
	header, seen := 0, -1
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "[") {
			if seen == n {
				break // the table ended
			}
			if name, ok := strings.CutPrefix(l, "[["); ok {
				if name, _, ok = strings.Cut(name, "]]"); ok && strings.TrimSpace(name) == table {
					if seen++; seen == n {
						header = line
					}
				}
			}
			continue
		}
		if seen == n && key != "" && strings.HasPrefix(l, key) && strings.HasPrefix(strings.TrimSpace(l[len(key):]), "=") {
			return line
		}
	}
	if header == 0 {
		return keyLine(data, table) // an inline array of tables
	}
	return header
}

func queryLineIn(data []byte, query string, err error) int {
	if qe, ok := err.(*matcher.SyntaxError); ok {
		line, _ := queryPlace(data, query, qe)
		return line
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// kibanaEntry is one entry of an exception list item.
type kibanaEntry struct {
	Field    string        `json:"field"`
	Operator string        `json:"operator"` // included | excluded
	Type     string        `json:"type"`     // match | match_any | exists | wildcard | nested | list
	Value    any           `json:"value"`
	Entries  []kibanaEntry `json:"entries"` // nested
	List     any           `json:"list"`    // type list
}

// Kibana's import schema is exact: keys are matched as written (a key
// spelled otherwise is not the key), and an entry holds only its own keys.
var (
	exportJSON = jsoniter.Config{CaseSensitive: true}.Froze()
	entryJSON  = jsoniter.Config{CaseSensitive: true, DisallowUnknownFields: true}.Froze()
)

// Bounds on an export: Kibana exports at most 10,000 items a list, and an
// item nests entries one level.
const (
	maxListItems     = 10_000
	maxMatchAnyItems = 65_536
	maxExportDepth   = 16
)

func (x *Exceptions) loadKibana(schema *matcher.Schema, path string, data []byte) Errors {
	var errs Errors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxRuleFile)
	objects := 0
	for line := 1; sc.Scan(); line++ {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		fail := func(format string, args ...any) {
			errs = append(errs, &Error{File: path, Line: line, Msg: fmt.Sprintf(format, args...)})
		}
		if col := tooDeep(l, maxExportDepth); col > 0 {
			errs = append(errs, &Error{File: path, Line: line, Col: col, Msg: fmt.Sprintf("nested more than %d levels deep: not an exception list object", maxExportDepth)})
			continue
		}
		var item struct {
			ItemID        string              `json:"item_id"`
			ListID        string              `json:"list_id"`
			Name          string              `json:"name"`
			Type          string              `json:"type"`
			NamespaceType string              `json:"namespace_type"`
			Entries       jsoniter.RawMessage `json:"entries"`
			ExpireTime    string              `json:"expire_time"`
			OSTypes       []string            `json:"os_types"`
			RuleID        string              `json:"rule_id"`
			Query         *string             `json:"query"`
			ListCount     *int                `json:"exported_exception_list_count"`
			ItemCount     *int                `json:"exported_exception_list_item_count"`
		}
		if err := exportJSON.Unmarshal(l, &item); err != nil {
			fail("not an exception list object: %s", clip(firstLine(err.Error())))
			continue
		}
		objects++
		switch {
		case item.ListCount != nil || item.ItemCount != nil:
			continue // the export's summary
		case item.RuleID != "" && item.Query != nil:
			fail("a detection rule, not an exception list object (rules are given as rules, exceptions as the export of their lists)")
			continue
		case item.Entries == nil && item.ItemID == "" && item.ListID != "" && item.Type != "":
			list, err := x.list(item.ListID, item.NamespaceType, path, line)
			if err != nil {
				fail("%v", err)
				continue
			}
			list.Name = item.Name // a list container
			continue
		case item.Entries == nil:
			fail("not an exception list, list item or export summary (a list has list_id and type; an item item_id, list_id and entries)")
			continue
		case item.ItemID == "" || item.ListID == "":
			fail("a list item needs item_id and list_id")
			continue
		}
		list, err := x.list(item.ListID, item.NamespaceType, path, line)
		if err != nil {
			fail("item %q: %v", item.ItemID, err)
			continue
		}
		var expires time.Time
		if item.ExpireTime != "" {
			if expires, err = time.Parse(time.RFC3339Nano, item.ExpireTime); err != nil {
				fail("item %q: expire_time %q: expected a time such as 2026-12-31T00:00:00.000Z", item.ItemID, clip(item.ExpireTime))
				continue
			}
			if !time.Now().Before(expires) {
				// Kept: on the event clock it still excepts the records
				// dated before it (Holds); read now, it excepts none.
				list.Expired++
			}
		}
		if len(item.OSTypes) > 0 {
			// Kibana limits such an item to records whose host.os.type
			// (or host.os.name) is one of them: no CloudTrail record has
			// either, so it never excepts one.
			list.OSOnly++
			continue
		}
		var entries []kibanaEntry
		if err := entryJSON.Unmarshal(item.Entries, &entries); err != nil {
			fail("item %q: entries: %s", item.ItemID, clip(firstLine(err.Error())))
			continue
		}
		src, err := entriesKQL(entries, false)
		if err != nil {
			fail("item %q: %v", item.ItemID, err)
			continue
		}
		q, err := kql.Compile(schema, src)
		if err != nil {
			fail("item %q: %v (as KQL: %s)", item.ItemID, err, clip(src))
			continue
		}
		if list.Items++; list.Items > maxListItems {
			fail("item %q: list %q holds more than %d items (Kibana exports at most %d)", item.ItemID, item.ListID, maxListItems, maxListItems)
			continue
		}
		x.ByList[item.ListID] = append(x.ByList[item.ListID], &Exception{
			Name: firstNonEmpty(item.Name, item.ItemID), Query: q, Where: fmt.Sprintf("%s:%d", path, line), Expires: expires, file: path, line: line})
	}
	if objects == 0 && len(errs) == 0 {
		errs = append(errs, &Error{File: path, Msg: "holds no exception list object (an exception-list export is NDJSON: lists, items and a summary)"})
	}
	return errs
}

// namespace is a list's namespace_type: single unless agnostic.
func namespace(ns string) string {
	if ns == "agnostic" {
		return ns
	}
	return "single"
}

// list returns the list of an id, made at its first place. One list_id
// in two namespaces is refused: lists are found by list_id.
func (x *Exceptions) list(id, ns, path string, line int) (*List, error) {
	ns = namespace(ns)
	l := x.Lists[id]
	if l == nil {
		l = &List{ID: id, NamespaceType: ns, File: path, Line: line}
		x.Lists[id] = l
	} else if l.NamespaceType != ns {
		return nil, fmt.Errorf("list_id %q is a %s list here and a %s list at %s:%d: give the lists of one namespace", id, ns, l.NamespaceType, l.File, l.Line)
	}
	return l, nil
}

// tooDeep returns the column (1-based) where a JSON text opens more than
// depth objects and arrays, outside strings, or 0: decoding such a text
// fails slowly, with an error as long as the nesting.
func tooDeep(b []byte, depth int) int {
	d, inStr := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if d++; d > depth {
				return i + 1
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return 0
}

// clip shortens a text quoted in a message.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// entriesKQL writes an item's entries (all of which must hold) as KQL, the
// way Kibana builds exception filters: match is an exact value, match_any
// any of the values, exists the field's presence, wildcard a wildcard value,
// nested the entries inside one element; excluded negates an entry.
func entriesKQL(entries []kibanaEntry, nested bool) (string, error) {
	if len(entries) == 0 {
		return "", fmt.Errorf("no entries")
	}
	var parts []string
	for _, e := range entries {
		if e.Field == "" {
			return "", fmt.Errorf("an entry without a field")
		}
		field := e.Field
		if e.Operator == "" && e.Type != "nested" {
			return "", fmt.Errorf("entry %s: operator missing (included or excluded)", field)
		}
		var q string
		switch e.Type {
		case "match":
			v, ok := e.Value.(string)
			if !ok || v == "" {
				return "", fmt.Errorf("entry %s: match needs one non-empty string value", field)
			}
			q = fmt.Sprintf("%s: %s", kqlField(field), kqlQuote(v))
		case "match_any":
			vs, ok := e.Value.([]any)
			if !ok || len(vs) == 0 {
				return "", fmt.Errorf("entry %s: match_any needs a list of values", field)
			}
			if len(vs) > maxMatchAnyItems {
				return "", fmt.Errorf("entry %s: match_any of %d values (at most %d)", field, len(vs), maxMatchAnyItems)
			}
			var alts []string
			for i, v := range vs {
				s, ok := v.(string)
				if !ok || s == "" {
					return "", fmt.Errorf("entry %s: match_any value %d is not a non-empty string", field, i+1)
				}
				alts = append(alts, kqlQuote(s))
			}
			sort.Strings(alts)
			q = fmt.Sprintf("%s: (%s)", kqlField(field), strings.Join(alts, " or "))
		case "exists":
			q = fmt.Sprintf("%s: *", kqlField(field))
		case "wildcard":
			if nested {
				return "", fmt.Errorf("entry %s: a wildcard inside nested (Kibana's nested entries are match, match_any or exists)", field)
			}
			v, ok := e.Value.(string)
			if !ok || v == "" {
				return "", fmt.Errorf("entry %s: wildcard needs one non-empty string value", field)
			}
			w, err := kqlWildcard(v)
			if err != nil {
				return "", fmt.Errorf("entry %s: %v", field, err)
			}
			q = fmt.Sprintf("%s: %s", kqlField(field), w)
		case "nested":
			if nested {
				return "", fmt.Errorf("nested %s inside nested (Kibana nests one level)", field)
			}
			inner, err := entriesKQL(e.Entries, true)
			if err != nil {
				return "", fmt.Errorf("nested %s: %v", field, err)
			}
			q = fmt.Sprintf("%s: { %s }", kqlField(field), inner)
		case "list":
			return "", fmt.Errorf("entry %s: value lists (type list) are not supported at the edge", field)
		default:
			return "", fmt.Errorf("entry %s: unknown type %q (match, match_any, exists, wildcard, nested)", field, e.Type)
		}
		switch e.Operator {
		case "", "included":
		case "excluded":
			q = "not " + "(" + q + ")"
		default:
			return "", fmt.Errorf("entry %s: operator %q (included or excluded)", field, e.Operator)
		}
		parts = append(parts, "("+q+")")
	}
	return strings.Join(parts, " and "), nil
}

func kqlField(f string) string { return kqlEscape(f, true) }

// kqlQuote writes a value as a quoted KQL string (a literal, * included).
func kqlQuote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// kqlWildcard writes the value of a wildcard entry, which Kibana gives
// Elasticsearch as a wildcard query (* any characters, ? one character, \
// escaping the next one), as KQL: unquoted, its * kept as wildcards and
// everything else literal. A ? has no KQL equivalent: refused, where it was
// once taken for a literal ? (and \ for a literal backslash), so that the
// exception silenced other values than it named.
func kqlWildcard(v string) (string, error) {
	var b, lit strings.Builder
	flush := func() {
		b.WriteString(kqlEscape(lit.String(), true))
		lit.Reset()
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && i+1 < len(v):
			i++
			lit.WriteByte(v[i])
		case c == '*':
			flush()
			b.WriteByte('*')
		case c == '?':
			return "", fmt.Errorf("wildcard %q: ? (any one character) has no equivalent here; write the values with match_any, or widen it to *", v)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	s := b.String()
	for _, kw := range []string{"and", "or", "not"} {
		if strings.EqualFold(s, kw) {
			return `\` + s, nil
		}
	}
	return s, nil
}

func kqlEscape(v string, escapeStar bool) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '*' && !escapeStar:
			b.WriteRune(r)
		case strings.ContainsRune(`\():<>"*{} `, r):
			if r == ' ' {
				b.WriteString(`\u0020`)
				continue
			}
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	for _, kw := range []string{"and", "or", "not"} {
		if strings.EqualFold(s, kw) {
			return `\` + s
		}
	}
	return s
}
