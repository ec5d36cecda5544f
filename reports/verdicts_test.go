package reports

import (
	"testing"

	"github.com/faultline/faultline/checkers"
)

// The reports show what the checkers decided: "figures" comes from
// Result.Figures, never from a checker's name.
func TestVerdictLabelFromResult(t *testing.T) {
	for _, c := range []struct {
		r           checkers.Result
		label, cls  string
		summaryText string
	}{
		{checkers.Result{Name: "stats", Verdict: checkers.NotApplicable, Figures: true, Summary: figuresPrefix + "3 ops"}, "figures", "na", "3 ops"},
		{checkers.Result{Name: "load", Verdict: checkers.NotApplicable, Figures: true, Summary: "3 ops"}, "figures", "na", "3 ops"},
		{checkers.Result{Name: "stats", Verdict: checkers.NotApplicable, Summary: figuresPrefix + "3 ops"}, "not applicable", "na", figuresPrefix + "3 ops"},
		{checkers.Result{Name: "stats", Verdict: checkers.Unknown, Summary: "history is malformed"}, "unknown", "unknown", "history is malformed"},
		{checkers.Result{Name: "stats", Verdict: checkers.Valid}, "valid", "valid", ""},
	} {
		if l, cl, s := verdictLabel(c.r), checkerClass(c.r), summaryText(c.r); l != c.label || cl != c.cls || s != c.summaryText {
			t.Errorf("%+v: shown %q (%s) %q, want %q (%s) %q", c.r, l, cl, s, c.label, c.cls, c.summaryText)
		}
	}
}
