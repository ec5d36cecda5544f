//go:build !unix

package local

import (
	"context"
	"errors"
	"time"

	"github.com/faultline/faultline/targets"
)

// Capabilities is empty: no cluster can be started here.
func (r *Runtime) Capabilities() targets.Capabilities { return targets.Capabilities{} }

// Start fails: the local runtime needs process groups and POSIX signals.
func (r *Runtime) Start(ctx context.Context, spec targets.ClusterSpec) (targets.Cluster, error) {
	return nil, &targets.InfraError{Err: errors.New("local runtime: needs a Unix system (process groups and signals): use --runtime docker or external")}
}

// KillAll does nothing: no node can have been started.
func KillAll(timeout time.Duration) int { return 0 }
