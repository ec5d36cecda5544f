package scenario

import (
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
)

func TestVerdictPrecedence(t *testing.T) {
	v := func(name string, verdict checkers.Verdict) checkers.Result {
		return checkers.Result{Name: name, Verdict: verdict}
	}
	thr := checkers.Result{Name: "thresholds", Verdict: checkers.Invalid, Threshold: true}
	crash := checkers.Result{Name: "lost-writes", Verdict: checkers.Unknown, Internal: true}
	cases := []struct {
		name       string
		results    []checkers.Result
		runInvalid string
		verdict    string
		code       int
	}{
		{"all valid", []checkers.Result{v("a", checkers.Valid), v("b", checkers.Valid)}, "", "valid", exitcode.Valid},
		{"no checker", nil, "", "unknown", exitcode.Unknown},
		{"violation beats everything", []checkers.Result{v("a", checkers.Invalid), v("b", checkers.Unknown), thr, crash}, "too few ops", "invalid", exitcode.Violation},
		{"a crashed checker is internal", []checkers.Result{v("a", checkers.Valid), crash, thr}, "too few ops", "unknown", exitcode.Internal},
		{"invalid run beats unknown", []checkers.Result{v("a", checkers.Unknown), thr}, "too few ops", "unknown", exitcode.InvalidRun},
		{"unknown beats threshold", []checkers.Result{v("a", checkers.Unknown), thr}, "", "unknown", exitcode.Unknown},
		{"threshold alone", []checkers.Result{v("a", checkers.Valid), thr}, "", "invalid", exitcode.Threshold},
		{"not applicable is no verdict", []checkers.Result{v("a", checkers.Valid), v("lost-writes", checkers.NotApplicable), v("stats", checkers.NotApplicable)}, "", "valid", exitcode.Valid},
		{"stats figures are no verdict", []checkers.Result{{Name: "stats", Verdict: checkers.NotApplicable, Figures: true}}, "", "unknown", exitcode.Unknown},
		{"nothing applicable", []checkers.Result{v("lost-writes", checkers.NotApplicable), v("stats", checkers.NotApplicable)}, "", "unknown", exitcode.Unknown},
		{"a malformed history is unknown", []checkers.Result{v("a", checkers.Valid), v("stats", checkers.Unknown)}, "", "unknown", exitcode.Unknown},
	}
	for _, c := range cases {
		verdict, code, reason := Verdict(c.results, c.runInvalid)
		if verdict != c.verdict || code != c.code || reason == "" {
			t.Errorf("%s: got %s/%d %q, want %s/%d", c.name, verdict, code, reason, c.verdict, c.code)
		}
	}
}

func TestStatsFromChecker(t *testing.T) {
	res := []checkers.Result{{Name: "stats", Details: map[string]any{
		"ops": 10, "ok": 8, "fail": 1, "info": 1, "achieved_rate": 5.0, "duration_s": 2.0,
		"latency_us": map[string]float64{"p50": 100, "p90": 200, "p99": 300, "p999": 400, "max": 500, "mean": 150},
	}}}
	st := statsFromChecker(res)
	want := reports.Percentiles{P50: 100, P90: 200, P99: 300, P999: 400, Max: 500, Mean: 150}
	if st.Ops != 10 || st.OK != 8 || st.AchievedRate != 5 || st.Latency != want {
		t.Fatalf("got %+v", st)
	}
}

// A run that did not finish keeps its exit code when re-judged, unless a
// violation is found, and the reason says where it stopped.
func TestVerdictOfAStoppedRun(t *testing.T) {
	stopped := &reports.Stopped{Phase: "main", ExitCode: ExitInterrupted, Reason: "received interrupt"}
	ok := []checkers.Result{{Name: "linearizability", Verdict: checkers.Valid}, {Name: "lost-writes", Verdict: checkers.NotApplicable}}
	verdict, code, reason := verdictOf(ok, "", stopped)
	if verdict != "unknown" || code != ExitInterrupted || !strings.Contains(reason, "stopped during the main phase: received interrupt") || !strings.Contains(reason, "no violation") {
		t.Errorf("re-judged interrupted run: %s/%d %q", verdict, code, reason)
	}
	bad := []checkers.Result{{Name: "linearizability", Verdict: checkers.Invalid}}
	verdict, code, reason = verdictOf(bad, "", stopped)
	if verdict != "invalid" || code != exitcode.Violation || !strings.Contains(reason, "stopped during the main phase") {
		t.Errorf("a violation in an interrupted run: %s/%d %q", verdict, code, reason)
	}
	infra := &reports.Stopped{Phase: "warmup", ExitCode: exitcode.Internal, Reason: "node n1 did not serve"}
	if verdict, code, _ := verdictOf(nil, "", infra); verdict != "unknown" || code != exitcode.Internal {
		t.Errorf("a run stopped by an infrastructure error: %s/%d", verdict, code)
	}
}
