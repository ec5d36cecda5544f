package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/workloads"
)

func TestParseDefaults(t *testing.T) {
	s, err := Parse("dir/basic.yaml", []byte("duration: 30s\nworkload:\n  rate: 500\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "basic" || s.Runtime != "local" || s.System != "raftkv" || s.Nodes != 3 {
		t.Errorf("defaults: %+v", s)
	}
	if s.Duration.D() != 30*time.Second || s.Workload.Rate != 500 || s.Workload.Type != "register" || s.Workload.Params.(*workloads.RegisterParams).Keys != 8 {
		t.Errorf("values: %+v", s.Workload)
	}
	if s.Client.Adapter != "http" || strings.Join(s.NodeIDs(), ",") != "n1,n2,n3" {
		t.Errorf("client %q, nodes %v", s.Client.Adapter, s.NodeIDs())
	}
	cs, err := s.checkerList(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name())
	}
	if got := strings.Join(names, ","); got != "linearizability,lost-writes,split-brain,convergence,stats" {
		t.Errorf("default checkers %s", got)
	}
	off, err := Parse("x.yaml", []byte("checkers:\n  lost_writes: {enabled: false}\n  linearizability: {budget: 5s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cs, _ := off.checkerList(nil); len(cs) != 4 || cs[0].Name() != "linearizability" || cs[1].Name() != "split-brain" {
		t.Errorf("with lost_writes disabled: %v", cs)
	}
	if cc, _ := off.Checkers.Lookup("linearizability"); cc.Params.(*checkers.LinearizabilityParams).Budget != 5*time.Second {
		t.Errorf("budget %+v", cc.Params)
	}
}

func TestParseErrorsNameLineAndField(t *testing.T) {
	cases := []struct {
		name, src          string
		line, col          int
		field, msgContains string
	}{
		{"unknown top-level key", "name: x\ndurration: 20s\n", 2, 1, "durration", "unknown field"},
		{"unknown nested key", "workload:\n  keys: 4\n  mixx: {get: 1}\n", 3, 3, "workload.mixx", "unknown field"},
		{"wrong type", "workload:\n  keys: many\n", 2, 9, "workload.keys", "whole number"},
		{"bad duration", "duration: 20 seconds\n", 1, 11, "duration", "not a duration"},
		{"duration without unit", "recovery: 5\n", 1, 11, "recovery", "not a duration"},
		{"float for int", "nodes: 3.5\n", 1, 8, "nodes", "whole number"},
		{"string for number", "workload:\n  rate: fast\n", 2, 9, "workload.rate", "number"},
		{"list for mapping", "workload: [1, 2]\n", 1, 11, "workload", "mapping"},
		{"duplicate key", "nodes: 3\nnodes: 5\n", 2, 1, "nodes", "twice"},
		{"bad runtime value", "runtime: kubernetes\n", 1, 10, "runtime", "local"},
		{"negative weight", "workload:\n  mix:\n    get: -1\n", 3, 10, "workload.mix.get", "0 or more"},
		{"bad stage", "workload:\n  rate: 10\n  stages:\n    - rate: 100\n", 4, 7, "workload.stages[0].duration", "positive duration"},
		{"bool as string", "checkers:\n  linearizability:\n    enabled: yes please\n", 3, 14, "checkers.linearizability.enabled", "true or false"},
		{"nested unknown in stage", "workload:\n  rate: 1\n  stages:\n    - {duration: 1s, rte: 2}\n", 4, 22, "workload.stages[0].rte", "unknown field"},
		{"bad sessions", "workload:\n  sessions: roaming\n", 2, 13, "workload.sessions", "sticky"},
		{"bad expect", "expect: strong\n", 1, 9, "expect", "linearizable, causal"},
		{"expect without its checker", "expect: causal\n", 1, 9, "expect", "enable it"},
		{"gating without expect", "checkers:\n  lost-writes: {gating: true}\n", 2, 25, "checkers.lost-writes.gating", "set expect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantFieldError(t, c.src, c.line, c.col, c.field, c.msgContains)
		})
	}
}

// wantFieldError parses src as bad.yaml and checks that the error is a
// *FieldError at line:col (col 0: any) of field, starting with the file
// name and saying each of says.
func wantFieldError(t *testing.T, src string, line, col int, field string, says ...string) {
	t.Helper()
	_, err := Parse("bad.yaml", []byte(src))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want a *FieldError", err, err)
	}
	if fe.File != "bad.yaml" || fe.Line != line || fe.Field != field || (col != 0 && fe.Col != col) {
		t.Errorf("got %s (line %d col %d field %q), want line %d col %d field %q", err, fe.Line, fe.Col, fe.Field, line, col, field)
	}
	if !strings.HasPrefix(err.Error(), "bad.yaml:") {
		t.Errorf("error %q does not start with the file name", err)
	}
	for _, x := range says {
		if !strings.Contains(err.Error(), x) {
			t.Errorf("error %q does not say %q", err, x)
		}
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse("s.yaml", []byte("name: x\nworkload:\n  keys: [1,\n"))
	if err == nil || !strings.Contains(err.Error(), "s.yaml:") || !strings.Contains(err.Error(), "YAML syntax") {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse("s.yaml", []byte("name: a\n---\nname: b\n"))
	if err == nil || !strings.Contains(err.Error(), "one YAML document") {
		t.Fatalf("err = %v", err)
	}
}

func TestOverrides(t *testing.T) {
	s, err := Parse("x.yaml", []byte("workload: {rate: 100, stages: [{duration: 1s, rate: 200}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := Duration(3 * time.Second)
	rate := 0.0
	seed := int64(7)
	if err := s.Apply(Overrides{Duration: &d, Rate: &rate, Seed: &seed}); err != nil {
		t.Fatal(err)
	}
	if s.Duration != d || s.Workload.Rate != 0 || s.Workload.Stages != nil || s.Seed != 7 {
		t.Errorf("after overrides: %+v", s)
	}
	bad := -1
	if err := s.Apply(Overrides{Concurrency: &bad}); err == nil || !strings.Contains(err.Error(), "workload.concurrency") {
		t.Errorf("err = %v", err)
	}
}
