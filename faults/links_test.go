package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/targets"
)

const (
	cutWait  = 200 * time.Millisecond // a read this long with no answer: cut
	flowWait = 3 * time.Second        // an answer within this: the link works
)

// echoServer stands in for one node's listener: it answers every line with
// "<name>:<line>".
type echoServer struct {
	name string
	ln   net.Listener
	mu   sync.Mutex
	cs   []net.Conn
	wg   sync.WaitGroup
}

func startEcho(t *testing.T, name string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{name: name, ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cs = append(s.cs, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, s.name+":"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func (s *echoServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.cs {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// conn is a client connection with a line reader.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, flowWait)
	if err != nil {
		return nil, err
	}
	return &conn{c, bufio.NewReader(c)}, nil
}

// send writes msg and waits up to wait for the answer line.
func (c *conn) send(msg string, wait time.Duration) (string, error) {
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return "", err
	}
	return c.recv(wait)
}

func (c *conn) recv(wait time.Duration) (string, error) {
	c.c.SetReadDeadline(time.Now().Add(wait))
	line, err := c.r.ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cluster is three echo "nodes" behind an embedded Toxiproxy.
type cluster struct {
	srv     *ProxyServer
	links   *Links
	ids     []string
	peers   map[string]map[string]string
	clients map[string]string
	echoes  []*echoServer
}

func newCluster(t *testing.T, ids ...string) *cluster {
	t.Helper()
	if len(ids) == 0 {
		ids = []string{"n1", "n2", "n3"}
	}
	ctx := context.Background()
	srv, err := NewProxyServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("ProxyServer.Close: %v", err)
		}
	})
	var nodes []targets.NodeAddrs
	var echoes []*echoServer
	for _, id := range ids {
		p, c := startEcho(t, id+"/peer"), startEcho(t, id+"/client")
		echoes = append(echoes, p, c)
		nodes = append(nodes, targets.NodeAddrs{ID: id, Peer: p.addr(), Client: c.addr()})
	}
	links := NewLinks(srv.APIAddr(), LinksOptions{})
	peers, clients, err := links.MapLinks(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{srv: srv, links: links, ids: ids, peers: peers, clients: clients, echoes: echoes}
}

func (c *cluster) addr(k Link) string {
	if k.IsClient() {
		return c.clients[k.To]
	}
	return c.peers[k.From][k.To]
}

func (k Link) want(msg string) string {
	if k.IsClient() {
		return k.To + "/client:" + msg
	}
	return k.To + "/peer:" + msg
}

// mustFlow checks that a new connection over k carries a round trip.
func (c *cluster) mustFlow(t *testing.T, k Link) {
	t.Helper()
	cn, err := dial(c.addr(k))
	if err != nil {
		t.Fatalf("%s: dial %s: %v", k, c.addr(k), err)
	}
	defer cn.c.Close()
	got, err := cn.send("hi", flowWait)
	if err != nil || got != k.want("hi") {
		t.Fatalf("%s: new connection: got %q, %v; want %q", k, got, err, k.want("hi"))
	}
}

// openAll opens one connection per link and checks that each works.
func (c *cluster) openAll(t *testing.T) map[Link]*conn {
	t.Helper()
	out := map[Link]*conn{}
	for _, k := range c.links.All() {
		cn, err := dial(c.addr(k))
		if err != nil {
			t.Fatalf("%s: dial: %v", k, err)
		}
		t.Cleanup(func() { cn.c.Close() })
		if got, err := cn.send("before", flowWait); err != nil || got != k.want("before") {
			t.Fatalf("%s: got %q, %v", k, got, err)
		}
		out[k] = cn
	}
	return out
}

func (c *cluster) mustBeClean(t *testing.T) {
	t.Helper()
	states, err := c.links.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if len(s.Toxics) != 0 || !s.Enabled {
			t.Errorf("%s after heal: enabled=%v toxics=%v; want enabled, no toxics", s.Link, s.Enabled, s.Toxics)
		}
	}
	if a := c.links.Active(); len(a) != 0 {
		t.Errorf("active faults after heal: %+v", a)
	}
}

func TestMapLinksDataFlows(t *testing.T) {
	c := newCluster(t)
	all := c.links.All()
	if len(all) != 9 {
		t.Fatalf("links: %v; want 6 peer + 3 client links", all)
	}
	for _, k := range all {
		c.mustFlow(t, k)
	}
	states, err := c.links.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range states {
		names[s.Proxy] = true
		if !s.Enabled || len(s.Toxics) != 0 {
			t.Errorf("%s: enabled=%v toxics=%v", s.Link, s.Enabled, s.Toxics)
		}
		if a, _ := c.links.ProxyAddr(s.Link); a != s.Listen {
			t.Errorf("%s: dial %s, proxy listens on %s", s.Link, a, s.Listen)
		}
	}
	for _, n := range []string{"n1_to_n2", "n3_to_n1", "client_to_n2"} {
		if !names[n] {
			t.Errorf("no proxy named %s among %v", n, names)
		}
	}
	if s := linkList(c.links.Touching("n1", true)); s != "n1->n2 n1->n3 n2->n1 n3->n1 client->n1" {
		t.Errorf("Touching(n1): %s", s)
	}
	if s := linkList(c.links.Between("n3", "n2")); s != "n2->n3 n3->n2" {
		t.Errorf("Between(n3, n2): %s", s)
	}
	if s := linkList(c.links.ClientLinks()); s != "client->n1 client->n2 client->n3" {
		t.Errorf("ClientLinks: %s", s)
	}
	// A second MapLinks is refused: it would leak the first proxies.
	if _, _, err := c.links.MapLinks(context.Background(), nil); err == nil {
		t.Error("second MapLinks succeeded")
	}
}

func TestMapLinksRejectsBadIDs(t *testing.T) {
	srv, err := NewProxyServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, nodes := range [][]targets.NodeAddrs{
		{{ID: "client", Client: "127.0.0.1:1"}},
		{{ID: "a/b", Client: "127.0.0.1:1"}},
		{{ID: "n1", Client: "127.0.0.1:1"}, {ID: "n1", Client: "127.0.0.1:2"}},
	} {
		if _, _, err := NewLinks(srv.APIAddr(), LinksOptions{}).MapLinks(context.Background(), nodes); err == nil {
			t.Errorf("MapLinks(%v) succeeded", nodes)
		}
	}
	// A taken name fails, and the half-made mapping is deleted again.
	nodes := []targets.NodeAddrs{{ID: "n1", Client: "127.0.0.1:1", Peer: "127.0.0.1:3"}, {ID: "n2", Client: "127.0.0.1:2", Peer: "127.0.0.1:4"}}
	first := NewLinks(srv.APIAddr(), LinksOptions{Prefix: "x-"})
	if _, _, err := first.MapLinks(context.Background(), nodes[1:]); err != nil {
		t.Fatal(err)
	}
	second := NewLinks(srv.APIAddr(), LinksOptions{Prefix: "x-"})
	if _, _, err := second.MapLinks(context.Background(), nodes); err == nil || !strings.Contains(err.Error(), "x-client_to_n2") {
		t.Fatalf("MapLinks with a taken name: %v; want an error naming x-client_to_n2", err)
	}
	if st, err := first.Inspect(context.Background()); err != nil || len(st) != 1 {
		t.Fatalf("the first mapping was disturbed: %v %v", st, err)
	}
	if all, err := newToxiClient(srv.APIAddr(), srv.Token()).Proxies(); err != nil || len(all) != 1 {
		t.Fatalf("proxies after a failed MapLinks: %v, %v; want only the first mapping's", all, err)
	}
	// Once the name is free, the same Links maps.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := second.MapLinks(context.Background(), nodes); err != nil {
		t.Fatalf("MapLinks after a failed one: %v", err)
	}
	if got := len(second.All()); got != 4 {
		t.Errorf("%d links; want 4", got)
	}
}

func TestCrossingLinks(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	got, err := CrossingLinks(nodes, [][]string{{"n1", "n2"}, {"n3"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := linkList(got); s != "n1->n3 n2->n3 n3->n1 n3->n2" {
		t.Errorf("halves: %s", s)
	}
	got, _ = CrossingLinks(nodes, [][]string{{"n2", "n3"}})
	if s := linkList(got); s != "n1->n2 n1->n3 n2->n1 n3->n1" {
		t.Errorf("n1 in no group: %s", s)
	}
	got, _ = CrossingLinks(nodes, nil)
	if len(got) != 6 {
		t.Errorf("no groups: %v; want every link", got)
	}
	if _, err := CrossingLinks(nodes, [][]string{{"n1"}, {"n1", "n2"}}); err == nil {
		t.Error("a node in two groups was accepted")
	}
	if _, err := CrossingLinks(nodes, [][]string{{"n9"}}); err == nil {
		t.Error("an unknown node was accepted")
	}
}

// checkCut checks that link k carries nothing, on the existing connection
// ex and on a new one, as mode says.
func (c *cluster) checkCut(t *testing.T, k Link, ex *conn, mode Mode) {
	t.Helper()
	got, err := ex.send("during", cutWait)
	switch mode {
	case Drop, Hold:
		if !isTimeout(err) {
			t.Errorf("%s %s, existing connection: got %q, %v; want a read timeout", mode, k, got, err)
		}
	case Refuse:
		if err == nil || isTimeout(err) {
			t.Errorf("%s %s, existing connection: got %q, %v; want it closed", mode, k, got, err)
		}
	}
	cn, err := dial(c.addr(k))
	if mode == Refuse {
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s %s, new connection: dial error %v; want connection refused", mode, k, err)
		}
		if err == nil {
			cn.c.Close()
		}
		return
	}
	if err != nil {
		t.Errorf("%s %s, new connection: dial error %v; want accepted", mode, k, err)
		return
	}
	defer cn.c.Close()
	if got, err := cn.send("new", cutWait); !isTimeout(err) {
		t.Errorf("%s %s, new connection: got %q, %v; want a read timeout", mode, k, got, err)
	}
}

func TestPartitionIsolatesNode(t *testing.T) {
	for _, mode := range []Mode{Drop, Hold, Refuse} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			c := newCluster(t)
			ex := c.openAll(t)
			f, err := c.links.Partition(ctx, [][]string{{"n2", "n3"}}, mode)
			if err != nil {
				t.Fatal(err)
			}
			if s := linkList(f.Links); s != "n1->n2 n1->n3 n2->n1 n3->n1" {
				t.Fatalf("partition cut %s", s)
			}
			var wg sync.WaitGroup
			for _, k := range c.links.All() {
				touches := !k.IsClient() && (k.From == "n1" || k.To == "n1")
				if touches {
					// Each check waits cutWait twice: run them together.
					wg.Add(1)
					go func() {
						defer wg.Done()
						c.checkCut(t, k, ex[k], mode)
					}()
					continue
				}
				// n2 <-> n3 and every client link still work, old and new.
				if got, err := ex[k].send("during", flowWait); err != nil || got != k.want("during") {
					t.Errorf("%s (not cut), existing connection: got %q, %v", k, got, err)
				}
				c.mustFlow(t, k)
			}
			wg.Wait()

			rep, err := c.links.Heal(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantToxics, wantEnabled := 8, 0
			if mode == Refuse {
				wantToxics, wantEnabled = 0, 4
			}
			if len(rep.Removed) != wantToxics || len(rep.Enabled) != wantEnabled || len(rep.Ended) != 1 {
				t.Errorf("heal report: %d toxics removed, %d proxies enabled, %d faults ended; want %d, %d, 1",
					len(rep.Removed), len(rep.Enabled), len(rep.Ended), wantToxics, wantEnabled)
			}
			c.mustBeClean(t)
			for _, k := range c.links.All() {
				c.mustFlow(t, k)
			}
			// What the connections opened before the cut see after it.
			for _, k := range f.Links {
				switch mode {
				case Hold:
					// The held requests ("during") are delivered now, in order.
					if got, err := ex[k].recv(flowWait); err != nil || got != k.want("during") {
						t.Errorf("hold %s after heal: got %q, %v; want the held answer", k, got, err)
					}
				case Drop, Refuse:
					// Toxiproxy closed them: their data was lost.
					if got, err := ex[k].send("after", flowWait); err == nil || isTimeout(err) {
						t.Errorf("%s %s after heal, existing connection: got %q, %v; want it closed", mode, k, got, err)
					}
				}
			}
		})
	}
}

func TestPartitionClientsIn(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	f, err := c.links.Partition(ctx, [][]string{{"n1"}, {"n2", "n3"}}, Refuse, ClientsIn(LargestGroup))
	if err != nil {
		t.Fatal(err)
	}
	if s := linkList(f.Disabled); s != "n1->n2 n1->n3 n2->n1 n3->n1 client->n1" {
		t.Fatalf("cut %s", s)
	}
	if _, err := dial(c.clients["n1"]); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("client->n1 during the partition: %v; want refused", err)
	}
	c.mustFlow(t, Link{ClientID, "n2"})
	if _, err := c.links.Partition(ctx, [][]string{{"n1"}}, Drop, ClientsIn(3)); err == nil {
		t.Error("ClientsIn with a group that does not exist was accepted")
	}
	if err := c.links.End(ctx, f); err != nil {
		t.Fatal(err)
	}
	c.mustBeClean(t)
	c.mustFlow(t, Link{ClientID, "n1"})
}

func TestCutOneWay(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	f, err := c.links.CutOneWay(ctx, "n1", "n2", Drop)
	if err != nil {
		t.Fatal(err)
	}
	c.mustFlow(t, Link{"n2", "n1"})
	cn, err := dial(c.peers["n1"]["n2"])
	if err != nil {
		t.Fatal(err)
	}
	defer cn.c.Close()
	if got, err := cn.send("x", cutWait); !isTimeout(err) {
		t.Errorf("n1->n2 cut one way: got %q, %v; want a timeout", got, err)
	}
	if _, err := c.links.CutOneWay(ctx, "n1", "n9", Drop); err == nil {
		t.Error("a cut of an unknown link was accepted")
	}
	if err := c.links.End(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := c.links.End(ctx, f); err == nil {
		t.Error("ending a fault twice succeeded")
	}
	c.mustBeClean(t)
	c.mustFlow(t, Link{"n1", "n2"})
}

// Overlapping faults on one link end independently: each removes its own
// toxics, and a proxy stays disabled while any fault refuses it.
func TestOverlappingFaultsEndExactly(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	k := Link{"n1", "n2"}
	one, err := c.links.Cut(ctx, []Link{k}, Refuse)
	if err != nil {
		t.Fatal(err)
	}
	iso, err := c.links.Partition(ctx, [][]string{{"n2", "n3"}}, Refuse)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := c.links.Cut(ctx, []Link{k}, Drop)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := c.links.Cut(ctx, []Link{k, k}, Drop)
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.Links) != 1 || len(d2.Toxics) != 2 {
		t.Errorf("repeated link not merged: %+v", d2)
	}
	if err := c.links.End(ctx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(c.addr(k)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%s after ending one of two refusals: %v; want still refused", k, err)
	}
	if err := c.links.End(ctx, iso); err != nil {
		t.Fatal(err)
	}
	if err := c.links.End(ctx, d1); err != nil {
		t.Fatal(err)
	}
	st, err := c.links.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Link == k {
			if !s.Enabled || len(s.Toxics) != 2 || !strings.HasPrefix(s.Toxics[0].Name, fmt.Sprintf("f%d_", d2.ID)) {
				t.Errorf("%s: enabled=%v toxics=%v; want enabled with only fault %d's two toxics", k, s.Enabled, s.Toxics, d2.ID)
			}
		}
	}
	if a := c.links.Active(); len(a) != 1 || a[0].ID != d2.ID {
		t.Errorf("active: %+v; want only fault %d", a, d2.ID)
	}
	rep, err := c.links.Heal(ctx)
	if err != nil || len(rep.Removed) != 2 {
		t.Errorf("heal: %+v, %v; want 2 toxics removed", rep, err)
	}
	c.mustBeClean(t)
	c.mustFlow(t, k)
}

func TestLatencyAndBandwidth(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	k := Link{"n1", "n2"}
	f, err := c.links.Latency(ctx, []Link{k}, 150*time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := dial(c.addr(k))
	if err != nil {
		t.Fatal(err)
	}
	defer cn.c.Close()
	start := time.Now()
	if got, err := cn.send("slow", flowWait); err != nil || got != k.want("slow") {
		t.Fatalf("latency %s: got %q, %v", k, got, err)
	}
	// A lower bound only: the toxic delays each way by at least 140 ms.
	if rtt := time.Since(start); rtt < 280*time.Millisecond {
		t.Errorf("round trip with 150±10 ms latency each way took %v", rtt)
	}
	if err := c.links.End(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := c.links.Latency(ctx, []Link{k}, 0, 0); err == nil {
		t.Error("zero latency accepted")
	}

	// 10 KB/s each way: 3000 bytes out and back take at least ~600 ms.
	b, err := c.links.Bandwidth(ctx, []Link{k}, 10)
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("x", 3000)
	start = time.Now()
	if got, err := cn.send(payload, flowWait); err != nil || got != k.want(payload) {
		t.Fatalf("bandwidth %s: got %d bytes, %v", k, len(got), err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("6000 bytes at 10 KB/s took %v", d)
	}
	if _, err := c.links.Bandwidth(ctx, []Link{k}, 0); err == nil {
		t.Error("zero bandwidth accepted")
	}
	if err := c.links.End(ctx, b); err != nil {
		t.Fatal(err)
	}
	c.mustBeClean(t)
}

func TestResetPeer(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	k := Link{ClientID, "n3"}
	ex := c.openAll(t)
	f, err := c.links.ResetPeer(ctx, []Link{k})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ex[k].send("x", flowWait); err == nil || isTimeout(err) {
		t.Errorf("reset %s, existing connection: got %q, %v; want it reset", k, got, err)
	}
	cn, err := dial(c.addr(k))
	if err != nil {
		t.Fatalf("reset %s: new connection not accepted: %v", k, err)
	}
	defer cn.c.Close()
	if got, err := cn.send("x", flowWait); err == nil || isTimeout(err) {
		t.Errorf("reset %s, new connection: got %q, %v; want it reset", k, got, err)
	}
	c.mustFlow(t, Link{ClientID, "n1"})
	if err := c.links.End(ctx, f); err != nil {
		t.Fatal(err)
	}
	c.mustBeClean(t)
	c.mustFlow(t, k)
}

// refused reports whether nothing listens on addr any more.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func TestCloseLeavesNoListener(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	var addrs []string
	for _, k := range c.links.All() {
		addrs = append(addrs, c.addr(k))
	}
	ex := c.openAll(t)
	// Leave faults in place: Close must clear them too.
	if _, err := c.links.Partition(ctx, [][]string{{"n1"}, {"n2", "n3"}}, Hold); err != nil {
		t.Fatal(err)
	}
	if _, err := c.links.Cut(ctx, []Link{{ClientID, "n1"}}, Refuse); err != nil {
		t.Fatal(err)
	}
	// Links.Close deletes its proxies but leaves the server up.
	if err := c.links.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !refused(a) {
			t.Errorf("proxy %s still accepts connections after Links.Close", a)
		}
	}
	if _, err := ex[Link{"n2", "n3"}].send("x", flowWait); err == nil {
		t.Error("a proxied connection survived Links.Close")
	}
	if _, err := c.links.Cut(ctx, []Link{{"n1", "n2"}}, Drop); err == nil {
		t.Error("a cut on a closed Links succeeded")
	}
	api := c.srv.APIAddr()
	if refused(api) {
		t.Fatal("Links.Close stopped the server")
	}

	// ProxyServer.Close removes the proxies others made and stops the API.
	other := NewLinks(api, LinksOptions{Prefix: "other-"})
	_, cl, err := other.MapLinks(ctx, []targets.NodeAddrs{{ID: "a", Client: startEcho(t, "a").addr()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Cut(ctx, other.All(), Hold); err != nil {
		t.Fatal(err)
	}
	if err := c.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, a := range []string{api, cl["a"]} {
		if !refused(a) {
			t.Errorf("%s still accepts connections after ProxyServer.Close", a)
		}
	}
}

func TestServeProxy(t *testing.T) {
	// Find a free port (outside the ephemeral range, where no outgoing
	// connection takes it meanwhile), then serve the API on it as
	// `faultline proxy` would.
	ports, err := freeport.Take(1)
	if err != nil {
		t.Fatal(err)
	}
	api := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeProxy(ctx, api) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	links := NewLinks(api, LinksOptions{ListenHost: "0.0.0.0"})
	nodes := []targets.NodeAddrs{
		{ID: "n1", Client: startEcho(t, "n1/client").addr(), Peer: startEcho(t, "n1/peer").addr()},
		{ID: "n2", Client: startEcho(t, "n2/client").addr(), Peer: startEcho(t, "n2/peer").addr()},
	}
	// The API comes up asynchronously; a failed MapLinks may be retried.
	var peers map[string]map[string]string
	for deadline := time.Now().Add(flowWait); ; time.Sleep(20 * time.Millisecond) {
		peers, _, err = links.MapLinks(ctx, nodes)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := links.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Listening on every interface, dialled through loopback by default.
	if !strings.HasPrefix(st[0].Listen, "[::]:") && !strings.HasPrefix(st[0].Listen, "0.0.0.0:") {
		t.Errorf("proxy listens on %s; want all interfaces", st[0].Listen)
	}
	p := peers["n1"]["n2"]
	if !strings.HasPrefix(p, "127.0.0.1:") {
		t.Errorf("dial address %s; want 127.0.0.1:PORT", p)
	}
	cn, err := dial(p)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.c.Close()
	if got, err := cn.send("hi", flowWait); err != nil || got != "n2/peer:hi" {
		t.Fatalf("through the served proxy: %q, %v", got, err)
	}
	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Errorf("ServeProxy after cancel: %v", err)
	}
	for _, a := range []string{api, p} {
		if !refused(a) {
			t.Errorf("%s still accepts connections after ServeProxy returned", a)
		}
	}
}

func TestLinksOptionsMapAddresses(t *testing.T) {
	ctx := context.Background()
	srv, err := NewProxyServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	peer := startEcho(t, "n2/peer")
	var upstreamSeen string
	links := NewLinks(srv.APIAddr(), LinksOptions{
		NoClientLinks: true,
		Upstream: func(k Link, addr string) string {
			upstreamSeen = addr
			return peer.addr() // as a container runtime maps names to reachable addresses
		},
		Dial: func(k Link, listen string) (string, error) {
			_, port, err := net.SplitHostPort(listen)
			return "localhost:" + port, err
		},
	})
	peers, clients, err := links.MapLinks(ctx, []targets.NodeAddrs{
		{ID: "n1", Client: "127.0.0.1:1"},
		{ID: "n2", Client: "127.0.0.1:2", Peer: "n2:7000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if upstreamSeen != "n2:7000" || clients["n1"] != "127.0.0.1:1" || len(peers["n2"]) != 0 || len(links.All()) != 1 {
		t.Fatalf("upstream %q, clients %v, peers %v, links %v", upstreamSeen, clients, peers, links.All())
	}
	if !strings.HasPrefix(peers["n1"]["n2"], "localhost:") {
		t.Fatalf("dial address %q; want localhost:PORT", peers["n1"]["n2"])
	}
	cn, err := dial(peers["n1"]["n2"])
	if err != nil {
		t.Fatal(err)
	}
	defer cn.c.Close()
	if got, err := cn.send("hi", flowWait); err != nil || got != "n2/peer:hi" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// pushServer writes a line every 20 ms to each connection, unasked: the
// To -> From ("downstream") stream alone.
func pushServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := io.WriteString(c, "push\n"); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A cut stops To's answers too, not only From's requests: a server that
// pushes every 20 ms goes silent on a connection opened before the cut.
func TestCutStopsDownstream(t *testing.T) {
	for _, mode := range []Mode{Drop, Hold, Refuse} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			srv, err := NewProxyServer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			links := NewLinks(srv.APIAddr(), LinksOptions{NoClientLinks: true})
			peers, _, err := links.MapLinks(ctx, []targets.NodeAddrs{{ID: "n1"}, {ID: "n2", Peer: pushServer(t)}})
			if err != nil {
				t.Fatal(err)
			}
			cn, err := dial(peers["n1"]["n2"])
			if err != nil {
				t.Fatal(err)
			}
			defer cn.c.Close()
			if got, err := cn.recv(flowWait); err != nil || got != "push" {
				t.Fatalf("before the cut: %q, %v", got, err)
			}
			if _, err := links.CutOneWay(ctx, "n1", "n2", mode); err != nil {
				t.Fatal(err)
			}
			// Pushes already past the toxic may still arrive; then silence.
			for deadline := time.Now().Add(flowWait); ; {
				_, err := cn.recv(cutWait)
				if isTimeout(err) {
					if mode == Refuse {
						t.Errorf("refuse: connection stayed open (silent); want it closed")
					}
					break
				}
				if err != nil {
					if mode != Refuse {
						t.Errorf("%s: connection closed during the cut: %v; want it open and silent", mode, err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: pushes still arrive %v after the cut", mode, flowWait)
				}
			}
			if _, err := links.Heal(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Closing the server ends every goroutine it started, even with held data
// in a Hold toxic and connections open.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		c := newCluster(t)
		ex := c.openAll(t)
		if _, err := c.links.Partition(context.Background(), nil, Hold); err != nil {
			t.Fatal(err)
		}
		for _, k := range c.links.PeerLinks() {
			io.WriteString(ex[k].c, "held\n")
		}
		if err := c.srv.Close(); err != nil {
			t.Fatal(err)
		}
		for _, cn := range ex {
			cn.c.Close()
		}
		for _, e := range c.echoes {
			e.close()
		}
	}()
	var now int
	for deadline := time.Now().Add(flowWait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		now = runtime.NumGoroutine()
		if now <= before {
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Errorf("%d goroutines before, %d after Close:\n%s", before, now, buf[:runtime.Stack(buf, true)])
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestVerboseServerLogs(t *testing.T) {
	var buf lockedBuf
	srv, err := StartProxyServer(context.Background(), ServerOptions{Verbose: true, Log: &buf})
	if err != nil {
		t.Fatal(err)
	}
	links := NewLinks(srv.APIAddr(), LinksOptions{})
	if _, _, err := links.MapLinks(context.Background(), []targets.NodeAddrs{{ID: "n1", Client: startEcho(t, "n1").addr()}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "Started proxy") || !strings.Contains(out, `"name":"client_to_n1"`) {
		t.Errorf("verbose log lacks the proxy start:\n%s", out)
	}
}
