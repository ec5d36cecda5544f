package reports

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The two op counts and the two sets of latencies of a run are labelled
// with what each counts, in report.html and in the terminal summary: the
// load the workload sent in the main phase (results.json's stats) and the
// history's client ops (the load's and the final reads').
func TestFiguresSayWhatTheyCount(t *testing.T) {
	dir := t.TempDir()
	r := genRun(t, dir, genOpts{ops: 500})
	// The history holds 500 client ops; say the workload sent 492 of
	// them in the main phase (the other 8 as a run's final reads).
	r.Stats.Ops, r.Stats.OK = 492, 442
	r.Stats.Latency.Count = 492
	if err := Save(dir, r, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	html := readFile(t, filepath.Join(dir, "report.html"))
	note := regexp.MustCompile(`<p class="muted" id="figures-note">([^<]*)</p>`).FindStringSubmatch(html)
	if note == nil || !strings.Contains(note[1], "the 492 ops the workload sent in the main phase") ||
		!strings.Contains(note[1], "its 500 client ops") || !strings.Contains(note[1], "8 more than the load") {
		t.Errorf("report.html's note on the figures: %q", note)
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile(`<tr><th>([^<]*)</th><td>([^<]*)</td>`).FindAllStringSubmatch(html[strings.Index(html, `id="latency-table"`):], -1) {
		rows[m[1]] = m[2]
	}
	if rows["the load: from the intended start"] != "492" || rows["history: invoke to completion, every client op"] != "500" {
		t.Errorf("latency table rows (name: ops) %v: want the load's 492 and the history's 500 ops", rows)
	}
	if !strings.Contains(html, "<th>all: the load sent in the main phase</th><td>492</td>") {
		t.Error("the operations table's total row does not say it is the load of the main phase")
	}
	var b bytes.Buffer
	Summary(&b, r)
	for _, want := range []string{
		"  load: 492 ops sent in the main phase (ok 442, ",
		"  latency of the load, from the intended start: p50 1.50ms  p99 200.00ms",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	// Closed loop: the load's latency is from the send.
	r.Stats.TargetRate = 0
	b.Reset()
	Summary(&b, r)
	if !strings.Contains(b.String(), "  latency of the load, from the send (closed loop): p50 ") {
		t.Errorf("closed-loop summary:\n%s", b.String())
	}
}
