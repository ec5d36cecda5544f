package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// cost is what one child process cost, as the kernel accounted it when it
// was reaped (wait4's rusage): its own CPU and peak memory, not those of
// the parent or of any other process.
type cost struct {
	Wall   time.Duration // from start to exit, as the parent saw it
	CPU    time.Duration // user + system time of the child
	MaxRSS int64         // peak resident set, bytes
	Exit   int           // exit code
}

// child is one measured child process. Start it with start, or run it to
// the end with run.
type child struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	t0     time.Time
}

// newChild prepares name with args; env is added to this process's
// environment.
func newChild(ctx context.Context, name string, args []string, env ...string) *child {
	c := &child{cmd: exec.CommandContext(ctx, name, args...)}
	c.cmd.Stdout = &c.stdout
	c.cmd.Stderr = &c.stderr
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.WaitDelay = 5 * time.Second
	return c
}

func (c *child) start() error {
	c.t0 = time.Now()
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", c.describe(), err)
	}
	return nil
}

// wait reaps the child and returns its cost. A non-zero exit code is an
// error unless it is in okExits; the error quotes the end of its stderr.
func (c *child) wait(okExits ...int) (cost, error) {
	err := c.cmd.Wait()
	k := cost{Wall: time.Since(c.t0), Exit: c.cmd.ProcessState.ExitCode()}
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		k.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		k.MaxRSS = ru.Maxrss * 1024 // kilobytes on Linux
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return k, fmt.Errorf("%s: %w", c.describe(), err)
	}
	if k.Exit != 0 {
		for _, ok := range okExits {
			if k.Exit == ok {
				return k, nil
			}
		}
		return k, fmt.Errorf("%s exited %d: %s", c.describe(), k.Exit, tail(c.stderr.String(), 800))
	}
	return k, nil
}

// run starts the child, waits for it and decodes its stdout into out (if
// out is not nil), which must then be one JSON object.
func (c *child) run(out any, okExits ...int) (cost, error) {
	if err := c.start(); err != nil {
		return cost{}, err
	}
	k, err := c.wait(okExits...)
	if err != nil {
		return k, err
	}
	if out != nil {
		if err := json.Unmarshal(c.stdout.Bytes(), out); err != nil {
			return k, fmt.Errorf("%s printed %q, not the JSON object it should: %v", c.describe(), tail(c.stdout.String(), 300), err)
		}
	}
	return k, nil
}

func (c *child) describe() string {
	return strings.Join(c.cmd.Args, " ")
}

// tail returns the last n bytes of s, trimmed.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// printJSON writes v to stdout as the one JSON object a child reports.
func printJSON(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}
