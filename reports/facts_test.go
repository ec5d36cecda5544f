package reports

import (
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
	// As history.jsonl has it, a line an event.
	lines := `{"type":"header","faultline":"test","scenario":"facts","seed":1,"start":"2026-01-01T00:00:00Z"}
{"type":"info","process":"observer","time":0,"f":"phase","value":"setup","phase":"start"}
{"type":"info","process":"observer","time":1,"f":"status","node":"n1","value":{"role":"leader","term":1}}
{"type":"info","process":"observer","time":1,"f":"status","node":"n2","value":{"role":"follower","term":1}}
{"type":"info","process":"observer","time":2,"f":"phase","value":"setup","phase":"end"}
{"type":"info","process":"observer","time":2,"f":"phase","value":"main","phase":"start"}
{"type":"invoke","process":0,"time":3,"f":"put","key":"k","value":1}
{"type":"info","process":"nemesis","time":10,"f":"partition","value":{"fault":"partition-one","id":1,"targets":["n1"]},"phase":"start"}
{"type":"info","process":"nemesis","time":11,"f":"partition","value":{"fault":"partition-one","id":2,"targets":["n2"]},"phase":"start"}
{"type":"info","process":"nemesis","time":12,"f":"partition","value":{"fault":"partition-one","id":1},"phase":"end"}
{"type":"ok","process":0,"time":13,"f":"put","key":"k","value":1}
{"type":"info","process":"nemesis","time":14,"f":"partition","value":{"fault":"partition-one","id":2},"phase":"end"}
{"type":"info","process":"nemesis","time":20,"f":"latency","value":{"ms":100},"phase":"start"}
{"type":"info","process":"nemesis","time":21,"f":"latency","value":{"ms":200},"phase":"start"}
{"type":"info","process":"observer","time":22,"f":"status","node":"n1","value":{"role":"unreachable"},"error":"connection refused"}
{"type":"info","process":"observer","time":22,"f":"status","node":"n2","value":{"role":"leader","term":2}}
{"type":"info","process":"nemesis","time":23,"f":"latency","phase":"end"}
{"type":"invoke","process":"nemesis","time":24,"f":"kill","value":["n1"]}
{"type":"info","process":"nemesis","time":25,"f":"kill","value":["n1"]}
{"type":"info","process":"nemesis","time":26,"f":"pause","phase":"end"}
{"type":"info","process":"observer","time":30,"f":"phase","value":"main","phase":"end"}
{"type":"info","process":"observer","time":30,"f":"phase","value":"final-reads","phase":"start"}
{"type":"info","process":"observer","time":31,"f":"status","node":"n1","value":{"role":"follower","term":2}}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
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
