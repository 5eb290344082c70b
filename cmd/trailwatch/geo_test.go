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
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 28, IPVersion: 6, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, network, _ := net.ParseCIDR("198.51.100.0/24")
	tree.Insert(network, mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(64500), "autonomous_system_organization": mmdbtype.String("EXAMPLE-VPN-HOSTING")})
	asn := filepath.Join(dir, "asn.mmdb")
	f, _ := os.Create(asn)
	tree.WriteTo(f)
	f.Close()
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
