package engine

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestThresholdReplayMatchesLive: the same records fed live (the ingested
// clock, each record arriving a moment after its eventTime, a timer making
// the runs) and replayed (the event clock, as `scan --time-source event`
// runs them, the clock moved past the last record at the end) make the
// same alerts: the same runs, groups, counts and ids.
func TestThresholdReplayMatchesLive(t *testing.T) {
	rs := thRule(t, []string{"cloud.account.id", "source.ip"}, 4, "", 0, "")
	// Three groups over 40 minutes: one reaching the threshold in two
	// separate windows, one just below it in every window, one reaching it
	// only when the late part of a window is counted. No record within the
	// arrival delay of a minute's end, where live and replay would put it
	// in different buckets (as Kibana's event.ingested would).
	var recs []Record
	recs = append(recs, logins(t, 4, at("10:00:10"), "111", "192.0.2.1", "root")...)
	recs = append(recs, logins(t, 3, at("10:02:10"), "222", "192.0.2.2", "root")...)
	recs = append(recs, logins(t, 2, at("10:11:10"), "333", "192.0.2.3", "root")...)
	recs = append(recs, logins(t, 3, at("10:12:20"), "222", "192.0.2.2", "root")...)
	recs = append(recs, logins(t, 2, at("10:13:30"), "333", "192.0.2.3", "root")...)
	recs = append(recs, logins(t, 5, at("10:31:10"), "111", "192.0.2.1", "root")...)
	const delay = 2 * time.Second
	ids := func(res []Result) []string {
		var out []string
		for _, r := range res {
			for i, tr := range thResults(t, r) {
				out = append(out, r.Alerts[i].UUID+" "+strings.Join(tr.terms, ",")+" "+strconv.FormatFloat(tr.count, 'f', -1, 64))
			}
		}
		slices.Sort(out)
		return out
	}

	// Live: each record is read delay after its eventTime; before it, the
	// timer makes every run that is due.
	c := &clock{}
	live, _ := newEngine(t, rs, Options{Now: c.now})
	var liveRes []Result
	for _, r := range recs {
		ev, err := time.Parse(time.RFC3339, r.Node.Get("eventTime").Str)
		if err != nil {
			t.Fatal(err)
		}
		c.t = ev.Add(delay)
		res, err := live.RunDue(c.t)
		if err != nil {
			t.Fatal(err)
		}
		liveRes = append(liveRes, res)
		res, err = live.ProcessBatch([]Record{r})
		if err != nil {
			t.Fatal(err)
		}
		liveRes = append(liveRes, res)
	}
	for end := c.t.Add(10 * time.Minute); c.t.Before(end); c.t = c.t.Add(30 * time.Second) {
		res, err := live.RunDue(c.t)
		if err != nil {
			t.Fatal(err)
		}
		liveRes = append(liveRes, res)
	}

	// Replay: the whole stream on the event clock, then drained.
	replay, _ := newEngine(t, rs, Options{TimeSource: EventTime})
	r1, err := replay.ProcessBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := replay.Drain()
	if err != nil {
		t.Fatal(err)
	}

	got, want := ids([]Result{r1, r2}), ids(liveRes)
	if len(want) != 3 {
		t.Fatalf("the live feed made %d alerts, want 3 (group 111 twice, group 333 once): %v", len(want), want)
	}
	if !slices.Equal(got, want) {
		t.Errorf("replay alerts differ from the live feed's:\nreplay %v\nlive   %v", got, want)
	}
}
