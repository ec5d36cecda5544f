package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

func TestStatsValidRegister(t *testing.T) {
	r := Stats{}.Check(context.Background(), loadFixture(t, "valid-register.jsonl"))
	// The figures are reported, not judged.
	if r.Verdict != NotApplicable || !r.Figures || r.Name != "stats" || !strings.HasPrefix(r.Summary, "figures, not a verdict") {
		t.Fatalf("got %s: %s %s", r.Verdict, r.Summary, r.Explanation)
	}
	d := r.Details
	// 10 client ops: 8 ok, 1 fail (the failed read), 1 cas mismatch (a
	// normal answer, counted apart from definite rejections).
	if d["ops"] != int64(10) || d["ok"] != int64(8) || d["fail"] != int64(1) || d["mismatch"] != int64(1) || d["info"] != int64(0) {
		t.Fatalf("counts: %v", d)
	}
	byF := d["by_f"].(map[string]any)
	get := byF["get"].(map[string]any)
	if get["ops"] != int64(6) || get["fail"] != int64(1) {
		t.Errorf("by_f[get] = %v", get)
	}
	if d["faults"] != 1 {
		t.Errorf("faults = %v", d["faults"])
	}
	lat := d["latency_us"].(map[string]float64)
	// ok latencies (ns): 1000 500 400 1000 400 500 400 400.
	if lat["max"] != 1 || lat["p50"] != 0.4 || lat["count"] != 8 {
		t.Errorf("latency = %v", lat)
	}
	w := d["rate_window"].(map[string]any)
	if w["source"] != "history" || w["start_ns"] != int64(1000) || w["end_ns"] != int64(9400) {
		t.Errorf("window = %v", w)
	}
	if got, want := d["achieved_rate"].(float64), 10/8400e-9; abs(got-want) > 1e-6*want {
		t.Errorf("achieved_rate %v, want %v", got, want)
	}
}

// With phase markers, the figures say how many of the history's ops are
// the main phase's load (what the workload counts) and how many are the
// final reads, so the two op counts of a run's summary are told apart.
func TestStatsSplitsLoadAndFinalReads(t *testing.T) {
	v := func(s string) json.RawMessage { return json.RawMessage(s) }
	at := func(e history.Event, tm int64) history.Event { e.Time = tm; return e }
	op := func(p history.Process, call, ret int64, key string) []history.Event {
		return []history.Event{
			{Type: history.Invoke, Process: p, Time: call, F: "get", Key: key},
			{Type: history.OK, Process: p, Time: ret, F: "get", Key: key, Value: v("null")},
		}
	}
	evs := []history.Event{at(history.PhaseMarker("main", history.PhaseStart), 100)}
	evs = append(evs, op(0, 200, 300, "a")...)
	evs = append(evs, op(1, 250, 400, "b")...)
	evs = append(evs, op(0, 500, 900, "a")...) // invoked in the main phase, completes after it
	evs = append(evs, at(history.PhaseMarker("main", history.PhaseEnd), 600))
	evs = append(evs, at(history.PhaseMarker("final-reads", history.PhaseStart), 1000))
	evs = append(evs, op(2, 1100, 1200, "a")...)
	evs = append(evs, op(2, 1300, 1400, "b")...)
	evs = append(evs, at(history.PhaseMarker("final-reads", history.PhaseEnd), 1500))
	r := Stats{}.Check(context.Background(), Input{Events: evs})
	if r.Details["ops_main_phase"] != int64(3) || r.Details["ops_final_reads"] != int64(2) {
		t.Errorf("details %v: want 3 ops in the main phase and 2 in the final reads", r.Details)
	}
	if !strings.Contains(r.Summary, "history: 5 ops (3 invoked in the main phase, 2 in the final reads)") ||
		!strings.Contains(r.Summary, "ok ops from invoke to completion p50") {
		t.Errorf("summary %q does not label its figures", r.Summary)
	}
	// A bare history without phases: no split claimed.
	r = Stats{}.Check(context.Background(), loadFixture(t, "valid-register.jsonl"))
	if strings.Contains(r.Summary, "main phase (") || r.Details["ops_main_phase"] != nil {
		t.Errorf("a history without phase markers: %q %v", r.Summary, r.Details)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestStatsMalformed(t *testing.T) {
	cases := map[string]struct {
		kind string
		line int
	}{
		"malformed-double-invoke.jsonl":             {"invoke-while-pending", 3},
		"malformed-completion-without-invoke.jsonl": {"completion-without-invoke", 4},
		"malformed-invoke-after-info.jsonl":         {"invoke-after-info", 4},
	}
	for file, c := range cases {
		r := Stats{}.Check(context.Background(), loadFixture(t, file))
		if r.Verdict != Unknown || r.Figures {
			t.Errorf("%s: got %s (figures %v): a malformed history is a verdict, not figures", file, r.Verdict, r.Figures)
			continue
		}
		wantText := fmt.Sprintf("breaks the process-sequential rule at testdata/%s:%d", file, c.line)
		if !strings.Contains(r.Explanation, wantText) {
			t.Errorf("%s: explanation lacks %q: %s", file, wantText, r.Explanation)
		}
		if len(r.Anomalies) == 0 || r.Anomalies[0].Kind != c.kind {
			t.Errorf("%s: anomalies %+v, want kind %s", file, r.Anomalies, c.kind)
		}
	}
	// Other malformations: a completion that does not match its invoke, and
	// one stamped before it.
	evs := []history.Event{
		{Type: history.Invoke, Process: 0, Time: 10, F: "get", Key: "a"},
		{Type: history.OK, Process: 0, Time: 20, F: "put", Key: "a", Value: json.RawMessage(`1`)},
		{Type: history.Invoke, Process: 1, Time: 30, F: "get", Key: "a"},
		{Type: history.OK, Process: 1, Time: 25, F: "get", Key: "a", Value: history.Null},
	}
	r := Stats{}.Check(context.Background(), Input{Events: evs})
	if r.Verdict != Unknown || len(r.Anomalies) != 2 ||
		r.Anomalies[0].Kind != string(probMismatchedPair) || r.Anomalies[1].Kind != string(probTimeBackwards) {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
}

func TestStatsPendingAndPhaseMarkers(t *testing.T) {
	v := func(s string) json.RawMessage { return json.RawMessage(s) }
	evs := []history.Event{
		{Type: history.Invoke, Process: 0, Time: 0, F: "put", Key: "a", Value: v("1")},
		{Type: history.OK, Process: 0, Time: 100, F: "put", Key: "a", Value: v("1")},
		{Type: history.Info, Process: history.Observer, Time: 1000, F: "phase", Value: v(`"main"`), Phase: "start"},
		{Type: history.Invoke, Process: 0, Time: 1000, F: "put", Key: "a", Value: v("2")},
		{Type: history.Info, Process: 0, Time: 1500, F: "put", Key: "a", Value: v("2"), Error: "timeout"},
		{Type: history.Invoke, Process: 1, Time: 1600, F: "get", Key: "a"},
		{Type: history.OK, Process: 1, Time: 1700, F: "get", Key: "a", Value: v("2")},
		{Type: history.Invoke, Process: 2, Time: 1800, F: "get", Key: "a"},
		{Type: history.Info, Process: history.Observer, Time: 2000, F: "phase", Value: v(`"main"`), Phase: "end"},
	}
	r := Stats{}.Check(context.Background(), Input{Events: evs})
	d := r.Details
	if r.Verdict != NotApplicable || d["pending"] != int64(1) || d["info"] != int64(1) || d["ops"] != int64(4) {
		t.Fatalf("got %s %v", r.Verdict, d)
	}
	w := d["rate_window"].(map[string]any)
	if w["source"] != "phase markers" || w["start_ns"] != int64(1000) || w["end_ns"] != int64(2000) {
		t.Fatalf("window %v", w)
	}
	// Two completions (info at 1500, ok at 1700) in 1 µs.
	if d["achieved_rate"] != 2e6 || d["ok_rate"] != 1e6 {
		t.Fatalf("rates %v %v", d["achieved_rate"], d["ok_rate"])
	}
	r = Stats{MainStart: 0, MainEnd: 200}.Check(context.Background(), Input{Events: evs})
	if r.Details["rate_window"].(map[string]any)["source"] != "given" || r.Details["achieved_rate"] != 5e6 {
		t.Fatalf("given window: %v", r.Details)
	}
}
