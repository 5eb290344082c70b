// Package logsafe makes strings that others chose (a peer's hostname, a
// forward tag, a file name found in a folder) safe to write in a log line:
// they cannot end the line, forge the next one or send escape sequences to
// a terminal.
package logsafe

import (
	"strconv"
	"strings"
	"unicode"
)

// Name returns s as it is when it is printable text without quotes or
// backslashes (a plain name reads plainly), and quoted, Go-style, with its
// control characters escaped, otherwise.
func Name(s string) string {
	if strings.ContainsAny(s, `"\`) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
