package raftkv

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// BugLoseUnsynced acknowledges log entries before they are durable.
const BugLoseUnsynced = "lose-unsynced"

// unsyncedLogStore is the raft.LogStore of the lose-unsynced bug. It tells
// raft an entry is stored as soon as it is in this process's memory, and
// writes it to the durable store (bbolt, fsync per write) only at the next
// flush: every flush interval, before a snapshot is created (see
// flushingSnapshots) and on a graceful Close. So a node acknowledges
// AppendEntries, and a leader counts itself towards a commit, on entries a
// process kill discards; if every copy of a committed entry was unsynced
// when its holders died, the entry (and the acknowledged write in it) is
// gone from the cluster.
//
// Deletions (log compaction, and truncation of a conflicting suffix) reach
// the durable store at once. The durable log therefore stays what raft
// needs on restart: the log as of the last flush, less a prefix
// (compaction) or a suffix (truncation); it never has a hole after the
// latest snapshot. Term and vote (the raft.StableStore) are not wrapped and
// stay durable: the bug breaks one guarantee, the durability of the log.
//
// All methods are safe for concurrent use. Pending entries are kept sorted
// by index; an entry stored at an index that is already pending replaces it.
type unsyncedLogStore struct {
	durable raft.LogStore
	onError func(error) // reports a failed periodic flush; may be nil

	mu      sync.Mutex
	pending []*raft.Log // sorted by Index, no duplicates
	crashed bool        // abandon was called: nothing more reaches durable
	closed  bool

	flushes   atomic.Int64 // flushes that wrote at least one entry
	flushed   atomic.Int64 // entries written by flushes
	pendingN  atomic.Int64 // len(pending), for status without the lock
	abandoned atomic.Int64 // entries discarded by abandon

	stop chan struct{}
	done chan struct{}
}

// newUnsyncedLogStore wraps durable and starts a goroutine flushing every
// interval (> 0) until Close; onError (may be nil) hears of failed periodic
// flushes, whose entries stay pending for the next one. It does not own
// durable: Close flushes but does not close it.
func newUnsyncedLogStore(durable raft.LogStore, interval time.Duration, onError func(error)) *unsyncedLogStore {
	s := &unsyncedLogStore{durable: durable, onError: onError, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop(interval)
	return s
}

func (s *unsyncedLogStore) loop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.flush(); err != nil && s.onError != nil {
				s.onError(err)
			}
		}
	}
}

// search returns the position of index in pending, or where it would go.
func (s *unsyncedLogStore) search(index uint64) int {
	return sort.Search(len(s.pending), func(i int) bool { return s.pending[i].Index >= index })
}

// FirstIndex implements raft.LogStore: the lowest index held durably or
// pending, 0 if none.
func (s *unsyncedLogStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, err := s.durable.FirstIndex()
	if err != nil {
		return 0, err
	}
	if len(s.pending) > 0 && (first == 0 || s.pending[0].Index < first) {
		first = s.pending[0].Index
	}
	return first, nil
}

// LastIndex implements raft.LogStore: the highest index held durably or
// pending, 0 if none.
func (s *unsyncedLogStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, err := s.durable.LastIndex()
	if err != nil {
		return 0, err
	}
	if n := len(s.pending); n > 0 && s.pending[n-1].Index > last {
		last = s.pending[n-1].Index
	}
	return last, nil
}

// GetLog implements raft.LogStore; a pending entry shadows a durable one.
func (s *unsyncedLogStore) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.search(index); i < len(s.pending) && s.pending[i].Index == index {
		*log = *s.pending[i]
		return nil
	}
	return s.durable.GetLog(index, log)
}

// StoreLog implements raft.LogStore.
func (s *unsyncedLogStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: the entries are kept in memory and
// reported stored; see the type doc.
func (s *unsyncedLogStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("raftkv: log store is closed")
	}
	for _, l := range logs {
		cp := *l
		n := len(s.pending)
		if n == 0 || s.pending[n-1].Index < cp.Index {
			s.pending = append(s.pending, &cp)
			continue
		}
		i := s.search(cp.Index)
		if s.pending[i].Index == cp.Index {
			s.pending[i] = &cp
			continue
		}
		s.pending = append(s.pending, nil)
		copy(s.pending[i+1:], s.pending[i:])
		s.pending[i] = &cp
	}
	s.pendingN.Store(int64(len(s.pending)))
	return nil
}

// DeleteRange implements raft.LogStore: it removes [min, max] from the
// pending entries and, at once, from the durable store.
func (s *unsyncedLogStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo, hi := s.search(min), s.search(max+1)
	s.pending = append(s.pending[:lo], s.pending[hi:]...)
	s.pendingN.Store(int64(len(s.pending)))
	if s.crashed {
		return nil
	}
	return s.durable.DeleteRange(min, max)
}

// flush writes every pending entry to the durable store in one
// transaction. After abandon or Close it writes nothing.
func (s *unsyncedLogStore) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed || s.closed || len(s.pending) == 0 {
		return nil
	}
	if err := s.durable.StoreLogs(s.pending); err != nil {
		return fmt.Errorf("raftkv: flush %d unsynced log entries (%d..%d): %w", len(s.pending), s.pending[0].Index, s.pending[len(s.pending)-1].Index, err)
	}
	s.flushes.Add(1)
	s.flushed.Add(int64(len(s.pending)))
	clear(s.pending) // drop the references for the collector
	s.pending = s.pending[:0]
	s.pendingN.Store(0)
	return nil
}

// abandon models the process dying: from now on nothing reaches the
// durable store (pending entries are never written, deletions are not
// applied), while raft, still shutting down, keeps a consistent in-memory
// view. Used only by the in-process crash hook (see crashSwitch); a real
// SIGKILL needs no hook.
func (s *unsyncedLogStore) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.crashed {
		s.crashed = true
		s.abandoned.Store(int64(len(s.pending)))
	}
}

// Close stops the flush goroutine and flushes what is pending (nothing
// after abandon). Further stores fail. It does not close the durable store.
// Call it once, after raft has shut down.
func (s *unsyncedLogStore) Close() error {
	close(s.stop)
	<-s.done
	err := s.flush()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return err
}

// flushingSnapshots is the snapshot store of the lose-unsynced bug: it
// flushes the unsynced log before every snapshot is created. A snapshot is
// the FSM state up to an applied index, and every applied entry is stored
// (pending or durable), so after the flush the durable log covers the
// snapshot: a snapshot never makes an unsynced entry durable behind the
// log's back, and the node restarted after a kill has a durable log that
// reaches at least its latest snapshot. Without this, which acknowledged
// writes survive a kill would depend on whether a snapshot happened to
// run, and the log could end below the snapshot index.
type flushingSnapshots struct {
	raft.SnapshotStore
	logs *unsyncedLogStore
}

// Create implements raft.SnapshotStore.
func (f flushingSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	if err := f.logs.flush(); err != nil {
		return nil, fmt.Errorf("raftkv: snapshot at index %d: %w", index, err)
	}
	return f.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
}

// List and Open are promoted from the wrapped store; the assertion keeps
// the wrapper a complete raft.SnapshotStore.
var _ raft.SnapshotStore = flushingSnapshots{}

// crashSwitch lets an in-package test stop a node as a kill would: put one
// in Run's context under crashKey{}, then call crash. From that moment the
// unsynced log writes nothing more to disk (abandon), so every graceful
// step that writes state (the final flush) is skipped; the node kit still
// closes its listeners as on a stop. Real processes are killed with
// SIGKILL and need none of this.
type crashSwitch struct {
	crashed atomic.Bool
	cancel  func()
}

type crashKey struct{}

// crash marks the node crashed and cancels its context.
func (c *crashSwitch) crash() {
	c.crashed.Store(true)
	c.cancel()
}
