package doc

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// The expected strings below were worked out from HashMap's rules (bucket =
// (h ^ h>>>16) & (n-1), table 16 doubling past 3/4 full, insertion order
// within a bucket); the hash values are noted next to each case.
func TestJavaStringGolden(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{
			// bucketName h=1117008789 -> 1; acl h=96394 -> 11;
			// nested h=-1048944393 -> 13.
			"basic",
			`{"bucketName":"x","acl":["a","b"],"nested":{"k":"v"}}`,
			"{bucketName=x, acl=[a, b], nested={k=v}}",
		},
		{
			// 14 keys: the 13th put passes the threshold of 12 and the
			// table grows to 32. Buckets at 32: replication 0,
			// bucketName 1, tagging 1, website 2, cors 3, x-amz-acl 4,
			// Host 10, acl 11, lifecycle 16, versionId 18,
			// encryption 20, logging 25, location 26, policy 31.
			"resize to 32",
			`{"bucketName":"trail-logs","Host":"s3.amazonaws.com","acl":"","x-amz-acl":"private","policy":"p","versionId":"3","encryption":"","tagging":"","location":"","cors":"","lifecycle":"","website":"","logging":"","replication":""}`,
			"{replication=, bucketName=trail-logs, tagging=, website=, cors=, x-amz-acl=private, Host=s3.amazonaws.com, acl=, lifecycle=, versionId=3, encryption=, logging=, location=, policy=p}",
		},
		{
			// b h=98 -> 2, a h=97 -> 1; the second b replaces the first.
			"duplicate keys",
			`{"b":1,"a":2,"b":3}`,
			"{a=2, b=3}",
		},
		{
			"duplicate keys nested",
			`{"roleName":"r1","policyName":"p","roleName":"r2","policyDocument":{"Version":"2012-10-17","Version":"x"}}`,
			"{policyDocument={Version=x}, policyName=p, roleName=r2}",
		},
		{
			// Hashes over UTF-16 units: "𝄞clef" (D834 DD1E c l e f)
			// h=463595828 -> 5; "😀" (D83D DE00) h=1772899 -> 8;
			// "é" h=233 -> 9; "日本" h=835047 -> 11;
			// "a😀b" h=57849694 -> 12.
			"surrogate pairs",
			`{"😀":"smile","é":"e-acute","日本":"jp","a😀b":1,"𝄞clef":true}`,
			"{𝄞clef=true, 😀=smile, é=e-acute, 日本=jp, a😀b=1}",
		},
		{
			"numbers",
			`[1,-5,2147483648,9223372036854775808,1.5,1e7,0.0001,123.0,1E2]`,
			"[1, -5, 2147483648, 9223372036854775808, 1.5, 1.0E7, 1.0E-4, 123.0, 100.0]",
		},
		{
			"more numbers",
			`[0,-0,-0.0,2147483647,-2147483648,-2147483649,-9223372036854775808,-9223372036854775809,0.001,1234567.0,12345678.9,1e400,-1e400,1e-400,5e-324,0.1,100.0,1e21,1.0E-5,3.14159]`,
			"[0, 0, -0.0, 2147483647, -2147483648, -2147483649, -9223372036854775808, -9223372036854775809, 0.001, 1234567.0, 1.23456789E7, Infinity, -Infinity, 0.0, 4.9E-324, 0.1, 100.0, 1.0E21, 1.0E-5, 3.14159]",
		},
		{
			// s h=115 -> 3; nul h=109445 -> 4; t h=116 -> 4; f h=102
			// -> 6; list h=3322014 -> 12; empty h=96634189 -> 15.
			"scalars and empties",
			`{"empty":{},"list":[],"nul":null,"t":true,"f":false,"s":"a \"quoted\"\nline, with=signs"}`,
			"{s=a \"quoted\"\nline, with=signs, nul=null, t=true, f=false, list=[], empty={}}",
		},
		{
			// Aa and BB share h=2112 -> 0, AaBB and BBAa share
			// h=2031744 -> 15; userName h=-266666762 -> 12.
			"collisions keep insertion order",
			`{"userName":"alice","Aa":1,"BB":2,"AaBB":3,"BBAa":4}`,
			"{Aa=1, BB=2, userName=alice, AaBB=3, BBAa=4}",
		},
		{
			// The nine AaAa.. keys share one hash (h=-540425984 ->
			// bucket 9 at 16 and 32); the ninth entry in one bucket of
			// a 16-bucket table makes treeifyBin resize to 32 instead.
			// x h=120 -> 8 at 16 (it would come first) but 24 at 32,
			// so it comes last.
			"nine collisions resize a small table",
			`{"AaAaAaAa":1,"AaAaAaBB":2,"AaAaBBAa":3,"AaAaBBBB":4,"AaBBAaAa":5,"AaBBAaBB":6,"AaBBBBAa":7,"AaBBBBBB":8,"BBAaAaAa":9,"x":10}`,
			"{AaAaAaAa=1, AaAaAaBB=2, AaAaBBAa=3, AaAaBBBB=4, AaBBAaAa=5, AaBBAaBB=6, AaBBBBAa=7, AaBBBBBB=8, BBAaAaAa=9, x=10}",
		},
		{"empty object", `{}`, "{}"},
		{"empty array", `[]`, "[]"},
		{"top-level string", `"raw \"text\""`, `raw "text"`},
		{"top-level null", `null`, "null"},
		{"array of objects", `[{"a":1},{"b":[true,null]}]`, "[{a=1}, {b=[true, null]}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustParse(t, tt.in)
			if got := n.JavaString(); got != tt.want {
				t.Errorf("JavaString(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			if got := string(n.AppendJava([]byte("> "))); got != "> "+tt.want {
				t.Errorf("AppendJava prefix lost: %q", got)
			}
		})
	}
}

// refJavaHash is String.hashCode written the plain way, to cross-check the
// hash values quoted in the golden comments and the production hash.
func refJavaHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

func TestJavaHash(t *testing.T) {
	want := map[string]int32{
		"bucketName": 1117008789, "acl": 96394, "nested": -1048944393,
		"replication": -1062467636, "tagging": -1548432203, "policy": -982670030,
		"😀": 1772899, "é": 233, "日本": 835047, "a😀b": 57849694, "𝄞clef": 463595828,
		"Aa": 2112, "BB": 2112, "AaBB": 2031744, "userName": -266666762,
		"AaAaAaAa": -540425984, "BBAaAaAa": -540425984, "": 0,
	}
	for s, h := range want {
		if got := refJavaHash(s); got != h {
			t.Errorf("refJavaHash(%q) = %d, want %d", s, got, h)
		}
		if got := int32(javaHash(s)); got != h {
			t.Errorf("javaHash(%q) = %d, want %d", s, got, h)
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 2000; i++ {
		rs := make([]rune, r.IntN(10))
		for j := range rs {
			switch r.IntN(3) {
			case 0:
				rs[j] = rune(r.IntN(0x80))
			case 1:
				rs[j] = rune(0x80 + r.IntN(0xd700))
			default:
				rs[j] = rune(0x10000 + r.IntN(0x100000))
			}
		}
		s := string(rs)
		if int32(javaHash(s)) != refJavaHash(s) {
			t.Fatalf("javaHash(%q) = %d, want %d", s, int32(javaHash(s)), refJavaHash(s))
		}
	}
}

func TestJavaDouble(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{1, "1.0"}, {-1, "-1.0"}, {0.5, "0.5"}, {100, "100.0"},
		{1e-3, "0.001"}, {9.99e-4, "9.99E-4"}, {1e7, "1.0E7"}, {9999999, "9999999.0"},
		{1234567.125, "1234567.125"}, {1.25e-5, "1.25E-5"}, {-1e-4, "-1.0E-4"},
		{1e21, "1.0E21"}, {1e23, "1.0E23"}, {math.MaxFloat64, "1.7976931348623157E308"},
		{math.SmallestNonzeroFloat64, "4.9E-324"}, {2 * math.SmallestNonzeroFloat64, "9.9E-324"},
		{0.30000000000000004, "0.30000000000000004"}, {math.Copysign(0, -1), "-0.0"}, {0, "0.0"},
		{math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"}, {math.NaN(), "NaN"},
	}
	for _, tt := range tests {
		if got := string(appendJavaDouble(nil, tt.f)); got != tt.want {
			t.Errorf("appendJavaDouble(%v) = %s, want %s", tt.f, got, tt.want)
		}
	}
	// Every rendering reads back to the same double and has Java's shape.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		s := string(appendJavaDouble(nil, f))
		g, err := strconv.ParseFloat(s, 64)
		if err != nil || g != f {
			t.Fatalf("appendJavaDouble(%v) = %s reads back as %v, %v", f, s, g, err)
		}
		if a := math.Abs(f); (a >= 1e-3 && a < 1e7) == strings.Contains(s, "E") {
			t.Fatalf("appendJavaDouble(%v) = %s: wrong notation", f, s)
		}
		if !strings.Contains(s, ".") {
			t.Fatalf("appendJavaDouble(%v) = %s has no point", f, s)
		}
	}
}

func TestJavaNumberFromMsgpackText(t *testing.T) {
	tests := []struct {
		n    Node
		want string
	}{
		{Node{Kind: Number, Str: "1", Float: true}, "1.0"},
		{Node{Kind: Number, Str: "1e+21", Float: true}, "1.0E21"},
		{Node{Kind: Number, Str: "18446744073709551615"}, "18446744073709551615"},
		{Node{Kind: Number, Str: "not a number"}, "not a number"},
		{Node{Kind: Bool, Str: "true"}, "true"},
		{Node{Kind: Kind(42)}, "null"},
	}
	for _, tt := range tests {
		if got := tt.n.JavaString(); got != tt.want {
			t.Errorf("JavaString(%+v) = %s, want %s", tt.n, got, tt.want)
		}
	}
	var nilNode *Node
	if got := nilNode.JavaString(); got != "null" {
		t.Errorf("JavaString(nil) = %s", got)
	}
}

// refHashMap replays java.util.HashMap.putVal literally: chains as slices,
// append at the tail, resize splitting each chain into lo and hi lists,
// treeifyBin resizing tables under 64. Like the production code it keeps
// treeified bins in list order.
type refHashMap struct {
	tab       [][]int // indices into keys
	keys      []string
	vals      []*Node
	hashes    []uint32
	size, thr int
}

func (m *refHashMap) put(k string, v *Node) {
	if m.tab == nil {
		m.tab, m.thr = make([][]int, 16), 12
	}
	h := spread(uint32(refJavaHash(k)))
	i := h & uint32(len(m.tab)-1)
	for _, e := range m.tab[i] {
		if m.hashes[e] == h && m.keys[e] == k {
			m.vals[e] = v
			return
		}
	}
	m.keys, m.vals, m.hashes = append(m.keys, k), append(m.vals, v), append(m.hashes, h)
	m.tab[i] = append(m.tab[i], len(m.keys)-1)
	if len(m.tab[i]) >= 9 && len(m.tab) < 64 {
		m.resize()
	}
	m.size++
	if m.size > m.thr {
		m.resize()
	}
}

func (m *refHashMap) resize() {
	old := m.tab
	m.tab = make([][]int, 2*len(old))
	m.thr *= 2
	for j, chain := range old {
		for _, e := range chain {
			if m.hashes[e]&uint32(len(old)) == 0 {
				m.tab[j] = append(m.tab[j], e)
			} else {
				m.tab[j+len(old)] = append(m.tab[j+len(old)], e)
			}
		}
	}
}

func refJava(n *Node) string {
	if n == nil {
		return "null"
	}
	switch n.Kind {
	case Array:
		parts := make([]string, len(n.Arr))
		for i, e := range n.Arr {
			parts[i] = refJava(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case Object:
		var m refHashMap
		for _, mem := range n.Obj {
			m.put(mem.Key, mem.Val)
		}
		var parts []string
		for _, chain := range m.tab {
			for _, e := range chain {
				parts = append(parts, m.keys[e]+"="+refJava(m.vals[e]))
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return n.JavaString()
}

func TestJavaStringAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	words := []string{"Aa", "BB", "bucketName", "key", "x", "é", "😀", "", "k"}
	for i := 0; i < 3000; i++ {
		n := &Node{Kind: Object}
		k := r.IntN(20)
		if i%3 == 0 {
			k = r.IntN(300)
		}
		for j := 0; j < k; j++ {
			var sb strings.Builder
			for p := r.IntN(4); p >= 0; p-- {
				sb.WriteString(words[r.IntN(len(words))])
			}
			if r.IntN(2) == 0 {
				sb.WriteString(strconv.Itoa(r.IntN(400)))
			}
			n.Obj = append(n.Obj, Member{Key: sb.String(), Val: &Node{Kind: Number, Str: strconv.Itoa(j)}})
		}
		if got, want := n.JavaString(), refJava(n); got != want && !treeRisk(n) {
			t.Fatalf("JavaString = %s\nreference  = %s", got, want)
		}
	}
}

// treeRisk reports whether some bucket of a 64+ table could have been
// treeified (9 distinct keys agreeing in the low 6 bits of their hash).
func treeRisk(n *Node) bool {
	seen := map[string]bool{}
	count := map[uint32]int{}
	for _, m := range n.Obj {
		if !seen[m.Key] {
			seen[m.Key] = true
			count[spread(javaHash(m.Key))&63]++
		}
	}
	for _, c := range count {
		if c >= 9 {
			return true
		}
	}
	return false
}
