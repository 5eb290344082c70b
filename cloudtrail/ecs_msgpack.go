package cloudtrail

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"unsafe"

	"github.com/trailwatch/trailwatch/matcher"

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

// MsgpackMember is one member of a map in a record: where its key and its
// value are in the record's bytes. It holds no pointer, so a chunk's list
// of members is memory the garbage collector does not scan.
type MsgpackMember struct {
	tag        uint64 // keyTag(key): a lookup compares keys only where tags agree
	koff, klen uint32
	voff, vlen uint32
	// sub is where the members of a map value begin in the record's list,
	// n how many there are; sub is -1 when the value is not a listed map.
	sub, n int32
}

func (m *MsgpackMember) key(rec []byte) string { return bytesString(rec[m.koff : m.koff+m.klen]) }
func (m *MsgpackMember) val(rec []byte) []byte { return rec[m.voff : m.voff+m.vlen] }

// MsgpackIndex lists a record's members: its top level first (Top of
// them), then the members of the maps listed below it.
type MsgpackIndex struct {
	Members []MsgpackMember
	Top     int
	hot     hotPos
}

// hotKeys are top-level CloudTrail keys that rules read from nearly every
// record: the walk notes where each one is, so that reading it, or finding
// it absent, takes no scan.
var hotKeys = [...]string{"eventSource", "eventName", "userIdentity", "errorCode", "errorMessage",
	"sourceIPAddress", "userAgent", "eventTime", "recipientAccountId", "awsRegion", "eventType",
	"requestParameters", "responseElements", "additionalEventData"}

// hotPos holds, per hot key, 1 + the place of its (last) member in the top
// level, or 0 when the record has none.
type hotPos [len(hotKeys)]int32

// hotTable maps a tag, by a multiplicative hash without collisions among
// the hot keys' tags, to 1 + the hot key's number (0: not a hot key).
var hotTags, hotMul, hotTable = func() (tags [len(hotKeys)]uint64, mul uint64, table [64]uint8) {
	for i, k := range hotKeys {
		tags[i] = keyTag(k)
	}
	for mul = 0x9e3779b97f4a7c15; ; mul += 2 {
		table = [64]uint8{}
		ok := true
		for i, t := range tags {
			b := (t * mul) >> 58
			if table[b] != 0 {
				ok = false
				break
			}
			table[b] = uint8(i + 1)
		}
		if ok {
			return tags, mul, table
		}
	}
}()

// hotKey returns the number of a hot key, or -1.
func hotKey(tag uint64, key string) int {
	i := int(hotTable[(tag*hotMul)>>58]) - 1
	if i < 0 || hotTags[i] != tag || !sameTagged(hotKeys[i], key) {
		return -1
	}
	return i
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

var userIdentityTag = keyTag("userIdentity")

// mpDeep is how deep below a listed map the maps inside it are listed.
const mpDeep = 4

// IndexMsgpack lists the members of the MessagePack map at the start of b,
// appending to dst, and returns the record's index, dst grown, and the
// bytes after the map: reading a chunk and indexing its records is one
// walk. userIdentity, which most rules read, is listed with the maps inside
// it; other maps are listed when a rule first reads below them.
func IndexMsgpack(b []byte, dst []MsgpackMember) (MsgpackIndex, []MsgpackMember, []byte, bool) {
	var idx MsgpackIndex
	out, rest, ok := IndexMsgpackInto(&idx, b, dst)
	return idx, out, rest, ok
}

// IndexMsgpackInto is IndexMsgpack writing the record's index into *idx
// (where the caller keeps it: no copy of the index per record).
func IndexMsgpackInto(idx *MsgpackIndex, b []byte, dst []MsgpackMember) ([]MsgpackMember, []byte, bool) {
	start := len(dst)
	idx.Members, idx.Top, idx.hot = nil, 0, hotPos{}
	if uint64(len(b)) > math.MaxUint32 {
		return dst, b, false
	}
	out, top, end, ok := listMap(b, 0, dst, start, 0, &idx.hot)
	if !ok {
		idx.hot = hotPos{}
		return dst[:start], b, false
	}
	idx.Members, idx.Top = out[start:len(out):len(out)], top
	return out, b[end:], true
}

// listMap lists the members of the map at rec[pos:]: their slots are
// taken first, so that a map's members are side by side, and the maps
// among them listed after (depth counts the levels above; the top level,
// depth 0, lists only userIdentity, and notes where the hot keys are in
// hot). Member places are from base; it returns where the map ends.
func listMap(rec []byte, pos int, dst []MsgpackMember, base, depth int, hot *hotPos) ([]MsgpackMember, int, int, bool) {
	n, rest, err := msgp.ReadMapHeaderBytes(rec[pos:])
	if err != nil || uint64(n) > uint64(len(rest))/2 { // a member takes two bytes at least
		return dst, 0, 0, false
	}
	at := len(dst)
	dst = slices.Grow(dst, int(n))[:at+int(n)] // every slot is written below
	for i := range int(n) {
		var k []byte
		if len(rest) > 0 && rest[0]&0xe0 == 0xa0 && len(rest) > int(rest[0]&0x1f) { // fixstr, the usual key
			l := 1 + int(rest[0]&0x1f)
			k, rest = rest[1:l], rest[l:]
		} else if k, rest, err = msgp.ReadMapKeyZC(rest); err != nil {
			return dst, 0, 0, false
		}
		key := bytesString(k)
		// The member's fields are kept in locals and stored into its slot
		// one by one at the end: a MsgpackMember put together on the stack
		// and copied whole makes the copy's wide loads wait on the narrow
		// stores that built it (that copy took 40 % of the walk's time in
		// a profile).
		tag := keyTag(key)
		voff := uint32(len(rec) - len(rest))
		sub, cn := int32(-1), int32(0)
		var ok bool
		if len(rest) > 0 && isMapLead(rest[0]) &&
			((depth == 0 && tag == userIdentityTag && key == "userIdentity") || (depth > 0 && depth < mpDeep)) {
			first := len(dst)
			var c, end int
			if dst, c, end, ok = listMap(rec, int(voff), dst, base, depth+1, nil); ok {
				sub, cn = int32(first-base), int32(c)
				rest = rec[end:]
			}
		} else if len(rest) == 0 {
			ok = false
		} else if n := int(mpFixed[rest[0]]); n != 0 && len(rest) >= n {
			rest, ok = rest[n:], true // a scalar of known size: most values
		} else if rest[0] == 0xd9 && len(rest) >= 2 && len(rest) >= 2+int(rest[1]) {
			rest, ok = rest[2+int(rest[1]):], true // str8: ARNs, user agents
		} else {
			rest, ok = mpSkip(rest)
		}
		if !ok {
			return dst, 0, 0, false
		}
		d := &dst[at+i]
		d.tag, d.koff, d.klen = tag, voff-uint32(len(k)), uint32(len(k))
		d.voff, d.vlen = voff, uint32(len(rec)-len(rest))-voff
		d.sub, d.n = sub, cn
		if hot != nil { // hotKey, written out: it is not inlined
			if h := int(hotTable[(tag*hotMul)>>58]) - 1; h >= 0 && hotTags[h] == tag && sameTagged(hotKeys[h], key) {
				hot[h] = int32(i + 1)
			}
		}
	}
	return dst, int(n), len(rec) - len(rest), true
}

func isMapLead(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

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

// mpSub is a map below the top level that the record's walk did not list,
// listed on first read, by its path.
type mpSub struct {
	path []string
	idx  []MsgpackMember // its members first (top of them), then the maps below
	top  int
	ok   bool
}

func mpMemberTag(rec []byte, idx []MsgpackMember, tag uint64, key string) *MsgpackMember {
	for i := len(idx) - 1; i >= 0; i-- {
		if idx[i].tag == tag && sameTagged(idx[i].key(rec), key) {
			return &idx[i]
		}
	}
	return nil
}

// mpScalar reads a MessagePack value as one keyword value.
func mpScalar(b []byte) (matcher.Value, mpStatus) {
	// fixstr and str8 (nearly every CloudTrail value) are read here; the
	// other kinds through msgp.
	if len(b) > 0 {
		var s []byte
		switch lead := b[0]; {
		case lead&0xe0 == 0xa0:
			if n := 1 + int(lead&0x1f); len(b) >= n {
				s = b[1:n]
			}
		case lead == 0xd9 && len(b) >= 2:
			if n := 2 + int(b[1]); len(b) >= n {
				s = b[2:n]
			}
		}
		if s != nil {
			switch text := bytesString(s); text {
			case "", "-", "none":
				return matcher.Value{}, mpRemoved
			default:
				return matcher.Value{Text: text}, mpFound
			}
		}
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
			return matcher.Value{}, mpAbsent
		}
		switch text := bytesString(s); text {
		case "", "-", "none":
			return matcher.Value{}, mpRemoved
		default:
			return matcher.Value{Text: text}, mpFound
		}
	case msgp.BoolType:
		v, _, err := msgp.ReadBoolBytes(b)
		if err != nil {
			return matcher.Value{}, mpAbsent
		}
		return matcher.Value{Text: strconv.FormatBool(v), Kind: matcher.KindBool}, mpFound
	case msgp.NilType:
		return matcher.Value{}, mpRemoved
	case msgp.IntType:
		v, _, err := msgp.ReadInt64Bytes(b)
		if err != nil {
			return matcher.Value{}, mpAbsent
		}
		return matcher.Value{Text: strconv.FormatInt(v, 10), Kind: matcher.KindNumber}, mpFound
	case msgp.UintType:
		v, _, err := msgp.ReadUint64Bytes(b)
		if err != nil {
			return matcher.Value{}, mpAbsent
		}
		return matcher.Value{Text: strconv.FormatUint(v, 10), Kind: matcher.KindNumber}, mpFound
	}
	return matcher.Value{}, mpContainer
}
