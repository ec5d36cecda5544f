package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/targets"
)

func newNodeCmd() *cobra.Command {
	var cfg targets.NodeConfig
	var peers, opts []string
	cmd := &cobra.Command{
		Use:   "node --system NAME --id ID --listen ADDR --admin ADDR [flags]",
		Short: "Run one node of a reference system (runtimes start these for you)",
		Long: `Run one node of a reference system in the foreground until SIGTERM/SIGINT.
Runtimes start nodes this way; run it by hand to poke at a system.

Systems:
` + systemList(),
		Example: `  faultline node --system raftkv --id n1 --listen 127.0.0.1:7001 --admin 127.0.0.1:7101 \
      --peer-listen 127.0.0.1:7201 --peer n2=127.0.0.1:7202 --peer n3=127.0.0.1:7203 --data /tmp/n1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Peers, err = parseKV(peers, "--peer", "ID=HOST:PORT"); err != nil {
				return err
			}
			if cfg.Opts, err = parseKV(opts, "--opt", "KEY=VALUE"); err != nil {
				return err
			}
			for flag, v := range map[string]string{"--system": cfg.System, "--id": cfg.ID, "--listen": cfg.Listen, "--admin": cfg.Admin, "--data": cfg.DataDir} {
				if v == "" {
					return exitcode.Usagef("node: %s is required", flag)
				}
			}
			if _, err := targets.LookupSystem(cfg.System); err != nil {
				return exitcode.New(exitcode.Usage, err)
			}
			if err := targets.RunNode(cmd.Context(), cfg); err != nil {
				return exitcode.New(exitcode.Internal, fmt.Errorf("node %s: %w", cfg.ID, err))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.System, "system", "", "reference system to run")
	fl.StringVar(&cfg.ID, "id", "", "this node's id")
	fl.StringVar(&cfg.Listen, "listen", "", "client API listen address (HTTP)")
	fl.StringVar(&cfg.Admin, "admin", "", "admin API listen address (HTTP; faults never cut it)")
	fl.StringVar(&cfg.PeerListen, "peer-listen", "", "replication listen address")
	fl.StringArrayVar(&peers, "peer", nil, "a peer as ID=HOST:PORT, the address this node dials to reach it (repeatable)")
	fl.StringVar(&cfg.DataDir, "data", "", "data directory (survives restarts)")
	fl.StringArrayVar(&cfg.Bugs, "bug", nil, "bug switch that breaks one guarantee on purpose (repeatable)")
	fl.StringArrayVar(&opts, "opt", nil, "system tunable as KEY=VALUE (repeatable)")
	cmd.RegisterFlagCompletionFunc("system", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var names []string
		for _, s := range targets.Systems() {
			names = append(names, s.Name+"\t"+s.Description)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	_ = os.Stderr
	return cmd
}

func parseKV(items []string, flag, form string) (map[string]string, error) {
	m := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" || v == "" {
			return nil, exitcode.Usagef("%s %q: want %s", flag, it, form)
		}
		if _, dup := m[k]; dup {
			return nil, exitcode.Usagef("%s %s given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

func systemList() string {
	var b strings.Builder
	for _, s := range targets.Systems() {
		fmt.Fprintf(&b, "  %-16s %s\n", s.Name, s.Description)
		for bug, what := range s.Bugs {
			fmt.Fprintf(&b, "  %-16s   --bug %s: %s\n", "", bug, what)
		}
	}
	return b.String()
}
