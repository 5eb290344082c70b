package esql

import (
	"encoding/base64"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The scalar functions, with ES|QL's semantics (the function reference
// under docs/reference/query-languages/esql/_snippets/functions and the
// functions' evaluators): unless a function is documented to take
// multi-valued input, a null or multi-valued argument makes it null.

var aggNames = map[string]bool{"count": true, "count_distinct": true, "values": true, "min": true, "max": true, "sum": true, "avg": true}

// fn1 lifts a function of one single value.
func fn1(t typ, x cexpr, f func(k *ctx, a val) (val, bool)) cexpr {
	return cexpr{t: t, ev: func(k *ctx) mv {
		a, ok := single(x.ev(k))
		if !ok {
			return nil
		}
		r, ok := f(k, a)
		if !ok {
			return nil
		}
		return k.one(r)
	}}
}

// fn2 lifts a function of two single values.
func fn2(t typ, x, y cexpr, f func(a, b val) (val, bool)) cexpr {
	return cexpr{t: t, ev: func(k *ctx) mv {
		a, ok := single(x.ev(k))
		if !ok {
			return nil
		}
		b, ok := single(y.ev(k))
		if !ok {
			return nil
		}
		r, ok := f(a, b)
		if !ok {
			return nil
		}
		return k.one(r)
	}}
}

// mapEach applies f to each value (conversions take multi-valued input);
// values f refuses are left out, and null remains when none is left.
func mapEach(t typ, x cexpr, f func(a val) (val, bool)) cexpr {
	return cexpr{t: t, ev: func(k *ctx) mv {
		in := x.ev(k)
		if len(in) == 0 {
			return nil
		}
		out := k.alloc(len(in))[:0]
		for _, a := range in {
			if r, ok := f(a); ok {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}}
}

func (c *compiler) arity(e *expr, lo, hi int) {
	n := len(e.args)
	if e.star {
		c.fail(e.pos, "%s does not take *", strings.ToUpper(e.name))
	}
	if n < lo || hi >= 0 && n > hi {
		switch {
		case lo == hi:
			c.fail(e.pos, "%s takes %d argument(s), found %d", strings.ToUpper(e.name), lo, n)
		case hi < 0:
			c.fail(e.pos, "%s takes at least %d arguments, found %d", strings.ToUpper(e.name), lo, n)
		}
		c.fail(e.pos, "%s takes %d to %d arguments, found %d", strings.ToUpper(e.name), lo, hi, n)
	}
}

// want checks an argument's type.
func (c *compiler) want(e *expr, i int, x cexpr, ts ...typ) {
	if x.t == tyNull || slices.Contains(ts, x.t) {
		return
	}
	names := make([]string, len(ts))
	for j, t := range ts {
		names[j] = t.String()
	}
	c.fail(e.args[i].pos, "argument %d of %s must be %s, found [%s] of type %s", i+1, strings.ToUpper(e.name), strings.Join(names, " or "), c.text(e.args[i]), x.t)
}

func nullOf(t typ) cexpr { return cexpr{t: t, ev: func(*ctx) mv { return nil }} }

func (c *compiler) call(e *expr, s scope) cexpr {
	if aggNames[e.op] {
		c.fail(e.pos, "aggregate function %s is only allowed in STATS", strings.ToUpper(e.name))
	}
	if e.op == "case" {
		return c.caseFn(e, s)
	}
	args := make([]cexpr, len(e.args))
	for i, a := range e.args {
		args[i] = c.expr(a, s)
		if args[i].t == tyUnsupported {
			c.fail(a.pos, "cannot use [%s] of unsupported type in %s", c.text(a), strings.ToUpper(e.name))
		}
	}
	str := func(i int) { c.want(e, i, args[i], tyKeyword) }
	switch e.op {
	case "coalesce":
		c.arity(e, 1, -1)
		t := tyNull
		for i, a := range args {
			if a.t == tyDuration || a.t == tyPeriod {
				c.fail(e.args[i].pos, "COALESCE does not take time spans")
			}
			if t == tyNull {
				t = a.t
			} else if a.t != tyNull && a.t != t {
				c.fail(e.args[i].pos, "argument %d of COALESCE must be %s like the first, found %s", i+1, t, a.t)
			}
		}
		return cexpr{t: t, ev: func(k *ctx) mv {
			for _, a := range args {
				if m := a.ev(k); len(m) > 0 {
					return m
				}
			}
			return nil
		}}
	case "concat":
		c.arity(e, 2, -1)
		for i := range args {
			str(i)
		}
		return cexpr{t: tyKeyword, ev: func(k *ctx) mv {
			var b strings.Builder
			for _, a := range args {
				v, ok := single(a.ev(k))
				if !ok {
					return nil
				}
				b.WriteString(v.s)
			}
			return k.one(val{s: b.String()})
		}}
	case "now":
		c.arity(e, 0, 0)
		return cexpr{t: tyDate, ev: func(k *ctx) mv { return k.one(val{n: k.now}) }}
	case "date_trunc":
		c.arity(e, 2, 2)
		if args[0].t != tyDuration && args[0].t != tyPeriod {
			c.fail(e.args[0].pos, "the first argument of DATE_TRUNC must be a time span literal such as 1 hour, found [%s]", c.text(e.args[0]))
		}
		c.want(e, 1, args[1], tyDate)
		round := c.rounding(e.args[0].pos, args[0])
		return fn1(tyDate, args[1], func(_ *ctx, a val) (val, bool) { return val{n: round(a.n)}, true })
	case "date_diff":
		c.arity(e, 3, 3)
		str(0)
		c.want(e, 1, args[1], tyDate)
		c.want(e, 2, args[2], tyDate)
		if args[0].konst && len(args[0].cv) == 1 {
			if _, ok := dateDiff(args[0].cv[0].s, 0, 0); !ok {
				c.fail(e.args[0].pos, "invalid DATE_DIFF unit [%s]", args[0].cv[0].s)
			}
		}
		return cexpr{t: tyInt, ev: func(k *ctx) mv {
			u, ok1 := single(args[0].ev(k))
			a, ok2 := single(args[1].ev(k))
			b, ok3 := single(args[2].ev(k))
			if !ok1 || !ok2 || !ok3 {
				return nil
			}
			d, ok := dateDiff(u.s, a.n, b.n)
			if !ok {
				return nil
			}
			return k.one(val{n: d})
		}}
	case "starts_with", "ends_with", "contains":
		c.arity(e, 2, 2)
		str(0)
		str(1)
		f := strings.HasPrefix
		if e.op == "ends_with" {
			f = strings.HasSuffix
		} else if e.op == "contains" {
			f = strings.Contains
		}
		return fn2(tyBool, args[0], args[1], func(a, b val) (val, bool) { return boolMV(f(a.s, b.s))[0], true })
	case "to_lower", "to_upper":
		c.arity(e, 1, 1)
		str(0)
		f := javaLower
		if e.op == "to_upper" {
			f = strings.ToUpper
		}
		// Each value of a multi-valued field, as Elasticsearch 9.1 on
		// (it was null here).
		return mapEach(tyKeyword, args[0], func(a val) (val, bool) { return val{s: f(a.s)}, true })
	case "length":
		c.arity(e, 1, 1)
		str(0)
		return fn1(tyInt, args[0], func(_ *ctx, a val) (val, bool) { return val{n: int64(runeLen(a.s))}, true })
	case "substring":
		c.arity(e, 2, 3)
		str(0)
		c.want(e, 1, args[1], tyInt)
		if len(args) == 3 {
			c.want(e, 2, args[2], tyInt)
		}
		return cexpr{t: tyKeyword, ev: func(k *ctx) mv {
			s, ok1 := single(args[0].ev(k))
			st, ok2 := single(args[1].ev(k))
			if !ok1 || !ok2 {
				return nil
			}
			n := runeLen(s.s)
			from := startIndex(n, st.n)
			to := n
			if len(args) == 3 {
				l, ok := single(args[2].ev(k))
				if !ok || l.n < 0 {
					return nil
				}
				to = int(min(int64(n), int64(from)+l.n))
			}
			return k.one(val{s: runeSlice(s.s, from, to)})
		}}
	case "locate":
		c.arity(e, 2, 3)
		str(0)
		str(1)
		if len(args) == 3 {
			c.want(e, 2, args[2], tyInt)
		}
		return cexpr{t: tyInt, ev: func(k *ctx) mv {
			s, ok1 := single(args[0].ev(k))
			sub, ok2 := single(args[1].ev(k))
			if !ok1 || !ok2 {
				return nil
			}
			start := int64(0)
			if len(args) == 3 {
				v, ok := single(args[2].ev(k))
				if !ok {
					return nil
				}
				start = v.n
			}
			return k.one(val{n: int64(locate(s.s, sub.s, start))})
		}}
	case "trim", "ltrim", "rtrim":
		c.arity(e, 1, 1)
		str(0)
		op := e.op
		return fn1(tyKeyword, args[0], func(_ *ctx, a val) (val, bool) {
			s := a.s
			if op != "rtrim" {
				s = strings.TrimLeftFunc(s, javaWhitespace)
			}
			if op != "ltrim" {
				s = strings.TrimRightFunc(s, javaWhitespace)
			}
			return val{s: s}, true
		})
	case "split":
		c.arity(e, 2, 2)
		str(0)
		str(1)
		return cexpr{t: tyKeyword, ev: func(k *ctx) mv {
			s, ok1 := single(args[0].ev(k))
			d, ok2 := single(args[1].ev(k))
			if !ok1 || !ok2 || len(d.s) != 1 {
				return nil
			}
			parts := strings.Split(s.s, d.s)
			out := k.alloc(len(parts))
			for i, p := range parts {
				out[i] = val{s: p}
			}
			return out
		}}
	case "from_base64", "to_base64":
		c.arity(e, 1, 1)
		str(0)
		if e.op == "to_base64" {
			return fn1(tyKeyword, args[0], func(_ *ctx, a val) (val, bool) {
				return val{s: base64.StdEncoding.EncodeToString([]byte(a.s))}, true
			})
		}
		return fn1(tyKeyword, args[0], func(_ *ctx, a val) (val, bool) {
			// Bytes that are no UTF-8 text are null (with a warning), as
			// Elasticsearch's FromBase64 (elastic/elasticsearch#154955, in
			// 8.19 and 9.4 on): they were a row here.
			b, ok := fromBase64(a.s)
			return val{s: string(b)}, ok && utf8.Valid(b)
		})
	case "mv_count":
		c.arity(e, 1, 1)
		x := args[0]
		return cexpr{t: tyInt, ev: func(k *ctx) mv {
			m := x.ev(k)
			if len(m) == 0 {
				return nil
			}
			return k.one(val{n: int64(len(m))})
		}}
	case "mv_first", "mv_last":
		c.arity(e, 1, 1)
		x, last := args[0], e.op == "mv_last"
		return cexpr{t: x.t, ev: func(k *ctx) mv {
			m := x.ev(k)
			if len(m) <= 1 {
				return m
			}
			if last {
				return m[len(m)-1:]
			}
			return m[:1]
		}}
	case "mv_min", "mv_max":
		c.arity(e, 1, 1)
		x, isMax := args[0], e.op == "mv_max"
		return cexpr{t: x.t, ev: func(k *ctx) mv {
			m := x.ev(k)
			if len(m) <= 1 {
				return m
			}
			best := 0
			for i := range m {
				d := compareVals(x.t, m[i], m[best])
				if isMax && d > 0 || !isMax && d < 0 {
					best = i
				}
			}
			return m[best : best+1]
		}}
	case "mv_dedupe":
		c.arity(e, 1, 1)
		x := args[0]
		return cexpr{t: x.t, ev: func(k *ctx) mv {
			m := x.ev(k)
			if len(m) <= 1 {
				return m
			}
			out := k.alloc(len(m))[:0]
			for _, v := range m {
				if !slices.ContainsFunc(out, func(o val) bool { return compareVals(x.t, o, v) == 0 }) {
					out = append(out, v)
				}
			}
			return out
		}}
	case "mv_concat":
		c.arity(e, 2, 2)
		str(0)
		str(1)
		return cexpr{t: tyKeyword, ev: func(k *ctx) mv {
			m := args[0].ev(k)
			d, ok := single(args[1].ev(k))
			if len(m) == 0 || !ok {
				return nil
			}
			parts := make([]string, len(m))
			for i, v := range m {
				parts[i] = v.s
			}
			return k.one(val{s: strings.Join(parts, d.s)})
		}}
	case "cidr_match":
		c.arity(e, 2, -1)
		c.want(e, 0, args[0], tyIP)
		for i := 1; i < len(args); i++ {
			str(i)
		}
		return cexpr{t: tyBool, ev: func(k *ctx) mv {
			a, ok := single(args[0].ev(k))
			if !ok {
				return nil
			}
			addr := netip.AddrFrom16([16]byte([]byte(a.s)))
			for _, b := range args[1:] {
				for _, blk := range b.ev(k) {
					if cidrContains(blk.s, addr) {
						return mvTrue
					}
				}
			}
			return mvFalse
		}}
	case "to_string", "to_double", "to_long", "to_integer", "to_int", "to_boolean", "to_bool", "to_datetime", "to_ip":
		c.arity(e, 1, 1)
		return c.convert(e, e.args[0].pos, strings.TrimPrefix(e.op, "to_"), args[0])
	}
	c.fail(e.pos, "function %s is not supported", strings.ToUpper(e.name))
	return cexpr{}
}

// caseFn is CASE(cond, value, ..., [else]): the value of the first
// condition that is true; a null or multi-valued condition counts as false
// (Case.java: "CASE expects a single-valued boolean"); values are
// evaluated only when chosen.
func (c *compiler) caseFn(e *expr, s scope) cexpr {
	if len(e.args) < 2 || e.star {
		c.fail(e.pos, "CASE takes at least two arguments")
	}
	n := len(e.args)
	conds := make([]func(*ctx) bool, 0, n/2)
	vals := make([]cexpr, 0, n/2+1)
	t := tyNull
	take := func(i int) cexpr {
		x := c.expr(e.args[i], s)
		switch {
		case x.t == tyUnsupported || x.t == tyDuration || x.t == tyPeriod:
			c.fail(e.args[i].pos, "CASE cannot return [%s] of type %s", c.text(e.args[i]), x.t)
		case t == tyNull:
			t = x.t
		case x.t != tyNull && x.t != t:
			c.fail(e.args[i].pos, "CASE's values must have one type: [%s] is %s, an earlier one %s", c.text(e.args[i]), x.t, t)
		}
		return x
	}
	for i := 0; i+1 < n; i += 2 {
		conds = append(conds, truthy(c.boolArg(e.args[i], s)))
		vals = append(vals, take(i+1))
	}
	var other *cexpr
	if n%2 == 1 {
		x := take(n - 1)
		other = &x
	}
	return cexpr{t: t, ev: func(k *ctx) mv {
		for i, cond := range conds {
			if cond(k) {
				return vals[i].ev(k)
			}
		}
		if other != nil {
			return other.ev(k)
		}
		return nil
	}}
}

// cast is `x::type`, the conversion function of that type.
func (c *compiler) cast(e *expr, x cexpr) cexpr {
	names := map[string]string{
		"keyword": "string", "string": "string", "text": "string", "double": "double", "long": "long",
		"integer": "integer", "int": "integer", "boolean": "boolean", "bool": "boolean",
		"datetime": "datetime", "date": "datetime", "ip": "ip",
	}
	to, ok := names[e.op]
	if !ok {
		c.fail(e.pos, "unsupported conversion to %s", e.op)
	}
	if x.t == tyUnsupported {
		c.fail(e.pos, "cannot convert [%s] of unsupported type", c.text(e.args[0]))
	}
	return c.convert(e, e.pos, to, x)
}

// convert is TO_STRING, TO_DOUBLE, ... over each value (as
// AbstractConvertFunction: a value that cannot be converted is left out
// with a warning).
func (c *compiler) convert(e *expr, pos int, to string, x cexpr) cexpr {
	from := x.t
	if from == tyDuration || from == tyPeriod {
		c.fail(pos, "cannot convert a time span")
	}
	switch to {
	case "string":
		return mapEach(tyKeyword, x, func(a val) (val, bool) { return val{s: toKeyword(from, a)}, true })
	case "double":
		return mapEach(tyDouble, x, func(a val) (val, bool) {
			switch from {
			case tyDouble:
				return a, true
			case tyKeyword:
				f, err := strconv.ParseFloat(strings.TrimSpace(a.s), 64)
				return val{f: f}, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
			case tyIP:
				return val{}, false
			}
			return val{f: float64(a.n)}, true
		})
	case "long", "integer":
		t, lo, hi := tyLong, int64(math.MinInt64), int64(math.MaxInt64)
		if to == "integer" {
			t, lo, hi = tyInt, math.MinInt32, math.MaxInt32
		}
		return mapEach(t, x, func(a val) (val, bool) {
			n := a.n
			switch from {
			case tyIP:
				return val{}, false
			case tyDouble, tyKeyword:
				f := a.f
				if from == tyKeyword {
					s := strings.TrimSpace(a.s)
					if i, err := strconv.ParseInt(s, 10, 64); err == nil {
						return val{n: i}, i >= lo && i <= hi
					}
					var err error
					if f, err = strconv.ParseFloat(s, 64); err != nil {
						return val{}, false
					}
				}
				if math.IsNaN(f) || f < float64(lo) || f >= float64(hi)+1 {
					return val{}, false
				}
				n = int64(f)
			}
			return val{n: n}, n >= lo && n <= hi
		})
	case "boolean":
		return mapEach(tyBool, x, func(a val) (val, bool) {
			switch from {
			case tyKeyword:
				return boolMV(strings.EqualFold(a.s, "true"))[0], true
			case tyDouble:
				return boolMV(a.f != 0)[0], true
			case tyIP, tyDate:
				return val{}, false
			}
			return boolMV(a.n != 0)[0], true
		})
	case "datetime":
		return mapEach(tyDate, x, func(a val) (val, bool) {
			switch from {
			case tyKeyword:
				return parseDateVal(a.s)
			case tyDouble:
				return val{n: int64(a.f)}, !math.IsNaN(a.f) && math.Abs(a.f) < 9.2e18
			case tyIP, tyBool:
				return val{}, false
			}
			return a, true
		})
	case "ip":
		return mapEach(tyIP, x, func(a val) (val, bool) {
			switch from {
			case tyIP:
				return a, true
			case tyKeyword:
				return parseIPVal(a.s)
			}
			return val{}, false
		})
	}
	c.fail(pos, "unsupported conversion to %s", to)
	return cexpr{}
}

// rounding is DATE_TRUNC's rounding for a time span (DateTrunc.java): a
// duration rounds down to a multiple of it since the epoch; a period of one
// day, one week (from Monday), N months, one quarter or N years rounds to
// the calendar unit's start in UTC; N days to a multiple of N days.
func (c *compiler) rounding(pos int, sp cexpr) func(ms int64) int64 {
	s := sp.span
	floor := func(ms, unit int64) int64 {
		q := ms / unit
		if ms%unit != 0 && ms < 0 {
			q--
		}
		return q * unit
	}
	const day = 86_400_000
	switch {
	case sp.t == tyDuration:
		if s.ms <= 0 {
			c.fail(pos, "zero or negative time interval is not supported")
		}
		return func(ms int64) int64 { return floor(ms, s.ms) }
	case s.months == 0 && s.days == 7:
		// Weeks start on Monday; 1970-01-01 was a Thursday.
		return func(ms int64) int64 { return floor(ms-4*day, 7*day) + 4*day }
	case s.months == 0 && s.days > 0:
		return func(ms int64) int64 { return floor(ms, int64(s.days)*day) }
	case s.days == 0 && s.months > 0:
		n := s.months
		if n == 3 || n%12 == 0 || n < 12 && 12%n == 0 {
			return func(ms int64) int64 {
				t := time.UnixMilli(ms).UTC()
				if n%12 == 0 {
					y := t.Year() - ((t.Year()%(n/12))+n/12)%(n/12)
					return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
				}
				m := int(t.Month()) - 1
				return time.Date(t.Year(), time.Month(m-m%n+1), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
			}
		}
	}
	c.fail(pos, "time interval [%s] is not supported by DATE_TRUNC", c.src[pos:sp.end])
	return nil
}

// dateDiff is DATE_DIFF's difference from a to b (epoch ms) in unit
// (DateDiff.java's units and abbreviations); false for an unknown unit or a
// result outside an integer.
func dateDiff(unit string, a, b int64) (int64, bool) {
	var d int64
	diff := b - a
	switch strings.ToLower(unit) {
	case "year", "years", "yy", "yyyy":
		d = monthsBetween(a, b) / 12
	case "quarter", "quarters", "qq", "q":
		d = monthsBetween(a, b) / 3
	case "month", "months", "mm", "m":
		d = monthsBetween(a, b)
	case "dayofyear", "dy", "y", "day", "days", "dd", "d", "weekday", "weekdays", "dw":
		d = diff / 86_400_000
	case "week", "weeks", "wk", "ww":
		d = diff / (7 * 86_400_000)
	case "hour", "hours", "hh":
		d = diff / 3_600_000
	case "minute", "minutes", "mi", "n":
		d = diff / 60_000
	case "second", "seconds", "ss", "s":
		d = diff / 1000
	case "millisecond", "milliseconds", "ms":
		d = diff
	case "microsecond", "microseconds", "mcs":
		d = diff * 1000
		if diff != 0 && d/1000 != diff {
			return 0, false
		}
	case "nanosecond", "nanoseconds", "ns":
		d = diff * 1_000_000
		if diff != 0 && d/1_000_000 != diff {
			return 0, false
		}
	default:
		return 0, false
	}
	return d, d >= math.MinInt32 && d <= math.MaxInt32
}

// monthsBetween counts whole calendar months from a to b in UTC, as
// ChronoUnit.MONTHS.between does (toward zero).
func monthsBetween(a, b int64) int64 {
	ta, tb := time.UnixMilli(a).UTC(), time.UnixMilli(b).UTC()
	m := int64(tb.Year()-ta.Year())*12 + int64(tb.Month()-ta.Month())
	// The rest of each date within its month: day, then time of day.
	rest := func(t time.Time) int64 {
		return int64(t.Day())*86_400_000 + int64(t.Hour())*3_600_000 + int64(t.Minute())*60_000 + int64(t.Second())*1000 + int64(t.Nanosecond()/1e6)
	}
	if m > 0 && rest(tb) < rest(ta) {
		m--
	} else if m < 0 && rest(tb) > rest(ta) {
		m++
	}
	return m
}

// startIndex is SUBSTRING's and LOCATE's start (1-based; 0 as 1; negative
// from the end), clamped to the text.
func startIndex(n int, start int64) int {
	var i int64
	switch {
	case start > 0:
		i = start - 1
	case start < 0:
		i = int64(n) + start
	}
	return int(min(max(0, i), int64(n)))
}

func runeSlice(s string, from, to int) string {
	if from >= to {
		return ""
	}
	i, b, e := 0, len(s), len(s)
	for off := range s {
		if i == from {
			b = off
		}
		if i == to {
			e = off
			break
		}
		i++
	}
	return s[b:e]
}

// locate is LOCATE: the 1-based position of sub in s from start, 0 when
// absent.
func locate(s, sub string, start int64) int {
	if len(s) < len(sub) {
		return 0
	}
	from := startIndex(runeLen(s), start)
	off := len(runeSlice(s, 0, from))
	i := strings.Index(s[off:], sub)
	if i < 0 {
		return 0
	}
	return 1 + runeLen(s[:off+i])
}

// javaWhitespace is Java's Character.isWhitespace: Unicode spaces except
// the non-breaking ones, and the ASCII controls \t \n \v \f \r and 0x1C-0x1F.
func javaWhitespace(r rune) bool {
	switch r {
	case '\u00a0', '\u2007', '\u202f':
		return false
	case '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f:
		return true
	}
	return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

// fromBase64 decodes as Java's basic Base64 decoder: the standard alphabet,
// padding optional, nothing else.
// javaLower is Java's String.toLowerCase(Locale.ROOT), which Elasticsearch's
// TO_LOWER calls: Go's case mapping but for SpecialCasing's two mappings
// outside a locale, İ (U+0130) to i and a combining dot above (Go gives a
// bare i: "İMPORT SOCKET" became "import socket", which a rule's
// suspicious-script pattern matched and Elasticsearch's did not), and a
// final capital sigma to ς.
func javaLower(s string) string {
	if !strings.ContainsRune(s, 'İ') && !strings.ContainsRune(s, 'Σ') {
		return strings.ToLower(s)
	}
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && i > 0 && unicode.IsLetter(rs[i-1]) && (i+1 == len(rs) || !unicode.IsLetter(rs[i+1])):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func fromBase64(s string) ([]byte, bool) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	if strings.HasSuffix(s, "=") {
		return nil, false
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	return b, err == nil && utf8.ValidString(s)
}

func cidrContains(block string, a netip.Addr) bool {
	p, err := netip.ParsePrefix(strings.TrimSpace(block))
	if err != nil {
		return false
	}
	if p.Addr().Is4() {
		p = netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
	}
	return p.Masked().Contains(a)
}
