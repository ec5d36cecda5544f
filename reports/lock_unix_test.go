//go:build unix

package reports

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLockRunDirWaitsForAProbe: a shared lock held for an instant (what
// ListRuns takes to see whether a run goes on) does not make a starting
// run fail; one held longer than lockRetry does, with the "in use" error.
func TestLockRunDirWaitsForAProbe(t *testing.T) {
	dir := t.TempDir()
	probe := func(hold time.Duration) {
		f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(hold, func() { f.Close() })
	}

	probe(20 * time.Millisecond)
	unlock, err := LockRunDir(dir)
	if err != nil {
		t.Fatalf("with a 20 ms probe: %v", err)
	}
	unlock()

	probe(3 * lockRetry)
	if _, err := LockRunDir(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("with the lock held for %v: %v, want in use", 3*lockRetry, err)
	}
}
