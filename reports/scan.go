package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// Limits that keep the report's size independent of the history's length.
const (
	// maxBuckets is the most time buckets a chart gets; the bucket width
	// doubles whenever a run outgrows it, so a run ends with between
	// maxBuckets/2 and maxBuckets buckets (or fewer, for a short run).
	maxBuckets = 400
	// minBucketWidth is the narrowest bucket (ns): narrower ones make
	// throughput too noisy to read.
	minBucketWidth = int64(100e6)
	// maxSegments is the most status segments drawn per node.
	maxSegments = 1500
	// maxDistinctErrors and maxDistinctKeys bound the error and key tables.
	maxDistinctErrors = 500
	maxDistinctKeys   = 10000
	// maxTextRunes truncates any one string from the target shown in the report.
	maxTextRunes = 300
	// maxFaultWindows bounds the fault windows drawn.
	maxFaultWindows = 2000
)

// scan is everything the report takes from history.jsonl, gathered in one
// streaming pass with memory bounded by the limits above (plus one entry per
// in-flight operation).
type scan struct {
	header *history.HeaderLine
	events int64
	last   int64 // time of the last event, ns

	tl      timeline
	total   *hdrhistogram.Histogram // service time of every completed op, µs
	ops     map[string]*OpStats     // by f
	pending map[history.Process]pendingOp
	// stillPending counts invocations never completed.
	stillPending int64

	errs      map[string]*errStat
	errsOther int64
	keys      map[string]*keyStat
	keysOther int64

	nemesis  []history.Event // kept whole: few, and shown in full
	nemDrop  int64
	nodes    map[string]*nodeLane
	names    map[string]string
	obsFirst int64
	obsLast  int64
}

type pendingOp struct {
	t int64
	f string
}

type errStat struct {
	Text        string
	Count       int64
	Fail, Info  int64
	First, Last int64
}

type keyStat struct {
	Key             string
	Ops, Fail, Info int64
}

type nodeLane struct {
	id   string
	segs []segment
	obs  int64
}

// segment is a stretch of time during which a node reported the same status.
type segment struct {
	Start, End int64
	Role       string
	Term       string
	Leader     string
	Err        string
	// Flapping is set when several short segments were merged into this one.
	Flapping bool
}

// timeline counts completions by time bucket.
type timeline struct {
	width   int64 // ns per bucket
	buckets []tbucket
}

type tbucket struct {
	ok, fail, info int64
	lat            *logHist
}

func (t *timeline) add(at int64, typ history.Type, latUS float64) {
	if t.width == 0 {
		t.width = minBucketWidth
	}
	if at < 0 {
		at = 0
	}
	i := at / t.width
	for i >= maxBuckets {
		t.grow()
		i = at / t.width
	}
	for int64(len(t.buckets)) <= i {
		t.buckets = append(t.buckets, tbucket{})
	}
	b := &t.buckets[i]
	switch typ {
	case history.OK:
		b.ok++
	case history.Fail:
		b.fail++
	default:
		b.info++
	}
	if latUS >= 0 {
		if b.lat == nil {
			b.lat = newLogHist()
		}
		b.lat.add(latUS)
	}
}

// grow doubles the bucket width, merging pairs of buckets.
func (t *timeline) grow() {
	n := (len(t.buckets) + 1) / 2
	for i := 0; i < n; i++ {
		a := t.buckets[2*i]
		if 2*i+1 < len(t.buckets) {
			b := t.buckets[2*i+1]
			a.ok += b.ok
			a.fail += b.fail
			a.info += b.info
			if a.lat == nil {
				a.lat = b.lat
			} else if b.lat != nil {
				a.lat.merge(b.lat)
			}
		}
		t.buckets[i] = a
	}
	for i := n; i < len(t.buckets); i++ {
		t.buckets[i] = tbucket{}
	}
	t.buckets = t.buckets[:n]
	t.width *= 2
}

// logHist is a small mergeable latency histogram with logarithmic bins
// (about 1% relative error), used per time bucket where an HdrHistogram
// would be too large.
type logHist struct {
	bins  []uint32
	count int64
	max   float64
}

const (
	logHistGamma = 1.02
	logHistBins  = 1170 // covers 1 µs .. ~1e10 µs
)

var logHistLnGamma = math.Log(logHistGamma)

func newLogHist() *logHist { return &logHist{bins: make([]uint32, logHistBins)} }

func (h *logHist) add(us float64) {
	i := 0
	if us >= 1 {
		i = 1 + int(math.Log(us)/logHistLnGamma)
		if i >= logHistBins {
			i = logHistBins - 1
		}
	}
	h.bins[i]++
	h.count++
	if us > h.max {
		h.max = us
	}
}

func (h *logHist) merge(o *logHist) {
	for i, c := range o.bins {
		h.bins[i] += c
	}
	h.count += o.count
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0..1), in µs.
func (h *logHist) quantile(q float64) float64 {
	if h == nil || h.count == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := int64(math.Ceil(q * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.bins {
		seen += int64(c)
		if seen >= rank {
			if i == 0 {
				return math.Min(1, h.max)
			}
			v := math.Pow(logHistGamma, float64(i)-0.5)
			return math.Min(v, h.max)
		}
	}
	return h.max
}

func newScan() *scan {
	return &scan{
		total:    hdrhistogram.New(1, 3_600_000_000, 3),
		ops:      map[string]*OpStats{},
		pending:  map[history.Process]pendingOp{},
		errs:     map[string]*errStat{},
		keys:     map[string]*keyStat{},
		nodes:    map[string]*nodeLane{},
		names:    map[string]string{},
		obsFirst: -1,
	}
}

// scanHistory reads path in one pass. A missing file gives an empty scan
// and an error satisfying errors.Is(err, os.ErrNotExist).
func scanHistory(path string) (*scan, error) {
	s := newScan()
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	lr := newLiteReader(f, path)
	var ev liteEvent
	for {
		err := lr.next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			s.header = lr.header
			s.finish()
			return s, err
		}
		s.add(&ev)
	}
	s.header = lr.header
	s.finish()
	return s, nil
}

func (s *scan) add(ev *liteEvent) {
	s.events++
	if ev.Time > s.last {
		s.last = ev.Time
	}
	switch {
	case ev.Process == history.Nemesis:
		if len(s.nemesis) < 2*maxFaultWindows {
			s.nemesis = append(s.nemesis, history.Event{Type: ev.Type, Process: ev.Process, Time: ev.Time, F: string(ev.F),
				Value: append(json.RawMessage(nil), ev.Value...), Node: string(ev.Node), Error: string(ev.Error), Phase: string(ev.Phase)})
		} else {
			s.nemDrop++
		}
	case ev.Process == history.Observer:
		if string(ev.F) == "status" && len(ev.Node) > 0 {
			s.observe(ev)
		}
	case ev.Process.IsClient():
		s.client(ev)
	}
}

// intern returns b as a string, allocating once per distinct value (f
// names are few).
func (s *scan) intern(b []byte) string {
	if v, ok := s.names[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(s.names) < 1000 {
		s.names[v] = v
	}
	return v
}

func (s *scan) client(ev *liteEvent) {
	if ev.Type == history.Invoke {
		if _, ok := s.pending[ev.Process]; ok {
			// A process invoked twice without completing: count the first
			// as never completed (the checkers judge such histories).
			s.stillPending++
		}
		s.pending[ev.Process] = pendingOp{t: ev.Time, f: s.intern(ev.F)}
		return
	}
	inv, ok := s.pending[ev.Process]
	lat := -1.0
	f := ev.F
	if ok {
		delete(s.pending, ev.Process)
		lat = float64(ev.Time-inv.t) / 1e3
		if lat < 0 {
			lat = 0
		}
		if len(f) == 0 {
			f = []byte(inv.f)
		}
		us := int64(lat)
		if us < 1 {
			us = 1
		}
		if us > s.total.HighestTrackableValue() {
			us = s.total.HighestTrackableValue()
		}
		_ = s.total.RecordValue(us)
	}
	s.tl.add(ev.Time, ev.Type, lat)
	st := s.ops[string(f)]
	if st == nil {
		st = &OpStats{}
		s.ops[s.intern(f)] = st
	}
	st.Ops++
	switch ev.Type {
	case history.OK:
		st.OK++
	case history.Fail:
		st.Fail++
	default:
		st.Info++
	}
	if len(ev.Key) > 0 {
		k := s.keys[string(ev.Key)]
		if k == nil && len(s.keys) < maxDistinctKeys {
			k = &keyStat{Key: truncate(string(ev.Key))}
			s.keys[string(ev.Key)] = k
		}
		if k == nil {
			s.keysOther++
		} else {
			k.Ops++
			switch ev.Type {
			case history.Fail:
				k.Fail++
			case history.Info:
				k.Info++
			}
		}
	}
	if len(ev.Error) > 0 && ev.Type != history.OK {
		e := s.errs[string(ev.Error)]
		if e == nil && len(s.errs) < maxDistinctErrors {
			e = &errStat{Text: truncate(string(ev.Error)), First: ev.Time}
			s.errs[string(ev.Error)] = e
		}
		if e == nil {
			s.errsOther++
			return
		}
		e.Count++
		e.Last = ev.Time
		if ev.Type == history.Fail {
			e.Fail++
		} else {
			e.Info++
		}
	}
}

func (s *scan) observe(ev *liteEvent) {
	if s.obsFirst < 0 {
		s.obsFirst = ev.Time
	}
	if ev.Time > s.obsLast {
		s.obsLast = ev.Time
	}
	n := s.nodes[string(ev.Node)]
	if n == nil {
		if len(s.nodes) >= 200 {
			return // a lane per node; more would not be readable
		}
		n = &nodeLane{id: truncate(string(ev.Node))}
		s.nodes[string(ev.Node)] = n
	}
	n.obs++
	seg := segment{Start: ev.Time, End: ev.Time, Err: truncate(string(ev.Error))}
	var v map[string]json.RawMessage
	if len(ev.Value) > 0 && json.Unmarshal(ev.Value, &v) == nil {
		seg.Role = truncate(jsonText(v["role"]))
		seg.Term = truncate(jsonText(v["term"]))
		if seg.Term == "" {
			seg.Term = truncate(jsonText(v["epoch"]))
		}
		seg.Leader = truncate(jsonText(v["leader"]))
	}
	if seg.Role == "" {
		if seg.Err != "" {
			seg.Role = "unreachable"
		} else {
			seg.Role = "unknown"
		}
	}
	if k := len(n.segs); k > 0 {
		p := &n.segs[k-1]
		p.End = ev.Time
		if p.Role == seg.Role && p.Term == seg.Term && p.Leader == seg.Leader && p.Err == seg.Err {
			return
		}
		if len(n.segs) >= 4*maxSegments {
			n.segs = coalesce(n.segs, maxSegments)
		}
	}
	n.segs = append(n.segs, seg)
}

// finish closes open segments and bounds them.
func (s *scan) finish() {
	s.stillPending += int64(len(s.pending))
	for _, n := range s.nodes {
		if k := len(n.segs); k > 0 && n.segs[k-1].End < s.obsLast {
			n.segs[k-1].End = s.obsLast
		}
		if len(n.segs) > maxSegments {
			n.segs = coalesce(n.segs, maxSegments)
		}
	}
}

// coalesce merges the shortest runs of neighbouring segments until at most
// max remain: a run of short segments becomes one "flapping" segment that
// keeps the status seen last.
func coalesce(segs []segment, max int) []segment {
	if len(segs) <= max {
		return segs
	}
	span := segs[len(segs)-1].End - segs[0].Start
	minDur := span / int64(max)
	for len(segs) > max {
		var out []segment
		for _, g := range segs {
			if k := len(out); k > 0 && (g.End-g.Start < minDur || out[k-1].End-out[k-1].Start < minDur) {
				p := &out[k-1]
				p.End = g.End
				p.Role, p.Term, p.Leader, p.Err = g.Role, g.Term, g.Leader, g.Err
				p.Flapping = true
				continue
			}
			out = append(out, g)
		}
		if len(out) == len(segs) {
			out = out[len(out)-max:]
		}
		segs = out
		minDur *= 2
	}
	return segs
}

// jsonText renders a JSON scalar as text: strings unquoted, numbers as
// written, null/absent as "".
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// truncate bounds a string from the target to maxTextRunes runes and makes
// it valid UTF-8.
func truncate(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) <= maxTextRunes {
		return s
	}
	r := []rune(s)
	return string(r[:maxTextRunes]) + fmt.Sprintf("… (%d more characters)", len(r)-maxTextRunes)
}

// topErrors returns up to n errors, most frequent first.
func (s *scan) topErrors(n int) []errStat {
	out := make([]errStat, 0, len(s.errs))
	for _, e := range s.errs {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Text < out[j].Text
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// topKeys returns up to n keys, busiest first.
func (s *scan) topKeys(n int) []keyStat {
	out := make([]keyStat, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ops != out[j].Ops {
			return out[i].Ops > out[j].Ops
		}
		return out[i].Key < out[j].Key
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// faultWindow is one fault as seen in the history (or, lacking nemesis
// events, in results.json).
type faultWindow struct {
	Name    string
	Value   string // the fault's value, compact JSON, truncated
	Start   int64
	End     int64
	Open    bool // never ended in the history
	Instant bool
	Err     string
	id      string // the value's "id" field, if any, which pairs start and end
}

// faultWindows pairs nemesis start/end events: an end closes the open
// window with the same f and the same value "id" (faultline's nemesis
// numbers its faults), else the same value, else the latest open one with
// the same f. An event without a phase is an instant fault (a kill, say); an end
// without a start becomes an instant too. Windows still open at the end of
// the history last until end.
func faultWindows(evs []history.Event, end int64) []faultWindow {
	var out []faultWindow
	open := map[string][]int{} // f -> indexes into out
	for _, ev := range evs {
		val := compactJSON(ev.Value)
		switch ev.Phase {
		case "start":
			out = append(out, faultWindow{Name: truncate(ev.F), Value: val, Start: ev.Time, End: -1, Err: truncate(ev.Error), id: valueID(ev.Value)})
			open[ev.F] = append(open[ev.F], len(out)-1)
		case "end":
			idx := open[ev.F]
			pick := -1
			id := valueID(ev.Value)
			for j := len(idx) - 1; j >= 0 && id != ""; j-- {
				if out[idx[j]].id == id {
					pick = j
					break
				}
			}
			for j := len(idx) - 1; j >= 0 && pick < 0; j-- {
				if val == "" || out[idx[j]].Value == val {
					pick = j
					break
				}
			}
			if pick < 0 && len(idx) > 0 {
				pick = len(idx) - 1
			}
			if pick < 0 {
				out = append(out, faultWindow{Name: truncate(ev.F), Value: val, Start: ev.Time, End: ev.Time, Instant: true, Err: truncate(firstNonEmpty(ev.Error, "end without a recorded start"))})
				continue
			}
			w := &out[idx[pick]]
			w.End = ev.Time
			if ev.Error != "" && w.Err == "" {
				w.Err = truncate(ev.Error)
			}
			open[ev.F] = append(idx[:pick:pick], idx[pick+1:]...)
		default:
			out = append(out, faultWindow{Name: truncate(ev.F), Value: val, Start: ev.Time, End: ev.Time, Instant: true, Err: truncate(ev.Error)})
		}
	}
	for i := range out {
		if out[i].End < 0 {
			out[i].End = end
			out[i].Open = true
		}
	}
	if len(out) > maxFaultWindows {
		out = out[:maxFaultWindows]
	}
	return out
}

// windowsFromResults turns results.json faults into windows.
func windowsFromResults(fs []Fault, end int64) []faultWindow {
	var out []faultWindow
	for _, f := range fs {
		w := faultWindow{Name: truncate(f.Name), Start: f.Start, End: f.End, Err: truncate(f.Error)}
		var parts []string
		if len(f.Targets) > 0 {
			parts = append(parts, strings.Join(f.Targets, ","))
		}
		if len(f.Params) > 0 {
			parts = append(parts, displayJSON(f.Params, ""))
		}
		w.Value = truncate(strings.Join(parts, " "))
		if w.End == 0 {
			w.End = end
			w.Open = true
		}
		out = append(out, w)
		if len(out) == maxFaultWindows {
			break
		}
	}
	return out
}

// valueID returns the JSON text of the "id" field of an object value, or "".
func valueID(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return string(v.ID)
}

// compactJSON renders a JSON value on one line for people (no \u003c
// escapes: the report escapes where it shows it), truncated.
func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return truncate(string(raw))
	}
	return truncate(displayJSON(v, ""))
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
