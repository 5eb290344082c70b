package matcher

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDate reads a date as Elasticsearch's default date format
// (strict_date_optional_time||epoch_millis) does. A missing offset is UTC.
func ParseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("empty date")
	}
	if t, ok := parseUTCStamp(s); ok {
		return t, nil
	}
	if isDigits(s) || (s[0] == '-' && isDigits(s[1:])) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is out of range for epoch milliseconds", s)
		}
		if len(s) >= 5 || s[0] == '-' {
			return time.UnixMilli(ms).UTC(), nil
		}
		// Four digits or fewer are a year in strict_date_optional_time.
	}
	layouts := []string{
		"2006", "2006-01", "2006-01-02",
		"2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999",
	}
	body, zone := s, ""
	if i := strings.IndexAny(s, "T"); i >= 0 {
		rest := s[i:]
		if j := strings.IndexAny(rest, "Z+-"); j >= 0 {
			body, zone = s[:i+j], rest[j:]
		}
	}
	loc := time.UTC
	if zone != "" && zone != "Z" {
		z, err := time.Parse("-07:00", zone)
		if err != nil {
			if z, err = time.Parse("-0700", zone); err != nil {
				if z, err = time.Parse("-07", zone); err != nil {
					return time.Time{}, fmt.Errorf("%q: bad time zone offset %q", s, zone)
				}
			}
		}
		_, off := z.Zone()
		loc = time.FixedZone("", off)
	}
	for _, l := range layouts {
		if t, err := time.ParseInLocation(l, body, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date (expected yyyy-MM-dd'T'HH:mm:ss.SSSZ or epoch milliseconds)", s)
}

// parseUTCStamp reads the form nearly every record's time has,
// yyyy-MM-ddTHH:mm:ss[.fraction]Z, without the general parser; ok is false
// for anything else (which the general parser then decides).
func parseUTCStamp(s string) (time.Time, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	nanos := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		digits := frac[1:]
		v, ok := num(20, len(digits))
		if !ok {
			return time.Time{}, false
		}
		for range 9 - len(digits) {
			v *= 10
		}
		nanos = v
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nanos, time.UTC)
	if t.Day() != d { // the 31st of a 30-day month, February 30th: not a date
		return time.Time{}, false
	}
	return t, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// DateMath is a date expression: an anchor ("now" or a date, written
// "date||" before math) followed by +N/-N units and an optional /unit
// rounding, as Elasticsearch's date math.
type DateMath struct {
	now    bool
	anchor time.Time
	ops    []dateOp
}

type dateOp struct {
	kind byte // '+', '-', '/'
	n    int
	unit byte // y M w d h H m s
}

func ParseDateMath(s string) (DateMath, error) {
	var d DateMath
	var math string
	switch {
	case strings.HasPrefix(s, "now"):
		d.now, math = true, s[3:]
	default:
		anchor := s
		if i := strings.Index(s, "||"); i >= 0 {
			anchor, math = s[:i], s[i+2:]
		}
		t, err := ParseDate(anchor)
		if err != nil {
			return d, err
		}
		d.anchor = t
	}
	for len(math) > 0 {
		op := dateOp{kind: math[0]}
		if op.kind != '+' && op.kind != '-' && op.kind != '/' {
			return d, fmt.Errorf("date math %q: expected +, - or / at %q", s, math)
		}
		math = math[1:]
		if op.kind != '/' {
			i := 0
			for i < len(math) && math[i] >= '0' && math[i] <= '9' {
				i++
			}
			op.n = 1
			if i > 0 {
				n, err := strconv.Atoi(math[:i])
				if err != nil {
					return d, fmt.Errorf("date math %q: bad number", s)
				}
				op.n = n
			}
			math = math[i:]
		}
		if len(math) == 0 || !strings.ContainsRune("yMwdhHms", rune(math[0])) {
			return d, fmt.Errorf("date math %q: expected a unit (y M w d h H m s)", s)
		}
		op.unit = math[0]
		math = math[1:]
		d.ops = append(d.ops, op)
	}
	return d, nil
}

// resolve gives the expression's instant in epoch milliseconds; roundUp picks
// the last millisecond of a rounded unit instead of the first.
func (d DateMath) resolve(now time.Time, roundUp bool) int64 {
	t := d.anchor
	if d.now {
		t = now.UTC()
	}
	for _, op := range d.ops {
		switch op.kind {
		case '+', '-':
			n := op.n
			if op.kind == '-' {
				n = -n
			}
			t = addUnit(t, op.unit, n)
		case '/':
			t = truncUnit(t, op.unit)
			if roundUp {
				t = addUnit(t, op.unit, 1).Add(-time.Millisecond)
			}
		}
	}
	return t.UnixMilli()
}

func addUnit(t time.Time, unit byte, n int) time.Time {
	switch unit {
	case 'y':
		return t.AddDate(n, 0, 0)
	case 'M':
		return t.AddDate(0, n, 0)
	case 'w':
		return t.AddDate(0, 0, 7*n)
	case 'd':
		return t.AddDate(0, 0, n)
	case 'h', 'H':
		return t.Add(time.Duration(n) * time.Hour)
	case 'm':
		return t.Add(time.Duration(n) * time.Minute)
	}
	return t.Add(time.Duration(n) * time.Second)
}

func truncUnit(t time.Time, unit byte) time.Time {
	y, mo, d := t.Date()
	switch unit {
	case 'y':
		return time.Date(y, 1, 1, 0, 0, 0, 0, t.Location())
	case 'M':
		return time.Date(y, mo, 1, 0, 0, 0, 0, t.Location())
	case 'w':
		wd := (int(t.Weekday()) + 6) % 7 // weeks start on Monday
		return time.Date(y, mo, d-wd, 0, 0, 0, 0, t.Location())
	case 'd':
		return time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
	case 'h', 'H':
		return t.Truncate(time.Hour)
	case 'm':
		return t.Truncate(time.Minute)
	}
	return t.Truncate(time.Second)
}

// ParseDuration reads an Elasticsearch date-math offset such as "now-7d" or
// a plain duration such as "7d", "24h" or "90m", returning its length.
func ParseDuration(s string) (time.Duration, error) {
	if !strings.HasPrefix(s, "now") {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d, nil // Go's form: 1h30m, 500ms
		}
	}
	expr := s
	if !strings.HasPrefix(expr, "now") {
		expr = "now-" + expr
	}
	d, err := ParseDateMath(expr)
	if err != nil || !d.now || len(d.ops) == 0 {
		return 0, fmt.Errorf("%q is not a duration such as now-7d, 7d, 24h or 30m", s)
	}
	ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := d.resolve(ref, false)
	return ref.Sub(time.UnixMilli(ms)), nil
}
