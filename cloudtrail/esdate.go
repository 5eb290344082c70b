package cloudtrail

import (
	"time"
)

// The AWS integration turns CloudTrail's times into dates with
// Elasticsearch's date processor: formats ISO8601 (and, for the session's
// creation date, basic_date_time_no_millis and basic_date_time), the UTC
// time zone when the text names none, strict resolution (no 30 February, no
// hour 24), and the processor's output format (Java's yyyy-MM-dd'T'HH:mm:ss.SSS with the zone offset)
// in UTC. The processor reads any value as its text, so a number is parsed
// as ISO8601 text too: it is never epoch milliseconds.

// esDateLayout is the date processor's output format, in UTC.
const esDateLayout = "2006-01-02T15:04:05.000Z07:00"

// formatESDate renders a parsed date as the date processor writes it:
// t.UTC().Format(esDateLayout), written digit by digit for the years of
// four digits (every record's @timestamp goes through it).
func formatESDate(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(esDateLayout)
	}
	hour, minute, sec := t.Clock()
	var b [24]byte
	put := func(at, n, width int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + n%10)
			n /= 10
		}
	}
	put(0, year, 4)
	b[4] = '-'
	put(5, int(month), 2)
	b[7] = '-'
	put(8, day, 2)
	b[10] = 'T'
	put(11, hour, 2)
	b[13] = ':'
	put(14, minute, 2)
	b[16] = ':'
	put(17, sec, 2)
	b[19] = '.'
	put(20, t.Nanosecond()/1e6, 3)
	b[23] = 'Z'
	return string(b[:])
}

// parseISO8601 reads a date as Elasticsearch's iso8601 format does: a
// four-digit year, then optionally -MM, -dd, 'T', HH, :mm, :ss, a fraction
// of one to nine digits after '.' or ',', and an offset (Z, ±HH, ±HHmm,
// ±HH:mm). Every field is checked strictly.
func parseISO8601(s string) (time.Time, bool) {
	p := dateScanner{s: s}
	year, ok := p.digits(4)
	if !ok {
		return time.Time{}, false
	}
	month, day := 1, 1
	hour, minute, sec, nsec := 0, 0, 0, 0
	loc := time.UTC
	if p.eat('-') {
		if month, ok = p.digits(2); !ok {
			return time.Time{}, false
		}
		if p.eat('-') {
			if day, ok = p.digits(2); !ok {
				return time.Time{}, false
			}
			if p.eat('T') {
				if hour, ok = p.digits(2); !ok {
					return time.Time{}, false
				}
				if p.eat(':') {
					if minute, ok = p.digits(2); !ok {
						return time.Time{}, false
					}
					if p.eat(':') {
						if sec, ok = p.digits(2); !ok {
							return time.Time{}, false
						}
						if p.eat('.') || p.eat(',') {
							if nsec, ok = p.fraction(); !ok {
								return time.Time{}, false
							}
						}
					}
				}
				if loc, ok = p.offset(); !ok {
					return time.Time{}, false
				}
			}
		}
	}
	if p.i != len(s) {
		return time.Time{}, false
	}
	return strictDate(year, month, day, hour, minute, sec, nsec, loc)
}

// parseBasicDateTime reads basic_date_time_no_millis (yyyyMMdd'T'HHmmssZ)
// and basic_date_time (yyyyMMdd'T'HHmmss.SSSZ), the creation date's other
// formats.
func parseBasicDateTime(s string) (time.Time, bool) {
	p := dateScanner{s: s}
	var f [6]int
	for i, n := range [6]int{4, 2, 2, 2, 2, 2} {
		if i == 3 && !p.eat('T') {
			return time.Time{}, false
		}
		v, ok := p.digits(n)
		if !ok {
			return time.Time{}, false
		}
		f[i] = v
	}
	nsec := 0
	if p.eat('.') {
		v, ok := p.digits(3)
		if !ok {
			return time.Time{}, false
		}
		nsec = v * 1e6
	}
	if p.i == len(s) {
		return time.Time{}, false // the offset is required
	}
	loc, ok := p.offset()
	if !ok || p.i != len(s) {
		return time.Time{}, false
	}
	return strictDate(f[0], f[1], f[2], f[3], f[4], f[5], nsec, loc)
}

// strictDate builds a date, refusing any field out of its range (Java's
// ResolverStyle.STRICT).
func strictDate(year, month, day, hour, minute, sec, nsec int, loc *time.Location) (time.Time, bool) {
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // 30 February, 31 April
		return time.Time{}, false
	}
	return t, true
}

type dateScanner struct {
	s string
	i int
}

func (p *dateScanner) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *dateScanner) digits(n int) (int, bool) {
	if p.i+n > len(p.s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(p.s[p.i : p.i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v, true
}

// fraction reads one to nine digits as nanoseconds.
func (p *dateScanner) fraction() (int, bool) {
	start, v := p.i, 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' && p.i-start < 9 {
		v = v*10 + int(p.s[p.i]-'0')
		p.i++
	}
	n := p.i - start
	if n == 0 {
		return 0, false
	}
	for ; n < 9; n++ {
		v *= 10
	}
	return v, true
}

// offset reads an optional Z, ±HH, ±HHmm or ±HH:mm (UTC when absent).
func (p *dateScanner) offset() (*time.Location, bool) {
	if p.i == len(p.s) {
		return time.UTC, true
	}
	if p.eat('Z') {
		return time.UTC, true
	}
	sign := 1
	switch {
	case p.eat('+'):
	case p.eat('-'):
		sign = -1
	default:
		return nil, false
	}
	h, ok := p.digits(2)
	if !ok || h > 18 {
		return nil, false
	}
	m := 0
	if p.i < len(p.s) {
		p.eat(':')
		if m, ok = p.digits(2); !ok || m > 59 {
			return nil, false
		}
	}
	return time.FixedZone("", sign*(h*3600+m*60)), true
}
