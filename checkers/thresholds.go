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
