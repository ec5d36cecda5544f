// Package local is the embedded default runtime: every node is a child
// process of a faultline binary (`faultline node ...`), listening on
// 127.0.0.1 ports. No Docker is needed.
//
// Each node runs in its own process group, so process faults act on the
// whole group: kill is SIGKILL, a graceful stop is SIGTERM (then SIGKILL
// after a grace period), pause is SIGSTOP and resume is SIGCONT. A node's
// standard output and error are appended to DIR/nodes/ID.log across
// restarts (a line marks every start and every exit), and its data lives in
// DIR/data/ID, which survives kills and restarts.
//
// Nothing is left running. Cluster.Close terminates every node. If the
// faultline process dies hard (SIGKILL, a crash), Linux delivers SIGKILL to
// every node through the parent-death signal (see Runtime.Start). KillAll is
// a last resort for a signal handler.
package local

import (
	"fmt"

	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/targets"
)

// Options configure a Runtime: see targets.RuntimeOptions. The zero value
// is ready to use; zero fields get targets.DefaultRuntimeOptions.
type Options = targets.RuntimeOptions

func withDefaults(o Options) Options { return o.WithDefaults(targets.DefaultRuntimeOptions()) }

// Runtime starts clusters of local processes. It holds no resources of its
// own; it is safe for concurrent use and may start any number of clusters.
type Runtime struct {
	opts Options
}

var _ targets.Runtime = (*Runtime)(nil)

func init() {
	targets.RegisterRuntime("local", func() targets.Runtime { return New(Options{}) })
}

// New returns a local Runtime.
func New(opts Options) *Runtime {
	return &Runtime{opts: withDefaults(opts)}
}

// Name returns "local".
func (r *Runtime) Name() string { return "local" }

// allocPorts is freeport.Take; tests replace it to provoke bind failures.
var allocPorts = freeport.Take

// validateSpec checks the parts of a ClusterSpec this runtime relies on
// (see targets.ClusterSpec.Check).
func validateSpec(spec targets.ClusterSpec) error {
	if err := spec.Check(); err != nil {
		return fmt.Errorf("local runtime: %w", err)
	}
	return nil
}
