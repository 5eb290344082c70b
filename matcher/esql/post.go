package esql

import (
	"sort"
	"time"
)

// postPlan is what follows STATS: commands over the result rows.
type postPlan struct {
	env    *env
	steps  []step
	nslots int
	out    []int // the slots of the final columns
	shape  *shape
}

type sortKey struct {
	ev         func(*ctx) mv
	t          typ
	desc       bool
	nullsFirst bool
}

// post compiles the commands after STATS.
func (c *compiler) post(cmds []command) {
	pp := c.p.post
	e := pp.env
	for _, cmd := range cmds {
		switch cmd.kind {
		case cmdStats:
			c.fail(cmd.pos, "a second STATS is not supported")
		case cmdLimit:
			pp.steps = append(pp.steps, step{kind: stepLimit, limit: cmd.limit})
		case cmdMvExpand:
			col := c.resolve(e, cmd.names[0].text, cmd.names[0].pos)
			// MV_EXPAND makes a new column of the same name.
			slot := pp.nslots
			pp.nslots++
			pp.steps = append(pp.steps, step{kind: stepExpand, slot: col.slot, limit: slot})
			col.slot = slot
			e.define(col)
		case cmdSort:
			st := step{kind: stepSort}
			for _, o := range cmd.orders {
				x := c.expr(o.e, envScope{c, e})
				if x.t == tyUnsupported || x.t == tyDuration || x.t == tyPeriod {
					c.fail(o.e.pos, "cannot sort on [%s] of type %s", c.text(o.e), x.t)
				}
				st.orders = append(st.orders, sortKey{ev: x.ev, t: x.t, desc: o.desc, nullsFirst: o.nullsFirst})
			}
			pp.steps = append(pp.steps, st)
		default:
			c.command(cmd, e, &pp.steps, &pp.nslots, false)
		}
	}
	pp.shape = &shape{}
	for _, col := range e.cols {
		pp.out = append(pp.out, col.slot)
		pp.shape.names = append(pp.shape.names, col.name)
		pp.shape.types = append(pp.shape.types, col.t)
	}
}

// ResultColumns lists the names of the rows Results gives.
func (p *Program) ResultColumns() []string {
	if p.post == nil {
		return nil
	}
	return p.post.shape.names
}

// Results runs what follows STATS on the accumulated groups: the rows a
// run of the rule gives, in order (the groups in a fixed order, that of
// their encoded BY values with the null group first, unless the query
// sorts them). now is the run's time, which NOW()
// answers. A query without BY gives one row even over no rows, as ES|QL
// does. Results does not change a.
func (p *Program) Results(a *Acc, now time.Time) []Row {
	if p.stats == nil || a == nil {
		return nil
	}
	pp := p.post
	plan := p.stats
	groups := a.sortedGroups()
	if len(plan.by) == 0 && len(groups) == 0 {
		// No group, no BY: one row over no rows.
		a = p.NewAcc()
		groups = append(groups, a.newGroup(""))
	}
	k := &ctx{p: p, now: now.UnixMilli()}
	rows := make([][]mv, 0, len(groups))
	for _, g := range groups {
		row := make([]mv, pp.nslots)
		for i := range plan.aggs {
			row[i] = a.result(&plan.aggs[i], g)
		}
		keys, _ := a.decodeKey(a.gkeys[g])
		for j := range keys {
			row[len(plan.aggs)+j] = keys[j]
		}
		rows = append(rows, row)
	}
	for si := range pp.steps {
		s := &pp.steps[si]
		switch s.kind {
		case stepSort:
			sortRows(k, rows, s.orders)
		case stepLimit:
			if len(rows) > s.limit {
				rows = rows[:s.limit]
			}
		case stepExpand:
			var out [][]mv
			for _, row := range rows {
				m := row[s.slot]
				if len(m) <= 1 {
					row[s.limit] = m
					out = append(out, row)
					continue
				}
				for _, v := range m {
					r := append([]mv(nil), row...)
					r[s.limit] = mv{v}
					out = append(out, r)
				}
			}
			rows = out
		default:
			kept := rows[:0]
			for _, row := range rows {
				k.cols = row
				if s.run(k) {
					kept = append(kept, row)
				}
			}
			rows = kept
		}
	}
	out := make([]Row, len(rows))
	for i, row := range rows {
		vals := make([]mv, len(pp.out))
		for j, slot := range pp.out {
			vals[j] = row[slot]
		}
		out[i] = Row{shape: pp.shape, vals: vals, now: k.now}
	}
	return out
}

// sortRows orders rows as ES|QL's SORT: by each key in turn, a
// multi-valued key by its lowest value ascending and its highest
// descending, nulls last ascending and first descending unless NULLS says
// otherwise; rows that tie keep their order.
func sortRows(k *ctx, rows [][]mv, keys []sortKey) {
	type keyed struct {
		row  []mv
		vals []mv
	}
	ks := make([]keyed, len(rows))
	for i, row := range rows {
		k.cols = row
		ks[i].row = row
		ks[i].vals = make([]mv, len(keys))
		for j, key := range keys {
			m := key.ev(k)
			if len(m) > 1 {
				best := m[0]
				for _, v := range m[1:] {
					d := compareVals(key.t, v, best)
					if key.desc && d > 0 || !key.desc && d < 0 {
						best = v
					}
				}
				m = mv{best}
			}
			ks[i].vals[j] = m
		}
	}
	sort.SliceStable(ks, func(a, b int) bool {
		for j, key := range keys {
			x, y := ks[a].vals[j], ks[b].vals[j]
			switch {
			case len(x) == 0 && len(y) == 0:
				continue
			case len(x) == 0:
				return key.nullsFirst
			case len(y) == 0:
				return !key.nullsFirst
			}
			d := compareVals(key.t, x[0], y[0])
			if d == 0 {
				continue
			}
			if key.desc {
				return d > 0
			}
			return d < 0
		}
		return false
	})
	for i := range ks {
		rows[i] = ks[i].row
	}
}
