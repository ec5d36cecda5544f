package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// loadFixture reads testdata/NAME; references (Input.Ref) name that path,
// so that a test can read the line an anomaly names.
func loadFixture(t testing.TB, name string) Input {
	t.Helper()
	path := filepath.Join("testdata", name)
	h, evs, err := history.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Header: h, Events: evs, File: path}
}

func TestLinearizabilityFixtures(t *testing.T) {
	cases := []struct {
		file    string
		want    Verdict
		kind    string   // anomaly kind expected for invalid ones
		mention []string // text the explanation must contain
	}{
		{"valid-register.jsonl", Valid, "", nil},
		{"stale-read.jsonl", Invalid, "stale-read", []string{`"x"`, "overwritten", "process 2", "get(x) → 1", "put(x, 2)", "testdata/stale-read.jsonl:8", "answered by n1"}},
		{"info-write-took-effect.jsonl", Valid, "", nil},
		{"info-write-not-taken.jsonl", Valid, "", nil},
		{"cas-mismatch-invalid.jsonl", Invalid, "mismatch-contradicted", []string{"mismatch", "cas(x, 1→2)", "put(x, 1)"}},
		{"cas-mismatch-valid.jsonl", Valid, "", nil},
		{"concurrent-valid.jsonl", Valid, "", nil},
		{"foreign-read-write.jsonl", Valid, "", nil},
		// The read of an overwritten value is the key's last read: no
		// later read shows the write, so it is lost (a stale read before
		// reads were told apart from lost writes).
		{"foreign-read-write-invalid.jsonl", Invalid, "lost-write", []string{"Key 1:", "no later read of key 1 returns 4", "See also lost-writes"}},
	}
	for _, c := range cases {
		for _, prune := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prune=%v", c.file, prune), func(t *testing.T) {
				in := loadFixture(t, c.file)
				r := Linearizability{disablePruning: !prune}.Check(context.Background(), in)
				if r.Verdict != c.want {
					t.Fatalf("verdict %s, want %s\nsummary: %s\nexplanation: %s", r.Verdict, c.want, r.Summary, r.Explanation)
				}
				if r.Name != "linearizability" || r.Summary == "" || r.Elapsed <= 0 {
					t.Errorf("result incomplete: %+v", r)
				}
				if c.want != Invalid {
					if len(r.Anomalies) != 0 {
						t.Errorf("anomalies on a valid history: %+v", r.Anomalies)
					}
					return
				}
				if len(r.Anomalies) == 0 || r.Anomalies[0].Kind != c.kind {
					t.Fatalf("anomalies %+v, want kind %s", r.Anomalies, c.kind)
				}
				if len(r.Anomalies[0].Events) == 0 {
					t.Errorf("anomaly names no events: %+v", r.Anomalies[0])
				}
				for _, m := range c.mention {
					if !strings.Contains(r.Explanation, m) {
						t.Errorf("explanation lacks %q:\n%s", m, r.Explanation)
					}
				}
				if pk := r.Details["per_key"].(map[string]string); pk[r.Anomalies[0].Key] != "invalid" {
					t.Errorf("per_key = %v", pk)
				}
			})
		}
	}
}

func TestStaleReadNamesEvents(t *testing.T) {
	in := loadFixture(t, "stale-read.jsonl")
	r := Linearizability{}.Check(context.Background(), in)
	a := r.Anomalies[0]
	// The stale read (events 5, 6), the write it saw (0, 1), the write that
	// overwrote it (3, 4).
	want := map[int]bool{0: true, 1: true, 3: true, 4: true, 5: true, 6: true}
	got := map[int]bool{}
	for _, e := range a.Events {
		got[e] = true
	}
	for e := range want {
		if !got[e] {
			t.Errorf("anomaly events %v lack %d", a.Events, e)
		}
	}
	if a.Key != "x" || a.Time != 5000 {
		t.Errorf("anomaly key %q time %d, want x 5000", a.Key, a.Time)
	}
	if !strings.Contains(r.Explanation, "stale read") {
		t.Errorf("explanation does not say what it means: %s", r.Explanation)
	}
}

func TestNeverWrittenAndFutureRead(t *testing.T) {
	mk := func(lines ...string) Input {
		_, evs, err := history.ReadAll(strings.NewReader(strings.Join(lines, "\n")), "inline")
		if err != nil {
			t.Fatal(err)
		}
		return Input{Events: evs}
	}
	never := mk(
		`{"type":"invoke","process":0,"time":1,"f":"put","key":"k","value":"a"}`,
		`{"type":"ok","process":0,"time":2,"f":"put","key":"k","value":"a"}`,
		`{"type":"invoke","process":1,"time":3,"f":"get","key":"k"}`,
		`{"type":"ok","process":1,"time":4,"f":"get","key":"k","value":"zzz"}`,
	)
	r := Linearizability{}.Check(context.Background(), never)
	if r.Verdict != Invalid || r.Anomalies[0].Kind != "never-written" {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
	future := mk(
		`{"type":"invoke","process":1,"time":1,"f":"get","key":"k"}`,
		`{"type":"ok","process":1,"time":2,"f":"get","key":"k","value":"a"}`,
		`{"type":"invoke","process":0,"time":3,"f":"put","key":"k","value":"a"}`,
		`{"type":"ok","process":0,"time":4,"f":"put","key":"k","value":"a"}`,
	)
	r = Linearizability{}.Check(context.Background(), future)
	if r.Verdict != Invalid || r.Anomalies[0].Kind != "future-read" {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
	// Stale null: a read of an absent key after a write completed, which a
	// later read shows; without the later read, the write is lost.
	staleNull := mk(
		`{"type":"invoke","process":0,"time":1,"f":"put","key":"k","value":"a"}`,
		`{"type":"ok","process":0,"time":2,"f":"put","key":"k","value":"a"}`,
		`{"type":"invoke","process":1,"time":3,"f":"get","key":"k"}`,
		`{"type":"ok","process":1,"time":4,"f":"get","key":"k","value":null}`,
		`{"type":"invoke","process":1,"time":5,"f":"get","key":"k"}`,
		`{"type":"ok","process":1,"time":6,"f":"get","key":"k","value":"a"}`,
	)
	r = Linearizability{}.Check(context.Background(), staleNull)
	if r.Verdict != Invalid || r.Anomalies[0].Kind != "stale-read" {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
	staleNull.Events = staleNull.Events[:4]
	r = Linearizability{}.Check(context.Background(), staleNull)
	if r.Verdict != Invalid || r.Anomalies[0].Kind != "lost-write" {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
}

func TestNothingToCheckIsUnknown(t *testing.T) {
	for name, evs := range map[string][]history.Event{
		"empty": nil,
		"only failed reads": {
			{Type: history.Invoke, Process: 0, Time: 1, F: "get", Key: "a"},
			{Type: history.Fail, Process: 0, Time: 2, F: "get", Key: "a"},
		},
		"other workload": {
			{Type: history.Invoke, Process: 0, Time: 1, F: "append", Key: "a", Value: json.RawMessage(`1`)},
			{Type: history.OK, Process: 0, Time: 2, F: "append", Key: "a", Value: json.RawMessage(`1`)},
		},
	} {
		r := Linearizability{}.Check(context.Background(), Input{Events: evs})
		if r.Verdict != Unknown || !(strings.Contains(r.Summary, "nothing to check") || strings.Contains(r.Summary, "cannot judge")) {
			t.Errorf("%s: got %s %q", name, r.Verdict, r.Summary)
		}
	}
}

func TestMalformedHistoryIsUnknownForLinearizability(t *testing.T) {
	in := loadFixture(t, "malformed-double-invoke.jsonl")
	r := Linearizability{}.Check(context.Background(), in)
	if r.Verdict != Unknown || !strings.Contains(r.Explanation, "malformed-double-invoke.jsonl:3") {
		t.Fatalf("got %s: %s", r.Verdict, r.Explanation)
	}
	// Invoking again after info does not make pairing ambiguous.
	in = loadFixture(t, "malformed-invoke-after-info.jsonl")
	if r := (Linearizability{}).Check(context.Background(), in); r.Verdict != Valid {
		t.Fatalf("invoke after info: got %s: %s", r.Verdict, r.Explanation)
	}
}

// hardHistory has n concurrent info writes that nothing rules out, a
// mismatch cas (so no write can be pruned) and then a read of a value never
// written. Proving it invalid means trying every subset of the writes.
func hardHistory(n int) []history.Event {
	var evs []history.Event
	t := int64(0)
	for i := 0; i < n; i++ {
		t++
		evs = append(evs, history.Event{Type: history.Invoke, Process: history.Process(i), Time: t, F: "put", Key: "k", Value: json.RawMessage(fmt.Sprint(i + 1))})
	}
	for i := 0; i < n; i++ {
		t++
		evs = append(evs, history.Event{Type: history.Info, Process: history.Process(i), Time: t, F: "put", Key: "k", Value: json.RawMessage(fmt.Sprint(i + 1)), Error: "timeout"})
	}
	cas := json.RawMessage(`{"from":"nope","to":"x"}`)
	evs = append(evs,
		history.Event{Type: history.Invoke, Process: history.Process(n), Time: t + 1, F: "cas", Key: "k", Value: cas},
		history.Event{Type: history.Fail, Process: history.Process(n), Time: t + 2, F: "cas", Key: "k", Value: cas, Error: "mismatch"},
		history.Event{Type: history.Invoke, Process: history.Process(n), Time: t + 3, F: "get", Key: "k"},
		history.Event{Type: history.OK, Process: history.Process(n), Time: t + 4, F: "get", Key: "k", Value: json.RawMessage(`999`)},
	)
	return evs
}

func TestSmallBudgetGivesUnknownNeverValid(t *testing.T) {
	// The small version is decidable and invalid.
	r := Linearizability{}.Check(context.Background(), Input{Events: hardHistory(6), Budget: time.Minute})
	if r.Verdict != Invalid {
		t.Fatalf("small hard history: got %s, want invalid: %s", r.Verdict, r.Summary)
	}
	for _, budget := range []time.Duration{time.Nanosecond, time.Microsecond, time.Millisecond} {
		r := Linearizability{}.Check(context.Background(), Input{Events: hardHistory(22), Budget: budget})
		if r.Verdict != Unknown {
			t.Fatalf("budget %s: got %s, want unknown: %s", budget, r.Verdict, r.Summary)
		}
		if !strings.Contains(r.Explanation, "budget") {
			t.Errorf("explanation does not mention the budget: %s", r.Explanation)
		}
	}
}

func TestCancelGivesUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	r := Linearizability{}.Check(ctx, Input{Events: hardHistory(24), Budget: time.Hour})
	if r.Verdict != Unknown || !strings.Contains(r.Summary, "cancelled") {
		t.Fatalf("got %s: %s", r.Verdict, r.Summary)
	}
	// A context deadline acts like a budget.
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel2()
	if r := (Linearizability{}).Check(ctx, Input{Events: hardHistory(24)}); r.Verdict != Unknown {
		t.Fatalf("deadline: got %s", r.Verdict)
	}
}

// TestAgainstBruteForce compares the checker with an exhaustive search on
// many small random histories, half of them corrupted, with and without
// pruning of unobserved info writes.
func TestAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var valid, invalid int
	for i := 0; i < 1500; i++ {
		evs := genHistory(genConfig{
			Seed: int64(i), Ops: 6 + rng.Intn(7), Keys: 1 + rng.Intn(2), Workers: 2 + rng.Intn(3),
			InfoProb: 0.15 + 0.3*rng.Float64(), FailProb: 0.1, MaxDur: 100, MaxGap: 40,
		})
		if rng.Intn(2) == 0 {
			corruptRead(evs, rng)
		}
		want := Valid
		for _, ops := range bruteOps(evs) {
			if !bruteLinearizable(ops) {
				want = Invalid
			}
		}
		if want == Valid {
			valid++
		} else {
			invalid++
		}
		// Checking a prefix may only ever find real violations.
		cut := 1 + rng.Intn(8)
		if r := (Linearizability{MaxKeyOps: cut}).Check(context.Background(), Input{Events: evs}); r.Verdict == Invalid && want != Invalid {
			var b strings.Builder
			history.WriteAll(&b, nil, evs)
			t.Fatalf("history %d: prefix of %d ops invalid, but the history is linearizable\n%s\n%s", i, cut, r.Explanation, b.String())
		}
		for _, prune := range []bool{true, false} {
			r := Linearizability{disablePruning: !prune}.Check(context.Background(), Input{Events: evs})
			if r.Verdict == Unknown && strings.Contains(r.Summary, "nothing to check") {
				continue
			}
			if r.Verdict != want {
				var b strings.Builder
				history.WriteAll(&b, nil, evs)
				t.Fatalf("history %d (prune=%v): checker says %s, brute force %s\n%s\n%s", i, prune, r.Verdict, want, r.Explanation, b.String())
			}
		}
	}
	if valid < 50 || invalid < 50 {
		t.Fatalf("generator is lopsided: %d valid, %d invalid", valid, invalid)
	}
}

func TestLargeKeyIsCheckedOnAPrefix(t *testing.T) {
	evs := genHistory(genConfig{Seed: 11, Ops: 600, Keys: 1, Workers: 4, InfoProb: 0.02, FailProb: 0.02})
	r := Linearizability{MaxKeyOps: 200}.Check(context.Background(), Input{Events: evs})
	if r.Verdict != Unknown || r.Details["keys_truncated"] != 1 || !strings.Contains(r.Explanation, "more than 200 operations") {
		t.Fatalf("got %s %v: %s", r.Verdict, r.Details, r.Explanation)
	}
	// A stale read early in the history is still found.
	stale := loadFixture(t, "stale-read.jsonl").Events
	var shifted []history.Event
	for _, ev := range stale {
		ev.Time -= 10_000 // before the generated history starts
		shifted = append(shifted, ev)
	}
	for i := range evs {
		evs[i].Key = "x"
		evs[i].Process += 10
	}
	all := append(shifted, evs...)
	r = Linearizability{MaxKeyOps: 200}.Check(context.Background(), Input{Events: all})
	if r.Verdict != Invalid || r.Anomalies[0].Kind != "stale-read" || r.Anomalies[0].Data["truncated_from"] == nil {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
}

func TestParseCAS(t *testing.T) {
	for in, want := range map[string]string{
		`{"from":null,"to":1}`:    "null 1",
		`{"to":1,"from":"a"}`:     `"a" 1`,
		`[null,3]`:                "null 3",
		`{"from":null,"to":null}`: "null null",
	} {
		f, to, err := parseCAS(json.RawMessage(in))
		if err != nil || string(f)+" "+string(to) != want {
			t.Errorf("%s -> %s %s %v, want %s", in, f, to, err, want)
		}
	}
	for _, bad := range []string{`{"from":1}`, `1`, `[1]`, `{"to":1}`} {
		if _, _, err := parseCAS(json.RawMessage(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestGeneratedHistoryValid(t *testing.T) {
	evs := genHistory(genConfig{Seed: 7, Ops: 5000, Keys: 20, Workers: 10, InfoProb: 0.02, FailProb: 0.02, Faults: 3})
	r := Linearizability{}.Check(context.Background(), Input{Events: evs})
	if r.Verdict != Valid {
		t.Fatalf("got %s: %s\n%s", r.Verdict, r.Summary, r.Explanation)
	}
	rng := rand.New(rand.NewSource(3))
	corruptRead(evs, rng)
	corruptRead(evs, rng)
	corruptRead(evs, rng)
	r = Linearizability{}.Check(context.Background(), Input{Events: evs})
	if r.Verdict != Invalid {
		t.Fatalf("corrupted: got %s: %s", r.Verdict, r.Summary)
	}
	for _, a := range r.Anomalies {
		if a.Message == "" || a.Key == "" {
			t.Errorf("anomaly lacks message or key: %+v", a)
		}
	}
}

func TestVisualization(t *testing.T) {
	for _, name := range []string{"stale-read.jsonl", "valid-register.jsonl"} {
		dir := t.TempDir()
		in := loadFixture(t, name)
		in.OutDir = dir
		r := Linearizability{}.Check(context.Background(), in)
		path := filepath.Join(dir, "linearizability.html")
		if r.Details["visualization"] != path {
			t.Fatalf("%s: details %v", name, r.Details)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		html := string(b)
		for _, want := range []string{"<html", "fault: partition", "put(x, 1)", `partition {\"nodes\":[\"n`} {
			if !strings.Contains(html, want) {
				t.Errorf("%s: visualization lacks %q", name, want)
			}
		}
		if name == "valid-register.jsonl" && !strings.Contains(html, "n1 leader (term 1)") {
			t.Errorf("visualization lacks the observer's leader annotation")
		}
		if strings.Contains(r.Explanation, "linearizability.html") != (r.Verdict == Invalid) {
			t.Errorf("%s: explanation and visualization disagree: %s", name, r.Explanation)
		}
	}
}

// The annotations of linearizability.html draw history's fault windows:
// the same pairing report.html draws.
func TestFaultAnnotationsUseHistoryWindows(t *testing.T) {
	v := func(s string) json.RawMessage { return json.RawMessage(s) }
	nem := func(tm int64, f, phase, val string) history.Event {
		e := history.Event{Type: history.Info, Process: history.Nemesis, Time: tm, F: f, Phase: phase}
		if val != "" {
			e.Value = v(val)
		}
		return e
	}
	evs := []history.Event{
		{Type: history.Invoke, Process: 0, Time: 0, F: "put", Key: "x", Value: v("1")},
		nem(1, "partition", "start", `{"nodes":["n1"]}`),
		nem(2, "partition", "start", `{"nodes":["n2"]}`),
		nem(3, "kill", "", `"n3"`),
		nem(4, "partition", "end", `{ "nodes" : ["n2"] }`),
		nem(5, "latency", "start", `{"ms":1}`),
		nem(6, "latency", "start", `{"ms":2}`),
		nem(7, "latency", "end", ""), // no id, no value: the oldest latency fault
		nem(8, "partition", "start", `{"fault":"partition-one","id":1}`),
		nem(9, "partition", "start", `{"fault":"partition-one","id":2}`),
		nem(10, "partition", "end", `{"fault":"partition-one","id":1}`),
		{Type: history.OK, Process: 0, Time: 11, F: "put", Key: "x", Value: v("1")},
	}
	h, _, err := buildRegisterHistory(Input{Events: evs}, false)
	if err != nil {
		t.Fatal(err)
	}
	anns := faultAnnotations(h)
	ws := history.FaultWindows(evs)
	if len(ws) != 7 || len(anns) < len(ws) {
		t.Fatalf("%d windows, %d annotations", len(ws), len(anns))
	}
	type span struct{ start, end int64 }
	want := []span{{1, h.end}, {2, 4}, {3, 3}, {5, 7}, {6, h.end}, {8, 10}, {9, h.end}}
	for i, w := range ws {
		got := span{anns[i].Start, anns[i].End}
		if got != want[i] || anns[i].Tag != "fault: "+w.F {
			t.Errorf("window %d (%s, events %d..%d): annotation %s %+v, want %+v", i, w.F, w.StartEvent, w.EndEvent, anns[i].Tag, got, want[i])
		}
	}
	if !strings.Contains(anns[1].Description, `{"nodes":["n2"]}`) {
		t.Errorf("annotation shows the canonical value: %q", anns[1].Description)
	}
}

// The checkers compare values as history.CanonicalJSON does (its tests
// cover the form), reading an absent value as null.
func TestCanonicalJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{{``, `null`}, {` `, `null`}, {`null`, `null`}, {`1.0`, `1`}, {`"a\u003cb"`, `"a<b"`}} {
		if got, err := canonicalJSON(json.RawMessage(c.in)); err != nil || got != c.want {
			t.Errorf("canonicalJSON(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	if _, err := canonicalJSON(json.RawMessage(`{"a":`)); err == nil {
		t.Error("invalid JSON accepted")
	}
	vt := newValueTable()
	for _, c := range []struct {
		in   string
		want int32
	}{{``, 0}, {`null`, 0}, {`1`, 1}, {`1.0`, 1}, {`"x"`, 2}, {`1e0`, 1}, {` "x" `, 2}} {
		if id, err := vt.internRaw(json.RawMessage(c.in)); err != nil || id != c.want {
			t.Errorf("internRaw(%q) = %d, %v; want %d", c.in, id, err, c.want)
		}
	}
}

// BenchmarkLinearizability checks a generated valid history of 100k
// operations on 100 keys, and reports its cost against the baseline of only
// pairing and partitioning the same history, measured in the same run
// (metric "x-baseline").
func BenchmarkLinearizability(b *testing.B) {
	evs := genHistory(genConfig{Seed: 1, Ops: 100_000, Keys: 100, Workers: 32, InfoProb: 0.01, FailProb: 0.01, Faults: 10})
	in := Input{Events: evs, Budget: 10 * time.Minute}
	var base, check time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		h, probs, err := buildRegisterHistory(in, true)
		if err != nil || len(probs) > 0 || h.ops == 0 {
			b.Fatal(err, probs)
		}
		t1 := time.Now()
		r := Linearizability{}.Check(context.Background(), in)
		check += time.Since(t1)
		base += t1.Sub(t0)
		if r.Verdict != Valid {
			b.Fatalf("got %s: %s", r.Verdict, r.Summary)
		}
	}
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N)/1e6, "baseline-ms/op")
	b.ReportMetric(float64(check.Nanoseconds())/float64(b.N)/1e6, "check-ms/op")
	b.ReportMetric(float64(check)/float64(base), "x-baseline")
}

// An info write that nothing reads can still be what a mismatch saw: it
// must not be pruned.
func TestInfoWriteExplainsMismatch(t *testing.T) {
	_, evs, err := history.ReadAll(strings.NewReader(`
{"type":"invoke","process":0,"time":1,"f":"put","key":"k","value":1}
{"type":"info","process":0,"time":2,"f":"put","key":"k","value":1,"error":"timeout"}
{"type":"invoke","process":1,"time":3,"f":"cas","key":"k","value":{"from":null,"to":2}}
{"type":"fail","process":1,"time":4,"f":"cas","key":"k","value":{"from":null,"to":2},"error":"mismatch"}
`), "inline")
	if err != nil {
		t.Fatal(err)
	}
	r := Linearizability{}.Check(context.Background(), Input{Events: evs})
	if r.Verdict != Valid || r.Details["pruned_unobserved_info_writes"] != 0 {
		t.Fatalf("got %s %v: %s", r.Verdict, r.Details, r.Explanation)
	}
	// Without the info write the mismatch is impossible.
	r = Linearizability{}.Check(context.Background(), Input{Events: evs[2:]})
	if r.Verdict != Invalid || r.Anomalies[0].Kind != "mismatch-contradicted" {
		t.Fatalf("got %s %+v", r.Verdict, r.Anomalies)
	}
}

// Histories without usable times (all zero, as some tools write them) are
// ordered by position, which is a faithful real-time order.
func TestIndexClock(t *testing.T) {
	in := loadFixture(t, "stale-read.jsonl")
	for i := range in.Events {
		in.Events[i].Time = 0
	}
	r := Linearizability{}.Check(context.Background(), in)
	if r.Verdict != Invalid || r.Details["clock"] != "index" || r.Anomalies[0].Kind != "stale-read" {
		t.Fatalf("got %s %v %+v", r.Verdict, r.Details, r.Anomalies)
	}
	if !strings.Contains(r.Explanation, "began at testdata/stale-read.jsonl:7") {
		t.Errorf("explanation should name positions as lines: %s", r.Explanation)
	}
	// With times zeroed, time-based intervals would all overlap and the
	// read would look valid: the index clock is what catches it.
}
