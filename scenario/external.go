package scenario

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// ClusterConfig is an external cluster (runtime external): the nodes
// someone else runs and the hooks that give the faults faultline cannot
// inject from outside.
type ClusterConfig struct {
	Nodes []ExternalNodeConfig `yaml:"nodes"`
	Hooks HooksConfig          `yaml:"hooks"`
}

// ExternalNodeConfig is one node of an external cluster. Addresses may
// hold ${VAR} (an environment variable), and --node ID=ADDR overrides
// client.
type ExternalNodeConfig struct {
	ID     string `yaml:"id"`
	Role   string `yaml:"role"`   // default "node"
	Client string `yaml:"client"` // host:port the client adapter dials
	Admin  string `yaml:"admin"`  // host:port of faultline's admin API, if the node serves it
}

// HooksConfig are the shell commands of an external cluster's faults
// (see targets.Hooks). Each is a command, or {run: CMD, check: CMD}.
type HooksConfig struct {
	Kill      HookConfig `yaml:"kill"`
	Start     HookConfig `yaml:"start"`
	Stop      HookConfig `yaml:"stop"`
	Pause     HookConfig `yaml:"pause"`
	Resume    HookConfig `yaml:"resume"`
	Partition HookConfig `yaml:"partition"`
	Heal      HookConfig `yaml:"heal"`
	Timeout   Duration   `yaml:"timeout"`
}

// HookConfig is one hook: `kill: CMD` or `kill: {run: CMD, check: CMD}`.
type HookConfig struct {
	Run   string `yaml:"run"`
	Check string `yaml:"check"`
}

func (h *HookConfig) decodeNode(d *decoder, n *yaml.Node, path string) error {
	return d.decodeShort(n, path, h, &h.Run)
}

// MarshalYAML writes the short form when there is no check.
func (h HookConfig) MarshalYAML() (any, error) {
	if h.Check == "" {
		return h.Run, nil
	}
	return map[string]string{"run": h.Run, "check": h.Check}, nil
}

// External reports whether the scenario tests a cluster someone else runs.
func (s *Scenario) External() bool { return s.Runtime == targets.ExternalRuntime }

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in an address; an unset variable is an error.
func expand(v string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(v, func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		val, ok := os.LookupEnv(name)
		if !ok || val == "" {
			missing = append(missing, name)
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// resolveExternal builds the nodes and the system of an external cluster:
// ids and roles from cluster.nodes, addresses expanded (and overridden by
// --node), the hooks' templates checked, the system built from the roles
// and the client adapter. For other runtimes a cluster section is an error.
func (s *Scenario) resolveExternal() error {
	if !s.External() {
		if s.Cluster != nil {
			return s.errAt("cluster", "cluster lists the nodes of a cluster someone else runs: it needs runtime: external")
		}
		return nil
	}
	if s.System != targets.ExternalSystem {
		return s.errAt("system", "runtime external tests the cluster listed under cluster: leave system out (or write system: external); system %s is started by faultline", s.System)
	}
	if s.Cluster == nil || len(s.Cluster.Nodes) == 0 {
		return s.errNear("cluster.nodes", "runtime", "runtime external needs the nodes: cluster: {nodes: [{id: n1, client: \"${NODE_1}\"}, ...]}")
	}
	if len(s.Cluster.Nodes) > targets.MaxNodes {
		return s.errAt("cluster.nodes", "%d nodes: at most %d", len(s.Cluster.Nodes), targets.MaxNodes)
	}
	if s.Client.Adapter == "" {
		return s.errNear("client", "runtime", "runtime external needs the client adapter that speaks the cluster's protocol (known: %s)", strings.Join(adapterNames(), ", "))
	}
	a, err := targets.LookupAdapter(s.Client.Adapter)
	if err != nil {
		return s.errAt("client", "%v", err)
	}
	seen := map[string]bool{}
	s.extNodes = nil
	s.nodes = nil
	for i, n := range s.Cluster.Nodes {
		p := fmt.Sprintf("cluster.nodes[%d]", i)
		spec := targets.ClusterSpec{System: "x", Dir: "x", Nodes: []targets.NodeSpec{{ID: n.ID}}}
		if err := spec.Check(); err != nil {
			return s.errAt(p+".id", "%v", err)
		}
		if seen[n.ID] {
			return s.errAt(p+".id", "node %s is listed twice", n.ID)
		}
		seen[n.ID] = true
		role := n.Role
		if role == "" {
			role = "node"
		}
		client := n.Client
		if o, ok := s.nodeAddrs[n.ID]; ok {
			client = o
		}
		if client, err = expand(client); err != nil && !s.judging {
			return s.errAt(p+".client", "%v: export it as host:port, or pass --node %s=host:port", err, n.ID)
		}
		admin, err := expand(n.Admin)
		if err != nil && !s.judging {
			return s.errAt(p+".admin", "%v", err)
		}
		if err := checkHostPort(client); err != nil && !s.judging {
			return s.errAt(p+".client", "node %s: %v", n.ID, err)
		}
		if admin != "" && !s.judging {
			if err := checkHostPort(admin); err != nil {
				return s.errAt(p+".admin", "node %s: %v", n.ID, err)
			}
		}
		s.extNodes = append(s.extNodes, targets.ExternalNode{ID: n.ID, Role: role, Client: client, Admin: admin})
		s.nodes = append(s.nodes, targets.NodeSpec{ID: n.ID, Role: role})
	}
	for id := range s.nodeAddrs {
		if !seen[id] {
			return fmt.Errorf("--node %s: the scenario lists no node %s", id, id)
		}
	}
	hooks := s.hooks()
	for _, h := range hooks.All() {
		for _, form := range []struct{ key, text string }{{"", h.Hook.Run}, {".check", h.Hook.Check}} {
			if form.text == "" {
				continue
			}
			if err := targets.CheckHookTemplate(h.Name, form.text); err != nil {
				p := "cluster.hooks." + h.Name
				if _, ok := s.pos[p+".run"]; ok && form.key == "" {
					p += ".run"
				}
				return s.errAt(p+form.key, "%v", err)
			}
		}
	}
	switch {
	case (hooks.Kill.Run == "") != (hooks.Start.Run == ""):
		return s.errAt("cluster.hooks", "kill and start go together: a node a fault kills must be started again")
	case (hooks.Pause.Run == "") != (hooks.Resume.Run == ""):
		return s.errAt("cluster.hooks", "pause and resume go together")
	case hooks.Partition.Run != "" && hooks.Heal.Run == "":
		return s.errAt("cluster.hooks.partition", "a partition hook needs a heal hook that restores every link")
	case s.Cluster.Hooks.Timeout < 0 || s.Cluster.Hooks.Timeout.D() > time.Hour:
		return s.errAt("cluster.hooks.timeout", "%s: use 0 (the default, %s) up to 1h", s.Cluster.Hooks.Timeout, targets.DefaultHookTimeout)
	}
	s.sys = targets.NewExternalSystem(s.extNodes, a, s.Client.Options)
	return nil
}

// hooks returns the scenario's hooks as the runtime takes them.
func (s *Scenario) hooks() targets.Hooks {
	if s.Cluster == nil {
		return targets.Hooks{}
	}
	h := s.Cluster.Hooks
	conv := func(c HookConfig) targets.Hook { return targets.Hook{Run: c.Run, Check: c.Check} }
	return targets.Hooks{Kill: conv(h.Kill), Start: conv(h.Start), Stop: conv(h.Stop), Pause: conv(h.Pause),
		Resume: conv(h.Resume), Partition: conv(h.Partition), Heal: conv(h.Heal), Timeout: h.Timeout.D()}
}

// externalSpec is what ClusterSpec.External gets (nil unless external).
func (s *Scenario) externalSpec() *targets.ExternalSpec {
	if !s.External() {
		return nil
	}
	return &targets.ExternalSpec{Nodes: s.extNodes, Hooks: s.hooks()}
}

// capabilities are what the target can do: the runtime's, or, for a
// runtime whose clusters depend on the spec (external: on its hooks),
// what this scenario's spec gives.
func (s *Scenario) capabilities() targets.Capabilities {
	if sc, ok := s.rt.(targets.SpecCapabilities); ok {
		return sc.CapabilitiesOf(targets.ClusterSpec{Nodes: s.nodes, External: s.externalSpec()})
	}
	return s.rt.Capabilities()
}

func checkHostPort(a string) error {
	if a == "" {
		return fmt.Errorf("no address: give host:port")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%q is not host:port", a)
	}
	return nil
}

// preflight reaches every node through the adapter's ping (on its own
// address), then runs the hooks' check forms; the error names the node or
// the hook.
func (s *Scenario) preflight(ctx context.Context, c targets.Cluster) error {
	if s.adapter.Ping != nil {
		for _, n := range c.Nodes() {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := s.adapter.Ping(pctx, n.Client, s.Client.Options)
			cancel()
			if err != nil {
				return fmt.Errorf("preflight: node %s at %s does not answer the %s adapter's ping: %w", n.ID, n.Client, s.adapter.Name, err)
			}
		}
	}
	if p, ok := c.(targets.Preflighter); ok {
		if err := p.Preflight(ctx); err != nil {
			return fmt.Errorf("preflight: %w", err)
		}
	}
	return nil
}

// newClient is the adapter's client for cfg, sending every key with the
// run's key prefix; or, for a workload that builds its own clients (http),
// the workload's client for cfg.
func (s *Scenario) newClient(cfg targets.ClientConfig) (targets.Client, error) {
	if s.ownClient() {
		return s.workloadClient(cfg)
	}
	c, err := s.adapter.New(cfg)
	if err != nil {
		return nil, err
	}
	return targets.PrefixKeys(c, s.KeyPrefix), nil
}

// cleanup deletes the workload's keys (a put of null, which the etcd and
// redis adapters send as a delete) through c, which carries the run's key
// prefix; nothing else is touched. It is not recorded in the history: the
// run is judged already.
func (s *Scenario) cleanup(ctx context.Context, c targets.Client, gen any, opt RunOptions) {
	k, ok := gen.(interface{ Keys() []string })
	if !ok || !s.adapter.Supports("put") {
		opt.logf("cleanup: the %s workload names no keys, or the adapter cannot write: nothing deleted", s.Workload.Type)
		return
	}
	failed := 0
	for _, key := range k.Keys() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out := c.Do(cctx, history.Op{F: "put", Key: key, Value: history.Null})
		cancel()
		if out.Type != history.OK {
			failed++
			opt.logf("cleanup: %s%s: %s", s.KeyPrefix, key, out.Error)
		}
	}
	opt.logf("cleanup: %d of %d keys under %q deleted", len(k.Keys())-failed, len(k.Keys()), s.KeyPrefix)
}
