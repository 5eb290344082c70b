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

// defaultIgnoreAbove is the ignore_above of ECS keyword fields (and of the
// dynamic string template of logs-* data streams): a longer value is kept in
// _source but not indexed, so no query sees it.
const defaultIgnoreAbove = 1024

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
	// res derives the field from raw CloudTrail (nil: not a derived field).
	res resolver
	// kp is the raw path the field is, when it is one (res reads it too).
	kp *keyPath
}

type mapping struct {
	typ         FieldType
	ignoreAbove int
}

// ecsMappings holds the fields whose mapping is not a 1024-limited keyword,
// as the AWS integration (cloudtrail data stream) and ECS define them.
var ecsMappings = map[string]mapping{
	"@timestamp":                {Date, 0},
	"event.ingested":            {Date, 0},
	"event.created":             {Date, 0},
	"event.start":               {Date, 0},
	"event.end":                 {Date, 0},
	"event.duration":            {Long, 0},
	"event.severity":            {Long, 0},
	"event.sequence":            {Long, 0},
	"source.ip":                 {IP, 0},
	"client.ip":                 {IP, 0},
	"destination.ip":            {IP, 0},
	"host.ip":                   {IP, 0},
	"related.ip":                {IP, 0},
	"source.port":               {Long, 0},
	"source.as.number":          {Long, 0},
	"source.geo.location":       {GeoPoint, 0},
	"aws.cloudtrail.event_time": {Date, 0},
	"aws.cloudtrail.user_identity.session_context.creation_date":       {Date, 0},
	"aws.cloudtrail.user_identity.session_context.mfa_authenticated":   {Keyword, defaultIgnoreAbove},
	"aws.cloudtrail.console_login.additional_eventdata.mfa_used":       {Boolean, 0},
	"aws.cloudtrail.read_only":                                         {Boolean, 0},
	"aws.cloudtrail.management_event":                                  {Keyword, defaultIgnoreAbove},
	"aws.cloudtrail.request_parameters":                                {Keyword, 8191},
	"aws.cloudtrail.response_elements":                                 {Keyword, 8191},
	"aws.cloudtrail.additional_eventdata":                              {Keyword, defaultIgnoreAbove},
	"aws.cloudtrail.service_event_details":                             {Keyword, defaultIgnoreAbove},
	"aws.cloudtrail.flattened.request_parameters":                      {Flattened, 0},
	"aws.cloudtrail.flattened.response_elements":                       {Flattened, 0},
	"aws.cloudtrail.flattened.additional_eventdata":                    {Flattened, 0},
	"aws.cloudtrail.flattened.service_event_details":                   {Flattened, 0},
	"aws.cloudtrail.insight_details.state":                             {Keyword, defaultIgnoreAbove},
	"aws.cloudtrail.console_login.additional_eventdata.login_to":       {Keyword, defaultIgnoreAbove},
	"aws.cloudtrail.console_login.additional_eventdata.mobile_version": {Keyword, defaultIgnoreAbove},
}

// Schema interns field names. It is safe for concurrent use.
type Schema struct {
	mu     sync.RWMutex
	byName map[string]*Field
	list   []*Field
}

// NewSchema returns an empty schema.
func NewSchema() *Schema { return &Schema{byName: map[string]*Field{}} }

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
	f = &Field{ID: len(s.list), Name: name, Type: Keyword, IgnoreAbove: defaultIgnoreAbove, res: resolvers[name], kp: rawPaths[name]}
	if m, ok := ecsMappings[name]; ok {
		f.Type, f.IgnoreAbove = m.typ, m.ignoreAbove
	} else if root, key, ok := flattenedParent(name); ok {
		// A key inside a flattened field: its values are keywords, with no
		// ignore_above unless the flattened field sets one.
		f.Type, f.IgnoreAbove = Keyword, 0
		f.FlattenedRoot, f.FlattenedKey = root, key
	}
	s.byName[name] = f
	s.list = append(s.list, f)
	return f
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

func flattenedParent(name string) (root, key string, ok bool) {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] != '.' {
			continue
		}
		if m, found := ecsMappings[name[:i]]; found && m.typ == Flattened {
			return name[:i], name[i+1:], true
		}
	}
	return "", "", false
}
