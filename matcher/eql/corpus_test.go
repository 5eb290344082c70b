package eql

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
)

// corpus is Elastic's AWS rules, beside the project (../shared).
const corpus = "../../../shared/detection-rules/aws"

// TestCorpusRules parses the query of every EQL rule of Elastic's AWS rules
// and checks that its canonical form parses to the same AST and prints
// unchanged.
func TestCorpusRules(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpus, "*.toml"))
	if len(files) == 0 {
		t.Skipf("needs ../shared: no rules in %s", corpus)
	}
	events, sequences := 0, 0
	for _, file := range files {
		var rule struct {
			Rule struct {
				Language string `toml:"language"`
				Query    string `toml:"query"`
			} `toml:"rule"`
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := toml.Decode(string(data), &rule); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if rule.Rule.Language != "eql" {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			st, err := Parse(rule.Rule.Query)
			if err != nil {
				t.Fatalf("%v\n%s", err, rule.Rule.Query)
			}
			assertRoundTrip(t, st)
			assertPositions(t, rule.Rule.Query, st)
			if len(FieldNames(st)) == 0 {
				t.Fatalf("reads no field: %s", st)
			}
			switch st.Query.(type) {
			case *EventQuery:
				events++
			case *Sequence:
				sequences++
			}
		})
	}
	if events+sequences != 28 || sequences != 1 {
		t.Fatalf("%d single-event queries and %d sequences parsed; issue 19 counts 28 EQL rules, one a sequence", events, sequences)
	}
}

// assertPositions checks that every node's position lies in src and agrees
// with its offset.
func assertPositions(t *testing.T, src string, n Node) {
	t.Helper()
	Inspect(n, func(n Node) bool {
		assertPosConsistent(t, src, n.Position())
		return true
	})
}
