package checkers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// linearizability.html is titled with the scenario (escaped), labels the
// lanes with the history's processes, and is written 0644 like the run's
// other files whatever the umask.
func TestVisualizationTitleLanesAndMode(t *testing.T) {
	defer setUmask(setUmask(0o077))
	in := loadFixture(t, "stale-read.jsonl")
	in.Header.Scenario = `stale <b>&"read"`
	in.OutDir = t.TempDir()
	r := Linearizability{}.Check(context.Background(), in)
	path := filepath.Join(in.OutDir, "linearizability.html")
	if r.Verdict != Invalid || r.Details["visualization"] != path {
		t.Fatalf("got %s, details %v", r.Verdict, r.Details)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("linearizability.html has mode %v, want 0644 (umask 077)", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	page := string(b)
	if want := "<title>linearizability: stale &lt;b&gt;&amp;&#34;read&#34; (faultline)</title>"; !strings.Contains(page, want) || strings.Count(page, "<title>") != 1 {
		t.Errorf("the page's title is not %s", want)
	}
	// Every lane is a process of the history: the fixture's clients are
	// processes 0 to 2, and each is drawn in a lane of its own.
	m := regexp.MustCompile(`const FL_PROCESSES = (\{[^\n]*\})`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no lane labels in the page")
	}
	var lanes map[string]string
	if err := json.Unmarshal([]byte(m[1]), &lanes); err != nil {
		t.Fatal(err)
	}
	procs := map[string]bool{}
	for _, e := range in.Events {
		if e.Process.IsClient() {
			procs[e.Process.String()] = true
		}
	}
	seen := map[string]bool{}
	for _, p := range lanes {
		if !procs[p] || seen[p] {
			t.Errorf("lanes %v: %q is not one of the history's processes %v, or is drawn twice", lanes, p, procs)
		}
		seen[p] = true
	}
	if len(lanes) == 0 || len(lanes) > len(procs) {
		t.Errorf("lanes %v for the processes %v", lanes, procs)
	}
	// A bare history is named by its file.
	in.Header = nil
	if got := vizTitle(in); got != "linearizability: stale-read.jsonl (faultline)" {
		t.Errorf("title of a bare history: %q", got)
	}
}
