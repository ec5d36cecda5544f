package scenario

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
)

// checkerNames returns the names of the checkers a scenario runs besides
// stats and the thresholds, in report order: the defaults of its system
// (or workload) unless the file disables them, then the others the file
// enables.
func (s *Scenario) checkerNames() []string {
	var names []string
	seen := map[string]bool{"stats": true}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, n := range s.defaultCheckers() {
		if cc, ok := s.Checkers.Lookup(n); ok && !cc.on() {
			continue
		}
		add(n)
	}
	for _, cc := range s.Checkers.List {
		if cc.on() {
			add(cc.Name)
		}
	}
	return names
}

// checkerList returns the checkers a scenario asks for, in report order:
// the defaults of its system (or workload) unless the file disables them,
// the others the file enables, stats, and the latency thresholds. st, if
// not nil, holds the workload's own load figures for the thresholds.
func (s *Scenario) checkerList(st *reports.Stats) ([]checkers.Checker, error) {
	names := append(s.checkerNames(), "stats")
	cs, err := newCheckers(names, s.Checkers.List)
	if err != nil {
		return nil, err
	}
	if l := s.Checkers.Latency; l != nil && (st == nil || st.Ops == 0) {
		// Thresholds judge the workload's own figures; without them they
		// cannot be checked, and the results say so.
		why := "no workload figures: the run directory has no results.json"
		if st != nil {
			why = "no workload figures in results.json: the run stopped before its main phase ended, or sent no operation"
		}
		cs = append(cs, notApplicable{name: "thresholds", why: why})
	} else if l != nil {
		t := &checkers.Thresholds{
			Limits:     map[string]time.Duration{},
			MinRate:    l.MinRate,
			Observed:   map[string]float64{"p50": st.Latency.P50, "p90": st.Latency.P90, "p99": st.Latency.P99, "p999": st.Latency.P999, "max": st.Latency.Max},
			TargetRate: st.TargetRate, AchievedRate: st.AchievedRate,
		}
		for name, d := range map[string]Duration{"p50": l.P50, "p99": l.P99, "p999": l.P999, "max": l.Max} {
			if d > 0 {
				t.Limits[name] = d.D()
			}
		}
		endpointThresholds(t, l, st)
		cs = append(cs, t)
	}
	return cs, nil
}

// newCheckers makes the named checkers from the registry, each with its
// parameters from cfg when cfg has an entry for it, else its defaults.
func newCheckers(names []string, cfg []CheckerConfig) ([]checkers.Checker, error) {
	var out []checkers.Checker
	for _, n := range names {
		e, err := checkers.Lookup(n)
		if err != nil {
			return nil, err
		}
		var params any
		for _, cc := range cfg {
			if cc.Name == n {
				params = cc.Params
			}
		}
		if params == nil && e.NewParams != nil {
			params = e.NewParams()
		}
		c, err := e.New(params)
		if err != nil {
			return nil, fmt.Errorf("checker %s: %w", n, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// notApplicable is a checker that cannot judge what it is given (the
// thresholds without workload figures): its result is not_applicable with
// the reason.
type notApplicable struct{ name, why string }

func (n notApplicable) Name() string { return n.name }

func (n notApplicable) Check(context.Context, checkers.Input) checkers.Result {
	return checkers.Result{Name: n.name, Verdict: checkers.NotApplicable, Summary: "not applicable (" + n.why + ")", Threshold: n.name == "thresholds"}
}

// Verdict turns checker results (and whether the run itself was valid) into
// the overall verdict and exit code, with a one-line reason.
//
// The results are combined by checkers.Combine; the run adds its own
// state. Precedence: a violation (1) beats a checker's own failure (70),
// which beats an invalid run (4), which beats an unknown verdict (2), which
// beats a missed threshold (3). A not_applicable result, and figures
// (checkers.Result.Figures: the stats checker's), are no verdict: they
// never make the overall verdict unknown; but when no checker gave a
// verdict at all, nothing was judged, and that is unknown (2).
func Verdict(results []checkers.Result, runInvalid string) (verdict string, code int, reason string) {
	return verdictOf(results, runInvalid, nil)
}

// verdictOf is Verdict for a run that may not have finished (stopped, as
// results.json keeps it): its exit code (70, 130) comes after a violation
// and a checker's own failure, before everything else; the reason says
// where the run stopped.
func verdictOf(results []checkers.Result, runInvalid string, stopped *reports.Stopped) (verdict string, code int, reason string) {
	o := checkers.Combine(results)
	verdict = string(o.Verdict)
	ofStopped := ""
	if stopped != nil {
		ofStopped = fmt.Sprintf(" (in the history of a run that stopped during the %s phase, exit %d)", stopped.Phase, stopped.ExitCode)
	}
	switch {
	case len(o.Violated) > 0:
		return verdict, exitcode.Violation, "violation found by " + strings.Join(o.Violated, ", ") + ofStopped
	case len(o.Crashed) > 0:
		return verdict, exitcode.Internal, "internal error in checker " + strings.Join(o.Crashed, ", ") + " (a faultline bug; the explanation has the stack)"
	case stopped != nil:
		reason := fmt.Sprintf("the run stopped during the %s phase: %s", stopped.Phase, stopped.Reason)
		if o.Judged > 0 {
			reason += "; the checkers found no violation in the history recorded until then"
		}
		return string(checkers.Unknown), stopped.ExitCode, reason
	case runInvalid != "":
		return string(checkers.Unknown), exitcode.InvalidRun, "the run itself was invalid: " + runInvalid
	case len(o.Unknown) > 0:
		return verdict, exitcode.Unknown, "inconclusive: " + strings.Join(o.Unknown, ", ")
	case len(o.Thresholds) > 0:
		return verdict, exitcode.Threshold, "threshold not met: " + strings.Join(o.Thresholds, ", ")
	case len(results) == 0:
		return verdict, exitcode.Unknown, "no checker ran"
	case o.Judged == 0 && len(o.NotApplicable) == 0:
		return verdict, exitcode.Unknown, "no checker gave a verdict (" + strings.Join(o.Figures, ", ") + " gives figures, not a verdict)"
	case o.Judged == 0:
		return verdict, exitcode.Unknown, "no checker could judge this history (not applicable: " + strings.Join(o.NotApplicable, ", ") + ")"
	}
	var also []string
	if len(o.NotApplicable) > 0 {
		also = append(also, "not applicable: "+strings.Join(o.NotApplicable, ", "))
	}
	if len(o.Advisory) > 0 {
		var adv []string
		for _, r := range results {
			if r.Advisory {
				adv = append(adv, r.Name+" "+string(r.Verdict))
			}
		}
		also = append(also, "reported only, beyond the expected model: "+strings.Join(adv, ", "))
		if len(also) == 1 {
			return verdict, exitcode.Valid, "every gating checker valid (" + also[0] + ")"
		}
		return verdict, exitcode.Valid, "every gating checker valid (" + strings.Join(also, "; ") + ")"
	}
	if len(also) > 0 {
		return verdict, exitcode.Valid, "every checker valid (" + also[0] + ")"
	}
	return verdict, exitcode.Valid, "every checker valid"
}

// runCheckers runs cs on in, each with the scenario's budget.
func runCheckers(ctx context.Context, in checkers.Input, cs []checkers.Checker) []checkers.Result {
	return checkers.Run(ctx, in, cs...)
}

// ladder places results on the consistency ladder (nil when no checker of
// a model ran) and, when the scenario (s, may be nil) expects a model,
// marks the results that are reported only (checkers.Advise).
func ladder(results []checkers.Result, s *Scenario) *checkers.Ladder {
	ran := false
	for _, r := range results {
		for _, m := range checkers.Models {
			ran = ran || r.Name == m.Checker
		}
	}
	if !ran {
		return nil
	}
	var expect string
	var gating []string
	if s != nil {
		expect = s.Expect
		for _, cc := range s.Checkers.List {
			if cc.Gating {
				gating = append(gating, cc.Name)
			}
		}
	}
	l := checkers.BuildLadder(results, expect)
	checkers.Advise(results, l, gating)
	return l
}

// statsFromChecker fills the results' stats from the stats checker's details
// when the workload's own figures are not available (faultline check).
func statsFromChecker(results []checkers.Result) reports.Stats {
	var st reports.Stats
	for _, r := range results {
		if r.Name != "stats" || r.Details == nil {
			continue
		}
		num := func(k string) float64 {
			switch v := r.Details[k].(type) {
			case float64:
				return v
			case int64:
				return float64(v)
			case int:
				return float64(v)
			}
			return 0
		}
		st.Ops = int64(num("ops"))
		st.OK = int64(num("ok"))
		st.Fail = int64(num("fail"))
		st.Mismatch = int64(num("mismatch"))
		st.Info = int64(num("info"))
		st.AchievedRate = num("achieved_rate")
		st.Duration = num("duration_s")
		switch m := r.Details["latency_us"].(type) {
		case map[string]float64:
			st.Latency = history.PercentilesFromMap(m)
		case map[string]any: // decoded from JSON
			f := map[string]float64{}
			for k, v := range m {
				f[k], _ = v.(float64)
			}
			st.Latency = history.PercentilesFromMap(f)
		}
	}
	return st
}
