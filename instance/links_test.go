package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRulesThroughLinks: a Kubernetes ConfigMap mounted as the rules
// folder is a folder of links (rule.toml -> ..data/rule.toml, ..data -> a
// folder swapped on each update), often itself reached through a link.
// A folder given as a link failed the start ("no rule files"), and an
// update was never seen: the links' own size and time never change.
func TestRulesThroughLinks(t *testing.T) {
	cm := t.TempDir()
	version := func(name, action string) {
		dir := filepath.Join(cm, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		writeRule(t, dir, action, 100, "")
		tmp := filepath.Join(cm, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(cm, "..data")); err != nil { // as the kubelet swaps it
			t.Fatal(err)
		}
	}
	version("..2026_12_03_a", "PutUseCaseForModelAccess")
	if err := os.Symlink(filepath.Join("..data", "rule.toml"), filepath.Join(cm, "rule.toml")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "rules")
	if err := os.Symlink(cm, link); err != nil {
		t.Fatal(err)
	}
	in, _, logs := open(t, map[string]string{"rules": link, "rules_watch": "20ms"})
	if n := len(in.eng.Load().Rules()); n != 1 {
		t.Fatalf("%d rules running, want 1", n)
	}
	time.Sleep(100 * time.Millisecond)
	version("..2026_12_03_b", "CreateFoundationModelAgreement")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "rules reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("the ConfigMap's update was not reloaded:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
