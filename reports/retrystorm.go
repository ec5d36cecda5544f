package reports

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/faultline/faultline/checkers"
)

// The retry-storm checker's figures (its Details in results.json) drawn
// as three time charts beside the others, fault windows shaded: offered
// load, goodput and the callers' attempts per second (with the goodput
// that counts as recovered, the trigger's end, the bound and the
// recovery); amplification (attempts per client request, with the limit);
// and the breaker state of each caller as a lane. The report draws what
// the checker computed; it judges nothing.

// retryStormFigures are what the charts need from the checker's result.
type retryStormFigures struct {
	s                  *checkers.RetryStormSeries
	recoverLevel       float64 // goodput that counts as recovered; NaN if unknown
	limit              float64 // max_amplification; 0 none
	triggerEnd, bound  int64   // ns; -1 unknown
	recoveredAt        int64   // ns; -1 not recovered
	metastable         bool
	peak, peakOpen     float64
	baseline           float64
	triggerName        string
	anyAmp, anyAttempt bool
}

func retryStormFiguresOf(rs []checkers.Result) *retryStormFigures {
	for _, r := range rs {
		if r.Name != "retry-storm" || r.Details == nil {
			continue
		}
		s, ok := checkers.RetryStormSeriesOf(r.Details["series"])
		if !ok || len(s.Goodput) == 0 {
			continue
		}
		f := &retryStormFigures{s: s, recoverLevel: math.NaN(), baseline: math.NaN(), triggerEnd: -1, bound: -1, recoveredAt: -1, peak: math.NaN(), peakOpen: math.NaN()}
		num := func(k string) (float64, bool) {
			switch v := r.Details[k].(type) {
			case float64:
				return v, true
			case int64:
				return float64(v), true
			case int:
				return float64(v), true
			}
			return 0, false
		}
		if v, ok := num("recovery_goodput"); ok {
			f.recoverLevel = v
		}
		if v, ok := num("baseline_goodput"); ok {
			f.baseline = v
		}
		if v, ok := num("max_amplification"); ok {
			f.limit = v
		}
		if v, ok := num("peak_amplification"); ok {
			f.peak = v
		}
		if v, ok := num("amplification_while_open"); ok {
			f.peakOpen = v
		}
		if tr, ok := r.Details["trigger"].(map[string]any); ok {
			f.triggerName, _ = tr["fault"].(string)
			if v, ok := checkers.DataInt(tr["end_ns"]); ok {
				f.triggerEnd = v
				if w, ok := checkers.DataInt(r.Details["recover_within_ns"]); ok {
					f.bound = v + w
				}
			}
		}
		if v, ok := checkers.DataInt(r.Details["recovered_at_ns"]); ok {
			f.recoveredAt = v
		}
		f.metastable, _ = r.Details["metastable"].(bool)
		for i := range s.Goodput {
			f.anyAmp = f.anyAmp || i < len(s.Amplification) && !math.IsNaN(s.Amplification[i])
			f.anyAttempt = f.anyAttempt || i < len(s.Attempts) && !math.IsNaN(s.Attempts[i])
		}
		return f
	}
	return nil
}

// retryStormCharts returns the retry-storm charts, none when results.json
// has no retry-storm series.
func (in *chartInput) retryStormCharts(rs []checkers.Result) []*chart {
	f := retryStormFiguresOf(rs)
	if f == nil {
		return nil
	}
	out := []*chart{in.retryLoadChart(f), in.retryAmpChart(f)}
	if len(f.s.Breaker) > 0 {
		out = append(out, in.retryBreakerChart(f))
	}
	return out
}

// windowPoints returns a point per window with a value (its middle, in
// seconds), and the gap beyond which the line is broken (missing windows).
func windowPoints(s *checkers.RetryStormSeries, v checkers.Floats) ([]point, float64) {
	w := float64(s.W) / 1e9
	var pts []point
	for i, y := range v {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		pts = append(pts, point{float64(s.T0)/1e9 + (float64(i)+0.5)*w, y})
	}
	return pts, 1.5 * w
}

// linearY returns the y scale of a chart from 0 to a nice top at or
// above hi, and its ticks.
func linearY(c *chart, hi float64) func(float64) float64 {
	ys := niceTicks(0, math.Max(hi, 1e-9)*1.05, 4)
	if last := ys[len(ys)-1]; len(ys) > 1 && last < hi*1.05 {
		ys = append(ys, last+(ys[1]-ys[0]))
	}
	top := ys[len(ys)-1]
	if top <= 0 {
		top = 1
	}
	yf := func(v float64) float64 { return c.Plot.Y + c.Plot.H - math.Min(v, top)/top*c.Plot.H }
	for _, v := range ys {
		c.YTicks = append(c.YTicks, tick{Pos: yf(v), Label: compactNumber(v)})
	}
	return yf
}

// vmark is a vertical line across the plot at t ns.
func (in *chartInput) vmark(c *chart, t int64, class, title string) {
	if t < 0 {
		return
	}
	c.Marks = append(c.Marks, mark{X: in.scale().x(float64(t) / 1e9), Y: c.Plot.Y, H: c.Plot.H, Class: class, Title: title})
}

// hline is a horizontal line across the plot at y.
func hline(c *chart, y float64, class, title string) {
	c.Lines = append(c.Lines, line{D: "M" + f1(c.Plot.X) + "," + f1(y) + " H" + f1(c.Plot.X+c.Plot.W), Class: class, Title: title})
}

// retryLoadChart: offered load, goodput and attempts per second.
func (in *chartInput) retryLoadChart(f *retryStormFigures) *chart {
	c := newTimeChart("retry-load", "Retry storm: offered load, goodput and attempts (per second)", 170)
	in.decorate(c)
	c.YLabel = "req/s"
	s := f.s
	off, gap := windowPoints(s, s.Offered)
	good, _ := windowPoints(s, s.Goodput)
	att, _ := windowPoints(s, s.Attempts)
	hi := 0.0
	for _, ps := range [][]point{off, good, att} {
		for _, p := range ps {
			hi = math.Max(hi, p.Y)
		}
	}
	yf := linearY(c, hi)
	sx := in.scale().x
	if !math.IsNaN(f.recoverLevel) {
		hline(c, yf(f.recoverLevel), "data s-level", fmt.Sprintf("goodput that counts as recovered: %.0f/s (of %.0f/s before the first fault)", f.recoverLevel, f.baseline))
		c.Legend = append(c.Legend, legendItem{"s-level", "recovered level"})
	}
	c.Lines = append(c.Lines,
		line{D: pathGaps(off, gap, sx, yf), Class: "data s-offered", Title: "offered load: client requests sent per second"},
		line{D: pathGaps(good, gap, sx, yf), Class: "data s-goodput", Title: "goodput: ok answers per second"},
	)
	c.Legend = append(c.Legend, legendItem{"s-offered", "offered load"}, legendItem{"s-goodput", "goodput"})
	if len(att) > 0 {
		c.Lines = append(c.Lines, line{D: pathGaps(att, gap, sx, yf), Class: "data s-attempts", Title: "attempts the callers sent per second (from their counters)"})
		c.Legend = append(c.Legend, legendItem{"s-attempts", "attempts sent"})
	}
	if f.triggerEnd >= 0 {
		in.vmark(c, f.triggerEnd, "rs-mark rs-trigger", fmt.Sprintf("the trigger (%s) ended at %.3fs", f.triggerName, float64(f.triggerEnd)/1e9))
		in.vmark(c, f.bound, "rs-mark rs-bound", fmt.Sprintf("the bound: goodput must be back by %.3fs (recover_within)", float64(f.bound)/1e9))
		c.Legend = append(c.Legend, legendItem{"rs-trigger", "trigger ended"}, legendItem{"rs-bound", "recovery bound"})
	}
	if f.recoveredAt >= 0 {
		in.vmark(c, f.recoveredAt, "rs-mark rs-recovered", fmt.Sprintf("goodput recovered by %.3fs (the end of the first window back at the level)", float64(f.recoveredAt)/1e9))
		c.Legend = append(c.Legend, legendItem{"rs-recovered", "recovered"})
	}
	c.Legend = in.faultLegend(c.Legend)
	c.Note = fmt.Sprintf("Windows of %s from the main phase's start; offered load and goodput from the history, attempts from the callers' sampled counters.", us(float64(s.W)/1e3))
	if f.metastable {
		c.Note += " Goodput did not come back within the bound: a metastable failure."
	}
	return c
}

// retryAmpChart: attempts per client request.
func (in *chartInput) retryAmpChart(f *retryStormFigures) *chart {
	c := newTimeChart("retry-amplification", "Amplification (attempts sent per client request)", 130)
	in.decorate(c)
	c.YLabel = "×"
	s := f.s
	if !f.anyAmp {
		c.Empty = "No amplification: no metrics samples of the callers' attempts and requests counters (add a metrics block that scrapes them)."
		return c
	}
	pts, gap := windowPoints(s, s.Amplification)
	hi := math.Max(1, f.limit)
	for _, p := range pts {
		hi = math.Max(hi, p.Y)
	}
	yf := linearY(c, hi)
	hline(c, yf(1), "data s-one", "1: one attempt per request, no retry")
	if f.limit > 0 {
		hline(c, yf(f.limit), "data s-limit", fmt.Sprintf("the limit (max_amplification): %v", f.limit))
		c.Legend = append(c.Legend, legendItem{"s-limit", fmt.Sprintf("limit %v", f.limit)})
	}
	c.Lines = append(c.Lines, line{D: pathGaps(pts, gap, in.scale().x, yf), Class: "data s-amp", Title: "attempts per client request"})
	c.Legend = append([]legendItem{{"s-amp", "attempts per request"}}, c.Legend...)
	c.Legend = in.faultLegend(c.Legend)
	c.Note = "From the callers' counters, read at each window's bounds; gaps where samples are missing or too few requests arrived."
	if !math.IsNaN(f.peak) {
		c.Note = fmt.Sprintf("Peak %.2f. ", f.peak) + c.Note
	}
	return c
}

var breakerStates = []struct{ class, name string }{{"breaker-closed", "closed"}, {"breaker-open", "open"}, {"breaker-half", "half-open"}}

// retryBreakerChart: one lane per caller, coloured by its breaker state.
func (in *chartInput) retryBreakerChart(f *retryStormFigures) *chart {
	nodes := make([]string, 0, len(f.s.Breaker))
	for n := range f.s.Breaker {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return naturalLess(nodes[i], nodes[j]) })
	c := newTimeChart("retry-breaker", "Circuit breaker state (callers' sampled gauge)", float64(len(nodes))*laneH+4)
	in.decorate(c)
	sx := in.scale().x
	end := f.s.T0 + int64(len(f.s.Goodput))*f.s.W
	used := map[int64]bool{}
	for k, n := range nodes {
		y := c.Plot.Y + 2 + float64(k)*laneH
		c.Labels = append(c.Labels, label{X: plotL - 6, Y: y + laneH/2 + 4, Text: shorten(n, 12), Anchor: "end", Class: "lane-label"})
		lane := f.s.Breaker[n]
		for i, ch := range lane {
			to := end
			if i+1 < len(lane) {
				to = lane[i+1][0]
			}
			if to <= ch[0] {
				continue
			}
			st := ch[1]
			cls, name := "breaker-other", fmt.Sprintf("state %d", st)
			if st >= 0 && int(st) < len(breakerStates) {
				cls, name = breakerStates[st].class, breakerStates[st].name
			}
			used[st] = true
			x0, x1 := sx(float64(ch[0])/1e9), sx(float64(to)/1e9)
			c.Rects = append(c.Rects, rect{X: x0, Y: y + 2, W: math.Max(x1-x0, 1), H: laneH - 4, Class: "data " + cls, Title: fmt.Sprintf("%s: breaker %s, %s", n, name, fmtSpan(ch[0], to))})
		}
	}
	states := make([]int64, 0, len(used))
	for st := range used {
		states = append(states, st)
	}
	slices.Sort(states)
	for _, st := range states {
		if st >= 0 && int(st) < len(breakerStates) {
			c.Legend = append(c.Legend, legendItem{breakerStates[st].class, breakerStates[st].name})
		}
	}
	c.Legend = in.faultLegend(c.Legend)
	var parts []string
	if !math.IsNaN(f.peakOpen) {
		parts = append(parts, fmt.Sprintf("%.2f attempts per request while the breaker was open.", f.peakOpen))
	}
	parts = append(parts, "Each sample's state holds until the next sample.")
	c.Note = strings.Join(parts, " ")
	return c
}
