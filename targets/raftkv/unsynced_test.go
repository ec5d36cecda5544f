package raftkv

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/faultline/faultline/history"
)

func openBolt(t *testing.T, path string) *raftboltdb.BoltStore {
	t.Helper()
	b, err := raftboltdb.NewBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func entries(term uint64, from, to uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("e%d.%d", term, i))})
	}
	return out
}

// bounds checks FirstIndex and LastIndex of s.
func bounds(t *testing.T, what string, s raft.LogStore, first, last uint64) {
	t.Helper()
	f, err1 := s.FirstIndex()
	l, err2 := s.LastIndex()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("%s: first %d last %d, want %d %d", what, f, l, first, last)
	}
}

func wantTerm(t *testing.T, s raft.LogStore, index, term uint64) {
	t.Helper()
	var l raft.Log
	if err := s.GetLog(index, &l); err != nil {
		t.Fatalf("GetLog(%d): %v", index, err)
	}
	if l.Index != index || l.Term != term || string(l.Data) != fmt.Sprintf("e%d.%d", term, index) {
		t.Fatalf("GetLog(%d) = index %d term %d %q, want term %d", index, l.Index, l.Term, l.Data, term)
	}
}

// TestUnsyncedLogStore drives the wrapper over a real bbolt file the way
// raft does (append, truncate a conflicting suffix, compact a prefix) and
// checks what a reopened file holds after an abandon (kill) and after a
// graceful Close.
func TestUnsyncedLogStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	bolt := openBolt(t, path)
	s := newUnsyncedLogStore(bolt, time.Hour, nil)

	if err := s.StoreLogs(entries(1, 1, 5)); err != nil {
		t.Fatal(err)
	}
	bounds(t, "after storing 1..5", s, 1, 5)
	bounds(t, "durable before any flush", bolt, 0, 0)
	wantTerm(t, s, 3, 1)
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	bounds(t, "durable after a flush", bolt, 1, 5)

	// 6..10 pending; a new leader's entries conflict from 8: raft deletes
	// the suffix and stores its own.
	s.StoreLogs(entries(1, 6, 10))
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	bounds(t, "after truncating 8..10", s, 1, 7)
	s.StoreLogs(entries(2, 9, 9)) // out of order: 9 before 8
	s.StoreLog(entries(2, 8, 8)[0])
	wantTerm(t, s, 7, 1)
	wantTerm(t, s, 8, 2)
	wantTerm(t, s, 9, 2)
	// Compaction of a prefix reaches the disk at once.
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	bounds(t, "after compacting 1..3", s, 4, 9)
	bounds(t, "durable after compacting 1..3", bolt, 4, 5)
	if got := s.pendingN.Load(); got != 4 {
		t.Fatalf("pending entries %d, want 4 (6..9)", got)
	}

	// Kill: 6..9 were acknowledged but never written.
	s.abandon()
	s.StoreLogs(entries(2, 10, 10))
	s.DeleteRange(4, 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(2, 11, 11)); err == nil {
		t.Fatal("StoreLogs after Close succeeded")
	}
	bolt.Close()
	bolt = openBolt(t, path)
	bounds(t, "reopened after a kill", bolt, 4, 5)
	var l raft.Log
	if err := bolt.GetLog(6, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("entry 6 after a kill: err %v, want raft.ErrLogNotFound", err)
	}

	// A graceful Close writes what is pending.
	s = newUnsyncedLogStore(bolt, time.Hour, nil)
	s.StoreLogs(entries(3, 6, 7))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bolt.Close()
	bolt = openBolt(t, path)
	defer bolt.Close()
	bounds(t, "reopened after a graceful close", bolt, 4, 7)
	wantTerm(t, bolt, 7, 3)
}

// TestUnsyncedLogStoreFlushes checks the periodic flush writes pending
// entries without any other call.
func TestUnsyncedLogStoreFlushes(t *testing.T) {
	bolt := openBolt(t, filepath.Join(t.TempDir(), "raft.db"))
	defer bolt.Close()
	s := newUnsyncedLogStore(bolt, 10*time.Millisecond, func(err error) { t.Error(err) })
	defer s.Close()
	s.StoreLogs(entries(1, 1, 3))
	deadline := time.Now().Add(10 * time.Second)
	for s.pendingN.Load() != 0 || s.flushes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing flushed within 10s at a 10ms interval: pending %d, flushes %d", s.pendingN.Load(), s.flushes.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	bounds(t, "durable after the periodic flush", bolt, 1, 3)
}

// TestLoseUnsyncedBug runs 3-node clusters, writes acknowledged values
// that every node has applied, kills every node (in-process stand-in for
// SIGKILL: cluster.kill) or stops them gracefully, restarts them on their
// data directories and reads the values back. With the bug and a flush
// interval longer than the test, every copy was unsynced, so the writes
// are gone: deterministically, not by timing. Without the bug, after a
// flush, or after a graceful stop, they survive. Every restarted cluster
// must elect a leader and accept new writes. With the bug, a snapshot
// flushes the log first, so the durable log of a killed node reaches its
// latest snapshot. (The end-to-end path with
// real processes and SIGKILL is the scenario examples/raft-lost-writes.yaml.)
func TestLoseUnsyncedBug(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bugs     []string
		flush    string
		graceful bool
		snapshot bool // snapshot often; wait for one covering the writes
		lost     bool
	}{
		{name: "bug/killed-before-flush", bugs: []string{BugLoseUnsynced}, flush: "1h", lost: true},
		{name: "bug/killed-after-flush", bugs: []string{BugLoseUnsynced}, flush: "50ms"},
		{name: "bug/graceful-stop", bugs: []string{BugLoseUnsynced}, flush: "1h", graceful: true},
		{name: "bug/killed-after-snapshot", bugs: []string{BugLoseUnsynced}, flush: "1h", snapshot: true},
		{name: "no-bug/killed", flush: "1h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]string{"unsynced-flush": tc.flush}
			if tc.snapshot {
				opts["snapshot-interval"], opts["snapshot-threshold"] = "20ms", "1"
			}
			c := startClusterOpts(t, 3, opts, tc.bugs...)
			leader := c.leader()
			cl := c.Client(leader)
			keys := []string{"a", "b", "c"}
			for i, k := range keys {
				mustOK(t, do(t, cl, "put", k, fmt.Sprint(i+1)), "")
			}
			idx := c.commitIndex(leader)
			for _, id := range c.IDs {
				c.waitApplied(id, idx)
			}
			for _, id := range c.IDs {
				s, err := c.status(id)
				if err != nil {
					t.Fatal(err)
				}
				pending, shown := s.Counters["unsynced_pending"]
				switch {
				case tc.bugs == nil && shown:
					t.Fatalf("%s reports unsynced_pending without the bug", id)
				case tc.bugs != nil && !shown:
					t.Fatalf("%s: status lacks unsynced_pending with the bug: %v", id, s.Counters)
				case tc.bugs != nil && !tc.snapshot && tc.flush == "1h" && pending < int64(len(keys)):
					t.Fatalf("%s has %d unsynced entries after %d acknowledged writes, want at least %d", id, pending, len(keys), len(keys))
				}
			}
			if tc.flush == "50ms" {
				c.WaitFor("every node to flush its log", func() bool {
					for _, id := range c.IDs {
						s, err := c.status(id)
						if err != nil || s.Counters["unsynced_pending"] != 0 || s.Counters["unsynced_flushes"] == 0 {
							return false
						}
					}
					return true
				})
			}
			if tc.snapshot {
				c.WaitFor(fmt.Sprintf("every node to snapshot index %d", idx), func() bool {
					for _, id := range c.IDs {
						if snapshotIndex(t, c.Nodes[id].Cfg.DataDir) < idx {
							return false
						}
					}
					return true
				})
			}

			for _, id := range c.IDs {
				if tc.graceful {
					c.Stop(id)
				} else {
					c.kill(id)
				}
			}
			if tc.snapshot {
				for _, id := range c.IDs {
					dir := c.Nodes[id].Cfg.DataDir
					snap := snapshotIndex(t, dir)
					bolt := openBolt(t, filepath.Join(dir, "raft.db"))
					last, err := bolt.LastIndex()
					bolt.Close()
					if err != nil || last < snap {
						t.Fatalf("%s killed: durable log ends at %d (%v), below its snapshot at %d: the snapshot did not flush the log", id, last, err, snap)
					}
				}
			}
			for _, id := range c.IDs {
				c.Start(id)
			}
			leader = c.leader()
			cl = c.Client(leader)
			for i, k := range keys {
				want := fmt.Sprint(i + 1)
				if tc.lost {
					want = "null"
				}
				out := do(t, cl, "get", k, "")
				if out.Type != history.OK || string(out.Value) != want {
					t.Fatalf("after restarting every node: get %s = %+v, want ok %s (acknowledged %d; lost expected: %v)", k, out, want, i+1, tc.lost)
				}
			}
			// The restarted cluster keeps working.
			mustOK(t, do(t, cl, "put", "a", "10"), "")
			mustOK(t, do(t, c.Client(c.follower(leader)), "get", "a", ""), "10")
		})
	}
}

// snapshotIndex returns the index of the newest complete snapshot in a
// raftkv data directory, 0 if none.
func snapshotIndex(t *testing.T, dataDir string) uint64 {
	t.Helper()
	fs, err := raft.NewFileSnapshotStore(filepath.Join(dataDir, "snapshots"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	metas, err := fs.List()
	if err != nil || len(metas) == 0 {
		return 0
	}
	return metas[0].Index
}
