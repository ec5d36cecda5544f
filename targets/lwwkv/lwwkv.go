// Package lwwkv is faultline's eventually consistent key-value store: an
// AP reference system in which every node accepts reads and writes on its
// own, replicates asynchronously, and resolves conflicts by last write
// wins over vector clocks. It converges after partitions and kills, and it
// is not linearizable. It registers itself as the system "lwwkv" (see
// targets.RegisterSystem); run a node with targets.RunNode or
// `faultline node --system lwwkv ...`.
//
// # Writes and reads
//
// The client and admin APIs are the node kit's (package targets/nodekit,
// where they are documented); lwwkv supplies the state. Every node answers
// every request from its own state, whatever it can reach:
//
//   - PUT is a new write of this node: the node's write counter goes up by
//     one (Seq), the key's version gets a vector clock that covers the
//     key's current clock plus this write (node id -> Seq), and the stamp
//     (TS, Origin, Seq): the node's clock (the kit's Now, so clock faults
//     change it) in Unix nanoseconds, this node's id, Seq. The write is
//     logged, applied, queued for every peer, then answered 200.
//   - GET answers this node's value (null when absent).
//   - CAS compares with this node's value and, when it matches, writes as
//     PUT does. The decision is local: two nodes can both accept a CAS
//     from the same value, and one of the writes is later discarded. Not
//     linearizable, by design.
//   - The admin API's local read (GET /admin/kv/{key}) answers the same
//     state as GET; the convergence checker reads every replica with it.
//
// No answer carries a term: lwwkv has none.
//
// # Merge
//
// A node holds one version per key. When a version arrives from a peer
// (see merge):
//
//   - if one vector clock is after the other, that version wins;
//   - if both hold the same write (one of them the result of an earlier
//     merge), it stays, with the join of both clocks;
//   - otherwise (concurrent, or equal clocks holding different writes) the
//     larger stamp (TS, Origin, Seq) wins and keeps the join of both
//     clocks; the node counts the discarded write (concurrent_discarded).
//     Only the node that resolves the conflict counts it: a node that
//     later receives the resolved version (whose clock covers both
//     writes) takes it as a causally later one.
//
// So a causally later write always wins, and among concurrent writes the
// one with the later timestamp does: a node whose clock runs ahead wins the
// races it is in. Replicas that keep exchanging versions end up with the
// same one (every replica's version only grows: its clock by inclusion,
// then its stamp among equal clocks).
//
// # Replication
//
// Peer traffic is HTTP/JSON on NodeConfig.PeerListen (PathReplicate,
// PathSync); a node dials each peer at the address NodeConfig.Peers gives
// (a per-link proxy in a run), with every request bounded by the
// peer-timeout option and every body by 16 MiB.
//
//   - Queue: each local write puts the key's new version in a pending
//     queue per peer (in memory; a later write of the same key replaces
//     the unsent one), and one goroutine per peer sends it in batches
//     (at most 512 versions, about 4 MiB), retrying every
//     replication-retry while the node lives. A stop or a kill loses it.
//   - Anti-entropy: every anti-entropy-interval the node exchanges with
//     one peer, each in turn (sorted by id): it sends the digest of every
//     key (versions without values), the peer answers with its versions
//     that would change the sender's and the keys it wants, and the sender
//     merges those and pushes the wanted ones. So nodes converge after
//     partitions and kills, whatever the queues lost. The digest holds
//     every key: lwwkv is meant for the workloads' thousands of keys at
//     most.
//
// # Storage
//
// A node's versions and its write counter are in an append-only data log,
// DATA/lwwkv.log (LogFile), one JSON record per change, written (one write
// call, no fsync) before a write is answered or a merge applied: it
// survives a kill of the process, not a crash of the machine. The log is
// rewritten (synced, then renamed) as one record per key when it has more
// than 4096 records and four times as many records as keys. A restarted
// node reads it back: it keeps the writes it acknowledged and never gives
// a Seq twice, so its new writes follow its old ones. A last record cut
// short by a kill is dropped. One node per data directory.
//
// # Status
//
// GET /admin/status has the kit's fields with role "replica", term 0 and
// no leader, plus keys (how many keys the node holds), pending_by_peer
// (peer id -> keys queued for it) and unreachable_peers (the peers whose
// last request failed). lwwkv's counters: pending (keys queued, over all
// peers), sent (versions delivered to peers, by the queues and by
// anti-entropy pushes), received (versions received from peers), merges
// (received versions that changed this node's state), concurrent_discarded
// (writes discarded by their stamp because they were concurrent with the
// winner), causal_overruled (with wall-clock-only: causally later writes
// discarded for an earlier stamp), anti_entropy_rounds and
// anti_entropy_errors, and peer_errors (failed peer requests).
//
// # Bug switches
//
//	no-anti-entropy  no anti-entropy rounds (and PathSync is not served):
//	                 only the queues replicate, so a write whose queue was
//	                 lost (the node was killed or stopped before its peers
//	                 had it) never reaches them, and replicas diverge.
//	wall-clock-only  merges ignore the vector clocks: the larger stamp
//	                 always wins, even over a causally later write (a write
//	                 made after reading one stamped by a clock that runs
//	                 ahead loses, on its own node too).
//
// # Options (NodeConfig.Opts)
//
// Durations take Go syntax ("300ms") or a bare number of milliseconds;
// Options lists them with their defaults.
package lwwkv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
)

// Name is the system name under which lwwkv is registered.
const Name = "lwwkv"

// StatusRole is the role every lwwkv node reports in its status.
const StatusRole = "replica"

// Bug switches.
const (
	BugNoAntiEntropy = "no-anti-entropy"
	BugWallClockOnly = "wall-clock-only"
)

// Bugs lists lwwkv's bug switches: name -> the guarantee it breaks.
var Bugs = map[string]string{
	BugNoAntiEntropy: "no anti-entropy: only the in-memory replication queues replicate, so the writes a killed (or stopped) node had not yet sent never reach its peers and replicas never converge (breaks convergence)",
	BugWallClockOnly: "merges ignore vector clocks and keep the larger (timestamp, node id): a causally later write loses to an earlier one stamped by a clock that runs ahead, even on its own node (breaks causality: writes are lost)",
}

// DefaultCheckers are lwwkv's default checkers: every rung of the
// consistency ladder, and the lost updates an LWW store makes by design
// (the linearizability and lost-writes verdicts say what it is not).
var DefaultCheckers = []string{"convergence", "lost-updates", "session-guarantees", "causal", "linearizability", "lost-writes"}

func init() {
	targets.RegisterSystem(nodekit.Hooks(targets.System{
		Name:        Name,
		Description: "eventually consistent key-value store: every node serves reads and writes, asynchronous replication with anti-entropy, last write wins over vector clocks (AP, converges, not linearizable)",
		Roles: []targets.Role{{
			Name: "node", Doc: "a replica: serves reads, writes and CAS from its own state and replicates them to every peer",
			Nodes: 3, Min: 1, Serves: true,
		}},
		Bugs:         Bugs,
		Options:      Options,
		CheckOptions: CheckOptions,
		Client:       "http",
		Workload:     "register",
		Checkers:     DefaultCheckers,
		PeerLinks:    true,
		Run:          Run,
	}))
}

// Options are the tunables accepted in NodeConfig.Opts, with their defaults.
var Options = []targets.Option{
	{Name: "replication-retry", Default: "100ms", Doc: "how long a peer's replication queue waits after a failed send before it sends again"},
	{Name: "anti-entropy-interval", Default: "500ms", Doc: "how often the node runs an anti-entropy exchange, with each peer in turn (not with the no-anti-entropy bug)"},
	{Name: "peer-timeout", Default: "1s", Doc: "bounds one request to a peer (a replication batch or an anti-entropy exchange), connecting included"},
	{Name: "log-level", Default: "info", Doc: "hclog level: trace, debug, info, warn, error"},
}

// OptionDefaults returns the accepted options with their defaults.
func OptionDefaults() map[string]string { return nodekit.OptionDefaults(Options) }

// CheckOptions says what is wrong with opts (unknown names, bad values),
// naming every bad option; nil if nothing is. targets.System.CheckOptions
// runs it at validation, before anything starts, and Run runs it again in
// the node.
func CheckOptions(opts map[string]string) error {
	_, err := parseOptions(opts)
	return err
}

type options struct {
	retry, antiEntropy, peerTimeout time.Duration
	logLevel                        string
}

func parseOptions(opts map[string]string) (options, error) {
	var o options
	p := nodekit.ParseOptions(Name, Options, opts)
	o.retry = p.Duration("replication-retry")
	o.antiEntropy = p.Duration("anti-entropy-interval")
	o.peerTimeout = p.Duration("peer-timeout")
	o.logLevel = p.LogLevel("log-level")
	return o, p.Err()
}

// node is one running lwwkv node: the nodekit.Store the kit serves. Its
// methods are safe for concurrent use.
type node struct {
	cfg           targets.NodeConfig
	opts          options
	kit           *nodekit.Node
	log           hclog.Logger
	store         *store
	peers         []*peer // sorted by id
	http          *http.Client
	noAntiEntropy bool

	counters struct {
		sent, received, peerErrors, aeRounds, aeErrors atomic.Int64
	}
}

var _ nodekit.Store = (*node)(nil)

// Run serves one lwwkv node until ctx is cancelled; see the package doc.
// It returns nil after a graceful stop, or an error if the node cannot
// start or a server fails.
func Run(ctx context.Context, cfg targets.NodeConfig) error {
	if cfg.ID == "" || cfg.Listen == "" || cfg.Admin == "" || cfg.PeerListen == "" || cfg.DataDir == "" {
		return errors.New("lwwkv: id, listen, admin, peer-listen and data are all required")
	}
	opts, err := parseOptions(cfg.Opts)
	if err != nil {
		return err
	}
	n := &node{cfg: cfg, opts: opts, kit: nodekit.New(cfg)}
	if err := nodekit.CheckBugs(Name, cfg.Bugs, Bugs); err != nil {
		return err
	}
	n.noAntiEntropy = slices.Contains(cfg.Bugs, BugNoAntiEntropy)
	wallClockOnly := slices.Contains(cfg.Bugs, BugWallClockOnly)
	n.log = n.kit.NewLogger(Name, opts.logLevel)

	st, err := openStore(cfg.DataDir, cfg.ID, wallClockOnly, n.kit.Now)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.close(); err != nil {
			n.log.Error("close the data log", "error", err)
		}
	}()
	n.store = st
	for _, id := range slices.Sorted(maps.Keys(cfg.Peers)) {
		if id != cfg.ID {
			n.peers = append(n.peers, newPeer(id, cfg.Peers[id]))
		}
	}
	st.onChange = func(key string, v version) {
		for _, p := range n.peers {
			p.enqueue(key, v)
		}
	}
	n.http = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: opts.peerTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer n.http.CloseIdleConnections()
	n.log.Info("data log read", "path", st.path, "keys", len(st.data), "counter", st.counter, "records", st.records)

	ln, err := net.Listen("tcp", cfg.PeerListen)
	if err != nil {
		return fmt.Errorf("lwwkv: listen for peers on %s: %w", cfg.PeerListen, err)
	}
	peerSrv := &http.Server{Handler: n.peerHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var peerErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := peerSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			peerErr = fmt.Errorf("lwwkv: node %s: peer API: %w", cfg.ID, err)
			cancel()
		}
	}()
	for _, p := range n.peers {
		wg.Add(1)
		go func() { defer wg.Done(); n.replicate(rctx, p) }()
	}
	if len(n.peers) > 0 && !n.noAntiEntropy {
		wg.Add(1)
		go func() { defer wg.Done(); n.antiEntropy(rctx) }()
	}
	if n.noAntiEntropy {
		n.log.Warn("bug no-anti-entropy: only the in-memory queues replicate")
	}
	if wallClockOnly {
		n.log.Warn("bug wall-clock-only: merges ignore vector clocks")
	}
	n.log.Info("replicating", "peer_listen", ln.Addr().String(), "peers", len(n.peers), "retry", opts.retry, "anti_entropy", opts.antiEntropy)

	// On stop the peer API closes at once, with its connections: a peer's
	// request cut short fails, and the peer sends it again (merges are
	// idempotent).
	var stopping time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-rctx.Done()
		stopping = time.Now()
		peerSrv.Close()
	}()
	err = n.kit.Serve(rctx, n)
	cancel()
	wg.Wait()
	// The counters as the node stops (a kill writes nothing): the run's
	// status events carry no counters.
	final := n.Status()
	kv := []any{"stop_ms", time.Since(stopping).Milliseconds(), "keys", final.Extra["keys"]}
	for _, k := range slices.Sorted(maps.Keys(final.Counters)) {
		kv = append(kv, k, final.Counters[k])
	}
	msg := "stopped"
	switch {
	case final.Counters["pending"] > 0 && n.noAntiEntropy:
		msg = "stopped; the pending versions are lost with the queues, and without anti-entropy nothing repairs them"
	case final.Counters["pending"] > 0:
		msg = "stopped; the pending versions are lost with the queues (anti-entropy repairs them)"
	}
	n.log.Info(msg, kv...)
	if err == nil {
		err = peerErr
	}
	return err
}

// storeFailure maps a failure of the data log to the client's answer.
func storeFailure(err error) error {
	var se *storeError
	if errors.As(err, &se) {
		msg := err.Error() + " (the write was not made)"
		if !se.Definite {
			msg = err.Error() + " (the write may have been made)"
		}
		return &nodekit.Error{Code: http.StatusInternalServerError, Definite: se.Definite, Msg: msg, Kind: "storage"}
	}
	return err
}

// Get implements nodekit.Store: this node's value.
func (n *node) Get(_ context.Context, key string) (json.RawMessage, error) {
	return n.store.get(key), nil
}

// Put implements nodekit.Store: a new write of this node (see the package
// doc), answered once logged and queued for every peer.
func (n *node) Put(_ context.Context, key string, value json.RawMessage) error {
	if _, err := n.store.put(key, value); err != nil {
		return storeFailure(err)
	}
	return nil
}

// CAS implements nodekit.Store: a compare-and-set against this node's
// value alone (not linearizable).
func (n *node) CAS(_ context.Context, key string, from, to json.RawMessage) error {
	_, err := n.store.cas(key, from, to)
	switch {
	case errors.Is(err, errMismatch):
		return nodekit.ErrMismatch
	case err != nil:
		return storeFailure(err)
	}
	return nil
}

// LocalGet implements nodekit.Store: this replica's value, as Get.
func (n *node) LocalGet(key string) json.RawMessage { return n.store.get(key) }

// Status implements nodekit.Store; see the package doc.
func (n *node) Status() nodekit.Status {
	byPeer := make(map[string]int, len(n.peers))
	unreachable := []string{}
	var pending int64
	for _, p := range n.peers {
		p.mu.Lock()
		byPeer[p.id] = len(p.pending)
		pending += int64(len(p.pending))
		if p.down {
			unreachable = append(unreachable, p.id)
		}
		p.mu.Unlock()
	}
	return nodekit.Status{
		Role: StatusRole,
		Counters: map[string]int64{
			"pending":              pending,
			"sent":                 n.counters.sent.Load(),
			"received":             n.counters.received.Load(),
			"merges":               n.store.merges.Load(),
			"concurrent_discarded": n.store.concurrent.Load(),
			"causal_overruled":     n.store.overruled.Load(),
			"anti_entropy_rounds":  n.counters.aeRounds.Load(),
			"anti_entropy_errors":  n.counters.aeErrors.Load(),
			"peer_errors":          n.counters.peerErrors.Load(),
		},
		Extra: map[string]any{
			"keys":              n.store.len(),
			"pending_by_peer":   byPeer,
			"unreachable_peers": unreachable,
		},
	}
}
