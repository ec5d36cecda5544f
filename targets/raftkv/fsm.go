package raftkv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// command is one entry of the replicated log (JSON encoded). Values are
// canonical JSON (history.CanonicalJSON, by the node kit) when proposed, so the FSM compares bytes.
type command struct {
	Op    string          `json:"op"` // "put" or "cas"
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"` // put
	From  json.RawMessage `json:"from,omitempty"`  // cas
	To    json.RawMessage `json:"to,omitempty"`    // cas
}

// applyResult is what fsm.Apply returns through raft's ApplyFuture.Response.
type applyResult struct {
	Mismatch bool   // cas: the register did not hold From; nothing changed
	Err      error  // the entry could not be decoded (never expected)
	Term     uint64 // the entry's term (raft.Log.Term): the authority it committed under
}

// fsm is the replicated state machine: a map from key to canonical JSON
// value. Apply, Snapshot and Restore are called by raft's FSM goroutine;
// get and len may be called concurrently from any goroutine.
type fsm struct {
	mu   sync.RWMutex
	data map[string]json.RawMessage
}

func newFSM() *fsm { return &fsm{data: make(map[string]json.RawMessage)} }

// get returns the value at key, or null when the key is absent.
func (f *fsm) get(key string) json.RawMessage {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if v, ok := f.data[key]; ok {
		return v
	}
	return json.RawMessage("null")
}

func (f *fsm) len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.data)
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return applyResult{Err: fmt.Errorf("log entry %d is not a raftkv command: %w", l.Index, err), Term: l.Term}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch c.Op {
	case "put":
		f.data[c.Key] = c.Value
	case "cas":
		cur, ok := f.data[c.Key]
		if !ok {
			cur = json.RawMessage("null")
		}
		if !bytes.Equal(cur, c.From) {
			return applyResult{Mismatch: true, Term: l.Term}
		}
		f.data[c.Key] = c.To
	default:
		return applyResult{Err: fmt.Errorf("log entry %d has unknown op %q", l.Index, c.Op), Term: l.Term}
	}
	return applyResult{Term: l.Term}
}

// snapshotFile is the JSON layout of a raftkv snapshot.
type snapshotFile struct {
	Version int                        `json:"version"` // 1
	Data    map[string]json.RawMessage `json:"data"`
}

// Snapshot implements raft.FSM. Values are immutable once stored, so a
// shallow copy of the map is a consistent point-in-time image.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	cp := make(map[string]json.RawMessage, len(f.data))
	for k, v := range f.data {
		cp[k] = v
	}
	return &fsmSnapshot{data: cp}, nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s snapshotFile
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("raftkv snapshot is not valid JSON: %w", err)
	}
	if s.Version != 1 {
		return fmt.Errorf("raftkv snapshot version %d is not supported (want 1)", s.Version)
	}
	if s.Data == nil {
		s.Data = make(map[string]json.RawMessage)
	}
	f.mu.Lock()
	f.data = s.Data
	f.mu.Unlock()
	return nil
}

type fsmSnapshot struct{ data map[string]json.RawMessage }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := json.NewEncoder(sink).Encode(snapshotFile{Version: 1, Data: s.data})
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
