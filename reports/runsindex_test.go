package reports_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/browsertest"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/scenario"
)

// judgedRun makes a run directory at root/rel the way a run leaves one:
// history.jsonl (the events of a checkers fixture under a header naming
// scenario, seed and start, written by history.WriteAll), then faultline
// check of the directory saving its results there: results.json,
// report.html and the rest, from the real checkers and writers.
func judgedRun(t *testing.T, root, rel, fixture, name string, seed int64, start time.Time) string {
	t.Helper()
	dir := filepath.Join(root, filepath.FromSlash(rel))
	writeHistory(t, dir, fixture, name, seed, start)
	if _, err := scenario.Check(context.Background(), dir, scenario.CheckOptions{Out: dir, NoArtifacts: true}); err != nil {
		t.Fatalf("check %s: %v", dir, err)
	}
	return dir
}

func writeHistory(t *testing.T, dir, fixture, name string, seed int64, start time.Time) {
	t.Helper()
	_, evs, err := history.ReadFile(filepath.Join("..", "checkers", "testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	h := &history.HeaderLine{Faultline: "test", Scenario: name, Seed: seed, Start: start.UTC().Format(time.RFC3339Nano)}
	if err := history.WriteAll(&b, h, evs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

const hostileScenario = `<img src=x onerror=alert(1)>`

// runsRoot builds a runs root the way runs and CI jobs fill one: a valid
// and an invalid run (judged by faultline check), an interrupted one (its
// results.json says it stopped on SIGINT in the main phase, as the
// conductor writes it), one killed before it wrote results.json, one
// whose results.json was cut short, a run under a directory whose name
// needs escaping in a URL, a "latest" link, a hidden directory, and a
// directory that is no run.
func runsRoot(t *testing.T) string {
	root := t.TempDir()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	judgedRun(t, root, "raft-basic/20260301T100000Z", "valid-register.jsonl", "raft-basic", 11, t0)
	judgedRun(t, root, "raft-stale-read/20260301T110000Z", "stale-read.jsonl", "raft-stale-read", 12, t0.Add(time.Hour))

	// Interrupted: the results a run leaves when SIGINT stops it in the
	// main phase, through the real writer (reports.Save).
	intr := filepath.Join(root, "raft-basic", "20260301T120000Z")
	writeHistory(t, intr, "valid-register.jsonl", "raft-basic", 13, t0.Add(2*time.Hour))
	r := &reports.Results{Faultline: "test", Scenario: "raft-basic", Seed: 13, Start: t0.Add(2 * time.Hour).Format(time.RFC3339Nano),
		Verdict: "unknown", ExitCode: 130, ExitReason: "interrupted during the main phase",
		Stopped: &reports.Stopped{Phase: "main", ExitCode: 130, Reason: "received interrupt"},
		Faults:  []reports.Fault{}, Stats: reports.Stats{Ops: 7}}
	if err := reports.Save(intr, r, reports.BuildOptions{}); err != nil {
		t.Fatal(err)
	}

	// Killed: a history and the run's lock, no results.
	killed := filepath.Join(root, "raft-basic", "20260301T130000Z")
	writeHistory(t, killed, "valid-register.jsonl", "raft-basic", 14, t0.Add(3*time.Hour))
	if err := os.WriteFile(filepath.Join(killed, ".lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// Cut short: half of a results.json.
	cut := judgedRun(t, root, "raft-basic/20260301T090000Z", "valid-register.jsonl", "raft-basic", 15, t0.Add(-time.Hour))
	b, err := os.ReadFile(filepath.Join(cut, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cut, "results.json"), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	// An --out run in a CI job's artifacts, under a name a URL must
	// escape, whose scenario name is markup.
	judgedRun(t, root, `ci/job #7 & "x"?/run`, "stale-read.jsonl", hostileScenario, 16, t0.Add(-2*time.Hour))

	for _, d := range []string{"notes", "raft-basic/.latest-123"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("20260301T100000Z", filepath.Join(root, "raft-basic", "latest")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestListRuns(t *testing.T) {
	root := runsRoot(t)
	l, err := reports.ListRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		dir, scenario string
		seed          int64
		state         reports.RunState
		status        string
		exit          int
		results       bool
		report        bool
	}
	wants := []want{ // newest first
		{"raft-basic/20260301T130000Z", "raft-basic", 14, reports.RunNoResults, "no results", 0, false, false},
		{"raft-basic/20260301T120000Z", "raft-basic", 13, reports.RunStopped, "interrupted", 130, true, true},
		{"raft-stale-read/20260301T110000Z", "raft-stale-read", 12, reports.RunFinished, "invalid", 1, true, true},
		{"raft-basic/20260301T100000Z", "raft-basic", 11, reports.RunFinished, "valid", 0, true, true},
		{"raft-basic/20260301T090000Z", "raft-basic", 15, reports.RunUnreadable, "unreadable", 0, false, true},
		{`ci/job #7 & "x"?/run`, hostileScenario, 16, reports.RunFinished, "invalid", 1, true, true},
	}
	if len(l.Runs) != len(wants) {
		for _, e := range l.Runs {
			t.Logf("%+v", e)
		}
		t.Fatalf("%d runs, want %d", len(l.Runs), len(wants))
	}
	for i, w := range wants {
		e := l.Runs[i]
		if e.Dir != w.dir || e.Scenario != w.scenario || e.Seed != w.seed || e.State != w.state || e.Status() != w.status || e.ExitCode != w.exit || e.HasResults != w.results || (e.Report != "") != w.report {
			t.Errorf("run %d: %+v (status %q)\nwant %+v", i, e, e.Status(), w)
		}
		if e.TimeGuessed {
			t.Errorf("run %d (%s): time guessed; the results or the history's header say when it started", i, e.Dir)
		}
		if e.HasResults {
			r, err := reports.ReadResults(filepath.Join(root, filepath.FromSlash(e.Dir)))
			if err != nil {
				t.Fatal(err)
			}
			if e.Ops != r.Stats.Ops || e.Verdict != r.Verdict || (e.State == reports.RunFinished && e.Ops == 0) {
				t.Errorf("run %d: ops %d, verdict %s; results.json says %d, %s", i, e.Ops, e.Verdict, r.Stats.Ops, r.Verdict)
			}
		}
	}
	if !strings.Contains(l.Runs[1].Detail(), "stopped during the main phase: received interrupt") {
		t.Errorf("the interrupted run's detail: %q", l.Runs[1].Detail())
	}
	if !strings.Contains(l.Runs[0].Detail(), "no process holds the run's lock: the run was killed") || !strings.HasPrefix(l.Runs[4].Detail(), "results.json cannot be read (unexpected end of JSON input)") {
		t.Errorf("details: %q, %q", l.Runs[0].Detail(), l.Runs[4].Detail())
	}
	if l.Skipped != 1 {
		t.Errorf("%d directories skipped, want 1 (notes; the hidden one and the latest link are not looked at)", l.Skipped)
	}

	var out bytes.Buffer
	if err := reports.WriteRunsTable(&out, l); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Logf("\n%s", text)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != len(wants)+2 || !strings.HasPrefix(lines[0], "STARTED (UTC)") {
		t.Fatalf("the table has %d lines, want a heading, %d runs and a count:\n%s", len(lines), len(wants), text)
	}
	for i, w := range wants {
		f := strings.Fields(lines[i+1])
		if !strings.HasSuffix(lines[i+1], w.dir) || !strings.Contains(lines[i+1], " "+w.status+" ") {
			t.Errorf("table line %d: %q; want run %s, %s", i+1, lines[i+1], w.dir, w.status)
		}
		if f[0] != "2026-03-01" {
			t.Errorf("table line %d starts %q", i+1, f[0])
		}
	}
	for i, want := range map[int]string{
		1: "2026-03-01 13:00:00 raft-basic 14 no results - - raft-basic/20260301T130000Z",
		2: "2026-03-01 12:00:00 raft-basic 13 interrupted 130 7 raft-basic/20260301T120000Z",
		5: "2026-03-01 09:00:00 raft-basic 15 unreadable - - raft-basic/20260301T090000Z",
	} {
		if got := strings.Join(strings.Fields(lines[i]), " "); got != want {
			t.Errorf("table line %d: %q\nwant %q", i, got, want)
		}
	}
	if want := "6 runs under " + root + ": 1 interrupted, 2 invalid, 1 no results, 1 unreadable, 1 valid; 1 directories that are not runs skipped"; lines[len(lines)-1] != want {
		t.Errorf("the count: %q\nwant %q", lines[len(lines)-1], want)
	}
	if strings.ContainsAny(text, "\x1b") {
		t.Error("the table has escape sequences")
	}
}

// ListRuns on a run directory lists that run; on a file or nothing it
// says what to give.
func TestListRunsRoots(t *testing.T) {
	root := t.TempDir()
	dir := judgedRun(t, root, "run", "valid-register.jsonl", "raft-basic", 3, time.Now())
	l, err := reports.ListRuns(dir)
	if err != nil || len(l.Runs) != 1 || l.Runs[0].Dir != "." || l.Runs[0].Verdict != "valid" {
		t.Errorf("ListRuns(a run directory): %+v, %v", l, err)
	}
	if _, err := reports.ListRuns(filepath.Join(dir, "results.json")); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("ListRuns(a file): %v", err)
	}
	if _, err := reports.ListRuns(filepath.Join(root, "nothing")); !os.IsNotExist(err) {
		t.Errorf("ListRuns(nothing): %v", err)
	}
	empty := t.TempDir()
	l, err = reports.ListRuns(empty)
	if err != nil || len(l.Runs) != 0 {
		t.Fatalf("ListRuns(empty): %+v, %v", l, err)
	}
	var out bytes.Buffer
	reports.WriteRunsTable(&out, l)
	if !strings.HasPrefix(out.String(), "no runs under "+empty) {
		t.Errorf("the table of no runs: %q", out.String())
	}
}

// index.html in a browser: it loads nothing, runs nothing, shows the
// runs newest first with the hostile scenario name as text, and every
// report link opens an existing report.html of the run it names.
func TestRunsIndexInBrowser(t *testing.T) {
	browsertest.Chromium(t)
	root := runsRoot(t)
	l, err := reports.ListRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := reports.WriteRunsIndex(l)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(root, "index.html") {
		t.Errorf("index at %s", p)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("index.html: %v, mode %v; want 0644", err, fi.Mode())
	}
	if tmp, _ := filepath.Glob(filepath.Join(root, ".index.html*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	html, _ := os.ReadFile(p)
	if strings.Contains(string(html), "<img") || strings.Contains(string(html), `href="/`) || strings.Contains(string(html), `href="file:`) {
		t.Errorf("index.html has the hostile name unescaped, or an absolute link")
	}

	page := browsertest.Open(t, p, 60*time.Second)
	rows := browsertest.Eval[[]string](t, page, `Array.from(document.querySelectorAll("#runs tbody tr")).map(r => r.dataset.state + " " + r.cells[1].textContent + " " + r.cells[3].querySelector(".badge").textContent)`)
	var want []string
	for i := range l.Runs {
		want = append(want, string(l.Runs[i].State)+" "+l.Runs[i].Scenario+" "+l.Runs[i].Status())
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows in the page:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	if n := browsertest.Eval[int](t, page, `document.querySelectorAll("img, script").length`); n != 0 {
		t.Errorf("%d img or script elements in the page", n)
	}
	hrefs := browsertest.Eval[[]string](t, page, `Array.from(document.querySelectorAll("a")).map(a => a.href)`)
	withReport := 0
	for i := range l.Runs {
		if l.Runs[i].Report != "" {
			withReport++
		}
	}
	if len(hrefs) != withReport || withReport != 5 {
		t.Errorf("%d links, %d runs with a report.html (want 5): %q", len(hrefs), withReport, hrefs)
	}
	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("browser errors: %q", errs)
	}
	if reqs := page.Requests(); len(reqs) > 0 {
		t.Errorf("index.html made requests: %q", reqs)
	}
	for _, h := range hrefs {
		u, err := url.Parse(h)
		if err != nil || u.Scheme != "file" {
			t.Errorf("link %q: %v", h, err)
			continue
		}
		rel, err := filepath.Rel(root, u.Path)
		if err != nil || strings.HasPrefix(rel, "..") || filepath.Base(u.Path) != "report.html" {
			t.Errorf("link %q leads to %s, not a report.html under the root", h, u.Path)
			continue
		}
		if _, err := os.Stat(u.Path); err != nil {
			t.Errorf("link %q: %v", h, err)
			continue
		}
		r, err := reports.ReadResults(filepath.Dir(u.Path))
		if err != nil {
			if !strings.Contains(rel, "20260301T090000Z") { // the cut results.json
				t.Errorf("link %q: %v", h, err)
			}
			continue
		}
		if err := chromedp.Do(page.Ctx, chromedp.Navigate(h)); err != nil {
			t.Errorf("opening %s: %v", h, err)
			continue
		}
		title, err := chromedp.Run(page.Ctx, chromedp.Title())
		if err != nil {
			t.Errorf("the title of %s: %v", h, err)
			continue
		}
		if !strings.Contains(title, r.Scenario) {
			t.Errorf("link %q opened %q, want the report of %s", h, title, r.Scenario)
		}
	}
}

// TestListRunsRunning: a run without results.json whose lock a process
// holds (LockRunDir, as the conductor takes it) is listed as running;
// once the lock is released with no results.json it is a killed run; a
// run with no lock file at all cannot be told apart and says so.
func TestListRunsRunning(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	live := filepath.Join(root, "raft-basic", "20260301T100000Z")
	writeHistory(t, live, "valid-register.jsonl", "raft-basic", 21, t0)
	unlock, err := reports.LockRunDir(live)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	old := filepath.Join(root, "raft-basic", "20260301T090000Z")
	writeHistory(t, old, "valid-register.jsonl", "raft-basic", 22, t0.Add(-time.Hour))

	l, err := reports.ListRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Runs) != 2 {
		t.Fatalf("%d runs, want 2: %+v", len(l.Runs), l.Runs)
	}
	if e := l.Runs[0]; e.State != reports.RunRunning || e.Status() != "running" || !strings.Contains(e.Detail(), "still going") {
		t.Errorf("the locked run: state %s, status %q, detail %q; want running", e.State, e.Status(), e.Detail())
	}
	if e := l.Runs[1]; e.State != reports.RunNoResults || e.Status() != "no results" || !strings.Contains(e.Detail(), "it has no lock to tell by") {
		t.Errorf("the run without a lock file: state %s, status %q, detail %q", e.State, e.Status(), e.Detail())
	}
	var out bytes.Buffer
	if err := reports.WriteRunsTable(&out, l); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2 runs under "+root+": 1 no results, 1 running") {
		t.Errorf("table:\n%s", out.String())
	}

	// Listing takes the lock for an instant: the run still holds it.
	if _, err := reports.LockRunDir(live); err == nil {
		t.Fatal("a second LockRunDir on the running run succeeded after ListRuns")
	}
	unlock()
	l, err = reports.ListRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	if e := l.Runs[0]; e.State != reports.RunNoResults || !strings.Contains(e.Detail(), "killed") {
		t.Errorf("after the lock is released: state %s, detail %q; want no-results, killed", e.State, e.Detail())
	}
}
