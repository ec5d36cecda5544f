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
// naming the panic (an internal error) rather than taking the run down.
// Checkers must not modify in.Events, which they share.
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
			results[i] = r
		}()
	}
	wg.Wait()
	return results
}

// Overall combines verdicts: Invalid if any result is Invalid, else Unknown
// if any is Unknown, else Valid (also for no results). Threshold results
// count like any other; mapping them to exit code 3 is the caller's job.
func Overall(results []Result) Verdict {
	v := Valid
	for _, r := range results {
		switch r.Verdict {
		case Invalid:
			return Invalid
		case Valid:
		default:
			v = Unknown
		}
	}
	return v
}
