//go:build unix

package kvtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Process is a server process a test started (Start).
type Process struct {
	Name string // what Start was given: "etcd n1"
	Log  string // the path of its output
	cmd  *exec.Cmd

	exited chan struct{}
}

// logTail is how much of a server's log a failed test shows.
const logTail = 3000

// Start starts bin with args, its output (stdout and stderr) written to
// the file log, and stops it when the test ends: SIGCONT (it may be
// paused), then SIGKILL; if the test failed, the end of its log goes to
// the test's output. name says what it is in messages ("etcd n1").
func Start(t testing.TB, name, log, bin string, args ...string) *Process {
	t.Helper()
	logf, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{Name: name, Log: log, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			if b, err := os.ReadFile(p.Log); err == nil {
				if len(b) > logTail {
					b = b[len(b)-logTail:]
				}
				t.Logf("%s log (last %d bytes):\n%s", name, logTail, b)
			}
		}
	})
	return p
}

// WaitReady calls ping, each call bounded by a second, every interval
// until it returns nil, the process exits, or ctx ends; the error says
// which, with ping's last error.
func (p *Process) WaitReady(ctx context.Context, interval time.Duration, ping func(context.Context) error) error {
	for {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		err := ping(tctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited (%v); last ping: %v", p.cmd.ProcessState, err)
		case <-ctx.Done():
			return fmt.Errorf("%v; last ping: %v", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// Pause freezes the process (SIGSTOP) until Resume or the test's end.
func (p *Process) Pause(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", p.Name, err)
	}
	// The signal is delivered asynchronously: wait until the kernel says
	// the process is stopped (state T in /proc/PID/stat), so that nothing
	// the test sends next can still be answered.
	stat := fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // not Linux, or gone: nothing to wait for
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not stopped 5 s after SIGSTOP: %s", p.Name, b)
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume thaws the process (SIGCONT).
func (p *Process) Resume(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", p.Name, err)
	}
}
