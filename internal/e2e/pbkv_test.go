package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/reports"
)

// dataNumber reads a number from an anomaly's Data (checkers.DataInt).
func dataNumber(t *testing.T, a checkers.Anomaly, key string) uint64 {
	t.Helper()
	n, ok := checkers.DataInt(a.Data[key])
	if !ok {
		t.Fatalf("anomaly %s: data %q is %T %v, want a number", a.Kind, key, a.Data[key], a.Data[key])
	}
	return uint64(n)
}

// lineTerm returns the "term" of a history line (an ok completion or a
// status event's value), 0 if it has none.
func lineTerm(line map[string]any) uint64 {
	if v, ok := line["term"].(float64); ok {
		return uint64(v)
	}
	if m, ok := line["value"].(map[string]any); ok {
		if v, ok := m["term"].(float64); ok {
			return uint64(v)
		}
	}
	return 0
}

// checkPBSplitBrain checks TestExamples' run of pb-split-brain (pbkv with
// --bug no-fencing, the primary cut off from its backups while its clients
// still reach it), caught by the split-brain checker: the old primary
// acknowledges operations under its epoch after a backup established the
// next one. The evidence names two distinct nodes and two epochs, and the
// history lines it cites say the same.
func checkPBSplitBrain(t *testing.T, dir string) {
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	sb := checkerResult(t, res, "split-brain")
	if sb.Verdict != checkers.Invalid {
		t.Fatalf("split-brain %s, want invalid: %s", sb.Verdict, sb.Summary)
	}
	var first *checkers.Anomaly
	for _, a := range sb.Anomalies {
		if a.Kind != "deposed-leader" {
			continue
		}
		if first == nil {
			first = &a
		}
		old, newer := dataNumber(t, a, "term"), dataNumber(t, a, "higher_term")
		by, _ := a.Data["established_by"].(string)
		if a.Node == "" || by == "" || a.Node == by || newer <= old {
			t.Errorf("deposed-leader names node %q in epoch %d and %q in epoch %d: want two distinct nodes, the second in a higher epoch\n%s", a.Node, old, by, newer, a.Message)
			continue
		}
		for _, s := range []string{a.Node, by, fmt.Sprintf("term %d", old), fmt.Sprintf("term %d", newer)} {
			if !strings.Contains(a.Message, s) || !strings.Contains(sb.Explanation, s) {
				t.Errorf("the anomaly or the explanation does not name %q:\n%s\n%s", s, a.Message, sb.Explanation)
			}
		}
		if len(a.Refs) < 3 {
			t.Fatalf("deposed-leader refs %v: want the acknowledgement, its invocation and the newer epoch's evidence", a.Refs)
		}
		// The acknowledgement: answered by the old primary under the old epoch.
		if ack := historyLine(t, dir, a.Refs[0]); ack["type"] != "ok" || ack["node"] != a.Node || lineTerm(ack) != old {
			t.Errorf("%s is %v: want an ok answered by %s under epoch %d", a.Refs[0], ack, a.Node, old)
		}
		// The newer epoch: established by the other node (a status poll
		// of it as primary, or an operation it acknowledged).
		est := historyLine(t, dir, a.Refs[len(a.Refs)-1])
		if est["node"] != by || lineTerm(est) != newer {
			t.Errorf("%s is %v: want %s in epoch %d", a.Refs[len(a.Refs)-1], est, by, newer)
		}
		t.Logf("split brain: %s", a.Message)
	}
	if first == nil {
		t.Fatalf("split-brain found no deposed primary still serving:\n%s", sb.Explanation)
	}
	// The same history line in anomalies.jsonl and in report.html.
	ref, inLog := first.Refs[0], false
	for _, l := range readAnomalies(t, dir) {
		inLog = inLog || (l.Checker == "split-brain" && l.Kind == first.Kind && len(l.Refs) > 0 && l.Refs[0] == ref)
	}
	if !inLog {
		t.Errorf("anomalies.jsonl has no split-brain %s anomaly at %s", first.Kind, ref)
	}
	page := readText(t, filepath.Join(dir, "report.html"))
	card := ""
	if i := strings.Index(page, `data-checker="split-brain"`); i >= 0 {
		card = page[i:]
		card = card[:max(strings.Index(card, "</article>"), 0)]
	}
	if !strings.Contains(card, `<code class="ref">`+ref+`</code>`) {
		t.Errorf("report.html's split-brain card does not show %s", ref)
	}
}

// checkPBFenced checks TestExamples' run of pb-fenced (pbkv with fencing,
// the same leader partitions plus kills and pauses): valid, and not
// vacuously: faults were injected, the primary changed, and split-brain
// judged terms from status polls and acknowledgements.
func checkPBFenced(t *testing.T, dir string) {
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"linearizability", "lost-writes", "split-brain"} {
		if c := checkerResult(t, res, name); c.Verdict != checkers.Valid {
			t.Errorf("%s: %s, want valid: %s", name, c.Verdict, c.Summary)
		}
	}
	if len(res.Faults) == 0 {
		t.Fatal("no fault was injected")
	}
	sb := checkerResult(t, res, "split-brain")
	num := func(k string) float64 {
		v, _ := sb.Details[k].(float64)
		return v
	}
	if num("status_events") == 0 || num("acks_with_term") == 0 || num("terms_led") < 2 {
		t.Errorf("split-brain details %v: want status events and acknowledgements with epochs, and at least two epochs with a primary (a failover)", sb.Details)
	}
}
