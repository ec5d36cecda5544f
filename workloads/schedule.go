package workloads

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Stage is one step of an open-loop load profile, as in k6's ramping
// arrival rate: over Duration, the target rate moves linearly from the
// previous stage's Rate (or Config.Rate for the first stage) to this Rate.
type Stage struct {
	Duration time.Duration // > 0
	Rate     float64       // total target ops/s at the end of the stage, >= 0
}

// segment is a piece of the schedule where the rate moves linearly from r0
// to r1 over dur seconds (dur = +Inf for the final hold).
type segment struct {
	start float64 // seconds since the phase start
	dur   float64
	r0    float64
	r1    float64
	n0    float64 // scheduled ops before start
}

// ops returns the number of ops scheduled in the first tau seconds.
func (s *segment) ops(tau float64) float64 {
	if math.IsInf(s.dur, 1) || s.r0 == s.r1 {
		return s.r0 * tau
	}
	return s.r0*tau + (s.r1-s.r0)/(2*s.dur)*tau*tau
}

// schedule maps the phase's elapsed time to the cumulative number of ops
// due, N(t) = integral of the rate, and back. Op i (from 0) is intended to
// start at N^-1(i), so op 0 starts at the phase start.
type schedule struct {
	segs []segment
	peak float64 // highest rate anywhere
}

func newSchedule(rate float64, stages []Stage) (*schedule, error) {
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("workloads: rate must be a finite number of ops/s >= 0 (0 = closed loop), got %v", rate)
	}
	s := &schedule{peak: rate}
	t, n, r := 0.0, 0.0, rate
	for i, st := range stages {
		if st.Duration <= 0 {
			return nil, fmt.Errorf("workloads: stage %d: duration must be > 0, got %v", i+1, st.Duration)
		}
		if st.Rate < 0 || math.IsNaN(st.Rate) || math.IsInf(st.Rate, 0) {
			return nil, fmt.Errorf("workloads: stage %d: rate must be a finite number of ops/s >= 0, got %v", i+1, st.Rate)
		}
		seg := segment{start: t, dur: st.Duration.Seconds(), r0: r, r1: st.Rate, n0: n}
		s.segs = append(s.segs, seg)
		t += seg.dur
		n += seg.ops(seg.dur)
		r = st.Rate
		s.peak = math.Max(s.peak, r)
	}
	s.segs = append(s.segs, segment{start: t, dur: math.Inf(1), r0: r, r1: r, n0: n})
	return s, nil
}

// length returns the total duration of the stages.
func (s *schedule) length() time.Duration {
	return time.Duration(s.segs[len(s.segs)-1].start * float64(time.Second))
}

// n returns N(t): the ops scheduled in the first t of the phase.
func (s *schedule) n(t time.Duration) float64 {
	ts := t.Seconds()
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].start > ts }) - 1
	if i < 0 {
		return 0
	}
	seg := &s.segs[i]
	return seg.n0 + seg.ops(ts-seg.start)
}

// due returns how many ops are due by t: ops 0..due-1 have intended start
// <= t. The tiny epsilon absorbs rounding between n and at (an op due a
// fraction of a nanosecond early is harmless; one never due is not).
func (s *schedule) due(t time.Duration) int64 {
	return int64(math.Floor(s.n(t)+1e-9)) + 1
}

// rate returns the target rate at t.
func (s *schedule) rate(t time.Duration) float64 {
	ts := t.Seconds()
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].start > ts }) - 1
	if i < 0 {
		return s.segs[0].r0
	}
	seg := &s.segs[i]
	if math.IsInf(seg.dur, 1) {
		return seg.r0
	}
	return seg.r0 + (seg.r1-seg.r0)*(ts-seg.start)/seg.dur
}

// never is the intended start of an op the schedule never makes due.
const never = time.Duration(math.MaxInt64)

// at returns the intended start of op i: the first t with N(t) >= i (so op 0
// starts at 0), or never.
func (s *schedule) at(i int64) time.Duration {
	if i <= 0 {
		return 0
	}
	m := float64(i)
	// The last segment with n0 < m: N crosses m inside it (segments without
	// ops share their n0 with the next one, so they are never chosen, except
	// the final hold at rate 0, which never reaches m).
	j := sort.Search(len(s.segs), func(j int) bool { return s.segs[j].n0 >= m }) - 1
	seg := &s.segs[j]
	rest := m - seg.n0
	a := 0.0
	if !math.IsInf(seg.dur, 1) {
		a = (seg.r1 - seg.r0) / (2 * seg.dur)
	}
	b := seg.r0
	// Solve a*tau^2 + b*tau = rest in the numerically stable form.
	disc := b*b + 4*a*rest
	if disc < 0 {
		disc = 0
	}
	den := b + math.Sqrt(disc)
	if den <= 0 {
		return never
	}
	tau := 2 * rest / den
	if !math.IsInf(seg.dur, 1) && tau > seg.dur {
		tau = seg.dur
	}
	t := (seg.start + tau) * float64(time.Second)
	if t >= float64(math.MaxInt64) {
		return never
	}
	return time.Duration(t)
}
