package scenario_test

// A reference system with two roles that exists only in this test: a
// front node that takes the workload's operations and forwards each key to
// one of the store nodes (by a hash of the key) over its peer links, and
// store nodes that keep the registers in a file. It is registered with one
// line and run end to end by the conductor on the local runtime, the test
// binary serving as the nodes' binary (TestMain and targets.NodeMain).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/scenario"
	"github.com/faultline/faultline/targets"
	_ "github.com/faultline/faultline/targets/httpkv"
	_ "github.com/faultline/faultline/targets/local"
	"github.com/faultline/faultline/targets/nodekit"
)

func init() {
	targets.RegisterSystem(targets.System{Name: "twotier", Description: "test only: a front that shards keys over stores", Roles: []targets.Role{{Name: "front", Nodes: 1, Min: 1, Max: 1, Serves: true}, {Name: "store", Nodes: 2, Min: 1}}, Client: "http", Workload: "register", PeerLinks: true, Status: nodekit.ReadStatus, Run: runTwoTier})
}

func TestMain(m *testing.M) {
	if code, ok := targets.NodeMain(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func runTwoTier(ctx context.Context, cfg targets.NodeConfig) error {
	if cfg.Role == "front" {
		var stores []string
		for id, role := range cfg.PeerRoles {
			if role == "store" {
				stores = append(stores, id)
			}
		}
		sort.Strings(stores)
		return nodekit.Serve(ctx, cfg, &front{peers: cfg.Peers, stores: stores, token: string(cfg.Token), http: &http.Client{Timeout: time.Second}})
	}
	st, err := openStore(filepath.Join(cfg.DataDir, "registers.json"))
	if err != nil {
		return err
	}
	kit := nodekit.New(cfg)
	// The store answers the front on its peer listener with the kit's own
	// client API, and faultline's observer on the admin API.
	ln, err := net.Listen("tcp", cfg.PeerListen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: kit.ClientHandler(st)}
	go srv.Serve(ln)
	defer srv.Close()
	return kit.Serve(ctx, st)
}

// store is a set of registers saved to a file after every change.
type store struct {
	mu   sync.Mutex
	path string
	m    map[string]json.RawMessage
}

func openStore(path string) (*store, error) {
	s := &store{path: path, m: map[string]json.RawMessage{}}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	return s, json.Unmarshal(b, &s.m)
}

func (s *store) saveLocked() error {
	b, _ := json.Marshal(s.m)
	f, err := os.CreateTemp(filepath.Dir(s.path), "registers")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	return os.Rename(f.Name(), s.path)
}

func (s *store) Get(_ context.Context, key string) (json.RawMessage, error) {
	return s.LocalGet(key), nil
}
func (s *store) LocalGet(key string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}
func (s *store) Put(_ context.Context, key string, v json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = v
	return s.saveLocked()
}
func (s *store) CAS(_ context.Context, key string, from, to json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.m[key]
	if cur == nil {
		cur = json.RawMessage("null")
	}
	if !bytes.Equal(cur, from) {
		return nodekit.ErrMismatch
	}
	s.m[key] = to
	return s.saveLocked()
}
func (s *store) Status() nodekit.Status { return nodekit.Status{Role: "store"} }

// front forwards every operation to the store that holds its key.
type front struct {
	peers  map[string]string
	stores []string
	token  string // the run's: the stores' kit requires it
	http   *http.Client
}

func (f *front) owner(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return f.stores[int(h.Sum32())%len(f.stores)]
}

// forward sends one request to the key's store and maps the answer: a
// failed dial certainly had no effect (definite); a cut after sending may
// have had one.
func (f *front) forward(ctx context.Context, method, key, suffix string, body any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	owner := f.owner(key)
	req, err := http.NewRequestWithContext(ctx, method, "http://"+f.peers[owner]+"/kv/"+key+suffix, rd)
	if err != nil {
		return nil, err
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, &nodekit.Error{Code: 503, Definite: true, Msg: fmt.Sprintf("store %s unreachable: %v", owner, err)}
		}
		return nil, &nodekit.Error{Code: 504, Msg: fmt.Sprintf("store %s: %v", owner, err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == 409:
		return nil, nodekit.ErrMismatch
	case resp.StatusCode != 200:
		var e struct {
			Error    string `json:"error"`
			Definite bool   `json:"definite"`
		}
		json.Unmarshal(b, &e)
		return nil, &nodekit.Error{Code: resp.StatusCode, Definite: e.Definite, Msg: "store " + owner + ": " + e.Error}
	}
	var v struct {
		Value json.RawMessage `json:"value"`
	}
	json.Unmarshal(b, &v)
	return v.Value, nil
}

func (f *front) Get(ctx context.Context, key string) (json.RawMessage, error) {
	return f.forward(ctx, http.MethodGet, key, "", nil)
}
func (f *front) Put(ctx context.Context, key string, v json.RawMessage) error {
	_, err := f.forward(ctx, http.MethodPut, key, "", map[string]json.RawMessage{"value": v})
	return err
}
func (f *front) CAS(ctx context.Context, key string, from, to json.RawMessage) error {
	_, err := f.forward(ctx, http.MethodPost, key, "/cas", map[string]json.RawMessage{"from": from, "to": to})
	return err
}
func (f *front) LocalGet(string) json.RawMessage { return nil }
func (f *front) Status() nodekit.Status          { return nodekit.Status{Role: "front"} }

// TestTwoRoleSystemWithRoleTargetedKill runs the test-only system end to
// end: the role-targeted kill takes down exactly the store nodes (the
// front stays up), they come back with their data, and the history is
// linearizable with no acknowledged write lost. The same run shows that
// results.json's planned and injected fault times share one origin, and
// that the scenario as saved has no null field.
func TestTwoRoleSystemWithRoleTargetedKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster for about 15 s")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src := `name: two-roles
system: twotier
roles: {store: {nodes: 2}}
duration: 6s
recovery: 1s
min_ops: 100
workload: {rate: 150, keys: 4, concurrency: 8}
faults:
  schedule: timeline
  timeline:
    - {fault: kill, target: "role:store", at: 2s, for: 1500ms}
    - {fault: partition-one, target: store2, at: 4500ms, for: 1s, mode: refuse}
    - {fault: pause, target: store1, at: 1m, for: 1s}
`
	s, err := scenario.Parse("two-roles.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range s.NodeSpecs() {
		ids = append(ids, n.ID+"/"+n.Role)
	}
	if got := strings.Join(ids, " "); got != "front1/front store1/store store2/store" {
		t.Fatalf("nodes %s, want front1/front store1/store store2/store", got)
	}
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := scenario.Run(ctx, s, scenario.RunOptions{Out: dir, Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != "valid" {
		t.Errorf("verdict %s (%s), want valid", r.Verdict, r.ExitReason)
		for _, c := range r.Checkers {
			t.Logf("%s: %s %s\n%s", c.Name, c.Verdict, c.Summary, c.Explanation)
		}
	}
	if len(r.Faults) != 2 || r.Faults[0].Name != "kill" || r.Faults[0].Error != "" {
		t.Fatalf("faults %+v, want the kill then the partition, without error", r.Faults)
	}
	if got := strings.Join(r.Faults[0].Targets, ","); got != "store1,store2" {
		t.Errorf("role:store killed %s, want store1,store2", got)
	}
	// The fault planned past the end of the main phase is in the schedule,
	// marked as never injected, with the reason.
	if n := len(r.Schedule); n != 3 || r.Schedule[2].Name != "pause" || !strings.Contains(r.Schedule[2].Error, "past the end of the main phase") {
		t.Errorf("schedule %+v: want the pause at 1m reported as not injected", r.Schedule)
	}
	// Planned and injected times have one origin, the run's start: a
	// planned fault is due at the main phase's start plus its at, and no
	// fault starts before it is due.
	var mainStart int64 = -1
	for _, p := range r.Phases {
		if p.Name == "main" {
			mainStart = p.Start
		}
	}
	for i, at := range []time.Duration{2 * time.Second, 4500 * time.Millisecond, time.Minute} {
		if i < len(r.Schedule) && r.Schedule[i].Start != mainStart+int64(at) {
			t.Errorf("schedule[%d] %s planned at %d ns, want the main phase's start %d + %s", i, r.Schedule[i].Name, r.Schedule[i].Start, mainStart, at)
		}
	}
	for i, f := range r.Faults {
		if i < len(r.Schedule) && (f.Start < r.Schedule[i].Start || f.End < r.Schedule[i].End) {
			t.Errorf("fault %s injected %d-%d ns, before its plan %d-%d ns", f.Name, f.Start, f.End, r.Schedule[i].Start, r.Schedule[i].End)
		}
	}
	// The scenario as saved has no null field (cluster, for one, is not
	// set here).
	saved, err := os.ReadFile(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(saved, []byte(": null")) || !bytes.Contains(saved, []byte("system: twotier")) {
		t.Errorf("saved scenario.yaml:\n%s\nwant no null field", saved)
	}
	// The history says which nodes were killed, and the front's operations
	// failed while the stores were down, then succeeded again.
	_, evs, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var killStart, killEnd int64 = -1, -1
	for _, e := range evs {
		if e.Process == history.Nemesis && e.F == "kill" {
			if e.Phase == "start" {
				killStart = e.Time
				if !strings.Contains(string(e.Value), `"targets":["store1","store2"]`) {
					t.Errorf("kill event %s does not name store1 and store2", e.Value)
				}
			} else if e.Phase == "end" {
				killEnd = e.Time
			}
		}
	}
	if killStart < 0 || killEnd < killStart {
		t.Fatalf("no kill window in the history")
	}
	var okBefore, failDuring, okAfter int
	for _, e := range evs {
		if !e.Process.IsClient() || e.Type == history.Invoke {
			continue
		}
		switch {
		case e.Time < killStart && e.Type == history.OK:
			okBefore++
		case e.Time > killStart+200e6 && e.Time < killEnd && e.Type != history.OK:
			failDuring++
		case e.Time > killEnd+500e6 && e.Type == history.OK:
			okAfter++
		}
	}
	if okBefore == 0 || failDuring == 0 || okAfter == 0 {
		t.Errorf("ok before the kill %d, failed during it %d, ok after it %d: want each > 0", okBefore, failDuring, okAfter)
	}
}

// TestFaultsTheTargetCannotPerform: a fault the system or the runtime
// cannot perform, or a role it does not have, is refused when the file is
// read, with its line, before anything starts.
func TestFaultsTheTargetCannotPerform(t *testing.T) {
	cases := []struct {
		name, faults, field, says string
		line                      int
	}{
		{"clock skew without a clock API", "    - {fault: clock-skew, target: front1, at: 1s, for: 1s}\n", "faults.timeline[0]", "clock", 5},
		{"a role the system lacks", "    - {fault: kill, target: \"role:backend\", at: 1s, for: 1s}\n", "faults.timeline[0].target", "role:front, role:store", 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "system: twotier\nfaults:\n  schedule: timeline\n  timeline:\n" + c.faults
			_, err := scenario.Parse("f.yaml", []byte(src))
			var fe *scenario.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FieldError", err)
			}
			if !strings.HasPrefix(fe.Field, c.field) || fe.Line != c.line || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %v (field %q, line %d), want field %s at line %d saying %q", err, fe.Field, fe.Line, c.field, c.line, c.says)
			}
		})
	}
}
