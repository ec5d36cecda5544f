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

// Overall combines verdicts: Invalid if any result is Invalid, else Unknown
// if any is Unknown (or has a verdict outside the fixed set), else Valid.
// NotApplicable is no verdict: it never makes the overall verdict Unknown
// or Invalid; but when no result gives a verdict at all (no results, or
// all NotApplicable), nothing was judged, and that is Unknown (as the
// conductor's verdict has it). Threshold results count like any other;
// mapping them to exit code 3 is the caller's job.
func Overall(results []Result) Verdict {
	v, judged := Valid, false
	for _, r := range results {
		switch r.Verdict {
		case Invalid:
			return Invalid
		case NotApplicable:
			continue
		case Valid:
		default:
			v = Unknown
		}
		judged = true
	}
	if !judged {
		return Unknown
	}
	return v
}
