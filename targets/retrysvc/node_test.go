package retrysvc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/clustertest"
	"github.com/faultline/faultline/targets/nodekit"
)

const testToken targets.Token = "retrysvc-test-token"

// chain lays out a frontend n1 and a backend n2 (the frontend dials the
// backend through the relay of link n1 -> n2), both with the run's token,
// starts them and returns the cluster.
func chain(t *testing.T, fe, be map[string]string) *clustertest.Cluster {
	t.Helper()
	c := clustertest.New(t, Name, 2, nil)
	f, b := c.Nodes["n1"], c.Nodes["n2"]
	f.Cfg.Role, f.Cfg.Opts, f.Cfg.PeerRoles = RoleFrontend, fe, map[string]string{"n2": RoleBackend}
	b.Cfg.Role, b.Cfg.Opts, b.Cfg.PeerRoles = RoleBackend, be, map[string]string{"n1": RoleFrontend}
	f.Cfg.Token, b.Cfg.Token = testToken, testToken
	c.StartAll()
	return c
}

// backendOnly starts one backend node n1 with opts and the token.
func backendOnly(t *testing.T, opts map[string]string) *clustertest.Cluster {
	t.Helper()
	c := clustertest.New(t, Name, 1, opts)
	c.Nodes["n1"].Cfg.Role, c.Nodes["n1"].Cfg.Token = RoleBackend, testToken
	c.StartAll()
	return c
}

// info is node id as a runtime describes it, with the token.
func info(c *clustertest.Cluster, id string) targets.NodeInfo {
	n := c.Info(id)
	n.Token = testToken
	return n
}

// testStatus is what these tests read of GET /admin/status.
type testStatus struct {
	clustertest.NodeStatus
	BreakerState  int      `json:"breaker_state"`
	InService     int      `json:"in_service"`
	QueueDepth    int      `json:"queue_depth"`
	ServiceTimeMS float64  `json:"service_time_ms"`
	Policy        string   `json:"policy"`
	Backends      []string `json:"backends"`
}

func status(t *testing.T, c *clustertest.Cluster, id string) testStatus {
	t.Helper()
	st, err := nodekit.ReadStatus(context.Background(), info(c, id))
	if err != nil {
		t.Fatal(err)
	}
	var s testStatus
	if err := json.Unmarshal(st.Raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// get sends GET path to addr with the token, within ctx; code 0 means no
// answer (err says why).
func get(ctx context.Context, addr, path string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	testToken.SetOn(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// The backend's bulkhead and queue on real TCP: with capacity 2 and a
// queue of 2, four requests put two in service and two in the queue, and
// two more are answered 503 at once (while the first four are still
// held); once the first four callers have gone away, their work is still
// done: completed_total counts it and abandoned_total says it was for
// nobody.
func TestBackendBulkheadQueueAndAbandonedWork(t *testing.T) {
	c := backendOnly(t, map[string]string{"capacity": "2", "queue": "2", "service-time": "1500ms"})
	addr := c.Nodes["n1"].Cfg.PeerListen
	type answer struct {
		code int
		err  error
	}
	answers := make(chan answer, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 4; i++ {
		go func() {
			code, _, err := get(ctx, addr, "/work")
			answers <- answer{code, err}
		}()
	}
	c.WaitFor("2 in service and 2 queued", func() bool {
		s := status(t, c, "n1")
		return s.InService == 2 && s.QueueDepth == 2
	})
	for i := 0; i < 2; i++ {
		code, body, err := get(context.Background(), addr, "/work")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "full") {
			t.Fatalf("a request beyond capacity and queue: %d %s %v, want 503 full", code, body, err)
		}
	}
	s := status(t, c, "n1")
	if s.InService != 2 || s.QueueDepth != 2 || s.Counters["rejections_full"] != 2 || s.Counters["responses_503"] != 2 || s.Counters["completed"] != 0 {
		t.Fatalf("after two refusals: %+v", s)
	}
	cancel() // the first four callers go away
	for i := 0; i < 4; i++ {
		if a := <-answers; a.err == nil {
			t.Fatalf("a caller that went away got an answer %d", a.code)
		}
	}
	c.WaitFor("the abandoned work done", func() bool { return status(t, c, "n1").Counters["completed"] == 4 })
	s = status(t, c, "n1")
	if s.Counters["abandoned"] != 4 || s.Counters["requests"] != 6 || s.Counters["responses_200"] != 0 || s.InService != 0 || s.QueueDepth != 0 {
		t.Errorf("after the work: %+v", s)
	}
}

// The service time changes through the admin API: the system's
// SetServiceTime (what the service-time fault calls) sets it and restores
// the option's value; the status and the gauge say so, a request takes at
// least the new time; bad bodies are refused naming the field, a frontend
// has no service time, and the route wants the token.
func TestServiceTimeAdminAPI(t *testing.T) {
	c := chain(t, map[string]string{"attempt-timeout": "900ms"}, map[string]string{"service-time": "5ms"})
	sys := c.Sys()
	be, fe := info(c, "n2"), info(c, "n1")
	d := 300 * time.Millisecond
	if err := sys.SetServiceTime(context.Background(), be, &d); err != nil {
		t.Fatal(err)
	}
	if s := status(t, c, "n2"); s.ServiceTimeMS != 300 {
		t.Fatalf("service_time_ms %v after setting 300ms", s.ServiceTimeMS)
	}
	start := time.Now()
	if code, body, err := get(context.Background(), fe.Client, "/anything"); code != 200 || !strings.Contains(body, `"backend":"n2"`) {
		t.Fatalf("through the frontend: %d %s %v", code, body, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("a request took %s with a service time of 300ms", took)
	}
	if err := sys.SetServiceTime(context.Background(), be, nil); err != nil {
		t.Fatal(err)
	}
	if s := status(t, c, "n2"); s.ServiceTimeMS != 5 {
		t.Errorf("service_time_ms %v after restoring, want the option's 5", s.ServiceTimeMS)
	}
	err := sys.SetServiceTime(context.Background(), fe, &d)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no service time") {
		t.Errorf("on a frontend: %v", err)
	}
	for body, says := range map[string]string{
		`{"service_time_ms": -1}`:          "from 0 to 60000",
		`{"service_time_ms": "60"}`:        "from 0 to 60000",
		`{"service_ms": 60}`:               "exactly the field service_time_ms",
		`{"service_time_ms": 1, "x": 2}`:   "exactly the field service_time_ms",
		`[60]`:                             "not a JSON object",
		`{"service_time_ms": 60000.5}`:     "from 0 to 60000",
		`{"service_time_ms": 1e400}`:       "from 0 to 60000",
		`{"service_time_ms": null, "y":0}`: "exactly the field",
	} {
		code, answer, err := nodekit.AdminCall(context.Background(), be, http.MethodPut, "/admin/service-time", []byte(body))
		if err != nil || code != 400 || !strings.Contains(string(answer), says) {
			t.Errorf("PUT %s: %d %s %v, want 400 saying %q", body, code, answer, err, says)
		}
	}
	code, answer, err := nodekit.AdminCall(context.Background(), be, http.MethodPut, "/admin/service-time", []byte(`{"service_time_ms": 42.5}`))
	if err != nil || code != 200 || !strings.Contains(string(answer), `"service_time_ms":42.5`) || !strings.Contains(string(answer), `"configured_ms":5`) {
		t.Errorf("PUT 42.5: %d %s %v", code, answer, err)
	}
	code, answer, err = nodekit.AdminCall(context.Background(), be, http.MethodDelete, "/admin/service-time", nil)
	if err != nil || code != 200 || !strings.Contains(string(answer), `"service_time_ms":5`) {
		t.Errorf("DELETE: %d %s %v", code, answer, err)
	}
	open := be
	open.Token = ""
	if code, _, err := nodekit.AdminCall(context.Background(), open, http.MethodPut, "/admin/service-time", []byte(`{"service_time_ms": 1}`)); code != 401 || err != nil {
		t.Errorf("without the token: %d %v", code, err)
	}
	if code, _, err := nodekit.AdminCall(context.Background(), open, http.MethodGet, "/metrics", nil); code != 401 || err != nil {
		t.Errorf("/metrics without the token: %d %v", code, err)
	}
}

// scrape reads node n's /metrics with the Prometheus text parser and
// returns each sample's value by metric name and label value.
func scrape(t *testing.T, n targets.NodeInfo) map[string]float64 {
	t.Helper()
	code, body, err := nodekit.AdminCall(context.Background(), n, http.MethodGet, "/metrics", nil)
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			k := name
			for _, l := range m.GetLabel() {
				k += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[k] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[k] = m.GetGauge().GetValue()
			default:
				t.Errorf("%s: neither counter nor gauge", k)
			}
		}
	}
	return out
}

// load sends n requests to addr from conc goroutines and returns the
// answers' codes counted.
func load(t *testing.T, addr string, n, conc int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		next <- struct{}{}
	}
	close(next)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				code, _, err := get(context.Background(), addr, "/work")
				if err != nil {
					t.Errorf("request: %v", err)
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return codes
}

// The amplification read from /metrics through the Prometheus text
// parser equals the one read from /admin/status, on a chain whose
// backend (capacity 1, no queue) refuses most of a burst, so that the
// naive frontend retries; the counters agree with each other and with
// the answers the clients got, and every attempt crossed the peer link
// to the backend.
func TestAmplificationFromMetricsEqualsStatus(t *testing.T) {
	c := chain(t, map[string]string{"policy": "naive", "retries": "3", "attempt-timeout": "500ms"},
		map[string]string{"capacity": "1", "queue": "0", "service-time": "5ms"})
	const n = 200
	codes := load(t, c.Nodes["n1"].Cfg.Listen, n, 20)
	m := scrape(t, info(c, "n1"))
	st := status(t, c, "n1")

	fromMetrics := m["retrysvc_attempts_total"] / m["retrysvc_requests_total"]
	fromStatus := float64(st.Counters["attempts"]) / float64(st.Counters["requests"])
	if fromMetrics != fromStatus {
		t.Errorf("amplification %v from /metrics, %v from /admin/status", fromMetrics, fromStatus)
	}
	if fromMetrics <= 1 || m["retrysvc_requests_total"] != n {
		t.Errorf("amplification %v over %v requests: the burst caused no retries, the test shows nothing", fromMetrics, m["retrysvc_requests_total"])
	}
	if m["retrysvc_attempts_total"] != m["retrysvc_requests_total"]+m["retrysvc_retries_total"] {
		t.Errorf("attempts %v != requests %v + retries %v", m["retrysvc_attempts_total"], m["retrysvc_requests_total"], m["retrysvc_retries_total"])
	}
	if ok, un := m["retrysvc_responses_total{code=200}"], m["retrysvc_responses_total{code=503}"]; ok != float64(codes[200]) || un != float64(codes[503]) || ok+un != n {
		t.Errorf("responses 200: %v, 503: %v; the clients got %v", ok, un, codes)
	}
	// Every attempt but the successful ones failed (by cause), most on a
	// 503 from the full backend.
	failed := 0.0
	for _, cause := range []string{"rejected", "timeout", "error", "status"} {
		failed += m["retrysvc_attempt_failures_total{cause="+cause+"}"]
	}
	if rej := m["retrysvc_attempt_failures_total{cause=rejected}"]; failed != m["retrysvc_attempts_total"]-m["retrysvc_responses_total{code=200}"] || rej == 0 {
		t.Errorf("failed attempts: %v (%v rejected) of %v attempts for %v successes", failed, rej, m["retrysvc_attempts_total"], m["retrysvc_responses_total{code=200}"])
	}
	if st.Policy != "naive" || len(st.Backends) != 1 || st.Backends[0] != "n2" || m["retrysvc_breaker_state"] != 0 {
		t.Errorf("status %+v, breaker_state %v", st, m["retrysvc_breaker_state"])
	}
	bm := scrape(t, info(c, "n2"))
	if bm["retrysvc_requests_total"] != m["retrysvc_attempts_total"] || bm["retrysvc_rejections_total{reason=full}"] == 0 {
		t.Errorf("the backend received %v attempts (%v refused full), the frontend sent %v", bm["retrysvc_requests_total"], bm["retrysvc_rejections_total{reason=full}"], m["retrysvc_attempts_total"])
	}
	if bs := status(t, c, "n2"); float64(bs.Counters["requests"]) != bm["retrysvc_requests_total"] || float64(bs.Counters["completed"]) != bm["retrysvc_completed_total"] {
		t.Errorf("the backend's status %v and metrics %v differ", bs.Counters, bm)
	}
}

// Each policy over a cut frontend -> backend link (the relay of the peer
// address the frontend was given; the backend itself still serves):
// none makes one attempt per request, naive and backoff 1+retries,
// breaker opens after breaker-failures and then refuses every attempt
// (amplification below 1), budget retries at most budget-ratio x
// requests + budget-reserve times.
func TestPoliciesOverACutLink(t *testing.T) {
	const n = 20
	for _, tc := range []struct {
		policy   Policy
		opts     map[string]string
		attempts func(float64) bool
		want     string
	}{
		{PolicyNone, nil, func(a float64) bool { return a == n }, "20"},
		{PolicyNaive, nil, func(a float64) bool { return a == 4*n }, "80"},
		{PolicyBackoff, nil, func(a float64) bool { return a == 4*n }, "80"},
		{PolicyBreaker, map[string]string{"breaker-failures": "3", "breaker-open": "1m"}, func(a float64) bool { return a == 3 }, "3"},
		{PolicyBudget, map[string]string{"budget-ratio": "0.1", "budget-reserve": "2"}, func(a float64) bool { return a > n && a <= n+0.1*n+2 }, "21 to 24"},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			opts := map[string]string{"policy": string(tc.policy), "backoff-base": "1ms", "backoff-cap": "4ms"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			c := chain(t, opts, nil)
			c.Link("n1", "n2").SetCut(true)
			if code, _, err := get(context.Background(), c.Nodes["n2"].Cfg.Listen, "/work"); code != 200 {
				t.Fatalf("the backend itself: %d %v", code, err)
			}
			codes := load(t, c.Nodes["n1"].Cfg.Listen, n, 1)
			m := scrape(t, info(c, "n1"))
			if codes[503] != n || !tc.attempts(m["retrysvc_attempts_total"]) {
				t.Fatalf("answers %v, %v attempts for %d requests, want %s", codes, m["retrysvc_attempts_total"], n, tc.want)
			}
			if m["retrysvc_attempts_total"] != m["retrysvc_attempt_failures_total{cause=error}"] {
				t.Errorf("%v attempts, %v failed on the cut connection", m["retrysvc_attempts_total"], m["retrysvc_attempt_failures_total{cause=error}"])
			}
			switch tc.policy {
			case PolicyBreaker:
				if m["retrysvc_breaker_state"] != 1 || m["retrysvc_breaker_transitions_total{to=open}"] != 1 || m["retrysvc_rejections_total{reason=breaker}"] != n {
					t.Errorf("breaker: %v", m)
				}
			case PolicyBudget:
				if m["retrysvc_rejections_total{reason=budget}"] == 0 {
					t.Errorf("budget: no retry refused: %v", m)
				}
			}
		})
	}
}

// The breaker over a link that is cut, then restored: it opens, turns
// half-open once breaker-open has passed, and the trial that succeeds
// closes it; the transitions are counted.
func TestBreakerRecovers(t *testing.T) {
	c := chain(t, map[string]string{"policy": "breaker", "breaker-failures": "2", "breaker-open": "200ms", "retries": "1", "backoff-base": "1ms", "attempt-timeout": "1s"}, nil)
	fe := c.Nodes["n1"].Cfg.Listen
	c.Link("n1", "n2").SetCut(true)
	if code, body, _ := get(context.Background(), fe, "/work"); code != 503 || !strings.Contains(body, `"attempts":2`) {
		t.Fatalf("over the cut link: %d %s", code, body)
	}
	if code, body, _ := get(context.Background(), fe, "/work"); code != 503 || !strings.Contains(body, `"reason":"breaker"`) || !strings.Contains(body, `"definite":true`) {
		t.Fatalf("with the breaker open: %d %s", code, body)
	}
	c.Link("n1", "n2").SetCut(false)
	c.WaitFor("the breaker half-open", func() bool { return status(t, c, "n1").BreakerState == int(HalfOpen) })
	if code, body, _ := get(context.Background(), fe, "/work"); code != 200 {
		t.Fatalf("the half-open trial: %d %s", code, body)
	}
	m := scrape(t, info(c, "n1"))
	if m["retrysvc_breaker_state"] != 0 || m["retrysvc_breaker_transitions_total{to=open}"] != 1 || m["retrysvc_breaker_transitions_total{to=half_open}"] != 1 || m["retrysvc_breaker_transitions_total{to=closed}"] != 1 {
		t.Errorf("after the trial: %v", m)
	}
}

// A request is answered 503 with reason deadline when the deadline passes
// during an attempt (attempt-timeout = deadline, a backend slower than
// both).
func TestDeadline(t *testing.T) {
	c := chain(t, map[string]string{"policy": "naive", "attempt-timeout": "150ms", "deadline": "150ms"}, map[string]string{"service-time": "2s"})
	code, body, err := get(context.Background(), c.Nodes["n1"].Cfg.Listen, "/work")
	if code != 503 || !strings.Contains(body, `"reason":"deadline"`) || !strings.Contains(body, `"definite":false`) {
		t.Fatalf("%d %s %v", code, body, err)
	}
	if m := scrape(t, info(c, "n1")); m["retrysvc_gave_up_total{reason=deadline}"] != 1 || m["retrysvc_attempts_total"] != 1 || m["retrysvc_attempt_failures_total{cause=timeout}"] != 1 {
		t.Errorf("metrics %v", m)
	}
}
