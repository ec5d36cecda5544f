package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/targets"
)

func newFaultsCmd() *cobra.Command {
	var system, runtime, peers, client string
	cmd := &cobra.Command{
		Use:   "faults [--system NAME --runtime NAME]",
		Short: "List the fault catalog with each fault's parameters, and what is available where",
		Long: `List every fault a scenario can inject, with its parameters and defaults.
With --system and --runtime, also say whether each fault can be injected
into that system on that runtime, and if not, why (a scenario asking for it
is refused before anything starts).

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
      - {fault: pause, target: role:backend}
    timeline:               # timeline: exactly these
      - {at: 5s, for: 5s, fault: partition-halves, mode: hold}

The same seed gives the same schedule. Every run ends with a heal (every
toxic removed, every node resumed and started), a recovery window and final
reads of every key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var env *faults.Env
			if system != "" || runtime != "" {
				e, err := faultsEnv(system, runtime, targets.Peering(peers), client)
				if err != nil {
					return err
				}
				env = &e
			}
			printCatalog(cmd.OutOrStdout(), env)
			return nil
		},
	}
	cmd.Flags().StringVar(&system, "system", "", "say which faults are available for this system (with its default node counts); process: a process target of 3 nodes")
	cmd.Flags().StringVar(&peers, "peers", string(targets.PeersNames), "with --system process: how its nodes reach their peers (none, dial, names)")
	cmd.Flags().StringVar(&client, "client", "etcd", "with --system process: its client adapter (it reads the nodes' status)")
	cmd.Flags().StringVar(&runtime, "runtime", "", "say which faults are available on this runtime (default local when --system is given)")
	return cmd
}

// faultsEnv is the Env of a system's default cluster on a runtime (see
// faults.EnvFor); either may be "" (no system; runtime local).
func faultsEnv(system, runtime string, peers targets.Peering, client string) (faults.Env, error) {
	if runtime == "" {
		runtime = "local"
	}
	rt, err := targets.NewRuntime(runtime)
	if err != nil {
		return faults.Env{}, err
	}
	var sys *targets.System
	switch system {
	case "":
	case targets.ProcessSystem:
		if sys, err = targets.SampleProcessSystem(peers, client); err != nil {
			return faults.Env{}, err
		}
	default:
		if sys, err = targets.LookupSystem(system); err != nil {
			return faults.Env{}, err
		}
	}
	return faults.EnvFor(sys, rt.Name(), rt.Capabilities()), nil
}

// printCatalog writes the catalog as plain text; with env, each fault's
// availability there.
func printCatalog(out io.Writer, env *faults.Env) {
	if env != nil {
		sys := "no system (faults that need one are unavailable; give --system)"
		if env.System != nil {
			sys = fmt.Sprintf("system %s with its default %d nodes (%s)", env.System.Name, len(env.Nodes), strings.Join(roleCounts(env.Nodes), ", "))
		}
		caps := []string{"links: " + env.Caps.Links.String()}
		if env.Caps.Process {
			caps = append(caps, "kill and start")
		}
		if env.Caps.Pause {
			caps = append(caps, "pause")
		}
		fmt.Fprintf(out, "Availability for %s on runtime %s (%s).\n\n", sys, env.Runtime, strings.Join(caps, ", "))
	}
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	avail, total := 0, 0
	var values []faults.Param
	seen := map[string]bool{}
	for _, k := range faults.Kinds() {
		total++
		fmt.Fprintf(w, "%s\t%s\t%s\n", k.Name, "("+k.Family+")", k.Doc)
		for _, p := range k.Params {
			fmt.Fprintf(w, "  %s\t%s = %s\t%s\n", p.Name, p.Type, p.Default, p.Doc)
			if p.Values != "" && !seen[p.Type] {
				seen[p.Type] = true
				values = append(values, p)
			}
		}
		if env != nil {
			if err := faults.Available(k.Name, *env); err != nil {
				fmt.Fprintf(w, "  available\t\tNO: %v\n", err)
			} else {
				avail++
				fmt.Fprintf(w, "  available\t\tyes\n")
			}
		}
	}
	w.Flush()
	fmt.Fprintln(out)
	for _, p := range values {
		fmt.Fprintf(out, "Values of %s: %s.\n", p.Type, p.Values)
	}
	fmt.Fprintln(out, "Every fault also takes: for (its length; default the schedule's), at (timeline), weight (random).")
	if env != nil {
		fmt.Fprintf(out, "%d of %d faults are available with their defaults (parameters can change that: latency with peers: false needs client links only).\n", avail, total)
	}
}

// roleCounts renders "role replica: 3" per role, in order of first use.
func roleCounts(nodes []targets.NodeSpec) []string {
	var order []string
	n := map[string]int{}
	for _, x := range nodes {
		if n[x.Role] == 0 {
			order = append(order, x.Role)
		}
		n[x.Role]++
	}
	out := make([]string, len(order))
	for i, r := range order {
		out[i] = fmt.Sprintf("role %s: %d", r, n[r])
	}
	return out
}
