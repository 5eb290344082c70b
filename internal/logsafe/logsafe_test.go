package logsafe

import "testing"

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"rules/bedrock.toml":        "rules/bedrock.toml",
		"cloudtrail.ü":              "cloudtrail.ü",
		"a b":                       "a b",
		"x\n[2026/01/01] [error] y": `"x\n[2026/01/01] [error] y"`,
		"\x1b[31mred":               `"\x1b[31mred"`,
		`say "hi"`:                  `"say \"hi\""`,
		"bad \xff utf-8":            `"bad \xff utf-8"`,
		"nbsp\u00a0":                `"nbsp\u00a0"`,
		"bell\a":                    `"bell\a"`,
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
	}
}
