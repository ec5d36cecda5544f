package faults

import (
	"context"
	"errors"
	"fmt"

	"github.com/faultline/faultline/targets"
)

// Helpers shared by the fault kinds.

// needNodes refuses a cluster of fewer than min nodes.
func needNodes(env Env, min int, why string) error {
	if len(env.Nodes) >= min {
		return nil
	}
	if why != "" {
		why = " (" + why + ")"
	}
	return fmt.Errorf("needs at least %d nodes%s; this cluster has %d", min, why, len(env.Nodes))
}

// needSingle refuses a target that may name more than one node.
func needSingle(env Env, s Selector, verb string) error {
	if s.single(env) {
		return nil
	}
	return specErr("target", "%q: this fault %s a single node: use one, leader, a node id or a role that has one node", s, verb)
}

// needLinks: the links a latency, bandwidth or reset fault acts on carry a
// proxy.
func needLinks(env Env, peers, clients bool) error {
	if peers {
		if err := needPeerLinks(env); err != nil {
			if env.Caps.Links >= targets.ClientLinks {
				return fmt.Errorf("%w; or set peers: false and clients: true to act on the client links only, which are proxied here", err)
			}
			return err
		}
	}
	if clients {
		return needClientLinks(env)
	}
	return nil
}

// someLinks refuses a link fault that acts on no link.
func someLinks(peers, clients bool) error {
	if !peers && !clients {
		return specErr("peers", "with peers and clients both false the fault acts on no link: set one of them to true")
	}
	return nil
}

// clientsIn is the partition option for a `clients` parameter.
func clientsIn(clients bool) []PartitionOption {
	if clients {
		return []PartitionOption{ClientsIn(LargestGroup)}
	}
	return nil
}

// isolate cuts every link between in.Targets[0] and the other nodes, and
// records the two sides as in.Groups.
func isolate(ctx context.Context, in *Injection, mode Mode, clients bool) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	if len(in.Targets) != 1 {
		return nil, errNoTarget("isolating a node", in)
	}
	iso := in.Targets[0]
	in.Groups = [][]string{{iso}, without(in.Nodes, iso)}
	if undo, ok, err := in.hookPartition(ctx, links, clients); ok {
		return undo, err
	}
	lf, err := links.Partition(ctx, in.Groups, mode, clientsIn(clients)...)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}

func errNoTarget(what string, in *Injection) error {
	return fmt.Errorf("%s needs exactly one target node, got %v (an unresolved spec?)", what, in.Targets)
}

var errNoLinks = errors.New("no proxies on the links of this cluster")

func without(nodes []string, id string) []string {
	var out []string
	for _, n := range nodes {
		if n != id {
			out = append(out, n)
		}
	}
	return out
}
