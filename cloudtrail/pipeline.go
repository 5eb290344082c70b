package cloudtrail

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// AWSPackage is the release of Elastic's AWS integration whose CloudTrail
// ingest pipeline (last changed in 8.5.1) this package follows.
const AWSPackage = "aws 8.8.0"

// pipelineName is how error messages name the pipeline.
const pipelineName = "logs-aws.cloudtrail-8.8.0"

// ecsVersion is the ecs.version the pipeline sets.
const ecsVersion = "8.11.0"

// Indexed is a raw CloudTrail event as the AWS integration's ingest
// pipeline leaves it: the document Elasticsearch is asked to index.
type Indexed struct {
	Doc *doc.Node // an object; members with a nil Val are removed keys
	// Failed: a processor without its own failure handler failed, and the
	// document holds what the processors before it wrote, with
	// error.message and event.kind: pipeline_error.
	Failed bool
	// Refused is why Elasticsearch would refuse the document (a mapping
	// conflict), "" when it would index it.
	Refused string
	// Geo: the pipeline reached its geoip processors (right after
	// source.ip), so the document holds their source.geo.* and
	// source.as.* fields; a failure before them leaves them out.
	Geo bool
}

// ingestedText is event.ingested as Fleet's final pipeline writes it: to the
// second, ISO_OFFSET_DATE_TIME in UTC.
func ingestedText(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// pipelineFail stops the pipeline: a processor without on_failure failed.
type pipelineFail struct{ msg string }

// ingest is one run of the pipeline.
type ingest struct {
	ctx  *doc.Node // the document being built (the pipeline's ctx)
	json *doc.Node // ctx.json, the parsed event
	errs []string  // error.message
	geo  bool      // the geoip processors were reached
}

// Ingest runs the AWS integration's CloudTrail ingest pipeline over a raw
// event. ingested is when the event was read (the agent's @timestamp);
// entityMapping stands for the actor_target_mapping tag.
func Ingest(raw *doc.Node, ingested time.Time, entityMapping bool) *Indexed {
	in := &ingest{ctx: obj()}
	out := &Indexed{Doc: in.ctx}
	at := formatESDate(ingested)
	in.set("@timestamp", str1(at))
	// What the agent's input and the data stream give every document.
	in.set("data_stream.type", str1("logs"))
	in.set("data_stream.dataset", str1(Dataset))
	in.set("event.dataset", str1(Dataset))
	var tags []string
	if entityMapping {
		tags = append(tags, "actor_target_mapping")
	}
	if len(tags) > 0 {
		in.set("tags", strList(tags))
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				f, ok := r.(pipelineFail)
				if !ok {
					panic(r)
				}
				out.Failed = true
				in.onPipelineFailure(f.msg)
			}
		}()
		in.run(raw, at, entityMapping)
	}()
	// Fleet's final pipeline.
	in.set("event.ingested", str1(ingestedText(ingested)))
	out.Refused = refusal(in.ctx)
	out.Geo = in.geo
	return out
}

// onPipelineFailure is the pipeline's own on_failure: the message, the
// kind, the tag, and the working fields removed; no further cleanup.
func (in *ingest) onPipelineFailure(msg string) {
	in.errs = append(in.errs, msg)
	in.set("error.message", strList(in.errs))
	in.set("event.kind", str1("pipeline_error"))
	in.appendUnique("tags", "preserve_original_event")
	in.remove("json")
	in.remove("_tmp")
}

func failf(typ, tag, format string, args ...any) {
	panic(pipelineFail{processorMessage(typ, tag, fmt.Sprintf(format, args...))})
}

func processorMessage(typ, tag, msg string) string {
	return "Processor " + typ + " with tag " + tag + " in pipeline " + pipelineName + " failed with message: " + msg
}

// handled notes a failure that the processor's own on_failure catches.
func (in *ingest) handled(typ, tag, msg string) {
	in.errs = append(in.errs, processorMessage(typ, tag, msg))
	in.set("error.message", strList(in.errs))
}

func (in *ingest) run(raw *doc.Node, at string, entityMapping bool) {
	// set event.created from @timestamp; json from event.original.
	in.set("event.created", str1(at))
	if key, dup := duplicateKey(raw); dup {
		failf("json", "json_event_original_to_json_5e54dc16", "Duplicate field '%s'", key)
	}
	// The parsed event is the raw tree, copied only where the pipeline
	// changes it: its top level, and the objects fields are renamed out of.
	in.json = &doc.Node{Kind: doc.Object, Obj: append([]doc.Member(nil), raw.Obj...)}
	in.set("ecs.version", str1(ecsVersion))
	// date json.eventTime -> @timestamp, before the cleanup.
	if t := in.json.Get("eventTime"); t != nil && t.Kind != doc.Null && !(t.Kind == doc.String && t.Str == "") {
		if ts, ok := parseISO8601(javaToString(t)); ok {
			in.set("@timestamp", str1(formatESDate(ts)))
		} else {
			removeMember(in.json, "eventTime")
			in.handled("date", "date_json_eventTime_to_timestamp_e9417ba3", "unable to parse date ["+javaToString(t)+"]")
		}
	}
	// The cleanup of null, "", "-", "none" and emptied maps and lists
	// (cleaned copies what it changes and shares the rest).
	if in.json = cleaned(in.json); in.json == nil {
		in.json = obj()
	} else {
		for _, k := range [...]string{"userIdentity", "addendum", "tlsDetails"} {
			if v := in.json.Get(k); v != nil && v.Kind == doc.Object {
				setMember(in.json, k, deepCopy(v))
			}
		}
	}
	in.ctx.Obj = append(in.ctx.Obj, doc.Member{Key: "json", Val: in.json})
	if entityMapping && in.json.Get("eventName") != nil {
		if ents, ok := runEntityScript(in.json); ok {
			for _, f := range ents.fields {
				if f.actor != nil {
					in.set(f.name, &doc.Node{Kind: doc.Array, Arr: []*doc.Node{f.actor}})
				} else {
					in.set(f.name, strList(f.vals))
				}
			}
		} else {
			in.appendUnique("tags", "preserve_original_event")
			in.handled("script", "script_append_related_entity_31dc3369", "the entity script failed on a value of an unexpected type")
		}
	}
	in.rename("json.eventVersion", "aws.cloudtrail.event_version", false)
	in.rename("json.userIdentity.type", "aws.cloudtrail.user_identity.type", false)
	in.rename("json.userIdentity.userName", "user.name", false)
	in.rename("json.userIdentity.principalId", "user.id", false)
	in.rename("json.userIdentity.arn", "aws.cloudtrail.user_identity.arn", false)
	if in.get("cloud.account.id") == nil {
		in.rename("json.userIdentity.accountId", "cloud.account.id", false)
	}
	in.rename("json.userIdentity.accessKeyId", "aws.cloudtrail.user_identity.access_key_id", false)
	in.rename("json.userIdentity.sessionContext.attributes.mfaAuthenticated", "aws.cloudtrail.user_identity.session_context.mfa_authenticated", false)
	if v := in.get("json.userIdentity.sessionContext.attributes.creationDate"); v != nil {
		s := javaToString(v)
		t, ok := parseISO8601(s)
		if !ok {
			t, ok = parseBasicDateTime(s)
		}
		if ok {
			in.set("aws.cloudtrail.user_identity.session_context.creation_date", str1(formatESDate(t)))
		} else {
			in.remove("json.userIdentity.sessionContext.attributes.creationDate")
			in.handled("date", "date_json_userIdentity_sessionContext_attributes_creationDate_to_aws_cloudtrail_user_identity_session_context_creation_date_7cf57f10",
				"unable to parse date ["+s+"]")
		}
	}
	in.rename("json.userIdentity.sessionContext.sessionIssuer.type", "aws.cloudtrail.user_identity.session_context.session_issuer.type", false)
	identityType := in.get("aws.cloudtrail.user_identity.type")
	if isString(identityType, "AssumedRole") || isString(identityType, "FederatedUser") {
		in.rename("json.userIdentity.sessionContext.sessionIssuer.userName", "user.name", true)
	}
	in.rename("json.userIdentity.sessionContext.sessionIssuer.principalId", "aws.cloudtrail.user_identity.session_context.session_issuer.principal_id", false)
	in.sessionName(identityType)
	in.copy("json.userIdentity.onBehalfOf.userId", "aws.cloudtrail.user_identity.on_behalf_of.user_id")
	in.rename("json.userIdentity.onBehalfOf.identityStoreArn", "aws.cloudtrail.user_identity.on_behalf_of.identity_store_arn", false)
	if isString(identityType, "IdentityCenterUser") && in.get("user.id") == nil {
		in.rename("json.userIdentity.onBehalfOf.userId", "user.id", false)
	}
	for _, r := range [...][2]string{
		{"json.userIdentity.sessionContext.sessionIssuer.arn", "aws.cloudtrail.user_identity.session_context.session_issuer.arn"},
		{"json.userIdentity.sessionContext.sessionIssuer.accountId", "aws.cloudtrail.user_identity.session_context.session_issuer.account_id"},
		{"json.sessionCredentialFromConsole", "aws.cloudtrail.session_credential_from_console"},
		{"json.userIdentity.invokedBy", "aws.cloudtrail.user_identity.invoked_by"},
		{"json.userIdentity.invokedByDelegate.accountId", "aws.cloudtrail.user_identity.invoked_by_delegate.account_id"},
		{"json.userIdentity.credentialId", "aws.cloudtrail.user_identity.credential_id"},
		{"json.userIdentity.identityProvider", "aws.cloudtrail.user_identity.identity_provider"},
		{"json.userIdentity.inScopeOf.issuerType", "aws.cloudtrail.user_identity.in_scope_of.issuer_type"},
		{"json.userIdentity.inScopeOf.credentialsIssuedTo", "aws.cloudtrail.user_identity.in_scope_of.credentials_issued_to"},
		{"json.userIdentity.inScopeOf.sourceArn", "aws.cloudtrail.user_identity.in_scope_of.source_arn"},
		{"json.userIdentity.inScopeOf.sourceAccount", "aws.cloudtrail.user_identity.in_scope_of.source_account"},
		{"json.userIdentity.sessionContext.ec2RoleDelivery", "aws.cloudtrail.user_identity.session_context.ec2_role_delivery"},
		{"json.userIdentity.sessionContext.sourceIdentity", "aws.cloudtrail.user_identity.session_context.source_identity"},
		{"json.userIdentity.sessionContext.webIdFederationData.federatedProvider", "aws.cloudtrail.user_identity.session_context.web_id_federation_data.federated_provider"},
		{"json.userIdentity.sessionContext.webIdFederationData.attributes", "aws.cloudtrail.user_identity.session_context.web_id_federation_data.attributes"},
		{"json.userIdentity.sessionContext.assumedRoot", "aws.cloudtrail.user_identity.session_context.assumed_root"},
		{"json.userIdentity.sessionContext.signInSessionArn", "aws.cloudtrail.user_identity.session_context.sign_in_session_arn"},
	} {
		in.rename(r[0], r[1], false)
	}
	// dissect eventSource into cloud.service.name.
	if src := in.get("json.eventSource"); src != nil && in.get("cloud.service.name") == nil {
		s := in.mustString(src, "dissect", "dissect_json_eventSource_to_cloud_service_name_5d2b7c94")
		if strings.HasSuffix(s, ".amazonaws.com") {
			in.set("cloud.service.name", str1(s[:strings.Index(s, ".amazonaws.com")]))
		}
	}
	if in.get("event.provider") == nil {
		in.rename("json.eventSource", "event.provider", false)
	}
	if name := in.get("json.eventName"); name != nil {
		if s := mustache(name); s != "" {
			in.set("event.action", str1(s))
		}
	}
	in.rename("json.eventCategory", "aws.cloudtrail.event_category", false)
	if isString(in.get("event.action"), "UserAuthentication") && in.get("user.name") == nil {
		if v := in.painless("append", "rename_additionalEventData_UserName_to_username_552c89e0", "json", "additionalEventData", "UserName"); v != nil {
			setMember(in.json, "additionalEventData", deepCopy(in.json.Get("additionalEventData"))) // the raw tree's is shared
			in.rename("json.additionalEventData.UserName", "user.name", false)
		}
	}
	in.set("cloud.provider", str1("aws"))
	in.copy("json.awsRegion", "cloud.region")
	if in.get("source.address") == nil {
		in.rename("json.sourceIPAddress", "source.address", false)
	}
	if a := in.get("source.address"); a != nil {
		if s := javaToString(a); esIP(s) {
			in.set("source.ip", str1(s))
		}
	}
	// The geoip processors (City, then ASN with its renames) run here;
	// their fields are the enricher's (Event.GeoFields).
	in.geo = true
	if ua := in.get("json.userAgent"); ua != nil {
		if ua.Kind != doc.String {
			failf("user_agent", "user_agent_json_userAgent_to_user_agent_12c778f0",
				"field [userAgent] of type [%s] cannot be cast to [java.lang.String]", javaType(ua))
		}
		p := parseUserAgent(ua.Str)
		in.set("user_agent.original", str1(ua.Str))
		in.set("user_agent.name", str1(p.name))
		if p.version != "" {
			in.set("user_agent.version", str1(p.version))
		}
		if p.hasOS {
			in.set("user_agent.os.name", str1(p.osName))
			if p.osVersion != "" {
				in.set("user_agent.os.version", str1(p.osVersion))
				in.set("user_agent.os.full", str1(p.osFull))
			}
		}
		in.set("user_agent.device.name", str1(p.deviceName))
	}
	in.rename("json.errorCode", "aws.cloudtrail.error_code", false)
	in.rename("json.errorMessage", "aws.cloudtrail.error_message", false)
	for _, p := range [...][2]string{
		{"requestParameters", "request_parameters"}, {"responseElements", "response_elements"},
		{"additionalEventData", "additional_eventdata"}, {"serviceEventDetails", "service_event_details"},
	} {
		v := in.json.Get(p[0])
		if v == nil {
			continue
		}
		text := javaToString(v)
		in.set("aws.cloudtrail."+p[1], str1(text))
		if !javaLengthAtLeast(text, maxFlattenedText) {
			in.set("aws.cloudtrail.flattened."+p[1], v)
		}
	}
	in.rename("json.requestID", "aws.cloudtrail.request_id", false)
	if in.get("event.id") == nil {
		in.rename("json.eventID", "event.id", false)
	}
	in.rename("json.eventType", "aws.cloudtrail.event_type", false)
	in.rename("json.apiVersion", "aws.cloudtrail.api_version", false)
	if v := in.get("json.managementEvent"); v != nil {
		in.set("aws.cloudtrail.management_event", convertString(v))
	}
	in.rename("json.readOnly", "aws.cloudtrail.read_only", false)
	if rs := in.json.Get("resources"); rs != nil {
		in.removeJSON("resources")
		in.set("aws.cloudtrail.resources", dedupeResources(rs))
	}
	in.rename("json.recipientAccountId", "aws.cloudtrail.recipient_account_id", false)
	if in.get("cloud.account.id") == nil {
		in.copy("aws.cloudtrail.recipient_account_id", "cloud.account.id")
	}
	in.rename("json.sharedEventID", "aws.cloudtrail.shared_event_id", false)
	if in.get("aws.cloudtrail.shared_event_id") == nil {
		in.rename("json.sharedEventId", "aws.cloudtrail.shared_event_id", false)
	}
	for _, r := range [...][2]string{
		{"json.vpcEndpointId", "aws.cloudtrail.vpc_endpoint_id"},
		{"json.vpcEndpointAccountId", "aws.cloudtrail.vpc_endpoint_account_id"},
		{"json.addendum.reason", "aws.cloudtrail.addendum.reason"},
		{"json.addendum.updatedFields", "aws.cloudtrail.addendum.updated_fields"},
		{"json.addendum.originalRequestID", "aws.cloudtrail.addendum.original_request_id"},
		{"json.addendum.originalEventID", "aws.cloudtrail.addendum.original_event_id"},
	} {
		in.rename(r[0], r[1], false)
	}
	for _, p := range [...][3]string{
		{"requestParameters", "userName", "append_related_user_0121b806"},
		{"requestParameters", "newUserName", "append_related_user_5ff399b8"},
	} {
		if v := in.painless("append", p[2], "json", p[0], p[1]); v != nil {
			in.appendUnique("related.user", mustache(v))
		}
	}
	if v := in.painless("append", "append_related_user_e323b1c9", "json", "responseElements", "user", "userId"); v != nil {
		in.appendUnique("related.user", mustache(v))
	}
	in.consoleLogin()
	in.categorize()
	in.copy("json.responseElements.group.groupId", "group.id")
	in.copy("json.responseElements.user.userId", "user.target.id")
	in.copy("json.requestParameters.newUserName", "user.changes.name")
	in.copy("json.requestParameters.groupName", "group.name")
	in.copy("json.requestParameters.userName", "user.target.name")
	in.rename("json.insightDetails", "aws.cloudtrail.flattened.insight_details", false)
	in.tls()
	if name := in.get("user.name"); name != nil && in.get("user.email") == nil {
		if name.Kind == doc.Array {
			// The condition's indexOf("@") is List.indexOf: the place of
			// an element "@", no failure.
			if listIndex(name, "@") > 0 {
				in.set("user.email", str1(mustache(name)))
			}
		} else if s := in.mustString(name, "set", "set_user_email_d6b77481"); strings.IndexByte(s, '@') > 0 {
			in.set("user.email", str1(s))
		}
	}
	for _, f := range [...]string{"user.id", "user.name", "user.changes.name", "aws.cloudtrail.user_identity.on_behalf_of.user_id"} {
		if v := in.get(f); v != nil {
			in.appendUnique("related.user", mustache(v))
		}
	}
	if ip := in.get("source.ip"); ip != nil {
		in.appendUnique("related.ip", mustache(ip))
	}
	if v := in.get("json.serviceEventDetails.sourceIpAddress"); v != nil {
		if s := javaToString(v); v.Kind != doc.Object && v.Kind != doc.Array && esIP(s) {
			in.appendUnique("related.ip", s)
		}
	}
	in.relatedHosts()
	in.remove("json")
	in.remove("_tmp")
	dropEmpty(in.ctx, false)
	if len(in.errs) > 0 {
		in.set("event.kind", str1("pipeline_error"))
		in.appendUnique("tags", "preserve_original_event")
	}
}

// sessionName is the grok of the session name out of an STS ARN, and what
// follows from it: related.user, its e-mail prefix, user.email.
func (in *ingest) sessionName(identityType *doc.Node) {
	arn := in.get("aws.cloudtrail.user_identity.arn")
	if !(isString(identityType, "AssumedRole") || isString(identityType, "FederatedUser") || isString(identityType, "IdentityCenterUser")) || arn == nil {
		return
	}
	const tag = "extract_session_name_from_arn"
	if arn.Kind != doc.String {
		in.handled("grok", tag, "dynamic method [contains] not found for a value of type "+javaType(arn))
		return
	}
	if !strings.Contains(arn.Str, ":sts:") || !strings.Contains(arn.Str, "/") {
		return
	}
	name, ok := grokSessionName(arn.Str)
	if !ok {
		in.handled("grok", tag, "Provided Grok expressions do not match field value: ["+arn.Str+"]")
		return
	}
	in.appendUnique("related.user", name)
	if i := strings.IndexByte(name, '@'); i >= 0 {
		prefix := name[:i]
		in.appendUnique("related.user", prefix)
		if in.get("user.email") == nil && name != "" {
			in.set("user.email", str1(name))
		}
	}
}

// grokSessionName is ^arn:[a-z0-9-]+:sts:.*/%{GREEDYDATA}$: what follows the
// last slash after the partition and ":sts:".
func grokSessionName(arn string) (string, bool) {
	if strings.ContainsAny(arn, "\n\r") {
		return "", false // '.' matches no line break
	}
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return "", false
	}
	i := strings.Index(rest, ":sts:")
	if i <= 0 {
		return "", false
	}
	for _, c := range []byte(rest[:i]) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", false
		}
	}
	after := rest[i+len(":sts:"):]
	j := strings.LastIndexByte(after, '/')
	if j < 0 {
		return "", false
	}
	return after[j+1:], true
}

func (in *ingest) consoleLogin() {
	if !isString(in.json.Get("eventName"), "ConsoleLogin") {
		return
	}
	aed := in.json.Get("additionalEventData")
	if aed != nil && aed.Kind != doc.Object {
		in.handled("script", "script_console_login_additional_eventdata", "dynamic getter not found for a value of type "+javaType(aed))
		return
	}
	notNo := func(v *doc.Node) *doc.Node {
		return &doc.Node{Kind: doc.Bool, Str: fmt.Sprint(!isString(v, "No"))}
	}
	if v := aed.Get("MobileVersion"); v != nil {
		in.set("aws.cloudtrail.console_login.additional_eventdata.mobile_version", notNo(v))
	}
	if v := aed.Get("LoginTo"); v != nil {
		in.set("aws.cloudtrail.console_login.additional_eventdata.login_to", v)
	}
	if v := aed.Get("MFAUsed"); v != nil {
		in.set("aws.cloudtrail.console_login.additional_eventdata.mfa_used", notNo(v))
	}
}

// categorize is the categorization script: event.kind, event.type,
// event.outcome, and the table's event.category and event.type.
func (in *ingest) categorize() {
	const tag = "script_add_ecs_categorization"
	in.set("event.kind", str1("event"))
	in.set("event.type", strList([]string{"info"}))
	outcome := "success"
	if in.get("aws.cloudtrail.error_code") != nil || in.get("aws.cloudtrail.error_message") != nil {
		outcome = "failure"
	}
	in.set("event.outcome", str1(outcome))
	action := in.get("event.action")
	if action == nil {
		return
	}
	if isString(action, "ConsoleLogin") {
		re := in.json.Get("responseElements")
		if re != nil && re.Kind != doc.Object {
			in.handled("script", tag, "dynamic getter not found for a value of type "+javaType(re))
			return
		}
		if v := re.Get("ConsoleLogin"); v != nil {
			if v.Kind != doc.String {
				in.handled("script", tag, "class_cast_exception: "+javaType(v)+" cannot be cast to class java.lang.String")
				return
			}
			in.set("event.outcome", str1(strings.ToLower(v.Str)))
		}
	}
	c, ok := categories[action.Str]
	if !ok || action.Kind != doc.String {
		return
	}
	in.set("event.category", strList([]string{c[0]}))
	in.set("event.type", strList(strings.Fields(c[1])))
}

func (in *ingest) tls() {
	if isString(in.painless("remove", "remove_json_tlsDetails_d5e86911", "json", "tlsDetails", "tlsVersion"), "tlsVersion") {
		in.removeJSON("tlsDetails")
		return
	}
	td := in.json.Get("tlsDetails")
	if td == nil {
		return
	}
	if v := td.Get("tlsVersion"); v != nil {
		if proto, ver, ok := strings.Cut(javaToString(v), "v"); ok && v.Kind == doc.String {
			in.set("tls.version_protocol", str1(strings.ToLower(proto)))
			in.set("tls.version", str1(ver))
		} else {
			in.rename("json.tlsDetails.tlsVersion", "tls.version", false)
		}
	}
	in.rename("json.tlsDetails.cipherSuite", "tls.cipher", false)
	in.rename("json.tlsDetails.clientProvidedHostHeader", "tls.client.server_name", false)
	in.rename("json.tlsDetails.keyExchange", "aws.cloudtrail.tls_details.key_exchange", false)
}

// relatedHosts adds the host names and EC2 instances an event names.
func (in *ingest) relatedHosts() {
	if sn := in.get("tls.client.server_name"); sn != nil {
		s := in.mustString(sn, "append", "append_related_hosts_tls_client_server_name")
		if !strings.HasSuffix(s, ".amazonaws.com") {
			in.appendUnique("related.hosts", s)
		}
	}
	if a := in.get("source.address"); a != nil && in.get("source.ip") == nil && (a.Kind != doc.Array || listIndex(a, ".") >= 0) {
		// A list's contains('.') is List.contains: false (the condition
		// ends, no failure) unless an element is ".".
		s := in.mustString(a, "append", "append_related_hosts_source_address")
		if strings.Contains(s, ".") && !strings.Contains(s, " ") && !strings.HasSuffix(s, ".amazonaws.com") {
			in.appendUnique("related.hosts", s)
		}
	}
	if v := in.painless("append", "append_related_hosts_computer_name", "json", "requestParameters", "computerName"); v != nil {
		in.appendUnique("related.hosts", mustache(v))
	}
	var found []string
	add := func(v *doc.Node) {
		if v != nil && v.Kind == doc.String && len(v.Str) >= 10 && strings.HasPrefix(v.Str, "i-") && !contains(found, v.Str) {
			found = append(found, v.Str)
		}
	}
	addContainer := func(c *doc.Node) {
		if c == nil || c.Kind != doc.Object {
			return
		}
		for _, k := range [...]string{"instanceId", "target", "resourceId"} {
			add(c.Get(k))
		}
		if ids := c.Get("instanceIds"); ids != nil && ids.Kind == doc.Array {
			for _, id := range ids.Arr {
				add(id)
			}
		}
		if set := c.Get("instancesSet"); set != nil && set.Kind == doc.Object {
			if items := set.Get("items"); items != nil && items.Kind == doc.Array {
				for _, it := range items.Arr {
					if it.Kind == doc.Object {
						add(it.Get("instanceId"))
					}
				}
			}
		}
	}
	if rs := in.get("aws.cloudtrail.resources"); rs != nil && rs.Kind == doc.Array {
		for _, r := range rs.Arr {
			if r.Kind != doc.Object {
				continue
			}
			if arn := r.Get("arn"); arn != nil && arn.Kind == doc.String && strings.Contains(arn.Str, ":instance/") {
				add(&doc.Node{Kind: doc.String, Str: arn.Str[strings.LastIndexByte(arn.Str, '/')+1:]})
			}
		}
	}
	addContainer(in.json.Get("requestParameters"))
	addContainer(in.json.Get("responseElements"))
	for _, h := range found {
		in.appendUnique("related.hosts", h)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dedupeResources is the pipeline's resources script: a list becomes the
// distinct resources (by ARN, account and type, the later one kept) with
// ARN renamed arn and accountId renamed account_id, in the order of the
// Java HashMap keyed by those three; anything else is kept as it is.
func dedupeResources(rs *doc.Node) *doc.Node {
	if rs.Kind != doc.Array {
		return rs
	}
	var members []doc.Member
	for _, r := range rs.Arr {
		if r.Kind != doc.Object {
			continue
		}
		res := &doc.Node{Kind: doc.Object}
		for _, m := range r.Obj {
			if m.Val != nil {
				setMember(res, m.Key, m.Val)
			}
		}
		if v := res.Get("ARN"); v != nil {
			removeMember(res, "ARN")
			setMember(res, "arn", v)
		}
		if v := res.Get("accountId"); v != nil {
			removeMember(res, "accountId")
			setMember(res, "account_id", v)
		}
		part := func(k string) string {
			if v := res.Get(k); v != nil {
				return javaToString(v)
			}
			return ""
		}
		members = append(members, doc.Member{Key: part("arn") + "_" + part("account_id") + "_" + part("type"), Val: res})
	}
	out := &doc.Node{Kind: doc.Array}
	for _, m := range doc.JavaHashMapOrder(members) {
		out.Arr = append(out.Arr, m.Val)
	}
	return out
}

// convertString is the convert processor to string: a list's elements
// each, anything else its Java text.
func convertString(v *doc.Node) *doc.Node {
	if v.Kind == doc.Array {
		out := &doc.Node{Kind: doc.Array}
		for _, el := range v.Arr {
			out.Arr = append(out.Arr, convertString(el))
		}
		return out
	}
	return str1(javaToString(v))
}

// mustache renders a value as a template does ({{{field}}}).
func mustache(v *doc.Node) string { return javaToString(v) }

// listIndex is Java's List.indexOf(s) on an array: the place of the first
// element that is the string s, -1 when none is.
func listIndex(list *doc.Node, s string) int {
	for i, el := range list.Arr {
		if el != nil && el.Kind == doc.String && el.Str == s {
			return i
		}
	}
	return -1
}

// esIP reports whether Elasticsearch's convert processor (type ip) and ip
// field take s as an address: Go's parser, with an IPv6 scope (after '%')
// ignored as Elasticsearch ignores it.
func esIP(s string) bool {
	if i := strings.IndexByte(s, '%'); i >= 0 && strings.IndexByte(s[:i], ':') >= 0 {
		s = s[:i]
	}
	if !isIP(s) {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// javaType names a value's Java class as the json processor built it.
func javaType(n *doc.Node) string {
	switch n.Kind {
	case doc.String:
		return "java.lang.String"
	case doc.Bool:
		return "java.lang.Boolean"
	case doc.Number:
		if n.Float {
			return "java.lang.Double"
		}
		return "java.lang.Integer"
	case doc.Array:
		return "java.util.ArrayList"
	case doc.Object:
		return "java.util.HashMap"
	}
	return "null"
}

// mustString is a value a condition calls a String method on: anything
// else fails the processor, which has no on_failure.
func (in *ingest) mustString(v *doc.Node, typ, tag string) string {
	if v.Kind != doc.String {
		failf(typ, tag, "dynamic method not found for a value of type [%s]", javaType(v))
	}
	return v.Str
}

// painless reads ctx.a?.b?.c as a processor's Painless condition does: nil
// for a null or missing step, a failure of the processor (which has no
// on_failure) for a step into a value that is not a map.
func (in *ingest) painless(typ, tag string, path ...string) *doc.Node {
	n := in.ctx
	for _, k := range path {
		if n == nil {
			return nil
		}
		if n.Kind != doc.Object {
			failf(typ, tag, "dynamic getter [%s, %s] not found", javaType(n), k)
		}
		n = n.Get(k)
	}
	return n
}

// Document tree helpers. Paths are dotted keys through objects.

func obj() *doc.Node          { return &doc.Node{Kind: doc.Object} }
func str1(s string) *doc.Node { return &doc.Node{Kind: doc.String, Str: s} }
func strList(ss []string) *doc.Node {
	n := &doc.Node{Kind: doc.Array}
	n.Arr = make([]*doc.Node, len(ss))
	for i, s := range ss {
		n.Arr[i] = str1(s)
	}
	return n
}

func (in *ingest) get(path string) *doc.Node { return dotted(in.ctx, path) }

// set writes a value at a path, making the objects on the way; a step
// through a value that is not an object fails the processor.
func (in *ingest) set(path string, v *doc.Node) {
	n := in.ctx
	for {
		key, rest, more := strings.Cut(path, ".")
		if !more {
			setMember(n, key, v)
			return
		}
		next := n.Get(key)
		if next == nil {
			next = obj()
			setMember(n, key, next)
		} else if next.Kind != doc.Object {
			failf("set", "", "cannot set [%s] with parent object of type [%s] as part of path [%s]", rest, javaType(next), path)
		}
		n, path = next, rest
	}
}

func (in *ingest) remove(path string) {
	parent, key := in.ctx, path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, key = in.get(path[:i]), path[i+1:]
	}
	if parent != nil && parent.Kind == doc.Object {
		removeMember(parent, key)
	}
}

func (in *ingest) removeJSON(key string) { removeMember(in.json, key) }

// rename moves a value (ignore_missing: nothing when it is absent); the
// target must not exist unless override.
func (in *ingest) rename(from, to string, override bool) {
	v := in.get(from)
	if v == nil {
		return
	}
	if !override && in.get(to) != nil {
		failf("rename", "", "field [%s] already exists", to)
	}
	in.remove(from)
	in.set(to, v)
}

// copy is set with copy_from and ignore_empty_value.
func (in *ingest) copy(from, to string) {
	if v := in.get(from); v != nil && !(v.Kind == doc.String && v.Str == "") {
		in.set(to, deepCopy(v))
	}
}

// appendUnique is the append processor with allow_duplicates false.
func (in *ingest) appendUnique(path, s string) {
	cur := in.get(path)
	switch {
	case cur == nil:
		in.set(path, strList([]string{s}))
		return
	case cur.Kind != doc.Array:
		cur = &doc.Node{Kind: doc.Array, Arr: []*doc.Node{cur}}
		in.set(path, cur)
	}
	for _, el := range cur.Arr {
		if isString(el, s) {
			return
		}
	}
	cur.Arr = append(cur.Arr, str1(s))
}

func setMember(n *doc.Node, key string, v *doc.Node) {
	for i := range n.Obj {
		if n.Obj[i].Key == key {
			n.Obj[i].Val = v
			return
		}
	}
	n.Obj = append(n.Obj, doc.Member{Key: key, Val: v})
}

// removeMember removes a key, keeping its place (a HashMap never shrinks).
func removeMember(n *doc.Node, key string) {
	for i := range n.Obj {
		if n.Obj[i].Key == key {
			n.Obj[i].Val = nil
		}
	}
}

// deepCopy copies a tree, so that the pipeline may change it; removed keys
// are kept as they are.
func deepCopy(n *doc.Node) *doc.Node {
	if n == nil {
		return nil
	}
	c := *n
	switch n.Kind {
	case doc.Object:
		c.Obj = make([]doc.Member, len(n.Obj))
		for i, m := range n.Obj {
			c.Obj[i] = doc.Member{Key: m.Key, Val: deepCopy(m.Val)}
		}
	case doc.Array:
		c.Arr = make([]*doc.Node, len(n.Arr))
		for i, el := range n.Arr {
			c.Arr[i] = deepCopy(el)
		}
	}
	return &c
}

// duplicateKey finds an object with a key twice: the json processor
// (Jackson with strict duplicate detection) refuses it.
func duplicateKey(n *doc.Node) (string, bool) {
	switch n.Kind {
	case doc.Object:
		// Past a few members, a set: comparing each key with every
		// earlier one took a minute for a record of 200,000 keys.
		var seen map[string]struct{}
		if len(n.Obj) > 16 {
			seen = make(map[string]struct{}, len(n.Obj))
		}
		for i, m := range n.Obj {
			if seen != nil {
				if _, ok := seen[m.Key]; ok {
					return m.Key, true
				}
				seen[m.Key] = struct{}{}
			} else {
				for _, o := range n.Obj[:i] {
					if o.Key == m.Key {
						return m.Key, true
					}
				}
			}
			if m.Val != nil {
				if k, dup := duplicateKey(m.Val); dup {
					return k, true
				}
			}
		}
	case doc.Array:
		for _, el := range n.Arr {
			if k, dup := duplicateKey(el); dup {
				return k, true
			}
		}
	}
	return "", false
}

// dropEmpty is the pipeline's cleanup script over an object, in place:
// null and "" (and with strict, "-" and "none") are removed, then maps and
// lists left empty. It reports whether n itself is now empty.
func dropEmpty(n *doc.Node, strict bool) bool {
	drop := func(v *doc.Node) bool {
		if v == nil || v.Kind == doc.Null {
			return true
		}
		if v.Kind == doc.String && (v.Str == "" || strict && (v.Str == "-" || v.Str == "none")) {
			return true
		}
		if v.Kind == doc.Object || v.Kind == doc.Array {
			return dropEmpty(v, strict)
		}
		return false
	}
	switch n.Kind {
	case doc.Object:
		live := 0
		for i := range n.Obj {
			if n.Obj[i].Val == nil {
				continue
			}
			if drop(n.Obj[i].Val) {
				n.Obj[i].Val = nil
			} else {
				live++
			}
		}
		return live == 0
	case doc.Array:
		var kept []*doc.Node // made on the first element dropped: shared arrays are not written
		for i, el := range n.Arr {
			if drop(el) {
				if kept == nil {
					kept = append(make([]*doc.Node, 0, len(n.Arr)), n.Arr[:i]...)
				}
			} else if kept != nil {
				kept = append(kept, el)
			}
		}
		if kept != nil {
			n.Arr = kept
		}
		return len(n.Arr) == 0
	}
	return false
}
