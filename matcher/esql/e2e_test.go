package esql

import (
	"testing"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// event reads a raw CloudTrail event as the pipeline does: ECS fields
// derived by the cloudtrail package, payloads as Map.toString() text.
func event(t *testing.T, js string) *cloudtrail.Event {
	t.Helper()
	n, err := doc.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return cloudtrail.NewEvent(n, testNow, nil)
}

// TestRawCloudTrail runs queries on raw CloudTrail events through the
// record reader the engine uses: the fields ES|QL reads are the derived
// ECS fields, with their mappings (dates, addresses), and DISSECT and GROK
// see request_parameters as the pipeline renders it.
func TestRawCloudTrail(t *testing.T) {
	copyObject := `{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAX:dev","arn":"arn:aws:sts::111111111111:assumed-role/dev/x",
		"accountId":"111111111111","accessKeyId":"ASIAEXAMPLE0001"},"eventTime":"2026-03-01T11:55:00Z","eventSource":"s3.amazonaws.com","eventName":"CopyObject",
		"awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15","requestParameters":{"bucketName":"dst",
		"x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:999999999999:key/k-123","Host":"dst.s3.amazonaws.com",
		"x-amz-server-side-encryption":"aws:kms","x-amz-copy-source":"dst/report.pdf","key":"report.pdf"},"responseElements":null,
		"eventID":"3f1e","readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"111111111111"}`
	p := mustCompile(t, `FROM logs-aws.cloudtrail-* | WHERE data_stream.dataset == "aws.cloudtrail" AND event.provider == "s3.amazonaws.com"
		AND event.action == "CopyObject" AND event.outcome == "success" AND @timestamp >= NOW() - 1 hour AND source.ip == "198.51.100.7"
		| DISSECT aws.cloudtrail.request_parameters "{%{?b}=%{bucket}, %{?k}=%{?arn}:%{?aws}:%{?kms}:%{?region}:%{kms_account}:%{?key}/%{key_id}, %{}"
		| WHERE cloud.account.id != kms_account | KEEP bucket, kms_account, key_id, @timestamp`)
	row, ok := p.Eval(event(t, copyObject), testNow)
	if !ok {
		t.Fatal("no row for the raw CopyObject event")
	}
	for col, want := range map[string]string{"bucket": "dst", "kms_account": "999999999999", "key_id": "k-123", "@timestamp": "2026-03-01T11:55:00.000Z"} {
		if got := texts(row.Values(col)); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %s", col, got, want)
		}
	}
	if !p.Prefilter().Match(event(t, copyObject)) {
		t.Error("the prefilter refuses the raw event")
	}

	invoke := `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAX","arn":"arn:aws:iam::111111111111:user/alice",
		"accountId":"111111111111","accessKeyId":"AKIAEXAMPLE0001","userName":"alice"},"eventTime":"2026-03-01T11:58:00Z",
		"eventSource":"lambda.amazonaws.com","eventName":"Invoke","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15",
		"requestParameters":{"functionName":"arn:aws:lambda:us-east-1:222222222222:function:f","invocationType":"RequestResponse"},
		"responseElements":null,"eventID":"9a2b","readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"222222222222"}`
	p = mustCompile(t, `FROM logs-aws.cloudtrail-* | WHERE event.provider == "lambda.amazonaws.com" AND event.action LIKE "Invoke*"
		| GROK aws.cloudtrail.user_identity.arn """:(?<caller>[0-9]{12}):"""
		| GROK aws.cloudtrail.request_parameters """functionName=arn:aws:lambda:[a-z0-9-]*:(?<owner>[0-9]{12}):"""
		| WHERE caller != owner | STATS n = COUNT(*), ips = VALUES(source.ip), latest = MAX(@timestamp) BY user.name, caller, owner`)
	acc := p.NewAcc()
	for range 3 {
		if row, ok := p.Eval(event(t, invoke), testNow); ok {
			acc.Add(row)
		}
	}
	got := render(p.Results(acc, testNow))
	want := []string{"n=3 ips=198.51.100.7 latest=2026-03-01T11:58:00.000Z user.name=alice caller=111111111111 owner=222222222222"}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("%q, want %q", got, want)
	}
}
