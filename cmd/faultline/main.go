// Command faultline is a chaos-testing and load-generation tool: it starts a
// cluster, drives a workload at it, injects faults, records a history and
// checks it. See the README for the commands and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
)

func main() {
	os.Exit(exitcode.Of(run(), exitcode.Internal))
}

// run builds the command tree and executes it with a context that the first
// SIGINT/SIGTERM cancels (the run stops cleanly) and a second one ends at
// once after killing every child process.
func run() (err error) {
	// A panic is an internal error (exit 70); Go's own exit status for a
	// panic, 2, would read as the verdict "unknown".
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(&reports.TerminalWriter{W: os.Stderr}, "faultline: internal error: %v\n%s", p, debug.Stack())
			killChildren()
			err = &exitcode.Error{Code: exitcode.Internal}
		}
	}()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\nfaultline: %v: stopping the run and everything it started (again to force)\n", sig)
		cancel(fmt.Errorf("received %v", sig))
		sig = <-sigs
		fmt.Fprintf(os.Stderr, "faultline: %v again: killing every child process now\n", sig)
		killChildren()
		os.Exit(130)
	}()
	root := newRootCmd()
	// What reaches the terminal is escaped: names and keys come from files.
	stderr := &reports.TerminalWriter{W: os.Stderr}
	root.SetOut(&reports.TerminalWriter{W: os.Stdout})
	root.SetErr(stderr)
	err = root.ExecuteContext(ctx)
	if err != nil {
		var ec *exitcode.Error
		if !errors.As(err, &ec) || ec.Err != nil {
			fmt.Fprintln(stderr, "faultline:", err)
		}
		if !errors.As(err, &ec) {
			// cobra's own errors (unknown flag, wrong args) are usage errors.
			return exitcode.New(exitcode.Usage, err)
		}
	}
	return err
}
