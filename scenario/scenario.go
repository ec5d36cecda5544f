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
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/internal/fielderr"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/workloads"
)

// Scenario is one scenario file.
type Scenario struct {
	Name        string                `yaml:"name"`        // default: the file's base name
	Description string                `yaml:"description"` // shown in reports
	Runtime     string                `yaml:"runtime"`     // a registered runtime: local (default), docker, ...
	System      string                `yaml:"system"`      // a registered system, default raftkv
	Nodes       int                   `yaml:"nodes"`       // node count of a single-role system (ids n1..nN); default the system's
	Roles       map[string]RoleConfig `yaml:"roles"`       // per role: count, bugs, options (multi-role systems)
	Bugs        []string              `yaml:"bugs"`        // bug switches for every node
	NodeOpts    map[string]string     `yaml:"node_opts"`   // system tunables for every node (--opt k=v)
	Client      Client                `yaml:"client"`      // client adapter; default the system's
	Seed        int64                 `yaml:"seed"`        // 0 = pick one (recorded in the results)
	Duration    Duration              `yaml:"duration"`    // main phase, default 20s
	Warmup      Duration              `yaml:"warmup"`      // time allowed for the cluster to serve a probe, default 10s
	Recovery    Duration              `yaml:"recovery"`    // after the heal, before final reads, default 5s
	MinOps      int                   `yaml:"min_ops"`     // fewer ok ops than this makes the run invalid (exit 4), default 100
	Workload    Workload              `yaml:"workload"`
	Faults      *faults.Schedule      `yaml:"faults"` // none: no faults (links still go through proxies)
	Checkers    Checkers              `yaml:"checkers"`
	// Metrics, if set, are Prometheus endpoints (nodes' admin APIs, or
	// URLs) sampled during the load into the history (see MetricsConfig).
	Metrics *MetricsConfig `yaml:"metrics,omitempty"`
	// Expect is the consistency model the system promises (a rung of the
	// ladder: checkers.ModelNames); "" for none. With it, the checkers
	// of stronger models (and any checker not marked `gating: true`)
	// report without setting the exit code.
	Expect string `yaml:"expect"`
	// Cluster lists the nodes of a cluster someone else runs, and its
	// hooks (runtime external only).
	Cluster *ClusterConfig `yaml:"cluster"`
	// KeyPrefix starts every key the run's clients send (the history
	// records keys without it); on runtime external a fresh one is made
	// per run when it is empty ("faultline/RUN/").
	KeyPrefix string `yaml:"key_prefix"`

	// File is the path the scenario was read from ("" if built in code).
	File string `yaml:"-"`
	// Source is the file's bytes, saved into the run directory.
	Source []byte `yaml:"-"`

	pos map[string]*yaml.Node

	// Resolved by Validate from the registries.
	sys     *targets.System
	rt      targets.Runtime
	adapter *targets.Adapter
	wl      *workloads.Workload
	nodes   []targets.NodeSpec
	procs   map[string]*targets.ProcessSpec // a process target's roles
	// An external cluster's nodes (addresses expanded), and --node
	// overrides of their client addresses.
	extNodes  []targets.ExternalNode
	nodeAddrs map[string]string
	// judging is set when the scenario is read to judge a saved run
	// (check): what only a run needs of this machine (a process target's
	// binary in PATH, an external cluster's addresses in the environment)
	// is not asked for.
	judging bool
}

// RoleConfig configures the nodes of one role.
type RoleConfig struct {
	Nodes int               `yaml:"nodes"` // how many; 0 = the role's default
	Bugs  []string          `yaml:"bugs"`  // bug switches for this role's nodes (besides the scenario's)
	Opts  map[string]string `yaml:"opts"`  // tunables for this role's nodes (over node_opts)
	// ProcessConfig is how the role's nodes run, for a process target
	// (system: process) only.
	ProcessConfig `yaml:",inline"`
}

// Client names the client adapter and its settings. In a file it is a
// name (`client: http`) or a mapping (`client: {adapter: etcd, options: {...}}`).
type Client struct {
	Adapter string            `yaml:"adapter"`
	Options map[string]string `yaml:"options"`
}

func (c *Client) decodeNode(d *decoder, n *yaml.Node, path string) error {
	return d.decodeShort(n, path, c, &c.Adapter)
}

// MarshalYAML writes the short form when there are no options.
func (c Client) MarshalYAML() (any, error) {
	if len(c.Options) == 0 {
		return c.Adapter, nil
	}
	return map[string]any{"adapter": c.Adapter, "options": c.Options}, nil
}

// Workload configures the operations driven at the cluster: the settings
// every workload has, and the workload's own parameters (Params), given
// as further keys of the same mapping.
type Workload struct {
	Type        string   `yaml:"type"`        // a registered workload; default the system's (register)
	Rate        float64  `yaml:"rate"`        // total target ops/s in open loop; 0 = closed loop
	Stages      []Stage  `yaml:"stages"`      // open-loop ramps: rate changes linearly to each stage's rate over its duration
	Concurrency int      `yaml:"concurrency"` // workers (closed loop) or max in flight (open loop), default 16
	Timeout     Duration `yaml:"timeout"`     // per-operation timeout, default 1s
	// Sessions says how a client process picks the node of each operation:
	// "sticky" (default) sends every operation to one home node (a
	// session, as a client with affinity sees the cluster), "spread" sends
	// each to a node chosen at random (seeded) among those that serve.
	Sessions string `yaml:"sessions"`

	// Params are the workload's own parameters (for register: keys, mix).
	Params workloads.Params `yaml:"-"`

	defType string // the system's default workload, set before decoding
}

// The values of Workload.Sessions.
const (
	SessionsSticky = "sticky"
	SessionsSpread = "spread"
)

// KindKey implements the decoder's kinded mapping: "type" picks the workload.
func (w *Workload) KindKey() string { return "type" }

// SetKind picks the workload (the system's default for "") and returns its
// parameters with their defaults.
func (w *Workload) SetKind(name string) (any, error) {
	if name == "" {
		name = w.defType
	}
	if name == "" {
		name = "register"
	}
	wl, err := workloads.Lookup(name)
	if err != nil {
		return nil, err
	}
	w.Type, w.Params = name, wl.NewParams()
	return w.Params, nil
}

// MarshalYAML writes the common settings and the parameters in one mapping.
func (w Workload) MarshalYAML() (any, error) {
	m := fieldMap(w)
	for k, v := range fieldMap(w.Params) {
		m[k] = v
	}
	return m, nil
}

// Stage is one open-loop ramp stage.
type Stage struct {
	Duration Duration `yaml:"duration"`
	Rate     float64  `yaml:"rate"`
}

// Checkers configures the checkers. Each key names a registered checker
// (`lost_writes` and `lost-writes` are the same) with `enabled` and its own
// parameters; an absent checker runs if it is a default of the system or
// workload. `latency` holds the performance thresholds.
type Checkers struct {
	List    []CheckerConfig // in file order
	Latency *LatencyLimits
}

// CheckerConfig is one checker's entry.
type CheckerConfig struct {
	Name    string
	Enabled *bool // nil: enabled
	// Gating, with a scenario's expect:, makes this checker's verdict
	// set the exit code although the expected model does not need it.
	Gating bool
	Params any // the checker's parameters (nil: it has none)
}

// on reports whether the entry enables its checker.
func (c CheckerConfig) on() bool { return c.Enabled == nil || *c.Enabled }

// Lookup returns the entry for a checker name, if the file has one.
func (c *Checkers) Lookup(name string) (*CheckerConfig, bool) {
	for i := range c.List {
		if c.List[i].Name == name {
			return &c.List[i], true
		}
	}
	return nil, false
}

func checkerName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func (c *Checkers) decodeNode(d *decoder, n *yaml.Node, path string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return d.errf(n, path, "want a mapping of checker names, got %s", kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		name := checkerName(k.Value)
		if seen[name] {
			return d.errf(k, p, "appears twice")
		}
		seen[name] = true
		if name == "latency" {
			c.Latency = &LatencyLimits{}
			if err := d.decode(val, reflect.ValueOf(c.Latency).Elem(), p); err != nil {
				return err
			}
			continue
		}
		e, err := checkers.Lookup(name)
		if err != nil {
			return d.errf(k, p, "%v; latency sets performance thresholds", err)
		}
		cc := CheckerConfig{Name: name}
		if e.NewParams != nil {
			cc.Params = e.NewParams()
		}
		var own struct {
			Enabled *bool `yaml:"enabled"`
			Gating  bool  `yaml:"gating"`
		}
		if err := d.decodeFields(val, reflect.ValueOf(&own).Elem(), cc.Params, p); err != nil {
			return err
		}
		cc.Enabled, cc.Gating = own.Enabled, own.Gating
		c.List = append(c.List, cc)
	}
	return nil
}

// MarshalYAML writes one mapping per checker.
func (c Checkers) MarshalYAML() (any, error) {
	m := map[string]any{}
	for _, cc := range c.List {
		e := fieldMap(cc.Params)
		if cc.Enabled != nil {
			e["enabled"] = *cc.Enabled
		}
		if cc.Gating {
			e["gating"] = true
		}
		m[cc.Name] = e
	}
	if c.Latency != nil {
		m["latency"] = c.Latency
	}
	return m, nil
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
	// ErrorRate, if set, is the largest fraction of the operations that
	// may end in error (fail or info; a cas mismatch is an answer), e.g.
	// 0.01; 0 allows none.
	ErrorRate *float64 `yaml:"error_rate"`
	// Endpoints are limits per endpoint of a workload that has endpoints
	// (http), by name.
	Endpoints map[string]EndpointLimits `yaml:"endpoints"`
}

// EndpointLimits are the performance thresholds of one endpoint: its
// latency percentiles (from the intended start in open loop) and its
// error rate, as in LatencyLimits.
type EndpointLimits struct {
	P50       Duration `yaml:"p50"`
	P99       Duration `yaml:"p99"`
	P999      Duration `yaml:"p999"`
	Max       Duration `yaml:"max"`
	ErrorRate *float64 `yaml:"error_rate"`
}

// Overrides are command-line settings that win over the file.
type Overrides struct {
	Duration    *Duration
	Rate        *float64
	Concurrency *int
	Seed        *int64
	Runtime     *string
	// Nodes overrides the client addresses of an external cluster's nodes
	// (--node ID=ADDR).
	Nodes map[string]string
}

// Load reads, decodes, defaults and validates a scenario file.
func Load(path string) (*Scenario, error) { return LoadWith(path, Overrides{}) }

// LoadWith is Load with command-line overrides applied before the
// scenario is validated (an external cluster's addresses may come only
// from --node), errors of an override naming its flag.
func LoadWith(path string, o Overrides) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if len(b) > MaxFileSize {
		return nil, &FieldError{File: path, Msg: fmt.Sprintf("the file is larger than %d KiB, the limit of a scenario file: a scenario is a page, not data", MaxFileSize>>10)}
	}
	return parseWith(path, b, o, false)
}

// Limits on what a scenario may ask for, so that a mistake (or a hostile
// file) is an error before anything starts rather than gigabytes of memory.
const (
	MaxFileSize      = 1 << 20 // bytes of a scenario file
	MaxFaults        = 10_000  // faults a schedule may plan (timeline entries, or duration/every)
	MaxMix           = 1_000   // entries of a fault mix
	MaxBugs          = 64      // bug switches in all (scenario and roles)
	MaxOptions       = 256     // options in all (node_opts and roles)
	MaxClientOptions = 64      // client adapter options
	MaxDuration      = 7 * 24 * time.Hour
)

// Parse decodes, defaults and validates a scenario held in memory; name is
// used in error messages and as the default scenario name.
func Parse(name string, b []byte) (*Scenario, error) { return parseWith(name, b, Overrides{}, false) }

// loadForJudging reads a saved run's scenario to judge its history: as
// Load, without asking this machine for what only a run needs.
func loadForJudging(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseWith(path, b, Overrides{}, true)
}

func parseWith(name string, b []byte, o Overrides, judging bool) (*Scenario, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlSyntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: name, Line: extra.Line, Col: extra.Column, Msg: "a scenario file holds one YAML document; remove the second one (after ---)"}
	}
	s := &Scenario{File: name, Source: b, judging: judging}
	d := &decoder{file: name}
	s.pos = map[string]*yaml.Node{}
	indexPositions(&root, "", s.pos)
	// The system decides the defaults of what follows it (the workload's
	// type, the node count), so it is looked up before the rest is decoded.
	s.System = DefaultSystem
	if n, ok := s.pos["system"]; ok && n.Kind == yaml.ScalarNode && n.Value != "" {
		s.System = n.Value
	}
	if n, ok := s.pos["runtime"]; ok && n.Kind == yaml.ScalarNode && n.Value == targets.ExternalRuntime {
		if _, named := s.pos["system"]; !named {
			s.System = targets.ExternalSystem
		}
	}
	if s.System == targets.ProcessSystem || s.System == targets.ExternalSystem {
		// Its roles and adapter come from the file (resolveProcess).
		s.sys = &targets.System{Name: s.System, Workload: "register"}
	} else {
		sys, err := targets.LookupSystem(s.System)
		if err != nil {
			return nil, s.errAt("system", "%v (or process: any binary, started from a command per role)", err)
		}
		s.sys = sys
	}
	s.Workload.defType = s.sys.Workload
	if root.Kind != 0 { // an empty file is a scenario of defaults
		if err := d.decode(&root, reflectValue(s), ""); err != nil {
			return nil, err
		}
	}
	if err := s.resolveProcess(); err != nil {
		return nil, err
	}
	if err := s.applyDefaults(); err != nil {
		return nil, err
	}
	if !o.empty() {
		if err := s.Apply(o); err != nil {
			return nil, err
		}
		return s, nil
	}
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

func (s *Scenario) applyDefaults() error {
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
	if s.Nodes == 0 && len(s.sys.Roles) == 1 {
		s.Nodes = s.sys.Roles[0].Nodes
	}
	if s.Client.Adapter == "" {
		s.Client.Adapter = s.sys.Client
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
	if w.Params == nil {
		if _, err := w.SetKind(w.Type); err != nil {
			return s.errAt("workload.type", "%v", err)
		}
	}
	if w.Concurrency == 0 {
		w.Concurrency = 16
	}
	if w.Timeout == 0 {
		w.Timeout = Duration(1e9)
	}
	return nil
}

// fieldMap returns the yaml fields of a struct (or pointer to one) as a
// map, durations as strings so that the map reads back, zero values and
// unexported fields left out.
func fieldMap(v any) map[string]any {
	out := map[string]any{}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return out
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return out
	}
	for name, idx := range structFields(rv.Type()) {
		f := rv.FieldByIndex(idx)
		if !f.CanInterface() || f.IsZero() {
			continue
		}
		switch d := f.Interface().(type) {
		case time.Duration:
			out[name] = d.String()
		default:
			out[name] = d
		}
	}
	return out
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

// DefaultSystem is the system of a scenario that names none.
const DefaultSystem = "raftkv"

// Validate checks the values (after defaults) against the registries: the
// runtime, the system's roles, bug switches and options, the client
// adapter, the workload, the checkers and the faults, which must all be
// available on this target. Errors name file, line and field.
func (s *Scenario) Validate() error {
	rt, err := targets.NewRuntime(s.Runtime)
	if err != nil {
		return s.errAt("runtime", "%v", err)
	}
	s.rt = rt
	if err := s.resolveExternal(); err != nil {
		return err
	}
	if err := s.validateNodes(); err != nil {
		return err
	}
	if s.MinOps < 0 {
		return s.errAt("min_ops", "must not be negative")
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{{"duration", s.Duration}, {"warmup", s.Warmup}, {"recovery", s.Recovery}} {
		if d.v.D() > MaxDuration {
			return s.errAt(d.field, "%s: at most %s", d.v, MaxDuration)
		}
	}
	if err := s.validateClient(); err != nil {
		return err
	}
	w := s.Workload
	if err := w.Params.Check(); err != nil {
		return s.fieldErr("workload", err)
	}
	if err := s.checkWorkloadHere(); err != nil {
		return err
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
	switch w.Sessions {
	case "", SessionsSticky, SessionsSpread:
	default:
		return s.errAt("workload.sessions", "%q: use sticky (every operation of a client process to its home node) or spread (each to a node chosen at random)", w.Sessions)
	}
	if err := s.validateCheckers(); err != nil {
		return err
	}
	if err := s.checkLimits(); err != nil {
		return err
	}
	if err := s.validateMetrics(); err != nil {
		return err
	}
	if err := s.Faults.Validate(s.faultEnv()); err != nil {
		var se *faults.SpecError
		if errors.As(err, &se) {
			return s.errAt("faults."+se.Field, "%s", se.Msg)
		}
		return s.errAt("faults", "%v", err)
	}
	return nil
}

// checkLimits refuses lists larger than the documented limits.
func (s *Scenario) checkLimits() error {
	bugs, opts := len(s.Bugs), len(s.NodeOpts)
	for _, rc := range s.Roles {
		bugs += len(rc.Bugs)
		opts += len(rc.Opts)
	}
	switch {
	case bugs > MaxBugs:
		return s.errAt("bugs", "%d bug switches: at most %d", bugs, MaxBugs)
	case opts > MaxOptions:
		return s.errAt("node_opts", "%d options: at most %d", opts, MaxOptions)
	case len(s.Client.Options) > MaxClientOptions:
		return s.errAt("client.options", "%d options: at most %d", len(s.Client.Options), MaxClientOptions)
	}
	f := s.Faults
	if f == nil {
		return nil
	}
	if len(f.Mix) > MaxMix {
		return s.errAt("faults.mix", "%d faults in the mix: at most %d", len(f.Mix), MaxMix)
	}
	if len(f.Timeline) > MaxFaults {
		return s.errAt("faults.timeline", "%d faults on the timeline: at most %d", len(f.Timeline), MaxFaults)
	}
	if n := f.MaxPlanned(s.Duration.D()); n > MaxFaults {
		return s.errAt("faults.every", "faults every %s (gaps from half that) for %s could plan %d faults, more than %d: lengthen every or shorten the run", f.Every, s.Duration, n, MaxFaults)
	}
	return nil
}

// faultEnv describes the target to the faults: what they may ask of it.
func (s *Scenario) faultEnv() faults.Env {
	return faults.Env{System: s.sys, Runtime: s.Runtime, Caps: s.capabilities(), Nodes: s.nodes}
}

// fieldErr positions err under section when it is about one field.
func (s *Scenario) fieldErr(section string, err error) error {
	var fe *fielderr.Error
	if errors.As(err, &fe) {
		return s.errAt(join(section, fe.Field), "%s", fe.Msg)
	}
	return s.errAt(section, "%v", err)
}

// validateNodes checks roles, counts, bug switches and options, and works
// out every node's spec.
func (s *Scenario) validateNodes() error {
	if s.External() {
		if len(s.Bugs) > 0 || len(s.NodeOpts) > 0 || len(s.Roles) > 0 {
			return s.errAt("runtime", "an external cluster takes no bugs, node_opts or roles: its nodes are listed under cluster.nodes and run as their owner started them")
		}
		return nil // resolveExternal made s.nodes
	}
	sys := s.sys
	counts := map[string]int{}
	for _, r := range sys.Roles {
		counts[r.Name] = r.Nodes
	}
	if len(sys.Roles) == 1 {
		counts[sys.Roles[0].Name] = s.Nodes
	} else if _, set := s.pos["nodes"]; set && s.Nodes != 0 {
		return s.errAt("nodes", "system %s has roles %s: set each role's count under roles (e.g. roles: {%s: {nodes: 2}})", sys.Name, strings.Join(sys.RoleNames(), ", "), sys.Roles[0].Name)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Roles)) {
		rc := s.Roles[name]
		if _, ok := sys.Role(name); !ok || name == "" {
			return s.errAt("roles."+name, "system %s has no role %q (roles: %s)", sys.Name, name, strings.Join(sys.RoleNames(), ", "))
		}
		if rc.Nodes < 0 {
			return s.errAt("roles."+name+".nodes", "must not be negative")
		}
		if rc.Nodes > 0 {
			counts[name] = rc.Nodes
		}
	}
	total := 0
	for _, r := range sys.Roles {
		n := counts[r.Name]
		p := "roles." + r.Name + ".nodes"
		if len(sys.Roles) == 1 {
			p = "nodes"
		}
		lo, hi := r.Min, r.Max
		if len(sys.Roles) == 1 && lo == 0 {
			lo = 1
		}
		if hi == 0 {
			hi = targets.MaxNodes
		}
		if n < lo || n > hi {
			return s.errAt(p, "%d %s nodes: system %s takes %d to %d", n, r.Name, sys.Name, lo, hi)
		}
		total += n
	}
	if total < 1 || total > targets.MaxNodes {
		return s.errAt("nodes", "%d nodes in all: use 1 to %d", total, targets.MaxNodes)
	}
	for i, b := range s.Bugs {
		if err := sys.CheckBug(b); err != nil {
			return s.errAt(fmt.Sprintf("bugs[%d]", i), "%v", err)
		}
	}
	if err := s.checkOptNames("node_opts", s.NodeOpts); err != nil {
		return err
	}
	s.nodes = sys.NodeIDs(counts)
	for i := range s.nodes {
		n := &s.nodes[i]
		rc := s.Roles[n.Role]
		n.Bugs = append(append([]string(nil), s.Bugs...), rc.Bugs...)
		n.Process = s.procs[n.Role]
		n.Opts = map[string]string{}
		for k, v := range s.NodeOpts {
			n.Opts[k] = v
		}
		for k, v := range rc.Opts {
			n.Opts[k] = v
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Roles)) {
		rc := s.Roles[name]
		for i, b := range rc.Bugs {
			if err := sys.CheckBug(b); err != nil {
				return s.errAt(fmt.Sprintf("roles.%s.bugs[%d]", name, i), "%v", err)
			}
		}
		if err := s.checkOptNames("roles."+name+".opts", rc.Opts); err != nil {
			return err
		}
	}
	// Values are checked as each node gets them (node_opts, then its
	// role's): options such as raft's timeouts are only valid together.
	checked := map[string]bool{}
	for _, n := range s.nodes {
		if !checked[n.Role] {
			checked[n.Role] = true
			if err := s.checkOptValues(n.Role, n.Opts); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkOptNames checks that every option of a section is one the system
// has.
func (s *Scenario) checkOptNames(path string, opts map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if err := s.sys.CheckOption(k); err != nil {
			return s.errAt(path+"."+k, "%v", err)
		}
	}
	return nil
}

// checkOptValues checks the options a node of role gets, all together.
// When they are refused, the error points at the option that is wrong on
// its own, if one is, else at the section that set them.
func (s *Scenario) checkOptValues(role string, opts map[string]string) error {
	if s.sys.CheckOptions == nil {
		return nil
	}
	err := s.sys.CheckOptions(opts)
	if err == nil {
		return nil
	}
	where := func(k string) string {
		if _, ok := s.Roles[role].Opts[k]; ok {
			return "roles." + role + ".opts." + k
		}
		return "node_opts." + k
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if e := s.sys.CheckOptions(map[string]string{k: opts[k]}); e != nil {
			return s.errAt(where(k), "%v", e)
		}
	}
	path := "node_opts"
	if len(s.Roles[role].Opts) > 0 {
		path = "roles." + role + ".opts"
	}
	return s.errAt(path, "%v", err)
}

// validateClient checks the adapter, its options, and that it performs
// every operation the workload sends.
func (s *Scenario) validateClient() error {
	wl, err := workloads.Lookup(s.Workload.Type)
	if err != nil {
		return s.errAt("workload.type", "%v", err)
	}
	s.wl = wl
	if s.Client.Adapter == "" {
		return s.errAt("client", "system %s names no client adapter: set client (known: %s)", s.sys.Name, strings.Join(adapterNames(), ", "))
	}
	a, err := targets.LookupAdapter(s.Client.Adapter)
	if err != nil {
		return s.errAt("client", "%v", err)
	}
	s.adapter = a
	for _, k := range slices.Sorted(maps.Keys(s.Client.Options)) {
		if err := targets.CheckOptionName(a.Name, a.Options, k); err != nil {
			return s.errAt("client.options."+k, "%v", err)
		}
	}
	for _, op := range wl.Ops {
		if !a.Supports(op) && wl.NewClient == nil { // a workload with clients of its own needs no adapter's ops
			return s.errAt("workload.type", "workload %s sends %s, which client adapter %s does not perform (it performs: %s)", wl.Name, op, a.Name, strings.Join(a.Ops, ", "))
		}
	}
	return nil
}

// validateCheckers checks every checker's parameters and that the default
// checkers exist.
func (s *Scenario) validateCheckers() error {
	for _, cc := range s.Checkers.List {
		if c, ok := cc.Params.(interface{ Check() error }); ok {
			if err := c.Check(); err != nil {
				return s.fieldErr("checkers."+s.checkerKey(cc.Name), err)
			}
		}
	}
	for _, name := range s.defaultCheckers() {
		if _, err := checkers.Lookup(name); err != nil {
			return s.errAt("system", "system %s or workload %s names a checker this build lacks: %v", s.sys.Name, s.wl.Name, err)
		}
	}
	if l := s.Checkers.Latency; l != nil && (math.IsNaN(l.MinRate) || l.MinRate < 0 || l.MinRate > 1) {
		return s.errAt("checkers.latency.min_rate", "%v: use a fraction between 0 and 1, e.g. 0.95", l.MinRate)
	}
	if err := s.validateEndpointLimits(); err != nil {
		return err
	}
	if s.Expect != "" {
		m, ok := checkers.LookupModel(s.Expect)
		if !ok {
			return s.errAt("expect", "%q is not a model of the ladder: use one of %s (strongest first)", s.Expect, strings.Join(checkers.ModelNames(), ", "))
		}
		if !slices.Contains(s.checkerNames(), m.Checker) {
			return s.errAt("expect", "%s is judged by the %s checker, which this scenario does not run: enable it (checkers: {%s: {}})", m.Name, m.Checker, m.Checker)
		}
	}
	for _, cc := range s.Checkers.List {
		if cc.Gating && s.Expect == "" {
			return s.errAt("checkers."+s.checkerKey(cc.Name)+".gating", "gating matters only with expect: (every checker gates without it): set expect, or remove gating")
		}
	}
	return nil
}

// checkerKey returns the key a checker has in the file (lost_writes or
// lost-writes), for positions.
func (s *Scenario) checkerKey(name string) string {
	if _, ok := s.pos["checkers."+name]; ok {
		return name
	}
	return strings.ReplaceAll(name, "-", "_")
}

// defaultCheckers are the checkers that run unless the file disables them:
// the system's, else the workload's.
func (s *Scenario) defaultCheckers() []string {
	if len(s.sys.Checkers) > 0 {
		return s.sys.Checkers
	}
	if s.wl != nil {
		return s.wl.Checkers
	}
	return nil
}

func adapterNames() []string {
	var out []string
	for _, a := range targets.Adapters() {
		out = append(out, a.Name)
	}
	return out
}

// NodeSpecs returns every node's spec (id, role, bugs, options), as
// validated.
func (s *Scenario) NodeSpecs() []targets.NodeSpec { return s.nodes }

// NodeIDs returns the scenario's node ids, in order.
func (s *Scenario) NodeIDs() []string {
	out := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = n.ID
	}
	return out
}

func (o Overrides) empty() bool {
	return o.Duration == nil && o.Rate == nil && o.Concurrency == nil && o.Seed == nil && o.Runtime == nil && len(o.Nodes) == 0
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
	if len(o.Nodes) > 0 {
		if s.Runtime != targets.ExternalRuntime {
			return fmt.Errorf("--node gives the addresses of an external cluster's nodes: the scenario's runtime is %s", s.Runtime)
		}
		s.nodeAddrs = o.Nodes
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
