// Package raftkv is faultline's Raft-replicated key-value store: a CP,
// linearizable reference system built on hashicorp/raft. It registers itself
// as the system "raftkv" (see targets.RegisterSystem); run a node with
// targets.RunNode or `faultline node --system raftkv ...`.
//
// # Storage
//
// The Raft log and stable store are a bbolt file (raft-boltdb/v2, fsync on
// every append) at DATA/raft.db, snapshots are files under DATA/snapshots.
// A node restarted on the same data directory rejoins with its state. When
// the data directory has no Raft state, every node bootstraps the same
// configuration: itself plus every peer, sorted by id, each server's address
// being its id. Real dial addresses come from NodeConfig.Peers through a
// raft.ServerAddressProvider, so per-link proxies can differ between nodes
// while the bootstrapped configurations stay identical.
//
// # Node protocol
//
// The client and admin APIs are the node kit's (package targets/nodekit,
// where they are documented): raftkv supplies the state machine (Get, Put,
// CAS, LocalGet) and its status. Values reach raftkv in the kit's canonical
// JSON form, so the FSM compares bytes: a CAS from 1.0 matches a stored 1.
//
// Writes and CAS go through raft.Apply; the CAS comparison is made by the FSM
// when the entry is applied, so it is linearizable. Reads are linearizable:
// the leader issues a raft Barrier that started after the read arrived
// (concurrent reads share one), which proves leadership in the current term
// by committing an entry and waits until the FSM has applied every earlier
// entry; then it reads the FSM. (Read-index with VerifyLeader alone is not
// used: raft hands no-op entries to no FSM, so the FSM cannot tell when it
// has caught up with a commit index that ends in a no-op.) The admin API's
// local read (GET /admin/kv/{key}) answers from this replica's FSM as it is.
//
// Every answer carries the term it rests on (nodekit.AnsweredIn): a put or
// CAS (a mismatch too) the term of the log entry it committed in, as the
// FSM saw it when applying it; a read the current term once its barrier
// succeeded; a read a bug switch served from local state the term the node
// believes it leads in (see Bug switches; none for a follower-read on a
// node that is not leader). The split-brain checker judges from them.
//
// A node that is not the leader answers 503 {"definite": true, "leader": ID}
// (ID empty when unknown) and does not proxy. "definite" is true only when
// the request certainly was not proposed: refused before raft.Apply, or
// raft returned ErrNotLeader (raft answers it before appending the entry:
// follower/candidate, or a leader already stepping down),
// ErrLeadershipTransferInProgress or ErrEnqueueTimeout (never enqueued).
// ErrLeadershipLost, ErrRaftShutdown, ErrAbortedByRestore and a server-side
// apply timeout are indefinite: the entry may still commit.
//
// The status (GET /admin/status) has the kit's fields (id, role, term,
// leader, commit_index, applied_index, counters, clock_offset_ms,
// clock_drift, bugs, uptime_ms) plus last_index, last_contact_ms and keys
// (and lease_term, lease_left_ms with the lease-read bug). raftkv's own
// counters are stale_reads and lease_reads (reads a bug switch served from
// local state), barriers and barrier_errors; the kit counts refusals by a
// follower as errors_not_leader.
//
// The node's clock (offset and drift, POST /admin/clock) shifts the
// timestamps of this node's log lines and, with the lease-read bug, is the
// clock its read lease is measured on; Raft itself uses the monotonic
// clock, so skew cannot affect it. Both are reported in the status.
//
// # Bug switches
//
// Each breaks one guarantee on purpose (Bugs says which). follower-read
// shows without faults; stale-read and lease-read are invisible until a
// fault isolates the leader (stale-read) or slows its clock (lease-read):
//
//	follower-read  GET is served from the local FSM on any node (followers
//	               too) without confirming leadership: a lagging follower
//	               returns old values even without faults (breaks
//	               linearizability). Answers carry the current term only on
//	               a node that is leader, else none.
//	stale-read     a node that became leader in term T, once one barrier of
//	               its own committed in T (so its FSM holds every entry of
//	               earlier terms, and every write it acknowledges is applied
//	               before it is answered), serves GET from its local FSM,
//	               without a barrier, for as long as raft's current term is
//	               still T, whatever raft's state says (leader, follower,
//	               candidate). Without faults that is linearizable: no other
//	               node can commit anything until a higher term exists, and
//	               the node hears of that term with the first vote request
//	               or heartbeat that reaches it. A leader cut off from the
//	               others steps down after leader-lease-timeout but, with
//	               pre-vote, stays in term T: it serves the values it had for
//	               the whole partition while the majority elects a new
//	               leader and takes writes (breaks linearizability; a
//	               deposed leader answering under T). Answers report T. Once
//	               the node sees a higher term it refuses as usual (503
//	               naming the leader) until it leads again. The status
//	               counter stale_reads counts the local reads.
//	lease-read     the leader serves GET from its local FSM while a read
//	               lease, measured on its own clock (the kit's Now, which
//	               the clock-skew fault shifts and makes drift), is
//	               unexpired. The leader renews it every heartbeat-timeout/10:
//	               it takes its clock's time, then raft.VerifyLeader; when a
//	               quorum acknowledged, the lease runs to that time plus
//	               read-lease (shorter than heartbeat-timeout, the least time
//	               a follower waits without contact before it campaigns, so
//	               no other leader can exist before it ends by a true clock).
//	               (A heartbeat already in flight when the round starts may
//	               count towards it: the margin, heartbeat-timeout minus
//	               read-lease, must also cover one peer link's one-way
//	               delay, so latency faults beyond it can break the lease
//	               too.) The first lease of a term waits for a barrier in
//	               the term.
//	               Once granted, the lease serves whatever raft's state
//	               becomes: a partition alone does not break it, but a clock
//	               that runs slow (clock-skew with a negative drift) stretches
//	               it past the next leader's election, and the deposed leader
//	               serves stale values until its own clock says the lease is
//	               over (breaks linearizability under clock faults). Answers
//	               report the term the lease was granted in; the status has
//	               lease_term, lease_left_ms (by the node's clock) and the
//	               counter lease_reads.
//	lose-unsynced  log entries are reported stored (so acknowledged to the
//	               leader, and counted towards commit) while they are only
//	               in process memory; they reach bbolt every unsynced-flush
//	               interval, before a snapshot is taken, and on a graceful
//	               stop (SIGTERM), so only a kill (SIGKILL) loses them.
//	               Breaks durability of acknowledged writes: kill every node
//	               holding a write before its next flush and the write is
//	               gone; kill a majority and it is gone only if the
//	               restarted majority elects a leader that lacks it (the
//	               survivor usually wins). Term and vote stay durable; a
//	               restarted node resumes from its durable log. The status
//	               counters add unsynced_pending, unsynced_flushes and
//	               unsynced_flushed. See unsyncedLogStore.
//
// # Options (NodeConfig.Opts)
//
// Durations take Go syntax ("300ms") or a bare number of milliseconds. The
// defaults (Options lists them, with what each does) are tuned for loopback
// and stay stable on a loaded 2-core machine. unsynced-flush is read only
// with --bug lose-unsynced, read-lease only with --bug lease-read (auto is
// half of heartbeat-timeout; a duration must be below heartbeat-timeout).
// Raft requires leader-lease-timeout <= heartbeat-timeout <=
// election-timeout; CheckOptions says so before anything starts.
package raftkv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
)

// Name is the system name under which raftkv is registered.
const Name = "raftkv"

// Bug switch names (see the package doc's Bug switches).
const (
	// BugFollowerRead serves reads from the local state on any node.
	BugFollowerRead = "follower-read"
	// BugStaleRead lets a node that led term T serve reads from its local
	// state while its current term is still T.
	BugStaleRead = "stale-read"
	// BugLeaseRead serves reads on a leader lease measured on the node's
	// own clock.
	BugLeaseRead = "lease-read"
)

// Bugs lists raftkv's bug switches: name -> the guarantee it breaks and
// when it shows.
var Bugs = map[string]string{
	BugFollowerRead: "GET is served from the local state machine on any node (leader or follower) without confirming leadership: a lagging or partitioned node returns stale values, even without faults (breaks linearizability)",
	BugStaleRead:    "a node that led term T serves GET from its local state machine, without a barrier, while its current term is still T, whatever its raft state: a leader cut off from the others keeps serving old values while the majority elects a new leader and takes writes (breaks linearizability under a partition of the leader; invisible without faults)",
	BugLeaseRead:    "the leader serves GET from local state on a read lease renewed by each heartbeat round and measured on its own clock (read-lease, below the followers' election timeout), whatever its raft state once granted: safe under partitions, but a clock running slow (clock-skew with a negative drift) stretches the lease past the next leader's election (breaks linearizability under clock faults)",
	BugLoseUnsynced: "log entries are acknowledged (and writes answered ok) while only in process memory; they reach disk every unsynced-flush interval (default 2s): killing every node holding a write before the next flush loses the acknowledged write (breaks durability; caught by the final reads)",
}

func init() {
	targets.RegisterSystem(nodekit.Hooks(targets.System{
		Name:        Name,
		Description: "key-value store replicated with Raft (hashicorp/raft): CP, linearizable reads, writes and CAS",
		Roles: []targets.Role{{
			Name: "node", Doc: "a Raft voter; the leader serves reads, writes and CAS, a follower names it",
			Nodes: 3, Min: 1, Serves: true,
		}},
		Bugs:         Bugs,
		Options:      Options,
		CheckOptions: CheckOptions,
		Client:       "http",
		Workload:     "register",
		PeerLinks:    true,
		Run:          Run,
	}))
}

// Options are the tunables accepted in NodeConfig.Opts (read only), with their
// defaults. Raft requires leader-lease-timeout <= heartbeat-timeout <=
// election-timeout.
var Options = []targets.Option{
	{Name: "heartbeat-timeout", Default: "300ms", Doc: "a follower starts an election after 1-2x this without contact"},
	{Name: "election-timeout", Default: "300ms", Doc: "a candidate restarts an election after 1-2x this"},
	{Name: "leader-lease-timeout", Default: "150ms", Doc: "a leader steps down after this without contact with a quorum"},
	{Name: "commit-timeout", Default: "20ms", Doc: "max delay before an idle leader sends a heartbeat carrying the commit index"},
	{Name: "snapshot-threshold", Default: "4096", Doc: "log entries since the last snapshot that trigger one"},
	{Name: "snapshot-interval", Default: "10s", Doc: "how often raft checks the snapshot threshold"},
	{Name: "trailing-logs", Default: "1024", Doc: "log entries kept after a snapshot"},
	{Name: "apply-timeout", Default: "3s", Doc: "how long a request waits for its entry to commit (then 504, indefinite)"},
	{Name: "transport-timeout", Default: "2s", Doc: "I/O deadline of one Raft RPC"},
	{Name: "max-pool", Default: "3", Doc: "pooled Raft connections per peer"},
	{Name: "lock-timeout", Default: "5s", Doc: "how long to wait for the data directory's lock (another process using it)"},
	{Name: "log-level", Default: "info", Doc: "hclog level: trace, debug, info, warn, error"},
	{Name: "unsynced-flush", Default: "2s", Doc: "bug lose-unsynced: how often in-memory log entries are written to disk"},
	{Name: "read-lease", Default: "auto", Doc: "bug lease-read: how long, by the leader's own clock, a heartbeat round lets it serve reads locally; below heartbeat-timeout; auto is half of heartbeat-timeout"},
}

// OptionDefaults returns the accepted options with their defaults.
func OptionDefaults() map[string]string { return nodekit.OptionDefaults(Options) }

// CheckOptions says what is wrong with opts (unknown names, bad values,
// timeouts in an order raft refuses), naming each bad option; nil if
// nothing is. targets.System.CheckOptions runs it at validation, before
// anything starts, and Run runs it again in the node.
func CheckOptions(opts map[string]string) error {
	o, err := parseOptions(opts)
	if err != nil {
		return err
	}
	if err := raft.ValidateConfig(raftConfig("check", o, nil)); err != nil {
		return fmt.Errorf("raftkv: options heartbeat-timeout, election-timeout, leader-lease-timeout, commit-timeout: raft refuses them: %w (it requires leader-lease-timeout <= heartbeat-timeout <= election-timeout)", err)
	}
	return nil
}

// raftConfig returns the raft configuration of node id under o.
func raftConfig(id string, o options, logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.HeartbeatTimeout = o.heartbeat
	rc.ElectionTimeout = o.election
	rc.LeaderLeaseTimeout = o.lease
	rc.CommitTimeout = o.commit
	rc.SnapshotThreshold = o.snapThreshold
	rc.SnapshotInterval = o.snapInterval
	rc.TrailingLogs = o.trailingLogs
	if logger != nil {
		rc.Logger = logger
	}
	return rc
}

type options struct {
	heartbeat, election, lease, commit time.Duration
	snapThreshold, trailingLogs        uint64
	snapInterval                       time.Duration
	applyTimeout, transportTimeout     time.Duration
	lockTimeout                        time.Duration
	unsyncedFlush                      time.Duration
	readLease                          time.Duration
	maxPool                            int
	logLevel                           string
}

func parseOptions(opts map[string]string) (options, error) {
	var o options
	p := nodekit.ParseOptions(Name, Options, opts)
	if err := p.Err(); err != nil {
		return o, err
	}
	o.heartbeat = p.Duration("heartbeat-timeout")
	o.election = p.Duration("election-timeout")
	o.lease = p.Duration("leader-lease-timeout")
	o.commit = p.Duration("commit-timeout")
	o.snapThreshold = p.Positive("snapshot-threshold")
	o.snapInterval = p.Duration("snapshot-interval")
	o.trailingLogs = p.Positive("trailing-logs")
	o.applyTimeout = p.Duration("apply-timeout")
	o.transportTimeout = p.Duration("transport-timeout")
	o.maxPool = int(p.Positive("max-pool"))
	o.lockTimeout = p.Duration("lock-timeout")
	o.unsyncedFlush = p.Duration("unsynced-flush")
	if rl := p.Get("read-lease"); rl == "auto" {
		o.readLease = o.heartbeat / 2
	} else if o.readLease = p.Duration("read-lease"); o.readLease > 0 && o.heartbeat > 0 && o.readLease >= o.heartbeat {
		p.Errorf("option read-lease=%q: want less than heartbeat-timeout (%s), the least time a follower waits before it campaigns, or auto", rl, o.heartbeat)
	}
	o.logLevel = p.LogLevel("log-level")
	return o, p.Err()
}

// addrProvider maps server ids to the address this node dials for them
// (raft.ServerAddressProvider). It is safe for concurrent use.
type addrProvider struct {
	mu    sync.RWMutex
	addrs map[raft.ServerID]raft.ServerAddress
}

func (p *addrProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if a, ok := p.addrs[id]; ok {
		return a, nil
	}
	return "", fmt.Errorf("raftkv: no address for server %q: pass it with --peer %s=ADDR", id, id)
}

// node is one running raftkv node: the nodekit.Store the kit serves.
type node struct {
	cfg      targets.NodeConfig
	opts     options
	kit      *nodekit.Node
	log      hclog.Logger
	raft     *raft.Raft
	fsm      *fsm
	barrier  *readBarrier
	unsynced *unsyncedLogStore // bug lose-unsynced; nil without it

	// Read bugs: at most one is expected, each is checked in Get.
	followerRead, staleRead bool
	lease                   *readLease // bug lease-read; nil without it

	// barrierTerm is the highest term in which a barrier this node issued
	// as leader committed: from then on in that term its FSM holds every
	// entry of earlier terms. Only the read bugs use it.
	barrierTerm atomic.Uint64

	counters struct {
		staleReads, leaseReads, barriers, barrierErr atomic.Int64
	}
}

// Run serves one raftkv node until ctx is cancelled; see the package doc.
// It returns nil after a graceful stop, or an error if the node cannot start.
func Run(ctx context.Context, cfg targets.NodeConfig) error {
	if cfg.ID == "" || cfg.Listen == "" || cfg.Admin == "" || cfg.PeerListen == "" || cfg.DataDir == "" {
		return errors.New("raftkv: id, listen, admin, peer-listen and data are all required")
	}
	if err := CheckOptions(cfg.Opts); err != nil {
		return err
	}
	opts, _ := parseOptions(cfg.Opts)
	n := &node{cfg: cfg, opts: opts, fsm: newFSM(), kit: nodekit.New(cfg)}
	if err := nodekit.CheckBugs(Name, cfg.Bugs, Bugs); err != nil {
		return err
	}
	loseUnsynced := false
	for _, b := range cfg.Bugs {
		switch b {
		case BugFollowerRead:
			n.followerRead = true
		case BugStaleRead:
			n.staleRead = true
		case BugLeaseRead:
			n.lease = &readLease{}
		case BugLoseUnsynced:
			loseUnsynced = true
		}
	}
	n.log = n.kit.NewLogger(Name, opts.logLevel)
	rc := raftConfig(cfg.ID, opts, n.log.Named("raft"))

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("raftkv: data directory: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(cfg.DataDir, "raft.db"),
		// bbolt waits forever for the file lock by default.
		BoltOptions: &bbolt.Options{Timeout: opts.lockTimeout},
	})
	if err != nil {
		return fmt.Errorf("raftkv: open log store %s: %w (is another node using this data directory?)", filepath.Join(cfg.DataDir, "raft.db"), err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.DataDir, "snapshots"), 2, n.log.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("raftkv: snapshot store: %w", err)
	}

	advertise, err := net.ResolveTCPAddr("tcp", cfg.PeerListen)
	if err != nil {
		return fmt.Errorf("raftkv: peer-listen %q: %w", cfg.PeerListen, err)
	}
	provider := &addrProvider{addrs: map[raft.ServerID]raft.ServerAddress{raft.ServerID(cfg.ID): raft.ServerAddress(cfg.PeerListen)}}
	servers := []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(cfg.ID)}}
	for id, addr := range cfg.Peers {
		if id == cfg.ID {
			continue
		}
		provider.addrs[raft.ServerID(id)] = raft.ServerAddress(addr)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })

	trans, err := raft.NewTCPTransportWithConfig(cfg.PeerListen, advertise, &raft.NetworkTransportConfig{
		ServerAddressProvider: provider,
		Logger:                n.log.Named("net"),
		MaxPool:               opts.maxPool,
		Timeout:               opts.transportTimeout,
	})
	if err != nil {
		return fmt.Errorf("raftkv: listen for peers on %s: %w", cfg.PeerListen, err)
	}
	defer trans.Close()

	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("raftkv: read raft state in %s: %w", cfg.DataDir, err)
	}
	if !existing {
		if err := raft.BootstrapCluster(rc, store, store, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			return fmt.Errorf("raftkv: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped", "servers", len(servers))
	}

	// Bootstrap (above) wrote to the durable store directly; with the bug,
	// raft's log goes through the unsynced wrapper from here on.
	var logs raft.LogStore = store
	var raftSnaps raft.SnapshotStore = snaps
	if loseUnsynced {
		n.unsynced = newUnsyncedLogStore(store, opts.unsyncedFlush, func(err error) { n.log.Error("periodic flush", "error", err) })
		logs, raftSnaps = n.unsynced, flushingSnapshots{SnapshotStore: snaps, logs: n.unsynced}
		// Runs after raft's shutdown (defers run last-in first-out), before
		// the store closes. After a crash it writes nothing.
		defer func() {
			if err := n.unsynced.Close(); err != nil {
				n.log.Error("flush unsynced log entries on stop", "error", err)
			}
		}()
		n.log.Warn("bug lose-unsynced: log entries are acknowledged before they are durable", "flush_interval", opts.unsyncedFlush)
	}

	r, err := raft.NewRaft(rc, n.fsm, logs, store, raftSnaps, trans)
	if err != nil {
		return fmt.Errorf("raftkv: start raft: %w", err)
	}
	n.raft = r
	n.barrier = &readBarrier{raft: r, timeout: opts.applyTimeout, count: &n.counters.barriers, errs: &n.counters.barrierErr, onTerm: n.barrierIn}
	n.log.Info("raft started", "peer", cfg.PeerListen)
	defer func() {
		if err := r.Shutdown().Error(); err != nil {
			n.log.Warn("raft shutdown", "error", err)
		}
	}()
	if n.lease != nil {
		// Stopped (and waited for) before raft shuts down: defers run
		// last-in first-out.
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); n.leaseLoop(lctx) }()
		defer func() { stop(); <-done }()
		n.log.Warn("bug lease-read: the leader serves reads on a lease measured on its own clock", "read_lease", opts.readLease)
	}

	cs, _ := ctx.Value(crashKey{}).(*crashSwitch)
	crashed := func() bool { return cs != nil && cs.crashed.Load() }
	if n.unsynced != nil {
		// In-process stand-in for SIGKILL (tests only): from the moment
		// of the crash nothing more reaches the disk.
		stop := context.AfterFunc(ctx, func() {
			if crashed() {
				n.unsynced.abandon()
			}
		})
		defer stop()
	}
	err = n.kit.Serve(ctx, n)
	if crashed() {
		if n.unsynced != nil {
			n.unsynced.abandon()
		}
		n.log.Info("crashed (test hook): unsynced log entries discarded")
	}
	return err
}

// readBarrier batches linearizable reads: a reader waits for a raft Barrier
// issued after it arrived; every reader that arrives while a barrier is in
// flight shares the next one. Safe for concurrent use.
type readBarrier struct {
	raft    *raft.Raft
	timeout time.Duration
	count   *atomic.Int64
	errs    *atomic.Int64
	// onTerm, if set, hears the term of each barrier that committed in the
	// term this node led when it issued it.
	onTerm func(term uint64)

	mu      sync.Mutex
	next    *barrierRound // not yet issued; new readers join it
	running bool
}

type barrierRound struct {
	done chan struct{}
	err  error
	term uint64 // on success: the current term once the barrier committed
}

var errBarrierTimeout = errors.New("timed out waiting for the read barrier to commit")

// wait returns nil once a barrier issued after the call began has committed
// and the FSM has applied every entry before it, with raft's current term
// at that moment.
func (b *readBarrier) wait(ctx context.Context) (uint64, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &barrierRound{done: make(chan struct{})}
	}
	rd := b.next
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case <-rd.done:
		return rd.term, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b *readBarrier) loop() {
	for {
		b.mu.Lock()
		rd := b.next
		b.next = nil
		if rd == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.count.Add(1)
		before := b.raft.CurrentTerm()
		rd.err = waitFuture(b.raft.Barrier(b.timeout), b.timeout, errBarrierTimeout)
		if rd.err != nil {
			b.errs.Add(1)
		} else {
			rd.term = b.raft.CurrentTerm()
			// The same term before and after: the barrier was appended,
			// and committed, by this node leading that term.
			if rd.term == before && b.onTerm != nil {
				b.onTerm(rd.term)
			}
		}
		close(rd.done)
	}
}

// waitFuture waits at most timeout for f; on timeout it returns timeoutErr
// and leaves a goroutine to collect the future (raft always resolves it:
// at the latest when the leader steps down or shuts down).
func waitFuture(f raft.Future, timeout time.Duration, timeoutErr error) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return timeoutErr
	}
}

// barrierIn notes that a barrier this node issued as leader of term
// committed (barrierTerm keeps the highest such term).
func (n *node) barrierIn(term uint64) {
	for {
		cur := n.barrierTerm.Load()
		if term <= cur || n.barrierTerm.CompareAndSwap(cur, term) {
			return
		}
	}
}

// readLease is the read lease of the lease-read bug: until expiry, by the
// node's own clock, the node serves reads from its local state, answering
// under term. Safe for concurrent use.
type readLease struct {
	mu     sync.Mutex
	term   uint64
	expiry time.Time // the node's clock (nodekit.Node.Now)
}

// renew sets the lease to run until expiry in term, unless it already
// belongs to a later term.
func (l *readLease) renew(term uint64, expiry time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if term >= l.term {
		l.term, l.expiry = term, expiry
	}
}

// valid returns the lease's term, and whether the lease is unexpired when
// the node's clock reads now; and how long it still runs (0 if expired).
func (l *readLease) valid(now time.Time) (term uint64, ok bool, left time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term == 0 || !now.Before(l.expiry) {
		return l.term, false, 0
	}
	return l.term, true, l.expiry.Sub(now)
}

var errVerifyTimeout = errors.New("timed out waiting for a quorum to confirm the leadership")

// leaseLoop renews the read lease of the lease-read bug until ctx ends:
// every heartbeat-timeout/10, if this node leads, it takes its clock's
// time, then has raft confirm the leadership with a quorum (VerifyLeader,
// a heartbeat round); on success in an unchanged term, the lease runs to
// that time plus read-lease. read-lease is below heartbeat-timeout, the
// least time a follower that acknowledged the round waits without contact
// before it campaigns, so by a true clock the lease ends before any other
// node can lead (raft may count a heartbeat sent shortly before the round
// began: the margin covers its one-way delay, up to heartbeat-timeout minus
// read-lease). The first lease of a term waits for a barrier in the term
// (the loop issues one), so that the FSM holds every entry of earlier
// terms before the first local read.
func (n *node) leaseLoop(ctx context.Context) {
	every := max(n.opts.heartbeat/10, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		term := n.raft.CurrentTerm()
		if n.barrierTerm.Load() != term {
			n.barrier.wait(ctx) // on success barrierIn notes the term; renewed at the next tick
			continue
		}
		start := n.kit.Now()
		if err := waitFuture(n.raft.VerifyLeader(), n.opts.applyTimeout, errVerifyTimeout); err != nil {
			continue
		}
		if n.raft.CurrentTerm() != term {
			continue
		}
		n.lease.renew(term, start.Add(n.opts.readLease))
	}
}
