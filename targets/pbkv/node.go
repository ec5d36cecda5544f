package pbkv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
)

type role int

const (
	backup role = iota
	candidate
	primary
)

func (r role) String() string {
	switch r {
	case primary:
		return "primary"
	case candidate:
		return "candidate"
	}
	return "backup"
}

// maxBatch bounds the entries of one append message.
const maxBatch = 512

// tickEvery is how often a node checks its election deadline and, as
// primary, its majority contact.
const tickEvery = 10 * time.Millisecond

// applyResult is what a waiting write learns of its entry: applied (and
// whether a CAS found a mismatch), or lost: the primary stepped down
// before it committed (lost says why; the entry may still commit).
type applyResult struct {
	mismatch bool
	lost     string
}

type waiter struct {
	epoch uint64
	ch    chan applyResult // buffered (1): commitTo never blocks
}

// node is one running pbkv node. Lock order: fileMu before mu; mu is
// never held across network I/O, and across disk I/O only for meta.json
// (rare: a new epoch or a vote). Its exported behaviour (the nodekit.Store
// methods, the peer handlers) is safe for concurrent use.
type node struct {
	cfg       targets.NodeConfig
	opts      options
	noFencing bool
	kit       *nodekit.Node
	log       hclog.Logger
	tr        *transport
	peers     []string // the other nodes' ids, sorted
	quorum    int      // a majority of all nodes

	ctx    context.Context // set by start; done when the node stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the ticker, replicators and their helpers

	dead     atomic.Bool // the data directory failed: answer nothing more
	fatalMu  sync.Mutex
	fatalErr error

	// fileMu serializes changes to log.jsonl and every truncation of
	// entries, so that entries[:persisted] is what the file holds.
	fileMu sync.Mutex
	disk   *disk

	mu       sync.Mutex
	epoch    uint64 // durable (meta.json)
	votedFor string // durable (meta.json)
	entries  []entry
	// persisted is how many entries the log file holds; rewrite says the
	// file holds more (entries were truncated) and must be rewritten.
	persisted int
	rewrite   bool
	role      role
	leader    string // the primary of epoch, if known
	commit    uint64
	applied   uint64
	kv        map[string]json.RawMessage // entries applied up to applied
	heard     time.Time                  // last append accepted from a primary, or start: no votes within election-timeout
	contact   time.Time                  // last append accepted from a primary; zero: never
	deadline  time.Time                  // when a backup or candidate seeks election
	round     uint64                     // bumped by every (pre-)election and step-down: stale vote replies are ignored

	// Primary only (reset by becomePrimary).
	since   time.Time            // when it became primary
	noop    uint64               // the index of its epoch's first entry
	ready   chan struct{}        // closed once noop is committed
	next    map[string]uint64    // next index to send each peer
	match   map[string]uint64    // highest index each peer stored
	acked   map[string]time.Time // send time of the latest message each peer acknowledged
	waiters map[uint64]waiter    // writes waiting for their entry to apply
	kick    map[string]chan struct{}

	counters struct {
		elections, preVotes, promotions, stepDowns    atomic.Int64
		truncated, leaseRefusals, replTimeouts, unfen atomic.Int64
	}
}

func newNode(cfg targets.NodeConfig, o options, noFencing bool, kit *nodekit.Node, logger hclog.Logger, d *disk, m meta, entries []entry, cancel context.CancelFunc) *node {
	n := &node{
		cfg: cfg, opts: o, noFencing: noFencing, kit: kit, log: logger, disk: d, cancel: cancel,
		epoch: m.Epoch, votedFor: m.VotedFor, entries: entries, persisted: len(entries),
		kv: map[string]json.RawMessage{}, next: map[string]uint64{}, match: map[string]uint64{},
		acked: map[string]time.Time{}, waiters: map[uint64]waiter{}, kick: map[string]chan struct{}{},
	}
	for id := range cfg.Peers {
		if id != cfg.ID {
			n.peers = append(n.peers, id)
			n.kick[id] = make(chan struct{}, 1)
		}
	}
	sort.Strings(n.peers)
	n.quorum = (len(n.peers)+1)/2 + 1
	now := time.Now()
	n.heard = now // it may have acknowledged a primary just before it stopped
	n.resetDeadline(now)
	return n
}

// start runs the ticker and one replicator per peer until ctx is done.
func (n *node) start(ctx context.Context) {
	n.ctx = ctx
	n.wg.Add(1 + len(n.peers))
	go n.ticker(ctx)
	for _, p := range n.peers {
		go n.replicate(ctx, p)
	}
}

// wait waits for the goroutines start began (and their helpers).
func (n *node) wait() { n.wg.Wait() }

// die records the first fatal error (a failed write to the data
// directory) and stops the node: it may no longer answer anything that
// rests on state it could not store. Errors after the node began to stop
// are not recorded.
func (n *node) die(err error) {
	if n.ctx != nil && n.ctx.Err() != nil {
		return
	}
	n.dead.Store(true)
	n.fatalMu.Lock()
	if n.fatalErr == nil {
		n.fatalErr = err
		n.log.Error("stopping: the data directory failed", "error", err)
	}
	n.fatalMu.Unlock()
	n.cancel()
}

func (n *node) fatal() error {
	n.fatalMu.Lock()
	defer n.fatalMu.Unlock()
	return n.fatalErr
}

// closeDisk closes the data directory once nothing writes to it.
func (n *node) closeDisk() {
	n.fileMu.Lock()
	n.mu.Lock()
	n.disk.close()
	n.mu.Unlock()
	n.fileMu.Unlock()
}

func (n *node) lastIndex() uint64 { return uint64(len(n.entries)) }

func (n *node) lastEpoch() uint64 {
	if len(n.entries) == 0 {
		return 0
	}
	return n.entries[len(n.entries)-1].Epoch
}

func (n *node) epochAt(i uint64) uint64 {
	if i == 0 {
		return 0
	}
	return n.entries[i-1].Epoch
}

// resetDeadline sets the election deadline to a random 1-2x
// election-timeout from now. mu held.
func (n *node) resetDeadline(now time.Time) {
	n.deadline = now.Add(n.opts.election + rand.N(n.opts.election))
}

// saveMeta makes epoch and votedFor durable. mu held. On failure the node
// dies and saveMeta returns false.
func (n *node) saveMeta() bool {
	if err := n.disk.saveMeta(meta{Epoch: n.epoch, VotedFor: n.votedFor}); err != nil {
		n.die(err)
		return false
	}
	return true
}

// stepDown makes the node a backup following leader ("" unknown), at
// epoch if that is newer. A primary's waiting writes learn that their
// fate is unknown. mu held.
func (n *node) stepDown(epoch uint64, leader, reason string) {
	if epoch > n.epoch {
		n.epoch, n.votedFor = epoch, ""
		n.saveMeta()
	}
	if n.ready != nil {
		close(n.ready) // reads waiting for the no-op see the step-down
		n.ready = nil
	}
	if n.role == primary {
		n.counters.stepDowns.Add(1)
		n.log.Warn("stepping down", "epoch", n.epoch, "reason", reason)
		for i, w := range n.waiters {
			w.ch <- applyResult{lost: fmt.Sprintf("%s stepped down (%s)", n.cfg.ID, reason)}
			delete(n.waiters, i)
		}
	} else if n.role == candidate {
		n.log.Info("candidacy over", "epoch", n.epoch, "reason", reason)
	}
	n.role, n.leader = backup, leader
	n.round++
	n.resetDeadline(time.Now())
}

// ticker seeks election when the deadline passes and makes a primary
// without a majority's acknowledgement step down.
func (n *node) ticker(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		now := time.Now()
		switch {
		case n.role == primary:
			if !n.noFencing && now.Sub(n.majorityContact()) >= n.opts.election {
				n.stepDown(0, "", fmt.Sprintf("no majority acknowledged a message sent in the last %s", n.opts.election))
			}
		case now.After(n.deadline):
			n.campaign(ctx, now)
		}
		n.mu.Unlock()
	}
}

// majorityContact returns the send time of the latest message that a
// majority (this primary included) acknowledged in its epoch, or the time
// it became primary if none was. mu held.
func (n *node) majorityContact() time.Time {
	if c := n.leaseBase(); c.After(n.since) {
		return c
	}
	return n.since
}

// leaseBase returns the send time of the latest message a majority
// acknowledged in this epoch (zero if none; now when the node alone is a
// majority). mu held.
func (n *node) leaseBase() time.Time {
	need := n.quorum - 1
	if need == 0 {
		return time.Now()
	}
	ts := make([]time.Time, 0, len(n.peers))
	for _, p := range n.peers {
		ts = append(ts, n.acked[p])
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].After(ts[j]) })
	return ts[need-1]
}

// leaseLeft returns how long the primary's read lease still runs (<= 0:
// expired). mu held.
func (n *node) leaseLeft(now time.Time) time.Duration {
	b := n.leaseBase()
	if b.IsZero() {
		return 0
	}
	return b.Add(n.opts.lease).Sub(now)
}

// campaign is called when the election deadline passed. mu held.
func (n *node) campaign(ctx context.Context, now time.Time) {
	n.resetDeadline(now)
	if n.noFencing {
		// Bug no-fencing: promotion on the timeout alone.
		n.epoch, n.votedFor = n.epoch+1, n.cfg.ID
		if !n.saveMeta() {
			return
		}
		n.log.Warn("bug no-fencing: the primary is silent, promoting myself without votes", "epoch", n.epoch, "previous_primary", n.leader)
		n.becomePrimary(now)
		return
	}
	if n.role == candidate {
		n.elect(ctx) // the last election failed: try the next epoch
		return
	}
	// Pre-vote: would a majority vote for us at epoch+1?
	n.round++
	round := n.round
	n.counters.preVotes.Add(1)
	req := voteReq{Epoch: n.epoch + 1, Candidate: n.cfg.ID, LastEpoch: n.lastEpoch(), LastIndex: n.lastIndex(), Pre: true}
	n.log.Debug("pre-vote", "epoch", req.Epoch, "previous_primary", n.leader)
	n.askVotes(ctx, req, func() bool { return n.round == round && n.role == backup }, func() { n.elect(ctx) })
}

// elect becomes candidate for the next epoch and asks for votes. mu held.
func (n *node) elect(ctx context.Context) {
	n.round++
	round := n.round
	n.epoch, n.votedFor, n.role, n.leader = n.epoch+1, n.cfg.ID, candidate, ""
	if !n.saveMeta() {
		return
	}
	n.counters.elections.Add(1)
	n.resetDeadline(time.Now())
	n.log.Info("seeking election", "epoch", n.epoch, "last_epoch", n.lastEpoch(), "last_index", n.lastIndex())
	req := voteReq{Epoch: n.epoch, Candidate: n.cfg.ID, LastEpoch: n.lastEpoch(), LastIndex: n.lastIndex()}
	n.askVotes(ctx, req, func() bool { return n.round == round && n.role == candidate && n.epoch == req.Epoch }, func() { n.becomePrimary(time.Now()) })
}

// askVotes sends req to every peer and counts the grants, this node's own
// included, while still holds; won runs when they reach a quorum. An
// answer from a newer epoch makes this node step down. mu held.
func (n *node) askVotes(ctx context.Context, req voteReq, still func() bool, won func()) {
	grants := 1
	if grants >= n.quorum {
		won()
		return
	}
	for _, p := range n.peers {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			resp, err := n.tr.vote(ctx, p, req)
			if err != nil {
				return
			}
			n.mu.Lock()
			defer n.mu.Unlock()
			if resp.Epoch > n.epoch {
				n.stepDown(resp.Epoch, "", fmt.Sprintf("%s is at epoch %d", p, resp.Epoch))
				return
			}
			if !still() || !resp.Granted {
				return
			}
			if grants++; grants == n.quorum {
				won()
			}
		}()
	}
}

// becomePrimary takes the primary role in the current epoch and appends
// the epoch's no-op entry. mu held.
func (n *node) becomePrimary(now time.Time) {
	n.role, n.leader, n.since = primary, n.cfg.ID, now
	n.round++
	for _, p := range n.peers {
		n.next[p], n.match[p], n.acked[p] = n.lastIndex()+1, 0, time.Time{}
	}
	n.noop = n.lastIndex() + 1
	n.ready = make(chan struct{})
	n.entries = append(n.entries, entry{Epoch: n.epoch, Index: n.noop, Op: "noop"})
	n.counters.promotions.Add(1)
	n.log.Info("primary", "epoch", n.epoch, "last_index", n.lastIndex(), "commit_index", n.commit)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.flush()
	}()
	n.kickAll()
}

func (n *node) kickAll() {
	for _, ch := range n.kick {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// flush writes the entries not yet in the log file and fsyncs them.
func (n *node) flush() bool {
	n.fileMu.Lock()
	defer n.fileMu.Unlock()
	return n.flushLocked()
}

// flushLocked is flush with fileMu held. It returns false if the write
// failed (the node dies).
func (n *node) flushLocked() bool {
	n.mu.Lock()
	rewrite := n.rewrite
	var batch []entry
	if rewrite {
		batch = slices.Clone(n.entries)
	} else {
		batch = slices.Clone(n.entries[n.persisted:])
	}
	target := len(n.entries)
	n.mu.Unlock()
	if !rewrite && len(batch) == 0 {
		return true
	}
	var err error
	if rewrite {
		err = n.disk.rewrite(batch)
	} else {
		err = n.disk.append(batch)
	}
	if err != nil {
		n.die(err)
		return false
	}
	// Entries only grew meanwhile: truncating them needs fileMu.
	n.mu.Lock()
	n.persisted = target
	if rewrite {
		n.rewrite = false
	}
	if n.role == primary {
		n.advanceCommit()
	}
	n.mu.Unlock()
	return true
}

// advanceCommit commits the highest entry of the primary's epoch that a
// majority stored (with the bug: that it stored itself). mu held.
func (n *node) advanceCommit() {
	var c uint64
	if n.noFencing {
		c = uint64(n.persisted)
	} else {
		ms := []uint64{uint64(n.persisted)}
		for _, p := range n.peers {
			ms = append(ms, n.match[p])
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i] > ms[j] })
		c = ms[n.quorum-1]
	}
	if c > n.commit && n.epochAt(c) == n.epoch {
		n.commitTo(c)
	}
}

// commitTo raises the commit index to c (capped at the last entry) and
// applies the entries up to it, answering their waiting writes. mu held.
func (n *node) commitTo(c uint64) {
	c = min(c, n.lastIndex())
	if c <= n.commit {
		return
	}
	n.commit = c
	if n.role == primary && n.commit >= n.noop && n.ready != nil {
		close(n.ready)
		n.ready = nil
	}
	for n.applied < n.commit {
		e := n.entries[n.applied]
		n.applied++
		mismatch := n.apply(e)
		if w, ok := n.waiters[e.Index]; ok {
			delete(n.waiters, e.Index)
			if w.epoch == e.Epoch {
				w.ch <- applyResult{mismatch: mismatch}
			} else {
				w.ch <- applyResult{lost: fmt.Sprintf("entry %d was replaced by one of epoch %d", e.Index, e.Epoch)}
			}
		}
	}
}

// apply applies e to the registers; it reports a CAS whose register did
// not hold From. mu held.
func (n *node) apply(e entry) (mismatch bool) {
	switch e.Op {
	case "put":
		n.kv[e.Key] = e.Value
	case "cas":
		cur, ok := n.kv[e.Key]
		if !ok {
			cur = json.RawMessage("null")
		}
		if !bytes.Equal(cur, e.From) {
			return true
		}
		n.kv[e.Key] = e.Value
	}
	return false
}

// truncateFrom drops entries idx.. (a backup whose log diverges from the
// primary's). Committed entries are dropped only with the bug (a deposed
// primary's own writes); the registers are then rebuilt from the log.
// fileMu and mu held.
func (n *node) truncateFrom(idx uint64) {
	keep := int(idx - 1)
	dropped := len(n.entries) - keep
	if dropped <= 0 {
		return
	}
	n.log.Warn("truncating a divergent log", "from_index", idx, "entries", dropped, "from_epoch", n.entries[keep].Epoch, "commit_index", n.commit)
	n.entries = n.entries[:keep:keep]
	n.counters.truncated.Add(int64(dropped))
	if n.persisted > keep {
		n.persisted, n.rewrite = keep, true
	}
	if n.commit > uint64(keep) {
		n.log.Warn("discarding entries this node had taken as committed (bug no-fencing: they were never stored by a majority)", "entries", n.commit-uint64(keep))
		n.commit = uint64(keep)
	}
	if n.applied > n.commit {
		n.kv, n.applied = map[string]json.RawMessage{}, 0
		for n.applied < n.commit {
			n.apply(n.entries[n.applied])
			n.applied++
		}
	}
	for i, w := range n.waiters {
		if i >= idx {
			w.ch <- applyResult{lost: fmt.Sprintf("entry %d was truncated", i)}
			delete(n.waiters, i)
		}
	}
}

// replicate sends peer p what it lacks, and a heartbeat every
// heartbeat-interval, while this node is primary; one request at a time.
func (n *node) replicate(ctx context.Context, p string) {
	defer n.wg.Done()
	hb := time.NewTicker(n.opts.heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick[p]:
		case <-hb.C:
		}
		for ctx.Err() == nil {
			req, ok := n.appendFor(p)
			if !ok {
				break
			}
			sent := time.Now()
			resp, err := n.tr.appendEntries(ctx, p, req)
			if !n.onAppendResp(p, req, sent, resp, err) {
				break
			}
		}
	}
}

// appendFor builds the next append message for p; false if not primary.
func (n *node) appendFor(p string) (appendReq, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.role != primary || n.dead.Load() {
		return appendReq{}, false
	}
	prev := n.next[p] - 1
	end := min(n.lastIndex(), prev+maxBatch)
	return appendReq{
		Epoch: n.epoch, Leader: n.cfg.ID, PrevIndex: prev, PrevEpoch: n.epochAt(prev),
		Entries: slices.Clone(n.entries[prev:end]), Commit: n.commit,
	}, true
}

// onAppendResp takes p's answer to req, sent at sent; it reports whether
// there is more to send at once.
func (n *node) onAppendResp(p string, req appendReq, sent time.Time, resp appendResp, err error) bool {
	if err != nil {
		n.log.Trace("append failed", "peer", p, "error", err)
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if resp.Epoch > n.epoch {
		n.stepDown(resp.Epoch, "", fmt.Sprintf("%s answered with epoch %d", p, resp.Epoch))
		return false
	}
	if n.role != primary || n.epoch != req.Epoch {
		return false
	}
	if !resp.Success {
		// The logs diverge at or before resp.Hint: go back.
		n.next[p] = max(1, min(resp.Hint, n.next[p]-1))
		return true
	}
	m := req.PrevIndex + uint64(len(req.Entries))
	n.match[p] = max(n.match[p], m)
	n.next[p] = m + 1
	if sent.After(n.acked[p]) {
		n.acked[p] = sent
	}
	n.advanceCommit()
	return n.next[p] <= n.lastIndex()
}

// onAppend handles an append message (replication or heartbeat).
func (n *node) onAppend(req appendReq) appendResp {
	n.fileMu.Lock()
	defer n.fileMu.Unlock()
	n.mu.Lock()
	if req.Epoch < n.epoch {
		r := appendResp{Epoch: n.epoch}
		n.mu.Unlock()
		return r
	}
	if req.Epoch > n.epoch || n.role != backup {
		if req.Epoch == n.epoch && n.role == primary && !n.noFencing {
			// Votes allow one primary per epoch: this cannot happen.
			n.log.Error("another primary in my epoch: refusing its append", "epoch", n.epoch, "other", req.Leader)
			r := appendResp{Epoch: n.epoch}
			n.mu.Unlock()
			return r
		}
		n.stepDown(req.Epoch, req.Leader, fmt.Sprintf("%s leads epoch %d", req.Leader, req.Epoch))
	}
	now := time.Now()
	n.leader, n.heard, n.contact = req.Leader, now, now
	n.resetDeadline(now)
	if last := n.lastIndex(); req.PrevIndex > last {
		r := appendResp{Epoch: n.epoch, Hint: last + 1}
		n.mu.Unlock()
		return r
	}
	if e := n.epochAt(req.PrevIndex); e != req.PrevEpoch {
		h := req.PrevIndex // the first index of the conflicting epoch
		for h > 1 && n.epochAt(h-1) == e {
			h--
		}
		r := appendResp{Epoch: n.epoch, Hint: h}
		n.mu.Unlock()
		return r
	}
	for i, e := range req.Entries {
		if e.Index <= n.lastIndex() {
			if n.epochAt(e.Index) == e.Epoch {
				continue // already stored (a repeated or late message)
			}
			n.truncateFrom(e.Index)
		}
		n.entries = append(n.entries, req.Entries[i:]...)
		break
	}
	n.mu.Unlock()
	if !n.flushLocked() {
		return appendResp{Epoch: req.Epoch}
	}
	lastNew := req.PrevIndex + uint64(len(req.Entries))
	n.mu.Lock()
	defer n.mu.Unlock()
	n.commitTo(min(req.Commit, lastNew))
	return appendResp{Epoch: n.epoch, Success: true, Match: lastNew}
}

// onVote handles a (pre-)vote request.
func (n *node) onVote(req voteReq) voteResp {
	n.mu.Lock()
	defer n.mu.Unlock()
	if req.Epoch < n.epoch {
		return voteResp{Epoch: n.epoch, Reason: "older epoch"}
	}
	now := time.Now()
	if n.role == primary {
		return voteResp{Epoch: n.epoch, Reason: "I am the primary"}
	}
	if since := now.Sub(n.heard); since < n.opts.election {
		// A primary may hold a lease that rests on this node: no vote,
		// and no newer epoch, until election-timeout has passed.
		return voteResp{Epoch: n.epoch, Reason: fmt.Sprintf("heard from the primary %s ago", since.Round(time.Millisecond))}
	}
	upToDate := req.LastEpoch > n.lastEpoch() || (req.LastEpoch == n.lastEpoch() && req.LastIndex >= n.lastIndex())
	if req.Pre {
		return voteResp{Epoch: n.epoch, Granted: upToDate}
	}
	changed := false
	if req.Epoch > n.epoch {
		n.stepDown(req.Epoch, "", fmt.Sprintf("%s seeks election in epoch %d", req.Candidate, req.Epoch))
	}
	granted := false
	if upToDate && (n.votedFor == "" || n.votedFor == req.Candidate) {
		granted, changed = true, n.votedFor != req.Candidate
		n.votedFor = req.Candidate
		n.resetDeadline(now)
	}
	if changed && !n.saveMeta() {
		return voteResp{Epoch: n.epoch, Reason: "cannot store the vote"}
	}
	if granted {
		n.log.Info("voted", "epoch", n.epoch, "for", req.Candidate)
	}
	return voteResp{Epoch: n.epoch, Granted: granted}
}
