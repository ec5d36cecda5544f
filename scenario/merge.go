package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/atomicfile"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/internal/version"
	"github.com/faultline/faultline/reports"
)

// MergedHistory is the file of a merged run directory that holds the
// union of the shards' histories on the merged timeline
// (history.MergeShards), for report.html's charts; evidence names the
// shards' own history files.
const MergedHistory = "merged-history.jsonl"

// unionCheckers judge each key (and each client process) on its own, so
// they judge the union of a sharded run's histories as one history when
// every key was driven by one shard. Every other checker (split-brain,
// convergence, any checker that compares times across keys or attributes
// anomalies to fault windows, and checkers this list does not know) runs
// on each shard's own history, with its own time base, and says so.
var unionCheckers = map[string]bool{
	"linearizability":    true,
	"lost-writes":        true,
	"lost-updates":       true,
	"session-guarantees": true,
	"causal":             true,
	"stats":              true, // figures of the union; well-formedness per process
	"thresholds":         true, // the merged load figures
}

// CheckRuns is faultline check's library call: one path is a run
// directory or a history (Check), or a merged run directory, which is
// merged again from its shards (into itself unless opt.Out says
// otherwise); several are the run directories of the shards of one run
// (CheckShards).
func CheckRuns(ctx context.Context, paths []string, opt CheckOptions) (*reports.Results, error) {
	switch len(paths) {
	case 0:
		return nil, exitcode.Usagef("check: give a run directory, a history file, or the run directories of every shard of a sharded run")
	case 1:
		if dirs, ok := mergedShardDirs(paths[0]); ok {
			if opt.Out == "" {
				opt.Out = paths[0]
			}
			return CheckShards(ctx, dirs, opt)
		}
		return Check(ctx, paths[0], opt)
	}
	return CheckShards(ctx, paths, opt)
}

// mergedShardDirs returns the shards' directories of a merged run
// directory (results.json lists them; it has no history.jsonl).
func mergedShardDirs(dir string) ([]string, bool) {
	if _, err := os.Stat(filepath.Join(dir, "history.jsonl")); err == nil {
		return nil, false
	}
	r, err := reports.ReadResults(dir)
	if err != nil || len(r.Shards) == 0 {
		return nil, false
	}
	dirs := make([]string, len(r.Shards))
	for i, s := range r.Shards {
		dirs[i] = s.Dir
	}
	return dirs, true
}

// shardRun is one shard's run directory, as read for a merge.
type shardRun struct {
	arg    string // the directory as given
	dir    string // absolute
	file   string // its history as evidence names it
	info   reports.ShardInfo
	res    *reports.Results // nil without results.json
	hdr    *history.HeaderLine
	evs    []history.Event
	cut    *history.CutError
	events int
}

// CheckShards merges the run directories of the shards of one run
// (faultline run --shard I/N) and judges them as one run:
//
//   - It refuses (a usage error, exit 64, saying what is wrong) shards of
//     different scenarios, seeds, scenario digests or shard counts, a
//     shard missing or given twice, a directory that is not a shard,
//     histories whose client processes collide, and keys driven by two
//     shards.
//   - Checkers that judge each key or process on its own (linearizability,
//     lost-writes, lost-updates, session-guarantees, causal, stats) judge
//     the union of the histories, on the merged timeline of
//     history.MergeShards (each shard's phases aligned; within a phase its
//     times shifted, never reordered); the thresholds judge the merged load
//     figures (reports.MergeStats). Every other checker needs one time
//     base across nodes and keys, so it judges each shard's own history
//     and its result says so (Details "per_shard").
//   - Evidence names each event in its own shard's history, as the path
//     given plus /history.jsonl and the line (runs/s1/history.jsonl:4358).
//
// The merged run directory is opt.Out, or a new directory under
// faultline-runs/<scenario>/; nothing is written into the shards'
// directories. It holds results.json (with "shards"), anomalies.jsonl,
// report.html, junit.xml, linearizability.html (unless opt.NoArtifacts),
// latency.hlog (every shard's latency on the merged timeline) and
// merged-history.jsonl (the union, for the report's charts). faultline
// report rebuilds its reports; faultline check on it merges again.
func CheckShards(ctx context.Context, dirs []string, opt CheckOptions) (*reports.Results, error) {
	var names []string
	if len(opt.Checkers) > 0 {
		var err error
		if names, err = checkerNames(opt.Checkers); err != nil {
			return nil, err
		}
	}
	shards, err := readShards(dirs)
	if err != nil {
		return nil, err
	}
	evs := make([][]history.Event, len(shards))
	for i, sr := range shards {
		evs[i] = sr.evs
	}
	merged, err := history.MergeShards(evs)
	if err != nil {
		return nil, exitcode.Usagef("check: cannot merge the shards: %v", err)
	}
	first := shards[0]
	var s *Scenario
	if sc, err := loadForJudging(filepath.Join(first.dir, "scenario.yaml")); err == nil {
		s = sc
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, exitcode.New(exitcode.Usage, fmt.Errorf("check: the scenario of shard 0 (%s): %w", first.arg, err))
	}

	// The merged results.
	r := &reports.Results{Faultline: version.String(), Scenario: first.hdr.Scenario, Seed: first.hdr.Seed, Faults: []reports.Fault{}}
	if p := first.res; p != nil {
		r.Description, r.Runtime, r.System, r.Nodes, r.Bugs = p.Description, p.Runtime, p.System, p.Nodes, p.Bugs
		// Planned times share the faults' origin: shard 0's clock, shifted
		// onto the merged timeline as its injected faults are below.
		for _, f := range p.Schedule {
			f.Start = history.MapTime(merged.Shifts[0], f.Start)
			if f.End != 0 {
				f.End = history.MapTime(merged.Shifts[0], f.End)
			}
			r.Schedule = append(r.Schedule, f)
		}
	}
	var parts []reports.Stats
	var hlogs []string
	var invalid []string
	haveStats := true
	for i, sr := range shards {
		ms := reports.MergedShard{ShardInfo: sr.info, Dir: sr.dir, History: sr.file, TimeShift: merged.Shifts[i]}
		if sr.res != nil {
			p := sr.res
			ms.Verdict, ms.ExitCode, ms.KeyPrefix, ms.RunID, ms.Start = p.Verdict, p.ExitCode, p.KeyPrefix, p.RunID, p.Start
			ms.Ops, ms.AchievedRate, ms.Faults = p.Stats.Ops, p.Stats.AchievedRate, len(p.Faults)
			if r.Start == "" || p.Start < r.Start {
				r.Start = p.Start
			}
			r.End = max(r.End, p.End)
			parts = append(parts, p.Stats)
			if p.RunInvalid != "" {
				invalid = append(invalid, fmt.Sprintf("shard %d: %s", sr.info.Index, p.RunInvalid))
			}
			for _, w := range p.Warnings {
				r.Warnings = append(r.Warnings, fmt.Sprintf("shard %d: %s", sr.info.Index, w))
			}
			for _, t := range p.Tampered {
				r.Tampered = append(r.Tampered, fmt.Sprintf("shard %d: %s", sr.info.Index, t))
			}
			for _, f := range p.Faults {
				f.Start = history.MapTime(merged.Shifts[i], f.Start)
				if f.End != 0 {
					f.End = history.MapTime(merged.Shifts[i], f.End)
				}
				params := map[string]any{}
				for k, v := range f.Params {
					params[k] = v
				}
				params["shard"] = sr.info.String()
				f.Params = params
				r.Faults = append(r.Faults, f)
			}
			if st := p.Stopped; st != nil && r.Stopped == nil {
				r.Stopped = &reports.Stopped{Phase: st.Phase, ExitCode: st.ExitCode, Reason: fmt.Sprintf("shard %d (%s): %s", sr.info.Index, sr.arg, st.Reason)}
			}
		} else {
			haveStats = false
			r.Warnings = append(r.Warnings, fmt.Sprintf("shard %d (%s) has no results.json: its run did not finish (or the file was lost); its history is judged, its load figures are missing", sr.info.Index, sr.arg))
		}
		if r.Stopped == nil {
			if st := cutShort(sr.evs, sr.cut); st != nil && (sr.res == nil || sr.res.Stopped == nil) {
				st.Reason = fmt.Sprintf("shard %d (%s): %s", sr.info.Index, sr.arg, st.Reason)
				r.Stopped = st
			}
		}
		if sr.cut != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("shard %d: %s; the complete lines were judged", sr.info.Index, sr.cut.Error()))
		}
		hlogs = append(hlogs, filepath.Join(sr.dir, "latency.hlog"))
		r.Shards = append(r.Shards, ms)
	}
	if w := apart(shards); w != "" {
		r.Warnings = append(r.Warnings, w)
	}
	sort.SliceStable(r.Faults, func(i, j int) bool { return r.Faults[i].Start < r.Faults[j].Start })
	r.RunInvalid = strings.Join(invalid, "; ")
	r.Phases = merged.Phases
	var st *reports.Stats
	if haveStats {
		merged, notes := reports.MergeStats(parts, hlogs)
		r.Stats = merged
		st = &r.Stats
		r.Warnings = append(r.Warnings, notes...)
	}

	// Where the merged run goes.
	out := opt.Out
	if out == "" {
		d, err := reports.NewRunDir("faultline-runs", r.Scenario, "", time.Now())
		if err != nil {
			return nil, exitcode.Usagef("check: the merged run's directory: %v", err)
		}
		out = d
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, exitcode.Usagef("check: --out: %v", err)
	}
	if abs, err := filepath.Abs(out); err == nil {
		out = abs
	}
	for _, sr := range shards {
		if sr.dir == out {
			return nil, exitcode.Usagef("check: --out %s is the run directory of shard %d: the merged run goes into a directory of its own (nothing is written into the shards')", out, sr.info.Index)
		}
	}
	r.RunDir = out
	r.History = MergedHistory
	if err := writeMerged(out, first.hdr, merged, shards); err != nil {
		return nil, exitcode.New(exitcode.Internal, fmt.Errorf("check: writing the merged history in %s: %w", out, err))
	}

	// The checkers.
	cs, err := checkersFor(names, s, st)
	if err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}
	partitioned := true
	for _, sr := range shards {
		partitioned = partitioned && sr.info.KeysPartitioned
	}
	var union, each []checkers.Checker
	for _, c := range cs {
		// Per key on the union only when no key was driven by two shards.
		if unionCheckers[c.Name()] && (partitioned || c.Name() == "thresholds" || c.Name() == "stats") {
			union = append(union, c)
		} else {
			each = append(each, c)
		}
	}
	outDir := out
	if opt.NoArtifacts {
		outDir = ""
	}
	files := make([]string, len(shards))
	for i, sr := range shards {
		files[i] = sr.file
	}
	in := checkers.Input{Header: first.hdr, Events: merged.Events, OutDir: outDir, Budget: opt.Budget,
		File: files[0], FileOf: func(i int) string { return files[merged.Shard[i]] }}
	results := map[string]checkers.Result{}
	for _, res := range checkers.Run(ctx, in, union...) {
		if res.Details == nil {
			res.Details = map[string]any{}
		}
		res.Details["judged_on"] = fmt.Sprintf("the union of the %d shards' histories", len(shards))
		results[res.Name] = res
	}
	if len(each) > 0 {
		per := make([][]checkers.Result, len(shards))
		for i, sr := range shards {
			per[i] = checkers.Run(ctx, checkers.Input{Header: sr.hdr, Events: sr.evs, Budget: opt.Budget, File: sr.file}, each...)
		}
		for j, c := range each {
			rs := make([]checkers.Result, len(shards))
			for i := range shards {
				rs[i] = per[i][j]
			}
			results[c.Name()] = perShard(c.Name(), rs, shards, partitioned)
		}
	}
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	for _, c := range cs {
		r.Checkers = append(r.Checkers, results[c.Name()])
	}
	r.Consistency = ladder(r.Checkers, s)
	if !haveStats {
		r.Stats = statsFromChecker(r.Checkers)
	}
	r.Verdict, r.ExitCode, r.ExitReason = verdictOf(r.Checkers, r.RunInvalid, r.Stopped)
	if err := reports.Save(out, r, reports.BuildOptions{}); err != nil {
		return r, exitcode.New(exitcode.Internal, fmt.Errorf("check: saving the merged results in %s: %w", out, err))
	}
	return r, nil
}

// checkersFor returns the checkers of a re-judgement: those named (with
// the scenario's parameters, when there is a scenario), else the
// scenario's (st: the workload's figures, for the thresholds), else those
// of a bare history.
func checkersFor(names []string, s *Scenario, st *reports.Stats) ([]checkers.Checker, error) {
	switch {
	case names != nil:
		var cfg []CheckerConfig
		if s != nil {
			cfg = s.Checkers.List
		}
		return newCheckers(names, cfg)
	case s != nil:
		return s.checkerList(st)
	}
	return bareHistoryCheckers()
}

// readShards reads the shards' run directories and refuses what cannot
// be merged; the shards come back in shard order.
func readShards(dirs []string) ([]*shardRun, error) {
	refuse := func(format string, args ...any) error {
		return exitcode.Usagef("check: cannot merge: "+format+"; give the run directory of every shard of one run (faultline run --shard I/N with the same scenario and seed)", args...)
	}
	var shards []*shardRun
	for _, arg := range dirs {
		sr := &shardRun{arg: arg, file: filepath.Join(filepath.Clean(arg), "history.jsonl")}
		fi, err := os.Stat(arg)
		switch {
		case err != nil:
			return nil, exitcode.Usagef("check: %v", err)
		case !fi.IsDir():
			return nil, refuse("%s is a file: merging takes the shards' run directories", arg)
		}
		if sr.dir, err = filepath.Abs(arg); err != nil {
			return nil, exitcode.Usagef("check: %v", err)
		}
		hdr, evs, err := history.ReadFile(sr.file)
		if errors.As(err, &sr.cut) {
			err = nil
		}
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, refuse("%s has no history.jsonl: it is not a run directory", arg)
		case err != nil:
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("check: %w", err))
		case hdr == nil:
			return nil, refuse("%s has no header line: its history is not a faultline run's", sr.file)
		}
		sr.hdr, sr.evs = hdr, evs
		if res, err := reports.ReadResults(sr.dir); err == nil {
			sr.res = res
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("check: %w", err))
		}
		switch {
		case sr.res != nil && sr.res.Shard != nil:
			sr.info = *sr.res.Shard
		case hdr.Shard != "":
			sh, err := ParseShard(hdr.Shard)
			if err != nil {
				return nil, refuse("%s: the header's shard %q is not I/N", sr.file, hdr.Shard)
			}
			sr.info = reports.ShardInfo{Index: sh.Index, Count: sh.Count, ScenarioDigest: hdr.ScenarioDigest, FirstProcess: int64(sh.Index) * ShardProcessStride}
			// Without results.json, whether its keys were its own shows
			// in the history itself (checked against the others below).
			sr.info.KeysPartitioned = true
		default:
			return nil, refuse("%s is not a shard of a sharded run (it was run without --shard): judge it alone with faultline check %s", arg, arg)
		}
		for _, e := range evs {
			if e.Process.IsClient() {
				sr.events++
			}
		}
		shards = append(shards, sr)
	}
	// One run: the same scenario, seed, digest and count everywhere.
	a := shards[0]
	for _, b := range shards[1:] {
		switch {
		case a.info.Count != b.info.Count:
			return nil, refuse("%s is shard %s and %s is shard %s: the shard counts differ", a.arg, a.info, b.arg, b.info)
		case a.hdr.Scenario != b.hdr.Scenario:
			return nil, refuse("%s ran scenario %q and %s scenario %q", a.arg, a.hdr.Scenario, b.arg, b.hdr.Scenario)
		case a.hdr.Seed != b.hdr.Seed:
			return nil, refuse("%s ran seed %d and %s seed %d: the shards of one run share the seed (and so the fault schedule)", a.arg, a.hdr.Seed, b.arg, b.hdr.Seed)
		case a.info.ScenarioDigest != b.info.ScenarioDigest:
			return nil, refuse("%s and %s ran different scenarios of the same name and seed (digests %s and %s): compare their scenario.yaml (an override such as --rate or --duration given to one shard only?)", a.arg, b.arg, a.info.ScenarioDigest, b.info.ScenarioDigest)
		}
	}
	byIndex := map[int]*shardRun{}
	for _, sr := range shards {
		if o, dup := byIndex[sr.info.Index]; dup {
			return nil, refuse("shard %s is given twice, as %s and as %s", sr.info, o.arg, sr.arg)
		}
		byIndex[sr.info.Index] = sr
	}
	var missing []string
	for i := range a.info.Count {
		if byIndex[i] == nil {
			missing = append(missing, strconv.Itoa(i))
		}
	}
	if len(missing) > 0 {
		var have []string
		for _, sr := range shards {
			have = append(have, fmt.Sprintf("%d (%s)", sr.info.Index, sr.arg))
		}
		return nil, refuse("the run has %d shards and shard %s is missing (given: %s)", a.info.Count, strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i].info.Index < shards[j].info.Index })

	// No client process in two shards; no key in two shards whose keys
	// are their own.
	procOf := map[history.Process]int{}
	keyOf := map[history.Key]int{}
	for i, sr := range shards {
		for j := range sr.evs {
			e := &sr.evs[j]
			if !e.Process.IsClient() {
				continue
			}
			if o, ok := procOf[e.Process]; ok && o != i {
				return nil, refuse("client process %d is in %s and in %s (line %d): the histories are not of shards of one run", e.Process, shards[o].file, sr.file, e.Line)
			}
			procOf[e.Process] = i
			if e.Type != history.Invoke || !sr.info.KeysPartitioned || len(e.Key) == 0 {
				continue
			}
			k := e.KeyID()
			if o, ok := keyOf[k]; ok && o != i && shards[o].info.KeysPartitioned {
				return nil, refuse("key %s is driven by shard %d (%s) and shard %d (%s:%d): each key belongs to one shard", k, shards[o].info.Index, shards[o].arg, sr.info.Index, sr.file, e.Line)
			}
			keyOf[k] = i
		}
	}
	return shards, nil
}

// apart says, when the shards' main phases did not all overlap in time
// (by each shard's wall-clock start and its own phases), that they were
// not one run at the total rate; "" when they overlapped or it cannot be
// told.
func apart(shards []*shardRun) string {
	var latestStart, earliestEnd time.Time
	var spans []string
	for _, sr := range shards {
		t0, err := time.Parse(time.RFC3339Nano, sr.hdr.Start)
		main, ok := history.FindPhase(history.Phases(sr.evs), "main")
		if err != nil || !ok || main.Open() {
			return ""
		}
		s, e := t0.Add(time.Duration(main.Start)), t0.Add(time.Duration(main.End))
		if latestStart.IsZero() || s.After(latestStart) {
			latestStart = s
		}
		if earliestEnd.IsZero() || e.Before(earliestEnd) {
			earliestEnd = e
		}
		spans = append(spans, fmt.Sprintf("shard %d %s to %s", sr.info.Index, s.UTC().Format(time.RFC3339), e.UTC().Format(time.RFC3339)))
	}
	if !latestStart.After(earliestEnd) {
		return ""
	}
	return "the shards' main phases did not all overlap in time (" + strings.Join(spans, "; ") + "): they were not one run at the total rate, and their loads did not add up; start every shard at once (an Indexed Job's pods do)"
}

// perShard makes one result of a checker's results on each shard's own
// history: invalid if it is invalid on any shard, else unknown if unknown
// on any, else valid if valid on any, else not applicable; the summary
// says it was judged per shard and gives each shard's.
func perShard(name string, rs []checkers.Result, shards []*shardRun, partitioned bool) checkers.Result {
	out := checkers.Result{Name: name, Figures: true, Details: map[string]any{}}
	rank := map[checkers.Verdict]int{checkers.NotApplicable: 0, checkers.Valid: 1, checkers.Unknown: 2, checkers.Invalid: 3}
	verdict := checkers.NotApplicable
	var sums, expl []string
	var per []map[string]any
	for i, r := range rs {
		sh := shards[i].info
		if rank[r.Verdict] > rank[verdict] || (r.Verdict != checkers.Valid && r.Verdict != checkers.Invalid && r.Verdict != checkers.NotApplicable && r.Verdict != checkers.Unknown) {
			verdict = r.Verdict
		}
		out.Internal = out.Internal || r.Internal
		out.Threshold = out.Threshold || r.Threshold
		out.Figures = out.Figures && r.Figures
		out.Elapsed += r.Elapsed
		sums = append(sums, fmt.Sprintf("shard %d %s: %s", sh.Index, r.Verdict, r.Summary))
		if r.Explanation != "" && r.Verdict != checkers.Valid {
			expl = append(expl, fmt.Sprintf("Shard %d (%s): %s", sh.Index, shards[i].file, r.Explanation))
		}
		for _, a := range r.Anomalies {
			d := map[string]any{}
			for k, v := range a.Data {
				d[k] = v
			}
			d["shard"] = sh.String()
			a.Data = d
			a.Events = nil // indexes into the shard's history, not the union
			out.Anomalies = append(out.Anomalies, a)
		}
		per = append(per, map[string]any{"shard": sh.String(), "history": shards[i].file, "verdict": r.Verdict, "summary": r.Summary, "details": r.Details})
	}
	out.Verdict = verdict
	why := "it needs one time base across nodes and keys, and each shard's history has its own"
	if !partitioned && unionCheckers[name] {
		why = "the shards did not split their keys, so a key's history is spread over clocks that are not comparable"
	}
	out.Summary = fmt.Sprintf("judged on each shard's own history (%s): %s", why, strings.Join(sums, "; "))
	out.Explanation = strings.Join(expl, "\n")
	out.Details["per_shard"] = per
	out.AnomalyCount = len(out.Anomalies)
	return out
}

// writeMerged writes the union of the shards' histories on the merged
// timeline into dir (MergedHistory), and their latency logs merged on it
// (latency.hlog), for the merged run's report.
func writeMerged(dir string, hdr *history.HeaderLine, m *history.Merged, shards []*shardRun) error {
	h := *hdr
	h.Shard = "merged " + strconv.Itoa(len(shards))
	if err := atomicfile.Write(filepath.Join(dir, MergedHistory), func(w io.Writer) error {
		return history.WriteAll(w, &h, m.Events)
	}); err != nil {
		return err
	}
	var hlogs []string
	for _, sr := range shards {
		hlogs = append(hlogs, filepath.Join(sr.dir, "latency.hlog"))
	}
	base := time.Time{}
	if t, err := time.Parse(time.RFC3339Nano, hdr.Start); err == nil {
		base = t
	}
	return atomicfile.Write(filepath.Join(dir, "latency.hlog"), func(w io.Writer) error {
		_, err := reports.WriteMergedHlog(w, hlogs, m.Shifts, base.UnixMilli())
		return err
	})
}
