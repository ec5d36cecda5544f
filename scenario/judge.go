package scenario

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
)

// checkerList returns the checkers a scenario asks for, in report order:
// the defaults of its system (or workload) unless the file disables them,
// the others the file enables, stats, and the latency thresholds. st, if
// not nil, holds the workload's own load figures for the thresholds.
func (s *Scenario) checkerList(st *reports.Stats) ([]checkers.Checker, error) {
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
	names = append(names, "stats")
	cs, err := newCheckers(names, s.Checkers.List)
	if err != nil {
		return nil, err
	}
	if l := s.Checkers.Latency; l != nil && st != nil {
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

// Verdict turns checker results (and whether the run itself was valid) into
// the overall verdict and exit code, with a one-line reason.
//
// Precedence: a violation (1) beats a checker's own failure (70), which
// beats an invalid run (4), which beats an unknown verdict (2), which beats
// a missed threshold (3).
func Verdict(results []checkers.Result, runInvalid string) (verdict string, code int, reason string) {
	var violated, unknown, thresholds, crashed []string
	for _, r := range results {
		switch {
		case r.Internal:
			crashed = append(crashed, r.Name)
		case r.Verdict == checkers.Invalid && r.Threshold:
			thresholds = append(thresholds, r.Name)
		case r.Verdict == checkers.Invalid:
			violated = append(violated, r.Name)
		case r.Verdict == checkers.Unknown:
			unknown = append(unknown, r.Name)
		}
	}
	switch {
	case len(violated) > 0:
		return "invalid", exitcode.Violation, "violation found by " + strings.Join(violated, ", ")
	case len(crashed) > 0:
		return "unknown", exitcode.Internal, "internal error in checker " + strings.Join(crashed, ", ") + " (a faultline bug; the explanation has the stack)"
	case runInvalid != "":
		return "unknown", exitcode.InvalidRun, "the run itself was invalid: " + runInvalid
	case len(unknown) > 0:
		return "unknown", exitcode.Unknown, "inconclusive: " + strings.Join(unknown, ", ")
	case len(thresholds) > 0:
		return "invalid", exitcode.Threshold, "threshold not met: " + strings.Join(thresholds, ", ")
	case len(results) == 0:
		return "unknown", exitcode.Unknown, "no checker ran"
	}
	return "valid", exitcode.Valid, "every checker valid"
}

// runCheckers runs cs on in, each with the scenario's budget.
func runCheckers(ctx context.Context, in checkers.Input, cs []checkers.Checker) []checkers.Result {
	return checkers.Run(ctx, in, cs...)
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
		st.Info = int64(num("info"))
		st.AchievedRate = num("achieved_rate")
		st.Duration = num("duration_s")
		switch m := r.Details["latency_us"].(type) {
		case map[string]float64:
			st.Latency = reports.PercentilesFrom(m)
		case map[string]any: // decoded from JSON
			f := map[string]float64{}
			for k, v := range m {
				f[k], _ = v.(float64)
			}
			st.Latency = reports.PercentilesFrom(f)
		}
	}
	return st
}
