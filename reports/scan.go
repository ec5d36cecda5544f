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
	"time"
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
	// maxSegments is the most status segments drawn per node, and
	// maxNodes the most node lanes.
	maxSegments = 1500
	maxNodes    = 200
	// maxDistinctErrors and maxDistinctKeys bound the error and key tables.
	maxDistinctErrors = 500
	maxDistinctKeys   = 10000
	// maxTextRunes truncates any one string from the target shown in the report.
	maxTextRunes = 300
	// maxFaultWindows bounds the fault windows drawn, and maxPhaseMarkers
	// the phase markers read.
	maxFaultWindows = 2000
	maxPhaseMarkers = 1000
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
	// keys and numKeys count operations by key identity (history.Key, as
	// history.Event.KeyID has it): string keys and number keys by their
	// text, apart, so that 1 and "1" are two keys.
	keys, numKeys map[string]*keyStat
	keysOther     int64

	nemesis []history.Event // kept whole: few, and shown in full
	nemDrop int64
	markers []history.Event // phase markers
	roles   history.Roles   // node role lanes, bounded by maxSegments and maxNodes
	names   map[string]string
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
	Key string // the key's text (history.Key.Text), truncated
	// Number is true for a key that was a JSON number: 1 and "1" are
	// different keys (history.Key), shown on rows of their own.
	Number                    bool
	Ops, Fail, Mismatch, Info int64
}

// timeline counts completions by time bucket.
type timeline struct {
	width   int64 // ns per bucket
	buckets []tbucket
}

type tbucket struct {
	ok, fail, info int64
	mismatch       int64 // fail with error "mismatch": a normal answer, kept apart from fail
	lat            *logHist
}

// add counts a completion of type typ at `at`; mismatch says it is a
// failed comparison (counted apart from fail).
func (t *timeline) add(at int64, typ history.Type, mismatch bool, latUS float64) {
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
	switch {
	case typ == history.OK:
		b.ok++
	case typ == history.Fail && mismatch:
		b.mismatch++
	case typ == history.Fail:
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
			a.mismatch += b.mismatch
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
		total:   history.NewLatencyHistogram(),
		ops:     map[string]*OpStats{},
		pending: map[history.Process]pendingOp{},
		errs:    map[string]*errStat{},
		keys:    map[string]*keyStat{},
		numKeys: map[string]*keyStat{},
		roles:   history.Roles{Limit: maxSegments, MaxNodes: maxNodes},
		names:   map[string]string{},
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
			s.header = lr.header()
			s.finish()
			return s, err
		}
		s.add(&ev)
	}
	s.header = lr.header()
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
			s.nemesis = append(s.nemesis, s.event(ev))
		} else {
			s.nemDrop++
		}
	case ev.Process == history.Observer:
		switch string(ev.F) {
		case "status":
			if len(ev.Node) > 0 {
				s.observe(ev)
			}
		case "phase":
			if len(s.markers) < maxPhaseMarkers {
				s.markers = append(s.markers, s.event(ev))
			}
		}
	case ev.Process.IsClient():
		s.client(ev)
	}
}

// event copies ev out of the line it aliases.
func (s *scan) event(ev *liteEvent) history.Event {
	return history.Event{Type: ev.Type, Process: ev.Process, Time: ev.Time, F: s.intern(ev.F),
		Value: append(json.RawMessage(nil), ev.Value...), Node: string(ev.Node), Error: string(ev.Error), Phase: s.intern(ev.Phase)}
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
		history.RecordLatency(s.total, time.Duration(ev.Time-inv.t))
	}
	// A cas whose comparison failed is a normal answer
	// (history.IsMismatch): counted apart from fail, and not an error.
	mismatch := history.IsMismatch(ev.Type, string(ev.Error))
	s.tl.add(ev.Time, ev.Type, mismatch, lat)
	st := s.ops[string(f)]
	if st == nil {
		st = &OpStats{}
		s.ops[s.intern(f)] = st
	}
	st.Ops++
	switch {
	case ev.Type == history.OK:
		st.OK++
	case mismatch:
		st.Mismatch++
	case ev.Type == history.Fail:
		st.Fail++
	default:
		st.Info++
	}
	if len(ev.Key) > 0 {
		keys := s.keys
		if ev.KeyIsNumber {
			keys = s.numKeys
		}
		k := keys[string(ev.Key)]
		if k == nil && s.keyCount() < maxDistinctKeys {
			k = &keyStat{Key: truncate(string(ev.Key)), Number: ev.KeyIsNumber}
			keys[string(ev.Key)] = k
		}
		if k == nil {
			s.keysOther++
		} else {
			k.Ops++
			switch {
			case mismatch:
				k.Mismatch++
			case ev.Type == history.Fail:
				k.Fail++
			case ev.Type == history.Info:
				k.Info++
			}
		}
	}
	if len(ev.Error) > 0 && ev.Type != history.OK && !mismatch {
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

// observe follows node roles (history.Roles), with the target's strings
// truncated so that memory stays bounded.
func (s *scan) observe(ev *liteEvent) {
	st := history.ParseStatus(ev.Value, string(ev.Error))
	st.Role, st.Term, st.Leader, st.Err = truncate(st.Role), truncate(st.Term), truncate(st.Leader), truncate(st.Err)
	s.roles.Observe(int(s.events-1), ev.Time, truncate(s.intern(ev.Node)), st)
}

// phases returns the phases of the history's phase markers
// (history.Phases), those never ended lasting until end.
func (s *scan) phases(end int64) []Phase {
	ps := history.Phases(s.markers)
	for i := range ps {
		if ps[i].Open() {
			ps[i].End = max(end, ps[i].Start)
		}
	}
	return ps
}

// finish counts the operations never completed.
func (s *scan) finish() {
	s.stillPending += int64(len(s.pending))
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
	return top(s.errs, n, func(a, b *errStat) bool {
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Text < b.Text
	})
}

// keyCount is the number of distinct keys counted.
func (s *scan) keyCount() int { return len(s.keys) + len(s.numKeys) }

// topKeys returns up to n keys, busiest first.
func (s *scan) topKeys(n int) []keyStat {
	out := make([]keyStat, 0, s.keyCount())
	for _, m := range []map[string]*keyStat{s.keys, s.numKeys} {
		for _, k := range m {
			out = append(out, *k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Ops != b.Ops {
			return a.Ops > b.Ops
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return !a.Number && b.Number
	})
	return out[:min(n, len(out))]
}

// top returns up to n of m's values, first by less.
func top[T any](m map[string]*T, n int, less func(a, b *T) bool) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return less(&out[i], &out[j]) })
	return out[:min(n, len(out))]
}

// faultWindow is one fault as the report draws it: a history.FaultWindow
// (or, lacking nemesis events, a fault of results.json) with the target's
// strings truncated.
type faultWindow struct {
	Name    string
	Value   string // the fault's value, compact JSON, truncated
	Start   int64
	End     int64
	Open    bool // never ended in the history
	Instant bool
	Err     string
}

// faultWindows draws the fault windows of the nemesis events evs
// (history.FaultWindows: the pairing linearizability.html draws too).
// Windows still open at the end of the history last until end.
func faultWindows(evs []history.Event, end int64) []faultWindow {
	var out []faultWindow
	for _, w := range history.FaultWindows(evs) {
		fw := faultWindow{Name: truncate(w.F), Value: compactJSON(w.Value), Start: w.Start, End: w.EndOr(end), Open: w.Open(), Instant: w.Instant, Err: truncate(w.Error)}
		if w.Unstarted {
			fw.Err = truncate(firstNonEmpty(w.Error, "end without a recorded start"))
		}
		out = append(out, fw)
		if len(out) == maxFaultWindows {
			break
		}
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
