package cloudtrail

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// checkSkip holds mpSkip to msgp.Skip on one input.
func checkSkip(t *testing.T, b []byte) {
	t.Helper()
	want, err := msgp.Skip(b)
	if errors.Is(err, msgp.ErrRecursion) {
		return // msgp's own depth bound; mpSkip has no recursion to bound
	}
	got, ok := mpSkip(b)
	if ok != (err == nil) {
		t.Fatalf("% x: mpSkip ok=%v, msgp.Skip err=%v", b, ok, err)
	}
	if ok && !bytes.Equal(got, want) {
		t.Fatalf("% x: mpSkip left % x, msgp.Skip % x", b, got, want)
	}
}

func skipSeeds() [][]byte {
	var seeds [][]byte
	add := func(b []byte, err ...error) {
		if len(err) > 0 && err[0] != nil {
			panic(err[0])
		}
		seeds = append(seeds, b)
	}
	add(msgp.AppendMapStrIntf(nil, map[string]any{
		"eventSource": "iam.amazonaws.com", "n": int64(-70000), "u": uint64(1 << 40), "f": 1.5, "b": true,
		"nested": map[string]any{"a": []any{nil, "x", int64(3)}, "bin": []byte{1, 2, 3}},
	}))
	add(msgp.AppendExtension(nil, &msgp.RawExtension{Type: 5, Data: make([]byte, 300)}))
	add(msgp.AppendExtension(nil, &msgp.RawExtension{Type: 5, Data: make([]byte, 4)}))
	add(msgp.AppendExtension(nil, &msgp.RawExtension{Type: 5, Data: make([]byte, 70000)}))
	add(msgp.AppendString(nil, string(make([]byte, 70000))))
	add(msgp.AppendBytes(nil, make([]byte, 300)))
	add(msgp.AppendFloat32(msgp.AppendInt8(nil, -3), 2))
	arr := msgp.AppendArrayHeader(nil, 20)
	for i := 0; i < 20; i++ {
		arr = msgp.AppendInt64(arr, int64(i)<<(i*3))
	}
	add(arr)
	add(msgp.AppendMapHeader(nil, 40000))
	add([]byte{0xc1})
	add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	add([]byte{0xc9, 0, 0, 0})
	return seeds
}

func TestSkipAgreesWithMsgp(t *testing.T) {
	for _, s := range skipSeeds() {
		checkSkip(t, s)
		for i := range s { // every truncation, and every byte changed
			checkSkip(t, s[:i])
			if i < 64 {
				for _, x := range []byte{0x00, 0x7f, 0x80, 0x8f, 0x9f, 0xbf, 0xc1, 0xc7, 0xd8, 0xdc, 0xde, 0xff} {
					c := bytes.Clone(s)
					c[i] = x
					checkSkip(t, c)
				}
			}
		}
	}
}

// FuzzSkip: any bytes, mpSkip and msgp.Skip agree.
func FuzzSkip(f *testing.F) {
	for _, s := range skipSeeds() {
		f.Add(s)
	}
	f.Fuzz(checkSkip)
}

// TestKeyLookupByTag: lookups by tag find exactly the key asked for, among
// keys that share lengths modulo 32, last bytes and beginnings.
func TestKeyLookupByTag(t *testing.T) {
	keys := []string{"a", "ab", "eventName", "eventTime", "eventType", "12345678", "x2345678",
		"123456789012345678", "923456789012345678", "ventName", "eventName" + string(make([]byte, 32)),
		"_________________________eventName", "_________________________eventTime", ""}
	rec := msgp.AppendMapHeader(nil, uint32(len(keys)))
	for i, k := range keys {
		rec = msgp.AppendInt(msgp.AppendString(rec, k), i)
	}
	index, _, rest, ok := IndexMsgpack(rec, nil)
	if !ok || len(rest) != 0 || index.Top != len(keys) {
		t.Fatalf("listing: %v, %d bytes left, %d members", ok, len(rest), index.Top)
	}
	idx := index.Members
	for i, k := range keys {
		v, ok := mpLookup(rec, idx, k)
		if n, _, err := msgp.ReadIntBytes(v); !ok || err != nil || n != i {
			t.Errorf("%q: got % x %v, want member %d", k, v, ok, i)
		}
	}
	for _, k := range []string{"eventNamf", "fventName", "b", "123456780", "023456789012345678", "eventName" + string(make([]byte, 31))} {
		if v, ok := mpLookup(rec, idx, k); ok {
			t.Errorf("%q: found %v, not a key", k, v)
		}
	}
}

// TestListingRefusesCutMaps: a map cut anywhere (after a key, inside a
// value, inside userIdentity) is refused, not read past its end.
func TestListingRefusesCutMaps(t *testing.T) {
	rec := msgp.AppendMapHeader(nil, 4)
	rec = msgp.AppendInt(msgp.AppendString(rec, "eventSource"), 1)
	rec = msgp.AppendString(msgp.AppendString(rec, "eventName"), strings.Repeat("x", 40))
	rec, _ = msgp.AppendIntf(msgp.AppendString(rec, "userIdentity"), map[string]any{"type": "IAMUser", "sessionContext": map[string]any{"a": "b"}})
	rec = msgp.AppendFloat64(msgp.AppendString(rec, "f"), 1.5)
	if _, _, rest, ok := IndexMsgpack(rec, nil); !ok || len(rest) != 0 {
		t.Fatalf("whole record: %v, %d bytes left", ok, len(rest))
	}
	for i := range rec {
		if _, _, _, ok := IndexMsgpack(rec[:i], nil); ok {
			t.Errorf("cut at %d of %d: listed", i, len(rec))
		}
	}
}

// mpLookup finds a member of a map in rec (the last of duplicates) and
// returns its value.
func mpLookup(rec []byte, idx []MsgpackMember, key string) ([]byte, bool) {
	if m := mpMember(rec, idx, key); m != nil {
		return m.val(rec), true
	}
	return nil, false
}

func mpMember(rec []byte, idx []MsgpackMember, key string) *MsgpackMember {
	return mpMemberTag(rec, idx, keyTag(key), key)
}
