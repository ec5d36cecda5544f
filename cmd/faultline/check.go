package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/scenario"
)

func newCheckCmd() *cobra.Command {
	var budget time.Duration
	var noArtifacts bool
	cmd := &cobra.Command{
		Use:   "check RUN_DIR|history.jsonl",
		Short: "Re-run the checkers on a saved run directory or history file",
		Long: `Re-judge a saved history without the cluster. A run directory is checked
with the checker settings of the scenario saved in it; a bare history file
(faultline's or another tool's JSON Lines history) with the default checkers.
The exit code is the verdict (see faultline --help).`,
		Example: `  faultline check faultline-runs/raft-basic/latest
  faultline check history.jsonl --budget 5m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := scenario.Check(cmd.Context(), args[0], scenario.CheckOptions{Budget: budget, NoArtifacts: noArtifacts})
			if err != nil {
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
	return cmd
}
