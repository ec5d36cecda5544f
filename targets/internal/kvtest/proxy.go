package kvtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// Proxy is a Toxiproxy proxy in front of one server: the client link of
// a cluster of one node, made and cut by faultline's own link faults
// (faults.NewProxyServer, faults.Links), as a run makes and cuts it.
type Proxy struct {
	Addr  string // what clients dial
	links *faults.Links
	node  string
	cut   *faults.LinkFault
}

// StartProxy starts an in-process Toxiproxy server with one proxy, on a
// free loopback port, from clients to node at upstream; the test's end
// removes both.
func StartProxy(t testing.TB, node, upstream string) *Proxy {
	t.Helper()
	ctx := context.Background()
	srv, err := faults.NewProxyServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	links := faults.NewLinks(srv.APIAddr(), faults.LinksOptions{})
	t.Cleanup(func() { links.Close() })
	_, clients, err := links.MapLinks(ctx, []targets.NodeAddrs{{ID: node, Client: upstream}})
	if err != nil {
		t.Fatal(err)
	}
	return &Proxy{Addr: clients[node], links: links, node: node}
}

// Refuse cuts the link in mode faults.Refuse: the proxy closes every
// connection through it at once and refuses new ones.
func (p *Proxy) Refuse(t testing.TB) {
	t.Helper()
	f, err := p.links.Cut(context.Background(), []faults.Link{{From: faults.ClientID, To: p.node}}, faults.Refuse)
	if err != nil {
		t.Fatal(err)
	}
	p.cut = &f
}

// Restore ends the cut: the proxy accepts again, on the same address.
func (p *Proxy) Restore(t testing.TB) {
	t.Helper()
	if err := p.links.End(context.Background(), *p.cut); err != nil {
		t.Fatal(err)
	}
	p.cut = nil
}

// Pausable is a server a test can freeze (SIGSTOP) and thaw: a Process.
type Pausable interface {
	Pause(testing.TB)
	Resume(testing.TB)
}

// CutAfterSend checks, through a real proxy (StartProxy) in front of
// server srv (node id node, at upstream), the rule by which an adapter
// tells fail from info for a write whose connection breaks:
//
//   - a put whose request reached the proxy and the paused server, and
//     whose connection is then cut, is info (the server may still apply
//     it), ended by the cut rather than its timeout;
//   - with the proxy refusing connections, a put is fail, not sent,
//     connection refused;
//   - through a proxy that accepts again while the server behind it is
//     still paused, a fresh client's put is fail, not sent: the server
//     never answered the handshake, so nothing was written;
//   - once the server runs again, the client reads.
//
// newClient returns a client of node at addr, each op bounded by timeout.
func (e Expect) CutAfterSend(t *testing.T, srv Pausable, node, upstream string, newClient func(addr string, timeout time.Duration) targets.Client) {
	t.Helper()
	p := StartProxy(t, node, upstream)
	c := newClient(p.Addr, 5*time.Second)
	e.OK(t, "warm-up put through the proxy", Do(c, "put", "k", `1`), node)

	srv.Pause(t)
	done := make(chan history.Outcome, 1)
	start := time.Now()
	go func() { done <- Do(c, "put", "k", `2`) }()
	time.Sleep(300 * time.Millisecond) // the request is in the server's socket
	p.Refuse(t)
	var out history.Outcome
	select {
	case out = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("put did not end after its connection was cut")
	}
	took := time.Since(start)
	if out.Type != history.Info || out.Node != e.unanswered(node) || !strings.HasPrefix(out.Error, e.Name+": ") {
		t.Fatalf("put cut after it was sent: %+v, want info naming node %q", out, e.unanswered(node))
	}
	if took > 3*time.Second {
		t.Errorf("put ended after %v: the cut, not the 5s timeout, should end it", took)
	}
	t.Logf("cut after sending: %s (after %v)", out.Error, took.Round(time.Millisecond))

	// The proxy refuses connections: nothing can be sent.
	c2 := newClient(p.Addr, 300*time.Millisecond)
	if out := Do(c2, "put", "k", `3`); out.Type != history.Fail || !strings.Contains(out.Error, "not sent") || !strings.Contains(out.Error, "refused") {
		t.Fatalf("put through a refusing proxy: %+v, want fail, not sent: connection refused", out)
	}

	// The proxy accepts again, but the server behind it is still paused:
	// the TCP connection is made, the server's handshake never comes.
	p.Restore(t)
	c3 := newClient(p.Addr, 500*time.Millisecond)
	if out := Do(c3, "put", "k", `4`); out.Type != history.Fail || !strings.Contains(out.Error, "not sent") || !strings.Contains(out.Error, "handshake") {
		t.Fatalf("put to a paused server behind an accepting proxy: %+v, want fail, not sent (no handshake)", out)
	}

	srv.Resume(t)
	out = Eventually(t, 10*time.Second, c3, "get", "k", "")
	t.Logf("after SIGCONT the key holds %s (the info put of 2 may or may not have been applied)", out.Value)
}

// Eventually repeats op f on key with value through c until it is ok,
// and returns its outcome; it fails t with the last outcome after within.
func Eventually(t testing.TB, within time.Duration, c targets.Client, f, key, value string) history.Outcome {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := Do(c, f, key, value)
		if out.Type == history.OK {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s for %v: %+v, want ok", f, key, within, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
