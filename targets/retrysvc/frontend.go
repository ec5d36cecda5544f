package retrysvc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/targets"
)

// FrontendConfig is a frontend node's policy and its backends.
type FrontendConfig struct {
	ID       string // the node's id, named in its answers
	Policy   Policy
	Retries  int           // retries after the first attempt (policies that retry)
	Attempt  time.Duration // one attempt's timeout
	Deadline time.Duration // a request's deadline: the answer comes by then
	Backoff  Backoff       // backoff, breaker and budget
	// Breaker settings (policy breaker).
	BreakerFailures, BreakerProbes int
	BreakerOpen                    time.Duration
	// Budget settings (policy budget).
	BudgetRatio   float64
	BudgetReserve int
	// Backends are the addresses of the backends to dial (through the
	// peer links' proxies), by id; attempts go round-robin over them.
	Backends []BackendAddr
	// Token is sent to the backends (the run's token), if set.
	Token targets.Token
	// Now is the breaker's clock; nil is time.Now.
	Now func() time.Time
	// OnBreaker, if set, is told every breaker transition (under the
	// breaker's lock: it must not call the frontend back).
	OnBreaker func(to BreakerState)
}

// BackendAddr is one backend as a frontend dials it.
type BackendAddr struct{ ID, Addr string }

// Frontend is a frontend node's service: each client request is served
// by attempts at a backend under the policy (see the package doc). Its
// methods are safe for concurrent use.
type Frontend struct {
	cfg     FrontendConfig
	client  *http.Client
	tr      *http.Transport
	breaker *Breaker // policy breaker only
	budget  *Budget  // policy budget only
	next    atomic.Uint64

	requests, ok, unavailable, clientGone counter
	attempts, retries                     counter
	rejBreaker, rejBudget                 counter
	transitions                           [3]counter // by BreakerState
	failTimeout, failRejected, failError  counter
	failStatus                            counter
	gaveExhausted, gaveDeadline           counter
}

// NewFrontend returns the frontend cfg describes; cfg.Backends must not
// be empty. Serve it as an http.Handler; Close releases its idle
// connections.
func NewFrontend(cfg FrontendConfig) *Frontend {
	f := &Frontend{cfg: cfg}
	f.tr = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.Attempt, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	// HTTP/2 without TLS (prior knowledge): an attempt that times out
	// resets its stream, not the connection, so a storm of timeouts is
	// not also a storm of new connections (through the link's proxy).
	f.tr.Protocols = new(http.Protocols)
	f.tr.Protocols.SetUnencryptedHTTP2(true)
	f.client = &http.Client{Transport: f.tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	switch cfg.Policy {
	case PolicyBreaker:
		f.breaker = NewBreaker(cfg.BreakerFailures, cfg.BreakerProbes, cfg.BreakerOpen, cfg.Now, func(to BreakerState) {
			f.transitions[to].inc()
			if cfg.OnBreaker != nil {
				cfg.OnBreaker(to)
			}
		})
	case PolicyBudget:
		f.budget = NewBudget(cfg.BudgetRatio, cfg.BudgetReserve)
	}
	return f
}

// Close closes the frontend's idle connections to its backends.
func (f *Frontend) Close() { f.tr.CloseIdleConnections() }

// Breaker returns the frontend's breaker (nil unless the policy is breaker).
func (f *Frontend) Breaker() *Breaker { return f.breaker }

// outcome is how one client request ended.
type outcome struct {
	ok       bool
	backend  string
	attempts int
	reason   string // why it gave up: exhausted, breaker, budget, deadline
	last     string // the last attempt's failure
	tried    bool   // an attempt reached (or may have reached) a backend
}

// ServeHTTP serves one client request (any method, any path): 200
// {"node", "backend", "attempts"} when an attempt succeeded, 503 {"error",
// "definite", "node", "attempts", "reason"} when the frontend gave up, by
// the deadline either way. A request whose client went away is not
// answered (counted as client_gone).
func (f *Frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.inc()
	io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
	if f.budget != nil {
		f.budget.Request()
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.Deadline)
	defer cancel()
	o := f.serve(ctx)
	if r.Context().Err() != nil {
		f.clientGone.inc()
		return
	}
	if o.ok {
		f.ok.inc()
		writeJSON(w, http.StatusOK, okBody{Node: f.cfg.ID, Backend: o.backend, Attempts: o.attempts})
		return
	}
	switch o.reason {
	case "exhausted":
		f.gaveExhausted.inc()
	case "deadline":
		f.gaveDeadline.inc()
	}
	f.unavailable.inc()
	msg := fmt.Sprintf("frontend %s gave up after %d attempts (policy %s): %s", f.cfg.ID, o.attempts, f.cfg.Policy, o.reason)
	if o.last != "" {
		msg += "; last attempt: " + o.last
	}
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg, Definite: !o.tried, Node: f.cfg.ID, Attempts: o.attempts, Reason: o.reason})
}

// serve makes the attempts of one request under the policy, within ctx
// (the request's deadline).
func (f *Frontend) serve(ctx context.Context) outcome {
	var o outcome
	for n := 0; ; n++ {
		if n > 0 {
			if !f.cfg.Policy.retries() || n > f.cfg.Retries {
				o.reason = "exhausted"
				return o
			}
			if f.budget != nil && !f.budget.Retry() {
				f.rejBudget.inc()
				o.reason = "budget"
				return o
			}
			if f.cfg.Policy.backsOff() && !sleep(ctx, f.cfg.Backoff.Delay(n-1)) {
				o.reason = "deadline"
				return o
			}
		}
		var ticket Ticket
		if f.breaker != nil {
			t, allowed := f.breaker.Allow()
			if !allowed {
				f.rejBreaker.inc()
				o.reason = "breaker"
				return o
			}
			ticket = t
		}
		f.attempts.inc()
		if n > 0 {
			f.retries.inc()
		}
		o.attempts++
		o.tried = true
		be := f.cfg.Backends[f.next.Add(1)%uint64(len(f.cfg.Backends))]
		cause := f.attempt(ctx, be.Addr)
		if f.breaker != nil {
			f.breaker.Done(ticket, cause == "")
		}
		if cause == "" {
			o.ok, o.backend = true, be.ID
			return o
		}
		o.last = be.ID + ": " + cause
		if ctx.Err() != nil {
			o.reason = "deadline"
			return o
		}
	}
}

// sleep waits d, or until ctx ends (false); a d that would outlast ctx's
// deadline returns false at once.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// attempt sends one attempt to the backend at addr, within the attempt
// timeout and ctx, and returns "" on success, else why it failed (and
// counts the failure by cause).
func (f *Frontend) attempt(ctx context.Context, addr string) string {
	actx, cancel := context.WithTimeout(ctx, f.cfg.Attempt)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, "http://"+addr+"/work", nil)
	if err != nil {
		f.failError.inc()
		return err.Error()
	}
	f.cfg.Token.SetOn(req)
	resp, err := f.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
	}
	switch {
	case err != nil && actx.Err() != nil:
		f.failTimeout.inc()
		return "timed out"
	case err != nil:
		f.failError.inc()
		return err.Error()
	case resp.StatusCode == http.StatusOK:
		return ""
	case resp.StatusCode == http.StatusServiceUnavailable:
		f.failRejected.inc()
		return "503 (backend full)"
	}
	f.failStatus.inc()
	return "HTTP " + resp.Status
}

// breakerState is the gauge's value: the breaker's state, closed without one.
func (f *Frontend) breakerState() BreakerState {
	if f.breaker == nil {
		return Closed
	}
	return f.breaker.State()
}

// samples are the frontend's metrics.
func (f *Frontend) samples() []sample {
	const (
		resp  = "Answers sent to clients, by HTTP status."
		rej   = "Requests or retries refused without an attempt, by reason (breaker: the circuit breaker is open or its half-open trials are taken; budget: the retry budget is spent)."
		trans = "Circuit breaker transitions, by the state entered."
		fail  = "Failed attempts, by cause (timeout: no answer within attempt-timeout or the deadline; rejected: the backend answered 503; error: the connection failed; status: any other answer)."
		gave  = "Requests answered 503, by the reason the frontend gave up (exhausted: every attempt failed; deadline: the deadline passed); breaker and budget are counted under retrysvc_rejections_total."
	)
	return []sample{
		{name: MetricRequests, help: "Requests received from clients.", value: f.requests.load()},
		{name: MetricResponses, help: resp, label: "code", lval: "200", value: f.ok.load()},
		{name: MetricResponses, help: resp, label: "code", lval: "503", value: f.unavailable.load()},
		{name: MetricAttempts, help: "Attempts sent to a backend: first tries and retries.", value: f.attempts.load()},
		{name: MetricRetries, help: "Attempts after a request's first.", value: f.retries.load()},
		{name: MetricRejections, help: rej, label: "reason", lval: "breaker", value: f.rejBreaker.load()},
		{name: MetricRejections, help: rej, label: "reason", lval: "budget", value: f.rejBudget.load()},
		{name: MetricBreaker, help: "The circuit breaker's state: 0 closed, 1 open, 2 half-open (0 for policies without a breaker).", gauge: true, value: float64(f.breakerState())},
		{name: MetricTransitions, help: trans, label: "to", lval: "open", value: f.transitions[Open].load()},
		{name: MetricTransitions, help: trans, label: "to", lval: "half_open", value: f.transitions[HalfOpen].load()},
		{name: MetricTransitions, help: trans, label: "to", lval: "closed", value: f.transitions[Closed].load()},
		{name: MetricFailures, help: fail, label: "cause", lval: "timeout", value: f.failTimeout.load()},
		{name: MetricFailures, help: fail, label: "cause", lval: "rejected", value: f.failRejected.load()},
		{name: MetricFailures, help: fail, label: "cause", lval: "error", value: f.failError.load()},
		{name: MetricFailures, help: fail, label: "cause", lval: "status", value: f.failStatus.load()},
		{name: MetricGaveUp, help: gave, label: "reason", lval: "exhausted", value: f.gaveExhausted.load()},
		{name: MetricGaveUp, help: gave, label: "reason", lval: "deadline", value: f.gaveDeadline.load()},
		{name: MetricClientGone, help: "Requests whose client went away before the answer (not answered).", value: f.clientGone.load()},
	}
}
