package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotRunDir is wrapped by Build's error when the directory holds no
// readable results.json. Commands map it to exit 64 (bad usage).
var ErrNotRunDir = errors.New("not a faultline run directory")

// BuildOptions are the settings of Build.
type BuildOptions struct {
	// StepSummary, if not empty, is the file the GitHub step summary
	// (Markdown) is appended to: pass os.Getenv("GITHUB_STEP_SUMMARY").
	StepSummary string
	// NoHTML and NoJUnit skip report.html or junit.xml (both are written by
	// default).
	NoHTML  bool
	NoJUnit bool
}

// Build writes the reports of the run directory dir from what the run left
// there: it reads dir/results.json (required), dir/history.jsonl (streamed
// once, so memory does not grow with the history's length), dir/latency.hlog
// and the names of dir/nodes/*.log and dir/linearizability.html, and writes
// dir/report.html and dir/junit.xml atomically; with opt.StepSummary set it
// appends the Markdown summary to that file. It computes no verdict: the
// verdicts are results.json's.
//
// A missing or unreadable history or latency log is not an error: the
// report says what is missing and draws what it can. The error is non-nil
// when dir is not a run directory (errors.Is(err, ErrNotRunDir)) or when a
// report could not be written. Build does not modify results.json and is
// safe to run again on the same directory (by one caller at a time).
func Build(dir string, opt BuildOptions) error {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w: it does not exist; give the directory a run wrote (faultline-runs/<scenario>/<timestamp> or --out)", dir, ErrNotRunDir)
		}
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %w: it is a file; give the run directory that holds results.json (to judge a bare history use `faultline check %s`)", dir, ErrNotRunDir, dir)
	}
	r, err := ReadResults(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w: there is no results.json in it; give the directory a run wrote (faultline-runs/<scenario>/<timestamp> or --out)", dir, ErrNotRunDir)
		}
		return fmt.Errorf("%w (%w: results.json cannot be read, so the reports cannot be rebuilt; re-judge the history with `faultline check %s`)", err, ErrNotRunDir, dir)
	}
	if !opt.NoJUnit {
		b, err := JUnit(r)
		if err != nil {
			return fmt.Errorf("junit.xml: %w", err)
		}
		if err := WriteFileAtomic(filepath.Join(dir, "junit.xml"), b); err != nil {
			return fmt.Errorf("writing junit.xml: %w", err)
		}
	}
	if !opt.NoHTML {
		b, err := renderHTML(dir, r)
		if err != nil {
			return fmt.Errorf("report.html: %w", err)
		}
		if err := WriteFileAtomic(filepath.Join(dir, "report.html"), b); err != nil {
			return fmt.Errorf("writing report.html: %w", err)
		}
	}
	if opt.StepSummary != "" {
		if err := AppendStepSummary(opt.StepSummary, r, dir); err != nil {
			return fmt.Errorf("GitHub step summary %s: %w", opt.StepSummary, err)
		}
	}
	return nil
}
