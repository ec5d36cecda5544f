package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/browsertest"
	"github.com/faultline/faultline/reports"
)

// browseRun opens the report.html of an example's run (TestExamples' own
// run: no run of its own) in headless Chromium and checks what a reviewer
// sees: the verdict of results.json, a card per checker, an evidence table
// under every invalid checker, no browser error and no request. It keeps a
// full-page screenshot, report-NAME.png, in the artifact directory
// ($FAULTLINE_ARTIFACTS, else the test's: the test logs the path). For a
// run whose linearizability is invalid it then opens linearizability.html
// in the same tab and checks that its title names the scenario and that
// its first violation is in the window at open (the page is wider than the
// window by far), and keeps linearizability-NAME-at-open.png, what the
// window shows; then that the lanes' labels stay in view when the page
// scrolls sideways.
func browseRun(t *testing.T, dir, name string) {
	t.Helper()
	browsertest.Chromium(t)
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := browsertest.Open(t, filepath.Join(dir, "report.html"), 2*time.Minute)
	if got, want := browsertest.Eval[string](t, p, `document.querySelector("#verdict .verdict-word").textContent.trim()`), strings.ToUpper(res.Verdict); got != want {
		t.Errorf("report.html shows verdict %q, results.json says %q", got, want)
	}
	if got := browsertest.Eval[int](t, p, `document.querySelectorAll("article.checker").length`); got != len(res.Checkers) {
		t.Errorf("report.html has %d checker cards, results.json %d checkers", got, len(res.Checkers))
	}
	lin := false
	for _, c := range res.Checkers {
		if c.Verdict != checkers.Invalid {
			continue
		}
		lin = lin || c.Name == "linearizability"
		rows := browsertest.Eval[int](t, p, `document.querySelectorAll('article[data-checker="`+c.Name+`"] table.anomalies tbody tr').length`)
		if c.AnomalyCount > 0 && rows == 0 {
			t.Errorf("report.html shows no evidence under %s, invalid with %d anomalies", c.Name, c.AnomalyCount)
		}
	}
	browsertest.Screenshot(t, p, "report-"+name+".png")
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("report.html: browser errors:\n%s", strings.Join(errs, "\n"))
	}
	if reqs := p.Requests(); len(reqs) > 0 {
		t.Errorf("report.html made network requests: %q", reqs)
	}
	if !lin {
		return
	}
	page := filepath.Join(dir, "linearizability.html")
	if fi, err := os.Stat(page); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("linearizability.html: %v, mode %v: want a file of mode 0644", err, fi)
	}
	seen := len(p.Errors())
	p.Goto(t, page)
	if got, want := browsertest.Eval[string](t, p, `document.title`), "linearizability: "+res.Scenario+" (faultline)"; got != want {
		t.Errorf("linearizability.html is titled %q, want %q", got, want)
	}
	type spot struct {
		Found      bool `json:"found"`
		X, Y, W, H float64
	}
	at := browsertest.Eval[spot](t, p, browsertest.FirstViolationJS)
	width := browsertest.Eval[float64](t, p, `document.documentElement.scrollWidth`)
	t.Logf("linearizability.html: %.0f px wide; first violation at (%.0f, %.0f) of the %.0fx%.0f window", width, at.X, at.Y, at.W, at.H)
	switch {
	case !at.Found:
		t.Error("linearizability.html shows no violation, though linearizability is invalid")
	case at.X < 0 || at.X > at.W || at.Y < 0 || at.Y > at.H:
		t.Errorf("linearizability.html opens with its first violation at (%.0f, %.0f), outside the %.0fx%.0f window", at.X, at.Y, at.W, at.H)
	}
	browsertest.ViewportScreenshot(t, p, "linearizability-"+name+"-at-open.png")
	// The lanes' labels (the history's processes) stay at the window's
	// left edge, drawn over the lanes, when the page scrolls sideways.
	type label struct {
		Text    string  `json:"text"`
		Left    float64 `json:"left"`
		Right   float64 `json:"right"`
		OnTop   bool    `json:"onTop"`
		ScrollX float64 `json:"scrollX"`
	}
	const lookLabel = `(() => {
		const l = Array.from(document.querySelectorAll('#canvas svg text')).find(t => /^p\d+$/.test(t.textContent));
		if (!l) return {text: '', left: 0, right: 0, onTop: false, scrollX: window.scrollX};
		const r = l.getBoundingClientRect();
		return {text: l.textContent, left: r.left, right: r.right, onTop: l.parentElement === l.ownerSVGElement.lastElementChild, scrollX: window.scrollX};
	})()`
	// Two positions 1,500 px apart, one of them away from the page's left
	// edge (where a label that did not follow would still show).
	var xs []float64
	for i := range 2 {
		if i == 1 {
			by := 1500
			if xs[0] >= 1500 {
				by = -1500
			}
			browsertest.Eval[bool](t, p, fmt.Sprintf(`(window.scrollBy(%d, 0), window.dispatchEvent(new Event('scroll')), true)`, by))
		}
		l := browsertest.Eval[label](t, p, lookLabel)
		xs = append(xs, l.ScrollX)
		if l.Text == "" || l.Left < 0 || l.Right > 250 || !l.OnTop {
			t.Errorf("linearizability.html scrolled to %.0f px (step %d): lane label %q at %.0f-%.0f px, drawn last: %v; want it at the window's left edge, over the lanes", l.ScrollX, i, l.Text, l.Left, l.Right, l.OnTop)
		}
	}
	t.Logf("linearizability.html: lane labels checked at scroll positions %.0f and %.0f px", xs[0], xs[1])
	if xs[0] == xs[1] || max(xs[0], xs[1]) < 1000 {
		t.Errorf("linearizability.html scrolled from %.0f to %.0f px: the labels were not seen away from the page's left edge, so the check shows nothing", xs[0], xs[1])
	}
	if errs := p.Errors()[seen:]; len(errs) > 0 {
		t.Errorf("linearizability.html: browser errors:\n%s", strings.Join(errs, "\n"))
	}
}
