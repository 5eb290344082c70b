package esql

import (
	"fmt"
	"strings"
	"sync"

	"github.com/trailwatch/trailwatch/matcher"
)

// column is a name visible at some point of the query: a computed column
// (slot >= 0) or a field of the record (field != nil).
type column struct {
	name  string
	t     typ
	slot  int
	field *matcher.Field
	src   int // the source field's index in the program
	// An EVAL column before STATS: its value, computed when first read
	// (see ctx.lazy).
	eval func(*ctx) mv
}

// env is what names a command sees. Before STATS every field of the
// record is a column too, unless KEEP, DROP or RENAME took it away: open
// says whether they are, and hide whether one is not.
type env struct {
	cols []column
	open bool
	hide []func(string) bool // a record field whose name one of these accepts is not visible
}

func (e *env) find(name string) int {
	for i := range e.cols {
		if e.cols[i].name == name {
			return i
		}
	}
	return -1
}

func (e *env) sourceVisible(name string) bool {
	if !e.open {
		return false
	}
	for _, h := range e.hide {
		if h(name) {
			return false
		}
	}
	return true
}

// define adds (or replaces) a column; a record field of the same name is
// hidden by it.
func (e *env) define(col column) {
	if i := e.find(col.name); i >= 0 {
		e.cols = append(e.cols[:i], e.cols[i+1:]...)
	}
	e.cols = append(e.cols, col)
	name := col.name
	e.hide = append(e.hide, func(s string) bool { return s == name })
}

func (e *env) clone() env {
	return env{cols: append([]column(nil), e.cols...), open: e.open, hide: append([]func(string) bool(nil), e.hide...)}
}

// wildcardMatch matches a KEEP/DROP pattern (`*` any run) against a name.
func wildcardMatch(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	return wildcard(strings.Split(pattern, "*"))(name)
}

// compiler holds what compiling one query needs.
type compiler struct {
	src   string
	lines matcher.Lines
	reads matcher.Reads
	meta  map[string]bool
	srcOf map[*matcher.Field]int
	p     *Program
	pre   []*pnode // the WHEREs' necessary conditions, for the prefilter
}

func (c *compiler) fail(off int, format string, args ...any) {
	panic(parseError{&matcher.SyntaxError{Pos: c.lines.Pos(off), Msg: fmt.Sprintf(format, args...)}})
}

// sourceColumn makes the column of record field name.
func (c *compiler) sourceColumn(name string, pos int) column {
	if strings.HasPrefix(name, "_") {
		switch name {
		case "_id", "_index", "_version":
			if !c.meta[name] {
				c.fail(pos, "unknown column [%s]: add it to FROM's METADATA", name)
			}
		}
	}
	f := c.reads.Field(name)
	t := typeOfField(f)
	switch name {
	case "_id", "_index":
		t = tyKeyword
	case "_version":
		t = tyLong
	}
	i, ok := c.srcOf[f]
	if !ok {
		i = len(c.p.srcFields)
		c.srcOf[f] = i
		c.p.srcFields = append(c.p.srcFields, srcField{f: f, t: t})
	}
	return column{name: name, t: t, slot: -1, field: f, src: i}
}

// resolve finds a name in env.
func (c *compiler) resolve(e *env, name string, pos int) column {
	if i := e.find(name); i >= 0 {
		return e.cols[i]
	}
	if e.sourceVisible(name) {
		return c.sourceColumn(name, pos)
	}
	c.fail(pos, "unknown column [%s]", name)
	return column{}
}

// readColumn is how a column is read while a row is evaluated.
func readColumn(col column) cexpr {
	if col.eval != nil {
		slot, ev := col.slot, col.eval
		return cexpr{t: col.t, ev: func(k *ctx) mv { return k.lazy(slot, ev) }}
	}
	if col.slot >= 0 {
		slot := col.slot
		return cexpr{t: col.t, ev: func(k *ctx) mv { return k.cols[slot] }}
	}
	i := col.src
	return cexpr{t: col.t, field: col.field, ev: func(k *ctx) mv { return k.source(i) }}
}

// envScope resolves names in an env.
type envScope struct {
	c *compiler
	e *env
}

func (s envScope) lookup(name string, pos int) cexpr {
	col := s.c.resolve(s.e, name, pos)
	if col.t == tyUnsupported {
		f := col.field
		s.c.fail(pos, "cannot use [%s]: its mapping (%s) has no ES|QL type trailwatch evaluates", name, mappingName(f))
	}
	return readColumn(col)
}

func mappingName(f *matcher.Field) string {
	if f == nil {
		return "unknown"
	}
	if f.FlattenedRoot != "" {
		return "a key of the flattened field " + f.FlattenedRoot
	}
	return f.Type.String()
}

// Compile parses an ES|QL query and compiles it against the schema that
// maps the record's fields.
func Compile(s *matcher.Schema, src string) (p *Program, err error) {
	q, err := parse(src)
	if err != nil {
		return nil, err
	}
	c := &compiler{src: src, lines: matcher.Lines{Src: src}, reads: matcher.Reads{Schema: s}, meta: map[string]bool{}, srcOf: map[*matcher.Field]int{}}
	c.p = &Program{src: src, limit: -1}
	defer catch(&err)
	c.compile(q)
	return c.p, nil
}

func (c *compiler) compile(q *query) {
	p := c.p
	from := q.cmds[0]
	p.indices = from.indices
	p.metadata = from.metadata
	for _, m := range from.metadata {
		c.meta[m] = true
	}
	e := &env{open: true}
	cmds := q.cmds[1:]
	statsAt := len(cmds)
	for i, cmd := range cmds {
		if cmd.kind == cmdStats {
			statsAt = i
			break
		}
	}
	limitAt, sortAt := -1, -1
	for i, cmd := range cmds[:statsAt] {
		switch cmd.kind {
		case cmdLimit:
			if statsAt < len(cmds) {
				c.fail(cmd.pos, "LIMIT before STATS is not supported: which rows it keeps depends on the whole run")
			}
			if sortAt >= 0 {
				c.fail(cmd.pos, "SORT then LIMIT in a query without STATS is not supported: it ranks the whole run's rows")
			}
			if limitAt < 0 {
				limitAt = i
			}
			if p.limit < 0 || cmd.limit < p.limit {
				p.limit = cmd.limit
			}
			continue
		case cmdSort:
			if sortAt < 0 {
				sortAt = i
			}
		case cmdMvExpand:
			c.fail(cmd.pos, "MV_EXPAND before STATS or without STATS is not supported: it makes several rows of one record")
		case cmdKeep, cmdDrop, cmdRename:
		default:
			if limitAt >= 0 {
				c.fail(cmd.pos, "%s after LIMIT is not supported: which rows LIMIT keeps depends on the whole run", cmd.kind)
			}
		}
		c.command(cmd, e, &p.pre, &p.nslots, true)
	}
	if statsAt < len(cmds) {
		c.stats(cmds[statsAt], e)
		c.post(cmds[statsAt+1:])
		c.finish()
		return
	}
	// Not aggregating: the row is the visible columns.
	p.final = e.clone()
	for _, col := range e.cols {
		p.out = append(p.out, outCol{name: col.name, t: col.t, read: readColumn(col).ev})
	}
	c.finish()
}

func (c *compiler) finish() {
	p := c.p
	p.fields = c.reads.Fields
	p.prefilterTree = andNode(c.pre)
	p.pool = sync.Pool{New: func() any { return p.newCtx() }}
	if p.stats != nil {
		nin := p.stats.nin
		p.addPool = sync.Pool{New: func() any { return &ctx{p: p, cols: make([]mv, nin)} }}
	}
	p.shape = &shape{}
	for _, o := range p.out {
		p.shape.names = append(p.shape.names, o.name)
		p.shape.types = append(p.shape.types, o.t)
	}
}

// command compiles a command that works row by row (before or after STATS),
// appending its step to steps; slots counts the computed columns.
func (c *compiler) command(cmd command, e *env, steps *[]step, slots *int, before bool) {
	sc := envScope{c, e}
	switch cmd.kind {
	case cmdWhere:
		x := c.expr(cmd.cond, sc)
		if x.t != tyBool && x.t != tyNull {
			c.fail(cmd.cond.pos, "WHERE needs a boolean condition, found [%s] of type %s", c.text(cmd.cond), x.t)
		}
		if before {
			c.pre = append(c.pre, c.approx(cmd.cond, e))
		}
		st := step{kind: stepWhere, conds: conjuncts(x), wi: -1}
		if before && len(st.conds) > 1 {
			st.wi = len(c.p.nwhere)
			c.p.nwhere = append(c.p.nwhere, len(st.conds))
		}
		*steps = append(*steps, st)
	case cmdEval:
		for _, f := range cmd.fields {
			x := c.expr(f.e, sc)
			if x.t == tyDuration || x.t == tyPeriod {
				c.fail(f.e.pos, "a time span cannot be a column's value")
			}
			name := f.name
			if name == "" {
				name = c.text(f.e)
			}
			slot := *slots
			*slots++
			if before {
				// Computed when first read: a WHERE after it that does not
				// read it drops a row without it, and a column nothing
				// reads is never computed. An expression has no effect but
				// its value, and reads only columns defined before it,
				// which no later command changes: its value is the same.
				e.define(column{name: name, t: x.t, slot: slot, eval: x.ev})
				continue
			}
			*steps = append(*steps, step{kind: stepEval, slot: slot, val: x.ev})
			e.define(column{name: name, t: x.t, slot: slot})
		}
	case cmdDissect, cmdGrok:
		in := c.expr(cmd.input, sc)
		if in.t != tyKeyword && in.t != tyNull {
			c.fail(cmd.input.pos, "%s needs a keyword input, found [%s] of type %s", cmd.kind, c.text(cmd.input), in.t)
		}
		st := step{kind: stepExtract, in: in.ev}
		var names []string
		var types []typ
		if cmd.kind == cmdDissect {
			d, msg := compileDissect(cmd.pattern[0], cmd.appendSp)
			if msg != "" {
				c.fail(cmd.patPos[0], "invalid DISSECT pattern: %s", msg)
			}
			st.extract = d.extract
			names = d.outs
			for range names {
				types = append(types, tyKeyword)
			}
		} else {
			if len(cmd.pattern) > 1 {
				c.fail(cmd.patPos[1], "GROK with several patterns is not supported")
			}
			g, msg := compileGrok(cmd.pattern[0])
			if msg != "" {
				c.fail(cmd.patPos[0], "invalid GROK pattern: %s", msg)
			}
			st.extract = g.extract
			if in.field != nil {
				st.inField, st.needs = in.field, g.needs
			}
			for _, o := range g.outs {
				names = append(names, o.name)
				types = append(types, o.t)
			}
		}
		for i, n := range names {
			st.slots = append(st.slots, *slots)
			e.define(column{name: n, t: types[i], slot: *slots})
			*slots++
		}
		*steps = append(*steps, st)
	case cmdKeep:
		c.keep(cmd, e)
	case cmdDrop:
		for _, n := range cmd.names {
			found := false
			kept := e.cols[:0]
			for _, col := range e.cols {
				if wildcardMatch(n.text, col.name) {
					found = true
					continue
				}
				kept = append(kept, col)
			}
			e.cols = kept
			if e.open {
				pat := n.text
				e.hide = append(e.hide, func(s string) bool { return wildcardMatch(pat, s) })
				found = true
			}
			if !found {
				c.fail(n.pos, "no column matches [%s]", n.text)
			}
		}
	case cmdRename:
		for _, r := range cmd.renames {
			col := c.resolve(e, r.from.text, r.from.pos)
			if i := e.find(r.from.text); i >= 0 {
				e.cols = append(e.cols[:i], e.cols[i+1:]...)
			}
			if e.open {
				old := r.from.text
				e.hide = append(e.hide, func(s string) bool { return s == old })
			}
			col.name = r.to.text
			e.define(col)
		}
	case cmdSort:
		// Before STATS, and in a query without STATS, the order of rows
		// does not change what the rule finds; the keys are checked.
		for _, o := range cmd.orders {
			x := c.expr(o.e, sc)
			if x.t == tyUnsupported || x.t == tyDuration || x.t == tyPeriod {
				c.fail(o.e.pos, "cannot sort on [%s] of type %s", c.text(o.e), x.t)
			}
		}
	default:
		c.fail(cmd.pos, "%s is not supported here", cmd.kind)
	}
}

// keep applies KEEP: the columns each pattern names, in the order of the
// patterns, a name taking the place of the most specific pattern that
// matches it (an exact name before a pattern with a wildcard, `*` alone
// last; among equals the last one); record fields stay visible only if a
// pattern matches them.
func (c *compiler) keep(cmd command, e *env) {
	rank := func(n namePattern) int {
		switch {
		case !n.wildcard:
			return 2
		case n.text == "*":
			return 0
		}
		return 1
	}
	best := make([]int, len(e.cols))
	for i, col := range e.cols {
		best[i] = -1
		for j, n := range cmd.names {
			if !wildcardMatch(n.text, col.name) {
				continue
			}
			if best[i] < 0 || rank(n) >= rank(cmd.names[best[i]]) {
				best[i] = j
			}
		}
	}
	var cols []column
	for j, n := range cmd.names {
		matched := false
		for i, col := range e.cols {
			if best[i] == j {
				cols = append(cols, col)
			}
			if best[i] >= 0 && wildcardMatch(n.text, col.name) {
				matched = true
			}
		}
		if !n.wildcard && !matched {
			if !e.sourceVisible(n.text) {
				c.fail(n.pos, "unknown column [%s]", n.text)
			}
			cols = append(cols, c.sourceColumn(n.text, n.pos))
		}
	}
	var pats []string
	for _, n := range cmd.names {
		if n.wildcard {
			pats = append(pats, n.text)
		}
	}
	e.cols = cols
	if e.open {
		exact := map[string]bool{}
		for _, col := range cols {
			exact[col.name] = true
		}
		e.hide = append(e.hide, func(s string) bool {
			if exact[s] {
				return true // an explicit column now
			}
			for _, p := range pats {
				if wildcardMatch(p, s) {
					return false
				}
			}
			return true
		})
	}
}
