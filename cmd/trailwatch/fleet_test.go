package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/internal/natstest"
)

// Two scans of the same file share a fleet: the second sends nothing the
// first sent, and says so; a bad fleet flag is refused naming the flag.
func TestScanSharesAFleet(t *testing.T) {
	srv := natstest.Start(t)
	file := writeNDJSON(t, []map[string]any{
		event(1, "bedrock.amazonaws.com", "PutResourcePolicy", "arn:aws:iam::111122223333:user/a", false),
		event(2, "bedrock.amazonaws.com", "PutFoundationModelEntitlement", "arn:aws:iam::111122223333:user/a", false),
	})
	first, _, code := scan(t, "--shared-state", srv.URL(), "--shared-state-timeout", "5s", file)
	if code != 0 || len(first) != 2 {
		t.Fatalf("first scan: exit %d, %d alerts; want 0 and 2", code, len(first))
	}
	second, stderr, code := scan(t, "--shared-state", srv.URL(), "--shared-state-timeout", "5s", file)
	if code != 0 || len(second) != 0 {
		t.Fatalf("second scan: exit %d, %d alerts; want 0 and none", code, len(second))
	}
	if !strings.Contains(stderr, "1 alert already sent by another node of the fleet") {
		t.Errorf("second scan's summary:\n%s", stderr)
	}
	for _, c := range []struct{ args []string }{
		{[]string{"--shared-state", "localhost:4222"}},
		{[]string{"--shared-state", srv.URL(), "--shared-state-prefix", "a.b"}},
		{[]string{"--shared-state", srv.URL(), "--shared-state-creds", filepath.Join(t.TempDir(), "none.creds")}},
	} {
		_, stderr, code := scan(t, append(c.args, file)...)
		flag := c.args[len(c.args)-2]
		if code != 2 || !strings.Contains(stderr, flag+" ") {
			t.Errorf("%v: exit %d, %q; want 2 and the flag %s named", c.args, code, stderr, flag)
		}
	}
}

// `trailwatch rules` marks the rules whose state stays on each node of a
// fleet, with the fields to route their records by.
func TestRulesMarkPerNodeState(t *testing.T) {
	dir := t.TempDir()
	src := `[rule]
name = "brute"
rule_id = "b-1"
type = "threshold"
language = "kuery"
query = "event.provider: signin.amazonaws.com"
[rule.threshold]
field = ["cloud.account.id"]
value = 10
`
	if err := os.WriteFile(filepath.Join(dir, "b.toml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"rules", dir, "../../conf/rules"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		brute := strings.HasPrefix(l, "brute ")
		if brute && !strings.Contains(l, "(per-node state: in a fleet, route by cloud.account.id)") {
			t.Errorf("the threshold rule is not marked: %q", l)
		}
		if !brute && strings.Contains(l, "per-node") {
			t.Errorf("a rule without per-node state is marked: %q", l)
		}
	}
}
