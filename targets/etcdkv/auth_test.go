//go:build unix

package etcdkv

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// TestAuth: a member with auth enabled (user root). A client whose
// password comes from password_env works, for operations, Ping and
// Status; a wrong password, or none, fails every operation (certainly not
// applied) and no password appears in any error text. A token that stops
// holding (auth disabled and enabled again, which drops etcd's simple
// tokens) fails one operation (invalid auth token: refused, fail), and the
// next authenticates again.
func TestAuth(t *testing.T) {
	const secret = "Sekr3t-etcd-root-4711"
	wrong := "Wr0ng-" + secret
	t.Setenv("FAULTLINE_TEST_ETCD_PW", secret)
	m := startCluster(t, 1)[0]
	ctx := context.Background()

	// admin runs f with a plain clientv3 client of the member, as root
	// once auth is on.
	admin := func(asRoot bool, f func(c *clientv3.Client) error) {
		t.Helper()
		cfg := clientv3.Config{Endpoints: []string{m.client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
		if asRoot {
			cfg.Username, cfg.Password = "root", secret
		}
		c, err := clientv3.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := f(c); err != nil {
			t.Fatal(err)
		}
	}
	// Enable auth, as etcdctl user add root && etcdctl auth enable do.
	admin(false, func(c *clientv3.Client) error {
		if _, err := c.UserAdd(ctx, "root", secret); err != nil {
			return err
		}
		if _, err := c.RoleAdd(ctx, "root"); err != nil {
			return err
		}
		if _, err := c.UserGrantRole(ctx, "root", "root"); err != nil {
			return err
		}
		_, err := c.AuthEnable(ctx)
		return err
	})

	noSecret := func(what, text string) {
		t.Helper()
		if strings.Contains(text, secret) || strings.Contains(text, wrong) {
			t.Errorf("%s: the error text %q holds a password", what, text)
		}
	}
	nodes := map[string]string{"n1": m.client}
	a, err := targets.LookupAdapter(AdapterName)
	if err != nil {
		t.Fatal(err)
	}
	newAdapterClient := func(opts map[string]string) targets.Client {
		c, err := a.New(targets.ClientConfig{Nodes: nodes, Home: "n1", Timeout: 2 * time.Second, Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	good := map[string]string{"username": "root", "password_env": "FAULTLINE_TEST_ETCD_PW"}
	c := newAdapterClient(good)
	want.OK(t, "put with password_env", do(c, "put", "k", `1`), "n1")
	want.Value(t, "get with password_env", do(c, "get", "k", ""), "n1", `1`)
	want.OK(t, "cas with password_env", do(c, "cas", "k", `{"from": 1, "to": 2}`), "n1")
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := Ping(pctx, m.client, good); err != nil {
		t.Errorf("Ping with the password: %v", err)
	}
	st, err := Status(pctx, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n1", Client: m.client}}, good)
	if err != nil || st.ID != "n1" || st.Role != "leader" {
		t.Errorf("Status with the password: %+v %v", st, err)
	}

	for name, opts := range map[string]map[string]string{
		"wrong password": {"username": "root", "password": wrong},
		"wrong user":     {"username": "nobody", "password_env": "FAULTLINE_TEST_ETCD_PW"},
		"no credentials": nil,
	} {
		bad := newAdapterClient(opts)
		for _, op := range []struct{ f, v string }{{"put", `3`}, {"cas", `{"from": 2, "to": 3}`}, {"get", ""}} {
			out := do(bad, op.f, "k", op.v)
			if out.Type != history.Fail || !strings.HasPrefix(out.Error, "etcd: ") {
				t.Errorf("%s, %s: %+v, want fail", name, op.f, out)
			}
			noSecret(name+", "+op.f, out.Error)
			if op.f == "put" {
				t.Logf("%s: %s", name, out.Error)
			}
		}
		err := Ping(pctx, m.client, opts)
		if err == nil {
			t.Errorf("%s: Ping succeeded", name)
		} else {
			noSecret(name+", Ping", err.Error())
		}
	}
	want.Value(t, "the refused writes changed nothing", do(c, "get", "k", ""), "n1", `2`)

	// Auth off and on again: the client's simple token no longer holds.
	admin(true, func(c *clientv3.Client) error {
		if _, err := c.AuthDisable(ctx); err != nil {
			return err
		}
		_, err := c.AuthEnable(ctx)
		return err
	})
	out := do(c, "put", "k", `4`)
	if out.Type != history.Fail || out.Error != "etcd: invalid auth token" || out.Node != "" {
		t.Fatalf("put with a dropped token: %+v, want fail \"etcd: invalid auth token\"", out)
	}
	want.OK(t, "put after authenticating again", do(c, "put", "k", `5`), "n1")
	want.Value(t, "get after authenticating again", do(c, "get", "k", ""), "n1", `5`)
}
