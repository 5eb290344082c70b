package esql

import (
	"reflect"
	"testing"
)

// TestProjection: KEEP, DROP, RENAME and EVAL decide the columns: KEEP's
// order and precedence (an exact name over a pattern, `*` alone last),
// DROP patterns, RENAME both ways, EVAL replacing a column of the same
// name, and the record's fields a pattern keeps.
func TestProjection(t *testing.T) {
	cases := []struct {
		q    string
		cols []string
	}{
		{`FROM x | EVAL b = 1, a1 = 2, a2 = 3 | KEEP a*, b`, []string{"a1", "a2", "b"}},
		{`FROM x | EVAL b = 1, a1 = 2, a2 = 3 | KEEP *, b`, []string{"a1", "a2", "b"}},
		{`FROM x | EVAL b = 1, a1 = 2, a2 = 3 | KEEP a1, a*`, []string{"a1", "a2"}},
		{`FROM x | EVAL b = 1, a1 = 2, a2 = 3 | DROP a*`, []string{"b"}},
		{`FROM x | EVAL a = 1, b = 2 | RENAME a AS c`, []string{"b", "c"}},
		{`FROM x | EVAL a = 1, b = 2 | RENAME c = a`, []string{"b", "c"}},
		{`FROM x | EVAL a = 1, b = 2 | RENAME a AS b`, []string{"b"}},
		{`FROM x | EVAL a = 1, b = 2, a = 3`, []string{"b", "a"}},
		{`FROM x | EVAL a = 1 | KEEP a, user.name, aws.*`, []string{"a", "user.name"}},
		{`FROM x | RENAME user.name AS who | KEEP who`, []string{"who"}},
	}
	for _, c := range cases {
		p := mustCompile(t, c.q)
		if got := p.Columns(); !reflect.DeepEqual(got, c.cols) {
			t.Errorf("%s: columns %q, want %q", c.q, got, c.cols)
		}
	}

	p := mustCompile(t, `FROM x | RENAME user.name AS who | KEEP who`)
	row, _ := p.Eval(rec("user.name", "bob"), testNow)
	if got := texts(row.Values("who")); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Errorf("renamed field: %q", got)
	}

	p = mustCompile(t, `FROM x | EVAL a = 1 | KEEP a, user.name, aws.*`)
	for name, want := range map[string]bool{"user.name": true, "aws.cloudtrail.user_identity.arn": true, "cloud.region": false, "a": false} {
		if got := p.KeepsField(name); got != want {
			t.Errorf("KeepsField(%s) = %v, want %v", name, got, want)
		}
	}
	p = mustCompile(t, `FROM x | DROP cloud.*`)
	if p.KeepsField("cloud.region") || !p.KeepsField("user.name") {
		t.Error("DROP cloud.*: KeepsField wrong")
	}
}
