package scenario

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/workloads"
)

// Shard is one generator's part of a run split over several (faultline
// run --shard I/N): shard Index of Count, 0 <= Index < Count. Every shard
// runs the same scenario with the same seed against one cluster someone
// else runs (runtime external), from its own process and machine:
//
//   - keys: shard I drives the keys k<j> with j mod N = I (a workload that
//     cannot split its keys, such as http, sends to all of them), so each
//     key's history lies in one shard and per-key checkers judge the union
//     with no clock shared across machines;
//   - client processes: shard I's ids start at I·ShardProcessStride;
//   - load: the total rate (and every stage's) and the concurrency are
//     split evenly, so N shards together send what one generator would;
//     min_ops too;
//   - faults: every shard plans the same seeded schedule and applies its
//     client-link faults to its own proxies (each shard has its own
//     Toxiproxy); process faults and hooks (kill, pause, partitions,
//     clock skew, the heal hook) run from shard 0 only.
//
// faultline check DIR... merges the shards' run directories into one
// verdict (CheckShards).
type Shard struct {
	Index int
	Count int
}

// MaxShards bounds the shards of one run.
const MaxShards = 1024

// ShardProcessStride separates the client process ids of the shards:
// shard I's start at I·ShardProcessStride, and a shard would need that many
// unknown outcomes to reach the next shard's.
const ShardProcessStride = 1_000_000_000

// ParseShard reads "I/N" (0 <= I < N <= MaxShards).
func ParseShard(text string) (Shard, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(text), "/")
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard %q: write INDEX/COUNT, e.g. 0/3 for the first of three shards", text)
	}
	if cnt < 1 || cnt > MaxShards {
		return Shard{}, fmt.Errorf("--shard %q: the shard count must be 1 to %d", text, MaxShards)
	}
	if idx < 0 || idx >= cnt {
		return Shard{}, fmt.Errorf("--shard %q: the index counts from 0 and must be below the count (0 to %d)", text, cnt-1)
	}
	return Shard{Index: idx, Count: cnt}, nil
}

// String is "I/N".
func (sh Shard) String() string { return fmt.Sprintf("%d/%d", sh.Index, sh.Count) }

// shardPart is what one shard of a scenario drives: its part of the load,
// its process ids, and the scenario digest every shard must share.
type shardPart struct {
	sh          Shard
	digest      string
	rate        float64
	stages      []workloads.Stage
	concurrency int
	minOps      int
	seed        int64 // the workload's random source
	first       int64 // first client process id
	keys        []string
	partitioned bool
}

// shardOf checks that s can be run as shard sh and returns the shard's
// part; the error (a usage error, exit 64) says what to change. It is
// called before anything starts, with the seed the shards share.
func (s *Scenario) shardOf(sh Shard) (*shardPart, error) {
	if sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
		return nil, fmt.Errorf("--shard %s: want 0 <= index < count", sh)
	}
	if !s.External() {
		return nil, fmt.Errorf("--shard %s: shards share one cluster someone else runs: it needs runtime: external (with runtime %s each shard would start a cluster of its own; see the README, \"Sharded runs\")", sh, s.Runtime)
	}
	if s.Seed == 0 {
		return nil, fmt.Errorf("--shard %s: every shard must plan the same faults, so they need one seed: give --seed N (the same on every shard) or seed: in the scenario", sh)
	}
	p := &shardPart{sh: sh, seed: s.Seed + int64(sh.Index), first: int64(sh.Index) * ShardProcessStride}
	n := float64(sh.Count)
	p.rate = s.Workload.Rate / n
	for _, st := range s.Workload.Stages {
		p.stages = append(p.stages, workloads.Stage{Duration: st.Duration.D(), Rate: st.Rate / n})
	}
	p.concurrency = max(1, (s.Workload.Concurrency+sh.Count-1)/sh.Count)
	p.minOps = (s.MinOps + sh.Count - 1) / sh.Count
	inst, err := s.Workload.Params.New()
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", s.Workload.Type, err)
	}
	if ks, ok := inst.(workloads.KeySharder); ok {
		if err := ks.ShardKeys(sh.Index, sh.Count); err != nil {
			return nil, s.errAt("workload.keys", "--shard %s: %v", sh, err)
		}
		p.partitioned = true
		if k, ok := inst.(interface{ Keys() []string }); ok {
			p.keys = k.Keys()
		}
	}
	d, err := s.digest()
	if err != nil {
		return nil, err
	}
	p.digest = d
	return p, nil
}

// apply makes gen and cfg this shard's: its keys, its part of the load,
// its process ids and its random source.
func (p *shardPart) apply(gen workloads.Instance, cfg *workloads.Config) error {
	if ks, ok := gen.(workloads.KeySharder); ok {
		if err := ks.ShardKeys(p.sh.Index, p.sh.Count); err != nil {
			return err
		}
	}
	cfg.Rate, cfg.Stages, cfg.Concurrency = p.rate, p.stages, p.concurrency
	cfg.Seed = p.seed
	cfg.FirstProcess += history.Process(p.first)
	return nil
}

// info is what results.json says of the shard (faults: the planned faults
// it left to shard 0).
func (p *shardPart) info(skipped int) *reports.ShardInfo {
	si := &reports.ShardInfo{Index: p.sh.Index, Count: p.sh.Count, ScenarioDigest: p.digest,
		KeyCount: len(p.keys), KeysPartitioned: p.partitioned, FirstProcess: p.first, Rate: p.rate, Concurrency: p.concurrency,
		Faults: reports.ShardFaultsAll, FaultsLeft: skipped}
	if len(p.keys) <= reports.MaxShardKeysListed {
		si.Keys = p.keys
	}
	if p.sh.Index > 0 {
		si.Faults = reports.ShardFaultsClientLinks
	}
	return si
}

// external is the cluster spec this shard starts: past shard 0, without
// the hooks (process faults, partitions and the heal hook are shard 0's).
func (p *shardPart) external(spec *targets.ExternalSpec) *targets.ExternalSpec {
	if spec == nil || p.sh.Index == 0 {
		return spec
	}
	c := *spec
	c.Hooks = targets.Hooks{Timeout: spec.Hooks.Timeout}
	return &c
}

// notShard0 is why a planned fault is not injected by a shard past 0.
const notShard0 = "not injected by this shard: process faults and hooks run from shard 0 only (every shard applies the schedule's client-link faults to its own proxies)"

// filterPlan returns the faults of plan this shard injects: all of them
// on shard 0; past it, those that act only on client links (each shard's
// own proxies). The others are marked in sched (results.json's schedule,
// one entry per planned fault, in order) and counted.
func (p *shardPart) filterPlan(plan []faults.Planned, sched []reports.Fault, env faults.Env) ([]faults.Planned, int) {
	if p.sh.Index == 0 {
		return plan, 0
	}
	var out []faults.Planned
	skipped := 0
	for i, f := range plan {
		if clientLinksOnly(f.Spec, env) {
			out = append(out, f)
			continue
		}
		skipped++
		if i < len(sched) {
			sched[i].Error = notShard0
		}
	}
	return out, skipped
}

// clientLinksOnly reports whether a fault needs nothing of the target
// but proxies on the client links: a shard's own proxies are enough to
// inject it. It asks the fault itself (Available) on a target that has
// only those: no process control, pausing, hooks, peer links or clock.
func clientLinksOnly(sp faults.Spec, env faults.Env) bool {
	if sp.Kind == nil {
		return false
	}
	bare := faults.Env{Runtime: env.Runtime, Caps: targets.Capabilities{Links: targets.ClientLinks}, Nodes: env.Nodes}
	if env.System != nil {
		sys := *env.System
		sys.SetClock = nil
		bare.System = &sys
	}
	return sp.Kind.Available(bare) == nil
}

// digest is the scenario's fingerprint every shard of a run shares: the
// scenario as run (defaults, overrides and seed applied), without the
// cluster's addresses, which may differ from shard to shard (a service
// name here, an address there) and name the same nodes, and without
// secret values.
func (s *Scenario) digest() (string, error) {
	c := *s
	if s.Cluster != nil {
		cc := *s.Cluster
		cc.Nodes = append([]ExternalNodeConfig(nil), s.Cluster.Nodes...)
		for i := range cc.Nodes {
			cc.Nodes[i].Client, cc.Nodes[i].Admin = "", ""
		}
		c.Cluster = &cc
	}
	if s.adapter != nil && len(s.Client.Options) > 0 {
		c.Client.Options = map[string]string{}
		for k, v := range s.Client.Options {
			if s.adapter.IsSecret(k) {
				v = targets.Redacted
			}
			c.Client.Options[k] = v
		}
	}
	b, err := yaml.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("scenario digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// DryRun checks s (and, if sh is not nil, that it can run as that shard)
// and writes to w what the run would do, without starting anything: the
// keys, the load, the client process ids and the faults planned (for a
// shard, which of them it injects). The error is a usage error (exit 64)
// saying what to change.
func DryRun(s *Scenario, sh *Shard, w io.Writer) error {
	seedNote := ""
	if s.Seed == 0 && sh == nil {
		seedNote = " (none given: a run picks one, and the fault plan below is for seed 0)"
	}
	load := func(rate float64, conc int) string {
		if rate > 0 {
			return fmt.Sprintf("open loop at %s ops/s, up to %d in flight", strconv.FormatFloat(rate, 'f', -1, 64), conc)
		}
		return fmt.Sprintf("closed loop with %d workers", conc)
	}
	var plan []faults.Planned
	if s.Faults != nil {
		plan = s.Faults.Plan(s.nodes, s.Seed, s.Duration.D())
	}
	sched := make([]reports.Fault, len(plan))
	if sh == nil {
		fmt.Fprintf(w, "scenario %s: valid\n  seed %d%s\n  runtime %s, system %s, nodes %s\n  workload %s: %s for %s\n  faults: %d planned\n",
			s.Name, s.Seed, seedNote, s.Runtime, s.System, strings.Join(s.NodeIDs(), ", "), s.Workload.Type,
			load(s.Workload.Rate, s.Workload.Concurrency), s.Duration, len(plan))
		return nil
	}
	p, err := s.shardOf(*sh)
	if err != nil {
		return err
	}
	kept, skipped := p.filterPlan(plan, sched, s.faultEnv())
	fmt.Fprintf(w, "scenario %s, shard %s: valid\n  seed %d, scenario digest %s (the same on every shard)\n  runtime %s, nodes %s\n",
		s.Name, sh, s.Seed, p.digest, s.Runtime, strings.Join(s.NodeIDs(), ", "))
	keys := "every key (workload " + s.Workload.Type + " does not split its keys)"
	if p.partitioned {
		list := p.keys
		more := ""
		if len(list) > 20 {
			list, more = list[:20], fmt.Sprintf(", ... (%d more)", len(p.keys)-20)
		}
		keys = fmt.Sprintf("%d of %d: %s%s", len(p.keys), s.keyCount(), strings.Join(list, ", "), more)
	}
	fmt.Fprintf(w, "  keys %s\n  load: %s (of %s) for %s; min_ops %d\n  client processes from %d; workload seed %d\n",
		keys, load(p.rate, p.concurrency), load(s.Workload.Rate, s.Workload.Concurrency), s.Duration, p.minOps, p.first, p.seed)
	what := "all (client-link faults, process faults and hooks)"
	if sh.Index > 0 {
		what = fmt.Sprintf("the client-link faults on its own proxies; %d left to shard 0 (process faults and hooks)", skipped)
	}
	fmt.Fprintf(w, "  faults: %d planned, %d injected by this shard: %s\n", len(plan), len(kept), what)
	return nil
}

// keyCount is the number of keys of a register-like workload (0 when it
// has no such parameter).
func (s *Scenario) keyCount() int {
	inst, err := s.Workload.Params.New()
	if err != nil {
		return 0
	}
	if k, ok := inst.(interface{ Keys() []string }); ok {
		return len(k.Keys())
	}
	return 0
}
