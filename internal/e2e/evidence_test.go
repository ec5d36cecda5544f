package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/scenario"

	// The runtime, the system and the client adapter the infrastructure
	// test uses.
	_ "github.com/faultline/faultline/targets/httpkv"
	_ "github.com/faultline/faultline/targets/local"
	_ "github.com/faultline/faultline/targets/raftkv"
)

// historyLine returns line n (1-based, the header counted) of dir's history
// file named by ref ("history.jsonl:229"), as `sed -n 229p` prints it.
func historyLine(t *testing.T, dir, ref string) map[string]any {
	t.Helper()
	i := strings.LastIndexByte(ref, ':')
	if i < 0 {
		t.Fatalf("reference %q is not FILE:LINE", ref)
	}
	n, err := strconv.Atoi(ref[i+1:])
	if err != nil || n < 1 {
		t.Fatalf("reference %q is not FILE:LINE", ref)
	}
	f, err := os.Open(filepath.Join(dir, ref[:i]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for l := 1; sc.Scan(); l++ {
		if l == n {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			return m
		}
	}
	t.Fatalf("%s: the history has no line %d", ref, n)
	return nil
}

func readAnomalies(t *testing.T, dir string) []reports.AnomalyLine {
	t.Helper()
	all, err := reports.ReadAnomalies(dir)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func checkerResult(t *testing.T, r *reports.Results, name string) checkers.Result {
	t.Helper()
	for _, c := range r.Checkers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("results.json has no checker %s", name)
	return checkers.Result{}
}

// sameRefEverywhere takes the first anomaly of checker from results.json
// and checks that anomalies.jsonl, report.html and (for linearizability)
// linearizability.html show the same history line, and that the line is
// the operation in question (a client operation on the anomaly's key,
// answered by the node the anomaly names). It returns the anomaly.
func sameRefEverywhere(t *testing.T, dir, checker string) checkers.Anomaly {
	t.Helper()
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := checkerResult(t, res, checker)
	if len(c.Anomalies) == 0 || len(c.Anomalies[0].Refs) == 0 {
		t.Fatalf("%s: no anomaly with a reference in results.json (%s)", checker, c.Summary)
	}
	a := c.Anomalies[0]
	ref := a.Refs[0]
	if !regexp.MustCompile(`^[^:]+\.jsonl:\d+$`).MatchString(ref) {
		t.Fatalf("reference %q is not FILE:LINE", ref)
	}
	// anomalies.jsonl: the same anomaly with the same reference.
	found := false
	for _, l := range readAnomalies(t, dir) {
		if l.Checker == checker && len(l.Refs) > 0 && l.Refs[0] == ref && l.Kind == a.Kind {
			found = true
			break
		}
	}
	if !found {
		t.Errorf("anomalies.jsonl has no %s anomaly at %s", checker, ref)
	}
	// report.html: in the checker's card, in its table of anomalies.
	page := readText(t, filepath.Join(dir, "report.html"))
	card := page[strings.Index(page, `data-checker="`+checker+`"`):]
	card = card[:strings.Index(card, "</article>")]
	if !strings.Contains(card, `<code class="ref">`+html.EscapeString(ref)+`</code>`) {
		t.Errorf("report.html's %s card does not show %s", checker, ref)
	}
	if checker == "linearizability" {
		if lin := readText(t, filepath.Join(dir, "linearizability.html")); !strings.Contains(lin, ref) {
			t.Errorf("linearizability.html does not show %s", ref)
		}
	}
	// The line is the operation in question.
	line := historyLine(t, dir, ref)
	if _, client := line["process"].(float64); !client || line["key"] == nil || fmt.Sprint(line["key"]) != a.Key {
		t.Errorf("%s is %v: not a client operation on key %s", ref, line, a.Key)
	}
	if a.Node != "" && line["type"] != "invoke" && line["node"] != a.Node {
		t.Errorf("%s was answered by %v, but the anomaly names %s", ref, line["node"], a.Node)
	}
	return a
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// One reference to a history line everywhere: a stale read of a fixture,
// judged by `faultline check --out`, is the same FILE:LINE in
// results.json, anomalies.jsonl, report.html and linearizability.html,
// and that line is the stale read.
func TestEvidenceRefsAgree(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(moduleRoot(t), "checkers", "testdata", "stale-read.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "history.jsonl"), src, 0o644)
	code, out := faultline(t, time.Minute, "check", filepath.Join(dir, "history.jsonl"), "--out", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, f := range []string{"results.json", "anomalies.jsonl", "report.html", "junit.xml", "linearizability.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("check --out wrote no %s", f)
		}
	}
	a := sameRefEverywhere(t, dir, "linearizability")
	if line := historyLine(t, dir, a.Refs[0]); line["f"] != "get" {
		t.Errorf("the stale read's reference %s is %v, not the read", a.Refs[0], line)
	}
	if !strings.Contains(out, a.Refs[0]) {
		t.Errorf("the terminal summary does not show %s:\n%s", a.Refs[0], out)
	}
}

// A linearizable history from another tool (no header, read/write,
// integer keys) whose writes repeat values: linearizability alone, and the
// default checkers (lost-writes not applicable), both exit 0.
func TestForeignRepeatedValues(t *testing.T) {
	file := filepath.Join(moduleRoot(t), "internal", "e2e", "testdata", "foreign-repeated-values.jsonl")
	code, out := faultline(t, time.Minute, "check", file, "--checkers", "linearizability", "--no-artifacts")
	if code != 0 || !strings.Contains(out, "VALID") || strings.Contains(out, "lost-writes") {
		t.Errorf("--checkers linearizability: exit %d, want 0 with linearizability alone\n%s", code, out)
	}
	code, out = faultline(t, time.Minute, "check", file, "--no-artifacts")
	if code != 0 || !regexp.MustCompile(`lost-writes\s+n/a`).MatchString(out) || !regexp.MustCompile(`thresholds\s+n/a\s+not applicable \(no workload figures in a bare history\)`).MatchString(out) {
		t.Errorf("default checkers: exit %d, want 0 with lost-writes and thresholds not applicable\n%s", code, out)
	}
	code, out = faultline(t, time.Minute, "check", file, "--checkers", "linearizability,nosuch")
	if known := strings.Join(checkers.Names(), ", "); code != 64 || !strings.Contains(out, `"nosuch"`) || !strings.Contains(out, known) || !strings.Contains(known, "retry-storm") {
		t.Errorf("an unknown checker: exit %d, want 64 naming the known ones\n%s", code, out)
	}
}

// shortRuns reports whether examples run cut short: with -short, and under
// CI=true, where the suite must stay within its time budget (the
// full-length runs and their seeded figures are in the issue notes).
// FAULTLINE_FULL_EXAMPLES=1 runs them as written, in CI too.
func shortRuns() bool {
	if os.Getenv("FAULTLINE_FULL_EXAMPLES") == "1" {
		return false
	}
	return testing.Short() || testenv.InCI()
}

// fullLength are the examples that shortRuns leaves as written:
// raft-basic, the README's first command and the proof of the pacing; and
// lww-wall-clock, whose causal violation needs a cas on the skewed node, a
// merge that loses it, and a read by the same session, which 6 s of skew
// did not give in one CI run of seed 7 (its lost updates were there).
var fullLength = map[string]bool{"raft-basic.yaml": true, "lww-wall-clock.yaml": true}

// shortened returns the scenario to run for name: when shortRuns, a copy
// with the main phase cut to 8 s and, for a timeline, the faults scaled to
// fit (so the lost-writes example still ends with a kill that lasts to the
// end of the load); else the example as is. Those in fullLength always run
// as written.
func shortened(t *testing.T, name string) []string {
	t.Helper()
	path := "examples/" + name
	if !shortRuns() || fullLength[name] {
		return []string{path}
	}
	if strings.HasPrefix(name, "retry-") {
		return shortenedRetry(t, name)
	}
	if name == "raft-lost-writes.yaml" {
		src := readText(t, filepath.Join(moduleRoot(t), "examples", name))
		i := strings.Index(src, "  timeline:\n")
		if i < 0 {
			t.Fatalf("%s has no timeline", name)
		}
		src = strings.Replace(src[:i], "duration: 30s", "duration: 8s", 1) + `  timeline:
    - {at: 2s, for: 1s, fault: kill, target: all}
    - {at: 4500ms, for: 1s, fault: kill, target: all}
    - {at: 7s, for: 1s, fault: kill, target: all}
`
		path = filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{path}
	}
	if name == "lww-no-anti-entropy.yaml" {
		// The partition and the kill of every node must fall inside the
		// 8 s, and last until the load ends.
		src := readText(t, filepath.Join(moduleRoot(t), "examples", name))
		i := strings.Index(src, "  timeline:\n")
		j := strings.Index(src, "\nexpect:") + 1
		if i < 0 || j <= i {
			t.Fatalf("%s has no timeline before expect", name)
		}
		src = strings.Replace(src[:i], "duration: 20s", "duration: 8s", 1) + `  timeline:
    - {at: 3s, for: 5s, fault: partition-halves, mode: drop}
    - {at: 6s, for: 2s, fault: kill, target: all}
` + src[j:]
		path = filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{path}
	}
	return []string{path, "--duration", "8s"}
}

// checkRaftLostWritesEvidence checks TestExamples' raft-lost-writes run
// (exit 1): anomalies.jsonl holds every lost write (as many as the count),
// the explanations call them lost writes and name the node that answered,
// and `check` on a copy of the run reproduces the counts.
func checkRaftLostWritesEvidence(t *testing.T, dir string) {
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	all := readAnomalies(t, dir)
	lw := checkerResult(t, res, "lost-writes")
	lost := 0
	for _, a := range all {
		if a.Checker == "lost-writes" && a.Kind == "lost-write" {
			lost++
			if a.Node == "" || len(a.Refs) == 0 {
				t.Errorf("lost write without its node or history line: %+v", a)
			}
		}
	}
	t.Logf("lost-writes: %s; %d lost-write lines in anomalies.jsonl (anomaly_count %d); results.json keeps %d", lw.Summary, lost, lw.AnomalyCount, len(lw.Anomalies))
	if lw.Verdict != checkers.Invalid || lost == 0 || lost != lw.AnomalyCount {
		t.Errorf("lost-writes %s: %d lost writes in anomalies.jsonl, anomaly_count %d", lw.Verdict, lost, lw.AnomalyCount)
	}
	if res.Anomalies == nil || res.Anomalies.Count != len(all) {
		t.Errorf("results.json's anomalies %+v, anomalies.jsonl has %d lines", res.Anomalies, len(all))
	}
	if len(lw.Anomalies) > reports.AnomalySample {
		t.Errorf("results.json keeps %d lost-writes anomalies, want at most %d", len(lw.Anomalies), reports.AnomalySample)
	}
	node := regexp.MustCompile(`\bn[123]\b`)
	if !strings.Contains(strings.ToLower(lw.Explanation), "lost write") || !node.MatchString(lw.Explanation) {
		t.Errorf("the lost-writes explanation does not call them lost writes naming the node:\n%s", lw.Explanation)
	}
	if lin := checkerResult(t, res, "linearizability"); lin.Verdict == checkers.Invalid {
		// Linearizability calls a missed write lost only when the system
		// served the old state again (see checkers' explanations); when
		// later reads show only newer states it leaves the judgement to
		// lost-writes and says so. Either way it names the node.
		low := strings.ToLower(lin.Explanation)
		if !node.MatchString(lin.Explanation) || !(strings.Contains(low, "lost write") || strings.Contains(low, "lost-writes (the final reads) to judge") || strings.Contains(low, "lost-writes judges")) {
			t.Errorf("the linearizability explanation neither calls them lost writes nor leaves them to lost-writes, naming the node:\n%s", lin.Explanation)
		}
		sameRefEverywhere(t, dir, "linearizability")
	}
	sameRefEverywhere(t, dir, "lost-writes")

	// `check` on a copy reproduces the counts.
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(cp, "anomalies.jsonl"))
	code2, out2 := faultline(t, 3*time.Minute, "check", cp, "--out", cp)
	if code2 != 1 {
		t.Fatalf("check of the copy: exit %d, want 1\n%s", code2, out2)
	}
	again, err := reports.ReadResults(cp)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lost-writes", "linearizability"} {
		if a, b := checkerResult(t, res, name), checkerResult(t, again, name); a.AnomalyCount != b.AnomalyCount || a.Verdict != b.Verdict {
			t.Errorf("%s: the run found %d (%s), check of a copy %d (%s)", name, a.AnomalyCount, a.Verdict, b.AnomalyCount, b.Verdict)
		}
	}
	if n := len(readAnomalies(t, cp)); n != len(all) {
		t.Errorf("check of the copy wrote %d anomalies, the run %d", n, len(all))
	}
	if want := fmt.Sprintf("(%d in all)", lw.AnomalyCount); lw.AnomalyCount > 5 && !strings.Contains(out2, want) {
		t.Errorf("check's summary does not give the count %s:\n%s", want, out2)
	}
}

// checkRaftStaleReadEvidence checks TestExamples' raft-stale-read run
// (exit 1): each stale read names the node that served it, which is the
// node of its history line, and the references agree across the run
// directory.
func checkRaftStaleReadEvidence(t *testing.T, dir string) {
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	lin := checkerResult(t, res, "linearizability")
	sameRefEverywhere(t, dir, "linearizability")
	stale := 0
	for _, a := range readAnomalies(t, dir) {
		if a.Checker != "linearizability" || a.Kind != "stale-read" {
			continue
		}
		stale++
		if a.Node == "" {
			t.Errorf("stale read at %v names no node", a.Refs)
			continue
		}
		if line := historyLine(t, dir, a.Refs[0]); line["node"] != a.Node || line["f"] != "get" {
			t.Errorf("stale read %s names %s; its line is %v", a.Refs[0], a.Node, line)
		}
		if !strings.Contains(lin.Explanation, a.Node) {
			t.Errorf("the explanation does not name %s, which served the stale read at %s", a.Node, a.Refs[0])
		}
	}
	t.Logf("linearizability: %s; %d stale reads (anomaly_count %d)", lin.Summary, stale, lin.AnomalyCount)
	if stale == 0 {
		t.Errorf("no stale read in anomalies.jsonl:\n%s", lin.Explanation)
	}
}

// A run killed by an infrastructure failure (a node binary that exits at
// once: exit 70) leaves results.json, junit.xml and report.html saying how
// it ended.
func TestInfrastructureFailureLeavesResults(t *testing.T) {
	s, err := scenario.Load(filepath.Join(moduleRoot(t), "examples", "raft-basic.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := scenario.Run(ctx, s, scenario.RunOptions{Out: dir, Binary: "/bin/false"})
	var ec *exitcode.Error
	if !errors.As(err, &ec) || ec.Code != exitcode.Internal {
		t.Fatalf("scenario.Run with a node binary that exits at once: %v, want exit 70", err)
	}
	if res == nil || res.ExitCode != exitcode.Internal {
		t.Fatalf("results %+v", res)
	}
	stoppedRun(t, dir, exitcode.Internal, "setup", "infrastructure")
}

// stoppedRun checks what a run that did not finish left in dir.
func stoppedRun(t *testing.T, dir string, code int, phase, junitType string) {
	t.Helper()
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != code || res.Verdict != "unknown" || res.Stopped == nil || res.Stopped.Phase != phase || res.Stopped.ExitCode != code || res.Stopped.Reason == "" {
		t.Errorf("results.json: exit %d verdict %s stopped %+v; want exit %d in the %s phase", res.ExitCode, res.Verdict, res.Stopped, code, phase)
	}
	junit := readText(t, filepath.Join(dir, "junit.xml"))
	if !strings.Contains(junit, `type="`+junitType+`"`) || !strings.Contains(junit, fmt.Sprintf(`name="exit_code" value="%d"`, code)) {
		t.Errorf("junit.xml does not say the run ended with %d (%s):\n%s", code, junitType, junit)
	}
	page := readText(t, filepath.Join(dir, "report.html"))
	if !strings.Contains(page, "The run did not finish") || !strings.Contains(page, fmt.Sprintf("exit %d", code)) || !strings.Contains(page, "<strong>"+phase+"</strong>") {
		t.Errorf("report.html does not say how the run ended (exit %d in %s)", code, phase)
	}
}

// A run interrupted by SIGINT leaves results.json, junit.xml and
// report.html; `check` on it keeps the exit reason (130, where it stopped)
// and does not take the cut-short reads for final reads.
func TestInterruptedRunLeavesResults(t *testing.T) {
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	code, out := interruptRun(t, 3*time.Second, func() {}, "examples/raft-basic.yaml", "--out", dir, "--seed", "3")
	if code != 130 {
		t.Fatalf("exit %d after SIGINT, want 130\n%s", code, out)
	}
	if !strings.Contains(out, "verdict: UNKNOWN (exit 130: interrupted during the main phase") {
		t.Errorf("the terminal summary does not say the run was interrupted:\n%s", out)
	}
	if left := processesOf(t, bin); len(left) > 0 {
		t.Errorf("processes left after SIGINT: %v", left)
	}
	stoppedRun(t, dir, 130, "main", "interrupted")
	code, out = faultline(t, 3*time.Minute, "check", dir, "--no-artifacts")
	if code != 130 || !strings.Contains(out, "the run stopped during the main phase") {
		t.Errorf("check of the interrupted run: exit %d, want 130 saying where it stopped\n%s", code, out)
	}
	if regexp.MustCompile(`lost-writes\s+(valid|invalid)`).MatchString(out) {
		t.Errorf("lost-writes judged the cut-short reads of an interrupted run as final reads:\n%s", out)
	}

	// faultline runs lists it beside a valid and an invalid judgement
	// (check --out of two fixtures), newest first, and writes index.html.
	root := filepath.Dir(dir)
	for _, f := range []string{"valid-register", "stale-read"} {
		if code, out := faultline(t, time.Minute, "check", filepath.Join("checkers", "testdata", f+".jsonl"), "--out", filepath.Join(root, f)); code > 1 {
			t.Fatalf("check %s: exit %d\n%s", f, code, out)
		}
	}
	code, out = faultline(t, time.Minute, "runs", root)
	want := regexp.MustCompile(`(?s)raft-basic\s+3\s+interrupted\s+130\s+\d+\s+run\n.*valid-register\s+1\s+valid\s+0\s+10\s+valid-register\n.*stale-read\s+2\s+invalid\s+1\s+4\s+stale-read\n3 runs under `)
	if code != 0 || !want.MatchString(out) {
		t.Errorf("faultline runs: exit %d, want 0 listing the interrupted, the valid and the invalid run, newest first\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, "index.html")); err != nil {
		t.Errorf("faultline runs wrote no index.html: %v", err)
	}
}
