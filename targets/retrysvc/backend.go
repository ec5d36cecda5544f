package retrysvc

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Backend is a backend node's service: a bulkhead of capacity workers, a
// bounded FIFO queue in front of them, and a service time per request that
// can change at run time. Its methods are safe for concurrent use.
//
// A request is served at once by an idle worker, else queued if the queue
// has room, else answered 503 at once (counted as a rejection, reason
// full). Queued work is never cancelled: a request whose caller has gone
// away (timed out) is still served when its turn comes, and counted as
// completed and abandoned; that is the wasted work of a retry storm.
type Backend struct {
	id         string
	capacity   int
	configured time.Duration // the service-time option
	service    atomic.Int64  // the service time now, in ns

	queue     chan *job
	inService atomic.Int64

	requests, ok, unavailable, full, completed, abandoned counter
}

// job is one request's work.
type job struct {
	done chan struct{} // closed by the worker when the work is finished
	gone atomic.Bool   // set by the handler when the caller went away first
}

// NewBackend returns the backend of node id with capacity workers, a
// queue of queue requests and service time service. Call Run to start its
// workers.
func NewBackend(id string, capacity, queue int, service time.Duration) *Backend {
	b := &Backend{id: id, capacity: capacity, configured: service, queue: make(chan *job, queue)}
	b.service.Store(int64(service))
	return b
}

// ServiceTime returns the service time now.
func (b *Backend) ServiceTime() time.Duration { return time.Duration(b.service.Load()) }

// SetServiceTime sets the service time of the requests whose service
// starts from now on; nil restores the configured one. It returns the
// service time now.
func (b *Backend) SetServiceTime(d *time.Duration) time.Duration {
	v := b.configured
	if d != nil {
		v = *d
	}
	b.service.Store(int64(v))
	return v
}

// Run runs the workers until ctx ends; requests still queued then are
// dropped (their handlers answer 503).
func (b *Backend) Run(ctx context.Context) {
	for i := 0; i < b.capacity; i++ {
		go b.worker(ctx)
	}
}

func (b *Backend) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-b.queue:
			b.inService.Add(1)
			if d := b.ServiceTime(); d > 0 {
				time.Sleep(d) // the work; nobody can cancel it
			}
			b.inService.Add(-1)
			b.completed.inc()
			if j.gone.Load() {
				b.abandoned.inc()
			}
			close(j.done)
		}
	}
}

// handler takes one request (any method, any path): queued or refused at
// once, then answered 200 {"node": ID} once served, unless the caller went
// away first. Closing stop answers the requests still waiting 503 (the
// node is stopping).
func (b *Backend) handler(stop <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.inc()
		j := &job{done: make(chan struct{})}
		select {
		case b.queue <- j:
		default:
			b.full.inc()
			b.unavailable.inc()
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "backend " + b.id + " is full: every worker is busy and the queue is full", Definite: true, Node: b.id})
			return
		}
		select {
		case <-j.done:
			b.ok.inc()
			writeJSON(w, http.StatusOK, okBody{Node: b.id})
		case <-r.Context().Done():
			j.gone.Store(true) // served all the same, for nobody
		case <-stop:
			b.unavailable.inc()
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "backend " + b.id + " is stopping", Node: b.id})
		}
	})
}

// samples are the backend's metrics.
func (b *Backend) samples() []sample {
	return []sample{
		{name: MetricRequests, help: "Requests (attempts) received from callers.", value: b.requests.load()},
		{name: MetricResponses, help: "Answers sent to callers, by HTTP status.", label: "code", lval: "200", value: b.ok.load()},
		{name: MetricResponses, help: "Answers sent to callers, by HTTP status.", label: "code", lval: "503", value: b.unavailable.load()},
		{name: MetricRejections, help: "Requests refused at once, by reason (full: every worker busy and the queue full).", label: "reason", lval: "full", value: b.full.load()},
		{name: MetricCompleted, help: "Requests whose work finished, their callers gone or not.", value: b.completed.load()},
		{name: MetricAbandoned, help: "Requests whose work finished after their caller had gone away (wasted work).", value: b.abandoned.load()},
		{name: MetricInService, help: "Requests being worked on now (at most capacity).", gauge: true, value: float64(b.inService.Load())},
		{name: MetricQueueDepth, help: "Requests waiting for a worker now (at most queue).", gauge: true, value: float64(len(b.queue))},
		{name: MetricServiceTime, help: "The time each request's work takes now, in seconds.", gauge: true, value: b.ServiceTime().Seconds()},
	}
}
