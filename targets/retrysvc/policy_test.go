package retrysvc

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func mustAllow(t *testing.T, b *Breaker) Ticket {
	t.Helper()
	tk, ok := b.Allow()
	if !ok {
		t.Fatalf("refused in state %s", b.State())
	}
	return tk
}
func mustRefuse(t *testing.T, b *Breaker) {
	t.Helper()
	if _, ok := b.Allow(); ok {
		t.Fatalf("allowed in state %s", b.State())
	}
}

// The breaker's state machine on a hand-moved clock: closed -> open after
// K consecutive failures (a success in between resets the count); open
// refuses until the open time has passed, then half-open lets exactly
// `probes` trials through; a failed trial reopens it (for a fresh open
// time), `probes` successful trials close it; results of attempts let
// through in an earlier state are ignored.
func TestBreakerTransitions(t *testing.T) {
	clk := newFakeClock()
	var changes []BreakerState
	b := NewBreaker(3, 2, time.Second, clk.now, func(to BreakerState) { changes = append(changes, to) })

	// Closed: two failures, a success, two failures: still closed.
	for _, ok := range []bool{false, false, true, false, false} {
		b.Done(mustAllow(t, b), ok)
	}
	if s := b.State(); s != Closed {
		t.Fatalf("after 2 failures, a success and 2 failures: %s, want closed", s)
	}
	// A stale attempt from before: let through now, reported after the
	// breaker opened, it must not count in the next state.
	stale := mustAllow(t, b)
	b.Done(mustAllow(t, b), false) // third failure in a row: opens
	if s := b.State(); s != Open {
		t.Fatalf("after 3 consecutive failures: %s, want open", s)
	}
	mustRefuse(t, b)
	b.Done(stale, true) // ignored: would otherwise count towards closing
	clk.add(999 * time.Millisecond)
	mustRefuse(t, b)
	if s := b.State(); s != Open {
		t.Fatalf("before the open time passed: %s", s)
	}

	// Half-open: two trials, the third refused; one trial fails: open again.
	clk.add(time.Millisecond)
	if s := b.State(); s != HalfOpen {
		t.Fatalf("once the open time passed: %s, want half_open", s)
	}
	t1, t2 := mustAllow(t, b), mustAllow(t, b)
	if !t1.Trial() || !t2.Trial() {
		t.Error("half-open tickets are not trials")
	}
	mustRefuse(t, b) // probe limit
	b.Done(t1, true)
	if s := b.State(); s != HalfOpen {
		t.Fatalf("after 1 of 2 trials succeeded: %s, want half_open", s)
	}
	mustRefuse(t, b) // still only two trials in this half-open spell
	b.Done(t2, false)
	if s := b.State(); s != Open {
		t.Fatalf("after a failed trial: %s, want open", s)
	}
	// The fresh open time counts from the reopening.
	clk.add(500 * time.Millisecond)
	mustRefuse(t, b)
	clk.add(500 * time.Millisecond)

	// Half-open again: both trials succeed: closed, and the failure count
	// starts from zero.
	t1, t2 = mustAllow(t, b), mustAllow(t, b)
	b.Done(t1, true)
	b.Done(t2, true)
	if s := b.State(); s != Closed {
		t.Fatalf("after 2 of 2 trials succeeded: %s, want closed", s)
	}
	b.Done(mustAllow(t, b), false)
	b.Done(mustAllow(t, b), false)
	if s := b.State(); s != Closed {
		t.Fatalf("2 failures after closing: %s, want closed", s)
	}
	want := []BreakerState{Open, HalfOpen, Open, HalfOpen, Closed}
	if !slices.Equal(changes, want) {
		t.Errorf("transitions %v, want %v", changes, want)
	}
	if Open.String() != "open" || HalfOpen.String() != "half_open" || Closed.String() != "closed" {
		t.Error("state names differ from the transitions' labels")
	}
}

// Full jitter: every delay before retry n lies in [0, min(cap, base*2^n)],
// the delays are not all equal, and they spread over the whole range (both
// halves of it are drawn); the ceiling doubles up to the cap and stays
// there (no overflow for large n).
func TestBackoffJitterBounds(t *testing.T) {
	src := rand.New(rand.NewPCG(1, 2))
	b := Backoff{Base: 10 * time.Millisecond, Cap: 200 * time.Millisecond, Rand: src.Int64N}
	wantCeil := []time.Duration{10, 20, 40, 80, 160, 200, 200, 200}
	for n, w := range wantCeil {
		if c := b.Ceiling(n); c != w*time.Millisecond {
			t.Errorf("Ceiling(%d) = %s, want %s", n, c, w*time.Millisecond)
		}
	}
	if c := b.Ceiling(200); c != b.Cap {
		t.Errorf("Ceiling(200) = %s, want the cap", c)
	}
	for n := 0; n < 8; n++ {
		ceil := b.Ceiling(n)
		seen := map[time.Duration]bool{}
		low, high := 0, 0
		for i := 0; i < 2000; i++ {
			d := b.Delay(n)
			if d < 0 || d > ceil {
				t.Fatalf("retry %d: delay %s outside [0, %s]", n, d, ceil)
			}
			seen[d] = true
			if d < ceil/2 {
				low++
			} else {
				high++
			}
		}
		if len(seen) < 100 || low < 500 || high < 500 {
			t.Errorf("retry %d: %d distinct delays, %d below half the ceiling and %d above: not spread uniformly", n, len(seen), low, high)
		}
	}
	// The default source (nil Rand) draws within the bounds too.
	def := Backoff{Base: time.Millisecond, Cap: 4 * time.Millisecond}
	for i := 0; i < 100; i++ {
		if d := def.Delay(5); d < 0 || d > 4*time.Millisecond {
			t.Fatalf("default source: delay %s outside [0, 4ms]", d)
		}
	}
	if d := (Backoff{}).Delay(3); d != 0 {
		t.Errorf("zero backoff: delay %s", d)
	}
}

// The retry budget's accounting: it starts with reserve retries in hand;
// each request earns ratio of a retry; a retry refused takes nothing. Over
// every stretch of a long random sequence, the retries allowed are at most
// ratio x requests in that stretch + reserve; and the budget is not
// stingier than that in the long run.
func TestBudgetAccounting(t *testing.T) {
	b := NewBudget(0.1, 10)
	for i := 0; i < 10; i++ {
		if !b.Retry() {
			t.Fatalf("retry %d of the reserve of 10 refused", i+1)
		}
	}
	if b.Retry() {
		t.Fatal("an 11th retry allowed with no request made")
	}
	for i := 0; i < 9; i++ {
		b.Request()
	}
	if b.Retry() {
		t.Fatal("a retry allowed after 9 requests at ratio 0.1 (0.9 earned)")
	}
	b.Request()
	if !b.Retry() {
		t.Fatal("no retry after 10 requests at ratio 0.1")
	}
	// The balance never exceeds the reserve: 1000 requests earn 100, 10 kept.
	for i := 0; i < 1000; i++ {
		b.Request()
	}
	if got := b.Balance(); got != 10 {
		t.Fatalf("balance after 1000 requests: %v, want the reserve 10", got)
	}

	const ratio, reserve = 0.2, 5
	rng := rand.New(rand.NewPCG(7, 8))
	b = NewBudget(ratio, reserve)
	// events: +1 a request, 0 a retry refused, -1 a retry allowed.
	var events []int
	for i := 0; i < 3000; i++ {
		// Stretches of storm and of calm; retries are asked for faster than
		// they are earned throughout.
		pRetry := 0.5
		if (i/300)%2 == 1 {
			pRetry = 0.9
		}
		if rng.Float64() < pRetry {
			if b.Retry() {
				events = append(events, -1)
			} else {
				events = append(events, 0)
			}
		} else {
			b.Request()
			events = append(events, 1)
		}
	}
	allowed, requests := 0, 0
	for i := range events {
		retries, reqs := 0, 0
		for j := i; j < len(events); j++ {
			switch events[j] {
			case 1:
				reqs++
			case -1:
				retries++
			}
			if float64(retries) > ratio*float64(reqs)+reserve+1e-9 {
				t.Fatalf("events %d..%d: %d retries allowed for %d requests, more than %v x requests + %d", i, j, retries, reqs, ratio, reserve)
			}
		}
		switch events[i] {
		case 1:
			requests++
		case -1:
			allowed++
		}
	}
	// Retries were asked for beyond the budget, so it was spent: the
	// allowance is within two retries of ratio x requests + reserve.
	if limit := ratio*float64(requests) + reserve; float64(allowed) < limit-2 {
		t.Errorf("%d retries allowed for %d requests, want about %v", allowed, requests, limit)
	}
}
