package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/engine"
)

// TestAttachReloadedWithExceptionFiles: in the plugin and serve, a Kibana
// list loaded but attached to no rule is logged as a warning naming it and
// its file; an [[attach]] written into a watched exception file is loaded
// between batches like any exception edit, and the list then excepts; an
// [[attach]] naming an unknown rule_id is refused with its place and the
// running set kept.
func TestAttachReloadedWithExceptionFiles(t *testing.T) {
	dir := t.TempDir()
	rules := writeRule(t, dir, "PutFoundationModelEntitlement", 1000, "")
	export, attach := filepath.Join(dir, "iac.ndjson"), filepath.Join(dir, "attach.toml")
	os.WriteFile(export, []byte(`{"list_id":"iac","type":"detection","name":"IaC","namespace_type":"single"}
{"item_id":"tf","list_id":"iac","type":"simple","name":"Terraform","namespace_type":"single","entries":[{"field":"user.name","operator":"included","type":"match","value":"terraform"}]}
`), 0o600)
	os.WriteFile(attach, []byte("# no attachment yet\n"), 0o600)
	in, _, logs := open(t, map[string]string{"rules": rules, "exceptions": export + "," + attach, "rules_watch": "20ms"})
	waitLog := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if strings.Contains(logs.String(), want) {
				return
			}
		}
		t.Fatalf("log lacks %q:\n%s", want, logs.String())
	}
	waitLog("[ warn] [output:trailwatch:test] exceptions: " + export + `:1: exception list "iac" is attached to no running rule`)
	id := 0
	excepted := func() int {
		t.Helper()
		id++
		res, err := in.Process([]engine.Record{record(t, id, "PutFoundationModelEntitlement", "arn:aws:sts::1:assumed-role/terraform/x", "terraform")})
		if err != nil {
			t.Fatal(err)
		}
		if n := res.Stats.Excepted["Bedrock model access"]; n+len(res.Alerts) != 1 {
			t.Fatalf("%d excepted and %d alerts for one matching record", n, len(res.Alerts))
		}
		return res.Stats.Excepted["Bedrock model access"]
	}
	if excepted() != 0 {
		t.Error("the unattached list excepts")
	}
	os.WriteFile(attach, []byte("[[attach]]\nlist_id = \"iac\"\nrule_id = [\"10000000-0000-0000-0000-000000000001\"]\n"), 0o600)
	waitLog("rules reloaded: 1 running")
	if excepted() != 1 {
		t.Error("the attached list does not except after the reload")
	}
	os.WriteFile(attach, []byte("[[attach]]\nlist_id = \"iac\"\n\nrule_id = \"no-such-rule\"\n"), 0o600)
	waitLog("reload refused, keeping the running rules: property exceptions: " + attach + `:4: [[attach]] rule_id "no-such-rule": no rule of the rule set has that rule_id`)
	if excepted() != 1 {
		t.Error("the running attachment was dropped by a refused reload")
	}
}
