package nodekit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/httpkv"
	"github.com/faultline/faultline/targets/nodekit"
)

// memStore is a working in-memory register store (one replica, no
// replication), with a few keys that fail in set ways so that every error
// path of the protocol can be driven:
//
//	refused    -> 503 definite, leader n2, kind not_leader
//	indefinite -> 504 indefinite
//	boom       -> a plain error (500, indefinite)
//	slow       -> waits for ctx, or for release
//
// Every answer it gives is under term 7 (nodekit.AnsweredIn), but for the
// key "noterm".
type memStore struct {
	mu      sync.Mutex
	data    map[string]json.RawMessage
	release chan struct{}
}

func newMem() *memStore {
	return &memStore{data: map[string]json.RawMessage{}, release: make(chan struct{})}
}

func (m *memStore) failing(ctx context.Context, key string) error {
	if key != "noterm" {
		nodekit.AnsweredIn(ctx, 7)
	}
	switch key {
	case "refused":
		return &nodekit.Error{Code: 503, Definite: true, Leader: "n2", Msg: "not the leader; retry on n2", Kind: "not_leader"}
	case "indefinite":
		return &nodekit.Error{Code: 504, Msg: "timed out; the entry may still commit"}
	case "boom":
		return errors.New("disk on fire")
	case "slow":
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.release:
		}
	}
	return nil
}

func (m *memStore) Get(ctx context.Context, key string) (json.RawMessage, error) {
	if err := m.failing(ctx, key); err != nil {
		return nil, err
	}
	return m.LocalGet(key), nil
}

func (m *memStore) Put(ctx context.Context, key string, v json.RawMessage) error {
	if err := m.failing(ctx, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = v
	return nil
}

func (m *memStore) CAS(ctx context.Context, key string, from, to json.RawMessage) error {
	if err := m.failing(ctx, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.data[key]
	if !ok {
		cur = json.RawMessage("null")
	}
	if !bytes.Equal(cur, from) {
		return nodekit.ErrMismatch
	}
	m.data[key] = to
	return nil
}

func (m *memStore) LocalGet(key string) json.RawMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[key] // nil when absent: the kit writes null
}

func (m *memStore) Status() nodekit.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return nodekit.Status{
		Role: "leader", Term: 7, Leader: "n1", CommitIndex: 12, AppliedIndex: 11,
		Counters: map[string]int64{"elections": 2, "reads": -1}, // "reads" is the kit's: it wins
		Extra:    map[string]any{"keys": len(m.data), "id": "not-the-id"},
	}
}

type served struct {
	node   *nodekit.Node
	store  *memStore
	info   targets.NodeInfo
	cancel context.CancelFunc
	done   chan error
}

// serve runs a kit node over a fresh memStore on loopback ports.
func serve(t *testing.T, cfg targets.NodeConfig) *served {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "n1"
	}
	if cfg.Listen == "" {
		cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	}
	ready := make(chan struct{})
	cfg.Ready = func() { close(ready) }
	s := &served{node: nodekit.New(cfg), store: newMem(), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- s.node.Serve(ctx, s.store) }()
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready after 5s")
	}
	client, admin := s.node.Addrs()
	s.info = targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: cfg.ID, Client: client, Admin: admin}, ClientVia: client}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *served) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("Serve returned %v after cancel, want nil", err)
		}
		s.done <- nil // later stops return at once
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return within 5s of cancel")
	}
}

type answer struct {
	code int
	body map[string]any
	raw  string
}

func call(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	a := answer{code: resp.StatusCode, raw: strings.TrimSpace(b.String())}
	if err := json.Unmarshal(b.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s: answer %d is not a JSON object: %q", method, url, resp.StatusCode, b.String())
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, url, ct)
	}
	return a
}

func TestClientAPI(t *testing.T) {
	s := serve(t, targets.NodeConfig{})
	base := "http://" + s.info.Client
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/kv/k", "", 200, `{"value":null,"term":7}`},
		{"PUT", "/kv/k", `{"value": {"b": 1.0, "a": [2e0, "x<y"]}}`, 200, `{"term":7}`},
		{"GET", "/kv/k", "", 200, `{"value":{"a":[2,"x<y"],"b":1},"term":7}`},
		{"POST", "/kv/k/cas", `{"from": {"a": [2, "x<y"], "b": 1}, "to": 1.5}`, 200, `{"term":7}`},
		{"POST", "/kv/k/cas", `{"from": 1, "to": 2}`, 409, `{"error":"mismatch","term":7}`},
		{"POST", "/kv/absent/cas", `{"from": null, "to": "x"}`, 200, `{"term":7}`},
		{"GET", "/kv/absent", "", 200, `{"value":"x","term":7}`},
		{"GET", "/kv/a%2Fb", "", 200, `{"value":null,"term":7}`},
		{"PUT", "/kv/a%2Fb", `{"value": 3}`, 200, `{"term":7}`},
		{"GET", "/kv/a%2Fb", "", 200, `{"value":3,"term":7}`},
		// A Store that reports no term: no "term" member.
		{"PUT", "/kv/noterm", `{"value": 1}`, 200, `{}`},
		{"GET", "/kv/noterm", "", 200, `{"value":1}`},
		{"POST", "/kv/noterm/cas", `{"from": 2, "to": 3}`, 409, `{"error":"mismatch"}`},
	} {
		if a := call(t, tc.method, base+tc.path, tc.body); a.code != tc.code || a.raw != tc.want {
			t.Fatalf("%s %s %s: %d %s, want %d %s", tc.method, tc.path, tc.body, a.code, a.raw, tc.code, tc.want)
		}
	}
	if v := s.store.LocalGet("a/b"); string(v) != "3" {
		t.Fatalf("escaped key stored as %q", v)
	}
}

func TestErrors(t *testing.T) {
	s := serve(t, targets.NodeConfig{})
	base := "http://" + s.info.Client
	big := `{"value": "` + strings.Repeat("x", nodekit.MaxBody) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		definite                 bool
		leader                   string
	}{
		{"store refuses, names the leader", "PUT", "/kv/refused", `{"value":1}`, 503, true, "n2"},
		{"store refuses a read", "GET", "/kv/refused", "", 503, true, "n2"},
		{"store cannot tell", "POST", "/kv/indefinite/cas", `{"from":1,"to":2}`, 504, false, ""},
		{"plain store error", "PUT", "/kv/boom", `{"value":1}`, 500, false, ""},
		{"missing field", "PUT", "/kv/k", `{"v":1}`, 400, true, ""},
		{"cas without to", "POST", "/kv/k/cas", `{"from":1}`, 400, true, ""},
		{"not an object", "PUT", "/kv/k", `[1]`, 400, true, ""},
		{"null body", "PUT", "/kv/k", `null`, 400, true, ""},
		{"bad JSON value", "PUT", "/kv/k", `{"value": 1e999}`, 400, true, ""},
		{"body too large", "PUT", "/kv/k", big, 413, true, ""},
		{"no route", "DELETE", "/kv/k", "", 404, true, ""},
		{"empty key", "GET", "/kv/", "", 404, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, tc.method, base+tc.path, tc.body)
			msg, _ := a.body["error"].(string)
			def, _ := a.body["definite"].(bool)
			leader, _ := a.body["leader"].(string)
			if a.code != tc.code || msg == "" || def != tc.definite || leader != tc.leader {
				t.Fatalf("%d %.300s; want %d, an error text, definite %v, leader %q", a.code, a.raw, tc.code, tc.definite, tc.leader)
			}
		})
	}
	if got := s.store.LocalGet("k"); got != nil {
		t.Fatalf("a refused request reached the store: k = %s", got)
	}

	// Counters: successes by op and failures by kind.
	call(t, "PUT", base+"/kv/k", `{"value":1}`)
	call(t, "GET", base+"/kv/k", "")
	call(t, "POST", base+"/kv/k/cas", `{"from":1,"to":2}`)
	call(t, "POST", base+"/kv/k/cas", `{"from":1,"to":2}`)
	st, err := nodekit.ReadStatus(context.Background(), s.info)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"reads": 1, "writes": 1, "cas": 1, "cas_mismatch": 1,
		"errors_not_leader": 2, "errors_indefinite": 1, "errors_internal": 1, "errors_bad_request": 8,
		"elections": 2,
	}
	for k, v := range want {
		if got, _ := st.Counters[k].(float64); got != v {
			t.Errorf("counter %s = %v, want %v (all: %v)", k, st.Counters[k], v, st.Counters)
		}
	}
}

// TestClientGone: a read whose client goes away ends in the store (its ctx
// is cancelled) and the node keeps serving.
func TestClientGone(t *testing.T) {
	s := serve(t, targets.NodeConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.info.Client+"/kv/slow", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("a read of the slow key answered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := nodekit.ReadStatus(context.Background(), s.info)
		if err != nil {
			t.Fatal(err)
		}
		if st.Counters["errors_client_gone"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters %v: want errors_client_gone 1", st.Counters)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAdminAPI(t *testing.T) {
	s := serve(t, targets.NodeConfig{ID: "n3", Role: "node", Bugs: []string{"stale-read", "a-bug"}})
	ctx := context.Background()
	call(t, "PUT", "http://"+s.info.Client+"/kv/k", `{"value": 1.0}`)

	st, err := nodekit.ReadStatus(ctx, s.info)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "n3" || st.Role != "leader" || st.Term != 7 || st.Leader != "n1" || st.CommitIndex != 12 || st.AppliedIdx != 11 || !st.IsLeader() {
		t.Fatalf("status %+v", st)
	}
	var raw map[string]any
	if err := json.Unmarshal(st.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"clock_offset_ms", "bugs", "uptime_ms", "keys", "counters"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status lacks %q: %s", k, st.Raw)
		}
	}
	if fmt.Sprint(raw["bugs"]) != "[a-bug stale-read]" || raw["keys"] != float64(1) {
		t.Errorf("bugs %v keys %v", raw["bugs"], raw["keys"])
	}

	// Clock: the offset is reported, shifts Now, and resets to 0.
	if st, _ := nodekit.ReadStatus(ctx, s.info); !strings.Contains(string(st.Raw), `"clock_offset_ms":0`) || !strings.Contains(string(st.Raw), `"clock_drift":0`) {
		t.Fatalf("status before any SetClock: %s", st.Raw)
	}
	if err := nodekit.SetClock(ctx, s.info, targets.Clock{Offset: -1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if a := call(t, "GET", "http://"+s.info.Admin+"/admin/clock", ""); a.raw != `{"offset_ms":-1500,"drift":0}` {
		t.Fatalf("GET /admin/clock: %s", a.raw)
	}
	if skew := time.Since(s.node.Now()); skew < 1400*time.Millisecond || skew > 2*time.Second {
		t.Fatalf("Now is %v behind the wall clock, want about 1.5s", skew)
	}
	if st, _ := nodekit.ReadStatus(ctx, s.info); !strings.Contains(string(st.Raw), `"clock_offset_ms":-1500`) {
		t.Fatalf("status after SetClock: %s", st.Raw)
	}
	if err := nodekit.SetClock(ctx, s.info, targets.Clock{}); err != nil || s.node.ClockOffset() != 0 || s.node.ClockDrift() != 0 {
		t.Fatalf("reset: %v, offset %v drift %v", err, s.node.ClockOffset(), s.node.ClockDrift())
	}
	for bad, says := range map[string]string{
		``:                                   "want",
		`{}`:                                 "offset_ms is missing",
		`{"drift": 0.5}`:                     "offset_ms is missing",
		`{"offset_ms": "1s"}`:                "want",
		`{"offset_ms": 1.5}`:                 "want",
		`{"offset_ms": 1, "x": 2}`:           "want",
		`{"offset_ms": 1, "drift": "fast"}`:  "want",
		`{"offset_ms": 0, "drift": -1}`:      "drift -1 is out of range",
		`{"offset_ms": 0, "drift": -2.5}`:    "drift -2.5 is out of range",
		`{"offset_ms": 0, "drift": 10.01}`:   "drift 10.01 is out of range",
		`{"offset_ms": 0, "drift": 1e999}`:   "want",
		`{"offset_ms": 0, "drift": -0.999}`:  "",
		`{"offset_ms": -5, "drift": 10}`:     "",
		`{"offset_ms": 0, "drift": null}`:    "",
		`{"offset_ms": 0, "drift": 0.0001}`:  "",
		`{"offset_ms": 0, "drift": -0.0001}`: "",
	} {
		a := call(t, "POST", "http://"+s.info.Admin+"/admin/clock", bad)
		if says == "" {
			if a.code != 200 {
				t.Errorf("POST /admin/clock %q: %d %s, want 200", bad, a.code, a.raw)
			}
			continue
		}
		if a.code != 400 || a.body["definite"] != true || !strings.Contains(fmt.Sprint(a.body["error"]), says) {
			t.Errorf("POST /admin/clock %q: %d %s, want 400 definite saying %q", bad, a.code, a.raw, says)
		}
	}
	if err := nodekit.SetClock(ctx, s.info, targets.Clock{}); err != nil {
		t.Fatal(err)
	}
	if err := nodekit.SetClock(ctx, s.info, targets.Clock{Drift: -1}); err == nil || !strings.Contains(err.Error(), "out of range") || s.node.ClockDrift() != 0 {
		t.Fatalf("SetClock with drift -1: %v (drift now %v), want refused with the node's reason", err, s.node.ClockDrift())
	}

	// Local reads: the replica's own state, null when absent.
	for key, want := range map[string]string{"k": "1", "absent": "null"} {
		v, err := nodekit.LocalRead(ctx, s.info, key)
		if err != nil || string(v) != want {
			t.Fatalf("LocalRead(%s) = %s, %v; want %s", key, v, err, want)
		}
	}
	s.store.Put(ctx, "a b/c", json.RawMessage(`"x"`))
	if v, err := nodekit.LocalRead(ctx, s.info, "a b/c"); err != nil || string(v) != `"x"` {
		t.Fatalf("LocalRead of an escaped key = %s, %v", v, err)
	}
	if st, _ := nodekit.ReadStatus(ctx, s.info); st.Counters["local_reads"] != float64(3) {
		t.Fatalf("local_reads %v, want 3", st.Counters["local_reads"])
	}
	if a := call(t, "GET", "http://"+s.info.Admin+"/admin/nothing", ""); a.code != 404 {
		t.Fatalf("unknown admin route: %d", a.code)
	}
}

// TestRoleDefault: a store that reports no role shows the node's own role.
func TestRoleDefault(t *testing.T) {
	cfg := targets.NodeConfig{ID: "backend1", Role: "backend", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0"}
	ready := make(chan struct{})
	cfg.Ready = func() { close(ready) }
	n := nodekit.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, roleless{newMem()}) }()
	<-ready
	_, admin := n.Addrs()
	st, err := nodekit.ReadStatus(ctx, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "backend1", Admin: admin}})
	cancel()
	if err != nil || st.Role != "backend" {
		t.Fatalf("status %+v, %v; want role backend", st, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type roleless struct{ *memStore }

func (roleless) Status() nodekit.Status { return nodekit.Status{} }

// TestHTTPAdapter drives the kit with the http adapter's client: the two
// ends of the protocol agree on every outcome.
func TestHTTPAdapter(t *testing.T) {
	a, b := serve(t, targets.NodeConfig{ID: "n1"}), serve(t, targets.NodeConfig{ID: "n2"})
	cl, err := httpkv.New(map[string]string{"n1": a.info.Client, "n2": b.info.Client}, "n1", httpkv.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		op   history.Op
		typ  history.Type
		val  string
		err  string
		node string
		term uint64 // the term the answer carries (AnsweredIn), 0 for none
	}{
		{history.Op{F: "put", Key: "k", Value: json.RawMessage(`1.0`)}, history.OK, "", "", "n1", 7},
		{history.Op{F: "get", Key: "k"}, history.OK, "1", "", "n1", 7},
		{history.Op{F: "cas", Key: "k", Value: json.RawMessage(`{"from":2,"to":3}`)}, history.Fail, "", "mismatch", "n1", 7},
		{history.Op{F: "cas", Key: "k", Value: json.RawMessage(`{"from":1,"to":3}`)}, history.OK, "", "", "n1", 7},
		{history.Op{F: "put", Key: "noterm", Value: json.RawMessage(`1`)}, history.OK, "", "", "n1", 0},
		{history.Op{F: "get", Key: "noterm"}, history.OK, "1", "", "n1", 0},
		// n1 refuses and names n2; the adapter retries there, and n2
		// refuses naming itself, so the op fails at n2. Failures carry no
		// term: nothing was answered under it.
		{history.Op{F: "put", Key: "refused", Value: json.RawMessage(`1`)}, history.Fail, "", "http 503: not the leader; retry on n2", "n2", 0},
		{history.Op{F: "put", Key: "indefinite", Value: json.RawMessage(`1`)}, history.Info, "", "http 504: timed out; the entry may still commit", "n1", 0},
		{history.Op{F: "get", Key: "boom"}, history.Info, "", "http 500: disk on fire (the request may have taken effect)", "n1", 0},
	} {
		out := cl.Do(ctx, tc.op)
		if out.Type != tc.typ || string(out.Value) != tc.val || out.Error != tc.err || out.Node != tc.node || out.Term != tc.term {
			t.Fatalf("%+v: got %+v (value %s), want %s %q error %q at %s in term %d", tc.op, out, out.Value, tc.typ, tc.val, tc.err, tc.node, tc.term)
		}
	}
}

func TestClientFunctionErrors(t *testing.T) {
	ctx := context.Background()
	// Nothing listens: the error names the node.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	n := targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n9", Admin: dead}}
	if _, err := nodekit.ReadStatus(ctx, n); err == nil || !strings.Contains(err.Error(), "node n9") {
		t.Fatalf("ReadStatus of a dead node: %v, want an error naming n9", err)
	}
	if _, err := nodekit.ReadStatus(ctx, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n8"}}); err == nil || !strings.Contains(err.Error(), "no admin address") {
		t.Fatalf("ReadStatus without an admin address: %v", err)
	}

	// A server that does not speak the kit: clock faults are unsupported,
	// and its status is not a status.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/status", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("[]")) })
	mux.HandleFunc("GET /admin/kv/{key}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"v":1}`)) })
	hang := make(chan struct{})
	defer close(hang)
	mux.HandleFunc("GET /hang/admin/status", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	srv := &http.Server{Handler: mux}
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	other := targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "x1", Admin: ln.Addr().String()}}
	if err := nodekit.SetClock(ctx, other, targets.Clock{Offset: time.Second}); err == nil || !strings.Contains(err.Error(), "does not support clock faults") || !strings.Contains(err.Error(), "x1") {
		t.Fatalf("SetClock on a system without the clock API: %v", err)
	}
	if _, err := nodekit.ReadStatus(ctx, other); err == nil || !strings.Contains(err.Error(), "not a status object") {
		t.Fatalf("ReadStatus of a non-status answer: %v", err)
	}
	if _, err := nodekit.LocalRead(ctx, other, "k"); err == nil || !strings.Contains(err.Error(), `want {"value": V}`) {
		t.Fatalf("LocalRead of a non-value answer: %v", err)
	}

	// A node that never answers: bounded by the caller's deadline.
	hung := targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "x2", Admin: ln.Addr().String() + "/hang"}}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := nodekit.ReadStatus(tctx, hung); err == nil || time.Since(start) > time.Second {
		t.Fatalf("ReadStatus of a hung node: %v after %v", err, time.Since(start))
	}
}

func TestServeErrors(t *testing.T) {
	s := serve(t, targets.NodeConfig{})
	// The client address is taken: Serve says which.
	err := nodekit.Serve(context.Background(), targets.NodeConfig{ID: "n2", Listen: s.info.Client, Admin: "127.0.0.1:0"}, newMem())
	if err == nil || !strings.Contains(err.Error(), "client API listen on "+s.info.Client) {
		t.Fatalf("Serve on a taken address: %v", err)
	}
	err = nodekit.Serve(context.Background(), targets.NodeConfig{ID: "n2", Listen: "127.0.0.1:0", Admin: s.info.Admin}, newMem())
	if err == nil || !strings.Contains(err.Error(), "admin API listen on "+s.info.Admin) {
		t.Fatalf("Serve on a taken admin address: %v", err)
	}
	if err := nodekit.Serve(context.Background(), targets.NodeConfig{ID: "n2"}, newMem()); err == nil {
		t.Fatal("Serve without addresses succeeded")
	}
}

// TestGracefulStop: a request in flight when ctx is cancelled is answered;
// then the listeners are closed and Serve returns nil.
func TestGracefulStop(t *testing.T) {
	s := serve(t, targets.NodeConfig{})
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + s.info.Client + "/kv/slow")
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // the read is in the store
	s.cancel()
	time.Sleep(50 * time.Millisecond)
	close(s.store.release)
	if code := <-got; code != 200 {
		t.Fatalf("in-flight read got %d, want 200", code)
	}
	s.stop(t)
	if c, err := net.DialTimeout("tcp", s.info.Client, time.Second); err == nil {
		c.Close()
		t.Fatal("client API still accepts after Serve returned")
	}
}

func TestHooks(t *testing.T) {
	own := func(context.Context, targets.NodeInfo, targets.Clock) error { return nil }
	sys := nodekit.Hooks(targets.System{Name: "x", SetClock: own})
	if sys.Status == nil || sys.LocalRead == nil || sys.SetClock == nil {
		t.Fatalf("Hooks left a capability nil: %+v", sys)
	}
	if fmt.Sprintf("%p", sys.SetClock) != fmt.Sprintf("%p", own) {
		t.Fatal("Hooks replaced a capability the system set itself")
	}
}

// TestClockDrift: with a drift set, Now advances at 1+drift times the rate
// of the wall clock, from the moment it was set, on top of the offset; the
// status and GET /admin/clock report both; a new POST restarts the drift
// from its own moment, and the zero Clock is the wall clock again.
func TestClockDrift(t *testing.T) {
	s := serve(t, targets.NodeConfig{})
	ctx := context.Background()
	// rate measures how fast Now runs against the wall clock over d.
	rate := func(d time.Duration) float64 {
		w0, n0 := time.Now(), s.node.Now()
		time.Sleep(d)
		w1, n1 := time.Now(), s.node.Now()
		return float64(n1.Sub(n0)) / float64(w1.Sub(w0))
	}
	for _, drift := range []float64{-0.95, -0.5, 1, 4} {
		if err := nodekit.SetClock(ctx, s.info, targets.Clock{Drift: drift}); err != nil {
			t.Fatal(err)
		}
		// Now measured against time.Now around it: the tolerance is for
		// the calls between the readings, not for timing.
		if r := rate(300 * time.Millisecond); math.Abs(r-(1+drift)) > 0.05 {
			t.Errorf("drift %v: Now runs at %.3f times the wall clock, want %.3f", drift, r, 1+drift)
		}
	}

	// On top of an offset, counted from the POST: right after it Now is
	// the wall clock plus the offset, and the drift adds up from there.
	before := time.Now()
	if err := nodekit.SetClock(ctx, s.info, targets.Clock{Offset: 10 * time.Second, Drift: -0.9}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if d := s.node.Now().Sub(time.Now().Round(0)); d > 10*time.Second || d < 10*time.Second-time.Since(before) {
		t.Errorf("right after the POST Now is the wall clock + %v, want about +10s (at most %v less)", d, time.Since(before))
	}
	time.Sleep(500 * time.Millisecond)
	elapsed := time.Since(before)
	shift := s.node.Now().Sub(time.Now().Round(0))
	// shift = 10s - 0.9 * (time since the node took the POST), which lies
	// between after and the next line.
	if lo, hi := 10*time.Second-time.Duration(0.9*float64(elapsed+50*time.Millisecond)), 10*time.Second-time.Duration(0.9*float64(time.Since(after)-50*time.Millisecond)); shift < lo || shift > hi {
		t.Errorf("500ms into a drift of -0.9 on a 10s offset, Now is the wall clock + %v, want within [%v, %v]", shift, lo, hi)
	}
	if s.node.ClockOffset() != 10*time.Second || s.node.ClockDrift() != -0.9 {
		t.Errorf("ClockOffset %v ClockDrift %v", s.node.ClockOffset(), s.node.ClockDrift())
	}
	if a := call(t, "GET", "http://"+s.info.Admin+"/admin/clock", ""); a.raw != `{"offset_ms":10000,"drift":-0.9}` {
		t.Errorf("GET /admin/clock: %s", a.raw)
	}
	if st, _ := nodekit.ReadStatus(ctx, s.info); !strings.Contains(string(st.Raw), `"clock_offset_ms":10000`) || !strings.Contains(string(st.Raw), `"clock_drift":-0.9`) {
		t.Errorf("status: %s", st.Raw)
	}

	// The zero Clock: the wall clock, at its rate.
	if err := nodekit.SetClock(ctx, s.info, targets.Clock{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(s.node.Now()); d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("after the reset Now is %v off the wall clock", d)
	}
	if r := rate(200 * time.Millisecond); math.Abs(r-1) > 0.05 {
		t.Errorf("after the reset Now runs at %.3f times the wall clock", r)
	}
	if now := s.node.Now(); now != now.Round(0) {
		t.Errorf("Now carries a monotonic reading: %v", now)
	}
}
