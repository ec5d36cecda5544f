package history_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/scenario"
)

// Each EDN fixture gets the verdicts of its JSON Lines twin from faultline
// check (the default checkers of a bare history): the same overall verdict
// and exit code, the same verdict from every checker, and, where a checker
// finds a violation, the same anomalies naming the same lines (each in its
// own file). The fixtures written for the reader cover a single register
// and independent keys, valid and not; the rebuilt Jepsen originals of
// checkers/testdata/foreign-*.jsonl add a lost write and repeated values.
func TestEDNVerdictsAsJSONLinesTwin(t *testing.T) {
	want := map[string]string{ // fixture: overall verdict
		"register-valid":             "valid",
		"register-stale-read":        "invalid",
		"independent-valid":          "valid",
		"independent-stale-cas":      "invalid",
		"foreign-read-write":         "valid",
		"foreign-read-write-invalid": "invalid",
		"foreign-repeated-values":    "valid",
	}
	for name, verdict := range want {
		t.Run(name, func(t *testing.T) {
			edn := filepath.Join("testdata", "edn", name+".edn")
			jsonl := strings.TrimSuffix(edn, ".edn") + ".jsonl"
			if _, err := os.Stat(jsonl); err != nil {
				jsonl = filepath.Join("..", "checkers", "testdata", name+".jsonl")
			}
			check := func(path string, f history.Format) (string, []byte) {
				t.Helper()
				r, err := scenario.Check(context.Background(), path, scenario.CheckOptions{NoArtifacts: true, Format: f})
				if err != nil {
					t.Fatalf("check %s: %v", path, err)
				}
				if r.Verdict != verdict {
					t.Errorf("check %s: verdict %s (exit %d: %s), want %s", path, r.Verdict, r.ExitCode, r.ExitReason, verdict)
				}
				for _, c := range r.Checkers {
					t.Logf("%s: %s %s: %s", filepath.Base(path), c.Name, c.Verdict, c.Summary)
				}
				// What must agree: verdicts, exit code and reason, and each
				// checker's verdict, summary and anomalies (their kind,
				// key, message and refs), the file's name set aside.
				type anomaly struct {
					Kind, Key, Message string
					KeyIsNumber        bool
					Refs               []string
				}
				type judged struct {
					Name, Verdict, Summary string
					Anomalies              []anomaly
				}
				out := struct {
					Verdict, Reason string
					Exit            int
					Checkers        []judged
				}{r.Verdict, r.ExitReason, r.ExitCode, nil}
				for _, c := range r.Checkers {
					j := judged{Name: c.Name, Verdict: string(c.Verdict), Summary: c.Summary}
					for _, a := range c.Anomalies {
						j.Anomalies = append(j.Anomalies, anomaly{a.Kind, a.Key, a.Message, a.KeyIsNumber, a.Refs})
					}
					out.Checkers = append(out.Checkers, j)
				}
				b, err := json.MarshalIndent(out, "", " ")
				if err != nil {
					t.Fatal(err)
				}
				return r.Scenario, []byte(strings.ReplaceAll(string(b), filepath.Base(path), "FILE"))
			}
			nameE, e := check(edn, history.FormatAuto)
			_, e2 := check(edn, history.FormatEDN)
			nameJ, j := check(jsonl, history.FormatJSONL)
			if string(e) != string(j) || string(e2) != string(e) {
				t.Errorf("the EDN history and its JSON Lines twin are judged differently:\n--- %s\n%s\n--- %s\n%s", nameE, e, nameJ, j)
			}
			if verdict == "invalid" && !strings.Contains(string(e), "FILE:") {
				t.Errorf("no anomaly names a line of the file:\n%s", e)
			}
			if !strings.HasSuffix(nameE, ".edn") {
				t.Errorf("the results name the history %q, want the EDN file's name", nameE)
			}
		})
	}
	// The checker that decides them is there to decide: the stale reads
	// are linearizability's.
	r, err := scenario.Check(context.Background(), filepath.Join("testdata", "edn", "independent-stale-cas.edn"), scenario.CheckOptions{NoArtifacts: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Checkers {
		if c.Name == "linearizability" {
			if c.Verdict != checkers.Invalid || len(c.Anomalies) == 0 || !strings.Contains(strings.Join(c.Anomalies[0].Refs, " "), "independent-stale-cas.edn:11") {
				t.Errorf("linearizability: %s, anomalies %+v; want the stale read of key 2 at independent-stale-cas.edn:11", c.Verdict, c.Anomalies)
			}
			return
		}
	}
	t.Error("no linearizability checker among the default checkers of a bare history")
}

// A run directory's history is JSON Lines: --format edn is refused for it,
// with exit 64.
func TestCheckEDNRefusesRunDir(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "edn", "register-valid.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = scenario.Check(context.Background(), dir, scenario.CheckOptions{NoArtifacts: true, Format: history.FormatEDN})
	if err == nil || !strings.Contains(err.Error(), "--format edn") || !strings.Contains(err.Error(), "give the EDN history file itself") {
		t.Errorf("check --format edn RUN_DIR: %v", err)
	}
	if r, err := scenario.Check(context.Background(), dir, scenario.CheckOptions{NoArtifacts: true}); err != nil || r.Verdict != "valid" {
		t.Errorf("check RUN_DIR (auto): %v", err)
	}
}
