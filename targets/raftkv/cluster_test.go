package raftkv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/clustertest"
)

// cluster is clustertest's in-process cluster of raftkv nodes, every
// directed Raft link (a -> b) through a relay of its own, so cutting the
// relays into a node stops the Raft RPCs sent to it, and cutting those out
// of it too isolates it; each node runs with a crash switch (see kill).
type cluster struct {
	*clustertest.Cluster
	crash map[string]*crashSwitch
}

var (
	do     = clustertest.Do
	mustOK = clustertest.MustOK
)

// startCluster runs n raftkv nodes in this process, each on its own
// loopback ports and data directory, with Raft traffic through relays.
func startCluster(t *testing.T, n int, bugs ...string) *cluster {
	t.Helper()
	return startClusterOpts(t, n, nil, bugs...)
}

// startClusterOpts is startCluster with NodeConfig.Opts for every node.
func startClusterOpts(t *testing.T, n int, opts map[string]string, bugs ...string) *cluster {
	t.Helper()
	c := &cluster{Cluster: clustertest.New(t, Name, n, opts, bugs...), crash: map[string]*crashSwitch{}}
	c.Context = func(id string, ctx context.Context, cancel context.CancelFunc) context.Context {
		c.crash[id] = &crashSwitch{cancel: cancel}
		return context.WithValue(ctx, crashKey{}, c.crash[id])
	}
	c.StartAll()
	return c
}

// kill stops the node as SIGKILL would, as far as its data directory can
// tell: nothing it has not yet written durably is written (see crashSwitch).
func (c *cluster) kill(id string) { c.Halt(id, c.crash[id].crash) }

// nodeStatus is the part of a raftkv node's GET /admin/status the tests
// read: the kit's fields.
type nodeStatus = clustertest.NodeStatus

// status reads the node's status through the system's registered Status
// capability (the kit's ReadStatus).
func (c *cluster) status(id string) (nodeStatus, error) {
	var s nodeStatus
	return s, c.Status(id, &s)
}

// leader waits until one of the running nodes is leader and every running
// node names it, and returns it.
func (c *cluster) leader() string {
	c.T.Helper()
	leader, _ := c.AgreedLeader("a leader known to every running node", "leader", c.Running(), nil)
	return leader
}

func (c *cluster) follower(leader string) string {
	for _, id := range c.IDs {
		if id != leader && c.Nodes[id].Running() {
			return id
		}
	}
	c.T.Fatal("no running follower")
	return ""
}

// waitApplied waits until node id has applied at least index.
func (c *cluster) waitApplied(id string, index uint64) {
	c.T.Helper()
	c.WaitFor(fmt.Sprintf("%s to apply index %d", id, index), func() bool {
		s, err := c.status(id)
		return err == nil && s.AppliedIndex >= index
	})
}

func (c *cluster) commitIndex(id string) uint64 {
	c.T.Helper()
	return clustertest.MustStatus[nodeStatus](c.Cluster, id).CommitIndex
}

func TestCluster(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader()
	f := c.follower(leader)
	cl := c.Client(f)

	// Writes and reads through a follower are redirected to the leader.
	out := do(t, cl, "put", "k", "1")
	mustOK(t, out, "")
	if out.Node != leader {
		t.Fatalf("put answered by %s, want the leader %s", out.Node, leader)
	}
	mustOK(t, do(t, cl, "get", "k", ""), "1")
	mustOK(t, do(t, cl, "get", "absent", ""), "null")

	// CAS: success, mismatch, and JSON (not byte) comparison.
	mustOK(t, do(t, cl, "cas", "k", `{"from":1,"to":{"b":2,"a":1}}`), "")
	if out := do(t, cl, "cas", "k", `{"from":1,"to":3}`); out.Type != history.Fail || out.Error != "mismatch" {
		t.Fatalf("cas from a value the register does not hold: got %+v, want fail mismatch", out)
	}
	mustOK(t, do(t, cl, "get", "k", ""), `{"a":1,"b":2}`)
	mustOK(t, do(t, cl, "cas", "k", `{"from":{"a":1.0,"b":2},"to":3}`), "")
	mustOK(t, do(t, cl, "cas", "absent2", `{"from":null,"to":"x"}`), "")
	mustOK(t, do(t, cl, "get", "k", ""), "3")

	// A follower refuses definitely and names the leader; bad input is a definite 400.
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/kv/k", "", 503},
		{"PUT", "/kv/k", `{"value":1}`, 503},
		{"PUT", "/kv/k", `{"v":1}`, 400},
		{"POST", "/kv/k/cas", `{"from":1}`, 400},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+c.Nodes[f].Cfg.Listen+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb struct {
			Error    string `json:"error"`
			Definite bool   `json:"definite"`
			Leader   string `json:"leader"`
		}
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !eb.Definite || eb.Error == "" || (tc.code == 503 && eb.Leader != leader) {
			t.Fatalf("%s %s at follower: %d %+v, want %d definite (leader %s)", tc.method, tc.path, resp.StatusCode, eb, tc.code, leader)
		}
	}

	// A follower cut off from the leader never serves a stale value.
	c.CutInto(f, true)
	mustOK(t, do(t, c.Client(leader), "put", "k", "4"), "")
	if out := do(t, cl, "get", "k", ""); out.Type == history.OK && string(out.Value) != "4" {
		t.Fatalf("partitioned follower %s served stale value %s without the stale-read bug", f, out.Value)
	}
	c.CutInto(f, false)

	// Stop the leader: a new one is elected and the data survives.
	c.Stop(leader)
	leader2 := c.leader()
	if leader2 == leader {
		t.Fatalf("stopped node %s still leader", leader)
	}
	cl2 := c.Client(c.follower(leader2))
	mustOK(t, do(t, cl2, "get", "k", ""), "4")
	mustOK(t, do(t, cl2, "put", "k", "5"), "")
	mustOK(t, do(t, cl2, "put", "other", `"while down"`), "")
	idx := c.commitIndex(leader2)

	// Restart the old leader on its data directory: it catches up.
	c.Start(leader)
	c.waitApplied(leader, idx)
	s, err := c.status(leader)
	if err != nil {
		t.Fatal(err)
	}
	if s.Keys != 3 {
		t.Fatalf("restarted node has %d keys, want 3 (k, absent2, other); status %+v", s.Keys, s)
	}
	mustOK(t, do(t, c.Client(leader), "get", "other", ""), `"while down"`)

	// Counters and the clock offset show in the status.
	s, _ = c.status(leader2)
	if s.Counters["writes"] < 2 || s.Counters["reads"] < 1 {
		t.Fatalf("leader counters %v: want writes >= 2 and reads >= 1", s.Counters)
	}
	c.SetClock(leader2, targets.Clock{Offset: -1500 * time.Millisecond})
	if s, _ := c.status(leader2); s.ClockOffsetMS != -1500 {
		t.Fatalf("clock offset: status reports %d, want -1500", s.ClockOffsetMS)
	}
}

// TestLocalRead: the admin API's local read answers from the replica's own
// state, bypassing replication: a follower cut off from the leader shows
// the value it last applied while the cluster has moved on.
func TestLocalRead(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader()
	f := c.follower(leader)
	cl := c.Client(leader)
	local := c.Local
	mustOK(t, do(t, cl, "put", "k", "1"), "")
	c.waitApplied(f, c.commitIndex(leader))
	if got := local(f, "k"); got != "1" {
		t.Fatalf("local read at %s = %s, want 1", f, got)
	}
	if got := local(f, "absent"); got != "null" {
		t.Fatalf("local read of an absent key = %s, want null", got)
	}
	c.CutInto(f, true)
	mustOK(t, do(t, cl, "put", "k", "2"), "")
	if got, want := local(f, "k"), "1"; got != want {
		t.Fatalf("local read at the cut-off follower %s = %s, want its own state %s", f, got, want)
	}
	if got := local(leader, "k"); got != "2" {
		t.Fatalf("local read at the leader = %s, want 2", got)
	}
	c.CutInto(f, false)
	c.WaitFor("the follower's local state to catch up", func() bool { return local(f, "k") == "2" })
}

// TestRegistration: the registered system declares what the conductor
// looks up (role, defaults, options with docs, capabilities), and checks
// options before anything starts, naming the bad one.
func TestRegistration(t *testing.T) {
	// No checkers of its own: the register workload's defaults apply
	// (linearizability, lost-writes, split-brain, convergence).
	sys := clustertest.CheckRegistration(t, Name, clustertest.Registration{
		Bugs: []string{BugFollowerRead, BugLeaseRead, BugLoseUnsynced, BugStaleRead},
		BadOptions: map[string]map[string]string{
			"unsynced-flush":       {"unsynced-flush": "-1s"},
			"apply-timeout":        {"apply-timeout": "-500"},
			"lock-timeout":         {"lock-timeout": "0"},
			"election-timeout":     {"election-timeout": "soon"},
			"leader-lease-timeout": {"leader-lease-timeout": "1s"}, // above the heartbeat timeout
			"log-level":            {"log-level": "loud"},
			"heartbeat-timeout":    {"heartbeat": "1s"}, // unknown: the known names
		},
	})
	if len(sys.Options) != len(OptionDefaults()) {
		t.Fatalf("%d options declared, %d defaults", len(sys.Options), len(OptionDefaults()))
	}
}

// TestFollowerReadBug: with follower-read a follower answers reads from
// its own state: cut off from the leader, it serves a stale value.
func TestFollowerReadBug(t *testing.T) {
	c := startCluster(t, 3, BugFollowerRead)
	leader := c.leader()
	f := c.follower(leader)
	atLeader, atFollower := c.Client(leader), c.Client(f)

	mustOK(t, do(t, atLeader, "put", "k", "1"), "")
	c.waitApplied(f, c.commitIndex(leader))
	mustOK(t, do(t, atFollower, "get", "k", ""), "1")

	// Cut the follower off; the leader commits with the other follower.
	c.CutInto(f, true)
	mustOK(t, do(t, atLeader, "put", "k", "2"), "")
	mustOK(t, do(t, atLeader, "get", "k", ""), "2")
	out := do(t, atFollower, "get", "k", "")
	mustOK(t, out, "1") // stale: the bug serves the follower's local state
	if out.Node != f || out.Term != 0 {
		t.Fatalf("stale read answered by %s under term %d, want the follower %s, under no term (it leads none)", out.Node, out.Term, f)
	}

	// Healed, the follower catches up.
	c.CutInto(f, false)
	c.WaitFor("the follower to catch up after healing", func() bool {
		out := do(t, atFollower, "get", "k", "")
		return out.Type == history.OK && string(out.Value) == "2"
	})
}
