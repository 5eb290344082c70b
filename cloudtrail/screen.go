package cloudtrail

import (
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// plainRecord reports, from a walk of the raw event, that the pipeline
// cannot fail on it and Elasticsearch cannot refuse its document: every
// value the pipeline reads as a string, an object or a list has that type,
// every value it writes to a mapped leaf field is a scalar, no key comes
// twice, and the payloads' flattened leaves are short and shallow. It is
// sufficient, not necessary: false means only that the document must be
// built to know (FuzzIngestBothPaths and TestIngestGoldens hold it to
// Ingest). Nearly every CloudTrail record is plain, and telling so costs a
// walk instead of the pipeline.
func plainRecord(raw *doc.Node) bool {
	if raw == nil || raw.Kind != doc.Object {
		return false
	}
	if _, dup := duplicateKey(raw); dup {
		return false
	}
	for _, m := range raw.Obj {
		v := m.Val
		if v == nil || gone(v) {
			continue
		}
		switch m.Key {
		case "userAgent", "sourceIPAddress":
			if v.Kind != doc.String {
				return false
			}
		case "requestParameters", "responseElements", "additionalEventData", "serviceEventDetails":
			if v.Kind != doc.Object || !plainPayload(v, 0, 0) {
				return false
			}
		case "tlsDetails":
			if v.Kind != doc.Object || !allStrings(v) {
				return false
			}
		case "userIdentity":
			if v.Kind != doc.Object || !plainIdentity(v, "", 0) {
				return false
			}
		case "readOnly":
			if !(v.Kind == doc.Bool || v.Kind == doc.String && (v.Str == "true" || v.Str == "false")) {
				return false
			}
		case "resources":
			if v.Kind != doc.Array || !plainResources(v) {
				return false
			}
		case "insightDetails":
			if v.Kind != doc.Object || !plainPayload(v, 0, 0) {
				return false
			}
		case "addendum":
			if v.Kind != doc.Object || !scalarMembers(v) {
				return false
			}
		case "eventTime", "managementEvent":
			// A time that fails is an error the pipeline notes; the
			// management flag is converted to text whatever it is.
		default:
			if !scalarOrScalars(v) {
				return false
			}
		}
	}
	// Values copied to keyword fields from inside the payloads.
	for _, p := range [...][2]string{
		{"requestParameters", "userName"}, {"requestParameters", "newUserName"}, {"requestParameters", "groupName"},
		{"additionalEventData", "LoginTo"},
	} {
		if v := raw.Path(p[0], p[1]); v != nil && !gone(v) && !scalarOrScalars(v) {
			return false
		}
	}
	// UserAuthentication's user name becomes user.name, which the
	// pipeline reads as a string.
	if v := raw.Path("additionalEventData", "UserName"); v != nil && !gone(v) && v.Kind != doc.String {
		return false
	}
	for _, p := range [...][]string{{"responseElements", "user", "userId"}, {"responseElements", "group", "groupId"}} {
		if v := pathThrough(raw, p); v != nil && !gone(v) && !scalarOrScalars(v) {
			return false
		}
	}
	return true
}

// gone reports whether the first cleanup removes a value.
func gone(n *doc.Node) bool { return cleaned(n) == nil }

// pathThrough follows object keys, nil at any step that is not an object.
func pathThrough(n *doc.Node, keys []string) *doc.Node {
	for _, k := range keys {
		if n == nil || n.Kind != doc.Object {
			return nil
		}
		n = n.Get(k)
	}
	return n
}

func scalar(n *doc.Node) bool { return n.Kind != doc.Object && n.Kind != doc.Array }

// scalarOrScalars: a scalar, or a list of scalars.
func scalarOrScalars(n *doc.Node) bool {
	if n.Kind == doc.Array {
		for _, el := range n.Arr {
			if !scalar(el) {
				return false
			}
		}
		return true
	}
	return scalar(n)
}

func scalarMembers(n *doc.Node) bool {
	for _, m := range n.Obj {
		if m.Val != nil && !scalarOrScalars(m.Val) {
			return false
		}
	}
	return true
}

func allStrings(n *doc.Node) bool {
	for _, m := range n.Obj {
		if m.Val != nil && !gone(m.Val) && m.Val.Kind != doc.String {
			return false
		}
	}
	return true
}

// plainIdentity: userIdentity's values are strings or objects of them
// (webIdFederationData.attributes, stored whole, excepted), and no deeper
// than its known shape.
func plainIdentity(n *doc.Node, name string, depth int) bool {
	if depth > 3 {
		return false
	}
	for _, m := range n.Obj {
		v := m.Val
		if v == nil || gone(v) {
			continue
		}
		switch {
		case name == "webIdFederationData" && m.Key == "attributes":
			if v.Kind != doc.Object { // any object: the field is mapped dynamically
				return false
			}
		case v.Kind == doc.Object:
			// Only the objects the record's shape has: a value the
			// pipeline renames to a keyword field must be a string.
			if !identityObjects[m.Key] || !plainIdentity(v, m.Key, depth+1) {
				return false
			}
		case v.Kind != doc.String:
			return false
		}
	}
	return true
}

// identityObjects are userIdentity's keys that hold objects.
var identityObjects = setOf("sessionContext sessionIssuer attributes webIdFederationData onBehalfOf invokedByDelegate inScopeOf")

func plainResources(n *doc.Node) bool {
	for _, r := range n.Arr {
		if r.Kind != doc.Object {
			continue // dropped by the pipeline
		}
		if !scalarMembers(r) {
			return false
		}
	}
	return true
}

// plainPayload: the flattened copy's leaves are far from Lucene's term
// limit and from the flattened depth limit.
func plainPayload(n *doc.Node, depth, keyLen int) bool {
	if depth > 16 || keyLen > 2000 {
		return false
	}
	switch n.Kind {
	case doc.Object:
		for _, m := range n.Obj {
			if m.Val != nil && !plainPayload(m.Val, depth+1, keyLen+len(m.Key)+1) {
				return false
			}
		}
	case doc.Array:
		for _, el := range n.Arr {
			if !plainPayload(el, depth, keyLen) {
				return false
			}
		}
	default:
		return len(n.Str) < 16000
	}
	return true
}
