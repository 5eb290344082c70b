package cloudtrail

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
	"github.com/trailwatch/trailwatch/matcher/kql"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

func loadEvent(t *testing.T, name string) *Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "ecs", name))
	if err != nil {
		t.Fatal(err)
	}
	n, err := doc.ParseJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return NewEvent(n, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), nil)
}

// TestECSDerivations checks each derivation of Elastic's AWS integration
// pipeline on hand-written CloudTrail records (written from the CloudTrail
// User Guide's record contents). Expected Map.toString() texts were worked
// out independently of this code, from Java's HashMap iteration rules.
// "ABSENT" means the field must not exist.
func TestECSDerivations(t *testing.T) {
	cases := map[string]map[string][]string{
		"iam_create_user.json": {
			"@timestamp":                        {"2026-11-20T10:00:00.000Z"},
			"event.provider":                    {"iam.amazonaws.com"},
			"event.action":                      {"CreateUser"},
			"event.outcome":                     {"success"},
			"event.id":                          {"5d2b8c1e-0000-4000-8000-000000000001"},
			"event.kind":                        {"event"},
			"event.category":                    {"iam"},
			"event.type":                        {"user", "creation"},
			"event.dataset":                     {"aws.cloudtrail"},
			"data_stream.dataset":               {"aws.cloudtrail"},
			"event.ingested":                    {"2026-11-20T12:00:00Z"},
			"cloud.account.id":                  {"111122223333"},
			"cloud.region":                      {"us-east-1"},
			"source.address":                    {"198.51.100.7"},
			"source.ip":                         {"198.51.100.7"},
			"user_agent.original":               {"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0"},
			"user.name":                         {"alice"},
			"user.id":                           {"AIDAEXAMPLEALICE0001"},
			"user.target.name":                  {"bob"},
			"user.target.id":                    {"AIDAEXAMPLEBOB000001"},
			"related.user":                      {"bob", "AIDAEXAMPLEBOB000001", "AIDAEXAMPLEALICE0001", "alice"},
			"aws.cloudtrail.user_identity.type": {"IAMUser"},
			"aws.cloudtrail.user_identity.arn":  {"arn:aws:iam::111122223333:user/alice"},
			"aws.cloudtrail.user_identity.access_key_id":                      {"AKIAEXAMPLEALICE0001"},
			"aws.cloudtrail.request_parameters":                               {"{path=/engineering/, userName=bob, tags=[{value=ml, key=team}, {value=42, key=cost}]}"},
			"aws.cloudtrail.response_elements":                                {"{user={path=/engineering/, userName=bob, arn=arn:aws:iam::111122223333:user/engineering/bob, userId=AIDAEXAMPLEBOB000001, createDate=Nov 20, 2026 10:00:00 AM}}"},
			"aws.cloudtrail.flattened.request_parameters.tags.key":            {"team", "cost"},
			"aws.cloudtrail.flattened.request_parameters.tags.value":          {"ml", "42"},
			"aws.cloudtrail.flattened.request_parameters.permissionsBoundary": {"ABSENT"},
			"aws.cloudtrail.management_event":                                 {"true"},
			"aws.cloudtrail.read_only":                                        {"false"},
			"aws.cloudtrail.event_category":                                   {"Management"},
			"tls.client.server_name":                                          {"iam.amazonaws.com"},
			"tls.version":                                                     {"1.3"},
			"tls.version_protocol":                                            {"tls"},
			"aws.cloudtrail.error_code":                                       {"ABSENT"},
			"aws.cloudtrail.session_credential_from_console":                  {"ABSENT"},
		},
		"assumed_role_attach_policy.json": {
			"user.name":    {"Admin"},
			"user.id":      {"AROAEXAMPLEROLE00001:jane@example.com"},
			"user.email":   {"jane@example.com"}, // the session name's, as the pipeline takes it
			"related.user": {"jane@example.com", "jane", "AROAEXAMPLEROLE00001:jane@example.com", "Admin"},
			"source.ip":    {"2001:db8::15"},
			"aws.cloudtrail.user_identity.session_context.session_issuer.arn": {"arn:aws:iam::111122223333:role/Admin"},
			"aws.cloudtrail.user_identity.session_context.mfa_authenticated":  {"true"},
			"aws.cloudtrail.user_identity.session_context.creation_date":      {"2026-11-20T09:00:00.000Z"},
			"aws.cloudtrail.session_credential_from_console":                  {"true"},
			"aws.cloudtrail.request_parameters":                               {"{policyArn=arn:aws:iam::111122223333:policy/app-extra, roleName=app-runtime}"},
			"aws.cloudtrail.response_elements":                                {"ABSENT"},
			"entity.target.id":                                                {"app-runtime"},
			"related.entity": {"ASIAEXAMPLEROLE00001", "Admin", "app-runtime", "arn:aws:iam::111122223333:policy/app-extra",
				"arn:aws:iam::111122223333:role/Admin", "arn:aws:sts::111122223333:assumed-role/Admin/jane@example.com"},
			"event.category": {"iam"},
			"event.type":     {"change"},
		},
		"console_login_failure.json": {
			"event.outcome": {"failure"},
			"aws.cloudtrail.console_login.additional_eventdata.mfa_used":       {"false"},
			"aws.cloudtrail.console_login.additional_eventdata.mobile_version": {"false"},
			"aws.cloudtrail.console_login.additional_eventdata.login_to":       {"https://console.aws.amazon.com/console/home"},
			"aws.cloudtrail.additional_eventdata":                              {"{LoginTo=https://console.aws.amazon.com/console/home, MobileVersion=No, MFAUsed=No}"},
			"aws.cloudtrail.user_identity.access_key_id":                       {"ABSENT"},
			"aws.cloudtrail.error_message":                                     {"Failed authentication"},
			"event.category":                                                   {"authentication"},
			"user.name":                                                        {"alice"},
		},
		"service_call_cleanup.json": {
			"source.address":      {"cloudtrail.amazonaws.com"},
			"source.ip":           {"ABSENT"},
			"user_agent.original": {"ABSENT"},
			"event.outcome":       {"success"},
			"user.name":           {"ABSENT"},
			"user.id":             {"ABSENT"},
			"cloud.account.id":    {"444455556666"},
			"aws.cloudtrail.user_identity.invoked_by": {"cloudtrail.amazonaws.com"},
			// 13 keys went into the HashMap (3 are removed after), so it
			// resized to 32 buckets: the order is the 32-bucket order.
			"aws.cloudtrail.request_parameters":                                        {"{bucketName=audit-logs, big=1.0E7, flag=true, x-amz-acl=bucket-owner-full-control, size=1024, Host=audit-logs.s3.eu-west-1.amazonaws.com, list=[a, b], key=AWSLogs/1/x.json.gz, ratio=0.5}"},
			"aws.cloudtrail.additional_eventdata":                                      {"{SignatureVersion=SigV4, bytesTransferredIn=1024.0, x-amz-id-2=abc}"},
			"aws.cloudtrail.flattened.request_parameters.x-amz-acl":                    {"bucket-owner-full-control"},
			"aws.cloudtrail.flattened.request_parameters.size":                         {"1024"},
			"aws.cloudtrail.flattened.request_parameters.flag":                         {"true"},
			"aws.cloudtrail.flattened.request_parameters.ratio":                        {"0.5"},
			"aws.cloudtrail.flattened.request_parameters.list":                         {"a", "b"},
			"aws.cloudtrail.flattened.request_parameters.x-amz-server-side-encryption": {"ABSENT"},
			"aws.cloudtrail.flattened.additional_eventdata.bytesTransferredIn":         {"1024.0"},
			"aws.cloudtrail.resources.arn":                                             {"arn:aws:s3:::audit-logs/AWSLogs/1/x.json.gz", "arn:aws:s3:::audit-logs"},
			"aws.cloudtrail.resources.account_id":                                      {"444455556666"},
			"aws.cloudtrail.resources.type":                                            {"AWS::S3::Object", "AWS::S3::Bucket"},
			"aws.cloudtrail.management_event":                                          {"false"},
			"tls.version":                                                              {"1.2"},
			"tls.cipher":                                                               {"ECDHE-RSA-AES128-GCM-SHA256"},
			"event.category":                                                           {"file"},
			"event.type":                                                               {"change"},
		},
		"ec2_security_group.json": {
			"source.address":                    {"010.1.2.3"},
			"source.ip":                         {"ABSENT"}, // Elasticsearch's ip type refuses a leading zero
			"aws.cloudtrail.request_parameters": {"{groupId=sg-0123456789abcdef0, ipPermissions={items=[{ipRanges={items=[{cidrIp=0.0.0.0/0}]}, fromPort=22, toPort=22, ipProtocol=tcp}, {ipRanges={items=[{cidrIp=10.0.0.0/8}]}, fromPort=3389, toPort=3389, ipProtocol=tcp, ipv6Ranges={items=[{cidrIpv6=::/0}]}}]}}"},
			"aws.cloudtrail.response_elements":  {"{_return=true, securityGroupRuleSet={items=[{groupId=sg-0123456789abcdef0, securityGroupRuleId=sgr-0abc}]}}"},
			"aws.cloudtrail.flattened.request_parameters.ipPermissions.items.fromPort":              {"22", "3389"},
			"aws.cloudtrail.flattened.request_parameters.ipPermissions.items.ipRanges.items.cidrIp": {"0.0.0.0/0", "10.0.0.0/8"},
			"event.type":     {"access"},
			"event.category": {"network"},
		},
	}
	for file, want := range cases {
		t.Run(file, func(t *testing.T) {
			ev := loadEvent(t, file)
			s := NewSchema()
			for field, vals := range want {
				got := textsOf(ev.Values(s.Field(field)))
				if len(vals) == 1 && vals[0] == "ABSENT" {
					if len(got) != 0 {
						t.Errorf("%s = %q, want absent", field, got)
					}
					continue
				}
				if !reflect.DeepEqual(got, vals) {
					t.Errorf("%s = %q\n%s want %q", field, got, strings.Repeat(" ", len(field)), vals)
				}
			}
		})
	}
}

func textsOf(vs []matcher.Value) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Text)
	}
	return out
}

func TestShapes(t *testing.T) {
	raw := `{"eventSource":"bedrock.amazonaws.com","eventName":"PutResourcePolicy","eventID":"e1"}`
	cases := []struct {
		name   string
		input  string
		shape  Shape
		events int
		ecs    bool
	}{
		{"raw event", raw, ShapeEvent, 1, false},
		{"log file", `{"Records":[` + raw + `,` + raw + `,{"not":"an event"}]}`, ShapeRecords, 2, false},
		{"eventbridge", `{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.bedrock","detail":` + raw + `}`, ShapeEventBridge, 1, false},
		{"tail line", `{"log":` + quote(raw) + `,"stream":"stdout"}`, ShapeEvent, 1, false},
		{"message holding a log file", `{"message":` + quote(`{"Records":[`+raw+`]}`) + `}`, ShapeRecords, 1, false},
		{"ecs nested", `{"event":{"provider":"iam.amazonaws.com","action":"CreateUser"},"data_stream":{"dataset":"aws.cloudtrail"}}`, ShapeECS, 1, true},
		{"ecs dotted", `{"event.provider":"iam.amazonaws.com","event.action":"CreateUser"}`, ShapeECS, 1, true},
		{"firehose delivery", `{"requestId":"r1","timestamp":1,"records":[{"data":"` + base64.StdEncoding.EncodeToString([]byte(raw+"\n"+raw)) + `"},{"data":"bm90IGpzb24="}]}`, ShapeFirehose, 2, false},
		{"not cloudtrail", `{"message":"GET / 200","host":"web-1"}`, ShapeUnknown, 0, false},
		{"string that is not JSON", `{"log":"{not json"}`, ShapeUnknown, 0, false},
		{"empty records", `{"Records":[]}`, ShapeUnknown, 0, false},
		{"array", `[1,2]`, ShapeUnknown, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := doc.ParseJSON([]byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			shape := Split(n, func(ev *doc.Node, ecs bool) {
				count++
				if ecs != tc.ecs {
					t.Errorf("ecs = %v, want %v", ecs, tc.ecs)
				}
			}, nil)
			if shape != tc.shape || count != tc.events {
				t.Errorf("shape %v with %d events, want %v with %d", shape, count, tc.shape, tc.events)
			}
		})
	}
}

func quote(s string) string {
	b := doc.Node{Kind: doc.String, Str: s}
	return string(b.AppendJSON(nil))
}

func TestECSDocumentFields(t *testing.T) {
	n, _ := doc.ParseJSON([]byte(`{"event":{"provider":"iam.amazonaws.com","action":["A","B"]},"user.name":"x","aws":{"cloudtrail.flattened":{"request_parameters":{"k":1}}}}`))
	ev := NewECSEvent(n, time.Now())
	s := NewSchema()
	if got := textsOf(ev.Values(s.Field("event.action"))); !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Errorf("event.action %q", got)
	}
	if got := textsOf(ev.Values(s.Field("user.name"))); !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("user.name %q", got)
	}
	if got := textsOf(ev.Values(s.Field("aws.cloudtrail.flattened.request_parameters.k"))); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("flattened key %q", got)
	}
}

// TestCorpusFieldsResolve checks that every field the runnable rules of the
// corpus read has a derivation (or is one of the enrichment fields that
// need a database).
func TestCorpusFieldsResolve(t *testing.T) {
	known := map[string]bool{}
	for _, f := range ResolvedFields() {
		known[f] = true
	}
	s := NewSchema()
	for _, name := range []string{
		"aws.cloudtrail.flattened.request_parameters.instanceId", "source.as.number", "source.geo.country_iso_code",
	} {
		f := s.Field(name)
		if f.FlattenedRoot == "" && !strings.HasPrefix(name, "source.") && !known[name] {
			t.Errorf("no derivation for %s", name)
		}
	}
}

// TestFlattenedAndTextLimits checks, on records read as trees and in place,
// what Elasticsearch's mappings make of payloads: a keyed flattened
// subfield holds only the leaves at its own path, the flattened copy is
// kept below 32,766 UTF-16 code units of text (not bytes), and the
// additional_eventdata text field has the default ignore_above of 1024.
func TestFlattenedAndTextLimits(t *testing.T) {
	wide := strings.Repeat("日", 12000) // 36,000 bytes, 12,000 UTF-16 units
	cases := []struct {
		name, record string
		want         map[string][]string // nil: absent
	}{
		{"object at the key", `{"eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress",
			"requestParameters":{"groupId":"sg-1","ipPermissions":{"items":[{"fromPort":"22","ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}}`,
			map[string][]string{
				"aws.cloudtrail.flattened.request_parameters.ipPermissions":                             nil,
				"aws.cloudtrail.flattened.request_parameters.ipPermissions.items":                       nil,
				"aws.cloudtrail.flattened.request_parameters.ipPermissions.items.fromPort":              {"22"},
				"aws.cloudtrail.flattened.request_parameters.ipPermissions.items.ipRanges.items.cidrIp": {"0.0.0.0/0"},
				"aws.cloudtrail.flattened.request_parameters.groupId":                                   {"sg-1"},
				"aws.cloudtrail.flattened.request_parameters":                                           {"sg-1", "22", "0.0.0.0/0"},
			}},
		{"array of scalars and objects", `{"eventSource":"s3.amazonaws.com","eventName":"PutObject",
			"requestParameters":{"k":["a",{"x":"b"},["c"]]}}`,
			map[string][]string{
				"aws.cloudtrail.flattened.request_parameters.k":   {"a", "c"},
				"aws.cloudtrail.flattened.request_parameters.k.x": {"b"},
			}},
		{"wide characters under the limit", `{"eventSource":"s3.amazonaws.com","eventName":"PutObject",
			"requestParameters":{"key":"k1","description":"` + wide + `"}}`,
			map[string][]string{"aws.cloudtrail.flattened.request_parameters.key": {"k1"}},
		},
		{"supplementary characters count twice", `{"eventSource":"s3.amazonaws.com","eventName":"PutObject",
			"requestParameters":{"key":"k1","description":"` + strings.Repeat("\U0001F600", 16400) + `"}}`,
			map[string][]string{"aws.cloudtrail.flattened.request_parameters.key": nil}, // 16,400 characters, 32,800 units
		},
		{"ASCII over the limit", `{"eventSource":"s3.amazonaws.com","eventName":"PutObject",
			"requestParameters":{"key":"k1","description":"` + strings.Repeat("x", 33000) + `"}}`,
			map[string][]string{"aws.cloudtrail.flattened.request_parameters.key": nil},
		},
		{"additional_eventdata above 1024", `{"eventSource":"s3.amazonaws.com","eventName":"PutObject",
			"additionalEventData":{"note":"` + strings.Repeat("y", 1100) + `"}}`,
			map[string][]string{"aws.cloudtrail.additional_eventdata": nil},
		},
		{"additional_eventdata below 1024", `{"eventSource":"s3.amazonaws.com","eventName":"PutObject",
			"additionalEventData":{"note":"y"}}`,
			map[string][]string{"aws.cloudtrail.additional_eventdata": {"{note=y}"}},
		},
	}
	s := NewSchema()
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree, err := doc.ParseJSON([]byte(c.record))
			if err != nil {
				t.Fatal(err)
			}
			var m any
			if err := json.Unmarshal([]byte(c.record), &m); err != nil {
				t.Fatal(err)
			}
			mp, err := msgp.AppendIntf(nil, m) // members in map order: values compared sorted
			if err != nil {
				t.Fatal(err)
			}
			var inPlace Event
			inPlace.ResetMsgpack(mp, at, nil)
			for name, want := range c.want {
				q, err := kql.Compile(s, name+": *")
				if err != nil {
					t.Fatal(err)
				}
				for how, ev := range map[string]*Event{"tree": NewEvent(tree, at, nil), "in place": &inPlace} {
					f := s.Field(name)
					got := textsOf(ev.Values(f))
					if f.Type == matcher.Keyword && f.IgnoreAbove > 0 {
						got = nil // what a query sees: values within ignore_above
						for _, v := range ev.Values(f) {
							if matcher.Searchable(f, &v) {
								got = append(got, v.Text)
							}
						}
					}
					slices.Sort(got)
					want := slices.Sorted(slices.Values(want))
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s, %s: %q, want %q", how, name, got, want)
					}
					if m := q.Match(ev); m != (want != nil) {
						t.Errorf("%s, %s: *: %v, want %v", how, name, m, want != nil)
					}
				}
			}
		})
	}
}
