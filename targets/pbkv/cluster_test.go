package pbkv

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets/httpkv"
	"github.com/faultline/faultline/targets/internal/clustertest"
)

// cluster is clustertest's in-process cluster of pbkv nodes. A pbkv node
// writes nothing on a graceful stop that it had not written before (every
// entry and vote is fsync'd before it is acknowledged), so to its data
// directory a Stop is a kill.
type cluster struct{ *clustertest.Cluster }

var (
	do     = clustertest.Do
	mustOK = clustertest.MustOK
)

// fastOpts are short timeouts, so that the tests' failovers are quick.
var fastOpts = map[string]string{
	"heartbeat-interval": "20ms", "election-timeout": "250ms", "lease-duration": "150ms",
	"replication-timeout": "500ms", "rpc-timeout": "150ms",
}

// startCluster runs n pbkv nodes in this process, each on its own
// loopback ports and data directory, every directed peer link through
// its own relay.
func startCluster(t *testing.T, n int, bugs ...string) *cluster {
	t.Helper()
	c := &cluster{clustertest.New(t, Name, n, fastOpts, bugs...)}
	c.StartAll()
	return c
}

// nodeStatus is the part of GET /admin/status the tests read.
type nodeStatus struct {
	clustertest.NodeStatus
	LastIndex uint64 `json:"last_index"`
	LastEpoch uint64 `json:"last_epoch"`
	VotedFor  string `json:"voted_for"`
	LeaseMS   int64  `json:"lease_ms"`
}

func (c *cluster) mustStatus(id string) nodeStatus {
	c.T.Helper()
	return clustertest.MustStatus[nodeStatus](c.Cluster, id)
}

// primary waits until one of the nodes in ids (default: every running
// node) is primary and every one of them names it, and returns it.
func (c *cluster) primary(ids ...string) string {
	c.T.Helper()
	if len(ids) == 0 {
		ids = c.Running()
	}
	p, _ := c.AgreedLeader(fmt.Sprintf("a primary known to each of %v", ids), "primary", ids, func(p string, _ clustertest.NodeStatus) bool {
		return slices.Contains(ids, p)
	})
	return p
}

// direct is a client of node id alone (no redirects to the primary),
// closed at the test's end.
func (c *cluster) direct(id string) *httpkv.Client {
	c.T.Helper()
	cl, err := httpkv.New(map[string]string{id: c.Nodes[id].Cfg.Listen}, id, httpkv.Options{Timeout: 2 * time.Second})
	if err != nil {
		c.T.Fatal(err)
	}
	c.T.Cleanup(func() { cl.Close() })
	return cl
}

// TestCluster: an election, writes and reads at the primary (redirected
// from a backup), CAS in log order, every answer carrying the epoch, the
// backups' registers following, and a backup's definite refusal naming the
// primary.
func TestCluster(t *testing.T) {
	c := startCluster(t, 3)
	p := c.primary()
	st := c.mustStatus(p)
	if st.Term == 0 || st.VotedFor != p {
		t.Fatalf("primary %s status %+v: want an epoch and its own vote", p, st)
	}
	b := c.Others(p)[0]
	cl := c.Client(b)

	out := do(t, cl, "put", "k", "1")
	mustOK(t, out, "")
	if out.Node != p || out.Term != st.Term {
		t.Fatalf("put answered by %s under epoch %d, want the primary %s under %d", out.Node, out.Term, p, st.Term)
	}
	out = do(t, cl, "get", "k", "")
	mustOK(t, out, "1")
	if out.Term != st.Term {
		t.Fatalf("get answered under epoch %d, want %d", out.Term, st.Term)
	}
	mustOK(t, do(t, cl, "get", "absent", ""), "null")
	mustOK(t, do(t, cl, "cas", "k", `{"from":1,"to":{"b":2,"a":1}}`), "")
	out = do(t, cl, "cas", "k", `{"from":1,"to":3}`)
	if out.Type != history.Fail || out.Error != "mismatch" || out.Term != st.Term {
		t.Fatalf("cas from a value the register does not hold: got %+v, want fail mismatch under epoch %d", out, st.Term)
	}
	mustOK(t, do(t, cl, "get", "k", ""), `{"a":1,"b":2}`)
	mustOK(t, do(t, cl, "cas", "k", `{"from":{"a":1.0,"b":2},"to":3}`), "")
	mustOK(t, do(t, cl, "cas", "new", `{"from":null,"to":"x"}`), "")
	mustOK(t, do(t, cl, "get", "k", ""), "3")

	// Every backup applies what the primary committed.
	for _, id := range c.Others(p) {
		c.WaitFor(id+" to apply the writes", func() bool { return c.Local(id, "k") == "3" && c.Local(id, "new") == `"x"` })
	}

	// A backup asked directly refuses, definitely, naming the primary.
	direct := c.direct(b)
	for _, op := range []history.Op{{F: "get", Key: "k"}, {F: "put", Key: "k", Value: json.RawMessage("9")}} {
		out := direct.Do(context.Background(), op)
		if out.Type != history.Fail || !strings.Contains(out.Error, "not the primary") {
			t.Fatalf("%s at backup %s: %+v, want a definite refusal", op.F, b, out)
		}
	}
	mustOK(t, do(t, cl, "get", "k", ""), "3")
}

// TestWriteNeedsMajority: a primary that reaches no backup stores a write
// but does not acknowledge it, serves no read once its lease has run out,
// and steps down; with one backup back (a majority of three) the next
// write is acknowledged.
func TestWriteNeedsMajority(t *testing.T) {
	c := startCluster(t, 3)
	p := c.primary()
	cl := c.Client(p)
	mustOK(t, do(t, cl, "put", "k", "1"), "")
	epoch := c.mustStatus(p).Term

	// Cut both backups off the primary, but not from each other: they must
	// not elect anyone either while they hear... nothing; so also cut them
	// from each other to keep the epoch still.
	c.Isolate(p, true)
	for _, a := range c.Others(p) {
		for _, b := range c.Others(p) {
			if a != b {
				c.Link(a, b).SetCut(true)
			}
		}
	}
	out := do(t, cl, "put", "k", "2")
	if out.Type == history.OK {
		t.Fatalf("a primary cut off from every backup acknowledged a write: %+v", out)
	}
	time.Sleep(400 * time.Millisecond) // past the lease and the election timeout
	out = do(t, cl, "get", "k", "")
	if out.Type == history.OK {
		t.Fatalf("a primary cut off from every backup served a read after its lease: %+v", out)
	}
	c.WaitFor(p+" to step down", func() bool { return c.mustStatus(p).Role != "primary" })
	if s := c.mustStatus(p); s.Counters["step_downs"] < 1 || s.Counters["replication_timeouts"]+s.Counters["errors_deposed"] < 1 {
		t.Fatalf("counters %v: want a step-down and the unacknowledged write counted", s.Counters)
	}

	// Heal one backup's links only: two of three form a majority.
	b := c.Others(p)[0]
	c.Link(p, b).SetCut(false)
	c.Link(b, p).SetCut(false)
	np := c.primary(p, b)
	if s := c.mustStatus(np); s.Term <= epoch {
		t.Fatalf("new primary %s in epoch %d, want above %d", np, s.Term, epoch)
	}
	out = do(t, c.Client(np), "put", "k", "3")
	mustOK(t, out, "")
	mustOK(t, do(t, c.Client(np), "get", "k", ""), "3")
}

// TestPartitionedPrimaryFenced: the primary cut off from its backups (its
// clients still reach it) acknowledges nothing more; the backups elect a
// new primary in a newer epoch; healed, the old primary steps down, drops
// the write it could not replicate and catches up.
func TestPartitionedPrimaryFenced(t *testing.T) {
	c := startCluster(t, 3)
	old := c.primary()
	oldEpoch := c.mustStatus(old).Term
	atOld := c.Client(old)
	mustOK(t, do(t, atOld, "put", "k", `"before"`), "")

	c.Isolate(old, true)
	out := do(t, atOld, "put", "k", `"isolated"`)
	if out.Type == history.OK {
		t.Fatalf("the isolated primary %s acknowledged a write: %+v", old, out)
	}
	np := c.primary(c.Others(old)...)
	st := c.mustStatus(np)
	if np == old || st.Term <= oldEpoch {
		t.Fatalf("new primary %s in epoch %d, want another node above epoch %d", np, st.Term, oldEpoch)
	}
	out = do(t, c.Client(np), "put", "k", `"new"`)
	mustOK(t, out, "")
	if out.Term != st.Term {
		t.Fatalf("write at the new primary answered under epoch %d, want %d", out.Term, st.Term)
	}
	// The old primary has no lease: it serves no read, whatever its role.
	direct := c.direct(old)
	if out := direct.Do(context.Background(), history.Op{F: "get", Key: "k"}); out.Type == history.OK {
		t.Fatalf("the isolated old primary served a read: %+v", out)
	}
	if out := direct.Do(context.Background(), history.Op{F: "put", Key: "k", Value: json.RawMessage(`"late"`)}); out.Type == history.OK {
		t.Fatalf("the isolated old primary acknowledged a write: %+v", out)
	}

	c.Isolate(old, false)
	c.WaitFor(old+" to follow "+np, func() bool {
		s := c.mustStatus(old)
		return s.Role == "backup" && s.Leader == np && s.Term == st.Term && c.Local(old, "k") == `"new"`
	})
	if s := c.mustStatus(old); s.Counters["truncated_entries"] < 1 {
		t.Fatalf("the old primary truncated nothing (counters %v); its unreplicated writes should have gone", s.Counters)
	}
	mustOK(t, do(t, atOld, "get", "k", ""), `"new"`)
}

// TestNoFencingSplitBrain: with the bug, the isolated primary keeps
// acknowledging writes under its old epoch while a backup promoted itself
// into the next one; healed, the old primary steps down and its
// acknowledged write vanishes from every replica.
func TestNoFencingSplitBrain(t *testing.T) {
	c := startCluster(t, 3, BugNoFencing)
	old := c.primary()
	oldEpoch := c.mustStatus(old).Term
	mustOK(t, do(t, c.Client(old), "put", "k", `"before"`), "")
	for _, id := range c.Others(old) {
		// With the bug the ack does not wait for the backups.
		c.WaitFor(id+" to store the first write", func() bool { return c.Local(id, "k") == `"before"` })
	}

	c.Isolate(old, true)
	direct := c.direct(old)
	np := c.primary(c.Others(old)...)
	newEpoch := c.mustStatus(np).Term
	if newEpoch <= oldEpoch {
		// Usually oldEpoch+1; more when both backups promoted themselves
		// at once and then both stepped down on hearing the other.
		t.Fatalf("promoted %s to epoch %d, want above %d", np, newEpoch, oldEpoch)
	}
	if s := c.mustStatus(np); s.Counters["elections"] != 0 {
		t.Fatalf("%s held %d elections; with no-fencing it promotes itself without votes", np, s.Counters["elections"])
	}
	// Two primaries at once, each acknowledging under its own epoch.
	if s := c.mustStatus(old); s.Role != "primary" || s.Term != oldEpoch {
		t.Fatalf("isolated old primary %s: %+v, want still primary of epoch %d", old, s, oldEpoch)
	}
	out := direct.Do(context.Background(), history.Op{F: "put", Key: "k", Value: json.RawMessage(`"lost"`)})
	mustOK(t, out, "")
	if out.Node != old || out.Term != oldEpoch {
		t.Fatalf("write at the old primary: %+v, want ok from %s under epoch %d", out, old, oldEpoch)
	}
	mustOK(t, direct.Do(context.Background(), history.Op{F: "get", Key: "k"}), `"lost"`)
	out = do(t, c.Client(np), "put", "other", `"new side"`)
	mustOK(t, out, "")
	if out.Term != newEpoch {
		t.Fatalf("write at the new primary answered under epoch %d, want %d", out.Term, newEpoch)
	}
	if s := c.mustStatus(old); s.Counters["unfenced_acks"] < 1 {
		t.Fatalf("old primary counters %v: want its acknowledgement without a majority counted", s.Counters)
	}

	// Healed: the old primary hears the newer epoch, steps down, and its
	// acknowledged write is gone everywhere.
	c.Isolate(old, false)
	c.WaitFor(old+" to step down and catch up", func() bool {
		s := c.mustStatus(old)
		return s.Role == "backup" && s.Term == newEpoch && c.Local(old, "other") == `"new side"`
	})
	for _, id := range c.IDs {
		if got := c.Local(id, "k"); got != `"before"` {
			t.Errorf("%s holds k = %s, want \"before\" (the old primary's acknowledged write is lost)", id, got)
		}
	}
	if s := c.mustStatus(old); s.Counters["truncated_entries"] < 1 {
		t.Fatalf("old primary counters %v: want its entries truncated", s.Counters)
	}
	mustOK(t, do(t, c.Client(old), "get", "k", ""), `"before"`)
}

// TestRestart: a node stopped and restarted on its data directory keeps
// its epoch, its vote and its log, and catches up with what it missed.
func TestRestart(t *testing.T) {
	c := startCluster(t, 3)
	p := c.primary()
	cl := c.Client(p)
	mustOK(t, do(t, cl, "put", "k", "1"), "")
	b := c.Others(p)[0]
	c.WaitFor(b+" to apply the write", func() bool { return c.Local(b, "k") == "1" })
	before := c.mustStatus(b)

	c.Stop(b)
	mustOK(t, do(t, cl, "put", "k", "2"), "")
	mustOK(t, do(t, cl, "put", "while-down", "3"), "")
	c.Start(b)
	after := c.mustStatus(b)
	if after.Term != before.Term || after.VotedFor != before.VotedFor || after.LastIndex < before.LastIndex {
		t.Fatalf("restarted %s: epoch %d vote %q last index %d, want epoch %d vote %q and at least index %d",
			b, after.Term, after.VotedFor, after.LastIndex, before.Term, before.VotedFor, before.LastIndex)
	}
	c.WaitFor(b+" to catch up", func() bool { return c.Local(b, "k") == "2" && c.Local(b, "while-down") == "3" })

	// The primary restarted: a new one is elected from the others and
	// every acknowledged write survives.
	c.Stop(p)
	np := c.primary(c.Others(p)...)
	mustOK(t, do(t, c.Client(np), "get", "k", ""), "2")
	c.Start(p)
	c.WaitFor(p+" to rejoin as a backup", func() bool {
		s := c.mustStatus(p)
		return s.Role == "backup" && s.Leader == np && c.Local(p, "while-down") == "3"
	})
}
