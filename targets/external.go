package targets

import (
	"context"
	"fmt"
	"io"
	"text/template"
	"time"
)

// ExternalSystem is the system name of a cluster someone else runs
// (runtime ExternalRuntime): faultline starts nothing, and speaks to the
// nodes through the scenario's client adapter.
const ExternalSystem = "external"

// ExternalRuntime is the name of the runtime of clusters someone else runs
// (targets/external registers it); ClusterSpec.External is its input.
const ExternalRuntime = "external"

// ExternalNode is one node of a cluster someone else runs, as a scenario
// lists it: its id and role, and the addresses faultline dials.
type ExternalNode struct {
	ID     string
	Role   string
	Client string // host:port of its client API (the adapter's protocol)
	Admin  string // host:port of faultline's admin API, if it serves one; "" otherwise
}

// Hook is a shell command (sh -c) the external runtime runs for a fault
// it cannot perform itself. Run and Check are text/template texts over
// HookVars. Check, if set, is the hook's harmless form, run by the
// preflight; without it the preflight runs Run with FAULTLINE_DRY_RUN=1
// in the environment, and the command must then do nothing but check.
type Hook struct {
	Run   string
	Check string
}

// Hooks are the commands that give an external cluster the faults
// faultline cannot inject from outside. Kill and Start together give
// process control (Stop, when empty, is Kill); Pause and Resume give
// pause; Partition (and Heal) give peer partitions. Each runs with
// Timeout (DefaultHookTimeout when 0).
type Hooks struct {
	Kill, Start, Stop, Pause, Resume, Partition, Heal Hook
	Timeout                                           time.Duration
}

// NamedHook is one of Hooks with its name (kill, start, ...) and whether
// it acts on one node (kill, start, stop, pause, resume) or on the
// cluster (partition, heal).
type NamedHook struct {
	Name    string
	PerNode bool
	Hook    Hook
}

// All returns the hooks with their names, in a fixed order, those not
// given included (Run "").
func (h Hooks) All() []NamedHook {
	return []NamedHook{
		{"kill", true, h.Kill}, {"start", true, h.Start}, {"stop", true, h.Stop},
		{"pause", true, h.Pause}, {"resume", true, h.Resume},
		{"partition", false, h.Partition}, {"heal", false, h.Heal},
	}
}

// DefaultHookTimeout bounds a hook when the scenario sets no timeout.
const DefaultHookTimeout = 30 * time.Second

// HookVars are what a hook's templates see: the node it acts on (kill,
// start, stop, pause, resume) and every node; for partition, the groups of
// node ids that may still talk (Groups, and GroupsText: "n1 n2,n3": groups separated by spaces, ids in a group by commas, so that each group is one shell word).
type HookVars struct {
	ID, Role, Client, Admin string
	Nodes                   []ExternalNode
	Groups                  [][]string
	GroupsText              string
}

// ExternalSpec is what runtime external needs of a ClusterSpec: the nodes
// and the hooks.
type ExternalSpec struct {
	Nodes []ExternalNode
	Hooks Hooks
}

// Partitioner is the capability to cut a cluster's peer links by some
// means other than faultline's proxies (an external cluster's partition
// hook). Partition cuts every link between nodes of different groups;
// HealPartitions restores every link. Safe for concurrent use.
type Partitioner interface {
	Partition(ctx context.Context, groups [][]string) error
	HealPartitions(ctx context.Context) error
}

// Preflighter is implemented by clusters that can check, before the load
// starts, that what faults will need works (an external cluster's hooks in
// their check form). The error names the hook that failed.
type Preflighter interface {
	Preflight(ctx context.Context) error
}

// SpecCapabilities is implemented by runtimes whose clusters' capabilities
// depend on the spec (runtime external: on its hooks). The scenario asks
// it rather than Capabilities when the runtime implements it.
type SpecCapabilities interface {
	CapabilitiesOf(spec ClusterSpec) Capabilities
}

type noteKey struct{}

// WithNotes returns a context whose Note calls go to note: how a fault
// learns what the runtime did for it (a hook's exit status and output),
// to record it with the fault.
func WithNotes(ctx context.Context, note func(key string, value any)) context.Context {
	return context.WithValue(ctx, noteKey{}, note)
}

// Note hands key and value to the note func of ctx (WithNotes), if any.
func Note(ctx context.Context, key string, value any) {
	if f, ok := ctx.Value(noteKey{}).(func(string, any)); ok && f != nil {
		f(key, value)
	}
}

// CheckHookTemplate checks a hook's template: it must parse and execute
// over sample HookVars (an unknown field is an error naming the fields).
func CheckHookTemplate(name, text string) error {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return fmt.Errorf("template: %v", templateErr(err))
	}
	v := HookVars{ID: "n1", Role: "node", Client: "127.0.0.1:2379", Nodes: []ExternalNode{{ID: "n1", Role: "node", Client: "127.0.0.1:2379"}}, Groups: [][]string{{"n1"}}, GroupsText: "n1"}
	if err := t.Execute(io.Discard, v); err != nil {
		return fmt.Errorf("template: %v (the fields are .ID .Role .Client .Admin .Nodes (each .ID .Role .Client .Admin) .Groups .GroupsText)", templateErr(err))
	}
	return nil
}
