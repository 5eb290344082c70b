package conf

import (
	"strings"
	"testing"
	"time"
)

// The shared_state settings: each bad value is refused naming its property,
// and a password in the URL never shows in the message.
func TestSharedStateSettings(t *testing.T) {
	parse := func(kv map[string]string) (*Settings, error) {
		return ParseSettings(func(k string) string {
			if k == "rules" {
				return "r"
			}
			if k == "alert_stdout" {
				return "on"
			}
			return kv[k]
		})
	}
	s, err := parse(map[string]string{"shared_state": "nats://a:4222, tls://b:4222"})
	if err != nil {
		t.Fatal(err)
	}
	if s.SharedStatePrefix != "trailwatch" || s.SharedStateTimeout != 250*time.Millisecond {
		t.Errorf("defaults: prefix %q timeout %s", s.SharedStatePrefix, s.SharedStateTimeout)
	}
	if s, err := parse(nil); err != nil || s.SharedState != "" {
		t.Fatalf("no shared_state: %v %q", err, s.SharedState)
	}
	for _, c := range []struct {
		kv   map[string]string
		want string
	}{
		{map[string]string{"shared_state": "localhost:4222"}, "property shared_state"},
		{map[string]string{"shared_state": "http://u:hunter2@h:4222"}, "the scheme must be nats:// or tls://"},
		{map[string]string{"shared_state": "nats://h:4222", "shared_state_prefix": "a.b"}, "property shared_state_prefix"},
		{map[string]string{"shared_state": "nats://h:4222", "shared_state_timeout": "soon"}, "property shared_state_timeout"},
		{map[string]string{"shared_state": "nats://h:4222", "shared_state_timeout": "0"}, "property shared_state_timeout"},
		{map[string]string{"shared_state": "nats://h:4222", "shared_state_cert": "c.pem"}, "shared_state_cert and shared_state_key go together"},
		{map[string]string{"shared_state_creds": "x.creds"}, "property shared_state_creds is set but shared_state is not"},
		{map[string]string{"shared_state_ca": "ca.pem"}, "property shared_state_ca is set but shared_state is not"},
	} {
		_, err := parse(c.kv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.kv, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: the message shows the password: %v", c.kv, err)
		}
	}
}
