package scenario

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/targets"
)

// ProcessConfig is how a role of a process target (`system: process`)
// runs its nodes: the keys of a role besides nodes, bugs and opts. See
// targets.ProcessSpec for what each means; command, env and dir are Go
// templates over targets.ProcessVars.
//
// Every field is omitted from a saved scenario when empty, so that the
// roles of a system that starts its own nodes save without process keys
// (which such a role may not give).
type ProcessConfig struct {
	Command    []string          `yaml:"command,omitempty"`
	Env        map[string]string `yaml:"env,omitempty"`
	Dir        string            `yaml:"dir,omitempty"`
	StopSignal string            `yaml:"stop_signal,omitempty"`
	StopGrace  Duration          `yaml:"stop_grace,omitempty"`
	Ready      ReadyProbe        `yaml:"ready,omitempty"`
	Peers      string            `yaml:"peers,omitempty"`
	// PeerPort is "client" when the node serves its peers on its client
	// port (Redis); default: a port of its own.
	PeerPort string `yaml:"peer_port,omitempty"`
}

// given reports whether any key of a process role was set.
func (p ProcessConfig) given() bool { return !reflect.ValueOf(p).IsZero() }

// ReadyProbe is a process role's readiness probe: `tcp`, `adapter`, or
// a mapping {probe: tcp|http|adapter, path: /health, port: client|peer}.
type ReadyProbe struct {
	Probe string `yaml:"probe"`
	Path  string `yaml:"path"`
	Port  string `yaml:"port"`
}

func (r *ReadyProbe) decodeNode(d *decoder, n *yaml.Node, path string) error {
	return d.decodeShort(n, path, r, &r.Probe)
}

// MarshalYAML writes the short form when only the probe is set.
func (r ReadyProbe) MarshalYAML() (any, error) {
	if r.Path == "" && r.Port == "" {
		return r.Probe, nil
	}
	return map[string]any{"probe": r.Probe, "path": r.Path, "port": r.Port}, nil
}

// spec returns the targets.ProcessSpec the role's settings describe.
func (p ProcessConfig) spec() *targets.ProcessSpec {
	peers := targets.Peering(p.Peers)
	if peers == "" {
		peers = targets.PeersNone
	}
	return &targets.ProcessSpec{
		Command: p.Command, Env: p.Env, Dir: p.Dir,
		StopSignal: p.StopSignal, StopGrace: p.StopGrace.D(),
		Ready: targets.Probe{Kind: p.Ready.Probe, Path: p.Ready.Path, Port: p.Ready.Port},
		Peers: peers, OnePort: p.PeerPort == "client",
	}
}

// defaultProcessNodes is a process role's node count when it sets none.
const defaultProcessNodes = 3

// resolveProcess builds the system of a process target from its roles
// (in file order) and its client adapter, checking every role's command
// and finding its binary; other systems' roles may not set process keys.
func (s *Scenario) resolveProcess() error {
	if s.System != targets.ProcessSystem {
		for _, name := range s.roleOrder() {
			if s.Roles[name].ProcessConfig.given() {
				return s.errAt("roles."+name, "command, env, dir, stop_signal, stop_grace, ready and peers belong to process targets (system: process); system %s starts its own nodes", s.System)
			}
		}
		return nil
	}
	names := s.roleOrder()
	if len(names) == 0 {
		return s.errNear("roles", "system", "a process target (system: process) needs its roles, each with the command that starts a node, e.g. roles: {member: {nodes: 3, command: [etcd, \"--name={{.ID}}\", ...], ready: adapter}}")
	}
	if s.Client.Adapter == "" {
		return s.errNear("client", "system", "a process target needs the client adapter that speaks its protocol (known: %s), e.g. client: etcd", strings.Join(adapterNames(), ", "))
	}
	a, err := targets.LookupAdapter(s.Client.Adapter)
	if err != nil {
		return s.errAt("client", "%v", err)
	}
	if s.Nodes != 0 && len(names) > 1 {
		return s.errAt("nodes", "a process target with roles %s sets each role's count under roles", strings.Join(names, ", "))
	}
	var roles []targets.ProcessRole
	for _, name := range names {
		rc := s.Roles[name]
		p := "roles." + name
		spec := rc.ProcessConfig.spec()
		if pp := rc.PeerPort; pp != "" && pp != "client" {
			return s.errAt(p+".peer_port", "%q: write client (the node serves its peers on its client port), or leave it out (a port of its own)", pp)
		}
		if err := spec.Check(); err != nil {
			return s.fieldErr(p, err)
		}
		if err := spec.Resolve(); err != nil && !s.judging {
			return s.fieldErr(p, err)
		}
		if spec.Ready.Kind == targets.ProbeAdapter {
			if a.Ping == nil {
				return s.errAt(p+".ready", "client adapter %s has no ping of its own: use tcp or {probe: http, path: ...}", a.Name)
			}
			opts := s.Client.Options
			spec.Ping = func(ctx context.Context, addr string) error { return a.Ping(ctx, addr, opts) }
		}
		n := rc.Nodes
		if n == 0 && len(names) == 1 {
			n = s.Nodes
		}
		if n == 0 {
			n = defaultProcessNodes
		}
		roles = append(roles, targets.ProcessRole{Name: name, Nodes: n, Spec: spec})
	}
	s.sys = targets.NewProcessSystem(roles, a, s.Client.Options)
	s.procs = map[string]*targets.ProcessSpec{}
	for _, r := range roles {
		s.procs[r.Name] = r.Spec
	}
	return nil
}

// roleOrder returns the names under roles: in the order of the file (the
// map's order, sorted, when the scenario was built in code).
func (s *Scenario) roleOrder() []string {
	var out []string
	if n, ok := s.pos["roles"]; ok && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if _, ok := s.Roles[n.Content[i].Value]; ok {
				out = append(out, n.Content[i].Value)
			}
		}
		if len(out) == len(s.Roles) {
			return out
		}
	}
	return slices.Sorted(maps.Keys(s.Roles))
}

// errNear is errAt for a field the file lacks, positioned at the field
// near (which it has) when path has no position of its own.
func (s *Scenario) errNear(path, near, format string, args ...any) error {
	err := s.errAt(path, format, args...)
	if fe, ok := err.(*FieldError); ok && fe.Line == 0 {
		if n, ok := s.pos[near]; ok && n != nil {
			fe.Line, fe.Col = n.Line, n.Column
		}
	}
	return err
}
