package scenario

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	// The parts a scenario names are looked up in registries; the tests
	// link the ones the examples use, as cmd/faultline does.
	_ "github.com/faultline/faultline/targets/httpkv"
	_ "github.com/faultline/faultline/targets/local"
	_ "github.com/faultline/faultline/targets/raftkv"
)

// TestConductorImportsNoConcretePart: scenario finds systems, adapters,
// runtimes, workloads, checkers and faults by name; it links none of the
// concrete systems, adapters or runtimes.
func TestConductorImportsNoConcretePart(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/faultline/faultline/targets/") {
			t.Errorf("scenario depends on %s: look it up in a registry instead", pkg)
		}
	}
}

// TestValidationBeforeAnythingStarts: names and values that the
// registries refuse are errors of the file, with line, column and the
// known names.
func TestValidationBeforeAnythingStarts(t *testing.T) {
	cases := []struct {
		name, src string
		line, col int
		field     string
		says      []string
	}{
		{"unknown system", "name: x\nsystem: nosuch\n", 2, 9, "system", []string{`"nosuch"`, "raftkv"}},
		{"unknown bug switch", "bugs: [stale-reed]\n", 1, 8, "bugs[0]", []string{`"stale-reed"`, "stale-read", "lose-unsynced"}},
		{"unknown option", "node_opts:\n  heartbeat: 1s\n", 2, 14, "node_opts.heartbeat", []string{`"heartbeat"`, "heartbeat-timeout"}},
		{"bad option value", "node_opts:\n  unsynced-flush: -1s\n", 2, 19, "node_opts.unsynced-flush", []string{"unsynced-flush", "positive duration"}},
		{"no keys", "workload:\n  keys: 0\n", 2, 9, "workload.keys", []string{"0 keys", "1 to 1000000"}},
		{"every weight zero", "workload:\n  mix: {get: 0, put: 0, cas: 0}\n", 2, 8, "workload.mix", []string{"positive weight"}},
		{"unknown workload", "workload: {type: bank}\n", 1, 18, "workload.type", []string{`"bank"`, "register"}},
		{"unknown checker", "checkers:\n  linearisability: {}\n", 2, 3, "checkers.linearisability", []string{"not a checker", "linearizability"}},
		{"checker parameter", "checkers:\n  linearizability: {budget: 0s}\n", 2, 29, "checkers.linearizability.budget", []string{"positive"}},
		{"unknown adapter", "client: carrier-pigeon\n", 1, 9, "client", []string{"carrier-pigeon", "http"}},
		{"unknown runtime", "runtime: kubernetes\n", 1, 10, "runtime", []string{"kubernetes", "local"}},
		{"role of a single-role system", "roles: {backend: {nodes: 2}}\n", 1, 18, "roles.backend", []string{"no role", "node"}},
		{"too many nodes", "nodes: 16\n", 1, 8, "nodes", []string{"16", "1 to 15"}},
		{"unknown fault parameter", "faults:\n  mix: [{fault: kill, mode: drop}]\n", 2, 23, "faults.mix[0].mode", []string{"unknown field"}},
		{"a role that does not exist", "faults:\n  mix: [{fault: kill, target: \"role:backend\"}]\n", 2, 31, "faults.mix[0].target", []string{"role"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantFieldError(t, c.src, c.line, c.col, c.field, c.says...)
		})
	}
}

// TestOptionsCheckedTogether: options that are only valid together (raft's
// timeouts: lease <= heartbeat <= election) are accepted when the file
// sets them together, per role too; a combination raft refuses is an error
// of the file.
func TestOptionsCheckedTogether(t *testing.T) {
	for _, src := range []string{
		"node_opts: {heartbeat-timeout: 100ms, election-timeout: 100ms, leader-lease-timeout: 50ms}\n",
		"node_opts: {leader-lease-timeout: 50ms}\nroles: {node: {opts: {heartbeat-timeout: 100ms, election-timeout: 100ms}}}\n",
	} {
		if _, err := Parse("ok.yaml", []byte(src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
	wantFieldError(t, "node_opts: {leader-lease-timeout: 250ms, heartbeat-timeout: 200ms}\n", 1, 0, "node_opts", "raft refuses")
}

// TestNegativeClockOffset: a clock offset may go back (its field is
// signed); other durations may not.
func TestNegativeClockOffset(t *testing.T) {
	s, err := Parse("c.yaml", []byte("faults:\n  schedule: timeline\n  timeline:\n    - {fault: clock-skew, target: n1, offset: -2s, at: 1s, for: 1s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Faults.Timeline[0].Params()["offset"]; got != "-2s" {
		t.Errorf("offset %v, want -2s", got)
	}
	if _, err := Parse("c.yaml", []byte("faults:\n  schedule: timeline\n  timeline:\n    - {fault: clock-skew, target: n1, at: -1s, for: 1s}\n")); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("a negative at: %v", err)
	}
}

// TestLimits: lists past the documented limits are errors of the file, not
// gigabytes of memory (issue 10, item 6).
func TestLimits(t *testing.T) {
	many := func(n int, item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+", ", n), ", ") + "]"
	}
	cases := []struct{ name, src, field string }{
		{"bugs", "bugs: " + many(MaxBugs+1, "stale-read") + "\n", "bugs"},
		{"timeline", "faults:\n  schedule: timeline\n  timeline: " + many(MaxFaults+1, "{fault: kill, at: 1s, for: 1s}") + "\n", "faults.timeline"},
		{"mix", "faults:\n  mix: " + many(MaxMix+1, "{fault: kill}") + "\n", "faults.mix"},
		{"every", "duration: 24h\nfaults:\n  every: 100ms\n  mix: [{fault: kill}]\n", "faults.every"},
		{"every left out", "duration: 100h\nfaults:\n  mix: [{fault: kill}]\n", "faults.every"},
		{"a week and more", "duration: 200h\n", "duration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("big.yaml", []byte(c.src))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), "at most") && !strings.Contains(err.Error(), "more than ") {
				t.Errorf("err = %v, want a limit error on %s", err, c.field)
			}
		})
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(big, []byte("description: "+strings.Repeat("x", MaxFileSize)+"\n"), 0o644)
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a %d-byte file: %v", MaxFileSize, err)
	}
}

// TestCheckOfARunCutShort: a history whose run never reached the end of
// its final reads (killed hard, no results.json), or whose last line was
// cut mid-write, is not judged valid (issue 10, item 3).
func TestCheckOfARunCutShort(t *testing.T) {
	dir := t.TempDir()
	lines := []string{
		`{"type":"header","faultline":"dev","scenario":"x","seed":1,"start":"2026-12-01T00:00:00Z"}`,
		`{"type":"info","process":"observer","time":1,"f":"phase","value":"main","phase":"start"}`,
		`{"type":"invoke","process":0,"time":2,"f":"put","key":"k","value":1}`,
		`{"type":"ok","process":0,"time":3,"f":"put","key":"k","value":1,"node":"n1"}`,
		`{"type":"invoke","process":1,"time":4,"f":"get","key":"k"}`,
		`{"type":"ok","process":1,"time":5,"f":"get","key":"k","value":1,"node":"n1"}`,
	}
	unfinished := filepath.Join(dir, "unfinished.jsonl")
	os.WriteFile(unfinished, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	cut := filepath.Join(dir, "cut.jsonl")
	os.WriteFile(cut, []byte(strings.Join(append(lines[:1:1], lines[2:]...), "\n")+"\n"+`{"type":"invoke","proc`), 0o644)
	for _, p := range []string{unfinished, cut} {
		r, err := Check(context.Background(), p, CheckOptions{NoArtifacts: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.ExitCode != 4 || r.Stopped == nil || !strings.Contains(r.ExitReason, "cut") {
			t.Errorf("%s: exit %d (%s), want 4 saying the run was cut short", filepath.Base(p), r.ExitCode, r.ExitReason)
		}
	}
}
