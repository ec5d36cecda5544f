package reports

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
)

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// chartSVG returns the <svg> of the chart with the given id.
func chartSVG(t *testing.T, html, id string) string {
	t.Helper()
	i := strings.Index(html, `<svg class="chart`+map[bool]string{true: " tchart", false: ""}[id != "spectrum"]+`" data-chart="`+id+`"`)
	if i < 0 {
		t.Fatalf("chart %q has no svg", id)
	}
	j := strings.Index(html[i:], "</svg>")
	return html[i : i+j]
}

func TestBuildSyntheticRun(t *testing.T) {
	dir := t.TempDir()
	genRun(t, dir, genOpts{ops: 6000, verdict: checkers.Invalid})
	sum := filepath.Join(t.TempDir(), "summary.md")
	if err := Build(dir, BuildOptions{StepSummary: sum}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	for _, id := range []string{"timeline", "throughput", "latency", "nodes", "spectrum"} {
		svg := chartSVG(t, html, id)
		if n := strings.Count(svg, `class="data`); n == 0 {
			t.Errorf("chart %s has no data elements", id)
		}
		if id != "spectrum" && !strings.Contains(svg, `<rect class="fault"`) {
			t.Errorf("chart %s does not shade the fault windows", id)
		}
	}
	// Three fault kinds in the timeline: the partition window, the instant
	// kill and the latency fault without an end (open until the end).
	tl := chartSVG(t, html, "timeline")
	for _, want := range []string{">partition</text>", ">kill</text>", ">latency</text>", "fault-bar fault-open", `class="data anomaly"`, "no end recorded"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	if !strings.Contains(chartSVG(t, html, "latency"), "s-hlog") {
		t.Error("latency chart lacks the latency.hlog series")
	}
	nodes := chartSVG(t, html, "nodes")
	for _, want := range []string{"role-leader", "role-follower", "role-down", "connection refused"} {
		if !strings.Contains(nodes, want) {
			t.Errorf("node chart lacks %q", want)
		}
	}
	for _, want := range []string{`data-verdict="invalid"`, ">INVALID<", `href="linearizability.html"`, `href="nodes/n1.log"`, `href="junit.xml"`, "no leader timeout", "stale-read"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The Content-Security-Policy allows exactly the inline script shipped.
	m := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("no inline script")
	}
	digest := sha256.Sum256([]byte(m[1]))
	if h := "sha256-" + base64.StdEncoding.EncodeToString(digest[:]); h != scriptCSP || !strings.Contains(html, strings.ReplaceAll(h, "+", "&#43;")) {
		t.Errorf("the CSP does not allow the inline script (hash %s, CSP %s)", h, scriptCSP)
	}
	if regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).MatchString(html) {
		t.Error("report refers to a network resource")
	}
	var j junitSuites
	if err := xml.Unmarshal([]byte(readFile(t, filepath.Join(dir, "junit.xml"))), &j); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	if j.Failures != 1 || len(j.Suites) != 1 || len(j.Suites[0].Cases) != 2 {
		t.Errorf("junit: %d failures, %d suites; want 1 failure, 1 suite of 2 cases", j.Failures, len(j.Suites))
	}
	if s := readFile(t, sum); !strings.Contains(s, "INVALID") {
		t.Errorf("step summary: %s", s)
	}
	// Appending: a second build adds a second summary.
	if err := Build(dir, BuildOptions{StepSummary: sum}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(readFile(t, sum), "### "); n != 2 {
		t.Errorf("step summary has %d sections after two builds, want 2 (appended)", n)
	}
}

func TestBuildNotARunDir(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(empty, "history.jsonl")
	os.WriteFile(file, []byte("{}\n"), 0o644)
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "results.json"), []byte("{not json"), 0o644)
	for _, dir := range []string{filepath.Join(empty, "missing"), file, t.TempDir(), bad} {
		err := Build(dir, BuildOptions{})
		if !errors.Is(err, ErrNotRunDir) {
			t.Errorf("Build(%s) = %v, want ErrNotRunDir", dir, err)
		}
	}
}

func TestBuildWithoutHistory(t *testing.T) {
	dir := t.TempDir()
	r := &Results{Scenario: "bare", Verdict: "unknown", ExitCode: 2, ExitReason: "budget ran out",
		Checkers: []checkers.Result{{Name: "linearizability", Verdict: checkers.Unknown, Summary: "ran out of budget"}}}
	if err := WriteResults(dir, r); err != nil {
		t.Fatal(err)
	}
	if err := Build(dir, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	for _, want := range []string{"history.jsonl is missing", ">UNKNOWN<", "No client operations in the history."} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestBuildDamagedRun(t *testing.T) {
	dir := t.TempDir()
	genRun(t, dir, genOpts{ops: 500})
	f, _ := os.OpenFile(filepath.Join(dir, "history.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"type":"ok","process":1,"ti`)
	f.Close()
	os.WriteFile(filepath.Join(dir, "latency.hlog"), []byte("0.1,1.0,0.2,HISTFAAAAnotbase64!!\n"), 0o644)
	if err := Build(dir, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	if !strings.Contains(html, "could not be read to the end") || !strings.Contains(chartSVG(t, html, "throughput"), `class="data s-ok"`) {
		t.Error("a truncated history should give a warning and the charts of what was read")
	}
	if !strings.Contains(html, "latency.hlog could not be read") || !strings.Contains(chartSVG(t, html, "spectrum"), `class="data s-p99"`) {
		t.Error("a corrupt latency.hlog should give a warning and the history's spectrum")
	}
}

// The report's size must not grow with the history: 20 times the ops
// gives about the same report.
func TestReportSizeIsBounded(t *testing.T) {
	size := func(ops int) int {
		dir := t.TempDir()
		genRun(t, dir, genOpts{ops: ops, rate: float64(ops) / 20})
		if err := Build(dir, BuildOptions{NoJUnit: true}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "report.html"))
		if err != nil {
			t.Fatal(err)
		}
		return int(fi.Size())
	}
	small, big := size(2000), size(40000)
	t.Logf("report.html: %d bytes for 2,000 ops, %d bytes for 40,000 ops", small, big)
	if float64(big) > 1.3*float64(small) {
		t.Errorf("report grows with the history: %d bytes for 2k ops, %d for 40k", small, big)
	}
}

func TestTimelineGrowKeepsCounts(t *testing.T) {
	var tl timeline
	rng := rand.New(rand.NewPCG(3, 4))
	var n int64
	for i := 0; i < 50000; i++ {
		at := rng.Int64N(3600e9) // an hour
		tl.add(at, history.OK, false, 1000)
		n++
	}
	if len(tl.buckets) > maxBuckets || len(tl.buckets) < maxBuckets/2 {
		t.Errorf("%d buckets, want between %d and %d", len(tl.buckets), maxBuckets/2, maxBuckets)
	}
	var sum, lat int64
	for _, b := range tl.buckets {
		sum += b.ok
		if b.lat != nil {
			lat += b.lat.count
		}
	}
	if sum != n || lat != n {
		t.Errorf("after growing: %d ok and %d latencies, want %d", sum, lat, n)
	}
}

func TestLogHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	h := newLogHist()
	var vs []float64
	for i := 0; i < 20000; i++ {
		v := math.Exp(rng.NormFloat64()*1.5) * 2000
		vs = append(vs, v)
		h.add(v)
	}
	sort.Float64s(vs)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vs[int(math.Ceil(q*float64(len(vs))))-1]
		got := h.quantile(q)
		if math.Abs(got-exact)/exact > 0.02 {
			t.Errorf("q%.3f = %.1f, exact %.1f (more than 2%% off)", q, got, exact)
		}
	}
	if h.quantile(1) != vs[len(vs)-1] {
		t.Errorf("max = %v, want %v", h.quantile(1), vs[len(vs)-1])
	}
}

func TestLTTB(t *testing.T) {
	var pts []point
	for i := 0; i < 10000; i++ {
		y := math.Sin(float64(i) / 300)
		if i == 7777 {
			y = 50 // a spike LTTB must keep
		}
		pts = append(pts, point{float64(i), y})
	}
	out := lttb(pts, 300)
	if len(out) != 300 || out[0] != pts[0] || out[299] != pts[9999] {
		t.Fatalf("lttb: %d points, ends %v %v", len(out), out[0], out[len(out)-1])
	}
	spike := false
	for i, p := range out {
		if p.Y == 50 {
			spike = true
		}
		if i > 0 && p.X <= out[i-1].X {
			t.Fatal("lttb output not increasing in X")
		}
	}
	if !spike {
		t.Error("lttb dropped the spike")
	}
	if got := lttb(pts[:10], 300); len(got) != 10 {
		t.Error("short series should come back whole")
	}
}
