package history

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

func nem(t int64, f, phase, val string) Event {
	e := Event{Type: Info, Process: Nemesis, Time: t, F: f, Phase: phase}
	if val != "" {
		e.Value = json.RawMessage(val)
	}
	return e
}

// span is a window reduced to what the tests compare.
type span struct {
	F                    string
	Start, End           int64
	StartEvent, EndEvent int
	Instant, Unstarted   bool
}

func spans(ws []FaultWindow) []span {
	var out []span
	for _, w := range ws {
		out = append(out, span{w.F, w.Start, w.End, w.StartEvent, w.EndEvent, w.Instant, w.Unstarted})
	}
	return out
}

func TestFaultWindows(t *testing.T) {
	evs := []Event{
		nem(10, "partition", "start", `{"a":1}`),
		nem(20, "partition", "start", `{"b":2}`),
		nem(30, "partition", "end", `{ "a" : 1.0 }`), // closes the first by (canonical) value
		nem(35, "kill", "", `["n1"]`),
		{Type: Invoke, Process: Nemesis, Time: 36, F: "kill", Value: json.RawMessage(`["n1"]`)}, // Jepsen-style invoke: not a fault
		{Type: Invoke, Process: 0, Time: 37, F: "get", Key: "k"},                                // not the nemesis
		nem(40, "partition", "end", ""),                                                         // closes the remaining one
		nem(45, "pause", "end", ""),                                                             // end without start
		nem(50, "clock", "start", ""),                                                           // never ends
		nem(60, "partition", "start", `{"id":7,"groups":[["n1"]]}`),
		nem(61, "partition", "start", `{"id":8,"groups":[["n2"]]}`),
		nem(70, "partition", "end", `{"id":7}`), // pairs by id, not by recency
		nem(71, "partition", "end", `{"id":8.0}`),
	}
	got := spans(FaultWindows(evs))
	want := []span{
		{"partition", 10, 30, 0, 2, false, false},
		{"partition", 20, 40, 1, 6, false, false},
		{"kill", 35, 35, 3, 3, true, false},
		{"pause", 45, 45, 7, 7, true, true},
		{"clock", 50, NoEnd, 8, -1, false, false},
		{"partition", 60, 70, 9, 11, false, false},
		{"partition", 61, 71, 10, 12, false, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	ws := FaultWindows(evs)
	if !ws[4].Open() || ws[4].EndOr(99) != 99 || ws[0].EndOr(99) != 30 || !ws[4].Covers(1<<40) || ws[0].Covers(31) {
		t.Errorf("Open/EndOr/Covers: %+v", ws)
	}
	if ws[5].ID != "7" || ws[0].ID != "" || string(ws[2].Value) != `["n1"]` {
		t.Errorf("ID/Value: %+v", ws)
	}
}

// Overlapping faults of one family: faultline's events carry the fault's
// id, and each end closes its own start, whatever the order. Without ids
// (histories from other tools), an end closes the oldest open fault of the
// family with an equal value, else the oldest of the family. The checkers'
// former pairing (oldest first) and the report's (latest first) disagreed
// on exactly these histories: report.html and linearizability.html drew
// different windows.
func TestFaultWindowsOverlappingSameFamily(t *testing.T) {
	cases := []struct {
		name string
		evs  []Event
		want []span
	}{{
		name: "ids, ended in start order", // the report's latest-first pairing swapped these
		evs: []Event{
			nem(1, "partition", "start", `{"fault":"partition-one","id":1,"targets":["n1"]}`),
			nem(2, "partition", "start", `{"fault":"partition-one","id":2,"targets":["n2"]}`),
			nem(3, "partition", "end", `{"fault":"partition-one","id":1}`),
			nem(4, "partition", "end", `{"fault":"partition-one","id":2}`),
		},
		want: []span{{"partition", 1, 3, 0, 2, false, false}, {"partition", 2, 4, 1, 3, false, false}},
	}, {
		name: "ids, ended in reverse order", // the checkers' oldest-first pairing swapped these before ids
		evs: []Event{
			nem(1, "partition", "start", `{"fault":"partition-one","id":1,"targets":["n1"]}`),
			nem(2, "partition", "start", `{"fault":"partition-one","id":2,"targets":["n2"]}`),
			nem(3, "partition", "end", `{"fault":"partition-one","id":2}`),
			nem(4, "partition", "end", `{"fault":"partition-one","id":1}`),
		},
		want: []span{{"partition", 1, 4, 0, 3, false, false}, {"partition", 2, 3, 1, 2, false, false}},
	}, {
		name: "an id never closes another id's window",
		evs: []Event{
			nem(1, "partition", "start", `{"id":1}`),
			nem(2, "partition", "end", `{"id":9}`),
			nem(3, "partition", "end", `{"id":1}`),
		},
		want: []span{{"partition", 1, 3, 0, 2, false, false}, {"partition", 2, 2, 1, 1, true, true}},
	}, {
		name: "no ids, no value on the ends: oldest first", // the report closed the latest
		evs: []Event{
			nem(1, "latency", "start", `{"ms":100}`),
			nem(2, "latency", "start", `{"ms":200}`),
			nem(3, "latency", "end", ""),
			nem(4, "latency", "end", ""),
		},
		want: []span{{"latency", 1, 3, 0, 2, false, false}, {"latency", 2, 4, 1, 3, false, false}},
	}, {
		name: "no ids: an equal value before age",
		evs: []Event{
			nem(1, "latency", "start", `{"ms":100}`),
			nem(2, "latency", "start", `{"ms":200}`),
			nem(3, "latency", "end", `{"ms":200.0}`),
			nem(4, "latency", "end", `{"ms":100}`),
		},
		want: []span{{"latency", 1, 4, 0, 3, false, false}, {"latency", 2, 3, 1, 2, false, false}},
	}, {
		name: "other families do not interfere",
		evs: []Event{
			nem(1, "partition", "start", `{"id":1}`),
			nem(2, "latency", "start", `{"id":1}`),
			nem(3, "latency", "end", `{"id":1}`),
			nem(4, "partition", "end", `{"id":1}`),
		},
		want: []span{{"partition", 1, 4, 0, 3, false, false}, {"latency", 2, 3, 1, 2, false, false}},
	}}
	for _, c := range cases {
		if got := spans(FaultWindows(c.evs)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got  %v\n want %v", c.name, got, c.want)
		}
	}
}

func TestFaultWindowsErrors(t *testing.T) {
	s := nem(1, "kill", "start", `{"id":1}`)
	e := nem(2, "kill", "end", `{"id":1}`)
	e.Error = "restart failed"
	if ws := FaultWindows([]Event{s, e}); len(ws) != 1 || ws[0].Error != "restart failed" {
		t.Fatalf("end's error lost: %+v", ws)
	}
	s.Error = "could not kill"
	if ws := FaultWindows([]Event{s, e}); ws[0].Error != "could not kill" {
		t.Fatalf("start's error should win: %+v", ws)
	}
}

func TestPhases(t *testing.T) {
	var evs []Event
	at := func(tm int64, ev Event) { ev.Time = tm; evs = append(evs, ev) }
	at(0, PhaseMarker("setup", PhaseStart))
	at(5, PhaseMarker("setup", PhaseEnd))
	at(5, PhaseMarker("main", PhaseStart))
	at(6, Event{Type: Invoke, Process: 0, F: "phase", Value: json.RawMessage(`"main"`), Phase: "end"}) // a client: not a marker
	at(7, Event{Type: Info, Process: Observer, F: "phase", Value: json.RawMessage(`{"x":1}`), Phase: "end"})
	at(8, Event{Type: Info, Process: Observer, F: "phase", Value: json.RawMessage(`"heal"`), Phase: "end"}) // no start
	at(10, PhaseMarker("main", PhaseEnd))
	at(11, PhaseMarker("final-reads", PhaseStart))
	ps := Phases(evs)
	want := []Phase{{"setup", 0, 5}, {"main", 5, 10}, {"final-reads", 11, NoEnd}}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("got %v, want %v", ps, want)
	}
	if p, ok := FindPhase(ps, "main"); !ok || p.Start != 5 || p.End != 10 || p.Open() || !p.Covers(10) || p.Covers(11) {
		t.Errorf("FindPhase(main) = %+v, %v", p, ok)
	}
	if p, ok := FindPhase(ps, "final-reads"); !ok || !p.Open() {
		t.Errorf("FindPhase(final-reads) = %+v, %v", p, ok)
	}
	if _, ok := FindPhase(ps, "warmup"); ok {
		t.Error("found a phase that never ran")
	}
	m := PhaseMarker("main", PhaseStart)
	b := m.AppendJSON(nil)
	if string(b) != `{"type":"info","process":"observer","time":0,"f":"phase","value":"main","phase":"start"}` {
		t.Errorf("marker encodes as %s", b)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if n, e, ok := ParsePhaseMarker(&ev); n != "main" || e != PhaseStart || !ok {
		t.Errorf("ParsePhaseMarker = %q %q %v", n, e, ok)
	}
}

func status(t int64, node, val, errText string) Event {
	return Event{Type: Info, Process: Observer, Time: t, F: "status", Node: node, Value: json.RawMessage(val), Error: errText}
}

func TestRoles(t *testing.T) {
	evs := []Event{
		status(0, "n1", `{"role":"follower","term":1}`, ""),
		status(0, "n2", `{"role":"follower","term":1}`, ""),
		status(10, "n1", `{"role":"leader","term":1,"leader":"n1","commit_index":3}`, ""),
		status(10, "n2", `{"role":"follower","term":1,"leader":"n1"}`, ""),
		status(20, "n1", `{"role":"leader","term":1,"leader":"n1","commit_index":9}`, ""), // same status
		status(20, "n2", `{"role":"unreachable"}`, "connection refused"),
		{Type: Info, Process: Observer, Time: 25, F: "phase", Value: json.RawMessage(`"main"`), Phase: "start"},
		status(30, "n2", `{"role":"primary","epoch":"e2"}`, ""), // a second leader, in another epoch
		status(40, "n1", `{"role":"follower","term":2,"leader":"n2"}`, ""),
		status(50, "n3", `not json`, ""),
	}
	r := RolesOf(evs)
	if got := r.Nodes(); !reflect.DeepEqual(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("nodes %v", got)
	}
	type seg struct {
		Role, Term, Leader string
		Start, End         int64
		Event              int
	}
	segsOf := func(n string) []seg {
		var out []seg
		for _, s := range r.Segments(n) {
			out = append(out, seg{s.Role, s.Term, s.Leader, s.Start, s.End, s.Event})
		}
		return out
	}
	if got, want := segsOf("n1"), []seg{{"follower", "1", "", 0, 10, 0}, {"leader", "1", "n1", 10, 40, 2}, {"follower", "2", "n2", 40, 50, 8}}; !reflect.DeepEqual(got, want) {
		t.Errorf("n1:\n got  %v\n want %v", got, want)
	}
	if got, want := segsOf("n2"), []seg{{"follower", "1", "", 0, 10, 1}, {"follower", "1", "n1", 10, 20, 3}, {"unreachable", "", "", 20, 30, 5}, {"primary", "e2", "", 30, 50, 7}}; !reflect.DeepEqual(got, want) {
		t.Errorf("n2:\n got  %v\n want %v", got, want)
	}
	if s := r.Segments("n2")[2]; s.Err != "connection refused" {
		t.Errorf("error lost: %+v", s)
	}
	if got := segsOf("n3"); len(got) != 1 || got[0].Role != "unknown" {
		t.Errorf("n3: %v", got)
	}
	for _, c := range []struct {
		t    int64
		lead []string
	}{{-1, nil}, {5, nil}, {10, []string{"n1"}}, {25, []string{"n1"}}, {35, []string{"n1", "n2"}}, {45, []string{"n2"}}, {51, nil}} {
		if got := r.LeadersAt(c.t); !reflect.DeepEqual(got, c.lead) {
			t.Errorf("LeadersAt(%d) = %v, want %v", c.t, got, c.lead)
		}
	}
	if !r.IsLeaderAt("n1", 15) || r.IsLeaderAt("n2", 15) || r.IsLeaderAt("n9", 15) {
		t.Error("IsLeaderAt")
	}
	if s, ok := r.At("n2", 22); !ok || s.Role != "unreachable" {
		t.Errorf("At(n2, 22) = %+v, %v", s, ok)
	}
}

func TestRolesLimits(t *testing.T) {
	r := &Roles{Limit: 10, MaxNodes: 2}
	for i := 0; i < 1000; i++ {
		role := "follower"
		if i%2 == 0 {
			role = "leader"
		}
		for _, n := range []string{"n1", "n2", "n3"} {
			r.Observe(i, int64(i)*1e6, n, Status{Role: role, Term: fmt.Sprint(i / 100)})
		}
	}
	if got := r.Nodes(); len(got) != 2 {
		t.Fatalf("MaxNodes 2: nodes %v", got)
	}
	segs := r.Segments("n1")
	if len(segs) > 10 || len(segs) == 0 {
		t.Fatalf("Limit 10: %d segments", len(segs))
	}
	flap := false
	for i, s := range segs {
		flap = flap || s.Flapping
		if i > 0 && s.Start < segs[i-1].Start {
			t.Fatalf("segments out of order: %+v", segs)
		}
	}
	if !flap || segs[len(segs)-1].End != 999e6 || segs[len(segs)-1].Role != "follower" {
		t.Errorf("merged segments should flap and keep the last status to the end: %+v", segs[len(segs)-1])
	}
}

func TestParseStatus(t *testing.T) {
	for _, c := range []struct {
		val, err string
		want     Status
	}{
		{`{"role":"leader","term":7,"leader":"n2"}`, "", Status{Role: "leader", Term: "7", Leader: "n2"}},
		{`{"role":"candidate","term":"8"}`, "", Status{Role: "candidate", Term: "8"}},
		{`{"role":"primary","epoch":3,"term":null}`, "", Status{Role: "primary", Term: "3"}},
		{`{"role":"unreachable"}`, "refused", Status{Role: "unreachable", Err: "refused"}},
		{``, "timeout", Status{Role: "unreachable", Err: "timeout"}},
		{`[1]`, "", Status{Role: "unknown"}},
	} {
		if got := ParseStatus(json.RawMessage(c.val), c.err); got != c.want {
			t.Errorf("ParseStatus(%s, %q) = %+v, want %+v", c.val, c.err, got, c.want)
		}
	}
	if !IsLeaderRole("Leader") || !IsLeaderRole("primary") || IsLeaderRole("follower") {
		t.Error("IsLeaderRole")
	}
}

func TestPercentilesOfSamples(t *testing.T) {
	var lat []int64
	for i := 1; i <= 1000; i++ {
		lat = append(lat, int64(1001-i)*1000) // 1..1000 µs, reversed
	}
	p := PercentilesOfSamples(lat)
	want := Percentiles{P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Mean: 500.5, Count: 1000}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
	if p := PercentilesOfSamples(nil); p != (Percentiles{}) {
		t.Errorf("empty: %+v", p)
	}
	// Fractions of a microsecond are kept.
	if p := PercentilesOfSamples([]int64{400, 1000, 500}); p.P50 != 0.5 || p.Max != 1 || p.Count != 3 {
		t.Errorf("sub-µs: %+v", p)
	}
}

// The histogram and the exact samples give the same figures where the
// histogram is exact (below 2048 µs at 3 significant figures), including
// where the histogram's own rank rule (round) differs from nearest rank.
func TestPercentilesOfHistogramMatchesSamples(t *testing.T) {
	for _, n := range []int{1, 2, 7, 8, 10, 999, 1000, 1001} {
		h := NewLatencyHistogram()
		var ns []int64
		for i := 1; i <= n; i++ {
			v := int64((i*37)%2000 + 1)
			RecordLatency(h, time.Duration(v)*time.Microsecond)
			ns = append(ns, v*1000)
		}
		a, b := PercentilesOf(h), PercentilesOfSamples(ns)
		if math.Abs(a.Mean-b.Mean) > 1e-9*b.Mean {
			t.Errorf("n=%d: mean %v vs %v", n, a.Mean, b.Mean)
		}
		a.Mean = b.Mean
		if a != b {
			t.Errorf("n=%d: histogram %+v, samples %+v", n, a, b)
		}
	}
	if p := PercentilesOf(nil); p != (Percentiles{}) {
		t.Errorf("nil: %+v", p)
	}
	h := NewLatencyHistogram()
	RecordLatency(h, -time.Second)
	RecordLatency(h, 2*time.Hour)
	if p := PercentilesOf(h); p.P50 != 0 || p.Max < float64(LatencyHighestUS) || p.Count != 2 {
		t.Errorf("clamping: %+v", p)
	}
}

func TestPercentilesMap(t *testing.T) {
	p := Percentiles{P50: 1, P90: 2, P99: 3, P999: 4, Max: 5, Mean: 2.5, Count: 9}
	m := p.Map()
	for _, k := range PercentileKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("Map lacks %s", k)
		}
	}
	if PercentilesFromMap(m) != p || PercentilesFromMap(nil) != (Percentiles{}) {
		t.Errorf("round trip: %+v", PercentilesFromMap(m))
	}
	b, _ := json.Marshal(Percentiles{P50: 1})
	if string(b) != `{"p50":1,"p90":0,"p99":0,"p999":0,"max":0,"mean":0}` {
		t.Errorf("JSON %s", b)
	}
}
