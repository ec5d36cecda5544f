package checkers

import (
	"context"
	"testing"
)

// A key checked only on a prefix must not keep an info cas's "took effect"
// bound when the read that proved it lies past the cut.
func TestTruncatedPrefixForgetsTookEffect(t *testing.T) {
	in := loadFixture(t, "truncated-info-cas.jsonl")
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
	r := (Linearizability{}).Check(context.Background(), loadFixture(t, "equal-times.jsonl"))
	if r.Verdict != Invalid {
		t.Fatalf("got %s: %s", r.Verdict, r.Summary)
	}
}

// Operations the register does not have leave their keys undecided.
func TestOtherOperationsLeaveKeysUndecided(t *testing.T) {
	in := loadFixture(t, "other-ops.jsonl")
	for _, c := range []Checker{Linearizability{}, LostWrites{}} {
		if r := c.Check(context.Background(), in); r.Verdict != Unknown {
			t.Errorf("%s: got %s: %s", c.Name(), r.Verdict, r.Summary)
		}
	}
}

// A written null read back at the end is that write, not a loss.
func TestNullWrittenIsNotLost(t *testing.T) {
	in := loadFixture(t, "null-written.jsonl")
	if r := (LostWrites{}).Check(context.Background(), in); r.Verdict != Valid {
		t.Fatalf("got %s: %s %v", r.Verdict, r.Summary, r.Anomalies)
	}
	if r := (Linearizability{}).Check(context.Background(), in); r.Verdict != Valid {
		t.Fatalf("linearizability: %s %s", r.Verdict, r.Summary)
	}
}
