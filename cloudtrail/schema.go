package cloudtrail

import (
	"strings"

	"github.com/trailwatch/trailwatch/matcher"
)

// NewSchema returns a schema of the ECS fields as the AWS integration's
// cloudtrail data stream maps them, each derived from raw CloudTrail by this
// package's readers.
func NewSchema() *matcher.Schema { return matcher.NewSchema(ecsMapping{}) }

// ecsMapping maps fields as the AWS integration's index template does, and
// attaches to each the derivation that reads it from raw CloudTrail.
type ecsMapping struct{}

// fieldReader is how a field is read from raw CloudTrail: through its
// resolver, or directly through its key path when it is one raw path.
type fieldReader struct {
	res resolver
	kp  *keyPath
}

func (ecsMapping) Map(f *matcher.Field) {
	if m, ok := ecsMappings[f.Name]; ok {
		f.Type, f.IgnoreAbove = m.typ, m.ignoreAbove
	} else if root, key, ok := flattenedParent(f.Name); ok {
		// A key inside a flattened field: its values are keywords, with no
		// ignore_above unless the flattened field sets one.
		f.Type, f.IgnoreAbove = matcher.Keyword, 0
		f.FlattenedRoot, f.FlattenedKey = root, key
	}
	f.ReadCost = readCost(f)
	f.Usual = usual[f.Name]
	if res, kp := resolvers[f.Name], rawPaths[f.Name]; res != nil || kp != nil {
		f.Reader = &fieldReader{res: res, kp: kp}
	}
}

// Constants are the fields every CloudTrail record has with one value, as
// the integration sets them.
func (ecsMapping) Constants() map[string]string {
	return map[string]string{
		"data_stream.dataset": Dataset,
		"event.dataset":       Dataset,
		"data_stream.type":    "logs",
		"event.kind":          "event",
	}
}

// usual is the value most CloudTrail records have in a field.
var usual = map[string]string{
	"data_stream.dataset": Dataset,
	"event.dataset":       Dataset,
	"event.outcome":       "success",
	"event.kind":          "event",
	// Most CloudTrail events are calls made by assumed roles.
	"aws.cloudtrail.user_identity.type": "AssumedRole",
}

// readCost is what reading a field takes, relative to a top-level string.
func readCost(f *matcher.Field) int {
	switch {
	case f.FlattenedRoot != "" || f.Type == matcher.Flattened:
		return 20 // the payload is cleaned and walked
	case strings.HasPrefix(f.Name, "aws.cloudtrail.request_parameters"), strings.HasPrefix(f.Name, "aws.cloudtrail.response_elements"),
		strings.HasPrefix(f.Name, "aws.cloudtrail.additional_eventdata"), strings.HasPrefix(f.Name, "aws.cloudtrail.service_event_details"):
		return 30 // Map.toString() of the payload
	case strings.HasPrefix(f.Name, "related."), strings.HasPrefix(f.Name, "entity."), strings.HasPrefix(f.Name, "aws.cloudtrail.resources."):
		return 15
	}
	return 1
}

type mapping struct {
	typ         matcher.FieldType
	ignoreAbove int
}

// ecsMappings holds the fields whose mapping is not a 1024-limited keyword,
// as the AWS integration (cloudtrail data stream) and ECS define them.
var ecsMappings = map[string]mapping{
	"@timestamp":                {matcher.Date, 0},
	"event.ingested":            {matcher.Date, 0},
	"event.created":             {matcher.Date, 0},
	"event.start":               {matcher.Date, 0},
	"event.end":                 {matcher.Date, 0},
	"event.duration":            {matcher.Long, 0},
	"event.severity":            {matcher.Long, 0},
	"event.sequence":            {matcher.Long, 0},
	"source.ip":                 {matcher.IP, 0},
	"client.ip":                 {matcher.IP, 0},
	"destination.ip":            {matcher.IP, 0},
	"host.ip":                   {matcher.IP, 0},
	"related.ip":                {matcher.IP, 0},
	"source.port":               {matcher.Long, 0},
	"source.as.number":          {matcher.Long, 0},
	"source.geo.location":       {matcher.GeoPoint, 0},
	"aws.cloudtrail.event_time": {matcher.Date, 0},
	"aws.cloudtrail.user_identity.session_context.creation_date":       {matcher.Date, 0},
	"aws.cloudtrail.user_identity.session_context.mfa_authenticated":   {matcher.Keyword, matcher.DefaultIgnoreAbove},
	"aws.cloudtrail.console_login.additional_eventdata.mfa_used":       {matcher.Boolean, 0},
	"aws.cloudtrail.read_only":                                         {matcher.Boolean, 0},
	"aws.cloudtrail.management_event":                                  {matcher.Keyword, matcher.DefaultIgnoreAbove},
	"aws.cloudtrail.request_parameters":                                {matcher.Keyword, 8191},
	"aws.cloudtrail.response_elements":                                 {matcher.Keyword, 8191},
	"aws.cloudtrail.additional_eventdata":                              {matcher.Keyword, matcher.DefaultIgnoreAbove},
	"aws.cloudtrail.service_event_details":                             {matcher.Keyword, matcher.DefaultIgnoreAbove},
	"aws.cloudtrail.flattened.request_parameters":                      {matcher.Flattened, 0},
	"aws.cloudtrail.flattened.response_elements":                       {matcher.Flattened, 0},
	"aws.cloudtrail.flattened.additional_eventdata":                    {matcher.Flattened, 0},
	"aws.cloudtrail.flattened.service_event_details":                   {matcher.Flattened, 0},
	"aws.cloudtrail.insight_details.state":                             {matcher.Keyword, matcher.DefaultIgnoreAbove},
	"aws.cloudtrail.console_login.additional_eventdata.login_to":       {matcher.Keyword, matcher.DefaultIgnoreAbove},
	"aws.cloudtrail.console_login.additional_eventdata.mobile_version": {matcher.Keyword, matcher.DefaultIgnoreAbove},
}

func flattenedParent(name string) (root, key string, ok bool) {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] != '.' {
			continue
		}
		if m, found := ecsMappings[name[:i]]; found && m.typ == matcher.Flattened {
			return name[:i], name[i+1:], true
		}
	}
	return "", "", false
}
