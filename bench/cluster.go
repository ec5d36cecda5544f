package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// clusterScenario is the scenario whose runs time the cluster start: three
// raftkv nodes, a light load for one second, nothing else.
const clusterScenario = `# bench: the time a 3-node raftkv cluster takes to be ready (setup + warm-up).
name: bench-cluster-start
system: raftkv
nodes: 3
duration: 1s
warmup: 60s
recovery: 100ms
min_ops: 10
workload: {type: register, keys: 8, rate: 100, concurrency: 4, timeout: 1s}
`

// clusterStart is one run's start-up: setup (start every node, wait until
// each answers its admin API, and on Docker the proxy container) and
// warm-up (until a read succeeds through every node, so a leader is
// elected), from results.json's phases.
type clusterStart struct {
	Setup, Warmup time.Duration
	Ready         time.Duration // from the start of setup to the end of warm-up
}

// runClusterStart runs `faultline run` on the cluster scenario with the
// runtime, writing the run directory under dir, and returns its phases.
func runClusterStart(ctx context.Context, faultline, scenarioFile, runtime, dir string) (clusterStart, error) {
	out, err := os.MkdirTemp(dir, "run-"+runtime+"-")
	if err != nil {
		return clusterStart{}, err
	}
	c := newChild(ctx, faultline, []string{"run", scenarioFile, "--runtime", runtime, "--out", out, "--quiet"})
	if _, err := c.run(nil); err != nil {
		return clusterStart{}, fmt.Errorf("%w (run directory %s)", err, out)
	}
	return readClusterStart(filepath.Join(out, "results.json"))
}

// readClusterStart reads the setup and warm-up phases of a results.json.
func readClusterStart(path string) (clusterStart, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return clusterStart{}, err
	}
	var res struct {
		Phases []struct {
			Name  string `json:"name"`
			Start int64  `json:"start_ns"`
			End   int64  `json:"end_ns"`
		} `json:"phases"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return clusterStart{}, fmt.Errorf("%s: %w", path, err)
	}
	var cs clusterStart
	var setupStart, warmupEnd int64
	found := 0
	for _, p := range res.Phases {
		switch p.Name {
		case "setup":
			cs.Setup, setupStart = time.Duration(p.End-p.Start), p.Start
			found++
		case "warmup":
			cs.Warmup, warmupEnd = time.Duration(p.End-p.Start), p.End
			found++
		}
	}
	if found != 2 {
		return cs, fmt.Errorf("%s: phases setup and warmup not both there (%d found)", path, found)
	}
	cs.Ready = time.Duration(warmupEnd - setupStart)
	return cs, nil
}

// cluster is the cluster-start part on one runtime: `faultline run` of the
// cluster scenario, the plan's number of times, each run's setup and
// warm-up phases read from its results.json. On Docker one run comes first
// that is not counted, so that the image (FROM scratch, the faultline
// binary) is cached, as the goal says; its time is in the note.
func (b *bencher) cluster(ctx context.Context, runtime string) ([]row, error) {
	scen := filepath.Join(b.work, "cluster-start.yaml")
	if err := os.WriteFile(scen, []byte(clusterScenario), 0o644); err != nil {
		return nil, err
	}
	dir := filepath.Join(b.work, "runs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if !b.keep {
		defer os.RemoveAll(dir)
	}
	note := ""
	if runtime == "docker" {
		t0 := time.Now()
		cs, err := runClusterStart(ctx, b.faultline, scen, runtime, dir)
		if err != nil {
			return nil, fmt.Errorf("the first docker run (building the image): %w", err)
		}
		note = fmt.Sprintf("a first run, not counted, made sure the image is built: ready in %.2f s, %.1f s in all; ", cs.Ready.Seconds(), time.Since(t0).Seconds())
	}
	var ready, setup, warm []float64
	for run := 1; run <= b.plan.ClusterRuns; run++ {
		cs, err := runClusterStart(ctx, b.faultline, scen, runtime, dir)
		if err != nil {
			return nil, err
		}
		b.record("cluster-"+runtime, map[string]any{"run": run, "setup_s": cs.Setup.Seconds(), "warmup_s": cs.Warmup.Seconds(), "ready_s": cs.Ready.Seconds()})
		b.logf("cluster %s run %d: ready in %.2f s (setup %.2f s, warm-up %.2f s)", runtime, run, cs.Ready.Seconds(), cs.Setup.Seconds(), cs.Warmup.Seconds())
		ready, setup, warm = append(ready, cs.Ready.Seconds()), append(setup, cs.Setup.Seconds()), append(warm, cs.Warmup.Seconds())
	}
	fig, goal := "local runtime, 3-node raftkv: ready", 2.0
	if runtime == "docker" {
		fig, goal = "docker runtime, 3 raftkv nodes and the proxy, image cached: ready", 5.0
	}
	return []row{{Part: runtime, Figure: fig, Unit: "s", Faultline: median(ready), Peer: ptr(goal), PeerName: fmt.Sprintf("the goal, %.0f s", goal),
		Note: note + fmt.Sprintf("setup %.2f s (nodes answer) + warm-up %.2f s (a read through every node)", median(setup), median(warm))}}, nil
}
