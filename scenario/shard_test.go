package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/reports"
	_ "github.com/faultline/faultline/targets/external"
	_ "github.com/faultline/faultline/targets/httpkv"
	"github.com/faultline/faultline/workloads"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/1": {0, 1}, "2/3": {2, 3}, " 1/2 ": {1, 2}} {
		got, err := ParseShard(in)
		if err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{"": "INDEX/COUNT", "1": "INDEX/COUNT", "a/2": "INDEX/COUNT", "2/2": "below the count", "-1/2": "below the count", "0/0": "1 to 1024", "0/5000": "1 to 1024"} {
		if _, err := ParseShard(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseShard(%q): %v, want an error saying %q", in, err, msg)
		}
	}
}

// external is a scenario of an external cluster with every kind of fault
// the shards treat differently: client-link faults, and a kill and a
// partition through hooks.
const externalShardScenario = `name: sharded
runtime: external
client: http
cluster:
  nodes:
    - {id: n1, client: "127.0.0.1:1"}
    - {id: n2, client: "127.0.0.1:2"}
    - {id: n3, client: "127.0.0.1:3"}
  hooks:
    kill: "true"
    start: "true"
    partition: "true"
    heal: "true"
seed: 42
duration: 20s
min_ops: 101
workload:
  keys: 8
  rate: 300
  concurrency: 16
  stages: [{duration: 5s, rate: 600}]
faults:
  schedule: timeline
  timeline:
    - {fault: client-cut, at: 1s, for: 1s, target: n1}
    - {fault: latency, at: 3s, for: 1s, latency: 20ms, peers: false, clients: true}
    - {fault: kill, at: 5s, for: 1s, target: n2}
    - {fault: partition-halves, at: 7s, for: 1s}
    - {fault: latency, at: 9s, for: 1s, latency: 20ms, peers: false, clients: true, target: n3}
`

func TestShardParts(t *testing.T) {
	s, err := Parse("sharded.yaml", []byte(externalShardScenario))
	if err != nil {
		t.Fatal(err)
	}
	plan := s.Faults.Plan(s.nodes, s.Seed, s.Duration.D())
	var allKeys []string
	for i := range 3 {
		p, err := s.shardOf(Shard{i, 3})
		if err != nil {
			t.Fatal(err)
		}
		if p.rate != 100 || p.stages[0].Rate != 200 || p.concurrency != 6 || p.minOps != 34 {
			t.Errorf("shard %d: rate %v, stage rate %v, concurrency %d, min_ops %d; want a third of 300, 600, 16 (rounded up), 101 (rounded up)", i, p.rate, p.stages[0].Rate, p.concurrency, p.minOps)
		}
		if p.first != int64(i)*ShardProcessStride || !p.partitioned {
			t.Errorf("shard %d: first process %d, partitioned %v", i, p.first, p.partitioned)
		}
		allKeys = append(allKeys, p.keys...)
		if si := p.info(0); si.KeyCount != len(p.keys) || !slices.Equal(si.Keys, p.keys) || si.String() != fmt.Sprintf("%d/3", i) {
			t.Errorf("shard %d: results.json's shard %+v", i, si)
		}
		sched := make([]reports.Fault, len(plan))
		kept, skipped := p.filterPlan(plan, sched, s.faultEnv())
		var names []string
		for _, f := range kept {
			names = append(names, f.Spec.Fault)
		}
		if i == 0 {
			if len(kept) != 5 || skipped != 0 {
				t.Errorf("shard 0 injects %v (%d left out), want every planned fault", names, skipped)
			}
			if ext := p.external(s.externalSpec()); ext.Hooks.Kill.Run == "" {
				t.Error("shard 0 lost its hooks")
			}
			continue
		}
		if strings.Join(names, ",") != "client-cut,latency,latency" || skipped != 2 {
			t.Errorf("shard %d injects %v (%d left to shard 0), want the client-link faults only", i, names, skipped)
		}
		if sched[2].Error != notShard0 || sched[3].Error != notShard0 || sched[0].Error != "" {
			t.Errorf("shard %d: schedule errors %q", i, []string{sched[0].Error, sched[2].Error, sched[3].Error})
		}
		ext := p.external(s.externalSpec())
		if ext.Hooks.Kill.Run != "" || ext.Hooks.Heal.Run != "" || len(ext.Nodes) != 3 {
			t.Errorf("shard %d starts the cluster with hooks %+v: the hooks are shard 0's", i, ext.Hooks)
		}
		if s.externalSpec().Hooks.Kill.Run == "" {
			t.Error("stripping a shard's hooks changed the scenario's")
		}
	}
	slices.Sort(allKeys)
	if want := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}; !slices.Equal(allKeys, want) {
		t.Errorf("the shards drive %v, want every key once: %v", allKeys, want)
	}
}

func TestShardRefusals(t *testing.T) {
	ext := func(edit func(string) string) *Scenario {
		s, err := Parse("sharded.yaml", []byte(edit(externalShardScenario)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noSeed := ext(func(y string) string { return strings.Replace(y, "seed: 42\n", "", 1) })
	if _, err := noSeed.shardOf(Shard{0, 2}); err == nil || !strings.Contains(err.Error(), "--seed") {
		t.Errorf("no seed: %v", err)
	}
	fewKeys := ext(func(y string) string { return strings.Replace(y, "keys: 8", "keys: 2", 1) })
	if _, err := fewKeys.shardOf(Shard{0, 3}); err == nil || !strings.Contains(err.Error(), "workload.keys") || !strings.Contains(err.Error(), "at least 3 keys") {
		t.Errorf("2 keys over 3 shards: %v", err)
	}
	local, err := Parse("local.yaml", []byte("seed: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.shardOf(Shard{0, 2}); err == nil || !strings.Contains(err.Error(), "runtime: external") {
		t.Errorf("local runtime: %v", err)
	}
	var out strings.Builder
	if err := DryRun(fewKeys, &Shard{1, 3}, &out); err == nil {
		t.Errorf("dry run of 2 keys over 3 shards: no error\n%s", out.String())
	}
}

// The digest is the same whatever addresses a shard reaches the nodes by,
// and differs when the scenario as run differs (a --rate given to one
// shard only).
func TestShardDigest(t *testing.T) {
	a, err := Parse("a.yaml", []byte(externalShardScenario))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", []byte(strings.ReplaceAll(externalShardScenario, "127.0.0.1:", "raftkv.default.svc:")))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.digest()
	db, _ := b.digest()
	if da != db || !strings.HasPrefix(da, "sha256:") {
		t.Errorf("digests %s and %s: want the same, addresses aside", da, db)
	}
	rate := 200.0
	if err := b.Apply(Overrides{Rate: &rate}); err != nil {
		t.Fatal(err)
	}
	if dc, _ := b.digest(); dc == da {
		t.Error("a rate override does not change the digest")
	}
}

// copyShards copies the fixture shards into a temporary directory, each
// file passed through edit (path relative to testdata/shards, contents).
func copyShards(t *testing.T, edit func(path, text string) string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for _, sh := range []string{"s0", "s1"} {
		os.MkdirAll(filepath.Join(dir, sh), 0o755)
		for _, f := range []string{"history.jsonl", "results.json", "scenario.yaml"} {
			b, err := os.ReadFile(filepath.Join("testdata", "shards", sh, f))
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if edit != nil {
				text = edit(sh+"/"+f, text)
			}
			if err := os.WriteFile(filepath.Join(dir, sh, f), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return filepath.Join(dir, "s0"), filepath.Join(dir, "s1")
}

// The stale read lies in shard 1's history only (testdata/shards/s1, line
// 12: k1 read as 3 after 5 replaced it); shard 0's history alone is
// valid. Merged, the run is invalid, and the evidence names shard 1's
// history and the line.
func TestCheckShardsFindsOneShardsStaleRead(t *testing.T) {
	ctx := context.Background()
	s0, s1 := filepath.Join("testdata", "shards", "s0"), filepath.Join("testdata", "shards", "s1")
	alone, err := Check(ctx, s0, CheckOptions{NoArtifacts: true})
	if err != nil {
		t.Fatal(err)
	}
	if alone.ExitCode != 0 {
		t.Fatalf("shard 0 alone: exit %d (%s), want valid: the stale read is not in it", alone.ExitCode, alone.ExitReason)
	}
	out := t.TempDir()
	r, err := CheckShards(ctx, []string{s1, s0}, CheckOptions{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 1 || r.Verdict != "invalid" {
		t.Fatalf("merged: exit %d %s (%s), want 1 invalid", r.ExitCode, r.Verdict, r.ExitReason)
	}
	var lin *checkers.Result
	for i := range r.Checkers {
		if r.Checkers[i].Name == "linearizability" {
			lin = &r.Checkers[i]
		}
	}
	if lin == nil || lin.Verdict != checkers.Invalid || len(lin.Anomalies) != 1 {
		t.Fatalf("linearizability: %+v", lin)
	}
	a := lin.Anomalies[0]
	want := filepath.Join(s1, "history.jsonl") + ":12"
	if a.Key != "k1" || len(a.Refs) == 0 || a.Refs[0] != want || a.Node != "n3" {
		t.Errorf("anomaly %s on %s by %s, refs %v: want key k1, node n3, refs starting %s", a.Kind, a.Key, a.Node, a.Refs, want)
	}
	for _, ref := range a.Refs {
		if !strings.HasPrefix(ref, filepath.Join(s1, "history.jsonl")+":") {
			t.Errorf("ref %s: every line of the evidence is in shard 1's history", ref)
		}
	}
	if !strings.Contains(lin.Explanation, want) {
		t.Errorf("the explanation does not name %s:\n%s", want, lin.Explanation)
	}
	if got := lin.Details["keys"]; got != 2 {
		t.Errorf("linearizability judged %v keys, want both shards' (2)", got)
	}
	for _, c := range r.Checkers {
		if c.Name == "split-brain" && !strings.HasPrefix(c.Summary, "judged on each shard's own history") {
			t.Errorf("split-brain: %q, want it to say it judged each shard on its own", c.Summary)
		}
	}
	if len(r.Shards) != 2 || r.Shards[0].Index != 0 || r.Shards[1].Dir == "" || r.Stats.Ops != 6 || r.Stats.TargetRate != 10 {
		t.Errorf("shards %+v, stats %+v", r.Shards, r.Stats)
	}
	// Everything went into out, the merged run is a run directory of its
	// own, and nothing was written into the shards'.
	for _, f := range []string{"results.json", "anomalies.jsonl", "report.html", "junit.xml", MergedHistory, "latency.hlog"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("merged run: %v", err)
		}
	}
	for _, f := range []string{"report.html", "anomalies.jsonl", "linearizability.html"} {
		if _, err := os.Stat(filepath.Join(s1, f)); err == nil {
			t.Errorf("%s was written into the shard's directory", f)
		}
	}
	saved, err := reports.ReadResults(out)
	if err != nil || len(saved.Shards) != 2 || saved.ExitCode != 1 {
		t.Fatalf("saved results: %+v, %v", saved, err)
	}
	// check on the merged directory merges again, into it.
	again, err := CheckRuns(ctx, []string{out}, CheckOptions{NoArtifacts: true})
	if err != nil || again.ExitCode != 1 || again.RunDir != out {
		t.Errorf("check of the merged run: %v, exit %d into %s", err, exitOf(again), again.RunDir)
	}
}

func exitOf(r *reports.Results) int {
	if r == nil {
		return -1
	}
	return r.ExitCode
}

func TestCheckShardsRefusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		edit func(path, text string) string
		dirs func(s0, s1 string) []string
		want string
	}{
		{"twice", nil, func(s0, s1 string) []string { return []string{s0, s0} }, "shard 0/2 is given twice"},
		{"missing", func(p, text string) string {
			return strings.ReplaceAll(strings.ReplaceAll(text, `"count": 2`, `"count": 3`), `/2"`, `/3"`)
		}, nil, "the run has 3 shards and shard 2 is missing"},
		{"count", func(p, text string) string {
			if strings.HasPrefix(p, "s1/") {
				return strings.ReplaceAll(strings.ReplaceAll(text, `"count": 2`, `"count": 3`), `/2"`, `/3"`)
			}
			return text
		}, nil, "the shard counts differ"},
		{"seed", func(p, text string) string {
			if p == "s1/history.jsonl" {
				return strings.Replace(text, `"seed":7`, `"seed":8`, 1)
			}
			return text
		}, nil, "seed 7 and"},
		{"scenario", func(p, text string) string {
			if p == "s1/history.jsonl" {
				return strings.Replace(text, `"scenario":"sharded-fixture"`, `"scenario":"other"`, 1)
			}
			return text
		}, nil, `scenario "other"`},
		{"digest", func(p, text string) string {
			if p == "s1/results.json" {
				return strings.Replace(text, `sha256:fixture`, `sha256:other`, 1)
			}
			return text
		}, nil, "different scenarios of the same name and seed"},
		{"not a shard", func(p, text string) string {
			if p == "s1/results.json" {
				return strings.Replace(text, `"shard": {`, `"other": {`, 1)
			}
			if p == "s1/history.jsonl" {
				return strings.Replace(text, `,"shard":"1/2"`, ``, 1)
			}
			return text
		}, nil, "is not a shard of a sharded run"},
		{"key", func(p, text string) string {
			if p == "s1/history.jsonl" {
				return strings.ReplaceAll(text, `"key":"k1"`, `"key":"k0"`)
			}
			return text
		}, nil, `key "k0" is driven by shard 0`},
		{"process", func(p, text string) string {
			if p == "s1/history.jsonl" {
				return strings.ReplaceAll(text, `"process":1000000001`, `"process":1`)
			}
			return text
		}, nil, "client process 1 is in"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s0, s1 := copyShards(t, c.edit)
			dirs := []string{s0, s1}
			if c.dirs != nil {
				dirs = c.dirs(s0, s1)
			}
			out := filepath.Join(t.TempDir(), "merged")
			_, err := CheckShards(ctx, dirs, CheckOptions{Out: out})
			var ec *exitcode.Error
			if !errors.As(err, &ec) || ec.Code != exitcode.Usage || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a usage error (64) saying %q", err, c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused merge created its output directory")
			}
		})
	}
}

// The register workload's instance splits its keys (KeySharder), so a
// shard of it is partitioned; keys and values are the KV's own.
func TestRegisterSharder(t *testing.T) {
	p := &workloads.RegisterParams{Keys: 5}
	inst, err := p.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inst.(workloads.KeySharder); !ok {
		t.Fatal("the register workload cannot split its keys")
	}
}

// Shards whose main phases did not overlap in time are merged, with a
// warning that their loads did not add up.
func TestCheckShardsApart(t *testing.T) {
	s0, s1 := copyShards(t, func(p, text string) string {
		if p == "s1/history.jsonl" {
			return strings.Replace(text, `"start":"2026-12-01T10:00:00.3Z"`, `"start":"2026-12-01T10:05:00Z"`, 1)
		}
		return text
	})
	r, err := CheckShards(context.Background(), []string{s0, s1}, CheckOptions{Out: t.TempDir(), NoArtifacts: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "did not all overlap in time") }) {
		t.Errorf("warnings %q: want one saying the shards ran apart", r.Warnings)
	}
	together, err := CheckShards(context.Background(), []string{filepath.Join("testdata", "shards", "s0"), filepath.Join("testdata", "shards", "s1")}, CheckOptions{Out: t.TempDir(), NoArtifacts: true})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(together.Warnings, func(w string) bool { return strings.Contains(w, "overlap") }) {
		t.Errorf("warnings %q for shards that ran together", together.Warnings)
	}
}

// The merged run's planned faults (schedule) and injected faults share one
// origin: shard 0's planned times are shifted onto the merged timeline as
// its injected faults are.
func TestCheckShardsScheduleSharesTheFaultsOrigin(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"s0", "s1"} {
		if err := os.CopyFS(filepath.Join(dir, s), os.DirFS(filepath.Join("testdata", "shards", s))); err != nil {
			t.Fatal(err)
		}
	}
	s0 := filepath.Join(dir, "s0")
	res, err := reports.ReadResults(s0)
	if err != nil {
		t.Fatal(err)
	}
	// A fault planned and injected at the same instant of shard 0's clock.
	f := reports.Fault{Name: "latency", Start: 500_000_000, End: 600_000_000} // in the main phase
	res.Schedule, res.Faults = []reports.Fault{f}, []reports.Fault{f}
	if err := reports.WriteResults(s0, res); err != nil {
		t.Fatal(err)
	}
	r, err := CheckShards(context.Background(), []string{s0, filepath.Join(dir, "s1")}, CheckOptions{Out: filepath.Join(dir, "merged"), NoArtifacts: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Schedule) != 1 || len(r.Faults) != 1 {
		t.Fatalf("schedule %+v, faults %+v", r.Schedule, r.Faults)
	}
	if r.Faults[0].Start == f.Start {
		t.Fatalf("shard 0's times were not shifted (fault at %d): this test shows nothing", f.Start)
	}
	if r.Schedule[0].Start != r.Faults[0].Start || r.Schedule[0].End != r.Faults[0].End {
		t.Errorf("planned %d..%d, injected %d..%d: the same instants of shard 0 on two origins",
			r.Schedule[0].Start, r.Schedule[0].End, r.Faults[0].Start, r.Faults[0].End)
	}
}
