package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/reports"
)

// The retry examples (issue 16) run once, in TestExamples; these check
// what each one is about on that run, from its results.json and
// report.html.

// retryStorm returns the retry-storm result of a run and a number of its
// details (0 and false when absent).
func retryStorm(t *testing.T, dir string) (checkers.Result, func(string) (float64, bool)) {
	t.Helper()
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := checkerResult(t, res, "retry-storm")
	t.Logf("retry-storm %s: %s", c.Verdict, c.Summary)
	num := func(k string) (float64, bool) {
		v, ok := c.Details[k].(float64)
		return v, ok
	}
	return c, num
}

// retryCharts checks that report.html draws the retry-storm charts.
func retryCharts(t *testing.T, dir string, ids ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append([]string{"retry-load", "retry-amplification"}, ids...) {
		i := strings.Index(string(b), `data-chart="`+id+`"`)
		if i < 0 {
			t.Errorf("report.html has no %s chart", id)
			continue
		}
		svg := string(b[i:])
		svg = svg[:strings.Index(svg, "</svg>")]
		if !strings.Contains(svg, `class="data`) || !strings.Contains(svg, `<rect class="fault"`) {
			t.Errorf("report.html's %s chart has no data or no fault window", id)
		}
	}
}

// recovered checks the recovery figures of a valid run.
func recovered(t *testing.T, c checkers.Result, num func(string) (float64, bool)) {
	t.Helper()
	ttr, ok := num("time_to_recover_ns")
	if c.Verdict != checkers.Valid || c.Details["recovered"] != true || c.Details["metastable"] != false || !ok || ttr > 5e9 {
		t.Errorf("want recovered within 5 s: %s, recovered %v, metastable %v, after %v ns", c.Verdict, c.Details["recovered"], c.Details["metastable"], ttr)
	}
}

// retry-naive: the storm outlives the spike: a metastable failure, about
// 1 + 3 attempts per request during and after it.
func checkRetryNaive(t *testing.T, dir string) {
	c, num := retryStorm(t, dir)
	peak, _ := num("peak_amplification")
	during, _ := num("amplification_during_trigger")
	if c.Verdict != checkers.Invalid || c.Details["metastable"] != true || c.Details["recovered"] != false {
		t.Errorf("want a metastable failure: %s, metastable %v, recovered %v", c.Verdict, c.Details["metastable"], c.Details["recovered"])
	}
	if during < 3 || peak < 3.5 {
		t.Errorf("amplification %.2f during the spike, peak %.2f: want the storm's ~4", during, peak)
	}
	if len(c.Anomalies) == 0 || c.Anomalies[0].Kind != "metastable" || len(c.Anomalies[0].Refs) < 2 {
		t.Errorf("anomalies %+v: want the metastable failure with its history lines", c.Anomalies)
	}
	retryCharts(t, dir)
}

// retry-backoff: up to 1 + 3 attempts per request during the spike, goodput
// back within the bound.
func checkRetryBackoff(t *testing.T, dir string) {
	c, num := retryStorm(t, dir)
	recovered(t, c, num)
	if during, ok := num("amplification_during_trigger"); !ok || during < 2 || during > 4.2 {
		t.Errorf("amplification %.2f during the spike: want retries, up to 1 + retries (4)", during)
	}
	retryCharts(t, dir)
}

// retry-breaker: below one attempt per request while the breaker is open,
// goodput back within the bound.
func checkRetryBreaker(t *testing.T, dir string) {
	c, num := retryStorm(t, dir)
	recovered(t, c, num)
	open, ok := num("amplification_while_open")
	opened, _ := num("breaker_opened")
	if !ok || open >= 1 || opened < 1 {
		t.Errorf("amplification %.2f while open (%v), opened %v times: want below 1, opened at least once", open, ok, opened)
	}
	retryCharts(t, dir, "retry-breaker")
}

// retry-budget: at most 1 + budget-ratio attempts per request, goodput
// back within the bound. Over a window the retries are at most 0.1 x its
// requests, plus the reserve's one, plus one held from before: 2 in 130.
func checkRetryBudget(t *testing.T, dir string) {
	c, num := retryStorm(t, dir)
	recovered(t, c, num)
	if peak, ok := num("peak_amplification"); !ok || peak > 1+0.1+2.0/130+0.02 {
		t.Errorf("peak amplification %.3f: want at most 1 + 0.1 (budget-ratio) + 2/130 (the reserve, over a window) + 0.02 (the counters read between samples)", peak)
	}
	retryCharts(t, dir)
}

// shortenedRetry is a retry example cut to the 8 s of -short: the spike
// from 2 s to 4 s, recovery within 3 s (the load ends at 8 s).
func shortenedRetry(t *testing.T, name string) []string {
	t.Helper()
	src := readText(t, filepath.Join(moduleRoot(t), "examples", name))
	for _, r := range [][2]string{{"duration: 12s", "duration: 8s"}, {"{at: 3s, for: 3s,", "{at: 2s, for: 2s,"}, {"recover_within: 5s", "recover_within: 3s"}} {
		if !strings.Contains(src, r[0]) {
			t.Fatalf("%s lacks %q", name, r[0])
		}
		src = strings.Replace(src, r[0], r[1], 1)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{path}
}
