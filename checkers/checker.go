// Package checkers judges histories. Every checker returns a Result value;
// none prints, exits, or takes a *testing.T.
package checkers

import (
	"context"
	"fmt"
	"time"

	"github.com/faultline/faultline/history"
)

// Verdict is a checker's answer: one of the four constants below, as
// results.json spells them.
type Verdict string

// Verdicts. Unknown means the checker could not decide (it ran out of time,
// or the history was too thin to mean anything); it is never reported as Valid.
const (
	Valid   Verdict = "valid"
	Invalid Verdict = "invalid"
	Unknown Verdict = "unknown"
	// NotApplicable means the history lacks what the checker needs (no
	// final reads, values that repeat, no thresholds); the Summary says
	// why. It never turns the overall verdict unknown.
	NotApplicable Verdict = "not_applicable"
)

// Result is one checker's judgement of a history.
type Result struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	// Summary is one line a person can read: what was checked, what was found.
	Summary string `json:"summary"`
	// Explanation says, for a verdict other than valid, which guarantee was
	// violated (or why the checker could not decide, or does not apply),
	// where in the history to look (Input.Ref) and what to do next.
	Explanation string `json:"explanation,omitempty"`
	// Anomalies lists every piece of evidence the checker found; the
	// reports keep all of them in anomalies.jsonl and a bounded sample in
	// results.json (AnomalyCount says how many there were in all).
	Anomalies []Anomaly `json:"anomalies,omitempty"`
	// AnomalyCount is the number of anomalies found (results.json keeps a
	// sample of Anomalies; this is the whole count).
	AnomalyCount int `json:"anomaly_count,omitempty"`
	// Details holds checker-specific figures (counts, rates, keys checked).
	Details map[string]any `json:"details,omitempty"`
	// Threshold is true for performance thresholds: an Invalid threshold
	// result maps to exit code 3, not 1.
	Threshold bool `json:"threshold,omitempty"`
	// Internal is true when the checker itself failed (a bug in faultline,
	// not a finding about the system): the CLI exits 70.
	Internal bool `json:"internal,omitempty"`
	// Figures is true when the result reports figures, not a verdict (the
	// stats checker on a well-formed history; its Verdict is then
	// NotApplicable): Combine counts it as no verdict at all, and the
	// reports show it as "figures". A checker sets it; nothing decides it
	// by the checker's name.
	Figures bool `json:"figures,omitempty"`
	// Advisory is true when the scenario's expected consistency model
	// (expect:) does not require what this checker found: its verdict is
	// reported and does not set the overall verdict or the exit code
	// (Advise sets it; Combine honours it).
	Advisory bool `json:"advisory,omitempty"`
	// Gates, with Advisory, is the verdict on the models the scenario
	// requires of this checker when it differs from Verdict, which is
	// about other models too (the session checker: read-your-writes valid
	// or unknown, monotonic reads invalid). Combine judges the result by
	// it; "" when Verdict itself gates, or nothing does.
	Gates   Verdict       `json:"gates,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Anomaly is one piece of evidence of a violation.
type Anomaly struct {
	Kind string `json:"kind"`
	Key  string `json:"key,omitempty"` // the key's text (history.Event.Key)
	// KeyIsNumber is true when the key was a JSON number in the history
	// (1, not "1": different keys).
	KeyIsNumber bool   `json:"key_is_number,omitempty"`
	Time        int64  `json:"time,omitempty"` // ns since run start, where it happened
	Message     string `json:"message"`
	// Node is the node that answered the operation in question, if the
	// history names it.
	Node string `json:"node,omitempty"`
	// Refs are the history lines of the evidence as FILE:LINE (Input.Ref),
	// the operation in question first: the same reference everywhere the
	// anomaly is shown.
	Refs []string `json:"refs,omitempty"`
	// Events are indexes into Input.Events (for code; not shown).
	Events []int          `json:"-"`
	Data   map[string]any `json:"data,omitempty"`
}

// Input is what a checker judges: the events of one history in recorded
// order, plus where to write artifacts (may be empty: write none).
type Input struct {
	Header *history.HeaderLine
	Events []history.Event
	// File names the history in references (Ref); "" means history.jsonl.
	File string
	// FileOf, if set, names the file event i came from, in place of File
	// (the union of a sharded run's histories, each event in its shard's
	// history.jsonl; "" falls back to File).
	FileOf func(i int) string
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

// Ref returns the reference of event i as FILE:LINE: its line in the file
// it was read from (history.Event.Line), or, for events built in memory,
// its position counting a header line as line 1 when the input has one.
func (in Input) Ref(i int) string {
	file := in.File
	if in.FileOf != nil && i >= 0 && i < len(in.Events) {
		if f := in.FileOf(i); f != "" {
			file = f
		}
	}
	if file == "" {
		file = "history.jsonl"
	}
	line := 0
	if i >= 0 && i < len(in.Events) {
		line = in.Events[i].Line
	}
	if line == 0 {
		line = i + 1
		if in.Header != nil {
			line++
		}
	}
	return fmt.Sprintf("%s:%d", file, line)
}
