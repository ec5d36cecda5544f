package reports

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
)

// stormResult is a retry-storm result as the checker writes it: 16
// windows of 1 s, the trigger from 4 s to 8 s, goodput back by 12 s,
// amplification 4 in the spike and missing at 10 s and 11 s, the breaker
// open from 5 s to 7 s, half-open until 7.5 s.
func stormResult(node string) checkers.Result {
	nan := math.NaN()
	s := &checkers.RetryStormSeries{T0: 0, W: 1e9, Breaker: map[string][][2]int64{node: {{0, 0}, {5e9, 1}, {7e9, 2}, {7.5e9, 0}}}}
	for i := 0; i < 16; i++ {
		good, amp := 100.0, 1.0
		if i >= 4 && i < 11 {
			good = 0
		}
		if i >= 4 && i < 8 {
			amp = 4
		}
		if i == 10 || i == 11 {
			amp = nan
		}
		s.Offered = append(s.Offered, 100)
		s.Goodput = append(s.Goodput, good)
		s.Amplification = append(s.Amplification, amp)
		s.Attempts = append(s.Attempts, amp*100)
		s.BreakerOpen = append(s.BreakerOpen, 0)
	}
	return checkers.Result{Name: "retry-storm", Verdict: checkers.Invalid, Details: map[string]any{
		"series": s, "baseline_goodput": 100.0, "recovery_goodput": 90.0, "max_amplification": 3.0,
		"trigger":           map[string]any{"fault": "service-time", "start_ns": int64(4e9), "end_ns": int64(8e9)},
		"recover_within_ns": int64(5e9), "recovered_at_ns": int64(12e9), "peak_amplification": 4.0,
	}}
}

// The retry-storm figures of results.json (in memory, or read back) are
// drawn as three time charts: rates with the recovered level and the
// trigger, bound and recovery marked; amplification with gaps where it is
// missing and the limit; the breaker's lane. Without them, no chart.
func TestRetryStormCharts(t *testing.T) {
	res := []checkers.Result{{Name: "stats"}, stormResult("frontend1")}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back []checkers.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for name, rs := range map[string][]checkers.Result{"in memory": res, "from results.json": back} {
		in := &chartInput{t1: 17, windows: []faultWindow{{Name: "service-time", Start: 4e9, End: 8e9}}}
		cs := in.retryStormCharts(rs)
		if len(cs) != 3 || cs[0].ID != "retry-load" || cs[1].ID != "retry-amplification" || cs[2].ID != "retry-breaker" {
			t.Fatalf("%s: charts %v", name, cs)
		}
		x := in.scale().x
		lines := func(c *chart) map[string]string {
			m := map[string]string{}
			for _, l := range c.Lines {
				m[l.Class] = l.D
			}
			return m
		}
		load := lines(cs[0])
		for _, cls := range []string{"data s-offered", "data s-goodput", "data s-attempts", "data s-level"} {
			if load[cls] == "" {
				t.Errorf("%s: load chart lacks %s", name, cls)
			}
		}
		if n := strings.Count(load["data s-attempts"], "M"); n != 2 {
			t.Errorf("%s: attempts drawn in %d pieces, want 2 (missing at 10 s and 11 s): %s", name, n, load["data s-attempts"])
		}
		if n := strings.Count(load["data s-goodput"], "L"); n != 15 {
			t.Errorf("%s: goodput has %d segments, want 15", name, n)
		}
		marks := map[string]float64{}
		for _, m := range cs[0].Marks {
			marks[m.Class] = m.X
		}
		for cls, at := range map[string]float64{"rs-mark rs-trigger": 8, "rs-mark rs-bound": 13, "rs-mark rs-recovered": 12} {
			if got, ok := marks[cls]; !ok || got != x(at) {
				t.Errorf("%s: mark %s at %v, want %v", name, cls, got, x(at))
			}
		}
		for _, c := range cs {
			if len(c.Shades) != 1 || c.Shades[0].X != x(4) {
				t.Errorf("%s: chart %s shades %v, want the fault from 4 s", name, c.ID, c.Shades)
			}
		}
		amp := lines(cs[1])
		if n := strings.Count(amp["data s-amp"], "M"); n != 2 || amp["data s-limit"] == "" || amp["data s-one"] == "" {
			t.Errorf("%s: amplification chart %v", name, amp)
		}
		var open, half bool
		for _, r := range cs[2].Rects {
			switch r.Class {
			case "data breaker-open":
				open = math.Abs(r.X-x(5)) < 1e-9 && math.Abs(r.X+r.W-x(7)) < 1e-9
			case "data breaker-half":
				half = math.Abs(r.X-x(7)) < 1e-9 && math.Abs(r.X+r.W-x(7.5)) < 1e-9
			}
		}
		if !open || !half {
			t.Errorf("%s: breaker lane %v", name, cs[2].Rects)
		}
	}
	in := &chartInput{t1: 17}
	if cs := in.retryStormCharts([]checkers.Result{{Name: "retry-storm", Details: map[string]any{"peak_amplification": 2.0}}}); cs != nil {
		t.Errorf("charts without series: %v", cs)
	}
	// No samples of the callers: the amplification chart says so.
	r := stormResult("f1")
	s := r.Details["series"].(*checkers.RetryStormSeries)
	s.Breaker = nil
	for i := range s.Amplification {
		s.Amplification[i], s.Attempts[i] = math.NaN(), math.NaN()
	}
	cs := in.retryStormCharts([]checkers.Result{r})
	if len(cs) != 2 || !strings.Contains(cs[1].Empty, "no metrics samples") {
		t.Errorf("without samples: %d charts, amplification %q", len(cs), cs[1].Empty)
	}
}

// A run whose results carry the retry-storm figures gets the charts in
// report.html, a hostile node name escaped.
func TestRetryStormChartsInReport(t *testing.T) {
	dir := t.TempDir()
	r := genRun(t, dir, genOpts{ops: 2000})
	r.Checkers = append(r.Checkers, stormResult(hostileScript))
	if err := Save(dir, r, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	for _, id := range []string{"retry-load", "retry-amplification", "retry-breaker"} {
		if n := strings.Count(chartSVG(t, html, id), `class="data`); n == 0 {
			t.Errorf("chart %s has no data elements", id)
		}
	}
	if strings.Contains(html, hostileScript) {
		t.Error("a node name reached the page unescaped")
	}
}
