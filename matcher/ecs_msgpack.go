package matcher

import (
	"encoding/binary"
	"strconv"
	"unsafe"

	"github.com/tinylib/msgp/msgp"
)

// Reading scalar fields straight from a record's MessagePack bytes lets a
// record that no rule can match cost a key scan and a map lookup: no tree,
// no allocation. Strings returned point into the bytes.

type mpStatus uint8

const (
	mpAbsent    mpStatus = iota // no such path
	mpRemoved                   // present, but the integration's cleanup drops it
	mpFound                     // a scalar
	mpContainer                 // a map or an array: ask the tree
)

// bytesString views b as a string without copying; b must not change while
// the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// mpGet returns the bytes of the value under key in a MessagePack map (the
// last one when a key repeats, as the tree's Get does).
func mpGet(b []byte, key string) ([]byte, bool) {
	n, rest, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return nil, false
	}
	var found []byte
	seen := false
	for i := uint32(0); i < n; i++ {
		var k []byte
		if k, rest, err = msgp.ReadMapKeyZC(rest); err != nil {
			return nil, false
		}
		val := rest
		var ok bool
		if rest, ok = mpSkip(rest); !ok {
			return nil, false
		}
		if bytesString(k) == key {
			found, seen = val[:len(val)-len(rest)], true
		}
	}
	return found, seen
}

// MsgpackMember is one member of a record's top-level map, as byte views.
type MsgpackMember struct {
	tag uint64 // keyTag(key): a lookup compares keys only where tags agree
	key string
	val []byte
}

// keyTag packs a key's length and its last eight bytes (CloudTrail's keys
// share their beginnings: eventName, eventTime, eventType) into a word, so
// that finding a key among a map's members is a scan of words.
func keyTag(k string) uint64 {
	n := len(k)
	if n >= 8 {
		b := unsafe.Slice(unsafe.StringData(k), n)
		return binary.LittleEndian.Uint64(b[n-8:]) ^ uint64(n)<<59
	}
	var t uint64
	for i := 0; i < n; i++ {
		t = t<<8 | uint64(k[i])
	}
	return t ^ uint64(n)<<59
}

// IndexMsgpack lists the members of the MessagePack map at the start of b
// (appending to dst) and returns the bytes after the map: reading a chunk
// and indexing its records is one walk.
func IndexMsgpack(b []byte, dst []MsgpackMember) (idx []MsgpackMember, rest []byte, ok bool) {
	start := len(dst)
	n, rest, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return dst, b, false
	}
	for i := uint32(0); i < n; i++ {
		var k []byte
		if k, rest, err = msgp.ReadMapKeyZC(rest); err != nil {
			return dst[:start], b, false
		}
		val := rest
		var ok bool
		if rest, ok = mpSkip(rest); !ok {
			return dst[:start], b, false
		}
		key := bytesString(k)
		dst = append(dst, MsgpackMember{keyTag(key), key, val[:len(val)-len(rest)]})
	}
	return dst, rest, true
}

// mpIndex lists the members of a MessagePack map once, so that reading
// several fields of a record scans its top level once (later duplicates
// replace earlier ones, as the tree's Get does). It reuses dst.
func mpIndex(b []byte, dst []MsgpackMember) ([]MsgpackMember, bool) {
	dst = dst[:0]
	n, rest, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return dst, false
	}
	for i := uint32(0); i < n; i++ {
		var k []byte
		if k, rest, err = msgp.ReadMapKeyZC(rest); err != nil {
			return dst[:0], false
		}
		val := rest
		var ok bool
		if rest, ok = mpSkip(rest); !ok {
			return dst[:0], false
		}
		key := bytesString(k)
		dst = append(dst, MsgpackMember{keyTag(key), key, val[:len(val)-len(rest)]})
	}
	return dst, true
}

// sameTagged compares two keys whose tags agree: the tag holds the length
// and the last eight bytes, so keys of up to 16 bytes need only their first
// eight compared.
func sameTagged(a, b string) bool {
	n := len(a)
	if n != len(b) {
		return false // the tag keeps the length modulo 32 only
	}
	if n <= 8 {
		return true
	}
	if n <= 16 {
		x := unsafe.Slice(unsafe.StringData(a), n)
		y := unsafe.Slice(unsafe.StringData(b), n)
		return binary.LittleEndian.Uint64(x) == binary.LittleEndian.Uint64(y)
	}
	return a == b
}

// mpSub is the index of one map below the top level, by its path.
type mpSub struct {
	path []string
	idx  []MsgpackMember
	ok   bool
}

// mpLookup finds a top-level member in an index (the last of duplicates).
func mpLookup(idx []MsgpackMember, key string) ([]byte, bool) {
	tag := keyTag(key)
	for i := len(idx) - 1; i >= 0; i-- {
		if idx[i].tag == tag && sameTagged(idx[i].key, key) {
			return idx[i].val, true
		}
	}
	return nil, false
}

// mpScalarAt reads a path below a top-level value as one keyword value.
func mpScalarAt(idx []MsgpackMember, path []string) (Value, mpStatus) {
	if len(path) == 0 {
		return Value{}, mpAbsent
	}
	b, ok := mpLookup(idx, path[0])
	if !ok {
		return Value{}, mpAbsent
	}
	return mpScalar(b, path[1:])
}

// mpScalar reads a path of keys from a MessagePack value as one keyword
// value.
func mpScalar(b []byte, path []string) (Value, mpStatus) {
	for _, k := range path {
		if msgp.NextType(b) != msgp.MapType {
			return Value{}, mpAbsent
		}
		v, ok := mpGet(b, k)
		if !ok {
			return Value{}, mpAbsent
		}
		b = v
	}
	switch t := msgp.NextType(b); t {
	case msgp.StrType, msgp.BinType:
		var s []byte
		var err error
		if t == msgp.StrType {
			s, _, err = msgp.ReadStringZC(b)
		} else {
			s, _, err = msgp.ReadBytesZC(b)
		}
		if err != nil {
			return Value{}, mpAbsent
		}
		switch text := bytesString(s); text {
		case "", "-", "none":
			return Value{}, mpRemoved
		default:
			return Value{Text: text}, mpFound
		}
	case msgp.BoolType:
		v, _, err := msgp.ReadBoolBytes(b)
		if err != nil {
			return Value{}, mpAbsent
		}
		return Value{Text: strconv.FormatBool(v), Kind: KindBool}, mpFound
	case msgp.NilType:
		return Value{}, mpRemoved
	case msgp.IntType:
		v, _, err := msgp.ReadInt64Bytes(b)
		if err != nil {
			return Value{}, mpAbsent
		}
		return Value{Text: strconv.FormatInt(v, 10), Kind: KindNumber}, mpFound
	case msgp.UintType:
		v, _, err := msgp.ReadUint64Bytes(b)
		if err != nil {
			return Value{}, mpAbsent
		}
		return Value{Text: strconv.FormatUint(v, 10), Kind: KindNumber}, mpFound
	}
	return Value{}, mpContainer
}
