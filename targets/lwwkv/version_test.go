package lwwkv

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b vclock
		want order
	}{
		{vclock{}, nil, equal},
		{vclock{"n1": 1}, vclock{"n1": 1, "n2": 0}, equal},
		{vclock{"n1": 1}, vclock{"n1": 2}, before},
		{vclock{"n1": 2}, vclock{"n1": 1}, after},
		{vclock{"n1": 1}, vclock{"n1": 1, "n2": 1}, before},
		{vclock{"n1": 1, "n2": 1}, vclock{"n2": 1}, after},
		{vclock{"n1": 1}, vclock{"n2": 1}, concurrent},
		{vclock{"n1": 2, "n2": 1}, vclock{"n1": 1, "n2": 2}, concurrent},
	} {
		if got := compare(tc.a, tc.b); got != tc.want {
			t.Errorf("compare(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func ver(value string, ts int64, origin string, seq uint64, clock vclock) version {
	return version{Value: json.RawMessage(value), Clock: clock, TS: ts, Origin: origin, Seq: seq}
}

func TestMerge(t *testing.T) {
	a := ver(`"a"`, 100, "n1", 1, vclock{"n1": 1})
	b := ver(`"b"`, 50, "n2", 1, vclock{"n1": 1, "n2": 1}) // saw a; earlier stamp
	c := ver(`"c"`, 200, "n3", 1, vclock{"n3": 1})         // concurrent with both
	d := ver(`"d"`, 200, "n2", 2, vclock{"n2": 2})         // concurrent with c, same ts, smaller origin

	// A causally later write wins whatever its stamp; an earlier one loses.
	if got, out := merge(a, true, b, false); !same(&got, &b) || !out.changed || out.concurrent || out.overruled {
		t.Errorf("merge(a, b) = %+v %+v, want b (after a), changed", got, out)
	}
	if got, out := merge(b, true, a, false); !same(&got, &b) || out.changed || out.concurrent {
		t.Errorf("merge(b, a) = %+v %+v, want b unchanged", got, out)
	}
	// Nothing held: the incoming version.
	if got, out := merge(version{}, false, a, false); !same(&got, &a) || !out.changed {
		t.Errorf("merge(none, a) = %+v %+v", got, out)
	}
	// The same version: unchanged, not a conflict.
	if _, out := merge(a, true, a, false); out.changed || out.concurrent {
		t.Errorf("merge(a, a) = %+v, want unchanged", out)
	}
	// Concurrent: the larger stamp wins with the join of both clocks,
	// whichever side holds it.
	for _, pair := range [][2]version{{b, c}, {c, b}} {
		got, out := merge(pair[0], true, pair[1], false)
		if string(got.Value) != `"c"` || compare(got.Clock, vclock{"n1": 1, "n2": 1, "n3": 1}) != equal || !out.concurrent {
			t.Errorf("merge(%s, %s) = %s %v %+v, want c with clock n1:1 n2:1 n3:1, concurrent", pair[0].Value, pair[1].Value, got.Value, got.Clock, out)
		}
		if !out.changed { // the value, or at least the clock, changed
			t.Errorf("merge(%s, %s): not changed", pair[0].Value, pair[1].Value)
		}
	}
	// Equal timestamps: the larger origin id wins.
	if got, _ := merge(d, true, c, false); string(got.Value) != `"c"` {
		t.Errorf("merge(d, c) = %s, want c (n3 > n2 at the same ts)", got.Value)
	}
	// The winner of a concurrent merge held as it is: only the clock grows.
	won, _ := merge(c, true, b, false)
	if got, out := merge(c, true, won, false); !out.changed || out.concurrent || string(got.Value) != `"c"` {
		t.Errorf("merge(c, c+b) = %s %+v, want c with the joined clock, changed, not a conflict", got.Value, out)
	}
	// One write with two histories (two resolutions that kept it): the
	// histories join, and nothing was discarded.
	cd, _ := merge(c, true, d, false)
	ca, _ := merge(c, true, a, false)
	for _, wall := range []bool{false, true} {
		if got, out := merge(cd, true, ca, wall); string(got.Value) != `"c"` || !out.changed || out.concurrent || out.overruled || compare(got.Clock, vclock{"n1": 1, "n2": 2, "n3": 1}) != equal {
			t.Errorf("merge(c+d, c+a) wall-clock-only %v = %s %v %+v, want c with clock n1:1 n2:2 n3:1, changed, no conflict", wall, got.Value, got.Clock, out)
		}
		if _, out := merge(cd, true, c, wall); out.changed || out.concurrent || out.overruled {
			t.Errorf("merge(c+d, c) wall-clock-only %v = %+v, want nothing", wall, out)
		}
	}
	// Equal clocks holding different writes: the larger stamp, a conflict.
	x := ver(`"x"`, 10, "n1", 5, vclock{"n1": 5, "n2": 5})
	y := ver(`"y"`, 20, "n2", 5, vclock{"n1": 5, "n2": 5})
	if got, out := merge(x, true, y, false); string(got.Value) != `"y"` || !out.changed || !out.concurrent {
		t.Errorf("merge(x, y) with equal clocks = %s %+v, want y, changed, concurrent", got.Value, out)
	}
}

// TestMergeWallClockOnly: the bug keeps the larger stamp even over a
// causally later write, and counts it.
func TestMergeWallClockOnly(t *testing.T) {
	a := ver(`"a"`, 100, "n1", 1, vclock{"n1": 1})
	b := ver(`"b"`, 50, "n2", 1, vclock{"n1": 1, "n2": 1}) // saw a; earlier stamp
	got, out := merge(a, true, b, true)
	if string(got.Value) != `"a"` || !out.overruled || out.concurrent {
		t.Errorf("wall-clock-only merge(a, b) = %s %+v, want a, overruled", got.Value, out)
	}
	if compare(got.Clock, b.Clock) != equal || !out.changed {
		t.Errorf("wall-clock-only merge(a, b): clock %v changed %v, want the join n1:1 n2:1, changed", got.Clock, out.changed)
	}
	got, out = merge(b, true, a, true)
	if string(got.Value) != `"a"` || !out.overruled || !out.changed {
		t.Errorf("wall-clock-only merge(b, a) = %s %+v, want a, overruled, changed", got.Value, out)
	}
	// Without the bug neither way gives a.
	if got, _ := merge(b, true, a, false); string(got.Value) != `"b"` {
		t.Errorf("merge(b, a) = %s, want b", got.Value)
	}
}

// replica is a model of one node's state for the convergence property.
type replica struct {
	id   string
	seq  uint64
	data map[string]version
}

func (r *replica) write(key, value string, ts int64) version {
	r.seq++
	cur, ok := r.data[key]
	w := ver(value, ts, r.id, r.seq, join(cur.Clock, vclock{r.id: r.seq}))
	res, _ := merge(cur, ok, w, false)
	r.data[key] = res
	return res
}

func (r *replica) receive(key string, v version, wallClockOnly bool) bool {
	cur, ok := r.data[key]
	res, out := merge(cur, ok, v, wallClockOnly)
	r.data[key] = res
	return out.changed
}

// TestConvergence: replicas that write concurrently, with random clocks,
// and receive each other's versions in any order and any subset, end up
// identical once they exchange their states until nothing changes; and
// merge is commutative. Checked with and without wall-clock-only.
func TestConvergence(t *testing.T) {
	for _, wall := range []bool{false, true} {
		for seed := uint64(0); seed < 300; seed++ {
			rng := rand.New(rand.NewPCG(seed, 7))
			rs := []*replica{{id: "n1", data: map[string]version{}}, {id: "n2", data: map[string]version{}}, {id: "n3", data: map[string]version{}}}
			keys := []string{"a", "b"}
			type msg struct {
				to  int
				key string
				v   version
			}
			var inflight []msg
			for step := 0; step < 60; step++ {
				switch rng.IntN(3) {
				case 0: // a write, queued for some peers (others' queues are lost)
					i, k := rng.IntN(3), keys[rng.IntN(2)]
					v := rs[i].write(k, fmt.Sprintf(`"%d"`, step), rng.Int64N(50))
					for j := range rs {
						if j != i && rng.IntN(3) > 0 {
							inflight = append(inflight, msg{j, k, v})
						}
					}
				case 1: // a delivery, in any order
					if len(inflight) > 0 {
						m := rng.IntN(len(inflight))
						rs[inflight[m].to].receive(inflight[m].key, inflight[m].v, wall)
						inflight = append(inflight[:m], inflight[m+1:]...)
					}
				case 2: // a one-way state transfer
					from, to := rng.IntN(3), rng.IntN(3)
					for k, v := range rs[from].data {
						rs[to].receive(k, v, wall)
					}
				}
			}
			// Commutativity on what the replicas hold.
			for _, k := range keys {
				x, xok := rs[0].data[k]
				y, yok := rs[1].data[k]
				if xok && yok {
					m1, _ := merge(x, true, y, wall)
					m2, _ := merge(y, true, x, wall)
					if !same(&m1, &m2) || string(m1.Value) != string(m2.Value) {
						t.Fatalf("seed %d wall %v: merge not commutative on %s: %+v vs %+v", seed, wall, k, m1, m2)
					}
				}
			}
			// Anti-entropy: pairwise exchanges in turn until nothing changes.
			for round := 0; ; round++ {
				if round > 100 {
					t.Fatalf("seed %d wall %v: no fixpoint after 100 rounds", seed, wall)
				}
				changed := false
				for i := range rs {
					for j := range rs {
						for k, v := range rs[i].data {
							changed = rs[j].receive(k, v, wall) || changed
						}
					}
				}
				if !changed {
					break
				}
			}
			for _, k := range keys {
				v0 := rs[0].data[k]
				for _, r := range rs[1:] {
					if v := r.data[k]; !same(&v0, &v) || string(v0.Value) != string(v.Value) {
						t.Fatalf("seed %d wall %v: key %s diverged: n1 %s %v, %s %s %v", seed, wall, k, v0.Value, v0.Clock, r.id, v.Value, v.Clock)
					}
				}
			}
		}
	}
}
