package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// loadRun is one load run's figures, as results.json keeps them.
type loadRun struct {
	Tool       string  `json:"tool"` // faultline, vegeta, or vegeta-max-workers-N
	Rate       float64 `json:"rate"`
	Run        int     `json:"run"`
	Scheduled  int     `json:"scheduled"` // requests the schedule made due
	Sent       int     `json:"sent"`
	Errors     int     `json:"errors"` // requests not ok
	Achieved   float64 `json:"achieved"`
	CPUs       float64 `json:"cpu_s"`
	CPUPer1k   float64 `json:"cpu_s_per_1k"`
	MaxRSSMB   float64 `json:"max_rss_mb"`
	P50ms      float64 `json:"p50_ms"` // as the tool reports it
	P99ms      float64 `json:"p99_ms"`
	TrueP50ms  float64 `json:"true_p50_ms"` // from the schedule
	TrueP99ms  float64 `json:"true_p99_ms"`
	LowerBound bool    `json:"true_lower_bound,omitempty"`
	Stalled    bool    `json:"stalled,omitempty"`
}

// loadTool is a load generator as the HTTP parts run it.
type loadTool struct {
	name       string // in the table and results.json
	tool       string // bench load --tool
	maxWorkers uint64 // vegeta's -max-workers; 0: its default
}

// load runs one `bench load` child against addr and reads its output
// file. If stall is not zero, the server is stopped for that long in the
// middle of the run (from half the phase minus half the stall).
func (b *bencher) load(ctx context.Context, t loadTool, srv *serverProc, rate float64, dur time.Duration, conc, run int, stall time.Duration) (loadRun, error) {
	ext := ".jsonl"
	if t.tool == "vegeta" {
		ext = ".gob"
	}
	out := filepath.Join(b.work, fmt.Sprintf("load-%s-%s-%d%s", t.name, rateName(rate), run, ext))
	args := []string{"load", "--tool", t.tool, "--addr", srv.Addr, "--rate", fmt.Sprint(rate), "--duration", dur.String(),
		"--out", out, "--concurrency", strconv.Itoa(conc)}
	if t.maxWorkers > 0 {
		args = append(args, "--max-workers", strconv.FormatUint(t.maxWorkers, 10))
	}
	c := newChild(ctx, b.self, args)
	if err := c.start(); err != nil {
		return loadRun{}, err
	}
	stalled := make(chan error, 1)
	if stall > 0 {
		go func() {
			select {
			case <-time.After(dur/2 - stall/2):
			case <-ctx.Done():
				stalled <- ctx.Err()
				return
			}
			if err := srv.Pause(); err != nil {
				stalled <- err
				return
			}
			time.Sleep(stall)
			stalled <- srv.Resume()
		}()
	}
	k, err := c.wait()
	if stall > 0 {
		if serr := <-stalled; err == nil && serr != nil {
			err = fmt.Errorf("stalling the server: %w", serr)
		}
	}
	if err != nil {
		return loadRun{}, err
	}
	var rep loadReport
	if err := jsonUnmarshal(c.stdout.Bytes(), &rep); err != nil {
		return loadRun{}, fmt.Errorf("%s: %w", c.describe(), err)
	}
	lr := loadRun{Tool: t.name, Rate: rate, Run: run, CPUs: k.CPU.Seconds(), MaxRSSMB: float64(k.MaxRSS) / 1e6, Stalled: stall > 0}
	var reqs []request
	switch t.tool {
	case "faultline":
		if reqs, err = readFaultlineRequests(out); err != nil {
			return lr, err
		}
		if int64(len(reqs)) != rep.Ops {
			return lr, fmt.Errorf("%s holds %d requests, the workload's figures %d", out, len(reqs), rep.Ops)
		}
		lr.P50ms, lr.P99ms = rep.P50us/1e3, rep.P99us/1e3
	case "vegeta":
		rs, m, err := readVegetaResults(out)
		if err != nil {
			return lr, err
		}
		reqs = rs
		lr.P50ms, lr.P99ms = float64(m.Latencies.P50)/1e6, float64(m.Latencies.P99)/1e6
	}
	if !b.keep {
		os.Remove(out)
	}
	for _, r := range reqs {
		if !r.OK {
			lr.Errors++
		}
	}
	lr.Sent = len(reqs)
	lr.Achieved = float64(len(reqs)) / dur.Seconds()
	if lr.Sent > 0 {
		lr.CPUPer1k = lr.CPUs / float64(lr.Sent) * 1000
	}
	tr := trueLatency(reqs, rate, dur)
	lr.Scheduled, lr.TrueP50ms, lr.TrueP99ms, lr.LowerBound = tr.Scheduled, tr.P50us/1e3, tr.P99us/1e3, tr.LowerBound
	b.record("http", lr)
	return lr, nil
}

// httpRates is the HTTP load comparison: at each rate, faultline's http
// workload and vegeta take turns (the order alternating from run to run)
// against one server answering after the plan's service time; the rates
// rise until one of them sends less than 95% of its target.
func (b *bencher) httpRates(ctx context.Context) ([]row, error) {
	srv, err := startServer(ctx, b.self, b.plan.ServiceTime)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	tools := []loadTool{{name: "faultline", tool: "faultline"}, {name: "vegeta", tool: "vegeta"}}
	var rows []row
	for _, rate := range b.plan.HTTPRates {
		runs := map[string][]loadRun{}
		for run := 1; run <= b.plan.HTTPRuns; run++ {
			order := tools
			if run%2 == 0 {
				order = []loadTool{tools[1], tools[0]}
			}
			for _, t := range order {
				lr, err := b.load(ctx, t, srv, rate, b.plan.HTTPPhase, b.plan.Concurrency, run, 0)
				if err != nil {
					return rows, fmt.Errorf("%s at %s/s, run %d: %w", t.name, rateName(rate), run, err)
				}
				b.logf("http %s/s run %d %s: %.0f/s, %.3f cpu-s/1k, p50 %.2f ms, p99 %.2f ms, %d errors",
					rateName(rate), run, t.name, lr.Achieved, lr.CPUPer1k, lr.P50ms, lr.P99ms, lr.Errors)
				runs[t.name] = append(runs[t.name], lr)
			}
		}
		f, v := runs["faultline"], runs["vegeta"]
		fa, va := medianOf(f, func(r loadRun) float64 { return r.Achieved }), medianOf(v, func(r loadRun) float64 { return r.Achieved })
		name := fmt.Sprintf("HTTP %s/s", rateName(rate))
		errs := ""
		if fe, ve := medianOf(f, func(r loadRun) float64 { return float64(r.Errors) }), medianOf(v, func(r loadRun) float64 { return float64(r.Errors) }); fe+ve > 0 {
			errs = fmt.Sprintf("; errors (median): faultline %.0f, vegeta %.0f", fe, ve)
		}
		rows = append(rows,
			row{Part: "http", Figure: name + ": achieved rate", Unit: "req/s", Faultline: fa, Peer: ptr(va), PeerName: "vegeta",
				Note: fmt.Sprintf("of the target: faultline %.3f, vegeta %.3f%s", fa/rate, va/rate, errs)},
			row{Part: "http", Figure: name + ": CPU per 1,000 requests", Unit: "cpu-s", PeerName: "vegeta",
				Faultline: medianOf(f, func(r loadRun) float64 { return r.CPUPer1k }), Peer: ptr(medianOf(v, func(r loadRun) float64 { return r.CPUPer1k }))},
			row{Part: "http", Figure: name + ": p50 as reported", Unit: "ms", PeerName: "vegeta",
				Faultline: medianOf(f, func(r loadRun) float64 { return r.P50ms }), Peer: ptr(medianOf(v, func(r loadRun) float64 { return r.P50ms })),
				Note: "faultline from the intended start, vegeta from the send"},
			row{Part: "http", Figure: name + ": p99 as reported", Unit: "ms", PeerName: "vegeta",
				Faultline: medianOf(f, func(r loadRun) float64 { return r.P99ms }), Peer: ptr(medianOf(v, func(r loadRun) float64 { return r.P99ms })),
				Note: fmt.Sprintf("true p99, from the schedule: faultline %.2f ms, vegeta %.2f ms",
					medianOf(f, func(r loadRun) float64 { return r.TrueP99ms }), medianOf(v, func(r loadRun) float64 { return r.TrueP99ms }))},
		)
		if fa < 0.95*rate || va < 0.95*rate {
			b.logf("http: stopping at %s/s: faultline achieved %.3f of the target, vegeta %.3f", rateName(rate), fa/rate, va/rate)
			break
		}
	}
	return rows, nil
}

// httpStall is the stall comparison: at the plan's stall rate, the server
// is stopped (SIGSTOP) for the plan's stall in the middle of each run;
// each tool's reported p99 is set against the true p99, computed from the
// intended schedule and the answers in the tool's own output file.
// faultline runs with the plan's stall concurrency (workers: the most
// requests in flight), vegeta twice: with its defaults (its workers grow
// without bound, so every request is sent on time into the stalled
// server) and with -max-workers the same as faultline's workers (requests
// wait for a worker, as faultline's do).
func (b *bencher) httpStall(ctx context.Context) ([]row, error) {
	srv, err := startServer(ctx, b.self, b.plan.ServiceTime)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	c := b.plan.StallConc
	capped := fmt.Sprintf("vegeta -max-workers %d", c)
	tools := []loadTool{{name: "faultline", tool: "faultline"}, {name: "vegeta", tool: "vegeta"}, {name: capped, tool: "vegeta", maxWorkers: uint64(c)}}
	runs := map[string][]loadRun{}
	rate := b.plan.StallRate
	for run := 1; run <= b.plan.StallRuns; run++ {
		for i := range tools {
			t := tools[(i+run-1)%len(tools)]
			lr, err := b.load(ctx, t, srv, rate, b.plan.StallPhase, b.plan.StallConc, run, b.plan.Stall)
			if err != nil {
				return nil, fmt.Errorf("%s with the stall, run %d: %w", t.name, run, err)
			}
			b.logf("stall run %d %s: p99 reported %.1f ms, true %.1f ms (%d sent, %d errors)", run, t.name, lr.P99ms, lr.TrueP99ms, lr.Sent, lr.Errors)
			runs[t.name] = append(runs[t.name], lr)
		}
	}
	what := fmt.Sprintf("stall %s at %s/s (%s runs, faultline %d workers)", b.plan.Stall, rateName(rate), b.plan.StallPhase, c)
	med := func(name string, f func(loadRun) float64) float64 { return medianOf(runs[name], f) }
	reported := func(r loadRun) float64 { return r.P99ms }
	truth := func(r loadRun) float64 { return r.TrueP99ms }
	ratio := func(r loadRun) float64 { return r.P99ms / r.TrueP99ms }
	var rows []row
	for _, peer := range []string{"vegeta", capped} {
		note := ""
		if pr := runs[peer]; len(pr) > 0 && slices.ContainsFunc(pr, func(r loadRun) bool { return r.LowerBound }) {
			note = "over 1% of the requests never sent: the true p99 is a lower bound"
		}
		rows = append(rows,
			row{Part: "stall", Figure: what + ": true p99, from the schedule", Unit: "ms", PeerName: peer, Faultline: med("faultline", truth), Peer: ptr(med(peer, truth)), Note: note},
			row{Part: "stall", Figure: what + ": p99 as reported", Unit: "ms", PeerName: peer, Faultline: med("faultline", reported), Peer: ptr(med(peer, reported))},
			row{Part: "stall", Figure: what + ": reported ÷ true p99", PeerName: peer, Faultline: med("faultline", ratio), Peer: ptr(med(peer, ratio)), NoRatio: true,
				Note: "1.00 is the truth; goal for faultline: within 10%"},
		)
	}
	return rows, nil
}

// jsonUnmarshal decodes a child's one JSON object, quoting it on error.
func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("printed %q, not the JSON object it should: %v", tail(strings.TrimSpace(string(b)), 300), err)
	}
	return nil
}
