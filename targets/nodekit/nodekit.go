// Package nodekit is the node protocol of faultline's reference systems,
// served by one package: a system supplies its state machine and its status
// (a Store), and the kit serves the client API, the admin API, the node's
// clock offset and its counters.
//
// # Client API (NodeConfig.Listen), HTTP/JSON
//
//	GET  /kv/{key}       -> 200 {"value": V}   (V is null for an absent key)
//	PUT  /kv/{key}       {"value": V}          -> 200 {}
//	POST /kv/{key}/cas   {"from": X, "to": Y}  -> 200 {} | 409 {"error":"mismatch"}
//	any other failure    -> 4xx/5xx {"error": TEXT, "definite": BOOL, "leader": ID}
//
// Every 200 and every 409 mismatch also carries "term": N, the term or
// epoch under which the node answered, when the Store reported one with
// AnsweredIn (omitted otherwise). The http adapter records it as the
// completion's "term"; the split-brain checker judges authority from it.
//
// Keys are one path segment (escape "/" as %2F). Request bodies are at most
// MaxBody bytes (larger: 413, definite). Values reach the Store in
// faultline's one canonical JSON form (history.CanonicalJSON): objects with
// sorted keys, integral numbers as plain integers, other numbers as
// float64; so a CAS from 1.0 matches a stored 1, and a put of 1.0 reads
// back as 1. A body that is not a JSON object with the required fields is
// a definite 400.
//
// A Store's failure is answered from its *Error (HTTP code, definite,
// leader); ErrMismatch from CAS is the 409; any other error is a 500 with
// "definite": false, since the kit cannot know whether it took effect.
// "definite" is true only when the request certainly had no effect; the
// http adapter (targets/httpkv) then records fail, else info.
//
// # Admin API (NodeConfig.Admin), never faulted
//
//	GET  /admin/status    -> {"id", "role", "term", "leader", "commit_index",
//	                          "applied_index", "counters", "clock_offset_ms",
//	                          "clock_drift", "bugs", "uptime_ms"} plus the
//	                          Store's extras
//	GET  /admin/clock     -> {"offset_ms": N, "drift": F}
//	POST /admin/clock     {"offset_ms": N, "drift": F} -> 200 {"offset_ms": N, "drift": F}
//	GET  /admin/kv/{key}  -> {"value": V}  the replica's own state (Store.LocalGet)
//
// The clock (Node.Now) is the wall clock shifted by offset_ms (an integer
// number of milliseconds, may be negative; required) plus drift seconds
// per real second since the POST (a number above -1 and at most 10;
// optional, default 0): -0.95 makes the clock run at 5% speed, 1 at double
// speed. Each POST replaces both and restarts the drift from its own
// moment, so {"offset_ms": 0} resets the clock to the wall clock. A body
// with anything else, or a value out of range, is a definite 400 naming the
// field. The status reports the values set (clock_offset_ms, clock_drift).
//
// The counters merge the Store's own with the kit's: reads, writes, cas,
// cas_mismatch, local_reads (successful operations) and errors_KIND for
// each failure answered (KIND is Error.Kind: bad_request for a body the
// kit refused, refused or indefinite by default, internal for an error
// that is not an *Error); errors_client_gone counts requests the Store gave
// up on because the client went away (nothing is answered);
// errors_unauthorized counts requests refused for want of the token.
//
// # Token
//
// When NodeConfig.Token is set (`faultline node` takes it from the
// environment variable targets.TokenEnv, never from a flag), both APIs
// answer every request that does not carry it, as "Authorization: Bearer
// TOKEN" or as the password of HTTP basic auth, with 401 {"error": TEXT,
// "definite": true}. Without a token both APIs are open (a node started by
// hand).
//
// # Client side
//
// ReadStatus, SetClock and LocalRead speak the admin API from faultline's
// side, sending the node's token (targets.NodeInfo.Token) when it has one;
// Hooks puts them into a targets.System, so that a kit-based system
// registers status reading, clock faults and local reads in one line.
package nodekit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// MaxBody bounds the request bodies of both APIs, and the answers the client
// functions read, in bytes.
const MaxBody = 1 << 20

// ErrMismatch is what Store.CAS returns when the register did not hold the
// expected value; the kit answers 409 {"error":"mismatch"}.
var ErrMismatch = errors.New("mismatch")

// Error is a failure a Store reports to the client. The kit writes it as
// Code {"error": Msg, "definite": Definite, "leader": Leader}.
type Error struct {
	// Code is the HTTP status, 400..599 (anything else is sent as 500).
	Code int
	// Definite is true only when the request certainly had no effect (it
	// was refused before it was proposed); false sends the client to
	// "unknown" (info).
	Definite bool
	// Leader is the id of the node to retry on, if known; the http adapter
	// follows it only on definite failures.
	Leader string
	// Msg is the error text; it should say what to do next.
	Msg string
	// Kind names the counter (errors_KIND) that counts this failure, e.g.
	// "not_leader"; "" counts it as "refused" (definite) or "indefinite".
	Kind string
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) kind() string {
	switch {
	case e.Kind != "":
		return e.Kind
	case e.Definite:
		return "refused"
	}
	return "indefinite"
}

type termKey struct{}

// termSlot holds the term a Store answered under; 0 until AnsweredIn.
type termSlot struct{ term atomic.Uint64 }

// AnsweredIn records that the request whose context is ctx is answered
// under term (or epoch) term: the authority the answer rests on, e.g. the
// term of the log entry a write committed in, or the term in which a read's
// leadership was confirmed (or, for a node serving without authority, the
// term it believes it leads). The kit sends it in the answer as "term".
// Call it from Get, Put or CAS before returning; the last call wins; a
// context the kit did not make (or term 0) is ignored. Safe for concurrent
// use.
func AnsweredIn(ctx context.Context, term uint64) {
	if s, ok := ctx.Value(termKey{}).(*termSlot); ok && term > 0 {
		s.term.Store(term)
	}
}

// withTerm returns r's context with a fresh term slot.
func withTerm(r *http.Request) (context.Context, *termSlot) {
	s := &termSlot{}
	return context.WithValue(r.Context(), termKey{}, s), s
}

// Status is a Store's account of itself, merged by the kit into the answer
// of GET /admin/status.
type Status struct {
	// Role is the node's current role (leader, follower, candidate,
	// primary, backup, ...); "" reports the role the node was started with.
	Role         string
	Term         uint64 // term or epoch; 0 if the system has none
	Leader       string // the id of the node this one believes leads; "" if none or unknown
	CommitIndex  uint64
	AppliedIndex uint64
	// Counters are the system's own counters; they must not reuse the
	// kit's names (see the package doc), which win.
	Counters map[string]int64
	// Extra are further top-level fields of the status (e.g. last_index);
	// the kit's field names win over them.
	Extra map[string]any
}

// Store is what a reference system supplies: its state machine and its
// status. Every method is called from many goroutines at once.
type Store interface {
	// Get returns the value at key (nil or JSON null when absent), through
	// the system's read path: linearizable or not, as the system chooses.
	// ctx ends when the client goes away.
	Get(ctx context.Context, key string) (json.RawMessage, error)
	// Put stores value (canonical JSON) at key.
	Put(ctx context.Context, key string, value json.RawMessage) error
	// CAS sets key to to if it holds from (both canonical JSON; null
	// matches an absent key) and returns ErrMismatch if it does not.
	CAS(ctx context.Context, key string, from, to json.RawMessage) error
	// LocalGet returns the replica's own value at key, bypassing
	// replication and any leadership check (nil or null when absent). It
	// must not block on the network.
	LocalGet(key string) json.RawMessage
	// Status returns the node's status. It must not block on the network:
	// the admin API answers while the node is partitioned.
	Status() Status
}

// NoKeys is the key-value half of a Store for a system that has no keys
// (an HTTP service such as httpsvc or retrysvc): Get, Put and CAS refuse
// with Err (make it a definite 404 saying what the service answers
// instead), LocalGet returns nil. Embed it and supply Status.
type NoKeys struct{ Err *Error }

// Get refuses with k.Err.
func (k NoKeys) Get(context.Context, string) (json.RawMessage, error) { return nil, k.Err }

// Put refuses with k.Err.
func (k NoKeys) Put(context.Context, string, json.RawMessage) error { return k.Err }

// CAS refuses with k.Err.
func (k NoKeys) CAS(context.Context, string, json.RawMessage, json.RawMessage) error { return k.Err }

// LocalGet returns nil: there are no keys.
func (NoKeys) LocalGet(string) json.RawMessage { return nil }

// Node is the kit of one node: its clock, its counters, and the servers of
// its two APIs. Create it with New before the system starts (so the system
// can use Now from the start), then call Serve once. Its methods are safe
// for concurrent use.
type Node struct {
	// Log, if set, receives one line per notable event (serving, clock
	// offset set, stopping) as a message and key/value pairs, like
	// hclog.Logger.Info. Set it before Serve.
	Log func(msg string, keyvals ...any)
	// ShutdownGrace bounds how long Serve waits for requests in flight after
	// ctx is cancelled before it closes their connections (default 2s). Set
	// it before Serve.
	ShutdownGrace time.Duration

	cfg     targets.NodeConfig
	started time.Time
	clock   atomic.Pointer[clockState] // nil: the wall clock

	reads, writes, cas, casMismatch, localReads atomic.Int64
	errMu                                       sync.Mutex
	errs                                        map[string]int64

	addrMu             sync.Mutex
	clientAd, adminAdr string
}

// New returns the kit of the node cfg describes. It uses cfg.ID, Role,
// Listen, Admin, Bugs, Token and Ready.
func New(cfg targets.NodeConfig) *Node {
	return &Node{cfg: cfg, started: time.Now(), errs: map[string]int64{}}
}

// Serve is New(cfg).Serve(ctx, store), for systems that need neither the
// clock nor the logger before serving.
func Serve(ctx context.Context, cfg targets.NodeConfig, store Store) error {
	return New(cfg).Serve(ctx, store)
}

// clockState is the clock set through POST /admin/clock: an offset, and a
// drift counted from since (which carries a monotonic reading).
type clockState struct {
	offsetMS int64
	drift    float64
	since    time.Time
}

// at returns the node's clock when the wall clock reads now (which must
// carry a monotonic reading).
func (c *clockState) at(now time.Time) time.Time {
	shift := time.Duration(c.offsetMS) * time.Millisecond
	if c.drift != 0 {
		shift += time.Duration(c.drift * float64(now.Sub(c.since)))
	}
	return now.Round(0).Add(shift)
}

// Now returns the node's clock: the wall clock shifted by the offset set
// through the admin API, plus the drift set with it times the real time
// elapsed since it was set (see the package doc). It carries no monotonic
// reading, so durations between two Now values see the skew (its steps and
// its rate) as the node's logic would on a real machine whose clock is
// off. Safe for concurrent use.
func (n *Node) Now() time.Time {
	now := time.Now()
	if c := n.clock.Load(); c != nil {
		return c.at(now)
	}
	return now.Round(0)
}

// ClockOffset returns the offset set through POST /admin/clock (0 at start).
func (n *Node) ClockOffset() time.Duration {
	if c := n.clock.Load(); c != nil {
		return time.Duration(c.offsetMS) * time.Millisecond
	}
	return 0
}

// ClockDrift returns the drift set through POST /admin/clock (0 at start):
// the seconds Now gains per real second.
func (n *Node) ClockDrift() float64 {
	if c := n.clock.Load(); c != nil {
		return c.drift
	}
	return 0
}

// Addrs returns the addresses the client and admin APIs listen on, once
// Serve has bound them (so before cfg.Ready is called); "" before.
func (n *Node) Addrs() (client, admin string) {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.clientAd, n.adminAdr
}

func (n *Node) logf(msg string, keyvals ...any) {
	if n.Log != nil {
		n.Log(msg, keyvals...)
	}
}

// Serve serves the client API on cfg.Listen and the admin API on
// cfg.Admin, calls cfg.Ready once both listen, and runs until ctx is
// cancelled; then it stops accepting, waits up to ShutdownGrace for
// requests in flight, and returns nil. It returns an error if a listener
// cannot be bound or a server fails. Call it once per Node.
func (n *Node) Serve(ctx context.Context, store Store) error {
	id := n.cfg.ID
	if n.cfg.Listen == "" || n.cfg.Admin == "" {
		return fmt.Errorf("nodekit: node %s: both a client (--listen) and an admin (--admin) address are required", id)
	}
	clientLn, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("nodekit: node %s: client API listen on %s: %w", id, n.cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", n.cfg.Admin)
	if err != nil {
		clientLn.Close()
		return fmt.Errorf("nodekit: node %s: admin API listen on %s: %w", id, n.cfg.Admin, err)
	}
	n.addrMu.Lock()
	n.clientAd, n.adminAdr = clientLn.Addr().String(), adminLn.Addr().String()
	n.addrMu.Unlock()

	clientSrv := &http.Server{Handler: n.ClientHandler(store), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	adminSrv := &http.Server{Handler: n.AdminHandler(store), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 2)
	go func() { errc <- fmt.Errorf("client API: %w", clientSrv.Serve(clientLn)) }()
	go func() { errc <- fmt.Errorf("admin API: %w", adminSrv.Serve(adminLn)) }()
	n.logf("serving", "client", clientLn.Addr().String(), "admin", adminLn.Addr().String(), "bugs", strings.Join(n.cfg.Bugs, ","))
	if n.cfg.Ready != nil {
		n.cfg.Ready()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("nodekit: node %s: %w", id, err)
	}
	n.logf("stopping")
	grace := n.ShutdownGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	ShutdownAll(grace, clientSrv, adminSrv)
	return runErr
}

// ShutdownAll shuts the servers down at once, each gracefully (requests
// in flight finish) within grace, and closes any still busy then. It
// returns when all are down.
func ShutdownAll(grace time.Duration, servers ...*http.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Shutdown(sctx) != nil {
				s.Close()
			}
		}()
	}
	wg.Wait()
}

// errorBody is the JSON of every failure other than a CAS mismatch.
type errorBody struct {
	Error    string `json:"error"`
	Definite bool   `json:"definite"`
	Leader   string `json:"leader,omitempty"`
}

// writeJSON writes v as the answer, without HTML escaping (values come back
// as they were stored).
func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"encode response","definite":false}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

func (n *Node) countError(kind string) {
	n.errMu.Lock()
	n.errs[kind]++
	n.errMu.Unlock()
}

// refuse answers a request the kit refused before it reached the Store.
func (n *Node) refuse(w http.ResponseWriter, code int, format string, args ...any) {
	n.countError("bad_request")
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...), Definite: true})
}

// fail answers a Store's error.
func (n *Node) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
			n.countError("client_gone") // nobody to answer
			return
		}
		e = &Error{Code: http.StatusInternalServerError, Msg: err.Error() + " (the request may have taken effect)", Kind: "internal"}
	}
	code := e.Code
	if code < 400 || code > 599 {
		code = http.StatusInternalServerError
	}
	msg := e.Msg
	if msg == "" {
		msg = http.StatusText(code)
	}
	n.countError(e.kind())
	writeJSON(w, code, errorBody{Error: msg, Definite: e.Definite, Leader: e.Leader})
}

// ClientHandler returns the handler of the client API over store (Serve
// uses it; it is exported for systems that serve it themselves). When the
// node has a token (NodeConfig.Token) the handler answers 401 to every
// request without it.
func (n *Node) ClientHandler(store Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		ctx, ts := withTerm(r)
		v, err := store.Get(ctx, r.PathValue("key"))
		if err != nil {
			n.fail(w, r, err)
			return
		}
		n.reads.Add(1)
		writeJSON(w, http.StatusOK, valueBody{Value: orNull(v), Term: ts.term.Load()})
	})
	mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		vals, code, err := decodeBody(w, r, "value")
		if err != nil {
			n.refuse(w, code, "%v", err)
			return
		}
		ctx, ts := withTerm(r)
		if err := store.Put(ctx, r.PathValue("key"), vals[0]); err != nil {
			n.fail(w, r, err)
			return
		}
		n.writes.Add(1)
		writeJSON(w, http.StatusOK, ackBody{Term: ts.term.Load()})
	})
	mux.HandleFunc("POST /kv/{key}/cas", func(w http.ResponseWriter, r *http.Request) {
		vals, code, err := decodeBody(w, r, "from", "to")
		if err != nil {
			n.refuse(w, code, "%v", err)
			return
		}
		ctx, ts := withTerm(r)
		err = store.CAS(ctx, r.PathValue("key"), vals[0], vals[1])
		switch {
		case errors.Is(err, ErrMismatch):
			n.casMismatch.Add(1)
			writeJSON(w, http.StatusConflict, mismatchBody{Error: "mismatch", Term: ts.term.Load()})
		case err != nil:
			n.fail(w, r, err)
		default:
			n.cas.Add(1)
			writeJSON(w, http.StatusOK, ackBody{Term: ts.term.Load()})
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n.refuse(w, http.StatusNotFound, "no route %s %s: the API is GET|PUT /kv/{key} and POST /kv/{key}/cas", r.Method, r.URL.Path)
	})
	return n.guard(mux)
}

// Guard returns h behind the node's token, as the kit's own APIs are: for
// systems that serve further routes or listeners of their own (retrysvc's
// /metrics and peer API). See guard.
func (n *Node) Guard(h http.Handler) http.Handler { return n.guard(h) }

// guard refuses, with 401 and a definite error body, every request that
// does not carry the node's token (NodeConfig.Token), and counts it as
// errors_unauthorized; without a token it returns h itself.
func (n *Node) guard(h http.Handler) http.Handler {
	tok := n.cfg.Token
	if tok == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tok.Allows(r) {
			n.countError("unauthorized")
			w.Header().Set("WWW-Authenticate", `Bearer realm="faultline node"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "this node requires its run's token (Authorization: Bearer TOKEN); faultline gives it to the nodes it starts in " + targets.TokenEnv, Definite: true})
			return
		}
		h.ServeHTTP(w, r)
	})
}

type valueBody struct {
	Value json.RawMessage `json:"value"`
	Term  uint64          `json:"term,omitempty"`
}

// ackBody answers a successful put or cas.
type ackBody struct {
	Term uint64 `json:"term,omitempty"`
}

// mismatchBody answers a cas whose register did not hold "from".
type mismatchBody struct {
	Error string `json:"error"`
	Term  uint64 `json:"term,omitempty"`
}

func orNull(v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage("null")
	}
	return v
}

// readBody reads at most MaxBody bytes of r's body; the int is the HTTP
// status to refuse with.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", MaxBody)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return b, 0, nil
}

// decodeBody reads a JSON object and returns the canonical form of each
// named field; every field is required.
func decodeBody(w http.ResponseWriter, r *http.Request, fields ...string) ([]json.RawMessage, int, error) {
	b, code, err := readBody(w, r)
	if err != nil {
		return nil, code, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, http.StatusBadRequest, fmt.Errorf("body is not a JSON object (want %s)", wantBody(fields))
	}
	out := make([]json.RawMessage, len(fields))
	for i, f := range fields {
		v, ok := m[f]
		if !ok {
			return nil, http.StatusBadRequest, fmt.Errorf("body lacks field %q (want %s)", f, wantBody(fields))
		}
		c, err := history.CanonicalJSON(v)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("field %q: %v", f, err)
		}
		out[i] = json.RawMessage(c)
	}
	return out, 0, nil
}

func wantBody(fields []string) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprintf("%q: V", f)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// counters returns the kit's counters merged over the system's.
func (n *Node) counters(sys map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(sys)+8)
	for k, v := range sys {
		out[k] = v
	}
	out["reads"] = n.reads.Load()
	out["writes"] = n.writes.Load()
	out["cas"] = n.cas.Load()
	out["cas_mismatch"] = n.casMismatch.Load()
	out["local_reads"] = n.localReads.Load()
	n.errMu.Lock()
	for k, v := range n.errs {
		out["errors_"+k] = v
	}
	n.errMu.Unlock()
	return out
}

// status returns the answer of GET /admin/status.
func (n *Node) status(store Store) map[string]any {
	st := store.Status()
	out := make(map[string]any, len(st.Extra)+10)
	for k, v := range st.Extra {
		out[k] = v
	}
	role := st.Role
	if role == "" {
		role = n.cfg.Role
	}
	bugs := append([]string{}, n.cfg.Bugs...)
	sort.Strings(bugs)
	out["id"] = n.cfg.ID
	out["role"] = role
	out["term"] = st.Term
	out["leader"] = st.Leader
	out["commit_index"] = st.CommitIndex
	out["applied_index"] = st.AppliedIndex
	out["counters"] = n.counters(st.Counters)
	out["clock_offset_ms"] = n.ClockOffset().Milliseconds()
	out["clock_drift"] = n.ClockDrift()
	out["bugs"] = bugs
	out["uptime_ms"] = time.Since(n.started).Milliseconds()
	return out
}

// AdminHandler returns the handler of the admin API over store (Serve uses
// it; it is exported for systems that serve it themselves). When the node
// has a token (NodeConfig.Token) the handler answers 401 to every request
// without it.
func (n *Node) AdminHandler(store Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.status(store))
	})
	mux.HandleFunc("GET /admin/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, clockBody{OffsetMS: ptr(n.ClockOffset().Milliseconds()), Drift: ptr(n.ClockDrift())})
	})
	mux.HandleFunc("POST /admin/clock", func(w http.ResponseWriter, r *http.Request) {
		b, code, err := readBody(w, r)
		if err != nil {
			writeJSON(w, code, errorBody{Error: err.Error(), Definite: true})
			return
		}
		body, err := decodeClock(b)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Definite: true})
			return
		}
		c := &clockState{offsetMS: *body.OffsetMS, drift: *body.Drift, since: time.Now()}
		old := n.clock.Swap(c)
		if old == nil {
			old = &clockState{}
		}
		n.logf("clock set", "offset_ms", c.offsetMS, "drift", c.drift, "previous_offset_ms", old.offsetMS, "previous_drift", old.drift)
		writeJSON(w, http.StatusOK, body)
	})
	mux.HandleFunc("GET /admin/kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		n.localReads.Add(1)
		writeJSON(w, http.StatusOK, valueBody{Value: orNull(store.LocalGet(r.PathValue("key")))})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no route %s %s: the admin API is GET /admin/status, GET|POST /admin/clock, GET /admin/kv/{key}", r.Method, r.URL.Path), Definite: true})
	})
	return n.guard(mux)
}

type clockBody struct {
	OffsetMS *int64   `json:"offset_ms"`
	Drift    *float64 `json:"drift"`
}

// MaxDrift is the largest clock drift the admin API accepts: a clock
// gaining 10 s per real second. The drift must also be above -1 (a clock
// that stops or runs backwards is not a clock).
const MaxDrift = 10

// decodeClock reads the body of POST /admin/clock: offset_ms required,
// drift optional (0), nothing else; the error names the field at fault.
func decodeClock(b []byte) (clockBody, error) {
	const want = `want {"offset_ms": N, "drift": F}: N an integer number of milliseconds (may be negative), F optional, the seconds the clock gains per real second, above -1 and at most 10`
	var body clockBody
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return body, fmt.Errorf("%s (%v)", want, err)
	}
	if body.OffsetMS == nil {
		return body, fmt.Errorf("offset_ms is missing: %s", want)
	}
	if body.Drift == nil {
		body.Drift = ptr(0.0)
	}
	if d := *body.Drift; !(d > -1 && d <= MaxDrift) {
		return body, fmt.Errorf("drift %v is out of range: %s", d, want)
	}
	return body, nil
}

func ptr[T any](v T) *T { return &v }
