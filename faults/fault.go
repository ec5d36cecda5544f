package faults

import (
	"context"
	"errors"
	"fmt"

	"github.com/faultline/faultline/targets"
)

// Fault is one kind of fault, as Toxiproxy's toxics are: a small type whose
// exported fields are its parameters (each with a yaml tag and a doc tag),
// registered by name in the catalog (see Register) with a constructor that
// sets its defaults. A value of the type is one fault with its parameters.
//
// Optional behaviour is an optional interface, checked by type assertion:
// Validator (parameter checks beyond those of the parameter types) and
// Resolver (seeded choices made at plan time). Parameters of type Selector
// and Mode check themselves.
//
// A Fault value is not changed by Available, Validate or Inject, so one
// value may be injected many times, also concurrently.
type Fault interface {
	// Family is the history event's f for this kind: partition, latency,
	// bandwidth, reset, kill, pause, clock or service-time.
	Family() string
	// Doc says in one line what the fault does.
	Doc() string
	// Available reports whether the fault, with these parameters, can be
	// injected where env says (system, runtime capabilities): nil if it
	// can, else an error giving the reason and what to do. It runs before
	// anything starts and must not block. Errors may be *SpecError naming
	// a parameter (Field "target"); other errors concern the whole fault.
	Available(env Env) error
	// Inject starts the fault on the targets in in and returns what undoes
	// it. On error it returns what undoes the part that took effect (or
	// nil if nothing did); the nemesis calls it at once.
	Inject(ctx context.Context, in *Injection) (Undo, error)
}

// Validator is implemented by kinds that check their parameter values (and
// the node count they need) against env.Nodes beyond what their parameter
// types check. Errors may be *SpecError with Field a parameter's yaml name;
// other errors concern the whole fault.
type Validator interface {
	Validate(env Env) error
}

// Resolver is implemented by kinds that make seeded choices at plan time
// beyond their target (the halves of a partition, a bridge, a ring).
// Resolve returns the nodes the fault acts on and its groups. A kind that
// is not a Resolver has its nodes picked by its Selector parameter (if it
// has one), and no groups.
type Resolver interface {
	Resolve(d Draw) (nodes []string, groups [][]string)
}

// Draw is what Plan gives a fault to make its seeded choices with.
type Draw struct {
	// Nodes is the cluster, in order.
	Nodes []targets.NodeSpec
	// Shuffled is a seeded permutation of the node ids, drawn once for each
	// planned fault (whatever its kind, so that one fault's choices do not
	// shift another's).
	Shuffled []string
}

// IDs returns the ids of d.Nodes, in order.
func (d Draw) IDs() []string { return nodeIDs(d.Nodes) }

// Undo ends a fault: it undoes what Inject did. It is called once.
type Undo func(ctx context.Context) error

// undoAll returns an Undo that runs us in reverse order (the last step
// done is the first undone), goes on after an error and joins the errors.
// Nil steps are skipped; with no step it returns nil.
func undoAll(us ...Undo) Undo {
	var steps []Undo
	for _, u := range us {
		if u != nil {
			steps = append(steps, u)
		}
	}
	if len(steps) == 0 {
		return nil
	}
	return func(ctx context.Context) error {
		var errs []error
		for i := len(steps) - 1; i >= 0; i-- {
			if err := steps[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// Env is where a schedule will run, as known before anything starts: what
// Validate and Available judge faults against.
type Env struct {
	// System is the system under test; nil when it is not a registered
	// system (its capability funcs are then unknown, so faults that need
	// them are unavailable).
	System *targets.System
	// Runtime names the runtime (local, docker, external), for messages.
	Runtime string
	// Caps are what the runtime's clusters can do.
	Caps targets.Capabilities
	// Nodes are the cluster's nodes (ids and roles), in order.
	Nodes []targets.NodeSpec
}

// EnvFor is the Env of sys's default cluster (each role with its default
// node count, ids as sys.NodeIDs gives them) on a runtime named runtime
// with capabilities caps: what `faultline faults --system --runtime`
// judges availability against. sys may be nil (no system, no nodes).
func EnvFor(sys *targets.System, runtime string, caps targets.Capabilities) Env {
	env := Env{System: sys, Runtime: runtime, Caps: caps}
	if sys != nil {
		counts := make(map[string]int, len(sys.Roles))
		for _, r := range sys.Roles {
			counts[r.Name] = r.Nodes
		}
		env.Nodes = sys.NodeIDs(counts)
	}
	return env
}

// where names the system and runtime for messages.
func (e Env) where() string {
	sys := "this target"
	if e.System != nil {
		sys = "system " + e.System.Name
	}
	if e.Runtime != "" {
		sys += " on runtime " + e.Runtime
	}
	return sys
}

// roles returns the distinct roles of e.Nodes, in order of first use.
func (e Env) roles() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range e.Nodes {
		if !seen[n.Role] {
			seen[n.Role] = true
			out = append(out, n.Role)
		}
	}
	return out
}

func nodeIDs(nodes []targets.NodeSpec) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

// The needs below are the capability checks kinds' Available methods are
// made of. Each returns nil when env has the capability, else the reason
// and what to do.

const seeAvailable = "`faultline faults --system NAME --runtime NAME` shows what is available where"

// needProcess: the runtime can kill, stop and start nodes.
func needProcess(env Env) error {
	if env.Caps.Process {
		return nil
	}
	if env.Caps.Hooks {
		return errors.New("faultline does not run the nodes of an external cluster: give cluster.hooks.kill and cluster.hooks.start, commands that kill a node and start it again, or remove this fault")
	}
	return fmt.Errorf("the runtime cannot kill and start nodes (no process control); use a runtime that can, such as local or docker (%s), or remove this fault", seeAvailable)
}

// needPause: the runtime can pause and resume nodes.
func needPause(env Env) error {
	if env.Caps.Pause {
		return nil
	}
	if env.Caps.Hooks {
		return errors.New("faultline does not run the nodes of an external cluster: give cluster.hooks.pause and cluster.hooks.resume, commands that freeze a node and thaw it, or remove this fault")
	}
	return fmt.Errorf("the runtime cannot pause and resume nodes; use a runtime that can, such as local or docker (%s), or remove this fault", seeAvailable)
}

// needClock: the system can shift its nodes' clocks.
func needClock(env Env) error {
	if env.System != nil && env.System.SetClock != nil {
		return nil
	}
	return errors.New("the system has no clock control (reference systems built on the node kit serve /admin/clock); remove this fault or test a system that has it")
}

// needStatus: the system can say which node leads.
func needStatus(env Env) error {
	if env.System != nil && env.System.Status != nil {
		return nil
	}
	return errors.New("the system has no status reader, so no node can be named leader; name the nodes another way (one, majority, a node id, role:NAME)")
}

// needPeerCut: the peer links can be cut into groups, by the proxies or
// by the runtime (a partition hook: Caps.Partition). A hook cuts only the
// peer links, so clients (which also cuts client links) needs proxies.
func needPeerCut(env Env, clients bool) error {
	err := needPeerLinks(env)
	if err == nil || !env.Caps.Partition {
		return err
	}
	if clients {
		return specErr("clients", "the partition hook cuts the links between nodes; clients: true also needs proxies on them: remove it, or add a client-cut fault")
	}
	return nil
}

// needPeerLinks: a proxy sits on every directed link between nodes.
func needPeerLinks(env Env) error {
	if env.Caps.Hooks && env.Caps.Links < targets.PeerLinks {
		how := "give cluster.hooks.partition and cluster.hooks.heal, commands that cut and restore the links between groups of nodes"
		if env.Caps.Partition {
			how = "the partition hook splits the nodes into groups, and this fault needs more (a toxic on each link, or one direction only)"
		}
		return fmt.Errorf("it acts on links between nodes, which faultline does not carry on an external cluster (it proxies only the client links): %s; or remove this fault (client-link faults apply: client-cut, and latency, bandwidth and reset with peers: false, clients: true)", how)
	}
	if env.Caps.Links < targets.PeerLinks {
		return fmt.Errorf("it acts on links between nodes, and the runtime proxies %s; use a runtime that proxies every peer link, such as local or docker (%s)", env.Caps.Links, seeAvailable)
	}
	switch {
	case env.System != nil && env.System.PeerLinks:
		return nil
	case env.System != nil && env.System.PeerNames && env.Caps.PeerNames:
		return nil
	case env.System != nil && env.System.PeerNames:
		return fmt.Errorf("it acts on links between nodes, and the system's nodes find their peers by host name (peers: names), the same name for every node; on runtime %s all nodes share one resolver, so no proxy can take over one directed link (cutting only a node's inbound link does not partition it: its peers' messages also travel over connections it opened). Use runtime docker, which maps every peer's name, on each node's own network, to the proxy of that link; here only faults on client links and processes apply", orUnnamed(env.Runtime))
	}
	return errors.New("it acts on links between nodes, and the system's nodes do not dial their peers at addresses a proxy can take over; only faults on client links or processes apply to it")
}

func orUnnamed(runtime string) string {
	if runtime == "" {
		return "(unnamed)"
	}
	return runtime
}

// needClientLinks: a proxy sits on every client -> node link.
func needClientLinks(env Env) error {
	if env.Caps.Links >= targets.ClientLinks {
		return nil
	}
	return fmt.Errorf("it acts on the links from clients to nodes, and the runtime proxies none; use a runtime that proxies client links (%s)", seeAvailable)
}
