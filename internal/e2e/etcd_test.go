package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireEtcd fails under CI=true, and skips elsewhere, when Debian's etcd
// (etcd-server) is not installed: the etcd examples run it.
func requireEtcd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("etcd is not installed (%v): .ci/run installs Debian's etcd-server", err)
		}
		t.Skipf("etcd is not installed (%v): apt-get install etcd-server to run this test", err)
	}
}

// etcdLeftovers lists the etcd processes still running with a command
// line that names dir (the run directory of a local etcd run).
func etcdLeftovers(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if strings.Contains(cmd, "etcd") && strings.Contains(cmd, dir) && !strings.Contains(string(stat), ") Z ") {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// TestEtcdPeerPartitionRefusedLocally: a peer partition asked of etcd on
// the local runtime, where one resolver serves every member, is refused at
// validation (exit 64), naming the reason and the line, before anything
// starts.
func TestEtcdPeerPartitionRefusedLocally(t *testing.T) {
	requireEtcd(t)
	src, err := os.ReadFile(filepath.Join(moduleRoot(t), "examples", "etcd-process.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "    - {fault: kill, target: leader}\n", "    - {fault: kill, target: leader}\n    - {fault: partition-leader, mode: drop}\n", 1)
	line := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "partition-leader") {
			line = i + 1
		}
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "etcd-local-partition.yaml")
	os.WriteFile(f, []byte(text), 0o644)
	code, out := faultline(t, time.Minute, "run", f, "--out", filepath.Join(dir, "run"))
	want := "etcd-local-partition.yaml:" + strconv.Itoa(line) + ":"
	if code != 64 || !strings.Contains(out, want) || !strings.Contains(out, "one resolver") || !strings.Contains(out, "runtime docker") {
		t.Errorf("exit %d, want 64 at %s saying why (one resolver) and what to do (runtime docker)\n%s", code, want, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
		t.Errorf("a run directory was created for a refused scenario")
	}
	if left := etcdLeftovers(dir); len(left) > 0 {
		t.Errorf("etcd started for a refused scenario: %v", left)
	}
}
