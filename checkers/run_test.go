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
	if got := Combine(rs); got.Verdict != Invalid || len(got.Violated) != 1 || len(got.Crashed) != 1 || len(got.Figures) != 1 || got.Judged != 3 {
		t.Errorf("overall %+v, want invalid (linearizability), p crashed, stats figures, 3 judged", got)
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
		{[]Verdict{"bogus", Valid}, Unknown},
	} {
		var rs []Result
		for _, v := range c.vs {
			rs = append(rs, Result{Verdict: v})
		}
		if got := Combine(rs).Verdict; got != c.want {
			t.Errorf("Combine(%v) = %s, want %s", c.vs, got, c.want)
		}
	}
}

// Figures, a checker's own failure and thresholds combine as the
// conductor's exit codes rank them: violation, crash, unknown, threshold.
func TestCombinePrecedence(t *testing.T) {
	figures := Result{Name: "stats", Verdict: NotApplicable, Figures: true}
	crash := Result{Name: "c", Verdict: Valid, Internal: true}
	thr := Result{Name: "t", Verdict: Invalid, Threshold: true}
	valid := Result{Name: "v", Verdict: Valid}
	bad := Result{Name: "x", Verdict: Invalid}
	unk := Result{Name: "u", Verdict: Unknown}
	for _, c := range []struct {
		name string
		rs   []Result
		want Verdict
	}{
		{"figures alone judge nothing", []Result{figures}, Unknown},
		{"figures are no verdict", []Result{valid, figures}, Valid},
		{"a stats-named result without Figures is a verdict", []Result{{Name: "stats", Verdict: Valid}}, Valid},
		{"a crash is unknown even when valid", []Result{valid, crash}, Unknown},
		{"a violation beats a crash", []Result{crash, bad}, Invalid},
		{"a crash beats a threshold", []Result{thr, crash}, Unknown},
		{"unknown beats a threshold", []Result{thr, unk}, Unknown},
		{"a threshold alone", []Result{valid, thr, figures}, Invalid},
	} {
		if got := Combine(c.rs); got.Verdict != c.want {
			t.Errorf("%s: %+v, want %s", c.name, got, c.want)
		}
	}
	o := Combine([]Result{valid, figures, {Name: "n", Verdict: NotApplicable}, thr, unk, crash, bad})
	if o.Judged != 5 || len(o.Figures) != 1 || len(o.NotApplicable) != 1 || o.Thresholds[0] != "t" || o.Unknown[0] != "u" || o.Crashed[0] != "c" || o.Violated[0] != "x" {
		t.Errorf("names: %+v", o)
	}
}
