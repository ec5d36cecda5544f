package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/faults"
)

func newFaultsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "faults",
		Short: "List the fault catalog with each fault's parameters",
		Long: `List every fault a scenario can inject, with its parameters and defaults.

Faults go in a scenario's faults section:

  faults:
    schedule: interval      # interval | random | timeline
    start: 5s               # first fault (interval, random)
    every: 10s              # from one fault's start to the next
    for: 5s                 # how long each fault lasts
    stagger: 2s             # interval: random extra delay up to this
    mix:                    # interval: in order; random: picked by weight
      - {fault: partition-leader, mode: drop}
      - {fault: kill, target: majority, weight: 2}
    timeline:               # timeline: exactly these
      - {at: 5s, for: 5s, fault: partition-halves, mode: hold}

The same seed gives the same schedule. Every run ends with a heal (every
toxic removed, every node resumed and started), a recovery window and final
reads of every key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			for _, k := range faults.Catalog {
				fmt.Fprintf(w, "%s\t%s\n", k.Name, k.Doc)
				for _, p := range k.Params {
					def := p.Default
					if def == "" {
						def = "-"
					}
					fmt.Fprintf(w, "  %s\t(default %s) %s\n", p.Name, def, p.Doc)
				}
			}
			w.Flush()
			fmt.Fprintln(cmd.OutOrStdout(), "\nEvery fault also takes: for (its length; default the schedule's), at (timeline), weight (random).")
			fmt.Fprintln(cmd.OutOrStdout(), "Partition modes: "+strings.Join([]string{"drop", "hold", "refuse"}, ", ")+".")
			return nil
		},
	}
}
