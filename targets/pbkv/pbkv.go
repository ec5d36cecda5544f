// Package pbkv is faultline's primary-backup key-value store: one primary,
// the other nodes its backups, with epochs as fencing tokens. It registers
// itself as the system "pbkv" (see targets.RegisterSystem); run a node with
// targets.RunNode or `faultline node --system pbkv ...`. With --bug
// no-fencing it is the textbook split brain.
//
// # Protocol
//
// The nodes keep a log of entries (epoch, index, operation); the state (the
// registers) is the log applied up to the commit index. Every peer message
// carries the sender's epoch: a receiver rejects an older epoch (and says
// its own), and on a newer one adopts it and steps down to backup. The
// peer protocol is HTTP/JSON on NodeConfig.PeerListen (POST /peer/append,
// POST /peer/vote; with a token, NodeConfig.Token, it requires it as the
// client and admin APIs do). A node reaches its peers only through the
// addresses in NodeConfig.Peers (so a proxy can sit on every directed
// link), with one replication request in flight per peer, at most 4
// connections per peer, every request bounded by rpc-timeout.
//
//   - Elections. A backup that has not heard the primary for a randomized
//     1-2x election-timeout first asks the others whether they would vote
//     for it (a pre-vote, which changes no state, so a node cut off from
//     the majority does not inflate its epoch and depose a healthy primary
//     when it returns); if a majority would, it becomes candidate for its
//     epoch+1 and asks for votes. A node grants one vote per epoch, only to
//     a candidate whose log is at least as up to date as its own (last
//     entry's epoch, then index), and none while it has heard from a
//     primary within election-timeout (or is primary itself). A candidate
//     with a majority (itself included) becomes primary and appends a
//     no-op entry of its epoch.
//   - Replication. The primary sends every backup the entries it lacks
//     (Raft's AppendEntries: the previous entry's epoch and index must
//     match, else the backup answers where its log diverges and the primary
//     goes back); a backup with entries of an older epoch that the primary
//     does not have truncates them. So the new primary brings every backup
//     to its own log at the new epoch. Idle, it sends the same message
//     empty every heartbeat-interval.
//   - Writes (PUT, CAS) are appended by the primary in arrival order and
//     answered once a majority (the primary included) stored them durably
//     and the primary applied them: the entry is committed. A CAS is
//     decided when it is applied, in log order, so against every write
//     before it. Only entries of the primary's own epoch are committed by
//     counting; earlier ones commit with them.
//   - Reads (GET) are served by the primary only while it holds a lease
//     and has committed its epoch's no-op (fenced reads). The lease is
//     renewed by a majority acknowledging messages of the current epoch and
//     lasts lease-duration from the send time of the acknowledged message
//     (monotonic clock). lease-duration < election-timeout, and a node
//     neither starts an election nor votes within election-timeout of
//     hearing the primary (nor of starting: a restarted node may have
//     acknowledged a message just before it died), so no other primary can
//     be elected while a lease holds.
//   - A primary that has not had a majority's acknowledgement for
//     election-timeout steps down to backup; a deposed primary that hears
//     the newer epoch steps down and catches up from the new primary.
//
// # Storage
//
// DATA/meta.json holds the epoch and the vote, replaced atomically and
// fsync'd before any answer that depends on them; DATA/log.jsonl holds the
// log, one JSON entry per line, fsync'd before an entry counts as stored
// (rewritten atomically when a backup truncates). A node killed (SIGKILL)
// and restarted on the same directory keeps its epoch, its vote and every
// entry it acknowledged; it starts as a backup that has committed nothing
// and learns the commit index from the primary. DATA/LOCK (flock) keeps a
// second process off the directory. The log is never compacted: a node
// holds every entry in memory, which suits runs of minutes.
//
// # Node protocol
//
// The client and admin APIs are the node kit's (package targets/nodekit).
// A node that is not the primary answers 503 {"definite": true, "leader":
// ID} (ID empty when it knows no primary). A read at a primary whose lease
// has run out is refused the same way (without a leader); one at a primary
// just elected waits up to replication-timeout for its epoch's no-op to
// commit, then is refused so. A write that was appended but not committed
// within replication-timeout is a 504, and one whose primary stepped down
// before it committed a 503, both indefinite: it may still commit. Every
// answer carries the epoch it rests on ("term": the epoch of the committed
// entry for writes and CAS, mismatches included; the leased epoch for
// reads), which the split-brain checker judges.
//
// The status (GET /admin/status) has role "primary", "backup" or
// "candidate", term = the epoch, leader = the primary this node follows,
// commit_index, applied_index, plus last_index, last_epoch, voted_for,
// lease_ms (a primary's remaining lease; 0 without one), last_contact_ms
// (a backup's time since it last heard the primary; -1 never) and keys.
// The counters are elections, pre_votes, promotions, step_downs,
// truncated_entries, lease_refusals, replication_timeouts and, with the
// bug, unfenced_acks.
//
// The node's clock as set through POST /admin/clock (the kit's Now) only
// shows in the timestamps of its log lines: elections, leases and timeouts
// use the monotonic clock, so clock faults cannot affect them.
//
// # Bug switches
//
//	no-fencing  a backup that stops hearing the primary promotes itself
//	            to primary of epoch+1 on the timeout alone (no votes),
//	            and a primary acknowledges writes once it stored them
//	            itself (no majority), serves reads without a lease and
//	            never steps down for want of a majority. Cut off from its
//	            backups, the old primary keeps acknowledging writes under
//	            its old epoch while a backup leads the next one; when the
//	            partition heals it hears the newer epoch, steps down and
//	            truncates its own writes: split brain, then lost
//	            acknowledged writes.
//
// # Options (NodeConfig.Opts)
//
// Durations take Go syntax ("300ms") or a bare number of milliseconds.
// Options lists them with their defaults, tuned for loopback on a loaded
// 2-core machine. CheckOptions requires heartbeat-interval <
// lease-duration < election-timeout.
package pbkv

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
)

// Name is the system name under which pbkv is registered.
const Name = "pbkv"

// BugNoFencing turns off elections by vote, majority acknowledgement and
// leases (see the package doc).
const BugNoFencing = "no-fencing"

// Bugs lists pbkv's bug switches: name -> the guarantee it breaks.
var Bugs = map[string]string{
	BugNoFencing: "a backup that stops hearing the primary promotes itself on the timeout alone (no votes), and a primary acknowledges writes it stored locally (no majority) and serves reads without a lease: a primary cut off from its backups keeps acknowledging under its old epoch while a backup leads the next, and its writes vanish when it heals and catches up (breaks split-brain freedom, linearizability and durability of acknowledged writes)",
}

func init() {
	targets.RegisterSystem(nodekit.Hooks(targets.System{
		Name:        Name,
		Description: "primary-backup key-value store with epochs as fencing tokens: majority-acknowledged writes, leased reads at the primary, elections by vote",
		Roles: []targets.Role{{
			Name: "node", Doc: "the primary serves reads, writes and CAS; a backup names the primary",
			Nodes: 3, Min: 1, Serves: true,
		}},
		Bugs:         Bugs,
		Options:      Options,
		CheckOptions: CheckOptions,
		Client:       "http",
		Workload:     "register",
		Checkers:     []string{"linearizability", "lost-writes", "split-brain", "convergence"},
		PeerLinks:    true,
		Run:          Run,
	}))
}

// Options are the tunables accepted in NodeConfig.Opts (read only), with
// their defaults. CheckOptions requires heartbeat-interval <
// lease-duration < election-timeout.
var Options = []targets.Option{
	{Name: "heartbeat-interval", Default: "50ms", Doc: "how often an idle primary sends each backup an empty append (a heartbeat)"},
	{Name: "election-timeout", Default: "500ms", Doc: "a backup that has not heard the primary for a random 1-2x this seeks election; a node votes for nobody within this of hearing the primary; a primary without a majority's acknowledgement for this long steps down"},
	{Name: "lease-duration", Default: "300ms", Doc: "how long after sending a message that a majority acknowledged the primary may serve reads (must be below election-timeout)"},
	{Name: "replication-timeout", Default: "800ms", Doc: "how long a write waits for a majority to store it before the answer is 504 (indefinite: it may still commit)"},
	{Name: "rpc-timeout", Default: "250ms", Doc: "deadline of one peer request, connecting included"},
	{Name: "lock-timeout", Default: "5s", Doc: "how long to wait for the data directory's lock (another process using it)"},
	{Name: "log-level", Default: "info", Doc: "log level: trace, debug, info, warn, error"},
}

// OptionDefaults returns the accepted options with their defaults.
func OptionDefaults() map[string]string { return nodekit.OptionDefaults(Options) }

// CheckOptions says what is wrong with opts (unknown names, bad values,
// timeouts in the wrong order), naming each bad option; nil if nothing is.
// targets.System.CheckOptions runs it at validation, before anything
// starts, and Run runs it again in the node.
func CheckOptions(opts map[string]string) error {
	_, err := parseOptions(opts)
	return err
}

type options struct {
	heartbeat, election, lease    time.Duration
	replication, rpc, lockTimeout time.Duration
	logLevel                      string
}

func parseOptions(opts map[string]string) (options, error) {
	var o options
	p := nodekit.ParseOptions(Name, Options, opts)
	if err := p.Err(); err != nil {
		return o, err
	}
	o.heartbeat = p.Duration("heartbeat-interval")
	o.election = p.Duration("election-timeout")
	o.lease = p.Duration("lease-duration")
	o.replication = p.Duration("replication-timeout")
	o.rpc = p.Duration("rpc-timeout")
	o.lockTimeout = p.Duration("lock-timeout")
	o.logLevel = p.LogLevel("log-level")
	if p.Err() == nil {
		if o.lease >= o.election {
			p.Errorf("options lease-duration=%s, election-timeout=%s: the lease must be shorter than the election timeout, or a new primary could be elected while the old one still serves reads on its lease", o.lease, o.election)
		}
		if o.heartbeat >= o.lease {
			p.Errorf("options heartbeat-interval=%s, lease-duration=%s: heartbeats must come more often than the lease runs out, or the primary loses its lease between two of them", o.heartbeat, o.lease)
		}
	}
	return o, p.Err()
}

// Run serves one pbkv node until ctx is cancelled; see the package doc.
// It returns nil after a graceful stop, or an error if the node cannot
// start or its data directory fails (a node that cannot store what it
// acknowledges stops).
func Run(ctx context.Context, cfg targets.NodeConfig) error {
	if cfg.ID == "" || cfg.Listen == "" || cfg.Admin == "" || cfg.PeerListen == "" || cfg.DataDir == "" {
		return errors.New("pbkv: id, listen, admin, peer-listen and data are all required")
	}
	o, err := parseOptions(cfg.Opts)
	if err != nil {
		return err
	}
	if err := nodekit.CheckBugs(Name, cfg.Bugs, Bugs); err != nil {
		return err
	}
	noFencing := slices.Contains(cfg.Bugs, BugNoFencing)
	kit := nodekit.New(cfg)
	logger := kit.NewLogger(Name, o.logLevel)

	d, m, entries, err := openDisk(cfg.DataDir, o.lockTimeout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := newNode(cfg, o, noFencing, kit, logger, d, m, entries, cancel)
	defer n.closeDisk()

	tr := newTransport(cfg, o.rpc)
	defer tr.close()
	n.tr = tr
	srv, err := n.servePeers(cfg.PeerListen)
	if err != nil {
		return err
	}
	logger.Info("started", "peer", srv.addr, "epoch", m.Epoch, "voted_for", m.VotedFor, "last_index", len(entries), "no_fencing", noFencing)
	n.start(ctx)

	err = kit.Serve(ctx, n)
	cancel()
	srv.close()
	n.wait()
	if ferr := n.fatal(); ferr != nil {
		return ferr
	}
	return err
}
