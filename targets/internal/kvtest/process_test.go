//go:build unix

package kvtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProcess: a process's output goes to its log, WaitReady returns
// once ping does, and says so when the process exits first.
func TestProcess(t *testing.T) {
	dir := t.TempDir()
	p := Start(t, "sh sleeper", filepath.Join(dir, "sleeper.log"), "/bin/sh", "-c", "echo started; exec sleep 60")
	ping := func(context.Context) error {
		b, _ := os.ReadFile(p.Log)
		if !strings.Contains(string(b), "started") {
			return errors.New("not started")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx, 10*time.Millisecond, ping); err != nil {
		t.Fatal(err)
	}
	p.Pause(t)
	p.Resume(t)

	q := Start(t, "sh exiter", filepath.Join(dir, "exiter.log"), "/bin/sh", "-c", "exit 3")
	err := q.WaitReady(ctx, 10*time.Millisecond, func(context.Context) error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "never") {
		t.Errorf("WaitReady of a process that exits: %v", err)
	}
}
