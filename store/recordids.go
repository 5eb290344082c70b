package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketRecordIDs holds the ids (64-bit hashes of eventID) of the records
// that aggregating rules have counted, so that a record given again (a
// chunk sent again after a crash, a retried request, a file scanned twice)
// is not counted twice: key = 8-byte big-endian slot (the records' time,
// in the engine's slots) then an 8-byte sequence number, value = the ids,
// 8 bytes each.
var bucketRecordIDs = []byte("aggregated_records")

// AddRecordIDs records ids under slot, in the transaction.
func (w *Windows) AddRecordIDs(slot int64, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	b, err := w.tx.CreateBucketIfNotExists(bucketRecordIDs)
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		v = binary.BigEndian.AppendUint64(v, id)
	}
	k := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(slot)), seq)
	return b.Put(k, v)
}

// DropRecordIDsBefore deletes the ids recorded under slots before slot.
func (w *Windows) DropRecordIDsBefore(slot int64) error {
	b := w.tx.Bucket(bucketRecordIDs)
	if b == nil || slot <= 0 {
		return nil // slots are never negative: nothing is before 0
	}
	_, err := deleteBefore(b, binary.BigEndian.AppendUint64(nil, uint64(slot)))
	return err
}

// RecordIDs calls fn with each slot's recorded ids, the newest slot first,
// until fn returns false (an entry that is not whole 8-byte ids under a
// 16-byte key is an error naming the file). ids is fn's only until it
// returns.
func (s *Store) RecordIDs(fn func(slot int64, ids []uint64) bool) (err error) {
	defer s.guard("read aggregated record ids", &err)()
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRecordIDs)
		if b == nil {
			return nil
		}
		var ids []uint64
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if len(k) != 16 || len(v)%8 != 0 {
				return fmt.Errorf("an entry of %s is damaged (key %d bytes, value %d bytes)", bucketRecordIDs, len(k), len(v))
			}
			ids = ids[:0]
			for ; len(v) >= 8; v = v[8:] {
				ids = append(ids, binary.BigEndian.Uint64(v))
			}
			if !fn(int64(binary.BigEndian.Uint64(k[:8])), ids) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return &Error{s.path, "read aggregated record ids", err}
	}
	return nil
}
