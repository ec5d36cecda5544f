package checkers

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Run runs the checkers concurrently on the same input and returns their
// results in the order given. A checker that panics yields an Unknown result
// naming the panic (an internal error) rather than taking the run down. A
// result without a verdict is Unknown; one whose AnomalyCount is less than
// its anomalies gets their number. Checkers must not modify in.Events,
// which they share.
func Run(ctx context.Context, in Input, cs ...Checker) []Result {
	results := make([]Result, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			defer func() {
				if p := recover(); p != nil {
					results[i] = Result{
						Name:        c.Name(),
						Verdict:     Unknown,
						Internal:    true,
						Summary:     fmt.Sprintf("checker failed: %v", p),
						Explanation: fmt.Sprintf("The %s checker panicked, which is a bug in faultline: please report it with the history. %v\n%s", c.Name(), p, debug.Stack()),
						Elapsed:     time.Since(start),
					}
				}
			}()
			r := c.Check(ctx, in)
			if r.Name == "" {
				r.Name = c.Name()
			}
			if r.Verdict == "" {
				r.Verdict = Unknown
			}
			if r.Elapsed == 0 {
				r.Elapsed = time.Since(start)
			}
			if r.AnomalyCount < len(r.Anomalies) {
				r.AnomalyCount = len(r.Anomalies)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	return results
}

// Overall is the combination of checker results into one verdict
// (Combine), with the names of the checkers behind it, so that a caller can
// say why and map it to an exit code.
type Overall struct {
	// Verdict is Invalid if a checker found a violation; else Unknown if a
	// checker failed itself (Internal) or could not decide; else Invalid if
	// a performance threshold was not met; else Unknown if no checker gave
	// a verdict at all (nothing was judged); else Valid.
	Verdict Verdict
	// Violated are the checkers that found a violation (Invalid, not a
	// threshold).
	Violated []string
	// Crashed are the checkers that failed themselves (Internal): a bug in
	// faultline, whatever their verdict says.
	Crashed []string
	// Thresholds are the performance thresholds not met (Invalid and
	// Threshold).
	Thresholds []string
	// Unknown are the checkers that could not decide: Unknown, or a
	// verdict outside the fixed set.
	Unknown []string
	// NotApplicable are the checkers that could not judge the history;
	// Figures those that report figures, not a verdict (Result.Figures).
	// Neither gives a verdict.
	NotApplicable, Figures []string
	// Advisory are the checkers whose verdicts are reported only
	// (Result.Advisory): they neither violate nor count as judged.
	Advisory []string
	// Judged is the number of results that gave a verdict (all but the
	// not applicable, the figures and the advisory).
	Judged int
}

// Combine combines checker results into the overall verdict; it is the
// one place that does (the conductor's exit code and every report use
// it). NotApplicable and figures (Result.Figures) are no verdict: they
// never make the overall verdict Unknown or Invalid; but when no result
// gives a verdict at all (no results, or all not applicable or figures),
// nothing was judged, and that is Unknown. An advisory result (the
// scenario's expected model does not require it) is no verdict either. A
// violation beats a checker's
// own failure, which beats an Unknown, which beats a missed threshold:
// mapping them to exit codes (1, 70, 2, 3) is the caller's job.
func Combine(results []Result) Overall {
	var o Overall
	for _, r := range results {
		switch {
		case r.Internal:
			o.Crashed = append(o.Crashed, r.Name)
		case r.Advisory && r.Gates == Invalid:
			o.Violated = append(o.Violated, r.Name)
		case r.Advisory && r.Gates == Unknown:
			o.Unknown = append(o.Unknown, r.Name)
		case r.Advisory:
			o.Advisory = append(o.Advisory, r.Name)
			if r.Gates == Valid {
				o.Judged++
			}
			continue
		case r.Verdict == Invalid && r.Threshold:
			o.Thresholds = append(o.Thresholds, r.Name)
		case r.Verdict == Invalid:
			o.Violated = append(o.Violated, r.Name)
		case r.Figures:
			o.Figures = append(o.Figures, r.Name)
			continue
		case r.Verdict == NotApplicable:
			o.NotApplicable = append(o.NotApplicable, r.Name)
			continue
		case r.Verdict == Valid:
		default:
			o.Unknown = append(o.Unknown, r.Name)
		}
		o.Judged++
	}
	switch {
	case len(o.Violated) > 0:
		o.Verdict = Invalid
	case len(o.Crashed) > 0, len(o.Unknown) > 0:
		o.Verdict = Unknown
	case len(o.Thresholds) > 0:
		o.Verdict = Invalid
	case o.Judged == 0:
		o.Verdict = Unknown
	default:
		o.Verdict = Valid
	}
	return o
}
