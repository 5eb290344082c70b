package store

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What a fleet of nodes (package fleet) needs of the local tier.

// keyNodeID in the meta bucket is this state file's node id.
var keyNodeID = []byte("node_id")

// NodeID is the id this state file gives its node in a fleet: made at
// random the first time it is asked for and kept in the file, so that a
// restarted node knows the fleet's keys it wrote itself. A new file is a
// new node.
func (s *Store) NodeID() (_ string, err error) {
	defer s.guard("node id", &err)()
	var id string
	err = s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyNodeID); len(v) > 0 {
			id = string(v)
			return nil
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		id = hex.EncodeToString(b[:])
		return meta.Put(keyNodeID, []byte(id))
	})
	if err != nil {
		return "", &Error{s.path, "node id", err}
	}
	return id, nil
}

// Local is the local tier's answer for term i: its last sighting before
// this one (in the file, or earlier in the batch) and whether it had one.
func (v *Verdicts) Local(i int) (last time.Time, known bool) { return v.last[i], v.known[i] }

// Merge folds in a sighting of term i that the fleet holds (another node's,
// or this node's own earlier one): the term is known, last seen at the
// later of the two.
func (v *Verdicts) Merge(i int, last time.Time) {
	if !v.known[i] || last.After(v.last[i]) {
		v.last[i], v.known[i] = last, true
	}
}

// AlertSeen reports whether an alert id was written within DedupWindow:
// the commit will drop it as a duplicate.
func (v *Verdicts) AlertSeen(id string) bool {
	if v.windows == nil {
		return false
	}
	t, ok := getTime(v.windows.tx.Bucket(bucketAlertIDs).Get([]byte(id)))
	return ok && time.Since(t) < DedupWindow
}
