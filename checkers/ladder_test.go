package checkers

import (
	"encoding/json"
	"strings"
	"testing"
)

func rungOf(t *testing.T, l *Ladder, model string) Rung {
	t.Helper()
	for _, r := range l.Rungs {
		if r.Model == model {
			return r
		}
	}
	t.Fatalf("no rung %s in %+v", model, l.Rungs)
	return Rung{}
}

// A linearizable run: every model linearizability implies is valid and
// implied, convergence is not checked, and the strongest is linearizable.
func TestLadderLinearizable(t *testing.T) {
	l := BuildLadder([]Result{{Name: "linearizability", Verdict: Valid}, {Name: "lost-writes", Verdict: Valid}}, "")
	if l.Strongest != "linearizable" {
		t.Errorf("strongest %q", l.Strongest)
	}
	for _, m := range []string{"causal", "read-your-writes", "writes-follow-reads"} {
		if r := rungOf(t, l, m); r.Verdict != Valid || !r.Implied || r.Ran || !strings.Contains(r.Note, "implied by linearizable") {
			t.Errorf("%s: %+v", m, r)
		}
	}
	if r := rungOf(t, l, "convergent"); r.Verdict != NotApplicable || r.Implied || !strings.Contains(r.Note, "enable the convergence checker") {
		t.Errorf("convergent: %+v", r)
	}
}

// An eventually consistent run: linearizability and causal invalid, the
// session guarantees from the session checker's details (as read back
// from results.json), convergent valid; the strongest is the guarantees
// that held. Expecting convergent makes every other model reported only,
// and the checkers of those models and the non-model checkers advisory;
// a checker marked gating stays gating.
func TestLadderEventual(t *testing.T) {
	res := []Result{
		{Name: "linearizability", Verdict: Invalid, AnomalyCount: 3},
		{Name: "causal", Verdict: Invalid, AnomalyCount: 2},
		{Name: "session-guarantees", Verdict: Invalid, Details: map[string]any{"guarantees": map[string]string{
			"read-your-writes": "valid", "monotonic-reads": "invalid", "monotonic-writes": "valid", "writes-follow-reads": "valid"}},
			Anomalies: []Anomaly{{Kind: "monotonic-reads"}, {Kind: "monotonic-reads"}}},
		{Name: "convergence", Verdict: Valid},
		{Name: "lost-updates", Verdict: Invalid},
		{Name: "lost-writes", Verdict: Invalid},
		{Name: "stats", Verdict: NotApplicable, Figures: true},
		{Name: "thresholds", Verdict: Invalid, Threshold: true},
	}
	b, _ := json.Marshal(res)
	var back []Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	l := BuildLadder(back, "convergent")
	if l.Strongest != "read-your-writes+monotonic-writes+writes-follow-reads" {
		t.Errorf("strongest %q", l.Strongest)
	}
	if r := rungOf(t, l, "monotonic-reads"); r.Verdict != Invalid || r.Anomalies != 2 || r.Gating {
		t.Errorf("monotonic-reads: %+v", r)
	}
	if r := rungOf(t, l, "convergent"); r.Verdict != Valid || !r.Gating {
		t.Errorf("convergent: %+v", r)
	}
	Advise(back, l, []string{"lost-writes"})
	want := map[string]bool{"linearizability": true, "causal": true, "session-guarantees": true, "convergence": false, "lost-updates": true, "lost-writes": false, "stats": false, "thresholds": false}
	for _, r := range back {
		if r.Advisory != want[r.Name] {
			t.Errorf("%s advisory %v, want %v", r.Name, r.Advisory, want[r.Name])
		}
	}
	o := Combine(back)
	if o.Verdict != Invalid || strings.Join(o.Violated, ",") != "lost-writes" {
		t.Errorf("with lost-writes gating: %+v", o)
	}
	// Without the gating lost-writes, only the missed threshold remains.
	for i := range back {
		if back[i].Name == "lost-writes" {
			back[i].Advisory = true
		}
	}
	if o := Combine(back); len(o.Violated) != 0 || len(o.Thresholds) != 1 || len(o.Advisory) != 5 || o.Judged != 2 {
		t.Errorf("advisory results counted: %+v", o)
	}

	// Expecting read-your-writes: the session checker gates only if
	// read-your-writes itself fails.
	l2 := BuildLadder(res, "read-your-writes")
	Advise(res, l2, nil)
	for _, r := range res {
		if r.Name == "session-guarantees" && (!r.Advisory || r.Gates != Valid) {
			t.Errorf("read-your-writes held: the session checker must be advisory, gating valid: %+v", r)
		}
	}
	// Its holding is a valid judgement: with nothing else gating, the
	// verdict is valid, not "nothing judged".
	only := []Result{res[2]}
	if o := Combine(only); o.Verdict != Valid || o.Judged != 1 {
		t.Errorf("a held advisory result alone: %+v", o)
	}
	// Read-your-writes unknown (not judged where monotonic reads failed):
	// the run is inconclusive on what it expects, not a violation of it.
	res[2].Details["guarantees"].(map[string]string)["read-your-writes"] = "unknown"
	res[2].Advisory, res[2].Gates = false, ""
	Advise(res, BuildLadder(res, "read-your-writes"), nil)
	if o := Combine(res[2:3]); !res[2].Advisory || res[2].Gates != Unknown || o.Verdict != Unknown || len(o.Violated) != 0 {
		t.Errorf("read-your-writes unknown: %+v, %+v", res[2], o)
	}
	res[2].Details["guarantees"].(map[string]string)["read-your-writes"] = "invalid"
	res[2].Advisory, res[2].Gates = false, ""
	Advise(res, BuildLadder(res, "read-your-writes"), nil)
	if res[2].Advisory {
		t.Errorf("read-your-writes violated: the session checker must gate")
	}
}

// Checkers of a weaker model that disagree with a stronger one are shown,
// not hidden behind "implied".
func TestLadderContradiction(t *testing.T) {
	l := BuildLadder([]Result{{Name: "linearizability", Verdict: Valid}, {Name: "causal", Verdict: Invalid}}, "")
	if r := rungOf(t, l, "causal"); r.Verdict != Invalid || !strings.Contains(r.Note, "one of the two checkers is wrong") {
		t.Errorf("causal: %+v", r)
	}
}

// Causal consistency (CC) does not imply monotonic reads: a causal run
// that fails monotonic reads is no contradiction, and causal is still the
// strongest model that held.
func TestLadderCausalWithoutMonotonicReads(t *testing.T) {
	l := BuildLadder([]Result{{Name: "linearizability", Verdict: Invalid}, {Name: "causal", Verdict: Valid},
		{Name: "session-guarantees", Verdict: Invalid, Details: map[string]any{"guarantees": map[string]string{
			"read-your-writes": "valid", "monotonic-reads": "invalid", "monotonic-writes": "valid", "writes-follow-reads": "valid"}}}}, "")
	if r := rungOf(t, l, "monotonic-reads"); r.Verdict != Invalid || r.Implied || r.Note != "" {
		t.Errorf("monotonic-reads: %+v", r)
	}
	if r := rungOf(t, l, "read-your-writes"); r.Verdict != Valid || !r.Implied {
		t.Errorf("read-your-writes: %+v", r)
	}
	if l.Strongest != "causal" {
		t.Errorf("strongest %q", l.Strongest)
	}
}
