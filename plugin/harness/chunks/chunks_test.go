package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/flb"
)

// The counts the harness expects the plugin to log are what the plugin's
// own chunk reader finds, and every alert the harness waits for is for a
// record the plugin reads (not a malformed one, nor a group marker's body).
func TestChunksAsThePluginReadsThem(t *testing.T) {
	names := map[string]bool{}
	for _, c := range chunks() {
		if names[c.name] {
			t.Errorf("two chunks named %s", c.name)
		}
		names[c.name] = true
		recs, st := flb.DecodeChunk("harness", c.b)
		if st.Events != c.good || st.Malformed != c.malformed || st.Groups != c.groups {
			t.Errorf("%s: read %d records, %d malformed, %d group markers; the header says %d, %d, %d",
				c.name, st.Events, st.Malformed, st.Groups, c.good, c.malformed, c.groups)
		}
		for _, a := range c.alerts {
			id := msgp.AppendString(nil, a.eventID)
			n := 0
			for _, r := range recs {
				if r.Err == nil && bytes.Contains(r.Msgpack, id) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: the alert for %s is expected, but %d records read carry that eventID", c.name, a.eventID, n)
			}
		}
	}
	if len(names) != 11 {
		t.Errorf("%d chunks, want the harness's 11", len(names))
	}
}

// The crash event's digit fields are where the harness writes them: filled
// in, the event reads as one record with that eventID and ARN.
func TestCrashEventDigits(t *testing.T) {
	ev, fields := crashEvent()
	values := map[string]int{"ROUND": 12, "PID": 4194304, "CHUNK": 89, "ENTRY": 7, "ARN": 1048575}
	filled := bytes.Clone(ev)
	end := 0
	for _, f := range fields {
		if f.at < end {
			t.Fatalf("field %s at %d overlaps the one before", f.name, f.at)
		}
		end = f.at + f.width
		if got := string(ev[f.at:end]); got != string(bytes.Repeat([]byte("0"), f.width)) {
			t.Errorf("field %s holds %q before it is filled, want %d zeros", f.name, got, f.width)
		}
		v, ok := values[f.name]
		if !ok {
			t.Fatalf("unknown field %s", f.name)
		}
		delete(values, f.name)
		copy(filled[f.at:end], fmt.Sprintf("%0*d", f.width, v))
	}
	if len(values) != 0 {
		t.Errorf("fields %v missing", values)
	}
	recs, st := flb.DecodeChunk("crash", filled)
	if st.Events != 1 || st.Malformed != 0 || len(recs) != 1 {
		t.Fatalf("read %+v, want one record", st)
	}
	v, _, err := msgp.ReadIntfBytes(recs[0].Msgpack)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := v.(map[string]any)
	ui, _ := rec["userIdentity"].(map[string]any)
	if rec["eventID"] != "crash-r0012-p4194304-c000089-e007" || ui["arn"] != crashARN+"1048575" {
		t.Errorf("eventID %v, ARN %v", rec["eventID"], ui["arn"])
	}
}

// The self-test's messages are the forward protocol's three modes, each
// with what the harness's listener checks.
func TestSelftestMessages(t *testing.T) {
	forward, packed, message := selftest()
	read := func(name string, b []byte) []any {
		v, rest, err := msgp.ReadIntfBytes(b)
		a, _ := v.([]any)
		if err != nil || len(rest) != 0 || len(a) < 3 || a[0] != "harness.selftest" {
			t.Fatalf("%s: %v (%d bytes left): %v", name, err, len(rest), v)
		}
		return a
	}
	f := read("Forward", forward)
	if entries, _ := f[1].([]any); len(entries) != 2 || f[2].(map[string]any)["chunk"] != "self-c1" {
		t.Errorf("Forward: %v", f)
	}
	p := read("PackedForward", packed)
	payload, _ := p[1].([]byte)
	n := 0
	for rest := payload; len(rest) > 0; n++ {
		var err error
		if rest, err = msgp.Skip(rest); err != nil {
			t.Fatalf("PackedForward entry %d: %v", n, err)
		}
	}
	if n != 2 || p[2].(map[string]any)["chunk"] != "self-c2" {
		t.Errorf("PackedForward: %d entries, option %v", n, p[2])
	}
	if m := read("Message", message); len(m) != 3 {
		t.Errorf("Message: %v", m)
	}
}
