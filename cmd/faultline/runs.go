package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
)

func newRunsCmd() *cobra.Command {
	var noIndex bool
	cmd := &cobra.Command{
		Use:   "runs [DIR]",
		Short: "List earlier runs, newest first, and write an index.html linking their reports",
		Long: `List the runs under DIR (default faultline-runs, where faultline run writes
without --out; give the --runs-dir a run used, a CI job's artifacts, or any
directory of run directories), newest first: when each started, its
scenario, seed, verdict, exit code and op count, from its results.json.
A run that did not finish says so: "interrupted" (exit 130) or "stopped"
with where and why, as its results.json records; "running" when it has
none yet and a faultline process holds its run directory's lock; "no
results" when it has none and nothing holds the lock (it was killed before
it could write one); "unreadable" when it cannot be read. Directories that
are not runs are left out and counted; "latest" links and hidden
directories are not followed.

It writes DIR/index.html (--no-index: not), one self-contained page with a
link to each run's report.html relative to DIR, so the directory can be
browsed where it is, copied, or served. The terminal output is plain text.

Exit codes: 0 listed, 64 DIR is not a directory, 70 index.html could not be
written.`,
		Example: `  faultline runs
  faultline runs /tmp/ci-artifacts && xdg-open /tmp/ci-artifacts/index.html`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := "faultline-runs"
			if len(args) == 1 {
				root = args[0]
			}
			l, err := reports.ListRuns(root)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return exitcode.New(exitcode.Usage, fmt.Errorf("runs: %s does not exist: give the directory runs were written under (faultline run --runs-dir, default faultline-runs)", root))
				}
				return exitcode.New(exitcode.Usage, fmt.Errorf("runs: %w", err))
			}
			out := cmd.OutOrStdout()
			if err := reports.WriteRunsTable(out, l); err != nil {
				return exitcode.New(exitcode.Internal, err)
			}
			if noIndex {
				return nil
			}
			p, err := reports.WriteRunsIndex(l)
			if err != nil {
				return exitcode.New(exitcode.Internal, fmt.Errorf("runs: writing the index: %w", err))
			}
			fmt.Fprintf(out, "index: %s\n", p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noIndex, "no-index", false, "list only; do not write DIR/index.html")
	return cmd
}
