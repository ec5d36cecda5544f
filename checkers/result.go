package checkers

import (
	"fmt"
	"strings"
	"time"
)

// finish sets r's anomaly count and the time elapsed since start, and
// returns r: the last step of a Check.
func finish(r *Result, start time.Time) Result {
	r.AnomalyCount = len(r.Anomalies)
	r.Elapsed = time.Since(start)
	return *r
}

// budgetOr is in.Budget, or def where it is not set.
func (in Input) budgetOr(def time.Duration) time.Duration {
	if in.Budget <= 0 {
		return def
	}
	return in.Budget
}

// setMalformed makes r Unknown for a history whose operations (what: the
// ones the checker judges, such as "writes") cannot be paired with their
// outcomes; p is the first problem found.
func (r *Result) setMalformed(what string, p problem) {
	r.Verdict = Unknown
	r.Summary = "the history is malformed, so " + what + " cannot be paired with their outcomes"
	r.Explanation = p.Message + ". The stats checker lists every such problem."
}

// listAnomalies writes one line ("\n- " and line(a)) for each of the first
// five of as to b, then counts the rest.
func listAnomalies(b *strings.Builder, as []Anomaly, line func(Anomaly) string) {
	for i, a := range as {
		if i == 5 {
			fmt.Fprintf(b, "\n... and %d more: all %d are in the anomalies (anomalies.jsonl)", len(as)-5, len(as))
			break
		}
		b.WriteString("\n- " + line(a))
	}
}
