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
// # Client API (NodeConfig.Listen), HTTP/JSON
//
//	GET  /kv/{key}       -> 200 {"value": V}   (V is null for an absent key)
//	PUT  /kv/{key}       {"value": V}          -> 200 {}
//	POST /kv/{key}/cas   {"from": X, "to": Y}  -> 200 {} | 409 {"error":"mismatch"}
//	any other failure    -> 4xx/5xx {"error": TEXT, "definite": BOOL, "leader": ID}
//
// Keys are one path segment (escape "/" as %2F). Values are stored in a
// canonical JSON form (see canonicalJSON): objects with sorted keys, numbers
// with an integral value as integers, other numbers as float64; so a CAS
// from 1.0 matches a stored 1, and a put of 1.0 reads back as 1.
//
// Writes and CAS go through raft.Apply; the CAS comparison is made by the FSM
// when the entry is applied, so it is linearizable. Reads are linearizable:
// the leader issues a raft Barrier that started after the read arrived
// (concurrent reads share one), which proves leadership in the current term
// by committing an entry and waits until the FSM has applied every earlier
// entry; then it reads the FSM. (Read-index with VerifyLeader alone is not
// used: raft hands no-op entries to no FSM, so the FSM cannot tell when it
// has caught up with a commit index that ends in a no-op.)
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
// # Admin API (NodeConfig.Admin)
//
//	GET  /admin/status  -> targets.Status fields (id, role, term, leader,
//	                       commit_index, applied_index, counters) plus
//	                       last_index, last_contact_ms, keys, clock_offset_ms, bugs
//	POST /admin/clock   {"offset_ms": N} -> 200 {"offset_ms": N}
//
// The clock offset only shifts the timestamps of this node's log lines
// (Raft itself uses the monotonic clock, so skew cannot affect it); it is
// reported in the status.
//
// # Bug switches
//
//	stale-read     GET is served from the local FSM on any node without
//	               confirming leadership (breaks linearizability).
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
// Durations take Go syntax ("300ms") or a bare number of milliseconds.
// Defaults (OptionDefaults returns them) are tuned for loopback and stay
// stable on a loaded 2-core machine:
//
//	heartbeat-timeout=300ms election-timeout=300ms leader-lease-timeout=150ms
//	commit-timeout=20ms snapshot-threshold=4096 snapshot-interval=10s
//	trailing-logs=1024 apply-timeout=3s transport-timeout=2s max-pool=3
//	lock-timeout=5s log-level=info unsynced-flush=2s
//
// unsynced-flush is read only with --bug lose-unsynced.
//
// Raft requires leader-lease-timeout <= heartbeat-timeout <= election-timeout.
package raftkv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/faultline/faultline/targets"
)

// Name is the system name under which raftkv is registered.
const Name = "raftkv"

// BugStaleRead serves reads from the local state on any node.
const BugStaleRead = "stale-read"

// Bugs lists raftkv's bug switches: name -> the guarantee it breaks.
var Bugs = map[string]string{
	BugStaleRead:    "GET is served from the local state machine on any node (leader or follower) without confirming leadership: a partitioned or lagging node returns stale values (breaks linearizability)",
	BugLoseUnsynced: "log entries are acknowledged (and writes answered ok) while only in process memory; they reach disk every unsynced-flush interval (default 2s): killing every node holding a write before the next flush loses the acknowledged write (breaks durability; caught by the final reads)",
}

func init() {
	targets.RegisterSystem(targets.System{
		Name:        Name,
		Description: "key-value store replicated with Raft (hashicorp/raft): CP, linearizable reads, writes and CAS",
		Bugs:        Bugs,
		Run:         Run,
	})
}

// optionDefaults are the tunables accepted in NodeConfig.Opts and their
// defaults. Raft requires leader-lease-timeout <= heartbeat-timeout <=
// election-timeout.
var optionDefaults = map[string]string{
	"heartbeat-timeout":    "300ms", // follower starts an election after 1-2x this without contact
	"election-timeout":     "300ms", // candidate restarts an election after 1-2x this
	"leader-lease-timeout": "150ms", // leader steps down after this without quorum contact
	"commit-timeout":       "20ms",  // max delay before an idle leader sends a heartbeat carrying the commit index
	"snapshot-threshold":   "4096",  // log entries since the last snapshot that trigger one
	"snapshot-interval":    "10s",   // how often raft checks the threshold
	"trailing-logs":        "1024",  // log entries kept after a snapshot
	"apply-timeout":        "3s",    // how long a request waits for its entry to commit (then 504, indefinite)
	"transport-timeout":    "2s",    // I/O deadline of one Raft RPC
	"max-pool":             "3",     // pooled Raft connections per peer
	"lock-timeout":         "5s",    // how long to wait for the data directory's lock (another process using it)
	"log-level":            "info",  // hclog level: trace, debug, info, warn, error
	"unsynced-flush":       "2s",    // bug lose-unsynced: how often in-memory log entries are written to disk
}

// OptionDefaults returns a copy of the accepted options with their defaults.
func OptionDefaults() map[string]string {
	out := make(map[string]string, len(optionDefaults))
	for k, v := range optionDefaults {
		out[k] = v
	}
	return out
}

type options struct {
	heartbeat, election, lease, commit time.Duration
	snapThreshold, trailingLogs        uint64
	snapInterval                       time.Duration
	applyTimeout, transportTimeout     time.Duration
	lockTimeout                        time.Duration
	unsyncedFlush                      time.Duration
	maxPool                            int
	logLevel                           string
}

func parseOptions(opts map[string]string) (options, error) {
	var o options
	for k := range opts {
		if _, ok := optionDefaults[k]; !ok {
			return o, fmt.Errorf("raftkv: unknown option %q (known: %s)", k, strings.Join(sortedKeys(optionDefaults), ", "))
		}
	}
	get := func(k string) string {
		if v, ok := opts[k]; ok {
			return v
		}
		return optionDefaults[k]
	}
	var errs []error
	dur := func(k string) time.Duration {
		s := get(k)
		if n, err := strconv.Atoi(s); err == nil {
			return time.Duration(n) * time.Millisecond
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("raftkv: option %s=%q: want a positive duration such as 300ms", k, s))
		}
		return d
	}
	num := func(k string) uint64 {
		s := get(k)
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("raftkv: option %s=%q: want a positive integer", k, s))
		}
		return n
	}
	o.heartbeat = dur("heartbeat-timeout")
	o.election = dur("election-timeout")
	o.lease = dur("leader-lease-timeout")
	o.commit = dur("commit-timeout")
	o.snapThreshold = num("snapshot-threshold")
	o.snapInterval = dur("snapshot-interval")
	o.trailingLogs = num("trailing-logs")
	o.applyTimeout = dur("apply-timeout")
	o.transportTimeout = dur("transport-timeout")
	o.maxPool = int(num("max-pool"))
	o.lockTimeout = dur("lock-timeout")
	o.unsyncedFlush = dur("unsynced-flush")
	o.logLevel = get("log-level")
	if hclog.LevelFromString(o.logLevel) == hclog.NoLevel {
		errs = append(errs, fmt.Errorf("raftkv: option log-level=%q: want trace, debug, info, warn or error", o.logLevel))
	}
	return o, errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
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

// node is one running raftkv node.
type node struct {
	cfg      targets.NodeConfig
	opts     options
	log      hclog.Logger
	raft     *raft.Raft
	fsm      *fsm
	barrier  *readBarrier
	staleOK  bool              // bug stale-read
	unsynced *unsyncedLogStore // bug lose-unsynced; nil without it
	clockOff atomic.Int64      // clock offset, ms
	started  time.Time

	counters struct {
		reads, writes, cas, casMismatch  atomic.Int64
		notLeader, indefinite, badReq    atomic.Int64
		staleReads, barriers, barrierErr atomic.Int64
	}
}

// Run serves one raftkv node until ctx is cancelled; see the package doc.
// It returns nil after a graceful stop, or an error if the node cannot start.
func Run(ctx context.Context, cfg targets.NodeConfig) error {
	if cfg.ID == "" || cfg.Listen == "" || cfg.Admin == "" || cfg.PeerListen == "" || cfg.DataDir == "" {
		return errors.New("raftkv: id, listen, admin, peer-listen and data are all required")
	}
	opts, err := parseOptions(cfg.Opts)
	if err != nil {
		return err
	}
	n := &node{cfg: cfg, opts: opts, fsm: newFSM(), started: time.Now()}
	loseUnsynced := false
	for _, b := range cfg.Bugs {
		switch b {
		case BugStaleRead:
			n.staleOK = true
		case BugLoseUnsynced:
			loseUnsynced = true
		default:
			return fmt.Errorf("raftkv: unknown bug switch %q (known: %s)", b, strings.Join(sortedKeys(Bugs), ", "))
		}
	}
	n.log = hclog.New(&hclog.LoggerOptions{
		Name:   "raftkv/" + cfg.ID,
		Level:  hclog.LevelFromString(opts.logLevel),
		Output: os.Stderr,
		TimeFn: func() time.Time {
			return time.Now().Add(time.Duration(n.clockOff.Load()) * time.Millisecond)
		},
		TimeFormat: "15:04:05.000",
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = opts.heartbeat
	rc.ElectionTimeout = opts.election
	rc.LeaderLeaseTimeout = opts.lease
	rc.CommitTimeout = opts.commit
	rc.SnapshotThreshold = opts.snapThreshold
	rc.SnapshotInterval = opts.snapInterval
	rc.TrailingLogs = opts.trailingLogs
	rc.Logger = n.log.Named("raft")
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raftkv: raft options: %w", err)
	}

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
	n.barrier = &readBarrier{raft: r, timeout: opts.applyTimeout, count: &n.counters.barriers, errs: &n.counters.barrierErr}
	defer func() {
		if err := r.Shutdown().Error(); err != nil {
			n.log.Warn("raft shutdown", "error", err)
		}
	}()

	clientLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("raftkv: client API listen on %s: %w", cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		clientLn.Close()
		return fmt.Errorf("raftkv: admin API listen on %s: %w", cfg.Admin, err)
	}
	clientSrv := &http.Server{Handler: n.clientMux(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	adminSrv := &http.Server{Handler: n.adminMux(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 2)
	go func() { errc <- clientSrv.Serve(clientLn) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()
	n.log.Info("serving", "client", clientLn.Addr().String(), "admin", adminLn.Addr().String(), "peer", cfg.PeerListen, "bugs", strings.Join(cfg.Bugs, ","))
	if cfg.Ready != nil {
		cfg.Ready()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("raftkv: http server: %w", err)
	}
	if cs, ok := ctx.Value(crashKey{}).(*crashSwitch); ok && cs.crashed.Load() {
		// In-process stand-in for SIGKILL (tests only): nothing more
		// reaches the disk, listeners close at once.
		if n.unsynced != nil {
			n.unsynced.abandon()
		}
		n.log.Info("crashing (test hook): unsynced log entries discarded")
		clientSrv.Close()
		adminSrv.Close()
		return nil
	}
	n.log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	clientSrv.Shutdown(sctx)
	adminSrv.Shutdown(sctx)
	return runErr
}

// readBarrier batches linearizable reads: a reader waits for a raft Barrier
// issued after it arrived; every reader that arrives while a barrier is in
// flight shares the next one. Safe for concurrent use.
type readBarrier struct {
	raft    *raft.Raft
	timeout time.Duration
	count   *atomic.Int64
	errs    *atomic.Int64

	mu      sync.Mutex
	next    *barrierRound // not yet issued; new readers join it
	running bool
}

type barrierRound struct {
	done chan struct{}
	err  error
}

var errBarrierTimeout = errors.New("timed out waiting for the read barrier to commit")

// wait returns nil once a barrier issued after the call began has committed
// and the FSM has applied every entry before it.
func (b *readBarrier) wait(ctx context.Context) error {
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
		return rd.err
	case <-ctx.Done():
		return ctx.Err()
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
		rd.err = waitFuture(b.raft.Barrier(b.timeout), b.timeout, errBarrierTimeout)
		if rd.err != nil {
			b.errs.Add(1)
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
