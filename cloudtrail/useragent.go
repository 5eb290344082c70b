package cloudtrail

import (
	"regexp"
	"strings"
	"sync"

	"github.com/ua-parser/uap-go/uaparser"
	"gopkg.in/yaml.v3"
)

// The AWS integration parses userAgent with Elasticsearch's user_agent
// processor (its default properties: name, version, os, device, original;
// no device type). The regular expressions are uap-core's, as the
// processor's are, taken from uap-go (which carries a newer uap-core than a
// given Elasticsearch release: where uap-core changed a rule since, the two
// can name a client differently). The matching is the processor's own, not
// uap-go's: the first rule whose pattern is found and that yields a name
// wins; a replacement is used as written except that its first "$1" is
// replaced by group 1; versions are groups 2 to 5 unless replaced; the
// version is major[.minor[.patch[.build]]]; with no client match the name
// is "Other", with no device match the device is "Other", and with no OS
// match there is no os.

// userAgent is what the processor writes under user_agent.
type userAgent struct {
	name, version      string
	osName, osVersion  string
	osFull, deviceName string
	hasOS              bool
}

type uaRule struct {
	re                   *regexp.Regexp
	name, v1, v2, v3, v4 *string
}

type uaRules struct {
	ua, os, device []uaRule
}

var loadUARules = sync.OnceValue(func() *uaRules {
	var defs map[string][]map[string]string
	if err := yaml.Unmarshal(uaparser.DefinitionYaml, &defs); err != nil {
		panic("uap-core regexes: " + err.Error())
	}
	compile := func(list []map[string]string, name, v1, v2, v3, v4 string) []uaRule {
		out := make([]uaRule, 0, len(list))
		for _, m := range list {
			expr := m["regex"]
			if m["regex_flag"] == "i" {
				expr = "(?i)" + expr
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				continue // a pattern RE2 cannot run: left out (none in the bundled set)
			}
			get := func(k string) *string {
				if k == "" {
					return nil
				}
				if v, ok := m[k]; ok {
					return &v
				}
				return nil
			}
			out = append(out, uaRule{re, get(name), get(v1), get(v2), get(v3), get(v4)})
		}
		return out
	}
	return &uaRules{
		ua:     compile(defs["user_agent_parsers"], "family_replacement", "v1_replacement", "v2_replacement", "v3_replacement", "v4_replacement"),
		os:     compile(defs["os_parsers"], "os_replacement", "os_v1_replacement", "os_v2_replacement", "os_v3_replacement", "os_v4_replacement"),
		device: compile(defs["device_parsers"], "device_replacement", "", "", "", ""),
	}
})

// versionedName is one match: a name and up to four version parts.
type versionedName struct {
	name  string
	parts [4]*string
}

func (r *uaRule) match(s string) (versionedName, bool) {
	loc := r.re.FindStringSubmatchIndex(s)
	if loc == nil {
		return versionedName{}, false
	}
	groups := len(loc)/2 - 1
	group := func(i int) *string {
		if i > groups || loc[2*i] < 0 {
			return nil
		}
		g := s[loc[2*i]:loc[2*i+1]]
		return &g
	}
	var vn versionedName
	switch g1 := group(1); {
	case r.name != nil:
		vn.name = *r.name
		if strings.Contains(vn.name, "$1") && g1 != nil {
			vn.name = strings.Replace(vn.name, "$1", *g1, 1)
		}
	case g1 != nil:
		vn.name = *g1
	default:
		return versionedName{}, false // no name: the next rule is tried
	}
	for i, rep := range [4]*string{r.v1, r.v2, r.v3, r.v4} {
		if rep != nil {
			vn.parts[i] = rep
		} else {
			vn.parts[i] = group(i + 2)
		}
	}
	return vn, true
}

func firstMatch(rules []uaRule, s string) (versionedName, bool) {
	for i := range rules {
		if vn, ok := rules[i].match(s); ok {
			return vn, true
		}
	}
	return versionedName{}, false
}

// joinVersion is major[.minor[.patch[.build]]], "" without a major.
func joinVersion(parts [4]*string) string {
	var b strings.Builder
	for i, p := range parts {
		if p == nil {
			break
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(*p)
	}
	return b.String()
}

// uaCache keeps recent parses (the processor keeps a cache of 1000).
var uaCache = struct {
	sync.Mutex
	m map[string]*userAgent
}{m: map[string]*userAgent{}}

const uaCacheSize = 1000

// parseUserAgent parses a user agent as the user_agent processor does.
func parseUserAgent(s string) *userAgent {
	uaCache.Lock()
	ua, ok := uaCache.m[s]
	uaCache.Unlock()
	if ok {
		return ua
	}
	// The parse keeps substrings of s (a name is often a regexp group),
	// and the cache keeps the parse past the record: s may point into a
	// Fluent Bit chunk that is freed after its flush, so the parse is made
	// on a copy the cache owns.
	s = strings.Clone(s)
	rules := loadUARules()
	ua = &userAgent{name: "Other", deviceName: "Other"}
	if vn, ok := firstMatch(rules.ua, s); ok {
		ua.name = vn.name
		if vn.parts[0] != nil {
			ua.version = joinVersion(vn.parts)
		}
	}
	if vn, ok := firstMatch(rules.os, s); ok {
		ua.hasOS, ua.osName = true, vn.name
		if vn.parts[0] != nil {
			ua.osVersion = joinVersion(vn.parts)
			ua.osFull = vn.name + " " + ua.osVersion
		}
	}
	if vn, ok := firstMatch(rules.device, s); ok {
		ua.deviceName = vn.name
	}
	uaCache.Lock()
	if len(uaCache.m) >= uaCacheSize {
		clear(uaCache.m)
	}
	uaCache.m[s] = ua
	uaCache.Unlock()
	return ua
}
