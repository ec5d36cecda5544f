package checkers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

func splitBrainOf(t *testing.T, lines ...string) Result {
	t.Helper()
	return SplitBrain{}.Check(context.Background(), Input{Events: eventsOf(t, lines...)})
}

// eventsOf decodes history lines.
func eventsOf(t *testing.T, lines ...string) []history.Event {
	t.Helper()
	_, evs, err := history.ReadAll(strings.NewReader(strings.Join(lines, "\n")), "h")
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// poll is one observer status event.
func poll(node, role string, term, at int) string {
	return fmt.Sprintf(`{"type":"info","process":"observer","time":%d,"f":"status","node":"%s","value":{"role":"%s","term":%d}}`, at, node, role, term)
}

// leads is two polls in a row of node leading term (what confirms it).
func leads(node string, term, at int) string {
	return poll(node, "leader", term, at) + "\n" + poll(node, "leader", term, at+50)
}

var (
	n1Leads5 = leads("n1", 5, 100)  // confirmed at 150
	n2Leads6 = leads("n2", 6, 2950) // confirmed at 3000
)

// (1) Two nodes leading one term are reported with both names; a node
// re-elected (leader again in a later term, between two polls) and a new
// leader in a higher term are not.
func TestSplitBrainTwoLeaders(t *testing.T) {
	ok := splitBrainOf(t, n1Leads5,
		leads("n1", 7, 450), // re-elected between polls
		poll("n2", "follower", 7, 460),
		// A member that has just won term 8 reports itself leader in the
		// old term once (etcd 3.4's status), then in its own: one poll
		// proves nothing.
		poll("n3", "leader", 7, 880),
		leads("n3", 8, 900))
	if ok.Verdict != Valid {
		t.Fatalf("re-election, a later leader, a stale term in one poll: %s %v", ok.Verdict, ok.Anomalies)
	}
	bad := splitBrainOf(t, n1Leads5,
		`{"type":"info","process":"observer","time":150,"f":"status","node":"n2","value":{"role":"primary","epoch":5}}`,
		`{"type":"info","process":"observer","time":400,"f":"status","node":"n2","value":{"role":"primary","epoch":5}}`)
	if bad.Verdict != Invalid || len(bad.Anomalies) != 1 {
		t.Fatalf("two leaders in term 5: %s %v", bad.Verdict, bad.Anomalies)
	}
	a := bad.Anomalies[0]
	if a.Kind != "two-leaders" || a.Node != "n2" || !strings.Contains(a.Message, "nodes n1 and n2 both reported themselves leader in term 5") || a.Refs[0] != "history.jsonl:3" || a.Refs[1] != "history.jsonl:1" {
		t.Errorf("anomaly %+v", a)
	}
}

// (2) A node that led term 5 acknowledging an operation that began after
// term 6 was established is a deposed leader still serving; the same
// operation begun before term 6 was seen, or acknowledged by a node that
// never led term 5 (a follower's local read), is not reported.
func TestSplitBrainDeposedLeader(t *testing.T) {
	before := splitBrainOf(t, n1Leads5,
		`{"type":"invoke","process":0,"time":2500,"f":"get","key":"k"}`,
		n2Leads6,
		`{"type":"ok","process":0,"time":3100,"f":"get","key":"k","value":1,"node":"n1","term":5}`,
		`{"type":"invoke","process":1,"time":3200,"f":"get","key":"k"}`,
		`{"type":"ok","process":1,"time":3300,"f":"get","key":"k","value":1,"node":"n3","term":5}`)
	if before.Verdict != Valid {
		t.Fatalf("an op begun before term 6 was seen, and a read by a node that never led: %s %v", before.Verdict, before.Anomalies)
	}
	bad := splitBrainOf(t, n1Leads5, n2Leads6,
		`{"type":"invoke","process":0,"time":3500,"f":"put","key":"k","value":2}`,
		`{"type":"ok","process":0,"time":3600,"f":"put","key":"k","value":2,"node":"n1","term":5}`,
		`{"type":"invoke","process":0,"time":3700,"f":"get","key":"k"}`,
		`{"type":"ok","process":0,"time":3800,"f":"get","key":"k","value":2,"node":"n1","term":5}`)
	if bad.Verdict != Invalid || len(bad.Anomalies) != 1 {
		t.Fatalf("deposed leader: %s %v", bad.Verdict, bad.Anomalies)
	}
	a := bad.Anomalies[0]
	for _, m := range []string{"node n1, leader in term 5, acknowledged put(k) under term 5", "after term 6 had been established", "by n2 (history.jsonl:3)", "a deposed leader still serving", "it acknowledged 2 operations so"} {
		if !strings.Contains(a.Message, m) {
			t.Errorf("message lacks %q: %s", m, a.Message)
		}
	}
	if a.Kind != "deposed-leader" || a.Node != "n1" || a.Refs[0] != "history.jsonl:6" {
		t.Errorf("anomaly %+v", a)
	}
	// The explanation names both sides, their terms and the window.
	if want := "- n1, leader in term 5, acknowledged 2 operations under it from 2.95µs to 3.8µs, after n2 had established term 6 (history.jsonl:6)"; !strings.Contains(bad.Explanation, want) {
		t.Errorf("explanation lacks %q:\n%s", want, bad.Explanation)
	}
	// A higher term established by an acknowledgement, not an observation.
	byAck := splitBrainOf(t, n1Leads5,
		`{"type":"invoke","process":1,"time":1000,"f":"put","key":"k","value":3}`,
		`{"type":"ok","process":1,"time":1100,"f":"put","key":"k","value":3,"node":"n2","term":6}`,
		`{"type":"invoke","process":0,"time":1200,"f":"get","key":"k"}`,
		`{"type":"ok","process":0,"time":1300,"f":"get","key":"k","value":1,"node":"n1","term":5}`)
	if byAck.Verdict != Invalid || !strings.Contains(byAck.Anomalies[0].Message, "by n2 (history.jsonl:4)") {
		t.Errorf("a higher term shown by an acknowledgement: %s %v", byAck.Verdict, byAck.Anomalies)
	}
}

// Without terms there is nothing to judge.
func TestSplitBrainNotApplicable(t *testing.T) {
	r := splitBrainOf(t, `{"type":"invoke","process":0,"time":1,"f":"get","key":"k"}`, `{"type":"ok","process":0,"time":2,"f":"get","key":"k","value":null,"node":"n1"}`)
	if r.Verdict != NotApplicable {
		t.Errorf("no terms: %s", r.Verdict)
	}
}

// A node re-elected between two polls (leader in term 5 at one poll, in
// term 7 at the next, term 6 having been someone else's) that acknowledges
// under its new term is not a deposed leader, nor are two leaders in
// different terms.
func TestSplitBrainReelectedBetweenPolls(t *testing.T) {
	r := splitBrainOf(t, n1Leads5,
		`{"type":"invoke","process":1,"time":1900,"f":"put","key":"k","value":3}`,
		`{"type":"ok","process":1,"time":2000,"f":"put","key":"k","value":3,"node":"n2","term":6}`,
		leads("n1", 7, 3000),
		`{"type":"invoke","process":0,"time":3100,"f":"put","key":"k","value":4}`,
		`{"type":"ok","process":0,"time":3200,"f":"put","key":"k","value":4,"node":"n1","term":7}`,
		`{"type":"invoke","process":0,"time":3300,"f":"get","key":"k"}`,
		`{"type":"ok","process":0,"time":3400,"f":"get","key":"k","value":4,"node":"n1","term":7}`)
	if r.Verdict != Valid {
		t.Fatalf("n1 re-elected in term 7 between two polls: %s %v", r.Verdict, r.Anomalies)
	}
}

// finalReads marks a final-reads phase from start to end (ns).
func finalReads(start, end int) string {
	return fmt.Sprintf(`{"type":"info","process":"observer","time":%d,"f":"phase","value":"final-reads","phase":"start"}`+"\n"+
		`{"type":"info","process":"observer","time":%d,"f":"phase","value":"final-reads","phase":"end"}`, start, end)
}

// (3) The writes a deposed leader acknowledged that the final reads show
// lost are attributed to its side, naming both sides; a lost write whose
// node no split brain involves (a durability bug: acknowledged by the
// leader of its term before any higher term existed) stays lost-writes'
// alone, and split-brain stays valid.
func TestSplitBrainLostOnDeposedSide(t *testing.T) {
	bad := splitBrainOf(t, n1Leads5, n2Leads6,
		`{"type":"invoke","process":1,"time":3100,"f":"put","key":"k","value":3}`,
		`{"type":"ok","process":1,"time":3200,"f":"put","key":"k","value":3,"node":"n2","term":6}`,
		`{"type":"invoke","process":0,"time":3500,"f":"put","key":"k","value":2}`,
		`{"type":"ok","process":0,"time":3600,"f":"put","key":"k","value":2,"node":"n1","term":5}`,
		finalReads(4000, 6000),
		`{"type":"invoke","process":2,"time":5000,"f":"get","key":"k"}`,
		`{"type":"ok","process":2,"time":5100,"f":"get","key":"k","value":3,"node":"n2","term":6}`)
	if bad.Verdict != Invalid || len(bad.Anomalies) != 2 {
		t.Fatalf("a deposed leader's lost write: %s %v", bad.Verdict, bad.Anomalies)
	}
	a := bad.Anomalies[1]
	for _, m := range []string{"1 acknowledged writes of node n1 under term 5 are lost", "while n2 led term 6", "the side of n2", "lost write"} {
		if !strings.Contains(a.Message, m) {
			t.Errorf("message lacks %q: %s", m, a.Message)
		}
	}
	// The write's completion is the first reference, as in lost-writes.
	if a.Kind != "lost-on-deposed-side" || a.Node != "n1" || a.Refs[0] != "history.jsonl:8" || !strings.Contains(bad.Summary, "1 acknowledged writes of their sides lost") {
		t.Errorf("anomaly %+v, summary %s", a, bad.Summary)
	}

	evs := eventsOf(t, n1Leads5,
		`{"type":"invoke","process":0,"time":1000,"f":"put","key":"k","value":2}`,
		`{"type":"ok","process":0,"time":1100,"f":"put","key":"k","value":2,"node":"n1","term":5}`,
		n2Leads6,
		finalReads(4000, 6000),
		`{"type":"invoke","process":2,"time":5000,"f":"get","key":"k"}`,
		`{"type":"ok","process":2,"time":5100,"f":"get","key":"k","value":null,"node":"n2","term":6}`)
	if r := (SplitBrain{}).Check(context.Background(), Input{Events: evs}); r.Verdict != Valid {
		t.Fatalf("a lost write without a split brain: %s %v", r.Verdict, r.Anomalies)
	}
	if lw := (LostWrites{}).Check(context.Background(), Input{Events: evs}); lw.Verdict != Invalid {
		t.Fatalf("the test's premise: lost-writes finds the loss (%s)", lw.Verdict)
	}
}
