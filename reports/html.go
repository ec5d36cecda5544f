package reports

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
)

//go:embed report.html.tmpl
var reportTemplate string

//go:embed report.js
var reportScript string

//go:embed report.css
var reportStyle string

// The page's Content-Security-Policy allows no network at all and only the
// one script the report ships (by hash), so even a string that escaped
// escaping could neither run nor phone home.
var scriptCSP = "sha256-" + func() string {
	h := sha256.Sum256([]byte(reportScript))
	return base64.StdEncoding.EncodeToString(h[:])
}()

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"f1":   f1,
	"us":   us,
	"sec":  func(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) },
	"add":  func(a, b float64) float64 { return a + b },
	"add2": func(a, b int64) int64 { return a + b },
	"num":  func(v int64) string { return groupDigits(v) },
	"pct": func(a, b int64) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
	},
}).Parse(reportTemplate))

// rungView is one row of the consistency ladder table.
type rungView struct {
	Model, Verdict, Class, Checker, Note, Doc string
	Linked, Implied, ReportedOnly             bool
	Anomalies                                 int
}

type reportView struct {
	R            *Results
	Verdict      string
	VerdictClass string
	Meta         []kv
	Checkers     []checkerView
	Ladder       []rungView
	Charts       []*chart
	Spectrum     *chart
	Latencies    []latencyRow
	FiguresNote  string // where the two op counts come from
	ByF          []opRow
	Faults       []faultRow
	Planned      []faultRow
	Windows      int
	Errors       []errStat
	ErrorsOther  int64
	Keys         []keyStat
	KeysOther    int64
	KeysTotal    int
	Links        []link
	NodeLogs     []nodeLog
	Warnings     []string
	Data         jsData
	Script       template.JS
	Style        template.CSS
	CSP          string
	Pending      int64
}

type kv struct{ K, V string }

type checkerView struct {
	Name, Verdict, Class, Summary, Explanation string
	Threshold, Advisory                        bool
	Elapsed                                    string
	Anomalies                                  []anomalyView
	// AnomalyCount is every anomaly the checker found; More of them are
	// not shown, and are in RestFile (a link) or, if that is "", where
	// RestText says.
	AnomalyCount       int
	More               int
	RestFile, RestText string
	Details            string
}

type anomalyView struct {
	Kind, Key, Time, Node, Message, Data string
	Refs                                 []string // FILE:LINE, the operation in question first
}

type latencyRow struct {
	Name                           string
	Ops                            string // how many ops the figures are over ("" if unknown)
	P50, P90, P99, P999, Max, Mean string
}

type opRow struct {
	F                             string
	Ops, OK, Fail, Mismatch, Info int64
}

type faultRow struct {
	Name, Targets, Params, Start, End, Duration, Error string
}

type link struct{ Href, Label, Note string }

type nodeLog struct {
	ID, Href  string
	Tail      []string
	Truncated bool
	Size      string
}

// jsData is embedded as JSON for the cursor read-out script.
type jsData struct {
	T1     float64   `json:"t1"`
	W      float64   `json:"w"`
	OK     []float64 `json:"ok"`
	Fail   []float64 `json:"fail"`
	Info   []float64 `json:"info"`
	Mism   []float64 `json:"mismatch"`
	P50    []float64 `json:"p50"`
	P99    []float64 `json:"p99"`
	Max    []float64 `json:"max"`
	Faults []jsSpan  `json:"faults"`
	Phases []jsSpan  `json:"phases"`
}

type jsSpan struct {
	S float64 `json:"s"`
	E float64 `json:"e"`
	N string  `json:"n"`
}

func verdictClass(v string) string {
	switch v {
	case "valid":
		return "valid"
	case "invalid":
		return "invalid"
	}
	return "unknown"
}

func renderHTML(dir string, r *Results) ([]byte, error) {
	v := &reportView{R: r, Script: template.JS(reportScript), Style: template.CSS(reportStyle), CSP: scriptCSP}
	v.Verdict = strings.ToUpper(firstNonEmpty(r.Verdict, "unknown"))
	v.VerdictClass = verdictClass(r.Verdict)

	v.Warnings = append(v.Warnings, r.Warnings...)
	histPath := filepath.Join(dir, "history.jsonl")
	if r.History != "" && !fileExists(histPath) {
		histPath = r.History // faultline check --out of a history elsewhere
		if !filepath.IsAbs(histPath) {
			histPath = filepath.Join(dir, histPath) // a merged run's, beside its results
		}
	}
	sc, herr := scanHistory(histPath)
	switch {
	case errors.Is(herr, os.ErrNotExist):
		v.Warnings = append(v.Warnings, "history.jsonl is missing: the charts that come from the history are empty.")
	case herr != nil:
		v.Warnings = append(v.Warnings, fmt.Sprintf("history.jsonl could not be read to the end (%v): the charts show the events before that point.", truncate(herr.Error())))
	}
	hl, lerr := readHlog(filepath.Join(dir, "latency.hlog"))
	if lerr != nil && !errors.Is(lerr, os.ErrNotExist) {
		v.Warnings = append(v.Warnings, fmt.Sprintf("latency.hlog could not be read (%v): the spectrum uses the history's latencies.", truncate(lerr.Error())))
	}

	v.Meta = metaRows(r, sc)
	for _, c := range r.Checkers {
		v.Checkers = append(v.Checkers, checkerRow(r, c))
	}
	if l := r.Consistency; l != nil {
		ran := map[string]bool{}
		for _, c := range r.Checkers {
			ran[c.Name] = true
		}
		for _, rg := range l.Rungs {
			rv := rungView{Model: rg.Model, Verdict: string(rg.Verdict), Class: "unknown", Checker: rg.Checker, Linked: ran[rg.Checker], Implied: rg.Implied, Note: rg.Note,
				ReportedOnly: l.Expect != "" && !rg.Gating, Anomalies: rg.Anomalies}
			if m, ok := checkers.LookupModel(rg.Model); ok {
				rv.Doc = m.Doc
			}
			switch rg.Verdict {
			case checkers.Valid:
				rv.Class = "valid"
			case checkers.Invalid:
				rv.Class = "invalid"
			case checkers.NotApplicable:
				rv.Class, rv.Verdict = "na", "not applicable"
			}
			v.Ladder = append(v.Ladder, rv)
		}
	}

	// The time axis ends with the last thing that happened.
	end := sc.last
	for _, p := range r.Phases {
		end = max(end, p.End)
	}
	for _, f := range r.Faults {
		end = max(end, f.Start, f.End)
	}
	// Phases and faults as the history records them (what
	// linearizability.html shows too), else as results.json lists them.
	phases := sc.phases(end)
	if len(phases) == 0 {
		phases = r.Phases
	}
	windows := faultWindows(sc.nemesis, end)
	if len(windows) == 0 && len(r.Faults) > 0 {
		windows = windowsFromResults(r.Faults, end)
	}
	v.Windows = len(windows)
	if sc.nemDrop > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d further nemesis events are not drawn (the report draws at most %d fault windows).", sc.nemDrop, maxFaultWindows))
	}
	in := &chartInput{t1: math.Max(float64(end)/1e9, 0.001), tl: &sc.tl, windows: windows, phases: phases, nodes: nodeLanes(&sc.roles, r.Nodes), hlog: hl, scan: sc}
	in.anoms = anomalyMarks(r.Checkers)
	in.splits = splitWindows(r.Checkers)
	v.Charts = []*chart{in.timelineChart(), in.throughputChart(), in.latencyChart(), in.nodesChart()}
	v.Charts = append(v.Charts, in.retryStormCharts(r.Checkers)...)
	v.Spectrum = in.spectrumChart()
	v.Data = jsDataOf(in)

	v.Latencies = latencyRows(r, hl, sc)
	v.FiguresNote = figuresNote(r, sc)
	v.ByF = opRows(r, sc)
	v.Faults = faultRows(r.Faults)
	v.Planned = faultRows(r.Schedule)
	v.Errors = sc.topErrors(20)
	v.ErrorsOther = sc.errsOther + int64(max(0, len(sc.errs)-20))
	v.Keys = sc.topKeys(15)
	v.KeysTotal = sc.keyCount()
	v.KeysOther = sc.keysOther
	v.Pending = sc.stillPending
	v.Links, v.NodeLogs = artifactLinks(dir)

	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func metaRows(r *Results, sc *scan) []kv {
	var m []kv
	add := func(k, v string) {
		if v != "" {
			m = append(m, kv{k, v})
		}
	}
	add("scenario", r.Scenario)
	add("seed", fmt.Sprint(r.Seed))
	add("system", r.System)
	if len(r.Nodes) > 0 {
		add("nodes", fmt.Sprintf("%d (%s)", len(r.Nodes), strings.Join(r.Nodes, ", ")))
	}
	add("runtime", r.Runtime)
	add("sharded run", ShardLine(r))
	add("bugs switched on", strings.Join(r.Bugs, ", "))
	add("started", r.Start)
	if s, e, ok := parseSpan(r.Start, r.End); ok {
		add("wall time", e.Sub(s).Round(time.Millisecond).String())
	}
	if r.Stats.Duration > 0 {
		add("main phase", fmt.Sprintf("%.1fs", r.Stats.Duration))
	}
	if r.Stats.TargetRate > 0 {
		add("load", fmt.Sprintf("open loop at %s ops/s (achieved %.1f)", compactNumber(r.Stats.TargetRate), r.Stats.AchievedRate))
	} else if r.Stats.Ops > 0 {
		add("load", fmt.Sprintf("closed loop (achieved %.1f ops/s)", r.Stats.AchievedRate))
	}
	add("history events", groupDigits(sc.events))
	add("faultline", r.Faultline)
	return m
}

func parseSpan(a, b string) (time.Time, time.Time, bool) {
	s, err1 := time.Parse(time.RFC3339Nano, a)
	e, err2 := time.Parse(time.RFC3339Nano, b)
	return s, e, err1 == nil && err2 == nil && !e.Before(s)
}

func checkerRow(r *Results, c checkers.Result) checkerView {
	cv := checkerView{Name: c.Name, Verdict: verdictLabel(c), Class: checkerClass(c),
		Summary: summaryText(c), Explanation: c.Explanation, Threshold: c.Threshold, Advisory: c.Advisory && c.Gates == "", AnomalyCount: anomalyCount(c)}
	if c.Elapsed > 0 {
		cv.Elapsed = c.Elapsed.Round(time.Microsecond).String()
	}
	shown := min(len(c.Anomalies), AnomalySample)
	if cv.More = cv.AnomalyCount - shown; cv.More > 0 {
		if r.Anomalies != nil && r.Anomalies.File != "" {
			cv.RestFile = r.Anomalies.File
		} else {
			cv.RestText = restOfAnomalies(r, c, shown)
		}
	}
	for _, a := range c.Anomalies[:shown] {
		av := anomalyView{Kind: a.Kind, Key: truncate(a.Key), Node: truncate(a.Node), Message: a.Message}
		for _, ref := range a.Refs {
			av.Refs = append(av.Refs, truncate(ref))
		}
		if a.Time > 0 {
			av.Time = fmt.Sprintf("%.3fs", float64(a.Time)/1e9)
		}
		if len(a.Data) > 0 {
			av.Data = truncate(displayJSON(a.Data, ""))
		}
		cv.Anomalies = append(cv.Anomalies, av)
	}
	if len(c.Details) > 0 {
		if s := displayJSON(c.Details, "  "); s != "" {
			if len(s) > 6000 {
				s = s[:6000] + "\n… (truncated; the full details are in results.json)"
			}
			cv.Details = strings.ToValidUTF8(s, "\uFFFD")
		}
	}
	return cv
}

func anomalyMarks(rs []checkers.Result) []anomalyMark {
	var out []anomalyMark
	for _, c := range rs {
		for _, a := range c.Anomalies {
			if a.Time <= 0 {
				continue
			}
			t := c.Name + ": " + anomalyText(a)
			out = append(out, anomalyMark{T: a.Time, Title: truncate(t)})
			if len(out) == 200 {
				return out
			}
		}
	}
	return out
}

// splitWindows returns the windows the split-brain checker's anomalies
// (in results.json) give in Data: "nodes" (the two sides), "from" and
// "to" (ns since the run's start). The report draws them, it does not
// judge them.
func splitWindows(rs []checkers.Result) []splitWindow {
	var out []splitWindow
	for _, c := range rs {
		if c.Name != "split-brain" {
			continue
		}
		for _, a := range c.Anomalies {
			from, ok1 := checkers.DataInt(a.Data["from"])
			to, ok2 := checkers.DataInt(a.Data["to"])
			nodes := checkers.DataStrings(a.Data["nodes"])
			if !ok1 || !ok2 || len(nodes) == 0 {
				continue
			}
			out = append(out, splitWindow{Nodes: nodes, From: from, To: max(from, to), Title: truncate("split brain (" + a.Kind + "): " + anomalyText(a))})
		}
	}
	return out
}

func jsDataOf(in *chartInput) jsData {
	d := jsData{T1: in.t1, W: float64(in.tl.width) / 1e9, Faults: []jsSpan{}, Phases: []jsSpan{}}
	w := d.W
	for _, b := range in.tl.buckets {
		d.OK = append(d.OK, round3(float64(b.ok)/w))
		d.Fail = append(d.Fail, round3(float64(b.fail)/w))
		d.Info = append(d.Info, round3(float64(b.info)/w))
		d.Mism = append(d.Mism, round3(float64(b.mismatch)/w))
		d.P50 = append(d.P50, round3(b.lat.quantile(0.5)))
		d.P99 = append(d.P99, round3(b.lat.quantile(0.99)))
		var m float64
		if b.lat != nil {
			m = b.lat.max
		}
		d.Max = append(d.Max, round3(m))
	}
	for _, f := range in.windows {
		n := f.Name
		if f.Value != "" {
			n += " " + shorten(f.Value, 60)
		}
		d.Faults = append(d.Faults, jsSpan{S: float64(f.Start) / 1e9, E: float64(f.End) / 1e9, N: n})
	}
	for _, p := range in.phases {
		d.Phases = append(d.Phases, jsSpan{S: float64(p.Start) / 1e9, E: float64(p.End) / 1e9, N: p.Name})
	}
	return d
}

// displayJSON encodes v for people: without encoding/json's \u003c
// escapes (html/template escapes the text where it is shown), indented
// when indent is not empty; "" if v cannot be encoded.
func displayJSON(v any, indent string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimRight(b.String(), "\n")
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func pctRow(name string, p Percentiles) latencyRow {
	row := latencyRow{Name: name, P50: us(p.P50), P90: us(p.P90), P99: us(p.P99), P999: us(p.P999), Max: us(p.Max), Mean: us(p.Mean)}
	if p.Count > 0 {
		row.Ops = groupDigits(p.Count)
	}
	return row
}

// latencyRows are the latency table's rows, each saying what it measures
// and over which ops: the load (the ops the workload sent in the main
// phase, results.json's stats) and the history (every client op, the
// final reads included).
func latencyRows(r *Results, hl *hlogData, sc *scan) []latencyRow {
	var rows []latencyRow
	s := r.Stats
	if s.Ops > 0 {
		name := "the load: from the intended start"
		if s.TargetRate == 0 {
			name = "the load: from the send (closed loop)"
		}
		rows = append(rows, pctRow(name, s.Latency))
		if s.Service != nil {
			rows = append(rows, pctRow("the load: service time (send to completion)", *s.Service))
		}
		if s.DispatchLag != nil {
			rows = append(rows, pctRow("the load: dispatch lag (intended start to send)", *s.DispatchLag))
		}
	}
	if t := sc.total; t != nil && t.TotalCount() > 0 {
		rows = append(rows, pctRow("history: invoke to completion, every client op", history.PercentilesOf(t)))
	}
	for _, name := range slices.Sorted(maps.Keys(s.ByEndpoint)) {
		e := s.ByEndpoint[name]
		rows = append(rows, pctRow("endpoint "+name+": from the intended start", e.Latency), pctRow("endpoint "+name+": service time", e.Service))
	}
	return rows
}

// figuresNote says where the report's two op counts come from, with the
// figures of this run: the load the workload sent in the main phase, and
// the client ops of the history (the load and the final reads); "" when
// the run has only one of them.
func figuresNote(r *Results, sc *scan) string {
	var hist int64
	for _, st := range sc.ops {
		hist += st.Ops
	}
	if r.Stats.Ops == 0 || hist == 0 {
		return ""
	}
	lat := "from each op's intended start, its wait for a worker counted"
	if r.Stats.TargetRate == 0 {
		lat = "from each op's send (closed loop)"
	}
	note := fmt.Sprintf("Two sources of figures. The load: the %s ops the workload sent in the main phase (results.json's stats; the operations table), their latency %s. The history: its %s client ops, the load's and the final reads' (the stats checker's figures), timed from invoke to completion as recorded.",
		groupDigits(r.Stats.Ops), lat, groupDigits(hist))
	if d := hist - r.Stats.Ops; d > 0 {
		note += fmt.Sprintf(" The history has %s more than the load.", groupDigits(d))
	}
	return note
}

func opRows(r *Results, sc *scan) []opRow {
	src := r.Stats.ByF
	if len(src) == 0 {
		src = map[string]OpStats{}
		for f, st := range sc.ops {
			src[f] = *st
		}
	}
	var rows []opRow
	for f, st := range src {
		rows = append(rows, opRow{F: f, Ops: st.Ops, OK: st.OK, Fail: st.Fail, Mismatch: st.Mismatch, Info: st.Info})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].F < rows[j].F })
	for _, name := range slices.Sorted(maps.Keys(r.Stats.ByEndpoint)) {
		st := r.Stats.ByEndpoint[name]
		rows = append(rows, opRow{F: "endpoint " + name, Ops: st.Ops, OK: st.OK, Fail: st.Fail, Mismatch: st.Mismatch, Info: st.Info})
	}
	return rows
}

func faultRows(fs []Fault) []faultRow {
	var rows []faultRow
	for _, f := range fs {
		row := faultRow{Name: f.Name, Targets: strings.Join(f.Targets, ", "), Start: fmt.Sprintf("%.3fs", float64(f.Start)/1e9), Error: f.Error}
		if len(f.Params) > 0 {
			row.Params = truncate(displayJSON(f.Params, ""))
		}
		if f.End > 0 {
			row.End = fmt.Sprintf("%.3fs", float64(f.End)/1e9)
			row.Duration = time.Duration(f.End - f.Start).Round(time.Millisecond).String()
		} else {
			row.End = "—"
		}
		rows = append(rows, row)
	}
	return rows
}

// artifactLinks lists the run directory's other files, with relative links.
func artifactLinks(dir string) ([]link, []nodeLog) {
	var links []link
	for _, a := range []struct{ name, note string }{
		{"linearizability.html", "Porcupine's visualization of the history, per key, with the faults annotated"},
		{AnomaliesFile, "every anomaly of every checker, one JSON object per line, with its history lines (FILE:LINE)"},
		{"history.jsonl", "every operation and event, JSON Lines"},
		{"results.json", "verdicts and figures, for scripts"},
		{"junit.xml", "one test case per checker"},
		{"latency.hlog", "HdrHistogram interval log, µs"},
		{"scenario.yaml", "the scenario as run: faultline run it to replay the same seed"},
	} {
		if fi, err := os.Stat(filepath.Join(dir, a.name)); err == nil && !fi.IsDir() {
			links = append(links, link{Href: a.name, Label: a.name, Note: a.note + " (" + byteSize(fi.Size()) + ")"})
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "nodes"))
	var logs []nodeLog
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		p := filepath.Join(dir, "nodes", e.Name())
		nl := nodeLog{ID: strings.TrimSuffix(e.Name(), ".log"), Href: "nodes/" + e.Name()}
		if fi, err := e.Info(); err == nil {
			nl.Size = byteSize(fi.Size())
		}
		nl.Tail, nl.Truncated = tailLines(p, 40)
		logs = append(logs, nl)
	}
	sort.Slice(logs, func(i, j int) bool { return naturalLess(logs[i].ID, logs[j].ID) })
	return links, logs
}

// tailLines returns the last n lines of the file (read from its last 64 KiB).
func tailLines(path string, n int) ([]string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	const window = 64 << 10
	fi, err := f.Stat()
	if err != nil {
		return nil, false
	}
	off := max(fi.Size()-window, 0)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, false
	}
	b, _ := io.ReadAll(io.LimitReader(f, window))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if off > 0 && len(lines) > 0 {
		lines = lines[1:] // partial first line
	}
	truncated := off > 0
	if len(lines) > n {
		lines = lines[len(lines)-n:]
		truncated = true
	}
	for i := range lines {
		lines[i] = truncate(lines[i])
	}
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	return lines, truncated
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func groupDigits(v int64) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
