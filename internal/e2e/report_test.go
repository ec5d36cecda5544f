package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/faultline/faultline/internal/browsertest"
	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/reports"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// faultline runs the binary and returns its exit code and combined output.
func faultline(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	root, err := testbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GITHUB_STEP_SUMMARY=") // never touch a real job summary
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("faultline %s: %v\n%s", strings.Join(args, " "), err, out.String())
	return 0, ""
}

type chartInfo struct {
	ID     string `json:"id"`
	SVG    bool   `json:"svg"`
	Data   int    `json:"data"`
	Drawn  int    `json:"drawn"`
	Shades int    `json:"shades"`
	Empty  string `json:"empty"`
}

// A real run (3 Raft nodes under faults), its reports rebuilt by
// `faultline report`, opened in headless Chromium.
func TestReportOfARealRunInBrowser(t *testing.T) {
	browsertest.Chromium(t) // skip (or fail under CI) before the slow part
	dir := filepath.Join(t.TempDir(), "run")
	code, out := faultline(t, 3*time.Minute, "run", "examples/raft-partitions.yaml", "--duration", "6s", "--seed", "3", "--out", dir, "--quiet")
	if code == 64 || code == 70 {
		t.Fatalf("faultline run: exit %d\n%s", code, out)
	}
	if code, out := faultline(t, time.Minute, "report", dir); code != 0 || !strings.Contains(out, filepath.Join(dir, "report.html")) {
		t.Fatalf("faultline report: exit %d\n%s", code, out)
	}
	if code, out := faultline(t, time.Minute, "report", t.TempDir()); code != 64 || !strings.Contains(out, "not a faultline run directory") {
		t.Errorf("faultline report on an empty directory: exit %d, want 64 with a clear message\n%s", code, out)
	}
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run: verdict %s, %d ops, %d faults; report.html %d bytes", res.Verdict, res.Stats.Ops, len(res.Faults), fi.Size())

	p := browsertest.Open(t, filepath.Join(dir, "report.html"), 90*time.Second)

	if got, want := browsertest.Eval[string](t, p, `document.querySelector("#verdict .verdict-word").textContent.trim()`), strings.ToUpper(res.Verdict); got != want {
		t.Errorf("verdict shown %q, want %q", got, want)
	}
	if got := browsertest.Eval[int](t, p, `document.querySelectorAll("article.checker").length`); got != len(res.Checkers) {
		t.Errorf("%d checker cards, want %d", got, len(res.Checkers))
	}
	charts := browsertest.Eval[[]chartInfo](t, p, `Array.from(document.querySelectorAll("figure.chart-box")).map(f => {
		const svg = f.querySelector("svg.chart");
		const data = svg ? Array.from(svg.querySelectorAll(".data")) : [];
		return {id: f.id, svg: !!svg, data: data.length,
			drawn: data.filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length,
			shades: svg ? svg.querySelectorAll("rect.fault").length : 0,
			empty: (f.querySelector(".empty") || {}).textContent || ""};
	})`)
	seen := map[string]chartInfo{}
	for _, c := range charts {
		seen[c.ID] = c
	}
	for _, id := range []string{"timeline", "throughput", "latency", "nodes", "spectrum"} {
		c, ok := seen[id]
		switch {
		case !ok:
			t.Errorf("chart %s is missing", id)
		case !c.SVG:
			t.Errorf("chart %s is not drawn: %s", id, c.Empty)
		case c.Drawn == 0:
			t.Errorf("chart %s has %d data elements, none with a size", id, c.Data)
		case id != "spectrum" && len(res.Faults) > 0 && c.Shades == 0:
			t.Errorf("chart %s does not shade the %d faults", id, len(res.Faults))
		}
	}
	if len(res.Faults) == 0 {
		t.Logf("warning: this run injected no fault, so fault shading was not checked")
	}
	// Relative links to the evidence.
	logs, _ := filepath.Glob(filepath.Join(dir, "nodes", "*.log"))
	if got := browsertest.Eval[int](t, p, `document.querySelectorAll('a[href^="nodes/"]').length`); got != len(logs) || got == 0 {
		t.Errorf("%d node log links, want %d", got, len(logs))
	}
	if _, err := os.Stat(filepath.Join(dir, "linearizability.html")); err == nil {
		if browsertest.Eval[int](t, p, `document.querySelectorAll('a[href="linearizability.html"]').length`) != 1 {
			t.Error("no link to linearizability.html")
		}
	}
	// The shared cursor: hovering the throughput chart reads out a moment.
	x := browsertest.Eval[[]float64](t, p, `(() => {
		const svg = document.querySelector("#throughput svg");
		svg.scrollIntoView({block: "center"});
		const r = svg.getBoundingClientRect();
		return [r.left + r.width * 0.6, r.top + r.height * 0.5];
	})()`)
	if err := chromedp.Do(p.Ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x[0], x[1])); err != nil {
		t.Fatal(err)
	}
	if got := browsertest.Eval[string](t, p, `document.getElementById("readout").textContent`); !strings.HasPrefix(got, "t = ") {
		t.Errorf("read-out after hovering = %q, want it to start with \"t = \"", got)
	}
	if got := browsertest.Eval[int](t, p, `document.querySelectorAll('line.cursor[visibility="visible"]').length`); got != 4 {
		t.Errorf("%d cursor lines visible, want 4 (one per time chart)", got)
	}
	browsertest.Eval[bool](t, p, `(window.scrollTo(0, 0), true)`)

	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("browser errors:\n%s", strings.Join(errs, "\n"))
	}
	if reqs := p.Requests(); len(reqs) > 0 {
		t.Errorf("the report made network requests: %q", reqs)
	}
	// The report of a run with faults, kept by verdict (valid with this
	// seed when last run) beside TestExamples' screenshots.
	shot := browsertest.Screenshot(t, p, "report-raft-partitions-"+res.Verdict+".png")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("screenshot %s: %v (%d bytes)", shot, err, sizeOf(fi))
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}
