package faults

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// TestProxyAPIRequiresToken: the embedded Toxiproxy API refuses every
// request without the server's token (401, in the form Toxiproxy's client
// decodes), whoever sends it; a Links made in this process uses the token
// by itself, and one given the wrong token is refused.
func TestProxyAPIRequiresToken(t *testing.T) {
	c := newCluster(t) // proxies mapped through a token-protected server
	srv := c.srv
	if srv.Token() == "" {
		t.Fatal("NewProxyServer made no token")
	}
	base := "http://" + srv.APIAddr()
	do := func(method, path, body string, auth func(*http.Request)) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	attacks := []struct{ method, path, body string }{
		{"GET", "/version", ""},
		{"GET", "/proxies", ""},
		{"POST", "/proxies/client_to_n1/toxics", `{"name":"evil","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":900}}`},
		{"POST", "/proxies/n1_to_n2", `{"enabled":false}`},
		{"POST", "/reset", ""},
		{"DELETE", "/proxies/n1_to_n2", ""},
	}
	wrong := func(r *http.Request) { targets.Token("not-the-token").SetOn(r) }
	for _, a := range attacks {
		for name, auth := range map[string]func(*http.Request){"no token": nil, "a wrong token": wrong} {
			if code, body := do(a.method, a.path, a.body, auth); code != http.StatusUnauthorized || !strings.Contains(body, `"status":401`) {
				t.Errorf("%s %s with %s: %d %s, want 401", a.method, a.path, name, code, body)
			}
		}
	}
	// Nothing the refused requests asked for happened.
	if st := linkState(t, c.links); st[Link{ClientID, "n1"}] != "" || st[Link{"n1", "n2"}] != "" {
		t.Errorf("after refused requests the links are %v, want untouched", st)
	}
	// The token works as a bearer token and as basic auth (Toxiproxy's
	// client, through its URL).
	if code, body := do("GET", "/proxies", "", srv.Token().SetOn); code != 200 {
		t.Errorf("GET /proxies with the token as bearer: %d %s", code, body)
	}
	if _, err := newToxiClient(srv.APIAddr(), srv.Token()).Proxies(); err != nil {
		t.Errorf("Toxiproxy's client with the token: %v", err)
	}
	var ae *toxiclient.ApiError
	if _, err := toxiclient.NewClient(srv.APIAddr()).Proxies(); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("Toxiproxy's client without the token: %v, want an ApiError 401", err)
	}
	bad := NewLinks(srv.APIAddr(), LinksOptions{Prefix: "bad-", Token: "not-the-token"})
	_, _, err := bad.MapLinks(context.Background(), []targets.NodeAddrs{{ID: "n1", Client: "127.0.0.1:1"}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("MapLinks with a wrong token: %v, want HTTP 401", err)
	}
	if strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("an error shows the token: %v", err)
	}
}

// TestProxyServerWithoutTokenIsOpen: `faultline proxy` started by hand
// without a token serves Toxiproxy's API to anyone, as before.
func TestProxyServerWithoutTokenIsOpen(t *testing.T) {
	srv, err := StartProxyServer(context.Background(), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Token() != "" {
		t.Errorf("Token() = %v, want none", srv.Token())
	}
	if _, err := toxiclient.NewClient(srv.APIAddr()).Proxies(); err != nil {
		t.Errorf("open API: %v", err)
	}
}

// tamperer is someone at the Toxiproxy API behind the nemesis's back (the
// token keeps other users out; this is whoever got past it).
func tamperer(c *cluster) *toxiclient.Client { return newToxiClient(c.srv.APIAddr(), c.srv.Token()) }

func tamperEvents(t *testing.T, evs []history.Event) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range evs {
		if ev.F == "tamper" {
			if ev.Phase != "" || ev.Type != history.Info {
				t.Errorf("tamper event %+v: want an info event without a phase", ev)
			}
			out = append(out, value(t, ev))
		}
	}
	return out
}

// TestAuditFindsTampering: the nemesis's own faults are never tampering;
// a toxic added, a toxic of a fault changed, a proxy disabled, a refused
// proxy enabled again and a proxy deleted behind its back are, each found
// once, recorded in the history and listed by Tampered with when it was
// found. Heal still removes everything.
func TestAuditFindsTampering(t *testing.T) {
	c := newCluster(t)
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: newMemCluster("n1", "n2", "n3"), Links: c.links}, ev.rec)
	ctx := context.Background()

	lat, err := nem.Start(ctx, Planned{Spec: NewSpec("latency", func(l *Latency) { l.Target, l.Latency = "n2", 5*time.Millisecond })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nem.Start(ctx, Planned{Spec: NewSpec("partition-one", func(p *PartitionOne) { p.Target, p.Mode = "n3", "refuse" })}); err != nil {
		t.Fatal(err)
	}
	if found, err := nem.Audit(ctx); err != nil || len(found) != 0 {
		t.Fatalf("audit of the nemesis's own faults: %v %v, want nothing", found, err)
	}

	x := tamperer(c)
	p, err := x.Proxy("client_to_n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddToxic("evil", "latency", "downstream", 1, toxiclient.Attributes{"latency": 900}); err != nil {
		t.Fatal(err)
	}
	var ours ToxicRef
	for _, f := range c.links.Active() {
		if f.Kind == "latency" {
			ours = f.Toxics[0]
		}
	}
	op, _ := x.Proxy(ours.Proxy)
	if _, err := op.UpdateToxic(ours.Name, 1, toxiclient.Attributes{"latency": 1}); err != nil {
		t.Fatal(err)
	}
	d, _ := x.Proxy("n1_to_n2")
	if err := d.Disable(); err != nil {
		t.Fatal(err)
	}
	r, _ := x.Proxy("n1_to_n3") // refused by the partition
	if err := r.Enable(); err != nil {
		t.Fatal(err)
	}
	found, err := nem.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		TamperToxicAdded:    "client->n1",
		TamperToxicChanged:  ours.Link.String(),
		TamperProxyDisabled: "n1->n2",
		TamperProxyEnabled:  "n1->n3",
	}
	got := map[string]string{}
	for _, f := range found {
		got[f.What] = f.Link.String()
		if f.At <= 0 {
			t.Errorf("%v: no time found", f)
		}
	}
	for what, link := range want {
		if got[what] != link {
			t.Errorf("audit found %v; want %q on %s", found, what, link)
		}
	}
	if len(found) != len(want) {
		t.Errorf("audit found %d tamperings, want %d: %v", len(found), len(want), found)
	}
	if again, _ := nem.Audit(ctx); len(again) != 0 {
		t.Errorf("a second audit reported again: %v", again)
	}
	if n := len(nem.Tampered()); n != len(want) {
		t.Errorf("Tampered() has %d, want %d", n, len(want))
	}
	for _, tp := range nem.Tampered() {
		if tp.What == TamperToxicAdded && (tp.Toxic == nil || tp.Toxic.Name != "evil" || tp.Toxic.Type != "latency" || !strings.Contains(tp.String(), "900")) {
			t.Errorf("the added toxic is reported as %v", tp)
		}
	}

	// Ending the fault whose toxic was changed is not tampering; a proxy
	// deleted is.
	if err := nem.End(ctx, lat); err != nil {
		t.Fatal(err)
	}
	if err := x.NewProxy().Delete(); err == nil {
		t.Fatal("deleting a proxy without a name succeeded")
	}
	del, _ := x.Proxy("n2_to_n1")
	if err := del.Delete(); err != nil {
		t.Fatal(err)
	}
	found, _ = nem.Audit(ctx)
	if len(found) != 1 || found[0].What != TamperProxyDeleted || found[0].Link != (Link{"n2", "n1"}) {
		t.Errorf("after a proxy was deleted, audit found %v", found)
	}

	// Heal removes every toxic and enables every proxy, whoever changed them.
	nem.Heal(ctx)
	for _, st := range mustInspectAll(t, c) {
		if len(st.Toxics) > 0 || !st.Enabled {
			t.Errorf("after Heal %s has toxics %v, enabled %v", st.Link, st.Toxics, st.Enabled)
		}
	}
	evs := tamperEvents(t, ev.list(t))
	if len(evs) != len(want)+1 {
		t.Errorf("%d tamper events in the history, want %d: %v", len(evs), len(want)+1, evs)
	}
	for _, e := range evs {
		if e["fault"] != "tamper" || e["what"] == nil || e["link"] == nil || e["proxy"] == nil {
			t.Errorf("tamper event value %v lacks what, where", e)
		}
	}
}

// mustInspectAll is Inspect that skips the proxies that are gone.
func mustInspectAll(t *testing.T, c *cluster) []LinkState {
	t.Helper()
	all, err := tamperer(c).Proxies()
	if err != nil {
		t.Fatal(err)
	}
	var out []LinkState
	for _, k := range c.links.All() {
		if p, ok := all[c.links.proxyName(k)]; ok {
			out = append(out, LinkState{Link: k, Enabled: p.Enabled, Toxics: p.ActiveToxics})
		}
	}
	return out
}

// TestWatchFindsTamperingWhileRunning: the attack. With no fault
// planned, someone adds a 900 ms latency toxic to a client link during the
// main phase; Watch finds it within one audit interval, and it is in the
// history and in Tampered. A toxic added after the last audit is found by
// Heal, which removes it.
func TestWatchFindsTamperingWhileRunning(t *testing.T) {
	c := newCluster(t)
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: newMemCluster("n1", "n2", "n3"), Links: c.links}, ev.rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); nem.Watch(ctx, 50*time.Millisecond) }()
	time.Sleep(120 * time.Millisecond)
	if n := len(nem.Tampered()); n != 0 {
		t.Fatalf("tampering found in an untouched run: %v", nem.Tampered())
	}
	p, err := tamperer(c).Proxy("client_to_n2")
	if err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	if _, err := p.AddToxic("", "latency", "downstream", 1, toxiclient.Attributes{"latency": 900}); err != nil {
		t.Fatal(err)
	}
	for len(nem.Tampered()) == 0 && time.Since(added) < 2*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if len(nem.Tampered()) != 1 {
		t.Fatalf("Watch did not find the toxic within 2 s: %v", nem.Tampered())
	}
	t.Logf("found %s after it was added", time.Since(added).Round(time.Millisecond))
	cancel()
	<-done

	// Behind the back of a nemesis that no longer watches: Heal finds it.
	p3, _ := tamperer(c).Proxy("n3_to_n1")
	if _, err := p3.AddToxic("late", "timeout", "upstream", 1, toxiclient.Attributes{"timeout": 0}); err != nil {
		t.Fatal(err)
	}
	if err := nem.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	tp := nem.Tampered()
	if len(tp) != 2 || tp[1].Link != (Link{"n3", "n1"}) || tp[1].What != TamperToxicAdded {
		t.Errorf("after Heal, Tampered() = %v; want the late toxic on n3->n1 too", tp)
	}
	if st := linkState(t, c.links); st[Link{"n3", "n1"}] != "" || st[Link{ClientID, "n2"}] != "" {
		t.Errorf("Heal left %v", st)
	}
	if n := len(tamperEvents(t, ev.list(t))); n != 2 {
		t.Errorf("%d tamper events, want 2", n)
	}
}

// TestAuditRacingFaultChangeIsNoTampering: a fault started or ended while
// an audit read the proxies is not taken for tampering: that audit is
// discarded (ErrAuditRaced, counted as raced, not failed) and the next one
// finds everything as the faults made it. Then the same under load: faults
// start and end without pause while Watch audits every millisecond.
func TestAuditRacingFaultChangeIsNoTampering(t *testing.T) {
	c := newCluster(t)
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: newMemCluster("n1", "n2", "n3"), Links: c.links}, ev.rec)
	ctx := context.Background()
	t.Cleanup(func() { auditTestHook = nil })

	specs := map[string]Spec{
		"latency": NewSpec("latency", func(l *Latency) { l.Target, l.Latency = "n2", 5*time.Millisecond }),
		"refuse":  NewSpec("partition-one", func(p *PartitionOne) { p.Target, p.Mode = "n3", "refuse" }),
	}
	for name, spec := range specs {
		var a *Active
		auditTestHook = func() { // the fault starts after the audit took what the faults made, before it reads the proxies
			auditTestHook = nil
			var err error
			if a, err = nem.Start(ctx, Planned{Spec: spec}); err != nil {
				t.Error(err)
			}
		}
		if found, err := nem.Audit(ctx); !errors.Is(err, ErrAuditRaced) || len(found) != 0 {
			t.Fatalf("%s: an audit that raced the start: %v %v, want ErrAuditRaced and nothing", name, found, err)
		}
		if found, err := nem.Audit(ctx); err != nil || len(found) != 0 {
			t.Fatalf("%s: the audit after the start: %v %v, want nothing", name, found, err)
		}
		auditTestHook = func() { // and ends there
			auditTestHook = nil
			if err := nem.End(ctx, a); err != nil {
				t.Error(err)
			}
		}
		if found, err := nem.Audit(ctx); !errors.Is(err, ErrAuditRaced) || len(found) != 0 {
			t.Fatalf("%s: an audit that raced the end: %v %v, want ErrAuditRaced and nothing", name, found, err)
		}
		if found, err := nem.Audit(ctx); err != nil || len(found) != 0 {
			t.Fatalf("%s: the audit after the end: %v %v, want nothing", name, found, err)
		}
	}
	if st := nem.AuditStatus(); st.Raced != 4 || st.Done != 4 || st.Failed != 0 {
		t.Errorf("AuditStatus() = %+v, want 4 raced, 4 done, none failed", st)
	}

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); nem.Watch(wctx, time.Millisecond) }()
	deadline := time.Now().Add(time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		spec := specs["latency"]
		if i%2 == 1 {
			spec = specs["refuse"]
		}
		a, err := nem.Start(ctx, Planned{Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		if err := nem.End(ctx, a); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
	}
	cancel()
	<-done
	if tp := nem.Tampered(); len(tp) != 0 {
		t.Errorf("faults starting and ending under audit were taken for tampering: %v", tp)
	}
	st := nem.AuditStatus()
	if st.Failed != 0 || st.Done <= 4 {
		t.Errorf("AuditStatus() = %+v, want audits done and none failed", st)
	}
	t.Logf("under load: %+v", st)
	if n := len(tamperEvents(t, ev.list(t))); n != 0 {
		t.Errorf("%d tamper events, want none", n)
	}
}

// TestAuditDoesNotWaitForFaultChange: a fault change stuck on the
// Toxiproxy API (holding the Links' lock) neither blocks an audit nor
// the stop of Watch: the audit is discarded as raced.
func TestAuditDoesNotWaitForFaultChange(t *testing.T) {
	c := newCluster(t)
	nem := NewNemesis(Target{Cluster: newMemCluster("n1", "n2", "n3"), Links: c.links}, newEvents(t).rec)
	c.links.mu.Lock()
	end := c.links.changeLocked()
	defer func() { end(); c.links.mu.Unlock() }()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); nem.Watch(ctx, 10*time.Millisecond) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Watch did not stop while a fault change held the Links")
	}
	if st := nem.AuditStatus(); st.Raced == 0 || st.Done != 0 || st.Failed != 0 {
		t.Errorf("AuditStatus() = %+v, want only raced audits", st)
	}
}

// TestAuditHonoursContext: a Toxiproxy API that never answers holds an
// audit only until its context is done, and the stop of Watch is not
// counted as a failed audit; an API that cannot be reached is, with its
// error.
func TestAuditHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept() // and never answer
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	view := &auditView{order: []Link{{"n1", "n2"}}, proxies: map[Link]linkProxy{{"n1", "n2"}: {name: "n1_to_n2"}}}
	hung := NewLinks(ln.Addr().String(), LinksOptions{})
	hung.audit.view = view

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := hung.Audit(ctx); err == nil {
		t.Fatal("an audit of an API that never answers succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the audit took %v after its context ended at 200ms", d)
	}

	nem := NewNemesis(Target{Cluster: newMemCluster("n1", "n2"), Links: hung}, newEvents(t).rec)
	wctx, wcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); nem.Watch(wctx, 10*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	wcancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Watch did not stop while its audit waited for the API")
	}
	if st := nem.AuditStatus(); st.Failed != 0 || st.Done != 0 {
		t.Errorf("AuditStatus() = %+v: an audit stopped with Watch is not a failure", st)
	}

	gone := NewLinks(closedAddr(t), LinksOptions{})
	gone.audit.view = view
	nem = NewNemesis(Target{Cluster: newMemCluster("n1", "n2"), Links: gone}, newEvents(t).rec)
	if _, err := nem.Audit(context.Background()); err == nil {
		t.Fatal("an audit of an API that is not there succeeded")
	}
	if st := nem.AuditStatus(); st.Failed != 1 || nem.AuditErrors() != 1 || !strings.Contains(st.LastError, "list proxies") {
		t.Errorf("AuditStatus() = %+v, want one failure and its error", st)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
