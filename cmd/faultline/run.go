package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/scenario"
)

type runFlags struct {
	duration    time.Duration
	rate        float64
	concurrency int
	seed        int64
	runtime     string
	out         string
	baseDir     string
	quiet       bool
	nodes       []string
	cleanup     bool
	shard       string
	dryRun      bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run SCENARIO.yaml",
		Short: "Run a scenario: start the cluster, drive the load, inject faults, check the history",
		Long: `Run a scenario file end to end and judge it.

The run directory (history.jsonl, results.json, anomalies.jsonl,
report.html, junit.xml, latency.hlog, linearizability.html,
nodes/<id>.log, data/<id>/, scenario.yaml as run) goes under
RUNS/<scenario>/<UTC timestamp>/, RUNS being --runs-dir (default
faultline-runs, in the working directory), with a "latest" link beside
it, or exactly at --out. The exit code is the verdict (see faultline --help).
Once the run directory exists every exit leaves results.json, junit.xml and
report.html saying how the run ended, also an infrastructure error (70) or
an interruption (130).`,
		Example: `  faultline run examples/raft-basic.yaml
  faultline run examples/raft-basic.yaml --duration 5s --rate 200 --seed 42 --out /tmp/run1
  faultline run examples/http-external.yaml --seed 7 --shard 1/2 --out /runs/shard-1`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: yamlFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			var o scenario.Overrides
			fl := cmd.Flags()
			for _, kv := range f.nodes {
				id, addr, ok := strings.Cut(kv, "=")
				if !ok || id == "" || addr == "" {
					return exitcode.New(exitcode.Usage, fmt.Errorf("--node %q: write ID=HOST:PORT", kv))
				}
				if o.Nodes == nil {
					o.Nodes = map[string]string{}
				}
				o.Nodes[id] = addr
			}
			if fl.Changed("duration") {
				d := scenario.Duration(f.duration)
				o.Duration = &d
			}
			if fl.Changed("rate") {
				o.Rate = &f.rate
			}
			if fl.Changed("concurrency") {
				o.Concurrency = &f.concurrency
			}
			if fl.Changed("seed") {
				o.Seed = &f.seed
			}
			if fl.Changed("runtime") {
				o.Runtime = &f.runtime
			}
			s, err := scenario.LoadWith(args[0], o)
			if err != nil {
				return exitcode.New(exitcode.Usage, err)
			}
			opt := scenario.RunOptions{Out: f.out, BaseDir: f.baseDir, StepSummary: os.Getenv("GITHUB_STEP_SUMMARY"), Cleanup: f.cleanup}
			if fl.Changed("shard") {
				sh, err := scenario.ParseShard(f.shard)
				if err != nil {
					return exitcode.New(exitcode.Usage, err)
				}
				opt.Shard = &sh
			}
			if f.dryRun {
				if err := scenario.DryRun(s, opt.Shard, cmd.OutOrStdout()); err != nil {
					return exitcode.New(exitcode.Usage, err)
				}
				return nil
			}
			if !f.quiet {
				w := reports.Unwrap(cmd.ErrOrStderr()) // the console escapes what it logs
				tty := false
				if f, ok := w.(*os.File); ok {
					tty = isTerminal(f) && os.Getenv("CI") == "" && os.Getenv("TERM") != "dumb"
				}
				con := reports.NewConsole(w, tty)
				defer con.Done()
				opt.Log, opt.Progress = con, con.Progress
			}
			res, err := scenario.Run(cmd.Context(), s, opt)
			if err != nil {
				if res != nil {
					// The run stopped (exit 70, 130) after its run
					// directory existed: its results say how.
					reports.Summary(cmd.OutOrStdout(), res)
				}
				return err
			}
			reports.Summary(cmd.OutOrStdout(), res)
			if res.ExitCode != 0 {
				return &exitcode.Error{Code: res.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", 0, "length of the main phase (overrides the scenario), e.g. 30s")
	fl.Float64Var(&f.rate, "rate", 0, "total target ops/s in open loop; 0 = closed loop (overrides the scenario)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "workers (closed loop) or max in-flight ops (open loop)")
	fl.Int64Var(&f.seed, "seed", 0, "seed for every random choice (recorded in the results; replays the op mix and fault schedule)")
	fl.StringVar(&f.runtime, "runtime", "", "where nodes run: local, docker or external")
	fl.StringVar(&f.out, "out", "", "write the run directory exactly here (must be new or empty)")
	fl.StringVar(&f.baseDir, "runs-dir", "faultline-runs", "parent of run directories when --out is not given")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the final summary")
	fl.StringArrayVar(&f.nodes, "node", nil, "an external cluster's node address, ID=HOST:PORT (repeatable; overrides cluster.nodes[].client)")
	fl.BoolVar(&f.cleanup, "cleanup", false, "delete the run's keys (under its key prefix) from the cluster at the end")
	fl.StringVar(&f.shard, "shard", "", "run shard I of N generators (I/N, I from 0) against one external cluster: its own keys, 1/N of the load, the client-link faults on its own proxies (process faults and hooks from shard 0); every shard needs the same scenario and --seed; merge with faultline check DIR...")
	fl.BoolVar(&f.dryRun, "dry-run", false, "check the scenario (and --shard) and print what the run would do, without starting anything")
	cmd.RegisterFlagCompletionFunc("runtime", cobra.FixedCompletions([]string{"local", "docker", "external"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func yamlFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}
