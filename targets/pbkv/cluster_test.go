package pbkv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/httpkv"
)

// relay is a TCP forwarder on loopback standing in for the proxy of one
// directed peer link (from -> to): the node "from" dials "to" through it,
// so cutting it stops every message from -> to (and their answers).
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

// freeAddr returns a free 127.0.0.1 address outside the ephemeral range.
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
	cancel context.CancelFunc
	done   chan error
}

type cluster struct {
	t      *testing.T
	ids    []string
	nodes  map[string]*testNode
	relays map[[2]string]*relay // [from, to]
}

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
	c := &cluster{t: t, nodes: map[string]*testNode{}, relays: map[[2]string]*relay{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		c.nodes[id] = &testNode{cfg: targets.NodeConfig{
			System: Name, ID: id, Listen: freeAddr(t), Admin: freeAddr(t), PeerListen: freeAddr(t),
			DataDir: t.TempDir(), Bugs: bugs, Peers: map[string]string{}, Opts: fastOpts,
		}}
	}
	for _, a := range c.ids {
		for _, b := range c.ids {
			if a != b {
				r := newRelay(t, c.nodes[b].cfg.PeerListen)
				c.relays[[2]string{a, b}] = r
				c.nodes[a].cfg.Peers[b] = r.addr()
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

func (c *cluster) start(id string) {
	c.t.Helper()
	nd := c.nodes[id]
	ctx, cancel := context.WithCancel(context.Background())
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

// stop cancels the node's context and waits for RunNode to return. A pbkv
// node writes nothing on a graceful stop that it had not written before
// (every entry and vote is fsync'd before it is acknowledged), so to its
// data directory a stop is a kill.
func (c *cluster) stop(id string) {
	nd := c.nodes[id]
	if nd.cancel == nil {
		return
	}
	nd.cancel()
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

// isolate cuts (or, with cut false, heals) every peer link to and from id.
func (c *cluster) isolate(id string, cut bool) {
	for k, r := range c.relays {
		if k[0] == id || k[1] == id {
			r.setCut(cut)
		}
	}
}

// nodeStatus is the part of GET /admin/status the tests read.
type nodeStatus struct {
	Role         string           `json:"role"`
	Term         uint64           `json:"term"`
	Leader       string           `json:"leader"`
	CommitIndex  uint64           `json:"commit_index"`
	AppliedIndex uint64           `json:"applied_index"`
	LastIndex    uint64           `json:"last_index"`
	LastEpoch    uint64           `json:"last_epoch"`
	VotedFor     string           `json:"voted_for"`
	LeaseMS      int64            `json:"lease_ms"`
	Keys         int              `json:"keys"`
	Counters     map[string]int64 `json:"counters"`
}

func (c *cluster) info(id string) targets.NodeInfo {
	cfg := c.nodes[id].cfg
	return targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: id, Client: cfg.Listen, Admin: cfg.Admin, Peer: cfg.PeerListen}, ClientVia: cfg.Listen}
}

func (c *cluster) system() *targets.System {
	c.t.Helper()
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		c.t.Fatal(err)
	}
	return sys
}

// status reads the node's status through the system's Status capability.
func (c *cluster) status(id string) (nodeStatus, error) {
	var s nodeStatus
	st, err := c.system().Status(context.Background(), c.info(id))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(st.Raw, &s)
}

func (c *cluster) mustStatus(id string) nodeStatus {
	c.t.Helper()
	s, err := c.status(id)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// local reads key from id's own registers (the admin API's local read).
func (c *cluster) local(id, key string) string {
	c.t.Helper()
	v, err := c.system().LocalRead(context.Background(), c.info(id), key)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(v)
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

// primary waits until one of the nodes in ids (default: every running
// node) is primary and every one of them names it, and returns it.
func (c *cluster) primary(ids ...string) string {
	c.t.Helper()
	if len(ids) == 0 {
		for _, id := range c.ids {
			if c.nodes[id].cancel != nil {
				ids = append(ids, id)
			}
		}
	}
	var p string
	c.waitFor(fmt.Sprintf("a primary known to each of %v", ids), func() bool {
		p = ""
		for _, id := range ids {
			s, err := c.status(id)
			if err != nil || s.Leader == "" || (p != "" && s.Leader != p) {
				return false
			}
			p = s.Leader
		}
		s, err := c.status(p)
		return err == nil && s.Role == "primary" && slices.Contains(ids, p)
	})
	return p
}

// others returns the ids other than id.
func (c *cluster) others(id string) []string {
	var out []string
	for _, o := range c.ids {
		if o != id {
			out = append(out, o)
		}
	}
	return out
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
	b := c.others(p)[0]
	cl := c.client(b)

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
	for _, id := range c.others(p) {
		c.waitFor(id+" to apply the writes", func() bool { return c.local(id, "k") == "3" && c.local(id, "new") == `"x"` })
	}

	// A backup asked directly refuses, definitely, naming the primary.
	direct, err := httpkv.New(map[string]string{b: c.nodes[b].cfg.Listen}, b, httpkv.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
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
	cl := c.client(p)
	mustOK(t, do(t, cl, "put", "k", "1"), "")
	epoch := c.mustStatus(p).Term

	// Cut both backups off the primary, but not from each other: they must
	// not elect anyone either while they hear... nothing; so also cut them
	// from each other to keep the epoch still.
	c.isolate(p, true)
	for _, a := range c.others(p) {
		for _, b := range c.others(p) {
			if a != b {
				c.relays[[2]string{a, b}].setCut(true)
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
	c.waitFor(p+" to step down", func() bool { return c.mustStatus(p).Role != "primary" })
	if s := c.mustStatus(p); s.Counters["step_downs"] < 1 || s.Counters["replication_timeouts"]+s.Counters["errors_deposed"] < 1 {
		t.Fatalf("counters %v: want a step-down and the unacknowledged write counted", s.Counters)
	}

	// Heal one backup's links only: two of three form a majority.
	b := c.others(p)[0]
	c.relays[[2]string{p, b}].setCut(false)
	c.relays[[2]string{b, p}].setCut(false)
	np := c.primary(p, b)
	if s := c.mustStatus(np); s.Term <= epoch {
		t.Fatalf("new primary %s in epoch %d, want above %d", np, s.Term, epoch)
	}
	out = do(t, c.client(np), "put", "k", "3")
	mustOK(t, out, "")
	mustOK(t, do(t, c.client(np), "get", "k", ""), "3")
}

// TestPartitionedPrimaryFenced: the primary cut off from its backups (its
// clients still reach it) acknowledges nothing more; the backups elect a
// new primary in a newer epoch; healed, the old primary steps down, drops
// the write it could not replicate and catches up.
func TestPartitionedPrimaryFenced(t *testing.T) {
	c := startCluster(t, 3)
	old := c.primary()
	oldEpoch := c.mustStatus(old).Term
	atOld := c.client(old)
	mustOK(t, do(t, atOld, "put", "k", `"before"`), "")

	c.isolate(old, true)
	out := do(t, atOld, "put", "k", `"isolated"`)
	if out.Type == history.OK {
		t.Fatalf("the isolated primary %s acknowledged a write: %+v", old, out)
	}
	np := c.primary(c.others(old)...)
	st := c.mustStatus(np)
	if np == old || st.Term <= oldEpoch {
		t.Fatalf("new primary %s in epoch %d, want another node above epoch %d", np, st.Term, oldEpoch)
	}
	out = do(t, c.client(np), "put", "k", `"new"`)
	mustOK(t, out, "")
	if out.Term != st.Term {
		t.Fatalf("write at the new primary answered under epoch %d, want %d", out.Term, st.Term)
	}
	// The old primary has no lease: it serves no read, whatever its role.
	direct, err := httpkv.New(map[string]string{old: c.nodes[old].cfg.Listen}, old, httpkv.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if out := direct.Do(context.Background(), history.Op{F: "get", Key: "k"}); out.Type == history.OK {
		t.Fatalf("the isolated old primary served a read: %+v", out)
	}
	if out := direct.Do(context.Background(), history.Op{F: "put", Key: "k", Value: json.RawMessage(`"late"`)}); out.Type == history.OK {
		t.Fatalf("the isolated old primary acknowledged a write: %+v", out)
	}

	c.isolate(old, false)
	c.waitFor(old+" to follow "+np, func() bool {
		s := c.mustStatus(old)
		return s.Role == "backup" && s.Leader == np && s.Term == st.Term && c.local(old, "k") == `"new"`
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
	mustOK(t, do(t, c.client(old), "put", "k", `"before"`), "")
	for _, id := range c.others(old) {
		// With the bug the ack does not wait for the backups.
		c.waitFor(id+" to store the first write", func() bool { return c.local(id, "k") == `"before"` })
	}

	c.isolate(old, true)
	direct, err := httpkv.New(map[string]string{old: c.nodes[old].cfg.Listen}, old, httpkv.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	np := c.primary(c.others(old)...)
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
	out = do(t, c.client(np), "put", "other", `"new side"`)
	mustOK(t, out, "")
	if out.Term != newEpoch {
		t.Fatalf("write at the new primary answered under epoch %d, want %d", out.Term, newEpoch)
	}
	if s := c.mustStatus(old); s.Counters["unfenced_acks"] < 1 {
		t.Fatalf("old primary counters %v: want its acknowledgement without a majority counted", s.Counters)
	}

	// Healed: the old primary hears the newer epoch, steps down, and its
	// acknowledged write is gone everywhere.
	c.isolate(old, false)
	c.waitFor(old+" to step down and catch up", func() bool {
		s := c.mustStatus(old)
		return s.Role == "backup" && s.Term == newEpoch && c.local(old, "other") == `"new side"`
	})
	for _, id := range c.ids {
		if got := c.local(id, "k"); got != `"before"` {
			t.Errorf("%s holds k = %s, want \"before\" (the old primary's acknowledged write is lost)", id, got)
		}
	}
	if s := c.mustStatus(old); s.Counters["truncated_entries"] < 1 {
		t.Fatalf("old primary counters %v: want its entries truncated", s.Counters)
	}
	mustOK(t, do(t, c.client(old), "get", "k", ""), `"before"`)
}

// TestRestart: a node stopped and restarted on its data directory keeps
// its epoch, its vote and its log, and catches up with what it missed.
func TestRestart(t *testing.T) {
	c := startCluster(t, 3)
	p := c.primary()
	cl := c.client(p)
	mustOK(t, do(t, cl, "put", "k", "1"), "")
	b := c.others(p)[0]
	c.waitFor(b+" to apply the write", func() bool { return c.local(b, "k") == "1" })
	before := c.mustStatus(b)

	c.stop(b)
	mustOK(t, do(t, cl, "put", "k", "2"), "")
	mustOK(t, do(t, cl, "put", "while-down", "3"), "")
	c.start(b)
	after := c.mustStatus(b)
	if after.Term != before.Term || after.VotedFor != before.VotedFor || after.LastIndex < before.LastIndex {
		t.Fatalf("restarted %s: epoch %d vote %q last index %d, want epoch %d vote %q and at least index %d",
			b, after.Term, after.VotedFor, after.LastIndex, before.Term, before.VotedFor, before.LastIndex)
	}
	c.waitFor(b+" to catch up", func() bool { return c.local(b, "k") == "2" && c.local(b, "while-down") == "3" })

	// The primary restarted: a new one is elected from the others and
	// every acknowledged write survives.
	c.stop(p)
	np := c.primary(c.others(p)...)
	mustOK(t, do(t, c.client(np), "get", "k", ""), "2")
	c.start(p)
	c.waitFor(p+" to rejoin as a backup", func() bool {
		s := c.mustStatus(p)
		return s.Role == "backup" && s.Leader == np && c.local(p, "while-down") == "3"
	})
}
