package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestASNRuleFiresWithDatabase: a rule on source.as.organization.name
// cannot fire without an ASN database and does with one, and the alert
// carries the enrichment.
func TestASNRuleFiresWithDatabase(t *testing.T) {
	dir := t.TempDir()
	asn := asnDatabase(t, dir)
	rules := filepath.Join(dir, "rules")
	os.Mkdir(rules, 0o755)
	os.WriteFile(filepath.Join(rules, "asn.toml"), []byte(`[rule]
name = "Bedrock call from a VPN hosting network"
rule_id = "33333333-0000-0000-0000-000000000001"
type = "query"
severity = "high"
risk_score = 73
query = 'event.provider: bedrock.amazonaws.com and source.as.organization.name: *VPN* and source.as.number >= 64500'
`), 0o600)
	events := writeNDJSON(t, []map[string]any{event(1, "bedrock.amazonaws.com", "InvokeModel", "arn:aws:iam::1:user/a", false)})

	var out, errb bytes.Buffer
	run([]string{"rules", rules}, nil, &out, &errb)
	if !strings.Contains(out.String(), "cannot fire without --asn-db") {
		t.Errorf("rules listing does not warn:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"scan", "--rules", rules, events}, strings.NewReader(""), &out, &errb); code != 0 || out.Len() != 0 {
		t.Fatalf("without the database: exit %d, alerts %q", code, out.String())
	}
	if code := run([]string{"scan", "--rules", rules, "--asn-db", asn, events}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("with the database: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"as":{"number":64500,"organization":{"name":"EXAMPLE-VPN-HOSTING"}}`) {
		t.Errorf("alert lacks the ASN fields: %s", out.String())
	}
	errb.Reset()
	if code := run([]string{"scan", "--rules", rules, "--asn-db", filepath.Join(dir, "missing.mmdb"), events}, strings.NewReader(""), &out, &errb); code != 2 || !strings.Contains(errb.String(), "missing.mmdb") {
		t.Errorf("missing database: exit %d: %s", code, errb.String())
	}
}

// asnDatabase writes a GeoLite2-ASN database that maps 198.51.100.0/24 to
// AS 64500, EXAMPLE-VPN-HOSTING.
func asnDatabase(t *testing.T, dir string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 28, IPVersion: 6, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, network, _ := net.ParseCIDR("198.51.100.0/24")
	tree.Insert(network, mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64500), "autonomous_system_organization": mmdbtype.String("EXAMPLE-VPN-HOSTING")})
	asn := filepath.Join(dir, "asn.mmdb")
	f, err := os.Create(asn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return asn
}

// TestGeoFieldsFollowPipelineFailures: the pipeline's geoip processors run
// right after source.ip. A failure after them (a userAgent that is no
// string) keeps their fields in the error document, so a rule on them
// still matches it; a failure before them (a duplicate key in
// requestParameters, the json processor) leaves them out of the document.
// The fields were added after the pipeline: missing from the error
// document rules are held to, present in one Elasticsearch writes without.
func TestGeoFieldsFollowPipelineFailures(t *testing.T) {
	dir := t.TempDir()
	asn := asnDatabase(t, dir)
	rules := filepath.Join(dir, "rules")
	os.Mkdir(rules, 0o755)
	os.WriteFile(filepath.Join(rules, "asn.toml"), []byte(`[rule]
name = "From AS 64500"
rule_id = "33333333-0000-0000-0000-000000000002"
type = "query"
severity = "high"
risk_score = 73
query = 'source.as.number: 64500 or error.message: *Duplicate*'
`), 0o600)
	head := `{"eventVersion":"1.09","eventTime":"2026-11-20T10:00:00Z","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},`
	in := filepath.Join(dir, "in.ndjson")
	os.WriteFile(in, []byte(head+`"eventName":"ListUsers","eventID":"e1","userAgent":{"x":1}}`+"\n"+
		head+`"eventName":"DupKey","eventID":"e2","userAgent":"aws-cli/2","requestParameters":{"a":1,"a":2}}`+"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"scan", "--rules", rules, "--asn-db", asn, in}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d alerts, want 2 (the error document after the geoip step holds source.as):\n%s%s", len(lines), out.String(), errb.String())
	}
	for _, l := range lines {
		has := strings.Contains(l, `"as":{"number":64500`)
		switch {
		case strings.Contains(l, "user_agent_json_userAgent") && !has:
			t.Errorf("failure after the geoip step: the alert lacks source.as: %s", l)
		case strings.Contains(l, "Duplicate") && has:
			t.Errorf("failure before the geoip step: the alert has source.as: %s", l)
		}
	}
}
