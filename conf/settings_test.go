package conf

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryProperty keeps the README's property table in step
// with the settings the plugin reads.
func TestREADMEListsEveryProperty(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Properties {
		d := p.Default
		if d == "" {
			d = "(none)"
		}
		row := "| `" + p.Name + "` | " + d + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row for %s (%q)", p.Name, row)
		}
	}
}

func TestParseSettingsDefaults(t *testing.T) {
	s, err := ParseSettings(func(k string) string {
		return map[string]string{"rules": " a, b ,", "alert_stdout": "On", "learning_period": "7d"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Rules, "|") != "a|b" || !s.AlertStdout || s.DB != "trailwatch.db" || s.TimeSource != "ingested" ||
		s.OutboxMax != 100000 || s.LearningPeriod.Hours() != 168 || s.AlertTag != "alert.trailwatch" {
		t.Errorf("settings %+v", s)
	}
}

// TestAlertTagChecked: the tag template may hold {rule_id} and {rule_name}
// and nothing else in braces, and no spaces.
func TestAlertTagChecked(t *testing.T) {
	parse := func(tag string) error {
		_, err := ParseSettings(func(k string) string {
			return map[string]string{"rules": "r", "alert_stdout": "on", "alert_tag": tag}[k]
		})
		return err
	}
	for _, bad := range []string{"alert.{rule}", "a b", "{"} {
		if err := parse(bad); err == nil || !strings.Contains(err.Error(), "alert_tag") {
			t.Errorf("template %q: %v", bad, err)
		}
	}
	for _, good := range []string{"alert.trailwatch", "alert.{rule_id}", "alert.trailwatch.{rule_name}"} {
		if err := parse(good); err != nil {
			t.Errorf("template %q refused: %v", good, err)
		}
	}
}

// TestTimerFloors: rules_watch and prune_interval took 1ns, a folder walk
// or a write transaction in a loop. They have floors, named in the error.
func TestTimerFloors(t *testing.T) {
	parse := func(k, v string) error {
		_, err := ParseSettings(func(key string) string {
			return map[string]string{"rules": "r", "alert_stdout": "on", k: v}[key]
		})
		return err
	}
	for _, c := range []struct{ k, v, want string }{
		{"rules_watch", "1ns", "property rules_watch = \"1ns\": expected at least 10ms"},
		{"prune_interval", "10ms", "property prune_interval = \"10ms\": expected at least 1s"},
	} {
		if err := parse(c.k, c.v); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %s: %v", c.k, c.v, err)
		}
	}
	for _, c := range [][2]string{{"rules_watch", "0"}, {"rules_watch", "10ms"}, {"prune_interval", "1s"}} {
		if err := parse(c[0], c[1]); err != nil {
			t.Errorf("%s = %s refused: %v", c[0], c[1], err)
		}
	}
}
