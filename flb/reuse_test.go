package flb

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/engine"
	"github.com/trailwatch/trailwatch/internal/gen"
	"github.com/trailwatch/trailwatch/store"
)

const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

// TestChunkMemoryReusedAfterFlush: Fluent Bit frees a chunk once its flush
// returns, and its memory is soon another chunk's. Records are read in
// place, so nothing the engine keeps past a flush (caches, state, pending
// alerts) may point into a chunk: here each chunk is a copy that is
// overwritten as soon as its flush is committed, and the alerts must be
// those of a run whose chunks stay intact. (A user agent parse cached as a
// view of a freed chunk crashed a real Fluent Bit under load, and gives
// other verdicts here.) With Elastic's rules when ../shared is there (the
// bundled ones otherwise, said in the log), and a rule on a user agent's
// parse. The same for JSON text, which the engine transcodes into buffers
// it reuses from batch to batch.
func TestChunkMemoryReusedAfterFlush(t *testing.T) {
	var chunks, texts [][]byte // texts[i]: chunks[i]'s records as JSON lines
	var cur, text []byte
	ts := eventTime(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	n := 0
	err := gen.Generate(20_000, 7, func(rec map[string]any) error {
		if n++; n%50 == 0 {
			// Read by the rule below through the user agent's parse,
			// which is cached from one record to the next.
			rec["eventSource"], rec["eventName"], rec["userAgent"] = "secretsmanager.amazonaws.com", "GetSecretValue", chrome
		}
		body, err := msgp.AppendIntf(nil, rec)
		if err != nil {
			return err
		}
		cur = append(cur, v2(ts, body)...)
		line, err := json.Marshal(rec)
		text = append(append(text, line...), '\n')
		if len(cur) > 256<<10 {
			chunks, cur = append(chunks, cur), nil
			texts, text = append(texts, text), nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	chunks, texts = append(chunks, cur), append(texts, text)
	rs := benchRules(t, 1)
	// A rule on a field the user agent's parse gives, beside the others.
	seed, err := os.ReadFile("../conf/rules/bedrock_foundation_model_access_granted.toml")
	if err != nil {
		t.Fatal(err)
	}
	ua := regexp.MustCompile("(?s)query = '''.*?'''").ReplaceAllString(string(seed), "query = '''user_agent.name: \"Chrome\" and event.action: \"GetSecretValue\"'''")
	ua = strings.Replace(ua, "aed4b9d5-f853-40cf-8489-4fdcff03e272", "5f0e2a4c-7d1b-4c3e-9a8f-1b2c3d4e5f60", 1)
	path := filepath.Join(t.TempDir(), "ua.toml")
	if err := os.WriteFile(path, []byte(ua), 0o600); err != nil {
		t.Fatal(err)
	}
	extra, err := conf.LoadRules(rs.Schema, path)
	if err != nil || len(extra.Runnable()) != 1 {
		t.Fatalf("the user agent rule: %v", err)
	}
	rs.Rules = append(rs.Rules, extra.Runnable()...)
	run := func(scribble, asJSON bool) []byte {
		st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
		e, err := engine.New(rs, engine.Options{State: st, TimeSource: engine.EventTime, NoCaps: true, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		var docs []byte
		take := func(res engine.Result, err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range res.Docs {
				docs = append(append(docs, d...), '\n')
			}
			st.Ack(res.Seqs)
		}
		buf := &chunkBuf{}
		for i, c := range chunks {
			data := bytes.Clone(c) // the chunk Fluent Bit hands over
			b := e.NewBatch()
			if asJSON {
				data = bytes.Clone(texts[i]) // a body serve reads
				var recs []engine.Record
				for l := range bytes.Lines(data) {
					recs = append(recs, engine.Record{JSON: bytes.TrimSpace(l)})
				}
				for len(recs) > 0 {
					k := min(piece, len(recs))
					b.Add(recs[:k])
					recs = recs[k:]
				}
			} else {
				buf.feed("cloudtrail", data, b.Add)
			}
			take(b.Commit())
			if scribble {
				for i := range data {
					data[i] = 0xc1 // freed, and another chunk's now
				}
			}
		}
		take(e.Drain())
		return docs
	}
	for _, asJSON := range []bool{false, true} {
		// The overwritten run first: the caches are the process's, and
		// the run after it could meet what it left there.
		got, want := run(true, asJSON), run(false, asJSON)
		if n := bytes.Count(got, []byte(`"kibana.alert.rule.rule_id":"5f0e2a4c-7d1b-4c3e-9a8f-1b2c3d4e5f60"`)); n != 20_000/50 {
			t.Errorf("JSON %v: the user agent rule alerted %d times on the overwritten records, want %d (one a Chrome GetSecretValue)", asJSON, n, 20_000/50)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("JSON %v: alerts differ when the records' memory is overwritten after their batch: %d bytes of alerts, want %d", asJSON, len(got), len(want))
		}
	}
}
