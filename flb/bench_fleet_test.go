package flb

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/fleet"
	"github.com/trailwatch/trailwatch/internal/natstest"
	"github.com/trailwatch/trailwatch/store"
)

// BenchmarkChunkPathShared is BenchmarkChunkPath/rules=x1 with
// shared_state: the same chunks, rules and state file, and a fleet on an
// embedded nats-server (loopback) that the engine asks about the terms new
// to it and the ids of the alerts it writes. It reports the NATS requests
// made per 1,000 records (both passes: the first meets every term, the
// second knows them all).
func BenchmarkChunkPathShared(b *testing.B) {
	cs := benchChunks(b)
	srv := natstest.Start(b)
	rs := benchRules(b, 1)
	st, err := store.Open(filepath.Join(b.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	id, err := st.NodeID()
	if err != nil {
		b.Fatal(err)
	}
	fc, err := fleet.Open(fleet.Options{URL: srv.URL(), Node: id, TermsTTL: 7 * 24 * time.Hour, Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer fc.Close()
	if !fc.Ready() {
		b.Fatal("the embedded fleet did not answer")
	}
	e, err := engine.New(rs, engine.Options{State: st, Fleet: fc})
	if err != nil {
		b.Fatal(err)
	}
	ops0 := fc.C.Ops.Load()
	records := feedChunks(b, e, st, len(rs.Rules), cs)
	b.ReportMetric(float64(fc.C.Ops.Load()-ops0)*1000/float64(records), "nats-ops/1000rec")
	b.ReportMetric(float64(fc.C.Fallbacks.Load()), "fallbacks")
}
