package esql

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/matcher"
)

// cexpr is a compiled expression: its type and how to evaluate it on a row.
type cexpr struct {
	t     typ
	ev    func(*ctx) mv
	konst bool // a literal: ev always answers cv
	cv    mv
	span  span           // the value of a time span literal
	field *matcher.Field // set when the expression reads a source field as it is
	// A boolean may also give its three-valued truth without making a
	// value (tv: 1 true, 0 false, -1 null), say how to test it where only
	// true counts (truthy), and, for an AND, its parts (conjuncts).
	tv     func(*ctx) int
	isTrue func(*ctx) bool
	conj   []func(*ctx) bool
	pos    int
	end    int
}

// span is a time_duration (ms) or a date_period (months and days).
type span struct {
	ms           int64
	months, days int
}

// scope resolves a column name where an expression is compiled.
type scope interface {
	lookup(name string, pos int) cexpr
}

func (c *compiler) text(e *expr) string { return c.src[e.pos:e.end] }

func constExpr(t typ, m mv, e *expr) cexpr {
	return cexpr{t: t, konst: true, cv: m, ev: func(*ctx) mv { return m }, pos: e.pos, end: e.end}
}

// expr compiles e in scope s.
func (c *compiler) expr(e *expr, s scope) cexpr {
	r := c.expr1(e, s)
	r.pos, r.end = e.pos, e.end
	return r
}

func (c *compiler) expr1(e *expr, s scope) cexpr {
	switch e.kind {
	case exLit:
		return c.literal(e)
	case exSpan:
		return c.spanLit(e)
	case exArray:
		var t typ
		var m mv
		for _, a := range e.args {
			x := c.literal(a)
			if t == tyNull {
				t = x.t
			}
			switch {
			case x.t == t:
			case t.numeric() && x.t.numeric():
				t = widen(t, x.t)
			default:
				c.fail(a.pos, "an array's values must have one type: %s and %s", t, x.t)
			}
			m = append(m, x.cv...)
		}
		if t == tyDouble {
			for i, a := range e.args {
				if x := c.literal(a); x.t != tyDouble {
					m[i] = val{f: float64(x.cv[0].n)}
				}
			}
		}
		return constExpr(t, m, e)
	case exField:
		return s.lookup(e.name, e.pos)
	case exCall:
		return c.call(e, s)
	case exCast:
		return c.cast(e, c.expr(e.args[0], s))
	case exNeg:
		return c.negate(e, c.expr(e.args[0], s))
	case exArith:
		return c.arith(e, c.expr(e.args[0], s), c.expr(e.args[1], s))
	case exCmp:
		return c.compare(e, e.op, c.expr(e.args[0], s), c.expr(e.args[1], s))
	case exAnd, exOr:
		return c.logic(e, c.boolArg(e.args[0], s), c.boolArg(e.args[1], s))
	case exNot:
		x := tvOf(c.boolArg(e.args[0], s))
		return boolExpr(func(k *ctx) int {
			if t := x(k); t >= 0 {
				return 1 - t
			}
			return -1
		})
	case exIn:
		return c.in(e, s)
	case exIsNull:
		x := c.expr(e.args[0], s)
		if x.t == tyUnsupported {
			c.fail(e.pos, "cannot use [%s] of unsupported type in IS NULL", c.text(e.args[0]))
		}
		neg, ev := e.neg, x.ev
		return boolExpr(func(k *ctx) int { return b2i((len(ev(k)) == 0) != neg) })
	case exLike, exRLike:
		return c.like(e, s)
	}
	c.fail(e.pos, "unsupported expression")
	return cexpr{}
}

// boolArg compiles an operand that must be a boolean (or null).
func (c *compiler) boolArg(e *expr, s scope) cexpr {
	x := c.expr(e, s)
	if x.t != tyBool && x.t != tyNull {
		c.fail(e.pos, "[%s] must be a boolean, found %s", c.text(e), x.t)
	}
	return x
}

func (c *compiler) literal(e *expr) cexpr {
	switch e.lit {
	case litNull:
		return constExpr(tyNull, nil, e)
	case litBool:
		return constExpr(tyBool, boolMV(e.text == "true"), e)
	case litString:
		return constExpr(tyKeyword, mv{{s: e.text}}, e)
	case litInt:
		if n, err := strconv.ParseInt(e.text, 10, 64); err == nil {
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return constExpr(tyInt, mv{{n: n}}, e)
			}
			return constExpr(tyLong, mv{{n: n}}, e)
		}
		fallthrough // beyond a long: a double, as ES|QL reads it
	case litDecimal:
		f, err := strconv.ParseFloat(e.text, 64)
		if err != nil && !strings.Contains(err.Error(), "range") {
			c.fail(e.pos, "invalid number %s", e.text)
		}
		if math.IsInf(f, 0) {
			c.fail(e.pos, "number %s is out of range", e.text)
		}
		return constExpr(tyDouble, mv{{f: f}}, e)
	}
	c.fail(e.pos, "unsupported literal")
	return cexpr{}
}

// spanLit reads `n unit`: units as ES|QL's parseTemporalAmount
// (EsqlDataTypeConverter): milliseconds to hours are a time_duration, days to
// years a date_period.
func (c *compiler) spanLit(e *expr) cexpr {
	n, err := strconv.ParseInt(e.text, 10, 32)
	if err != nil {
		c.fail(e.pos, "time span %s is out of range", e.text)
	}
	r := cexpr{t: tyDuration, konst: true, ev: func(*ctx) mv { return nil }}
	switch e.op {
	case "millisecond", "milliseconds", "ms":
		r.span.ms = n
	case "second", "seconds", "sec", "s":
		r.span.ms = n * 1000
	case "minute", "minutes", "min", "m":
		r.span.ms = n * 60_000
	case "hour", "hours", "h":
		r.span.ms = n * 3_600_000
	case "day", "days", "d":
		r.t, r.span.days = tyPeriod, int(n)
	case "week", "weeks", "w":
		r.t, r.span.days = tyPeriod, int(n)*7
	case "month", "months", "mo":
		r.t, r.span.months = tyPeriod, int(n)
	case "quarter", "quarters", "q":
		r.t, r.span.months = tyPeriod, int(n)*3
	case "year", "years", "yr", "y":
		r.t, r.span.months = tyPeriod, int(n)*12
	default:
		c.fail(e.pos, "unexpected temporal unit: '%s'", e.op)
	}
	return r
}

func widen(a, b typ) typ {
	switch {
	case a == tyDouble || b == tyDouble:
		return tyDouble
	case a == tyLong || b == tyLong:
		return tyLong
	}
	return tyInt
}

func asFloat(t typ, v val) float64 {
	if t == tyDouble {
		return v.f
	}
	return float64(v.n)
}

// implicit casts a string literal to t where ES|QL does so implicitly
// (a datetime or an ip compared with a string literal).
func (c *compiler) implicit(x cexpr, t typ) cexpr {
	if !x.konst || x.t != tyKeyword || (t != tyDate && t != tyIP) || len(x.cv) == 0 {
		return x
	}
	out := make(mv, 0, len(x.cv))
	for _, v := range x.cv {
		var r val
		var ok bool
		if t == tyDate {
			r, ok = parseDateVal(v.s)
		} else {
			r, ok = parseIPVal(v.s)
		}
		if !ok {
			c.fail(x.pos, "cannot convert string [%s] to [%s]", v.s, t)
		}
		out = append(out, r)
	}
	y := x
	y.t, y.cv = t, out
	y.ev = func(*ctx) mv { return out }
	return y
}

func parseDateVal(s string) (val, bool) {
	d, err := matcher.ParseDate(s)
	if err != nil {
		return val{}, false
	}
	return val{n: d.UnixMilli()}, true
}

func parseIPVal(s string) (val, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return val{}, false
	}
	b := a.As16()
	return val{s: string(b[:])}, true
}

// comparable reports the type two operands compare in, or false.
func comparable(a, b typ) (typ, bool) {
	switch {
	case a == tyNull:
		return b, b != tyUnsupported && b != tyDuration && b != tyPeriod
	case b == tyNull:
		return a, a != tyUnsupported && a != tyDuration && a != tyPeriod
	case a.numeric() && b.numeric():
		return widen(a, b), true
	case a == b && (a == tyKeyword || a == tyDate || a == tyIP || a == tyBool):
		return a, true
	}
	return 0, false
}

// cmpVals compares single values of types ta and tb that are comparable
// in t.
func cmpVals(t, ta, tb typ, a, b val) int {
	if t == tyDouble {
		return cmpFloat(asFloat(ta, a), asFloat(tb, b))
	}
	return compareVals(t, a, b)
}

// compare is a binary comparison: null when either side is null or
// multi-valued.
func (c *compiler) compare(e *expr, op string, l, r cexpr) cexpr {
	l, r = c.implicit(l, r.t), c.implicit(r, l.t)
	t, ok := comparable(l.t, r.t)
	if !ok {
		c.fail(e.pos, "cannot compare [%s] of type %s with [%s] of type %s", c.text(e.args[0]), l.t, c.text(e.args[1]), r.t)
	}
	if t == tyBool && op != "==" && op != "!=" {
		c.fail(e.pos, "booleans compare only with == and !=")
	}
	if l.t == tyNull || r.t == tyNull {
		return cexpr{t: tyBool, ev: func(*ctx) mv { return nil }}
	}
	lt, rt := l.t, r.t
	code := opCode(op)
	lev, rev := l.ev, r.ev
	if r.konst && !l.konst {
		// The usual shape, a column and a literal: the literal read once.
		b, ok := single(r.cv)
		if !ok {
			return boolExpr(func(*ctx) int { return -1 })
		}
		if t == tyKeyword && op == "==" {
			lit := b.s
			return singleTest(lev, func(_ *ctx, a val) int { return b2i(a.s == lit) })
		}
		return singleTest(lev, func(_ *ctx, a val) int { return b2i(holds(code, cmpVals(t, lt, rt, a, b))) })
	}
	return boolExpr(func(k *ctx) int {
		a, ok := single(lev(k))
		if !ok {
			return -1
		}
		b, ok := single(rev(k))
		if !ok {
			return -1
		}
		return b2i(holds(code, cmpVals(t, lt, rt, a, b)))
	})
}

// opCode numbers a comparison operator for holds.
func opCode(op string) int {
	switch op {
	case "==":
		return 0
	case "!=":
		return 1
	case "<":
		return 2
	case "<=":
		return 3
	case ">":
		return 4
	}
	return 5 // >=
}

// holds tells whether a comparison's result c satisfies the operator of
// that code.
func holds(code, c int) bool {
	switch code {
	case 0:
		return c == 0
	case 1:
		return c != 0
	case 2:
		return c < 0
	case 3:
		return c <= 0
	case 4:
		return c > 0
	}
	return c >= 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// boolExpr is a boolean of its three-valued test.
func boolExpr(tv func(*ctx) int) cexpr {
	return cexpr{t: tyBool, tv: tv,
		ev: func(k *ctx) mv {
			switch tv(k) {
			case 1:
				return mvTrue
			case 0:
				return mvFalse
			}
			return nil
		},
		isTrue: func(k *ctx) bool { return tv(k) == 1 },
	}
}

// singleTest is a boolean of a test of x's single value: null when x is
// null or multi-valued.
func singleTest(x func(*ctx) mv, f func(k *ctx, a val) int) cexpr {
	return boolExpr(func(k *ctx) int {
		a, ok := single(x(k))
		if !ok {
			return -1
		}
		return f(k, a)
	})
}

// tvOf is a boolean's three-valued test.
func tvOf(x cexpr) func(*ctx) int {
	if x.tv != nil {
		return x.tv
	}
	ev := x.ev
	return func(k *ctx) int { return truth(ev(k)) }
}

// logic is AND or OR in three-valued logic: the absorbing value (false
// for AND, true for OR) on either side decides; both sides the other value
// give it; anything else is null.
func (c *compiler) logic(e *expr, l, r cexpr) cexpr {
	absorb, other := 0, 1
	if e.kind == exOr {
		absorb, other = 1, 0
	}
	lt, rt := truthy(l), truthy(r)
	ltv, rtv := tvOf(l), tvOf(r)
	x := cexpr{t: tyBool}
	if e.kind == exAnd {
		x.isTrue = func(k *ctx) bool { return lt(k) && rt(k) }
		lc := conjuncts(l)
		x.conj = append(lc[:len(lc):len(lc)], conjuncts(r)...)
	} else {
		x.isTrue = func(k *ctx) bool { return lt(k) || rt(k) }
	}
	x.tv = func(k *ctx) int {
		a := ltv(k)
		if a == absorb {
			return absorb
		}
		b := rtv(k)
		switch {
		case b == absorb:
			return absorb
		case a == other && b == other:
			return other
		}
		return -1
	}
	x.ev = boolExpr(x.tv).ev
	return x
}

// truthy is how a condition is tested where only true counts (WHERE, a
// CASE condition, an aggregation's filter): false and null alike are not
// true, so that an AND stops at its first part that is not true, and an
// OR at its first that is.
func truthy(x cexpr) func(*ctx) bool {
	if x.isTrue != nil {
		return x.isTrue
	}
	ev := x.ev
	return func(k *ctx) bool { return truth(ev(k)) == 1 }
}

// conjuncts are the parts of a condition's top-level ANDs, each tested
// where only true counts: the condition is true when each part is.
func conjuncts(x cexpr) []func(*ctx) bool {
	if x.conj != nil {
		return x.conj
	}
	return []func(*ctx) bool{truthy(x)}
}

// in is `v [NOT] IN (list)`: true when an item equals v, null when none
// does and an item is null, false otherwise; null when v is null or
// multi-valued.
func (c *compiler) in(e *expr, s scope) cexpr {
	v := c.expr(e.args[0], s)
	items := make([]cexpr, 0, len(e.args)-1)
	t := v.t
	for _, a := range e.args[1:] {
		x := c.implicit(c.expr(a, s), v.t)
		items = append(items, x)
		if x.t == tyNull {
			continue
		}
		tt, ok := comparable(t, x.t)
		if !ok || tt == tyNull {
			c.fail(a.pos, "[%s] of type %s cannot be in a list with [%s] of type %s", c.text(a), x.t, c.text(e.args[0]), v.t)
		}
		t = tt
	}
	for i := range items {
		v = c.implicit(v, items[i].t)
	}
	neg := e.neg
	if v.t == tyNull {
		return boolExpr(func(*ctx) int { return -1 })
	}
	yes, no := b2i(!neg), b2i(neg)
	vev, vt := v.ev, v.t
	if lits, hasNull, ok := literalList(items); ok {
		// A list of literals, the usual shape: looked up without
		// evaluating each item; keywords in a set when there are many.
		noneIs := no
		if hasNull {
			noneIs = -1
		}
		if vt == tyKeyword && len(lits) > 8 {
			set := make(map[string]struct{}, len(lits))
			for _, it := range lits {
				set[it.v.s] = struct{}{}
			}
			return singleTest(vev, func(_ *ctx, a val) int {
				if _, ok := set[a.s]; ok {
					return yes
				}
				return noneIs
			})
		}
		return singleTest(vev, func(_ *ctx, a val) int {
			for _, it := range lits {
				if cmpVals(t, vt, it.t, a, it.v) == 0 {
					return yes
				}
			}
			return noneIs
		})
	}
	return singleTest(vev, func(k *ctx, a val) int {
		sawNull := false
		for _, it := range items {
			b, ok := single(it.ev(k))
			if !ok {
				sawNull = true
				continue
			}
			if cmpVals(t, vt, it.t, a, b) == 0 {
				return yes
			}
		}
		if sawNull {
			return -1
		}
		return no
	})
}

// typedVal is a literal's value and type.
type typedVal struct {
	t typ
	v val
}

// literalList is an IN list made only of literals: its single values,
// and whether one is null (or multi-valued, which compares as null); false
// when an item is not a literal.
func literalList(items []cexpr) ([]typedVal, bool, bool) {
	var out []typedVal
	hasNull := false
	for _, it := range items {
		if !it.konst {
			return nil, false, false
		}
		v, ok := single(it.cv)
		if !ok {
			hasNull = true
			continue
		}
		out = append(out, typedVal{it.t, v})
	}
	return out, hasNull, true
}

func (c *compiler) negate(e *expr, x cexpr) cexpr {
	switch x.t {
	case tyNull:
		return x
	case tyDuration, tyPeriod:
		y := x
		y.span = span{ms: -x.span.ms, months: -x.span.months, days: -x.span.days}
		return y
	case tyInt, tyLong:
		lim := int64(math.MinInt64)
		if x.t == tyInt {
			lim = math.MinInt32
		}
		return cexpr{t: x.t, ev: func(k *ctx) mv {
			a, ok := single(x.ev(k))
			if !ok || a.n == lim {
				return nil
			}
			return k.one(val{n: -a.n})
		}}
	case tyDouble:
		return cexpr{t: tyDouble, ev: func(k *ctx) mv {
			a, ok := single(x.ev(k))
			if !ok {
				return nil
			}
			return k.one(val{f: -a.f})
		}}
	}
	c.fail(e.pos, "[%s] of type %s cannot be negated", c.text(e.args[0]), x.t)
	return cexpr{}
}

// arith is + - * / % on numbers (null on overflow and division by zero, as
// ES|QL warns and answers null) and datetime ± time span.
func (c *compiler) arith(e *expr, l, r cexpr) cexpr {
	op := e.op
	isSpan := func(t typ) bool { return t == tyDuration || t == tyPeriod }
	switch {
	case l.t == tyDate && isSpan(r.t) && (op == "+" || op == "-"):
		sp := r.span
		if op == "-" {
			sp = span{ms: -sp.ms, months: -sp.months, days: -sp.days}
		}
		return dateShift(l, sp)
	case isSpan(l.t) && r.t == tyDate && op == "+":
		return dateShift(r, l.span)
	case isSpan(l.t) && isSpan(r.t) && l.t == r.t && (op == "+" || op == "-"):
		y := l
		sign := 1
		if op == "-" {
			sign = -1
		}
		y.span = span{ms: l.span.ms + int64(sign)*r.span.ms, months: l.span.months + sign*r.span.months, days: l.span.days + sign*r.span.days}
		return y
	case (l.t.numeric() || l.t == tyNull) && (r.t.numeric() || r.t == tyNull) && !(l.t == tyNull && r.t == tyNull):
	case l.t == tyNull && (r.t == tyNull || r.t == tyDate) || r.t == tyNull && l.t == tyDate:
		return cexpr{t: tyDate, ev: func(*ctx) mv { return nil }}
	default:
		c.fail(e.pos, "[%s] cannot apply %s to %s and %s", c.text(e), op, l.t, r.t)
	}
	if l.t == tyNull || r.t == tyNull {
		t := l.t
		if t == tyNull {
			t = r.t
		}
		return cexpr{t: t, ev: func(*ctx) mv { return nil }}
	}
	t := widen(l.t, r.t)
	lt, rt := l.t, r.t
	if t == tyDouble {
		return cexpr{t: tyDouble, ev: func(k *ctx) mv {
			a, ok1 := single(l.ev(k))
			b, ok2 := single(r.ev(k))
			if !ok1 || !ok2 {
				return nil
			}
			x, y := asFloat(lt, a), asFloat(rt, b)
			var z float64
			switch op {
			case "+":
				z = x + y
			case "-":
				z = x - y
			case "*":
				z = x * y
			case "/":
				z = x / y
			case "%":
				z = math.Mod(x, y)
			}
			if math.IsNaN(z) || math.IsInf(z, 0) {
				return nil
			}
			return k.one(val{f: z})
		}}
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if t == tyInt {
		lo, hi = math.MinInt32, math.MaxInt32
	}
	return cexpr{t: t, ev: func(k *ctx) mv {
		a, ok1 := single(l.ev(k))
		b, ok2 := single(r.ev(k))
		if !ok1 || !ok2 {
			return nil
		}
		z, ok := intArith(op, a.n, b.n)
		if !ok || z < lo || z > hi {
			return nil
		}
		return k.one(val{n: z})
	}}
}

// intArith is exact long arithmetic (Java's Math.addExact and friends);
// false on overflow or division by zero.
func intArith(op string, x, y int64) (int64, bool) {
	switch op {
	case "+":
		z := x + y
		return z, (x >= 0) != (y >= 0) || (z >= 0) == (x >= 0)
	case "-":
		z := x - y
		return z, (x >= 0) == (y >= 0) || (z >= 0) == (x >= 0)
	case "*":
		if x == 0 || y == 0 {
			return 0, true
		}
		z := x * y
		return z, z/y == x && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64)
	case "/":
		if y == 0 || x == math.MinInt64 && y == -1 {
			return 0, false
		}
		return x / y, true
	case "%":
		if y == 0 {
			return 0, false
		}
		if y == -1 {
			return 0, true
		}
		return x % y, true
	}
	return 0, false
}

// dateShift adds a time span to a datetime (calendar months and days in
// UTC, then milliseconds); null when the result leaves the range.
func dateShift(d cexpr, sp span) cexpr {
	return cexpr{t: tyDate, ev: func(k *ctx) mv {
		a, ok := single(d.ev(k))
		if !ok {
			return nil
		}
		n, ok := shiftMillis(a.n, sp)
		if !ok {
			return nil
		}
		return k.one(val{n: n})
	}}
}

// shiftMillis adds a span as java.time does: months first, the day of
// the month clamped to the month's last day (Jan 31 + 1 month is Feb 28),
// then days, then the duration.
func shiftMillis(ms int64, sp span) (int64, bool) {
	if sp.months != 0 || sp.days != 0 {
		t := time.UnixMilli(ms).UTC()
		if sp.months != 0 {
			y, m, d := t.Date()
			first := time.Date(y, m+time.Month(sp.months), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
			last := first.AddDate(0, 1, -1).Day()
			t = first.AddDate(0, 0, min(d, last)-1)
		}
		ms = t.AddDate(0, 0, sp.days).UnixMilli()
	}
	return intArith("+", ms, sp.ms)
}
