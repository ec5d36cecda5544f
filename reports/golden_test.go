package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faultline/faultline/checkers"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenResults are fixed results covering every mapping: valid,
// invalid, threshold, unknown, an invalid run, anomalies, and strings that
// need escaping in XML and Markdown.
func goldenResults() map[string]*Results {
	return map[string]*Results{
		"valid": {
			Faultline: "1.2.3", Scenario: "raft-basic", Seed: 7, Verdict: "valid", ExitCode: 0, ExitReason: "every checker valid",
			Runtime: "local", System: "raftkv", Nodes: []string{"n1", "n2", "n3"},
			Start: "2026-01-02T03:04:05.123Z", End: "2026-01-02T03:04:15.623Z", RunDir: "/runs/raft-basic/20260102T030405Z",
			Checkers: []checkers.Result{
				{Name: "linearizability", Verdict: checkers.Valid, Summary: "linearizable: 2508 ops on 8 keys", Elapsed: 20 * time.Millisecond},
				{Name: "lost-writes", Verdict: checkers.NotApplicable, Summary: "no final reads: the history has no final-reads phase"},
				{Name: "stats", Verdict: checkers.NotApplicable, Figures: true, Summary: "2508 ops at 357.4 ops/s", Elapsed: time.Millisecond},
			},
			Faults: []Fault{},
			Stats: Stats{Ops: 2500, OK: 2313, Fail: 13, Mismatch: 174, TargetRate: 500, AchievedRate: 500, Duration: 5,
				Latency: Percentiles{P50: 2057, P90: 2849, P99: 5655, P999: 12351, Max: 14623, Mean: 2193}},
		},
		"failing": {
			Faultline: "1.2.3", Scenario: "raft-stale <reads>", Seed: 99, Verdict: "invalid", ExitCode: 1, ExitReason: "violation found by linearizability",
			Runtime: "local", System: "raftkv", Nodes: []string{"n1", "n2", "n3"}, Bugs: []string{"stale-read"},
			Start: "2026-01-02T03:04:05Z", End: "2026-01-02T03:05:05Z", RunDir: "/runs/x",
			RunInvalid: "only 3 operations succeeded",
			Checkers: []checkers.Result{
				{Name: "linearizability", Verdict: checkers.Invalid, Summary: "not linearizable: key k3 | read a stale value",
					Explanation: "A read returned a value that a later write had already replaced.\nLook at key k3 around 4.2s & the partition.",
					Anomalies: []checkers.Anomaly{{Kind: "stale-read", Key: "k3", Time: 4_200_000_000, Node: "n2", Refs: []string{"history.jsonl:229", "history.jsonl:228"},
						Message: `read "<v1>" after write "v2" completed`}},
					AnomalyCount: 364,
					Elapsed:      1500 * time.Millisecond},
				{Name: "latency", Verdict: checkers.Invalid, Threshold: true, Summary: "p99 250ms > limit 100ms", Explanation: "The p99 latency exceeded the scenario's limit."},
				{Name: "convergence", Verdict: checkers.Unknown, Summary: "budget ran out", Explanation: "The checker ran out of time; raise checkers.convergence.budget.\x01"},
			},
			Faults:    []Fault{{Name: "partition", Targets: []string{"n1"}, Start: 1e9, End: 3e9}, {Name: "partition", Start: 5e9, End: 6e9}, {Name: "kill", Targets: []string{"n2"}, Start: 7e9}},
			Anomalies: &AnomalyLog{File: AnomaliesFile, Count: 364, Sample: AnomalySample},
			Stats:     Stats{Ops: 100, OK: 3, Fail: 90, Info: 7, Duration: 60, Latency: Percentiles{P50: 1e6, P99: 2.5e5, P999: 3e6, Max: 3e6}},
		},
		"stopped": {
			Faultline: "1.2.3", Scenario: "raft-basic", Seed: 5, Verdict: "unknown", ExitCode: 70,
			ExitReason: "infrastructure error during the warmup phase: node n1 did not serve a read within 10s",
			Runtime:    "local", System: "raftkv", Nodes: []string{"n1", "n2", "n3"},
			Start: "2026-01-02T03:04:05Z", End: "2026-01-02T03:04:16Z", RunDir: "/runs/y",
			Stopped: &Stopped{Phase: "warmup", ExitCode: 70, Reason: "node n1 did not serve a read within 10s (node logs: /runs/y/nodes)"},
			Faults:  []Fault{},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (if the change is intended, run go test ./reports -run Golden -update):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestJUnitGolden(t *testing.T) {
	for name, r := range goldenResults() {
		t.Run(name, func(t *testing.T) {
			b, err := JUnit(r)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".junit.xml", b)
		})
	}
}

func TestStepSummaryGolden(t *testing.T) {
	for name, r := range goldenResults() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := StepSummary(&b, r, ""); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".summary.md", b.Bytes())
		})
	}
}
