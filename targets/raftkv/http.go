package raftkv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// maxBody bounds request bodies (bytes).
const maxBody = 1 << 20

// errorBody is the JSON of every failure other than a CAS mismatch.
type errorBody struct {
	Error    string `json:"error"`
	Definite bool   `json:"definite"`
	Leader   string `json:"leader,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response","definite":false}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (n *node) leaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// fail writes a failure; definite says the request certainly had no effect.
func (n *node) fail(w http.ResponseWriter, code int, definite bool, format string, args ...any) {
	if definite {
		if code == http.StatusBadRequest {
			n.counters.badReq.Add(1)
		}
	} else {
		n.counters.indefinite.Add(1)
	}
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...), Definite: definite, Leader: n.leaderID()})
}

func (n *node) notLeader(w http.ResponseWriter) {
	n.counters.notLeader.Add(1)
	leader := n.leaderID()
	msg := "not the leader"
	if leader == "" {
		msg = "not the leader, and no leader is known"
	}
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg + " (" + n.cfg.ID + " is " + strings.ToLower(n.raft.State().String()) + "); retry on the leader", Definite: true, Leader: leader})
}

// raftError maps an error of raft.Apply or raft.Barrier to a response.
// See the package doc for which errors are definite.
func (n *node) raftError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		n.notLeader(w)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
		n.fail(w, http.StatusServiceUnavailable, true, "%v (not proposed)", err)
	case errors.Is(err, errApplyTimeout), errors.Is(err, errBarrierTimeout):
		n.fail(w, http.StatusGatewayTimeout, false, "%v after %s (the entry may still commit)", err, n.opts.applyTimeout)
	default:
		n.fail(w, http.StatusServiceUnavailable, false, "%v (the entry may still commit)", err)
	}
}

var errApplyTimeout = errors.New("timed out waiting for the entry to commit")

func (n *node) clientMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kv/{key}", n.handleGet)
	mux.HandleFunc("PUT /kv/{key}", n.handlePut)
	mux.HandleFunc("POST /kv/{key}/cas", n.handleCAS)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n.fail(w, http.StatusNotFound, true, "no route %s %s: the API is GET|PUT /kv/{key} and POST /kv/{key}/cas", r.Method, r.URL.Path)
	})
	return mux
}

func (n *node) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if n.staleOK {
		// Bug stale-read: answer from the local state, whoever we are.
		n.counters.staleReads.Add(1)
		n.counters.reads.Add(1)
		writeJSON(w, http.StatusOK, map[string]json.RawMessage{"value": n.fsm.get(key)})
		return
	}
	if n.raft.State() != raft.Leader {
		n.notLeader(w)
		return
	}
	if err := n.barrier.wait(r.Context()); err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		n.raftError(w, err)
		return
	}
	n.counters.reads.Add(1)
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{"value": n.fsm.get(key)})
}

// decodeBody reads a JSON object and returns the canonical form of each
// named field; every field is required.
func decodeBody(r *http.Request, fields ...string) ([]json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %v", err)
	}
	out := make([]json.RawMessage, len(fields))
	for i, f := range fields {
		v, ok := m[f]
		if !ok {
			return nil, fmt.Errorf("body lacks field %q (want %s)", f, wantBody(fields))
		}
		if out[i], err = canonicalJSON(v); err != nil {
			return nil, fmt.Errorf("field %q: %v", f, err)
		}
	}
	return out, nil
}

func wantBody(fields []string) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprintf("%q: V", f)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (n *node) handlePut(w http.ResponseWriter, r *http.Request) {
	vals, err := decodeBody(r, "value")
	if err != nil {
		n.fail(w, http.StatusBadRequest, true, "%v", err)
		return
	}
	n.apply(w, command{Op: "put", Key: r.PathValue("key"), Value: vals[0]})
}

func (n *node) handleCAS(w http.ResponseWriter, r *http.Request) {
	vals, err := decodeBody(r, "from", "to")
	if err != nil {
		n.fail(w, http.StatusBadRequest, true, "%v", err)
		return
	}
	n.apply(w, command{Op: "cas", Key: r.PathValue("key"), From: vals[0], To: vals[1]})
}

// apply proposes c and answers once it is applied (or failed).
func (n *node) apply(w http.ResponseWriter, c command) {
	if n.raft.State() != raft.Leader {
		n.notLeader(w)
		return
	}
	data, err := json.Marshal(c)
	if err != nil {
		n.fail(w, http.StatusInternalServerError, true, "encode command: %v", err)
		return
	}
	f := n.raft.Apply(data, n.opts.applyTimeout)
	if err := waitFuture(f, n.opts.applyTimeout, errApplyTimeout); err != nil {
		n.raftError(w, err)
		return
	}
	res, _ := f.Response().(applyResult)
	switch {
	case res.Err != nil:
		// Deterministic on every replica: the entry was applied as a no-op.
		n.fail(w, http.StatusInternalServerError, true, "%v", res.Err)
	case res.Mismatch:
		n.counters.casMismatch.Add(1)
		writeJSON(w, http.StatusConflict, map[string]string{"error": "mismatch"})
	case c.Op == "cas":
		n.counters.cas.Add(1)
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		n.counters.writes.Add(1)
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// status is the answer to GET /admin/status: targets.Status plus extras.
type status struct {
	ID            string           `json:"id"`
	Role          string           `json:"role"`
	Term          uint64           `json:"term"`
	Leader        string           `json:"leader"`
	CommitIndex   uint64           `json:"commit_index"`
	AppliedIndex  uint64           `json:"applied_index"`
	LastIndex     uint64           `json:"last_index"`
	LastContactMS int64            `json:"last_contact_ms"` // since the last contact with a leader; 0 on the leader; -1 never
	Keys          int              `json:"keys"`
	ClockOffsetMS int64            `json:"clock_offset_ms"`
	Bugs          []string         `json:"bugs"`
	UptimeMS      int64            `json:"uptime_ms"`
	Counters      map[string]int64 `json:"counters"`
}

func (n *node) status() status {
	st := n.raft.State()
	s := status{
		ID:            n.cfg.ID,
		Role:          strings.ToLower(st.String()),
		Term:          n.raft.CurrentTerm(),
		Leader:        n.leaderID(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		LastIndex:     n.raft.LastIndex(),
		Keys:          n.fsm.len(),
		ClockOffsetMS: n.clockOff.Load(),
		Bugs:          append([]string{}, n.cfg.Bugs...),
		UptimeMS:      time.Since(n.started).Milliseconds(),
		Counters: map[string]int64{
			"reads":          n.counters.reads.Load(),
			"writes":         n.counters.writes.Load(),
			"cas":            n.counters.cas.Load(),
			"cas_mismatch":   n.counters.casMismatch.Load(),
			"not_leader":     n.counters.notLeader.Load(),
			"indefinite":     n.counters.indefinite.Load(),
			"bad_request":    n.counters.badReq.Load(),
			"stale_reads":    n.counters.staleReads.Load(),
			"barriers":       n.counters.barriers.Load(),
			"barrier_errors": n.counters.barrierErr.Load(),
		},
	}
	if u := n.unsynced; u != nil {
		// Bug lose-unsynced: entries in memory only, and flush progress.
		s.Counters["unsynced_pending"] = u.pendingN.Load()
		s.Counters["unsynced_flushes"] = u.flushes.Load()
		s.Counters["unsynced_flushed"] = u.flushed.Load()
	}
	switch lc := n.raft.LastContact(); {
	case st == raft.Leader:
	case lc.IsZero():
		s.LastContactMS = -1
	default:
		s.LastContactMS = time.Since(lc).Milliseconds()
	}
	return s
}

func (n *node) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.status())
	})
	mux.HandleFunc("GET /admin/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int64{"offset_ms": n.clockOff.Load()})
	})
	mux.HandleFunc("POST /admin/clock", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			OffsetMS *int64 `json:"offset_ms"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil || body.OffsetMS == nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: `want {"offset_ms": N} (milliseconds, may be negative)`, Definite: true})
			return
		}
		old := n.clockOff.Swap(*body.OffsetMS)
		n.log.Info("clock offset set", "offset_ms", *body.OffsetMS, "previous_ms", old)
		writeJSON(w, http.StatusOK, map[string]int64{"offset_ms": *body.OffsetMS})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no route %s %s: the admin API is GET /admin/status, GET|POST /admin/clock", r.Method, r.URL.Path), Definite: true})
	})
	return mux
}
