package cloudtrail

import (
	"strings"

	"github.com/trailwatch/trailwatch/matcher"
)

// categories is the integration's categorization table (aws 8.8.0): event.action
// to event.category and event.type. Actions not listed get event.type info
// and no category.
var categories = map[string][2]string{}

func init() {
	rows := []struct{ actions, category, types string }{
		{"AddUserToGroup RemoveUserFromGroup AttachGroupPolicy DetachGroupPolicy DeleteGroupPolicy PutGroupPolicy UpdateGroup", "iam", "group change"},
		{"AttachUserPolicy DetachUserPolicy ChangePassword CreateAccessKey DeleteAccessKey UpdateAccessKey CreateVirtualMFADevice DeactivateMFADevice EnableMFADevice DeleteVirtualMFADevice DeleteSSHPublicKey UpdateSSHPublicKey DeleteUserPermissionsBoundary PutUserPermissionsBoundary DeleteUserPolicy PutUserPolicy TagUser UntagUser UpdateLoginProfile UpdateUser", "iam", "user change"},
		{"CreateGroup", "iam", "group creation"},
		{"DeleteGroup", "iam", "group deletion"},
		{"CreateUser", "iam", "user creation"},
		{"DeleteUser", "iam", "user deletion"},
		{"CreateKeyPair", "iam", "admin creation"},
		{"SetDefaultPolicyVersion SetSecurityTokenServicePreferences UpdateAccountPasswordPolicy UpdateRole", "iam", "admin change"},
		{"GetGroup GetGroupPolicy ListAttachedGroupPolicies ListGroupPolicies ListGroups", "iam", "group info"},
		{"GetUser GetUserPolicy ListAttachedUserPolicies ListGroupsForUser ListUserPolicies ListUsers ListUserTags", "iam", "user info"},
		{"ListRoles GetPolicy ListAttachedRolePolicies", "iam", "info"},
		{"CreatePolicy", "iam", "creation"},
		{"AttachRolePolicy", "iam", "change"},
		{"AssumeRole ConsoleLogin GetCallerIdentity", "authentication", "info"},
		{"CreateBucket CreateDocument", "file", "creation"},
		{"DeleteBucket", "file", "deletion"},
		{"ListBuckets ListObjects HeadObject GetObject", "file", "info"},
		{"PutObject", "file", "change"},
		{"DeleteObject", "file", "deletion"},
		{"DescribeInstances DescribeVolumes ListInstanceAssociations", "host", "info"},
		{"DescribeSecurityGroups DescribeNetworkInterfaces DescribeVpcs DescribeNetworkAcls DescribeLoadBalancers", "network", "info"},
		{"AuthorizeSecurityGroupIngress", "network", "access"},
		{"DescribeRegions", "api", "info"},
		{"Publish Converse", "api", "info"},
		{"SendCommand", "process", "start"},
		{"DescribeTrails", "configuration", "info"},
		{"CreateTopic", "configuration", "creation"},
		{"Subscribe", "configuration", "change"},
		{"DeleteTrail", "configuration", "deletion"},
		{"ListFunctions", "package", "info"},
		{"ListTables DescribeDBInstances", "database", "info"},
		{"StartSession CreateControlChannel OpenControlChannel CreateDataChannel OpenDataChannel", "session", "start"},
		{"TerminateSession", "session", "end"},
	}
	for _, r := range rows {
		for _, a := range strings.Fields(r.actions) {
			categories[a] = [2]string{r.category, r.types}
		}
	}
}

func categorize(action string, category bool) []matcher.Value {
	c, ok := categories[action]
	if category {
		if !ok {
			return nil
		}
		return str(c[0])
	}
	if !ok {
		return str("info")
	}
	var out []matcher.Value
	for _, t := range strings.Fields(c[1]) {
		out = append(out, matcher.Value{Text: t})
	}
	return out
}
