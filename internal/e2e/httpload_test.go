package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/reports"
)

// stallScenario: httpsvc (2 ms service time) under the http workload at
// 200 requests/s, open loop, with the node paused (SIGSTOP) for 1 s from
// 3 s: a server that stalls. p99 < 500ms is the gate the stall must fail.
const stallScenario = `name: http-stall
system: httpsvc
node_opts: {latency: 2ms}
duration: 8s
recovery: 500ms
workload:
  type: http
  rate: %d
  concurrency: %d
  timeout: 5s
  endpoints:
    - {name: get, url: "/stall?n={{.seq}}"}
faults:
  schedule: timeline
  timeline:
    - {fault: pause, target: n1, at: 3s, for: 1s}
checkers:
  latency: {p99: 500ms, error_rate: 0}
`

// trueLatencies returns, for every request of a run's main phase, the
// time from its intended start to its completion, computed from the
// schedule alone: request seq (1, 2, ...) is intended at start +
// (seq-1)/rate, where start is the latest instant consistent with no
// request being sent before its intended start (so some request was sent
// on time); the completions are the history's. It also returns that
// start, in ns since the run's start.
func trueLatencies(t *testing.T, dir string, rate float64) ([]int64, int64) {
	t.Helper()
	_, evs, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	type req struct{ seq, sent, done int64 }
	open := map[history.Process]*req{}
	var reqs []req
	for _, e := range evs {
		if !e.Process.IsClient() {
			continue
		}
		if e.Type == history.Invoke {
			var v struct{ Seq int64 }
			if err := json.Unmarshal(e.Value, &v); err != nil || v.Seq < 1 {
				t.Fatalf("invoke %s has no seq", e.Value)
			}
			open[e.Process] = &req{seq: v.Seq, sent: e.Time}
			continue
		}
		r := open[e.Process]
		delete(open, e.Process)
		r.done = e.Time
		reqs = append(reqs, *r)
	}
	interval := float64(time.Second) / rate
	start := int64(math.MaxInt64)
	for _, r := range reqs {
		start = min(start, r.sent-int64(float64(r.seq-1)*interval))
	}
	lat := make([]int64, len(reqs))
	for i, r := range reqs {
		lat[i] = r.done - (start + int64(float64(r.seq-1)*interval))
	}
	return lat, start
}

// TestHTTPStallOpenVersusClosedLoop: a server that stalls for 1 s mid-run.
// The open loop's reported p99 includes the stall and is within 10% of
// the true p99 computed from the schedule; the same run in closed loop
// reports a p99 that hides it (coordinated omission: its workers stop
// sending while the server stalls), and so passes the p99 gate the open
// loop fails.
func TestHTTPStallOpenVersusClosedLoop(t *testing.T) {
	// 8 workers: the requests in flight when the server stops are 0.5% of
	// the 1600, so a latency measured from the send (service time) would
	// not show the stall at p99; only measuring from the intended start
	// does.
	const rate, concurrency = 200, 8
	dir := t.TempDir()
	sc := filepath.Join(dir, "stall.yaml")
	if err := os.WriteFile(sc, fmt.Appendf(nil, stallScenario, rate, concurrency), 0o644); err != nil {
		t.Fatal(err)
	}

	open := filepath.Join(dir, "open")
	code, out := faultline(t, 2*time.Minute, "run", sc, "--out", open, "--seed", "7", "--quiet")
	r, err := reports.ReadResults(open)
	if err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	if len(r.Faults) != 1 || r.Faults[0].Name != "pause" || r.Faults[0].Error != "" {
		t.Fatalf("the stall was not injected: %+v\n%s", r.Faults, out)
	}
	if r.Stats.Missed != 0 || r.Stats.Info != 0 || r.Stats.Fail != 0 {
		t.Fatalf("missed %d, info %d, fail %d: every request must be sent and answered for the figures to compare", r.Stats.Missed, r.Stats.Info, r.Stats.Fail)
	}
	lat, start := trueLatencies(t, open, rate)
	if int64(len(lat)) != r.Stats.Ops {
		t.Fatalf("%d requests in the history, %d in the stats", len(lat), r.Stats.Ops)
	}
	main, ok := history.FindPhase(r.Phases, "main")
	if !ok || start < main.Start || start > main.Start+int64(200*time.Millisecond) {
		t.Errorf("the schedule's start %v is not just after the main phase's %v", time.Duration(start), time.Duration(main.Start))
	}
	truth := history.PercentilesOfSamples(lat)
	reported := r.Stats.Latency
	t.Logf("open loop: %d requests; true p99 %.1f ms, reported p99 %.1f ms (p99.9 %.1f / %.1f ms, max %.1f / %.1f ms); service time p99 %.1f ms",
		len(lat), truth.P99/1e3, reported.P99/1e3, truth.P999/1e3, reported.P999/1e3, truth.Max/1e3, reported.Max/1e3, r.Stats.Service.P99/1e3)
	if truth.P99 < 700e3 {
		t.Errorf("true p99 %.1f ms: the 1 s stall does not show in the schedule's latencies", truth.P99/1e3)
	}
	if d := math.Abs(reported.P99-truth.P99) / truth.P99; d > 0.10 {
		t.Errorf("reported p99 %.1f ms is %.1f%% off the true %.1f ms (at most 10%%)", reported.P99/1e3, 100*d, truth.P99/1e3)
	}
	if r.Stats.Service.P99 > truth.P99/2 {
		t.Errorf("service time p99 %.1f ms: the test cannot tell a latency from the intended start from one from the send", r.Stats.Service.P99/1e3)
	}
	if code != 3 || !strings.Contains(r.ExitReason, "thresholds") {
		t.Errorf("open loop: exit %d (%s), want 3: the stall breaks p99 < 500ms\n%s", code, r.ExitReason, out)
	}
	// Re-judged from the saved run, without the cluster: the same.
	if code2, out2 := faultline(t, time.Minute, "check", open, "--no-artifacts"); code2 != 3 {
		t.Errorf("faultline check of the open-loop run: exit %d, want 3\n%s", code2, out2)
	}

	closed := filepath.Join(dir, "closed")
	code, out = faultline(t, 2*time.Minute, "run", sc, "--out", closed, "--seed", "7", "--rate", "0", "--quiet")
	rc, err := reports.ReadResults(closed)
	if err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	t.Logf("closed loop: %d requests (%.0f/s); reported p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms",
		rc.Stats.Ops, rc.Stats.AchievedRate, rc.Stats.Latency.P50/1e3, rc.Stats.Latency.P99/1e3, rc.Stats.Latency.P999/1e3, rc.Stats.Latency.Max/1e3)
	if len(rc.Faults) != 1 || rc.Faults[0].Error != "" || rc.Stats.Latency.Max < 700e3 {
		t.Fatalf("closed loop: the stall was not injected or not felt (max %.1f ms): %+v", rc.Stats.Latency.Max/1e3, rc.Faults)
	}
	// Only the requests in flight when the server stopped wait for it: at
	// most `concurrency` of them. Under 1% of the requests, they cannot
	// reach p99.
	if rc.Stats.Ops < 100*concurrency {
		t.Fatalf("closed loop sent %d requests in 8 s: too few (this machine is too slow) for the stall to fall under 1%%", rc.Stats.Ops)
	}
	if rc.Stats.Latency.P99 > truth.P99/2 {
		t.Errorf("closed-loop p99 %.1f ms does not hide the stall (open loop's true p99 %.1f ms)", rc.Stats.Latency.P99/1e3, truth.P99/1e3)
	}
	if code != 0 {
		t.Errorf("closed loop: exit %d (%s), want 0: it does not see the stall at p99\n%s", code, rc.ExitReason, out)
	}
}

// TestHTTPExternalTLSSecretHeader: the http workload against a service
// someone else runs (runtime external), over TLS verified with a CA file,
// with a key header from the environment. Relative URLs go through the
// client link's proxy (a latency fault shows on them), an absolute URL
// straight to where it says; the key reaches the service on every request
// and no file of the run directory.
func TestHTTPExternalTLSSecretHeader(t *testing.T) {
	const secret = "k3y-Planted-e2e-5d0c91"
	var mu sync.Mutex
	paths := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-Api-Key") != secret {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		mu.Lock()
		paths[r.URL.Path]++
		mu.Unlock()
		fmt.Fprintf(w, `{"path": %q}`, r.URL.Path)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FL_TEST_API_KEY", secret)
	sc := filepath.Join(dir, "ext.yaml")
	os.WriteFile(sc, fmt.Appendf(nil, `runtime: external
client: http
cluster:
  nodes: [{id: n1, client: %q}]
duration: 3s
recovery: 500ms
min_ops: 50
workload:
  type: http
  rate: 100
  concurrency: 8
  scheme: https
  tls: {ca: %q}
  lists: {kind: [a, b]}
  endpoints:
    - name: rel
      url: "/rel/{{.kind}}?n={{.seq}}"
      headers: {X-Api-Key: "${FL_TEST_API_KEY}"}
      check: {status: [200], json_field: path}
    - name: abs
      url: "%s/abs"
      headers: {X-Api-Key: "${FL_TEST_API_KEY}"}
      check: {body_contains: abs}
faults:
  schedule: timeline
  timeline: [{at: 1s, for: 1s, fault: latency, latency: 60ms, peers: false, clients: true}]
checkers:
  latency: {error_rate: 0, endpoints: {rel: {error_rate: 0}, abs: {error_rate: 0}}}
`, strings.TrimPrefix(srv.URL, "https://"), ca, srv.URL), 0o644)
	run := filepath.Join(dir, "run")
	code, out := faultline(t, 2*time.Minute, "run", sc, "--out", run, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	r, err := reports.ReadResults(run)
	if err != nil {
		t.Fatal(err)
	}
	rel, abs := r.Stats.ByEndpoint["rel"], r.Stats.ByEndpoint["abs"]
	mu.Lock()
	seen := fmt.Sprint(paths)
	nRel, nAbs := paths["/rel/a"]+paths["/rel/b"], paths["/abs"]
	mu.Unlock()
	if rel.OK == 0 || abs.OK == 0 || rel.OK+abs.OK != r.Stats.Ops || int64(nRel) != rel.Ops || int64(nAbs) != abs.Ops || paths["/rel/a"] == 0 || paths["/rel/b"] == 0 {
		t.Errorf("by endpoint rel %+v abs %+v; the service saw %s", rel.OpStats, abs.OpStats, seen)
	}
	// 60 ms each way on the client link: relative requests in the fault
	// window took at least 120 ms; the absolute URL does not cross it.
	if rel.Latency.Max < 120e3 {
		t.Errorf("relative requests: max %.1f ms, but the client-link latency fault adds 120 ms", rel.Latency.Max/1e3)
	}
	t.Logf("rel: max %.1f ms, abs: max %.1f ms", rel.Latency.Max/1e3, abs.Latency.Max/1e3)
	filepath.WalkDir(run, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the key", p)
		}
		return nil
	})
	if strings.Contains(out, secret) {
		t.Errorf("the terminal output holds the key")
	}
	if saved, _ := os.ReadFile(filepath.Join(run, "scenario.yaml")); !strings.Contains(string(saved), "${FL_TEST_API_KEY}") {
		t.Errorf("the saved scenario does not name the variable:\n%s", saved)
	}
}

// TestHTTPProcessTarget: the http workload against an HTTP service that
// faultline starts as a process target (here faultline's own httpsvc,
// started from a command as any binary would be), with a client-link cut
// in front of it for 1 s: the requests it cuts or refuses are recorded as
// info or fail, the others ok, each endpoint's figures kept apart.
func TestHTTPProcessTarget(t *testing.T) {
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sc := filepath.Join(dir, "proc.yaml")
	os.WriteFile(sc, fmt.Appendf(nil, `system: process
roles:
  web:
    nodes: 1
    command: [%q, node, --system, httpsvc, --id, "{{.ID}}", --listen, "{{.ListenHost}}:{{.ClientPort}}",
              --admin, "{{.ListenHost}}:{{.PeerPort}}", --data, "{{.DataDir}}", --opt, latency=1ms]
    ready: {probe: http, path: /health, port: client}
client: http
duration: 4s
recovery: 500ms
workload:
  type: http
  rate: 100
  concurrency: 8
  timeout: 1s
  endpoints:
    - {name: ok, url: "/ok?n={{.seq}}", check: {json_field: count}}
    - {name: teapot, url: "/t?status=418", weight: 0.25, check: {status: [418]}}
faults:
  schedule: timeline
  timeline: [{at: 1500ms, for: 1s, fault: client-cut, target: all, mode: refuse}]
checkers:
  latency: {error_rate: 0.5, endpoints: {teapot: {p99: 1s}}}
`, bin), 0o644)
	run := filepath.Join(dir, "run")
	code, out := faultline(t, 2*time.Minute, "run", sc, "--out", run, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	r, err := reports.ReadResults(run)
	if err != nil {
		t.Fatal(err)
	}
	okEp, tea := r.Stats.ByEndpoint["ok"], r.Stats.ByEndpoint["teapot"]
	if okEp.OK == 0 || tea.OK == 0 || okEp.Ops+tea.Ops != r.Stats.Ops {
		t.Errorf("by endpoint: ok %+v teapot %+v of %d", okEp.OpStats, tea.OpStats, r.Stats.Ops)
	}
	t.Logf("%d requests: %d ok, %d fail, %d info", r.Stats.Ops, r.Stats.OK, r.Stats.Fail, r.Stats.Info)
	// 1 s of 4 with the link refused: about a quarter of the requests.
	if bad := r.Stats.Fail + r.Stats.Info; bad < r.Stats.Ops/10 || bad > r.Stats.Ops/2 {
		t.Errorf("%d of %d requests failed or ended unknown; the cut lasted a quarter of the run", bad, r.Stats.Ops)
	}
	_, evs, err := history.ReadFile(filepath.Join(run, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Process.IsClient() && e.Type == history.Fail && !strings.HasPrefix(e.Error, "not sent") {
			t.Errorf("a fail that is not a refused connection: %+v", e)
		}
	}
}
