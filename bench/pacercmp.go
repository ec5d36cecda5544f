package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// pacerRun is one pacer run, as results.json keeps it.
type pacerRun struct {
	pacerReport
	Run int `json:"run"`
}

// httpMaxRun is one closed-loop run against the no-op HTTP server.
type httpMaxRun struct {
	httpMaxReport
	Run      int     `json:"run"`
	CPUPer1k float64 `json:"cpu_s_per_1k"`
}

// pacerWorkers is the workers of the pacer runs and the goroutines of
// the minimal pacer's.
const pacerWorkers = 16

// pacer is the pacer comparison: the open-loop pacer at each of the plan's
// rates against a no-op client, each run after a closed-loop run that
// measures the most this machine gets through the same client, workers
// and recorder at that moment (the baseline), and followed by a run of
// the minimal pacer at the same rate and concurrency (the floor of its
// dispatch lag); then faultline's http workload in closed loop against a no-op HTTP server, as a fraction of
// what a minimal Go client gets through the same loopback, the two taking
// turns.
func (b *bencher) pacer(ctx context.Context) ([]row, error) {
	p := b.plan
	var closed []float64
	open := map[float64][]pacerReport{}
	minimal := map[float64][]pacerReport{}
	for run := 1; run <= p.PacerRuns; run++ {
		for _, rate := range append([]float64{0}, p.PacerRates...) {
			var rep pacerReport
			c := newChild(ctx, b.self, []string{"pacer", "--rate", fmt.Sprint(rate), "--duration", p.PacerPhase.String(), "--concurrency", strconv.Itoa(pacerWorkers)})
			if _, err := c.run(&rep); err != nil {
				return nil, err
			}
			b.record("pacer", pacerRun{rep, run})
			if rate == 0 {
				b.logf("pacer run %d closed loop: %.0f ops/s", run, rep.Achieved)
				closed = append(closed, rep.Achieved)
				continue
			}
			b.logf("pacer run %d %s/s: %.0f ops/s, lag p50 %.0f µs p99 %.0f µs, %d missed", run, rateName(rate), rep.Achieved, rep.LagP50us, rep.LagP99us, rep.Missed)
			open[rate] = append(open[rate], rep)
			var mp pacerReport
			c = newChild(ctx, b.self, []string{"minpacer", "--rate", fmt.Sprint(rate), "--duration", p.PacerPhase.String(), "--concurrency", strconv.Itoa(pacerWorkers)})
			if _, err := c.run(&mp); err != nil {
				return nil, err
			}
			b.record("min-pacer", pacerRun{mp, run})
			b.logf("minimal pacer run %d %s/s: %.0f ops/s, lag p50 %.0f µs p99 %.0f µs", run, rateName(rate), mp.Achieved, mp.LagP50us, mp.LagP99us)
			minimal[rate] = append(minimal[rate], mp)
		}
	}
	base := median(closed)
	rows := []row{{Part: "pacer", Figure: "pacer, closed loop, no-op client: the baseline", Unit: "ops/s", Faultline: base, Peer: ptr(1e6), PeerName: "1M ops/s",
		Note: "the most ops/s through the workers, generator and recorder on this machine"}}
	for _, rate := range p.PacerRates {
		get := func(f func(pacerReport) float64) float64 { return medianOf(open[rate], f) }
		ach := get(func(r pacerReport) float64 { return r.Achieved })
		name := fmt.Sprintf("pacer %s ops/s", rateName(rate))
		rows = append(rows,
			row{Part: "pacer", Figure: name + ": achieved rate", Unit: "ops/s", Faultline: ach, Peer: ptr(rate), PeerName: "the target",
				Note: fmt.Sprintf("target ÷ closed-loop maximum %.2f; missed+unsent (median) %.0f", rate/base, get(func(r pacerReport) float64 { return float64(r.Missed) }))},
			row{Part: "pacer", Figure: name + ": dispatch lag p50", Unit: "µs", Faultline: get(func(r pacerReport) float64 { return r.LagP50us })},
			row{Part: "pacer", Figure: name + ": dispatch lag p99", Unit: "µs", Faultline: get(func(r pacerReport) float64 { return r.LagP99us }), Peer: ptr(1000), PeerName: "the goal, 1 ms"},
			row{Part: "pacer", Figure: name + ": dispatch lag p99", Unit: "µs", Faultline: get(func(r pacerReport) float64 { return r.LagP99us }),
				Peer: ptr(medianOf(minimal[rate], func(r pacerReport) float64 { return r.LagP99us })), PeerName: fmt.Sprintf("a minimal Go pacer, the same sleeps, a channel to %d goroutines", pacerWorkers),
				Note: fmt.Sprintf("the minimal pacer's p50 %.0f µs, achieved %.3f of the target: the floor of the wake-ups on this machine", medianOf(minimal[rate], func(r pacerReport) float64 { return r.LagP50us }),
					medianOf(minimal[rate], func(r pacerReport) float64 { return r.Achieved })/rate)},
		)
	}
	more, err := b.httpMax(ctx)
	return append(rows, more...), err
}

// httpMax runs the closed loops against the no-op HTTP server.
func (b *bencher) httpMax(ctx context.Context) ([]row, error) {
	srv, err := startServer(ctx, b.self, 0)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	const conc = 64
	runs := map[string][]httpMaxRun{}
	for run := 1; run <= b.plan.MaxRuns; run++ {
		order := []string{"raw", "faultline"}
		if run%2 == 0 {
			order = []string{"faultline", "raw"}
		}
		for _, tool := range order {
			out := filepath.Join(b.work, fmt.Sprintf("httpmax-%d.jsonl", run))
			var rep httpMaxReport
			c := newChild(ctx, b.self, []string{"httpmax", "--tool", tool, "--addr", srv.Addr, "--duration", b.plan.MaxPhase.String(),
				"--concurrency", strconv.Itoa(conc), "--out", out})
			k, err := c.run(&rep)
			if err != nil {
				return nil, err
			}
			if !b.keep {
				os.Remove(out)
			}
			r := httpMaxRun{httpMaxReport: rep, Run: run}
			if rep.Requests > 0 {
				r.CPUPer1k = k.CPU.Seconds() / float64(rep.Requests) * 1000
			}
			b.record("http-max", r)
			b.logf("no-op server run %d %s: %.0f req/s, %.3f cpu-s/1k", run, tool, r.Rate, r.CPUPer1k)
			runs[tool] = append(runs[tool], r)
		}
	}
	get := func(tool string, f func(httpMaxRun) float64) float64 { return medianOf(runs[tool], f) }
	rate := func(r httpMaxRun) float64 { return r.Rate }
	cpu := func(r httpMaxRun) float64 { return r.CPUPer1k }
	peer := fmt.Sprintf("a minimal Go client, %d goroutines", conc)
	return []row{
		{Part: "pacer", Figure: fmt.Sprintf("HTTP closed loop, %d workers, no-op server: requests/s", conc), Unit: "req/s", Faultline: get("faultline", rate),
			Peer: ptr(get("raw", rate)), PeerName: peer, Note: "the ratio is the fraction of the loopback round-trip limit; faultline records its history to a file"},
		{Part: "pacer", Figure: fmt.Sprintf("HTTP closed loop, %d workers, no-op server: CPU per 1,000 requests", conc), Unit: "cpu-s", Faultline: get("faultline", cpu),
			Peer: ptr(get("raw", cpu)), PeerName: peer},
	}, nil
}
