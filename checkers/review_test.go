package checkers

import (
	"context"
	"testing"

	"github.com/faultline/faultline/history"
)

func readFixture(t *testing.T, name string) Input {
	t.Helper()
	h, evs, err := history.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Header: h, Events: evs}
}

// A key checked only on a prefix must not keep an info cas's "took effect"
// bound when the read that proved it lies past the cut.
func TestTruncatedPrefixForgetsTookEffect(t *testing.T) {
	in := readFixture(t, "truncated-info-cas.jsonl")
	if r := (Linearizability{}).Check(context.Background(), in); r.Verdict != Valid {
		t.Fatalf("whole history: %s %s", r.Verdict, r.Summary)
	}
	for max := 1; max <= 3; max++ {
		r := (Linearizability{MaxKeyOps: max}).Check(context.Background(), in)
		if r.Verdict == Invalid {
			t.Fatalf("MaxKeyOps %d: a linearizable history judged invalid: %s\n%s", max, r.Summary, r.Explanation)
		}
	}
}

// Equal times keep the file's order: a read invoked at the very time a put
// completed, on a later line, began after it.
func TestEqualTimesKeepFileOrder(t *testing.T) {
	r := (Linearizability{}).Check(context.Background(), readFixture(t, "equal-times.jsonl"))
	if r.Verdict != Invalid {
		t.Fatalf("got %s: %s", r.Verdict, r.Summary)
	}
}

// Operations the register does not have leave their keys undecided.
func TestOtherOperationsLeaveKeysUndecided(t *testing.T) {
	in := readFixture(t, "other-ops.jsonl")
	for _, c := range []Checker{Linearizability{}, LostWrites{}} {
		if r := c.Check(context.Background(), in); r.Verdict != Unknown {
			t.Errorf("%s: got %s: %s", c.Name(), r.Verdict, r.Summary)
		}
	}
}

// A written null read back at the end is that write, not a loss.
func TestNullWrittenIsNotLost(t *testing.T) {
	in := readFixture(t, "null-written.jsonl")
	if r := (LostWrites{}).Check(context.Background(), in); r.Verdict != Valid {
		t.Fatalf("got %s: %s %v", r.Verdict, r.Summary, r.Anomalies)
	}
	if r := (Linearizability{}).Check(context.Background(), in); r.Verdict != Valid {
		t.Fatalf("linearizability: %s %s", r.Verdict, r.Summary)
	}
}

// Overlapping faults of one family pair their start and end by id.
func TestFaultWindowsPairByID(t *testing.T) {
	ev := func(t int64, phase, v string) history.Event {
		return history.Event{Type: history.Info, Process: history.Nemesis, Time: t, F: "partition", Phase: phase, Value: []byte(v)}
	}
	evs := []history.Event{
		ev(1, "start", `{"fault":"partition-one","id":1,"targets":["n1"]}`),
		ev(2, "start", `{"fault":"partition-one","id":2,"targets":["n2"]}`),
		ev(3, "end", `{"fault":"partition-one","id":2}`),
		ev(4, "end", `{"fault":"partition-one","id":1}`),
	}
	ws := faultWindows(evs)
	if len(ws) != 2 || ws[0].Start != 0 || ws[0].End != 3 || ws[1].Start != 1 || ws[1].End != 2 {
		t.Fatalf("windows %+v: want fault 1 from event 0 to 3, fault 2 from 1 to 2", ws)
	}
}
