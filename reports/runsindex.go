package reports

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/atomicfile"
)

// exitInterrupted is the exit code of a run stopped by SIGINT or SIGTERM.
const exitInterrupted = 130

// RunState says how far a run got, as its directory shows it.
type RunState string

// Run states.
const (
	// RunFinished: results.json says the run ended with a verdict.
	RunFinished RunState = "finished"
	// RunStopped: results.json says the run stopped before the end
	// (interrupted, exit 130; an infrastructure error, 70; a setting found
	// bad late, 64): Results.Stopped.
	RunStopped RunState = "stopped"
	// RunRunning: no results.json yet, and a process holds the run's
	// lock (LockRunDir): the run is still going.
	RunRunning RunState = "running"
	// RunNoResults: the directory has a run's history or lock but no
	// results.json, and no process holds the lock: the run was killed
	// (SIGKILL, a crash) before it could write one. Where the lock
	// cannot be tested (no .lock file, no flock on the system, a
	// directory on another machine), the run may also still be going;
	// RunEntry.Problem says which.
	RunNoResults RunState = "no-results"
	// RunUnreadable: results.json is there but cannot be read (cut short,
	// or not faultline's).
	RunUnreadable RunState = "unreadable"
)

// RunEntry is one run directory found under a runs root.
type RunEntry struct {
	// Dir is the run directory relative to the root, slash-separated
	// ("." when the root is itself a run directory).
	Dir      string
	State    RunState
	Scenario string
	// Start is when the run started: results.json's start, else the
	// history's header, else the directory's modification time (TimeGuessed).
	Start       time.Time
	TimeGuessed bool
	Seed        int64 // 0 when unknown
	Verdict     string
	ExitCode    int
	// HasResults reports whether Verdict, ExitCode and Ops come from a
	// readable results.json.
	HasResults bool
	Ops        int64
	// Stopped is results.json's account of a run that did not finish.
	Stopped *Stopped
	// Report is "report.html" when the run directory has one ("" if not).
	Report string
	// Problem says, for a run without readable results, what is wrong.
	Problem string
}

// Interrupted reports whether the run was stopped by a signal (exit 130).
func (e *RunEntry) Interrupted() bool {
	return e.State == RunStopped && e.Stopped != nil && e.Stopped.ExitCode == exitInterrupted
}

// Status is one word or two for the run's outcome: its verdict, or
// "running", "interrupted", "stopped (exit N)", "no results", "unreadable".
func (e *RunEntry) Status() string {
	switch e.State {
	case RunStopped:
		if e.Interrupted() {
			return "interrupted"
		}
		return fmt.Sprintf("stopped (exit %d)", e.ExitCode)
	case RunRunning:
		return "running"
	case RunNoResults:
		return "no results"
	case RunUnreadable:
		return "unreadable"
	}
	return e.Verdict
}

// Detail is the sentence that goes with Status: where a run stopped and
// why, or what is missing.
func (e *RunEntry) Detail() string {
	switch {
	case e.Stopped != nil:
		return fmt.Sprintf("stopped during the %s phase: %s", e.Stopped.Phase, e.Stopped.Reason)
	case e.Problem != "":
		return e.Problem
	}
	return ""
}

// RunList is what ListRuns found under a runs root.
type RunList struct {
	Root string     // as given
	Runs []RunEntry // newest first
	// Skipped counts the directories under Root that are neither a run
	// directory nor hold one (they are left out).
	Skipped int
}

// maxRunsDepth bounds how deep ListRuns looks below the root: the default
// layout puts runs two deep (<scenario>/<timestamp>), a CI job's artifacts
// a few more.
const maxRunsDepth = 6

// isRunDir reports whether the directory holds a run: a results.json, a
// history.jsonl, or the .lock a run takes as it starts.
func isRunDir(dir string) bool {
	for _, f := range []string{"results.json", "history.jsonl", ".lock"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// ListRuns finds the run directories under root (faultline run's
// --runs-dir, or any directory of run directories: a CI job's artifacts,
// --out directories, faultline check --out results) and reads each one's
// results.json, newest first. It does not follow symbolic links, so each
// scenario's "latest" is not listed twice, and does not look inside a run
// directory (nodes/) or in hidden directories, nor deeper than 6 levels.
// A directory that is neither a run nor holds one is skipped and counted
// (RunList.Skipped). Only a root that cannot be read is an error.
// ListRuns reads; it writes nothing.
func ListRuns(root string) (*RunList, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: give the directory runs are written under (faultline run --runs-dir, default faultline-runs)", root)
	}
	l := &RunList{Root: root}
	holds := map[string]bool{} // directories with a run below them
	var visited []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // unreadable: skipped
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && (strings.HasPrefix(d.Name(), ".") || strings.Count(filepath.ToSlash(rel), "/") >= maxRunsDepth) {
			return fs.SkipDir
		}
		if !isRunDir(p) {
			visited = append(visited, rel)
			return nil
		}
		l.Runs = append(l.Runs, readRunEntry(p, filepath.ToSlash(rel)))
		for q := filepath.Dir(rel); q != "." && q != string(filepath.Separator); q = filepath.Dir(q) {
			holds[q] = true
		}
		return fs.SkipDir
	})
	if err != nil {
		return nil, err
	}
	for _, v := range visited {
		if v != "." && !holds[v] {
			l.Skipped++
		}
	}
	sort.SliceStable(l.Runs, func(i, j int) bool {
		a, b := l.Runs[i], l.Runs[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.After(b.Start)
		}
		return a.Dir > b.Dir
	})
	return l, nil
}

// readRunEntry reads what the run directory dir says of its run.
func readRunEntry(dir, rel string) RunEntry {
	e := RunEntry{Dir: rel}
	if fileExists(filepath.Join(dir, "report.html")) {
		e.Report = "report.html"
	}
	r, err := ReadResults(dir)
	switch {
	case err == nil:
		e.HasResults = true
		e.Scenario, e.Seed, e.Verdict, e.ExitCode, e.Ops = r.Scenario, r.Seed, r.Verdict, r.ExitCode, r.Stats.Ops
		e.Stopped = r.Stopped
		e.State = RunFinished
		if r.Stopped != nil {
			e.State = RunStopped
		}
		if t, err := time.Parse(time.RFC3339Nano, r.Start); err == nil {
			e.Start = t
		}
	case errors.Is(err, fs.ErrNotExist):
		held, known := lockHeld(filepath.Join(dir, ".lock"))
		switch {
		case held:
			e.State = RunRunning
			e.Problem = "no results.json yet: a faultline process holds the run's lock, so the run is still going"
		case known:
			e.State = RunNoResults
			e.Problem = "no results.json, and no process holds the run's lock: the run was killed (SIGKILL, a crash) before it could write one; faultline check " + rel + " judges the history it recorded"
		default:
			e.State = RunNoResults
			e.Problem = "no results.json: the run is still going, or it was killed (SIGKILL, a crash) before it could write one (it has no lock to tell by); faultline check " + rel + " judges the history it recorded"
		}
	default:
		e.State = RunUnreadable
		why := strings.TrimPrefix(err.Error(), filepath.Join(dir, "results.json")+": ")
		e.Problem = "results.json cannot be read (" + why + "); faultline check " + rel + " judges the history again"
	}
	if e.Start.IsZero() || e.Scenario == "" {
		// The history's header says which scenario and when.
		if f, err := os.Open(filepath.Join(dir, "history.jsonl")); err == nil {
			if h := history.NewDecoder(f, "history.jsonl").Header(); h != nil {
				if e.Scenario == "" {
					e.Scenario, e.Seed = h.Scenario, h.Seed
				}
				if t, err := time.Parse(time.RFC3339Nano, h.Start); err == nil && e.Start.IsZero() {
					e.Start = t
				}
			}
			f.Close()
		}
	}
	if e.Start.IsZero() {
		if fi, err := os.Stat(dir); err == nil {
			e.Start, e.TimeGuessed = fi.ModTime(), true
		}
	}
	if e.Scenario == "" {
		e.Scenario = "?"
	}
	return e
}

// WriteRunsTable writes l as a plain text table (no colours, no control
// characters of its own), newest first, then how many runs there are and
// how many directories were skipped.
func WriteRunsTable(w io.Writer, l *RunList) error {
	if len(l.Runs) == 0 {
		_, err := fmt.Fprintf(w, "no runs under %s (%d directories that are not runs)\n", l.Root, l.Skipped)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED (UTC)\tSCENARIO\tSEED\tVERDICT\tEXIT\tOPS\tRUN")
	for i := range l.Runs {
		e := &l.Runs[i]
		t := e.Start.UTC().Format("2006-01-02 15:04:05")
		if e.TimeGuessed {
			t += "?"
		}
		seed, exit, ops := "-", "-", "-"
		if e.Seed != 0 {
			seed = fmt.Sprint(e.Seed)
		}
		if e.HasResults {
			exit, ops = fmt.Sprint(e.ExitCode), fmt.Sprint(e.Ops)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t, e.Scenario, seed, e.Status(), exit, ops, e.Dir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts := map[string]int{}
	var order []string
	for i := range l.Runs {
		s := l.Runs[i].Status()
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	sort.Strings(order)
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	fmt.Fprintf(w, "%d runs under %s: %s", len(l.Runs), l.Root, strings.Join(parts, ", "))
	if l.Skipped > 0 {
		fmt.Fprintf(w, "; %d directories that are not runs skipped", l.Skipped)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// RunsIndexFile is the name of the page WriteRunsIndex writes in the root.
const RunsIndexFile = "index.html"

// WriteRunsIndex writes index.html in l.Root: one self-contained page (no
// script, no request to anything) listing the runs newest first, each
// with a link to its report.html relative to the root, so the page works
// wherever the directory is copied or served. Names are escaped. It is
// written atomically, mode 0644, and its path is returned.
func WriteRunsIndex(l *RunList) (string, error) {
	type row struct {
		*RunEntry
		Time, Class, Href, Seed, Exit, Ops string
	}
	rows := make([]row, len(l.Runs))
	for i := range l.Runs {
		e := &l.Runs[i]
		r := row{RunEntry: e, Time: e.Start.UTC().Format("2006-01-02 15:04:05 UTC"), Seed: "-", Exit: "-", Ops: "-"}
		if e.TimeGuessed {
			r.Time += " (the directory's time)"
		}
		switch {
		case e.State == RunFinished && (e.Verdict == "valid" || e.Verdict == "invalid"):
			r.Class = e.Verdict
		default:
			r.Class = "unknown"
		}
		if e.Report != "" {
			r.Href = runHref(e.Dir, e.Report)
		}
		if e.Seed != 0 {
			r.Seed = fmt.Sprint(e.Seed)
		}
		if e.HasResults {
			r.Exit, r.Ops = fmt.Sprint(e.ExitCode), fmt.Sprint(e.Ops)
		}
		rows[i] = r
	}
	abs := l.Root
	if a, err := filepath.Abs(l.Root); err == nil {
		abs = a
	}
	data := struct {
		Root    string
		Rows    []row
		Skipped int
		Now     string
	}{abs, rows, l.Skipped, time.Now().UTC().Format("2006-01-02 15:04:05 UTC")}
	p := filepath.Join(l.Root, RunsIndexFile)
	err := atomicfile.Write(p, func(w io.Writer) error { return runsIndexTmpl.Execute(w, data) })
	return p, err
}

// runHref is the link from the root to file in the run directory dir
// (slash-separated, relative): each segment escaped, and "./" first so
// that a directory named like a URL scheme ("javascript:") stays a path.
func runHref(dir, file string) string {
	var segs []string
	for _, s := range strings.Split(path.Join(dir, file), "/") {
		segs = append(segs, url.PathEscape(s))
	}
	return "./" + strings.Join(segs, "/")
}

var runsIndexTmpl = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<title>faultline runs: {{.Root}}</title>
<style>
:root { --ok: #1a7f37; --bad: #cf222e; --unk: #9a6700; --ink: #1f2328; --muted: #656d76; --line: #d0d7de; --soft: #f6f8fa; }
body { margin: 0; font: 14px/1.45 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); }
main { max-width: 1120px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin-top: 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; overflow-wrap: anywhere; }
td.time, td.scenario { white-space: nowrap; }
.badge { display: inline-block; color: #fff; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.badge.valid { background: var(--ok); } .badge.invalid { background: var(--bad); } .badge.unknown { background: var(--unk); }
.detail { font-size: 12.5px; color: var(--muted); }
</style>
</head>
<body>
<main>
<h1>faultline runs</h1>
<p class="muted"><code>{{.Root}}</code>: {{len .Rows}} runs, newest first{{if .Skipped}}; {{.Skipped}} directories that are not runs left out{{end}}. Written by <code>faultline runs</code> at {{.Now}}.</p>
<table id="runs">
<thead><tr><th>Started</th><th>Scenario</th><th>Seed</th><th>Verdict</th><th>Exit</th><th>Ops</th><th>Run</th></tr></thead>
<tbody>
{{range .Rows}}<tr data-state="{{.State}}">
<td class="time">{{.Time}}</td>
<td class="scenario">{{.Scenario}}</td>
<td class="num">{{.Seed}}</td>
<td><span class="badge {{.Class}}">{{.Status}}</span>{{with .Detail}}<div class="detail">{{.}}</div>{{end}}</td>
<td class="num">{{.Exit}}</td>
<td class="num">{{.Ops}}</td>
<td>{{if .Href}}<a class="report" href="{{.Href}}"><code>{{.Dir}}</code></a>{{else}}<code>{{.Dir}}</code> <span class="muted">(no report.html)</span>{{end}}</td>
</tr>
{{else}}<tr><td colspan="7" class="muted">No runs here.</td></tr>
{{end}}</tbody>
</table>
</main>
</body>
</html>
`))
