package faults

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/targets"
)

// decodeSpec decodes one flat fault mapping the way the scenario decoder
// does: fault through SetKind, Spec's own keys into Spec, every other key
// strictly into the kind's parameters.
func decodeSpec(t *testing.T, n *yaml.Node) Spec {
	t.Helper()
	var s Spec
	own := &yaml.Node{Kind: yaml.MappingNode}
	rest := &yaml.Node{Kind: yaml.MappingNode}
	kind := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case s.KindKey():
			kind = v.Value
		case "at", "for", "weight":
			own.Content = append(own.Content, k, v)
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	params, err := s.SetKind(kind)
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Decode(&s); err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(rest)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(params); err != nil && len(rest.Content) > 0 {
		t.Fatalf("decode %s params %s: %v", kind, b, err)
	}
	return s
}

func decodeSchedule(t *testing.T, src string) []Spec {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	var out []Spec
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "mix" || m.Content[i].Value == "timeline" {
			for _, item := range m.Content[i+1].Content {
				out = append(out, decodeSpec(t, item))
			}
		}
	}
	return out
}

// A scenario's faults, decoded, saved and decoded again, are the same
// faults with the same parameters.
func TestSpecYAMLRoundTrip(t *testing.T) {
	src := `
schedule: timeline
timeline:
  - {at: 4s, for: 1s, fault: kill, target: all}
  - {at: 5s, for: 2500ms, fault: partition-leader, mode: hold, clients: true}
  - {at: 6s, for: 1s, fault: latency, latency: 50ms, jitter: 20ms}
  - {at: 7s, for: 1s, fault: clock-skew, offset: -2s, target: role:replica}
  - {at: 8s, for: 1s, fault: bandwidth, rate: 8, peers: false, clients: true, weight: 2}
`
	specs := decodeSchedule(t, src)
	if len(specs) != 5 {
		t.Fatalf("decoded %d specs", len(specs))
	}
	if k := specs[0].Kind.(*Kill); k.Target != TargetAll {
		t.Errorf("kill: %+v", k)
	}
	if l := specs[2].Kind.(*Latency); l.Latency != 50*time.Millisecond || l.Jitter != 20*time.Millisecond || l.Target != TargetAll || !l.Peers {
		t.Errorf("latency: %+v", l)
	}
	if c := specs[3].Kind.(*ClockSkew); c.Offset != -2*time.Second || c.Target != "role:replica" {
		t.Errorf("clock-skew: %+v", c)
	}
	s := Schedule{Kind: "timeline", Timeline: specs}
	out, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "- fault: kill\n      target: all\n      at: 4s\n      for: 1s\n") {
		t.Errorf("saved spec is not flat with durations as strings, fault first:\n%s", out)
	}
	again := decodeSchedule(t, string(out))
	if len(again) != len(specs) {
		t.Fatalf("%d specs after the round trip", len(again))
	}
	for i := range specs {
		a, b := specs[i], again[i]
		if a.Fault != b.Fault || a.At != b.At || a.For != b.For || a.Weight != b.Weight || !reflect.DeepEqual(a.Kind, b.Kind) {
			t.Errorf("round trip of %s:\n%+v %+v\n%+v %+v", a.Fault, a, a.Kind, b, b.Kind)
		}
	}
}

func TestSpecJSONAndParams(t *testing.T) {
	sp := NewSpec("latency", func(l *Latency) { l.Latency = 50 * time.Millisecond; l.Target = "n1" })
	sp.For = 2 * time.Second
	sp.Nodes = []string{"n1"}
	b, err := json.Marshal(Planned{Seq: 1, At: time.Second, For: 2 * time.Second, Spec: sp})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec map[string]any `json:"spec"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"fault": "latency", "target": "n1", "latency": "50ms", "jitter": "0s", "peers": true, "clients": false, "for": "2s", "nodes": []any{"n1"}}
	if !reflect.DeepEqual(got.Spec, want) {
		t.Errorf("JSON spec %v\nwant %v", got.Spec, want)
	}
	p := sp.Params()
	if len(p) != 5 || p["latency"] != "50ms" || p["target"] != "n1" || p["peers"] != true {
		t.Errorf("params %v", p)
	}
	if (Spec{Fault: "nosuch"}).Params() != nil {
		t.Error("params of an unknown kind")
	}
}

func TestNewSpecPanicsOnWrongType(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewSpec accepted a *Kill for pause")
		}
	}()
	NewSpec("pause", func(*Kill) {})
}

// role:NAME resolves to every node of the role, in cluster order; the
// other targets pick among all nodes.
func TestPlanRoleTargets(t *testing.T) {
	nodes := []targets.NodeSpec{{ID: "frontend1", Role: "frontend"}, {ID: "backend1", Role: "backend"}, {ID: "backend2", Role: "backend"}, {ID: "backend3", Role: "backend"}}
	s := &Schedule{Every: time.Second, Mix: []Spec{
		NewSpec("kill", func(k *Kill) { k.Target = "role:backend" }),
		NewSpec("pause", func(p *Pause) { p.Target = "role:frontend" }),
		NewSpec("kill", func(k *Kill) { k.Target = "majority" }),
	}}
	if err := s.Validate(fullEnv(nodes)); err != nil {
		t.Fatal(err)
	}
	p := s.Plan(nodes, 7, 10*time.Second)
	if len(p) != 10 {
		t.Fatalf("%d planned", len(p))
	}
	for _, f := range p {
		switch f.Spec.Kind.(type) {
		case *Kill:
			if f.Spec.Kind.(*Kill).Target == "majority" {
				if len(f.Spec.Nodes) != 3 {
					t.Errorf("majority of 4: %v", f.Spec.Nodes)
				}
				continue
			}
			if !reflect.DeepEqual(f.Spec.Nodes, []string{"backend1", "backend2", "backend3"}) {
				t.Errorf("role:backend resolved to %v", f.Spec.Nodes)
			}
		case *Pause:
			if !reflect.DeepEqual(f.Spec.Nodes, []string{"frontend1"}) {
				t.Errorf("role:frontend resolved to %v", f.Spec.Nodes)
			}
		}
	}
	// Planned specs own their fault values.
	p[0].Spec.Kind.(*Kill).Target = "n1"
	if s.Mix[0].Kind.(*Kill).Target != "role:backend" || p[3].Spec.Kind.(*Kill).Target != "role:backend" {
		t.Error("a planned spec shares its fault with the schedule or another plan entry")
	}
}

// Plan is the same for the same inputs, and resolves from the ids and
// roles only (not their order in memory).
func TestPlanDeterministicWithRoles(t *testing.T) {
	nodes := []targets.NodeSpec{{ID: "a1", Role: "a"}, {ID: "b1", Role: "b"}, {ID: "b2", Role: "b"}, {ID: "b3", Role: "b"}, {ID: "a2", Role: "a"}}
	s := &Schedule{Kind: "random", Every: 2 * time.Second, Mix: []Spec{
		{Fault: "partition-halves"}, {Fault: "partition-bridge"}, {Fault: "partition-majorities-ring"},
		NewSpec("kill", func(k *Kill) { k.Target = "role:a" }), {Fault: "pause"}, {Fault: "latency"},
	}}
	a, b := s.Plan(nodes, 99, time.Minute), s.Plan(nodes, 99, time.Minute)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same inputs, different plans")
	}
	for _, p := range a {
		switch p.Spec.Fault {
		case "partition-bridge":
			if len(p.Spec.Nodes) != 1 || len(p.Spec.Groups) != 2 || len(p.Spec.Groups[0])+len(p.Spec.Groups[1]) != 4 {
				t.Errorf("bridge: %v %v", p.Spec.Nodes, p.Spec.Groups)
			}
		case "partition-majorities-ring":
			if len(p.Spec.Nodes) != 5 {
				t.Errorf("ring: %v", p.Spec.Nodes)
			}
		case "latency":
			if len(p.Spec.Nodes) != 5 {
				t.Errorf("latency all: %v", p.Spec.Nodes)
			}
		}
	}
}
