package checkers

import (
	"context"
	"testing"
)

type fixed struct {
	name string
	v    Verdict
}

func (f fixed) Name() string { return f.name }
func (f fixed) Check(ctx context.Context, in Input) Result {
	if f.v == "panic" {
		panic("boom")
	}
	return Result{Verdict: f.v}
}

func TestRunAndOverall(t *testing.T) {
	in := loadFixture(t, "stale-read.jsonl")
	rs := Run(context.Background(), in, Stats{}, Linearizability{}, fixed{"p", "panic"}, fixed{"u", Unknown})
	if len(rs) != 4 || rs[0].Name != "stats" || rs[1].Name != "linearizability" || rs[2].Name != "p" || rs[3].Name != "u" {
		t.Fatalf("results out of order: %+v", rs)
	}
	if rs[0].Verdict != NotApplicable || rs[1].Verdict != Invalid || rs[2].Verdict != Unknown || rs[3].Elapsed <= 0 {
		t.Fatalf("verdicts: %+v", rs)
	}
	if got := Overall(rs); got != Invalid {
		t.Errorf("overall %s, want invalid", got)
	}
	for _, c := range []struct {
		vs   []Verdict
		want Verdict
	}{
		{nil, Unknown}, // nothing judged (it was valid before not_applicable existed)
		{[]Verdict{Valid, Valid}, Valid},
		{[]Verdict{Valid, Unknown}, Unknown},
		{[]Verdict{Unknown, Invalid, Valid}, Invalid},
		{[]Verdict{""}, Unknown},
		// Not applicable is neutral.
		{[]Verdict{NotApplicable}, Unknown}, // nothing judged
		{[]Verdict{NotApplicable, NotApplicable, Valid}, Valid},
		{[]Verdict{Valid, NotApplicable}, Valid},
		{[]Verdict{NotApplicable, Unknown}, Unknown},
		{[]Verdict{NotApplicable, Invalid}, Invalid},
	} {
		var rs []Result
		for _, v := range c.vs {
			rs = append(rs, Result{Verdict: v})
		}
		if got := Overall(rs); got != c.want {
			t.Errorf("Overall(%v) = %s, want %s", c.vs, got, c.want)
		}
	}
}
