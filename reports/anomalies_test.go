package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
)

// lostWrites returns a lost-writes result with n anomalies, each naming
// its history line and the answering node.
func lostWrites(n int) checkers.Result {
	c := checkers.Result{Name: "lost-writes", Verdict: checkers.Invalid, Summary: fmt.Sprintf("%d of 900 acknowledged writes lost", n)}
	for i := 0; i < n; i++ {
		c.Anomalies = append(c.Anomalies, checkers.Anomaly{Kind: "lost-write", Key: fmt.Sprintf("k%d", i%8), Time: int64(i+1) * 1e6,
			Node: "n2", Refs: []string{fmt.Sprintf("history.jsonl:%d", 2*i+3), fmt.Sprintf("history.jsonl:%d", 2*i+2)},
			Message: fmt.Sprintf("lost write %d", i)})
	}
	c.AnomalyCount = n
	return c
}

// Every anomaly is kept: anomalies.jsonl holds all of them, results.json
// a sample with the count and where the rest are, and the terminal, the
// report and junit.xml show the first ones, the count and where the rest
// are, each with its history lines.
func TestSaveKeepsEveryAnomaly(t *testing.T) {
	dir := t.TempDir()
	genRun(t, dir, genOpts{ops: 600, verdict: checkers.Invalid})
	r, err := ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Checkers = append(r.Checkers, lostWrites(364))
	if err := Save(dir, r, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	all, err := ReadAnomalies(dir)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, a := range all {
		if a.Checker == "lost-writes" {
			if a.Kind != "lost-write" || a.Node != "n2" || len(a.Refs) != 2 || a.Refs[0] != fmt.Sprintf("history.jsonl:%d", 2*lost+3) {
				t.Fatalf("anomalies.jsonl line %+v", a)
			}
			lost++
		}
	}
	if lost != 364 || len(all) != 365 {
		t.Fatalf("anomalies.jsonl has %d lost writes of %d lines, want 364 of 365", lost, len(all))
	}
	saved, err := ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	lw := saved.Checkers[len(saved.Checkers)-1]
	if len(lw.Anomalies) != AnomalySample || lw.AnomalyCount != 364 || saved.Anomalies == nil || saved.Anomalies.File != AnomaliesFile || saved.Anomalies.Count != 365 {
		t.Fatalf("results.json: %d anomalies, count %d, log %+v", len(lw.Anomalies), lw.AnomalyCount, saved.Anomalies)
	}
	raw := readFile(t, filepath.Join(dir, "results.json"))
	for _, want := range []string{`"anomaly_count": 364`, `"refs": [`, `"history.jsonl:3"`, `"file": "anomalies.jsonl"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("results.json lacks %s", want)
		}
	}

	var term bytes.Buffer
	Summary(&term, saved)
	out := term.String()
	for _, want := range []string{"node n2 [history.jsonl:3, history.jsonl:2]: lost write 0", "... and 359 more in anomalies.jsonl (364 in all)"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "lost write 5") {
		t.Errorf("terminal summary shows more than %d anomalies:\n%s", summaryAnomalies, out)
	}

	html := readFile(t, filepath.Join(dir, "report.html"))
	for _, want := range []string{`<code class="ref">history.jsonl:3</code>`, `data-refs="history.jsonl:3 history.jsonl:2"`, "<strong>364</strong> anomalies; the first 20 below",
		`… and 344 more in <a href="anomalies.jsonl">anomalies.jsonl</a> (364 in all).`, `href="anomalies.jsonl"`} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	var j junitSuites
	if err := xml.Unmarshal([]byte(readFile(t, filepath.Join(dir, "junit.xml"))), &j); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(t, filepath.Join(dir, "junit.xml")), "... and 344 more in anomalies.jsonl (364 in all)") {
		t.Error("junit.xml does not say where the rest of the anomalies are")
	}

	// Saving again (a re-judgement) replaces the file: no anomaly left,
	// an empty file.
	saved.Checkers = saved.Checkers[:1]
	saved.Checkers[0].Anomalies, saved.Checkers[0].AnomalyCount = nil, 0
	if err := Save(dir, saved, BuildOptions{NoHTML: true, NoJUnit: true}); err != nil {
		t.Fatal(err)
	}
	if all, err := ReadAnomalies(dir); err != nil || len(all) != 0 {
		t.Errorf("after a save without anomalies: %d lines, %v", len(all), err)
	}
}

// A summary of results never saved says where the rest can be had.
func TestSummaryOfUnsavedAnomalies(t *testing.T) {
	r := &Results{Scenario: "x", Verdict: "invalid", ExitCode: 1, Checkers: []checkers.Result{lostWrites(7)}}
	var b bytes.Buffer
	Summary(&b, r)
	if !strings.Contains(b.String(), "... and 2 more (not saved: faultline check --out DIR writes every one to DIR/anomalies.jsonl) (7 in all)") {
		t.Errorf("summary:\n%s", b.String())
	}
}

// Not applicable and figures are neither green nor red: the report
// shows the reason, junit.xml skips them.
func TestNotApplicableShown(t *testing.T) {
	dir := t.TempDir()
	r := &Results{Scenario: "bare", Verdict: "valid", ExitCode: 0, ExitReason: "every checker valid",
		Checkers: []checkers.Result{
			{Name: "linearizability", Verdict: checkers.Valid, Summary: "linearizable"},
			{Name: "lost-writes", Verdict: checkers.NotApplicable, Summary: "written values repeat, so lost writes cannot be told apart"},
			{Name: "stats", Verdict: checkers.NotApplicable, Figures: true, Summary: "12 ops (10 ok)"},
			{Name: "thresholds", Verdict: checkers.NotApplicable, Summary: "no workload figures in a bare history"},
		}}
	if err := Save(dir, r, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	for _, want := range []string{`<span class="badge na">not applicable</span> <h3>lost-writes</h3>`, "written values repeat", `<span class="badge na">figures</span> <h3>stats</h3>`,
		"no workload figures in a bare history"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	var j junitSuites
	if err := xml.Unmarshal([]byte(readFile(t, filepath.Join(dir, "junit.xml"))), &j); err != nil {
		t.Fatal(err)
	}
	if j.Skipped != 3 || j.Failures != 0 || j.Errors != 0 {
		t.Errorf("junit: %d skipped, %d failures, %d errors; want 3 skipped", j.Skipped, j.Failures, j.Errors)
	}
	var b bytes.Buffer
	Summary(&b, r)
	if !regexp.MustCompile(`lost-writes\s+n/a\s+written values repeat`).MatchString(b.String()) || !regexp.MustCompile(`stats\s+figures\s+12 ops`).MatchString(b.String()) {
		t.Errorf("summary:\n%s", b.String())
	}
}

// A cas whose compare failed is a mismatch, counted apart from fail and
// info, and not an error.
func TestMismatchIsNotAnError(t *testing.T) {
	dir := t.TempDir()
	var h bytes.Buffer
	h.WriteString(`{"type":"header","faultline":"test","scenario":"m","seed":1,"start":"2026-01-02T03:04:05Z"}` + "\n")
	emit := func(ev history.Event) {
		b, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(append(b, '\n'))
	}
	for i := 0; i < 30; i++ {
		p, at := history.Process(i%4), int64(i)*10e6
		inv := history.Event{Type: history.Invoke, Process: p, Time: at, F: "cas", Key: "k", Value: json.RawMessage(`{"from":1,"to":2}`)}
		done := inv
		done.Time, done.Node = at+1e6, "n1"
		switch i % 3 {
		case 0:
			done.Type = history.OK
		case 1:
			done.Type, done.Error = history.Fail, "mismatch"
		case 2:
			done.Type, done.Error = history.Fail, "not leader"
		}
		emit(inv)
		emit(done)
	}
	os.WriteFile(filepath.Join(dir, "history.jsonl"), h.Bytes(), 0o644)
	r := &Results{Scenario: "m", Verdict: "valid", Stats: Stats{Ops: 30, OK: 10, Fail: 10, Mismatch: 10}}
	if err := Save(dir, r, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	if strings.Contains(html, "<code>mismatch</code>") {
		t.Error("the errors table lists mismatches as errors")
	}
	if !strings.Contains(html, "<code>not leader</code>") {
		t.Error("the errors table lacks the definite rejections")
	}
	row := regexp.MustCompile(`<tr><th><code>cas</code></th>(.*?)</tr>`).FindStringSubmatch(html)
	if row == nil || row[1] != "<td>30</td><td>10</td><td>10</td><td>10</td><td>0</td><td>33.3%</td>" {
		t.Errorf("cas row (ops, ok, fail, mismatch, info, fail+info) = %v", row)
	}
	if !strings.Contains(chartSVG(t, html, "throughput"), "s-mismatch") {
		t.Error("throughput chart has no mismatch series")
	}
	var b bytes.Buffer
	Summary(&b, r)
	if !strings.Contains(b.String(), "30 ops sent in the main phase (ok 10, fail 10, mismatch 10, info 0)") {
		t.Errorf("summary:\n%s", b.String())
	}
}
