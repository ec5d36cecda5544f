package reports

import (
	"strings"

	"github.com/faultline/faultline/checkers"
)

// The reports only show verdicts: the checkers decide them, and
// checkers.Combine combines them (the conductor's exit code). A result
// that reports figures, not a verdict (checkers.Result.Figures, set by the
// stats checker), is shown as "figures", never as a passing verdict, and
// is a skipped case in junit.xml.

// verdictLabel is how c's verdict is shown to people: valid, invalid,
// unknown, "not applicable" or "figures".
func verdictLabel(c checkers.Result) string {
	switch {
	case c.Figures:
		return "figures"
	case c.Verdict == checkers.NotApplicable:
		return "not applicable"
	case c.Verdict == "":
		return string(checkers.Unknown)
	}
	return string(c.Verdict)
}

// checkerClass is the CSS class of c's verdict: valid, invalid, unknown,
// or na (not applicable, figures).
func checkerClass(c checkers.Result) string {
	if c.Figures || c.Verdict == checkers.NotApplicable {
		return "na"
	}
	return verdictClass(string(c.Verdict))
}

// figuresPrefix is how the stats checker's summary says it gives figures.
const figuresPrefix = "figures, not a verdict: "

// summaryText is c's summary as shown beside its verdict label: without
// the stats checker's "figures, not a verdict: " when the label says
// figures already.
func summaryText(c checkers.Result) string {
	if c.Figures {
		return strings.TrimPrefix(c.Summary, figuresPrefix)
	}
	return c.Summary
}
