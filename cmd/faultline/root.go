package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/version"
	"github.com/faultline/faultline/targets/docker"
	"github.com/faultline/faultline/targets/local"
	// Systems, client adapters and runtimes register themselves with
	// targets; the program links the ones it offers.
	_ "github.com/faultline/faultline/targets/etcdkv"
	_ "github.com/faultline/faultline/targets/external"
	_ "github.com/faultline/faultline/targets/httpkv"
	_ "github.com/faultline/faultline/targets/httpsvc"
	_ "github.com/faultline/faultline/targets/lwwkv"
	_ "github.com/faultline/faultline/targets/pbkv"
	_ "github.com/faultline/faultline/targets/raftkv"
	_ "github.com/faultline/faultline/targets/rediskv"
	_ "github.com/faultline/faultline/targets/retrysvc"
)

// killChildren is the last resort of a second Ctrl-C or a panic: every
// node process and container this process started goes.
func killChildren() {
	local.KillAll(2 * time.Second)
	docker.RemoveAll(5 * time.Second)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "faultline",
		Short: "Chaos testing and load generation with Jepsen-style history checking",
		Long: wrapText("faultline starts a cluster (its own reference systems or any binary, as local "+
			"processes or in Docker, or a cluster you already run), drives a concurrent "+
			"workload at it (register operations over keys, or HTTP requests), injects "+
			"faults (faultline faults lists them), records every operation into a "+
			"history, and checks it with this build's checkers ("+strings.Join(checkers.Names(), ", ")+
			") and the scenario's latency, rate and error-rate thresholds.", 76) + `

Exit codes: 0 valid, 1 violation found, 2 unknown (inconclusive),
3 performance threshold not met, 4 the run itself was invalid,
64 bad usage or scenario, 70 internal or infrastructure error,
130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetVersionTemplate("faultline {{.Version}}\n")
	root.AddCommand(newRunCmd(), newCheckCmd(), newReportCmd(), newRunsCmd(), newNodeCmd(), newProxyCmd(), newFaultsCmd(), newCleanCmd(), newVersionCmd())
	return root
}

// wrapText breaks s into lines of at most width runes at spaces (a word
// longer than width gets a line of its own).
func wrapText(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len([]rune(w)) > width {
			b.WriteByte('\n')
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len([]rune(w))
	}
	return b.String()
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print faultline's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "faultline %s\n", version.String())
			return nil
		},
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
