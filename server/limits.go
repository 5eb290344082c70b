package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/semaphore"
)

// Limits bound what serve's listeners hold and do at once, across all their
// connections: the bytes of request bodies and forward messages in memory
// (read, and decompressed), and the bodies and messages being evaluated (a
// record's tree can take up to 50 MB, doc.MaxValues). A request or message
// that finds no room within Wait is refused (HTTP 503 with Retry-After; a
// forward connection is closed without an ack), so the sender retries it.
type Limits struct {
	bytes   *semaphore.Weighted
	maxHeld int64
	work    *semaphore.Weighted
	// Wait is how long a request or message waits for room.
	Wait time.Duration
}

// DefaultWorkers is how many bodies and messages are evaluated at once.
const DefaultWorkers = 2

// NewLimits bounds the bytes held at once to maxHeld and the bodies and
// messages evaluated at once to workers.
func NewLimits(maxHeld int64, workers int) *Limits {
	return &Limits{bytes: semaphore.NewWeighted(maxHeld), maxHeld: maxHeld, work: semaphore.NewWeighted(int64(workers)), Wait: 10 * time.Second}
}

// DefaultMaxHeld is the byte bound for a given max_body: a compressed body
// and what it inflates to.
func DefaultMaxHeld(maxBody int64) int64 { return MinMaxHeld(maxBody) }

// MinMaxHeld is the least byte bound that lets one body of maxBody be read
// and inflated.
func MinMaxHeld(maxBody int64) int64 { return 2 * (maxBody + 1) }

// errBusy is wrapped by errors of a request that found no room in time.
var errBusy = errors.New("busy")

// working waits for a worker slot; release it with done.
func (l *Limits) working(ctx context.Context) (done func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, l.Wait)
	defer cancel()
	if err := l.work.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("%w: %d bodies or messages are being evaluated; retry later", errBusy, DefaultWorkers)
	}
	return func() { l.work.Release(1) }, nil
}

// buffer is memory held against the byte bound, grown as data comes.
type buffer struct {
	l    *Limits
	ctx  context.Context
	b    []byte
	held int64
	max  int64 // bytes the buffer may hold; more is errTooLarge
}

// newBuffer starts a buffer of at most max bytes; each time it grows it
// waits up to Wait for room (and no longer than ctx lasts).
func (l *Limits) newBuffer(ctx context.Context, max int64) *buffer {
	return &buffer{l: l, ctx: ctx, max: max}
}

// reserve makes room for n more bytes, growing the buffer geometrically but
// never past max (plus one byte, to tell a body of max from a longer one).
func (b *buffer) reserve(n int) error {
	need := int64(len(b.b) + n)
	if need <= int64(cap(b.b)) {
		return nil
	}
	if need > b.max+1 {
		return errTooLarge
	}
	size := min(max(2*int64(cap(b.b)), need, 64<<10), b.max+1)
	ctx, cancel := context.WithTimeout(b.ctx, b.l.Wait)
	defer cancel()
	if err := b.l.bytes.Acquire(ctx, size-b.held); err != nil {
		return fmt.Errorf("%w: %d bytes of bodies and messages are held in memory (max_buffered); retry later", errBusy, b.l.maxHeld)
	}
	b.held = size
	grown := make([]byte, len(b.b), size)
	copy(grown, b.b)
	b.b = grown
	return nil
}

// Write appends p (msgp's CopyNext writes a message through it).
func (b *buffer) Write(p []byte) (int, error) {
	if err := b.reserve(len(p)); err != nil {
		return 0, err
	}
	b.b = append(b.b, p...)
	return len(p), nil
}

// readAll reads r to its end into the buffer; size, when known, is what r
// holds (the room for it is taken at once, so that the buffer does not
// grow by copies).
func (b *buffer) readAll(r io.Reader, size int64) error {
	if size > 0 && size <= b.max {
		if err := b.reserve(int(size)); err != nil {
			return err
		}
	}
	for {
		if len(b.b) == cap(b.b) {
			if err := b.reserve(1); err != nil {
				return err
			}
		}
		n, err := r.Read(b.b[len(b.b):cap(b.b)])
		b.b = b.b[:len(b.b)+n]
		if int64(len(b.b)) > b.max {
			return errTooLarge
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// inflatedSize is what gzip data says it inflates to (its trailer's ISIZE,
// the size modulo 4 GiB): a hint, as the data may lie.
func inflatedSize(gz []byte) int64 {
	if len(gz) < 18 {
		return -1
	}
	return int64(binary.LittleEndian.Uint32(gz[len(gz)-4:]))
}

// release gives the buffer's memory back to the bound.
func (b *buffer) release() {
	if b.held > 0 {
		b.l.bytes.Release(b.held)
	}
	b.b, b.held = nil, 0
}
