//go:build unix

package rediskv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvtest"
)

// newClient returns a Client of node to itself (writes and gets).
func newClient(t *testing.T, n Node, opts Options) *Client {
	t.Helper()
	c, err := New(n, n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// adapterClient returns a client built by the registered adapter's New.
func adapterClient(t *testing.T, cfg targets.ClientConfig) targets.Client {
	t.Helper()
	a, err := targets.LookupAdapter(AdapterName)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	c, err := a.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do performs f on key with value ("" for none) through c.
var do = kvtest.Do

// want is what redis's outcomes look like: every outcome names the node
// the op was sent to, none a term.
var want = kvtest.Expect{Name: "redis", NodeAlways: true}

// raw returns a plain go-redis client of s, to look at or disturb the
// server behind the adapter's back.
func raw(t *testing.T, s *server, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.addr, Password: password, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestOps: the register operations every key-value adapter performs
// (kvtest.RegisterOps) against one real server, each outcome naming the
// node; then what they left in Redis, the script's EVAL fallback, and the
// server's definite refusals.
func TestOps(t *testing.T) {
	s := startServer(t, "n1", 0, nil)
	c := adapterClient(t, targets.ClientConfig{Nodes: map[string]string{"n1": s.addr}, Home: "n1"})
	want.RegisterOps(t, c, "n1")

	// Null is absence, never the text null.
	rc := raw(t, s, "")
	ctx := context.Background()
	if n, err := rc.Exists(ctx, "k", "fresh").Result(); err != nil || n != 0 {
		t.Fatalf("keys deleted by put null and cas to null: %d exist (%v)", n, err)
	}
	if v, err := rc.Get(ctx, "f").Result(); err != nil || v != `"x"` {
		t.Fatalf("the Redis string of f is %q (%v), want the canonical JSON \"x\"", v, err)
	}

	// A server that lost its scripts: EVALSHA is answered NOSCRIPT, the
	// client sends EVAL.
	if err := rc.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	want.OK(t, "cas after SCRIPT FLUSH", do(c, "cas", "f", `{"from": "x", "to": "y"}`), "n1")
	want.Value(t, "get after the EVAL", do(c, "get", "f", ""), "n1", `"y"`)

	// Keys written by someone else: a value that is not JSON reads as
	// fail; a key of another type makes the script's GET fail (WRONGTYPE,
	// certainly not executed: fail).
	rc.Set(ctx, "notjson", "{x", 0)
	rc.HSet(ctx, "hash", "a", "1")
	if out := do(c, "get", "notjson", ""); out.Type != history.Fail || !strings.Contains(out.Error, "not JSON") || out.Node != "n1" {
		t.Errorf("get of a value that is not JSON: %+v, want fail", out)
	}
	if out := do(c, "cas", "hash", `{"from": 1, "to": 2}`); out.Type != history.Fail || !strings.HasPrefix(out.Error, "redis: WRONGTYPE") || out.Node != "n1" {
		t.Errorf("cas of a hash: %+v, want fail WRONGTYPE", out)
	}
	if out := do(c, "get", "hash", ""); out.Type != history.Fail || !strings.HasPrefix(out.Error, "redis: WRONGTYPE") {
		t.Errorf("get of a hash: %+v, want fail WRONGTYPE", out)
	}

	want.ClosedFails(t, c)
}

// TestReplica: a primary and its replica. With read=replica, gets go to
// the replica (which may answer stale: only the routing is asserted) and
// writes to the primary; a write sent to the replica (a primary_role that
// names it) is refused with READONLY: fail. Status tells them apart.
func TestReplica(t *testing.T) {
	p := startServer(t, "n1", 0, nil)
	r := startReplica(t, "n2", p)
	nodes := map[string]string{"n1": p.addr, "n2": r.addr}
	roles := map[string]string{"n1": "primary", "n2": "replica"}

	for _, home := range []string{"n1", "n2"} {
		c := adapterClient(t, targets.ClientConfig{Nodes: nodes, Roles: roles, Home: home, Options: map[string]string{"read": "replica"}})
		key := "k-" + home
		want.OK(t, "put from home "+home, do(c, "put", key, `1`), "n1")
		out := do(c, "get", key, "") // may be stale: null or 1
		if out.Type != history.OK || out.Node != "n2" {
			t.Fatalf("replica get from home %s: %+v, want ok from n2", home, out)
		}
		t.Logf("a get from the replica right after the put read %s", out.Value)
		want.OK(t, "cas from home "+home, do(c, "cas", key, `{"from": 1, "to": 2}`), "n1")
		deadline := time.Now().Add(5 * time.Second)
		for string(out.Value) != "2" {
			if time.Now().After(deadline) {
				t.Fatalf("the replica never caught up: %+v", out)
			}
			time.Sleep(10 * time.Millisecond)
			out = do(c, "get", key, "")
			if out.Node != "n2" {
				t.Fatalf("replica get: node %q", out.Node)
			}
		}
	}
	// read=primary (the default): gets go to the primary.
	c := adapterClient(t, targets.ClientConfig{Nodes: nodes, Roles: roles, Home: "n2"})
	want.Value(t, "primary get", do(c, "get", "k-n1", ""), "n1", `2`)

	// Writes sent to the replica.
	bad := adapterClient(t, targets.ClientConfig{Nodes: nodes, Roles: roles, Home: "n1", Options: map[string]string{"primary_role": "replica"}})
	for _, op := range []struct{ f, v string }{{"put", `3`}, {"cas", `{"from": 2, "to": 3}`}, {"put", `null`}} {
		out := do(bad, op.f, "k-n1", op.v)
		if out.Type != history.Fail || !strings.HasPrefix(out.Error, "redis: READONLY") || out.Node != "n2" {
			t.Errorf("%s %s sent to the replica: %+v, want fail READONLY from n2", op.f, op.v, out)
		}
	}
	want.Value(t, "the refused writes changed nothing", do(c, "get", "k-n1", ""), "n1", `2`)

	ps, err := p.status()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := r.status()
	if err != nil {
		t.Fatal(err)
	}
	if ps.ID != "n1" || ps.Role != "primary" || !ps.IsLeader() || ps.CommitIndex == 0 || ps.Term != 0 || ps.Leader != "" || ps.Counters["connected_slaves"] != int64(1) {
		t.Errorf("primary status: %+v", ps)
	}
	if rs.ID != "n2" || rs.Role != "replica" || rs.IsLeader() || rs.CommitIndex == 0 || rs.Counters["master_link_status"] != "up" || rs.Counters["slave_repl_offset"] == nil {
		t.Errorf("replica status: %+v", rs)
	}
	var rawFields map[string]string
	if err := json.Unmarshal(rs.Raw, &rawFields); err != nil || rawFields["role"] != "slave" {
		t.Errorf("replica status raw: %s (%v)", rs.Raw, err)
	}

	// LocalRead: each server's own data set on its own address, the
	// replica's as far as it has replicated (caught up above).
	for id, addr := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n := targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: id, Client: addr}}
		v, err := LocalRead(ctx, n, "k-n1", nil)
		absent, err2 := LocalRead(ctx, n, "absent", nil)
		cancel()
		if err != nil || string(v) != "2" || err2 != nil || string(absent) != "null" {
			t.Errorf("local read on %s: %s (%v), absent %s (%v); want 2 and null", id, v, err, absent, err2)
		}
	}
}

// TestTimedOutWriteIsInfo: a put sent to a server that is paused
// (SIGSTOP) gets no answer before its timeout: info, never fail
// (kvtest.TimedOutWrite). The put was written on the warm-up connection;
// the cas after it goes on a new one (go-redis dropped the timed-out
// connection), which the paused server's kernel accepts but the server
// never answers: never sent, fail.
func TestTimedOutWriteIsInfo(t *testing.T) {
	s := startServer(t, "n1", 0, nil)
	c := newClient(t, Node{"n1", s.addr}, Options{Timeout: 300 * time.Millisecond})
	cas := want.TimedOutWrite(t, s, c, "n1", 300*time.Millisecond)
	if cas.Type != history.Fail || cas.Node != "n1" || !strings.Contains(cas.Error, "not sent: connected, but the server never answered the handshake") {
		t.Errorf("cas to a paused server on a new connection: %+v, want fail, not sent (no handshake)", cas)
	}
}

// TestCutAfterSendIsInfo: the "not sent" rule (connTracker) both ways
// through a real Toxiproxy proxy to a real server (kvtest.CutAfterSend):
// a put cut after it was sent is info, naming the node; puts through a
// refusing proxy, or to a paused server behind an accepting one (HELLO
// never answered, so the command was never written), are fail, not sent.
func TestCutAfterSendIsInfo(t *testing.T) {
	s := startServer(t, "n1", 0, nil)
	want.CutAfterSend(t, s, "n1", s.addr, func(addr string, timeout time.Duration) targets.Client {
		return newClient(t, Node{"n1", addr}, Options{Timeout: timeout})
	})
}

// TestNeverConnectedIsFail: where nothing listens, no command can be
// sent: put, cas and get are fail, and the error says why, op after op
// (go-redis's pool stops dialing after enough failures; the client starts
// it afresh: kvtest.NeverConnected). Once a server listens there, the
// very next op is ok.
func TestNeverConnectedIsFail(t *testing.T) {
	port := testenv.FreePorts(t, 1)[0]
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := newClient(t, Node{"n1", addr}, Options{Timeout: 300 * time.Millisecond})
	want.NeverConnected(t, c, "n1", addr, 2*dialBudget, Ping)

	startServer(t, "n1", port, nil)
	want.OK(t, "the first put once the server listens", do(c, "put", "k", `1`), "n1")
}

// TestPassword: a server that requires a password (requirepass) and has
// an ACL user. The password given as password_env works, for ops, Ping
// and Status; a wrong or missing one is fail, and no password, right or
// wrong, appears in any error text; password and password_env together
// are refused.
func TestPassword(t *testing.T) {
	const secret, userSecret = "Sekr3t-requirepass-4711", "Sekr3t-acl-user-0815"
	wrong := "Wr0ng-" + secret
	t.Setenv("FAULTLINE_TEST_REDIS_PW", secret)
	t.Setenv("FAULTLINE_TEST_REDIS_USER_PW", userSecret)
	t.Setenv("FAULTLINE_TEST_REDIS_WRONG_PW", wrong)
	good := map[string]string{"password_env": "FAULTLINE_TEST_REDIS_PW"}
	s := startServer(t, "n1", 0, good, "--requirepass", secret, "--user", "faultline", "on", ">"+userSecret, "~*", "+@all")
	nodes := map[string]string{"n1": s.addr}
	noSecret := func(what, text string) {
		t.Helper()
		for _, p := range []string{secret, userSecret, wrong} {
			if strings.Contains(text, p) {
				t.Errorf("%s: the error text %q holds a password", what, text)
			}
		}
	}

	c := adapterClient(t, targets.ClientConfig{Nodes: nodes, Home: "n1", Options: good})
	want.OK(t, "put with password_env", do(c, "put", "k", `1`), "n1")
	want.Value(t, "get with password_env", do(c, "get", "k", ""), "n1", `1`)
	user := adapterClient(t, targets.ClientConfig{Nodes: nodes, Home: "n1", Options: map[string]string{
		"username": "faultline", "password_env": "FAULTLINE_TEST_REDIS_USER_PW", "db": "3"}})
	want.OK(t, "cas as an ACL user, in db 3", do(user, "cas", "k", `{"from": null, "to": 7}`), "n1")
	want.Value(t, "db 0 is another database", do(c, "get", "k", ""), "n1", `1`)
	if _, err := s.status(); err != nil {
		t.Errorf("Status with the password: %v", err)
	}

	for name, opts := range map[string]map[string]string{
		"wrong password_env":                   {"password_env": "FAULTLINE_TEST_REDIS_WRONG_PW"},
		"wrong password":                       {"password": wrong},
		"the user's password without the user": {"password": userSecret},
		"no password":                          nil,
	} {
		bad := adapterClient(t, targets.ClientConfig{Nodes: nodes, Home: "n1", Options: opts})
		for _, op := range []struct{ f, v string }{{"put", `2`}, {"cas", `{"from": 1, "to": 2}`}, {"get", ""}} {
			out := do(bad, op.f, "k", op.v)
			if out.Type != history.Fail || out.Node != "n1" || !(strings.Contains(out.Error, "WRONGPASS") || strings.Contains(out.Error, "NOAUTH")) {
				t.Errorf("%s, %s: %+v, want fail WRONGPASS or NOAUTH", name, op.f, out)
			}
			noSecret(name+", "+op.f, out.Error)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := Ping(ctx, s.addr, opts)
		cancel()
		if err == nil {
			t.Errorf("%s: Ping succeeded", name)
		} else {
			noSecret(name+", Ping", err.Error())
		}
		_, err = Status(context.Background(), targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n1", Client: s.addr}}, opts)
		if err == nil {
			t.Errorf("%s: Status succeeded", name)
		} else {
			noSecret(name+", Status", err.Error())
		}
		t.Logf("%s: %s", name, do(bad, "put", "k", `2`).Error)
	}
	want.Value(t, "the refused writes changed nothing", do(c, "get", "k", ""), "n1", `1`)

	a, _ := targets.LookupAdapter(AdapterName)
	_, err := a.New(targets.ClientConfig{Nodes: nodes, Home: "n1", Options: map[string]string{"password": secret, "password_env": "FAULTLINE_TEST_REDIS_PW"}})
	if err == nil || !strings.Contains(err.Error(), "password_env") {
		t.Errorf("password and password_env both set: %v, want refused", err)
	} else {
		noSecret("both set", err.Error())
	}
	_, err = a.New(targets.ClientConfig{Nodes: nodes, Home: "n1", Options: map[string]string{"password_env": "FAULTLINE_TEST_REDIS_UNSET"}})
	if err == nil || !strings.Contains(err.Error(), "FAULTLINE_TEST_REDIS_UNSET") {
		t.Errorf("password_env naming an unset variable: %v, want refused naming it", err)
	}
}

// TestAdminIdle: the clients Ping and Status share are closed once idle,
// and one address with two credentials has two.
func TestAdminIdle(t *testing.T) {
	old := admin.SetIdle(200 * time.Millisecond)
	t.Cleanup(func() { admin.SetIdle(old) })
	s := startServer(t, "n1", 0, nil)
	if _, err := s.status(); err != nil {
		t.Fatal(err)
	}
	other := map[string]string{"db": "2"}
	if err := Ping(context.Background(), s.addr, other); err != nil {
		t.Fatal(err)
	}
	cfg, _ := parseOptions(nil)
	cfg2, _ := parseOptions(other)
	k1, k2 := adminKey(s.addr, cfg), adminKey(s.addr, cfg2)
	if k1 == k2 || !admin.Has(k1) || !admin.Has(k2) {
		t.Fatalf("admin clients for %s: %v %v", s.addr, admin.Has(k1), admin.Has(k2))
	}
	deadline := time.Now().Add(5 * time.Second)
	for admin.Has(k1) || admin.Has(k2) {
		if time.Now().After(deadline) {
			t.Fatal("the admin clients are still open after 200ms idle")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
