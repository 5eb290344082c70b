package matcher

import (
	"net/netip"
	"sync"
)

// FieldType is how Elasticsearch maps a field, which decides how a KQL value
// is compared with the field's values.
type FieldType uint8

// Field types that change KQL semantics.
const (
	Keyword   FieldType = iota // exact, case-sensitive text; wildcards; ranges compare bytes
	Long                       // integer numbers
	Double                     // floating-point numbers
	IP                         // IPv4/IPv6 addresses; CIDR values
	Date                       // instants; ranges and date math
	Boolean                    // true/false
	Flattened                  // an object whose leaves are all indexed as keywords
	Nested                     // an array of objects queried element by element
	GeoPoint                   // not queryable with KQL values
)

var typeNames = [...]string{"keyword", "long", "double", "ip", "date", "boolean", "flattened", "nested", "geo_point"}

func (t FieldType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// DefaultIgnoreAbove is the ignore_above of ECS keyword fields (and of the
// dynamic string template of logs-* data streams): a longer value is kept in
// _source but not indexed, so no query sees it.
const DefaultIgnoreAbove = 1024

// TermText is v as Elasticsearch's terms aggregation returns it for f,
// which is how new_terms tells terms apart: an ip field's address in its
// canonical form (IPv6 lower case and shortest, IPv4-mapped as IPv4, no
// zone: the field stores 16 bytes), every other value as it is.
func (f *Field) TermText(v Value) string {
	if f.Type == IP {
		if a, err := netip.ParseAddr(v.Text); err == nil {
			return netip.AddrFrom16(a.As16()).Unmap().String()
		}
	}
	return v.Text
}

// Field is an interned field name with its mapping. Records cache resolved
// values by ID.
type Field struct {
	ID          int
	Name        string
	Type        FieldType
	IgnoreAbove int // keyword only; 0 means no limit
	// FlattenedRoot is the name of the flattened field this one is a key of
	// ("" when it is not a flattened key); FlattenedKey is the key below it.
	FlattenedRoot string
	FlattenedKey  string
	// ReadCost is what reading the field from a record takes, relative to
	// reading a top-level string (1); the reader's mapping sets it, and
	// conjunctions read cheap fields first.
	ReadCost int
	// Usual is the value nearly every record has in the field ("" when
	// none): a test for it is likely true, so conjunctions run it last.
	Usual string
	// Reader is what the record reader attached to the field (how to derive
	// it); the core never reads it.
	Reader any
}

// Mapping is what a kind of record (CloudTrail through the AWS integration)
// tells a schema about its fields.
type Mapping interface {
	// Map completes a new field: its Type and IgnoreAbove (a 1024-limited
	// keyword unless it says otherwise), flattened parent, cost, usual value
	// and reader.
	Map(f *Field)
}

// Schema interns field names. It is safe for concurrent use.
type Schema struct {
	m      Mapping
	mu     sync.RWMutex
	byName map[string]*Field
	list   []*Field
}

// NewSchema returns an empty schema whose fields m maps (nil: every field is
// a 1024-limited keyword).
func NewSchema(m Mapping) *Schema { return &Schema{m: m, byName: map[string]*Field{}} }

// Field returns the interned field for name, creating it on first use.
func (s *Schema) Field(name string) *Field {
	s.mu.RLock()
	f := s.byName[name]
	s.mu.RUnlock()
	if f != nil {
		return f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f = s.byName[name]; f != nil {
		return f
	}
	f = &Field{ID: len(s.list), Name: name, Type: Keyword, IgnoreAbove: DefaultIgnoreAbove}
	if s.m != nil {
		s.m.Map(f)
	}
	s.byName[name] = f
	s.list = append(s.list, f)
	return f
}

// Constants are the fields every record of the schema's kind has with one
// value (a CloudTrail record's data_stream.dataset is aws.cloudtrail), when
// its mapping knows them: a front end can decide tests of them at load.
func (s *Schema) Constants() map[string]string {
	if c, ok := s.m.(interface{ Constants() map[string]string }); ok {
		return c.Constants()
	}
	return nil
}

// Fields lists the schema's fields in the order they were interned.
func (s *Schema) Fields() []*Field {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Field(nil), s.list...)
}

// Declare sets the mapping of a field, overriding the built-in table (for
// fields an index template maps differently, such as a nested field). It
// must be called before the field is first used.
func (s *Schema) Declare(name string, t FieldType, ignoreAbove int) {
	f := s.Field(name)
	s.mu.Lock()
	f.Type, f.IgnoreAbove = t, ignoreAbove
	s.mu.Unlock()
}
