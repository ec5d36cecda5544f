package lwwkv

import (
	"bytes"
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

	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/targets"
)

// relay is a TCP forwarder on loopback standing in for the proxy of one
// directed peer link: cutting it closes its connections and refuses new
// ones.
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
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.pipe(c)
		}
	}()
	return r
}

func (r *relay) pipe(in net.Conn) {
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
	r.mu.Lock()
	if r.cut {
		r.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	r.conns[in], r.conns[out] = true, true
	r.mu.Unlock()
	go func() { io.Copy(out, in); out.Close() }()
	io.Copy(in, out)
	in.Close()
}

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

// freeAddr returns a free 127.0.0.1 address outside the ephemeral range
// (see freeport.Take).
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
	t     *testing.T
	ids   []string
	nodes map[string]*testNode
	links map[[2]string]*relay // from, to
}

// startCluster runs n lwwkv nodes in this process, each on its own
// loopback ports and data directory, every directed peer link through a
// relay of its own.
func startCluster(t *testing.T, n int, opts map[string]string, bugs ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: map[string]*testNode{}, links: map[[2]string]*relay{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		c.nodes[id] = &testNode{cfg: targets.NodeConfig{
			System: Name, ID: id, Listen: freeAddr(t), Admin: freeAddr(t), PeerListen: freeAddr(t),
			DataDir: t.TempDir(), Bugs: bugs, Peers: map[string]string{}, Opts: opts,
		}}
	}
	for _, from := range c.ids {
		for _, to := range c.ids {
			if from != to {
				r := newRelay(t, c.nodes[to].cfg.PeerListen)
				c.links[[2]string{from, to}] = r
				c.nodes[from].cfg.Peers[to] = r.ln.Addr().String()
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

// stop cancels the node's context and waits for it to return: its
// replication queues are gone, as with a kill (its data log stays).
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

// partition cuts (or heals) both directions of the link between a and b.
func (c *cluster) partition(a, b string, cut bool) {
	c.links[[2]string{a, b}].setCut(cut)
	c.links[[2]string{b, a}].setCut(cut)
}

func (c *cluster) info(id string) targets.NodeInfo {
	cfg := c.nodes[id].cfg
	return targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: id, Client: cfg.Listen, Admin: cfg.Admin, Peer: cfg.PeerListen}, ClientVia: cfg.Listen}
}

func (c *cluster) sys() *targets.System {
	c.t.Helper()
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		c.t.Fatal(err)
	}
	return sys
}

// nodeStatus is the part of GET /admin/status the tests read.
type nodeStatus struct {
	Role        string           `json:"role"`
	Term        uint64           `json:"term"`
	Keys        int              `json:"keys"`
	Counters    map[string]int64 `json:"counters"`
	PendingBy   map[string]int   `json:"pending_by_peer"`
	Unreachable []string         `json:"unreachable_peers"`
}

func (c *cluster) status(id string) nodeStatus {
	c.t.Helper()
	st, err := c.sys().Status(context.Background(), c.info(id))
	if err != nil {
		c.t.Fatal(err)
	}
	var s nodeStatus
	if err := json.Unmarshal(st.Raw, &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// local reads key from node id's own state (the admin API's local read).
func (c *cluster) local(id, key string) string {
	c.t.Helper()
	v, err := c.sys().LocalRead(context.Background(), c.info(id), key)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(v)
}

// request sends one client API request to node id and returns the status
// code and body.
func (c *cluster) request(id, method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://"+c.nodes[id].cfg.Listen+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (c *cluster) put(id, key, value string) {
	c.t.Helper()
	if code, body := c.request(id, "PUT", "/kv/"+key, `{"value":`+value+`}`); code != 200 {
		c.t.Fatalf("put %s=%s at %s: %d %s", key, value, id, code, body)
	}
}

// setClock sets node id's clock offset through the admin API.
func (c *cluster) setClock(id string, offset time.Duration) {
	c.t.Helper()
	body := fmt.Sprintf(`{"offset_ms": %d}`, offset.Milliseconds())
	resp, err := http.Post("http://"+c.nodes[id].cfg.Admin+"/admin/clock", "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		c.t.Fatalf("POST /admin/clock %s at %s: %d", body, id, resp.StatusCode)
	}
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

// noQueueRetry and noAntiEntropy make one replication path idle, so a
// test sees the other alone.
var (
	noQueueRetry  = map[string]string{"replication-retry": "1h", "anti-entropy-interval": "50ms"}
	noAntiEntropy = map[string]string{"anti-entropy-interval": "1h", "replication-retry": "50ms"}
)

// TestReplication: every node serves reads and writes; the queues bring a
// write to every peer (anti-entropy is idle here); CAS is a local decision.
func TestReplication(t *testing.T) {
	c := startCluster(t, 3, noAntiEntropy)
	c.put("n1", "k", "1")
	for _, id := range c.ids {
		c.waitFor("k=1 at "+id, func() bool { return c.local(id, "k") == "1" })
	}
	if code, body := c.request("n2", "GET", "/kv/k", ""); code != 200 || body != `{"value":1}` {
		t.Fatalf("get at n2: %d %s", code, body)
	}
	if code, body := c.request("n3", "GET", "/kv/absent", ""); code != 200 || body != `{"value":null}` {
		t.Fatalf("get of an absent key at n3: %d %s", code, body)
	}
	if code, body := c.request("n3", "POST", "/kv/k/cas", `{"from":1,"to":2}`); code != 200 {
		t.Fatalf("cas at n3: %d %s", code, body)
	}
	for _, id := range c.ids {
		c.waitFor("k=2 at "+id, func() bool { return c.local(id, "k") == "2" })
	}
	if code, body := c.request("n2", "POST", "/kv/k/cas", `{"from":1,"to":3}`); code != 409 || !strings.Contains(body, "mismatch") {
		t.Fatalf("cas from a value n2 no longer holds: %d %s, want 409 mismatch", code, body)
	}
	s := c.status("n1")
	if s.Role != StatusRole || s.Term != 0 || s.Keys != 1 {
		t.Fatalf("n1 status: role %q term %d keys %d, want replica, 0, 1", s.Role, s.Term, s.Keys)
	}
	c.waitFor("n1's queues to drain", func() bool {
		s := c.status("n1")
		return s.Counters["sent"] >= 2 && s.Counters["pending"] == 0
	})
	if s := c.status("n1"); s.Counters["anti_entropy_rounds"] != 0 {
		t.Fatalf("n1 counters %v: want no anti-entropy rounds (the queues replicated)", s.Counters)
	}
	if s := c.status("n2"); s.Counters["received"] < 2 || s.Counters["merges"] < 2 {
		t.Fatalf("n2 counters %v: want received and merges >= 2 (n1's put, n3's cas)", s.Counters)
	}
}

// TestPartitionConverges: two nodes write the same key while partitioned;
// after the heal, anti-entropy alone (the queues do not retry here) brings
// both to the same winner: the write with the larger timestamp, here that
// of n2, whose clock runs 10 s ahead.
func TestPartitionConverges(t *testing.T) {
	c := startCluster(t, 3, noQueueRetry)
	c.setClock("n2", 10*time.Second)
	for _, other := range []string{"n2", "n3"} {
		c.partition("n1", other, true)
	}
	c.put("n2", "k", `"from-n2"`)
	c.put("n1", "k", `"from-n1"`) // later in real time, earlier by the clocks
	c.waitFor("n3 to get n2's write (they are connected)", func() bool { return c.local("n3", "k") == `"from-n2"` })
	c.waitFor("n1 to fail its sends and anti-entropy rounds with both peers", func() bool {
		s := c.status("n1")
		return len(s.Unreachable) == 2 && s.Counters["anti_entropy_errors"] >= 2
	})
	if got := c.local("n1", "k"); got != `"from-n1"` {
		t.Fatalf("partitioned n1 holds %s, want its own write", got)
	}
	if s := c.status("n1"); s.Counters["pending"] != 2 {
		t.Fatalf("n1 while partitioned: pending %d, want 2 (its write, for each peer)", s.Counters["pending"])
	}
	for _, other := range []string{"n2", "n3"} {
		c.partition("n1", other, false)
	}
	for _, id := range c.ids {
		c.waitFor(id+" to hold n2's write", func() bool { return c.local(id, "k") == `"from-n2"` })
	}
	// The node that merged the two concurrent writes counted the discarded
	// one (n1 or n2, whichever started the first exchange after the heal);
	// the others took the resolved version, whose clock covers both.
	discarded := int64(0)
	for _, id := range c.ids {
		discarded += c.status(id).Counters["concurrent_discarded"]
	}
	if discarded < 1 {
		t.Fatalf("no node counted a concurrent write discarded")
	}
	// Anti-entropy did it: n1's queue still holds its write for both
	// peers (its one retry is an hour away).
	if s := c.status("n1"); s.Counters["pending"] != 2 {
		t.Fatalf("n1 counters %v: want its queue still pending (2)", s.Counters)
	}
	c.waitFor("an anti-entropy round of n1's own", func() bool { return c.status("n1").Counters["anti_entropy_rounds"] >= 1 })
	c.waitFor("n1 to see its peers reachable", func() bool { return len(c.status("n1").Unreachable) == 0 })
}

// TestCausality: n1's clock runs 10 s ahead; n2 writes after reading
// n1's write, with a smaller timestamp. Vector clocks make n2's write win
// everywhere; with wall-clock-only the earlier write of the fast clock
// wins, on n2 itself too.
func TestCausality(t *testing.T) {
	for _, tc := range []struct {
		bugs []string
		want string
	}{
		{nil, `"b"`},
		{[]string{BugWallClockOnly}, `"a"`},
	} {
		t.Run(fmt.Sprint(tc.bugs), func(t *testing.T) {
			c := startCluster(t, 2, map[string]string{"anti-entropy-interval": "50ms", "replication-retry": "50ms"}, tc.bugs...)
			c.setClock("n1", 10*time.Second)
			c.put("n1", "k", `"a"`)
			c.waitFor("n2 to hold a", func() bool { return c.local("n2", "k") == `"a"` })
			c.put("n2", "k", `"b"`)
			if got := c.local("n2", "k"); got != tc.want {
				t.Fatalf("n2 right after its own write holds %s, want %s", got, tc.want)
			}
			// n1 has n2's version once n2's queue is empty and n1 merged it.
			c.waitFor("n2's queue to drain", func() bool { return c.status("n2").Counters["pending"] == 0 })
			c.waitFor("anti-entropy rounds on both", func() bool {
				return c.status("n1").Counters["anti_entropy_rounds"] >= 2 && c.status("n2").Counters["anti_entropy_rounds"] >= 2
			})
			for _, id := range c.ids {
				if got := c.local(id, "k"); got != tc.want {
					t.Fatalf("%s holds %s, want %s", id, got, tc.want)
				}
			}
			overruled := c.status("n2").Counters["causal_overruled"]
			if (len(tc.bugs) > 0) != (overruled > 0) {
				t.Fatalf("n2 causal_overruled %d with bugs %v", overruled, tc.bugs)
			}
		})
	}
}

// TestQueueLost: n1 writes while cut off from n2, then stops (its queue is
// gone) and restarts with its data log. Anti-entropy repairs n2; with the
// no-anti-entropy bug n2 never gets the write.
func TestQueueLost(t *testing.T) {
	for _, tc := range []struct {
		bugs     []string
		converge bool
	}{
		{nil, true},
		{[]string{BugNoAntiEntropy}, false},
	} {
		t.Run(fmt.Sprint(tc.bugs), func(t *testing.T) {
			c := startCluster(t, 2, map[string]string{"anti-entropy-interval": "50ms", "replication-retry": "50ms"}, tc.bugs...)
			c.partition("n1", "n2", true)
			c.put("n1", "k", `"lost"`)
			c.waitFor("n1's queue to fail a send", func() bool { return c.status("n1").Counters["peer_errors"] >= 1 })
			c.stop("n1")
			c.partition("n1", "n2", false)
			c.start("n1")
			if got := c.local("n1", "k"); got != `"lost"` {
				t.Fatalf("restarted n1 holds %s, want its acknowledged write from its data log", got)
			}
			if tc.converge {
				c.waitFor("n2 to get n1's write", func() bool { return c.local("n2", "k") == `"lost"` })
				return
			}
			// 40 retry intervals: ample for the queue, had it survived.
			time.Sleep(2 * time.Second)
			if got := c.local("n2", "k"); got != "null" {
				t.Fatalf("n2 holds %s: the write reached it without anti-entropy", got)
			}
			if s := c.status("n1"); s.Counters["pending"] != 0 || s.Counters["anti_entropy_rounds"] != 0 {
				t.Fatalf("restarted n1: pending %d anti-entropy rounds %d, want 0 and 0", s.Counters["pending"], s.Counters["anti_entropy_rounds"])
			}
		})
	}
}

// TestPeerAPI: the peer API requires the run's token, refuses malformed
// versions (400, nothing merged) and merges good ones.
func TestPeerAPI(t *testing.T) {
	cfg := targets.NodeConfig{
		System: Name, ID: "n1", Listen: freeAddr(t), Admin: freeAddr(t), PeerListen: freeAddr(t),
		DataDir: t.TempDir(), Token: "secret",
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	cfg.Ready = func() { close(ready) }
	go func() { done <- targets.RunNode(ctx, cfg) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	post := func(token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+cfg.PeerListen+PathReplicate, bytes.NewReader([]byte(body)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := `{"from":"n2","versions":[{"key":"k","value":"v","clock":{"n2":3},"ts":1,"origin":"n2","seq":3}]}`
	bad := `{"from":"n2","versions":[{"key":"j","value":1,"clock":{"n2":1},"ts":1,"origin":"n2","seq":1},{"key":"k","value":"v","clock":{"n2":2},"ts":1,"origin":"n2","seq":3}]}`
	if code, _ := post("", good); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, body := post("secret", bad); code != 400 || !strings.Contains(body, "does not cover") {
		t.Fatalf("a clock that does not cover its write: %d %s, want 400 saying so", code, body)
	}
	if code, body := post("secret", good); code != 200 || body != `{"merged":1}` {
		t.Fatalf("good batch: %d %s", code, body)
	}
	n := targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n1", Admin: cfg.Admin}, Token: "secret"}
	sys, _ := targets.LookupSystem(Name)
	for key, want := range map[string]string{"k": `"v"`, "j": "null"} {
		v, err := sys.LocalRead(context.Background(), n, key)
		if err != nil || string(v) != want {
			t.Fatalf("local read %s: %s %v, want %s", key, v, err, want)
		}
	}
}

// TestRegistration: the registered system declares what the conductor
// looks up, and refuses bad options before anything starts, naming them.
func TestRegistration(t *testing.T) {
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := sys.Role(""); !ok || r.Name != "node" || r.Nodes != 3 || !r.Serves || len(sys.Roles) != 1 {
		t.Fatalf("roles %+v", sys.Roles)
	}
	if sys.Client != "http" || sys.Workload != "register" || !sys.PeerLinks || sys.Status == nil || sys.SetClock == nil || sys.LocalRead == nil {
		t.Fatalf("declarations: %+v", sys)
	}
	if got := strings.Join(sys.BugNames(), ","); got != "no-anti-entropy,wall-clock-only" {
		t.Fatalf("bugs %s", got)
	}
	if err := sys.CheckOptions(map[string]string{"replication-retry": "250", "anti-entropy-interval": "1s", "peer-timeout": "2s"}); err != nil {
		t.Fatalf("good options refused: %v", err)
	}
	for opts, want := range map[string]map[string]string{
		`option replication-retry="0"`:       {"replication-retry": "0"},
		`option peer-timeout="soon"`:         {"peer-timeout": "soon"},
		`option anti-entropy-interval="-5s"`: {"anti-entropy-interval": "-5s"},
		`unknown option "gossip"`:            {"gossip": "1"},
		`option log-level="loud"`:            {"log-level": "loud"},
	} {
		err := sys.CheckOptions(want)
		if err == nil || !strings.Contains(err.Error(), opts) {
			t.Errorf("CheckOptions(%v) = %v, want an error containing %s", want, err, opts)
		}
	}
	if err := Run(context.Background(), targets.NodeConfig{ID: "n1"}); err == nil || !strings.Contains(err.Error(), "peer-listen") {
		t.Fatalf("Run without addresses: %v", err)
	}
}
