package reports

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
)

// The split-brain checker's windows, read back from results.json (numbers
// as float64), are shaded on the lanes of both nodes they name, over the
// window, and on no other lane.
func TestSplitBrainShading(t *testing.T) {
	res := []checkers.Result{
		{Name: "linearizability", Anomalies: []checkers.Anomaly{{Kind: "stale-read", Time: 4e9, Data: map[string]any{"from": 1, "to": 2}}}},
		{Name: "split-brain", Anomalies: []checkers.Anomaly{
			{Kind: "deposed-leader", Node: "n1", Time: 4e9, Message: "node n1, leader in term 5, acknowledged ...",
				Data: map[string]any{"nodes": []string{"n1", "n2"}, "from": int64(3e9), "to": int64(5e9)}},
			{Kind: "lost-on-deposed-side", Node: "n1", Time: 4e9, Message: "no window", Data: map[string]any{"term": 5}},
		}},
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back []checkers.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for name, rs := range map[string][]checkers.Result{"in memory": res, "from results.json": back} {
		sw := splitWindows(rs)
		if len(sw) != 1 || sw[0].From != 3e9 || sw[0].To != 5e9 || strings.Join(sw[0].Nodes, ",") != "n1,n2" || !strings.Contains(sw[0].Title, "node n1, leader in term 5") {
			t.Fatalf("%s: windows %+v", name, sw)
		}
	}
	lane := func(id string) nodeLane {
		return nodeLane{id: id, segs: []history.RoleSegment{{Status: history.Status{Role: "follower", Term: "5"}, Start: 0, End: 10e9}}}
	}
	in := &chartInput{t1: 10, nodes: []nodeLane{lane("n1"), lane("n2"), lane("n3")}, splits: splitWindows(res)}
	c := in.nodesChart()
	s := in.scale()
	var lanes []float64
	for _, r := range c.Rects {
		if strings.Contains(r.Class, "split-brain") {
			lanes = append(lanes, r.Y)
			if r.X != s.x(3) || r.X+r.W != s.x(5) {
				t.Errorf("shade from %.1f to %.1f, want %.1f to %.1f", r.X, r.X+r.W, s.x(3), s.x(5))
			}
		}
	}
	if y := c.Plot.Y + 2; len(lanes) != 2 || lanes[0] != y || lanes[1] != y+laneH {
		t.Errorf("split-brain shades at %v, want on the lanes of n1 and n2 (%.0f, %.0f)", lanes, c.Plot.Y+2, c.Plot.Y+2+laneH)
	}
	legend := false
	for _, l := range c.Legend {
		legend = legend || strings.Contains(l.Class, "split-brain")
	}
	if !legend {
		t.Errorf("legend %+v has no split-brain entry", c.Legend)
	}
}

// The consistency ladder is a table in report.html, a section in the
// terminal summary, and links each model to its checker's card.
func TestLadderShown(t *testing.T) {
	res := []checkers.Result{{Name: "linearizability", Verdict: checkers.Invalid, AnomalyCount: 1}, {Name: "convergence", Verdict: checkers.Valid}, {Name: "lost-writes", Verdict: checkers.Invalid}}
	l := checkers.BuildLadder(res, "convergent")
	checkers.Advise(res, l, nil)
	r := &Results{Scenario: "x", Verdict: "valid", Checkers: res, Consistency: l}
	var b strings.Builder
	Summary(&b, r)
	for _, want := range []string{"consistency: strongest model that held: convergent  (expect: convergent)", "linearizable         invalid reported only; 1 anomalies, linearizability", "convergent           valid", "(reported only: beyond the expected model)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	dir := t.TempDir()
	if err := Save(dir, r, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	for _, want := range []string{`<section id="consistency">`, `<tr data-model="convergent">`, `href="#checker-convergence"`, `id="checker-convergence"`, "reported only"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}
