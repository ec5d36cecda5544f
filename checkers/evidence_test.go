package checkers

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// lineAt returns line n (1-based) of the file a reference names, as
// `sed -n 'Np'` prints it.
func lineAt(t *testing.T, ref string) string {
	t.Helper()
	i := strings.LastIndexByte(ref, ':')
	n, err := strconv.Atoi(ref[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("reference %q is not FILE:LINE", ref)
	}
	f, err := os.Open(ref[:i])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for l := 1; sc.Scan(); l++ {
		if l == n {
			return sc.Text()
		}
	}
	t.Fatalf("%s: no line %d", ref[:i], n)
	return ""
}

// The stale read's reference is its line in the file (a blank line above
// it included), the same in the anomaly, the explanation and
// linearizability.html; the explanation says stale read and names the node
// that served it.
func TestStaleReadEvidenceNamesTheLine(t *testing.T) {
	in := loadFixture(t, "evidence-stale-read.jsonl")
	in.OutDir = t.TempDir()
	r := Linearizability{}.Check(context.Background(), in)
	if r.Verdict != Invalid || r.AnomalyCount != 1 || len(r.Anomalies) != 1 {
		t.Fatalf("got %s, %d anomalies (count %d): %s", r.Verdict, len(r.Anomalies), r.AnomalyCount, r.Summary)
	}
	a := r.Anomalies[0]
	const want = "testdata/evidence-stale-read.jsonl:14"
	if a.Kind != "stale-read" || a.Node != "n3" || len(a.Refs) == 0 || a.Refs[0] != want {
		t.Fatalf("anomaly %+v, want a stale read by n3 at %s", a, want)
	}
	if got := lineAt(t, a.Refs[0]); got != `{"type":"ok","process":2,"time":6000,"f":"get","key":"x","value":"x1","node":"n3"}` {
		t.Errorf("%s is %s, not the stale read", a.Refs[0], got)
	}
	// Every reference is a line of the evidence: the read's invoke, the
	// write it missed, the write it saw, the later read.
	for _, ref := range a.Refs {
		if l := lineAt(t, ref); !strings.Contains(l, `"key":"x"`) {
			t.Errorf("%s is %s, not an operation on x", ref, l)
		}
	}
	for _, m := range []string{want + ", answered by n3", "stale read", "a later read shows that write", "evidence-stale-read.jsonl:10, answered by n1", "evidence-stale-read.jsonl:17, answered by n3"} {
		if !strings.Contains(r.Explanation, m) {
			t.Errorf("explanation lacks %q:\n%s", m, r.Explanation)
		}
	}
	for _, bad := range []string{"follower", "leader", "event ", "lost write"} {
		if strings.Contains(r.Explanation, bad) {
			t.Errorf("explanation says %q, which the history does not show:\n%s", bad, r.Explanation)
		}
	}
	html, err := os.ReadFile(filepath.Join(in.OutDir, "linearizability.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), want+" (invoked at testdata/evidence-stale-read.jsonl:11)") {
		t.Errorf("linearizability.html does not name %s for the read", want)
	}
}

// Every lost write is kept and counted; each names the line of the write,
// the node that acknowledged it and the final read that missed it with the
// node that answered. A final read that a later final read corrects is a
// stale read, not a loss.
func TestLostWritesEvidence(t *testing.T) {
	in := loadFixture(t, "evidence-lost-writes.jsonl")
	r := LostWrites{}.Check(context.Background(), in)
	if r.Verdict != Invalid {
		t.Fatalf("got %s: %s", r.Verdict, r.Summary)
	}
	kinds := map[string]int{}
	for _, a := range r.Anomalies {
		kinds[a.Kind]++
	}
	if r.AnomalyCount != 121 || len(r.Anomalies) != 121 || kinds["lost-write"] != 120 || kinds["stale-read"] != 1 {
		t.Fatalf("%d anomalies (count %d): %v", len(r.Anomalies), r.AnomalyCount, kinds)
	}
	if r.Details["lost"] != 120 || r.Details["stale_final_reads"] != 1 || r.Summary != "120 of 282 acknowledged writes lost, 1 stale final read" {
		t.Errorf("summary %q, details %v", r.Summary, r.Details)
	}
	for _, m := range []string{"120 lost writes", "acknowledged by n1 (120)", "answered by n2 (120)", "1 fault before the final reads", "See also linearizability", "1 stale final read", "all 121 are listed"} {
		if !strings.Contains(r.Explanation, m) {
			t.Errorf("explanation lacks %q:\n%s", m, r.Explanation)
		}
	}
	for i, a := range r.Anomalies {
		if a.Kind != "lost-write" {
			continue
		}
		key := "k" + strconv.Itoa(1000 + i)[1:]
		write := lineAt(t, a.Refs[0])
		if a.Key != key || a.Node != "n1" || len(a.Refs) != 4 ||
			!strings.Contains(write, `"type":"ok"`) || !strings.Contains(write, `"value":"`+key+`-w2"`) {
			t.Fatalf("anomaly %d: %+v; %s is %s", i, a, a.Refs[0], write)
		}
		if read := lineAt(t, a.Refs[2]); !strings.Contains(read, `"f":"get"`) || !strings.Contains(read, `"value":"`+key+`-w1","node":"n2"`) {
			t.Fatalf("anomaly %d: %s is %s, not the final read", i, a.Refs[2], read)
		}
		if !strings.Contains(a.Message, "lost write") || !strings.Contains(a.Message, "acknowledged by n1 at "+a.Refs[0]) ||
			!strings.Contains(a.Message, a.Refs[2]+" (answered by n2") {
			t.Fatalf("anomaly %d: %s", i, a.Message)
		}
	}
	stale := r.Anomalies[120]
	if stale.Kind != "stale-read" || stale.Key != "k140" || stale.Node != "n2" || !strings.Contains(lineAt(t, stale.Refs[0]), `"value":"k140-w1","node":"n2"`) {
		t.Errorf("stale final read: %+v", stale)
	}

	// Linearizability finds the same reads: a lost write per key, and the
	// corrected one a stale read; each explained, with the node.
	lin := Linearizability{}.Check(context.Background(), in)
	kinds = map[string]int{}
	for _, a := range lin.Anomalies {
		kinds[a.Kind]++
		if a.Node != "n2" || len(a.Refs) == 0 || !strings.Contains(lineAt(t, a.Refs[0]), `"node":"n2"`) {
			t.Errorf("linearizability anomaly %+v", a)
		}
	}
	if lin.Verdict != Invalid || lin.AnomalyCount != 121 || kinds["lost-write"] != 120 || kinds["stale-read"] != 1 {
		t.Fatalf("linearizability: %s, count %d, %v", lin.Verdict, lin.AnomalyCount, kinds)
	}
	if !strings.Contains(lin.Explanation, "See also lost-writes") || !strings.Contains(lin.Summary, "120 lost writes, 1 stale read") {
		t.Errorf("linearizability: %s\n%s", lin.Summary, lin.Explanation)
	}
}

// A linearizable history from another tool (no header, read/write,
// integer keys, values written more than once) is valid; lost-writes does
// not apply (no final reads, values repeat) and does not make the overall
// verdict unknown.
func TestForeignRepeatedValues(t *testing.T) {
	in := loadFixture(t, "foreign-repeated-values.jsonl")
	rs := Run(context.Background(), in, Linearizability{}, LostWrites{}, Stats{})
	if rs[0].Verdict != Valid {
		t.Fatalf("linearizability: %s %s\n%s", rs[0].Verdict, rs[0].Summary, rs[0].Explanation)
	}
	if rs[1].Verdict != NotApplicable || !strings.Contains(rs[1].Summary, "no final-reads phase") || !strings.Contains(rs[1].Summary, "values repeat") {
		t.Fatalf("lost-writes: %s %s", rs[1].Verdict, rs[1].Summary)
	}
	if rs[2].Verdict != NotApplicable || !rs[2].Figures {
		t.Fatalf("stats: %s %s (figures %v)", rs[2].Verdict, rs[2].Summary, rs[2].Figures)
	}
	if got := Combine(rs).Verdict; got != Valid {
		t.Fatalf("overall %s, want valid", got)
	}
	// Repeated values do not stop the checker from deciding: the last read
	// of key 1 returning the value written before the last write is a
	// violation.
	evs := append([]history.Event(nil), in.Events[:14]...)
	evs[13].Value = []byte("1")
	if r := (Linearizability{}).Check(context.Background(), Input{Events: evs}); r.Verdict != Invalid {
		t.Fatalf("corrupted: %s %s", r.Verdict, r.Summary)
	}
}

// The stats checker counts definite rejections, cas mismatches (a normal
// answer) and unknown outcomes apart, and reports figures, not a verdict.
func TestStatsKeepsFailuresApart(t *testing.T) {
	r := Stats{}.Check(context.Background(), loadFixture(t, "stats-outcomes.jsonl"))
	d := r.Details
	if r.Verdict != NotApplicable || d["ops"] != int64(11) || d["ok"] != int64(2) || d["mismatch"] != int64(3) ||
		d["fail"] != int64(3) || d["info"] != int64(2) || d["pending"] != int64(1) {
		t.Fatalf("got %s %v", r.Verdict, d)
	}
	cas := d["by_f"].(map[string]any)["cas"].(map[string]any)
	if cas["ops"] != int64(5) || cas["mismatch"] != int64(3) || cas["fail"] != int64(1) || cas["ok"] != int64(1) {
		t.Errorf("by_f[cas] = %v", cas)
	}
	for _, m := range []string{"figures, not a verdict", "11 ops", "2 ok", "3 cas mismatches", "3 definite rejections (fail)", "2 unknown outcomes (info)", "1 pending"} {
		if !strings.Contains(r.Summary, m) {
			t.Errorf("summary lacks %q: %s", m, r.Summary)
		}
	}
}

// Keys that are not UTF-8 are refused when the history is read, with the
// line; the integer key 1 and the string key "1" are different registers.
func TestDistinctKeys(t *testing.T) {
	_, _, err := history.ReadFile("testdata/keys-invalid-utf8.jsonl")
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/keys-invalid-utf8.jsonl:3: ") || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("err = %v, want one naming line 3 and UTF-8", err)
	}

	in := loadFixture(t, "keys-int-and-string.jsonl")
	lin := Linearizability{}.Check(context.Background(), in)
	if lin.Verdict != Valid || lin.Details["keys"] != 2 {
		t.Fatalf("linearizability: %s %s %v", lin.Verdict, lin.Summary, lin.Details)
	}
	if pk := lin.Details["per_key"].(map[string]string); pk["1"] != "valid" || pk["1 (number)"] != "valid" {
		t.Errorf("per_key %v", pk)
	}
	lw := LostWrites{}.Check(context.Background(), in)
	if lw.Verdict != Valid || lw.Details["keys_checked"] != 2 {
		t.Fatalf("lost-writes: %s %s %v", lw.Verdict, lw.Summary, lw.Details)
	}
	// Merged into one key (as they were), the same history is a false
	// violation: this is what the key identity prevents.
	merged := in
	merged.Events = append([]history.Event(nil), in.Events...)
	for i := range merged.Events {
		merged.Events[i].KeyIsNumber = false
	}
	if r := (Linearizability{}).Check(context.Background(), merged); r.Verdict != Invalid {
		t.Fatalf("merged keys: linearizability %s", r.Verdict)
	}
	if r := (LostWrites{}).Check(context.Background(), merged); r.Verdict != Invalid {
		t.Fatalf("merged keys: lost-writes %s", r.Verdict)
	}
	// An anomaly on a numeric key says so.
	bad := append([]history.Event(nil), in.Events...)
	bad[6].Value = []byte(`"str"`)
	r := Linearizability{}.Check(context.Background(), Input{Events: bad})
	if r.Verdict != Invalid || r.Anomalies[0].Key != "1" || !r.Anomalies[0].KeyIsNumber || !strings.HasPrefix(r.Anomalies[0].Message, "Key 1:") {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
}

// Not applicable never turns the overall verdict unknown or invalid.
func TestThresholdsNotApplicable(t *testing.T) {
	for name, c := range map[string]struct {
		th   Thresholds
		want Verdict
	}{
		"no limits":                {Thresholds{}, NotApplicable},
		"no measurements":          {Thresholds{Limits: map[string]time.Duration{"p99": time.Second}}, NotApplicable},
		"closed loop rate":         {Thresholds{MinRate: 0.9}, NotApplicable},
		"met":                      {Thresholds{Limits: map[string]time.Duration{"p99": time.Second}, Observed: map[string]float64{"p99": 10}}, Valid},
		"missed":                   {Thresholds{Limits: map[string]time.Duration{"p99": time.Millisecond}, Observed: map[string]float64{"p99": 5000}}, Invalid},
		"rate judged, latency not": {Thresholds{Limits: map[string]time.Duration{"p99": time.Second}, MinRate: 0.5, TargetRate: 100, AchievedRate: 90}, Valid},
	} {
		r := c.th.Check(context.Background(), Input{})
		if r.Verdict != c.want || r.Summary == "" {
			t.Errorf("%s: got %s %q, want %s", name, r.Verdict, r.Summary, c.want)
		}
		if c.want == NotApplicable && !strings.HasPrefix(r.Summary, "not applicable: ") {
			t.Errorf("%s: summary %q does not give the reason", name, r.Summary)
		}
	}
}

// A read of a value that acknowledged writes had replaced is a stale read
// when a later read returns the value of a write it missed, and a lost
// write when none does, even if later reads return values of writes made
// afterwards (after a rollback, new writes build on the old state).
func TestLostWriteOrStaleRead(t *testing.T) {
	base := []string{
		`{"type":"invoke","process":0,"time":10,"f":"put","key":"k","value":1}`,
		`{"type":"ok","process":0,"time":20,"f":"put","key":"k","value":1,"node":"n1"}`,
		`{"type":"invoke","process":0,"time":30,"f":"put","key":"k","value":2}`,
		`{"type":"ok","process":0,"time":40,"f":"put","key":"k","value":2,"node":"n1"}`,
		`{"type":"invoke","process":0,"time":50,"f":"put","key":"k","value":3}`,
		`{"type":"ok","process":0,"time":60,"f":"put","key":"k","value":3,"node":"n1"}`,
		`{"type":"invoke","process":1,"time":70,"f":"get","key":"k"}`,
		`{"type":"ok","process":1,"time":80,"f":"get","key":"k","value":1,"node":"n2"}`,
	}
	for name, c := range map[string]struct {
		tail []string
		kind string
		say  string
	}{
		"a later read of the last missed write": {[]string{
			`{"type":"invoke","process":1,"time":90,"f":"get","key":"k"}`,
			`{"type":"ok","process":1,"time":100,"f":"get","key":"k","value":3,"node":"n3"}`,
		}, "stale-read", "a later read shows that write: process 1's get(k) → 3 (90ns–100ns, history.jsonl:10, answered by n3)"},
		"a later read of an earlier missed write": {[]string{
			`{"type":"invoke","process":1,"time":90,"f":"get","key":"k"}`,
			`{"type":"ok","process":1,"time":100,"f":"get","key":"k","value":2,"node":"n3"}`,
		}, "stale-read", "another write the read missed"},
		// The node that lags returns the old state again, then a newer
		// state: a stale read; whether the missed writes survived, the
		// history does not show (a replica that lags does this).
		"the same node again, then only newer writes": {[]string{
			`{"type":"invoke","process":1,"time":90,"f":"get","key":"k"}`,
			`{"type":"ok","process":1,"time":100,"f":"get","key":"k","value":1,"node":"n2"}`,
			`{"type":"invoke","process":0,"time":110,"f":"put","key":"k","value":4}`,
			`{"type":"ok","process":0,"time":120,"f":"put","key":"k","value":4,"node":"n2"}`,
			`{"type":"invoke","process":1,"time":130,"f":"get","key":"k"}`,
			`{"type":"ok","process":1,"time":140,"f":"get","key":"k","value":4,"node":"n2"}`,
		}, "stale-read", "later observations show newer states, written after the writes the read missed (the first: process 1's get(k) → 4 (130ns–140ns, history.jsonl:14, answered by n2)); only the node that answered the read returned the old state again (the first time: process 1's get(k) → 1 (90ns–100ns, history.jsonl:10, answered by n2)): whether the writes the read missed survived, the history does not show"},
		// Another node serves the old state again, then newer writes build
		// on it: what the system served does not include the missed
		// writes (a rollback does this).
		"another node serves the old state again": {[]string{
			`{"type":"invoke","process":1,"time":90,"f":"get","key":"k"}`,
			`{"type":"ok","process":1,"time":100,"f":"get","key":"k","value":1,"node":"n3"}`,
			`{"type":"invoke","process":0,"time":110,"f":"put","key":"k","value":4}`,
			`{"type":"ok","process":0,"time":120,"f":"put","key":"k","value":4,"node":"n3"}`,
		}, "lost-write", "the only later observation of key \"k\" does not return the value of any of the 2 acknowledged writes the read missed: process 1's get(k) → 1 (90ns–100ns, history.jsonl:10, answered by n3)"},
		"no later read": {nil, "lost-write", "no later read of key \"k\" returns the value of any of the 2 acknowledged writes the read missed (this is the last read of the key in the history)"},
	} {
		_, evs, err := history.ReadAll(strings.NewReader(strings.Join(append(append([]string(nil), base...), c.tail...), "\n")), "h")
		if err != nil {
			t.Fatal(err)
		}
		r := Linearizability{}.Check(context.Background(), Input{Events: evs})
		if r.Verdict != Invalid || r.Anomalies[0].Kind != c.kind || r.Anomalies[0].Node != "n2" || r.Anomalies[0].Refs[0] != "history.jsonl:8" {
			t.Errorf("%s: got %s %+v", name, r.Verdict, r.Anomalies)
			continue
		}
		if !strings.Contains(r.Anomalies[0].Message, c.say) {
			t.Errorf("%s: message lacks %q:\n%s", name, c.say, r.Anomalies[0].Message)
		}
	}
}

// A successful cas is an observation too: one that compared against a
// value the stale read missed shows that state was not lost, so the read
// is stale, not a lost write (serializable reads of etcd look like this:
// the missed write is overwritten by cas operations, never read back).
func TestLaterCasShowsAStaleRead(t *testing.T) {
	in := loadFixture(t, "evidence-stale-read-cas.jsonl")
	r := Linearizability{}.Check(context.Background(), in)
	if r.Verdict != Invalid || len(r.Anomalies) != 1 {
		t.Fatalf("got %s, %d anomalies: %s", r.Verdict, len(r.Anomalies), r.Summary)
	}
	if a := r.Anomalies[0]; a.Kind != "stale-read" || a.Node != "n3" {
		t.Errorf("anomaly %s by %s, want a stale read by n3", a.Kind, a.Node)
	}
	for _, m := range []string{"a later cas found the register holding \"x2\"", "evidence-stale-read-cas.jsonl:17, answered by n1"} {
		if !strings.Contains(r.Explanation, m) {
			t.Errorf("explanation lacks %q:\n%s", m, r.Explanation)
		}
	}
}
