package kql

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/matcher"
)

// The compiler turns a KQL AST into the core's tests the way Kibana builds
// the Elasticsearch query (exists for `*`, query_string for wildcards, match
// or match_phrase otherwise) and Elasticsearch runs it on each field's
// mapping.

// Compile parses and compiles a KQL query against a schema.
func Compile(s *matcher.Schema, src string) (*matcher.Query, error) {
	ast, err := Parse(src)
	if err != nil {
		return nil, err
	}
	c := &compiler{reads: matcher.Reads{Schema: s}}
	root, err := c.compile(ast, "")
	if err != nil {
		return nil, err
	}
	return matcher.NewQuery(src, root, c.reads.Fields, c.reads.Notes), nil
}

type compiler struct {
	reads matcher.Reads
}

// refusedOnKey notes a test that Elasticsearch refuses on a keyed flattened
// subfield (it has no wildcard or one-sided range query there: the search
// fails, elastic/elasticsearch#157064); trailwatch runs it as on a keyword.
// One note per field and kind of test, at its first place.
func (c *compiler) refusedOnKey(n *Node, f *matcher.Field, what string) {
	c.reads.Note(n.Pos, fmt.Sprintf("%s on %s: Elasticsearch refuses it on a key of a flattened field (the rule fails in Kibana); trailwatch tests it as on a keyword", what, f.Name))
}

func (c *compiler) errorf(pos matcher.Pos, format string, args ...any) error {
	return &matcher.SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (c *compiler) field(name string) *matcher.Field { return c.reads.Field(name) }

// compile turns an AST node into a condition; nested is the path of the
// enclosing nested query, which prefixes field names inside it.
func (c *compiler) compile(n *Node, nested string) (matcher.Cond, error) {
	switch n.Kind {
	case NodeAll:
		return matcher.Const(true), nil
	case NodeOr, NodeAnd:
		kids := make([]matcher.Cond, 0, len(n.Children))
		for _, k := range n.Children {
			kc, err := c.compile(k, nested)
			if err != nil {
				return nil, err
			}
			kids = append(kids, kc)
		}
		if n.Kind == NodeOr {
			return matcher.Or(kids), nil
		}
		return matcher.And(kids), nil
	case NodeNot:
		k, err := c.compile(n.Children[0], nested)
		if err != nil {
			return nil, err
		}
		return matcher.Not(k), nil
	case NodeNested:
		name := fullName(nested, n.Field)
		f := c.field(name)
		if f.Type != matcher.Nested {
			return nil, c.errorf(n.Pos, "%s is not a nested field (it is mapped as %s); Elasticsearch refuses a nested query on it", name, f.Type)
		}
		inner, err := c.compile(n.Children[0], name)
		if err != nil {
			return nil, err
		}
		return matcher.InNested(f, inner), nil
	case NodeIs:
		return c.is(n, c.field(fullName(nested, n.Field)))
	case NodeRange:
		return c.rangeCond(n, c.field(fullName(nested, n.Field)))
	}
	return nil, c.errorf(n.Pos, "unknown query node")
}

func fullName(nested, field string) string {
	if nested == "" {
		return field
	}
	return nested + "." + field
}

// is compiles field:value the way Kibana builds it (exists for `*`,
// query_string for wildcards, match or match_phrase otherwise) and
// Elasticsearch runs it on the field's mapping.
func (c *compiler) is(n *Node, f *matcher.Field) (matcher.Cond, error) {
	v := n.Value
	if v.Null {
		return nil, c.errorf(n.Pos, "%s: null: Elasticsearch refuses a match query without text; quote it (\"null\") to match the text null", f.Name)
	}
	if v.Wildcard() && len(v.Parts) == 2 && v.Parts[0] == "" && v.Parts[1] == "" {
		return matcher.Exists(f), nil
	}
	switch f.Type {
	case matcher.Keyword, matcher.Flattened:
		if v.Wildcard() {
			if f.FlattenedKey != "" && !matcher.TrailingWildcard(v.Parts) {
				c.refusedOnKey(n, f, "a wildcard other than a trailing *")
			}
			return matcher.Any(f, matcher.Wildcard(v.Parts)), nil
		}
		return matcher.Any(f, matcher.Equal(v.Parts[0])), nil
	case matcher.Nested:
		// A nested object's fields are not in the parent document.
		return matcher.Const(false), nil
	case matcher.GeoPoint:
		return nil, c.errorf(n.Pos, "%s is a geo_point; KQL can only test that it exists (%s:*)", f.Name, f.Name)
	}
	if v.Wildcard() {
		return nil, c.errorf(n.Pos, "%s is mapped as %s; Elasticsearch runs wildcards only on keyword fields (use %s:* to test that it exists)", f.Name, f.Type, f.Name)
	}
	text := v.Parts[0]
	switch f.Type {
	case matcher.Long, matcher.Double:
		x, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, c.errorf(n.Pos, "%s is mapped as %s; %q is not a number", f.Name, f.Type, text)
		}
		if f.Type == matcher.Long && x != math.Trunc(x) {
			// Elasticsearch answers "no documents" for a decimal on a long.
			return matcher.Const(false), nil
		}
		return matcher.Any(f, matcher.NumCompare("eq", x)), nil
	case matcher.IP:
		if pfx, err := netip.ParsePrefix(text); err == nil {
			return matcher.Any(f, matcher.CIDR(pfx.Masked())), nil
		}
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is an ip field; %q is neither an IP address nor a CIDR block", f.Name, text)
		}
		return matcher.Any(f, matcher.CIDR(netip.PrefixFrom(a, a.BitLen()))), nil
	case matcher.Date:
		dm, err := matcher.ParseDateMath(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is a date field; %v", f.Name, err)
		}
		return matcher.Any(f, matcher.DateCompare("eq", dm)), nil
	case matcher.Boolean:
		b, ok := matcher.ParseBool(text)
		if !ok {
			return nil, c.errorf(n.Pos, "%s is a boolean field; %q is not true or false", f.Name, text)
		}
		return matcher.Any(f, matcher.Equal(strconv.FormatBool(b))), nil
	}
	return nil, c.errorf(n.Pos, "%s: unsupported field type %s", f.Name, f.Type)
}

func (c *compiler) rangeCond(n *Node, f *matcher.Field) (matcher.Cond, error) {
	text := n.Value.Parts[0]
	switch f.Type {
	case matcher.Keyword, matcher.Flattened:
		if f.FlattenedKey != "" {
			c.refusedOnKey(n, f, "a range")
		}
		return matcher.Any(f, matcher.StrCompare(n.Op, text)), nil
	case matcher.Long, matcher.Double:
		x, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsNaN(x) {
			return nil, c.errorf(n.Pos, "%s is mapped as %s; %q is not a number", f.Name, f.Type, text)
		}
		return matcher.Any(f, matcher.NumCompare(n.Op, x)), nil
	case matcher.Date:
		dm, err := matcher.ParseDateMath(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is a date field; %v", f.Name, err)
		}
		return matcher.Any(f, matcher.DateCompare(n.Op, dm)), nil
	case matcher.IP:
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, c.errorf(n.Pos, "%s is an ip field; %q is not an IP address", f.Name, text)
		}
		return matcher.Any(f, matcher.IPCompare(n.Op, a)), nil
	case matcher.Boolean:
		b, ok := matcher.ParseBool(text)
		if !ok {
			return nil, c.errorf(n.Pos, "%s is a boolean field; %q is not true or false", f.Name, text)
		}
		return matcher.Any(f, matcher.NumCompare(n.Op, boolNum(b))), nil
	}
	return nil, c.errorf(n.Pos, "%s is mapped as %s; it has no order for a range", f.Name, f.Type)
}

func boolNum(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
