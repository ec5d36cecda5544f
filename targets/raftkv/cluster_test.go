package raftkv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/httpkv"
)

// relay is a TCP forwarder on loopback standing in for a per-link proxy:
// every node dials each peer through a relay of its own for that directed
// link (a -> b), so cutting the relays into a node stops the Raft RPCs
// sent to it, and cutting those out of it too isolates it.
type relay struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); r.setCut(true) })
	go r.serve()
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.pipe(c)
	}
}

func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut {
		return false
	}
	for _, c := range cs {
		r.conns[c] = true
	}
	return true
}

func (r *relay) pipe(in net.Conn) {
	out, err := net.DialTimeout("tcp", r.target, time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !r.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	go func() { io.Copy(out, in); out.Close() }()
	io.Copy(in, out)
	in.Close()
}

// setCut(true) closes every relayed connection and refuses new ones.
func (r *relay) setCut(cut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = cut
	if cut {
		for c := range r.conns {
			c.Close()
		}
		r.conns = map[net.Conn]bool{}
	}
}

// freeAddr returns a free 127.0.0.1 address outside the kernel's ephemeral
// port range: a port from :0 is closed and reused later, and in between an
// outgoing connection of a test running in parallel may take it.
func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := freeport.Take(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

type testNode struct {
	cfg    targets.NodeConfig
	in     map[string]*relay // source node -> the relay it dials this node through
	cancel context.CancelFunc
	crash  *crashSwitch
	done   chan error
}

type cluster struct {
	t     *testing.T
	ids   []string
	nodes map[string]*testNode
}

// startCluster runs n raftkv nodes in this process, each on its own
// loopback ports and data directory, with Raft traffic through relays.
func startCluster(t *testing.T, n int, bugs ...string) *cluster {
	t.Helper()
	return startClusterOpts(t, n, nil, bugs...)
}

// startClusterOpts is startCluster with NodeConfig.Opts for every node.
func startClusterOpts(t *testing.T, n int, opts map[string]string, bugs ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: map[string]*testNode{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		peer := freeAddr(t)
		c.nodes[id] = &testNode{
			cfg: targets.NodeConfig{
				System: Name, ID: id, Listen: freeAddr(t), Admin: freeAddr(t), PeerListen: peer,
				DataDir: t.TempDir(), Bugs: bugs, Peers: map[string]string{}, Opts: opts,
			},
			in: map[string]*relay{},
		}
	}
	for from, a := range c.nodes {
		for to, b := range c.nodes {
			if b != a {
				r := newRelay(t, b.cfg.PeerListen)
				b.in[from] = r
				a.cfg.Peers[to] = r.addr()
			}
		}
	}
	for _, id := range c.ids {
		c.start(id)
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			c.stop(id)
		}
	})
	return c
}

// cutInto cuts (or restores) every Raft link into node id: RPCs sent to it
// fail, while it still reaches the others.
func (c *cluster) cutInto(id string, cut bool) {
	for _, r := range c.nodes[id].in {
		r.setCut(cut)
	}
}

// isolate cuts (or restores) every Raft link into and out of node id.
func (c *cluster) isolate(id string, cut bool) {
	c.cutInto(id, cut)
	for from, nd := range c.nodes {
		if from != id {
			nd.in[id].setCut(cut)
		}
	}
}

func (c *cluster) start(id string) {
	c.t.Helper()
	nd := c.nodes[id]
	ctx, cancel := context.WithCancel(context.Background())
	nd.crash = &crashSwitch{cancel: cancel}
	ctx = context.WithValue(ctx, crashKey{}, nd.crash)
	ready := make(chan struct{})
	cfg := nd.cfg
	cfg.Ready = func() { close(ready) }
	nd.cancel, nd.done = cancel, make(chan error, 1)
	go func(done chan error) { done <- targets.RunNode(ctx, cfg) }(nd.done)
	select {
	case <-ready:
	case err := <-nd.done:
		c.t.Fatalf("node %s did not start: %v", id, err)
	case <-time.After(10 * time.Second):
		c.t.Fatalf("node %s not ready after 10s", id)
	}
}

// stop cancels the node's context and waits for RunNode to return.
func (c *cluster) stop(id string) { c.halt(id, false) }

// kill stops the node as SIGKILL would, as far as its data directory can
// tell: nothing it has not yet written durably is written (see crashSwitch).
func (c *cluster) kill(id string) { c.halt(id, true) }

func (c *cluster) halt(id string, crash bool) {
	nd := c.nodes[id]
	if nd.cancel == nil {
		return
	}
	if crash {
		nd.crash.crash()
	} else {
		nd.cancel()
	}
	nd.cancel = nil
	select {
	case err := <-nd.done:
		if err != nil {
			c.t.Errorf("node %s stopped with error: %v", id, err)
		}
	case <-time.After(10 * time.Second):
		c.t.Errorf("node %s did not stop within 10s of its context being cancelled", id)
	}
}

// nodeStatus is the part of a raftkv node's GET /admin/status the tests read.
type nodeStatus struct {
	Role          string           `json:"role"`
	Term          uint64           `json:"term"`
	Leader        string           `json:"leader"`
	CommitIndex   uint64           `json:"commit_index"`
	AppliedIndex  uint64           `json:"applied_index"`
	Keys          int              `json:"keys"`
	ClockOffsetMS int64            `json:"clock_offset_ms"`
	Counters      map[string]int64 `json:"counters"`
}

func (c *cluster) info(id string) targets.NodeInfo {
	cfg := c.nodes[id].cfg
	return targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: id, Client: cfg.Listen, Admin: cfg.Admin, Peer: cfg.PeerListen}, ClientVia: cfg.Listen}
}

// status reads the node's status through the system's registered Status
// capability (the kit's ReadStatus).
func (c *cluster) status(id string) (nodeStatus, error) {
	var s nodeStatus
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		return s, err
	}
	st, err := sys.Status(context.Background(), c.info(id))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(st.Raw, &s)
}

// waitFor polls cond every 20ms for at most 10s.
func (c *cluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader waits until one of the running nodes is leader and every running
// node names it, and returns it.
func (c *cluster) leader() string {
	c.t.Helper()
	var leader string
	c.waitFor("a leader known to every running node", func() bool {
		leader = ""
		for _, id := range c.ids {
			if c.nodes[id].cancel == nil {
				continue
			}
			s, err := c.status(id)
			if err != nil || s.Leader == "" || (leader != "" && s.Leader != leader) {
				return false
			}
			leader = s.Leader
		}
		s, err := c.status(leader)
		return err == nil && s.Role == "leader"
	})
	return leader
}

func (c *cluster) follower(leader string) string {
	for _, id := range c.ids {
		if id != leader && c.nodes[id].cancel != nil {
			return id
		}
	}
	c.t.Fatal("no running follower")
	return ""
}

func (c *cluster) client(home string) *httpkv.Client {
	c.t.Helper()
	addrs := map[string]string{}
	for id, nd := range c.nodes {
		addrs[id] = nd.cfg.Listen
	}
	cl, err := httpkv.New(addrs, home, httpkv.Options{Timeout: 5 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// waitApplied waits until node id has applied at least index.
func (c *cluster) waitApplied(id string, index uint64) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%s to apply index %d", id, index), func() bool {
		s, err := c.status(id)
		return err == nil && s.AppliedIndex >= index
	})
}

func (c *cluster) commitIndex(id string) uint64 {
	c.t.Helper()
	s, err := c.status(id)
	if err != nil {
		c.t.Fatal(err)
	}
	return s.CommitIndex
}

func do(t *testing.T, cl *httpkv.Client, f, key, value string) history.Outcome {
	t.Helper()
	op := history.Op{F: f, Key: key}
	if value != "" {
		op.Value = json.RawMessage(value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Do(ctx, op)
}

func mustOK(t *testing.T, out history.Outcome, wantValue string) {
	t.Helper()
	if out.Type != history.OK {
		t.Fatalf("want ok, got %+v", out)
	}
	if wantValue != "" && string(out.Value) != wantValue {
		t.Fatalf("read %s, want %s (from %s)", out.Value, wantValue, out.Node)
	}
}

func TestCluster(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader()
	f := c.follower(leader)
	cl := c.client(f)

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
		req, _ := http.NewRequest(tc.method, "http://"+c.nodes[f].cfg.Listen+tc.path, strings.NewReader(tc.body))
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
	c.cutInto(f, true)
	mustOK(t, do(t, c.client(leader), "put", "k", "4"), "")
	if out := do(t, cl, "get", "k", ""); out.Type == history.OK && string(out.Value) != "4" {
		t.Fatalf("partitioned follower %s served stale value %s without the stale-read bug", f, out.Value)
	}
	c.cutInto(f, false)

	// Stop the leader: a new one is elected and the data survives.
	c.stop(leader)
	leader2 := c.leader()
	if leader2 == leader {
		t.Fatalf("stopped node %s still leader", leader)
	}
	cl2 := c.client(c.follower(leader2))
	mustOK(t, do(t, cl2, "get", "k", ""), "4")
	mustOK(t, do(t, cl2, "put", "k", "5"), "")
	mustOK(t, do(t, cl2, "put", "other", `"while down"`), "")
	idx := c.commitIndex(leader2)

	// Restart the old leader on its data directory: it catches up.
	c.start(leader)
	c.waitApplied(leader, idx)
	s, err := c.status(leader)
	if err != nil {
		t.Fatal(err)
	}
	if s.Keys != 3 {
		t.Fatalf("restarted node has %d keys, want 3 (k, absent2, other); status %+v", s.Keys, s)
	}
	mustOK(t, do(t, c.client(leader), "get", "other", ""), `"while down"`)

	// Counters and the clock offset show in the status.
	s, _ = c.status(leader2)
	if s.Counters["writes"] < 2 || s.Counters["reads"] < 1 {
		t.Fatalf("leader counters %v: want writes >= 2 and reads >= 1", s.Counters)
	}
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.SetClock(context.Background(), c.info(leader2), targets.Clock{Offset: -1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
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
	cl := c.client(leader)
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		t.Fatal(err)
	}
	local := func(id, key string) string {
		t.Helper()
		v, err := sys.LocalRead(context.Background(), c.info(id), key)
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	mustOK(t, do(t, cl, "put", "k", "1"), "")
	c.waitApplied(f, c.commitIndex(leader))
	if got := local(f, "k"); got != "1" {
		t.Fatalf("local read at %s = %s, want 1", f, got)
	}
	if got := local(f, "absent"); got != "null" {
		t.Fatalf("local read of an absent key = %s, want null", got)
	}
	c.cutInto(f, true)
	mustOK(t, do(t, cl, "put", "k", "2"), "")
	if got, want := local(f, "k"), "1"; got != want {
		t.Fatalf("local read at the cut-off follower %s = %s, want its own state %s", f, got, want)
	}
	if got := local(leader, "k"); got != "2" {
		t.Fatalf("local read at the leader = %s, want 2", got)
	}
	c.cutInto(f, false)
	c.waitFor("the follower's local state to catch up", func() bool { return local(f, "k") == "2" })
}

// TestRegistration: the registered system declares what the conductor
// looks up (role, defaults, options with docs, capabilities), and checks
// options before anything starts, naming the bad one.
func TestRegistration(t *testing.T) {
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := sys.Role(""); !ok || r.Name != "node" || r.Nodes != 3 || len(sys.Roles) != 1 {
		t.Fatalf("roles %+v", sys.Roles)
	}
	// No checkers of its own: the register workload's defaults apply
	// (linearizability, lost-writes, split-brain, convergence).
	if sys.Client != "http" || sys.Workload != "register" || len(sys.Checkers) != 0 || !sys.PeerLinks {
		t.Fatalf("defaults: client %q workload %q checkers %v peer links %v", sys.Client, sys.Workload, sys.Checkers, sys.PeerLinks)
	}
	if sys.Status == nil || sys.SetClock == nil || sys.LocalRead == nil || sys.CheckOptions == nil {
		t.Fatal("a kit capability or CheckOptions is missing")
	}
	defaults := OptionDefaults()
	if len(sys.Options) != len(defaults) {
		t.Fatalf("%d options declared, %d defaults", len(sys.Options), len(defaults))
	}
	for _, o := range sys.Options {
		if o.Doc == "" || o.Default == "" || defaults[o.Name] != o.Default {
			t.Errorf("option %+v: want a doc and the default %q", o, defaults[o.Name])
		}
	}
	if err := sys.CheckOptions(nil); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for opts, want := range map[string]map[string]string{
		"unsynced-flush":       {"unsynced-flush": "-1s"},
		"apply-timeout":        {"apply-timeout": "-500"},
		"lock-timeout":         {"lock-timeout": "0"},
		"election-timeout":     {"election-timeout": "soon"},
		"leader-lease-timeout": {"leader-lease-timeout": "1s"}, // above the heartbeat timeout
		"log-level":            {"log-level": "loud"},
	} {
		err := sys.CheckNodeConfig(targets.NodeConfig{Opts: want})
		if err == nil || !strings.Contains(err.Error(), opts) {
			t.Errorf("options %v: %v, want an error naming %s", want, err, opts)
		}
	}
	if err := sys.CheckNodeConfig(targets.NodeConfig{Opts: map[string]string{"heartbeat": "1s"}}); err == nil || !strings.Contains(err.Error(), "heartbeat-timeout") {
		t.Errorf("an unknown option: %v, want the known names", err)
	}
}

// TestFollowerReadBug: with follower-read a follower answers reads from
// its own state: cut off from the leader, it serves a stale value.
func TestFollowerReadBug(t *testing.T) {
	c := startCluster(t, 3, BugFollowerRead)
	leader := c.leader()
	f := c.follower(leader)
	atLeader, atFollower := c.client(leader), c.client(f)

	mustOK(t, do(t, atLeader, "put", "k", "1"), "")
	c.waitApplied(f, c.commitIndex(leader))
	mustOK(t, do(t, atFollower, "get", "k", ""), "1")

	// Cut the follower off; the leader commits with the other follower.
	c.cutInto(f, true)
	mustOK(t, do(t, atLeader, "put", "k", "2"), "")
	mustOK(t, do(t, atLeader, "get", "k", ""), "2")
	out := do(t, atFollower, "get", "k", "")
	mustOK(t, out, "1") // stale: the bug serves the follower's local state
	if out.Node != f || out.Term != 0 {
		t.Fatalf("stale read answered by %s under term %d, want the follower %s, under no term (it leads none)", out.Node, out.Term, f)
	}

	// Healed, the follower catches up.
	c.cutInto(f, false)
	c.waitFor("the follower to catch up after healing", func() bool {
		out := do(t, atFollower, "get", "k", "")
		return out.Type == history.OK && string(out.Value) == "2"
	})
}
