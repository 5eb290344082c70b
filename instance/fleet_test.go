package instance

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/internal/natstest"
)

// Two instances share a fleet: a record both get alerts once; with the
// server stopped the alert goes out on the local verdict, marked
// trailwatch.fleet.unconfirmed; the metrics count claims, conflicts,
// fallbacks and the reconnect, and the log says once that the fleet was
// lost and once that it is back.
func TestInstancesShareAFleet(t *testing.T) {
	srv := natstest.Start(t)
	rule := writeRule(t, t.TempDir(), "PutUseCaseForModelAccess", 100, "")
	props := map[string]string{"rules": rule, "shared_state": srv.URL(), "shared_state_timeout": "5s", "metrics_listen": "127.0.0.1:0"}
	a, aFile, aLog := open(t, props)
	b, bFile, _ := open(t, props)
	rec := record(t, 1, "PutUseCaseForModelAccess", "arn:x", "u")
	ra, err := a.Process([]engine.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Process([]engine.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	if len(ra.Alerts) != 1 || len(rb.Alerts) != 0 || rb.Stats.FleetDuplicates != 1 {
		t.Fatalf("node a %d alerts, node b %d (%d held by the fleet); want 1, 0 and 1", len(ra.Alerts), len(rb.Alerts), rb.Stats.FleetDuplicates)
	}
	srv.Stop()
	for deadline := time.Now().Add(10 * time.Second); a.fleet.Ready() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	ra, err = a.Process([]engine.Record{record(t, 2, "PutUseCaseForModelAccess", "arn:x", "u")})
	if err != nil {
		t.Fatalf("a chunk failed with the fleet gone: %v", err)
	}
	if len(ra.Alerts) != 1 || ra.Stats.Unconfirmed != 1 {
		t.Fatalf("with the fleet gone: %d alerts, %d unconfirmed; want 1 and 1", len(ra.Alerts), ra.Stats.Unconfirmed)
	}
	docs := readAlerts(t, aFile, 2)
	if len(docs) != 2 || docs[0]["trailwatch.fleet.unconfirmed"] != nil || docs[1]["trailwatch.fleet.unconfirmed"] != true {
		t.Fatalf("alert documents: %v", docs)
	}
	srv.Restart()
	for deadline := time.Now().Add(30 * time.Second); (!a.fleet.Ready() || a.fleet.BacklogLen() > 0) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + a.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`trailwatch_fleet_claims_total{kind="alert"} 1`, "trailwatch_fleet_fallbacks_total 1",
		"trailwatch_fleet_reconnects_total 1", "trailwatch_fleet_up 1", "trailwatch_fleet_operations_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("node a's metrics lack %q", want)
		}
	}
	resp, err = http.Get("http://" + b.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `trailwatch_fleet_conflicts_total{kind="alert"} 1`) {
		t.Errorf("node b's metrics lack its conflict:\n%s", body)
	}
	a.Close()
	logs := aLog.String()
	if strings.Count(logs, "fleet lost") != 1 || strings.Count(logs, "fleet back") != 1 || !strings.Contains(logs, "fleet connected") {
		t.Errorf("node a's log:\n%s", logs)
	}
	if docs := readAlerts(t, bFile, 0); len(docs) != 0 {
		t.Errorf("node b sent %d alerts", len(docs))
	}
}

// Bad shared_state files stop the instance at start, naming the property.
func TestSharedStateFilesChecked(t *testing.T) {
	dir := t.TempDir()
	rule := writeRule(t, dir, "PutUseCaseForModelAccess", 100, "")
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("no"), 0o600)
	for _, c := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{"shared_state_creds": filepath.Join(dir, "none.creds")}, "property shared_state_creds " + filepath.Join(dir, "none.creds")},
		{map[string]string{"shared_state_ca": filepath.Join(dir, "none.pem")}, "property shared_state_ca "},
		{map[string]string{"shared_state_cert": bad, "shared_state_key": bad}, "property shared_state_cert " + bad},
	} {
		p := map[string]string{"rules": rule, "db": filepath.Join(t.TempDir(), "state.db"), "alert_stdout": "on", "shared_state": "nats://127.0.0.1:1"}
		for k, v := range c.props {
			p[k] = v
		}
		in, err := Open("test", func(k string) string { return p[k] }, io.Discard)
		if err == nil {
			in.Close()
			t.Errorf("%v: opened", c.props)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.props, err, c.want)
		}
	}
}

// TestReloadRaisesFleetTTL: the fleet's terms bucket kept keys for the
// first rule set's longest new_terms window; a reload to a longer window
// left it there, and terms other nodes saw past it came back as new.
func TestReloadRaisesFleetTTL(t *testing.T) {
	srv := natstest.Start(t)
	src, err := os.ReadFile("../conf/rules/bedrock_resource_policy_modified_or_deleted.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `"now-7d"`) {
		t.Fatal("the bundled new_terms rule no longer has a 7-day window")
	}
	rule := filepath.Join(t.TempDir(), "nt.toml")
	os.WriteFile(rule, src, 0o600)
	in, _, _ := open(t, map[string]string{"rules": rule, "shared_state": srv.URL(), "shared_state_timeout": "5s"})
	ttl := func() time.Duration {
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		tn, _ := in.fleet.Buckets()
		kv, err := js.KeyValue(context.Background(), tn)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.TTL()
	}
	for deadline := time.Now().Add(10 * time.Second); ttl() != 8*24*time.Hour; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the bucket keeps keys %v, want 8 days at start", ttl())
		}
	}
	os.WriteFile(rule, []byte(strings.Replace(string(src), `"now-7d"`, `"now-90d"`, 1)), 0o600)
	if err := in.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := ttl(); got != 91*24*time.Hour {
		t.Errorf("after a reload to a 90-day window the bucket keeps keys %v, want 91 days", got)
	}
}
