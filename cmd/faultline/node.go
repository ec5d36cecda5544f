package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/targets"
)

func newNodeCmd() *cobra.Command {
	var flags targets.NodeFlags
	cmd := &cobra.Command{
		Use:   "node --system NAME --id ID --listen ADDR --admin ADDR --data DIR [flags]",
		Short: "Run one node of a reference system (runtimes start these for you)",
		Long: `Run one node of a reference system in the foreground until SIGTERM/SIGINT.
Runtimes start nodes this way; run it by hand to poke at a system.

Systems:
` + systemList(),
		Example: `  faultline node --system raftkv --id n1 --listen 127.0.0.1:7001 --admin 127.0.0.1:7101 \
      --peer-listen 127.0.0.1:7201 --peer n2=127.0.0.1:7202 --peer n3=127.0.0.1:7203 --data /tmp/n1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := flags.Config()
			if err != nil {
				return exitcode.New(exitcode.Usage, err)
			}
			sys, err := targets.LookupSystem(cfg.System)
			if err != nil {
				return exitcode.New(exitcode.Usage, err)
			}
			// A bad role, bug switch or option is bad usage (64); a node
			// that cannot start or fails is an infrastructure error (70).
			if err := sys.CheckNodeConfig(cfg); err != nil {
				return exitcode.New(exitcode.Usage, fmt.Errorf("node %s: %w", cfg.ID, err))
			}
			if err := targets.RunNode(cmd.Context(), cfg); err != nil {
				return exitcode.New(exitcode.Internal, fmt.Errorf("node %s: %w", cfg.ID, err))
			}
			return nil
		},
	}
	flags.Register(cmd.Flags())
	cmd.RegisterFlagCompletionFunc("system", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var names []string
		for _, s := range targets.Systems() {
			names = append(names, s.Name+"\t"+s.Description)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// systemList describes every registered system for the help text: its
// roles (with their default node counts), bug switches and options.
func systemList() string {
	var b strings.Builder
	for _, s := range targets.Systems() {
		fmt.Fprintf(&b, "  %s: %s\n", s.Name, s.Description)
		for _, r := range s.Roles {
			fmt.Fprintf(&b, "      --role %s (%d by default)", r.Name, r.Nodes)
			if r.Doc != "" {
				fmt.Fprintf(&b, ": %s", r.Doc)
			}
			b.WriteString("\n")
		}
		for _, bug := range s.BugNames() {
			fmt.Fprintf(&b, "      --bug %s: %s\n", bug, s.Bugs[bug])
		}
		for _, o := range s.Options {
			fmt.Fprintf(&b, "      --opt %s=%s: %s\n", o.Name, o.Default, o.Doc)
		}
	}
	return b.String()
}
