// Package httpsvc is a small HTTP service to load-test: the reference
// system "httpsvc" (see targets.RegisterSystem), run by `faultline node
// --system httpsvc`. Its nodes share nothing; each answers every request.
//
// # Client API (NodeConfig.Listen)
//
// Any method on any path answers after the node's fixed service time
// (option latency, default 1ms; at least that long, as the operating
// system's timers allow) with a JSON body
//
//	{"node": ID, "method": M, "path": P, "query": Q, "count": N, "bytes": B}
//
// where count is the number of requests the node has answered so far
// (this one included) and bytes the length of the request's body. The
// query parameter status=NNN (200 to 599) sets the answer's status; the
// body is the same. When the node has a token (NodeConfig.Token, from
// faultline's runtimes) a request without it is answered 401 at once, as
// every node of faultline's own answers.
//
// # Admin API (NodeConfig.Admin)
//
// The node kit's (targets/nodekit): GET /admin/status reports role "node"
// and the counters requests and status_NNN (one per status answered);
// the clock API is served but changes nothing the service does.
package httpsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
)

// Name is the system name under which httpsvc is registered.
const Name = "httpsvc"

// Options are the tunables accepted in NodeConfig.Opts, with their defaults.
var Options = []targets.Option{
	{Name: "latency", Default: "1ms", Doc: "the service time of every request, 0 to 1m (at least this long: the operating system's timers add up to about a millisecond)"},
}

// MaxLatency is the longest service time option latency accepts.
const MaxLatency = time.Minute

func init() {
	targets.RegisterSystem(targets.System{
		Name: Name,
		Description: "an HTTP service to load-test: any method on any path answers after a fixed service time (--opt latency=2ms) " +
			"with a JSON body echoing the path and a counter; ?status=NNN picks the status",
		Roles: []targets.Role{{
			Name: "node", Doc: "an HTTP server; nodes share nothing",
			Nodes: 1, Min: 1, Serves: true,
		}},
		Options:      Options,
		CheckOptions: CheckOptions,
		// The http workload speaks to the nodes itself; the adapter is
		// only the run's default.
		Client:   "http",
		Workload: "http",
		Status:   nodekit.ReadStatus,
		Run:      Run,
	})
}

// CheckOptions checks the option values.
func CheckOptions(opts map[string]string) error {
	_, err := latency(opts)
	return err
}

func latency(opts map[string]string) (time.Duration, error) {
	v, ok := opts["latency"]
	if !ok {
		v = Options[0].Default
	}
	d, err := time.ParseDuration(v)
	if v == "0" {
		d, err = 0, nil
	}
	if err != nil || d < 0 || d > MaxLatency {
		return 0, fmt.Errorf("option latency: %q: want a duration from 0 to %s, e.g. 2ms", v, MaxLatency)
	}
	return d, nil
}

// Service is one node's HTTP service: its handler and its counters. It
// implements nodekit.Store for the kit's admin API (its key-value methods
// refuse: the service has no keys).
type Service struct {
	nodekit.NoKeys // the service has no keys

	id      string
	latency time.Duration
	count   atomic.Int64
	mu      sync.Mutex
	byCode  map[int]int64
}

// NewService returns the service of node id with service time latency.
func NewService(id string, latency time.Duration) *Service {
	return &Service{NoKeys: nodekit.NoKeys{Err: errNoKeys}, id: id, latency: latency, byCode: map[int]int64{}}
}

type answer struct {
	Node   string `json:"node"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query"`
	Count  int64  `json:"count"`
	Bytes  int64  `json:"bytes"`
}

// ServeHTTP answers any request: see the package doc.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := http.StatusOK
	if v := r.URL.Query().Get("status"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil || c < 200 || c > 599 {
			s.write(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("status=%q: want 200 to 599", v)})
			return
		}
		code = c
	}
	n, _ := io.Copy(io.Discard, r.Body)
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client went away
		}
	}
	s.write(w, code, answer{Node: s.id, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Count: s.count.Add(1), Bytes: n})
}

func (s *Service) write(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v) // plain fields: never fails
	s.mu.Lock()
	s.byCode[code]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// Status reports the counters: requests, and status_NNN per status.
func (s *Service) Status() nodekit.Status {
	c := map[string]int64{"requests": s.count.Load()}
	s.mu.Lock()
	for code, n := range s.byCode {
		c["status_"+strconv.Itoa(code)] = n
	}
	s.mu.Unlock()
	return nodekit.Status{Counters: c}
}

var errNoKeys = &nodekit.Error{Code: http.StatusNotFound, Definite: true, Msg: "httpsvc has no keys: it answers any request on its client API"}

// guard answers 401 to a request without the node's token ("" lets every
// request through).
func guard(tok targets.Token, h http.Handler) http.Handler {
	if tok == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tok.Allows(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="faultline node"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":%q,"definite":true}`+"\n", "this node requires its run's token (Authorization: Bearer TOKEN); faultline gives it to the nodes it starts in "+targets.TokenEnv)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Run serves a node: the service on cfg.Listen, the kit's admin API on
// cfg.Admin; it calls cfg.Ready once both listen and returns nil when ctx
// ends (after up to 2 s for requests in flight), an error if a listener
// cannot be bound or a server fails.
func Run(ctx context.Context, cfg targets.NodeConfig) error {
	lat, err := latency(cfg.Opts)
	if err != nil {
		return err
	}
	if cfg.Listen == "" || cfg.Admin == "" {
		return fmt.Errorf("httpsvc: node %s: both a client (--listen) and an admin (--admin) address are required", cfg.ID)
	}
	svc := NewService(cfg.ID, lat)
	kit := nodekit.New(cfg)
	cl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("httpsvc: node %s: listen on %s: %w", cfg.ID, cfg.Listen, err)
	}
	al, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		cl.Close()
		return fmt.Errorf("httpsvc: node %s: admin listen on %s: %w", cfg.ID, cfg.Admin, err)
	}
	servers := []*http.Server{
		{Handler: guard(cfg.Token, svc), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
		{Handler: kit.AdminHandler(svc), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
	}
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{cl, al} {
		go func() { errc <- servers[i].Serve(ln) }()
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("httpsvc: node %s: %w", cfg.ID, err)
	}
	nodekit.ShutdownAll(2*time.Second, servers...)
	return runErr
}
