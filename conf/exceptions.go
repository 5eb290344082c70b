package conf

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	jsoniter "github.com/json-iterator/go"

	"github.com/trailwatch/trailwatch/matcher"
)

// Exception is one compiled exception: a record it matches neither alerts
// nor counts as new_terms history for the rules it applies to.
type Exception struct {
	Name  string // the list item or local entry, for messages and metrics
	Query *matcher.Query
	Where string // file:line
}

// Exceptions holds the exceptions of a rule set: by rule_id, by Kibana
// exception list_id (attached through a rule's exceptions_list), and for
// every rule.
type Exceptions struct {
	ByRule map[string][]*Exception
	ByList map[string][]*Exception
	All    []*Exception
}

// For returns the exceptions that apply to a rule.
func (x *Exceptions) For(r *Rule) []*Exception {
	if x == nil {
		return nil
	}
	out := append([]*Exception(nil), x.All...)
	out = append(out, x.ByRule[r.RuleID]...)
	for _, ref := range r.ExceptionsList {
		out = append(out, x.ByList[ref.ListID]...)
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

// LoadExceptions reads exception files: Kibana's exception-list export
// (.ndjson) and trailwatch's own TOML of KQL filters per rule_id ("*" for
// every rule). Every problem is reported, each with its place.
func LoadExceptions(schema *matcher.Schema, paths ...string) (*Exceptions, error) {
	x := &Exceptions{ByRule: map[string][]*Exception{}, ByList: map[string][]*Exception{}}
	var errs Errors
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: err.Error()})
			continue
		}
		if len(data) > maxRuleFile {
			errs = append(errs, &Error{File: p, Msg: fmt.Sprintf("file is %d bytes; an exception file may be at most %d", len(data), maxRuleFile)})
			continue
		}
		if strings.EqualFold(filepath.Ext(p), ".toml") {
			errs = append(errs, x.loadTOML(schema, p, data)...)
		} else {
			errs = append(errs, x.loadKibana(schema, p, data)...)
		}
	}
	if len(errs) > 0 {
		return x, errs
	}
	return x, nil
}

func (x *Exceptions) loadTOML(schema *matcher.Schema, path string, data []byte) Errors {
	var f struct {
		Exception []struct {
			RuleID  string `toml:"rule_id"`
			Query   string `toml:"query"`
			Comment string `toml:"comment"`
		} `toml:"exception"`
	}
	md, err := DecodeTOML(path, data, &f)
	if err != nil {
		return Errors{err.(*Error)}
	}
	var errs Errors
	for _, k := range md.Undecoded() {
		errs = append(errs, &Error{File: path, Msg: fmt.Sprintf("unknown key %q (an [[exception]] has rule_id, query and comment)", k.String())})
	}
	for i, e := range f.Exception {
		where := fmt.Sprintf("%s: exception %d", path, i+1)
		if e.RuleID == "" || e.Query == "" {
			errs = append(errs, &Error{File: path, Msg: fmt.Sprintf("exception %d: rule_id and query are required (rule_id \"*\" for every rule)", i+1)})
			continue
		}
		q, err := matcher.Compile(schema, e.Query)
		if err != nil {
			errs = append(errs, &Error{File: path, Line: queryLineIn(data, e.Query, err), Msg: fmt.Sprintf("exception %d: query: %v", i+1, err)})
			continue
		}
		ex := &Exception{Name: firstNonEmpty(e.Comment, e.Query), Query: q, Where: where}
		if e.RuleID == "*" {
			x.All = append(x.All, ex)
		} else {
			x.ByRule[e.RuleID] = append(x.ByRule[e.RuleID], ex)
		}
	}
	return errs
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
}

func (x *Exceptions) loadKibana(schema *matcher.Schema, path string, data []byte) Errors {
	var errs Errors
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxRuleFile)
	for line := 1; sc.Scan(); line++ {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var item struct {
			ItemID        string        `json:"item_id"`
			ListID        string        `json:"list_id"`
			Name          string        `json:"name"`
			Entries       []kibanaEntry `json:"entries"`
			ExportedCount *int          `json:"exported_exception_list_count"`
		}
		if err := jsoniter.Unmarshal(l, &item); err != nil {
			errs = append(errs, &Error{File: path, Line: line, Msg: "not an exception list object: " + firstLine(err.Error())})
			continue
		}
		if item.ItemID == "" {
			continue // a list container or the export summary
		}
		kql, err := entriesKQL(item.Entries, "")
		if err != nil {
			errs = append(errs, &Error{File: path, Line: line, Msg: fmt.Sprintf("item %q: %v", item.ItemID, err)})
			continue
		}
		q, err := matcher.Compile(schema, kql)
		if err != nil {
			errs = append(errs, &Error{File: path, Line: line, Msg: fmt.Sprintf("item %q: %v (as KQL: %s)", item.ItemID, err, kql)})
			continue
		}
		x.ByList[item.ListID] = append(x.ByList[item.ListID], &Exception{
			Name: firstNonEmpty(item.Name, item.ItemID), Query: q, Where: fmt.Sprintf("%s:%d", path, line)})
	}
	return errs
}

// entriesKQL writes an item's entries (all of which must hold) as KQL, the
// way Kibana builds exception filters: match is an exact value, match_any
// any of the values, exists the field's presence, wildcard a wildcard value,
// nested the entries inside one element; excluded negates an entry.
func entriesKQL(entries []kibanaEntry, prefix string) (string, error) {
	if len(entries) == 0 {
		return "", fmt.Errorf("no entries")
	}
	var parts []string
	for _, e := range entries {
		if e.Field == "" {
			return "", fmt.Errorf("an entry without a field")
		}
		field := e.Field
		var q string
		switch e.Type {
		case "match":
			v, ok := e.Value.(string)
			if !ok {
				return "", fmt.Errorf("entry %s: match needs one string value", field)
			}
			q = fmt.Sprintf("%s: %s", kqlField(field), kqlQuote(v))
		case "match_any":
			vs, ok := e.Value.([]any)
			if !ok || len(vs) == 0 {
				return "", fmt.Errorf("entry %s: match_any needs a list of values", field)
			}
			var alts []string
			for _, v := range vs {
				alts = append(alts, kqlQuote(fmt.Sprint(v)))
			}
			sort.Strings(alts)
			q = fmt.Sprintf("%s: (%s)", kqlField(field), strings.Join(alts, " or "))
		case "exists":
			q = fmt.Sprintf("%s: *", kqlField(field))
		case "wildcard":
			v, ok := e.Value.(string)
			if !ok {
				return "", fmt.Errorf("entry %s: wildcard needs one string value", field)
			}
			q = fmt.Sprintf("%s: %s", kqlField(field), kqlWildcard(v))
		case "nested":
			inner, err := entriesKQL(e.Entries, "")
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

// kqlWildcard writes a value unquoted with its * kept as wildcards and every
// other special character escaped.
func kqlWildcard(v string) string { return kqlEscape(v, false) }

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
