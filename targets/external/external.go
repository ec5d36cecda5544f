// Package external is the runtime of a cluster someone else runs: staging,
// Kubernetes, a laptop. It starts nothing. Its nodes are the addresses a
// scenario lists; faultline's clients reach each node through a proxy of
// the run's embedded Toxiproxy (through ClusterSpec.Links), so faults on
// client links work on any cluster. Faults that need more (kills, pauses,
// peer partitions) are the scenario's hooks: shell commands run with
// `sh -c`, templated with the node's id, role and addresses, bounded by a
// timeout, their exit status and output appended to nodes/hooks.log and
// noted with the fault (targets.Note). A runtime without a hook for a
// fault refuses the fault at validation (CapabilitiesOf).
package external

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/faultline/faultline/targets"
)

func init() {
	targets.RegisterRuntime(targets.ExternalRuntime, func() targets.Runtime { return &Runtime{} })
}

// Runtime is the external runtime. It holds nothing; safe for concurrent
// use.
type Runtime struct{}

var (
	_ targets.Runtime          = (*Runtime)(nil)
	_ targets.SpecCapabilities = (*Runtime)(nil)
)

// Name returns "external" (targets.ExternalRuntime).
func (*Runtime) Name() string { return targets.ExternalRuntime }

// Capabilities of an external cluster without hooks: a proxy on every
// client link, nothing else.
func (*Runtime) Capabilities() targets.Capabilities {
	return targets.Capabilities{Links: targets.ClientLinks, Hooks: true}
}

// CapabilitiesOf adds what spec's hooks give: process control with kill
// and start hooks, pause with pause and resume hooks, peer partitions
// with partition and heal hooks.
func (r *Runtime) CapabilitiesOf(spec targets.ClusterSpec) targets.Capabilities {
	c := r.Capabilities()
	if spec.External == nil {
		return c
	}
	h := spec.External.Hooks
	c.Process = h.Kill.Run != "" && h.Start.Run != ""
	c.Pause = h.Pause.Run != "" && h.Resume.Run != ""
	c.Partition = h.Partition.Run != "" && h.Heal.Run != ""
	return c
}

// Start checks spec, maps the client links (spec.Links: one proxy per
// node) and returns the cluster; it starts no process. Hooks run later,
// when faults ask.
func (r *Runtime) Start(ctx context.Context, spec targets.ClusterSpec) (targets.Cluster, error) {
	if spec.External == nil || len(spec.External.Nodes) == 0 {
		return nil, errors.New("external runtime: the scenario lists no nodes (cluster.nodes: id, role, client address)")
	}
	if err := spec.Check(); err != nil {
		return nil, fmt.Errorf("external runtime: %w", err)
	}
	if len(spec.Nodes) != len(spec.External.Nodes) {
		return nil, fmt.Errorf("external runtime: ClusterSpec.Nodes lists %d nodes and External.Nodes %d: give the same nodes in the same order", len(spec.Nodes), len(spec.External.Nodes))
	}
	dir, err := filepath.Abs(spec.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		return nil, &targets.InfraError{Err: err}
	}
	logf := targets.RuntimeOptions{}.LogFor(spec)
	addrs := make([]targets.NodeAddrs, len(spec.External.Nodes))
	for i, n := range spec.External.Nodes {
		addrs[i] = targets.NodeAddrs{ID: n.ID, Client: n.Client, Admin: n.Admin}
	}
	clients := map[string]string{}
	for _, a := range addrs {
		clients[a.ID] = a.Client
	}
	if spec.Links != nil {
		_, mapped, err := spec.Links.MapLinks(ctx, addrs)
		if err != nil {
			return nil, &targets.InfraError{Err: fmt.Errorf("external runtime: put proxies on the client links: %w", err)}
		}
		for id, a := range mapped {
			clients[id] = a
		}
	}
	c := &Cluster{spec: *spec.External, hooksLog: filepath.Join(dir, "nodes", "hooks.log"), logf: logf}
	for i, n := range spec.External.Nodes {
		role := n.Role
		if role == "" {
			role = spec.Nodes[i].Role
		}
		c.nodes = append(c.nodes, targets.NodeInfo{NodeAddrs: addrs[i], Role: role, ClientVia: clients[n.ID]})
		logf("external: node %s (%s) at %s, clients through %s", n.ID, role, n.Client, clients[n.ID])
	}
	return c, nil
}

// Cluster is an external cluster: the listed nodes, and the hooks. Its
// methods are safe for concurrent use.
type Cluster struct {
	spec     targets.ExternalSpec
	nodes    []targets.NodeInfo
	hooksLog string
	logf     func(string, ...any)

	logMu sync.Mutex // serialises appends to hooks.log
}

var (
	_ targets.Cluster        = (*Cluster)(nil)
	_ targets.ProcessControl = (*Cluster)(nil)
	_ targets.Pauser         = (*Cluster)(nil)
	_ targets.Partitioner    = (*Cluster)(nil)
	_ targets.Preflighter    = (*Cluster)(nil)
)

// Nodes returns the listed nodes; ClientVia is the client link's proxy.
func (c *Cluster) Nodes() []targets.NodeInfo { return append([]targets.NodeInfo(nil), c.nodes...) }

// Close does nothing to the cluster (it is not faultline's); it is safe
// to call more than once.
func (c *Cluster) Close() error { return nil }

// HooksLog returns the file every hook's command, exit status and output
// are appended to.
func (c *Cluster) HooksLog() string { return c.hooksLog }

func (c *Cluster) node(id string) (targets.NodeInfo, error) {
	for _, n := range c.nodes {
		if n.ID == id {
			return n, nil
		}
	}
	return targets.NodeInfo{}, fmt.Errorf("external runtime: no node %q", id)
}

// Kill runs the kill hook for node id.
func (c *Cluster) Kill(ctx context.Context, id string) error {
	return c.nodeHook(ctx, "kill", c.spec.Hooks.Kill, id)
}

// Stop runs the stop hook for node id (the kill hook when there is none).
func (c *Cluster) Stop(ctx context.Context, id string) error {
	if c.spec.Hooks.Stop.Run == "" {
		return c.nodeHook(ctx, "kill", c.spec.Hooks.Kill, id)
	}
	return c.nodeHook(ctx, "stop", c.spec.Hooks.Stop, id)
}

// Start runs the start hook for node id; the hook returns once the node
// serves (or the hook's own wait gives up).
func (c *Cluster) Start(ctx context.Context, id string) error {
	return c.nodeHook(ctx, "start", c.spec.Hooks.Start, id)
}

// Pause runs the pause hook for node id.
func (c *Cluster) Pause(ctx context.Context, id string) error {
	return c.nodeHook(ctx, "pause", c.spec.Hooks.Pause, id)
}

// Resume runs the resume hook for node id.
func (c *Cluster) Resume(ctx context.Context, id string) error {
	return c.nodeHook(ctx, "resume", c.spec.Hooks.Resume, id)
}

// Partition runs the partition hook with the groups.
func (c *Cluster) Partition(ctx context.Context, groups [][]string) error {
	if c.spec.Hooks.Partition.Run == "" {
		return fmt.Errorf("external runtime: no partition hook: %w", targets.ErrUnsupported)
	}
	v := c.vars(targets.NodeInfo{})
	v.Groups = groups
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, ",")
	}
	v.GroupsText = strings.Join(parts, " ")
	_, err := c.run(ctx, "partition", c.spec.Hooks.Partition.Run, v, false)
	return err
}

// HealPartitions runs the heal hook; without one it does nothing.
func (c *Cluster) HealPartitions(ctx context.Context) error {
	if c.spec.Hooks.Heal.Run == "" {
		return nil
	}
	_, err := c.run(ctx, "heal", c.spec.Hooks.Heal.Run, c.vars(targets.NodeInfo{}), false)
	return err
}

// Preflight runs every hook's check form (Check, or Run with
// FAULTLINE_DRY_RUN=1), for every node where the hook acts on one, and
// returns the first failure, naming the hook and the node.
func (c *Cluster) Preflight(ctx context.Context) error {
	for _, h := range c.spec.Hooks.All() {
		switch {
		case h.Hook.Run == "":
		case h.PerNode:
			for _, n := range c.nodes {
				if err := c.check(ctx, h.Name, h.Hook, c.vars(n)); err != nil {
					return err
				}
			}
		default:
			v := c.vars(targets.NodeInfo{})
			v.Groups = [][]string{{c.nodes[0].ID}}
			v.GroupsText = c.nodes[0].ID
			if err := c.check(ctx, h.Name, h.Hook, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Cluster) check(ctx context.Context, name string, h targets.Hook, v targets.HookVars) error {
	cmd, dry := h.Check, false
	if cmd == "" {
		cmd, dry = h.Run, true
	}
	_, err := c.run(ctx, name+" (check)", cmd, v, dry)
	return err
}

func (c *Cluster) nodeHook(ctx context.Context, name string, h targets.Hook, id string) error {
	if h.Run == "" {
		return fmt.Errorf("external runtime: no %s hook: %w", name, targets.ErrUnsupported)
	}
	n, err := c.node(id)
	if err != nil {
		return err
	}
	_, err = c.run(ctx, name, h.Run, c.vars(n), false)
	return err
}

func (c *Cluster) vars(n targets.NodeInfo) targets.HookVars {
	return targets.HookVars{ID: n.ID, Role: n.Role, Client: n.Client, Admin: n.Admin, Nodes: c.spec.Nodes}
}

// HookResult is what a hook did, noted with the fault (targets.Note
// "hooks") and appended to hooks.log.
type HookResult struct {
	Hook     string  `json:"hook"`
	Node     string  `json:"node,omitempty"`
	Exit     int     `json:"exit"`
	Seconds  float64 `json:"seconds"`
	Output   string  `json:"output,omitempty"` // its last 400 bytes
	TimedOut bool    `json:"timed_out,omitempty"`
}

// MaxOutput is how much of a hook's output is kept with the fault.
const maxOutput = 400

// run renders text with v and runs it with sh -c, bounded by the hooks'
// timeout and by ctx; dry sets FAULTLINE_DRY_RUN=1. It appends the
// command, exit status and output to hooks.log, notes the result on ctx,
// and returns an error naming the hook (and node) when it does not exit 0.
func (c *Cluster) run(ctx context.Context, name, text string, v targets.HookVars, dry bool) (HookResult, error) {
	res := HookResult{Hook: name, Node: v.ID}
	where := "hook " + name
	if v.ID != "" {
		where += " for node " + v.ID
	}
	t, err := Parse(name, text)
	if err != nil {
		return res, fmt.Errorf("external runtime: %s: %w", where, err)
	}
	var cmdText bytes.Buffer
	if err := t.Execute(&cmdText, v); err != nil {
		return res, fmt.Errorf("external runtime: %s: template: %w", where, err)
	}
	timeout := c.spec.Hooks.Timeout
	if timeout <= 0 {
		timeout = targets.DefaultHookTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, "/bin/sh", "-c", cmdText.String())
	cmd.Env = append(os.Environ(), "FAULTLINE_HOOK="+name, "FAULTLINE_NODE="+v.ID, "FAULTLINE_ROLE="+v.Role, "FAULTLINE_CLIENT="+v.Client, "FAULTLINE_GROUPS="+v.GroupsText)
	if dry {
		cmd.Env = append(cmd.Env, "FAULTLINE_DRY_RUN=1")
	}
	// Its own process group, killed whole when the timeout passes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err = cmd.Run()
	res.Seconds = time.Since(t0).Seconds()
	res.Output = tail(out.String(), maxOutput)
	res.TimedOut = hctx.Err() == context.DeadlineExceeded
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
	default:
		res.Exit = -1
	}
	c.appendLog(name, v.ID, cmdText.String(), res, out.String(), err)
	targets.Note(ctx, "hooks", res)
	if err != nil {
		why := fmt.Sprintf("exit status %d", res.Exit)
		if res.TimedOut {
			why = fmt.Sprintf("timed out after %s", timeout)
		} else if res.Exit == -1 {
			why = err.Error()
		}
		msg := fmt.Sprintf("external runtime: %s failed (%s)", where, why)
		if o := strings.TrimSpace(res.Output); o != "" {
			msg += ": " + o
		}
		return res, errors.New(msg + " (see " + c.hooksLog + ")")
	}
	c.logf("external: hook %s%s done in %.1fs", name, onNode(v.ID), res.Seconds)
	return res, nil
}

func onNode(id string) string {
	if id == "" {
		return ""
	}
	return " for node " + id
}

func (c *Cluster) appendLog(name, id, cmd string, res HookResult, out string, err error) {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	f, ferr := os.OpenFile(c.hooksLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	status := fmt.Sprintf("exit %d", res.Exit)
	if res.TimedOut {
		status += " (timed out)"
	} else if err != nil && res.Exit == -1 {
		status = err.Error()
	}
	fmt.Fprintf(f, "=== %s hook %s%s: %s\n%s", time.Now().UTC().Format(time.RFC3339Nano), name, onNode(id), cmd, out)
	if out != "" && !strings.HasSuffix(out, "\n") {
		fmt.Fprintln(f)
	}
	fmt.Fprintf(f, "=== %s after %.2fs\n", status, res.Seconds)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Parse parses a hook's template (missing fields are errors); scenarios
// call it at validation.
func Parse(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Parse(text)
}
