package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testbin"
)

// TestCrashLosesLittleAndIsJudged: faultline killed with SIGKILL in the
// middle of a run leaves a history that ends at most a few hundred ms
// before the kill (the recorder writes within 100 ms; before, up to 256 KiB
// and about 3 s were lost), no node behind, and `faultline check` judges
// what was recorded: the run was cut short (exit 4), not valid, and not an
// unreadable file (issue 10, item 3).
func TestCrashLosesLittleAndIsJudged(t *testing.T) {
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	cmd, out := startRun(t, "examples/raft-basic.yaml", "--out", dir, "--duration", "30s")
	waitOutput(out, "main:", 90*time.Second)
	time.Sleep(3 * time.Second)
	killed := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var start time.Time
	var last int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Type  string `json:"type"`
			Start string `json:"start"`
			Time  int64  `json:"time"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue // a line cut by the kill
		}
		if ev.Type == "header" {
			start, _ = time.Parse(time.RFC3339Nano, ev.Start)
			continue
		}
		last = ev.Time
	}
	if start.IsZero() || last == 0 {
		t.Fatalf("history without a header or events:\n%s", out.String())
	}
	lost := killed.Sub(start) - time.Duration(last)
	t.Logf("the history ends %s before the kill", lost)
	if lost > time.Second {
		t.Errorf("the history ends %s before the kill: events recorded in the last second were lost", lost)
	}
	time.Sleep(500 * time.Millisecond) // the nodes die with faultline (parent-death signal)
	if ps := processesOf(t, bin); len(ps) > 0 {
		t.Errorf("processes left after the kill:\n%s", strings.Join(ps, "\n"))
	}
	code, cout := faultline(t, 2*time.Minute, "check", dir, "--no-artifacts")
	if code != 4 || !strings.Contains(cout, "cut short") {
		t.Errorf("check of the killed run: exit %d, want 4 saying it was cut short\n%s", code, cout)
	}
}
