package cloudtrail

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/matcher"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/internal/gen"
)

// Reading a record in place from its MessagePack bytes is an optimization
// of reading its tree: every ECS field must come out the same both ways.

// inPlaceFields lists every field with a resolver (resolvers is filled by
// init, after package variables: call this from tests only).
func inPlaceFields() []*matcher.Field {
	s := NewSchema()
	names := make([]string, 0, len(resolvers))
	for n := range resolvers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s.Field(n)
	}
	// Fields read through the flattened payloads, not by a resolver.
	for _, n := range []string{"aws.cloudtrail.flattened.request_parameters.userName",
		"aws.cloudtrail.flattened.request_parameters.tags.key", "aws.cloudtrail.flattened.response_elements.user.arn",
		"aws.cloudtrail.flattened.additional_eventdata.MFAUsed", "aws.cloudtrail.flattened.request_parameters.reason",
		"aws.cloudtrail.flattened.request_parameters.omitted", "aws.cloudtrail.flattened.request_parameters.n",
		"aws.cloudtrail.flattened.request_parameters.x", "aws.cloudtrail.flattened.request_parameters.a.b"} {
		s.Field(n)
	}
	if len(s.Fields()) < 50 {
		panic("the resolvers are not listed yet")
	}
	return s.Fields()
}

// checkInPlace compares, field by field, a record read in place with the
// same record read as a tree.
func checkInPlace(t *testing.T, mp []byte) {
	t.Helper()
	tree, _, err := doc.ReadMsgpack(mp)
	if err != nil || tree.Kind != doc.Object {
		return // no tree to hold the in-place reading to
	}
	checkInPlaceAs(t, mp, false, nil, tree)
}

// checkInPlaceAs is checkInPlace for MessagePack transcoded from JSON
// (json set, with the Transcoder's list of top-level members or none) or
// not, held to the tree given.
func checkInPlaceAs(t *testing.T, mp []byte, json bool, top []doc.TopMember, tree *doc.Node) {
	t.Helper()
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var inPlace, fresh Event
	reset := func(ev *Event) {
		if json {
			ev.ResetMsgpackJSON(mp, top, at, nil)
		} else {
			ev.ResetMsgpack(mp, at, nil)
		}
	}
	reset(&inPlace)
	ref := NewEvent(tree, at, nil)
	fields := inPlaceFields()
	// What RawCloudTrail keeps of event.provider and event.action is what
	// reading them gives.
	var provider, action *matcher.Field
	for _, f := range fields {
		switch f.Name {
		case matcher.ProviderField:
			provider = f
		case matcher.ActionField:
			action = f
		}
	}
	reset(&fresh)
	if fresh.RawCloudTrail(provider, action) {
		for _, f := range [2]*matcher.Field{provider, action} {
			if got, want := fresh.Values(f), ref.Values(f); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s kept by RawCloudTrail: %v, tree %v", f.Name, got, want)
			}
		}
	}
	checkLacks(t, fields, reset, ref)
	for _, f := range fields {
		// Each field on its own (a field that needs the tree builds it,
		// and the fields read after it would come from the tree), then all
		// of them on one event, as rules read them.
		reset(&fresh)
		alone, got, want := fresh.Values(f), inPlace.Values(f), ref.Values(f)
		if len(alone) != 0 || len(want) != 0 {
			if !reflect.DeepEqual(alone, want) {
				t.Fatalf("%s: in place %v, tree %v\nrecord % x", f.Name, alone, want, mp)
			}
		}
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: in place %v, tree %v\nrecord % x", f.Name, got, want, mp)
		}
	}
}

func inPlaceSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "ecs", "*.json"))
	if len(files) == 0 {
		t.Fatal("no records in ../testdata/ecs")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		mp, err := msgp.AppendIntf(nil, m)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		seeds = append(seeds, mp)
	}
	// Hand-made records: duplicate keys (the last one counts) at the top
	// and below, maps nested deeper than the walk lists them, odd values
	// where maps are expected.
	kv := func(b []byte, k string, v any) []byte {
		b = msgp.AppendString(b, k)
		b, err := msgp.AppendIntf(b, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := func(n uint32) []byte {
		b := msgp.AppendMapHeader(nil, n+3)
		b = kv(b, "eventSource", "sts.amazonaws.com")
		b = kv(b, "eventName", "AssumeRole")
		return kv(b, "eventTime", "2026-11-20T10:00:00Z")
	}
	deep := map[string]any{"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/R/s", "sessionContext": map[string]any{
		"sessionIssuer": map[string]any{"type": "Role", "arn": "arn:aws:iam::1:role/R", "userName": "R",
			"x": map[string]any{"y": map[string]any{"z": "deep"}}},
		"attributes": map[string]any{"mfaAuthenticated": "true", "creationDate": "2026-11-20T09:00:00Z"}}}
	b := base(2)
	b = kv(b, "userIdentity", map[string]any{"type": "IAMUser", "userName": "first"})
	seeds = append(seeds, kv(b, "userIdentity", deep))
	b = base(2)
	b = kv(b, "userIdentity", deep)
	seeds = append(seeds, kv(b, "userIdentity", "not a map"))
	b = base(1)
	b = msgp.AppendString(b, "userIdentity")
	b = msgp.AppendMapHeader(b, 3)
	b = kv(b, "type", "IAMUser")
	b = kv(b, "sessionContext", map[string]any{"sessionIssuer": map[string]any{"userName": "a"}})
	seeds = append(seeds, kv(b, "sessionContext", map[string]any{"sessionIssuer": map[string]any{"userName": "b"}}))
	for _, rp := range []any{
		map[string]any{"reason": "requestParameters too large", "omitted": true, "n": int64(-3), "x": 2.5},
		map[string]any{"reason": "-", "omitted": nil, "n": "none", "x": ""},
		map[string]any{"reason": []any{"a", nil}, "omitted": map[string]any{"a": 1}, "a.b": "dotted", "a": map[string]any{"b": "nested"}},
		map[string]any{"big": strings.Repeat("x", 40000), "reason": "r"},
		"a string", nil,
	} {
		seeds = append(seeds, kv(base(1), "requestParameters", rp))
	}
	for _, v := range []any{nil, map[string]any{}, []any{deep}, int64(5)} {
		b = base(2)
		b = kv(b, "userIdentity", v)
		seeds = append(seeds, kv(b, "requestParameters", map[string]any{"a": map[string]any{"b": v}}))
	}
	err := gen.Generate(300, 7, func(m map[string]any) error {
		mp, err := msgp.AppendIntf(nil, m)
		seeds = append(seeds, mp)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return seeds
}

func TestInPlaceAgreesWithTree(t *testing.T) {
	for _, mp := range inPlaceSeeds(t) {
		checkInPlace(t, mp)
	}
}

// FuzzInPlace: any MessagePack record reads the same in place and as a tree.
func FuzzInPlace(f *testing.F) {
	for _, mp := range inPlaceSeeds(f) {
		f.Add(mp)
	}
	f.Fuzz(func(t *testing.T, mp []byte) {
		if msgp.NextType(mp) != msgp.MapType {
			return
		}
		checkInPlace(t, mp)
	})
}

// checkLacks holds Lacks to the tree's texts: a string it says a payload's
// text lacks is in none of its values, and it says so of strings missing
// from the text (absent payloads, keys and values the text does not hold).
func checkLacks(t *testing.T, fields []*matcher.Field, reset func(*Event), ref *Event) {
	t.Helper()
	for _, f := range fields {
		if _, ok := payloadFields[f.Name]; !ok {
			continue
		}
		want := ref.Values(f)
		var text string
		for _, v := range want {
			text += v.Text + "\n"
		}
		probes := []string{"zQxJv", "accessKeyId", "arn:aws:lambda:", "AKIA", "userName", "true", "12", "Z"}
		probes = append(probes, strings.FieldsFunc(text, func(c rune) bool { return strings.ContainsRune(textPunct+"\n", c) })...)
		for _, s := range probes {
			var ev Event
			reset(&ev)
			lacks := ev.Lacks(f, s)
			if lacks && strings.Contains(text, s) {
				t.Fatalf("%s: Lacks(%q) true, but the text %q holds it", f.Name, s, text)
			}
			if s == "zQxJv" && !lacks && ev.mp != nil && !strings.Contains(text, s) && ev.listTop() && ev.topMember(payloadFields[f.Name]) == nil {
				t.Fatalf("%s: no payload, yet Lacks(%q) false", f.Name, s)
			}
		}
		// Beyond ASCII nothing is answered (a rendering could make it).
		var ev Event
		reset(&ev)
		if ev.Lacks(f, "zQx\uFFFDv") || ev.Lacks(f, "zQxé") {
			t.Fatalf("%s: Lacks answered for a string beyond ASCII", f.Name)
		}
	}
}
