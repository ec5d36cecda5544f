package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// memCluster is an in-memory cluster whose nodes are states: it has every
// optional capability, so tests can wrap it to take some away.
type memCluster struct {
	mu      sync.Mutex
	nodes   []targets.NodeInfo
	state   map[string]string // running, killed, paused
	leader  string
	failOn  string // Pause of this node fails
	actions []string
}

func newMemCluster(ids ...string) *memCluster {
	c := &memCluster{state: map[string]string{}}
	for _, id := range ids {
		c.nodes = append(c.nodes, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: id}, Role: "replica"})
		c.state[id] = "running"
	}
	c.leader = ids[len(ids)-1]
	return c
}

func (c *memCluster) Nodes() []targets.NodeInfo { return c.nodes }
func (c *memCluster) Close() error              { return nil }

func (c *memCluster) set(ctx context.Context, id, from, to string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.actions = append(c.actions, to+" "+id)
	if _, ok := c.state[id]; !ok {
		return fmt.Errorf("no node %s", id)
	}
	if from == "" || c.state[id] == from {
		c.state[id] = to
	}
	return nil
}

func (c *memCluster) Kill(ctx context.Context, id string) error { return c.set(ctx, id, "", "killed") }
func (c *memCluster) Stop(ctx context.Context, id string) error { return c.set(ctx, id, "", "killed") }
func (c *memCluster) Start(ctx context.Context, id string) error {
	return c.set(ctx, id, "killed", "running")
}
func (c *memCluster) Pause(ctx context.Context, id string) error {
	if id == c.failOn {
		return errors.New("cannot pause")
	}
	return c.set(ctx, id, "running", "paused")
}
func (c *memCluster) Resume(ctx context.Context, id string) error {
	return c.set(ctx, id, "paused", "running")
}

func (c *memCluster) Status(ctx context.Context, id string) (targets.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state[id] != "running" {
		return targets.Status{}, errors.New("down")
	}
	st := targets.Status{ID: id, Role: "follower", Term: 3, Leader: c.leader}
	if id == c.leader {
		st.Role = "leader"
	}
	return st, nil
}

func (c *memCluster) states() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for k, v := range c.state {
		out[k] = v
	}
	return out
}

// bare has nodes and Close only.
type bare struct{ c *memCluster }

func (b bare) Nodes() []targets.NodeInfo { return b.c.Nodes() }
func (b bare) Close() error              { return nil }

type events struct {
	sb  *strings.Builder
	rec *history.Recorder
}

func newEvents(t *testing.T) *events {
	sb := &strings.Builder{}
	rec, err := history.NewRecorder(sb, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &events{sb: sb, rec: rec}
}

// list closes the recorder and returns the nemesis events.
func (e *events) list(t *testing.T) []history.Event {
	t.Helper()
	if err := e.rec.Close(); err != nil {
		t.Fatal(err)
	}
	var out []history.Event
	sc := bufio.NewScanner(strings.NewReader(e.sb.String()))
	for sc.Scan() {
		var ev history.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		if ev.Process == history.Nemesis {
			out = append(out, ev)
		}
	}
	return out
}

func value(t *testing.T, ev history.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Value, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNemesisKillLeaderAndHeal(t *testing.T) {
	c := newMemCluster("n1", "n2", "n3")
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: c}, ev.rec)
	ctx := context.Background()
	a, err := nem.Start(ctx, Planned{Seq: 4, Spec: NewSpec("kill", func(k *Kill) { k.Target = TargetLeader })})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Targets, []string{"n3"}) || c.states()["n3"] != "killed" {
		t.Fatalf("killed %v, states %v", a.Targets, c.states())
	}
	if _, err := nem.Start(ctx, Planned{Spec: NewSpec("pause", func(p *Pause) { p.Target = "n1" })}); err != nil {
		t.Fatal(err)
	}
	if got := nem.InForce(); !reflect.DeepEqual(got, []string{"kill", "pause"}) {
		t.Fatalf("in force %v", got)
	}
	if err := nem.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if s := c.states(); s["n1"] != "running" || s["n3"] != "running" {
		t.Fatalf("after heal: %v", s)
	}
	evs := ev.list(t)
	if len(evs) != 5 {
		t.Fatalf("events %+v", evs)
	}
	start := value(t, evs[0])
	if evs[0].F != "kill" || evs[0].Phase != "start" || start["fault"] != "kill" || start["id"] != 1.0 ||
		!reflect.DeepEqual(start["targets"], []any{"n3"}) || start["target"] != "leader" {
		t.Errorf("kill start: %s %s", evs[0].F, evs[0].Value)
	}
	if evs[4].F != "heal" || value(t, evs[4])["ended"] != 2.0 {
		t.Errorf("heal: %+v %s", evs[4], evs[4].Value)
	}
	inj := nem.Injected()
	if len(inj) != 2 || inj[0].Seq != 4 || inj[0].Family != "kill" || inj[0].End == 0 || inj[0].Error != "" {
		t.Errorf("injected %+v", inj)
	}
}

// A fault its target cannot perform fails with a clear error, recorded as
// a start with that error and an end; nothing is left in force.
func TestNemesisMissingCapabilities(t *testing.T) {
	c := newMemCluster("n1", "n2", "n3")
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: bare{c}}, ev.rec)
	ctx := context.Background()
	for _, sp := range []Spec{{Fault: "kill"}, {Fault: "pause"}, {Fault: "clock-skew"}, {Fault: "latency"}, {Fault: "partition-leader"}} {
		if _, err := nem.Start(ctx, Planned{Spec: sp}); err == nil {
			t.Errorf("%s on a bare cluster: no error", sp.Fault)
		}
	}
	if len(nem.InForce()) != 0 {
		t.Errorf("in force: %v", nem.InForce())
	}
	inj := nem.Injected()
	for _, want := range []string{"no process control", "cannot pause", "no clock control", "no proxies", "cannot tell which node leads"} {
		found := false
		for _, i := range inj {
			found = found || strings.Contains(i.Error, want)
		}
		if !found {
			t.Errorf("no injected fault says %q: %+v", want, inj)
		}
	}
	evs := ev.list(t)
	if len(evs) != 10 || evs[0].Error == "" || evs[1].Phase != "end" {
		t.Errorf("events: %+v", evs)
	}
}

// A pause that fails part way resumes the nodes it did pause at once.
func TestNemesisPartialPauseUndone(t *testing.T) {
	c := newMemCluster("n1", "n2", "n3")
	c.failOn = "n3"
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: c}, ev.rec)
	_, err := nem.Start(context.Background(), Planned{Spec: NewSpec("pause", func(p *Pause) { p.Target = TargetAll })})
	if err == nil || !strings.Contains(err.Error(), "pause n3") {
		t.Fatalf("err %v", err)
	}
	for id, s := range c.states() {
		if s != "running" {
			t.Errorf("%s is %s after a failed pause", id, s)
		}
	}
	ev.list(t)
}

func TestNemesisClockSkew(t *testing.T) {
	c := newMemCluster("n1", "n2", "n3")
	var mu sync.Mutex
	var calls []string
	sys := &targets.System{Name: "clocked", SetClock: func(_ context.Context, n targets.NodeInfo, c targets.Clock) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, fmt.Sprintf("%s %s %g", n.ID, c.Offset, c.Drift))
		return nil
	}}
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: bare{c}, System: sys}, ev.rec)
	sp := NewSpec("clock-skew", func(k *ClockSkew) { k.Target, k.Offset = "role:replica", -2*time.Second })
	drift := NewSpec("clock-skew", func(k *ClockSkew) { k.Target, k.Offset, k.Drift = "n2", 0, -0.95 })
	plan := (&Schedule{Kind: "timeline", Timeline: []Spec{withAtFor(sp, 0, 50*time.Millisecond), withAtFor(drift, 200*time.Millisecond, 50*time.Millisecond)}}).Plan(nodesOf(c), 1, time.Second)
	nem.Run(context.Background(), plan, ev.rec.Now(), nil)
	want := []string{"n1 -2s 0", "n2 -2s 0", "n3 -2s 0", "n1 0s 0", "n2 0s 0", "n3 0s 0", "n2 0s -0.95", "n2 0s 0"}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("SetClock calls %v, want %v", calls, want)
	}
	evs := ev.list(t)
	if len(evs) != 4 || evs[0].F != "clock" || value(t, evs[0])["offset"] != "-2s" || value(t, evs[0])["drift"] != 0.0 {
		t.Fatalf("events %+v", evs)
	}
	if v := value(t, evs[2]); v["offset"] != "0s" || v["drift"] != -0.95 {
		t.Errorf("the drifting fault's start event has %v, want offset 0s and drift -0.95", v)
	}
}

func nodesOf(c targets.Cluster) []targets.NodeSpec {
	var out []targets.NodeSpec
	for _, n := range c.Nodes() {
		out = append(out, targets.NodeSpec{ID: n.ID, Role: n.Role})
	}
	return out
}

// linkState returns, per link, "disabled", the toxic types on it, or "".
func linkState(t *testing.T, l *Links) map[Link]string {
	t.Helper()
	states, err := l.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[Link]string{}
	for _, s := range states {
		var types []string
		for _, x := range s.Toxics {
			types = append(types, x.Type)
		}
		out[s.Link] = strings.Join(types, ",")
		if !s.Enabled {
			out[s.Link] = "disabled"
		}
	}
	return out
}

// The link faults act on exactly the links they say, through a real
// Toxiproxy: a partition of one node, latency on client links only, and
// a kill that refuses the links into the killed node until it is back.
func TestNemesisLinkFaults(t *testing.T) {
	lc := newCluster(t)
	mc := newMemCluster("n1", "n2", "n3")
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: mc, Links: lc.links}, ev.rec)
	ctx := context.Background()

	part, err := nem.Start(ctx, Planned{Spec: NewSpec("partition-one", func(p *PartitionOne) { p.Target, p.Clients = "n1", true })})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(part.Groups, [][]string{{"n1"}, {"n2", "n3"}}) {
		t.Fatalf("groups %v", part.Groups)
	}
	for k, s := range linkState(t, lc.links) {
		cut := (k.From == "n1" || k.To == "n1")
		if (s == "timeout,timeout") != cut {
			t.Errorf("partition-one n1: %s has %q", k, s)
		}
	}
	if err := nem.End(ctx, part); err != nil {
		t.Fatal(err)
	}

	lat, err := nem.Start(ctx, Planned{Spec: NewSpec("latency", func(l *Latency) { l.Target, l.Peers, l.Clients = "n2", false, true })})
	if err != nil {
		t.Fatal(err)
	}
	for k, s := range linkState(t, lc.links) {
		if (s == "latency,latency") != (k == Link{ClientID, "n2"}) {
			t.Errorf("latency on client links of n2: %s has %q", k, s)
		}
	}
	if err := nem.End(ctx, lat); err != nil {
		t.Fatal(err)
	}

	kill, err := nem.Start(ctx, Planned{Spec: NewSpec("kill", func(k *Kill) { k.Target = "n3" })})
	if err != nil {
		t.Fatal(err)
	}
	for k, s := range linkState(t, lc.links) {
		if (s == "disabled") != (k.To == "n3") {
			t.Errorf("kill n3: %s is %q", k, s)
		}
	}
	if err := nem.End(ctx, kill); err != nil {
		t.Fatal(err)
	}
	// The node started before its links opened again.
	mc.mu.Lock()
	last := mc.actions[len(mc.actions)-1]
	mc.mu.Unlock()
	if last != "running n3" || mc.states()["n3"] != "running" {
		t.Errorf("after the kill: actions %v", mc.actions)
	}
	if err := nem.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	lc.mustBeClean(t)
	evs := ev.list(t)
	if v := value(t, evs[0]); v["links"] != 5.0 || v["mode"] != "drop" || v["clients"] != true {
		// n1's 4 peer links, plus client -> n1 (clients stay with n2, n3).
		t.Errorf("partition start event: %s", evs[0].Value)
	}
}

// noStart can pause and resume but not start (an external cluster with
// pause and resume hooks only): Start always fails.
type noStart struct{ *memCluster }

func (c noStart) Start(ctx context.Context, id string) error {
	return fmt.Errorf("start %s: no start hook", id)
}

// Heal resumes the nodes a fault paused and starts only those a fault
// killed: a cluster that can pause but not start heals cleanly after a
// pause, and a killed node is still started.
func TestNemesisHealStartsOnlyKilledNodes(t *testing.T) {
	c := newMemCluster("n1", "n2", "n3")
	ev := newEvents(t)
	nem := NewNemesis(Target{Cluster: noStart{c}}, ev.rec)
	ctx := context.Background()
	if _, err := nem.Start(ctx, Planned{Spec: NewSpec("pause", func(p *Pause) { p.Target = "n2" })}); err != nil {
		t.Fatal(err)
	}
	if err := nem.Heal(ctx); err != nil {
		t.Fatalf("heal after a pause, on a cluster that cannot start: %v", err)
	}
	if s := c.states()["n2"]; s != "running" {
		t.Errorf("n2 is %s after the heal", s)
	}
	for _, act := range c.actions {
		if strings.HasPrefix(act, "running ") && act != "running n2" {
			t.Errorf("heal did %q", act)
		}
	}
	ev.list(t)

	// A kill is still undone by a start.
	c2 := newMemCluster("n1", "n2", "n3")
	nem2 := NewNemesis(Target{Cluster: c2}, newEvents(t).rec)
	if _, err := nem2.Start(ctx, Planned{Spec: NewSpec("kill", func(k *Kill) { k.Target = "n1" })}); err != nil {
		t.Fatal(err)
	}
	if err := nem2.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if s := c2.states()["n1"]; s != "running" {
		t.Errorf("n1 is %s after the heal of a kill", s)
	}
}
