package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
)

var ctSeq atomic.Int64

// ct is a successful CloudTrail event of source and name by an IAM user
// with a long-term key; extra is JSON members that replace or add to the
// defaults (no key twice: Elastic's pipeline refuses duplicate keys). Keys
// keep the order they are written in (a payload's Map.toString() text
// depends on it).
func ct(source, name, extra string) string {
	n := ctSeq.Add(1)
	q := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	keys := []string{"eventVersion", "eventSource", "eventName", "eventTime", "eventID", "awsRegion", "sourceIPAddress", "userAgent", "recipientAccountId", "userIdentity"}
	vals := map[string]json.RawMessage{
		"eventVersion": q("1.09"), "eventSource": q(source), "eventName": q(name),
		"eventTime": q(fmt.Sprintf("2026-05-04T10:%02d:%02dZ", n/60%60, n%60)),
		"eventID":   q(fmt.Sprintf("ev-%d", n)), "awsRegion": q("us-east-1"), "sourceIPAddress": q("198.51.100.7"),
		"userAgent": q("aws-cli/2.15.0"), "recipientAccountId": q("111122223333"),
		"userIdentity": json.RawMessage(`{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice",` +
			`"accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice"}`),
	}
	if extra != "" {
		d := json.NewDecoder(strings.NewReader("{" + extra + "}"))
		if _, err := d.Token(); err != nil {
			panic(fmt.Sprintf("%v: %s", err, extra))
		}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				panic(fmt.Sprintf("%v: %s", err, extra))
			}
			var v json.RawMessage
			if err := d.Decode(&v); err != nil {
				panic(fmt.Sprintf("%v: %s", err, extra))
			}
			if _, ok := vals[k.(string)]; !ok {
				keys = append(keys, k.(string))
			}
			vals[k.(string)] = v
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(q(k))
		b.WriteByte(':')
		b.Write(vals[k])
	}
	b.WriteByte('}')
	return b.String()
}

type eqlCase struct {
	rule      string
	hit, miss []string
}

var eqlCorpusCases = []eqlCase{
	{"AWS IAM CompromisedKeyQuarantine Policy Attached to User",
		[]string{ct("iam.amazonaws.com", "AttachUserPolicy", `"requestParameters":{"userName":"bob","policyArn":"arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"}`)},
		[]string{ct("iam.amazonaws.com", "AttachUserPolicy", `"requestParameters":{"userName":"bob","policyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}`)}},
	{"AWS S3 Bucket Expiration Lifecycle Configuration Added",
		[]string{ct("s3.amazonaws.com", "PutBucketLifecycle", `"requestParameters":{"bucketName":"b","LifecycleConfiguration":{"Rule":{"Expiration":{"Days":1},"ID":"x"}}}`)},
		[]string{ct("s3.amazonaws.com", "PutBucketLifecycle", `"requestParameters":{"bucketName":"b","LifecycleConfiguration":{"Rule":{"Transition":{"Days":1},"ID":"x"}}}`)}},
	{"AWS S3 Bucket Server Access Logging Disabled",
		[]string{ct("s3.amazonaws.com", "PutBucketLogging", `"requestParameters":{"bucketName":"b","BucketLoggingStatus":{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"}}`)},
		[]string{ct("s3.amazonaws.com", "PutBucketLogging", `"requestParameters":{"bucketName":"b","BucketLoggingStatus":{"LoggingEnabled":{"TargetBucket":"logs"}}}`)}},
	{"AWS Bedrock Foundation Model Enumeration Followed by Invocation via Long-Term Key",
		[]string{ct("bedrock.amazonaws.com", "ListFoundationModels", ""), ct("bedrock.amazonaws.com", "InvokeModel", `"requestParameters":{"modelId":"m"}`)},
		[]string{ct("bedrock.amazonaws.com", "ListFoundationModels", `"userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAEXAMPLE","arn":"arn:aws:sts::1:assumed-role/r/s"}`),
			ct("bedrock.amazonaws.com", "InvokeModel", `"userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAEXAMPLE","arn":"arn:aws:sts::1:assumed-role/r/s"}`)}},
	{"AWS EC2 EBS Snapshot Shared or Made Public",
		[]string{ct("ec2.amazonaws.com", "ModifySnapshotAttribute", `"requestParameters":{"snapshotId":"snap-1","attributeType":"CREATE_VOLUME_PERMISSION","createVolumePermission":{"add":{"items":[{"userId":"444455556666"}]}}}`)},
		[]string{ct("ec2.amazonaws.com", "ModifySnapshotAttribute", `"requestParameters":{"snapshotId":"snap-1","attributeType":"CREATE_VOLUME_PERMISSION","createVolumePermission":{"remove":{"items":[{"userId":"444455556666"}]}}}`)}},
	{"AWS RDS DB Snapshot Shared with Another Account",
		[]string{ct("rds.amazonaws.com", "ModifyDBSnapshotAttribute", `"requestParameters":{"dBSnapshotIdentifier":"s","attributeName":"restore","valuesToAdd":["444455556666"]}`)},
		[]string{ct("rds.amazonaws.com", "ModifyDBSnapshotAttribute", `"requestParameters":{"dBSnapshotIdentifier":"s","attributeName":"restore","valuesToRemove":["444455556666"]}`)}},
	{"AWS S3 Bucket Policy Added to Share with External Account",
		[]string{ct("s3.amazonaws.com", "PutBucketPolicy", `"requestParameters":{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"s3:GetObject"}]}}`)},
		[]string{ct("s3.amazonaws.com", "PutBucketPolicy", `"requestParameters":{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject"}]}}`)}},
	{"AWS S3 Bucket Policy Added to Allow Public Access",
		[]string{ct("s3.amazonaws.com", "PutBucketPolicy", `"requestParameters":{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}}`)},
		[]string{ct("s3.amazonaws.com", "PutBucketPolicy", `"requestParameters":{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject"}]}}`)}},
	{"AWS S3 Bucket Replicated to Another Account",
		[]string{ct("s3.amazonaws.com", "PutBucketReplication", `"requestParameters":{"bucketName":"b","ReplicationConfiguration":{"Rule":{"Destination":{"Bucket":"arn:aws:s3:::x","Account":"444455556666"}}}}`)},
		[]string{ct("s3.amazonaws.com", "PutBucketReplication", `"requestParameters":{"bucketName":"b","ReplicationConfiguration":{"Rule":{"Destination":{"Bucket":"arn:aws:s3:::x"}}}}`)}},
	{"AWS EC2 EBS Snapshot Access Removed",
		[]string{ct("ec2.amazonaws.com", "ModifySnapshotAttribute", `"requestParameters":{"snapshotId":"snap-1","attributeType":"CREATE_VOLUME_PERMISSION","createVolumePermission":{"remove":{"items":[{"userId":"111122223333"}]}}}`)},
		[]string{ct("ec2.amazonaws.com", "ModifySnapshotAttribute", `"sourceIPAddress":"backup.amazonaws.com","requestParameters":{"snapshotId":"snap-1","attributeType":"CREATE_VOLUME_PERMISSION","createVolumePermission":{"remove":{"items":[{"userId":"111122223333"}]}}}`)}},
	{"AWS RDS DB Instance or Cluster Deletion Protection Disabled",
		[]string{ct("rds.amazonaws.com", "ModifyDBInstance", `"requestParameters":{"dBInstanceIdentifier":"db","deletionProtection":false}`)},
		[]string{ct("rds.amazonaws.com", "ModifyDBInstance", `"requestParameters":{"dBInstanceIdentifier":"db","deletionProtection":true}`)}},
	{"AWS RDS Snapshot Deleted",
		[]string{ct("rds.amazonaws.com", "DeleteDBSnapshot", `"requestParameters":{"dBSnapshotIdentifier":"s"}`)},
		[]string{ct("rds.amazonaws.com", "DeleteDBSnapshot", `"userAgent":"backup.amazonaws.com","sourceIPAddress":"backup.amazonaws.com","requestParameters":{"dBSnapshotIdentifier":"s"}`)}},
	{"Potential AWS S3 Bucket Ransomware Note Uploaded",
		[]string{ct("s3.amazonaws.com", "PutObject", `"requestParameters":{"bucketName":"b","key":"HOW_TO_DECRYPT.txt"},"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/HOW_TO_DECRYPT.txt"}]`)},
		[]string{ct("s3.amazonaws.com", "PutObject", `"requestParameters":{"bucketName":"b","key":"AWSLogs/how/1.gz"},"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/AWSLogs/how/1.gz"}]`)}},
	{"AWS S3 Object Versioning Suspended",
		[]string{ct("s3.amazonaws.com", "PutBucketVersioning", `"requestParameters":{"bucketName":"b","VersioningConfiguration":{"Status":"Suspended"}}`)},
		[]string{ct("s3.amazonaws.com", "PutBucketVersioning", `"requestParameters":{"bucketName":"b","VersioningConfiguration":{"Status":"Enabled"}}`)}},
	{"AWS Suspicious User Agent Fingerprint",
		[]string{ct("sts.amazonaws.com", "GetCallerIdentity", `"userAgent":"aws-cli/2.15.0 md/OS#linux#6.6.9-amd64 md/distrib#kali.2024"`)},
		[]string{ct("sts.amazonaws.com", "GetCallerIdentity", `"userAgent":"aws-cli/2.15.0 md/OS#linux#6.6.9-amd64 md/distrib#ubuntu.22"`)}},
	{"AWS EC2 Instance Console Login via Assumed Role",
		[]string{ct("signin.amazonaws.com", "GetSigninToken", `"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-0123456789abcdef0","arn":"arn:aws:sts::1:assumed-role/r/i-0123456789abcdef0"}`)},
		[]string{ct("signin.amazonaws.com", "GetSigninToken", `"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:alice","arn":"arn:aws:sts::1:assumed-role/r/alice"}`)}},
	{"AWS IAM Virtual MFA Device Registration Attempt with Session Token",
		[]string{ct("iam.amazonaws.com", "CreateVirtualMFADevice", `"userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAEXAMPLE","arn":"arn:aws:sts::1:assumed-role/r/s"}`)},
		[]string{ct("iam.amazonaws.com", "CreateVirtualMFADevice", `"userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAEXAMPLE","arn":"arn:aws:sts::1:assumed-role/r/s"},"sessionCredentialFromConsole":"true"`)}},
	{"AWS IAM Login Profile Added for Root",
		[]string{ct("iam.amazonaws.com", "CreateLoginProfile", `"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"},"requestParameters":{"passwordResetRequired":false}`)},
		[]string{ct("iam.amazonaws.com", "CreateLoginProfile", `"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"},"requestParameters":{"userName":"bob","passwordResetRequired":false}`)}},
	{"AWS EC2 Instance Interaction with IAM Service",
		[]string{ct("iam.amazonaws.com", "CreateUser", `"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-0123456789abcdef0","arn":"arn:aws:sts::1:assumed-role/r/i-0123456789abcdef0"}`)},
		[]string{ct("iam.amazonaws.com", "GetUser", `"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-0123456789abcdef0","arn":"arn:aws:sts::1:assumed-role/r/i-0123456789abcdef0"}`)}},
	{"AWS IAM Roles Anywhere Trust Anchor Created with External CA",
		[]string{ct("rolesanywhere.amazonaws.com", "CreateTrustAnchor", `"requestParameters":{"name":"t","source":{"sourceType":"CERTIFICATE_BUNDLE"}}`)},
		[]string{ct("rolesanywhere.amazonaws.com", "CreateTrustAnchor", `"requestParameters":{"name":"t","source":{"sourceType":"AWS_ACM_PCA"}}`)}},
	{"AWS Lambda Function Policy Updated to Allow Public Invocation",
		[]string{ct("lambda.amazonaws.com", "AddPermission20150331v2", `"requestParameters":{"functionName":"f","action":"lambda:InvokeFunction","principal":"*"}`)},
		[]string{ct("lambda.amazonaws.com", "AddPermission20150331v2", `"requestParameters":{"functionName":"f","action":"lambda:InvokeFunction","principal":"444455556666"}`)}},
	{"AWS Lambda Function Policy Updated to Allow Cross-Account Invocation",
		[]string{ct("lambda.amazonaws.com", "AddPermission20150331v2", `"requestParameters":{"functionName":"f","action":"lambda:InvokeFunction","principal":"444455556666"}`)},
		[]string{ct("lambda.amazonaws.com", "AddPermission20150331v2", `"requestParameters":{"functionName":"f","action":"lambda:InvokeFunction","principal":"s3.amazonaws.com"}`)}},
	{"AWS Lambda Function URL Created with Public Access",
		[]string{ct("lambda.amazonaws.com", "CreateFunctionUrlConfig20211031", `"requestParameters":{"functionName":"f","authType":"NONE"}`)},
		[]string{ct("lambda.amazonaws.com", "CreateFunctionUrlConfig20211031", `"userAgent":"APN/1.0 HashiCorp/1.0 Terraform/1.5.0","requestParameters":{"functionName":"f","authType":"NONE"}`)}},
	{"AWS RDS DB Instance or Cluster Password Modified",
		[]string{ct("rds.amazonaws.com", "ModifyDBInstance", `"requestParameters":{"dBInstanceIdentifier":"db","masterUserPassword":"HIDDEN_DUE_TO_SECURITY_REASONS"}`)},
		[]string{ct("rds.amazonaws.com", "ModifyDBInstance", `"requestParameters":{"dBInstanceIdentifier":"db","allocatedStorage":100}`)}},
	{"AWS RDS DB Instance Made Public",
		[]string{ct("rds.amazonaws.com", "ModifyDBInstance", `"requestParameters":{"dBInstanceIdentifier":"db","publiclyAccessible":true}`)},
		[]string{ct("rds.amazonaws.com", "ModifyDBInstance", `"requestParameters":{"dBInstanceIdentifier":"db","publiclyAccessible":false}`)}},
	{"AWS IAM AdministratorAccess Policy Attached to Group",
		[]string{ct("iam.amazonaws.com", "AttachGroupPolicy", `"requestParameters":{"groupName":"g","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}`)},
		[]string{ct("iam.amazonaws.com", "AttachGroupPolicy", `"requestParameters":{"groupName":"g","policyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}`)}},
	{"AWS IAM AdministratorAccess Policy Attached to Role",
		[]string{ct("iam.amazonaws.com", "AttachRolePolicy", `"requestParameters":{"roleName":"r","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}`)},
		[]string{ct("iam.amazonaws.com", "AttachRolePolicy", `"errorCode":"AccessDenied","requestParameters":{"roleName":"r","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}`)}},
	{"AWS IAM AdministratorAccess Policy Attached to User",
		[]string{ct("iam.amazonaws.com", "AttachUserPolicy", `"requestParameters":{"userName":"u","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}`)},
		[]string{ct("iam.amazonaws.com", "DetachUserPolicy", `"requestParameters":{"userName":"u","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}`)}},
}
