package cloudtrail

import (
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// sortJava sorts strings as Java's String.compareTo orders them: by UTF-16
// code units, which differs from Go's byte order for characters above
// U+FFFF against those from U+E000 to U+FFFF.
func sortJava(ss []string) { slices.SortFunc(ss, compareJava) }

func compareJava(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := javaUnit(ra), javaUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			// Same first unit: both are surrogate pairs; compare the second.
			_, la := utf16.EncodeRune(ra)
			_, lb := utf16.EncodeRune(rb)
			return int(la) - int(lb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// javaUnit is a character's first UTF-16 code unit.
func javaUnit(r rune) rune {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return hi
	}
	return r
}
