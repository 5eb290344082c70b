package conf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/cloudtrail"
)

func fuzzLoad(t *testing.T, name string, data []byte) {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRules(cloudtrail.NewSchema(), p)
	var es Errors
	if err != nil && !errors.As(err, &es) {
		t.Fatalf("error of type %T: %v", err, err)
	}
	for _, e := range es {
		if e.File != p {
			t.Fatalf("error without its file: %v", e)
		}
	}
}

// FuzzLoadTOML: any detection-rules TOML file: no panic, every error placed.
func FuzzLoadTOML(f *testing.F) {
	for _, p := range []string{"rules/bedrock_resource_policy_modified_or_deleted.toml", "../testdata/rules/bad/bad_query.toml", "../testdata/rules/bad/broken_toml.toml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Deep nesting: arrays, inline tables, and brackets inside strings.
	f.Add([]byte("[rule]\nx = " + strings.Repeat("[", 300) + strings.Repeat("]", 300)))
	f.Add([]byte("[rule]\nx = " + strings.Repeat("{a = ", 300) + "1" + strings.Repeat("}", 300)))
	f.Add([]byte("[rule]\nquery = '''" + strings.Repeat("[{", 300) + "'''\n# " + strings.Repeat("[", 300)))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzLoad(t, "rule.toml", data) })
}

// FuzzLoadNDJSON: any Kibana export: no panic, every error placed.
func FuzzLoadNDJSON(f *testing.F) {
	b, err := os.ReadFile("../testdata/rules/export/rules_export.ndjson")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`[{"rule_id":"x","name":"n","type":"query","query":"a:b"}]`))
	f.Add([]byte(`{"rule_id":"x","threshold":` + strings.Repeat(`{"a":[`, 300) + strings.Repeat(`]}`, 300) + `}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzLoad(t, "rules.ndjson", data) })
}
