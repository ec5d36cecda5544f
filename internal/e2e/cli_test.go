package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/reports"
)

// childrenOf lists the processes whose command line starts with bin (the
// nodes a run starts are `bin node ...`).
func processesOf(t *testing.T, bin string) []string {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if args[0] == bin {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if strings.Contains(string(stat), ") Z ") {
				continue // a zombie is already dead
			}
			out = append(out, e.Name()+": "+strings.Join(args, " "))
		}
	}
	return out
}

func readResults(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckExitCodes(t *testing.T) {
	cases := []struct {
		file string
		code int
		says string
	}{
		{"checkers/testdata/valid-register.jsonl", 0, "VALID"},
		{"checkers/testdata/stale-read.jsonl", 1, "stale read"},
		{"checkers/testdata/lost-write.jsonl", 1, "lost"},
		{"checkers/testdata/foreign-read-write.jsonl", 0, "VALID"},
		{"checkers/testdata/no-such-file.jsonl", 64, "no such file"},
	}
	for _, c := range cases {
		code, out := faultline(t, time.Minute, "check", c.file, "--no-artifacts")
		if code != c.code || !strings.Contains(out, c.says) {
			t.Errorf("faultline check %s: exit %d, want %d saying %q\n%s", c.file, code, c.code, c.says, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("{\"type\":\"invoke\",\"process\":0,\"time\":1,\"f\":\"get\",\"key\":\"a\"}\n{\"type\":\"okay\",\"process\":0,\"time\":2}\n"), 0o644)
	if code, out := faultline(t, time.Minute, "check", bad); code != 64 || !strings.Contains(out, "bad.jsonl:2") || !strings.Contains(out, "type") {
		t.Errorf("check of a malformed history: exit %d, want 64 naming line 2 and the field\n%s", code, out)
	}
}

func TestRunBadScenario(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nworkload:\n  rate: 100\n  concurency: 4\n"), 0o644)
	code, out := faultline(t, time.Minute, "run", bad, "--out", filepath.Join(dir, "run"))
	if code != 64 || !strings.Contains(out, "bad.yaml:4:3") || !strings.Contains(out, "workload.concurency") || !strings.Contains(out, "unknown field") {
		t.Errorf("exit %d, want 64 naming bad.yaml:4:3 and the field\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
		t.Errorf("a run directory was created for an invalid scenario")
	}
	// What the target cannot do, and names the registries do not know,
	// are refused with their line before a run directory exists.
	for _, c := range []struct{ src, says string }{
		{"system: nosuch\n", "bad2.yaml:1:9"},
		{"bugs: [stale-reed]\n", "bad2.yaml:1:8"},
		{"node_opts: {unsynced-flush: -1s}\n", "unsynced-flush"},
		{"workload: {keys: 0}\n", "workload.keys"},
		{"faults:\n  mix: [{fault: kill, target: \"role:backend\"}]\n", "bad2.yaml:2:31"},
	} {
		bad2 := filepath.Join(dir, "bad2.yaml")
		os.WriteFile(bad2, []byte(c.src), 0o644)
		code, out := faultline(t, time.Minute, "run", bad2, "--out", filepath.Join(dir, "run2"))
		if code != 64 || !strings.Contains(out, c.says) {
			t.Errorf("%q: exit %d, want 64 saying %s\n%s", c.src, code, c.says, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "run2")); err == nil {
			t.Errorf("%q: a run directory was created for an invalid scenario", c.src)
		}
	}
	if code, out := faultline(t, time.Minute, "run", "examples/raft-basic.yaml", "--runtime", "mainframe"); code != 64 || !strings.Contains(out, "runtime") {
		t.Errorf("bad --runtime: exit %d\n%s", code, out)
	}
	if code, out := faultline(t, time.Minute, "run", "examples/raft-basic.yaml", "--bogus-flag"); code != 64 || !strings.Contains(out, "bogus-flag") {
		t.Errorf("bad flag: exit %d\n%s", code, out)
	}
}

// TestExamples runs every example as is and checks its documented verdict,
// that results.json carries the contract's fields, and that nothing is
// left running. With -short and in CI (shortRuns) the main phase is cut to
// 8 s, but for those in fullLength.
func TestExamples(t *testing.T) {
	want := map[string]int{
		"raft-basic.yaml":          0,
		"raft-partitions.yaml":     0,
		"raft-stale-read.yaml":     1,
		"raft-lease-read.yaml":     1,
		"raft-follower-read.yaml":  1,
		"pb-split-brain.yaml":      1,
		"pb-fenced.yaml":           0,
		"lww-partition.yaml":       0,
		"lww-spread.yaml":          1,
		"lww-clock-skew.yaml":      0,
		"lww-wall-clock.yaml":      1,
		"lww-no-anti-entropy.yaml": 1,
		"http-load.yaml":           3,
		"etcd-process.yaml":        0,
		"redis-replica.yaml":       1,
		"retry-naive.yaml":         1,
		"retry-backoff.yaml":       0,
		"retry-breaker.yaml":       0,
		"retry-budget.yaml":        0,
	}
	if _, err := os.Stat(filepath.Join(moduleRoot(t), "examples", "raft-lost-writes.yaml")); err == nil {
		want["raft-lost-writes.yaml"] = 1
	}
	files, _ := filepath.Glob(filepath.Join(moduleRoot(t), "examples", "*.yaml"))
	for _, f := range files {
		_, local := want[filepath.Base(f)]
		_, docker := dockerExamples[filepath.Base(f)]
		_, external := externalExamples[filepath.Base(f)]
		if !local && !docker && !external {
			t.Errorf("example %s has no expected verdict in this test, TestExamplesOnDocker or externalExamples", filepath.Base(f))
		}
	}
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	for name, code := range want {
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "etcd-") {
				requireEtcd(t)
			}
			if strings.HasPrefix(name, "redis-") {
				testenv.Command(t, "redis-server", "apt-get install redis-server")
			}
			dir := filepath.Join(t.TempDir(), "run")
			args := append(append([]string{"run"}, shortened(t, name)...), "--out", dir, "--seed", "7")
			got, out := faultline(t, 5*time.Minute, args...)
			if got != code {
				t.Fatalf("exit %d, want %d\n%s", got, code, out)
			}
			r := readResults(t, dir)
			for _, k := range []string{"verdict", "exit_code", "seed", "checkers", "faults", "stats"} {
				if _, ok := r[k]; !ok {
					t.Errorf("results.json has no %q", k)
				}
			}
			if int(r["exit_code"].(float64)) != code || r["seed"].(float64) != 7 {
				t.Errorf("results.json: exit_code %v seed %v", r["exit_code"], r["seed"])
			}
			// Each bug must be caught by the checker meant for it, on a
			// real run: that is what makes a "valid" elsewhere mean something.
			verdicts := map[string]string{}
			for _, c := range r["checkers"].([]any) {
				m := c.(map[string]any)
				verdicts[m["name"].(string)] = m["verdict"].(string)
			}
			wantChecker := map[string]map[string]string{
				"raft-basic.yaml":          {"linearizability": "valid", "lost-writes": "valid", "split-brain": "valid", "convergence": "valid"},
				"raft-partitions.yaml":     {"linearizability": "valid", "lost-writes": "valid", "split-brain": "valid", "convergence": "valid"},
				"raft-stale-read.yaml":     {"linearizability": "invalid", "split-brain": "invalid"},
				"raft-lease-read.yaml":     {"linearizability": "invalid"},
				"raft-follower-read.yaml":  {"linearizability": "invalid"},
				"pb-split-brain.yaml":      {"linearizability": "invalid", "split-brain": "invalid"},
				"pb-fenced.yaml":           {"linearizability": "valid", "lost-writes": "valid", "split-brain": "valid", "convergence": "valid"},
				"lww-partition.yaml":       {"convergence": "valid", "linearizability": "invalid"},
				"lww-spread.yaml":          {"session-guarantees": "invalid", "convergence": "valid"},
				"lww-clock-skew.yaml":      {"convergence": "valid"},
				"lww-wall-clock.yaml":      {"causal": "invalid"},
				"lww-no-anti-entropy.yaml": {"convergence": "invalid"},
				"http-load.yaml":           {"thresholds": "invalid"},
				"raft-lost-writes.yaml":    {"linearizability": "invalid", "lost-writes": "invalid"},
				"etcd-process.yaml":        {"linearizability": "valid", "lost-writes": "valid", "split-brain": "valid", "convergence": "valid"},
				"redis-replica.yaml":       {"linearizability": "invalid"},
				"retry-naive.yaml":         {"retry-storm": "invalid"},
				"retry-backoff.yaml":       {"retry-storm": "valid"},
				"retry-breaker.yaml":       {"retry-storm": "valid"},
				"retry-budget.yaml":        {"retry-storm": "valid"},
			}[name]
			for checker, v := range wantChecker {
				if verdicts[checker] != v {
					t.Errorf("checker %s: %s, want %s (all: %v)", checker, verdicts[checker], v, verdicts)
				}
			}
			lad, _ := r["consistency"].(map[string]any)
			switch {
			case name == "http-load.yaml" || strings.HasPrefix(name, "retry-"):
				// Load, no consistency model: no ladder.
				if lad != nil {
					t.Errorf("an http load run has a consistency ladder: %v", lad)
				}
			case lad == nil:
				t.Fatalf("results.json has no consistency ladder")
			case strings.HasPrefix(name, "lww-"):
				// An eventually consistent store, judged by what it
				// expects: that rung decides, the others are reported.
				var gating []string
				for _, m := range lad["models"].([]any) {
					if rg := m.(map[string]any); rg["gating"] == true {
						gating = append(gating, fmt.Sprintf("%v %v", rg["model"], rg["verdict"]))
					}
				}
				t.Logf("ladder: expect %v, strongest %v, gating %v", lad["expect"], lad["strongest"], gating)
				if lad["expect"] == nil || len(gating) == 0 {
					t.Errorf("an lww example without an expected model: %v", lad)
				}
			case code == 0:
				// A correct system holds every rung of the ladder that
				// applies: linearizable, and what it implies, and
				// convergent where the replicas can be read.
				for _, m := range lad["models"].([]any) {
					rg := m.(map[string]any)
					if v := rg["verdict"]; v != "valid" && v != "not_applicable" {
						t.Errorf("consistency: %v is %v, want valid (or not applicable)", rg["model"], v)
					}
				}
				if lad["strongest"] != "linearizable" {
					t.Errorf("consistency: strongest %v, want linearizable", lad["strongest"])
				}
			}
			st := r["stats"].(map[string]any)
			for _, k := range []string{"ops", "ok", "fail", "info", "target_rate", "achieved_rate", "latency_us"} {
				if _, ok := st[k]; !ok {
					t.Errorf("results.json stats has no %q", k)
				}
			}
			nodeLog := "nodes/n1.log"
			if strings.HasPrefix(name, "retry-") {
				nodeLog = "nodes/frontend1.log"
			}
			if name == "redis-replica.yaml" {
				nodeLog = "nodes/replica1.log"
				// Each stale read is named with the replica that served it.
				res, err := reports.ReadResults(dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range checkerResult(t, res, "linearizability").Anomalies {
					if a.Kind != "stale-read" || a.Node != "replica1" || !strings.Contains(a.Message, "answered by replica1") {
						t.Errorf("anomaly %s by %q, want a stale read by replica1: %s", a.Kind, a.Node, a.Message)
					}
				}
			}
			files := []string{"history.jsonl", "latency.hlog", "report.html", "junit.xml", "scenario.yaml", nodeLog}
			if _, ok := verdicts["linearizability"]; ok {
				files = append(files, "linearizability.html")
			}
			for _, f := range files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("run directory lacks %s", f)
				}
			}
			// What an example shows beyond its verdicts, checked on this
			// same run (each example runs once in the suite).
			if check, ok := map[string]func(*testing.T, string){
				"raft-basic.yaml":       checkLoadAndPacing,
				"raft-stale-read.yaml":  func(t *testing.T, dir string) { checkFaultOnly(t, dir); checkRaftStaleReadEvidence(t, dir) },
				"raft-lease-read.yaml":  checkFaultOnly,
				"raft-lost-writes.yaml": checkRaftLostWritesEvidence,
				"pb-split-brain.yaml":   checkPBSplitBrain,
				"pb-fenced.yaml":        checkPBFenced,
				"retry-naive.yaml":      checkRetryNaive,
				"retry-backoff.yaml":    checkRetryBackoff,
				"retry-breaker.yaml":    checkRetryBreaker,
				"retry-budget.yaml":     checkRetryBudget,
			}[name]; ok {
				check(t, dir)
			}
			// What a reviewer sees of a stale read and of lost writes:
			// report.html (and linearizability.html) in a browser, with
			// screenshots in the artifact directory.
			if name == "raft-stale-read.yaml" || name == "raft-lost-writes.yaml" {
				browseRun(t, dir, strings.TrimSuffix(name, ".yaml"))
			}
			if left := append(processesOf(t, bin), processLeftovers(dir, "etcd", "redis-server")...); len(left) > 0 {
				t.Errorf("processes left after the run: %v", left)
			}
			// The saved run re-judges to the same verdict without the cluster.
			if got2, out2 := faultline(t, 3*time.Minute, "check", dir, "--no-artifacts"); got2 != code {
				t.Errorf("faultline check of the saved run: exit %d, want %d\n%s", got2, code, out2)
			}
		})
	}
}

// checkLoadAndPacing checks the first slice's promise on TestExamples'
// raft-basic run: in open loop it reaches its target rate within 5% with
// several thousand ops (the full 20 s example, which shortRuns leaves as is).
func checkLoadAndPacing(t *testing.T, dir string) {
	st := readResults(t, dir)["stats"].(map[string]any)
	target, achieved, ops := st["target_rate"].(float64), st["achieved_rate"].(float64), st["ops"].(float64)
	if ops < 5000 || achieved < 0.95*target || achieved > 1.05*target {
		t.Errorf("ops %v, achieved %.1f of target %.1f ops/s: want several thousand ops within 5%% of the target", ops, achieved, target)
	}
}

// interruptRun starts `faultline run ARGS...`, waits until the main phase
// has gone on for `into`, calls during (to check the run really started
// what it should stop), sends SIGINT and returns the exit code and output.
func interruptRun(t *testing.T, into time.Duration, during func(), args ...string) (int, string) {
	t.Helper()
	cmd, out := startRun(t, args...)
	waitOutput(out, "main:", 90*time.Second)
	time.Sleep(into)
	during()
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, out.String()
}

// startRun starts `faultline run ARGS...` in the module's root and returns
// it with its output (stdout and stderr) as it comes.
func startRun(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"run"}, args...)...)
	cmd.Dir = moduleRoot(t)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// waitOutput waits until out holds text, or d has passed.
func waitOutput(out *syncBuffer, text string, d time.Duration) {
	for deadline := time.Now().Add(d); !strings.Contains(out.String(), text) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInterruptStopsEverything sends SIGINT in the middle of a run with
// faults and checks the exit code, that no node process is left, and that
// the run still leaves its history and results.json.
func TestInterruptStopsEverything(t *testing.T) {
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	code, out := interruptRun(t, 4*time.Second, func() {
		if len(processesOf(t, bin)) < 3 {
			t.Errorf("fewer than 3 node processes while the run was going: the test would prove nothing")
		}
	}, "examples/raft-partitions.yaml", "--out", dir, "--seed", "3")
	if code != 130 {
		t.Errorf("exit %d after SIGINT, want 130\n%s", code, out)
	}
	if left := processesOf(t, bin); len(left) > 0 {
		t.Errorf("processes left after SIGINT: %v", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "history.jsonl")); err != nil {
		t.Errorf("the history of the interrupted run is gone: %v", err)
	}
	r := readResults(t, dir)
	if r["exit_code"].(float64) != 130 || r["verdict"] != "unknown" {
		t.Errorf("results.json of the interrupted run: exit_code %v verdict %v", r["exit_code"], r["verdict"])
	}
}

func moduleRoot(t *testing.T) string {
	root, err := testbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// syncBuffer is a bytes.Buffer safe to read while a child process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
