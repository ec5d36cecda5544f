//go:build unix && !linux

package local

import (
	"context"
	"syscall"
)

// sysProcAttr puts the node in its own process group. There is no
// parent-death signal outside Linux: if faultline dies hard, nodes keep
// running until killed (KillAll and Close cover the other exits).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitNoReap is nil: the reaper uses cmd.Wait directly, which leaves a
// short window in which a signal could reach a reused process group id.
var waitNoReap func(pid int)

// waitState does nothing outside Linux.
func waitState(ctx context.Context, pid int, stopped bool) {}
