package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
)

// Settings are the options of one trailwatch instance: the Fluent Bit
// plugin's properties, `trailwatch serve`'s config keys, and (dashes for
// underscores) the command line's flags.
type Settings struct {
	Rules          []string      // rules: comma-separated files or folders
	Exceptions     []string      // exceptions: Kibana exception exports or trailwatch TOML files
	RulesWatch     time.Duration // rules_watch: how often rule and exception files are checked for changes (0: never)
	MetricsListen  string        // metrics_listen: address serving /metrics ("" off)
	DB             string        // db: the bbolt state file
	TimeSource     string        // time_source: ingested | event
	EventClockLag  time.Duration // event_clock_lag: how far scheduled runs trail the latest eventTime
	LearningPeriod time.Duration // learning_period
	GeoIPDB        string        // geoip_db: MaxMind City database
	ASNDB          string        // asn_db: MaxMind ASN database
	AlertForward   string        // alert_forward: host:port or a Unix socket path
	AlertFile      string        // alert_file
	AlertStdout    bool          // alert_stdout
	AlertHTTP      string        // alert_http: URL
	AlertTag       string        // alert_tag: tag template
	OutboxMax      int           // outbox_max
	NoSync         bool          // no_sync
	BuildingBlocks bool          // building_blocks
	PruneInterval  time.Duration // prune_interval
	ExitTimeout    time.Duration // exit_timeout: how long exit waits for the outbox to drain
	LogLevel       string        // log_level
	// SharedState is the NATS URL of the fleet's shared history ("" off),
	// with its settings (see package fleet).
	SharedState        string        // shared_state
	SharedStatePrefix  string        // shared_state_prefix
	SharedStateCreds   string        // shared_state_creds
	SharedStateCA      string        // shared_state_ca
	SharedStateCert    string        // shared_state_cert
	SharedStateKey     string        // shared_state_key
	SharedStateTimeout time.Duration // shared_state_timeout
}

// Property describes one setting for documentation and validation.
type Property struct {
	Name, Default, Help string
}

// Properties lists every setting with its default, in the order the README
// documents them.
var Properties = []Property{
	{"rules", "", "comma-separated rule files or folders (required)"},
	{"exceptions", "", "comma-separated exception files: Kibana exception-list exports (.ndjson) or trailwatch TOML (.toml)"},
	{"rules_watch", "10s", "how often rule and exception files are checked; a changed set is loaded between chunks (0 turns it off; at least 10ms)"},
	{"metrics_listen", "", "serve Prometheus metrics at http://ADDR/metrics (a bare port means 127.0.0.1)"},
	{"db", "trailwatch.db", "the bbolt state file: new_terms history and alert outbox (created 0600)"},
	{"time_source", "ingested", "clock for new_terms windows: ingested or event"},
	{"event_clock_lag", "0", "with time_source event, how far the scheduled rules' runs trail the latest eventTime, so that a record arriving that much out of order (a backlog flushed after newer chunks) still counts"},
	{"learning_period", "", "record new terms without alerting for this long after the first (e.g. 24h, 7d)"},
	{"geoip_db", "", "MaxMind GeoIP2/GeoLite2 City database: fills source.geo.*"},
	{"asn_db", "", "MaxMind GeoLite2 ASN database: fills source.as.*"},
	{"alert_forward", "", "send alerts with the forward protocol (acknowledged) to host:port or a Unix socket path"},
	{"alert_file", "", "append alerts as NDJSON to this file (created 0600)"},
	{"alert_stdout", "off", "print alerts as NDJSON on stdout (on/off)"},
	{"alert_http", "", "POST alerts as NDJSON to this URL"},
	{"alert_tag", "alert.trailwatch", "tag of forwarded alerts; {rule_id} and {rule_name} are replaced"},
	{"outbox_max", "100000", "most alerts kept waiting for a sink; past it new alerts are dropped and counted"},
	{"no_sync", "off", "skip fsync at each chunk commit (faster; a power loss can lose the last chunks)"},
	{"building_blocks", "off", "send an EQL sequence's building-block alerts (one per event) beside its shell alert"},
	{"prune_interval", "10m", "how often terms past their window are pruned (at least 1s)"},
	{"exit_timeout", "5s", "how long exit waits for sinks to take the outbox"},
	{"log_level", "info", "error, warn, info or debug"},
	{"shared_state", "", "NATS URL of the fleet's shared new_terms history and alert ids (nats://host:4222, tls://...; several comma-separated); the state file stays the local tier"},
	{"shared_state_prefix", "trailwatch", "prefix of the fleet's key-value buckets (PREFIX_terms, PREFIX_alerts)"},
	{"shared_state_creds", "", "NATS credentials file (JWT and seed) for shared_state"},
	{"shared_state_ca", "", "CA bundle (PEM) the NATS servers' certificates are checked against"},
	{"shared_state_cert", "", "client certificate (PEM) for NATS, with shared_state_key"},
	{"shared_state_key", "", "client private key (PEM) for NATS"},
	{"shared_state_timeout", "250ms", "how long a chunk waits for the fleet's answers before it is judged on the local tier (alerts marked unconfirmed)"},
}

// ParseSettings reads settings through get (a property lookup returning ""
// for unset). Every invalid value is reported, each naming its property and
// what it accepts.
func ParseSettings(get func(key string) string) (*Settings, error) {
	val := func(k string) string {
		if v := strings.TrimSpace(get(k)); v != "" {
			return v
		}
		for _, p := range Properties {
			if p.Name == k {
				return p.Default
			}
		}
		return ""
	}
	var errs []string
	bad := func(k, accepts string) {
		errs = append(errs, fmt.Sprintf("property %s = %q: expected %s", k, get(k), accepts))
	}
	onOff := func(k string) bool {
		switch strings.ToLower(val(k)) {
		case "on", "true", "yes", "1":
			return true
		case "off", "false", "no", "0", "":
			return false
		}
		bad(k, "on or off")
		return false
	}
	duration := func(k string, allowZero bool) time.Duration {
		v := val(k)
		if v == "" || (allowZero && (v == "0" || strings.EqualFold(v, "off"))) {
			return 0
		}
		d, err := matcher.ParseDuration(v)
		if err != nil || d < 0 || (d == 0 && !allowZero) {
			bad(k, "a duration such as 30s, 10m, 24h or 7d")
		}
		return d
	}
	s := &Settings{
		DB:           val("db"),
		TimeSource:   val("time_source"),
		GeoIPDB:      val("geoip_db"),
		ASNDB:        val("asn_db"),
		AlertForward: val("alert_forward"),
		AlertFile:    val("alert_file"),
		AlertHTTP:    val("alert_http"),
		AlertTag:     val("alert_tag"),
		LogLevel:     strings.ToLower(val("log_level")),
	}
	for _, p := range strings.Split(val("rules"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			s.Rules = append(s.Rules, p)
		}
	}
	for _, p := range strings.Split(val("exceptions"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			s.Exceptions = append(s.Exceptions, p)
		}
	}
	// Floors, so that no value makes a loop of its timer: a folder walk
	// or a write transaction every nanosecond.
	atLeast := func(k string, d, floor time.Duration) time.Duration {
		if d != 0 && d < floor {
			bad(k, fmt.Sprintf("at least %v (or 0 to turn it off, where it can be)", floor))
		}
		return d
	}
	s.RulesWatch = atLeast("rules_watch", duration("rules_watch", true), 10*time.Millisecond)
	s.MetricsListen = val("metrics_listen")
	if s.MetricsListen != "" && !strings.Contains(s.MetricsListen, ":") {
		s.MetricsListen = "127.0.0.1:" + s.MetricsListen
	}
	if len(s.Rules) == 0 {
		errs = append(errs, "property rules is missing: expected comma-separated rule files or folders")
	}
	if s.TimeSource != "ingested" && s.TimeSource != "event" {
		bad("time_source", "ingested or event")
	}
	s.LearningPeriod = duration("learning_period", true)
	s.EventClockLag = duration("event_clock_lag", true)
	s.PruneInterval = atLeast("prune_interval", duration("prune_interval", false), time.Second)
	s.ExitTimeout = duration("exit_timeout", true)
	s.AlertStdout = onOff("alert_stdout")
	s.NoSync = onOff("no_sync")
	s.BuildingBlocks = onOff("building_blocks")
	if n, err := strconv.Atoi(val("outbox_max")); err != nil || n <= 0 {
		bad("outbox_max", "a positive number of alerts")
	} else {
		s.OutboxMax = n
	}
	switch s.LogLevel {
	case "error", "warn", "warning", "info", "debug", "trace", "off":
	default:
		bad("log_level", "error, warn, info or debug")
	}
	if s.AlertForward == "" && s.AlertFile == "" && !s.AlertStdout && s.AlertHTTP == "" {
		errs = append(errs, "no alert sink: set alert_forward, alert_file, alert_http or alert_stdout on")
	}
	if strings.TrimSpace(s.AlertTag) == "" || strings.ContainsAny(strings.NewReplacer("{rule_id}", "", "{rule_name}", "").Replace(s.AlertTag), "{} ") {
		bad("alert_tag", "a tag, optionally with {rule_id} or {rule_name}")
	}
	s.SharedState, s.SharedStatePrefix = val("shared_state"), val("shared_state_prefix")
	s.SharedStateCreds, s.SharedStateCA = val("shared_state_creds"), val("shared_state_ca")
	s.SharedStateCert, s.SharedStateKey = val("shared_state_cert"), val("shared_state_key")
	s.SharedStateTimeout = duration("shared_state_timeout", false)
	errs = append(errs, sharedStateErrors(s)...)
	if len(errs) > 0 {
		return s, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return s, nil
}
