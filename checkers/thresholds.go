package checkers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Thresholds judges measured load figures against performance limits. It
// does not read the history: latency measured from each operation's
// intended start (open loop, free of coordinated omission) is only known to
// the workload engine, which passes its figures in Observed. An Invalid
// result has Threshold set, which maps to exit code 3.
//
// The verdict is NotApplicable, with the reason in the Summary, when there
// is nothing to judge: no limit set, only a rate limit on a closed loop, or
// latency limits without any measurement (a history alone, as `faultline
// check` has, does not hold the workload's latencies).
type Thresholds struct {
	// Limits maps a percentile name ("p50", "p90", "p99", "p999", "max") to
	// the most latency allowed.
	Limits map[string]time.Duration
	// MinRate is the least achieved rate as a fraction of the target rate
	// (open loop only; 0 = no limit).
	MinRate float64
	// Observed latency percentiles, in microseconds, keyed like Limits.
	Observed map[string]float64
	// TargetRate and AchievedRate are in ops/s; TargetRate 0 = closed loop.
	TargetRate, AchievedRate float64
	// MaxErrorRate, if set, is the largest fraction of Ops that may end
	// in error (Errors); 0 allows none.
	MaxErrorRate *float64
	// Ops are the operations sent; Errors those that ended in error: fail
	// or info (a cas mismatch is an answer, not an error).
	Ops, Errors int64
	// Endpoints are limits per endpoint (the http workload's), by name,
	// judged against EndpointFigures: an endpoint with limits and no
	// figures (no request measured) misses them.
	Endpoints map[string]EndpointLimits
	// EndpointFigures are the figures measured per endpoint; nil when
	// there are none at all (the limits of Endpoints are then not
	// applicable).
	EndpointFigures map[string]Figures
}

// EndpointLimits are the limits of one endpoint.
type EndpointLimits struct {
	// Latency maps a percentile name ("p50", "p90", "p99", "p999", "max")
	// to the most latency allowed.
	Latency map[string]time.Duration
	// MaxErrorRate, if set, is the largest fraction of the endpoint's
	// operations that may end in error.
	MaxErrorRate *float64
}

// Figures are the measured figures of one endpoint.
type Figures struct {
	// Latency percentiles in microseconds, keyed like EndpointLimits.Latency.
	Latency map[string]float64
	// Ops are the operations sent; Errors those that ended fail or info.
	Ops, Errors int64
}

// Name implements Checker.
func (t *Thresholds) Name() string { return "thresholds" }

// Check implements Checker.
func (t *Thresholds) Check(_ context.Context, _ Input) Result {
	start := time.Now()
	r := Result{Name: t.Name(), Threshold: true, Details: map[string]any{}}
	var failed, met, na []string
	names := make([]string, 0, len(t.Limits))
	for n := range t.Limits {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 && len(t.Observed) == 0 {
		na = append(na, fmt.Sprintf("no latency measurements to judge %s against (a history alone does not hold the workload's latencies from intended start)", strings.Join(names, ", ")))
		names = nil
	}
	for _, n := range names {
		limit := t.Limits[n]
		obs, ok := t.Observed[n]
		if !ok {
			failed = append(failed, fmt.Sprintf("%s: no measurement", n))
			continue
		}
		got := time.Duration(obs * float64(time.Microsecond))
		r.Details[n+"_us"] = obs
		r.Details[n+"_limit_us"] = float64(limit) / float64(time.Microsecond)
		if got > limit {
			failed = append(failed, fmt.Sprintf("latency %s %s > limit %s", n, got.Round(time.Microsecond), limit))
		} else {
			met = append(met, fmt.Sprintf("%s %s <= %s", n, got.Round(time.Microsecond), limit))
		}
	}
	if t.MinRate > 0 {
		if t.TargetRate <= 0 {
			na = append(na, "min_rate: a closed loop has no target rate")
		} else {
			frac := t.AchievedRate / t.TargetRate
			r.Details["rate_fraction"] = frac
			if frac < t.MinRate {
				failed = append(failed, fmt.Sprintf("achieved rate %.1f ops/s is %.1f%% of the target %.0f ops/s, below the %.1f%% required", t.AchievedRate, 100*frac, t.TargetRate, 100*t.MinRate))
			} else {
				met = append(met, fmt.Sprintf("rate %.1f%% of target >= %.1f%%", 100*frac, 100*t.MinRate))
			}
		}
	}
	failed, met, na = t.judgeErrorsAndEndpoints(r.Details, failed, met, na)
	switch {
	case len(failed) > 0:
		r.Verdict = Invalid
		r.Summary = strings.Join(failed, "; ")
		r.Explanation = "A performance threshold of the scenario was not met: " + strings.Join(failed, "; ") +
			". Latency is measured from each operation's intended start, so queueing behind a slow cluster counts. " +
			"Look at the latency over time in the report to see whether it was a fault window or the whole run."
	case len(met) == 0:
		r.Verdict = NotApplicable
		if len(na) == 0 {
			na = append(na, "no thresholds set")
		}
		r.Summary = "not applicable: " + strings.Join(na, "; ")
	default:
		r.Verdict = Valid
		for _, s := range na {
			met = append(met, "not judged: "+s)
		}
		r.Summary = strings.Join(met, "; ")
	}
	r.Elapsed = time.Since(start)
	return r
}

// judgeErrorsAndEndpoints judges the error rate and the limits of each
// endpoint, adding to the lists of limits missed, met and not applicable.
func (t *Thresholds) judgeErrorsAndEndpoints(details map[string]any, failed, met, na []string) ([]string, []string, []string) {
	if t.MaxErrorRate != nil {
		if t.Ops == 0 {
			na = append(na, "error_rate: no operation was sent")
		} else {
			frac := float64(t.Errors) / float64(t.Ops)
			details["error_rate"] = frac
			if line, ok := errorRateLine("", frac, t.Errors, t.Ops, *t.MaxErrorRate); ok {
				met = append(met, line)
			} else {
				failed = append(failed, line)
			}
		}
	}
	if len(t.Endpoints) == 0 {
		return failed, met, na
	}
	names := make([]string, 0, len(t.Endpoints))
	for n := range t.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	if t.EndpointFigures == nil {
		return failed, met, append(na, fmt.Sprintf("no per-endpoint figures to judge the limits of endpoint %s against", strings.Join(names, ", ")))
	}
	perEndpoint := map[string]any{}
	details["endpoints"] = perEndpoint
	for _, name := range names {
		lim := t.Endpoints[name]
		fig, ok := t.EndpointFigures[name]
		if !ok || fig.Ops == 0 {
			failed = append(failed, fmt.Sprintf("endpoint %s: no request measured", name))
			continue
		}
		d := map[string]any{"ops": fig.Ops, "errors": fig.Errors}
		perEndpoint[name] = d
		pcts := make([]string, 0, len(lim.Latency))
		for p := range lim.Latency {
			pcts = append(pcts, p)
		}
		sort.Strings(pcts)
		for _, p := range pcts {
			limit := lim.Latency[p]
			obs, ok := fig.Latency[p]
			if !ok {
				failed = append(failed, fmt.Sprintf("endpoint %s: %s: no measurement", name, p))
				continue
			}
			got := time.Duration(obs * float64(time.Microsecond))
			d[p+"_us"] = obs
			d[p+"_limit_us"] = float64(limit) / float64(time.Microsecond)
			if got > limit {
				failed = append(failed, fmt.Sprintf("endpoint %s: latency %s %s > limit %s", name, p, got.Round(time.Microsecond), limit))
			} else {
				met = append(met, fmt.Sprintf("endpoint %s: %s %s <= %s", name, p, got.Round(time.Microsecond), limit))
			}
		}
		if lim.MaxErrorRate != nil {
			frac := float64(fig.Errors) / float64(fig.Ops)
			d["error_rate"] = frac
			if line, ok := errorRateLine("endpoint "+name+": ", frac, fig.Errors, fig.Ops, *lim.MaxErrorRate); ok {
				met = append(met, line)
			} else {
				failed = append(failed, line)
			}
		}
	}
	return failed, met, na
}

// errorRateLine says how an error rate compares to its limit, and whether
// it is within it.
func errorRateLine(prefix string, frac float64, errs, ops int64, limit float64) (string, bool) {
	if frac > limit {
		return fmt.Sprintf("%serror rate %.2f%% (%d of %d operations failed or ended unknown) > limit %.2f%%", prefix, 100*frac, errs, ops, 100*limit), false
	}
	return fmt.Sprintf("%serror rate %.2f%% <= %.2f%%", prefix, 100*frac, 100*limit), true
}
