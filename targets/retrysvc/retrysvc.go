// Package retrysvc is faultline's service chain for retry storms: the
// reference system "retrysvc" (see targets.RegisterSystem), run by
// `faultline node --system retrysvc --role frontend|backend`. Clients call
// a frontend; the frontend calls a backend of bounded capacity with a
// retry policy; a slowdown of the backend (the service-time fault) shows
// whether the policy turns it into a retry storm that outlasts it (a
// metastable failure).
//
// # Frontend (role frontend; takes the workload's requests)
//
// Any method on any path of the client API (NodeConfig.Listen) is one
// request: the frontend makes attempts (GET /work) at its backends, the
// peers of role backend (round-robin over them), each dialled at the
// address NodeConfig.Peers gives it, so a proxy can sit on every
// frontend -> backend link. It answers 200 {"node", "backend",
// "attempts"} when an attempt succeeded (its backend answered 200), and
// 503 {"error", "definite", "node", "attempts", "reason"} when it gave up:
// every attempt failed (reason exhausted), the breaker or the budget
// refused (breaker, budget), or the deadline passed (deadline); definite is
// true when no attempt was sent. The answer comes within the option
// deadline (default 1s). An attempt fails when it has no answer within
// attempt-timeout (or the deadline), when the backend answers anything but
// 200 (503: it is full), or when the connection fails. Policies (option
// policy):
//
//	none     one attempt
//	naive    up to 1+retries attempts, each retry at once
//	backoff  up to 1+retries attempts; before retry n (n = 0, 1, ...) a
//	         delay drawn uniformly from [0, min(backoff-cap,
//	         backoff-base·2^n)] (full jitter); a delay that would pass the
//	         deadline gives up at once
//	breaker  backoff, and every attempt (first or retry) must pass a
//	         circuit breaker: breaker-failures consecutive failed
//	         attempts open it; open, it refuses every attempt for
//	         breaker-open, then turns half-open and lets breaker-probes
//	         trial attempts through: a failed trial opens it again, and
//	         once all succeeded it closes (see Breaker)
//	budget   backoff, and every retry draws on a retry budget: each
//	         request deposits budget-ratio retries, a retry takes one, and
//	         at most budget-reserve are kept in hand, so over any stretch
//	         of time retries <= budget-ratio × requests + budget-reserve
//	         (see Budget)
//
// # Backend (role backend; takes no client requests)
//
// GET /work (any method, any path) on the peer listener
// (NodeConfig.PeerListen, where the frontends' links lead) and on the
// client API alike: a bulkhead of capacity workers serves requests one at
// a time each, taking service-time per request; requests wait in a FIFO
// queue of at most queue requests; a request that finds every worker busy
// and the queue full is answered 503 at once. A queued request is served
// even when its caller has gone away (no cancellation): its work is done
// for nobody (counted as abandoned), and a queue of queue requests takes
// queue × service-time / capacity to drain, which can exceed the
// frontend's attempt-timeout: the mechanism of a metastable failure. It
// answers 200 {"node": ID} once served.
//
// # Admin API (NodeConfig.Admin), never faulted
//
// The node kit's (GET /admin/status; the clock API is served but changes
// nothing the service does, and the system declares no clock control),
// with the node's counters (below) and, in the status, breaker_state
// (0 closed, 1 open, 2 half-open), policy (frontends), in_service,
// queue_depth and service_time_ms (backends); plus
//
//	GET /metrics                   the counters in the Prometheus text
//	                               format (a registry per node, no Go
//	                               runtime metrics)
//	GET /admin/service-time        {"service_time_ms": N, "configured_ms": N}
//	PUT /admin/service-time        {"service_time_ms": N} sets a backend's
//	                               service time from its next request on
//	                               (0 to 60000, fractions allowed);
//	                               {"service_time_ms": null} restores the
//	                               option's value, as DELETE does
//
// A frontend answers /admin/service-time with 404. Every route requires
// the node's token, as the kit's do.
//
// # Metrics
//
// Counters end in _total; the status reports each under StatusKey's name
// (retrysvc_responses_total{code="503"} as responses_503):
//
//	retrysvc_requests_total           requests received (frontend: client
//	                                  requests; backend: attempts received)
//	retrysvc_responses_total{code}    answers sent, code 200 or 503
//	retrysvc_rejections_total{reason} refused without work or attempt:
//	                                  backend full; frontend breaker, budget
//	retrysvc_attempts_total           frontend: attempts sent
//	retrysvc_retries_total            frontend: attempts after the first
//	retrysvc_breaker_state            frontend gauge: 0 closed, 1 open, 2 half-open
//	retrysvc_breaker_transitions_total{to}  open, half_open, closed
//	retrysvc_attempt_failures_total{cause}  frontend: timeout, rejected, error, status
//	retrysvc_gave_up_total{reason}    frontend: exhausted, deadline
//	retrysvc_client_gone_total        frontend: clients gone before the answer
//	retrysvc_completed_total          backend: work finished, callers gone or not
//	retrysvc_abandoned_total          backend: of which, callers gone first
//	retrysvc_in_service               backend gauge
//	retrysvc_queue_depth              backend gauge
//	retrysvc_service_time_seconds     backend gauge
//
// Amplification over a window is the increase of a frontend's
// retrysvc_attempts_total over the increase of its retrysvc_requests_total.
//
// # Options (NodeConfig.Opts)
//
// Every option is accepted by both roles (a scenario's node_opts reach
// every node); each role reads its own (Options says which) and ignores
// the others. Durations take Go syntax ("300ms") or a bare number of
// milliseconds.
package retrysvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
)

// Name is the system name under which retrysvc is registered.
const Name = "retrysvc"

// The roles.
const (
	RoleFrontend = "frontend"
	RoleBackend  = "backend"
)

// Limits of the options.
const (
	MaxRetries     = 20
	MaxCapacity    = 1024
	MaxQueue       = 1 << 16
	MaxServiceTime = time.Minute
	MaxDeadline    = time.Minute
)

// maxBody bounds the request and answer bodies the service reads.
const maxBody = 64 << 10

// maxStreams bounds the HTTP/2 requests in flight on one connection to a
// node (a frontend opens more connections beyond it).
const maxStreams = 4096

// Options are the tunables accepted in NodeConfig.Opts, with their
// defaults; each doc says which role reads it.
var Options = []targets.Option{
	{Name: "policy", Default: string(PolicyNone), Doc: "frontend: the retry policy: none, naive (immediate retries), backoff (exponential, full jitter), breaker (backoff behind a circuit breaker), budget (backoff within a retry budget)"},
	{Name: "retries", Default: "3", Doc: "frontend: retries after the first attempt, 0 to 20 (policies other than none)"},
	{Name: "attempt-timeout", Default: "100ms", Doc: "frontend: how long one attempt waits for the backend's answer (at most deadline)"},
	{Name: "deadline", Default: "1s", Doc: "frontend: a client request is answered within this, whatever the policy (at most 1m)"},
	{Name: "backoff-base", Default: "10ms", Doc: "frontend: backoff before retry n is uniform in [0, min(backoff-cap, backoff-base*2^n)]"},
	{Name: "backoff-cap", Default: "200ms", Doc: "frontend: the largest backoff (at least backoff-base)"},
	{Name: "budget-ratio", Default: "0.1", Doc: "frontend, policy budget: retries each request earns, 0 to 1"},
	{Name: "budget-reserve", Default: "10", Doc: "frontend, policy budget: retries kept in hand at most (the budget starts full), so retries <= budget-ratio x requests + budget-reserve over any stretch of time"},
	{Name: "breaker-failures", Default: "5", Doc: "frontend, policy breaker: consecutive failed attempts that open the breaker"},
	{Name: "breaker-open", Default: "1s", Doc: "frontend, policy breaker: how long the breaker stays open before it turns half-open"},
	{Name: "breaker-probes", Default: "1", Doc: "frontend, policy breaker: trial attempts let through half-open; all must succeed to close it"},
	{Name: "capacity", Default: "8", Doc: "backend: requests in service at once (the bulkhead), 1 to 1024"},
	{Name: "queue", Default: "64", Doc: "backend: requests waiting for a worker at most, 0 to 65536; beyond that the answer is 503 at once"},
	{Name: "service-time", Default: "10ms", Doc: "backend: the time each request's work takes, 0 to 1m (the service-time fault changes it at run time)"},
	{Name: "log-level", Default: "info", Doc: "log level: trace, debug, info, warn, error"},
}

func init() {
	targets.RegisterSystem(targets.System{
		Name: Name,
		Description: "a service chain for retry storms: frontends call a backend of bounded capacity (bulkhead, bounded queue, no cancellation of queued work) " +
			"with a retry policy (none, naive, backoff, breaker, budget); counters on the admin API and in Prometheus format on /metrics",
		Roles: []targets.Role{
			{Name: RoleFrontend, Doc: "takes the clients' requests and calls a backend under its retry policy", Nodes: 1, Min: 1, Serves: true},
			{Name: RoleBackend, Doc: "does the work: capacity workers, a bounded queue, a service time the service-time fault changes", Nodes: 1, Min: 1, ServiceTime: true},
		},
		Options:        Options,
		CheckOptions:   CheckOptions,
		Client:         "http",
		Workload:       "http",
		PeerLinks:      true,
		Status:         nodekit.ReadStatus,
		SetServiceTime: SetServiceTime,
		Run:            Run,
	})
}

// options are the parsed options.
type options struct {
	policy            Policy
	retries           int
	attempt, deadline time.Duration
	base, cap         time.Duration
	ratio             float64
	reserve           int
	failures, probes  int
	open              time.Duration
	capacity, queue   int
	service           time.Duration
	logLevel          string
}

// CheckOptions says what is wrong with opts (unknown names, bad values,
// values that contradict each other), naming each bad option; nil if
// nothing is. It runs at validation, before anything starts, and in the
// node.
func CheckOptions(opts map[string]string) error {
	_, err := parseOptions(opts)
	return err
}

func parseOptions(opts map[string]string) (options, error) {
	var o options
	p := nodekit.ParseOptions(Name, Options, opts)
	if err := p.Err(); err != nil {
		return o, err
	}
	o.policy = Policy(p.Get("policy"))
	if !slices.Contains(Policies, o.policy) {
		p.Errorf("option policy=%q: want none, naive, backoff, breaker or budget", o.policy)
	}
	o.retries = intIn(p, "retries", 0, MaxRetries)
	o.attempt = p.Duration("attempt-timeout")
	o.deadline = p.Duration("deadline")
	o.base = p.Duration("backoff-base")
	o.cap = p.Duration("backoff-cap")
	o.ratio = ratio(p, "budget-ratio")
	o.reserve = intIn(p, "budget-reserve", 1, 1_000_000)
	o.failures = intIn(p, "breaker-failures", 1, 1_000_000)
	o.open = p.Duration("breaker-open")
	o.probes = intIn(p, "breaker-probes", 1, 1000)
	o.capacity = intIn(p, "capacity", 1, MaxCapacity)
	o.queue = intIn(p, "queue", 0, MaxQueue)
	o.service = serviceTime(p, "service-time")
	o.logLevel = p.LogLevel("log-level")
	if err := p.Err(); err != nil {
		return o, err
	}
	if o.deadline > MaxDeadline {
		p.Errorf("option deadline=%s: at most %s", o.deadline, MaxDeadline)
	}
	if o.attempt > o.deadline {
		p.Errorf("option attempt-timeout=%s is longer than deadline=%s: an attempt would never time out before its request; lower attempt-timeout or raise deadline", o.attempt, o.deadline)
	}
	if o.cap < o.base {
		p.Errorf("option backoff-cap=%s is below backoff-base=%s: raise backoff-cap", o.cap, o.base)
	}
	return o, p.Err()
}

// intIn reads option k as an integer from lo to hi.
func intIn(p *nodekit.Options, k string, lo, hi int) int {
	s := p.Get(k)
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		p.Errorf("option %s=%q: want a whole number from %d to %d", k, s, lo, hi)
	}
	return n
}

// ratio reads option k as a number from 0 to 1.
func ratio(p *nodekit.Options, k string) float64 {
	s := p.Get(k)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		p.Errorf("option %s=%q: want a number from 0 to 1, such as 0.1", k, s)
	}
	return f
}

// serviceTime reads option k as a duration from 0 to MaxServiceTime.
func serviceTime(p *nodekit.Options, k string) time.Duration {
	if s := p.Get(k); s == "0" || s == "0s" {
		return 0
	}
	d := p.Duration(k)
	if d > MaxServiceTime {
		p.Errorf("option %s=%s: at most %s", k, d, MaxServiceTime)
	}
	return d
}

// okBody answers a request served.
type okBody struct {
	Node     string `json:"node"`
	Backend  string `json:"backend,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// errorBody answers a request refused or given up.
type errorBody struct {
	Error    string `json:"error"`
	Definite bool   `json:"definite"`
	Node     string `json:"node,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v) // plain fields: never fails
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// node is what the kit's admin API serves for a node of either role: a
// nodekit.Store whose key-value methods refuse (the service has no keys).
type node struct {
	nodekit.NoKeys
	role    string
	samples func() []sample
	extra   map[string]any
	backend *Backend // nil on a frontend
}

var errNoKeys = &nodekit.Error{Code: http.StatusNotFound, Definite: true, Msg: "retrysvc has no keys: a frontend answers any request on its client API"}

// Status reports the node's counters and gauges (see the package doc).
func (n *node) Status() nodekit.Status {
	counters, extra := statusOf(n.samples())
	for k, v := range n.extra {
		extra[k] = v
	}
	return nodekit.Status{Counters: counters, Extra: extra}
}

// serviceTimeBody is the body of PUT /admin/service-time and the answer
// of every /admin/service-time route.
type serviceTimeBody struct {
	ServiceTimeMS *float64 `json:"service_time_ms"`
	ConfiguredMS  *float64 `json:"configured_ms,omitempty"`
}

func msOf(d time.Duration) *float64 {
	v := float64(d) / float64(time.Millisecond)
	return &v
}

// adminHandler serves /metrics and /admin/service-time, and the kit's
// admin API for every other route, all behind the node's token.
func (n *node) adminHandler(kit *nodekit.Node, logf func(string, ...any)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(n.samples))
	mux.HandleFunc("/admin/service-time", func(w http.ResponseWriter, r *http.Request) {
		be := n.backend
		if be == nil {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "a " + n.role + " node has no service time: set it on a backend", Definite: true})
			return
		}
		switch r.Method {
		case http.MethodGet:
		case http.MethodDelete:
			logf("service time restored", "service_time", be.SetServiceTime(nil))
		case http.MethodPut:
			d, restore, err := decodeServiceTime(r)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Definite: true})
				return
			}
			if restore {
				logf("service time restored", "service_time", be.SetServiceTime(nil))
			} else {
				logf("service time set", "service_time", be.SetServiceTime(&d), "configured", be.configured)
			}
		default:
			w.Header().Set("Allow", "GET, PUT, DELETE")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: r.Method + " /admin/service-time: use GET, PUT or DELETE", Definite: true})
			return
		}
		writeJSON(w, http.StatusOK, serviceTimeBody{ServiceTimeMS: msOf(be.ServiceTime()), ConfiguredMS: msOf(be.configured)})
	})
	mux.Handle("/", kit.AdminHandler(n))
	return kit.Guard(mux)
}

// decodeServiceTime reads {"service_time_ms": N|null}; restore is true
// for null. The error names what is wrong and what is wanted.
func decodeServiceTime(r *http.Request) (d time.Duration, restore bool, err error) {
	want := fmt.Sprintf(`want {"service_time_ms": N} with N a number of milliseconds from 0 to %d, or {"service_time_ms": null} to restore the service-time option`, MaxServiceTime.Milliseconds())
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return 0, false, fmt.Errorf("read body: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return 0, false, fmt.Errorf("the body is not a JSON object: %s", want)
	}
	raw, ok := m["service_time_ms"]
	if !ok || len(m) != 1 {
		return 0, false, fmt.Errorf("the body must hold exactly the field service_time_ms: %s", want)
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return 0, true, nil
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil || ms < 0 || ms > float64(MaxServiceTime.Milliseconds()) {
		return 0, false, fmt.Errorf("service_time_ms %s: %s", raw, want)
	}
	return time.Duration(ms * float64(time.Millisecond)), false, nil
}

// SetServiceTime sets backend n's service time to *d through its admin API
// (PUT /admin/service-time, with n's token), or restores its service-time
// option when d is nil; the node answers with the value in force. It is
// the system's targets.System.SetServiceTime, for the service-time fault.
// Safe for concurrent use.
func SetServiceTime(ctx context.Context, n targets.NodeInfo, d *time.Duration) error {
	body := []byte(`{"service_time_ms":null}`)
	if d != nil {
		body, _ = json.Marshal(serviceTimeBody{ServiceTimeMS: msOf(*d)})
	}
	code, answer, err := nodekit.AdminCall(ctx, n, http.MethodPut, "/admin/service-time", body)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("node %s: PUT /admin/service-time at %s: HTTP %d: %.200s", n.ID, n.Admin, code, strings.TrimSpace(string(answer)))
	}
	return nil
}

// backendsOf returns the peers a frontend calls: those of role backend
// (every peer, when the node was given no roles), by id.
func backendsOf(cfg targets.NodeConfig) []BackendAddr {
	var out []BackendAddr
	for id, addr := range cfg.Peers {
		if len(cfg.PeerRoles) == 0 || cfg.PeerRoles[id] == RoleBackend {
			out = append(out, BackendAddr{ID: id, Addr: addr})
		}
	}
	slices.SortFunc(out, func(a, b BackendAddr) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Run serves a node of cfg.Role: its service on cfg.Listen (and, on a
// backend, on cfg.PeerListen too), the admin API on cfg.Admin. It calls
// cfg.Ready once every listener is bound and returns nil when ctx ends
// (after up to 2 s for requests in flight), an error if the options are
// bad, a frontend has no backend, a listener cannot be bound or a server
// fails.
func Run(ctx context.Context, cfg targets.NodeConfig) error {
	o, err := parseOptions(cfg.Opts)
	if err != nil {
		return err
	}
	if cfg.Listen == "" || cfg.Admin == "" {
		return fmt.Errorf("retrysvc: node %s: both a client (--listen) and an admin (--admin) address are required", cfg.ID)
	}
	kit := nodekit.New(cfg)
	log := kit.NewLogger(Name, o.logLevel)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	n := &node{NoKeys: nodekit.NoKeys{Err: errNoKeys}, role: cfg.Role}
	type listener struct {
		what, addr string
		h          http.Handler
	}
	var ls []listener
	stop := make(chan struct{})
	switch cfg.Role {
	case RoleFrontend:
		backends := backendsOf(cfg)
		if len(backends) == 0 {
			return fmt.Errorf("retrysvc: frontend %s has no backend: give it --peer ID=ADDR of a backend (and --peer-role ID=backend)", cfg.ID)
		}
		fe := NewFrontend(FrontendConfig{
			ID: cfg.ID, Policy: o.policy, Retries: o.retries, Attempt: o.attempt, Deadline: o.deadline,
			Backoff:         Backoff{Base: o.base, Cap: o.cap},
			BreakerFailures: o.failures, BreakerProbes: o.probes, BreakerOpen: o.open,
			BudgetRatio: o.ratio, BudgetReserve: o.reserve,
			Backends: backends, Token: cfg.Token,
			OnBreaker: func(to BreakerState) { log.Info("breaker", "to", to.String()) },
		})
		defer fe.Close()
		n.samples = fe.samples
		ids := make([]string, len(backends))
		for i, b := range backends {
			ids[i] = b.ID
		}
		n.extra = map[string]any{"policy": string(o.policy), "backends": ids}
		ls = append(ls, listener{"client API", cfg.Listen, kit.Guard(fe)})
		log.Info("frontend", "policy", o.policy, "retries", o.retries, "attempt_timeout", o.attempt, "deadline", o.deadline, "backends", strings.Join(ids, ","))
	case RoleBackend:
		be := NewBackend(cfg.ID, o.capacity, o.queue, o.service)
		be.Run(ctx)
		n.samples, n.backend = be.samples, be
		n.extra = map[string]any{"capacity": o.capacity, "queue": o.queue}
		h := kit.Guard(be.handler(stop))
		ls = append(ls, listener{"client API", cfg.Listen, h})
		if cfg.PeerListen != "" {
			ls = append(ls, listener{"peer API", cfg.PeerListen, h})
		}
		log.Info("backend", "capacity", o.capacity, "queue", o.queue, "service_time", o.service)
	default:
		return fmt.Errorf("retrysvc: node %s: no role %q (roles: %s, %s)", cfg.ID, cfg.Role, RoleFrontend, RoleBackend)
	}
	ls = append(ls, listener{"admin API", cfg.Admin, n.adminHandler(kit, log.Info)})

	var servers []*http.Server
	var lns []net.Listener
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, x := range lns {
				x.Close()
			}
			return fmt.Errorf("retrysvc: node %s: %s: listen on %s: %w", cfg.ID, l.what, l.addr, err)
		}
		lns = append(lns, ln)
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		// HTTP/1.1 and HTTP/2 with prior knowledge (the frontends' attempts).
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: maxStreams}
		servers = append(servers, srv)
	}
	errc := make(chan error, len(servers))
	for i, ln := range lns {
		go func() { errc <- fmt.Errorf("%s: %w", ls[i].what, servers[i].Serve(ln)) }()
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("retrysvc: node %s: %w", cfg.ID, err)
	}
	log.Info("stopping")
	close(stop) // backends: requests still queued are answered 503
	nodekit.ShutdownAll(2*time.Second, servers...)
	return runErr
}
