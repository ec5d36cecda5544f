package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/reports"
)

// shardedScenario is http-external's load at 200 ops/s in all, with a
// client cut, client-link latency and a pause of n2 through hooks
// (SIGSTOP and SIGCONT of the hand-started node), on a timeline. The heal
// starts every node a fault touched, so a pause needs the start hook (and
// kill with it): here start resumes, as no kill is scheduled and a hook
// could not restart a node started by hand.
const shardedScenario = `name: sharded-raft
runtime: external
client: http
cluster:
  nodes:
    - {id: n1, client: "${RAFT_1}"}
    - {id: n2, client: "${RAFT_2}"}
    - {id: n3, client: "${RAFT_3}"}
  hooks:
    pause: {run: 'kill -STOP $(cat %[1]s/{{.ID}}.pid)', check: 'kill -0 $(cat %[1]s/{{.ID}}.pid)'}
    resume: {run: 'kill -CONT $(cat %[1]s/{{.ID}}.pid)', check: 'kill -0 $(cat %[1]s/{{.ID}}.pid)'}
    kill: {run: 'kill -KILL $(cat %[1]s/{{.ID}}.pid)', check: 'kill -0 $(cat %[1]s/{{.ID}}.pid)'}
    start: {run: 'kill -CONT $(cat %[1]s/{{.ID}}.pid)', check: 'kill -0 $(cat %[1]s/{{.ID}}.pid)'}
duration: 5s
recovery: 1s
workload:
  keys: 8
  rate: 200
  concurrency: 16
  timeout: 1s
faults:
  schedule: timeline
  timeline:
    - {fault: client-cut, at: 1s, for: 1s, target: n1, mode: refuse}
    - {fault: pause, at: 2s, for: 1s, target: n2}
    - {fault: latency, at: 3500ms, for: 1s, latency: 30ms, peers: false, clients: true}
checkers:
  linearizability: {budget: 60s}
`

// handRaft starts a 3-node raftkv cluster the way a user would
// (examples/external/raftkv-cluster.sh, RAFT_BUG for its bug switch), on
// free ports, sets RAFT_1..RAFT_3, and stops it when the test ends. It
// returns the cluster's directory (pid files, logs).
func handRaft(t *testing.T, bin, bug string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "raft")
	script := filepath.Join(moduleRoot(t), "examples", "external", "raftkv-cluster.sh")
	p := testenv.FreePorts(t, 9)
	args := []string{script, "start", dir}
	for _, x := range p {
		args = append(args, fmt.Sprint(x))
	}
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), "FAULTLINE="+bin, "RAFT_BUG="+bug)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { exec.Command("sh", script, "stop", dir).Run() })
	if err != nil {
		t.Fatalf("starting the raftkv cluster by hand: %v\n%s", err, out)
	}
	for i := range 3 {
		t.Setenv(fmt.Sprintf("RAFT_%d", i+1), fmt.Sprintf("127.0.0.1:%d", p[i]))
	}
	return dir
}

// runShards runs n shards of scenario at once, as n processes, each into
// dir/s<I>, and returns their directories and exit codes.
func runShards(t *testing.T, bin, scenario, seed string, n int, dir string) ([]string, []int) {
	t.Helper()
	dirs, codes, outs := make([]string, n), make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = filepath.Join(dir, fmt.Sprintf("s%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "run", scenario, "--shard", fmt.Sprintf("%d/%d", i, n), "--seed", seed, "--out", dirs[i], "--quiet")
			cmd.Dir = moduleRoot(t)
			cmd.Env = append(os.Environ(), "GITHUB_STEP_SUMMARY=")
			out, err := cmd.CombinedOutput()
			outs[i] = string(out)
			var ee *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee) && ctx.Err() == nil:
				codes[i] = ee.ExitCode()
			default:
				codes[i] = -1
				outs[i] += err.Error()
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 0 && c != 1 {
			t.Fatalf("shard %d/%d: exit %d\n%s", i, n, c, outs[i])
		}
	}
	return dirs, codes
}

// TestShardedExternal runs two shards as two processes against one
// raftkv cluster started by hand, then faultline check on both: valid
// against a correct cluster, at the total rate; invalid against one
// started with its follower-read bug, each stale read named in the
// history of the shard that saw it. Process faults (a pause through the
// hooks) run from shard 0 only; shard 1 says so.
func TestShardedExternal(t *testing.T) {
	testenv.Command(t, "curl", "apt-get install curl")
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}

	// A correct cluster: valid, merged and per shard.
	raft := handRaft(t, bin, "")
	work := t.TempDir()
	scen := filepath.Join(work, "sharded.yaml")
	if err := os.WriteFile(scen, []byte(fmt.Sprintf(shardedScenario, raft)), 0o644); err != nil {
		t.Fatal(err)
	}
	valid, codes := runShards(t, bin, scen, "11", 2, filepath.Join(work, "valid"))
	if codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("shards against a correct cluster: exit %v, want 0 0", codes)
	}
	merged := filepath.Join(work, "valid-merged")
	if code, out := faultline(t, time.Minute, "check", valid[0], valid[1], "--out", merged); code != 0 {
		t.Fatalf("faultline check of both shards: exit %d, want 0\n%s", code, out)
	}
	r, err := reports.ReadResults(merged)
	if err != nil {
		t.Fatal(err)
	}
	var parts [2]*reports.Results
	var keys []string
	var ops int64
	for i, d := range valid {
		if parts[i], err = reports.ReadResults(d); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, parts[i].Shard.Keys...)
		ops += parts[i].Stats.Ops
	}
	slices.Sort(keys)
	if want := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}; !slices.Equal(keys, want) {
		t.Errorf("the shards drove %v, want every key once", keys)
	}
	if len(r.Shards) != 2 || r.Stats.Ops != ops || r.Stats.TargetRate != 200 || r.Stats.AchievedRate < 190 {
		t.Errorf("merged: %d shards, %d ops (the shards' %d), target %.0f ops/s, achieved %.1f: want 2 shards, their ops, 200 and at least 190",
			len(r.Shards), r.Stats.Ops, ops, r.Stats.TargetRate, r.Stats.AchievedRate)
	}
	lin := checkerResult(t, r, "linearizability")
	if lin.Verdict != "valid" || !strings.Contains(fmt.Sprint(lin.Details["judged_on"]), "union") || fmt.Sprint(lin.Details["keys"]) != "8" {
		t.Errorf("linearizability: %s %q, details %v: want valid on the union of 8 keys", lin.Verdict, lin.Summary, lin.Details)
	}
	if sb := checkerResult(t, r, "split-brain"); !strings.HasPrefix(sb.Summary, "judged on each shard's own history") {
		t.Errorf("split-brain: %q: want it judged on each shard, saying so", sb.Summary)
	}
	// Shard 0 paused n2 through the hooks; shard 1 applied only the
	// client-link faults, and says it left the pause to shard 0.
	s0, s1 := parts[0], parts[1]
	names := func(fs []reports.Fault) (out []string) {
		for _, f := range fs {
			if f.Error == "" {
				out = append(out, f.Name)
			}
		}
		return out
	}
	if got := names(s0.Faults); !slices.Contains(got, "pause") || !slices.Contains(got, "client-cut") || s0.Shard.Faults != reports.ShardFaultsAll {
		t.Errorf("shard 0 injected %v (faults: %s), want the pause and the client-link faults", got, s0.Shard.Faults)
	}
	if got := names(s1.Faults); slices.Contains(got, "pause") || !slices.Contains(got, "client-cut") || !slices.Contains(got, "latency") || s1.Shard.Faults != reports.ShardFaultsClientLinks || s1.Shard.FaultsLeft != 1 {
		t.Errorf("shard 1 injected %v (faults: %s, %d left to shard 0), want the client-link faults only", got, s1.Shard.Faults, s1.Shard.FaultsLeft)
	}
	for _, f := range s1.Schedule {
		if f.Name == "pause" && !strings.Contains(f.Error, "shard 0 only") {
			t.Errorf("shard 1's schedule: pause %q, want it marked as shard 0's", f.Error)
		}
	}
	h0, _ := os.ReadFile(filepath.Join(valid[0], "nodes", "hooks.log"))
	h1, _ := os.ReadFile(filepath.Join(valid[1], "nodes", "hooks.log"))
	if !strings.Contains(string(h0), "hook pause for node n2") || strings.Contains(string(h1), "hook") {
		t.Errorf("hooks: shard 0's log %q, shard 1's %q: want the pause in shard 0's only", h0, h1)
	}
	if code, out := faultline(t, time.Minute, "report", merged); code != 0 {
		t.Errorf("faultline report of the merged run: exit %d\n%s", code, out)
	} else if html, _ := os.ReadFile(filepath.Join(merged, "report.html")); !strings.Contains(string(html), "merged from 2 shards") {
		t.Error("report.html of the merged run does not say it is merged from 2 shards")
	}

	// The same against a cluster with the follower-read bug: invalid, each
	// anomaly naming a line of the history of the shard that saw it.
	t.Run("follower-read", func(t *testing.T) {
		raft := handRaft(t, bin, "follower-read")
		scen := filepath.Join(work, "buggy.yaml")
		os.WriteFile(scen, []byte(fmt.Sprintf(shardedScenario, raft)), 0o644)
		bad, _ := runShards(t, bin, scen, "12", 2, filepath.Join(work, "buggy"))
		out := filepath.Join(work, "buggy-merged")
		code, text := faultline(t, time.Minute, "check", bad[0], bad[1], "--out", out)
		if code != 1 {
			t.Fatalf("faultline check of both shards: exit %d, want 1\n%s", code, text)
		}
		r, err := reports.ReadResults(out)
		if err != nil {
			t.Fatal(err)
		}
		lin := checkerResult(t, r, "linearizability")
		if lin.Verdict != "invalid" || len(lin.Anomalies) == 0 {
			t.Fatalf("linearizability: %s %q", lin.Verdict, lin.Summary)
		}
		for _, a := range lin.Anomalies {
			file, _, _ := strings.Cut(a.Refs[0], ".jsonl:")
			shard := slices.Index(bad, filepath.Dir(file))
			if shard < 0 || filepath.Base(file) != "history" {
				t.Errorf("anomaly on %s: ref %s names no shard's history (%q)", a.Key, a.Refs[0], bad)
				continue
			}
			ev := historyLine(t, "", a.Refs[0]) // the path as given to check: absolute here
			p, isNum := ev["process"].(float64)
			if ev["key"] != a.Key || !isNum || int(p)/1_000_000_000 != shard {
				t.Errorf("%s: the line holds %v, want an operation on %s by a process of shard %d", a.Refs[0], ev, a.Key, shard)
			}
		}
		// Shards of different runs are refused.
		if code, text := faultline(t, time.Minute, "check", valid[0], bad[1], "--out", filepath.Join(work, "mixed")); code != 64 || !strings.Contains(text, "seed 11") {
			t.Errorf("check of shards of two runs: exit %d, want 64 naming the seeds\n%s", code, text)
		}
	})
}

// TestShardMergeRefusals: faultline check refuses to merge a shard given
// twice, a missing shard and shards of different scenarios, with exit 64
// and a message saying which, and writes nothing.
func TestShardMergeRefusals(t *testing.T) {
	fixture := filepath.Join(moduleRoot(t), "scenario", "testdata", "shards")
	copyShard := func(dst, name string, edit func(string) string) string {
		d := filepath.Join(dst, name)
		os.MkdirAll(d, 0o755)
		for _, f := range []string{"history.jsonl", "results.json", "scenario.yaml"} {
			b, err := os.ReadFile(filepath.Join(fixture, name, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, f), []byte(edit(string(b))), 0o644)
		}
		return d
	}
	same := func(s string) string { return s }
	three := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, `"count": 2`, `"count": 3`), `/2"`, `/3"`)
	}
	other := func(s string) string { return strings.ReplaceAll(s, "sharded-fixture", "another") }
	dir := t.TempDir()
	s0, s1 := copyShard(filepath.Join(dir, "a"), "s0", same), copyShard(filepath.Join(dir, "a"), "s1", same)
	m0, m1 := copyShard(filepath.Join(dir, "b"), "s0", three), copyShard(filepath.Join(dir, "b"), "s1", three)
	o1 := copyShard(filepath.Join(dir, "c"), "s1", other)
	for _, c := range []struct {
		dirs []string
		want string
	}{
		{[]string{s0, s0}, "shard 0/2 is given twice"},
		{[]string{m0, m1}, "the run has 3 shards and shard 2 is missing"},
		{[]string{s0, o1}, `scenario "another"`},
		{[]string{s0, m1}, "the shard counts differ"},
	} {
		out := filepath.Join(dir, "merged")
		code, text := faultline(t, time.Minute, append([]string{"check", "--out", out}, c.dirs...)...)
		if code != 64 || !strings.Contains(text, c.want) {
			t.Errorf("check %v: exit %d, want 64 saying %q\n%s", c.dirs, code, c.want, text)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("check %v: a refused merge wrote %s", c.dirs, out)
		}
	}
	// The two shards of one run merge: the stale read in shard 1's
	// history, at its line.
	code, text := faultline(t, time.Minute, "check", s0, s1, "--out", filepath.Join(dir, "ok"))
	if want := filepath.Join(s1, "history.jsonl") + ":12"; code != 1 || !strings.Contains(text, want) {
		t.Errorf("check of both shards: exit %d, want 1 naming %s\n%s", code, want, text)
	}
}

// TestKubernetesManifests runs the test module of examples/kubernetes
// (its own go.mod, so that the Kubernetes modules stay out of faultline's):
// it decodes the manifests strictly against the Kubernetes API types and
// checks each pod's command line with this binary's --dry-run. Without
// the go command or the modules it cannot run: it fails under CI=true and
// skips elsewhere, saying why.
func TestKubernetesManifests(t *testing.T) {
	goBin := testenv.Command(t, "go", "the Go toolchain, to test the separate module of examples/kubernetes")
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(moduleRoot(t), "examples", "kubernetes")
	dl := exec.Command(goBin, "mod", "download")
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		testenv.Need(t, "the Kubernetes modules of examples/kubernetes (k8s.io/api, sigs.k8s.io/yaml)", fmt.Errorf("%v: %s", err, out), "a reachable GOPROXY, or a module cache that holds them (cd examples/kubernetes && go mod download)")
	}
	cmd := exec.Command(goBin, "test", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FAULTLINE_BIN="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in examples/kubernetes: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ok ") {
		t.Fatalf("go test in examples/kubernetes ran nothing:\n%s", out)
	}
}
