package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
}

// BareHistoryWorkload is the workload whose default checkers judge a
// history that comes without a scenario (another tool's, or a bare file).
const BareHistoryWorkload = "register"

// bareHistoryCheckers are the checkers of a history without a scenario:
// the register workload's, and stats.
func bareHistoryCheckers() ([]checkers.Checker, error) {
	wl, err := workloads.Lookup(BareHistoryWorkload)
	if err != nil {
		return nil, err
	}
	return newCheckers(append(append([]string(nil), wl.Checkers...), "stats"), nil)
}

// Check re-runs the checkers on a saved run directory or history file. For
// a run directory it uses the scenario saved there (checker settings) and
// keeps the workload's own load figures from results.json; for a bare
// history (which may come from another tool) it runs the default checkers.
// It writes no results.json: the caller decides what to do with the results.
func Check(ctx context.Context, path string, opt CheckOptions) (*reports.Results, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, exitcode.Usagef("check: %v", err)
	}
	histPath := path
	var s *Scenario
	var prev *reports.Results
	outDir := opt.OutDir
	if fi.IsDir() {
		histPath = filepath.Join(path, "history.jsonl")
		if _, err := os.Stat(histPath); err != nil {
			return nil, exitcode.Usagef("check: %s has no history.jsonl: give a run directory or a history file", path)
		}
		if sc, err := Load(filepath.Join(path, "scenario.yaml")); err == nil {
			s = sc
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("check: the run's scenario: %w", err))
		}
		prev, _ = reports.ReadResults(path)
		if outDir == "" {
			outDir = path
		}
	}
	if opt.NoArtifacts {
		outDir = ""
	}
	hdr, evs, err := history.ReadFile(histPath)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, fmt.Errorf("check: %w", err))
	}
	if len(evs) == 0 {
		return nil, exitcode.Usagef("check: %s has no events", histPath)
	}
	in := checkers.Input{Header: hdr, Events: evs, OutDir: outDir, Budget: opt.Budget}
	r := &reports.Results{Faultline: version.String(), Faults: []reports.Fault{}}
	if prev != nil {
		*r = *prev
		r.Faultline = version.String()
	} else if hdr != nil {
		r.Scenario, r.Seed, r.Start = hdr.Scenario, hdr.Seed, hdr.Start
	} else {
		r.Scenario = filepath.Base(histPath)
	}
	var st *reports.Stats
	if prev != nil {
		st = &prev.Stats
	}
	var cs []checkers.Checker
	if s != nil {
		cs, err = s.checkerList(st)
	} else {
		cs, err = bareHistoryCheckers()
	}
	if err != nil {
		return nil, exitcode.New(exitcode.Internal, err)
	}
	r.Checkers = runCheckers(ctx, in, cs)
	if ctx.Err() != nil {
		return nil, interrupted(ctx)
	}
	if prev == nil {
		r.Stats = statsFromChecker(r.Checkers)
	}
	r.Verdict, r.ExitCode, r.ExitReason = Verdict(r.Checkers, r.RunInvalid)
	return r, nil
}
