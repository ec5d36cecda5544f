package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// checkRun is one check of one history file, as results.json keeps it.
type checkRun struct {
	Tool     string  `json:"tool"`
	Ops      int     `json:"ops"`
	Run      int     `json:"run"`
	WallS    float64 `json:"wall_s"`
	CPUs     float64 `json:"cpu_s"`
	MaxRSSMB float64 `json:"max_rss_mb"`
	Verdict  string  `json:"verdict"`
}

// checker is the checker comparison: for each of the plan's sizes, a
// generated KV history over 1,000 keys with info ops is taken from its
// file to a verdict by `faultline check --checkers linearizability` and
// by `bench porcupine` (Porcupine called directly), the two taking turns;
// each is a process of its own, whose wall time and peak memory are
// measured. Both must find the history linearizable (it is, by
// construction).
func (b *bencher) checker(ctx context.Context) ([]row, error) {
	var rows []row
	for _, n := range b.plan.CheckSizes {
		path := filepath.Join(b.work, fmt.Sprintf("kv-%d.jsonl", n))
		st, err := genHistoryFile(path, genConfig{Ops: n, Keys: 1000, Workers: 32, Seed: 1, InfoProb: 0.01, FailProb: 0.01})
		if err != nil {
			return rows, err
		}
		b.logf("checker: generated %s: %d ops (%d info, %d fail, %d cas mismatches)", path, st.Ops, st.Info, st.Fail, st.Mismatch)
		runs := map[string][]checkRun{}
		for run := 1; run <= b.plan.CheckRuns; run++ {
			order := []string{"faultline", "porcupine"}
			if run%2 == 0 {
				order = []string{"porcupine", "faultline"}
			}
			for _, tool := range order {
				cr, err := b.checkOnce(ctx, tool, path, n, run)
				if err != nil {
					return rows, err
				}
				b.logf("checker %d ops run %d %s: %.2f s, %.0f MB, %s", n, run, tool, cr.WallS, cr.MaxRSSMB, cr.Verdict)
				runs[tool] = append(runs[tool], cr)
			}
		}
		if !b.keep {
			os.Remove(path)
		}
		get := func(tool string, f func(checkRun) float64) float64 { return medianOf(runs[tool], f) }
		wall := func(r checkRun) float64 { return r.WallS }
		mem := func(r checkRun) float64 { return r.MaxRSSMB }
		cpu := func(r checkRun) float64 { return r.CPUs }
		name := fmt.Sprintf("check %s ops, 1k keys", formatNum(float64(n)))
		rows = append(rows,
			row{Part: "checker", Figure: name + ": wall time", Unit: "s", Faultline: get("faultline", wall), Peer: ptr(get("porcupine", wall)), PeerName: "Porcupine directly",
				Note: fmt.Sprintf("%d info, %d failed ops; CPU s: faultline %.1f, Porcupine %.1f", st.Info, st.Fail, get("faultline", cpu), get("porcupine", cpu))},
			row{Part: "checker", Figure: name + ": peak memory", Unit: "MB", Faultline: get("faultline", mem), Peer: ptr(get("porcupine", mem)), PeerName: "Porcupine directly"},
		)
	}
	return rows, nil
}

// checkOnce checks path with one tool and requires the verdict valid.
func (b *bencher) checkOnce(ctx context.Context, tool, path string, n, run int) (checkRun, error) {
	cr := checkRun{Tool: tool, Ops: n, Run: run}
	var c *child
	var k cost
	var err error
	switch tool {
	case "faultline":
		// The budget as the raw program's timeout: the default 60 s would
		// turn a slow check into "unknown" rather than a time.
		c = newChild(ctx, b.faultline, []string{"check", path, "--checkers", "linearizability", "--budget", "10m"})
		k, err = c.run(nil, 1, 2)
		if err == nil {
			cr.Verdict = map[int]string{0: "valid", 1: "invalid", 2: "unknown"}[k.Exit]
		}
	case "porcupine":
		var rep porcupineReport
		c = newChild(ctx, b.self, []string{"porcupine", path})
		k, err = c.run(&rep)
		if err == nil {
			cr.Verdict = map[string]string{"ok": "valid", "illegal": "invalid"}[rep.Verdict]
			if cr.Verdict == "" {
				cr.Verdict = rep.Verdict
			}
		}
	}
	if err != nil {
		return cr, err
	}
	cr.WallS, cr.CPUs, cr.MaxRSSMB = k.Wall.Seconds(), k.CPU.Seconds(), float64(k.MaxRSS)/1e6
	b.record("checker", cr)
	if cr.Verdict != "valid" {
		return cr, fmt.Errorf("%s judged %s (linearizable by construction) %s: %s", tool, path, cr.Verdict, tail(strings.TrimSpace(c.stdout.String()), 600))
	}
	return cr, nil
}
