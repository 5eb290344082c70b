package conf

import (
	"errors"
	"fmt"

	"github.com/BurntSushi/toml"
)

// MaxTOMLNesting bounds how deeply arrays and inline tables may nest in a
// TOML file (rules, exceptions, serve's configuration). Rules nest three or
// four levels; the TOML parser recurses once a level (a few million levels
// overflow its stack, which no recover catches) and takes quadratic time
// on nested inline tables, so deeper text is refused before it is parsed.
const MaxTOMLNesting = 64

// CheckTOMLNesting scans TOML text for arrays and inline tables nested
// deeper than MaxTOMLNesting, outside strings and comments. It returns the
// line and column (1-based) of the bracket that goes too deep. Table
// headers ([t], [[t]]) count as the brackets they are, which keeps them far
// below the bound. Text that is not TOML is left to the parser to refuse.
func CheckTOMLNesting(data []byte) (line, col int, err error) {
	t := tomlText{data: data, line: 1}
	depth := 0
	for ; t.i < len(data); t.i++ {
		switch c := data[t.i]; c {
		case '\n':
			t.newline()
		case '#':
			for t.i+1 < len(data) && data[t.i+1] != '\n' {
				t.i++
			}
		case '"', '\'':
			t.skipString(c)
		case '[', '{':
			if depth++; depth > MaxTOMLNesting {
				return t.line, t.i - t.lineStart + 1, fmt.Errorf("arrays and inline tables nested deeper than %d levels", MaxTOMLNesting)
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return 0, 0, nil
}

// tomlText is a position in TOML text, with its line.
type tomlText struct {
	data            []byte
	i               int
	line, lineStart int
}

func (t *tomlText) newline() {
	t.line++
	t.lineStart = t.i + 1
}

// skipString moves from the opening quote q of a string to its closing
// quote: basic ("...") and literal ('...') strings end at their quote or
// the line's end (the parser refuses the latter), multi-line ones ("""
// and ”') at three quotes, up to two more quotes being part of the text.
func (t *tomlText) skipString(q byte) {
	d := t.data
	multi := t.i+2 < len(d) && d[t.i+1] == q && d[t.i+2] == q
	if multi {
		t.i += 2
	}
	for t.i++; t.i < len(d); t.i++ {
		switch d[t.i] {
		case '\\':
			if q == '"' && t.i+1 < len(d) {
				t.i++ // the escaped character
				if d[t.i] == '\n' {
					t.newline()
				}
			}
		case '\n':
			t.newline()
			if !multi {
				return
			}
		case q:
			if !multi {
				return
			}
			if t.i+2 < len(d) && d[t.i+1] == q && d[t.i+2] == q {
				t.i += 2
				for k := 0; k < 2 && t.i+1 < len(d) && d[t.i+1] == q; k++ {
					t.i++
				}
				return
			}
		}
	}
}

// DecodeTOML decodes a TOML file's text into v, after CheckTOMLNesting. A
// failure is an *Error with the file and, when known, the line and column.
func DecodeTOML(path string, data []byte, v any) (toml.MetaData, error) {
	if line, col, err := CheckTOMLNesting(data); err != nil {
		return toml.MetaData{}, &Error{File: path, Line: line, Col: col, Msg: "TOML: " + err.Error()}
	}
	md, err := toml.Decode(string(data), v)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return md, &Error{File: path, Line: pe.Position.Line, Col: pe.Position.Col, Msg: "TOML: " + pe.Message}
		}
		return md, &Error{File: path, Line: 1, Msg: "TOML: " + err.Error()}
	}
	return md, nil
}
