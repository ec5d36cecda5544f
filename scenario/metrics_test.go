package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// Every mistake in a metrics block is an error of the file, with the
// line of the field and what to do.
func TestMetricsBlockErrors(t *testing.T) {
	t.Setenv("FL_METRICS_HOST", "127.0.0.1:9")
	cases := []struct {
		name, src   string
		line        int
		field, says string
	}{
		{"nothing to scrape", "metrics: {interval: 1s}\n", 1, "metrics", "nothing to scrape"},
		{"interval too short", "metrics:\n  interval: 10ms\n  scrape: [{role: node}]\n", 2, "metrics.interval", "50ms to 1m"},
		{"unknown role", "metrics:\n  scrape:\n    - {role: frontend}\n", 3, "metrics.scrape[0].role", `no node of role "frontend" in this run (roles: node)`},
		{"unknown node", "metrics:\n  scrape:\n    - {node: n9}\n", 3, "metrics.scrape[0].node", "nodes: n1, n2, n3"},
		{"role and node", "metrics:\n  scrape:\n    - {node: n1, role: node}\n", 3, "metrics.scrape[0]", "either role"},
		{"relative path", "metrics:\n  scrape:\n    - {node: n1, path: metrics}\n", 3, "metrics.scrape[0].path", "starts with /"},
		{"unknown field", "metrics:\n  scrape:\n    - {nodes: n1}\n", 3, "metrics.scrape[0].nodes", "unknown field"},
		{"url without node", "metrics:\n  urls:\n    - {url: \"http://${FL_METRICS_HOST}/metrics\"}\n", 3, "metrics.urls[0].node", "give the name"},
		{"url unset variable", "metrics:\n  urls:\n    - {node: api, url: \"http://${FL_METRICS_UNSET}/metrics\"}\n", 3, "metrics.urls[0].url", "FL_METRICS_UNSET is not set"},
		{"url not http", "metrics:\n  urls:\n    - {node: api, url: \"ftp://x/metrics\"}\n", 3, "metrics.urls[0].url", "not an http(s) URL"},
		{"node sampled twice", "metrics:\n  scrape: [{node: n1}]\n  urls:\n    - {node: n1, url: \"http://${FL_METRICS_HOST}/metrics\"}\n", 4, "metrics.urls[0].node", "sampled twice"},
		{"bad pattern", "metrics:\n  scrape: [{node: n1}]\n  names: [\"retry[\"]\n", 3, "metrics.names[0]", "not a name pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantFieldError(t, c.src, c.line, 0, c.field, c.says) })
	}
	// A process target's nodes have no admin API: give a URL instead.
	_, err := Parse("p.yaml", []byte(proc("metrics:\n  scrape: [{role: member}]\n")))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:9:") || !strings.Contains(err.Error(), "node n1 has no faultline admin API to scrape") || !strings.Contains(err.Error(), "metrics.urls") {
		t.Errorf("process target scraped: %v", err)
	}
	// A good block: defaults, and the saved scenario keeps ${VAR}.
	s, err := Parse("ok.yaml", []byte("metrics:\n  scrape: [{role: node}]\n  urls: [{node: api, role: frontend, url: \"http://${FL_METRICS_HOST}/metrics\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Metrics.Interval.D() != DefaultMetricsInterval {
		t.Errorf("interval %s", s.Metrics.Interval)
	}
	saved, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("saved.yaml", saved)
	if err != nil || !strings.Contains(string(saved), "url: http://${FL_METRICS_HOST}/metrics") || !reflect.DeepEqual(back.Metrics, s.Metrics) {
		t.Errorf("saved as\n%s\nread back %+v: %v", saved, back.Metrics, err)
	}
	// Judging a saved run needs no environment.
	if _, err := parseWith("saved.yaml", []byte("metrics:\n  urls: [{node: api, url: \"http://${FL_METRICS_UNSET}/metrics\"}]\n"), Overrides{}, true); err != nil {
		t.Errorf("judging: %v", err)
	}
}

// metricsCluster is a cluster whose nodes are the given addresses (the
// sampler needs only the nodes' admin addresses, roles and token).
type metricsCluster []targets.NodeInfo

func (c metricsCluster) Nodes() []targets.NodeInfo { return c }
func (c metricsCluster) Close() error              { return nil }

// The sampler scrapes a node's admin API (with the run's token: without
// it the node refuses) and a URL over real TCP, parses Prometheus text,
// and records one observer event per target and scrape, the first before
// startMetrics returns; a failing endpoint is recorded as an error, which
// never shows a URL's text.
func TestMetricsSampler(t *testing.T) {
	reg := prometheus.NewRegistry()
	attempts := prometheus.NewCounter(prometheus.CounterOpts{Name: "retrysvc_attempts_total", Help: "attempts"})
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "retrysvc_responses_total", Help: "responses"}, []string{"code"})
	state := prometheus.NewGauge(prometheus.GaugeOpts{Name: "retrysvc_breaker_state", Help: "state"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds", Help: "latency"})
	reg.MustRegister(attempts, responses, state, lat)
	attempts.Add(12)
	responses.WithLabelValues("200").Add(10)
	responses.WithLabelValues(`5"03`).Add(2)
	state.Set(1)
	lat.Observe(0.25)
	lat.Observe(0.5)
	token := targets.NewToken()
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !token.Allows(r) || r.URL.Path != "/metrics" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	defer admin.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the run's token was sent to a URL of the scenario")
		}
		w.Write([]byte("this is { not prometheus\n"))
	}))
	defer broken.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	t.Setenv("FL_BROKEN", strings.TrimPrefix(broken.URL, "http://"))
	t.Setenv("FL_DEAD", dead)
	s, err := Parse("m.yaml", []byte(`metrics:
  interval: 100ms
  scrape: [{role: node}]
  urls:
    - {node: broken, role: frontend, url: "http://${FL_BROKEN}/metrics"}
    - {node: dead, url: "http://u:secret@${FL_DEAD}/metrics?token=secret"}
  names: [retrysvc_*, latency_seconds]
`))
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := strings.TrimPrefix(admin.URL, "http://")
	cluster := metricsCluster{
		{NodeAddrs: targets.NodeAddrs{ID: "n1", Admin: adminAddr}, Role: "node", Token: token},
		{NodeAddrs: targets.NodeAddrs{ID: "n2", Admin: adminAddr}, Role: "node", Token: "wrong"},
	}
	var buf bytes.Buffer
	rec, err := history.NewRecorder(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.startMetrics(context.Background(), cluster, rec)
	if err != nil {
		t.Fatal(err)
	}
	first := rec.Count()
	time.Sleep(350 * time.Millisecond)
	ms.Stop()
	ms.Stop()
	after := rec.Count()
	rec.Close()
	if first != 4 || after < 8 {
		t.Errorf("%d events when startMetrics returned (want one per target: 4), %d at the end", first, after)
	}
	_, evs, err := history.ReadAll(&buf, "h")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]history.Event{}
	for _, e := range evs {
		if e.Process != history.Observer || e.F != checkers.MetricsF {
			t.Fatalf("event %+v", e)
		}
		got[e.Node] = append(got[e.Node], e)
	}
	var n1 checkers.MetricsSample
	if e := got["n1"][0]; e.Error != "" || json.Unmarshal(e.Value, &n1) != nil {
		t.Fatalf("n1: %+v", e)
	}
	want := map[string]float64{"retrysvc_attempts_total": 12, `retrysvc_responses_total{code="200"}`: 10, `retrysvc_responses_total{code="5\"03"}`: 2,
		"retrysvc_breaker_state": 1, "latency_seconds_count": 2, "latency_seconds_sum": 0.75}
	if e := got["n1"][0]; n1.At <= 0 || n1.At > e.Time {
		t.Errorf("n1 read at %d, recorded at %d: want 0 < read <= recorded", n1.At, e.Time)
	}
	if n1.Role != "node" || len(n1.Metrics) != len(want) {
		t.Errorf("n1 sample %+v, want %v", n1, want)
	}
	for k, v := range want {
		if n1.Metrics[k] != v {
			t.Errorf("%s = %v, want %v (sample %v)", k, n1.Metrics[k], v, n1.Metrics)
		}
	}
	for node, says := range map[string]string{"n2": "scrape: status 401", "broken": "not Prometheus text format", "dead": "connection refused"} {
		e := got[node][0]
		if !strings.Contains(e.Error, says) || strings.Contains(e.Error, "secret") {
			t.Errorf("%s: error %q, want %q without the URL's secrets", node, e.Error, says)
		}
	}
	if !strings.Contains(string(got["broken"][0].Value), `"role":"frontend"`) {
		t.Errorf("broken: %s", got["broken"][0].Value)
	}

	// The names filter and the cap on series per sample.
	sc := &scraper{names: []string{"retrysvc_*"}}
	many := prometheus.NewRegistry()
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "many_total", Help: "h"}, []string{"i"})
	many.MustRegister(cv)
	for i := 0; i < checkers.MaxSampleSeries+7; i++ {
		cv.WithLabelValues(string(rune('a'+i%26)) + strings.Repeat("x", i/26)).Inc()
	}
	mf, _ := many.Gather()
	byName := map[string]*dto.MetricFamily{}
	for _, f := range mf {
		byName[f.GetName()] = f
	}
	if m, dropped := sc.series(byName); len(m) != 0 || dropped != 0 {
		t.Errorf("names [retrysvc_*] kept %d series of many_total", len(m))
	}
	sc.names = nil
	if m, dropped := sc.series(byName); len(m) != checkers.MaxSampleSeries || dropped != 7 {
		t.Errorf("kept %d, dropped %d", len(m), dropped)
	}
}

// A run of a system with roles (and a metrics block) saves a scenario.yaml
// that reads back to judge the run (faultline check), and replays.
func TestMultiRoleScenarioSavedReadsBack(t *testing.T) {
	src := []byte("system: twotier\nroles:\n  store: {nodes: 2, opts: {}}\n  front: {nodes: 1}\nmetrics:\n  scrape: [{role: front}]\n  urls: [{node: api, url: \"http://${FL_UNSET_AT_JUDGING}/metrics\"}]\n")
	if _, err := Parse("two.yaml", src); err == nil {
		t.Fatal("an unset variable was accepted for a run")
	}
	t.Setenv("FL_UNSET_AT_JUDGING", "127.0.0.1:9")
	s, err := Parse("two.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := s.saveEffective(path); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(path)
	if _, err := Load(path); err != nil {
		t.Errorf("replaying the saved scenario: %v\n%s", err, saved)
	}
	os.Unsetenv("FL_UNSET_AT_JUDGING")
	back, err := loadForJudging(path)
	if err != nil {
		t.Fatalf("judging with the saved scenario: %v\n%s", err, saved)
	}
	if !reflect.DeepEqual(back.Metrics, s.Metrics) || len(back.NodeIDs()) != 3 {
		t.Errorf("read back %+v, nodes %v", back.Metrics, back.NodeIDs())
	}
}
