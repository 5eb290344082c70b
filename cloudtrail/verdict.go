package cloudtrail

import (
	"hash/maphash"
	"sync"
)

// Whether Elastic indexes a record as it is depends on the record alone,
// and a record comes again when a chunk or a batch is retried (and in
// replays): the verdicts of recent records read from MessagePack are kept,
// by a 128-bit hash of their bytes, so that judging a record seen before
// builds no document.

// Verdict is what the AWS integration's pipeline and Elasticsearch make of a
// record: whether the pipeline fails on it, and why Elasticsearch would
// refuse its document ("" when it indexes it).
type Verdict struct {
	Failed  bool
	Refused string
}

var verdicts = struct {
	sync.Mutex
	seeds [2]maphash.Seed
	m     map[[2]uint64]Verdict
}{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, m: map[[2]uint64]Verdict{}}

// verdictCacheSize bounds the kept verdicts (about 100 bytes each).
const verdictCacheSize = 1 << 14

// Verdict returns the record's verdict, building its document only when a
// walk of the record cannot tell it is plain (plainRecord) and the same
// record was not judged before.
func (e *Event) Verdict() Verdict {
	if e.ecs != nil {
		return Verdict{}
	}
	if e.verdictGen == e.gen {
		return e.verdict
	}
	v := e.judge()
	e.verdict, e.verdictGen = v, e.gen
	return v
}

// judge finds the record's verdict.
func (e *Event) judge() Verdict {
	if e.indexed != nil {
		return Verdict{Failed: e.indexed.Failed, Refused: e.indexed.Refused}
	}
	if plainRecord(e.tree()) {
		return Verdict{}
	}
	if e.mp == nil {
		ix := e.Document()
		return Verdict{Failed: ix.Failed, Refused: ix.Refused}
	}
	key := [2]uint64{maphash.Bytes(verdicts.seeds[0], e.mp), maphash.Bytes(verdicts.seeds[1], e.mp)}
	if e.mpJSON {
		key[0] ^= 1 // the same bytes from JSON read their numbers otherwise
	}
	verdicts.Lock()
	v, ok := verdicts.m[key]
	verdicts.Unlock()
	if ok {
		return v
	}
	ix := e.Document()
	v = Verdict{Failed: ix.Failed, Refused: ix.Refused}
	verdicts.Lock()
	if len(verdicts.m) >= verdictCacheSize {
		clear(verdicts.m)
	}
	verdicts.m[key] = v
	verdicts.Unlock()
	return v
}
