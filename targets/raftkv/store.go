package raftkv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/faultline/faultline/targets/nodekit"
)

// node implements nodekit.Store: the kit serves the node protocol, node
// answers from Raft. Its methods are safe for concurrent use.
var _ nodekit.Store = (*node)(nil)

var errApplyTimeout = errors.New("timed out waiting for the entry to commit")

func (n *node) leaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// notLeader is the definite refusal of a node that does not lead.
func (n *node) notLeader() error {
	leader := n.leaderID()
	msg := "not the leader"
	if leader == "" {
		msg = "not the leader, and no leader is known"
	}
	return &nodekit.Error{
		Code: http.StatusServiceUnavailable, Definite: true, Leader: leader, Kind: "not_leader",
		Msg: msg + " (" + n.cfg.ID + " is " + strings.ToLower(n.raft.State().String()) + "); retry on the leader",
	}
}

// raftError maps an error of raft.Apply or raft.Barrier to the client's
// answer. See the package doc for which errors are definite.
func (n *node) raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
		return &nodekit.Error{Code: http.StatusServiceUnavailable, Definite: true, Leader: n.leaderID(), Msg: fmt.Sprintf("%v (not proposed)", err)}
	case errors.Is(err, errApplyTimeout), errors.Is(err, errBarrierTimeout):
		return &nodekit.Error{Code: http.StatusGatewayTimeout, Leader: n.leaderID(), Msg: fmt.Sprintf("%v after %s (the entry may still commit)", err, n.opts.applyTimeout)}
	}
	return &nodekit.Error{Code: http.StatusServiceUnavailable, Leader: n.leaderID(), Msg: fmt.Sprintf("%v (the entry may still commit)", err)}
}

// Get implements nodekit.Store: a linearizable read on the leader (after a
// read barrier), answered under the term current once the barrier
// committed; or, with a read bug, the local state where the bug allows it
// (see the package doc's Bug switches), answered under the term the node
// believes it leads in.
func (n *node) Get(ctx context.Context, key string) (json.RawMessage, error) {
	switch {
	case n.followerRead:
		// Answer from the local state, whoever we are.
		n.counters.staleReads.Add(1)
		if n.raft.State() == raft.Leader {
			nodekit.AnsweredIn(ctx, n.raft.CurrentTerm())
		}
		return n.fsm.get(key), nil
	case n.staleRead:
		// Once a barrier of ours committed in term T, answer locally for
		// as long as the current term is T, whatever raft's state.
		if t := n.barrierTerm.Load(); t != 0 && t == n.raft.CurrentTerm() {
			n.counters.staleReads.Add(1)
			nodekit.AnsweredIn(ctx, t)
			return n.fsm.get(key), nil
		}
	case n.lease != nil:
		// Answer locally while the lease is unexpired by our own clock.
		if t, ok, _ := n.lease.valid(n.kit.Now()); ok {
			n.counters.leaseReads.Add(1)
			nodekit.AnsweredIn(ctx, t)
			return n.fsm.get(key), nil
		}
	}
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	term, err := n.barrier.wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the client went away
		}
		return nil, n.raftError(err)
	}
	nodekit.AnsweredIn(ctx, term)
	return n.fsm.get(key), nil
}

// Put implements nodekit.Store; the answer carries the term of the entry.
func (n *node) Put(ctx context.Context, key string, value json.RawMessage) error {
	return n.apply(ctx, command{Op: "put", Key: key, Value: value})
}

// CAS implements nodekit.Store; the comparison is made when the entry is
// applied, and the answer (a mismatch too) carries the entry's term.
func (n *node) CAS(ctx context.Context, key string, from, to json.RawMessage) error {
	return n.apply(ctx, command{Op: "cas", Key: key, From: from, To: to})
}

// LocalGet implements nodekit.Store: this replica's FSM, as it is.
func (n *node) LocalGet(key string) json.RawMessage { return n.fsm.get(key) }

// apply proposes c and returns once it is applied (or failed); an applied
// entry's term goes to the answer (nodekit.AnsweredIn on ctx). ctx does
// not cancel anything: once proposed, an entry may commit whether or not
// the client still waits.
func (n *node) apply(ctx context.Context, c command) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	data, err := json.Marshal(c)
	if err != nil {
		return &nodekit.Error{Code: http.StatusInternalServerError, Definite: true, Msg: fmt.Sprintf("encode command: %v", err)}
	}
	f := n.raft.Apply(data, n.opts.applyTimeout)
	if err := waitFuture(f, n.opts.applyTimeout, errApplyTimeout); err != nil {
		return n.raftError(err)
	}
	res, _ := f.Response().(applyResult)
	switch {
	case res.Err != nil:
		// Deterministic on every replica: the entry was applied as a no-op.
		return &nodekit.Error{Code: http.StatusInternalServerError, Definite: true, Msg: res.Err.Error()}
	case res.Mismatch:
		nodekit.AnsweredIn(ctx, res.Term)
		return nodekit.ErrMismatch
	}
	nodekit.AnsweredIn(ctx, res.Term)
	return nil
}

// Status implements nodekit.Store: Raft's view of this node, plus
// last_index, last_contact_ms (since the last contact with a leader; 0 on
// the leader, -1 never) and keys; with the lease-read bug, lease_term and
// lease_left_ms (how long the lease still runs by the node's clock, 0 when
// expired).
func (n *node) Status() nodekit.Status {
	st := n.raft.State()
	s := nodekit.Status{
		Role:         strings.ToLower(st.String()),
		Term:         n.raft.CurrentTerm(),
		Leader:       n.leaderID(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		Counters: map[string]int64{
			"stale_reads":    n.counters.staleReads.Load(),
			"lease_reads":    n.counters.leaseReads.Load(),
			"barriers":       n.counters.barriers.Load(),
			"barrier_errors": n.counters.barrierErr.Load(),
		},
		Extra: map[string]any{
			"last_index": n.raft.LastIndex(),
			"keys":       n.fsm.len(),
		},
	}
	if n.lease != nil {
		term, _, left := n.lease.valid(n.kit.Now())
		s.Extra["lease_term"] = term
		s.Extra["lease_left_ms"] = left.Milliseconds()
	}
	if u := n.unsynced; u != nil {
		// Bug lose-unsynced: entries in memory only, and flush progress.
		s.Counters["unsynced_pending"] = u.pendingN.Load()
		s.Counters["unsynced_flushes"] = u.flushes.Load()
		s.Counters["unsynced_flushed"] = u.flushed.Load()
	}
	var lastContact int64
	switch lc := n.raft.LastContact(); {
	case st == raft.Leader:
	case lc.IsZero():
		lastContact = -1
	default:
		lastContact = time.Since(lc).Milliseconds()
	}
	s.Extra["last_contact_ms"] = lastContact
	return s
}
