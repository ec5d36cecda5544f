package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
)

// help runs `faultline ARGS... --help` in process and returns its output.
func help(t *testing.T, args ...string) string {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--help"))
	if err := root.Execute(); err != nil {
		t.Fatalf("faultline %s --help: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// faultline --help names the checkers this build has (and no other), and
// run --help names what a run writes and where.
func TestHelpClaimsWhatExists(t *testing.T) {
	root := strings.Join(strings.Fields(help(t)), " ")
	names := checkers.Names()
	if len(names) < 5 || !strings.Contains(root, "checkers ("+strings.Join(names, ", ")+")") {
		t.Errorf("faultline --help does not list this build's checkers %v:\n%s", names, root)
	}
	run := strings.Join(strings.Fields(help(t, "run")), " ")
	for _, want := range []string{"report.html", "junit.xml", "results.json", "history.jsonl", "linearizability.html", "--runs-dir", "--out"} {
		if !strings.Contains(run, want) {
			t.Errorf("faultline run --help does not mention %s", want)
		}
	}
}
