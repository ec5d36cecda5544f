package docker

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/faultline/faultline/targets"
)

// Process targets (targets.ProcessSpec) run in containers of an image
// holding their binaries (EnsureProcessImage), with the rendered command
// as the entry point, /data as the data directory, ClientPort as the
// client port and ProcessPeerPort(i) as node i's peer port: every node a
// distinct peer port, so that one proxy address per network can stand for
// each peer.
//
// Nodes that name their peers (peers: names), such as etcd, whose
// members are known by their peer URLs and whose messages between two
// members travel over connections either side opened, are cut link by
// link this way: on node A's network, the name of every peer B is mapped
// (an extra hosts entry) to the proxy container's address on that network,
// where the proxy of link A -> B listens on B's peer port and dials B's
// real address on B's network. Every directed link has its own proxy,
// whichever side opened a connection: A's connections to B go through
// A -> B, B's to A through B -> A.

// ProcessPeerPort is the peer port of node i (0-based) of a process target.
func ProcessPeerPort(i int) int { return 7100 + i }

// processBinaries returns the binaries of spec's process nodes (their
// resolved paths), each once.
func processBinaries(spec targets.ClusterSpec) []string {
	var out []string
	for _, n := range spec.Nodes {
		if n.Process != nil && !slices.Contains(out, n.Process.Path) {
			out = append(out, n.Process.Path)
		}
	}
	return out
}

// namesPeers reports whether node i of spec names its peers.
func namesPeers(spec targets.ClusterSpec, i int) bool {
	p := spec.Nodes[i].Process
	return p != nil && p.Peers == targets.PeersNames
}

// processAddrs returns the in-network addresses of node i when it is a
// process target: ALIAS:7000 client, no admin, ALIAS:ProcessPeerPort(i)
// peer (none for a node whose peers carry no proxy: peers: none).
func (ru *run) processAddrs(i int, id string) targets.NodeAddrs {
	a := ru.alias[id]
	out := targets.NodeAddrs{ID: id, Client: net.JoinHostPort(a, strconv.Itoa(ClientPort))}
	if p := ru.spec.Nodes[i].Process; p.OnePort && p.Peers != targets.PeersNone {
		out.Peer = out.Client
	} else if p.Peers != targets.PeersNone {
		out.Peer = net.JoinHostPort(a, strconv.Itoa(ProcessPeerPort(i)))
	}
	return out
}

// setProcess renders node i's command, environment and working directory
// (data in DataDir, listeners on 0.0.0.0, peers named by their aliases),
// and for peers: names the extra hosts entries that send each peer's name
// to the proxy's address on the node's network.
func (ru *run) setProcess(n *node, i int, peers map[string]string) error {
	spec := ru.spec
	ps := spec.Nodes[i].Process
	nodes := make([]targets.ProcessAddrs, len(spec.Nodes))
	for j, ns := range spec.Nodes {
		nodes[j] = targets.ProcessAddrs{ID: ns.ID, Role: ns.Role, Host: ru.alias[ns.ID], ClientPort: ClientPort, PeerPort: ProcessPeerPort(j)}
		if ns.Process != nil && ns.Process.OnePort {
			nodes[j].PeerPort = ClientPort
		}
	}
	dial := peers
	if ps.Peers != targets.PeersDial {
		dial = nil
	}
	argv, env, dir, err := ps.Render(targets.BuildProcessVars(nodes, i, DataDir, "0.0.0.0", dial))
	if err != nil {
		return fmt.Errorf("docker runtime: node %s: %w", n.id, err)
	}
	if dir != "" && !strings.HasPrefix(dir, "/") {
		dir = DataDir + "/" + dir
	}
	n.proc, n.argv, n.dir = ps, argv, dir
	n.env = map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		n.env[k] = v
	}
	if ps.Peers == targets.PeersNames {
		ip := ru.proxyIPs[n.id]
		if ip == "" {
			return infraf("node %s names its peers, and the proxy container has no address on its network %s", n.id, n.net)
		}
		for _, other := range spec.Nodes {
			if other.ID != n.id {
				n.hosts = append(n.hosts, ru.alias[other.ID]+":"+ip)
			}
		}
	}
	return nil
}
