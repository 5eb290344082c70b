package conf

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/matcher/kql"
)

// withFilters ANDs a KQL rule's Kibana filters with its compiled query, as
// Kibana's detection engine adds them to the search beside the query
// (getQueryFilter: each filter's query DSL, negated by meta.negate, left
// out by meta.disabled). The filters Kibana's UI writes are read: a
// phrase (match_phrase, or match of type phrase), phrases (bool.should of
// them), exists and range, and bool must/filter/should/must_not of these;
// any other query DSL is an error with the filter's place, never passed
// over.
func withFilters(schema *matcher.Schema, r *Rule, q *matcher.Query) (*matcher.Query, error) {
	if r.Language != "kuery" {
		return q, fmt.Errorf("filters: read on KQL rules only (this rule's language is %s)", r.Language)
	}
	var parts []string
	for i, f := range r.Filters {
		m, ok := f.(map[string]any)
		if !ok {
			return q, fmt.Errorf("filters[%d]: expected an object", i)
		}
		meta, _ := m["meta"].(map[string]any)
		if meta["disabled"] == true {
			continue
		}
		dsl, ok := m["query"].(map[string]any)
		if !ok {
			// Older filters hold their clause at the top level.
			dsl = map[string]any{}
			for k, v := range m {
				if k != "meta" && k != "$state" {
					dsl[k] = v
				}
			}
		}
		clause, err := dslKQL(dsl, 0)
		if err != nil {
			return q, fmt.Errorf("filters[%d]: %v", i, err)
		}
		if meta["negate"] == true {
			clause = "not " + clause
		}
		parts = append(parts, clause)
	}
	if len(parts) == 0 {
		return q, nil
	}
	src := "(" + r.Query + ") and " + strings.Join(parts, " and ")
	out, err := kql.Compile(schema, src)
	if err != nil {
		return q, fmt.Errorf("filters: %v (as KQL: %s)", err, clip(src))
	}
	return out, nil
}

// dslKQL writes one query DSL clause as KQL, parenthesized.
func dslKQL(dsl map[string]any, depth int) (string, error) {
	if depth > 8 {
		return "", fmt.Errorf("bool queries nested past 8 levels")
	}
	if len(dsl) != 1 {
		keys := slices.Sorted(maps.Keys(dsl))
		return "", fmt.Errorf("expected one query DSL clause, found %v", keys)
	}
	for kind, body := range dsl {
		b, ok := body.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%s: expected an object", kind)
		}
		switch kind {
		case "match_phrase", "match":
			if len(b) != 1 {
				return "", fmt.Errorf("%s: expected one field", kind)
			}
			for field, v := range b {
				if o, ok := v.(map[string]any); ok {
					if kind == "match" && o["type"] != "phrase" {
						return "", fmt.Errorf("match on %s: only type phrase is read (a full-text match is not)", field)
					}
					v = o["query"]
				} else if kind == "match" {
					return "", fmt.Errorf("match on %s: only type phrase is read (a full-text match is not)", field)
				}
				text, err := scalarText(v)
				if err != nil {
					return "", fmt.Errorf("%s on %s: %v", kind, field, err)
				}
				return "(" + kqlField(field) + ": " + kqlQuote(text) + ")", nil
			}
		case "exists":
			field, ok := b["field"].(string)
			if !ok || field == "" || len(b) != 1 {
				return "", fmt.Errorf("exists: expected {\"field\": name}")
			}
			return "(" + kqlField(field) + ": *)", nil
		case "range":
			if len(b) != 1 {
				return "", fmt.Errorf("range: expected one field")
			}
			for field, v := range b {
				o, ok := v.(map[string]any)
				if !ok {
					return "", fmt.Errorf("range on %s: expected an object", field)
				}
				var conds []string
				for _, op := range slices.Sorted(maps.Keys(o)) {
					sym := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
					if sym == "" {
						if op == "format" {
							continue
						}
						return "", fmt.Errorf("range on %s: %q is not read (gt, gte, lt, lte)", field, op)
					}
					text, err := scalarText(o[op])
					if err != nil {
						return "", fmt.Errorf("range on %s: %s: %v", field, op, err)
					}
					conds = append(conds, kqlField(field)+" "+sym+" "+kqlQuote(text))
				}
				if len(conds) == 0 {
					return "", fmt.Errorf("range on %s: no bound", field)
				}
				return "(" + strings.Join(conds, " and ") + ")", nil
			}
		case "bool":
			var and []string
			for _, k := range slices.Sorted(maps.Keys(b)) {
				switch k {
				case "must", "filter", "should", "must_not":
				case "minimum_should_match":
					if n, ok := b[k].(float64); !ok || n != 1 {
						if i, ok := b[k].(int64); !ok || i != 1 {
							return "", fmt.Errorf("bool: minimum_should_match other than 1 is not read")
						}
					}
					continue
				default:
					return "", fmt.Errorf("bool: %q is not read (must, filter, should, must_not)", k)
				}
				var subs []string
				for _, c := range asClauses(b[k]) {
					cm, ok := c.(map[string]any)
					if !ok {
						return "", fmt.Errorf("bool.%s: expected query objects", k)
					}
					s, err := dslKQL(cm, depth+1)
					if err != nil {
						return "", err
					}
					subs = append(subs, s)
				}
				if len(subs) == 0 {
					continue
				}
				switch k {
				case "should":
					and = append(and, "("+strings.Join(subs, " or ")+")")
				case "must_not":
					and = append(and, "not ("+strings.Join(subs, " or ")+")")
				default:
					and = append(and, subs...)
				}
			}
			if len(and) == 0 {
				return "", fmt.Errorf("bool: no clause")
			}
			return "(" + strings.Join(and, " and ") + ")", nil
		default:
			return "", fmt.Errorf("query DSL %q is not read at the edge (match_phrase, match of type phrase, exists, range and bool are)", kind)
		}
	}
	return "", fmt.Errorf("no clause")
}

func asClauses(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case []map[string]any: // a TOML array of tables
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// scalarText is a filter value's text: a string, number or boolean.
func scalarText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	}
	return "", fmt.Errorf("value %v is not a string, number or boolean", v)
}
