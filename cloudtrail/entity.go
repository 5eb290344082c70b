package cloudtrail

import (
	"strings"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// The AWS integration's entity enrichment (aws 8.8.0, the script tagged
// script_append_related_entity, run when the actor_target_mapping tag is
// set): the actor of each event, the targets of the 26 services it knows,
// and every related identifier, classified into user, host, service and
// generic entities. It runs on the event after the first cleanup, before
// any field is renamed. Where the script would fail (a value of the wrong
// type where it expects a string or a list), it sets nothing and the
// integration notes the error; entityFail stands for that failure here.

type entityFail struct{}

// entityCtx is the script's enrichCtx: related and target are Java
// TreeSets (sorted as Java compares strings); actor may be any value.
type entityCtx struct {
	json    *doc.Node
	related map[string]bool
	target  map[string]bool
	actor   *doc.Node
}

// entities is the script's outcome: the fields it sets (in the order it
// sets them), each a list of strings.
type entities struct {
	fields []entityField
}

type entityField struct {
	name string
	vals []string
	// actor is the actor's value when it is not a string (the script
	// writes it as it is).
	actor *doc.Node
}

// runEntityScript runs the enrichment over the cleaned event; ok is false
// when the script fails.
func runEntityScript(json *doc.Node) (out entities, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, is := r.(entityFail); !is {
				panic(r)
			}
			out, ok = entities{}, false
		}
	}()
	c := &entityCtx{json: json, related: map[string]bool{}, target: map[string]bool{}}
	c.actor = c.get("userIdentity.arn")
	if c.actor == nil {
		c.actor = c.get("userIdentity.onBehalfOf.userId")
	}
	c.addFields(c.related, "userIdentity.accessKeyId", "userIdentity.arn", "userIdentity.userName",
		"userIdentity.sessionContext.sessionIssuer.arn", "userIdentity.sessionContext.sessionIssuer.userName")
	if isString(c.get("userIdentity.type"), "IdentityCenterUser") {
		c.addField(c.related, "userIdentity.onBehalfOf.identityStoreArn")
	}
	for _, f := range c.list("resources") {
		c.addValue(c.related, member(f, "ARN"))
	}
	source, name := c.str("eventSource"), c.str("eventName")
	if source != nil {
		if enrich := enrichers[*source]; enrich != nil {
			enrich(c, name)
		}
	}
	return c.result(), true
}

// result classifies the targets and the actor as the script does.
func (c *entityCtx) result() entities {
	var out entities
	add := func(name string, set map[string]bool) {
		if len(set) > 0 {
			out.fields = append(out.fields, entityField{name: name, vals: javaSorted(set)})
		}
	}
	if len(c.target) > 0 {
		add("target.entity.id", c.target)
		user, host, service, generic := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
		for t := range c.target {
			switch targetClass(t) {
			case "user":
				user[t] = true
			case "host":
				host[t] = true
			case "service":
				service[t] = true
			default:
				generic[t] = true
			}
		}
		add("user.target.entity.id", user)
		add("host.target.entity.id", host)
		add("service.target.entity.id", service)
		add("entity.target.id", generic)
		for t := range c.target {
			c.related[t] = true
		}
	}
	if c.actor != nil {
		out.fields = append(out.fields, entityField{name: "actor.entity.id", actor: c.actor})
		out.fields = append(out.fields, entityField{name: actorClass(c.actor, c.get("userIdentity.type")), actor: c.actor})
	}
	out.fields = append(out.fields, entityField{name: "related.entity", vals: javaSorted(c.related)})
	return out
}

var (
	userResourceTypes    = setOf("user role assumed-role federated-user instance-profile mfa serialNumber")
	hostResourceTypes    = setOf("instance")
	serviceResourceTypes = setOf("stack stack-set trail configuration-recorder file-system mount-target rule detector key function " +
		"log-group log-stream alarm db cluster global-cluster trust-anchor resolver-query-log-config secret parameter document " +
		"session webacl rulegroup ipset topic model loadbalancer table group policy security-group network-interface vpc subnet " +
		"network-acl dhcp-options")
	serviceIDPrefixes = strings.Fields("sg- sgr- eni- vpc- subnet- acl- rtb- igw- nat- vpce- tgw- pcx-")
)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// arnResourceType is the resource type of an ARN (the sixth part, up to its
// first slash), and the ARN's service; ok is false for fewer than six parts.
func arnResourceType(v string) (typ, service string, ok bool) {
	parts := strings.Split(v, ":")
	if len(parts) < 6 {
		return "", "", false
	}
	typ = parts[5]
	if i := strings.IndexByte(typ, '/'); i > 0 {
		typ = typ[:i]
	}
	return typ, parts[2], true
}

// targetClass sorts a target into user, host or service ("" for a generic
// entity).
func targetClass(t string) string {
	if strings.HasPrefix(t, "arn:") {
		typ, service, ok := arnResourceType(t)
		switch {
		case !ok:
		case strings.Contains(t, "/AWSServiceRoleFor") || strings.Contains(t, "/aws-service-role/"):
			return "service"
		case userResourceTypes[typ]:
			return "user"
		case hostResourceTypes[typ]:
			return "host"
		case serviceResourceTypes[typ], service == "s3":
			return "service"
		}
		return ""
	}
	if len(t) == 20 && strings.HasPrefix(t, "AKIA") {
		return "user"
	}
	if strings.HasPrefix(t, "i-") {
		return "host"
	}
	for _, p := range serviceIDPrefixes {
		if strings.HasPrefix(t, p) {
			return "service"
		}
	}
	return ""
}

// actorClass names the field the actor goes to, from the identity type and
// the actor's own shape.
func actorClass(actor, identityType *doc.Node) string {
	s := javaToString(actor)
	switch {
	case isString(identityType, "AWSService"):
		return "service.entity.id"
	case strings.Contains(s, "/AWSServiceRoleFor") || strings.Contains(s, "/aws-service-role/"):
		return "service.entity.id"
	case isString(identityType, "IAMUser") || isString(identityType, "Root") || isString(identityType, "AssumedRole"):
		return "user.entity.id"
	}
	if strings.HasPrefix(s, "arn:") {
		if typ, _, ok := arnResourceType(s); ok {
			switch typ {
			case "user", "role", "assumed-role", "federated-user":
				return "user.entity.id"
			case "instance":
				return "host.entity.id"
			}
		}
	}
	if strings.HasPrefix(s, "i-") {
		return "host.entity.id"
	}
	return "entity.id"
}

// javaToString is String.valueOf of a value as the json processor built it.
func javaToString(n *doc.Node) string {
	if n.Kind == doc.String {
		return n.Str
	}
	return string(n.AppendJava(nil))
}

func isString(n *doc.Node, s string) bool { return n != nil && n.Kind == doc.String && n.Str == s }

// get is the script's $(path, null): the value at a dotted path of object
// keys below json, nil when any step is missing or not an object.
func (c *entityCtx) get(path string) *doc.Node { return dotted(c.json, path) }

func dotted(n *doc.Node, path string) *doc.Node {
	for n != nil {
		key, rest, more := strings.Cut(path, ".")
		if n.Kind != doc.Object {
			return nil
		}
		n = n.Get(key)
		if !more {
			return n
		}
		path = rest
	}
	return nil
}

// str reads a value the script assigns to a String variable.
func (c *entityCtx) str(path string) *string {
	n := c.get(path)
	if n == nil {
		return nil
	}
	if n.Kind != doc.String {
		panic(entityFail{}) // ClassCastException
	}
	return &n.Str
}

// list reads a value the script uses as a List ($(path, [])).
func (c *entityCtx) list(path string) []*doc.Node { return asList(c.get(path)) }

func asList(n *doc.Node) []*doc.Node {
	if n == nil {
		return nil
	}
	if n.Kind != doc.Array {
		panic(entityFail{})
	}
	return n.Arr
}

// member is v.key inside a lambda: a map's member, a failure on anything
// else.
func member(v *doc.Node, key string) *doc.Node {
	if v == nil {
		panic(entityFail{}) // a null list element
	}
	if v.Kind != doc.Object {
		panic(entityFail{})
	}
	return v.Get(key)
}

// optMember is v?.key: nil for a nil v.
func optMember(v *doc.Node, key string) *doc.Node {
	if v == nil {
		return nil
	}
	return member(v, key)
}

// addValue adds a string; a value of another type fails the script.
func (c *entityCtx) addValue(set map[string]bool, v *doc.Node) {
	if v == nil {
		return
	}
	if v.Kind != doc.String {
		panic(entityFail{})
	}
	if v.Str != "" {
		set[v.Str] = true
	}
}

func (c *entityCtx) addField(set map[string]bool, path string) { c.addValue(set, c.get(path)) }

func (c *entityCtx) addFields(set map[string]bool, paths ...string) {
	for _, p := range paths {
		c.addField(set, p)
	}
}

// addValues is the script's addValues: each element is cast to a String
// as the loop takes it (another type fails the script), but addValue is
// called only while every call before it added something (addedAll =
// addedAll && addValue(...)): after a null, an empty string or a value
// already in the set, the rest of the list is not added.
func (c *entityCtx) addValues(set map[string]bool, vals []*doc.Node) {
	all := true
	for _, v := range vals {
		if v != nil && v.Kind != doc.String {
			panic(entityFail{})
		}
		if all {
			all = v != nil && v.Str != "" && !set[v.Str]
			if all {
				set[v.Str] = true
			}
		}
	}
}

// enrichers holds each service's enrichment, by eventSource.
var enrichers = map[string]func(c *entityCtx, name *string){
	"cloudformation.amazonaws.com": func(c *entityCtx, name *string) {
		switch deref(name) {
		case "CreateStackSet":
			c.addField(c.target, "responseElements.stackSetId")
		case "CreateStack":
			c.addField(c.target, "responseElements.stackId")
		}
	},
	"cloudtrail.amazonaws.com": func(c *entityCtx, name *string) {
		c.addFields(c.related, "requestParameters.name", "requestParameters.s3BucketName", "responseElements.cloudWatchLogsLogGroupArn",
			"responseElements.cloudWatchLogsRoleArn", "responseElements.kmsKeyId", "responseElements.snsTopicARN",
			"responseElements.trailARN", "responseElements.name")
		switch deref(name) {
		case "DeleteTrail", "StopLogging":
			c.addField(c.target, "requestParameters.name")
		case "DescribeTrails":
			c.addField(c.target, "recipientAccountId")
		}
	},
	"config.amazonaws.com": func(c *entityCtx, name *string) {
		c.addField(c.related, "requestParameters.configurationRecorderName")
		switch deref(name) {
		case "StopConfigurationRecorder", "StartConfigurationRecorder":
			c.addField(c.target, "requestParameters.configurationRecorderName")
		}
	},
	"ec2-instance-connect.amazonaws.com": func(c *entityCtx, name *string) {
		switch deref(name) {
		case "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey":
			c.addField(c.target, "requestParameters.instanceId")
		}
	},
	"ec2.amazonaws.com":               enrichEC2,
	"elasticfilesystem.amazonaws.com": targetsByName(map[string]string{"DeleteFileSystem": "requestParameters.fileSystemId", "DeleteMountTarget": "requestParameters.mountTargetId"}),
	"events.amazonaws.com":            targetsByName(map[string]string{"DeleteRule": "requestParameters.name"}),
	"guardduty.amazonaws.com": func(c *entityCtx, name *string) {
		c.addFields(c.related, "requestParameters.detectorId", "responseElements.detectorId")
		switch deref(name) {
		case "CreateDetector":
			c.addField(c.target, "responseElements.detectorId")
		case "DeleteDetector":
			c.addField(c.target, "requestParameters.detectorId")
		}
	},
	"iam.amazonaws.com": enrichIAM,
	"kms.amazonaws.com": func(c *entityCtx, name *string) {
		c.addFields(c.related, "requestParameters.keyId", "responseElements.keyId", "responseElements.keyMetadata.arn", "responseElements.keyMetadata.keyId")
		switch deref(name) {
		case "DisableKey", "ScheduleKeyDeletion":
			c.resourceTargets()
		}
	},
	"lambda.amazonaws.com": func(c *entityCtx, name *string) {
		c.addFields(c.related, "requestParameters.functionName", "responseElements.functionArn", "responseElements.functionName", "responseElements.role")
		c.addValues(c.related, c.list("responseElements.vpcConfig.securityGroupIds"))
		c.addValues(c.related, c.list("responseElements.vpcConfig.subnetIds"))
		if name == nil {
			return
		}
		// Lambda's event names carry an API version (AddPermission20150331v2).
		switch {
		case strings.Contains(*name, "AddPermission"):
			c.addField(c.target, "requestParameters.functionName")
		case strings.Contains(*name, "ListFunctions"):
			c.addField(c.target, "recipientAccountId")
		}
	},
	"logs.amazonaws.com": targetsByName(map[string]string{"DeleteLogGroup": "requestParameters.logGroupName", "DeleteLogStream": "requestParameters.logStreamName"}),
	"monitoring.amazonaws.com": func(c *entityCtx, name *string) {
		if deref(name) == "DeleteAlarms" {
			c.addValues(c.target, c.list("requestParameters.alarmNames"))
		}
	},
	"rds.amazonaws.com":             enrichRDS,
	"rolesanywhere.amazonaws.com":   targetsByName(map[string]string{"CreateTrustAnchor": "responseElements.trustAnchor.trustAnchorArn"}),
	"route53resolver.amazonaws.com": targetsByName(map[string]string{"DeleteResolverQueryLogConfig": "responseElements.resolverQueryLogConfig.arn"}),
	"s3.amazonaws.com": func(c *entityCtx, name *string) {
		c.addField(c.related, "requestParameters.bucketName")
		switch deref(name) {
		case "CopyObject", "PutBucketLogging", "PutBucketVersioning", "PutObject", "GetBucketPolicy", "ListObjects",
			"HeadObject", "GetObject", "DeleteObject", "DeleteBucket":
			c.resourceTargets()
		case "PutBucketReplication":
			c.resourceTargets()
			c.addField(c.target, "requestParameters.ReplicationConfiguration.Rule.Destination.Bucket")
		case "ListBuckets":
			c.addField(c.target, "recipientAccountId")
		}
	},
	"secretsmanager.amazonaws.com": func(c *entityCtx, name *string) {
		switch deref(name) {
		case "BatchGetSecretValue":
			c.addValues(c.target, c.list("requestParameters.secretIdList"))
		case "GetSecretValue":
			c.addField(c.target, "requestParameters.secretId")
		}
	},
	"signin.amazonaws.com": targetsByName(map[string]string{"ConsoleLogin": "recipientAccountId"}),
	"ssm.amazonaws.com":    enrichSSM,
	"sts.amazonaws.com": func(c *entityCtx, name *string) {
		c.addFields(c.related, "requestParameters.roleArn", "sourceIdentity", "additionalEventData.MFAIdentifier",
			"responseElements.assumedRoleUser.arn", "requestParameters.roleSessionName", "responseElements.accessKeyId")
		switch deref(name) {
		case "AssumeRole":
			switch userType := c.get("userIdentity.type"); {
			case isString(userType, "AWSService"):
				c.actor = c.get("userIdentity.invokedBy")
			case isString(userType, "AssumedRole"):
				c.actor = c.get("userIdentity.sessionContext.sessionIssuer.arn")
			default:
				c.actor = c.get("userIdentity.arn")
			}
			c.addField(c.target, "requestParameters.roleArn")
		case "GetCallerIdentity":
			c.addField(c.target, "recipientAccountId")
			c.actor = c.get("userIdentity.arn")
		}
	},
	"wafv2.amazonaws.com": func(c *entityCtx, name *string) {
		c.addFields(c.related, "requestParameters.id", "responseElements.summary")
		switch deref(name) {
		case "DeleteRuleGroup", "DeleteWebACL":
			c.addField(c.target, "requestParameters.id")
		}
	},
	"sns.amazonaws.com": func(c *entityCtx, name *string) {
		switch deref(name) {
		case "CreateTopic":
			c.addField(c.target, "responseElements.topicArn")
		case "Subscribe", "Publish":
			c.addField(c.target, "requestParameters.topicArn")
		}
	},
	"bedrock.amazonaws.com":              targetsByName(map[string]string{"Converse": "requestParameters.modelId"}),
	"elasticloadbalancing.amazonaws.com": targetsByName(map[string]string{"DescribeLoadBalancers": "recipientAccountId"}),
	"dynamodb.amazonaws.com":             targetsByName(map[string]string{"ListTables": "recipientAccountId"}),
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// targetsByName adds, for each event name, the value at one path as a
// target.
func targetsByName(paths map[string]string) func(c *entityCtx, name *string) {
	return func(c *entityCtx, name *string) {
		if p, ok := paths[deref(name)]; ok {
			c.addField(c.target, p)
		}
	}
}

// resourceTargets adds each resource's ARN as a target.
func (c *entityCtx) resourceTargets() {
	for _, f := range c.list("resources") {
		c.addValue(c.target, member(f, "ARN"))
	}
}

func enrichEC2(c *entityCtx, name *string) {
	c.addFields(c.related, "requestParameters.groupId", "requestParameters.groupName", "requestParameters.roleName",
		"requestParameters.subnetId", "requestParameters.volumeId", "requestParameters.networkInterfaceId",
		"requestParameters.vpcId", "requestParameters.snapshotId", "responseElements.groupId",
		"responseElements.reservationId", "responseElements.vpc.vpcId", "responseElements.vpc.dhcpOptionsId",
		"responseElements.snapshotId", "responseElements.volumeId")
	for _, i := range c.list("responseElements.securityGroupRuleSet.items") {
		c.addValues(c.related, []*doc.Node{member(i, "groupId"), optMember(member(i, "referencedGroupInfo"), "groupId"), member(i, "securityGroupRuleId")})
	}
	for _, i := range c.list("responseElements.groupSet.items") {
		c.addValue(c.related, member(i, "groupId"))
	}
	for _, i := range c.list("requestParameters.groupSet.items") {
		c.addValue(c.related, member(i, "groupId"))
	}
	for _, i := range c.list("requestParameters.instancesSet.items") {
		c.addValue(c.related, member(i, "instanceId"))
	}
	for _, inst := range c.list("responseElements.instancesSet.items") {
		c.addValues(c.related, []*doc.Node{member(inst, "subnetId"), member(inst, "vpcId"), member(inst, "instanceId"),
			member(inst, "imageId"), optMember(member(inst, "iamInstanceProfile"), "arn")})
		items := optMember(member(inst, "networkInterfaceSet"), "items")
		if items == nil {
			continue
		}
		for _, nw := range asStream(items) {
			c.addValues(c.related, []*doc.Node{member(nw, "networkInterfaceId"), member(nw, "vpcId"), member(nw, "subnetId")})
			groups := optMember(member(nw, "groupSet"), "items")
			if groups == nil {
				continue
			}
			for _, g := range asStream(groups) {
				c.addValue(c.related, member(g, "groupId"))
			}
		}
	}
	for _, i := range c.list("requestParameters.revokedSecurityGroupRuleSet.items") {
		c.addValues(c.related, []*doc.Node{member(i, "securityGroupRuleId"), member(i, "groupId")})
	}
	switch n := deref(name); n {
	case "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress":
		c.addField(c.target, "requestParameters.groupId")
		for _, f := range c.list("responseElements.securityGroupRuleSet.items") {
			c.addValue(c.target, member(f, "securityGroupRuleId"))
		}
	case "CreateTrafficMirrorFilter":
		c.addField(c.target, "responseElements.CreateTrafficMirrorFilterResponse.trafficMirrorFilter.trafficMirrorFilterId")
	case "CreateTrafficMirrorFilterRule":
		c.addField(c.target, "responseElements.CreateTrafficMirrorFilterRuleResponse.trafficMirrorFilterRule.trafficMirrorFilterRuleId")
	case "CreateTrafficMirrorSession":
		c.addField(c.target, "responseElements.CreateTrafficMirrorSessionResponse.trafficMirrorSession.trafficMirrorSessionId")
	case "CreateTrafficMirrorTarget":
		c.addField(c.target, "responseElements.CreateTrafficMirrorTargetResponse.trafficMirrorTarget.trafficMirrorTargetId")
	case "DeleteFlowLogs":
		c.addField(c.target, "requestParameters.DeleteFlowLogsRequest.FlowLogId.content")
	case "DeleteNetworkAcl":
		c.addField(c.target, "requestParameters.networkAclId")
	case "DeleteNetworkAclEntry":
		c.addField(c.target, "requestParameters.networkAclId")
		if rule := c.get("requestParameters.ruleNumber"); rule != nil {
			if s := javaToString(rule); s != "" {
				c.target[s] = true // String.valueOf: any type
			}
		}
	case "GetPasswordData":
		c.addField(c.target, "requestParameters.instanceId")
	case "ModifyImageAttribute":
		c.addField(c.target, "requestParameters.imageId")
	case "ModifySnapshotAttribute":
		c.addField(c.target, "requestParameters.snapshotId")
	case "DescribeSecurityGroups", "DescribeNetworkInterfaces", "DescribeRegions", "DescribeVpcs", "DescribeNetworkAcls", "DescribeVolumes":
		c.addField(c.target, "recipientAccountId")
	}
}

// asStream is v.stream() on a value the script takes for a list.
func asStream(n *doc.Node) []*doc.Node {
	if n.Kind != doc.Array {
		panic(entityFail{})
	}
	return n.Arr
}

func enrichIAM(c *entityCtx, name *string) {
	c.addFields(c.related, "requestParameters.userName", "requestParameters.serialNumber", "requestParameters.accessKeyId",
		"requestParameters.policyArn", "requestParameters.roleName", "requestParameters.policyName",
		"requestParameters.serialNumber", "responseElements.accessKey.userName", "responseElements.accessKey.accessKeyId",
		"responseElements.user.arn", "responseElements.user.userId", "responseElements.user.userName",
		"responseElements.userId", "responseElements.role.arn", "responseElements.serialNumber")
	switch deref(name) {
	case "AttachGroupPolicy":
		c.addField(c.target, "requestParameters.groupName")
	case "AttachRolePolicy", "ListAttachedRolePolicies", "UpdateAssumeRolePolicy":
		c.addField(c.target, "requestParameters.roleName")
	case "AttachUserPolicy":
		c.addFields(c.target, "requestParameters.policyArn", "requestParameters.userName")
	case "CreateAccessKey":
		c.addFields(c.target, "responseElements.accessKey.accessKeyId", "requestParameters.userName")
	case "CreateUser", "DeactivateMFADevice":
		c.addField(c.target, "requestParameters.userName")
	case "DeleteVirtualMFADevice":
		c.addField(c.target, "requestParameters.serialNumber")
	case "GetPolicy":
		c.addField(c.target, "requestParameters.policyArn")
	case "CreatePolicy":
		c.addField(c.target, "responseElements.policy.arn")
	case "ListRoles", "ListUsers":
		c.addField(c.target, "recipientAccountId")
	}
}

func enrichRDS(c *entityCtx, name *string) {
	c.addFields(c.related, "requestParameters.dBInstanceIdentifier", "requestParameters.dBInstanceArn",
		"responseElements.dBInstanceIdentifier", "responseElements.dbInstanceArn", "responseElements.dBSubnetGroup.vpcId",
		"responseElements.vpcSecurityGroups.vpcSecurityGroupId")
	for _, i := range c.list("responseElements.dBSubnetGroup.subnets") {
		c.addValue(c.related, member(i, "subnetIdentifier"))
	}
	for _, i := range c.list("responseElements.vpcSecurityGroups") {
		c.addValue(c.related, member(i, "vpcSecurityGroupId"))
	}
	switch deref(name) {
	case "DeleteDBCluster", "ModifyDBCluster", "StopDBCluster":
		c.addField(c.target, "responseElements.dBClusterArn")
	case "DeleteDBInstance", "ModifyDBInstance", "RestoreDBInstanceFromDBSnapshot", "RestoreDBInstanceFromS3", "StopDBInstance":
		c.addField(c.target, "responseElements.dBInstanceArn")
	case "DeleteGlobalCluster":
		c.addField(c.target, "responseElements.globalClusterArn")
	case "ModifyDBClusterSnapshotAttribute":
		c.addField(c.target, "responseElements.dBClusterSnapshotIdentifier")
	case "ModifyDBSnapshotAttribute":
		c.addField(c.target, "responseElements.dBSnapshotIdentifier")
	case "DescribeDBInstances":
		c.addField(c.target, "recipientAccountId")
	}
}

func enrichSSM(c *entityCtx, name *string) {
	switch deref(name) {
	case "GetParameter", "GetParameters", "CreateControlChannel", "OpenControlChannel":
		c.resourceTargets()
	case "StartSession":
		c.addField(c.target, "requestParameters.target")
	case "CreateDocument":
		c.addField(c.target, "requestParameters.name")
	case "TerminateSession", "OpenDataChannel":
		c.addField(c.target, "requestParameters.sessionId")
	case "SendCommand":
		ids := c.list("requestParameters.instanceIds")
		if len(ids) == 0 {
			ids = nil
			for _, t := range c.list("requestParameters.targets") {
				v := member(t, "values")
				if v == nil {
					panic(entityFail{}) // null.stream()
				}
				ids = append(ids, asStream(v)...)
			}
		}
		if len(ids) == 1 && isString(ids[0], "*") {
			ids = []*doc.Node{c.get("recipientAccountId")} // every instance: the account
		}
		c.addValues(c.target, ids)
	case "ListInstanceAssociations":
		c.addField(c.target, "recipientAccountId")
	}
}

// javaSorted returns a set's strings in Java's String order (UTF-16 code
// units), as a TreeSet iterates them.
func javaSorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sortJava(out)
	return out
}
