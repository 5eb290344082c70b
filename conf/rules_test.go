package conf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/matcher"
)

// corpus is Elastic's AWS CloudTrail rule set, beside the project.
const corpus = "../../shared/detection-rules/aws"

func TestElasticCorpusLoads(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("skipping: Elastic's rule corpus is not at %s (it lives in ../shared beside the project): %v", corpus, err)
	}
	rs, err := LoadRules(cloudtrail.NewSchema(), corpus)
	if err != nil {
		t.Fatalf("the corpus must load without errors: %v", err)
	}
	if len(rs.Rules) != 197 {
		t.Errorf("loaded %d rules, want 197", len(rs.Rules))
	}
	byType := map[string]int{}
	kql := 0
	for _, r := range rs.Rules {
		byType[r.Type]++
		if r.Language == "kuery" {
			kql++
			if r.Compiled == nil {
				t.Errorf("%s: KQL query did not compile", r.File)
			}
		}
		if !r.Runs() {
			t.Errorf("%s: type %s runs=%v (skip %q)", r.File, r.Type, r.Runs(), r.Skip)
		}
		if !r.Runs() && r.Skip == "" {
			t.Errorf("%s: skipped without a reason", r.File)
		}
	}
	want := map[string]int{"query": 90, "new_terms": 49, "eql": 28, "esql": 25, "threshold": 5}
	for typ, n := range want {
		if byType[typ] != n {
			t.Errorf("%d %s rules, want %d", byType[typ], typ, n)
		}
	}
	if kql != 144 {
		t.Errorf("%d KQL rules compiled, want 144", kql)
	}
	if n := len(rs.Runnable()); n != 197 {
		t.Errorf("%d runnable rules, want all 197", n)
	}
	for _, r := range rs.Runnable() {
		if r.Type == "threshold" && (r.ThresholdSpec == nil || r.ThresholdSpec.Value < 1 || r.FromDur != 6*time.Minute) {
			t.Errorf("%s: threshold parameters not loaded: %+v from %v", r.File, r.ThresholdSpec, r.FromDur)
		}
		if r.Type == "new_terms" && (r.NewTerms == nil || r.NewTerms.Window <= 0 || len(r.NewTerms.Fields) == 0) {
			t.Errorf("%s: new_terms parameters not loaded: %+v", r.File, r.NewTerms)
		}
	}
}

func TestSeedRules(t *testing.T) {
	rs, err := LoadRules(cloudtrail.NewSchema(), "rules")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Runnable()) != 2 {
		t.Fatalf("%d runnable seed rules, want 2", len(rs.Runnable()))
	}
	var nt *Rule
	for _, r := range rs.Rules {
		if r.Type == "new_terms" {
			nt = r
		}
	}
	if nt == nil {
		t.Fatal("no new_terms seed rule")
	}
	if got := strings.Join(nt.NewTerms.Fields, ","); got != "aws.cloudtrail.user_identity.arn" {
		t.Errorf("new_terms fields %q", got)
	}
	if nt.NewTerms.Window.Hours() != 7*24 || nt.TimestampOverride != "event.ingested" || nt.RiskScore != 47 || nt.Severity != "medium" {
		t.Errorf("seed rule metadata: %+v", nt)
	}
	if len(nt.Threat) != 1 || nt.Threat[0].Tactic.ID != "TA0003" || nt.Threat[0].Technique[0].ID != "T1098" {
		t.Errorf("threat: %+v", nt.Threat)
	}
	pins, ok := nt.Compiled.Pins()
	if !ok || len(pins) != 2 || pins[0] != (matcher.Pin{Provider: "bedrock.amazonaws.com", Action: "DeleteResourcePolicy"}) {
		t.Errorf("pins %v %v", pins, ok)
	}
}

// TestEveryErrorReportedWithPlace loads a folder of broken rules and expects
// each problem, with its file, line and column.
func TestEveryErrorReportedWithPlace(t *testing.T) {
	_, err := LoadRules(cloudtrail.NewSchema(), "../testdata/rules/bad")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	want := []string{
		"bad_newterms.toml:1: rule \"Bad new terms\": severity \"urgent\"",
		"bad_newterms.toml:1: rule \"Bad new terms\": new_terms_fields has 4 fields",
		"bad_newterms.toml:1: rule \"Bad new terms\": history_window_start \"last week\"",
		"bad_query.toml:11:1: rule \"Bad query\": query: expected a value for event.action",
		"bad_rule_id.toml:1: rule \"Bad rule id\": rule_id \"line\\nbreak\" has a control character",
		"broken_toml.toml:5:",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("errors do not contain %q:\n%s", w, got)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(errs), len(want), got)
	}
}

func TestKibanaExport(t *testing.T) {
	rs, err := LoadRules(cloudtrail.NewSchema(), "../testdata/rules/export")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("want 2 errors (broken query on line 3, non-JSON line 4), got %v", err)
	}
	if !strings.Contains(errs[0].Error(), "rules_export.ndjson:3: rule \"Exported broken query\"") ||
		!strings.Contains(errs[1].Error(), "rules_export.ndjson:4: not a rule object") {
		t.Errorf("errors: %v", err)
	}
	if len(rs.Rules) != 3 {
		t.Fatalf("%d rules, want 3 (the summary line is not a rule)", len(rs.Rules))
	}
	r := rs.Rules[0]
	if !r.Runs() || r.Type != "new_terms" || r.Version != 3 || r.MaxSignals != 50 || r.Interval != "10m" {
		t.Errorf("rule: %+v", r)
	}
	if strings.Join(r.NewTerms.Fields, ",") != "aws.cloudtrail.user_identity.arn,source.ip" || r.NewTerms.Window.Hours() != 240 {
		t.Errorf("new terms: %+v", r.NewTerms)
	}
	if r.AlertSuppression == nil || r.AlertSuppression.Duration.Value != 5 || r.AlertSuppression.GroupBy[0] != "user.name" {
		t.Errorf("alert suppression: %+v", r.AlertSuppression)
	}
	if r.Threat[0].Technique[0].Subtechnique[0].ID != "T1098.001" {
		t.Errorf("threat: %+v", r.Threat)
	}
	if eql := rs.Rules[1]; !eql.Runs() || eql.Language != "eql" || eql.Compiled == nil || eql.Sequence != nil {
		t.Errorf("EQL rule: runs=%v skip=%q language %q", eql.Runs(), eql.Skip, eql.Language)
	}
}

func TestPathsAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	seed, err := os.ReadFile("rules/bedrock_foundation_model_access_granted.toml")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "b", "one.toml"), seed, 0o644)
	os.WriteFile(filepath.Join(dir, "two.toml"), seed, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	rs, err := LoadRules(cloudtrail.NewSchema(), dir, filepath.Join(dir, "two.toml"))
	if err == nil || !strings.Contains(err.Error(), "is also used by") {
		t.Fatalf("duplicate rule_id across files: err = %v", err)
	}
	if len(rs.Rules) != 2 {
		t.Errorf("%d rules: the same file named twice must load once, nested folders must be walked", len(rs.Rules))
	}
	if _, err := LoadRules(cloudtrail.NewSchema(), filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing path: %v", err)
	}
	if _, err := LoadRules(cloudtrail.NewSchema()); err == nil {
		t.Error("no path: no error")
	}
}

// TestTOMLNesting: brackets in strings and comments do not count; the
// bracket that goes one level too deep is placed.
func TestTOMLNesting(t *testing.T) {
	deep := strings.Repeat("[", MaxTOMLNesting)
	cases := []struct {
		text      string
		line, col int
	}{
		{"a = " + deep + strings.Repeat("]", MaxTOMLNesting), 0, 0},
		{"a = '" + deep + "['\n# " + deep + "[\nb = \"\\\"" + deep + "[\"", 0, 0},
		{"q = '''\n" + deep + "['''\nr = \"\"\"\n\\\"\"\"" + deep + "[\"\"\"\"\"", 0, 0},
		{"[t]\n[[u]]\nx = " + deep + "[", 3, 69},
		{"x = [\n  # ]]]]\n  " + strings.Repeat("{a = ", MaxTOMLNesting) + "1 }", 3, 3 + 5*(MaxTOMLNesting-1)},
		{"x = \"unterminated\ny = " + deep + "[", 2, 69},
	}
	for _, tc := range cases {
		line, col, err := CheckTOMLNesting([]byte(tc.text))
		if line != tc.line || col != tc.col || (err != nil) != (tc.line != 0) {
			t.Errorf("%.40q: %d:%d %v, want %d:%d", tc.text, line, col, err, tc.line, tc.col)
		}
	}
}

// TestNamesMustBeUTF8: a rule name that is not UTF-8 (a JSON reader keeps
// the stray byte) made every metrics scrape fail, and the collector's
// panic left the batches' lock held: every later batch waited for ever.
// Such names and ids are refused at load, with the place.
func TestNamesMustBeUTF8(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.ndjson")
	line := "{\"rule_id\":\"r\xff1\",\"name\":\"Bad\xffname\",\"type\":\"query\",\"language\":\"kuery\",\"query\":\"event.provider: x\",\"severity\":\"low\",\"risk_score\":1}\n"
	if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRules(cloudtrail.NewSchema(), p)
	if err == nil || !strings.Contains(err.Error(), "r.ndjson:1:") || !strings.Contains(err.Error(), "name \"Bad\\xffname\" is not valid UTF-8") ||
		!strings.Contains(err.Error(), "rule_id \"r\\xff1\" is not valid UTF-8") {
		t.Errorf("err = %v, want the name and rule_id refused with the place", err)
	}
}
