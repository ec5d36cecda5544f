package pbkv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/faultline/faultline/targets/nodekit"
)

// node implements nodekit.Store: the kit serves the node protocol, node
// answers from its log. Its methods are safe for concurrent use.
var _ nodekit.Store = (*node)(nil)

// notPrimary is the definite refusal of a node that is not the primary.
// mu held.
func (n *node) notPrimary() error {
	leader := n.leader
	if leader == n.cfg.ID {
		leader = ""
	}
	msg := fmt.Sprintf("not the primary (%s is %s in epoch %d); retry on the primary", n.cfg.ID, n.role, n.epoch)
	if leader == "" {
		msg = fmt.Sprintf("not the primary, and no primary is known (%s is %s in epoch %d); retry later", n.cfg.ID, n.role, n.epoch)
	}
	if n.dead.Load() {
		msg = fmt.Sprintf("%s is stopping: its data directory failed", n.cfg.ID)
	}
	return &nodekit.Error{Code: http.StatusServiceUnavailable, Definite: true, Leader: leader, Kind: "not_primary", Msg: msg}
}

// Get implements nodekit.Store: the primary's registers, served only while
// its lease holds and its epoch's first entry has committed (with the bug
// no-fencing: whenever it believes it is primary).
func (n *node) Get(ctx context.Context, key string) (json.RawMessage, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.role != primary || n.dead.Load() {
		return nil, n.notPrimary()
	}
	if !n.noFencing {
		if n.commit < n.noop {
			// Just elected: wait (a little) for the epoch's first entry.
			ready, epoch := n.ready, n.epoch
			n.mu.Unlock()
			t := time.NewTimer(n.opts.replication)
			select {
			case <-ready:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			n.mu.Lock()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if n.role != primary || n.epoch != epoch || n.dead.Load() {
				return nil, n.notPrimary()
			}
		}
		if n.commit < n.noop {
			return nil, &nodekit.Error{Code: http.StatusServiceUnavailable, Definite: true, Kind: "not_ready",
				Msg: fmt.Sprintf("%s became primary of epoch %d and no majority has stored its first entry yet; retry shortly", n.cfg.ID, n.epoch)}
		}
		if left := n.leaseLeft(time.Now()); left <= 0 {
			n.counters.leaseRefusals.Add(1)
			return nil, &nodekit.Error{Code: http.StatusServiceUnavailable, Definite: true, Kind: "no_lease",
				Msg: fmt.Sprintf("%s is primary of epoch %d but its read lease ran out %s ago (no majority acknowledged it lately): a newer primary may exist; retry on it", n.cfg.ID, n.epoch, (-left).Round(time.Millisecond))}
		}
	}
	nodekit.AnsweredIn(ctx, n.epoch)
	return n.kv[key], nil
}

// Put implements nodekit.Store.
func (n *node) Put(ctx context.Context, key string, value json.RawMessage) error {
	return n.write(ctx, entry{Op: "put", Key: key, Value: value})
}

// CAS implements nodekit.Store; the comparison is made when the entry is
// applied, in log order.
func (n *node) CAS(ctx context.Context, key string, from, to json.RawMessage) error {
	return n.write(ctx, entry{Op: "cas", Key: key, From: from, Value: to})
}

// write appends e at the primary and waits until it is applied (a
// majority stored it), replication-timeout passes, or the primary steps
// down. Once appended the entry may commit whether or not the client
// still waits, so every failure after the append is indefinite.
func (n *node) write(ctx context.Context, e entry) error {
	n.mu.Lock()
	if n.role != primary || n.dead.Load() {
		err := n.notPrimary()
		n.mu.Unlock()
		return err
	}
	e.Epoch, e.Index = n.epoch, n.lastIndex()+1
	n.entries = append(n.entries, e)
	ch := make(chan applyResult, 1)
	n.waiters[e.Index] = waiter{epoch: e.Epoch, ch: ch}
	n.kickAll()
	n.mu.Unlock()

	if !n.flush() {
		return &nodekit.Error{Code: http.StatusInternalServerError, Msg: fmt.Sprintf("%s could not store entry %d: its data directory failed (the write may still commit)", n.cfg.ID, e.Index)}
	}
	t := time.NewTimer(n.opts.replication)
	defer t.Stop()
	forget := func() {
		n.mu.Lock()
		if w, ok := n.waiters[e.Index]; ok && w.ch == ch {
			delete(n.waiters, e.Index)
		}
		n.mu.Unlock()
	}
	select {
	case r := <-ch:
		if r.lost != "" {
			return &nodekit.Error{Code: http.StatusServiceUnavailable, Kind: "deposed",
				Msg: fmt.Sprintf("%s before entry %d of epoch %d committed; the write may still commit", r.lost, e.Index, e.Epoch)}
		}
		if n.noFencing {
			n.countUnfenced(e.Index)
		}
		nodekit.AnsweredIn(ctx, e.Epoch)
		if r.mismatch {
			return nodekit.ErrMismatch
		}
		return nil
	case <-t.C:
		forget()
		n.counters.replTimeouts.Add(1)
		return &nodekit.Error{Code: http.StatusGatewayTimeout, Kind: "replication_timeout",
			Msg: fmt.Sprintf("entry %d of epoch %d was not stored by a majority within replication-timeout %s; it may still commit", e.Index, e.Epoch, n.opts.replication)}
	case <-ctx.Done():
		forget()
		return ctx.Err()
	}
}

// countUnfenced counts an acknowledgement (bug no-fencing) of entry idx
// that fewer than a majority had stored.
func (n *node) countUnfenced(idx uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	stored := 1
	for _, p := range n.peers {
		if n.match[p] >= idx {
			stored++
		}
	}
	if stored < n.quorum {
		n.counters.unfen.Add(1)
	}
}

// LocalGet implements nodekit.Store: this replica's registers, as applied.
func (n *node) LocalGet(key string) json.RawMessage {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.kv[key]
}

// Status implements nodekit.Store; see the package doc for the fields.
func (n *node) Status() nodekit.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	leader := n.leader
	if n.role == candidate {
		leader = ""
	}
	var lease int64
	if n.role == primary {
		lease = max(0, n.leaseLeft(now).Milliseconds())
	}
	lastContact := int64(-1)
	switch {
	case n.role == primary:
		lastContact = 0
	case !n.contact.IsZero():
		lastContact = now.Sub(n.contact).Milliseconds()
	}
	s := nodekit.Status{
		Role:         n.role.String(),
		Term:         n.epoch,
		Leader:       leader,
		CommitIndex:  n.commit,
		AppliedIndex: n.applied,
		Counters: map[string]int64{
			"elections":            n.counters.elections.Load(),
			"pre_votes":            n.counters.preVotes.Load(),
			"promotions":           n.counters.promotions.Load(),
			"step_downs":           n.counters.stepDowns.Load(),
			"truncated_entries":    n.counters.truncated.Load(),
			"lease_refusals":       n.counters.leaseRefusals.Load(),
			"replication_timeouts": n.counters.replTimeouts.Load(),
		},
		Extra: map[string]any{
			"last_index":      n.lastIndex(),
			"last_epoch":      n.lastEpoch(),
			"voted_for":       n.votedFor,
			"lease_ms":        lease,
			"last_contact_ms": lastContact,
			"keys":            len(n.kv),
		},
	}
	if n.noFencing {
		s.Counters["unfenced_acks"] = n.counters.unfen.Load()
	}
	return s
}
