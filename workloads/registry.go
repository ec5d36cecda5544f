package workloads

import (
	"context"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/registry"
)

// Params are a workload's parameters as a scenario's `workload:` section
// gives them: a pointer to a struct with yaml tags, decoded strictly, with
// its defaults set by the workload's NewParams.
type Params interface {
	// Check checks the values; an error about one field is a
	// *fielderr.Error with the field's path inside the section.
	Check() error
	// New returns the workload for one run.
	New() (Instance, error)
}

// Instance is one run's workload: its generator, and its final step.
type Instance interface {
	Generator
	// Final runs the workload's final step after the heal and the recovery
	// window (for KV workloads, a read of every key), with c, recording
	// each operation in rec under process ids from process on. It returns
	// the next unused process id; an error says what could not be done.
	Final(ctx context.Context, c Client, rec *history.Recorder, process history.Process) (history.Process, error)
}

// Workload is a registered workload.
type Workload struct {
	Name string
	Doc  string
	// Ops are the operations it sends; the client adapter must support
	// each of them.
	Ops []string
	// Checkers are the checkers that judge it by default.
	Checkers []string
	// NewParams returns its parameters with their defaults set.
	NewParams func() Params
	// NewClient, if set, builds one worker's client from the workload's
	// own parameters (p, as NewParams made them and the scenario filled
	// and checked them): the workload speaks to the system itself (the
	// http workload sends each endpoint's request). The conductor then
	// uses it in place of the scenario's client adapter for every client
	// of the run: the adapter need not perform Ops, and the warm-up does
	// not probe the cluster through it (the runtime's readiness check is
	// all there is). It is called once per client, never concurrently; a
	// Client implementing io.Closer is closed when its user is done.
	NewClient func(p Params, env ClientEnv) (Client, error)
}

// ClientEnv is what Workload.NewClient is given to build one client: the
// nodes as the scenario's client adapter would be given them.
type ClientEnv struct {
	// Nodes maps each node id to the host:port a client dials to reach
	// it: the proxy of its client link when client links are proxied, so
	// that link faults act on the workload's requests.
	Nodes map[string]string
	// Home is the node this client sends to (its session's node).
	Home string
	// Timeout bounds one operation.
	Timeout time.Duration
	// Token, if not "", is the run's secret, which faultline's own nodes
	// require: send it only to them (Nodes), as "Authorization: Bearer
	// TOKEN", and never write it anywhere.
	Token string
}

var workloads = registry.New[*Workload]("workload")

// Register makes a workload available by name. It panics if the name is
// taken or NewParams is nil. Call it from an init function.
func Register(w Workload) {
	if w.NewParams == nil {
		panic("workloads: " + w.Name + " has no NewParams")
	}
	workloads.Add(w.Name, &w)
}

// Lookup returns the named workload.
func Lookup(name string) (*Workload, error) { return workloads.Get(name) }

// Names returns the registered workloads, sorted.
func Names() []string { return workloads.Names() }
