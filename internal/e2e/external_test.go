package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/targets/etcdkv"
)

// externalExamples are the examples of runtime external, each run (with
// the cluster it needs started first) by the test named.
var externalExamples = map[string]string{
	"etcd-external.yaml": "TestEtcdExternal",
	"http-external.yaml": "TestHTTPExternal",
}

// userEtcd starts a 3-member etcd the way a user would
// (examples/external/etcd-cluster.sh), on free ports, sets the variables
// examples/etcd-external.yaml reads, and stops it when the test ends.
// It returns the members' client addresses and the cluster's directory.
func userEtcd(t *testing.T) ([]string, string) {
	t.Helper()
	testenv.Etcd(t)
	testenv.Command(t, "curl", "apt-get install curl")
	dir := filepath.Join(t.TempDir(), "etcd")
	p := testenv.FreePorts(t, 6)
	args := []string{filepath.Join(moduleRoot(t), "examples", "external", "etcd-cluster.sh"), "start", dir}
	for _, x := range p {
		args = append(args, fmt.Sprint(x))
	}
	cmd := exec.Command("sh", args...)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() {
		exec.Command("sh", filepath.Join(moduleRoot(t), "examples", "external", "etcd-cluster.sh"), "stop", dir).Run()
	})
	if err != nil {
		t.Fatalf("starting the user's etcd: %v\n%s", err, out)
	}
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", p[0]), fmt.Sprintf("127.0.0.1:%d", p[1]), fmt.Sprintf("127.0.0.1:%d", p[2])}
	for i, a := range addrs {
		t.Setenv(fmt.Sprintf("ETCD_%d", i+1), a)
	}
	t.Setenv("ETCD_CLUSTER_DIR", dir)
	return addrs, dir
}

func etcdDo(t *testing.T, addr string, op history.Op) history.Outcome {
	t.Helper()
	c, err := etcdkv.New(addr, etcdkv.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Do(context.Background(), op)
}

// TestEtcdExternal runs examples/etcd-external.yaml against an etcd the
// test started as a user would: valid, with a hook kill; its keys carry
// the run's prefix and --cleanup leaves none of them; a key outside the
// prefix, written before, is untouched; nothing of the run is left
// running, and the user's cluster still runs.
func TestEtcdExternal(t *testing.T) {
	addrs, dir := userEtcd(t)
	mine := history.Op{F: "put", Key: "users/alice", Value: json.RawMessage(`"not faultline's"`)}
	if out := etcdDo(t, addrs[0], mine); out.Type != history.OK {
		t.Fatalf("writing the user's key: %+v", out)
	}
	run := filepath.Join(t.TempDir(), "run")
	code, out := faultline(t, 3*time.Minute, "run", "examples/etcd-external.yaml", "--duration", "15s", "--seed", "1", "--out", run, "--cleanup", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	r, err := reports.ReadResults(run)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.KeyPrefix, "faultline/") {
		t.Fatalf("key_prefix %q", r.KeyPrefix)
	}
	kills := 0
	for _, f := range r.Faults {
		if f.Name == "kill" && f.Error == "" {
			kills++
		}
	}
	if kills == 0 || r.Stats.OK < 1000 {
		t.Errorf("%d hook kills, %d ok ops: want at least one kill and a real load", kills, r.Stats.OK)
	}
	// The saved scenario holds the addresses the run used, and the run is
	// judged again without the environment that gave them.
	if saved, _ := os.ReadFile(filepath.Join(run, "scenario.yaml")); !strings.Contains(string(saved), addrs[1]) || strings.Contains(string(saved), "${ETCD_2}") {
		t.Errorf("the saved scenario does not hold the address the run used (%s):\n%s", addrs[1], saved)
	}
	os.Unsetenv("ETCD_2")
	if code, out := faultline(t, time.Minute, "check", run, "--no-artifacts"); code != 0 {
		t.Errorf("faultline check of the saved run without ETCD_2: exit %d\n%s", code, out)
	}
	hooks, _ := os.ReadFile(filepath.Join(run, "nodes", "hooks.log"))
	if !strings.Contains(string(hooks), "hook kill for node") || !strings.Contains(string(hooks), "hook start for node") {
		t.Errorf("nodes/hooks.log lacks the kill and start hooks:\n%s", hooks)
	}
	// The run's keys are gone; the user's key is as it was.
	for i := 0; i < 8; i++ {
		got := etcdDo(t, addrs[0], history.Op{F: "get", Key: fmt.Sprintf("%sk%d", r.KeyPrefix, i)})
		if got.Type != history.OK || string(got.Value) != "null" {
			t.Errorf("key %sk%d after --cleanup: %+v", r.KeyPrefix, i, got)
		}
	}
	if got := etcdDo(t, addrs[0], history.Op{F: "get", Key: mine.Key}); string(got.Value) != string(mine.Value) {
		t.Errorf("the user's key %s is %s after the run, was %s", mine.Key, got.Value, mine.Value)
	}
	for i := range 3 {
		if err := exec.Command("sh", filepath.Join(dir, "ctl"), "status", fmt.Sprintf("n%d", i+1)).Run(); err != nil {
			t.Errorf("member n%d of the user's cluster is not running after the run", i+1)
		}
	}
	// The run started nothing: no process of the binary under test is left.
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	if left := processesOf(t, bin); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// TestExternalRefusals: a fault the cluster's hooks do not provide, an
// address that is not set, and a failing preflight are errors that name
// the fault and the hook, the variable, and the hook and the node; the
// first two before anything starts (64), the last before any load (70).
func TestExternalRefusals(t *testing.T) {
	testenv.Etcd(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(moduleRoot(t), "examples", "etcd-external.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	t.Setenv("ETCD_1", "127.0.0.1:1")
	t.Setenv("ETCD_2", "127.0.0.1:2")
	t.Setenv("ETCD_3", "127.0.0.1:3")
	t.Setenv("ETCD_CLUSTER_DIR", filepath.Join(dir, "nowhere"))
	pause := write("pause.yaml", strings.Replace(string(src), "    - {fault: kill, target: leader}\n", "    - {fault: kill, target: leader}\n    - {fault: pause, target: one}\n", 1))
	if code, out := faultline(t, time.Minute, "run", pause, "--out", filepath.Join(dir, "r1")); code != 64 || !strings.Contains(out, "pause") || !strings.Contains(out, "cluster.hooks.pause") {
		t.Errorf("pause without a hook: exit %d, want 64 naming the fault and the hook\n%s", code, out)
	}
	part := write("part.yaml", strings.Replace(string(src), "    - {fault: kill, target: leader}\n", "    - {fault: partition-halves}\n", 1))
	if code, out := faultline(t, time.Minute, "run", part, "--out", filepath.Join(dir, "r2")); code != 64 || !strings.Contains(out, "partition-halves") || !strings.Contains(out, "cluster.hooks.partition") {
		t.Errorf("partition without a hook: exit %d, want 64 naming the hook\n%s", code, out)
	}
	os.Unsetenv("ETCD_2")
	if code, out := faultline(t, time.Minute, "run", "examples/etcd-external.yaml", "--out", filepath.Join(dir, "r3")); code != 64 || !strings.Contains(out, "ETCD_2") || !strings.Contains(out, "--node n2=") {
		t.Errorf("unset address: exit %d, want 64 naming ETCD_2 and --node\n%s", code, out)
	}
	// --node gives the address instead; the node does not answer, so the
	// preflight stops the run before any load, naming it.
	code, out := faultline(t, time.Minute, "run", "examples/etcd-external.yaml", "--node", "n2=127.0.0.1:2", "--out", filepath.Join(dir, "r4"), "--quiet")
	if code != 70 || !strings.Contains(out, "preflight: node n1") {
		t.Errorf("unreachable node: exit %d, want 70 naming the node in the preflight\n%s", code, out)
	}
	if evs := clientOps(t, filepath.Join(dir, "r4")); evs > 0 {
		t.Errorf("%d client operations recorded although the preflight failed", evs)
	}
}

// TestExternalHookPreflight: with every node reachable, a hook whose check
// form fails stops the run before any load, naming the hook and the node.
func TestExternalHookPreflight(t *testing.T) {
	userEtcd(t)
	t.Setenv("ETCD_CLUSTER_DIR", t.TempDir()) // no ctl there: every hook fails
	run := filepath.Join(t.TempDir(), "run")
	code, out := faultline(t, time.Minute, "run", "examples/etcd-external.yaml", "--out", run, "--quiet")
	if code != 70 || !strings.Contains(out, "preflight") || !strings.Contains(out, "hook kill (check) for node n1") {
		t.Errorf("failing hook check: exit %d, want 70 naming the hook and node\n%s", code, out)
	}
	if n := clientOps(t, run); n > 0 {
		t.Errorf("%d client operations recorded although the preflight failed", n)
	}
}

// clientOps counts the client operations in a run's history (0 when
// there is none).
func clientOps(t *testing.T, dir string) int {
	t.Helper()
	_, evs, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range evs {
		if e.Type == history.Invoke {
			n++
		}
	}
	return n
}

// TestHTTPExternal runs examples/http-external.yaml against a raftkv
// cluster started by hand (examples/external/raftkv-cluster.sh) with its
// follower-read bug: invalid, decided by linearizability, every anomaly
// naming the node that answered.
func TestHTTPExternal(t *testing.T) {
	testenv.Command(t, "curl", "apt-get install curl")
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "raft")
	script := filepath.Join(moduleRoot(t), "examples", "external", "raftkv-cluster.sh")
	p := testenv.FreePorts(t, 9)
	args := []string{script, "start", dir}
	for _, x := range p {
		args = append(args, fmt.Sprint(x))
	}
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), "FAULTLINE="+bin)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { exec.Command("sh", script, "stop", dir).Run() })
	if err != nil {
		t.Fatalf("starting the raftkv cluster by hand: %v\n%s", err, out)
	}
	for i := range 3 {
		t.Setenv(fmt.Sprintf("RAFT_%d", i+1), fmt.Sprintf("127.0.0.1:%d", p[i]))
	}
	run := filepath.Join(t.TempDir(), "run")
	code, res := faultline(t, 3*time.Minute, "run", "examples/http-external.yaml", "--duration", "10s", "--seed", "1", "--out", run, "--cleanup", "--quiet")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, res)
	}
	r, err := reports.ReadResults(run)
	if err != nil {
		t.Fatal(err)
	}
	lin := checkerResult(t, r, "linearizability")
	if lin.Verdict != "invalid" || len(lin.Anomalies) == 0 {
		t.Fatalf("linearizability %s with %d anomalies", lin.Verdict, len(lin.Anomalies))
	}
	for _, a := range lin.Anomalies {
		if a.Node == "" || !strings.Contains(a.Message, "answered by "+a.Node) {
			t.Errorf("anomaly %s on %s names no node that answered: %s", a.Kind, a.Key, a.Message)
		}
	}
	sameRefEverywhere(t, run, "linearizability")
}

// TestExternalFailingHooks: a partition hook that fails is a failed fault
// (recorded with its exit status and output), and a heal hook that fails
// makes the run invalid (exit 4), saying so.
func TestExternalFailingHooks(t *testing.T) {
	userEtcd(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "hooks.yaml")
	os.WriteFile(p, []byte(`runtime: external
client: etcd
cluster:
  nodes:
    - {id: n1, client: "${ETCD_1}"}
    - {id: n2, client: "${ETCD_2}"}
    - {id: n3, client: "${ETCD_3}"}
  hooks:
    partition: {run: "echo cannot cut {{.GroupsText}}; exit 7", check: "true"}
    heal: {run: "echo heal refused; exit 9", check: "true"}
duration: 4s
recovery: 1s
min_ops: 10
workload: {keys: 4, rate: 100, concurrency: 4, timeout: 2s}
faults:
  schedule: timeline
  timeline: [{at: 1s, for: 1s, fault: partition-halves}]
`), 0o644)
	run := filepath.Join(dir, "run")
	code, out := faultline(t, 2*time.Minute, "run", p, "--out", run, "--quiet")
	if code != 4 || !strings.Contains(out, "heal") {
		t.Fatalf("exit %d, want 4 (the heal hook failed)\n%s", code, out)
	}
	r, err := reports.ReadResults(run)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Faults) != 1 || !strings.Contains(r.Faults[0].Error, "hook partition failed (exit status 7): cannot cut n") {
		t.Errorf("faults %+v: want the partition failed with the hook's exit status and output", r.Faults)
	}
	if !strings.Contains(r.RunInvalid, "heal") || !strings.Contains(r.RunInvalid, "exit status 9") {
		t.Errorf("run_invalid %q: want the heal hook's failure", r.RunInvalid)
	}
	_, evs, _ := history.ReadFile(filepath.Join(run, "history.jsonl"))
	found := false
	for _, e := range evs {
		if e.Process == history.Nemesis && strings.Contains(string(e.Value), `"hooks":[{"hook":"partition"`) && strings.Contains(string(e.Value), `"exit":7`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the history does not record the partition hook's exit status with the fault")
	}
}
