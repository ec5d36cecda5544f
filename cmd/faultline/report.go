package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
)

func newReportCmd() *cobra.Command {
	var noSummary bool
	cmd := &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Rebuild report.html, junit.xml (and the GitHub step summary) from a saved run",
		Long: `Rebuild the reports of a run directory from what the run left there
(results.json, history.jsonl, latency.hlog, nodes/*.log), without the
cluster: report.html (one self-contained page), junit.xml, and, when
GITHUB_STEP_SUMMARY is set, the Markdown step summary appended to it.
The verdicts are results.json's; to re-judge the history use faultline check.

Exit codes: 0 written, 64 RUN_DIR is not a run directory, 70 a report could
not be written.`,
		Example: `  faultline report faultline-runs/raft-basic/latest
  faultline report /tmp/run1 && xdg-open /tmp/run1/report.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			opt := reports.BuildOptions{}
			if !noSummary {
				opt.StepSummary = os.Getenv("GITHUB_STEP_SUMMARY")
			}
			if err := reports.Build(dir, opt); err != nil {
				if errors.Is(err, reports.ErrNotRunDir) {
					return exitcode.New(exitcode.Usage, err)
				}
				return exitcode.New(exitcode.Internal, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "report: %s\n", filepath.Join(dir, "report.html"))
			fmt.Fprintf(out, "junit:  %s\n", filepath.Join(dir, "junit.xml"))
			if opt.StepSummary != "" {
				fmt.Fprintf(out, "step summary appended to %s\n", opt.StepSummary)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noSummary, "no-step-summary", false, "do not append to $GITHUB_STEP_SUMMARY even when it is set")
	return cmd
}
