package local

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sysProcAttr puts the node in its own process group and asks the kernel
// to SIGKILL it when its parent (thread) dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitNoReap blocks until the process exits without reaping it, so its pid
// (and process group id) cannot be reused while the group is signalled.
var waitNoReap = func(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return // nil, or ECHILD: cmd.Wait reports it
		}
	}
}

// waitState waits, for at most a second, until the process is stopped
// (stopped = true) or no longer stopped. It is best effort: a signal is
// delivered asynchronously, and this makes Pause and Resume return after
// the fact rather than before.
func waitState(ctx context.Context, pid int, stopped bool) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st, ok := procState(pid)
		if !ok || (st == 'T') == stopped {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// procState returns the state letter of /proc/PID/stat (R, S, T, Z, ...).
func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 || i+2 >= len(s) {
		return 0, false
	}
	return s[i+2], true
}
