package scenario

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/internal/version"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/workloads"
)

// RunOptions are the settings of one run that are not part of the scenario.
type RunOptions struct {
	// Out, if set, is exactly where the run directory goes; else it goes
	// under BaseDir/<scenario>/<UTC timestamp>/.
	Out     string
	BaseDir string // default "faultline-runs"
	// Binary is the faultline executable that runs the nodes; "" means this one.
	Binary string
	// Log receives plain progress lines (phase changes, node events); nil = none.
	Log io.Writer
	// Progress, if set, is called about once a second during the main phase.
	Progress func(Progress)
	// StepSummary, if set, is a file the Markdown summary is appended to
	// (GitHub Actions' $GITHUB_STEP_SUMMARY).
	StepSummary string
	// Cleanup deletes the run's keys from the cluster at the end (a put
	// of null through the adapter, which deletes where the system can:
	// etcd, redis), after the final reads.
	Cleanup bool
	// Shard, if set, runs the scenario as one shard of a run split over
	// several generators (faultline run --shard I/N; see Shard): its keys,
	// its part of the load, and of the faults, the client-link ones past
	// shard 0.
	Shard *Shard
}

// Progress is a snapshot of a run in progress.
type Progress = reports.Progress

func (o RunOptions) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

func randomSeed() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return time.Now().UnixNano() & (1<<62 - 1)
	}
	s := int64(binary.LittleEndian.Uint64(b[:]) & (1<<53 - 1)) // exact in JSON numbers
	if s == 0 {
		s = 1
	}
	return s
}

// Run carries a scenario through every phase and returns its results. The
// returned error is non-nil only when the run could not be carried out
// (bad input: exit 64; infrastructure: exit 70; interrupted: exit 130); a
// violation is not an error but a verdict in the results. Whatever happens,
// every process Run started has ended when it returns.
func Run(ctx context.Context, s *Scenario, opt RunOptions) (res *reports.Results, err error) {
	var part *shardPart // this shard's part of the run; nil when not sharded
	if opt.Shard != nil {
		if s.rt == nil {
			if err := s.Validate(); err != nil {
				return nil, exitcode.New(exitcode.Usage, err)
			}
		}
		if part, err = s.shardOf(*opt.Shard); err != nil {
			return nil, exitcode.New(exitcode.Usage, err)
		}
	}
	if s.Seed == 0 {
		s.Seed = randomSeed()
	}
	if s.rt == nil {
		if err := s.Validate(); err != nil {
			return nil, exitcode.New(exitcode.Usage, err)
		}
	}
	rt := s.rt
	base := opt.BaseDir
	if base == "" {
		base = "faultline-runs"
	}
	startWall := time.Now()
	dir, err := reports.NewRunDir(base, s.Name, opt.Out, startWall)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, err)
	}
	unlock, err := reports.LockRunDir(dir)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, err)
	}
	defer unlock()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	opt.logf("run directory: %s", dir)
	r := &reports.Results{
		Faultline: version.String(), Scenario: s.Name, Description: s.Description, Seed: s.Seed,
		Runtime: s.Runtime, System: s.System, Nodes: s.NodeIDs(), Bugs: s.Bugs,
		Start: startWall.UTC().Format(time.RFC3339Nano), RunDir: dir,
		Faults: []reports.Fault{},
	}
	if part != nil {
		r.Shard = part.info(0)
		opt.logf("shard %s: %s", part.sh, reports.ShardLine(r))
	}
	var nem *faults.Nemesis
	var plan []faults.Planned
	closeRec := func() error { return nil } // until the history exists
	// current is the phase the run is in; saved is set once the results
	// of a finished run are being written.
	current, saved := "setup", false
	// A run that does not finish (an infrastructure error, exit 70; an
	// interruption, 130; a bad setting found late, 64) still leaves
	// results.json, anomalies.jsonl, junit.xml and report.html saying how
	// it ended and in which phase, beside the history it recorded, so it
	// can be looked at and re-judged with `faultline check`. This runs
	// after the deferred teardown below (cluster, observer), and closes the
	// history first so the reports read all of it.
	defer func() {
		var ec *exitcode.Error
		if saved || !errors.As(err, &ec) || ec.Code == exitcode.Valid {
			return
		}
		if cerr := closeRec(); cerr != nil {
			opt.logf("warning: writing the history: %v", cerr)
		}
		if nem != nil {
			r.Faults = injectedFaults(nem.Injected())
			markNotInjected(r.Schedule, plan, nem.Injected())
		}
		why := "stopped"
		if ec.Err != nil {
			why = ec.Err.Error()
		}
		r.Stopped = &reports.Stopped{Phase: current, ExitCode: ec.Code, Reason: why}
		r.Verdict, r.ExitCode, r.ExitReason = verdictOf(nil, "", r.Stopped)
		switch ec.Code {
		case ExitInterrupted:
			r.ExitReason = "interrupted during the " + current + " phase: " + why
		case exitcode.Internal:
			r.ExitReason = "infrastructure error during the " + current + " phase: " + why
		}
		r.End = time.Now().UTC().Format(time.RFC3339Nano)
		if werr := reports.Save(dir, r, reports.BuildOptions{StepSummary: opt.StepSummary}); werr != nil {
			opt.logf("warning: writing the results of the run that stopped: %v", werr)
		}
		res = r
	}()
	if err := s.saveEffective(filepath.Join(dir, "scenario.yaml")); err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}

	hf, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}
	defer hf.Close()
	// The recorder hands every event to the file within 100 ms
	// (history.DefaultFlushInterval), so a crash loses at most that.
	hdr := &history.HeaderLine{Faultline: version.String(), Scenario: s.Name, Seed: s.Seed}
	if part != nil {
		hdr.Shard, hdr.ScenarioDigest = part.sh.String(), part.digest
	}
	rec, err := history.NewRecorderAt(hf, hdr, startWall)
	if err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}
	closeRec = sync.OnceValue(rec.Close)
	defer closeRec()

	// Phases are marked in the history (observer events, f "phase") so
	// that checkers and reports of a saved run know them too.
	beginPhase := func(name string) time.Duration {
		current = name
		if opt.Progress != nil {
			opt.Progress(Progress{Phase: name})
		}
		rec.Record(history.PhaseMarker(name, history.PhaseStart))
		return rec.Now()
	}
	phase := func(name string, start time.Duration) {
		rec.Record(history.PhaseMarker(name, history.PhaseEnd))
		r.Phases = append(r.Phases, reports.Phase{Name: name, Start: int64(start), End: int64(rec.Now())})
	}

	// Setup.
	opt.logf("setup: starting %d %s nodes on the %s runtime", len(s.nodes), s.System, s.Runtime)
	t0 := beginPhase("setup")
	spec := targets.ClusterSpec{
		RunID: runID(dir), System: s.System, Nodes: s.nodes,
		Dir: dir, Binary: opt.Binary,
		// The run's secret: the nodes' APIs and a hosted proxy's API take
		// requests only with it, so no other local user drives the run.
		Token:    targets.NewToken(),
		Log:      func(format string, args ...any) { opt.logf("  "+format, args...) },
		External: s.externalSpec(),
	}
	if part != nil {
		spec.External = part.external(spec.External) // hooks are shard 0's
	}
	r.RunID = spec.RunID
	if s.KeyPrefix == "" && s.External() {
		// A shared cluster: every key of the run carries a prefix of its own.
		s.KeyPrefix = "faultline/" + spec.RunID + "/"
	}
	r.KeyPrefix = s.KeyPrefix
	links, closeLinks, closeProxy, err := setupLinks(ctx, rt, spec)
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx)
		}
		return nil, infra(fmt.Errorf("setting up the link proxies: %w", err))
	}
	defer closeProxy()
	spec.Links = links
	cluster, err := rt.Start(ctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx)
		}
		return nil, infra(fmt.Errorf("starting the cluster: %w (node logs: %s)", err, filepath.Join(dir, "nodes")))
	}
	// Teardown order: the proxies first (while their server still runs),
	// then the nodes (and, for Docker, the proxy container), then an
	// embedded proxy server.
	closeCluster := sync.OnceFunc(func() {
		closeLinks()
		if err := cluster.Close(); err != nil {
			opt.logf("warning: stopping the cluster: %v", err)
		}
	})
	defer closeCluster()
	phase("setup", t0)

	if s.External() {
		opt.logf("preflight: every node through the %s adapter, and the hooks' check forms", s.adapter.Name)
		if err := s.preflight(ctx, cluster); err != nil {
			if ctx.Err() != nil {
				return nil, interrupted(ctx)
			}
			return nil, infra(err)
		}
	}
	status := targets.StatusOf(cluster, s.sys)
	obs := startObserver(ctx, cluster, status, rec, 250*time.Millisecond)
	stopObs := sync.OnceFunc(obs.Stop)
	defer stopObs()

	clients := s.clientConfig(cluster)
	serving := s.servingNodes()
	newClient := func(worker int) (workloads.Client, error) {
		cfg := clients
		if s.Workload.Sessions != SessionsSpread || len(serving) == 1 {
			cfg.Home = serving[worker%len(serving)]
			return s.newClient(cfg)
		}
		// Spread: one client per serving node, each operation to one of
		// them at random (seeded per worker).
		var per []targets.Client
		for _, id := range serving {
			cfg.Home = id
			c, err := s.newClient(cfg)
			if err != nil {
				for _, p := range per {
					p.Close()
				}
				return nil, err
			}
			per = append(per, c)
		}
		return targets.Spread(per, uint64(s.Seed)^uint64(worker+1)*0x9e3779b97f4a7c15), nil
	}

	// Warm-up: the cluster must serve a read through every node that takes
	// the workload's operations before the load starts, within the warm-up
	// window.
	t0 = beginPhase("warmup")
	opt.logf("warm-up: waiting for the cluster to serve (up to %s)", s.Warmup)
	if err := s.warmUp(ctx, clients, s.Warmup.D()); err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx)
		}
		return nil, infra(fmt.Errorf("warm-up: %w (node logs: %s)", err, filepath.Join(dir, "nodes")))
	}
	phase("warmup", t0)

	// Main phase.
	hlog, err := os.Create(filepath.Join(dir, "latency.hlog"))
	if err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}
	defer hlog.Close()
	nem = faults.NewNemesis(faults.Target{Cluster: cluster, System: s.sys, Status: status, Links: links}, rec)
	// Each fault's start (naming its nodes) and end, and what the heal
	// changed, go to the live log.
	nem.SetLog(func(format string, args ...any) { opt.logf("  "+format, args...) })
	plan = s.Faults.Plan(s.nodes, s.Seed, s.Duration.D())
	for _, p := range plan {
		r.Schedule = append(r.Schedule, plannedFault(p))
	}
	inject := plan
	if part != nil {
		inject, r.Shard.FaultsLeft = part.filterPlan(plan, r.Schedule, s.faultEnv())
	}
	for _, f := range s.pastTheEnd() {
		r.Schedule = append(r.Schedule, f)
		opt.logf("  not injected: %s at %s: %s", f.Name, time.Duration(f.Start), f.Error)
	}
	// Metrics samples (the scenario's metrics block) from just before the
	// main phase until the recovery ends.
	mets, err := s.startMetrics(ctx, cluster, rec)
	if err != nil {
		return nil, infra(err)
	}
	defer mets.Stop()
	t0 = beginPhase("main")
	// The plan counts from the main phase's start; results.json gives
	// every time from the run's start (the history's clock), as the
	// injected faults and the phases do.
	for i := range r.Schedule {
		r.Schedule[i].Start += int64(t0)
		if r.Schedule[i].End != 0 {
			r.Schedule[i].End += int64(t0)
		}
	}
	opt.logf("main: %s of %s; %d faults planned", s.Duration, loadDescription(s), len(plan))
	gen, err := s.Workload.Params.New()
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, fmt.Errorf("workload %s: %w", s.Workload.Type, err))
	}
	wcfg := workloads.Config{
		Duration:    s.Duration.D(),
		Rate:        s.Workload.Rate,
		Concurrency: s.Workload.Concurrency,
		Seed:        s.Seed,
		NewClient:   newClient,
		Generator:   gen,
		Recorder:    rec,
		HLog:        hlog,
		OpTimeout:   s.Workload.Timeout.D() * 2,
		Progress:    &workloads.Progress{},
	}
	for _, st := range s.Workload.Stages {
		wcfg.Stages = append(wcfg.Stages, workloads.Stage{Duration: st.Duration.D(), Rate: st.Rate})
	}
	minOps := s.MinOps
	if part != nil {
		if err := part.apply(gen, &wcfg); err != nil {
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("shard %s: %w", part.sh, err))
		}
		minOps = part.minOps
	}
	// The proxies are audited until the final reads end: a toxic or a
	// disabled proxy the nemesis did not make is tampering.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); nem.Watch(watchCtx, 0) }()
	stopWatching := sync.OnceFunc(func() { stopWatch(); <-watchDone })
	defer stopWatching()
	nemDone := make(chan struct{})
	mainCtx, endMain := context.WithCancel(ctx)
	go func() {
		defer close(nemDone)
		nem.Run(mainCtx, inject, t0, nil)
	}()
	wstats, werr := runMain(ctx, wcfg, opt, nem)
	endMain()
	<-nemDone
	phase("main", t0)
	if wstats != nil {
		// Also the figures of a main phase cut short: an interrupted
		// run's results show the load until then.
		r.Stats = workloadStats(wstats)
	}
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	if werr != nil {
		return nil, infra(fmt.Errorf("workload: %w", werr))
	}

	// Heal every fault, give the cluster its recovery window, then read
	// every key once.
	t0 = beginPhase("heal")
	var healErr error
	if err := nem.Heal(ctx); err != nil {
		healErr = err
		opt.logf("heal: %v", err)
		if ctx.Err() != nil {
			return nil, interrupted(ctx)
		}
	}
	phase("heal", t0)
	r.Faults = injectedFaults(nem.Injected())
	markNotInjected(r.Schedule, plan, nem.Injected())
	if within := s.convergenceWithin(); within > 0 {
		// Every replica's own value of every key, in rounds from the
		// heal until they agree (the convergence checker's evidence).
		if k, ok := gen.(interface{ Keys() []string }); ok {
			t0 = beginPhase("convergence")
			keys := make([]string, 0, len(k.Keys()))
			for _, key := range k.Keys() {
				keys = append(keys, s.KeyPrefix+key)
			}
			rounds, agreed := readReplicas(ctx, cluster, s.sys.LocalRead, keys, rec, within)
			opt.logf("convergence: %d rounds of replica reads; the replicas %s", rounds, map[bool]string{true: "agree on every key", false: "still disagree at the bound " + within.String()}[agreed])
			phase("convergence", t0)
			if ctx.Err() != nil {
				return nil, interrupted(ctx)
			}
		}
	}
	t0 = beginPhase("recovery")
	opt.logf("recovery: %s", s.Recovery)
	select {
	case <-ctx.Done():
		return nil, interrupted(ctx)
	case <-time.After(s.Recovery.D()):
	}
	if err := s.warmUp(ctx, clients, 30*time.Second); err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx)
		}
		opt.logf("recovery: the cluster does not serve every node 30 s after the heal: %v", err)
		r.Extra = map[string]any{"recovery_error": err.Error()}
	}
	phase("recovery", t0)
	mets.Stop()
	t0 = beginPhase("final-reads")
	opt.logf("final reads: the %s workload's final step", s.Workload.Type)
	fcfg := clients
	fcfg.Home = serving[0]
	if l := obs.Leader(); l != "" && s.sys.Serving(fcfg.Roles[l]) {
		fcfg.Home = l // fewer hops, and no dependence on the first node being up
	}
	fc, err := s.newClient(fcfg)
	if err != nil {
		return nil, infra(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	_, ferr := gen.Final(fctx, fc, rec, wstats.NextProcess)
	fcancel()
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	if ferr != nil {
		opt.logf("final reads: %v", ferr)
	}
	if opt.Cleanup {
		s.cleanup(ctx, fc, gen, opt)
	}
	fc.Close()
	phase("final-reads", t0)

	stopWatching()
	stopObs()
	closeCluster()
	if err := closeRec(); err != nil {
		return nil, exitcode.New(exitcode.Internal, fmt.Errorf("writing the history: %w", err))
	}
	if err := hf.Sync(); err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}

	// Check: judge the history as written to disk, exactly as
	// `faultline check` would.
	opt.logf("check: judging %d events", rec.Count())
	hdr, evs, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return nil, exitcode.New(exitcode.Internal, fmt.Errorf("reading back the history: %w", err))
	}
	current = "check"
	in := checkers.Input{Header: hdr, Events: evs, OutDir: dir, File: "history.jsonl"}
	r.Stats = workloadStats(wstats)
	cs, err := s.checkerList(&r.Stats)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, err)
	}
	r.Checkers = runCheckers(ctx, in, cs)
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	r.Consistency = ladder(r.Checkers, s)
	// Every reason the run cannot mean anything is kept.
	var invalid []string
	if healErr != nil {
		invalid = append(invalid, fmt.Sprintf("the heal failed, so the cluster was not whole for the recovery and the final reads: %v", healErr))
	}
	if wstats.OK < int64(minOps) {
		invalid = append(invalid, fmt.Sprintf("only %d operations succeeded in the main phase (min_ops is %d): the cluster was not really exercised; look at the node logs and the fail/info errors", wstats.OK, minOps))
	}
	if tp := nem.Tampered(); len(tp) > 0 {
		for _, t := range tp {
			r.Tampered = append(r.Tampered, t.String())
		}
		invalid = append(invalid, fmt.Sprintf("someone else changed the run's proxies while it ran (%d changes faultline did not make, first: %s): the faults it was under are not the ones recorded; see tampered in results.json and the f \"tamper\" events in the history", len(tp), tp[0]))
	}
	if links != nil {
		switch st := nem.AuditStatus(); {
		case st.Done == 0:
			r.Warnings = append(r.Warnings, "the proxies were never audited (the Toxiproxy API did not answer the audits): a change to them by someone else would have gone unseen")
		case st.Failed > 0:
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d audits of the proxies could not read them (last: %s): a change to them in between could have gone unseen", st.Failed, st.Done+st.Failed, st.LastError))
		}
	}
	r.RunInvalid = strings.Join(invalid, "; ")
	r.Verdict, r.ExitCode, r.ExitReason = Verdict(r.Checkers, r.RunInvalid)
	r.End = time.Now().UTC().Format(time.RFC3339Nano)
	saved = true
	if err := reports.Save(dir, r, reports.BuildOptions{StepSummary: opt.StepSummary}); err != nil {
		return r, exitcode.New(exitcode.Internal, err)
	}
	return r, nil
}

func infra(err error) error { return exitcode.New(exitcode.Internal, err) }

// ExitInterrupted is the exit code of a run stopped by SIGINT or SIGTERM.
const ExitInterrupted = 130

func interrupted(ctx context.Context) error {
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(cause, context.Canceled) {
		cause = errors.New("interrupted")
	}
	return exitcode.New(ExitInterrupted, fmt.Errorf("run stopped: %v; every node it started has been stopped", cause))
}

func loadDescription(s *Scenario) string {
	w := s.Workload
	if w.Rate > 0 {
		return fmt.Sprintf("open-loop %s load at %.0f ops/s (up to %d in flight)", w.Type, w.Rate, w.Concurrency)
	}
	return fmt.Sprintf("closed-loop %s load with %d workers", w.Type, w.Concurrency)
}

// runMain runs the workload and reports progress about once a second.
func runMain(ctx context.Context, cfg workloads.Config, opt RunOptions, nem *faults.Nemesis) (*workloads.Stats, error) {
	type result struct {
		st  *workloads.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := workloads.Run(ctx, cfg)
		done <- result{st, err}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			return r.st, r.err
		case <-tick.C:
			p := cfg.Progress.Snapshot()
			if opt.Progress != nil && p.Running {
				opt.Progress(Progress{Phase: "main", Elapsed: p.Elapsed, Total: cfg.Duration, Ops: p.Ops, Errors: p.Fail + p.Info, Rate: p.Rate, Fault: strings.Join(nem.InForce(), ",")})
			}
		}
	}
}

func workloadStats(ws *workloads.Stats) reports.Stats {
	st := reports.Stats{
		Ops: ws.Ops, OK: ws.OK, Fail: ws.Fail, Mismatch: ws.Mismatch, Info: ws.Info, Missed: ws.Missed,
		TargetRate: ws.TargetRate, AchievedRate: ws.AchievedRate, Duration: ws.Duration.Seconds(),
		Latency: history.PercentilesOf(ws.Latency), ByF: map[string]reports.OpStats{},
	}
	if ws.Service != nil {
		p := history.PercentilesOf(ws.Service)
		st.Service = &p
	}
	if ws.Lag != nil && ws.TargetRate > 0 {
		p := history.PercentilesOf(ws.Lag)
		st.DispatchLag = &p
	}
	for f, c := range ws.ByF {
		st.ByF[f] = reports.OpStats{Ops: c.Ops, OK: c.OK, Fail: c.Fail, Mismatch: c.Mismatch, Info: c.Info}
	}
	st.ByEndpoint = endpointStats(ws.ByKey)
	return st
}

// saveEffective writes the scenario as run (defaults, overrides and the
// seed applied), so `faultline run RUN_DIR/scenario.yaml` replays it.
func (s *Scenario) saveEffective(path string) error {
	// A secret given in the file itself (not as NAME_env) is not copied;
	// an external cluster's addresses are saved as the run used them, so
	// that the saved scenario replays (and is judged) without the
	// environment or the --node flags that gave them.
	saved := *s
	if s.Cluster != nil && len(s.extNodes) == len(s.Cluster.Nodes) {
		c := *s.Cluster
		c.Nodes = append([]ExternalNodeConfig(nil), s.Cluster.Nodes...)
		for i := range c.Nodes {
			c.Nodes[i].Client, c.Nodes[i].Admin = s.extNodes[i].Client, s.extNodes[i].Admin
		}
		saved.Cluster = &c
	}
	redacted := false
	if s.adapter != nil && len(s.Client.Options) > 0 {
		saved.Client.Options = map[string]string{}
		for k, v := range s.Client.Options {
			if s.adapter.IsSecret(k) {
				v, redacted = targets.Redacted, true
			}
			saved.Client.Options[k] = v
		}
	}
	b, err := Marshal(&saved)
	if err != nil {
		return err
	}
	head := fmt.Sprintf("# The scenario as run by faultline %s (defaults, overrides and seed applied).\n# Replay: faultline run %s\n", version.String(), path)
	if redacted {
		head += "# Secrets given in the scenario are shown as " + targets.Redacted + ": give them as NAME_env (an environment variable) to replay.\n"
	}
	return os.WriteFile(path, append([]byte(head), b...), 0o644)
}
