package targets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDefaultRuntimeOptions(t *testing.T) {
	o := RuntimeOptions{StopTimeout: time.Second}.WithDefaults(DefaultRuntimeOptions())
	if o.ReadyTimeout != 20*time.Second || o.StopTimeout != time.Second || o.CloseGrace != 2*time.Second {
		t.Errorf("defaults applied to a set StopTimeout: %+v", o)
	}
}

func TestLogFor(t *testing.T) {
	var got []string
	mk := func(tag string) func(string, ...any) {
		return func(string, ...any) { got = append(got, tag) }
	}
	RuntimeOptions{Log: mk("opts")}.LogFor(ClusterSpec{Log: mk("spec")})("x")
	RuntimeOptions{Log: mk("opts")}.LogFor(ClusterSpec{})("x")
	RuntimeOptions{}.LogFor(ClusterSpec{})("x") // silent, not nil
	if strings.Join(got, " ") != "spec opts" {
		t.Errorf("logged to %v, want the spec's, then the options'", got)
	}
}

func TestClusterSpecCheck(t *testing.T) {
	nodes := func(ids ...string) []NodeSpec {
		var out []NodeSpec
		for _, id := range ids {
			out = append(out, NodeSpec{ID: id, Role: "r"})
		}
		return out
	}
	ok := ClusterSpec{System: "s", Dir: "d", Nodes: nodes("n1", "n2")}
	if err := ok.Check(); err != nil {
		t.Errorf("a good spec: %v", err)
	}
	for name, c := range map[string]struct {
		spec ClusterSpec
		want string
	}{
		"no system": {ClusterSpec{Dir: "d", Nodes: nodes("n1")}, "System is empty"},
		"no dir":    {ClusterSpec{System: "s", Nodes: nodes("n1")}, "Dir is empty"},
		"no nodes":  {ClusterSpec{System: "s", Dir: "d"}, "Nodes is empty"},
		"empty id":  {ClusterSpec{System: "s", Dir: "d", Nodes: nodes("")}, "not usable"},
		"dot dot":   {ClusterSpec{System: "s", Dir: "d", Nodes: nodes("..")}, "not usable"},
		"equals":    {ClusterSpec{System: "s", Dir: "d", Nodes: nodes("a=b")}, "not usable"},
		"slash":     {ClusterSpec{System: "s", Dir: "d", Nodes: nodes("a/b")}, "not usable"},
		"space":     {ClusterSpec{System: "s", Dir: "d", Nodes: nodes("a b")}, "not usable"},
		"client":    {ClusterSpec{System: "s", Dir: "d", Nodes: nodes(ClientLink)}, "reserved"},
		"twice":     {ClusterSpec{System: "s", Dir: "d", Nodes: nodes("n1", "n2", "n1")}, `"n1" is listed twice`},
	} {
		if err := c.spec.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

func TestLinks(t *testing.T) {
	nodes := []NodeAddrs{{ID: "a", Client: "a:1", Peer: "a:3"}, {ID: "b", Client: "b:1", Peer: "b:3"}}
	peers, clients := DirectLinks(nodes)
	if peers["a"]["b"] != "b:3" || peers["b"]["a"] != "a:3" || len(peers["a"]) != 1 || clients["a"] != "a:1" || clients["b"] != "b:1" {
		t.Errorf("DirectLinks = %v %v", peers, clients)
	}
	if err := CheckLinks(nodes, peers, clients); err != nil {
		t.Errorf("CheckLinks of direct links: %v", err)
	}
	delete(peers["b"], "a")
	if err := CheckLinks(nodes, peers, clients); err == nil || !strings.Contains(err.Error(), "b -> a") {
		t.Errorf("CheckLinks without b -> a: %v, want an error naming the link", err)
	}
	_, clients = DirectLinks(nodes)
	peers, _ = DirectLinks(nodes)
	delete(clients, "b")
	if err := CheckLinks(nodes, peers, clients); err == nil || !strings.Contains(err.Error(), "client address for node b") {
		t.Errorf("CheckLinks without b's client link: %v, want an error naming it", err)
	}
	if err := CheckLinks(nodes, nil, nil); err == nil {
		t.Error("CheckLinks of nil maps succeeded")
	}
}

func TestStartEach(t *testing.T) {
	boom := errors.New("boom")
	errs := StartEach(context.Background(), 3, func(ctx context.Context, i int) error {
		if i == 1 {
			return boom
		}
		select { // the others wait until the failure cancels them
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return nil
		}
	})
	if len(errs) != 3 || errs[1] != boom || !errors.Is(errs[0], context.Canceled) || !errors.Is(errs[2], context.Canceled) {
		t.Errorf("StartEach = %v, want boom for 1 and the others cancelled", errs)
	}
	if errs := StartEach(context.Background(), 2, func(context.Context, int) error { return nil }); errs[0] != nil || errs[1] != nil {
		t.Errorf("StartEach of successes = %v", errs)
	}
}

func TestPickStartError(t *testing.T) {
	cut := fmt.Errorf("n1: waiting: %w", context.Canceled)
	own := errors.New("n2: exited with status 1")
	bind := errors.New("n3: address already in use")
	isBind := func(err error) bool { return strings.Contains(err.Error(), "in use") }
	never := func(error) bool { return false }
	for _, c := range []struct {
		name   string
		errs   []error
		prefer []func(error) bool
		want   error
	}{
		{"none", []error{nil, nil}, nil, nil},
		{"empty", nil, []func(error) bool{isBind}, nil},
		{"own before cut short", []error{cut, nil, own}, nil, own},
		{"only cut short", []error{nil, cut}, nil, cut},
		{"preferred first", []error{cut, own, bind}, []func(error) bool{isBind}, bind},
		{"preferences in order", []error{own, bind}, []func(error) bool{never, isBind}, bind},
		{"no preference met", []error{cut, own}, []func(error) bool{isBind}, own},
	} {
		if got := PickStartError(c.errs, c.prefer...); got != c.want {
			t.Errorf("%s: PickStartError = %v, want %v", c.name, got, c.want)
		}
	}
}
