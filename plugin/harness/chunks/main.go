// Command chunks writes the MessagePack that the C harness
// (plugin/harness/harness.c) hands to out_trailwatch.so, as one C header,
// so that the harness needs no MessagePack library:
//
//	go run ./plugin/harness/chunks -o bin/harness_chunks.h
//
// The header holds every chunk the harness flushes, in Fluent Bit's chunk
// format (events [timestamp, body] or [[timestamp, metadata], body] one
// after another), each with what it holds (records, malformed records,
// group markers) and the alerts it must make; the crash test's event as a
// template whose fixed-width decimal fields (ARN number, event id) the
// harness fills; and the messages of the forward listener's self-test. The
// harness includes it after defining struct harness_alert and struct
// harness_chunk.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// The bundled rules (conf/rules) the harness's events fire.
const (
	ruleQuery    = "aed4b9d5-f853-40cf-8489-4fdcff03e272" // Bedrock foundation model access enabled
	ruleNewTerms = "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b" // Bedrock resource policy modified, new ARN
)

// baseSec is every record's timestamp (with nanoseconds counting up): the
// plugin reads a timestamp only to tell a record from a group marker.
var baseSec = uint32(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).Unix())

// field is one member of a map, written in order; val is a string, nil, a
// bool, an int or an object.
type field struct {
	key string
	val any
}

type object []field

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return msgp.AppendNil(b)
	case string:
		return msgp.AppendString(b, v)
	case bool:
		return msgp.AppendBool(b, v)
	case int:
		return msgp.AppendInt(b, v)
	case object:
		return appendMembers(msgp.AppendMapHeader(b, uint32(len(v))), v)
	}
	panic(fmt.Sprintf("appendValue: %T", v))
}

// appendMembers writes o's members without a map header.
func appendMembers(b []byte, o object) []byte {
	for _, f := range o {
		b = appendValue(msgp.AppendString(b, f.key), f.val)
	}
	return b
}

// appendEventTime writes Fluent Bit's EventTime: extension type 0, 4 bytes
// of seconds and 4 of nanoseconds, big-endian (a fixext 8).
func appendEventTime(b []byte, sec, nsec uint32) []byte {
	d := []byte{byte(sec >> 24), byte(sec >> 16), byte(sec >> 8), byte(sec),
		byte(nsec >> 24), byte(nsec >> 16), byte(nsec >> 8), byte(nsec)}
	b, err := msgp.AppendExtension(b, &msgp.RawExtension{Type: 0, Data: d})
	if err != nil {
		panic(err) // a RawExtension always marshals
	}
	return b
}

// ct is a CloudTrail event.
type ct struct {
	id, source, name, user string
	failed                 bool // errorCode and errorMessage set
}

func (e ct) object() object {
	pid := "AIDAX" + strings.ToUpper(e.user)
	req := object{{"modelId", "anthropic.claude-3-5-sonnet-20240620-v1:0"}}
	if strings.Contains(e.name, "ResourcePolicy") {
		req = object{{"resourceArn", "arn:aws:bedrock:us-east-1:111122223333:agent/AGENT0001"}}
	}
	o := object{
		{"eventVersion", "1.09"},
		{"userIdentity", object{
			{"type", "IAMUser"},
			{"principalId", pid},
			{"arn", "arn:aws:iam::111122223333:user/" + e.user},
			{"accountId", "111122223333"},
			{"userName", e.user},
		}},
		{"eventTime", "2026-11-20T10:00:00Z"},
		{"eventSource", e.source},
		{"eventName", e.name},
		{"awsRegion", "us-east-1"},
		{"sourceIPAddress", "198.51.100.7"},
		{"userAgent", "aws-cli/2.17.0 Python/3.11"},
		{"requestParameters", req},
		{"responseElements", nil},
		{"requestID", "req-" + e.id},
		{"eventID", e.id},
		{"readOnly", false},
		{"eventType", "AwsApiCall"},
		{"managementEvent", true},
		{"recipientAccountId", "111122223333"},
	}
	if e.failed {
		o = append(o, field{"errorCode", "AccessDenied"}, field{"errorMessage", "User is not authorized to perform this action"})
	}
	return o
}

// The event formats and timestamp encodings.
const (
	legacy = iota // [ts, body]
	v2            // [[ts, metadata], body]
)

const (
	tExt = iota // EventTime
	tInt        // an integer
)

type alert struct {
	eventID, rule, action string
	inst                  int // the harness's instance: 1, 2 or 4 (the reloaded one)
}

// chunk is one chunk the harness flushes and what it holds.
type chunk struct {
	name, what string
	b          []byte
	good       int // records the plugin reads
	malformed  int // records it counts as malformed
	groups     int // group markers it skips
	alerts     []alert
}

// gen writes chunks; its counters make timestamps and metadata vary from
// record to record.
type gen struct {
	nsec uint32
	meta int
}

func (g *gen) ts(b []byte, tenc int) []byte {
	if tenc == tExt {
		g.nsec += 1000
		return appendEventTime(b, baseSec, g.nsec%1000000000)
	}
	return msgp.AppendUint32(b, baseSec)
}

// header writes an event's timestamp, or for v2 its [ts, metadata], the
// metadata alternately empty and not.
func (g *gen) header(b []byte, format, tenc int) []byte {
	if format == legacy {
		return g.ts(b, tenc)
	}
	b = g.ts(msgp.AppendArrayHeader(b, 2), tenc)
	g.meta++
	if g.meta%2 == 1 {
		return msgp.AppendMapHeader(b, 0)
	}
	return appendValue(b, object{{"source", "harness"}, {"seq", g.meta}})
}

// ev adds a well-formed CloudTrail event; rule is the rule it must fire
// (or "") in instance inst.
func (g *gen) ev(c *chunk, format, tenc int, e ct, rule string, inst int) {
	c.b = g.header(msgp.AppendArrayHeader(c.b, 2), format, tenc)
	c.b = appendValue(c.b, e.object())
	c.good++
	if rule != "" {
		c.alerts = append(c.alerts, alert{e.id, rule, e.name, inst})
	}
}

// groupMarker adds [[-1|-2, meta], body]: the timestamp a plain integer,
// or (ext) as Fluent Bit's encoder writes it, an EventTime whose seconds
// are (uint32)-1 or (uint32)-2. body is a CloudTrail event that must not be
// evaluated, or nil for {}.
func groupMarker(c *chunk, which int, ext bool, body *ct) {
	c.b = msgp.AppendArrayHeader(msgp.AppendArrayHeader(c.b, 2), 2)
	if ext {
		c.b = appendEventTime(c.b, uint32(int32(which)), 0)
	} else {
		c.b = msgp.AppendInt(c.b, which)
	}
	if which == -1 {
		c.b = appendValue(c.b, object{{"schema", "otlp"}})
	} else {
		c.b = msgp.AppendMapHeader(c.b, 0)
	}
	if body != nil {
		c.b = appendValue(c.b, body.object())
	} else {
		c.b = msgp.AppendMapHeader(c.b, 0)
	}
	c.groups++
}

func bedrock(id, name, user string, failed bool) ct {
	return ct{id, "bedrock.amazonaws.com", name, user, failed}
}

const (
	entitlement = "PutFoundationModelEntitlement"
	putPolicy   = "PutResourcePolicy"
)

// chunks returns the harness's chunks in the order it uses them.
func chunks() []*chunk {
	var g gen
	a1 := &chunk{name: "hc_a1", what: "A1 legacy [ts, map], EventTime"}
	g.ev(a1, legacy, tExt, bedrock("i1-ent-alice", entitlement, "alice", false), ruleQuery, 1)
	g.ev(a1, legacy, tExt, bedrock("i1-rp-alice", putPolicy, "alice", false), ruleNewTerms, 1)
	g.ev(a1, legacy, tExt, bedrock("i1-rp-alice-again", putPolicy, "alice", false), "", 1) // same ARN, same chunk: not new
	g.ev(a1, legacy, tExt, bedrock("i1-ent-failed", entitlement, "alice", true), "", 1)
	g.ev(a1, legacy, tExt, ct{"i1-s3-policy", "s3.amazonaws.com", "PutBucketPolicy", "alice", false}, "", 1)
	g.ev(a1, legacy, tExt, bedrock("i1-invoke", "InvokeModel", "alice", false), "", 1)
	g.ev(a1, legacy, tExt, bedrock("i1-rp-bob-failed", putPolicy, "bob", true), "", 1) // failed: bob stays new

	a2 := &chunk{name: "hc_a2", what: "A2 v2 [[ts, meta], map], integer time, group markers"}
	groupMarker(a2, -1, false, nil)
	g.ev(a2, v2, tInt, bedrock("i1-usecase-bob", "PutUseCaseForModelAccess", "bob", false), ruleQuery, 1)
	g.ev(a2, v2, tInt, bedrock("i1-rp-alice-later", putPolicy, "alice", false), "", 1) // alice known since A1
	g.ev(a2, v2, tInt, bedrock("i1-delrp-bob", "DeleteResourcePolicy", "bob", false), ruleNewTerms, 1)
	groupMarker(a2, -2, false, nil)
	grpStart := bedrock("i1-group-int-start", entitlement, "mallory", false)
	groupMarker(a2, -1, false, &grpStart) // a marker's body is never a record
	g.ev(a2, v2, tInt, ct{"i1-lookup", "cloudtrail.amazonaws.com", "LookupEvents", "bob", false}, "", 1)
	grpEnd := bedrock("i1-group-int-end", putPolicy, "mallory", false)
	groupMarker(a2, -2, false, &grpEnd)

	a3 := &chunk{name: "hc_a3", what: "A3 malformed records among good ones"}
	a3.b = g.ts(msgp.AppendArrayHeader(a3.b, 1), tExt) // [ts]
	a3.malformed++
	a3.b = g.ts(msgp.AppendArrayHeader(a3.b, 2), tInt) // [ts, "string"]
	a3.b = msgp.AppendString(a3.b, `{"eventSource":"bedrock.amazonaws.com"}`)
	a3.malformed++
	a3.b = g.ts(msgp.AppendArrayHeader(a3.b, 2), tExt) // [ts, [1, 2, 3]]
	a3.b = msgp.AppendInt(msgp.AppendInt(msgp.AppendInt(msgp.AppendArrayHeader(a3.b, 3), 1), 2), 3)
	a3.malformed++
	g.ev(a3, legacy, tExt, bedrock("i1-agree-carol", "CreateFoundationModelAgreement", "carol", false), ruleQuery, 1)
	a3.b = msgp.AppendInt(a3.b, 42) // an event that is not an array
	a3.malformed++
	a3.b = g.header(msgp.AppendArrayHeader(a3.b, 2), v2, tInt) // [[ts, meta], "string"]
	a3.b = msgp.AppendString(a3.b, "not a map")
	a3.malformed++
	a3.b = msgp.AppendString(msgp.AppendArrayHeader(a3.b, 2), "2026-11-20T10:00:00Z") // ["not a time", {CloudTrail}]
	a3.b = appendValue(a3.b, bedrock("i1-malformed-ts", entitlement, "mallory", false).object())
	a3.malformed++
	g.ev(a3, v2, tInt, bedrock("i1-rp-carol", putPolicy, "carol", false), ruleNewTerms, 1)
	a3.b = g.ts(msgp.AppendArrayHeader(a3.b, 2), tInt) // not CloudTrail: read, not alerted
	a3.b = appendValue(a3.b, object{{"log", "hello from another input"}})
	a3.good++
	a3.b = g.ts(msgp.AppendArrayHeader(a3.b, 3), tExt) // [ts, {CloudTrail}, extra]
	a3.b = appendValue(a3.b, bedrock("i1-malformed-arr3", entitlement, "mallory", false).object())
	a3.b = msgp.AppendString(a3.b, "extra")
	a3.malformed++
	a3.b = append(a3.b, 0x92, 0xd7, 0x00, 0x01) // truncated tail
	a3.malformed++

	a4 := &chunk{name: "hc_a4", what: "A4 v2 with Fluent Bit-encoded group markers"}
	grpExtStart := bedrock("i1-group-ext-start", entitlement, "mallory", false)
	groupMarker(a4, -1, true, &grpExtStart)
	g.ev(a4, v2, tExt, bedrock("i1-ent-dave", entitlement, "dave", false), ruleQuery, 1)
	grpExtEnd := bedrock("i1-group-ext-end", putPolicy, "mallory", false)
	groupMarker(a4, -2, true, &grpExtEnd)

	b1 := &chunk{name: "hc_b1", what: "B1 v2, EventTime"}
	g.ev(b1, v2, tExt, bedrock("i2-ent-dave", entitlement, "dave", false), ruleQuery, 2)
	g.ev(b1, v2, tExt, bedrock("i2-rp-alice", putPolicy, "alice", false), ruleNewTerms, 2) // new in instance 2's own state
	g.ev(b1, v2, tExt, bedrock("i2-rp-erin-failed", putPolicy, "erin", true), "", 2)
	g.ev(b1, v2, tExt, ct{"i2-iam-policy", "iam.amazonaws.com", "PutRolePolicy", "erin", false}, "", 2)
	b2 := &chunk{name: "hc_b2", what: "B2 legacy, integer time"}
	g.ev(b2, legacy, tInt, bedrock("i2-rp-alice-again", putPolicy, "alice", false), "", 2)
	g.ev(b2, legacy, tInt, bedrock("i2-agree-dave", "CreateFoundationModelAgreement", "dave", false), ruleQuery, 2)
	g.ev(b2, legacy, tInt, bedrock("i2-usecase-failed", "PutUseCaseForModelAccess", "dave", true), "", 2)

	// Flushed with a panic induced: never evaluated.
	panicked := &chunk{name: "hc_panic", what: "a chunk flushed while a panic is induced"}
	g.ev(panicked, legacy, tExt, bedrock("i1-panic", entitlement, "mallory", false), "", 1)
	afterPanic := &chunk{name: "hc_after_panic", what: "a chunk after the flush panic"}
	g.ev(afterPanic, legacy, tInt, ct{"i1-after-panic", "cloudtrail.amazonaws.com", "LookupEvents", "alice", false}, "", 1)

	a5 := &chunk{name: "hc_a5", what: "A5 after the refused inits"}
	g.ev(a5, legacy, tInt, bedrock("i1-rp-grace", putPolicy, "grace", false), ruleNewTerms, 1)

	reload := &chunk{name: "hc_reload", what: "after the reload"}
	g.ev(reload, legacy, tExt, bedrock("r-rp-alice", putPolicy, "alice", false), "", 4) // history survived the reload
	g.ev(reload, legacy, tExt, bedrock("r-rp-frank", putPolicy, "frank", false), ruleNewTerms, 4)
	g.ev(reload, v2, tInt, bedrock("r-ent-frank", entitlement, "frank", false), ruleQuery, 4)

	// The panic probes' chunk, flushed in a child process (its own
	// counters).
	var pg gen
	probe := &chunk{name: "hc_probe", what: "the panic probe's chunk"}
	pg.ev(probe, legacy, tExt, bedrock("probe-ent", entitlement, "mallory", false), "", 0)

	return []*chunk{a1, a2, a3, a4, b1, b2, panicked, afterPanic, a5, reload, probe}
}

// digits is a fixed-width decimal field of a template: the harness writes a
// number there, zero-padded.
type digits struct {
	name      string
	at, width int
}

// crashARN is the ARN the crash test's events carry, before their number.
const crashARN = "arn:aws:iam::111122223333:user/u"

// crashEvent is the crash test's event, [[EventTime, {}], record], a
// CloudTrail record that the bundled new_terms rule fires on when its ARN
// is new; its ARN number and the numbers in its eventID
// (crash-r<round>-p<pid>-c<chunk>-e<entry>) are digit fields.
func crashEvent() ([]byte, []digits) {
	var fields []digits
	// str appends s with each "#" run a digit field, named in turn.
	str := func(b []byte, s string, names ...string) []byte {
		b = msgp.AppendString(b, strings.ReplaceAll(s, "#", "0"))
		start := len(b) - len(s)
		for i := 0; i < len(s); {
			if s[i] != '#' {
				i++
				continue
			}
			j := i
			for j < len(s) && s[j] == '#' {
				j++
			}
			fields = append(fields, digits{names[0], start + i, j - i})
			names = names[1:]
			i = j
		}
		return b
	}
	b := msgp.AppendArrayHeader(nil, 2)
	b = msgp.AppendMapHeader(appendEventTime(msgp.AppendArrayHeader(b, 2), baseSec, 0), 0)
	b = msgp.AppendMapHeader(b, 6)
	b = appendMembers(b, object{{"eventSource", "bedrock.amazonaws.com"}, {"eventName", putPolicy}})
	// a round up to 9999, a pid up to 4194304 (Linux's largest pid_max), a
	// chunk number up to 999999 and an entry up to 999
	b = str(msgp.AppendString(b, "eventID"), "crash-r####-p#######-c######-e###", "ROUND", "PID", "CHUNK", "ENTRY")
	b = appendMembers(b, object{{"eventTime", "2026-11-20T10:00:00Z"}, {"awsRegion", "us-east-1"}})
	b = msgp.AppendMapHeader(msgp.AppendString(b, "userIdentity"), 3)
	b = appendMembers(b, object{{"type", "IAMUser"}})
	b = str(msgp.AppendString(b, "arn"), crashARN+"#######", "ARN") // the harness's ARN numbers stay below 2^20
	b = appendMembers(b, object{{"accountId", "111122223333"}})
	return b, fields
}

// The forward listener's self-test: Forward and PackedForward mode (the
// plugin's client only uses Message mode), then a Message without option.
func selftest() (forward, packed, message []byte) {
	const tag = "harness.selftest"
	uuid := func(b []byte, u string) []byte { return appendValue(b, object{{"kibana.alert.uuid", u}}) }

	// [tag, [[EventTime, rec], [int, rec]], {"chunk": "self-c1"}]
	forward = msgp.AppendString(msgp.AppendArrayHeader(nil, 3), tag)
	forward = msgp.AppendArrayHeader(forward, 2)
	forward = uuid(appendEventTime(msgp.AppendArrayHeader(forward, 2), baseSec, 5), "self-1")
	forward = uuid(msgp.AppendUint32(msgp.AppendArrayHeader(forward, 2), baseSec), "self-2")
	forward = appendValue(forward, object{{"chunk", "self-c1"}})

	// [tag, bin(<[t, rec]><[t, rec]>), {"size": 2, "chunk": "self-c2"}]
	var entries []byte
	for i, u := range []string{"self-3", "self-4"} {
		entries = uuid(appendEventTime(msgp.AppendArrayHeader(entries, 2), baseSec, uint32(i)), u)
	}
	packed = msgp.AppendString(msgp.AppendArrayHeader(nil, 3), tag)
	packed = msgp.AppendBytes(packed, entries)
	packed = appendValue(packed, object{{"size", 2}, {"chunk", "self-c2"}})

	// [tag, EventTime, rec]: no option, so no ack
	message = msgp.AppendString(msgp.AppendArrayHeader(nil, 3), tag)
	message = uuid(appendEventTime(message, baseSec, 9), "self-5")
	return forward, packed, message
}

// cString quotes s for C; the harness's strings are printable ASCII.
func cString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			panic(fmt.Sprintf("cString: byte %#x in %q", c, s))
		}
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

func cBytes(w *bytes.Buffer, name string, b []byte) {
	fmt.Fprintf(w, "static const unsigned char %s[%d] = {", name, len(b))
	for i, c := range b {
		if i%16 == 0 {
			w.WriteString("\n    ")
		} else {
			w.WriteByte(' ')
		}
		fmt.Fprintf(w, "0x%02x,", c)
	}
	w.WriteString("\n};\n")
}

// header returns the C header.
func header() []byte {
	var w bytes.Buffer
	w.WriteString(`/* Written by ` + "`go run ./plugin/harness/chunks`" + ` (plugin/harness/chunks/main.go):
 * the MessagePack that plugin/harness/harness.c hands to the plugin. Do not
 * edit; harness.c includes it after defining struct harness_alert and
 * struct harness_chunk. */
`)
	fmt.Fprintf(&w, "\n#define RULE_QUERY %s\n#define RULE_NEWTERMS %s\n", cString(ruleQuery), cString(ruleNewTerms))
	for _, c := range chunks() {
		w.WriteByte('\n')
		cBytes(&w, c.name+"_bytes", c.b)
		alerts := "NULL"
		if len(c.alerts) > 0 {
			alerts = c.name + "_alerts"
			fmt.Fprintf(&w, "static const struct harness_alert %s[%d] = {\n", alerts, len(c.alerts))
			for _, a := range c.alerts {
				rule := "RULE_QUERY"
				if a.rule == ruleNewTerms {
					rule = "RULE_NEWTERMS"
				}
				fmt.Fprintf(&w, "    {%s, %s, %s, %d},\n", cString(a.eventID), rule, cString(a.action), a.inst)
			}
			w.WriteString("};\n")
		}
		fmt.Fprintf(&w, "static const struct harness_chunk %s = {%s, %s_bytes, sizeof %s_bytes, %d, %d, %d, %s, %d};\n",
			c.name, cString(c.what), c.name, c.name, c.good, c.malformed, c.groups, alerts, len(c.alerts))
	}

	ev, fields := crashEvent()
	w.WriteString("\n/* The crash test's event: [[EventTime, {}], CloudTrail record]; the harness\n" +
		" * writes numbers, zero-padded, into its digit fields (HC_CRASH_<name>_AT,\n" +
		" * HC_CRASH_<name>_DIGITS wide). */\n")
	cBytes(&w, "hc_crash_event", ev)
	fmt.Fprintf(&w, "#define HC_CRASH_ARN_PREFIX %s\n", cString(crashARN))
	for _, f := range fields {
		fmt.Fprintf(&w, "#define HC_CRASH_%s_AT %d\n#define HC_CRASH_%s_DIGITS %d\n", f.name, f.at, f.name, f.width)
	}

	forward, packed, message := selftest()
	w.WriteString("\n/* The forward listener's self-test. */\n")
	cBytes(&w, "hc_selftest_forward", forward)
	cBytes(&w, "hc_selftest_packed", packed)
	cBytes(&w, "hc_selftest_message", message)
	return w.Bytes()
}

func main() {
	out := flag.String("o", "", "the header to write (default: stdout)")
	flag.Parse()
	h := header()
	if *out == "" {
		os.Stdout.Write(h)
		return
	}
	// Written whole or not at all, so that make never sees half a header.
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, h, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "chunks:", err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, *out); err != nil {
		fmt.Fprintln(os.Stderr, "chunks:", err)
		os.Exit(1)
	}
}
