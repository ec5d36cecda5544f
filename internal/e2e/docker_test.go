package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/reports"
)

// requireDocker fails under CI=true when the Docker daemon is unreachable
// (CI has Docker) and skips elsewhere, saying why.
func requireDocker(t *testing.T) {
	t.Helper()
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err == nil && len(bytes.TrimSpace(out)) > 0 {
		return
	}
	if err == nil {
		err = errors.New("docker info printed no server version")
	}
	testenv.Need(t, "Docker", fmt.Errorf("%v %s", err, bytes.TrimSpace(out)), "start a Docker daemon")
}

// leftovers lists faultline's containers, networks and volumes.
func leftovers(t *testing.T) string {
	t.Helper()
	ps, _ := exec.Command("docker", "ps", "-a", "--filter", "label=faultline.run", "--format", "{{.Names}}").CombinedOutput()
	nets, _ := exec.Command("docker", "network", "ls", "--filter", "label=faultline.run", "--format", "{{.Name}}").CombinedOutput()
	vols, _ := exec.Command("docker", "volume", "ls", "--filter", "label=faultline.run", "--format", "{{.Name}}").CombinedOutput()
	return strings.TrimSpace(string(ps) + string(nets) + string(vols))
}

// TestExamplesOnDocker runs every example on the Docker runtime with a
// shorter main phase and checks it gets the verdict it gets locally, and
// that the run leaves no container or network behind.
// dockerExamples are the examples TestExamplesOnDocker runs, with their
// exit codes and the checkers that decide them; the etcd ones name the
// docker runtime themselves and run only here. A subset, to keep CI short:
// raft-basic and pb-fenced run locally only (raft-partitions and
// pb-split-brain cover their systems here).
var dockerExamples = map[string]struct {
	code     int
	checkers map[string]string
}{
	"raft-partitions.yaml":   {0, nil},
	"raft-stale-read.yaml":   {1, map[string]string{"linearizability": "invalid", "split-brain": "invalid"}},
	"raft-lost-writes.yaml":  {1, nil},
	"etcd-partitions.yaml":   {0, map[string]string{"linearizability": "valid", "lost-writes": "valid", "split-brain": "valid", "convergence": "valid"}},
	"etcd-serializable.yaml": {1, map[string]string{"linearizability": "invalid"}},
	"pb-split-brain.yaml":    {1, map[string]string{"split-brain": "invalid"}},
}

func TestExamplesOnDocker(t *testing.T) {
	requireDocker(t)
	dur := "15s"
	if testing.Short() {
		dur = "8s"
	}
	for name, want := range dockerExamples {
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "etcd-") {
				requireEtcd(t)
			}
			dir := filepath.Join(t.TempDir(), "run")
			d := dur
			if strings.HasPrefix(name, "etcd-") {
				// Long enough for a partition of the leader and one of
				// the halves (faults from 3 s, every 5 s).
				d = "20s"
			}
			got, out := faultline(t, 5*time.Minute, "run", "examples/"+name, "--runtime", "docker", "--duration", d, "--seed", "5", "--out", dir, "--quiet")
			code := want.code
			if got != code {
				t.Fatalf("exit %d on docker, want %d\n%s", got, code, out)
			}
			res, err := reports.ReadResults(dir)
			if err != nil {
				t.Fatal(err)
			}
			for checker, v := range want.checkers {
				if c := checkerResult(t, res, checker); string(c.Verdict) != v {
					t.Errorf("checker %s: %s, want %s", checker, c.Verdict, v)
				}
			}
			if strings.HasPrefix(name, "etcd-") && cutsWereReal(t, dir) == 0 {
				t.Errorf("the run partitioned no leader: seed 5 should plan a partition of the leader in 20 s")
			}
			if name == "etcd-serializable.yaml" {
				// The stale read is explained with the member that served
				// it, on the same history line everywhere it is shown.
				sameRefEverywhere(t, dir, "linearizability")
				for _, a := range checkerResult(t, res, "linearizability").Anomalies {
					if a.Node == "" || !strings.Contains(a.Message, "answered by "+a.Node) {
						t.Errorf("anomaly %s on key %s names no member that answered: %s", a.Kind, a.Key, a.Message)
					}
				}
			}
			r := readResults(t, dir)
			if r["runtime"] != "docker" {
				t.Errorf("results.json runtime = %v", r["runtime"])
			}
			if _, err := os.Stat(filepath.Join(dir, "nodes", "n1.log")); err != nil {
				t.Errorf("no container log: %v", err)
			}
			if l := leftovers(t); l != "" {
				t.Errorf("left behind after the run:\n%s", l)
			}
		})
	}
}

// TestDockerInterruptLeavesNothing interrupts a Docker run with SIGINT
// during its faults: exit 130, and no container or network remains.
func TestDockerInterruptLeavesNothing(t *testing.T) {
	requireDocker(t)
	dir := filepath.Join(t.TempDir(), "run")
	code, out := interruptRun(t, 5*time.Second, func() {
		if leftovers(t) == "" {
			t.Errorf("no containers while the run was going: the test would prove nothing")
		}
	}, "examples/raft-partitions.yaml", "--runtime", "docker", "--out", dir, "--seed", "3")
	if code != 130 {
		t.Errorf("exit %d after SIGINT, want 130\n%s", code, out)
	}
	if l := leftovers(t); l != "" {
		t.Errorf("left behind after SIGINT:\n%s", l)
	}
}
