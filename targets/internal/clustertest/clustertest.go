// Package clustertest is the in-process cluster harness the reference
// systems' tests share (raftkv, pbkv, lwwkv): n nodes run by
// targets.RunNode in the test's process, each on its own loopback ports
// and data directory, every directed peer link through a relay of its own
// that a test can cut, and the helpers that read a node's status and talk
// to its client API. It is imported only by _test.go files.
package clustertest

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

// Relay is a TCP forwarder on loopback standing in for the proxy of one
// directed peer link (from -> to): the node "from" dials "to" through it,
// so cutting it stops every message from -> to (and their answers).
type Relay struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

// NewRelay starts a relay to target; the test's end closes it.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); r.SetCut(true) })
	go r.serve()
	return r
}

// Addr is the address to dial the target through.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

func (r *Relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.pipe(c)
	}
}

func (r *Relay) track(cs ...net.Conn) bool {
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

func (r *Relay) pipe(in net.Conn) {
	r.mu.Lock()
	cut := r.cut
	r.mu.Unlock()
	if cut {
		in.Close()
		return
	}
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

// SetCut(true) closes every relayed connection and refuses new ones;
// SetCut(false) lets new ones through again.
func (r *Relay) SetCut(cut bool) {
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

// FreeAddr returns a free 127.0.0.1 address outside the kernel's ephemeral
// port range: a port from :0 is closed and reused later, and in between an
// outgoing connection of a test running in parallel may take it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ports, err := freeport.Take(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

// Node is one node of a Cluster.
type Node struct {
	Cfg    targets.NodeConfig
	cancel context.CancelFunc
	done   chan error
}

// Running reports whether the node has been started and not stopped.
func (n *Node) Running() bool { return n.cancel != nil }

// Cluster is n nodes of one system in this process.
type Cluster struct {
	T      *testing.T
	System string
	IDs    []string
	Nodes  map[string]*Node
	Links  map[[2]string]*Relay // [from, to]

	// Context, if set, derives a node's context before each start from
	// the one Start made and its cancel func (raftkv: its crash switch).
	Context func(id string, ctx context.Context, cancel context.CancelFunc) context.Context
}

// New lays out n nodes of system (ids n1..nN) with opts and bugs, every
// directed peer link through its own relay, without starting them.
func New(t *testing.T, system string, n int, opts map[string]string, bugs ...string) *Cluster {
	t.Helper()
	c := &Cluster{T: t, System: system, Nodes: map[string]*Node{}, Links: map[[2]string]*Relay{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.IDs = append(c.IDs, id)
		c.Nodes[id] = &Node{Cfg: targets.NodeConfig{
			System: system, ID: id, Listen: FreeAddr(t), Admin: FreeAddr(t), PeerListen: FreeAddr(t),
			DataDir: t.TempDir(), Bugs: bugs, Peers: map[string]string{}, Opts: opts,
		}}
	}
	for _, from := range c.IDs {
		for _, to := range c.IDs {
			if from != to {
				r := NewRelay(t, c.Nodes[to].Cfg.PeerListen)
				c.Links[[2]string{from, to}] = r
				c.Nodes[from].Cfg.Peers[to] = r.Addr()
			}
		}
	}
	return c
}

// StartAll starts every node, and stops them at the test's end.
func (c *Cluster) StartAll() {
	c.T.Helper()
	for _, id := range c.IDs {
		c.Start(id)
	}
	c.T.Cleanup(func() {
		for _, id := range c.IDs {
			c.Stop(id)
		}
	})
}

// Start runs node id and waits (at most 10s) until it is ready.
func (c *Cluster) Start(id string) {
	c.T.Helper()
	nd := c.Nodes[id]
	ctx, cancel := context.WithCancel(context.Background())
	if c.Context != nil {
		ctx = c.Context(id, ctx, cancel)
	}
	ready := make(chan struct{})
	cfg := nd.Cfg
	cfg.Ready = func() { close(ready) }
	nd.cancel, nd.done = cancel, make(chan error, 1)
	go func(done chan error) { done <- targets.RunNode(ctx, cfg) }(nd.done)
	select {
	case <-ready:
	case err := <-nd.done:
		c.T.Fatalf("node %s did not start: %v", id, err)
	case <-time.After(10 * time.Second):
		c.T.Fatalf("node %s not ready after 10s", id)
	}
}

// Stop cancels the node's context and waits for RunNode to return.
func (c *Cluster) Stop(id string) { c.Halt(id, nil) }

// Halt stops node id with stop (nil: cancel its context) and waits for
// RunNode to return. It does nothing to a node that is not running.
func (c *Cluster) Halt(id string, stop func()) {
	nd := c.Nodes[id]
	if nd.cancel == nil {
		return
	}
	if stop != nil {
		stop()
	} else {
		nd.cancel()
	}
	nd.cancel = nil
	select {
	case err := <-nd.done:
		if err != nil {
			c.T.Errorf("node %s stopped with error: %v", id, err)
		}
	case <-time.After(10 * time.Second):
		c.T.Errorf("node %s did not stop within 10s of its context being cancelled", id)
	}
}

// Running returns the ids of the running nodes, in order.
func (c *Cluster) Running() []string {
	var out []string
	for _, id := range c.IDs {
		if c.Nodes[id].Running() {
			out = append(out, id)
		}
	}
	return out
}

// Others returns the ids other than id.
func (c *Cluster) Others(id string) []string {
	var out []string
	for _, o := range c.IDs {
		if o != id {
			out = append(out, o)
		}
	}
	return out
}

// Link is the relay of the directed peer link from -> to.
func (c *Cluster) Link(from, to string) *Relay { return c.Links[[2]string{from, to}] }

// CutInto cuts (or restores) every peer link into node id: messages sent
// to it fail, while it still reaches the others.
func (c *Cluster) CutInto(id string, cut bool) {
	for k, r := range c.Links {
		if k[1] == id {
			r.SetCut(cut)
		}
	}
}

// Isolate cuts (or, with cut false, heals) every peer link to and from id.
func (c *Cluster) Isolate(id string, cut bool) {
	for k, r := range c.Links {
		if k[0] == id || k[1] == id {
			r.SetCut(cut)
		}
	}
}

// Partition cuts (or heals) both directions of the link between a and b.
func (c *Cluster) Partition(a, b string, cut bool) {
	c.Link(a, b).SetCut(cut)
	c.Link(b, a).SetCut(cut)
}

// Info is node id's addresses as a Runtime would give them.
func (c *Cluster) Info(id string) targets.NodeInfo {
	cfg := c.Nodes[id].Cfg
	return targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: id, Client: cfg.Listen, Admin: cfg.Admin, Peer: cfg.PeerListen}, ClientVia: cfg.Listen}
}

// Sys is the registered system.
func (c *Cluster) Sys() *targets.System {
	c.T.Helper()
	sys, err := targets.LookupSystem(c.System)
	if err != nil {
		c.T.Fatal(err)
	}
	return sys
}

// Status reads node id's status through the system's registered Status
// capability (the kit's ReadStatus) and decodes its raw JSON into s.
func (c *Cluster) Status(id string, s any) error {
	sys, err := targets.LookupSystem(c.System)
	if err != nil {
		return err
	}
	st, err := sys.Status(context.Background(), c.Info(id))
	if err != nil {
		return err
	}
	return json.Unmarshal(st.Raw, s)
}

// NodeStatus is the part of GET /admin/status that the node kit answers
// for every reference system (and keys, which each of them adds); a
// system's tests embed it in the status they read.
type NodeStatus struct {
	Role          string           `json:"role"`
	Term          uint64           `json:"term"`
	Leader        string           `json:"leader"`
	CommitIndex   uint64           `json:"commit_index"`
	AppliedIndex  uint64           `json:"applied_index"`
	Keys          int              `json:"keys"`
	ClockOffsetMS int64            `json:"clock_offset_ms"`
	Counters      map[string]int64 `json:"counters"`
}

// MustStatus is c.Status(id) decoded into an S, failing the test on an
// error.
func MustStatus[S any](c *Cluster, id string) S {
	c.T.Helper()
	var s S
	if err := c.Status(id, &s); err != nil {
		c.T.Fatal(err)
	}
	return s
}

// AgreedLeader waits (WaitFor, as what) until every node of ids names the
// same leader, that node's status says role (leader, primary) and accept,
// if not nil, takes it; it returns the leader and its status.
func (c *Cluster) AgreedLeader(what, role string, ids []string, accept func(leader string, s NodeStatus) bool) (string, NodeStatus) {
	c.T.Helper()
	var leader string
	var ls NodeStatus
	c.WaitFor(what, func() bool {
		leader = ""
		for _, id := range ids {
			var s NodeStatus
			if err := c.Status(id, &s); err != nil || s.Leader == "" || (leader != "" && s.Leader != leader) {
				return false
			}
			leader = s.Leader
		}
		ls = NodeStatus{}
		err := c.Status(leader, &ls)
		return err == nil && ls.Role == role && (accept == nil || accept(leader, ls))
	})
	return leader, ls
}

// Local reads key from node id's own state (the admin API's local read).
func (c *Cluster) Local(id, key string) string {
	c.T.Helper()
	v, err := c.Sys().LocalRead(context.Background(), c.Info(id), key)
	if err != nil {
		c.T.Fatal(err)
	}
	return string(v)
}

// SetClock sets node id's clock through the system's SetClock capability
// (the admin API), failing the test on an error.
func (c *Cluster) SetClock(id string, clk targets.Clock) {
	c.T.Helper()
	if err := c.Sys().SetClock(context.Background(), c.Info(id), clk); err != nil {
		c.T.Fatal(err)
	}
}

// WaitFor polls cond every 20ms for at most 10s.
func (c *Cluster) WaitFor(what string, cond func() bool) {
	c.T.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.T.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client is an http client of the cluster whose home node is home,
// closed at the test's end.
func (c *Cluster) Client(home string) *httpkv.Client {
	c.T.Helper()
	addrs := map[string]string{}
	for id, nd := range c.Nodes {
		addrs[id] = nd.Cfg.Listen
	}
	cl, err := httpkv.New(addrs, home, httpkv.Options{Timeout: 5 * time.Second})
	if err != nil {
		c.T.Fatal(err)
	}
	c.T.Cleanup(func() { cl.Close() })
	return cl
}

// Request sends one client API request to node id and returns the status
// code and the body, trimmed.
func (c *Cluster) Request(id, method, path, body string) (int, string) {
	c.T.Helper()
	req, err := http.NewRequest(method, "http://"+c.Nodes[id].Cfg.Listen+path, strings.NewReader(body))
	if err != nil {
		c.T.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// Do performs f on key with value (JSON; "" for none) through cl, within 10s.
func Do(t testing.TB, cl *httpkv.Client, f, key, value string) history.Outcome {
	t.Helper()
	op := history.Op{F: f, Key: key}
	if value != "" {
		op.Value = json.RawMessage(value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Do(ctx, op)
}

// MustOK fails the test unless out is ok and, with wantValue not "", read
// wantValue.
func MustOK(t testing.TB, out history.Outcome, wantValue string) {
	t.Helper()
	if out.Type != history.OK {
		t.Fatalf("want ok, got %+v", out)
	}
	if wantValue != "" && string(out.Value) != wantValue {
		t.Fatalf("read %s, want %s (from %s)", out.Value, wantValue, out.Node)
	}
}
