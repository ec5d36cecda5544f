package reports

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/faultline/faultline/history"
)

// Charts are drawn server-side as inline SVG: this file turns the scan into
// chart models (positions in viewBox pixels, path data made of numbers only,
// every text a plain string) and report.html.tmpl renders them, so that
// html/template escapes every string that came from the target.

// chart geometry shared by the time charts, so that their x axes line up.
const (
	chartW  = 1000.0
	plotL   = 70.0
	plotR   = 14.0
	plotTop = 10.0
	plotBot = 26.0
	laneH   = 22.0
)

type chart struct {
	ID       string
	Title    string
	Note     string
	H        float64
	Plot     box
	TimeAxis bool
	T0, T1   float64 // seconds, for the cursor script
	XTicks   []tick
	YTicks   []tick
	YLabel   string
	XLabel   string
	Shades   []shade
	Marks    []mark
	Rects    []rect
	Lines    []line
	Labels   []label
	Legend   []legendItem
	Empty    string
}

type box struct{ X, Y, W, H float64 }

type tick struct {
	Pos   float64
	Label string
}

type shade struct {
	X, W  float64
	Class string
	Title string
}

type mark struct {
	X     float64
	Y, H  float64
	Class string
	Title string
}

type rect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type line struct {
	D     string
	Class string
	Title string
}

type label struct {
	X, Y   float64
	Text   string
	Class  string
	Anchor string
}

type legendItem struct {
	Class string
	Label string
}

// timeScale maps seconds to x pixels.
type timeScale struct{ t1 float64 }

func (s timeScale) x(sec float64) float64 {
	if s.t1 <= 0 {
		return plotL
	}
	if sec < 0 {
		sec = 0
	}
	if sec > s.t1 {
		sec = s.t1
	}
	return plotL + sec/s.t1*(chartW-plotL-plotR)
}

func (s timeScale) ticks() []tick {
	var out []tick
	for _, v := range niceTicks(0, s.t1, 10) {
		out = append(out, tick{Pos: s.x(v), Label: fmtSeconds(v, s.t1)})
	}
	return out
}

// niceTicks returns about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

func fmtSeconds(v, span float64) string {
	if span >= 180 {
		m := int(v) / 60
		s := v - float64(m*60)
		return fmt.Sprintf("%d:%02.0f", m, s)
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "s"
}

func fmtSpan(start, end int64) string {
	return fmt.Sprintf("%.3fs – %.3fs", float64(start)/1e9, float64(end)/1e9)
}

func pathOf(pts []point, xf func(float64) float64, yf func(float64) float64) string {
	return pathGaps(pts, 0, xf, yf)
}

// pathGaps is pathOf that lifts the pen where consecutive points are more
// than gap apart in X (gap 0: never), so that stretches without data are
// not drawn as if they had some.
func pathGaps(pts []point, gap float64, xf func(float64) float64, yf func(float64) float64) string {
	var b strings.Builder
	run := 0 // points in the current subpath
	for i, p := range pts {
		if i == 0 || gap > 0 && p.X-pts[i-1].X > gap {
			if run == 1 {
				b.WriteString(" h0.1") // a lone point: a dot (round caps)
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString("M")
			run = 0
		} else {
			b.WriteString(" L")
		}
		run++
		b.WriteString(f1(xf(p.X)))
		b.WriteByte(',')
		b.WriteString(f1(yf(p.Y)))
	}
	if run == 1 {
		b.WriteString(" h0.1")
	}
	return b.String()
}

func f1(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// logScale maps µs to y pixels on a log10 axis.
type logScale struct {
	lo, hi float64 // log10 of the range in µs
	top, h float64
}

func newLogScale(minUS, maxUS, top, h float64) logScale {
	if minUS < 1 {
		minUS = 1
	}
	if maxUS <= minUS {
		maxUS = minUS * 10
	}
	return logScale{lo: math.Floor(math.Log10(minUS)), hi: math.Ceil(math.Log10(maxUS)), top: top, h: h}
}

func (s logScale) y(us float64) float64 {
	if us < 1 {
		us = 1
	}
	f := (math.Log10(us) - s.lo) / (s.hi - s.lo)
	return s.top + s.h - f*s.h
}

func (s logScale) ticks() []tick {
	var out []tick
	decades := s.hi - s.lo
	for d := s.lo; d <= s.hi; d++ {
		v := math.Pow(10, d)
		out = append(out, tick{Pos: s.y(v), Label: us(v)})
		if decades <= 2 && d < s.hi {
			for _, m := range []float64{2, 5} {
				out = append(out, tick{Pos: s.y(m * v), Label: us(m * v)})
			}
		}
	}
	return out
}

// chartInput is what the charts are drawn from.
type chartInput struct {
	t1      float64 // seconds, end of the time axis
	tl      *timeline
	windows []faultWindow
	phases  []Phase
	anoms   []anomalyMark
	nodes   []nodeLane
	splits  []splitWindow
	hlog    *hlogData
	scan    *scan
}

// splitWindow is a window in which two nodes both acted as leader (the
// split-brain checker's anomaly), shaded on both nodes' lanes.
type splitWindow struct {
	Nodes    []string
	From, To int64 // ns since the run's start
	Title    string
}

type anomalyMark struct {
	T     int64
	Title string
}

func (in *chartInput) scale() timeScale { return timeScale{t1: in.t1} }

// decorate adds the shared time-axis furniture: ticks, fault shading and
// phase boundaries.
func (in *chartInput) decorate(c *chart) {
	s := in.scale()
	c.TimeAxis = true
	c.T1 = in.t1
	c.XTicks = s.ticks()
	for _, w := range in.windows {
		x0, x1 := s.x(float64(w.Start)/1e9), s.x(float64(w.End)/1e9)
		sh := shade{X: x0, W: math.Max(x1-x0, 1.5), Class: "fault", Title: windowTitle(w)}
		if w.Instant {
			sh.Class = "fault instant"
		}
		c.Shades = append(c.Shades, sh)
	}
	for _, p := range in.phases {
		if p.Start <= 0 {
			continue
		}
		c.Marks = append(c.Marks, mark{X: s.x(float64(p.Start) / 1e9), Y: c.Plot.Y, H: c.Plot.H, Class: "phase-line", Title: "phase " + p.Name + " starts at " + fmt.Sprintf("%.3fs", float64(p.Start)/1e9)})
	}
}

func windowTitle(w faultWindow) string {
	t := w.Name
	if w.Value != "" {
		t += " " + w.Value
	}
	if w.Instant {
		t += fmt.Sprintf(" at %.3fs", float64(w.Start)/1e9)
	} else {
		t += " " + fmtSpan(w.Start, w.End)
	}
	if w.Open {
		t += " (no end recorded: still in force when the history ends)"
	}
	if w.Err != "" {
		t += " — error: " + w.Err
	}
	return t
}

func newTimeChart(id, title string, plotH float64) *chart {
	return &chart{ID: id, Title: title, H: plotTop + plotH + plotBot, Plot: box{X: plotL, Y: plotTop, W: chartW - plotL - plotR, H: plotH}}
}

// timelineChart: phases, fault windows by kind, anomalies.
func (in *chartInput) timelineChart() *chart {
	s := in.scale()
	kinds := []string{}
	seen := map[string]bool{}
	for _, w := range in.windows {
		if !seen[w.Name] {
			seen[w.Name] = true
			kinds = append(kinds, w.Name)
		}
	}
	rows := 1 + len(kinds)
	if len(in.anoms) > 0 {
		rows++
	}
	c := newTimeChart("timeline", "Timeline: phases, faults, anomalies", float64(rows)*laneH+4)
	c.Note = "Shaded bands on every time chart are fault windows; hover over a bar for details."
	if len(in.windows) == 0 {
		c.Note = "No faults in this run. Hover over a bar for details."
	}
	in.decorate(c)
	y := c.Plot.Y + 2
	c.Labels = append(c.Labels, label{X: plotL - 6, Y: y + laneH/2 + 4, Text: "phases", Anchor: "end", Class: "lane-label"})
	for i, p := range in.phases {
		x0, x1 := s.x(float64(p.Start)/1e9), s.x(float64(p.End)/1e9)
		w := math.Max(x1-x0, 1)
		c.Rects = append(c.Rects, rect{X: x0, Y: y + 2, W: w, H: laneH - 4, Class: "data phase phase-" + strconv.Itoa(i%4), Title: fmt.Sprintf("%s %s (%.3fs)", p.Name, fmtSpan(p.Start, p.End), float64(p.End-p.Start)/1e9)})
		if w > 7*float64(len(p.Name))+6 {
			c.Labels = append(c.Labels, label{X: x0 + w/2, Y: y + laneH/2 + 4, Text: p.Name, Anchor: "middle", Class: "in-bar"})
		}
	}
	for k, name := range kinds {
		y := c.Plot.Y + 2 + float64(k+1)*laneH
		c.Labels = append(c.Labels, label{X: plotL - 6, Y: y + laneH/2 + 4, Text: shorten(name, 12), Anchor: "end", Class: "lane-label"})
		for _, w := range in.windows {
			if w.Name != name {
				continue
			}
			x0, x1 := s.x(float64(w.Start)/1e9), s.x(float64(w.End)/1e9)
			cls := "data fault-bar"
			if w.Err != "" {
				cls += " fault-error"
			}
			if w.Open {
				cls += " fault-open"
			}
			c.Rects = append(c.Rects, rect{X: x0, Y: y + 3, W: math.Max(x1-x0, 2), H: laneH - 6, Class: cls, Title: windowTitle(w)})
		}
	}
	if len(in.anoms) > 0 {
		y := c.Plot.Y + 2 + float64(len(kinds)+1)*laneH
		c.Labels = append(c.Labels, label{X: plotL - 6, Y: y + laneH/2 + 4, Text: "anomalies", Anchor: "end", Class: "lane-label"})
		for _, a := range in.anoms {
			c.Rects = append(c.Rects, rect{X: s.x(float64(a.T)/1e9) - 1, Y: y + 2, W: 2, H: laneH - 4, Class: "data anomaly", Title: a.Title})
		}
	}
	c.Legend = []legendItem{{"phase phase-0", "phase"}}
	if len(in.windows) > 0 {
		c.Legend = append(c.Legend, legendItem{"fault-bar", "fault window"}, legendItem{"fault-bar fault-error", "fault with an error"})
	}
	if len(in.anoms) > 0 {
		c.Legend = append(c.Legend, legendItem{"anomaly", "anomaly found by a checker"})
	}
	return c
}

func (in *chartInput) faultLegend(l []legendItem) []legendItem {
	if len(in.windows) > 0 {
		l = append(l, legendItem{"fault", "fault window"})
	}
	return l
}

// hlogGap is the gap between interval midpoints beyond which the hlog line
// is broken: twice the median interval spacing.
func hlogGap(h *hlogData) float64 {
	if h == nil || len(h.intervals) < 3 {
		return 0
	}
	d := make([]float64, 0, len(h.intervals)-1)
	for i := 1; i < len(h.intervals); i++ {
		d = append(d, h.intervals[i].T-h.intervals[i-1].T)
	}
	sort.Float64s(d)
	return 2 * d[len(d)/2]
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// throughputChart: ok, fail, mismatch and info completions per second.
func (in *chartInput) throughputChart() *chart {
	c := newTimeChart("throughput", "Throughput (completed operations per second)", 150)
	in.decorate(c)
	c.YLabel = "ops/s"
	tl := in.tl
	if len(tl.buckets) == 0 {
		c.Empty = "No client operations in the history."
		return c
	}
	w := float64(tl.width) / 1e9
	var ok, fail, info, mismatch []point
	maxRate := 0.0
	anyMismatch := false
	for i, b := range tl.buckets {
		x := (float64(i) + 0.5) * w
		ok = append(ok, point{x, float64(b.ok) / w})
		fail = append(fail, point{x, float64(b.fail) / w})
		info = append(info, point{x, float64(b.info) / w})
		mismatch = append(mismatch, point{x, float64(b.mismatch) / w})
		anyMismatch = anyMismatch || b.mismatch > 0
		maxRate = math.Max(maxRate, float64(b.ok+b.fail+b.info+b.mismatch)/w)
	}
	ys := niceTicks(0, maxRate*1.02, 4)
	if last := ys[len(ys)-1]; last < maxRate*1.02 {
		ys = append(ys, last+(ys[1]-ys[0]))
	}
	top := ys[len(ys)-1]
	if top <= 0 {
		top = 1
	}
	yf := func(v float64) float64 { return c.Plot.Y + c.Plot.H - v/top*c.Plot.H }
	for _, v := range ys {
		c.YTicks = append(c.YTicks, tick{Pos: yf(v), Label: compactNumber(v)})
	}
	s := in.scale()
	area := pathOf(ok, s.x, yf)
	area += " L" + f1(s.x(ok[len(ok)-1].X)) + "," + f1(yf(0)) + " L" + f1(s.x(ok[0].X)) + "," + f1(yf(0)) + " Z"
	c.Lines = append(c.Lines,
		line{D: area, Class: "data area-ok"},
		line{D: pathOf(ok, s.x, yf), Class: "data s-ok", Title: "ok"},
		line{D: pathOf(info, s.x, yf), Class: "data s-info", Title: "info (outcome unknown)"},
		line{D: pathOf(fail, s.x, yf), Class: "data s-fail", Title: "fail (definitely rejected)"},
	)
	items := []legendItem{{"s-ok", "ok"}, {"s-fail", "fail (definite rejection)"}, {"s-info", "info (unknown outcome)"}}
	if anyMismatch {
		c.Lines = append(c.Lines, line{D: pathOf(mismatch, s.x, yf), Class: "data s-mismatch", Title: "mismatch (a cas whose compare failed: a normal answer)"})
		items = append(items, legendItem{"s-mismatch", "mismatch (cas compare failed)"})
	}
	c.Legend = in.faultLegend(items)
	c.Note = fmt.Sprintf("Buckets of %s by completion time.", us(w*1e6))
	return c
}

func compactNumber(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// latencyChart: per-bucket percentiles of invoke->complete, plus the hlog's
// per-interval p99 (latency from the intended start).
func (in *chartInput) latencyChart() *chart {
	c := newTimeChart("latency", "Latency percentiles over time", 170)
	in.decorate(c)
	tl := in.tl
	w := float64(tl.width) / 1e9
	var p50, p99, pmax []point
	lo, hi := math.Inf(1), 0.0
	for i, b := range tl.buckets {
		if b.lat == nil || b.lat.count == 0 {
			continue
		}
		x := (float64(i) + 0.5) * w
		a, b99, m := b.lat.quantile(0.5), b.lat.quantile(0.99), b.lat.max
		p50 = append(p50, point{x, a})
		p99 = append(p99, point{x, b99})
		pmax = append(pmax, point{x, m})
		lo, hi = math.Min(lo, a), math.Max(hi, m)
	}
	var h99 []point
	if in.hlog != nil {
		for _, iv := range in.hlog.intervals {
			h99 = append(h99, point{iv.T, iv.P99})
			lo, hi = math.Min(lo, iv.P99), math.Max(hi, iv.P99)
		}
		h99 = lttb(h99, maxBuckets)
	}
	if len(p50) == 0 && len(h99) == 0 {
		c.Empty = "No completed operations to measure."
		return c
	}
	ls := newLogScale(lo, hi, c.Plot.Y, c.Plot.H)
	c.YTicks = ls.ticks()
	s := in.scale()
	if len(pmax) > 0 {
		gap := 1.5 * w
		c.Lines = append(c.Lines,
			line{D: pathGaps(pmax, gap, s.x, ls.y), Class: "data s-max", Title: "max"},
			line{D: pathGaps(p99, gap, s.x, ls.y), Class: "data s-p99", Title: "p99"},
			line{D: pathGaps(p50, gap, s.x, ls.y), Class: "data s-p50", Title: "p50"},
		)
		c.Legend = append(c.Legend, legendItem{"s-p50", "p50"}, legendItem{"s-p99", "p99"}, legendItem{"s-max", "max"})
	}
	if len(h99) > 0 {
		c.Lines = append(c.Lines, line{D: pathGaps(h99, hlogGap(in.hlog), s.x, ls.y), Class: "data s-hlog", Title: "p99 from intended start (latency.hlog)"})
		c.Legend = append(c.Legend, legendItem{"s-hlog", "p99 from intended start (latency.hlog)"})
	}
	c.Legend = in.faultLegend(c.Legend)
	c.Note = "Invoke to completion, from the history, log scale."
	return c
}

var knownRoles = map[string]string{
	"follower": "role-follower", "backup": "role-follower", "replica": "role-follower",
	"candidate":   "role-candidate",
	"unreachable": "role-down", "down": "role-down", "shutdown": "role-down", "stopped": "role-down",
}

func roleClass(role string) string {
	if history.IsLeaderRole(role) {
		return "role-leader"
	}
	if c, ok := knownRoles[strings.ToLower(role)]; ok {
		return c
	}
	return "role-other"
}

// nodesChart: one lane per node, coloured by the role the observer saw.
func (in *chartInput) nodesChart() *chart {
	c := newTimeChart("nodes", "Node status (observer)", math.Max(float64(len(in.nodes)), 1)*laneH+4)
	in.decorate(c)
	if len(in.nodes) == 0 {
		c.Empty = "No observer status events in the history."
		return c
	}
	s := in.scale()
	used := map[string]string{}
	for k, n := range in.nodes {
		y := c.Plot.Y + 2 + float64(k)*laneH
		c.Labels = append(c.Labels, label{X: plotL - 6, Y: y + laneH/2 + 4, Text: shorten(n.id, 12), Anchor: "end", Class: "lane-label"})
		prevTerm := ""
		for _, g := range n.segs {
			x0, x1 := s.x(float64(g.Start)/1e9), s.x(float64(g.End)/1e9)
			cls := roleClass(g.Role)
			used[cls] = g.Role
			title := fmt.Sprintf("%s: %s", n.id, g.Role)
			if g.Term != "" {
				title += ", term " + g.Term
			}
			if g.Leader != "" {
				title += ", leader " + g.Leader
			}
			if g.Err != "" {
				title += ", error: " + g.Err
			}
			if g.Flapping {
				title += " (status changed several times here; last status shown)"
				cls += " flapping"
			}
			title += ", " + fmtSpan(g.Start, g.End)
			w := math.Max(x1-x0, 1)
			c.Rects = append(c.Rects, rect{X: x0, Y: y + 2, W: w, H: laneH - 4, Class: "data " + cls, Title: title})
			if g.Term != "" && g.Term != prevTerm && w > 8*float64(len(g.Term)+1) {
				c.Labels = append(c.Labels, label{X: x0 + 3, Y: y + laneH/2 + 4, Text: "t" + shorten(g.Term, 8), Class: "in-bar"})
			}
			prevTerm = g.Term
		}
		for _, sw := range in.splits {
			if !slices.Contains(sw.Nodes, n.id) {
				continue
			}
			x0, x1 := s.x(float64(sw.From)/1e9), s.x(float64(sw.To)/1e9)
			c.Rects = append(c.Rects, rect{X: x0, Y: y, W: math.Max(x1-x0, 2), H: laneH, Class: "data split-brain", Title: sw.Title})
			used["split-brain"] = "split brain"
		}
	}
	for _, cls := range []string{"role-leader", "role-follower", "role-candidate", "role-down", "role-other", "split-brain"} {
		if r, ok := used[cls]; ok {
			name := strings.TrimPrefix(cls, "role-")
			switch cls {
			case "role-other":
				name = "other (" + shorten(r, 20) + ")"
			case "split-brain":
				name = "split brain: both sides acting as leader (split-brain checker)"
			}
			c.Legend = append(c.Legend, legendItem{cls, name})
		}
	}
	c.Legend = in.faultLegend(c.Legend)
	c.Note = "Lane colour is the role each node reported; tN is its term. Hover for leader and errors."
	return c
}

// spectrumX maps a quantile to log10(1/(1-q)).
func spectrumX(q float64) float64 { return math.Log10(1 / (1 - q)) }

type spectrumSeries struct {
	name  string
	class string
	q     func(q float64) float64 // µs at quantile q
	max   float64
	count int64
}

// spectrumChart: latency by percentile, HdrHistogram style.
func (in *chartInput) spectrumChart() *chart {
	plotH := 200.0
	c := &chart{ID: "spectrum", Title: "Latency by percentile", H: plotTop + plotH + plotBot + 14, Plot: box{X: plotL, Y: plotTop, W: chartW - plotL - plotR, H: plotH}}
	var series []spectrumSeries
	if in.hlog != nil && in.hlog.total != nil {
		h := in.hlog.total
		series = append(series, spectrumSeries{"from intended start (latency.hlog)", "s-hlog", func(q float64) float64 { return float64(h.ValueAtQuantile(q * 100)) }, float64(h.Max()), h.TotalCount()})
	}
	if t := in.scan.total; t != nil && t.TotalCount() > 0 {
		series = append(series, spectrumSeries{"invoke to completion (history)", "s-p99", func(q float64) float64 { return float64(t.ValueAtQuantile(q * 100)) }, float64(t.Max()), t.TotalCount()})
	}
	if len(series) == 0 {
		c.Empty = "No latencies recorded (no latency.hlog and no completed operations)."
		return c
	}
	// x range: up to the percentile the largest sample can resolve.
	var maxN int64
	lo, hi := math.Inf(1), 0.0
	for _, sr := range series {
		if sr.count > maxN {
			maxN = sr.count
		}
		lo = math.Min(lo, sr.q(0))
		hi = math.Max(hi, sr.max)
	}
	xmax := math.Ceil(spectrumX(1 - 1/float64(maxN)))
	if xmax < 2 {
		xmax = 2
	}
	if xmax > 6 {
		xmax = 6
	}
	xf := func(x float64) float64 { return c.Plot.X + x/xmax*c.Plot.W }
	ls := newLogScale(lo, hi, c.Plot.Y, c.Plot.H)
	c.YTicks = ls.ticks()
	for d := 0.0; d <= xmax; d++ {
		lbl := "0%"
		if d > 0 {
			lbl = strconv.FormatFloat(100*(1-math.Pow(10, -d)), 'f', max(0, int(d)-2), 64) + "%"
		}
		c.XTicks = append(c.XTicks, tick{Pos: xf(d), Label: lbl})
	}
	c.XLabel = "percentile"
	for _, sr := range series {
		var pts []point
		sx := math.Min(xmax, spectrumX(1-1/float64(sr.count)))
		steps := 200
		for i := 0; i <= steps; i++ {
			x := sx * float64(i) / float64(steps)
			q := 1 - math.Pow(10, -x)
			pts = append(pts, point{x, math.Max(sr.q(q), 1)})
		}
		pts = append(pts, point{sx, sr.max})
		c.Lines = append(c.Lines, line{D: pathOf(pts, xf, ls.y), Class: "data " + sr.class, Title: sr.name})
		c.Legend = append(c.Legend, legendItem{sr.class, fmt.Sprintf("%s, %d values", sr.name, sr.count)})
	}
	c.Note = "HdrHistogram percentile spectrum; x is log(1/(1-p)), so the tail gets the room."
	return c
}

// nodeLane is one node's role segments (history.Roles).
type nodeLane struct {
	id   string
	segs []history.RoleSegment
}

// nodeLanes returns a lane per node, ordered as results.json lists the
// nodes, then naturally.
func nodeLanes(roles *history.Roles, order []string) []nodeLane {
	rank := map[string]int{}
	for i, id := range order {
		rank[id] = i + 1
	}
	out := make([]nodeLane, 0, len(roles.Nodes()))
	for _, n := range roles.Nodes() {
		out = append(out, nodeLane{id: n, segs: roles.Segments(n)})
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank[out[i].id], rank[out[j].id]
		if ri != rj {
			if ri == 0 {
				return false
			}
			if rj == 0 {
				return true
			}
			return ri < rj
		}
		return naturalLess(out[i].id, out[j].id)
	})
	return out
}

// naturalLess compares strings with embedded numbers by value (n2 < n10).
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da != "" && db != "" {
			na, _ := strconv.ParseUint(da, 10, 64)
			nb, _ := strconv.ParseUint(db, 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
