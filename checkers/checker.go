// Package checkers judges histories. Every checker returns a Result value;
// none prints, exits, or takes a *testing.T.
package checkers

import (
	"context"
	"time"

	"github.com/faultline/faultline/history"
)

// Verdict is a checker's three-valued answer.
type Verdict string

// Verdicts. Unknown means the checker could not decide (it ran out of time,
// or the history was too thin to mean anything); it is never reported as Valid.
const (
	Valid   Verdict = "valid"
	Invalid Verdict = "invalid"
	Unknown Verdict = "unknown"
)

// Result is one checker's judgement of a history.
type Result struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	// Summary is one line a person can read: what was checked, what was found.
	Summary string `json:"summary"`
	// Explanation says, for an invalid or unknown verdict, which guarantee was
	// violated, where in the history to look, and what to do next.
	Explanation string `json:"explanation,omitempty"`
	// Anomalies lists concrete evidence (at most a few dozen entries).
	Anomalies []Anomaly `json:"anomalies,omitempty"`
	// Details holds checker-specific figures (counts, rates, keys checked).
	Details map[string]any `json:"details,omitempty"`
	// Threshold is true for performance thresholds: an Invalid threshold
	// result maps to exit code 3, not 1.
	Threshold bool `json:"threshold,omitempty"`
	// Internal is true when the checker itself failed (a bug in faultline,
	// not a finding about the system): the CLI exits 70.
	Internal bool          `json:"internal,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Anomaly is one piece of evidence of a violation.
type Anomaly struct {
	Kind    string         `json:"kind"`
	Key     string         `json:"key,omitempty"`
	Time    int64          `json:"time,omitempty"` // ns since run start, where it happened
	Message string         `json:"message"`
	Events  []int          `json:"events,omitempty"` // indexes into the history
	Data    map[string]any `json:"data,omitempty"`
}

// Input is what a checker judges: the events of one history in recorded
// order, plus where to write artifacts (may be empty: write none).
type Input struct {
	Header *history.HeaderLine
	Events []history.Event
	// OutDir, if not empty, is the run directory; a checker may write
	// artifacts there (linearizability.html).
	OutDir string
	// Budget is the time a checker may spend; 0 means its own default.
	Budget time.Duration
}

// Checker judges a history. Check must honour ctx and Input.Budget: running
// out of time yields Unknown, never Valid.
type Checker interface {
	Name() string
	Check(ctx context.Context, in Input) Result
}
