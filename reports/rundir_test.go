package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunDirStaysInsideBase: a scenario name cannot take the run directory
// out of the runs root, nor replace a file that is not faultline's link,
// nor delete anything beside it (issue 10, item 1: `name: ../victim`).
func TestRunDirStaysInsideBase(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "t", "runs")
	victim := filepath.Join(root, "t", "victim")
	os.MkdirAll(victim, 0o755)
	os.WriteFile(filepath.Join(victim, "latest"), []byte("IMPORTANT"), 0o644)
	os.WriteFile(filepath.Join(victim, "latest.tmp"), []byte("KEEP"), 0o644)
	for _, name := range []string{"../victim", "../../../../victim", "/etc/x", "..", ".", "", "a/b", "\x1b]0;pwned\x07", "k\xff"} {
		dir, err := NewRunDir(base, name, "", time.Now())
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		rel, err := filepath.Rel(base, dir)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Count(rel, string(filepath.Separator)) != 1 {
			t.Errorf("%q: run directory %s is not base/<name>/<stamp>", name, dir)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(victim, "latest")); string(b) != "IMPORTANT" {
		t.Errorf("victim/latest was replaced")
	}
	if b, _ := os.ReadFile(filepath.Join(victim, "latest.tmp")); string(b) != "KEEP" {
		t.Errorf("victim/latest.tmp was removed")
	}
	// A regular file named latest under the runs root is left alone too.
	own := filepath.Join(base, "mine")
	os.MkdirAll(own, 0o755)
	os.WriteFile(filepath.Join(own, "latest"), []byte("mine"), 0o644)
	if _, err := NewRunDir(base, "mine", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(own, "latest")); string(b) != "mine" {
		t.Errorf("a regular file named latest was replaced")
	}
}

// TestRunDirLock: a second run on a directory in use is refused (within
// lockRetry; issue 10, item 4); the lock goes with the first run.
func TestRunDirLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockRunDir(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second lock: %v, want in use", err)
	}
	unlock()
	again, err := LockRunDir(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{"raft-basic": "raft-basic", "../victim": "victim", "a/b c": "a-b-c", "": "scenario", "...": "scenario", "\x1b[2J": "2J"} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRunDirsOfOneSecond: runs of one scenario started in the same second
// get directories of their own, even when they race.
func TestRunDirsOfOneSecond(t *testing.T) {
	base := t.TempDir()
	now := time.Now()
	dirs := make(chan string, 8)
	for range 8 {
		go func() {
			d, err := NewRunDir(base, "s", "", now)
			if err != nil {
				t.Error(err)
			}
			dirs <- d
		}()
	}
	seen := map[string]bool{}
	for range 8 {
		d := <-dirs
		if seen[d] {
			t.Errorf("two runs got %s", d)
		}
		seen[d] = true
	}
}
