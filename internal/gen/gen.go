// Package gen writes deterministic, CloudTrail-shaped records for
// benchmarks: a realistic mix of services and actions (mostly read-only
// calls, a few percent that Elastic's AWS rules look at), users drawn from
// a pool with two source addresses each, about 1.5 KB a record. The same
// seed always gives the same records.
package gen

import (
	"fmt"
	"math/rand/v2"
	"time"
)

type call struct {
	source, name string
	weight       int
	params       map[string]any
}

// calls is the mix. The first block is everyday traffic; the second holds
// actions that detection rules pin (a few percent of the records).
var calls = []call{
	{"s3.amazonaws.com", "GetObject", 300, map[string]any{"bucketName": "app-data", "key": "objects/part-0001.parquet", "Host": "app-data.s3.us-east-1.amazonaws.com"}},
	{"s3.amazonaws.com", "PutObject", 120, map[string]any{"bucketName": "app-data", "key": "uploads/file.bin", "Host": "app-data.s3.us-east-1.amazonaws.com", "x-amz-acl": "bucket-owner-full-control"}},
	{"s3.amazonaws.com", "ListObjects", 60, map[string]any{"bucketName": "app-data", "prefix": "objects/", "list-type": 2}},
	{"sts.amazonaws.com", "AssumeRole", 150, map[string]any{"roleArn": "arn:aws:iam::111122223333:role/app-runtime", "roleSessionName": "app", "durationSeconds": 3600}},
	{"kms.amazonaws.com", "Decrypt", 120, map[string]any{"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": map[string]any{"aws:s3:arn": "arn:aws:s3:::app-data"}}},
	{"kms.amazonaws.com", "GenerateDataKey", 60, map[string]any{"keyId": "alias/app", "keySpec": "AES_256"}},
	{"ec2.amazonaws.com", "DescribeInstances", 80, map[string]any{"instancesSet": map[string]any{}, "filterSet": map[string]any{"items": []any{map[string]any{"name": "tag:env", "valueSet": map[string]any{"items": []any{map[string]any{"value": "prod"}}}}}}}},
	{"ec2.amazonaws.com", "DescribeSecurityGroups", 30, map[string]any{"securityGroupSet": map[string]any{}}},
	{"logs.amazonaws.com", "PutLogEvents", 100, map[string]any{"logGroupName": "/app/prod", "logStreamName": "i-0abc"}},
	{"dynamodb.amazonaws.com", "GetItem", 80, map[string]any{"tableName": "sessions", "key": map[string]any{"id": map[string]any{"S": "x"}}}},
	{"lambda.amazonaws.com", "Invoke", 50, map[string]any{"functionName": "arn:aws:lambda:us-east-1:111122223333:function:worker"}},
	{"monitoring.amazonaws.com", "PutMetricData", 60, map[string]any{"namespace": "App", "metricData": []any{map[string]any{"metricName": "latency", "value": 12.5}}}},
	{"secretsmanager.amazonaws.com", "GetSecretValue", 20, map[string]any{"secretId": "prod/db"}},
	{"bedrock.amazonaws.com", "InvokeModel", 30, map[string]any{"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0"}},
	{"iam.amazonaws.com", "GetRole", 20, map[string]any{"roleName": "app-runtime"}},
	{"signin.amazonaws.com", "ConsoleLogin", 4, nil},
	// Actions detection rules pin.
	{"iam.amazonaws.com", "CreateAccessKey", 3, map[string]any{"userName": "svc-backup"}},
	{"iam.amazonaws.com", "AttachRolePolicy", 2, map[string]any{"roleName": "app-runtime", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}},
	{"iam.amazonaws.com", "CreateUser", 2, map[string]any{"userName": "new-user"}},
	{"ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", 2, map[string]any{"groupId": "sg-0123", "ipPermissions": map[string]any{"items": []any{map[string]any{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": map[string]any{"items": []any{map[string]any{"cidrIp": "0.0.0.0/0"}}}}}}}},
	{"cloudtrail.amazonaws.com", "StopLogging", 1, map[string]any{"name": "org-trail"}},
	{"guardduty.amazonaws.com", "DeleteDetector", 1, map[string]any{"detectorId": "12abc"}},
	{"bedrock.amazonaws.com", "PutResourcePolicy", 2, map[string]any{"resourceArn": "arn:aws:bedrock:us-east-1:111122223333:agent/A1", "resourcePolicy": "{}"}},
	{"bedrock.amazonaws.com", "PutFoundationModelEntitlement", 1, map[string]any{"modelId": "anthropic.claude-3-opus"}},
	{"s3.amazonaws.com", "PutBucketPolicy", 2, map[string]any{"bucketName": "app-data", "bucketPolicy": map[string]any{"Statement": []any{}}}},
	{"sts.amazonaws.com", "GetCallerIdentity", 6, nil},
	{"ssm.amazonaws.com", "GetParameters", 3, map[string]any{"names": []any{"/prod/db/password"}, "withDecryption": true}},
	{"secretsmanager.amazonaws.com", "ListSecrets", 1, nil},
}

// Generate calls emit with n records made from seed.
func Generate(n int, seed uint64, emit func(map[string]any) error) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := 0
	for _, c := range calls {
		total += c.weight
	}
	t := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		pick := r.IntN(total)
		var c call
		for _, c = range calls {
			if pick < c.weight {
				break
			}
			pick -= c.weight
		}
		u := r.IntN(500)
		ident := map[string]any{
			"type": "IAMUser", "principalId": fmt.Sprintf("AIDAEXAMPLE%09d", u),
			"arn": fmt.Sprintf("arn:aws:iam::111122223333:user/user%03d", u), "accountId": "111122223333",
			"accessKeyId": fmt.Sprintf("AKIAEXAMPLE%09d", u), "userName": fmt.Sprintf("user%03d", u),
		}
		// Most API calls come from roles (services, instance profiles, SSO);
		// one user in ten calls with a long-term IAM user key.
		if u%10 != 0 {
			ident = map[string]any{
				"type": "AssumedRole", "principalId": fmt.Sprintf("AROAEXAMPLE%09d:session-%d", u, u),
				"arn":       fmt.Sprintf("arn:aws:sts::111122223333:assumed-role/role%03d/session-%d", u, u),
				"accountId": "111122223333", "accessKeyId": fmt.Sprintf("ASIAEXAMPLE%09d", u),
				"sessionContext": map[string]any{
					"sessionIssuer": map[string]any{"type": "Role", "principalId": fmt.Sprintf("AROAEXAMPLE%09d", u), "arn": fmt.Sprintf("arn:aws:iam::111122223333:role/role%03d", u), "accountId": "111122223333", "userName": fmt.Sprintf("role%03d", u)},
					"attributes":    map[string]any{"creationDate": t.Format(time.RFC3339), "mfaAuthenticated": "false"},
				},
			}
		}
		t = t.Add(time.Duration(r.IntN(40)) * time.Millisecond)
		rec := map[string]any{
			"eventVersion": "1.09", "userIdentity": ident, "eventTime": t.Format(time.RFC3339),
			"eventSource": c.source, "eventName": c.name, "awsRegion": "us-east-1",
			"sourceIPAddress":   fmt.Sprintf("198.51.%d.%d", u%256, 10+r.IntN(2)), // two addresses a user
			"userAgent":         "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard",
			"requestParameters": c.params, "responseElements": nil,
			"requestID": fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), i), "eventID": fmt.Sprintf("%08x-1111-4000-8000-%012x", r.Uint32(), i),
			"readOnly": c.name[:3] == "Get" || c.name[:4] == "List" || c.name[:4] == "Desc", "eventType": "AwsApiCall",
			"managementEvent": true, "recipientAccountId": "111122223333", "eventCategory": "Management",
			"tlsDetails": map[string]any{"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": c.source},
		}
		if r.IntN(50) == 0 {
			rec["errorCode"], rec["errorMessage"] = "AccessDenied", "User is not authorized to perform this operation"
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}
