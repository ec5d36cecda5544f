package scenario

import (
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
