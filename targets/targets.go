// Package targets starts and controls the systems under test.
//
// A Runtime (local processes, Docker containers, or an external cluster)
// starts a Cluster from a ClusterSpec. Every Cluster has nodes and Close;
// everything else is an optional capability, a small interface checked by
// type assertion (ProcessControl, Pauser, StatusReader), in the way
// Toxiproxy's toxics and hashicorp/raft's transports declare what they can
// do. A Runtime says up front, in Capabilities, what its clusters will be
// able to do, so that a scenario asking for more is refused before anything
// starts.
//
// Systems (reference systems, process targets), client adapters and
// runtimes register themselves by name (RegisterSystem, RegisterAdapter,
// RegisterRuntime); the conductor only looks names up.
//
// This package and its subpackages must not import workloads or checkers.
package targets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/faultline/faultline/history"
)

// Client performs one operation at a time against a cluster. Do never
// returns an error: every failure is an Outcome of type Fail (certainly no
// effect) or Info (unknown effect). A Client is used by one worker at a time
// and is not safe for concurrent use unless its constructor says so.
type Client interface {
	Do(ctx context.Context, op history.Op) history.Outcome
	Close() error
}

// NodeAddrs are the addresses of one node, as host:port.
type NodeAddrs struct {
	ID     string
	Client string // client API, as the node listens on it
	Admin  string // admin API (HTTP); never faulted; "" if the node has none
	Peer   string // peer (replication) listener, if the system has one
}

// LinkMapper decides which address a node dials to reach a peer, and which
// address clients dial to reach a node. It is how faults put a proxy on
// every directed link. It is called once, after every node's addresses are
// allocated and before any node starts.
type LinkMapper interface {
	// MapLinks returns, for each node, the address it must dial for each
	// peer (peers[from][to]) and the address clients must dial for each
	// node (clients[id]).
	MapLinks(ctx context.Context, nodes []NodeAddrs) (peers map[string]map[string]string, clients map[string]string, err error)
}

// NodeSpec is one node of a ClusterSpec: its id, its role, and what that
// role's node is started with.
type NodeSpec struct {
	ID   string
	Role string            // one of the system's roles
	Bugs []string          // bug switches (--bug NAME)
	Opts map[string]string // system tunables (--opt KEY=VALUE)
	// Process, if set, is how to run the node as a process target: the
	// runtime starts this command instead of `faultline node`, with no
	// admin API and no token (NodeInfo.Admin and Token are "").
	Process *ProcessSpec
}

// ClusterSpec says what to start.
type ClusterSpec struct {
	RunID  string     // unique per run; used for labels and names
	System string     // registered system, e.g. "raftkv"
	Nodes  []NodeSpec // in order; ids unique
	Dir    string     // run directory: nodes/<id>.log and data/<id>/ go below it
	Binary string     // faultline binary to run nodes with; "" = os.Executable()
	Links  LinkMapper
	// Token, if set, is the run's secret: the runtime gives it to every
	// node of faultline's own (`faultline node`) in the environment
	// (TokenEnv, never on the command line), and the node's client and
	// admin APIs then refuse requests that do not carry it (401). A runtime
	// that hosts the run's Toxiproxy server (ProxyHost) protects its API
	// with it too. NodeInfo.Token carries it back for faultline's own calls;
	// clients get it through ClientConfig.Token. "" runs the nodes open, as
	// before. Generate one per run with NewToken.
	Token Token
	// Log, if set, receives one-line progress messages (node started, ...).
	Log func(format string, args ...any)
	// External is what runtime external needs: the nodes someone else
	// runs, and the hooks for faults; nil for the other runtimes.
	External *ExternalSpec
}

// IDs returns the ids of the spec's nodes, in order.
func (s ClusterSpec) IDs() []string {
	out := make([]string, len(s.Nodes))
	for i, n := range s.Nodes {
		out[i] = n.ID
	}
	return out
}

// NodeInfo describes one running node.
type NodeInfo struct {
	NodeAddrs
	Role      string // the node's role (NodeSpec.Role)
	ClientVia string // the address clients should dial (a proxy, or Client)
	// Token is what the node's client and admin APIs require (the
	// ClusterSpec's); "" when they are open. The node kit's client
	// functions (status, clock, local reads) send it.
	Token Token
}

// Status is a node's own account of itself (for reference systems, the
// answer to GET /admin/status).
type Status struct {
	ID          string          `json:"id"`
	Role        string          `json:"role"` // leader, follower, candidate, primary, backup, ...
	Term        uint64          `json:"term"`
	Leader      string          `json:"leader"`
	CommitIndex uint64          `json:"commit_index"`
	AppliedIdx  uint64          `json:"applied_index"`
	Counters    map[string]any  `json:"counters,omitempty"`
	Raw         json.RawMessage `json:"-"` // the whole answer
}

// IsLeader reports whether the status names its node the leader (or primary).
func (s Status) IsLeader() bool { return history.IsLeaderRole(s.Role) }

// Cluster is a started set of nodes. Its methods are safe for concurrent
// use. What else a cluster can do is an optional capability: see
// ProcessControl, Pauser and StatusReader.
type Cluster interface {
	Nodes() []NodeInfo
	// Close stops every node and releases every resource the cluster holds
	// (processes, containers, networks). It leaves logs and data in the run
	// directory. Safe to call more than once.
	Close() error
}

// ProcessControl is the capability to kill, stop and start a cluster's
// nodes. Methods take a node id and are safe for concurrent use. Kill of a
// node that is not running, and Start of a running one, do nothing.
type ProcessControl interface {
	Kill(ctx context.Context, id string) error  // SIGKILL or equivalent; data survives
	Stop(ctx context.Context, id string) error  // graceful stop; data survives
	Start(ctx context.Context, id string) error // start a killed or stopped node, wait until ready
}

// Pauser is the capability to freeze a node's processes and thaw them.
// Pause of a node that is not running is an error; Resume of a running,
// unpaused node does nothing.
type Pauser interface {
	Pause(ctx context.Context, id string) error  // SIGSTOP or equivalent
	Resume(ctx context.Context, id string) error // SIGCONT or equivalent
}

// StatusReader is the capability to ask a node for its status on a path
// that faults never cut. Safe for concurrent use.
type StatusReader interface {
	Status(ctx context.Context, id string) (Status, error)
}

// Restart stops node id gracefully and starts it again.
func Restart(ctx context.Context, pc ProcessControl, id string) error {
	if err := pc.Stop(ctx, id); err != nil {
		return err
	}
	return pc.Start(ctx, id)
}

// LinkScope says which links of a cluster carry a proxy (so link faults can
// act on them).
type LinkScope int

// Link scopes, from none to every link.
const (
	// NoLinks: nothing is proxied.
	NoLinks LinkScope = iota
	// ClientLinks: the links from faultline's clients to each node.
	ClientLinks
	// PeerLinks: every directed link between nodes, and the client links.
	PeerLinks
)

// String names the scope as `faultline faults` shows it.
func (s LinkScope) String() string {
	switch s {
	case ClientLinks:
		return "client links only"
	case PeerLinks:
		return "every directed peer link and every client link"
	}
	return "no links"
}

// Capabilities are what a runtime's clusters can do, known before anything
// starts.
type Capabilities struct {
	Process bool      // ProcessControl: kill, stop, start
	Pause   bool      // Pauser: pause, resume
	Links   LinkScope // which links carry a proxy
	// Partition: peer links can be cut by other means than the proxies
	// (Partitioner: an external cluster's partition hook).
	Partition bool
	// Hooks: what the runtime cannot do itself, the scenario's hooks can
	// give (runtime external: cluster.hooks); refusals say which hook.
	Hooks bool
	// PeerNames: each node can be made to resolve every peer's host name
	// to the proxy of that directed link (a network and a hosts file per
	// node), so peer links of nodes that name their peers (PeersNames)
	// can be cut.
	PeerNames bool
}

// Runtime starts clusters.
type Runtime interface {
	Name() string
	// Capabilities says what the clusters Start returns can do.
	Capabilities() Capabilities
	Start(ctx context.Context, spec ClusterSpec) (Cluster, error)
}

// ErrUnsupported is returned by process control a runtime cannot perform.
var ErrUnsupported = errors.New("not supported by this runtime")

// InfraError marks an error of the infrastructure (a node would not start,
// Docker is unreachable), as opposed to bad input. The CLI maps it to exit 70.
type InfraError struct{ Err error }

func (e *InfraError) Error() string { return e.Err.Error() }
func (e *InfraError) Unwrap() error { return e.Err }

// ClientLink is the From of a client -> node link in ProxyPlacement.
const ClientLink = "client"

// ProxyPlacement says where a run's Toxiproxy server is and how its proxies
// are placed. A runtime that hosts the proxy itself (Docker: a proxy
// container) returns one from ProxyHost.StartProxy; the local runtime has
// none and the conductor embeds the server in process.
type ProxyPlacement struct {
	// APIAddr is the Toxiproxy HTTP API, host:port, reachable from faultline.
	APIAddr string
	// Listen returns the address the proxy of link from -> to listens on
	// inside the proxy's host (from is ClientLink for client links).
	Listen func(from, to string) string
	// Dial returns the address that from must dial to use that proxy, given
	// the listen address the proxy reports.
	Dial func(from, to, listen string) (string, error)
	// Upstream maps a node's address (as in NodeAddrs) to the address the
	// proxy must dial to reach it; nil means unchanged.
	Upstream func(from, to, nodeAddr string) string
	// Token is what the Toxiproxy API requires (give it to the faults.Links
	// that drives it, as LinksOptions.Token); "" when the API is open.
	Token Token
}

// ProxyHost is implemented by runtimes that host the Toxiproxy server of a
// run themselves. StartProxy is called before Start with the same spec; the
// proxy is removed by the cluster's Close (or by Start's failure path).
type ProxyHost interface {
	StartProxy(ctx context.Context, spec ClusterSpec) (ProxyPlacement, error)
}

// StatusOf returns the way to read the status of c's nodes: the cluster's
// own StatusReader if it has one, else the system's Status func over the
// nodes' addresses, else nil (status cannot be read).
func StatusOf(c Cluster, sys *System) StatusReader {
	if sr, ok := c.(StatusReader); ok {
		return sr
	}
	if sys == nil || sys.Status == nil {
		return nil
	}
	return systemStatus{c: c, read: sys.Status}
}

type systemStatus struct {
	c    Cluster
	read func(ctx context.Context, n NodeInfo) (Status, error)
}

func (s systemStatus) Status(ctx context.Context, id string) (Status, error) {
	for _, n := range s.c.Nodes() {
		if n.ID == id {
			return s.read(ctx, n)
		}
	}
	return Status{}, fmt.Errorf("no node %q in this cluster", id)
}
