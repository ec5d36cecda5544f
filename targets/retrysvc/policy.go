package retrysvc

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Policy names a frontend's retry policy (option policy).
type Policy string

// The frontend's policies. Every policy bounds a request by the deadline
// option and each attempt by attempt-timeout.
const (
	// PolicyNone makes one attempt per request.
	PolicyNone Policy = "none"
	// PolicyNaive retries at once, up to retries times.
	PolicyNaive Policy = "naive"
	// PolicyBackoff retries up to retries times after a full-jitter
	// exponential backoff (Backoff).
	PolicyBackoff Policy = "backoff"
	// PolicyBreaker is PolicyBackoff behind a circuit breaker (Breaker)
	// that every attempt, first or retry, must pass.
	PolicyBreaker Policy = "breaker"
	// PolicyBudget is PolicyBackoff whose retries (not first attempts)
	// draw on a retry budget (Budget).
	PolicyBudget Policy = "budget"
)

// Policies lists the policies, in the order the option's doc gives them.
var Policies = []Policy{PolicyNone, PolicyNaive, PolicyBackoff, PolicyBreaker, PolicyBudget}

// retries reports whether the policy retries at all.
func (p Policy) retries() bool { return p != PolicyNone }

// backsOff reports whether the policy waits before a retry.
func (p Policy) backsOff() bool {
	return p == PolicyBackoff || p == PolicyBreaker || p == PolicyBudget
}

// Backoff is exponential backoff with full jitter (the AWS Architecture
// Blog's "full jitter"): the delay before retry n (n = 0 for the first
// retry) is drawn uniformly from [0, min(Cap, Base·2^n)], both ends
// included. A Backoff is a value: safe for concurrent use when Rand is.
type Backoff struct {
	Base, Cap time.Duration
	// Rand returns a uniform integer in [0, n) for n > 0; nil is
	// math/rand/v2's Int64N (safe for concurrent use). Tests inject a
	// seeded source.
	Rand func(n int64) int64
}

// Ceiling returns min(Cap, Base·2^n): the largest delay before retry n.
// Negative n is taken as 0.
func (b Backoff) Ceiling(n int) time.Duration {
	if n < 0 {
		n = 0
	}
	d := b.Base
	for i := 0; i < n && d < b.Cap; i++ {
		if d > b.Cap/2 { // doubling would pass the cap (and may overflow)
			d = b.Cap
			break
		}
		d *= 2
	}
	return min(d, b.Cap)
}

// Delay draws the delay before retry n: uniform in [0, Ceiling(n)].
func (b Backoff) Delay(n int) time.Duration {
	c := b.Ceiling(n)
	if c <= 0 {
		return 0
	}
	r := b.Rand
	if r == nil {
		r = rand.Int64N
	}
	return time.Duration(r(int64(c) + 1))
}

// BreakerState is a circuit breaker's state; its number is the value of
// the retrysvc_breaker_state gauge.
type BreakerState int

// The breaker's states.
const (
	// Closed lets every attempt through and counts consecutive failures.
	Closed BreakerState = 0
	// Open refuses every attempt until the open time has passed.
	Open BreakerState = 1
	// HalfOpen lets a few trial attempts through: success closes the
	// breaker, a failure opens it again.
	HalfOpen BreakerState = 2
)

// String names the state as the transitions' label does: closed, open,
// half_open.
func (s BreakerState) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// Breaker is a circuit breaker over a frontend's attempts:
//
//   - closed: every attempt passes; Failures consecutive failed attempts
//     (a success resets the count) open it;
//   - open: every attempt is refused; the first call of Allow or State
//     once OpenFor has passed since it opened makes it half-open;
//   - half-open: at most Probes trial attempts pass (the others are
//     refused); a failed trial opens it again (for OpenFor from then), and
//     once Probes trials have succeeded it closes.
//
// Only the results of attempts allowed in the current state count: a
// result reported after the breaker changed state (an attempt let through
// while closed that ends once it is open) is ignored. Every Allow that
// returns true must be followed by one Done with its ticket. Safe for
// concurrent use.
type Breaker struct {
	failures int
	probes   int
	openFor  time.Duration
	now      func() time.Time
	// onChange, if set, is called (under the breaker's lock: it must not
	// call back) with each new state as the breaker enters it.
	onChange func(to BreakerState)

	mu          sync.Mutex
	state       BreakerState
	gen         uint64 // bumped on every transition: tickets of older ones are stale
	consecutive int    // failures in a row while closed
	openedAt    time.Time
	trials      int // trials let through while half-open
	trialsOK    int // of which succeeded
}

// NewBreaker returns a closed breaker that opens after failures (>= 1)
// consecutive failures, stays open for openFor, and lets probes (>= 1)
// trials through when half-open. now is its clock (nil: time.Now);
// onChange, if set, is told every transition, under the breaker's lock.
func NewBreaker(failures, probes int, openFor time.Duration, now func() time.Time, onChange func(to BreakerState)) *Breaker {
	if now == nil {
		now = time.Now
	}
	return &Breaker{failures: max(failures, 1), probes: max(probes, 1), openFor: openFor, now: now, onChange: onChange}
}

// Ticket is what Allow hands out and Done takes back: the state the
// attempt was let through in.
type Ticket struct {
	gen   uint64
	trial bool
}

// Trial reports whether the attempt was let through as a half-open trial.
func (t Ticket) Trial() bool { return t.trial }

// setLocked enters state to.
func (b *Breaker) setLocked(to BreakerState) {
	b.state = to
	b.gen++
	b.consecutive, b.trials, b.trialsOK = 0, 0, 0
	if to == Open {
		b.openedAt = b.now()
	}
	if b.onChange != nil {
		b.onChange(to)
	}
}

// advanceLocked makes an open breaker half-open once its open time passed.
func (b *Breaker) advanceLocked() {
	if b.state == Open && b.now().Sub(b.openedAt) >= b.openFor {
		b.setLocked(HalfOpen)
	}
}

// State returns the breaker's state now (an open breaker whose open time
// has passed becomes half-open here).
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked()
	return b.state
}

// Allow reports whether an attempt may be sent now, and if so the ticket
// to report its result with (Done).
func (b *Breaker) Allow() (Ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked()
	switch b.state {
	case Closed:
		return Ticket{gen: b.gen}, true
	case HalfOpen:
		if b.trials < b.probes {
			b.trials++
			return Ticket{gen: b.gen, trial: true}, true
		}
	}
	return Ticket{}, false
}

// Done reports the result of an attempt Allow let through.
func (b *Breaker) Done(t Ticket, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return // let through in an earlier state
	}
	switch b.state {
	case Closed:
		if ok {
			b.consecutive = 0
			return
		}
		b.consecutive++
		if b.consecutive >= b.failures {
			b.setLocked(Open)
		}
	case HalfOpen:
		if !ok {
			b.setLocked(Open)
			return
		}
		b.trialsOK++
		if b.trialsOK >= b.probes {
			b.setLocked(Closed)
		}
	}
}

// budgetUnit is one retry in the budget's fixed-point balance: deposits
// of ratio per request are exact to a millionth of a retry.
const budgetUnit = 1_000_000

// Budget is a retry budget in the manner of Finagle's RetryBudget, as a
// token bucket: each request deposits ratio retries, each retry withdraws
// one, and the balance never exceeds reserve retries (it starts full).
// So over ANY stretch of time, the retries allowed are at most
//
//	ratio × (requests deposited in that stretch) + reserve
//
// (reserve is the minimum allowance: what a quiet frontend may retry
// before its requests have earned more). Amounts are fixed point, exact to
// a millionth of a retry. Safe for concurrent use.
type Budget struct {
	deposit int64 // per request, in budgetUnit
	limit   int64 // the balance's cap, in budgetUnit

	mu      sync.Mutex
	balance int64
}

// NewBudget returns a full budget of ratio retries per request (>= 0)
// and reserve retries at most in hand.
func NewBudget(ratio float64, reserve int) *Budget {
	limit := int64(max(reserve, 0)) * budgetUnit
	return &Budget{deposit: int64(ratio*budgetUnit + 0.5), limit: limit, balance: limit}
}

// Request deposits one request's share.
func (b *Budget) Request() {
	b.mu.Lock()
	b.balance = min(b.balance+b.deposit, b.limit)
	b.mu.Unlock()
}

// Retry withdraws one retry and reports whether the balance allowed it
// (false: the retry must not be sent; nothing is withdrawn).
func (b *Budget) Retry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance < budgetUnit {
		return false
	}
	b.balance -= budgetUnit
	return true
}

// Balance returns the retries in hand now (fractional).
func (b *Budget) Balance() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return float64(b.balance) / budgetUnit
}
