package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
	"github.com/faultline/faultline/targets/retrysvc"
)

// retryEnv is a retrysvc cluster (one frontend, two backends) on a
// runtime that can do everything.
func retryEnv(t *testing.T) Env {
	t.Helper()
	sys, err := targets.LookupSystem(retrysvc.Name)
	if err != nil {
		t.Fatal(err)
	}
	env := fullEnv(sys.NodeIDs(map[string]int{retrysvc.RoleFrontend: 1, retrysvc.RoleBackend: 2}))
	env.System = sys
	return env
}

// service-time is refused where nothing has a service time, and its
// target must name nodes that have one: all (every backend), role:backend
// or a backend id pass; a frontend, role:frontend, and the selectors that
// pick among every node are refused naming what to use; the duration is
// bounded.
func TestServiceTimeValidate(t *testing.T) {
	env := retryEnv(t)
	st := func(target Selector, d time.Duration) *Schedule {
		return mix(NewSpec("service-time", func(s *ServiceTime) { s.Target, s.ServiceTime = target, d }))
	}
	for _, ok := range []Selector{TargetAll, "role:backend", "backend2"} {
		if err := st(ok, 60*time.Millisecond).Validate(env); err != nil {
			t.Errorf("target %s: %v", ok, err)
		}
	}
	if err := st(TargetAll, 0).Validate(env); err != nil {
		t.Errorf("service_time 0: %v", err)
	}
	specErrOn(t, st("role:frontend", time.Millisecond), env, "mix[0].target", "role frontend have no service time", "role:backend")
	specErrOn(t, st("frontend1", time.Millisecond), env, "mix[0].target", "frontend1 is a frontend", "role:backend")
	specErrOn(t, st(TargetOne, time.Millisecond), env, "mix[0].target", "picks among every node", "frontend1")
	specErrOn(t, st(TargetMajority, time.Millisecond), env, "mix[0].target", "picks among every node")
	specErrOn(t, st(TargetAll, -time.Millisecond), env, "mix[0].service_time", "out of range", "0 to 1m0s")
	specErrOn(t, st(TargetAll, 2*time.Minute), env, "mix[0].service_time", "out of range")

	// A system without a service time: refused at validation.
	other := fullEnv(nodes3)
	specErrOn(t, mix(Spec{Fault: "service-time"}), other, "mix[0].fault", "service-time", "no service time", "remove this fault")
	if err := Available("service-time", other); err == nil {
		t.Error("Available says service-time runs on a system without a service time")
	}
	if err := Available("service-time", env); err != nil {
		t.Errorf("Available on retrysvc: %v", err)
	}
	// On a system whose every role has a service time, one is fine.
	env.System = &targets.System{Name: "allslow", Roles: []targets.Role{{Name: "replica", ServiceTime: true}},
		SetServiceTime: func(context.Context, targets.NodeInfo, *time.Duration) error { return nil }}
	env.Nodes = nodes3
	if err := st(TargetOne, time.Millisecond).Validate(env); err != nil {
		t.Errorf("one, every role with a service time: %v", err)
	}
	k, _ := Lookup("service-time")
	if k.Family != "service-time" || len(k.Params) != 2 || k.Params[1].Name != "service_time" || k.Params[1].Default != "100ms" || k.Params[0].Default != "all" {
		t.Errorf("catalog entry %+v", k)
	}
}

// nodeList is a cluster of nodes run in this process.
type nodeList []targets.NodeInfo

func (l nodeList) Nodes() []targets.NodeInfo { return l }
func (l nodeList) Close() error              { return nil }

// startRetrysvc runs a retrysvc frontend and two backends (service time
// 10ms) in this process on real loopback ports, with a token, until the
// test ends.
func startRetrysvc(t *testing.T) nodeList {
	t.Helper()
	const tok targets.Token = "svc-test-token"
	ports, err := freeport.Take(9)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	var nodes nodeList
	for i, nd := range []struct{ id, role string }{{"frontend1", "frontend"}, {"backend1", "backend"}, {"backend2", "backend"}} {
		nodes = append(nodes, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: nd.id, Client: addr(3 * i), Admin: addr(3*i + 1), Peer: addr(3*i + 2)}, Role: nd.role, Token: tok})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(nodes))
	t.Cleanup(func() {
		cancel()
		for range nodes {
			<-done
		}
	})
	for _, n := range nodes {
		cfg := targets.NodeConfig{System: retrysvc.Name, ID: n.ID, Role: n.Role, Listen: n.Client, Admin: n.Admin, PeerListen: n.Peer,
			Peers: map[string]string{}, PeerRoles: map[string]string{}, Token: tok, Opts: map[string]string{"service-time": "10ms", "log-level": "warn"}}
		for _, p := range nodes {
			if p.ID != n.ID {
				cfg.Peers[p.ID], cfg.PeerRoles[p.ID] = p.Peer, p.Role
			}
		}
		ready := make(chan struct{})
		cfg.Ready = func() { close(ready) }
		go func() { done <- targets.RunNode(ctx, cfg) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("node %s: %v", n.ID, err)
		}
	}
	return nodes
}

// serviceTimes reads each backend's service time (ms) from its status.
func serviceTimes(t *testing.T, nodes nodeList) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, n := range nodes[1:] {
		st, err := nodekit.ReadStatus(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			MS float64 `json:"service_time_ms"`
		}
		if err := json.Unmarshal(st.Raw, &v); err != nil {
			t.Fatal(err)
		}
		out[n.ID] = v.MS
	}
	return out
}

// The fault on real retrysvc nodes through their admin API: target all
// sets every backend's service time (the frontend left out, and left out
// of the event's targets too); the end restores the option's value; a
// heal restores a fault still in force; the events name family
// service-time and the duration.
func TestNemesisServiceTime(t *testing.T) {
	nodes := startRetrysvc(t)
	sys, _ := targets.LookupSystem(retrysvc.Name)
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: nodes, System: sys}, ev.rec)
	ctx := context.Background()
	spec := NewSpec("service-time", func(s *ServiceTime) { s.Target, s.ServiceTime = TargetAll, 70*time.Millisecond })
	a, err := nem.Start(ctx, Planned{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if got := serviceTimes(t, nodes); !reflect.DeepEqual(got, map[string]float64{"backend1": 70, "backend2": 70}) {
		t.Fatalf("during the fault: %v", got)
	}
	if err := nem.End(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := serviceTimes(t, nodes); !reflect.DeepEqual(got, map[string]float64{"backend1": 10, "backend2": 10}) {
		t.Fatalf("after the fault: %v", got)
	}
	one := NewSpec("service-time", func(s *ServiceTime) { s.Target, s.ServiceTime = "backend2", 2500*time.Microsecond })
	if _, err := nem.Start(ctx, Planned{Spec: one}); err != nil {
		t.Fatal(err)
	}
	if got := serviceTimes(t, nodes); got["backend2"] != 2.5 || got["backend1"] != 10 {
		t.Fatalf("backend2 at 2.5ms: %v", got)
	}
	if err := nem.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if got := serviceTimes(t, nodes); got["backend2"] != 10 {
		t.Fatalf("after the heal: %v", got)
	}
	// A frontend named outright fails at injection too (validation
	// refuses it first in a scenario), and nothing is left set.
	if _, err := nem.Start(ctx, Planned{Spec: NewSpec("service-time", func(s *ServiceTime) { s.Target = "frontend1" })}); err == nil || !strings.Contains(err.Error(), "no service time") {
		t.Errorf("on the frontend: %v", err)
	}
	evs := ev.list(t)
	if len(evs) < 5 || evs[0].F != "service-time" || evs[0].Phase != "start" || evs[1].Phase != "end" {
		t.Fatalf("events %+v", evs)
	}
	v := value(t, evs[0])
	if v["service_time"] != "70ms" || !reflect.DeepEqual(v["targets"], []any{"backend1", "backend2"}) {
		t.Errorf("the start event's value: %v", v)
	}
}
