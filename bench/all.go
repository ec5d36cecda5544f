package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// plan is what `bench all` runs: the full comparison, or --quick's short
// phases that prove each part works in a few minutes.
type plan struct {
	Quick bool `json:"quick"`

	// HTTP load against vegeta.
	HTTPRuns    int           `json:"http_runs"`       // per tool and rate, interleaved
	HTTPPhase   time.Duration `json:"http_phase_ns"`   // each run's length
	HTTPRates   []float64     `json:"http_rates"`      // rising; stop after the first that either tool misses by more than 5%
	ServiceTime time.Duration `json:"service_time_ns"` // the server's, per request
	Concurrency int           `json:"concurrency"`     // faultline's workers (vegeta grows its own)
	StallRuns   int           `json:"stall_runs"`
	StallConc   int           `json:"stall_concurrency"` // faultline's workers, and the capped vegeta's -max-workers
	StallPhase  time.Duration `json:"stall_phase_ns"`
	StallRate   float64       `json:"stall_rate"`
	Stall       time.Duration `json:"stall_ns"` // the server is stopped this long in the middle of the run
	PacerRuns   int           `json:"pacer_runs"`
	PacerPhase  time.Duration `json:"pacer_phase_ns"`
	PacerRates  []float64     `json:"pacer_rates"`
	MaxRuns     int           `json:"max_runs"` // the no-op HTTP server: closed loops
	MaxPhase    time.Duration `json:"max_phase_ns"`
	CheckRuns   int           `json:"check_runs"`
	CheckSizes  []int         `json:"check_sizes"` // ops per generated history (1k keys)
	ClusterRuns int           `json:"cluster_runs"`
}

func fullPlan() plan {
	return plan{
		HTTPRuns: 3, HTTPPhase: 5 * time.Second,
		HTTPRates:   []float64{1e3, 2e3, 5e3, 10e3, 20e3, 50e3, 100e3, 200e3},
		ServiceTime: time.Millisecond, Concurrency: 200,
		StallRuns: 3, StallConc: 16, StallPhase: 6 * time.Second, StallRate: 1000, Stall: time.Second,
		PacerRuns: 3, PacerPhase: 2 * time.Second, PacerRates: []float64{1e3, 10e3, 50e3, 200e3, 1e6},
		MaxRuns: 3, MaxPhase: 2 * time.Second,
		CheckRuns: 3, CheckSizes: []int{100_000, 1_000_000},
		ClusterRuns: 3,
	}
}

func quickPlan() plan {
	p := fullPlan()
	p.Quick = true
	p.HTTPPhase = time.Second
	p.StallRuns, p.StallPhase = 1, 4*time.Second
	p.PacerRuns, p.PacerPhase = 1, time.Second
	p.MaxPhase = time.Second
	p.CheckRuns, p.CheckSizes = 1, []int{20_000, 100_000}
	p.ClusterRuns = 1
	return p
}

// parts are the comparisons, in the order they run.
var parts = []string{"http", "stall", "pacer", "checker", "cluster", "docker"}

// bencher runs the parts and keeps every run's figures.
type bencher struct {
	plan      plan
	self      string // this program, for its children
	faultline string // the faultline binary
	work      string // scratch files
	keep      bool   // keep the load runs' output files
	runs      map[string][]any
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// record keeps one run's figures for results.json.
func (b *bencher) record(part string, v any) {
	b.runs[part] = append(b.runs[part], v)
}

// cmdAll is `bench all`: every comparison, then the table on stdout (and
// with --out, table.md and results.json with every run's figures there).
func cmdAll(args []string) error {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short phases and fewer runs: proves each part works in a few minutes; not figures to quote")
	only := fs.String("only", strings.Join(parts, ","), "the parts to run, comma-separated: "+strings.Join(parts, ", "))
	faultline := fs.String("faultline", "", "the faultline binary (static, CGO_ENABLED=0: the docker part builds its image from it); needed by checker, cluster and docker")
	work := fs.String("work", "", "directory for scratch files (default: a new one under the system's temp directory, removed at the end)")
	out := fs.String("out", "", "also write table.md and results.json into this directory")
	keep := fs.Bool("keep", false, "keep the scratch files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	var want []string
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(parts, s) {
			return fmt.Errorf("--only: unknown part %q (the parts: %s)", s, strings.Join(parts, ", "))
		}
		want = append(want, s)
	}
	needsFaultline := slices.ContainsFunc(want, func(s string) bool { return s == "checker" || s == "cluster" || s == "docker" })
	if needsFaultline && *faultline == "" {
		return errors.New("--faultline is required for the checker, cluster and docker parts: build one with CGO_ENABLED=0 go build -o /tmp/faultline ./cmd/faultline (bench/run does)")
	}
	if *faultline != "" {
		abs, err := filepath.Abs(*faultline)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("--faultline: %w", err)
		}
		*faultline = abs
	}
	self, err := selfPath()
	if err != nil {
		return err
	}
	dir := *work
	if dir == "" {
		if dir, err = os.MkdirTemp("", "faultline-bench-"); err != nil {
			return err
		}
		if !*keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bencher{plan: p, self: self, faultline: *faultline, work: dir, keep: *keep, runs: map[string][]any{}}
	started := time.Now()
	machine := describeMachine()
	b.logf("%s; work directory %s", machine, dir)
	var rows []row
	var failed []string
	for _, part := range want {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		b.logf("part %s: start", part)
		var rs []row
		var err error
		switch part {
		case "http":
			rs, err = b.httpRates(ctx)
		case "stall":
			rs, err = b.httpStall(ctx)
		case "pacer":
			rs, err = b.pacer(ctx)
		case "checker":
			rs, err = b.checker(ctx)
		case "cluster":
			rs, err = b.cluster(ctx, "local")
		case "docker":
			rs, err = b.cluster(ctx, "docker")
		}
		rows = append(rows, rs...)
		if err != nil {
			failed = append(failed, part)
			b.logf("part %s FAILED after %s: %v", part, time.Since(t0).Round(time.Second), err)
			rows = append(rows, row{Part: part, Figure: part + ": FAILED", Faultline: math.NaN(), Note: tail(err.Error(), 300)})
			continue
		}
		b.logf("part %s: done in %s", part, time.Since(t0).Round(time.Second))
	}
	elapsed := time.Since(started).Round(time.Second)
	mode := "full"
	if p.Quick {
		mode = "quick (short phases: proves the harness, not figures to quote)"
	}
	header := fmt.Sprintf("faultline bench, %s run of %s, %s; took %s; load average at the end %s\n\n",
		mode, started.UTC().Format("2006-01-02 15:04 UTC"), machine, elapsed, loadAvg())
	fmt.Print(header)
	writeTable(os.Stdout, rows)
	if *out != "" {
		if err := b.writeOut(*out, header, rows); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if len(failed) > 0 {
		return fmt.Errorf("parts that failed: %s (see above)", strings.Join(failed, ", "))
	}
	return nil
}

// writeOut writes table.md and results.json (the plan, the rows, every
// run's figures) into dir.
func (b *bencher) writeOut(dir, header string, rows []row) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "table.md"))
	if err != nil {
		return err
	}
	f.WriteString(header)
	writeTable(f, rows)
	if err := f.Close(); err != nil {
		return err
	}
	// JSON has no NaN: a figure that could not be measured is null.
	type jsonRow struct {
		row
		Faultline *float64 `json:"faultline"`
		Ratio     *float64 `json:"ratio,omitempty"`
	}
	var jr []jsonRow
	for _, r := range rows {
		j := jsonRow{row: r}
		if !math.IsNaN(r.Faultline) {
			j.Faultline = ptr(r.Faultline)
		}
		if q := r.ratio(); !math.IsNaN(q) && !math.IsInf(q, 0) {
			j.Ratio = ptr(q)
		}
		jr = append(jr, j)
	}
	data, err := json.MarshalIndent(map[string]any{"header": strings.TrimSpace(header), "plan": b.plan, "rows": jr, "runs": b.runs}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644)
}

// describeMachine names the CPU, the cores Go may use and the memory.
func describeMachine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%s, %d cores%s, %s/%s, load average at the start %s", cpu, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, loadAvg())
}

// loadAvg is the 1-minute load average, or "?" where it cannot be read.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
