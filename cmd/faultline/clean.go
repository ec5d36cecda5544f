package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/targets/docker"
)

func newCleanCmd() *cobra.Command {
	var opts docker.CleanOptions
	cmd := &cobra.Command{
		Use:   "clean [--run RUN_ID] [--force]",
		Short: "Remove the Docker containers, networks and volumes that killed faultline runs left behind",
		Long: `Remove every Docker container, network and volume labelled
faultline.run=RUN_ID (--run; results.json names it as run_id), or made by
any faultline run (no --run), whose faultline process is no longer alive.
Their labels record which process made them (host, boot id, pid and the
process's start time, so a pid reused by another process is not taken for
it). A run still going is left alone, and so is a run whose process this
machine cannot see (another host or container, or resources made by an older
faultline without those labels): --force removes those too.

A run removes its own at the end, also when it fails or is interrupted; this
is for runs that were killed (SIGKILL, a crash) before they could. Node
images (faultline:HASH) are kept: they are a cache. Exit 64 for --run "",
70 if Docker is unreachable or something could not be removed.`,
		Example: `  faultline clean
  faultline clean --run raft-basic-20260101t120000z-a1b2c3
  faultline clean --run raft-basic-20260101t120000z-a1b2c3 --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("run") && opts.Run == "" {
				return exitcode.New(exitcode.Usage, errors.New(`clean: --run "" names no run: give a run id (results.json's run_id), or leave --run out to clean every run whose faultline is gone`))
			}
			rep, err := docker.Clean(cmd.Context(), opts)
			out := cmd.OutOrStdout()
			for _, r := range rep.Removed {
				fmt.Fprintln(out, "removed", r)
			}
			for _, k := range rep.Kept {
				fmt.Fprintf(out, "kept run %s: %s (--force removes it anyway)\n", k.Run, k.Why)
			}
			if err != nil {
				return exitcode.New(exitcode.Internal, err)
			}
			if len(rep.Removed) == 0 && len(rep.Kept) == 0 {
				fmt.Fprintln(out, "nothing of faultline's to remove")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Run, "run", "", "clean only this run (run_id in results.json; faultline-RUN_ID-... in container names)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "also remove runs whose faultline is still running, or cannot be told dead")
	return cmd
}
