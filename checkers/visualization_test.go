package checkers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/browsertest"
)

// linearizability.html is titled with the scenario (escaped), labels the
// lanes with the history's processes, and is written 0644 like the run's
// other files whatever the umask.
func TestVisualizationTitleLanesAndMode(t *testing.T) {
	defer setUmask(setUmask(0o077))
	in := loadFixture(t, "stale-read.jsonl")
	in.Header.Scenario = `stale <b>&"read"`
	in.OutDir = t.TempDir()
	r := Linearizability{}.Check(context.Background(), in)
	path := filepath.Join(in.OutDir, "linearizability.html")
	if r.Verdict != Invalid || r.Details["visualization"] != path {
		t.Fatalf("got %s, details %v", r.Verdict, r.Details)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("linearizability.html has mode %v, want 0644 (umask 077)", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	page := string(b)
	if want := "<title>linearizability: stale &lt;b&gt;&amp;&#34;read&#34; (faultline)</title>"; !strings.Contains(page, want) || strings.Count(page, "<title>") != 1 {
		t.Errorf("the page's title is not %s", want)
	}
	// Every lane is a process of the history: the fixture's clients are
	// processes 0 to 2, and each is drawn in a lane of its own.
	m := regexp.MustCompile(`const FL_PROCESSES = (\{[^\n]*\})`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no lane labels in the page")
	}
	var lanes map[string]string
	if err := json.Unmarshal([]byte(m[1]), &lanes); err != nil {
		t.Fatal(err)
	}
	procs := map[string]bool{}
	for _, e := range in.Events {
		if e.Process.IsClient() {
			procs[e.Process.String()] = true
		}
	}
	seen := map[string]bool{}
	for _, p := range lanes {
		if !procs[p] || seen[p] {
			t.Errorf("lanes %v: %q is not one of the history's processes %v, or is drawn twice", lanes, p, procs)
		}
		seen[p] = true
	}
	if len(lanes) == 0 || len(lanes) > len(procs) {
		t.Errorf("lanes %v for the processes %v", lanes, procs)
	}
	// A bare history is named by its file.
	in.Header = nil
	if got := vizTitle(in); got != "linearizability: stale-read.jsonl (faultline)" {
		t.Errorf("title of a bare history: %q", got)
	}
}

// A page far wider than the window (a long history whose violation comes
// late) opens with the first violation in view, and the lane labels stay
// in view when it scrolls sideways; in headless Chromium.
func TestVisualizationOpensAtFirstViolation(t *testing.T) {
	browsertest.Chromium(t)
	evs := genHistory(genConfig{Seed: 11, Ops: 1500, Keys: 2, Workers: 6})
	// The last read of k0 returns the key's first value, long overwritten.
	var first json.RawMessage
	last := -1
	for i, e := range evs {
		if e.Key != "k0" {
			continue
		}
		if e.Type == history.Invoke && e.F == "put" && first == nil {
			first = e.Value
		}
		if e.Type == history.OK && e.F == "get" {
			last = i
		}
	}
	if first == nil || last < 0 {
		t.Fatal("the generated history has no write or no read of k0")
	}
	evs[last].Value = first
	in := Input{Header: &history.HeaderLine{Scenario: "late-stale-read"}, Events: evs, OutDir: t.TempDir()}
	r := Linearizability{}.Check(context.Background(), in)
	if r.Verdict != Invalid {
		t.Fatalf("the corrupted history is %s: %s", r.Verdict, r.Summary)
	}
	p := browsertest.Open(t, filepath.Join(in.OutDir, "linearizability.html"), 90*time.Second)
	if got := browsertest.Eval[string](t, p, `document.title`); got != "linearizability: late-stale-read (faultline)" {
		t.Errorf("title %q", got)
	}
	type view struct {
		Ready       string  `json:"ready"`
		Width       float64 `json:"width"`
		ScrollX     float64 `json:"scrollX"`
		LabelLeft   float64 `json:"labelLeft"`
		LabelRight  float64 `json:"labelRight"`
		LabelText   string  `json:"labelText"`
		LabelsAtTop bool    `json:"labelsAtTop"`
	}
	const look = `(() => {
		const v = {ready: document.documentElement.dataset.flReady || '', width: document.documentElement.scrollWidth, scrollX: window.scrollX};
		const label = Array.from(document.querySelectorAll('#canvas svg text')).find(t => /^p\d+$/.test(t.textContent));
		if (label) { const r = label.getBoundingClientRect(); v.labelLeft = r.left; v.labelRight = r.right; v.labelText = label.textContent;
			v.labelsAtTop = label.parentElement === label.ownerSVGElement.lastElementChild; }
		return v;
	})()`
	type spot struct {
		Found      bool `json:"found"`
		X, Y, W, H float64
	}
	v := browsertest.Eval[view](t, p, look)
	fv := browsertest.Eval[spot](t, p, browsertest.FirstViolationJS)
	t.Logf("at open: %+v, first violation %+v", v, fv)
	if errs := p.Errors(); len(errs) > 0 {
		t.Fatalf("browser errors:\n%s", strings.Join(errs, "\n"))
	}
	browsertest.ViewportScreenshot(t, p, "linearizability-generated-at-open.png")
	switch {
	case v.Ready != "at-first-violation" || !fv.Found:
		t.Fatalf("the page did not find its first violation (data-fl-ready %q)", v.Ready)
	case v.Width < 3*fv.W:
		t.Fatalf("the page is %.0f px wide for a %.0f px window: too narrow for the test to mean anything", v.Width, fv.W)
	case fv.X < 0 || fv.X > fv.W || fv.Y < 0 || fv.Y > fv.H:
		t.Errorf("the first violation is at (%.0f, %.0f) in a %.0fx%.0f window: not in view at open", fv.X, fv.Y, fv.W, fv.H)
	}
	if v.LabelText == "" || v.LabelLeft < 0 || v.LabelRight > 200 || !v.LabelsAtTop {
		t.Errorf("lane label %q at %.0f-%.0f px (on top: %v), want it at the window's left edge, drawn last", v.LabelText, v.LabelLeft, v.LabelRight, v.LabelsAtTop)
	}
	// Scrolled sideways, the labels follow.
	browsertest.Eval[bool](t, p, `(window.scrollBy(-1500, 0), window.dispatchEvent(new Event('scroll')), true)`)
	v2 := browsertest.Eval[view](t, p, look)
	if v2.ScrollX == v.ScrollX || v2.LabelLeft < 0 || v2.LabelRight > 200 || !v2.LabelsAtTop {
		t.Errorf("after scrolling from %.0f to %.0f px, lane label %q at %.0f-%.0f px (on top: %v), want it at the window's left edge",
			v.ScrollX, v2.ScrollX, v2.LabelText, v2.LabelLeft, v2.LabelRight, v2.LabelsAtTop)
	}
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("browser errors:\n%s", strings.Join(errs, "\n"))
	}
}
