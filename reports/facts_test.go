package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/faultline/faultline/history"
)

// The report reads a history in one streaming pass, the checkers decode it
// whole; both must see the same fault windows, phases and roles, so
// report.html and linearizability.html cannot disagree. The history here
// has overlapping faults of one family on which the report's former
// pairing (latest first) and the checkers' (oldest first) differed.
func TestReportDrawsHistoryFacts(t *testing.T) {
	v := func(s string) json.RawMessage { return json.RawMessage(s) }
	nem := func(tm int64, f, phase, val string) history.Event {
		e := history.Event{Type: history.Info, Process: history.Nemesis, Time: tm, F: f, Phase: phase}
		if val != "" {
			e.Value = v(val)
		}
		return e
	}
	mark := func(tm int64, name, edge string) history.Event {
		e := history.PhaseMarker(name, edge)
		e.Time = tm
		return e
	}
	st := func(tm int64, node, val, errText string) history.Event {
		return history.Event{Type: history.Info, Process: history.Observer, Time: tm, F: "status", Node: node, Value: v(val), Error: errText}
	}
	evs := []history.Event{
		mark(0, "setup", "start"),
		st(1, "n1", `{"role":"leader","term":1}`, ""),
		st(1, "n2", `{"role":"follower","term":1}`, ""),
		mark(2, "setup", "end"),
		mark(2, "main", "start"),
		{Type: history.Invoke, Process: 0, Time: 3, F: "put", Key: "k", Value: v("1")},
		nem(10, "partition", "start", `{"fault":"partition-one","id":1,"targets":["n1"]}`),
		nem(11, "partition", "start", `{"fault":"partition-one","id":2,"targets":["n2"]}`),
		nem(12, "partition", "end", `{"fault":"partition-one","id":1}`),
		{Type: history.OK, Process: 0, Time: 13, F: "put", Key: "k", Value: v("1")},
		nem(14, "partition", "end", `{"fault":"partition-one","id":2}`),
		nem(20, "latency", "start", `{"ms":100}`),
		nem(21, "latency", "start", `{"ms":200}`),
		st(22, "n1", `{"role":"unreachable"}`, "connection refused"),
		st(22, "n2", `{"role":"leader","term":2}`, ""),
		nem(23, "latency", "end", ""),
		{Type: history.Invoke, Process: history.Nemesis, Time: 24, F: "kill", Value: v(`["n1"]`)},
		{Type: history.Info, Process: history.Nemesis, Time: 25, F: "kill", Value: v(`["n1"]`)},
		nem(26, "pause", "end", ""), // an end without a start
		mark(30, "main", "end"),
		mark(30, "final-reads", "start"),
		st(31, "n1", `{"role":"follower","term":2}`, ""),
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := history.WriteAll(f, &history.HeaderLine{Faultline: "test"}, evs); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sc, err := scanHistory(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	_, all, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	const end = 40

	type span struct {
		name         string
		start, end   int64
		open, instnt bool
	}
	var drawn, judged []span
	for _, w := range faultWindows(sc.nemesis, end) {
		drawn = append(drawn, span{w.Name, w.Start, w.End, w.Open, w.Instant})
	}
	for _, w := range history.FaultWindows(all) {
		judged = append(judged, span{w.F, w.Start, w.EndOr(end), w.Open(), w.Instant})
	}
	want := []span{{"partition", 10, 12, false, false}, {"partition", 11, 14, false, false}, {"latency", 20, 23, false, false}, {"latency", 21, end, true, false}, {"kill", 25, 25, false, true}, {"pause", 26, 26, false, true}}
	if !reflect.DeepEqual(drawn, want) || !reflect.DeepEqual(judged, want) {
		t.Errorf("fault windows:\n report   %v\n checkers %v\n want     %v", drawn, judged, want)
	}
	if ws := faultWindows(sc.nemesis, end); ws[0].Value != `{"fault":"partition-one","id":1,"targets":["n1"]}` || ws[5].Err != "end without a recorded start" {
		t.Errorf("drawn windows %+v", ws)
	}

	wantPhases := []Phase{{Name: "setup", Start: 0, End: 2}, {Name: "main", Start: 2, End: 30}, {Name: "final-reads", Start: 30, End: end}}
	if got := sc.phases(end); !reflect.DeepEqual(got, wantPhases) {
		t.Errorf("phases %v, want %v", got, wantPhases)
	}

	roles := history.RolesOf(all)
	lanes := nodeLanes(&sc.roles, []string{"n2", "n1"})
	if len(lanes) != 2 || lanes[0].id != "n2" || lanes[1].id != "n1" {
		t.Fatalf("lanes %+v", lanes)
	}
	for _, l := range lanes {
		want := roles.Segments(l.id)
		if len(l.segs) != len(want) {
			t.Fatalf("%s: %d segments drawn, %d in history.Roles", l.id, len(l.segs), len(want))
		}
		for i := range want {
			if l.segs[i].Status != want[i].Status || l.segs[i].Start != want[i].Start || l.segs[i].End != want[i].End {
				t.Errorf("%s segment %d: drawn %+v, history %+v", l.id, i, l.segs[i], want[i])
			}
		}
	}
	if got := roles.LeadersAt(22); !reflect.DeepEqual(got, []string{"n2"}) {
		t.Errorf("leaders at 22: %v", got)
	}
}
