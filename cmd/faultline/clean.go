package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/targets/docker"
)

func newCleanCmd() *cobra.Command {
	var runID string
	cmd := &cobra.Command{
		Use:   "clean [--run RUN_ID]",
		Short: "Remove the Docker containers, networks and volumes that faultline runs left behind",
		Long: `Remove every Docker container, network and volume labelled
faultline.run=RUN_ID (--run; results.json names it as run_id), or made by
any faultline run (no --run). A run removes its own at
the end, also when it fails or is interrupted; this is for runs that were
killed (SIGKILL, a crash) before they could. Node images (faultline:HASH)
are kept: they are a cache. Exit 70 if Docker is unreachable or something
could not be removed.`,
		Example: `  faultline clean
  faultline clean --run raft-basic-20260101t120000z-a1b2c3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := docker.Clean(cmd.Context(), runID)
			out := cmd.OutOrStdout()
			for _, r := range removed {
				fmt.Fprintln(out, "removed", r)
			}
			if err != nil {
				return exitcode.New(exitcode.Internal, err)
			}
			if len(removed) == 0 {
				fmt.Fprintln(out, "nothing of faultline's to remove")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&runID, "run", "", "remove only this run's containers, networks and volumes (run_id in results.json; faultline-RUN_ID-... in their names)")
	return cmd
}
