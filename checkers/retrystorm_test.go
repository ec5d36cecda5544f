package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// stormHist builds a retry-storm history by hand: a main phase, client
// requests at a fixed rate whose outcome a function decides, faults, and
// the callers' metrics samples.
type stormHist struct {
	evs  []history.Event
	proc int
	id   int
}

const sec = int64(time.Second)

func (h *stormHist) add(e history.Event) { h.evs = append(h.evs, e) }

func (h *stormHist) phase(name string, start, end int64) {
	s, e := history.PhaseMarker(name, history.PhaseStart), history.PhaseMarker(name, history.PhaseEnd)
	s.Time, e.Time = start, end
	h.add(s)
	h.add(e)
}

// load sends rate requests per second from from to to (ns), each
// completing 1 ms after its invoke, ok when ok(invoke time) says so.
func (h *stormHist) load(from, to int64, rate int, ok func(t int64) bool) {
	step := sec / int64(rate)
	for t := from; t < to; t += step {
		h.proc++
		p := history.Process(h.proc)
		h.add(history.Event{Type: history.Invoke, Process: p, Time: t, F: "request", Key: "work"})
		typ, errText := history.OK, ""
		if !ok(t) {
			typ, errText = history.Fail, "status 503"
		}
		h.add(history.Event{Type: typ, Process: p, Time: t + int64(time.Millisecond), F: "request", Key: "work", Node: "frontend1", Error: errText})
	}
}

func (h *stormHist) fault(name string, start, end int64) {
	h.id++
	v := json.RawMessage(fmt.Sprintf(`{"fault":%q,"id":%d,"targets":["backend1"]}`, name, h.id))
	h.add(history.Event{Type: history.Info, Process: history.Nemesis, Time: start, F: name, Value: v, Phase: history.PhaseStart})
	h.add(history.Event{Type: history.Info, Process: history.Nemesis, Time: end, F: name, Value: v, Phase: history.PhaseEnd})
}

// sample records one metrics sample of node with the given series.
func (h *stormHist) sample(t int64, node, role string, metrics map[string]float64) {
	v, _ := json.Marshal(MetricsSample{Role: role, Metrics: metrics})
	h.add(history.Event{Type: history.Info, Process: history.Observer, Time: t, F: MetricsF, Node: node, Value: v})
}

// sampleLate records a sample read at t, recorded late (at t + late).
func (h *stormHist) sampleLate(t, late int64, node, role string, metrics map[string]float64) {
	v, _ := json.Marshal(MetricsSample{Role: role, Metrics: metrics, At: t})
	h.add(history.Event{Type: history.Info, Process: history.Observer, Time: t + late, F: MetricsF, Node: node, Value: v})
}

// done returns the events in time order (ties in the order added), with
// their line numbers as a file with a header would have them.
func (h *stormHist) done() []history.Event {
	sort.SliceStable(h.evs, func(i, j int) bool { return h.evs[i].Time < h.evs[j].Time })
	for i := range h.evs {
		h.evs[i].Line = i + 2
	}
	return h.evs
}

func stormCheck(t *testing.T, p *RetryStormParams, evs []history.Event) Result {
	t.Helper()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	r := RetryStorm{Params: *p}.Check(context.Background(), Input{Events: evs})
	t.Logf("%s: %s\n%s", r.Verdict, r.Summary, r.Explanation)
	return r
}

func seriesOf(t *testing.T, r Result) *RetryStormSeries {
	t.Helper()
	s, ok := RetryStormSeriesOf(r.Details["series"])
	if !ok {
		t.Fatalf("no series in %v", r.Details)
	}
	return s
}

// okAfter: requests fail in [failFrom, okFrom) and succeed otherwise.
func okOutside(failFrom, okFrom int64) func(int64) bool {
	return func(t int64) bool { return t < failFrom || t >= okFrom }
}

// Recovery is timed exact to the window: goodput 100/s before the fault,
// nothing from 4 s until 10.3 s, full again from then on. The trigger ends
// at 8 s; window [10 s, 11 s) has 70% of the baseline, [11 s, 12 s) all of
// it: recovered at 12 s, 4 s after the trigger ended. Within a 5 s bound
// that is valid; within 3 s it is a metastable failure (recovered late).
func TestRetryStormRecoveryExactToTheWindow(t *testing.T) {
	build := func(okFrom, end int64) []history.Event {
		h := &stormHist{}
		h.phase("main", 0, end)
		h.load(0, end, 100, okOutside(4*sec, okFrom))
		h.fault("service-time", 4*sec, 8*sec)
		return h.done()
	}
	evs := build(10300*int64(time.Millisecond), 15*sec)
	p := NewRetryStormParams()
	r := stormCheck(t, p, evs)
	if r.Verdict != Valid || r.Details["time_to_recover_ns"] != 4*sec || r.Details["recovered_at_ns"] != 12*sec || r.Details["metastable"] != false || r.Details["baseline_goodput"] != 100.0 {
		t.Fatalf("recovered at 12 s: %s %v", r.Verdict, r.Details)
	}
	if !strings.Contains(r.Summary, "recovered 4s after service-time ended (bound 5s)") {
		t.Errorf("summary: %s", r.Summary)
	}
	s := seriesOf(t, r)
	if len(s.Goodput) != 15 || s.Goodput[3] != 100 || s.Goodput[4] != 0 || s.Goodput[10] != 70 || s.Goodput[11] != 100 || s.Offered[4] != 100 {
		t.Errorf("goodput %v offered %v", s.Goodput, s.Offered)
	}
	for i, a := range s.Amplification {
		if !math.IsNaN(a) {
			t.Errorf("window %d: amplification %v without samples", i, a)
		}
	}

	p.RecoverWithin = 3 * time.Second
	late := stormCheck(t, p, evs)
	if late.Verdict != Invalid || late.Details["metastable"] != true || late.Details["time_to_recover_ns"] != 4*sec || !strings.Contains(late.Summary, "recovered only 4s after service-time ended, beyond the bound of 3s") {
		t.Fatalf("recovered after the bound: %s %s %v", late.Verdict, late.Summary, late.Details)
	}

	// A fault's end is recorded a moment after its planned time: a window
	// that starts less than a tenth of a window before it counts.
	lateEnd := &stormHist{}
	lateEnd.phase("main", 0, 15*sec)
	lateEnd.load(0, 15*sec, 100, okOutside(4*sec, 8*sec))
	lateEnd.fault("service-time", 4*sec, 8*sec+3*int64(time.Millisecond))
	if r := stormCheck(t, NewRetryStormParams(), lateEnd.done()); r.Details["time_to_recover_ns"] != sec-3*int64(time.Millisecond) {
		t.Errorf("trigger ended 3 ms after 8 s, goodput back from 8 s: recovered after %v", r.Details["time_to_recover_ns"])
	}

	// The main phase also waits for the requests in flight: the windows
	// after the last request are not judged (no load, no goodput).
	drain := &stormHist{}
	drain.phase("main", 0, 16500*int64(time.Millisecond))
	drain.load(0, 15*sec, 100, okOutside(4*sec, 10300*int64(time.Millisecond)))
	drain.fault("service-time", 4*sec, 8*sec)
	if r := stormCheck(t, NewRetryStormParams(), drain.done()); r.Verdict != Valid || len(seriesOf(t, r).Goodput) != 15 {
		t.Errorf("load until 15 s of a main phase of 16.5 s: %s, %d windows", r.Verdict, len(seriesOf(t, r).Goodput))
	}

	// 10% below the baseline still counts (tolerance 0.1): 90/s is back.
	p = NewRetryStormParams()
	h := &stormHist{}
	h.phase("main", 0, 15*sec)
	h.load(0, 15*sec, 100, func(t int64) bool {
		if t >= 4*sec && t < 9*sec {
			return false
		}
		return t < 9*sec || (t/(10*int64(time.Millisecond)))%10 != 0 // 90% after 9 s
	})
	h.fault("service-time", 4*sec, 8*sec)
	r = stormCheck(t, p, h.done())
	if r.Verdict != Valid || r.Details["time_to_recover_ns"] != 2*sec {
		t.Errorf("90%% of the baseline: %s %v", r.Verdict, r.Details)
	}
	p.Tolerance = 0.05
	if r := stormCheck(t, p, h.evs); r.Verdict != Invalid {
		t.Errorf("90%% of the baseline with tolerance 5%%: %s", r.Verdict)
	}
}

// Goodput that never comes back is a metastable failure once the bound
// has passed while the load still ran; the evidence names a request that
// failed after the bound, the trigger's end, and the callers' sample then.
// A load that ends before the bound cannot tell.
func TestRetryStormMetastable(t *testing.T) {
	h := &stormHist{}
	h.phase("main", 0, 15*sec)
	h.load(0, 15*sec, 100, okOutside(4*sec, 100*sec))
	h.fault("service-time", 4*sec, 8*sec)
	for t := int64(0); t <= 16*sec; t += sec / 2 {
		req := float64(t / (sec / 100))
		att := req
		if t > 4*sec {
			att = req + 3*float64((t-4*sec)/(sec/100))
		}
		h.sample(t, "frontend1", "frontend", map[string]float64{"retrysvc_requests_total": req, "retrysvc_attempts_total": att})
	}
	evs := h.done()
	r := stormCheck(t, NewRetryStormParams(), evs)
	if r.Verdict != Invalid || r.Details["metastable"] != true || r.Details["recovered"] != false || r.Details["amplification_during_trigger"] != 4.0 {
		t.Fatalf("no recovery: %s %v", r.Verdict, r.Details)
	}
	a := r.Anomalies[0]
	if a.Kind != "metastable" || a.Time != 13*sec || len(a.Refs) != 3 {
		t.Fatalf("anomaly %+v", a)
	}
	for i, want := range []func(e history.Event) bool{
		func(e history.Event) bool { return e.Process.IsClient() && e.Type == history.Fail && e.Time >= 13*sec },
		func(e history.Event) bool {
			return e.Process == history.Nemesis && e.Phase == history.PhaseEnd && e.Time == 8*sec
		},
		func(e history.Event) bool { return e.F == MetricsF && e.Time == 13*sec },
	} {
		var line int
		fmt.Sscanf(a.Refs[i], "history.jsonl:%d", &line)
		if e := evs[line-2]; !want(e) {
			t.Errorf("ref %d %s is %+v", i, a.Refs[i], e)
		}
	}
	if !strings.Contains(a.Message, "goodput 0/s from 13s to 14s, 6s after service-time ended (at 8s): 0% of its 100/s") || !strings.Contains(a.Message, "4.00 attempts per request") {
		t.Errorf("message: %s", a.Message)
	}
	if !strings.Contains(r.Explanation, "metastable failure") {
		t.Errorf("explanation: %s", r.Explanation)
	}

	short := &stormHist{}
	short.phase("main", 0, 10*sec)
	short.load(0, 10*sec, 100, okOutside(4*sec, 100*sec))
	short.fault("service-time", 4*sec, 8*sec)
	if r := stormCheck(t, NewRetryStormParams(), short.done()); r.Verdict != Unknown || !strings.Contains(r.Summary, "before the bound of 5s passed") {
		t.Errorf("load ended 2 s after the trigger: %s %s", r.Verdict, r.Summary)
	}
}

// The callers' counters become amplification per window: read at the
// window's bounds, across a counter reset, with windows left without a
// value where samples are missing or no request arrived.
func TestRetryStormAmplificationWindows(t *testing.T) {
	h := &stormHist{}
	h.phase("main", 0, 16*sec)
	h.load(0, 16*sec, 100, func(int64) bool { return true })
	h.fault("service-time", 4*sec, 8*sec)
	var req, att, reqOff, attOff float64
	for t := int64(0); t <= 17*sec; t += sec / 2 {
		if t > 0 {
			// 50 requests each half second, none from 13 s to 14 s; 4
			// attempts each from 4 s to 8 s, 1 otherwise.
			n := 50.0
			if t > 13*sec && t <= 14*sec {
				n = 0
			}
			k := 1.0
			if t > 4*sec && t <= 8*sec {
				k = 4
			}
			req += n
			att += k * n
		}
		if t == 6500*int64(time.Millisecond) {
			// The node restarted just after the 6 s sample: its counters
			// start from 0 again, without what they held then.
			reqOff, attOff = req-50, att-200
		}
		if t > 10*sec && t < 12500*int64(time.Millisecond) {
			continue // samples lost
		}
		// Recorded up to 99 ms after they were read: the values are
		// placed at their reading (At).
		h.sampleLate(t, (t/(sec/2))*37%99*int64(time.Millisecond), "frontend1", "frontend", map[string]float64{"retrysvc_requests_total": req - reqOff, "retrysvc_attempts_total": att - attOff, "other_total": 5})
	}
	r := stormCheck(t, NewRetryStormParams(), h.done())
	s := seriesOf(t, r)
	want := []float64{1, 1, 1, 1, 4, 4, 4, 4, 1, 1, math.NaN(), math.NaN(), math.NaN(), math.NaN(), 1, 1}
	if len(s.Amplification) != len(want) {
		t.Fatalf("amplification %v", s.Amplification)
	}
	for i, w := range want {
		got := s.Amplification[i]
		if math.IsNaN(w) != math.IsNaN(got) || !math.IsNaN(w) && math.Abs(got-w) > 1e-9 {
			t.Errorf("window %d: amplification %v, want %v (all: %v)", i, got, w, s.Amplification)
		}
	}
	// Window 13 (no request) has no amplification but its attempts: 0/s.
	if s.Attempts[13] != 0 || s.Attempts[5] != 400 || !math.IsNaN(s.Attempts[11]) {
		t.Errorf("attempts/s %v", s.Attempts)
	}
	if r.Details["peak_amplification"] != 4.0 || r.Details["peak_amplification_at_ns"] != 4*sec || r.Details["samples"] != 31 {
		t.Errorf("details %v", r.Details)
	}

	// A limit of 3 makes the four windows of the spike anomalies, each
	// citing the samples at its bounds.
	p := NewRetryStormParams()
	p.MaxAmplification = 3
	lim := stormCheck(t, p, h.evs)
	if lim.Verdict != Invalid || len(lim.Anomalies) != 4 || !strings.Contains(lim.Summary, "amplification above 3 in 4 windows (peak 4.00)") {
		t.Fatalf("limit 3: %s %s %d anomalies", lim.Verdict, lim.Summary, len(lim.Anomalies))
	}
	a := lim.Anomalies[0]
	if a.Kind != "amplification" || a.Time != 4*sec || a.Node != "frontend1" || len(a.Refs) != 2 {
		t.Fatalf("anomaly %+v", a)
	}
	for i, at := range []int64{5 * sec, 4 * sec} {
		var line int
		fmt.Sscanf(a.Refs[i], "history.jsonl:%d", &line)
		var ms MetricsSample
		if e := h.evs[line-2]; e.F != MetricsF || json.Unmarshal(e.Value, &ms) != nil || ms.At != at {
			t.Errorf("ref %s: %+v, want the sample at %s", a.Refs[i], e, time.Duration(at))
		}
	}
	if !strings.Contains(a.Message, "from 4s to 5s the callers (frontend1) sent 4.00 attempts per client request (400 attempts/s for 100 requests/s offered), above the limit of 3") {
		t.Errorf("message: %s", a.Message)
	}
	p.MaxAmplification = 4
	if r := stormCheck(t, p, h.evs); r.Verdict != Valid {
		t.Errorf("limit 4: %s", r.Verdict)
	}
}

// A labelled series seen only later counts from 0; two nodes' counters
// are summed; the breaker gauge gives the open share of each window and a
// lane of changes per node.
func TestRetryStormSelectorsAndBreaker(t *testing.T) {
	h := &stormHist{}
	h.phase("main", 0, 6*sec)
	h.load(0, 6*sec, 100, func(int64) bool { return true })
	for i := int64(0); i <= 13; i++ {
		at := i * sec / 2
		for n, node := range []string{"frontend1", "frontend2"} {
			m := map[string]float64{
				`http_requests_total{code="200",handler="/work"}`:  float64(25 * i),
				`http_requests_total{code="200",handler="/other"}`: 1000,
				"calls_total": float64(25*i + 25*int64(n)*max(0, i-4)), // frontend2 retries once per request from 2 s on
				"breaker":     0,
			}
			if i >= 6 {
				// 503s appear at 3 s: the series starts then, counting from 0.
				m[`http_requests_total{code="503",handler="/work"}`] = float64(5 * (i - 5))
			}
			if i >= 4 && i < 8 && n == 1 {
				m["breaker"] = 1
			}
			if n == 0 {
				delete(m, "breaker") // frontend1 has no breaker gauge at all
			}
			h.sample(at, node, "frontend", m)
		}
	}
	p := NewRetryStormParams()
	p.Requests = `http_requests_total{handler="/work"}`
	p.Attempts = "calls_total"
	p.BreakerState = "breaker"
	p.MinRequests = 1
	r := stormCheck(t, p, h.done())
	s := seriesOf(t, r)
	// Requests per window: 2 nodes x 50 (code 200), plus the 503 series:
	// first seen at 3 s holding 5 (counted from 0: +5 per node in the
	// window that ends then), +10 per node per window after. Attempts: 100,
	// and 50 more from frontend2's retries from 2 s on.
	want := []float64{1, 1, 150.0 / 110, 150.0 / 120, 150.0 / 120, 150.0 / 120}
	for i, w := range want {
		if math.Abs(s.Amplification[i]-w) > 1e-9 {
			t.Errorf("window %d: amplification %v, want %v", i, s.Amplification[i], w)
		}
	}
	// Breaker samples: only frontend2's, open from 2 s to 4 s.
	if fmt.Sprint(s.BreakerOpen) != "[0 0 1 1 0 0]" {
		t.Errorf("breaker open share %v", s.BreakerOpen)
	}
	if got := fmt.Sprint(s.Breaker); got != "map[frontend2:[[0 0] [2000000000 1] [4000000000 0]]]" {
		t.Errorf("breaker lanes %s", got)
	}
	// While open (frontend2's samples from 2 s to 3.5 s): 150 attempts
	// for 75 + 10 requests.
	if r.Details["amplification_while_open"] != 1.765 || r.Details["open_ns"] != int64(1500*time.Millisecond) || !slices.Equal(r.Details["nodes"].([]string), []string{"frontend1", "frontend2"}) {
		t.Errorf("details %v", r.Details)
	}
	// No fault and no limit: figures only.
	if r.Verdict != NotApplicable || !r.Figures || !strings.Contains(r.Summary, "no fault in the main phase") {
		t.Errorf("no fault, no limit: %s %v %s", r.Verdict, r.Figures, r.Summary)
	}

	// The transitions counter gives how often the breaker opened.
	h2 := &stormHist{}
	h2.phase("main", 0, 3*sec)
	h2.load(0, 3*sec, 100, func(int64) bool { return true })
	for i := int64(0); i <= 6; i++ {
		h2.sample(i*sec/2, "frontend1", "frontend", map[string]float64{"retrysvc_requests_total": float64(50 * i), "retrysvc_attempts_total": float64(50 * i),
			`retrysvc_breaker_transitions_total{to="open"}`: float64(2 + i/3), `retrysvc_breaker_transitions_total{to="closed"}`: 7})
	}
	if r := stormCheck(t, NewRetryStormParams(), h2.done()); r.Details["breaker_opened"] != int64(2) || !strings.Contains(r.Summary, "the breaker opened 2 times") {
		t.Errorf("breaker opened: %v %s", r.Details["breaker_opened"], r.Summary)
	}
}

// What the checker cannot judge, it says so.
func TestRetryStormUndecided(t *testing.T) {
	empty := &stormHist{}
	empty.phase("main", 0, 5*sec)
	if r := stormCheck(t, NewRetryStormParams(), empty.done()); r.Verdict != NotApplicable {
		t.Errorf("no client operations: %s", r.Verdict)
	}
	early := &stormHist{}
	early.phase("main", 0, 15*sec)
	early.load(0, 15*sec, 100, okOutside(500*int64(time.Millisecond), 9*sec))
	early.fault("service-time", 500*int64(time.Millisecond), 8*sec)
	if r := stormCheck(t, NewRetryStormParams(), early.done()); r.Verdict != Unknown || !strings.Contains(r.Summary, "no full window of 1s before the first fault") {
		t.Errorf("fault at 0.5 s: %s %s", r.Verdict, r.Summary)
	}
	// Failing before the fault (half the requests): recovery from the
	// fault cannot be judged.
	failing := &stormHist{}
	failing.phase("main", 0, 15*sec)
	failing.load(0, 15*sec, 100, func(t int64) bool { return t/(10*int64(time.Millisecond))%2 == 0 && (t < 4*sec || t >= 9*sec) })
	failing.fault("service-time", 4*sec, 8*sec)
	if r := stormCheck(t, NewRetryStormParams(), failing.done()); r.Verdict != Unknown || !strings.Contains(r.Summary, "was 50/s of 100/s offered: the system was already failing before it") {
		t.Errorf("failing before the fault: %s %s", r.Verdict, r.Summary)
	}
	p := NewRetryStormParams()
	p.Trigger = "kill"
	if r := stormCheck(t, p, early.evs); r.Verdict != Unknown || !strings.Contains(r.Summary, "no fault named kill in the main phase (its faults: service-time)") {
		t.Errorf("trigger not in the history: %s %s", r.Verdict, r.Summary)
	}
	// A limit without samples of the callers: unknown, naming the roles seen.
	h := &stormHist{}
	h.phase("main", 0, 5*sec)
	h.load(0, 5*sec, 100, func(int64) bool { return true })
	for i := int64(0); i <= 10; i++ {
		h.sample(i*sec/2, "backend1", "backend", map[string]float64{"retrysvc_requests_total": float64(50 * i)})
	}
	p = NewRetryStormParams()
	p.MaxAmplification = 4
	if r := stormCheck(t, p, h.done()); r.Verdict != Unknown || !strings.Contains(r.Summary, "no metrics samples of role frontend (sampled: backend1 (backend))") {
		t.Errorf("no frontend samples: %s %s", r.Verdict, r.Summary)
	}
	p.Role = "backend"
	if r := stormCheck(t, p, h.evs); r.Verdict != Unknown || !strings.Contains(r.Summary, "hold no series retrysvc_attempts_total") {
		t.Errorf("no attempts counter: %s %s", r.Verdict, r.Summary)
	}
	for _, bad := range []func(*RetryStormParams){
		func(p *RetryStormParams) { p.Window = 0 },
		func(p *RetryStormParams) { p.MaxAmplification = 0.5 },
		func(p *RetryStormParams) { p.Tolerance = 1 },
		func(p *RetryStormParams) { p.Attempts = "bad name" },
		func(p *RetryStormParams) { p.Requests = `x{code=200}` },
	} {
		p := NewRetryStormParams()
		bad(p)
		if p.Check() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

// The series survive results.json: missing values are null and come back
// as NaN.
func TestRetryStormSeriesJSON(t *testing.T) {
	s := &RetryStormSeries{T0: 5, W: 1e9, Offered: Floats{1.23456, 2}, Goodput: Floats{math.NaN(), 3}, Breaker: map[string][][2]int64{"f1": {{5, 0}, {7, 1}}}}
	b, err := json.Marshal(map[string]any{"series": s})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"offered":[1.235,2],"goodput":[null,3]`) {
		t.Errorf("json %s", b)
	}
	var back map[string]any
	json.Unmarshal(b, &back)
	got, ok := RetryStormSeriesOf(back["series"])
	if !ok || got.T0 != 5 || !math.IsNaN(got.Goodput[0]) || got.Goodput[1] != 3 || got.Breaker["f1"][1] != [2]int64{7, 1} {
		t.Errorf("read back %+v", got)
	}
	for _, k := range []string{`a_total{b="x\"y",c="1\n"}`, "plain", `x:y{z="w"}`} {
		n, l, err := ParseSeriesKey(k)
		if err != nil || SeriesKey(n, l) != k {
			t.Errorf("%s: %s %v %v -> %s", k, n, l, err, SeriesKey(n, l))
		}
	}
}

// Metrics samples change no other checker's judgement: they are not
// client events.
func TestMetricsSamplesIgnoredByOtherCheckers(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	evs := genHistory(genConfig{Seed: 3, Ops: 400, Keys: 3, Workers: 6, InfoProb: 0.05, FailProb: 0.05, Faults: 2})
	corruptRead(evs, rng)
	var with []history.Event
	for i, e := range evs {
		if i%7 == 0 {
			v, _ := json.Marshal(MetricsSample{Role: "frontend", Metrics: map[string]float64{"retrysvc_requests_total": float64(i)}})
			with = append(with, history.Event{Type: history.Info, Process: history.Observer, Time: e.Time, F: MetricsF, Node: "n1", Value: v})
		}
		with = append(with, e)
	}
	refs := regexp.MustCompile(`history\.jsonl:\d+`)
	norm := func(r Result) string {
		var kinds []string
		for _, a := range r.Anomalies {
			kinds = append(kinds, a.Kind+" "+a.Key+" "+a.Node)
		}
		return fmt.Sprintf("%s|%s|%d|%v", r.Verdict, refs.ReplaceAllString(r.Summary, "REF"), r.AnomalyCount, kinds)
	}
	for _, name := range Names() {
		if name == "retry-storm" {
			continue
		}
		e, _ := Lookup(name)
		var params any
		if e.NewParams != nil {
			params = e.NewParams()
		}
		c, err := e.New(params)
		if err != nil {
			t.Fatal(err)
		}
		a := norm(Run(context.Background(), Input{Events: evs}, c)[0])
		b := norm(Run(context.Background(), Input{Events: with}, c)[0])
		t.Logf("%s: %s", name, a)
		if a != b {
			t.Errorf("%s: without samples %s\nwith samples %s", name, a, b)
		}
	}
}
