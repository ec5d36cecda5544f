//go:build unix

package etcdkv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func newClient(t *testing.T, addr string, opts Options) *Client {
	t.Helper()
	c, err := New(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do performs f on key with value ("" for none) through c.
var do = kvtest.Do

// want is what etcd's outcomes look like: an answer names the member
// that answered and its Raft term.
var want = kvtest.Expect{Name: "etcd", Terms: true}

// TestOps: the register operations every key-value adapter performs
// (kvtest.RegisterOps) against one real member, each answer naming the
// member and its term; values written by something else that are not
// JSON read as fail; a closed client fails.
func TestOps(t *testing.T) {
	m := startCluster(t, 1)[0]
	c := newClient(t, m.client, Options{Timeout: 2 * time.Second})
	want.RegisterOps(t, c, "n1")

	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{m.client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, v := range []string{`{x`, `1e999`, ``} {
		if _, err := raw.Put(context.Background(), "notjson", v); err != nil {
			t.Fatal(err)
		}
		if out := do(c, "get", "notjson", ""); out.Type != history.Fail || !strings.Contains(out.Error, "not JSON") || out.Node != "n1" {
			t.Errorf("get of %q: %+v, want fail, not JSON", v, out)
		}
	}
	want.ClosedFails(t, c)
}

// TestTimedOutWriteIsInfo: a put sent to a member that is paused
// (SIGSTOP) gets no answer before its timeout: info, never fail, naming
// no member (kvtest.TimedOutWrite). So is a cas after it: gRPC sends it
// on the connection the member had answered on.
func TestTimedOutWriteIsInfo(t *testing.T) {
	m := startCluster(t, 1)[0]
	c := newClient(t, m.client, Options{Timeout: 500 * time.Millisecond})
	if cas := want.TimedOutWrite(t, m, c, "n1", 500*time.Millisecond); cas.Type != history.Info || cas.Error != "etcd: timeout" {
		t.Errorf("cas to a paused member: %+v, want info \"etcd: timeout\"", cas)
	}
}

// TestCutAfterSendIsInfo: the "not sent" rule (connTracker) both ways
// through a real Toxiproxy proxy to a real member (kvtest.CutAfterSend):
// a put cut after it was sent is info, with no node (nothing answered);
// puts through a refusing proxy, or to a paused member behind an
// accepting one, are fail, not sent.
func TestCutAfterSendIsInfo(t *testing.T) {
	m := startCluster(t, 1)[0]
	want.CutAfterSend(t, m, "n1", m.client, func(addr string, timeout time.Duration) targets.Client {
		return newClient(t, addr, Options{Timeout: timeout})
	})
}

// TestNeverConnectedIsFail: where nothing listens, no request can be
// sent: put, cas and get are fail, and the error says why
// (kvtest.NeverConnected).
func TestNeverConnectedIsFail(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePorts(t, 1)[0])
	want.NeverConnected(t, newClient(t, addr, Options{Timeout: 300 * time.Millisecond}), "n1", addr, 1, Ping)
}

// TestOptions: the adapter takes read=linearizable (the default) or
// read=serializable, and refuses anything else by name.
func TestOptions(t *testing.T) {
	a := want.Registered(t)
	if a.Options[0].Name != "read" || a.Options[0].Default != "linearizable" {
		t.Errorf("option read: %+v", a.Options[0])
	}
	cfg := func(opts map[string]string) targets.ClientConfig {
		return targets.ClientConfig{Nodes: map[string]string{"n1": "127.0.0.1:1"}, Home: "n1", Timeout: time.Second, Options: opts}
	}
	const secret = "do-not-show-me"
	for opts, want := range map[string]ReadMode{"": Linearizable, "linearizable": Linearizable, "serializable": Serializable} {
		var o map[string]string
		if opts != "" {
			o = map[string]string{"read": opts}
		}
		cl, err := a.New(cfg(o))
		if err != nil {
			t.Fatalf("read=%q: %v", opts, err)
		}
		if got := cl.(*Client).opts.Read; got != want {
			t.Errorf("read=%q: mode %s, want %s", opts, got, want)
		}
		cl.Close()
	}
	kvtest.RefusesOptions(t, a, cfg(nil), secret, []kvtest.OptionCase{
		{Opts: map[string]string{"consistency": "strong"}, Want: []string{"consistency"}},
		{Opts: map[string]string{"read": "stale"}, Want: []string{"read", "stale"}},
		{Opts: map[string]string{"read": "serializable", "timeout": "1s"}, Want: []string{"timeout"}},
		{Opts: map[string]string{"username": "root"}, Want: []string{"username", "password"}},
		{Opts: map[string]string{"password": secret}, Want: []string{"username", "password"}},
		{Opts: map[string]string{"username": "root", "password": secret, "password_env": "V"}, Want: []string{"password", "password_env"}},
		{Opts: map[string]string{"username": "root", "password_env": "FAULTLINE_TEST_NOT_SET"}, Want: []string{"FAULTLINE_TEST_NOT_SET"}},
		{Opts: map[string]string{"username": "root", "password": secret, "tls_key": "k.pem"}, Want: []string{"tls_cert", "tls_key"}},
	})
	cl, err := a.New(cfg(map[string]string{"username": "root", "password": secret, "tls_insecure_skip_verify": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c := cl.(*Client); c.opts.Username != "root" || c.opts.Password != secret || c.opts.TLS == nil || !c.opts.TLS.InsecureSkipVerify || c.auth == nil {
		t.Errorf("credentials and TLS options: %+v", c.opts)
	}
	cl.Close()
	if _, err := a.New(targets.ClientConfig{Nodes: map[string]string{"n1": "127.0.0.1:1"}, Home: "n2"}); err == nil || !strings.Contains(err.Error(), `home node "n2" is not among the nodes [n1]`) {
		t.Errorf("home not among the nodes: %v", err)
	}
	if _, err := a.New(targets.ClientConfig{Nodes: map[string]string{"n1": ""}, Home: "n1"}); err == nil || err.Error() != "etcd: node n1 has no address" {
		t.Errorf("home without an address: %v", err)
	}
}

// TestCluster: on three members, Status names exactly one leader, the
// others follow it; then, with the leader and the other follower paused,
// the remaining follower still answers serializable reads from its own
// state, fails linearizable ones, and refuses writes once it knows no
// leader ("no leader": certainly not applied, fail). The admin connections
// Status used are closed once idle.
func TestCluster(t *testing.T) {
	old := admin.SetIdle(300 * time.Millisecond)
	t.Cleanup(func() { admin.SetIdle(old) })

	ms := startCluster(t, 3)
	ctx := context.Background()
	noOptions, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	adminKey := func(m *member) string { return noOptions.Key(m.client) }
	status := func(m *member) (targets.Status, error) {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return Status(sctx, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: m.name, Client: m.client}}, nil)
	}

	// Every member agrees on one leader (wait out the first election).
	var sts []targets.Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		sts = sts[:0]
		leaders := map[string]bool{}
		var err error
		for _, m := range ms {
			var st targets.Status
			if st, err = status(m); err != nil {
				break
			}
			sts = append(sts, st)
			leaders[st.Leader] = true
		}
		if err == nil && len(leaders) == 1 && !leaders[""] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agreed leader: %+v (%v)", sts, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var leader string
	nLeaders := 0
	for i, st := range sts {
		if st.ID != ms[i].name {
			t.Errorf("status of %s: ID %q", ms[i].name, st.ID)
		}
		if st.Role == "leader" {
			nLeaders++
			leader = st.ID
		} else if st.Role != "follower" {
			t.Errorf("status of %s: role %q", st.ID, st.Role)
		}
		if st.Term == 0 || st.CommitIndex == 0 || st.AppliedIdx == 0 || !json.Valid(st.Raw) || len(st.Raw) < 10 {
			t.Errorf("status of %s: %+v", st.ID, st)
		}
	}
	if nLeaders != 1 {
		t.Fatalf("%d leaders: %+v", nLeaders, sts)
	}
	for _, m := range ms {
		if !admin.Has(adminKey(m)) {
			t.Fatalf("no admin connection to %s is cached right after its Status", m.name)
		}
	}
	for _, st := range sts {
		if st.Leader != leader {
			t.Errorf("%s names leader %q, want %q", st.ID, st.Leader, leader)
		}
	}
	t.Logf("leader %s, term %d", leader, sts[0].Term)

	// A follower, cut off from the rest by pausing them.
	var home *member
	var others []*member
	for _, m := range ms {
		if m.name != leader && home == nil {
			home = m
		} else {
			others = append(others, m)
		}
	}
	lin := newClient(t, home.client, Options{Timeout: time.Second})
	ser := newClient(t, home.client, Options{Timeout: time.Second, Read: Serializable})
	want.OK(t, "put through a follower", do(lin, "put", "k", `"before"`), home.name)
	want.Value(t, "serializable get", do(ser, "get", "k", ""), home.name, `"before"`)
	for _, m := range others {
		m.Pause(t)
	}
	if out := do(lin, "get", "k", ""); out.Type != history.Fail {
		t.Errorf("linearizable get without a quorum: %+v, want fail", out)
	}
	// Once the follower's election timeout passes it knows no leader.
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, err := status(home)
		if err == nil && st.Leader == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still names a leader with the others paused: %+v %v", home.name, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want.Value(t, "serializable get without a leader", do(ser, "get", "k", ""), home.name, `"before"`)
	out := do(lin, "put", "k", `"after"`)
	if out.Type != history.Fail || out.Error != "etcd: no leader" {
		t.Errorf("put to a member without a leader: %+v, want fail \"etcd: no leader\"", out)
	}
	out = do(lin, "cas", "k", `{"from": "before", "to": "after"}`)
	if out.Type != history.Fail || out.Error != "etcd: no leader" {
		t.Errorf("cas to a member without a leader: %+v, want fail \"etcd: no leader\"", out)
	}
	for _, m := range others {
		m.Resume(t)
	}

	// The admin connections close once idle.
	deadline = time.Now().Add(5 * time.Second)
	for _, m := range ms {
		for admin.Has(adminKey(m)) {
			if time.Now().After(deadline) {
				t.Fatalf("the admin connection to %s is still open after 300ms idle", m.client)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestLocalRead: every member answers a serializable read of its own
// state on its own address, so after a put all three hold the value (a
// follower within moments); an absent key is null; a value that is not
// JSON is an error naming it.
func TestLocalRead(t *testing.T) {
	ms := startCluster(t, 3)
	c := newClient(t, ms[0].client, Options{Timeout: 2 * time.Second})
	want.OK(t, "put", do(c, "put", "lr", `{"b": 1.0, "a": 2}`), "n1")
	read := func(m *member, key string) (json.RawMessage, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return LocalRead(ctx, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: m.name, Client: m.client}}, key, nil)
	}
	for _, m := range ms {
		deadline := time.Now().Add(5 * time.Second)
		for {
			v, err := read(m, "lr")
			if err == nil && string(v) == `{"a":2,"b":1}` {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %s: local read %s (%v), want the put's value", m.name, v, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if v, err := read(m, "absent"); err != nil || string(v) != "null" {
			t.Errorf("member %s: absent key %s (%v), want null", m.name, v, err)
		}
	}
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[0].client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Put(context.Background(), "notjson", "{x"); err != nil {
		t.Fatal(err)
	}
	if _, err := read(ms[0], "notjson"); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("a value that is not JSON: %v", err)
	}
	if _, err := LocalRead(context.Background(), targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n9"}}, "k", nil); err == nil || !strings.Contains(err.Error(), "n9 has no client address") {
		t.Errorf("no address: %v", err)
	}
}
