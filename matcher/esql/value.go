package esql

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/matcher"
)

// ES|QL is statically typed: every column and expression has one type,
// decided when the query is compiled, so a value carries no type of its own.
// A column's value is a list of values (a multi-valued field); an empty
// list is null.

type typ uint8

const (
	tyNull     typ = iota // the type of the null literal
	tyKeyword             // text: s
	tyInt                 // integer (32 bits): n
	tyLong                // long: n
	tyDouble              // double: f
	tyBool                // boolean: n is 0 or 1
	tyDate                // datetime: n is epoch milliseconds
	tyIP                  // ip: s holds the 16-byte form (IPv4 mapped)
	tyDuration            // time_duration literal
	tyPeriod              // date_period literal
	tyUnsupported
)

var typeNames = [...]string{"null", "keyword", "integer", "long", "double", "boolean", "datetime", "ip", "time_duration", "date_period", "unsupported"}

func (t typ) String() string { return typeNames[t] }

func (t typ) numeric() bool { return t == tyInt || t == tyLong || t == tyDouble }

type val struct {
	s string
	n int64
	f float64
}

// mv is a column's value in one row: its values, nil for null.
type mv = []val

var (
	mvTrue  = mv{{n: 1}}
	mvFalse = mv{{n: 0}}
)

func boolMV(b bool) mv {
	if b {
		return mvTrue
	}
	return mvFalse
}

// typeOfField is the ES|QL type of a field with Elasticsearch's mapping.
func typeOfField(f *matcher.Field) typ {
	if f.FlattenedRoot != "" {
		return tyUnsupported
	}
	switch f.Type {
	case matcher.Keyword:
		return tyKeyword
	case matcher.Long:
		return tyLong
	case matcher.Double:
		return tyDouble
	case matcher.IP:
		return tyIP
	case matcher.Date:
		return tyDate
	case matcher.Boolean:
		return tyBool
	}
	return tyUnsupported
}

// readField turns a record's values of f into what ES|QL reads from the
// field's doc values: only values the mapping indexed (a keyword past
// ignore_above, a number, date, address or boolean it cannot parse is not
// there), in doc values' order: keywords and addresses sorted by their bytes
// with duplicates removed (sorted sets), numbers, dates and booleans sorted
// with duplicates kept (sorted numerics). See the ES|QL reference,
// "multivalued fields" (esql-multivalued-fields.md).
func readField(k *ctx, f *matcher.Field, t typ, in []matcher.Value, out mv) mv {
	for i := range in {
		v := &in[i]
		switch t {
		case tyKeyword:
			if !matcher.Searchable(f, v) {
				continue
			}
			out = append(out, val{s: v.Text})
		case tyLong:
			if v.Kind == matcher.KindBool {
				continue
			}
			if n, err := strconv.ParseInt(strings.TrimSpace(v.Text), 10, 64); err == nil {
				out = append(out, val{n: n})
			} else if x, ok := docNumber(v); ok && x >= math.MinInt64 && x < math.MaxInt64 {
				out = append(out, val{n: int64(x)}) // coerce truncates a fraction
			}
		case tyDouble:
			if x, ok := docNumber(v); ok {
				out = append(out, val{f: x})
			}
		case tyDate:
			if d, err := matcher.ParseDate(v.Text); err == nil {
				out = append(out, val{n: d.UnixMilli()})
			}
		case tyIP:
			if a, err := netip.ParseAddr(v.Text); err == nil && a.Zone() == "" {
				out = append(out, val{s: k.ipText(a.As16())})
			}
		case tyBool:
			if b, ok := matcher.ParseBool(v.Text); ok {
				out = append(out, boolMV(b)[0])
			}
		}
	}
	if len(out) < 2 {
		return out
	}
	switch t {
	case tyKeyword, tyIP:
		slices.SortFunc(out, func(a, b val) int { return strings.Compare(a.s, b.s) })
		out = slices.CompactFunc(out, func(a, b val) bool { return a.s == b.s })
	case tyDouble:
		slices.SortFunc(out, func(a, b val) int { return cmpFloat(a.f, b.f) })
	default:
		slices.SortFunc(out, func(a, b val) int { return cmpInt(a.n, b.n) })
	}
	return out
}

// docNumber reads a value into a numeric field as Elasticsearch coerces it:
// numbers and numeric strings, not booleans or other text.
func docNumber(v *matcher.Value) (float64, bool) {
	if v.Kind == matcher.KindBool {
		return 0, false
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(v.Text), 64)
	return x, err == nil && !math.IsNaN(x) && !math.IsInf(x, 0)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpFloat orders doubles as Java's Double.compare does (-0.0 before 0.0,
// NaN last).
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		if a == 0 {
			return cmpBool(math.Signbit(b), math.Signbit(a))
		}
		return 0
	}
	return cmpBool(math.IsNaN(a), math.IsNaN(b))
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

// compareVals orders two values of type t as ES|QL sorts them.
func compareVals(t typ, a, b val) int {
	switch t {
	case tyKeyword, tyIP:
		return strings.Compare(a.s, b.s)
	case tyDouble:
		return cmpFloat(a.f, b.f)
	}
	return cmpInt(a.n, b.n)
}

// output is v as a field value of an alert or a result row: text as it is,
// numbers as ES|QL writes them, booleans true/false, dates in ISO 8601 with
// milliseconds (UTC), addresses in their canonical form.
func output(t typ, v val) matcher.Value {
	switch t {
	case tyKeyword:
		return matcher.Value{Text: v.s}
	case tyInt, tyLong:
		return matcher.Value{Text: strconv.FormatInt(v.n, 10), Kind: matcher.KindNumber}
	case tyDouble:
		return matcher.Value{Text: javaDouble(v.f), Kind: matcher.KindNumber}
	case tyBool:
		return matcher.Value{Text: strconv.FormatBool(v.n != 0), Kind: matcher.KindBool}
	case tyDate:
		return matcher.Value{Text: formatDate(v.n)}
	case tyIP:
		return matcher.Value{Text: ipString(v.s)}
	}
	return matcher.Value{}
}

func formatDate(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

func ipString(s string) string {
	if len(s) != 16 {
		return ""
	}
	return netip.AddrFrom16([16]byte([]byte(s))).Unmap().String()
}

// javaDouble writes x as Java's Double.toString does (shortest digits that
// read back as x): plain notation with at least one decimal between 10^-3
// and 10^7, computerised scientific notation (1.0E7) outside.
func javaDouble(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	case x == 0:
		if math.Signbit(x) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(x)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(x, 'e', -1, 64) // d.ddde±xx
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// toKeyword is TO_STRING of one value of type t.
func toKeyword(t typ, v val) string {
	if t == tyKeyword {
		return v.s
	}
	return output(t, v).Text
}

// runeLen counts code points as Java's String.codePointCount does over the
// UTF-8 text.
func runeLen(s string) int { return utf8.RuneCountInString(s) }
