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
