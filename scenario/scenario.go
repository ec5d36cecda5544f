// Package scenario reads scenario files and conducts runs.
//
// A scenario file is YAML, decoded strictly: an unknown key, a duplicate
// key, a wrong type or a bad duration is an error naming the file, the line,
// the column and the field. Load fills defaults and validates; Run (in
// conduct.go) carries a run through its phases: setup, warm-up, main (load
// and faults), heal, recovery, final reads, check, report.
//
// This package knows no concrete system or fault: it wires the packages
// below it together.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/faults"
)

// Scenario is one scenario file.
type Scenario struct {
	Name        string            `yaml:"name"`        // default: the file's base name
	Description string            `yaml:"description"` // shown in reports
	Runtime     string            `yaml:"runtime"`     // local (default), docker, external
	System      string            `yaml:"system"`      // reference system, default raftkv
	Nodes       int               `yaml:"nodes"`       // number of nodes, default 3 (ids n1..nN)
	Bugs        []string          `yaml:"bugs"`        // bug switches for every node
	NodeOpts    map[string]string `yaml:"node_opts"`   // system tunables (--opt k=v)
	Seed        int64             `yaml:"seed"`        // 0 = pick one (recorded in the results)
	Duration    Duration          `yaml:"duration"`    // main phase, default 20s
	Warmup      Duration          `yaml:"warmup"`      // time allowed for the cluster to serve a probe, default 10s
	Recovery    Duration          `yaml:"recovery"`    // after the heal, before final reads, default 5s
	MinOps      int               `yaml:"min_ops"`     // fewer ok ops than this makes the run invalid (exit 4), default 100
	Workload    Workload          `yaml:"workload"`
	Faults      *faults.Schedule  `yaml:"faults"` // none: no faults (links still go through proxies)
	Checkers    Checkers          `yaml:"checkers"`

	// File is the path the scenario was read from ("" if built in code).
	File string `yaml:"-"`
	// Source is the file's bytes, saved into the run directory.
	Source []byte `yaml:"-"`

	pos map[string]*yaml.Node
}

// Workload configures the operations driven at the cluster.
type Workload struct {
	Type        string   `yaml:"type"`        // register (default): get/put/cas over keys
	Keys        int      `yaml:"keys"`        // number of keys, default 8
	Mix         Mix      `yaml:"mix"`         // relative weights, default get 0.5 put 0.3 cas 0.2
	Rate        float64  `yaml:"rate"`        // total target ops/s in open loop; 0 = closed loop
	Stages      []Stage  `yaml:"stages"`      // open-loop ramps: rate changes linearly to each stage's rate over its duration
	Concurrency int      `yaml:"concurrency"` // workers (closed loop) or max in flight (open loop), default 16
	Timeout     Duration `yaml:"timeout"`     // per-operation timeout, default 1s
}

// Mix gives the relative weight of each operation.
type Mix struct {
	Get float64 `yaml:"get"`
	Put float64 `yaml:"put"`
	CAS float64 `yaml:"cas"`
}

// Stage is one open-loop ramp stage.
type Stage struct {
	Duration Duration `yaml:"duration"`
	Rate     float64  `yaml:"rate"`
}

// Checkers configures the checkers; an absent section means the default.
type Checkers struct {
	Linearizability *Linearizability `yaml:"linearizability"`
	LostWrites      *Toggle          `yaml:"lost_writes"`
	Latency         *LatencyLimits   `yaml:"latency"`
}

// Toggle turns a checker without settings on or off (default on).
type Toggle struct {
	Enabled *bool `yaml:"enabled"`
}

func (t *Toggle) on() bool { return t == nil || t.Enabled == nil || *t.Enabled }

// Linearizability configures the Porcupine checker.
type Linearizability struct {
	Enabled *bool    `yaml:"enabled"` // default true
	Budget  Duration `yaml:"budget"`  // time budget; running out gives unknown. Default 60s
}

// LatencyLimits are performance thresholds on the latency of ok operations
// (measured from the intended start in open loop). Zero means no limit. A
// limit not met gives exit code 3.
type LatencyLimits struct {
	P50  Duration `yaml:"p50"`
	P99  Duration `yaml:"p99"`
	P999 Duration `yaml:"p999"`
	Max  Duration `yaml:"max"`
	// MinRate is the least achieved rate, as a fraction of the target rate
	// (open loop only), e.g. 0.95.
	MinRate float64 `yaml:"min_rate"`
}

// Overrides are command-line settings that win over the file.
type Overrides struct {
	Duration    *Duration
	Rate        *float64
	Concurrency *int
	Seed        *int64
	Runtime     *string
}

// Load reads, decodes, defaults and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes, defaults and validates a scenario held in memory; name is
// used in error messages and as the default scenario name.
func Parse(name string, b []byte) (*Scenario, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlSyntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: name, Line: extra.Line, Col: extra.Column, Msg: "a scenario file holds one YAML document; remove the second one (after ---)"}
	}
	s := &Scenario{File: name, Source: b}
	d := &decoder{file: name}
	s.pos = map[string]*yaml.Node{}
	indexPositions(&root, "", s.pos)
	if root.Kind != 0 { // an empty file is a scenario of defaults
		if err := d.decode(&root, reflectValue(s), ""); err != nil {
			return nil, err
		}
	}
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func yamlSyntaxError(name string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	// yaml.v3 says "line N: ..."; turn it into file:N.
	var line int
	if _, e := fmt.Sscanf(msg, "line %d:", &line); e == nil {
		rest := msg[strings.Index(msg, ":")+1:]
		return &FieldError{File: name, Line: line, Col: 1, Msg: "YAML syntax: " + strings.TrimSpace(rest)}
	}
	return &FieldError{File: name, Msg: "YAML syntax: " + msg}
}

// indexPositions records the key node of every field path, so validation
// errors can point at the line of the offending field.
func indexPositions(n *yaml.Node, path string, out map[string]*yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexPositions(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			out[p] = n.Content[i+1]
			indexPositions(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c
			indexPositions(c, p, out)
		}
	}
}

func (s *Scenario) applyDefaults() {
	if s.Name == "" {
		base := filepath.Base(s.File)
		s.Name = strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
		if s.Name == "" || s.Name == "." {
			s.Name = "scenario"
		}
	}
	if s.Runtime == "" {
		s.Runtime = "local"
	}
	if s.System == "" {
		s.System = "raftkv"
	}
	if s.Nodes == 0 {
		s.Nodes = 3
	}
	if s.Duration == 0 {
		s.Duration = Duration(20e9)
	}
	if s.Warmup == 0 {
		s.Warmup = Duration(10e9)
	}
	if s.Recovery == 0 {
		s.Recovery = Duration(5e9)
	}
	if s.MinOps == 0 {
		s.MinOps = 100
	}
	w := &s.Workload
	if w.Type == "" {
		w.Type = "register"
	}
	if w.Keys == 0 {
		w.Keys = 8
	}
	if w.Mix == (Mix{}) {
		w.Mix = Mix{Get: 0.5, Put: 0.3, CAS: 0.2}
	}
	if w.Concurrency == 0 {
		w.Concurrency = 16
	}
	if w.Timeout == 0 {
		w.Timeout = Duration(1e9)
	}
	if s.Checkers.Linearizability == nil {
		s.Checkers.Linearizability = &Linearizability{}
	}
	if s.Checkers.Linearizability.Budget == 0 {
		s.Checkers.Linearizability.Budget = Duration(60e9)
	}
}

// LinearizabilityEnabled reports whether the linearizability checker runs.
func (s *Scenario) LinearizabilityEnabled() bool {
	l := s.Checkers.Linearizability
	return l == nil || l.Enabled == nil || *l.Enabled
}

// errAt returns a FieldError for a field path, positioned at that field if
// the file had it.
func (s *Scenario) errAt(path, format string, args ...any) error {
	e := &FieldError{File: s.File, Field: path, Msg: fmt.Sprintf(format, args...)}
	// Point at the field, or at the nearest enclosing one the file has
	// (a missing field is reported where its parent is).
	for p := path; p != ""; p = parentPath(p) {
		if n, ok := s.pos[p]; ok && n != nil {
			e.Line, e.Col = n.Line, n.Column
			break
		}
	}
	return e
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

// Validate checks the values (after defaults). Errors name file, line and field.
func (s *Scenario) Validate() error {
	switch s.Runtime {
	case "local", "docker", "external":
	default:
		return s.errAt("runtime", "%q is not a runtime: use local, docker or external", s.Runtime)
	}
	if s.Nodes < 1 || s.Nodes > 15 {
		return s.errAt("nodes", "%d nodes: use 1 to 15", s.Nodes)
	}
	if s.MinOps < 0 {
		return s.errAt("min_ops", "must not be negative")
	}
	w := s.Workload
	if w.Type != "register" {
		return s.errAt("workload.type", "%q is not a workload: use register", w.Type)
	}
	if w.Keys < 1 || w.Keys > 1_000_000 {
		return s.errAt("workload.keys", "%d keys: use 1 to 1000000", w.Keys)
	}
	for name, v := range map[string]float64{"get": w.Mix.Get, "put": w.Mix.Put, "cas": w.Mix.CAS} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return s.errAt("workload.mix."+name, "weight %v is negative: weights are relative and must be 0 or more", v)
		}
	}
	if w.Mix.Get+w.Mix.Put+w.Mix.CAS <= 0 {
		return s.errAt("workload.mix", "at least one weight must be positive")
	}
	if math.IsNaN(w.Rate) || w.Rate < 0 || w.Rate > 10_000_000 {
		return s.errAt("workload.rate", "%v ops/s: use 0 (closed loop) up to 10000000", w.Rate)
	}
	for i, st := range w.Stages {
		p := fmt.Sprintf("workload.stages[%d]", i)
		if st.Duration <= 0 {
			return s.errAt(p+".duration", "each stage needs a positive duration")
		}
		if math.IsNaN(st.Rate) || st.Rate < 0 || st.Rate > 10_000_000 {
			return s.errAt(p+".rate", "must not be negative")
		}
	}
	if len(w.Stages) > 0 && w.Rate == 0 {
		return s.errAt("workload.stages", "stages need open loop: set workload.rate (the starting rate), or remove stages")
	}
	if w.Concurrency < 1 || w.Concurrency > 100_000 {
		return s.errAt("workload.concurrency", "%d: use 1 to 100000", w.Concurrency)
	}
	if err := s.Faults.Validate(s.NodeIDs()); err != nil {
		var se *faults.SpecError
		if errors.As(err, &se) {
			return s.errAt("faults."+se.Field, "%s", se.Msg)
		}
		return s.errAt("faults", "%v", err)
	}
	if l := s.Checkers.Latency; l != nil && (math.IsNaN(l.MinRate) || l.MinRate < 0 || l.MinRate > 1) {
		return s.errAt("checkers.latency.min_rate", "%v: use a fraction between 0 and 1, e.g. 0.95", l.MinRate)
	}
	return nil
}

// Apply applies command-line overrides and re-validates.
func (s *Scenario) Apply(o Overrides) error {
	if o.Duration != nil {
		if *o.Duration <= 0 {
			return fmt.Errorf("--duration must be positive")
		}
		s.Duration = *o.Duration
	}
	if o.Rate != nil {
		s.Workload.Rate = *o.Rate
		if *o.Rate == 0 {
			s.Workload.Stages = nil
		}
	}
	if o.Concurrency != nil {
		s.Workload.Concurrency = *o.Concurrency
	}
	if o.Seed != nil {
		s.Seed = *o.Seed
	}
	if o.Runtime != nil {
		s.Runtime = *o.Runtime
	}
	if err := s.Validate(); err != nil {
		// Name the flag rather than a line of the file.
		if fe, ok := err.(*FieldError); ok {
			return fmt.Errorf("after command-line overrides: field %q: %s", fe.Field, fe.Msg)
		}
		return err
	}
	return nil
}
