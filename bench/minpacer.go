package main

import (
	"flag"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"
)

// cmdMinPacer is `bench minpacer`: the floor for the pacer's dispatch lag
// on this machine, a minimal Go pacer with the same sleeps as faultline's
// (until the next op is due, at least 50 µs and at most 10 ms; nanosleep
// below 1 ms, a Go timer above) that hands each due op through a buffered
// channel to one of --concurrency goroutines, which do nothing but take
// the time. Its lag is when a goroutine got the op, less when the op was
// due. No generator, no history, no client: what it measures is what any
// pacer that wakes a goroutine per op pays for the wake-ups alone. Every
// op is handed over (the pacer blocks on a full channel), so a pacer that
// falls behind shows in its lag and its achieved rate, never as missed
// ops: its report leaves Missed at 0.
func cmdMinPacer(args []string) error {
	fs := flag.NewFlagSet("minpacer", flag.ContinueOnError)
	rate := fs.Float64("rate", 1000, "ops/s")
	dur := fs.Duration("duration", 2*time.Second, "the phase")
	conc := fs.Int("concurrency", 16, "goroutines the ops are handed to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *dur <= 0 || *conc <= 0 {
		return fmt.Errorf("--rate %v, --duration %v and --concurrency %d must be positive", *rate, *dur, *conc)
	}
	// Each op's lag is kept (8 bytes): bound the phase's ops.
	const maxOps = 100_000_000
	if ops := *rate * dur.Seconds(); ops > maxOps {
		return fmt.Errorf("--rate %v for --duration %v is %.0f ops; at most %d: shorten the phase or lower the rate", *rate, *dur, ops, maxOps)
	}
	total := int64(*rate * dur.Seconds())
	due := make(chan time.Duration, *conc)
	lags := make([][]float64, *conc)
	for i := range lags {
		lags[i] = make([]float64, 0, total/int64(*conc)+64)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range due {
				lags[i] = append(lags[i], float64(time.Since(start)-d)/1e3)
			}
		}()
	}
	interval := float64(time.Second) / *rate
	at := func(n int64) time.Duration { return time.Duration(float64(n) * interval) }
	var n int64
	for n < total {
		now := time.Since(start)
		for n < total && at(n) <= now {
			due <- at(n)
			n++
		}
		if n == total {
			break
		}
		wait := min(max(at(n)-time.Since(start), 50*time.Microsecond), 10*time.Millisecond)
		if wait < time.Millisecond {
			ts := syscall.NsecToTimespec(int64(wait))
			_ = syscall.Nanosleep(&ts, nil)
		} else {
			time.Sleep(wait)
		}
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lags...)
	slices.Sort(all)
	return printJSON(pacerReport{
		Target: *rate, Achieved: float64(len(all)) / max(elapsed.Seconds(), dur.Seconds()), Ops: int64(len(all)),
		LagP50us: quantile(all, 0.50), LagP99us: quantile(all, 0.99),
	})
}
