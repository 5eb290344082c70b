package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// terraformARN is the identity the Kibana list excepts.
const terraformARN = "arn:aws:iam::111122223333:user/terraform"

// writeExceptionFiles writes a Kibana exception-list export whose one list,
// "iac", has one item excepting terraformARN, and a trailwatch TOML that
// attaches the list to every rule.
func writeExceptionFiles(t *testing.T) (export, attach string) {
	t.Helper()
	dir := t.TempDir()
	export, attach = filepath.Join(dir, "iac.ndjson"), filepath.Join(dir, "attach.toml")
	if err := os.WriteFile(export, []byte(`{"list_id":"iac","type":"detection","name":"IaC identities","namespace_type":"single","description":"infrastructure-as-code"}
{"item_id":"terraform","list_id":"iac","type":"simple","name":"Terraform deployer","namespace_type":"single","entries":[{"field":"aws.cloudtrail.user_identity.arn","operator":"included","type":"match","value":"`+terraformARN+`"}]}
{"exported_exception_list_count":1,"exported_exception_list_item_count":1,"missing_exception_list_item_count":0}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(attach, []byte("[[attach]]\nlist_id = \"iac\"\nrule_id = \"*\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return export, attach
}

// alertKeys names each alert by rule, action and id: the same records
// alerting the same way give the same keys.
func alertKeys(alerts []alertOut) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, a.RuleID[:8]+":"+a.Event.Action+":"+a.UUID)
	}
	slices.Sort(out)
	return out
}

// TestAttachedKibanaListExceptsOnSeedRules: the bundled seed rules,
// unmodified, and a Kibana export whose one list excepts one user's ARN.
// Attached to every rule by [[attach]], the list excepts that user's
// records: they neither alert nor count as new_terms history, and everyone
// else's alerts are the same as with no exceptions. Without the [[attach]]
// no record is excepted, and the list is named in a warning with its file.
func TestAttachedKibanaListExceptsOnSeedRules(t *testing.T) {
	const b = "bedrock.amazonaws.com"
	alice, bob := "arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/bob"
	records := writeNDJSON(t, []map[string]any{
		event(1, b, "PutResourcePolicy", terraformARN, false),
		event(2, b, "PutResourcePolicy", alice, false),
		event(3, b, "DeleteResourcePolicy", terraformARN, false),
		event(4, b, "DeleteResourcePolicy", bob, false),
		event(5, b, "PutFoundationModelEntitlement", terraformARN, false),
		event(6, b, "CreateFoundationModelAgreement", alice, false),
	})
	export, attach := writeExceptionFiles(t)

	base, stderr, code := scan(t, records)
	if code != 0 || len(base) != 5 {
		t.Fatalf("no exceptions: exit %d, %d alerts (want 3 new terms and 2 model access): %s", code, len(base), stderr)
	}
	var others []alertOut
	for _, a := range base {
		if !slices.Contains(a.NewTerms, terraformARN) && a.Event.Action != "PutFoundationModelEntitlement" {
			others = append(others, a)
		}
	}

	// Attached: terraform's three records are excepted, the others alert
	// exactly as before (same alert ids).
	db := filepath.Join(t.TempDir(), "state.db")
	got, stderr, code := scan(t, "--db", db, "--exceptions", export+","+attach, records)
	if code != 0 {
		t.Fatalf("attached: exit %d: %s", code, stderr)
	}
	if k, want := alertKeys(got), alertKeys(others); !slices.Equal(k, want) || len(k) != 3 {
		t.Errorf("attached: alerts\n got %v\nwant %v", k, want)
	}
	for _, want := range []string{`rule "AWS Bedrock Resource-Based Policy Modified or Deleted": 2 records excepted`,
		`rule "AWS Bedrock Foundation Model Access Enabled or Entitlement Granted": 1 record excepted`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("attached: summary lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("attached: a warning:\n%s", stderr)
	}
	// The history holds alice and bob, not terraform.
	terms := filepath.Join(t.TempDir(), "terms.ndjson")
	var out, errb bytes.Buffer
	if code := run([]string{"db", "export", "--db", db, "--out", terms}, nil, &out, &errb); code != 0 {
		t.Fatalf("db export: exit %d: %s", code, errb.String())
	}
	data, err := os.ReadFile(terms)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var term struct {
			RuleID string   `json:"rule_id"`
			Values []string `json:"values"`
		}
		if err := json.Unmarshal([]byte(l), &term); err != nil {
			t.Fatalf("db export line %q: %v", l, err)
		}
		values = append(values, term.RuleID+" "+strings.Join(term.Values, ","))
	}
	slices.Sort(values)
	if want := []string{policyRuleID + " " + alice, policyRuleID + " " + bob}; !slices.Equal(values, want) {
		t.Errorf("history after the attached scan\n got %v\nwant %v", values, want)
	}
	// So, on the same state without exceptions, terraform's next policy
	// change is a new term, and alice's is not.
	later := writeNDJSON(t, []map[string]any{event(7, b, "PutResourcePolicy", terraformARN, false), event(8, b, "PutResourcePolicy", alice, false)})
	got, stderr, code = scan(t, "--db", db, later)
	if code != 0 || len(got) != 1 || !slices.Equal(got[0].NewTerms, []string{terraformARN}) {
		t.Errorf("the same state without exceptions: exit %d, alerts %+v, want terraform's new term only: %s", code, got, stderr)
	}

	// Not attached: nothing is excepted, and the list is named with its file.
	got, stderr, code = scan(t, "--exceptions", export, records)
	if code != 0 {
		t.Fatalf("not attached: exit %d: %s", code, stderr)
	}
	if k, want := alertKeys(got), alertKeys(base); !slices.Equal(k, want) {
		t.Errorf("not attached: alerts\n got %v\nwant %v", k, want)
	}
	if strings.Contains(stderr, "excepted") {
		t.Errorf("not attached: records excepted:\n%s", stderr)
	}
	if want := "trailwatch scan: warning: " + export + `:1: exception list "iac" is attached to no running rule, so it excepts nothing`; !strings.Contains(stderr, want) {
		t.Errorf("not attached: stderr lacks %q:\n%s", want, stderr)
	}
}

// TestAttachErrorsStopScan: an [[attach]] naming a rule_id the rule set
// does not hold stops the scan before it reads a record, with the place.
func TestAttachErrorsStopScan(t *testing.T) {
	export, _ := writeExceptionFiles(t)
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[[attach]]\nlist_id = \"iac\"\n\nrule_id = [\"no-such-rule\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alerts, stderr, code := scan(t, "--exceptions", export+","+bad, writeNDJSON(t, []map[string]any{event(1, "bedrock.amazonaws.com", "PutResourcePolicy", terraformARN, false)}))
	if want := bad + `:4: [[attach]] rule_id "no-such-rule": no rule of the rule set has that rule_id`; code != 2 || len(alerts) != 0 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, %d alerts, stderr lacks %q:\n%s", code, len(alerts), want, stderr)
	}
}

// TestRulesShowsExceptions: trailwatch rules --exceptions shows, for each
// rule, the Kibana lists (with their file and how they are attached) and
// the local exceptions that apply to it, and warns of a list attached to
// no rule.
func TestRulesShowsExceptions(t *testing.T) {
	export, attach := writeExceptionFiles(t)
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "--exceptions", export + "," + attach + ",../../conf/exceptions/example.toml", "../../conf/rules"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"EXCEPTIONS",
		"Entitlement Granted  aed4b9d5-f853-40cf-8489-4fdcff03e272  query      runs    iac  ",
		"Modified or Deleted               " + policyRuleID + "  new_terms  runs    iac,1 local  ",
		"exceptions that apply:\n  AWS Bedrock Foundation Model Access Enabled or Entitlement Granted (aed4b9d5-f853-40cf-8489-4fdcff03e272):\n" +
			`    list "iac" (IaC identities): 1 item from ` + export + ":1, attached at " + attach + ":2\n" +
			"  AWS Bedrock Resource-Based Policy Modified or Deleted (" + policyRuleID + "):\n" +
			`    list "iac" (IaC identities): 1 item from ` + export + ":1, attached at " + attach + ":2\n" +
			`    local "terraform-deployer manages Bedrock resource policies" (../../conf/exceptions/example.toml:9)` + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("listing lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "warning") {
		t.Errorf("a warning with the list attached:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"rules", "--exceptions", export, "../../conf/rules"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "warning: " + export + `:1: exception list "iac" is attached to no running rule`; !strings.Contains(out.String(), want) || strings.Contains(out.String(), "exceptions that apply") {
		t.Errorf("without the attachment the listing lacks %q or lists exceptions:\n%s", want, out.String())
	}
	// An attachment to an unknown list is an error with its place; exit 1.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[[attach]]\nlist_id = \"nope\"\nrule_id = \"*\"\n"), 0o600)
	errb.Reset()
	if code := run([]string{"rules", "--exceptions", export + "," + bad, "../../conf/rules"}, nil, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), bad+`:2: [[attach]] list_id "nope": no exception-list export given holds that list (lists loaded: iac)`) {
		t.Errorf("unknown list: exit %d: %s", code, errb.String())
	}
}
