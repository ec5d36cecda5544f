package scenario_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/scenario"
	_ "github.com/faultline/faultline/targets/httpkv"
	_ "github.com/faultline/faultline/targets/local"
	_ "github.com/faultline/faultline/targets/raftkv"
)

// FuzzParse feeds the scenario decoder arbitrary files. Parse must never
// panic; a file it refuses gets an error that names the file (a
// *FieldError's position, when it has one, inside the file); a file it
// accepts must survive the replay path: the effective scenario the
// conductor writes into the run directory (yaml.Marshal of it) parses
// again, to the same effective scenario.
//
// Seeds: the examples, and the broken files below; the corpus in
// testdata/fuzz/FuzzParse holds what fuzzing found.
func FuzzParse(f *testing.F) {
	examples, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		f.Fatalf("no examples to seed from (%v)", err)
	}
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"\n",
		"name: x\ndurration: 20s\n",
		"workload:\n  keys: many\n",
		"nodes: 3\nnodes: 5\n",
		"workload: [1, 2]\n",
		"name: a\n---\nname: b\n",
		"name: x\nworkload:\n  keys: [1,\n",
		"- 1\n- 2\n",
		"just a string",
		"name: \"\\x1b]0;pwned\\x07\"\n",
		"name: ../../victim\n",
		"a: &a [*a]\n",
		"x: &x {a: 1}\ny: *x\nz: *y\n",
		"duration: -5s\nrecovery: 1e400s\n",
		"nodes: 99999999999999999999\n",
		"seed: -9223372036854775808\n",
		"workload: {rate: .nan, concurrency: -1}\n",
		"workload:\n  mix: {get: 1e308, put: 1e308}\n",
		"faults:\n  schedule: timeline\n  timeline:\n    - {at: 1s, fault: partition-one, for: 1s}\n    - {at: 100h, fault: kill, target: leader, for: 1s}\n",
		"faults:\n  mix:\n    - {fault: no-such-fault}\n",
		"faults:\n  mix:\n    - {fault: latency, latency: -1ms}\n",
		"roles:\n  leader: {count: 1}\n",
		"checkers:\n  linearizability: {budget: 0s, enabled: maybe}\n",
		"client: {adapter: http, options: {a: b}}\n",
		"system: nosuch\n",
		"bugs: [stale-read, stale-read]\n",
		"node_opts: {x: [1]}\n",
		"!!binary AAAA: 1\n",
		"? [a]\n: b\n",
		"{\"name\": \"json\", \"nodes\": 5}",
		"\tname: tab\n",
		"name: x\x00y\n",
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	const name = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := scenario.Parse(name, b)
		if err != nil {
			if s != nil {
				t.Fatalf("Parse returned a scenario and an error: %v", err)
			}
			msg := err.Error()
			if msg == "" {
				t.Fatal("empty error")
			}
			var fe *scenario.FieldError
			if errors.As(err, &fe) {
				// YAML breaks lines at \n, \r\n and a lone \r (and yaml.v3
				// at NEL, LS and PS too): count every one, as an upper bound.
				lines := 1
				for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
					lines += bytes.Count(b, []byte(br))
				}
				if fe.File != name || fe.Line < 0 || fe.Line > lines+1 || fe.Col < 0 {
					t.Fatalf("FieldError %+v outside the file (%d lines): %v", fe, lines, err)
				}
			}
			if !strings.HasPrefix(msg, name) {
				t.Fatalf("error %q does not name the file", msg)
			}
			return
		}
		if s == nil {
			t.Fatal("Parse returned neither a scenario nor an error")
		}
		eff, err := yaml.Marshal(s)
		if err != nil {
			t.Fatalf("the effective scenario cannot be written: %v", err)
		}
		s2, err := scenario.Parse(name, eff)
		if err != nil {
			t.Fatalf("the effective scenario does not parse again: %v\n--- input\n%s\n--- effective\n%s", err, b, eff)
		}
		eff2, err := yaml.Marshal(s2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(eff, eff2) {
			t.Fatalf("the effective scenario changes when replayed:\n--- first\n%s\n--- replayed\n%s", eff, eff2)
		}
		// As a run saves it (scenario.yaml): no null anywhere, and the
		// same scenario when read back.
		saved, err := scenario.Marshal(s)
		if err != nil {
			t.Fatalf("the scenario cannot be saved: %v", err)
		}
		if hasNull(t, saved) {
			t.Fatalf("the saved scenario has a null:\n%s", saved)
		}
		s3, err := scenario.Parse(name, saved)
		if err != nil {
			t.Fatalf("the saved scenario does not parse again: %v\n--- saved\n%s", err, saved)
		}
		if eff3, err := yaml.Marshal(s3); err != nil || !bytes.Equal(eff, eff3) {
			t.Fatalf("the saved scenario reads back as another (%v):\n--- effective\n%s\n--- saved and read back\n%s", err, eff, eff3)
		}
	})
}

// hasNull reports whether a YAML document has a field (a mapping entry)
// whose value is null, at any depth.
func hasNull(t *testing.T, b []byte) bool {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 1 && c.Kind == yaml.ScalarNode && c.Tag == "!!null" {
				return true
			}
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(&n)
}
