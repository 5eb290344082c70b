// Package doc holds an ordered JSON document tree and the renderings that the
// ECS layer needs: compact JSON, the text Elasticsearch indexes into a keyword
// field, and the text of Java's Map.toString() on the java.util.HashMap that
// Elasticsearch's ingest json processor builds.
//
// Trees come from JSON (ParseJSON, ParseJSONPrefix) or from MessagePack
// (ReadMsgpack). Object members keep document order and duplicate keys; the
// nodes of one parse are carved from a few shared chunks, so a tree costs a
// handful of allocations beyond its strings.
package doc

import "strconv"

// MaxDepth is the deepest nesting of arrays and objects that the parsers
// accept. A top-level array or object is at depth 1.
const MaxDepth = 512

// MaxValues is the most values (scalars, arrays and objects, the document
// itself included) that the parsers accept in one document: a tree costs
// about 100 bytes a value, so a document of tiny values ([{},{},...], three
// bytes of text each) stops at about 50 MB. CloudTrail events hold hundreds.
const MaxValues = 1 << 19

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"null", "bool", "number", "string", "array", "object"}

// String returns the kind's lower-case JSON name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Member is one key/value pair of an object. A member whose Val is nil is a
// removed key: it still counts when Java's HashMap table size is replayed
// (a HashMap never shrinks), but it is not printed, serialized or returned
// by Get.
type Member struct {
	Key string
	Val *Node
}

// Node is one JSON value.
type Node struct {
	Kind Kind
	// Str holds the text of a String, the literal of a Number as written
	// in JSON (or as formatted from MessagePack), and "true" or "false"
	// for a Bool.
	Str string
	// Float is true for a Number that is floating point: the JSON literal
	// had '.', 'e' or 'E', or the MessagePack value was a float32/float64.
	Float bool
	// Arr holds the elements of an Array.
	Arr []*Node
	// Obj holds the members of an Object in document order, duplicate
	// keys kept as they come.
	Obj []Member
}

// Get returns the value of the object member named key. It returns nil when
// n is nil, is not an object, or has no such member. With duplicate keys the
// last one wins, as it does when Jackson builds a map.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Object {
		return nil
	}
	for i := len(n.Obj) - 1; i >= 0; i-- {
		if n.Obj[i].Key == key {
			return n.Obj[i].Val
		}
	}
	return nil
}

// Path follows keys through nested objects, as Get does at each step. It
// returns n itself for no keys and nil as soon as a step is missing.
func (n *Node) Path(keys ...string) *Node {
	for _, k := range keys {
		n = n.Get(k)
		if n == nil {
			return nil
		}
	}
	return n
}

// KeywordText returns a scalar's text as Elasticsearch indexes it into a
// keyword field: a String's text, "true" or "false" for a Bool, and a
// Number's literal. It returns false for nil, Null, Array and Object.
func (n *Node) KeywordText() (string, bool) {
	if n == nil {
		return "", false
	}
	switch n.Kind {
	case String, Number:
		return n.Str, true
	case Bool:
		if n.Str == "true" {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// slab hands out Nodes and exact-size child slices carved from shared
// chunks, so that one parse costs a few allocations instead of one per
// value. A chunk is never appended to past the length handed out, so the
// slices stay independent.
type slab struct {
	nodes []Node
	ptrs  []*Node
	mems  []Member
	next  int // size of the next node chunk
}

const maxChunk = 1024

func (s *slab) reset(hint int) {
	*s = slab{next: min(max(hint, 16), maxChunk)}
}

func (s *slab) node(k Kind) *Node {
	if len(s.nodes) == cap(s.nodes) {
		s.nodes = make([]Node, 0, s.next)
		s.next = min(s.next*2, maxChunk)
	}
	s.nodes = s.nodes[:len(s.nodes)+1]
	n := &s.nodes[len(s.nodes)-1]
	n.Kind = k
	return n
}

func (s *slab) scalar(k Kind, str string, float bool) *Node {
	n := s.node(k)
	n.Str = str
	n.Float = float
	return n
}

// elems copies src into a slice of exactly len(src) elements.
func (s *slab) elems(src []*Node) []*Node {
	k := len(src)
	if k == 0 {
		return nil
	}
	if cap(s.ptrs)-len(s.ptrs) < k {
		s.ptrs = make([]*Node, 0, max(k, 64))
	}
	i := len(s.ptrs)
	s.ptrs = append(s.ptrs, src...)
	return s.ptrs[i : i+k : i+k]
}

// members copies src into a slice of exactly len(src) members.
func (s *slab) members(src []Member) []Member {
	k := len(src)
	if k == 0 {
		return nil
	}
	if cap(s.mems)-len(s.mems) < k {
		s.mems = make([]Member, 0, max(k, 32))
	}
	i := len(s.mems)
	s.mems = append(s.mems, src...)
	return s.mems[i : i+k : i+k]
}
