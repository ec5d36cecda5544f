package faults

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
)

var nodes3 = []targets.NodeSpec{{ID: "n1", Role: "replica"}, {ID: "n2", Role: "replica"}, {ID: "n3", Role: "replica"}}

// fullEnv is a 3-node cluster of a system and runtime that can do
// everything.
func fullEnv(nodes []targets.NodeSpec) Env {
	return Env{
		System: &targets.System{Name: "full", PeerLinks: true,
			Status:   func(context.Context, targets.NodeInfo) (targets.Status, error) { return targets.Status{}, nil },
			SetClock: func(context.Context, targets.NodeInfo, targets.Clock) error { return nil },
		},
		Runtime: "test",
		Caps:    targets.Capabilities{Process: true, Pause: true, Links: targets.PeerLinks},
		Nodes:   nodes,
	}
}

func TestPlanSameSeedSamePlan(t *testing.T) {
	s := &Schedule{Kind: "random", Every: 5 * time.Second, Mix: []Spec{
		{Fault: "partition-halves"}, NewSpec("kill", func(k *Kill) { k.Target = "one" }), withWeight(NewSpec("pause", func(p *Pause) { p.Target = "majority" }), 3),
	}}
	a := s.Plan(nodes3, 42, time.Minute)
	b := s.Plan(nodes3, 42, time.Minute)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different plans:\n%v\n%v", a, b)
	}
	c := s.Plan(nodes3, 43, time.Minute)
	if reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same plan")
	}
	if len(a) < 6 {
		t.Fatalf("a 1 min plan every ~5 s has %d faults", len(a))
	}
	for _, p := range a {
		if p.At+p.For > time.Minute {
			t.Errorf("fault %d ends at %s, after the main phase", p.Seq, p.At+p.For)
		}
		switch p.Spec.Fault {
		case "partition-halves":
			if len(p.Spec.Groups) != 2 || len(p.Spec.Groups[0])+len(p.Spec.Groups[1]) != 3 {
				t.Errorf("halves not resolved: %+v", p.Spec)
			}
		case "kill":
			if len(p.Spec.Nodes) != 1 {
				t.Errorf("kill one resolved to %v", p.Spec.Nodes)
			}
		case "pause":
			if len(p.Spec.Nodes) != 2 {
				t.Errorf("pause majority resolved to %v", p.Spec.Nodes)
			}
		}
	}
}

func TestPlanIntervalAndTimeline(t *testing.T) {
	s := &Schedule{Every: 10 * time.Second, For: 4 * time.Second, Mix: []Spec{NewSpec("kill", func(k *Kill) { k.Target = TargetLeader }), {Fault: "partition-leader"}}}
	p := s.Plan(nodes3, 1, 30*time.Second)
	if len(p) != 3 || p[0].At != 5*time.Second || p[1].At != 15*time.Second || p[0].Spec.Fault != "kill" || p[1].Spec.Fault != "partition-leader" || p[2].Spec.Fault != "kill" {
		t.Fatalf("interval plan: %+v", p)
	}
	if p[0].Spec.Nodes != nil {
		t.Errorf("leader must be resolved at injection, got %v", p[0].Spec.Nodes)
	}
	if _, ok := p[0].Spec.Params()["mode"]; ok {
		t.Errorf("kill takes no mode, got %v", p[0].Spec.Params())
	}
	if m := p[1].Spec.Kind.(*PartitionLeader).Mode; m != Drop {
		t.Errorf("default mode: %q", m)
	}
	tl := &Schedule{Timeline: []Spec{{Fault: "pause", At: 20 * time.Second, For: 50 * time.Second}, {Fault: "latency", At: 2 * time.Second, For: time.Second}}}
	p = tl.Plan(nodes3, 1, 30*time.Second)
	if len(p) != 2 || p[0].Spec.Fault != "latency" || p[1].For != 10*time.Second {
		t.Fatalf("timeline plan (sorted, clipped): %+v", p)
	}
}

func TestScheduleValidate(t *testing.T) {
	cases := []struct {
		s     Schedule
		field string
	}{
		{Schedule{Mix: []Spec{{Fault: "partition-everything"}}}, "mix[0].fault"},
		{Schedule{Mix: []Spec{NewSpec("partition-halves", func(p *PartitionHalves) { p.Mode = "sideways" })}}, "mix[0].mode"},
		{Schedule{Mix: []Spec{NewSpec("kill", func(k *Kill) { k.Target = "n9" })}}, "mix[0].target"},
		{Schedule{Kind: "weekly", Mix: []Spec{{Fault: "kill"}}}, "schedule"},
		{Schedule{Kind: "timeline", Timeline: []Spec{{Fault: "kill"}}}, "timeline[0].for"},
		{Schedule{Mix: []Spec{{Fault: "partition-majorities-ring"}}}, "mix[0].fault"},
		{Schedule{Mix: []Spec{{Fault: "pause", At: time.Second}}}, "mix[0].at"},
	}
	for _, c := range cases {
		err := c.s.Validate(fullEnv(nodes3))
		var se *SpecError
		if !errors.As(err, &se) || se.Field != c.field {
			t.Errorf("%+v: err %v, want one on field %s", c.s, err, c.field)
		}
	}
	ok := Schedule{Mix: []Spec{
		NewSpec("latency", func(l *Latency) { l.Latency, l.Jitter = time.Millisecond, time.Millisecond }),
		NewSpec("clock-skew", func(c *ClockSkew) { c.Offset = -time.Second }),
	}}
	if err := ok.Validate(fullEnv(nodes3)); err != nil {
		t.Fatal(err)
	}
	if err := (&Schedule{Mix: []Spec{{Fault: "kill"}}}).Validate(fullEnv(nodes3)); err != nil {
		t.Fatal(err)
	}
}

func withWeight(s Spec, w float64) Spec {
	s.Weight = w
	return s
}

func TestRingLinks(t *testing.T) {
	ring := []string{"a", "b", "c", "d", "e"}
	cut := RingLinks(ring)
	seen := map[string]map[string]bool{}
	for _, id := range ring {
		seen[id] = map[string]bool{id: true}
		for _, o := range ring {
			seen[id][o] = true
		}
	}
	for _, l := range cut {
		delete(seen[l.From], l.To)
	}
	sets := map[string]bool{}
	for _, id := range ring {
		if len(seen[id]) < 3 {
			t.Errorf("%s sees %d nodes, less than a majority", id, len(seen[id]))
		}
		var keys []string
		for k := range seen[id] {
			keys = append(keys, k)
		}
		k := strings.Join(sortedCopy(keys), ",")
		if sets[k] {
			t.Errorf("two nodes see the same majority %s", k)
		}
		sets[k] = true
	}
	// Cuts are symmetric.
	has := map[Link]bool{}
	for _, l := range cut {
		has[l] = true
	}
	for _, l := range cut {
		if !has[Link{l.To, l.From}] {
			t.Errorf("%s cut but not %s->%s", l, l.To, l.From)
		}
	}
}
