package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/fielderr"
)

// RetryStormParams configure the retry-storm checker (`checkers:
// {retry-storm: {...}}` in a scenario).
type RetryStormParams struct {
	// Window is the width of the windows the run is cut into, from the
	// main phase's start; default 1s.
	Window time.Duration `yaml:"window"`
	// RecoverWithin is how long after the trigger fault ends goodput must
	// be back (Tolerance); later, or never while the load runs, is a
	// metastable failure (invalid). Default 5s.
	RecoverWithin time.Duration `yaml:"recover_within"`
	// MaxAmplification, if positive, is the most attempts per client
	// request the callers may send in any window (invalid above it).
	MaxAmplification float64 `yaml:"max_amplification"`
	// Tolerance is how far below its level before the first fault goodput
	// may be and count as recovered, as a fraction: default 0.1 (back
	// within 10%).
	Tolerance float64 `yaml:"tolerance"`
	// Trigger names the fault whose end starts the recovery clock (a
	// fault's name, such as service-time, or its family, the nemesis
	// event's f); "" means every fault of the main phase (the clock
	// starts when the last one ends).
	Trigger string `yaml:"trigger"`
	// Role picks the metrics samples of the callers (the nodes that send
	// the attempts): samples recorded with this role. Default frontend.
	Role string `yaml:"role"`
	// Nodes, if set, picks the callers' samples by node instead of Role.
	Nodes []string `yaml:"nodes"`
	// Attempts, Requests and BreakerState select the callers' series: the
	// counter of attempts sent to the dependency, the counter of requests
	// received from clients, and the breaker state gauge (0 closed, 1
	// open, 2 half-open). Each is a metric name or a selector
	// name{label="value"}; the series it matches are summed (the breaker:
	// the largest). Defaults: retrysvc's names.
	Attempts     string `yaml:"attempts"`
	Requests     string `yaml:"requests"`
	BreakerState string `yaml:"breaker_state"`
	// MinRequests is the fewest client requests (from the counters) a
	// window needs for its amplification to count; default 10. A window
	// with fewer has no amplification (null), rather than a ratio of a
	// handful.
	MinRequests float64 `yaml:"min_requests"`
}

// Defaults of RetryStormParams.
const (
	DefaultRetryStormWindow        = time.Second
	DefaultRetryStormRecoverWithin = 5 * time.Second
	DefaultRetryStormTolerance     = 0.1
	DefaultRetryStormRole          = "frontend"
	DefaultAttemptsMetric          = "retrysvc_attempts_total"
	DefaultRequestsMetric          = "retrysvc_requests_total"
	DefaultBreakerStateMetric      = "retrysvc_breaker_state"
	DefaultRetryStormMinRequests   = 10
)

// NewRetryStormParams returns the parameters with their defaults.
func NewRetryStormParams() *RetryStormParams {
	return &RetryStormParams{
		Window: DefaultRetryStormWindow, RecoverWithin: DefaultRetryStormRecoverWithin,
		Tolerance: DefaultRetryStormTolerance, Role: DefaultRetryStormRole,
		Attempts: DefaultAttemptsMetric, Requests: DefaultRequestsMetric, BreakerState: DefaultBreakerStateMetric,
		MinRequests: DefaultRetryStormMinRequests,
	}
}

// Check checks the values.
func (p *RetryStormParams) Check() error {
	switch {
	case p.Window < time.Millisecond || p.Window > time.Hour:
		return fielderr.New("window", "%s: use a width from 1ms to 1h, e.g. 1s", p.Window)
	case p.RecoverWithin <= 0 || p.RecoverWithin > 24*time.Hour:
		return fielderr.New("recover_within", "%s: use a positive duration, e.g. 5s", p.RecoverWithin)
	case math.IsNaN(p.MaxAmplification) || p.MaxAmplification < 0:
		return fielderr.New("max_amplification", "%v: use 0 (no limit) or the most attempts per request, e.g. 4", p.MaxAmplification)
	case p.MaxAmplification > 0 && p.MaxAmplification < 1:
		return fielderr.New("max_amplification", "%v: every request makes at least its first attempt, so a limit below 1 fails any window that sends one; use 1 or more (0: no limit)", p.MaxAmplification)
	case math.IsNaN(p.Tolerance) || p.Tolerance < 0 || p.Tolerance >= 1:
		return fielderr.New("tolerance", "%v: use a fraction from 0 to below 1, e.g. 0.1 (goodput back within 10%%)", p.Tolerance)
	case math.IsNaN(p.MinRequests) || p.MinRequests < 0:
		return fielderr.New("min_requests", "%v: must not be negative", p.MinRequests)
	case p.Role == "" && len(p.Nodes) == 0:
		return fielderr.New("role", "give the role of the callers' samples (default frontend), or nodes")
	}
	for i, n := range p.Nodes {
		if n == "" {
			return fielderr.New(fmt.Sprintf("nodes[%d]", i), "an empty node id")
		}
	}
	for _, f := range []struct{ field, sel string }{{"attempts", p.Attempts}, {"requests", p.Requests}, {"breaker_state", p.BreakerState}} {
		if _, err := newSeriesMatcher(f.sel); err != nil {
			return fielderr.New(f.field, "%v", err)
		}
	}
	return nil
}

// RetryStorm judges a run for a retry storm from the history alone: the
// client operations (offered load and goodput), the fault windows (the
// trigger), and the callers' counters the conductor sampled (MetricsF
// events: amplification and breaker state).
//
// The main phase (else the span of the client events) is cut into
// windows of Params.Window from its start, up to the last client invoke
// (plus a tenth of a window: the main phase also waits for the requests
// in flight, and a window without load is no loss of goodput); a last
// partial window is left out. Per window: offered load = client invokes per second; goodput = ok
// completions per second (by completion time); amplification = the
// increase of the callers' attempts counter over the increase of their
// requests counter; the breaker's open fraction = the share of the
// window's samples in which the breaker state gauge read 1 (open).
// Counters are read at the window's bounds by linear interpolation
// between the two samples around each bound (each placed at its reading,
// MetricsSample.At, else at the event's time), per node, after undoing
// counter resets (a value below the previous one starts from 0 again, as
// Prometheus's increase does; a labelled series not yet seen counts as
// 0). A bound between two samples further apart than twice the node's
// median spacing, or outside the node's samples, is not covered: the
// window's amplification sums the nodes that cover both bounds, and is
// missing (NaN, null in results.json) when none does or fewer than
// Params.MinRequests requests arrived.
//
// Recovery: the baseline is the median goodput of the windows that end
// before the first fault of the main phase starts; the clock starts when
// the trigger ends (Params.Trigger; the last to end). Goodput has
// recovered at the end of the first window that starts after the trigger
// ended (or less than a tenth of a window before: the fault's end is
// recorded a moment after the time it was planned for) and whose goodput
// is at least (1 - Tolerance) x the baseline:
// time to recover = that window's end - the trigger's end, exact to the
// window (an upper bound by less than one window). Not recovered by the
// trigger's end + RecoverWithin is a metastable failure: invalid, with
// the evidence (the first client operation that failed after the bound,
// the trigger's end event, the callers' sample at the bound). A window
// above MaxAmplification is invalid too, each one an anomaly citing the
// samples around it.
//
// Unknown: no full window before the first fault (no baseline), no
// goodput before it or less than (1 - Tolerance) x the load offered then
// (the system was failing before the fault), a trigger that never ended, a load that ended before
// the bound passed without recovery, or MaxAmplification set without
// usable samples of the callers' counters. Not applicable: no client
// operations. With neither a fault nor MaxAmplification it reports its
// figures without a verdict (Result.Figures).
//
// Details: window_ns, baseline_goodput, recovery_goodput (the least
// that counts as recovered), trigger (fault, start_ns, end_ns),
// amplification_during_trigger (attempts per request from the trigger's
// start to its end: a window's figure can exceed the policy's 1 + retries
// while the retries of requests received in the window before land in
// it),
// recovered, recovered_at_ns, time_to_recover_ns, recover_within_ns,
// metastable, max_amplification (the limit, when set), peak_amplification,
// peak_amplification_at_ns, open_ns and amplification_while_open (over
// the intervals between two samples that both read the breaker open, all
// callers together: open_ns long in all), breaker_opened (the increase of the
// breaker's transitions to open, when sampled), nodes (the callers
// sampled), samples, sample_errors, and series (a RetryStormSeries; read
// it back from results.json with RetryStormSeriesOf). It ignores the
// budget: it is linear in the history.
type RetryStorm struct {
	Params RetryStormParams
}

// RetryStormSeries are the per-window figures of a run, as the
// retry-storm checker's Details["series"] holds them (report.html draws
// them). Window i covers [T0 + i*W, T0 + (i+1)*W) ns since the run's
// start; every slice has one value per window, NaN (null) where the
// figure is missing.
type RetryStormSeries struct {
	T0 int64 `json:"t0_ns"`
	W  int64 `json:"w_ns"`
	// Offered and Goodput are client invokes and ok completions per
	// second; Attempts is the callers' attempts per second (from the
	// counters); Amplification is attempts per client request;
	// BreakerOpen the fraction of the window's samples with the breaker
	// open.
	Offered       Floats `json:"offered"`
	Goodput       Floats `json:"goodput"`
	Attempts      Floats `json:"attempts"`
	Amplification Floats `json:"amplification"`
	BreakerOpen   Floats `json:"breaker_open"`
	// Breaker is, per caller node, the breaker state gauge as a list of
	// changes [time ns, state] (0 closed, 1 open, 2 half-open), the first
	// sample first; absent when no sample holds the gauge.
	Breaker map[string][][2]int64 `json:"breaker,omitempty"`
}

// RetryStormSeriesOf reads the series from a retry-storm result's
// Details["series"], as the checker set it or as read back from
// results.json.
func RetryStormSeriesOf(v any) (*RetryStormSeries, bool) {
	switch x := v.(type) {
	case *RetryStormSeries:
		return x, x != nil
	case nil:
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var s RetryStormSeries
	if json.Unmarshal(b, &s) != nil || s.W <= 0 {
		return nil, false
	}
	return &s, true
}

// Name returns "retry-storm".
func (RetryStorm) Name() string { return "retry-storm" }

// callerSamples are one caller node's usable samples, in time order.
type callerSamples struct {
	node  string
	times []int64
	ev    []int     // event index of each sample
	att   []float64 // attempts, resets undone
	req   []float64 // requests, resets undone
	brk   []float64 // breaker state, NaN when the sample lacks it
	open  []float64 // transitions to open, resets undone (NaN: not sampled)
	gap   int64     // the largest spacing across which a bound is covered
}

// counterState undoes the resets of the series one selector matches on
// one node: total is their sum, each series counting from 0 when first
// seen and carrying its last value while absent.
type counterState struct {
	m     seriesMatcher
	seen  bool
	last  map[string]float64
	total float64
}

func (c *counterState) add(metrics map[string]float64) {
	if c.last == nil {
		c.last = map[string]float64{}
	}
	for k, v := range metrics {
		if !c.m.matches(k) || math.IsNaN(v) {
			continue
		}
		c.seen = true
		prev := c.last[k]
		if v >= prev {
			c.total += v - prev
		} else {
			c.total += v // a reset: it counted from 0 again
		}
		c.last[k] = v
	}
}

// at returns the interpolated counters at time t, or ok false when t is
// not covered.
func (cs *callerSamples) at(t int64) (att, req float64, ok bool) {
	i := sort.Search(len(cs.times), func(i int) bool { return cs.times[i] >= t })
	if i < len(cs.times) && cs.times[i] == t {
		return cs.att[i], cs.req[i], true
	}
	if i == 0 || i == len(cs.times) {
		return 0, 0, false
	}
	t0, t1 := cs.times[i-1], cs.times[i]
	if t1-t0 > cs.gap {
		return 0, 0, false
	}
	f := float64(t-t0) / float64(t1-t0)
	return cs.att[i-1] + f*(cs.att[i]-cs.att[i-1]), cs.req[i-1] + f*(cs.req[i]-cs.req[i-1]), true
}

// Check runs the checker.
func (c RetryStorm) Check(ctx context.Context, in Input) Result {
	t0 := time.Now()
	p := c.Params
	def := NewRetryStormParams()
	if p.Window <= 0 {
		p.Window = def.Window
	}
	if p.RecoverWithin <= 0 {
		p.RecoverWithin = def.RecoverWithin
	}
	if p.Role == "" && len(p.Nodes) == 0 {
		p.Role = def.Role
	}
	for _, f := range []struct {
		v *string
		d string
	}{{&p.Attempts, def.Attempts}, {&p.Requests, def.Requests}, {&p.BreakerState, def.BreakerState}} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	r := Result{Name: "retry-storm"}
	done := func() Result { return finish(&r, t0) }
	evs := in.Events
	w := p.Window.Nanoseconds()

	// The span judged: the main phase, else the client events', up to
	// the last invoke (the load's end: a main phase also waits for the
	// requests in flight, and windows without load would read as lost
	// goodput).
	var from, to int64 = -1, -1
	lastInvoke := int64(-1)
	main, hasMain := history.FindPhase(history.Phases(evs), "main")
	for i := range evs {
		e := &evs[i]
		if !e.Process.IsClient() {
			continue
		}
		if from < 0 {
			from = e.Time
		}
		if e.Type == history.Invoke && (!hasMain || e.Time <= main.End) {
			lastInvoke = e.Time
		}
	}
	if lastInvoke < 0 {
		r.Verdict = NotApplicable
		r.Summary = "no client operations in the history: no load to judge"
		return done()
	}
	if hasMain {
		from = main.Start
	}
	to = lastInvoke + w/10
	if hasMain && !main.Open() {
		to = min(to, main.End)
	}
	nw := int((to - from) / w)
	if nw < 1 {
		r.Verdict = Unknown
		r.Summary = fmt.Sprintf("the load lasted %s, less than one window of %s", fmtNs(to-from), p.Window)
		r.Explanation = "The retry-storm checker cuts the main phase into windows of checkers.retry-storm.window; set a narrower window or a longer duration."
		return done()
	}
	win := func(k int) (int64, int64) { return from + int64(k)*w, from + int64(k+1)*w }
	sec := p.Window.Seconds()
	series := &RetryStormSeries{T0: from, W: w}
	invokes, oks := make([]float64, nw), make([]float64, nw)
	for i := range evs {
		e := &evs[i]
		if !e.Process.IsClient() || e.Time < from {
			continue
		}
		k := int((e.Time - from) / w)
		if k >= nw {
			continue
		}
		switch e.Type {
		case history.Invoke:
			invokes[k]++
		case history.OK:
			oks[k]++
		}
	}
	for k := 0; k < nw; k++ {
		series.Offered = append(series.Offered, invokes[k]/sec)
		series.Goodput = append(series.Goodput, oks[k]/sec)
	}
	if ctx.Err() != nil {
		r.Verdict = Unknown
		r.Summary = "cancelled"
		return done()
	}

	// The callers' samples.
	att, _ := newSeriesMatcher(p.Attempts)
	req, _ := newSeriesMatcher(p.Requests)
	brk, _ := newSeriesMatcher(p.BreakerState)
	toOpen := seriesMatcher{name: "retrysvc_breaker_transitions_total", labels: map[string]string{"to": "open"}}
	byNode := map[string]*callerSamples{}
	states := map[string][3]*counterState{}
	var order []string
	samples, sampleErrors, otherRoles := 0, 0, map[string]bool{}
	attSeen, reqSeen := false, false
	for i := range evs {
		e := &evs[i]
		if e.Process != history.Observer || e.F != MetricsF || e.Node == "" {
			continue
		}
		var ms MetricsSample
		if json.Unmarshal(e.Value, &ms) != nil {
			continue
		}
		if len(p.Nodes) > 0 && !slices.Contains(p.Nodes, e.Node) || len(p.Nodes) == 0 && ms.Role != p.Role {
			otherRoles[e.Node+" ("+firstNonEmptyStr(ms.Role, "no role")+")"] = true
			continue
		}
		if e.Error != "" || ms.Metrics == nil {
			sampleErrors++
			continue
		}
		cs := byNode[e.Node]
		if cs == nil {
			cs = &callerSamples{node: e.Node}
			byNode[e.Node] = cs
			order = append(order, e.Node)
			states[e.Node] = [3]*counterState{{m: att}, {m: req}, {m: toOpen}}
		}
		at := e.Time
		if ms.At > 0 && ms.At <= e.Time {
			at = ms.At
		}
		if n := len(cs.times); n > 0 && at <= cs.times[n-1] {
			continue // not after the node's previous sample: out of order
		}
		st := states[e.Node]
		for _, s := range st {
			s.add(ms.Metrics)
		}
		if !st[1].seen {
			continue // no requests counter yet: not a usable sample
		}
		attSeen = attSeen || st[0].seen
		reqSeen = true
		samples++
		b := math.NaN()
		for k, v := range ms.Metrics {
			if brk.matches(k) && (math.IsNaN(b) || v > b) {
				b = v
			}
		}
		opens := math.NaN()
		if st[2].seen {
			opens = st[2].total
		}
		cs.times = append(cs.times, at)
		cs.ev = append(cs.ev, i)
		cs.att = append(cs.att, st[0].total)
		cs.req = append(cs.req, st[1].total)
		cs.brk = append(cs.brk, b)
		cs.open = append(cs.open, opens)
	}
	for _, cs := range byNode {
		var d []int64
		for i := 1; i < len(cs.times); i++ {
			d = append(d, cs.times[i]-cs.times[i-1])
		}
		if len(d) > 0 {
			slices.Sort(d)
			cs.gap = 2 * d[len(d)/2]
		}
	}
	slices.Sort(order)
	usable := reqSeen && attSeen

	// Amplification and breaker per window.
	peak, peakAt := math.NaN(), -1
	for k := 0; k < nw; k++ {
		s, e := win(k)
		var attInc, reqInc float64
		covered := 0
		for _, id := range order {
			cs := byNode[id]
			a0, r0, ok0 := cs.at(s)
			a1, r1, ok1 := cs.at(e)
			if ok0 && ok1 {
				attInc += a1 - a0
				reqInc += r1 - r0
				covered++
			}
		}
		amp, attRate := math.NaN(), math.NaN()
		if covered > 0 && usable {
			attRate = attInc / sec
			if reqInc >= math.Max(p.MinRequests, 1e-9) {
				amp = attInc / reqInc
			}
		}
		series.Attempts = append(series.Attempts, attRate)
		series.Amplification = append(series.Amplification, amp)
		n, open := 0, 0
		for _, id := range order {
			cs := byNode[id]
			for j, t := range cs.times {
				if t >= s && t < e && !math.IsNaN(cs.brk[j]) {
					n++
					if cs.brk[j] == 1 {
						open++
					}
				}
			}
		}
		bo := math.NaN()
		if n > 0 {
			bo = float64(open) / float64(n)
		}
		series.BreakerOpen = append(series.BreakerOpen, bo)
		if !math.IsNaN(amp) {
			if math.IsNaN(peak) || amp > peak {
				peak, peakAt = amp, k
			}
		}
	}
	for _, id := range order {
		cs := byNode[id]
		var lane [][2]int64
		for j, b := range cs.brk {
			if math.IsNaN(b) {
				continue
			}
			if len(lane) == 0 || lane[len(lane)-1][1] != int64(b) {
				lane = append(lane, [2]int64{cs.times[j], int64(b)})
			}
		}
		if len(lane) > 0 {
			if series.Breaker == nil {
				series.Breaker = map[string][][2]int64{}
			}
			series.Breaker[id] = lane
		}
	}

	d := map[string]any{
		"window_ns": w, "recover_within_ns": p.RecoverWithin.Nanoseconds(), "nodes": order,
		"samples": samples, "sample_errors": sampleErrors, "series": series,
	}
	r.Details = d
	var bad, unknown, facts []string
	judged := false
	callers := strings.Join(order, ", ")
	if !math.IsNaN(peak) {
		ps, _ := win(peakAt)
		d["peak_amplification"] = round3(peak)
		d["peak_amplification_at_ns"] = ps
		facts = append(facts, fmt.Sprintf("peak amplification %.2f attempts per request (%s to %s)", peak, fmtNs(ps), fmtNs(ps+w)))
	}
	// While open: the sample intervals that begin and end with the
	// breaker open, summed over the callers.
	var openAtt, openReq float64
	var openNs int64
	for _, id := range order {
		cs := byNode[id]
		for j := 1; j < len(cs.times); j++ {
			if cs.brk[j-1] == 1 && cs.brk[j] == 1 {
				openAtt += cs.att[j] - cs.att[j-1]
				openReq += cs.req[j] - cs.req[j-1]
				openNs += cs.times[j] - cs.times[j-1]
			}
		}
	}
	if openNs > 0 {
		d["open_ns"] = openNs
		if openReq >= math.Max(p.MinRequests, 1e-9) {
			ao := openAtt / openReq
			d["amplification_while_open"] = round3(ao)
			facts = append(facts, fmt.Sprintf("%.2f attempts per request while the breaker was open (%s in all)", ao, fmtNs(openNs)))
		}
	}
	opened := 0.0
	for _, id := range order {
		cs := byNode[id]
		first, last := math.NaN(), math.NaN()
		for _, v := range cs.open {
			if !math.IsNaN(v) {
				if math.IsNaN(first) {
					first = v
				}
				last = v
			}
		}
		if !math.IsNaN(first) {
			opened += last - first
			d["breaker_opened"] = int64(opened)
		}
	}
	if v, ok := d["breaker_opened"]; ok && (v.(int64) > 0 || len(series.Breaker) > 0 && anyOpen(series.Breaker)) {
		facts = append(facts, fmt.Sprintf("the breaker opened %d times", v))
	}

	// Amplification limit.
	if p.MaxAmplification > 0 {
		judged = true
		d["max_amplification"] = p.MaxAmplification
		switch {
		case !usable:
			unknown = append(unknown, c.noSamples(order, otherRoles, sampleErrors, reqSeen, attSeen))
		case math.IsNaN(peak):
			unknown = append(unknown, fmt.Sprintf("no window had the callers' counters at both its bounds with at least %v requests, so amplification (limit %v) could not be measured", p.MinRequests, p.MaxAmplification))
		default:
			n := 0
			for k, amp := range series.Amplification {
				if math.IsNaN(amp) || amp <= p.MaxAmplification {
					continue
				}
				n++
				s, e := win(k)
				a := Anomaly{Kind: "amplification", Time: s}
				a.Events = samplesAround(byNode, order, s, e)
				if len(a.Events) > 0 {
					a.Node = evs[a.Events[0]].Node
				}
				a.Refs = refsOf(in, a.Events)
				a.Message = fmt.Sprintf("from %s to %s the callers (%s) sent %.2f attempts per client request (%.0f attempts/s for %.0f requests/s offered), above the limit of %v",
					fmtNs(s), fmtNs(e), callers, amp, series.Attempts[k], series.Offered[k], p.MaxAmplification)
				a.Data = map[string]any{"amplification": round3(amp), "from": s, "to": e}
				r.Anomalies = append(r.Anomalies, a)
			}
			if n > 0 {
				bad = append(bad, fmt.Sprintf("amplification above %v in %s (peak %.2f)", p.MaxAmplification, plural(n, "window"), peak))
			}
		}
	}

	// Recovery after the trigger.
	var faultsIn []history.FaultWindow
	for _, fw := range history.FaultWindows(evs) {
		if fw.F == "heal" || fw.F == "tamper" || fw.Start < from || fw.Start > to {
			continue
		}
		faultsIn = append(faultsIn, fw)
	}
	var trig []history.FaultWindow
	for _, fw := range faultsIn {
		if p.Trigger == "" || fw.F == p.Trigger || faultName(fw) == p.Trigger {
			trig = append(trig, fw)
		}
	}
	var explain []string
	switch {
	case len(faultsIn) == 0:
		facts = append(facts, "no fault in the main phase, so no recovery to time")
	case len(trig) == 0:
		judged = true
		unknown = append(unknown, fmt.Sprintf("no fault named %s in the main phase (its faults: %s), so the recovery clock never started", p.Trigger, faultNames(faultsIn)))
	default:
		judged = true
		first := faultsIn[0].Start
		for _, fw := range faultsIn {
			first = min(first, fw.Start)
		}
		tw := trig[0]
		for _, fw := range trig {
			if fw.EndOr(history.NoEnd) > tw.EndOr(history.NoEnd) {
				tw = fw
			}
		}
		var base, baseOffered []float64
		for k := 0; k < nw; k++ {
			if _, e := win(k); e <= first {
				base = append(base, series.Goodput[k])
				baseOffered = append(baseOffered, series.Offered[k])
			}
		}
		trigName := faultName(tw)
		d["trigger"] = map[string]any{"fault": trigName, "start_ns": tw.Start, "end_ns": tw.End}
		if amp, ok := spanAmplification(byNode, order, tw.Start, tw.End, p.MinRequests); ok && usable {
			d["amplification_during_trigger"] = round3(amp)
			facts = append(facts, fmt.Sprintf("%.2f attempts per request while %s was in force", amp, trigName))
		}
		if tw.Open() || tw.End > to {
			d["trigger"] = map[string]any{"fault": trigName, "start_ns": tw.Start}
			unknown = append(unknown, fmt.Sprintf("the trigger (%s from %s) did not end while the load ran, so recovery after it cannot be timed", trigName, fmtNs(tw.Start)))
			break
		}
		if len(base) == 0 {
			unknown = append(unknown, fmt.Sprintf("no full window of %s before the first fault (at %s), so goodput before it is unknown: start the first fault at least one window into the main phase", p.Window, fmtNs(first)))
			break
		}
		baseline := median(base)
		d["baseline_goodput"] = round3(baseline)
		if baseline <= 0 {
			unknown = append(unknown, fmt.Sprintf("no goodput before the first fault (at %s): the system served nothing to recover to", fmtNs(first)))
			break
		}
		if off := median(baseOffered); baseline < (1-p.Tolerance)*off {
			d["baseline_offered"] = round3(off)
			unknown = append(unknown, fmt.Sprintf("goodput before the first fault (at %s) was %.0f/s of %.0f/s offered: the system was already failing before it (a storm with another cause?), so recovery from the fault cannot be judged", fmtNs(first), baseline, off))
			break
		}
		need := (1 - p.Tolerance) * baseline
		d["recovery_goodput"] = round3(need)
		deadline := tw.End + p.RecoverWithin.Nanoseconds()
		rec := -1
		for k := 0; k < nw; k++ {
			if s, _ := win(k); s >= tw.End-w/10 && series.Goodput[k] >= need-1e-9*baseline {
				rec = k
				break
			}
		}
		lastEnd := from + int64(nw)*w
		if rec >= 0 {
			_, e := win(rec)
			ttr := e - tw.End
			d["recovered"] = true
			d["recovered_at_ns"] = e
			d["time_to_recover_ns"] = ttr
			if e <= deadline {
				d["metastable"] = false
				facts = append([]string{fmt.Sprintf("recovered %s after %s ended (bound %s): goodput %.0f/s, back within %.0f%% of %.0f/s before the first fault", fmtNs(ttr), trigName, p.RecoverWithin, series.Goodput[rec], p.Tolerance*100, baseline)}, facts...)
				break
			}
			d["metastable"] = true
			bad = append([]string{fmt.Sprintf("metastable failure: goodput recovered only %s after %s ended, beyond the bound of %s", fmtNs(ttr), trigName, p.RecoverWithin)}, bad...)
		} else {
			d["recovered"] = false
			if lastEnd < deadline {
				unknown = append(unknown, fmt.Sprintf("goodput had not recovered when the load ended, %s after %s ended, before the bound of %s passed: run the load longer", fmtNs(lastEnd-tw.End), trigName, p.RecoverWithin))
				break
			}
			d["metastable"] = true
			bad = append([]string{fmt.Sprintf("metastable failure: goodput did not recover in the %s the load ran after %s ended (bound %s)", fmtNs(lastEnd-tw.End), trigName, p.RecoverWithin)}, bad...)
		}
		// The evidence: the window at the bound, what failed then, the
		// trigger's end, the callers' sample at the bound.
		k := int((deadline - from) / w)
		if k >= nw {
			k = nw - 1
		}
		ks, ke := win(k)
		a := Anomaly{Kind: "metastable", Time: deadline}
		if op := firstFailureAfter(evs, deadline); op >= 0 {
			a.Events = append(a.Events, op)
			a.Node, a.Key = evs[op].Node, evs[op].Key
		}
		if tw.EndEvent >= 0 {
			a.Events = append(a.Events, tw.EndEvent)
		}
		if sm := sampleAtOrAfter(byNode, order, deadline); sm >= 0 {
			a.Events = append(a.Events, sm)
			if a.Node == "" {
				a.Node = evs[sm].Node
			}
		}
		a.Refs = refsOf(in, a.Events)
		ampText := ""
		if amp := series.Amplification[k]; !math.IsNaN(amp) {
			ampText = fmt.Sprintf(", the callers sending %.2f attempts per request", amp)
		}
		a.Message = fmt.Sprintf("goodput %.0f/s from %s to %s, %s after %s ended (at %s): %.0f%% of its %.0f/s before the first fault, below the %.0f%% that counts as recovered, with %.0f requests/s offered%s",
			series.Goodput[k], fmtNs(ks), fmtNs(ke), fmtNs(ke-tw.End), trigName, fmtNs(tw.End), 100*series.Goodput[k]/baseline, baseline, 100*(1-p.Tolerance), series.Offered[k], ampText)
		a.Data = map[string]any{"goodput": round3(series.Goodput[k]), "baseline_goodput": round3(baseline), "from": ks, "to": ke, "trigger_end_ns": tw.End}
		r.Anomalies = append([]Anomaly{a}, r.Anomalies...)
		explain = append(explain, fmt.Sprintf("A metastable failure: the trigger (%s, %s to %s) was removed, but goodput stayed below %.0f%% of its level before the first fault (%.0f/s) for longer than the scenario's bound of %s. Work the callers keep sending (retries of requests that time out while they queue) keeps the dependency overloaded after the cause is gone. Look at the first anomaly's history lines: a request that failed after the bound, the trigger's end, and the callers' counters then. Retries with backoff and jitter, a retry budget or a circuit breaker keep the load from multiplying.",
			trigName, fmtNs(tw.Start), fmtNs(tw.End), 100*(1-p.Tolerance), baseline, p.RecoverWithin))
	}
	if len(order) == 0 && p.MaxAmplification == 0 {
		facts = append(facts, "amplification not measured (no metrics samples of the callers)")
	}

	switch {
	case len(bad) > 0:
		r.Verdict = Invalid
		r.Summary = strings.Join(append(bad, facts...), "; ")
		if len(r.Anomalies) > 0 && r.Anomalies[len(r.Anomalies)-1].Kind == "amplification" {
			explain = append(explain, fmt.Sprintf("Amplification: in the windows listed, the callers sent more attempts to their dependency per client request than the scenario allows (%v); each anomaly cites the callers' samples around the window. Each retry adds load to a dependency that is already failing.", p.MaxAmplification))
		}
		if len(unknown) > 0 {
			explain = append(explain, "Also: "+strings.Join(unknown, "; ")+".")
		}
		r.Explanation = strings.Join(explain, "\n")
	case len(unknown) > 0:
		r.Verdict = Unknown
		r.Summary = strings.Join(append(unknown, facts...), "; ")
		r.Explanation = "The retry-storm checker could not judge the run: " + strings.Join(unknown, "; ") + "."
	case judged:
		r.Verdict = Valid
		r.Summary = strings.Join(facts, "; ")
	default:
		r.Verdict = NotApplicable
		r.Figures = true
		r.Summary = strings.Join(facts, "; ")
	}
	return done()
}

// noSamples says why the callers' counters are not usable.
func (c RetryStorm) noSamples(order []string, others map[string]bool, errs int, req, att bool) string {
	p := c.Params
	who := "role " + p.Role
	if len(p.Nodes) > 0 {
		who = "nodes " + strings.Join(p.Nodes, ", ")
	}
	switch {
	case len(order) == 0 && errs > 0:
		return fmt.Sprintf("every metrics sample of %s failed (%d), so amplification could not be measured", who, errs)
	case len(order) == 0 && len(others) > 0:
		return fmt.Sprintf("no metrics samples of %s (sampled: %s): set checkers.retry-storm.role or nodes", who, strings.Join(slices.Sorted(maps.Keys(others)), ", "))
	case len(order) == 0:
		return "no metrics samples in the history: add a metrics block that scrapes the callers (metrics: {scrape: [{role: frontend}]})"
	case !req:
		return fmt.Sprintf("the samples of %s hold no series %s (the requests counter): set checkers.retry-storm.requests", who, p.Requests)
	case !att:
		return fmt.Sprintf("the samples of %s hold no series %s (the attempts counter): set checkers.retry-storm.attempts", who, p.Attempts)
	}
	return "the callers' counters could not be read"
}

// spanAmplification is the callers' attempts per request from s to e
// (ns), summed over the nodes whose samples cover both.
func spanAmplification(by map[string]*callerSamples, order []string, s, e int64, minReq float64) (float64, bool) {
	var att, req float64
	for _, id := range order {
		a0, r0, ok0 := by[id].at(s)
		a1, r1, ok1 := by[id].at(e)
		if ok0 && ok1 {
			att += a1 - a0
			req += r1 - r0
		}
	}
	if req < math.Max(minReq, 1e-9) {
		return 0, false
	}
	return att / req, true
}

// anyOpen reports whether a breaker lane ever left the closed state.
func anyOpen(lanes map[string][][2]int64) bool {
	for _, l := range lanes {
		for _, c := range l {
			if c[1] != 0 {
				return true
			}
		}
	}
	return false
}

// faultName is a fault window's name: its value's "fault", else its family.
func faultName(fw history.FaultWindow) string {
	var v struct {
		Fault string `json:"fault"`
	}
	if len(fw.Value) > 0 && json.Unmarshal(fw.Value, &v) == nil && v.Fault != "" {
		return v.Fault
	}
	return fw.F
}

func faultNames(fws []history.FaultWindow) string {
	var names []string
	for _, fw := range fws {
		if n := faultName(fw); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// firstFailureAfter returns the first client completion other than ok at
// or after t, or -1.
func firstFailureAfter(evs []history.Event, t int64) int {
	i := sort.Search(len(evs), func(i int) bool { return evs[i].Time >= t })
	for ; i < len(evs); i++ {
		e := &evs[i]
		if e.Process.IsClient() && (e.Type == history.Fail || e.Type == history.Info) {
			return i
		}
	}
	return -1
}

// sampleAtOrAfter returns the event of the first callers' sample at or
// after t (the last one if none is), or -1.
func sampleAtOrAfter(by map[string]*callerSamples, order []string, t int64) int {
	best, bt := -1, int64(math.MaxInt64)
	last, lt := -1, int64(-1)
	for _, id := range order {
		cs := by[id]
		i := sort.Search(len(cs.times), func(i int) bool { return cs.times[i] >= t })
		if i < len(cs.times) && cs.times[i] < bt {
			best, bt = cs.ev[i], cs.times[i]
		}
		if n := len(cs.times); n > 0 && cs.times[n-1] > lt {
			last, lt = cs.ev[n-1], cs.times[n-1]
		}
	}
	if best < 0 {
		return last
	}
	return best
}

// samplesAround returns, per caller, the sample at or after e and the one
// at or before s (the window's bounds), the later first.
func samplesAround(by map[string]*callerSamples, order []string, s, e int64) []int {
	var out []int
	for _, id := range order {
		cs := by[id]
		if i := sort.Search(len(cs.times), func(i int) bool { return cs.times[i] >= e }); i < len(cs.times) {
			out = append(out, cs.ev[i])
		}
		if i := sort.Search(len(cs.times), func(i int) bool { return cs.times[i] > s }); i > 0 {
			out = append(out, cs.ev[i-1])
		}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func firstNonEmptyStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
