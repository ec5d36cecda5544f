package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/scenario"
)

func newCheckCmd() *cobra.Command {
	var budget time.Duration
	var noArtifacts bool
	var names []string
	var out string
	var format string
	cmd := &cobra.Command{
		Use:   "check RUN_DIR|history.jsonl|SHARD_DIR...",
		Short: "Re-run the checkers on a saved run directory or history file",
		Long: `Re-judge a saved history without the cluster. A run directory is checked
with the checker settings of the scenario saved in it, and keeps what its
results.json says of the run (the workload's figures, its phases, and for a
run that did not finish, where and why it stopped: its exit code stands
unless a violation is found); a bare history file (faultline's or another
tool's JSON Lines history, or Jepsen's history.edn of the register
workload: --format, detected when not given) is checked with the default
checkers.
--checkers chooses the checkers by name (` + strings.Join(checkers.Names(), ", ") + `).

Evidence names history lines as FILE:LINE. Check rewrites nothing but
linearizability.html (--no-artifacts: not even that); --out DIR saves the
re-judgement there: results.json, anomalies.jsonl (every anomaly),
report.html, junit.xml and linearizability.html.
The exit code is the verdict (see faultline --help).

Several directories are the shards of one run (faultline run --shard I/N):
they are merged and judged as one run, into --out DIR (default a new
directory under faultline-runs/<scenario>/; nothing is written into the
shards' directories). Shards of different scenarios, seeds or shard
counts, or a shard missing or given twice, are refused (exit 64).
Checkers that judge each key on its own judge the union; the others
(split-brain, convergence, ...) judge each shard's history and say so.
Evidence names each shard's history (DIR/history.jsonl:LINE).`,
		Example: `  faultline check faultline-runs/raft-basic/latest
  faultline check history.jsonl --budget 5m
  faultline check other-tool.jsonl --checkers linearizability --out /tmp/judged
  faultline check store/etcd/latest/history.edn --format edn
  faultline check /runs/shard-0 /runs/shard-1 --out /runs/merged`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hf, err := history.ParseFormat(format)
			if err != nil {
				return exitcode.New(exitcode.Usage, err)
			}
			res, err := scenario.CheckRuns(cmd.Context(), args, scenario.CheckOptions{Budget: budget, NoArtifacts: noArtifacts, Checkers: names, Out: out, Format: hf})
			if err != nil {
				if res != nil {
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
	cmd.Flags().DurationVar(&budget, "budget", 0, "time budget of the linearizability checker (running out gives unknown, exit 2)")
	cmd.Flags().BoolVar(&noArtifacts, "no-artifacts", false, "do not (re)write linearizability.html")
	cmd.Flags().StringSliceVar(&names, "checkers", nil, "the checkers to run, by name, comma-separated (default: the scenario's, or for a bare history "+strings.Join(scenario.BareHistoryCheckers(), ", ")+")")
	cmd.Flags().StringVar(&format, "format", "", "how the history file is written: jsonl (faultline's), edn (Jepsen's history.edn of the register workload) or auto (default: detected from its first characters, then its name)")
	cmd.Flags().StringVar(&out, "out", "", "save the re-judgement in this directory: results.json, anomalies.jsonl, report.html, junit.xml, linearizability.html")
	return cmd
}
