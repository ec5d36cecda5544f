// Package targets starts and controls the systems under test.
//
// A Runtime (local processes, Docker containers, or an external cluster)
// starts a Cluster from a ClusterSpec. A Cluster exposes its nodes'
// addresses and process control (kill, stop, start, pause, resume), and a
// Client performs operations against it and reports each outcome as data.
//
// This package and its subpackages must not import workloads or checkers.
package targets

import (
	"context"
	"encoding/json"
	"errors"

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
	Client string // client API (HTTP), as the node listens on it
	Admin  string // admin API (HTTP); never faulted
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

// ClusterSpec says what to start.
type ClusterSpec struct {
	RunID  string   // unique per run; used for labels and names
	System string   // reference system, e.g. "raftkv"
	Nodes  []string // node ids, e.g. n1 n2 n3
	Bugs   []string // bug switches passed to every node (--bug NAME)
	Args   []string // extra arguments for every node
	Dir    string   // run directory: nodes/<id>.log and data/<id>/ go below it
	Binary string   // faultline binary to run nodes with; "" = os.Executable()
	Links  LinkMapper
	// Log, if set, receives one-line progress messages (node started, ...).
	Log func(format string, args ...any)
}

// NodeInfo describes one running node.
type NodeInfo struct {
	NodeAddrs
	ClientVia string // the address clients should dial (a proxy, or Client)
}

// Status is a node's answer to GET /admin/status.
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

// Cluster is a started set of nodes. Its methods are safe for concurrent
// use. Process-control methods take a node id; they return ErrUnsupported
// when the runtime cannot do that (an external cluster without hooks).
type Cluster interface {
	Nodes() []NodeInfo
	Status(ctx context.Context, id string) (Status, error)
	Kill(ctx context.Context, id string) error    // SIGKILL or equivalent; data survives
	Stop(ctx context.Context, id string) error    // graceful stop; data survives
	Start(ctx context.Context, id string) error   // start a killed or stopped node, wait until ready
	Restart(ctx context.Context, id string) error // Stop then Start
	Pause(ctx context.Context, id string) error   // SIGSTOP or equivalent
	Resume(ctx context.Context, id string) error  // SIGCONT or equivalent
	// Close stops every node and releases every resource the cluster holds
	// (processes, containers, networks). It leaves logs and data in the run
	// directory. Safe to call more than once.
	Close() error
}

// Runtime starts clusters.
type Runtime interface {
	Name() string
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
}

// ProxyHost is implemented by runtimes that host the Toxiproxy server of a
// run themselves. StartProxy is called before Start with the same spec; the
// proxy is removed by the cluster's Close (or by Start's failure path).
type ProxyHost interface {
	StartProxy(ctx context.Context, spec ClusterSpec) (ProxyPlacement, error)
}
