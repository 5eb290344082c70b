package cloudtrail

import (
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// Elasticsearch refuses a whole document when a value does not fit its
// field's mapping. refusal finds, in a document the pipeline made, the
// conflicts the AWS integration's mappings give: an object where a leaf
// field (keyword, boolean, ip, date) is mapped, a concrete value where an
// object is mapped, a boolean field given anything but true, false, "true"
// or "false", a flattened field given anything but an object, and a
// flattened leaf whose term (key, a zero byte and the value) passes
// Lucene's 32,766-byte limit, or nested past the flattened depth limit of
// 20. Fields the pipeline does not name are mapped dynamically and take
// what comes.

// leafFields are the fields the pipeline names that are leaves: an object
// there is refused.
var leafFields = setOf(`@timestamp ecs.version tags error.message
event.created event.kind event.type event.category event.outcome event.action event.provider event.id
actor.entity.id user.entity.id target.entity.id entity.target.id service.target.entity.id
host.target.entity.id user.target.entity.id service.entity.id host.entity.id entity.id related.entity
related.user related.ip related.hosts user.name user.id user.email user.target.name user.target.id
user.changes.name group.id group.name cloud.account.id cloud.region cloud.provider cloud.service.name
source.address source.ip user_agent.original user_agent.name user_agent.version user_agent.os.name
user_agent.os.version user_agent.os.full user_agent.device.name tls.version tls.version_protocol
tls.cipher tls.client.server_name
aws.cloudtrail.event_version aws.cloudtrail.event_category aws.cloudtrail.error_code
aws.cloudtrail.error_message aws.cloudtrail.request_parameters aws.cloudtrail.response_elements
aws.cloudtrail.additional_eventdata aws.cloudtrail.service_event_details aws.cloudtrail.request_id
aws.cloudtrail.event_type aws.cloudtrail.api_version aws.cloudtrail.management_event
aws.cloudtrail.read_only aws.cloudtrail.recipient_account_id aws.cloudtrail.shared_event_id
aws.cloudtrail.vpc_endpoint_id aws.cloudtrail.vpc_endpoint_account_id
aws.cloudtrail.session_credential_from_console aws.cloudtrail.tls_details.key_exchange
aws.cloudtrail.resources.arn aws.cloudtrail.resources.account_id aws.cloudtrail.resources.type
aws.cloudtrail.addendum.reason aws.cloudtrail.addendum.updated_fields
aws.cloudtrail.addendum.original_request_id aws.cloudtrail.addendum.original_event_id
aws.cloudtrail.console_login.additional_eventdata.mobile_version
aws.cloudtrail.console_login.additional_eventdata.login_to
aws.cloudtrail.console_login.additional_eventdata.mfa_used
aws.cloudtrail.user_identity.type aws.cloudtrail.user_identity.arn aws.cloudtrail.user_identity.access_key_id
aws.cloudtrail.user_identity.invoked_by aws.cloudtrail.user_identity.credential_id
aws.cloudtrail.user_identity.identity_provider aws.cloudtrail.user_identity.invoked_by_delegate.account_id
aws.cloudtrail.user_identity.on_behalf_of.user_id aws.cloudtrail.user_identity.on_behalf_of.identity_store_arn
aws.cloudtrail.user_identity.in_scope_of.issuer_type aws.cloudtrail.user_identity.in_scope_of.credentials_issued_to
aws.cloudtrail.user_identity.in_scope_of.source_arn aws.cloudtrail.user_identity.in_scope_of.source_account
aws.cloudtrail.user_identity.session_context.mfa_authenticated
aws.cloudtrail.user_identity.session_context.creation_date
aws.cloudtrail.user_identity.session_context.ec2_role_delivery
aws.cloudtrail.user_identity.session_context.source_identity
aws.cloudtrail.user_identity.session_context.assumed_root
aws.cloudtrail.user_identity.session_context.sign_in_session_arn
aws.cloudtrail.user_identity.session_context.session_issuer.type
aws.cloudtrail.user_identity.session_context.session_issuer.arn
aws.cloudtrail.user_identity.session_context.session_issuer.principal_id
aws.cloudtrail.user_identity.session_context.session_issuer.account_id
aws.cloudtrail.user_identity.session_context.web_id_federation_data.federated_provider`)

// booleanFields are mapped boolean.
var booleanFields = setOf(`aws.cloudtrail.read_only
aws.cloudtrail.console_login.additional_eventdata.mobile_version
aws.cloudtrail.console_login.additional_eventdata.mfa_used`)

// flattenedRoots are mapped flattened.
var flattenedRoots = setOf(`aws.cloudtrail.flattened.request_parameters aws.cloudtrail.flattened.response_elements
aws.cloudtrail.flattened.additional_eventdata aws.cloudtrail.flattened.service_event_details
aws.cloudtrail.flattened.insight_details aws.cloudtrail.flattened.digest`)

// objectFields are mapped as objects (with properties).
var objectFields = setOf(`aws.cloudtrail.resources aws.cloudtrail.flattened user_agent user_agent.os user_agent.device
event user cloud source related tls aws aws.cloudtrail aws.cloudtrail.user_identity`)

const (
	maxTermBytes         = 32766
	flattenedDepthLimit  = 20
	refusedKeywordObject = "an object in the keyword field "
)

// refusal returns why Elasticsearch would refuse the document, "" when it
// indexes it.
func refusal(n *doc.Node) string {
	var buf [128]byte
	return refuseWalk(n, buf[:0])
}

// refuseWalk checks a value at a field path (built in place: the lookups
// allocate nothing).
func refuseWalk(n *doc.Node, path []byte) string {
	switch {
	case flattenedRoots[string(path)]:
		if n.Kind != doc.Object {
			return "a " + kindName(n) + " in the flattened field " + string(path)
		}
		return flattenedRefusal(n, string(path), "", 1)
	case booleanFields[string(path)]:
		for _, v := range arrayOrOne(n) {
			if !(v.Kind == doc.Bool || v.Kind == doc.String && (v.Str == "true" || v.Str == "false")) {
				return "a " + kindName(v) + " that is not a boolean in the boolean field " + string(path)
			}
		}
		return ""
	case leafFields[string(path)]:
		for _, v := range arrayOrOne(n) {
			if v.Kind == doc.Object {
				return refusedKeywordObject + string(path)
			}
			if v.Kind == doc.Array {
				if r := refuseWalk(v, path); r != "" {
					return r
				}
			}
		}
		return ""
	}
	if n.Kind == doc.Array {
		for _, el := range n.Arr {
			if r := refuseWalk(el, path); r != "" {
				return r
			}
		}
		return ""
	}
	if n.Kind != doc.Object {
		if objectFields[string(path)] {
			return "a " + kindName(n) + " in the object field " + string(path)
		}
		return ""
	}
	for _, m := range n.Obj {
		if m.Val == nil {
			continue
		}
		p := path
		if len(p) > 0 {
			p = append(p, '.')
		}
		p = append(p, m.Key...)
		if r := refuseWalk(m.Val, p); r != "" {
			return r
		}
	}
	return ""
}

func flattenedRefusal(n *doc.Node, root, key string, depth int) string {
	if depth > flattenedDepthLimit {
		return "the flattened field " + root + " nested deeper than 20"
	}
	switch n.Kind {
	case doc.Object:
		for _, m := range n.Obj {
			if m.Val == nil {
				continue
			}
			k := m.Key
			if key != "" {
				k = key + "." + m.Key
			}
			if r := flattenedRefusal(m.Val, root, k, depth+1); r != "" {
				return r
			}
		}
	case doc.Array:
		for _, el := range n.Arr {
			if r := flattenedRefusal(el, root, key, depth); r != "" {
				return r
			}
		}
	default:
		t, _ := n.KeywordText()
		if n.Kind == doc.Number && n.Float {
			t = javaToString(n)
		}
		if len(key)+1+len(t) > maxTermBytes {
			return "a flattened leaf over 32,766 bytes at " + root + "." + key
		}
	}
	return ""
}

func arrayOrOne(n *doc.Node) []*doc.Node {
	if n.Kind == doc.Array {
		return n.Arr
	}
	return []*doc.Node{n}
}

// kindName names a value's JSON kind (the reason never quotes the value:
// reasons are counted, so they are few).
func kindName(n *doc.Node) string { return n.Kind.String() }
