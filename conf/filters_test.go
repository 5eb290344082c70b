package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

// TestRuleFiltersAsKibana: a rule's filters (query DSL beside its query, as
// Kibana's UI writes them) were passed over without a word, so a rule
// whose filter leaves out a noisy identity alerted on it. They are ANDed
// with the query as Kibana's detection engine adds them to its search;
// DSL trailwatch does not read is an error with the rule's place.
func TestRuleFiltersAsKibana(t *testing.T) {
	rule := func(filters string) string {
		return `[rule]
name = "f"
rule_id = "f-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
query = 'event.provider: "bedrock.amazonaws.com"'
` + filters
	}
	ev := func(user, region string) *cloudtrail.Event {
		n, err := doc.ParseJSON([]byte(`{"eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","awsRegion":"` + region + `","userIdentity":{"type":"IAMUser","userName":"` + user + `"}}`))
		if err != nil {
			t.Fatal(err)
		}
		e := &cloudtrail.Event{}
		e.Reset(n, nil, time.Now(), nil)
		return e
	}
	for _, c := range []struct {
		name, filters string
		alice, bob    bool // whether the rule matches each
	}{
		{"none", ``, true, true},
		{"negated phrase", `
[[rule.filters]]
[rule.filters.meta]
negate = true
[rule.filters.query.match_phrase]
"user.name" = "alice"
`, false, true},
		{"disabled", `
[[rule.filters]]
[rule.filters.meta]
negate = true
disabled = true
[rule.filters.query.match_phrase]
"user.name" = "alice"
`, true, true},
		{"phrases", `
[[rule.filters]]
[rule.filters.meta]
negate = false
[rule.filters.query.bool]
minimum_should_match = 1
[[rule.filters.query.bool.should]]
[rule.filters.query.bool.should.match_phrase]
"user.name" = "bob"
[[rule.filters.query.bool.should]]
[rule.filters.query.bool.should.match_phrase]
"user.name" = "carol"
`, false, true},
		{"exists and match of type phrase, legacy layout", `
[[rule.filters]]
[rule.filters.exists]
field = "user.name"
[[rule.filters]]
[rule.filters.match."cloud.region"]
query = "eu-west-1"
type = "phrase"
`, false, true},
	} {
		rs, err := LoadRules(cloudtrail.NewSchema(), writeFiles(t, map[string]string{"r.toml": rule(c.filters)})["r.toml"])
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		q := rs.Rules[0].Compiled
		if got := q.Match(ev("alice", "us-east-1")); got != c.alice {
			t.Errorf("%s: alice %v, want %v (%s)", c.name, got, c.alice, q.Source)
		}
		if got := q.Match(ev("bob", "eu-west-1")); got != c.bob {
			t.Errorf("%s: bob %v, want %v (%s)", c.name, got, c.bob, q.Source)
		}
	}
	for _, c := range []struct{ filters, want string }{
		{"\n[[rule.filters]]\n[rule.filters.query.query_string]\nquery = \"x\"\n", `filters[0]: query DSL "query_string" is not read`},
		{"\n[[rule.filters]]\n[rule.filters.query.match]\n\"user.name\" = \"alice\"\n", `only type phrase is read`},
	} {
		p := writeFiles(t, map[string]string{"r.toml": rule(c.filters)})["r.toml"]
		if _, err := LoadRules(cloudtrail.NewSchema(), p); err == nil || !strings.Contains(err.Error(), p+`:1: rule "f": filters[0]`) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q with the place", c.filters, err, c.want)
		}
	}
	eqlRule := strings.Replace(strings.Replace(rule("\n[[rule.filters]]\n[rule.filters.exists]\nfield = \"user.name\"\n"), `type = "query"`, `type = "eql"`, 1), `language = "kuery"`, `language = "eql"`, 1)
	eqlRule = strings.Replace(eqlRule, `query = 'event.provider: "bedrock.amazonaws.com"'`, `query = 'any where event.provider == "bedrock.amazonaws.com"'`, 1)
	if _, err := LoadRules(cloudtrail.NewSchema(), writeFiles(t, map[string]string{"r.toml": eqlRule})["r.toml"]); err == nil || !strings.Contains(err.Error(), "filters: read on KQL rules only") {
		t.Errorf("an EQL rule's filters: %v", err)
	}
}

// TestUnknownRuleKeyNoted: a key Elastic's rule format does not have (a
// misspelled max_signals) changed nothing without a word; it is noted with
// its line. Keys of the format trailwatch reads nothing from are not.
func TestUnknownRuleKeyNoted(t *testing.T) {
	p := writeFiles(t, map[string]string{"r.toml": `[rule]
name = "k"
rule_id = "k-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
note = "analyst notes"
setup = "how to"
max_signal = 10
query = 'event.provider: "bedrock.amazonaws.com"'
[rule.investigation_fields]
field_names = ["user.name"]
`})["r.toml"]
	rs, err := LoadRules(cloudtrail.NewSchema(), p)
	if err != nil {
		t.Fatal(err)
	}
	notes := rs.Rules[0].Notes
	if len(notes) != 1 || !strings.Contains(notes[0].Error(), p+`:10: rule "k": [rule] key "max_signal" is none of the keys`) {
		t.Errorf("notes %v", notes)
	}
}
