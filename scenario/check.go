package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/internal/version"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/workloads"
)

// CheckOptions configure a re-check.
type CheckOptions struct {
	// Budget overrides the linearizability time budget (0: the scenario's,
	// or 60 s).
	Budget time.Duration
	// OutDir, if set, is where artifacts (linearizability.html) are written.
	// For a run directory it defaults to that directory.
	OutDir string
	// NoArtifacts disables writing artifacts altogether.
	NoArtifacts bool
	// Checkers, if not empty, are the checkers to run, by their names in
	// the checkers registry (checkers.Names), in place of the scenario's
	// or the defaults; a run directory's scenario still gives their
	// parameters. An unknown name is a usage error naming the known ones.
	Checkers []string
	// Out, if set, is a directory the re-judgement is saved in as a run
	// directory's results: results.json, anomalies.jsonl (every anomaly),
	// report.html and junit.xml, and the artifacts (linearizability.html).
	// It may be the run directory itself (its results are then replaced).
	Out string
	// Format is how a history file given as the path is written
	// (history.FormatAuto: detected, see history.DetectFormat); EDN is
	// refused for a run directory, whose history.jsonl is JSON Lines.
	Format history.Format
}

// BareHistoryWorkload is the workload whose default checkers judge a
// history that comes without a scenario (another tool's, or a bare file).
const BareHistoryWorkload = "register"

// bareHistoryCheckers are the checkers of a history without a scenario:
// the register workload's, stats, and the thresholds, which are not
// applicable (there are no workload figures to judge).
func bareHistoryCheckers() ([]checkers.Checker, error) {
	if _, err := workloads.Lookup(BareHistoryWorkload); err != nil {
		return nil, err
	}
	cs, err := newCheckers(BareHistoryCheckers(), nil)
	if err != nil {
		return nil, err
	}
	return append(cs, notApplicable{name: "thresholds", why: "no workload figures in a bare history"}), nil
}

// BareHistoryCheckers names the checkers that judge a history without a
// scenario: the BareHistoryWorkload's, and stats.
func BareHistoryCheckers() []string {
	var names []string
	if wl, err := workloads.Lookup(BareHistoryWorkload); err == nil {
		names = append(names, wl.Checkers...)
	}
	return append(names, "stats")
}

// checkerNames checks names against the checkers registry: an unknown
// name is a usage error (exit 64) naming the known ones.
func checkerNames(names []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		if _, err := checkers.Lookup(n); err != nil {
			return nil, exitcode.Usagef("check: --checkers: no checker %q; the known checkers are %s", n, strings.Join(checkers.Names(), ", "))
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, exitcode.Usagef("check: --checkers names no checker; the known checkers are %s", strings.Join(checkers.Names(), ", "))
	}
	return out, nil
}

// Check re-runs the checkers on a saved run directory or history file. For
// a run directory it uses the scenario saved there (checker settings) and
// keeps what results.json says of the run: the workload's own load figures,
// its phases, and, for a run that did not finish, where and why it stopped
// (its exit code then stands unless a violation is found). For a bare
// history (which may come from another tool) it runs the default checkers.
// Anomalies name history lines as FILE:LINE: history.jsonl:N for a run
// directory, the file's own name for a bare history.
//
// Without opt.Out it writes no results.json: the caller decides what to do
// with the results; with opt.Out the results are saved there.
func Check(ctx context.Context, path string, opt CheckOptions) (*reports.Results, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, exitcode.Usagef("check: %v", err)
	}
	var names []string
	if len(opt.Checkers) > 0 {
		if names, err = checkerNames(opt.Checkers); err != nil {
			return nil, err
		}
	}
	histPath := path
	var s *Scenario
	var prev *reports.Results
	outDir := opt.OutDir
	if fi.IsDir() {
		histPath = filepath.Join(path, "history.jsonl")
		if opt.Format == history.FormatEDN {
			return nil, exitcode.Usagef("check: --format edn: %s is a run directory, whose history.jsonl is JSON Lines; give the EDN history file itself", path)
		}
		if _, err := os.Stat(histPath); err != nil {
			return nil, exitcode.Usagef("check: %s has no history.jsonl: give a run directory or a history file", path)
		}
		if sc, err := loadForJudging(filepath.Join(path, "scenario.yaml")); err == nil {
			s = sc
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("check: the run's scenario: %w", err))
		}
		prev, _ = reports.ReadResults(path)
		if outDir == "" {
			outDir = path
		}
	}
	if opt.Out != "" {
		if err := os.MkdirAll(opt.Out, 0o755); err != nil {
			return nil, exitcode.Usagef("check: --out: %v", err)
		}
		if !opt.NoArtifacts {
			outDir = opt.Out
		}
	}
	if opt.NoArtifacts {
		outDir = ""
	}
	hdr, evs, _, err := history.ReadFileFormat(histPath, opt.Format)
	var cut *history.CutError
	if errors.As(err, &cut) {
		// A writer killed mid-line: every line before it is complete, and
		// is judged; the results say so.
		err = nil
	}
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, fmt.Errorf("check: %w", err))
	}
	if len(evs) == 0 {
		return nil, exitcode.Usagef("check: %s has no events", histPath)
	}
	in := checkers.Input{Header: hdr, Events: evs, OutDir: outDir, Budget: opt.Budget, File: filepath.Base(histPath)}
	r := &reports.Results{Faultline: version.String(), Faults: []reports.Fault{}}
	if prev != nil {
		*r = *prev
		r.Faultline = version.String()
	} else if hdr != nil {
		r.Scenario, r.Seed, r.Start = hdr.Scenario, hdr.Seed, hdr.Start
	} else {
		r.Scenario = filepath.Base(histPath)
	}
	if prev == nil {
		r.Phases = history.Phases(evs)
	}
	// The anomalies are this judgement's: where they are saved (if
	// anywhere) is said again below.
	r.Anomalies = nil
	if cut != nil {
		w := cut.Error() + "; the complete lines were judged"
		if !slices.Contains(r.Warnings, w) { // check --out RUN_DIR again says it once
			r.Warnings = append(r.Warnings, w)
		}
	}
	if r.Stopped == nil {
		// A run killed hard (SIGKILL, a crash) left no results saying so:
		// its history says it by its phases, or by a cut last line.
		r.Stopped = cutShort(evs, cut)
	}
	var st *reports.Stats
	if prev != nil {
		st = &prev.Stats
	}
	cs, err := checkersFor(names, s, st)
	if err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}
	r.Checkers = runCheckers(ctx, in, cs)
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	r.Consistency = ladder(r.Checkers, s)
	if prev == nil {
		r.Stats = statsFromChecker(r.Checkers)
	}
	r.Verdict, r.ExitCode, r.ExitReason = verdictOf(r.Checkers, r.RunInvalid, r.Stopped)
	if opt.Out != "" {
		out := opt.Out
		if abs, err := filepath.Abs(out); err == nil {
			out = abs
		}
		r.RunDir = out
		r.History = ""
		if hp, err := filepath.Abs(histPath); err == nil && hp != filepath.Join(out, "history.jsonl") {
			r.History = hp
		}
		if err := reports.Save(out, r, reports.BuildOptions{}); err != nil {
			return r, exitcode.New(exitcode.Internal, fmt.Errorf("check: saving the results in %s: %w", out, err))
		}
	}
	return r, nil
}

// cutShort returns how a history shows that its run did not finish: it
// has faultline's phase markers and its final-reads phase never ended, or
// its last line was cut mid-write. Nil when neither: a foreign history
// without markers, or a run that finished.
func cutShort(evs []history.Event, cut *history.CutError) *reports.Stopped {
	phases := history.Phases(evs)
	last := "unknown"
	if len(phases) > 0 {
		last = phases[len(phases)-1].Name
	}
	if fr, ok := history.FindPhase(phases, "final-reads"); len(phases) > 0 && (!ok || fr.Open()) {
		why := fmt.Sprintf("the history ends during the %s phase, with no results of the run: it was cut short (a crash, or a kill faultline could not catch)", last)
		if cut != nil {
			why += "; " + cut.Error()
		}
		return &reports.Stopped{Phase: last, ExitCode: exitcode.InvalidRun, Reason: why}
	}
	if cut != nil {
		return &reports.Stopped{Phase: last, ExitCode: exitcode.InvalidRun, Reason: "the history's last line was cut mid-write (a crash): " + cut.Error()}
	}
	return nil
}
