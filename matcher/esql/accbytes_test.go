package esql

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/matcher"
)

var updateGolden = flag.Bool("update", false, "write testdata/acc-v1.golden anew")

// marshalV1 is MarshalBinary as it was before the version 2 form: the
// first form ("esqlacc1"), which state files written before it hold and
// UnmarshalBinary still reads.
func (a *Acc) marshalV1() []byte {
	b := append([]byte(nil), accMagicV1...)
	b = binary.BigEndian.AppendUint64(b, a.plan.fp)
	b = binary.AppendUvarint(b, uint64(a.dropRows))
	b = binary.AppendUvarint(b, uint64(a.dropVals))
	b = binary.AppendUvarint(b, uint64(len(a.gkeys)))
	for _, g := range a.sortedGroups() {
		key := a.gkeys[g]
		b = binary.AppendUvarint(b, uint64(len(key)))
		b = append(b, key...)
		for i := range a.plan.aggs {
			b = a.appendStateV1(b, &a.plan.aggs[i], g)
		}
	}
	return b
}

// appendStateV1 writes aggregation s's state in group g in the first form:
// its flags, then by kind.
func (a *Acc) appendStateV1(b []byte, s *aggSpec, g int32) []byte {
	b = append(b, *a.flag(g, s))
	switch s.kind {
	case aggCountRows, aggCount:
		b = binary.AppendUvarint(b, uint64(*a.num(g, s)))
	case aggCountDistinct, aggValues:
		a.sorted = appendSorted(a.sorted[:0], s.t, a.set(g, s))
		b = binary.AppendUvarint(b, uint64(len(a.sorted)))
		for _, v := range a.sorted {
			b = appendVal(b, s.t, v)
		}
	case aggMin, aggMax:
		if *a.flag(g, s)&flagHas != 0 {
			b = appendVal(b, s.t, *a.value(g, s))
		}
	case aggSum:
		if s.t == tyDouble {
			b = binary.BigEndian.AppendUint64(b, uint64(*a.num(g, s)))
		} else {
			b = binary.AppendVarint(b, *a.num(g, s))
		}
	case aggAvg:
		n := a.avg(g, s)
		b = binary.AppendUvarint(b, uint64(n[0]))
		b = binary.BigEndian.AppendUint64(b, uint64(n[1]))
	}
	return b
}

// bytesQuery has a BY column and an aggregation of each kind and type.
const bytesQuery = `FROM x | EVAL d = TO_DOUBLE(source.port), i = TO_INTEGER(source.port), b = source.port > 5
	| STATS n = COUNT(*), c = COUNT(f), cd = COUNT_DISTINCT(f), v = VALUES(f), vi = VALUES(source.ip), vt = VALUES(@timestamp),
		vd = VALUES(d), vn = VALUES(i), vb = VALUES(b), lo = MIN(@timestamp), hi = MAX(f), ip = MAX(source.ip), md = MIN(d),
		s = SUM(source.port), sd = SUM(d), a = AVG(source.port), w = COUNT(*) WHERE f == "b"
	BY g, source.ip, t = DATE_TRUNC(1 hour, @timestamp), b, i`

// bytesRecords are records for bytesQuery: groups with null BY values,
// sets past their cap (Limits.Values 6), a sum that overflows.
func bytesRecords() []matcher.MapFields {
	var recs []matcher.MapFields
	for i := range 60 {
		recs = append(recs, rec("g", []string{"x", "y", "arn:aws:iam::123456789012:user/z"}[i%3], "f", fmt.Sprint("DescribeInstances", i%11),
			"source.ip", []string{"10.0.0.1", "::1", "192.168.7.9", "2001:db8::7"}[i%4],
			"@timestamp", fmt.Sprintf("2026-03-01T1%d:%02d:%02d.%03dZ", i%2, i%7, i%60, i*37%1000),
			"source.port", fmt.Sprint("#", i%9-2)))
	}
	for i := range 20 { // one group, its sets past the cap
		recs = append(recs, rec("g", "y", "f", fmt.Sprint("ListBuckets", i), "source.ip", "10.1.0.9",
			"@timestamp", fmt.Sprintf("2026-03-01T10:00:%02dZ", i), "source.port", "#4"))
	}
	return append(recs, rec("f", "a"), rec("g", "x", "source.port", "#9223372036854775807"), rec("g", "x", "source.port", "#9223372036854775807"))
}

// TestBytesV1: bytes of the first form (a golden file written by the
// encoder before the second form, and marshalV1, that encoder kept) are
// read as they were written, and give the groups, states and results
// that the second form's round trip gives.
func TestBytesV1(t *testing.T) {
	p := mustCompile(t, bytesQuery)
	lim := Limits{Groups: 1000, Values: 6}
	src := p.NewAccLimits(lim)
	feed(p, src, bytesRecords()...)
	if _, v := src.Overflow(); v == 0 {
		t.Fatalf("no set reaches its cap: %d groups\n%s", src.Groups(), strings.Join(render(p.Results(src, testNow)), "\n"))
	}
	v1 := src.marshalV1()
	golden := filepath.Join("testdata", "acc-v1.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(hex.EncodeToString(v1)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	old, err := hex.DecodeString(strings.TrimSpace(string(g)))
	if err != nil {
		t.Fatal(err)
	}
	if string(old) != string(v1) {
		t.Fatal("marshalV1 writes other bytes than the golden file of the first form")
	}
	v2, err := src.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(v2) >= len(v1) {
		t.Errorf("the second form is %d bytes, the first %d", len(v2), len(v1))
	}
	fromV1, fromV2 := p.NewAccLimits(lim), p.NewAccLimits(lim)
	if err := fromV1.UnmarshalBinary(old); err != nil {
		t.Fatal(err)
	}
	if err := fromV2.UnmarshalBinary(v2); err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]*Acc{"first form": fromV1, "second form": fromV2} {
		if got := a.marshalV1(); string(got) != string(old) {
			t.Errorf("%s read back: its state differs (first form of %d bytes, want %d)", name, len(got), len(old))
		}
		if got, _ := a.MarshalBinary(); string(got) != string(v2) {
			t.Errorf("%s read back: writes other bytes", name)
		}
		r1, v1 := a.Overflow()
		r2, v2 := src.Overflow()
		if r1 != r2 || v1 != v2 {
			t.Errorf("%s: overflow %d %d, want %d %d", name, r1, v1, r2, v2)
		}
	}
	want := render(p.Results(src, testNow))
	if len(want) < 10 || !strings.Contains(strings.Join(want, "\n"), " s=- sd=1.8446744073709552E19 ") {
		t.Fatalf("%d result rows, none with an overflowed sum:\n%s", len(want), strings.Join(want, "\n"))
	}
	both := p.NewAccLimits(lim)
	for _, a := range []*Acc{fromV1, fromV2} {
		if got := render(p.Results(a, testNow)); !reflect.DeepEqual(got, want) {
			t.Errorf("results:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if err := both.Merge(a); err != nil {
			t.Fatal(err)
		}
	}
	twice := p.NewAccLimits(lim)
	feed(p, twice, append(bytesRecords(), bytesRecords()...)...)
	if got, want := render(p.Results(both, testNow)), render(p.Results(twice, testNow)); !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBytesHostile: the second form's counts, lengths, references and
// prefixes out of bounds are refused before anything of their size is
// allocated.
func TestBytesHostile(t *testing.T) {
	p := mustCompile(t, `FROM x | STATS v = VALUES(f) BY g`)
	head := binary.BigEndian.AppendUint64([]byte(accMagic), p.stats.fp)
	head = append(head, 0, 0) // overflow counts
	// Each piece a copy: the cases share their beginnings.
	uv := func(b []byte, xs ...uint64) []byte {
		b = slices.Clip(b)
		for _, x := range xs {
			b = binary.AppendUvarint(b, x)
		}
		return b
	}
	str := func(b []byte, p byte, s string) []byte {
		return append(append(uv(b, uint64(len(s))<<1|1), p), s...)
	}
	// One group: no null BY value, g = "a", then v's set.
	group := func(set ...byte) []byte { return append(str(append(uv(head, 1), 0), 0, "a"), set...) }
	good := group(str(uv(nil, 2<<1), 0, "arn:x")...)
	good = str(good, 4, "y")
	a := p.NewAcc()
	if err := a.UnmarshalBinary(good); err != nil {
		t.Fatal(err)
	}
	if got := render(p.Results(a, testNow)); !reflect.DeepEqual(got, []string{"v=arn:x,arn:y g=a"}) {
		t.Fatalf("%q", got)
	}
	why := map[string]string{"groups": "more groups", "values": "more values", "length": "truncated", "reference": "bad string reference",
		"prefix": "bad string prefix", "prefix cap": "bad string prefix", "null bits": "bad group key", "varint": "varint overflows",
		"duplicate": "duplicate group", "trailing bytes": "trailing bytes"}
	for name, b := range map[string][]byte{
		"groups":         uv(head, 1<<62),
		"values":         group(uv(nil, 1<<62)...),
		"length":         group(append(uv(nil, 1<<1, 1<<60|1), 0, 'x')...),
		"reference":      group(uv(nil, 1<<1, 5<<1)...),
		"prefix":         str(group(str(uv(nil, 2<<1), 0, "ab")...), 3, "c"),
		"prefix cap":     str(group(str(uv(nil, 2<<1), 0, strings.Repeat("a", 80))...), maxPrefix+1, "c"),
		"null bits":      str(append(uv(head, 1), 2), 0, "a"),
		"varint":         append(uv(head, 1), 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02),
		"duplicate":      append(str(append(uv(head, 2), 0), 0, "a"), 0, 0, 0, 0),
		"trailing bytes": append(slices.Clip(good), 0),
	} {
		allocs := testing.AllocsPerRun(1, func() {
			a := p.NewAcc()
			if err := a.UnmarshalBinary(b); err == nil {
				t.Errorf("%s: accepted", name)
			} else if !strings.Contains(err.Error(), why[name]) {
				t.Errorf("%s: %v, want %q", name, err, why[name])
			}
		})
		if allocs > 50 {
			t.Errorf("%s: %.0f allocations", name, allocs)
		}
	}
}

// TestMergeBinaryAsMerge: folding every partial the corpus's aggregating
// rules write, a batch at a time, with MergeBinary gives what merging the
// accumulators UnmarshalBinary reads gives: the same bytes, rows and
// overflow; and bytes refused by UnmarshalBinary are refused by it too.
func TestMergeBinaryAsMerge(t *testing.T) {
	progs, parts := accPartials(t, regexp.MustCompile(`.`))
	folded, dropped := 0, int64(0)
	for i, p := range progs {
		for _, lim := range []Limits{DefaultLimits, {Groups: 3, Values: 2}} {
			merged, direct := p.NewAccLimits(lim), p.NewAccLimits(lim)
			for _, b := range parts[i] {
				// A part as an accumulator with these limits writes it.
				part := p.NewAccLimits(DefaultLimits)
				if err := part.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
				if lim != DefaultLimits {
					small := p.NewAccLimits(lim)
					if err := small.Merge(part); err != nil {
						t.Fatal(err)
					}
					b, part = mustMarshal(t, small), small
				}
				if err := merged.Merge(part); err != nil {
					t.Fatal(err)
				}
				if err := direct.MergeBinary(b); err != nil {
					t.Fatalf("program %d: %v", i, err)
				}
				folded++
			}
			mb, _ := merged.MarshalBinary()
			db, _ := direct.MarshalBinary()
			mr, mv := merged.Overflow()
			dr, dv := direct.Overflow()
			if lim != DefaultLimits {
				dropped += mr
			}
			if string(mb) != string(db) || mr != dr || mv != dv {
				t.Errorf("program %d, limits %+v: MergeBinary differs from Merge (overflow %d/%d against %d/%d)", i, lim, dr, dv, mr, mv)
			}
		}
	}
	if folded < 40 || dropped == 0 {
		t.Fatalf("%d partials folded, %d rows dropped at the small limits: too few to compare", folded, dropped)
	}
	// The first form goes through Merge; broken bytes are refused.
	p := progs[0]
	a := p.NewAcc()
	if err := a.UnmarshalBinary(parts[0][0]); err != nil {
		t.Fatal(err)
	}
	m := p.NewAcc()
	if err := m.MergeBinary(a.marshalV1()); err != nil {
		t.Fatalf("the first form: %v", err)
	}
	if x, y := mustMarshal(t, m), mustMarshal(t, a); string(x) != string(y) {
		t.Error("the first form merged into an empty accumulator is not the accumulator")
	}
	for _, bad := range [][]byte{parts[0][0][:len(parts[0][0])/2], append(append([]byte{}, parts[0][0]...), 0), []byte("esqlacc2")} {
		if err := p.NewAcc().MergeBinary(bad); err == nil {
			t.Errorf("MergeBinary took %d broken bytes", len(bad))
		}
	}
}

func mustMarshal(t *testing.T, a *Acc) []byte {
	t.Helper()
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
