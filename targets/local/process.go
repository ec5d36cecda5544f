//go:build unix

package local

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/faultline/faultline/targets"
)

// proxiedPeers returns addrs as the LinkMapper must see them: a process
// target's node that does not dial the addresses it is given for its peers
// (peers: names or none) has no Peer there, so no proxy is made for links
// to it that nothing would use. On this runtime all processes share one
// resolver, so a peer's name cannot lead each node to a proxy of its own.
func proxiedPeers(spec targets.ClusterSpec, addrs []targets.NodeAddrs) []targets.NodeAddrs {
	out := append([]targets.NodeAddrs(nil), addrs...)
	for i, ns := range spec.Nodes {
		if ns.Process != nil && ns.Process.Peers != targets.PeersDial {
			out[i].Peer = ""
		}
	}
	return out
}

// setProcess makes n a process target's node: the command, environment
// and working directory rendered from ps for node i of spec (host
// 127.0.0.1, listeners on 127.0.0.1, data in data), the stop signal and
// grace, the readiness probe. dial holds the addresses the node dials for
// its peers (proxies), used when ps says peers: dial.
func (n *node) setProcess(spec targets.ClusterSpec, i int, ps *targets.ProcessSpec, addrs []targets.NodeAddrs, dial map[string]string, data string) error {
	nodes := make([]targets.ProcessAddrs, len(spec.Nodes))
	for j, ns := range spec.Nodes {
		nodes[j] = targets.ProcessAddrs{ID: ns.ID, Role: ns.Role, Host: "127.0.0.1", ClientPort: port(addrs[j].Client), PeerPort: port(addrs[j].Peer)}
	}
	if ps.Peers != targets.PeersDial {
		dial = nil
	}
	argv, env, dir, err := ps.Render(targets.BuildProcessVars(nodes, i, data, "127.0.0.1", dial))
	if err != nil {
		return fmt.Errorf("local runtime: node %s: %w", spec.Nodes[i].ID, err)
	}
	if dir != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(data, dir)
	}
	n.binary, n.argv, n.env, n.dir = argv[0], argv[1:], env, dir
	n.proc = ps
	n.stopSig, n.grace = ps.Signal(), ps.Grace()
	n.info.Token = "" // its APIs are its own: faultline's token means nothing to it
	return nil
}

func port(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
