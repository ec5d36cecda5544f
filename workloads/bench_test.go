package workloads

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// Run with:
//
//	go test ./workloads -run '^$' -bench . -benchtime 1x
//
// Each iteration is a 2 s phase against a no-op client with the history
// recorded to io.Discard. The closed-loop baseline (the most ops/s this
// machine can push through the same client, recorder and workers) is
// measured in the same process, and the open-loop results are reported as
// ratios to the target and to that baseline.

const (
	benchPhase       = 2 * time.Second
	benchConcurrency = 16
)

type noopClient struct{}

func (noopClient) Do(_ context.Context, op history.Op) history.Outcome {
	if op.F == FGet {
		return history.Outcome{Type: history.OK, Value: history.Null}
	}
	return history.Outcome{Type: history.OK}
}

func benchRun(b *testing.B, rate float64) *Stats {
	b.Helper()
	rec, err := history.NewRecorder(io.Discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	g, err := NewKV(KVConfig{Keys: 10})
	if err != nil {
		b.Fatal(err)
	}
	st, err := Run(context.Background(), Config{
		Duration: benchPhase, Rate: rate, Concurrency: benchConcurrency, Seed: 1,
		Generator: g, Recorder: rec,
		NewClient: func(int) (Client, error) { return noopClient{}, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
	return st
}

var baseline struct {
	once sync.Once
	rate float64
}

// closedLoopMax measures the closed-loop throughput once per process.
func closedLoopMax(b *testing.B) float64 {
	baseline.once.Do(func() { baseline.rate = benchRun(b, 0).AchievedRate })
	return baseline.rate
}

// BenchmarkClosedLoop is the baseline: closed-loop ops/s with the no-op client.
func BenchmarkClosedLoop(b *testing.B) {
	var st *Stats
	for b.Loop() {
		st = benchRun(b, 0)
	}
	b.ReportMetric(st.AchievedRate, "ops/s")
	b.ReportMetric(history.PercentilesOf(st.Service).Map()["p99"], "service-p99-µs")
}

// BenchmarkOpenLoop runs the pacer at fixed targets and reports the achieved
// rate, its ratio to the target and to the closed-loop maximum, and the
// dispatch lag. "timer" variants use Go timers only (ms resolution on
// Linux) instead of nanosleep for short waits.
func BenchmarkOpenLoop(b *testing.B) {
	base := closedLoopMax(b)
	for _, c := range []struct {
		rate   float64
		coarse bool
	}{{10e3, false}, {50e3, false}, {200e3, false}, {10e3, true}, {200e3, true}} {
		name := fmt.Sprintf("rate=%dk", int(c.rate/1000))
		if c.coarse {
			name += "/timer"
		}
		b.Run(name, func(b *testing.B) {
			coarsePacer = c.coarse
			defer func() { coarsePacer = false }()
			var st *Stats
			for b.Loop() {
				st = benchRun(b, c.rate)
			}
			lag := history.PercentilesOf(st.Lag).Map()
			b.ReportMetric(st.AchievedRate, "ops/s")
			b.ReportMetric(st.AchievedRate/st.TargetRate, "achieved/target")
			b.ReportMetric(st.AchievedRate/base, "achieved/closed-max")
			b.ReportMetric(base, "closed-max-ops/s")
			b.ReportMetric(lag["p50"], "lag-p50-µs")
			b.ReportMetric(lag["p99"], "lag-p99-µs")
			b.ReportMetric(float64(st.Missed+st.Unsent), "missed+unsent")
		})
	}
}
