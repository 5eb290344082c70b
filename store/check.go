package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"os"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt trusts its file: it maps it and follows page numbers without
// checking them, so a file cut short faults (SIGBUS, which kills the
// process) when a page past its end is read, a zeroed page trips an
// assertion, and a page that points back up the tree recurses until the
// stack overflows. Before bbolt opens a file, checkFile walks it with
// ReadAt (never mapped: a page past the end is an error, not a fault) and
// refuses what bbolt cannot read safely; Salvage walks it the same way and
// keeps what is readable. The layout is bbolt's (go.etcd.io/bbolt,
// internal/common): a 16-byte page header, two meta pages, branch and leaf
// elements of 16 bytes, buckets as a 16-byte header and, when inline, a
// page of their own in the value.

// ErrDamaged is wrapped by errors about a state file that cannot be read
// safely.
var ErrDamaged = errors.New("the file is damaged")

// damaged makes the error for a damaged file, with what to do.
func damaged(cause any) error {
	return fmt.Errorf("%w (%v); %s", ErrDamaged, cause, recoverHint)
}

const (
	pageHeaderSize  = 16
	elementSize     = 16
	metaSize        = 64
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	branchPage      = 0x01
	leafPage        = 0x02
	metaPage        = 0x04
	freelistPage    = 0x10
	bucketLeafFlag  = 0x01
	noFreelist      = ^uint64(0)
	maxTreeHeight   = 64 // a 4 KB-page tree of a billion keys is 6 high
	maxBucketNests  = 64 // trailwatch nests two
	minPageSize     = 512
	maxPageSize     = 1 << 20
	bucketValueSize = 16
)

var errNotMeta = errors.New("not a bbolt meta page")

// boltMeta is one meta page.
type boltMeta struct {
	pageSize       uint32
	root, freelist uint64
	pgid, txid     uint64
	err            error // why it is not valid, nil when it is
}

func readMeta(b []byte) boltMeta {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{err: errors.New("cut short")}
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	ne := binary.NativeEndian
	meta := boltMeta{pageSize: ne.Uint32(m[8:]), root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case ne.Uint32(m[0:]) != boltMagic:
		meta.err = errNotMeta
	case ne.Uint32(m[4:]) != boltVersion:
		meta.err = fmt.Errorf("bbolt format version %d", ne.Uint32(m[4:]))
	case ne.Uint64(m[56:]) != h.Sum64():
		meta.err = errors.New("checksum mismatch")
	}
	return meta
}

// boltFile reads a bbolt file's pages, remembering which it has read.
type boltFile struct {
	f        *os.File
	size     int64
	pageSize int
	hwm      uint64   // the meta's page count (high water mark)
	seen     []uint64 // a bit per page
	strict   bool     // stop at the first problem (check) or go on (salvage)
	problems []string
}

// metas reads both meta pages. Page 0 gives the page size when it is valid;
// otherwise the system's page size is tried, as bbolt does.
func (bf *boltFile) metas() [2]boltMeta { return metasAt(bf.f, bf.size) }

// metasOf reads the meta pages of a file's bytes.
func (bf *boltFile) metasOf(b []byte) [2]boltMeta {
	bf.size = int64(len(b))
	return metasAt(bytes.NewReader(b), bf.size)
}

func metasAt(r io.ReaderAt, size int64) [2]boltMeta {
	var out [2]boltMeta
	head := make([]byte, pageHeaderSize+metaSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		out[0] = boltMeta{err: fmt.Errorf("unreadable: %v", err)}
	} else {
		out[0] = readMeta(head)
	}
	ps := os.Getpagesize()
	if out[0].err == nil && validPageSize(out[0].pageSize) {
		ps = int(out[0].pageSize)
	}
	if _, err := r.ReadAt(head, int64(ps)); err != nil {
		out[1] = boltMeta{err: fmt.Errorf("unreadable: %v", err)}
	} else {
		out[1] = readMeta(head)
	}
	return out
}

func validPageSize(ps uint32) bool {
	return ps >= minPageSize && ps <= maxPageSize && bits.OnesCount32(ps) == 1
}

// choose picks the meta bbolt would use (the valid one of the latest
// transaction) and checks it against the file: the page size, the file's
// length against the pages the meta counts, the root and freelist inside.
func (bf *boltFile) choose(ms [2]boltMeta) (boltMeta, error) {
	a, b := ms[0], ms[1]
	if b.txid > a.txid {
		a, b = b, a
	}
	m := a
	if m.err != nil {
		m = b
	}
	if m.err != nil {
		return m, fmt.Errorf("neither meta page is valid (page 0: %v; page 1: %v)", ms[0].err, ms[1].err)
	}
	if !validPageSize(m.pageSize) {
		return m, fmt.Errorf("meta page size %d", m.pageSize)
	}
	if err := bf.use(m); err != nil {
		return m, err
	}
	if m.root < 2 || m.root >= bf.hwm {
		return m, fmt.Errorf("root page %d outside the file's %d pages", m.root, bf.hwm)
	}
	if m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= bf.hwm) {
		return m, fmt.Errorf("freelist page %d outside the file's %d pages", m.freelist, bf.hwm)
	}
	return m, nil
}

// use sets the walk up for meta m: its page size, and its page count checked
// against the file's length (a salvage reads the pages that are there).
func (bf *boltFile) use(m boltMeta) error {
	bf.pageSize = int(m.pageSize)
	pages := uint64(bf.size) / uint64(bf.pageSize)
	bf.hwm = m.pgid
	if m.pgid < 2 || m.pgid > pages {
		err := bf.problem("%d bytes hold %d pages of %d bytes; the meta page counts %d: the file was cut short", bf.size, pages, bf.pageSize, m.pgid)
		if err != nil {
			return err
		}
		bf.hwm = min(max(m.pgid, 2), pages)
	}
	bf.seen = make([]uint64, (bf.hwm+63)/64)
	return nil
}

// problem records what is wrong; in strict mode it is the error to stop at.
func (bf *boltFile) problem(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	bf.problems = append(bf.problems, msg)
	if bf.strict {
		return errors.New(msg)
	}
	return nil
}

// page reads page id and its overflow pages, of the expected kind, checks
// its elements lie inside it, and marks it read. ok is false when it cannot
// be used (the problem is recorded).
func (bf *boltFile) page(id uint64, kinds uint16) (p []byte, ok bool, err error) {
	if id < 2 || id >= bf.hwm {
		return nil, false, bf.problem("page %d: outside the file's %d pages", id, bf.hwm)
	}
	head := make([]byte, pageHeaderSize)
	if _, err := bf.f.ReadAt(head, int64(id)*int64(bf.pageSize)); err != nil {
		return nil, false, bf.problem("page %d: unreadable: %v", id, err)
	}
	ne := binary.NativeEndian
	gotID, flags, overflow := ne.Uint64(head), ne.Uint16(head[8:]), uint64(ne.Uint32(head[12:]))
	switch {
	case gotID != id:
		return nil, false, bf.problem("page %d: its header says page %d (zeroed or overwritten)", id, gotID)
	case flags&kinds == 0 || bits.OnesCount16(flags) != 1:
		return nil, false, bf.problem("page %d: unexpected page type %#x", id, flags)
	case overflow >= bf.hwm-id:
		return nil, false, bf.problem("page %d: %d overflow pages run past the file's %d pages", id, overflow, bf.hwm)
	}
	for q := id; q <= id+overflow; q++ {
		if bf.seen[q/64]&(1<<(q%64)) != 0 {
			return nil, false, bf.problem("page %d: referenced twice", q)
		}
	}
	for q := id; q <= id+overflow; q++ {
		bf.seen[q/64] |= 1 << (q % 64)
	}
	p = make([]byte, (overflow+1)*uint64(bf.pageSize))
	if _, err := bf.f.ReadAt(p, int64(id)*int64(bf.pageSize)); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, bf.problem("page %d: unreadable: %v", id, err)
	} else if err != nil {
		return nil, false, bf.problem("page %d: past the end of the file", id)
	}
	return p, true, nil
}

// freelist checks the freelist page: its ids inside the page and the file.
func (bf *boltFile) freelist(id uint64) error {
	p, ok, err := bf.page(id, freelistPage)
	if !ok {
		return err
	}
	ne := binary.NativeEndian
	count, start := uint64(ne.Uint16(p[10:])), uint64(pageHeaderSize)
	if count == 0xFFFF {
		count, start = ne.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
	}
	if count > (uint64(len(p))-start)/8 {
		return bf.problem("freelist page %d: %d ids do not fit in it", id, count)
	}
	for i := range count {
		if f := ne.Uint64(p[start+8*i:]); f < 2 || f >= bf.hwm {
			return bf.problem("freelist page %d: free page %d outside the file's %d pages", id, f, bf.hwm)
		}
	}
	return nil
}

// leafElem is one key and value of a leaf page.
type leafElem struct {
	key, value []byte
	bucket     bool
}

// elements reads a branch or leaf page's elements (p is the page; for an
// inline bucket, the value that holds it). ok is false when an element lies
// outside the page or the keys are not in order (bbolt's Tx.Check, which
// compares pages with their parents, passes over inline buckets; a cursor
// over keys out of order can go round in circles).
func (bf *boltFile) elements(where string, p []byte) (flags uint16, leaves []leafElem, children []uint64, ok bool, err error) {
	ne := binary.NativeEndian
	if len(p) < pageHeaderSize {
		return 0, nil, nil, false, bf.problem("%s: cut short", where)
	}
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if flags != branchPage && flags != leafPage {
		return 0, nil, nil, false, bf.problem("%s: unexpected page type %#x", where, flags)
	}
	if count*elementSize > len(p)-pageHeaderSize {
		return 0, nil, nil, false, bf.problem("%s: %d elements do not fit in it", where, count)
	}
	var prev []byte
	for i := range count {
		at := pageHeaderSize + i*elementSize
		e := p[at : at+elementSize]
		var key []byte
		if flags == branchPage {
			pos, ksize := uint64(ne.Uint32(e[0:])), uint64(ne.Uint32(e[4:]))
			if uint64(at)+pos+ksize > uint64(len(p)) {
				return 0, nil, nil, false, bf.problem("%s: element %d lies outside the page", where, i)
			}
			key = p[uint64(at)+pos : uint64(at)+pos+ksize]
			children = append(children, ne.Uint64(e[8:]))
		} else {
			eflags, pos, ksize, vsize := ne.Uint32(e[0:]), uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
			k := uint64(at) + pos
			if k+ksize+vsize > uint64(len(p)) {
				return 0, nil, nil, false, bf.problem("%s: element %d lies outside the page", where, i)
			}
			key = p[k : k+ksize]
			leaves = append(leaves, leafElem{key: key, value: p[k+ksize : k+ksize+vsize], bucket: eflags&bucketLeafFlag != 0})
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			// A salvage keeps them: it reads them without a cursor.
			if err := bf.problem("%s: keys out of order at element %d", where, i); err != nil {
				return 0, nil, nil, false, err
			}
		}
		prev = key
	}
	if flags == branchPage && count == 0 {
		return 0, nil, nil, false, bf.problem("%s: a branch page without elements", where)
	}
	return flags, leaves, children, true, nil
}

// visitFunc sees each key of a bucket (path: the names of the buckets it
// is in, from the top) and says whether to walk a sub-bucket.
type visitFunc func(path [][]byte, e leafElem) (walk bool)

// bucket walks a bucket's tree (from page root, or its inline page when
// root is 0), calling visit for each key. In salvage mode, a damaged page
// is recorded and the rest of the bucket walked.
func (bf *boltFile) bucket(path [][]byte, root uint64, inline []byte, visit visitFunc) error {
	if len(path) > maxBucketNests {
		return bf.problem("buckets nested deeper than %d", maxBucketNests)
	}
	type item struct {
		id     uint64
		height int
	}
	name := "the top bucket"
	if len(path) > 0 {
		name = fmt.Sprintf("bucket %q", path[len(path)-1])
	}
	var leaves []leafElem
	if root == 0 {
		flags, ls, _, ok, err := bf.elements("inline "+name, inline)
		if !ok {
			return err
		}
		if flags != leafPage {
			return bf.problem("inline %s: not a leaf page", name)
		}
		leaves = ls
	}
	stack := []item{}
	if root != 0 {
		stack = append(stack, item{root, 1})
	}
	for len(stack) > 0 || len(leaves) > 0 {
		for _, e := range leaves {
			if !visit(path, e) {
				continue
			}
			if !e.bucket {
				continue
			}
			if len(e.value) < bucketValueSize {
				if err := bf.problem("%s: sub-bucket %q: a value of %d bytes", name, e.key, len(e.value)); err != nil {
					return err
				}
				continue
			}
			sub := append(path[:len(path):len(path)], e.key)
			if err := bf.bucket(sub, binary.NativeEndian.Uint64(e.value), e.value[bucketValueSize:], visit); err != nil {
				return err
			}
		}
		leaves = nil
		if len(stack) == 0 {
			break
		}
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.height > maxTreeHeight {
			if err := bf.problem("%s: a tree more than %d pages high", name, maxTreeHeight); err != nil {
				return err
			}
			continue
		}
		p, ok, err := bf.page(it.id, branchPage|leafPage)
		if !ok {
			if err != nil {
				return err
			}
			continue
		}
		_, ls, children, ok, err := bf.elements(fmt.Sprintf("page %d (%s)", it.id, name), p)
		if !ok {
			if err != nil {
				return err
			}
			continue
		}
		leaves = ls
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, item{children[i], it.height + 1})
		}
	}
	return nil
}

// openBoltFile opens path for a walk and picks its meta page.
func openBoltFile(path string, strict bool) (*boltFile, boltMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, boltMeta{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, boltMeta{}, err
	}
	bf := &boltFile{f: f, size: st.Size(), strict: strict}
	m, err := bf.choose(bf.metas())
	return bf, m, err
}

var errLocked = errors.New("locked by another process (is another trailwatch or Fluent Bit using it?)")

// checkLocked walks the file (checkFile) under a shared lock, so that no
// other process writes it meanwhile; it waits up to timeout for a writer
// to let go.
func checkLocked(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return errLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if err := checkFile(path); err != nil {
		return damaged(err)
	}
	return nil
}

// consistent runs bbolt's Tx.Check on a file checkFile has passed, and
// returns the first problem it reports (with how many there were).
func consistent(db *bolt.DB) error {
	var first error
	n := 0
	err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > 1 {
		return fmt.Errorf("%v (and %d more problems)", first, n-1)
	}
	return first
}

// guard turns a panic, or a memory fault, while the file is read into an
// error naming the file (a file damaged, or cut short by someone else,
// after Open checked it): defer s.guard(op, &err)().
func (s *Store) guard(op string, err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			*err = &Error{s.path, op, damaged(r)}
		}
	}
}

// errOutOfOrder is the error of a loop that finds the file's keys out of
// order, where it would otherwise go round for ever.
var errOutOfOrder = damaged("keys out of order")

// seekAfter moves c past key k, which the caller has just deleted at c.
func seekAfter(c *bolt.Cursor, k []byte) ([]byte, []byte, error) {
	next, v := c.Seek(k)
	if next != nil && bytes.Compare(next, k) <= 0 {
		return nil, nil, errOutOfOrder
	}
	return next, v, nil
}

// checkFile walks the whole file as bbolt would read it and returns the
// first problem: a bad meta page, a file shorter than its pages, a page
// outside the file, of the wrong kind, referenced twice, or with elements
// outside it, a freelist that does not fit, trees or buckets nested past
// any real file's depth.
func checkFile(path string) error {
	bf, m, err := openBoltFile(path, true)
	if bf != nil {
		defer bf.f.Close()
	}
	if err != nil {
		return err
	}
	if m.freelist != noFreelist {
		if err := bf.freelist(m.freelist); err != nil {
			return err
		}
	}
	if err := bf.bucket(nil, m.root, nil, layout(bf)); err != nil {
		return err
	}
	if len(bf.problems) > 0 { // layout's, which cannot stop the walk
		return errors.New(bf.problems[0])
	}
	return nil
}

// Where trailwatch keeps values and where buckets: a sub-bucket where a
// value belongs (or a value where a bucket does) passed Open, then failed
// every commit, prune or start that met it with bbolt's "incompatible
// value", nothing named.
var (
	// byRule: a bucket per history or rule_id, values in it.
	byRule = [][]byte{bucketTerms, bucketWindows, bucketWindowSignals, bucketSequences}
	// flat: values only.
	flat = [][]byte{bucketMeta, bucketRules, bucketRuleHistory, bucketHistoryIDs, bucketOutbox, bucketSinks, bucketAlertIDs,
		bucketSuppress, bucketCaps, bucketCapDocs, bucketRecordIDs, bucketWindowSizes, bucketWindowRuns, bucketRuleShapes}
)

// layout is a visitFunc that reports what is out of place in trailwatch's
// own buckets (others' are left to the schema check).
func layout(bf *boltFile) visitFunc {
	has := func(set [][]byte, name []byte) bool {
		return slices.ContainsFunc(set, func(b []byte) bool { return bytes.Equal(b, name) })
	}
	return func(path [][]byte, e leafElem) bool {
		var want bool // whether e must be a bucket
		switch {
		case len(path) == 0:
			if !has(byRule, e.key) && !has(flat, e.key) {
				return true
			}
			want = true
		case len(path) == 1 && has(byRule, path[0]):
			want = true
		case len(path) == 1 && has(flat, path[0]), len(path) == 2 && has(byRule, path[0]):
			want = false
		default:
			return true
		}
		if e.bucket == want {
			if len(path) == 1 && bytes.Equal(path[0], bucketOutbox) && len(e.key) != 8 {
				bf.problem("bucket %q: key %q is not an alert's sequence (8 bytes)", path[0], e.key)
			}
			return true
		}
		where := fmt.Sprintf("%q", e.key)
		if len(path) > 0 {
			where = fmt.Sprintf("bucket %q: key %q", bytes.Join(path, []byte("/")), e.key)
		}
		if want {
			bf.problem("%s: a value where trailwatch keeps a bucket", where)
		} else {
			bf.problem("%s: a bucket where trailwatch keeps a value", where)
		}
		return true
	}
}

// SalvageResult tells what Salvage read.
type SalvageResult struct {
	Terms    int      // terms written
	Problems []string // what could not be read
}

// Salvage reads the new_terms history of a state file that Open refuses as
// damaged, without bbolt: page by page with ReadAt, from the meta page of
// the latest valid transaction (or the other, when that one leads to no
// history; or, when neither is valid, from one that is at least a bbolt
// meta page), skipping pages that are unreadable, cut off, of the wrong
// kind or referenced twice. It writes the terms it finds as Export does,
// so that Import can take them to a new file.
func Salvage(path string, w io.Writer) (SalvageResult, error) {
	var res SalvageResult
	bf, _, _ := openBoltFile(path, false)
	if bf == nil {
		_, err := os.Stat(path)
		return res, &Error{path, "salvage", err}
	}
	defer bf.f.Close()
	ms := bf.metas()
	order := []boltMeta{ms[0], ms[1]}
	if ms[1].txid > ms[0].txid {
		order[0], order[1] = ms[1], ms[0]
	}
	var tried []boltMeta
	for _, valid := range []bool{true, false} {
		for _, m := range order {
			if (m.err == nil) == valid && validPageSize(m.pageSize) && (valid || !errors.Is(m.err, errNotMeta)) {
				tried = append(tried, m)
			}
		}
	}
	if len(tried) == 0 {
		return res, &Error{path, "salvage", fmt.Errorf("no readable meta page (page 0: %v; page 1: %v): nothing can be saved", ms[0].err, ms[1].err)}
	}
	ew := newExportWriter(w)
	for _, m := range tried {
		bf.problems = bf.problems[:0]
		bf.use(m)
		windows := map[string]string{}
		bf.bucket(nil, m.root, nil, func(path [][]byte, e leafElem) bool {
			switch {
			case len(path) == 0:
				return e.bucket && (string(e.key) == string(bucketTerms) || string(e.key) == string(bucketRules))
			case len(path) == 1 && string(path[0]) == string(bucketRules):
				if len(e.value) == 8 {
					windows[string(e.key)] = time.Duration(binary.BigEndian.Uint64(e.value)).String()
				}
			case len(path) == 1:
				return e.bucket && !bytes.HasPrefix(e.key, []byte(rebuildPrefix))
			case len(path) == 2 && !e.bucket:
				if ew.term(string(path[1]), e.key, e.value, windows[string(path[1])]) == nil {
					res.Terms++
				}
			}
			return false
		})
		res.Problems = append(res.Problems, bf.problems...)
		if res.Terms > 0 {
			break
		}
	}
	if err := ew.flush(); err != nil {
		return res, &Error{path, "salvage", err}
	}
	return res, nil
}
