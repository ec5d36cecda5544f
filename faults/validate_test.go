package faults

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
)

// specErrOn validates s in env and checks the error is on field, with
// every word of want in its message.
func specErrOn(t *testing.T, s *Schedule, env Env, field string, want ...string) {
	t.Helper()
	err := s.Validate(env)
	var se *SpecError
	if !errors.As(err, &se) || se.Field != field {
		t.Fatalf("err %v, want one on field %s", err, field)
	}
	for _, w := range want {
		if !strings.Contains(se.Msg, w) {
			t.Errorf("message %q does not say %q", se.Msg, w)
		}
	}
}

func mix(specs ...Spec) *Schedule { return &Schedule{Mix: specs} }

func TestValidateClockSkewWithoutSetClock(t *testing.T) {
	env := fullEnv(nodes3)
	env.System.Name = "lwwkv"
	env.System.SetClock = nil
	specErrOn(t, mix(Spec{Fault: "kill"}, Spec{Fault: "clock-skew"}), env, "mix[1].fault",
		"clock-skew", "system lwwkv", "clock control", "remove this fault")
	if err := Available("clock-skew", env); err == nil {
		t.Error("Available says clock-skew runs without SetClock")
	}
	env.System = nil
	specErrOn(t, mix(Spec{Fault: "clock-skew"}), env, "mix[0].fault", "clock control")
}

func TestValidateKillWithoutProcessControl(t *testing.T) {
	env := fullEnv(nodes3)
	env.Runtime = "external"
	env.Caps = targets.Capabilities{Links: targets.ClientLinks, Hooks: true}
	tl := Schedule{Timeline: []Spec{withAtFor(Spec{Fault: "kill"}, time.Second, time.Second)}}
	specErrOn(t, &tl, env, "timeline[0].fault", "kill", "runtime external", "cluster.hooks.kill", "cluster.hooks.start")
	specErrOn(t, mix(Spec{Fault: "pause"}), env, "mix[0].fault", "pause", "cluster.hooks.pause", "cluster.hooks.resume")
	if err := Available("kill", env); err == nil || !strings.Contains(err.Error(), "hooks.kill") {
		t.Errorf("Available(kill): %v", err)
	}
	if err := Available("kill", fullEnv(nodes3)); err != nil {
		t.Errorf("Available(kill) with process control: %v", err)
	}
}

func TestValidateRoleTargets(t *testing.T) {
	nodes := []targets.NodeSpec{{ID: "frontend1", Role: "frontend"}, {ID: "backend1", Role: "backend"}, {ID: "backend2", Role: "backend"}}
	env := fullEnv(nodes)
	specErrOn(t, mix(NewSpec("kill", func(k *Kill) { k.Target = "role:nosuch" })), env, "mix[0].target",
		"kill", "role:nosuch", "role:frontend, role:backend")
	if err := mix(NewSpec("kill", func(k *Kill) { k.Target = "role:backend" })).Validate(env); err != nil {
		t.Fatal(err)
	}
	// A single-node fault takes a role with one node, not one with two.
	if err := mix(NewSpec("partition-one", func(p *PartitionOne) { p.Target = "role:frontend" })).Validate(env); err != nil {
		t.Fatal(err)
	}
	specErrOn(t, mix(NewSpec("partition-one", func(p *PartitionOne) { p.Target = "role:backend" })), env, "mix[0].target", "single node")
	specErrOn(t, mix(NewSpec("pause", func(p *Pause) { p.Target = "n1" })), env, "mix[0].target", `"n1" is not a node`, "backend2")
}

func TestValidatePeerLinkFaultsOnClientLinksOnly(t *testing.T) {
	env := fullEnv(nodes3)
	env.Runtime = "external"
	env.Caps.Links, env.Caps.Hooks = targets.ClientLinks, true
	for _, name := range []string{"partition-halves", "partition-one", "partition-leader", "partition-majorities-ring", "partition-bridge", "partition-one-way", "latency", "bandwidth", "reset"} {
		n := nodes3
		if name == "partition-majorities-ring" {
			n = append(n, targets.NodeSpec{ID: "n4", Role: "replica"}, targets.NodeSpec{ID: "n5", Role: "replica"})
		}
		env.Nodes = n
		specErrOn(t, mix(Spec{Fault: name}), env, "mix[0].fault", name, "runtime external", "only the client links", "cluster.hooks.partition")
		if err := Available(name, env); err == nil {
			t.Errorf("Available(%s) on client links only", name)
		}
	}
	env.Nodes = nodes3
	// Client-link variants run there.
	clientOnly := mix(
		NewSpec("latency", func(l *Latency) { l.Peers, l.Clients = false, true }),
		NewSpec("bandwidth", func(b *Bandwidth) { b.Peers, b.Clients = false, true }),
		NewSpec("reset", func(r *Reset) { r.Peers, r.Clients = false, true }),
	)
	if err := clientOnly.Validate(env); err != nil {
		t.Fatal(err)
	}
	env.Caps.Links = targets.NoLinks
	specErrOn(t, clientOnly, env, "mix[0].fault", "latency", "proxies none")
	// A system whose nodes do not dial peers through given addresses.
	env = fullEnv(nodes3)
	env.System.PeerLinks = false
	specErrOn(t, mix(Spec{Fault: "partition-halves"}), env, "mix[0].fault", "do not dial their peers")
	specErrOn(t, mix(NewSpec("latency", func(l *Latency) { l.Peers = false })), env, "mix[0].peers", "acts on no link")
}

func TestValidateLeaderNeedsStatus(t *testing.T) {
	env := fullEnv(nodes3)
	env.System.Status = nil
	specErrOn(t, mix(NewSpec("kill", func(k *Kill) { k.Target = TargetLeader })), env, "mix[0].target", "kill with target leader", "status reader")
	specErrOn(t, mix(Spec{Fault: "partition-leader"}), env, "mix[0].fault", "partition-leader", "status reader")
	if err := mix(NewSpec("kill", func(k *Kill) { k.Target = TargetMajority })).Validate(env); err != nil {
		t.Fatal(err)
	}
}

func TestValidateParamValues(t *testing.T) {
	env := fullEnv(nodes3)
	specErrOn(t, mix(NewSpec("latency", func(l *Latency) { l.Latency = 0 })), env, "mix[0].latency", "at least 1ms")
	specErrOn(t, mix(NewSpec("bandwidth", func(b *Bandwidth) { b.Rate = 0 })), env, "mix[0].rate", "positive")
	specErrOn(t, mix(NewSpec("clock-skew", func(c *ClockSkew) { c.Offset = 0 })), env, "mix[0].offset", "shifts nothing")
	specErrOn(t, mix(NewSpec("kill", func(k *Kill) { k.Target = "" })), env, "mix[0].target", "empty")
	specErrOn(t, mix(Spec{}), env, "mix[0].fault", "missing")
	env.Nodes = nodes3[:1]
	specErrOn(t, mix(Spec{Fault: "partition-one"}), env, "mix[0].fault", "at least 2 nodes", "has 1")
	specErrOn(t, mix(Spec{Fault: "partition-bridge"}), env, "mix[0].fault", "at least 3 nodes")
}

func withAtFor(s Spec, at, d time.Duration) Spec {
	s.At, s.For = at, d
	return s
}

func TestEnvFor(t *testing.T) {
	caps := targets.Capabilities{Process: true, Links: targets.ClientLinks}
	sys := &targets.System{Name: "chain", Roles: []targets.Role{{Name: "frontend", Nodes: 1}, {Name: "backend", Nodes: 2}}}
	env := EnvFor(sys, "docker", caps)
	want := []targets.NodeSpec{{ID: "frontend1", Role: "frontend"}, {ID: "backend1", Role: "backend"}, {ID: "backend2", Role: "backend"}}
	if env.System != sys || env.Runtime != "docker" || env.Caps != caps || !reflect.DeepEqual(env.Nodes, want) {
		t.Errorf("EnvFor = %+v, want the default nodes %v", env, want)
	}
	one := EnvFor(&targets.System{Name: "kv", Roles: []targets.Role{{Name: "replica", Nodes: 3}}}, "local", caps)
	if len(one.Nodes) != 3 || !reflect.DeepEqual(one.Nodes[2], targets.NodeSpec{ID: "n3", Role: "replica"}) {
		t.Errorf("a single-role system's default nodes: %v", one.Nodes)
	}
	if none := EnvFor(nil, "local", caps); none.System != nil || none.Nodes != nil || none.Runtime != "local" {
		t.Errorf("EnvFor without a system = %+v", none)
	}
}

// With partition and heal hooks, an external cluster takes the partitions
// that split the nodes into groups, and still refuses the ones that need a
// toxic on each link or one direction.
func TestValidatePartitionsThroughHooks(t *testing.T) {
	env := fullEnv(nodes3)
	env.Runtime = "external"
	env.Caps = targets.Capabilities{Links: targets.ClientLinks, Partition: true, Hooks: true}
	if err := mix(Spec{Fault: "partition-halves"}, Spec{Fault: "partition-one"}, Spec{Fault: "partition-leader"}).Validate(env); err != nil {
		t.Fatal(err)
	}
	specErrOn(t, mix(Spec{Fault: "partition-one-way"}), env, "mix[0].fault", "partition-one-way", "the partition hook splits the nodes into groups")
	specErrOn(t, mix(NewSpec("partition-halves", func(p *PartitionHalves) { p.Clients = true })), env, "mix[0].clients", "client-cut")
}
