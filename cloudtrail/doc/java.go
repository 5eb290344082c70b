package doc

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// JavaString returns the text that Java's toString() produces on the value
// Elasticsearch's ingest json processor builds from n: objects are
// java.util.HashMap (Map.toString: "{k1=v1, k2=v2}" in HashMap iteration
// order), arrays are java.util.ArrayList ("[a, b]"), strings appear raw
// (no quotes, no escaping), null is "null", and numbers print as the boxed
// type Jackson creates: Integer, Long or BigInteger for integer literals,
// Double (Double.toString, JDK 19+ shortest form) for floating-point ones.
func (n *Node) JavaString() string {
	var buf [256]byte
	return string(n.AppendJava(buf[:0]))
}

// AppendJava appends the text of JavaString to dst.
func (n *Node) AppendJava(dst []byte) []byte {
	if n == nil {
		return append(dst, "null"...)
	}
	switch n.Kind {
	case Bool:
		if n.Str == "true" {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		return appendJavaNumber(dst, n.Str, n.Float)
	case String:
		return append(dst, n.Str...)
	case Array:
		dst = append(dst, '[')
		for i, e := range n.Arr {
			if i > 0 {
				dst = append(dst, ',', ' ')
			}
			dst = e.AppendJava(dst)
		}
		return append(dst, ']')
	case Object:
		return appendJavaMap(dst, n.Obj)
	}
	return append(dst, "null"...)
}

// javaHash returns Java's String.hashCode of s, computed over its UTF-16
// code units with int32 wrap-around. Invalid UTF-8 counts as U+FFFD, as
// a lenient decoder would read it.
func javaHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			h = 31*h + uint32(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + uint32(0xd800+(r>>10))
			h = 31*h + uint32(0xdc00+(r&0x3ff))
		} else {
			h = 31*h + uint32(r)
		}
	}
	return h
}

// spread is HashMap.hash: the high half folded into the low half.
func spread(h uint32) uint32 { return h ^ h>>16 }

type javaEntry struct {
	key  string
	val  *Node
	hash uint32 // spread hash
}

// appendJavaMap renders members as java.util.HashMap.toString does after
// the members were put in document order into a new HashMap().
//
// HashMap keeps a table of 2^k buckets (16 at first, doubled when the size
// passes 3/4 of the table, and also when a bucket reaches 9 entries while
// the table is smaller than 64). A key lives in bucket spread(hash) & (n-1);
// a new key goes to the tail of its bucket and a resize splits buckets
// preserving relative order, so iteration order is: bucket index, then
// first insertion. A duplicate key replaces the value in place.
//
// Not modelled: a bucket of 9 or more entries in a table of 64 or more is
// turned into a red-black tree, whose iteration order is not insertion
// order. That takes 9 keys whose spread hashes agree in their low 6+ bits
// in one object; such buckets are rendered in insertion order here.
func appendJavaMap(dst []byte, members []Member) []byte {
	if len(members) == 0 {
		return append(dst, '{', '}')
	}
	var small [16]javaEntry
	ents := javaEntries(small[:0], members)
	mask := javaTableSize(ents) - 1
	if len(ents) <= 32 {
		// Insertion sort: stable, and no allocation.
		for i := 1; i < len(ents); i++ {
			for j := i; j > 0 && ents[j].hash&mask < ents[j-1].hash&mask; j-- {
				ents[j], ents[j-1] = ents[j-1], ents[j]
			}
		}
	} else {
		slices.SortStableFunc(ents, func(a, b javaEntry) int {
			return int(a.hash&mask) - int(b.hash&mask)
		})
	}

	dst = append(dst, '{')
	first := true
	for _, e := range ents {
		if e.val == nil {
			// A removed key: it sized the table, but is not printed.
			continue
		}
		if !first {
			dst = append(dst, ',', ' ')
		}
		first = false
		dst = append(dst, e.key...)
		dst = append(dst, '=')
		dst = e.val.AppendJava(dst)
	}
	return append(dst, '}')
}

// javaTableSize replays HashMap.putVal's resizing over the distinct keys in
// insertion order and returns the final table length.
func javaTableSize(ents []javaEntry) uint32 {
	const (
		treeifyThreshold   = 8  // TREEIFY_THRESHOLD
		minTreeifyCapacity = 64 // MIN_TREEIFY_CAPACITY
	)
	n, threshold := uint32(16), 12
	// Bucket lengths matter only while the table is below 64 buckets.
	var count [minTreeifyCapacity]int
	recount := func(upto int) {
		clear(count[:])
		for _, e := range ents[:upto] {
			count[e.hash&(n-1)]++
		}
	}
	for i, e := range ents {
		if n < minTreeifyCapacity {
			b := e.hash & (n - 1)
			count[b]++
			if count[b] > treeifyThreshold {
				// treeifyBin on a small table resizes instead.
				n *= 2
				threshold *= 2
				recount(i + 1)
			}
		}
		if i+1 > threshold {
			n *= 2
			threshold *= 2
			if n < minTreeifyCapacity {
				recount(i + 1)
			}
		}
	}
	return n
}

// appendJavaNumber prints a number literal as Java prints the boxed value
// Jackson makes of it: Integer/Long (same text), BigInteger (the digits),
// or Double.
func appendJavaNumber(dst []byte, s string, float bool) []byte {
	if !float && !isFloatLiteral(s) {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.AppendInt(dst, i, 10)
		}
		// BigInteger: JSON integers have no leading zeros or '+', so
		// the literal is already its decimal form.
		return append(dst, s...)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return append(dst, s...)
	}
	return appendJavaDouble(dst, f)
}

// appendJavaDouble appends Double.toString(f) as specified since JDK 19:
// the shortest decimal that reads back as f (when that has one digit,
// the closest of one or two digits), printed plain when 1e-3 <= |f| < 1e7
// ("1.0", "0.001", "1234567.0") and in computerized scientific notation
// otherwise ("1.0E7", "1.234E-5").
func appendJavaDouble(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	digits, exp := decimalDigits(strconv.AppendFloat(buf[:0], f, 'e', -1, 64))
	if len(digits) == 1 {
		var buf2 [32]byte
		two := strconv.AppendFloat(buf2[:0], f, 'e', 1, 64)
		g, err := strconv.ParseFloat(string(two), 64)
		d2, e2 := decimalDigits(two) // rewrites two in place
		if err == nil && g == f && !(d2[0] == digits[0] && d2[1] == '0' && e2 == exp) {
			digits, exp = d2, e2
		}
	}
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	if f >= 1e-3 && f < 1e7 {
		point := exp + 1 // digits before the decimal point
		switch {
		case point <= 0:
			dst = append(dst, '0', '.')
			for ; point < 0; point++ {
				dst = append(dst, '0')
			}
			return append(dst, digits...)
		case point >= len(digits):
			dst = append(dst, digits...)
			for i := len(digits); i < point; i++ {
				dst = append(dst, '0')
			}
			return append(dst, '.', '0')
		default:
			dst = append(dst, digits[:point]...)
			dst = append(dst, '.')
			return append(dst, digits[point:]...)
		}
	}
	dst = append(dst, digits[0], '.')
	if len(digits) > 1 {
		dst = append(dst, digits[1:]...)
	} else {
		dst = append(dst, '0')
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(exp), 10)
}

// decimalDigits splits strconv's 'e' format "d.ddde±xx" into the digits
// (point removed, written in place) and the decimal exponent of the first.
func decimalDigits(b []byte) ([]byte, int) {
	e := 0
	for e < len(b) && b[e] != 'e' {
		e++
	}
	exp, _ := strconv.Atoi(string(b[e+1:]))
	mant := b[:e]
	if len(mant) > 1 && mant[1] == '.' {
		copy(mant[1:], mant[2:])
		mant = mant[:len(mant)-1]
	}
	return mant, exp
}

// JavaHashMapOrder returns the entries of a java.util.HashMap that was given
// the members in order (a later duplicate key replacing the earlier value in
// its place), in the order the map iterates them. Removed members (nil Val)
// size the table as they did in the map, and are left out of the result.
func JavaHashMapOrder(members []Member) []Member {
	ents := javaEntries(nil, members)
	mask := javaTableSize(ents) - 1
	slices.SortStableFunc(ents, func(a, b javaEntry) int {
		return int(a.hash&mask) - int(b.hash&mask)
	})
	out := make([]Member, 0, len(ents))
	for _, e := range ents {
		if e.val != nil {
			out = append(out, Member{Key: e.key, Val: e.val})
		}
	}
	return out
}

// javaEntries appends the distinct keys of members to ents in insertion
// order, a later duplicate replacing the earlier value in its place, as
// HashMap.put does.
func javaEntries(ents []javaEntry, members []Member) []javaEntry {
	if cap(ents) < len(members) {
		ents = make([]javaEntry, 0, len(members))
	}
	if len(members) <= 32 {
		for _, m := range members {
			h := spread(javaHash(m.Key))
			dup := false
			for i := range ents {
				if ents[i].hash == h && ents[i].key == m.Key {
					ents[i].val = m.Val
					dup = true
					break
				}
			}
			if !dup {
				ents = append(ents, javaEntry{m.Key, m.Val, h})
			}
		}
		return ents
	}
	index := make(map[string]int, len(members))
	for _, m := range members {
		if i, ok := index[m.Key]; ok {
			ents[i].val = m.Val
			continue
		}
		index[m.Key] = len(ents)
		ents = append(ents, javaEntry{m.Key, m.Val, spread(javaHash(m.Key))})
	}
	return ents
}
