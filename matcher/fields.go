package matcher

// ValueKind tells what JSON kind a field value came from.
type ValueKind uint8

// Value kinds.
const (
	KindString ValueKind = iota
	KindNumber
	KindBool
)

// Value is one value of a field, as Elasticsearch would index it into a
// keyword: strings as they are, numbers as written, booleans as "true" or
// "false".
type Value struct {
	Text string
	Kind ValueKind
}

// Fields gives a query the values of one record's fields. Implementations
// resolve names lazily: a query asks only for the fields it reads, and only
// when evaluation reaches them.
type Fields interface {
	// Values returns the values of f, arrays flattened; nil when the record
	// has no value for it. For a flattened field it returns every leaf.
	Values(f *Field) []Value
	// Elements returns one Fields per element of the nested field f, each
	// answering for names below f by their full names.
	Elements(f *Field) []Fields
}

// DateFields is a Fields that can give some date fields' one value as
// epoch milliseconds without rendering it as text. Millis reports false
// when it does not (the caller reads Values); otherwise the field has one
// value, the one parsing its text in Values gives.
type DateFields interface {
	Fields
	Millis(f *Field) (int64, bool)
}

// TextFields is a Fields that can sometimes tell, without making a field's
// values, that none of them contains a string: Lacks reports true only
// then (false: it may, or it does not know). It is asked about strings
// without TextSeparators.
type TextFields interface {
	Fields
	Lacks(f *Field, s string) bool
}

// TextSeparators are the bytes a rendered text puts between its parts (a
// payload's Map.toString(): "{", "}", "[", "]", "=", ", "): a string
// without them lies within one part, which a TextFields can look for in the
// record's own bytes.
const TextSeparators = "{}[]=, "

// MapFields is a Fields over a plain map from field name to values, for
// tests and for callers that already hold resolved values.
type MapFields map[string][]Value

// Values implements Fields.
func (m MapFields) Values(f *Field) []Value { return m[f.Name] }

// Elements implements Fields: MapFields has no nested elements.
func (m MapFields) Elements(*Field) []Fields { return nil }
