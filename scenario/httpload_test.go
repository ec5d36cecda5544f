package scenario

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/targets"
	_ "github.com/faultline/faultline/targets/httpsvc"
	"github.com/faultline/faultline/workloads"
)

const httpScenario = `name: load
system: httpsvc
node_opts: {latency: 2ms}
duration: 5s
workload:
  type: http
  rate: 200
  lists: {color: [red, blue]}
  endpoints:
    - {name: home, url: "/?n={{.seq}}", weight: 3, check: {status: [200], json_field: count}}
    - name: item
      method: POST
      url: "/items/{{.key}}"
      headers: {X-Token: "${LOAD_TOKEN}"}
      body: '{"color": {{json .color}}}'
checkers:
  latency:
    min_rate: 0.9
    error_rate: 0.01
    endpoints:
      home: {p99: 50ms}
      item: {p50: 10ms, error_rate: 0}
`

func TestHTTPWorkloadScenario(t *testing.T) {
	t.Setenv("LOAD_TOKEN", "tok-value-0123")
	s, err := Parse("load.yaml", []byte(httpScenario))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := s.Workload.Params.(*workloads.HTTPParams)
	if !ok || len(p.Endpoints) != 2 || p.Endpoints[1].Headers["X-Token"] != "${LOAD_TOKEN}" {
		t.Fatalf("workload %s params %+v", s.Workload.Type, s.Workload.Params)
	}
	if !s.ownClient() || s.Client.Adapter != "http" {
		t.Errorf("the http workload builds its own clients (adapter %s)", s.Client.Adapter)
	}
	cs, err := s.checkerList(&reports.Stats{Ops: 1})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name())
	}
	if got := strings.Join(names, ","); got != "stats,thresholds" {
		t.Errorf("checkers %s, want stats,thresholds (the http workload has no default checker)", got)
	}

	// The scenario as saved into the run directory reads back the same
	// (with ${LOAD_TOKEN} as written, never its value).
	b, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "tok-value-0123") || !strings.Contains(string(b), "${LOAD_TOKEN}") {
		t.Errorf("saved scenario:\n%s", b)
	}
	back, err := Parse("saved.yaml", b)
	if err != nil {
		t.Fatalf("the saved scenario does not read back: %v\n%s", err, b)
	}
	bp := back.Workload.Params.(*workloads.HTTPParams)
	if len(bp.Endpoints) != 2 || bp.Endpoints[0].Check == nil || bp.Endpoints[0].Check.JSONField != "count" || back.Checkers.Latency.Endpoints["item"].ErrorRate == nil {
		t.Errorf("read back: %+v %+v", bp.Endpoints, back.Checkers.Latency)
	}
}

// The http workload runs on a system whose adapter performs none of its
// operations: it speaks to the nodes itself.
func TestHTTPWorkloadNeedsNoAdapterOps(t *testing.T) {
	src := "system: raftkv\nworkload: {type: http, endpoints: [{name: a, url: /kv/x}]}\n"
	s, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.newClient(targets.ClientConfig{Nodes: map[string]string{"n1": "127.0.0.1:1"}, Home: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(closingClient); !ok {
		t.Errorf("newClient gave a %T, want the workload's own client", c)
	}
	// Nothing listens at 127.0.0.1:1: never sent.
	out := c.Do(context.Background(), history.Op{F: workloads.FRequest, Key: "a", Value: []byte(`{"seq":1}`)})
	if out.Type != history.Fail || !strings.HasPrefix(out.Error, "not sent") || out.Node != "n1" {
		t.Errorf("%+v", out)
	}
	if _, err := Parse("x.yaml", []byte("system: raftkv\nworkload: {type: register}\n")); err != nil {
		t.Errorf("the register workload still validates: %v", err)
	}
}

func TestHTTPThresholdErrors(t *testing.T) {
	t.Setenv("LOAD_TOKEN", "x")
	for _, c := range []struct{ name, src, field, text string }{
		{"unknown endpoint", strings.Replace(httpScenario, "home: {p99: 50ms}", "nope: {p99: 50ms}", 1), "checkers.latency.endpoints.nope", "no endpoint \"nope\" (endpoints: home, item)"},
		{"error rate above 1", strings.Replace(httpScenario, "error_rate: 0.01", "error_rate: 2", 1), "checkers.latency.error_rate", "between 0 and 1"},
		{"endpoint error rate", strings.Replace(httpScenario, "error_rate: 0}", "error_rate: -1}", 1), "checkers.latency.endpoints.item.error_rate", "between 0 and 1"},
		{"endpoints of the register workload", "checkers: {latency: {endpoints: {a: {p99: 1s}}}}\n", "checkers.latency.endpoints", "workload register has no endpoints"},
		{"unknown field of an endpoint limit", strings.Replace(httpScenario, "home: {p99: 50ms}", "home: {p90: 50ms}", 1), "checkers.latency.endpoints.home.p90", "unknown field"},
		{"an endpoint's template", strings.Replace(httpScenario, "/items/{{.key}}", "/items/{{.sku}}", 1), "workload.endpoints[1].url", "{{.sku}}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("load.yaml", []byte(c.src))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.text) || fe.Line == 0 {
				t.Errorf("got %v; want field %s at a line, saying %q", err, c.field, c.text)
			}
		})
	}
}

// The thresholds judge each endpoint's figures from results.json's stats,
// as `faultline check` of a saved run does.
func TestEndpointThresholdsJudged(t *testing.T) {
	t.Setenv("LOAD_TOKEN", "x")
	s, err := Parse("load.yaml", []byte(httpScenario))
	if err != nil {
		t.Fatal(err)
	}
	st := func(homeP99, itemP50 float64, itemFail int64) *reports.Stats {
		return &reports.Stats{Ops: 1000, OK: 1000 - itemFail, Fail: itemFail, TargetRate: 200, AchievedRate: 199,
			ByEndpoint: map[string]reports.EndpointStats{
				"home": {OpStats: reports.OpStats{Ops: 750, OK: 750}, Latency: history.Percentiles{P50: 3000, P99: homeP99}},
				"item": {OpStats: reports.OpStats{Ops: 250, OK: 250 - itemFail, Fail: itemFail}, Latency: history.Percentiles{P50: itemP50, P99: 9000}},
			}}
	}
	judge := func(st *reports.Stats) checkers.Result {
		cs, err := s.checkerList(st)
		if err != nil {
			t.Fatal(err)
		}
		return cs[len(cs)-1].Check(context.Background(), checkers.Input{})
	}
	if r := judge(st(40_000, 5_000, 0)); r.Verdict != checkers.Valid {
		t.Errorf("every limit met: %s %s", r.Verdict, r.Summary)
	}
	for _, c := range []struct {
		st   *reports.Stats
		want string
	}{
		{st(60_000, 5_000, 0), "endpoint home: latency p99 60ms > limit 50ms"},
		{st(40_000, 11_000, 0), "endpoint item: latency p50 11ms > limit 10ms"},
		{st(40_000, 5_000, 1), "endpoint item: error rate 0.40% (1 of 250"},
		{st(40_000, 5_000, 20), "error rate 2.00% (20 of 1000"},
	} {
		r := judge(c.st)
		if r.Verdict != checkers.Invalid || !r.Threshold || !strings.Contains(r.Summary, c.want) {
			t.Errorf("%s %q, want invalid saying %q", r.Verdict, r.Summary, c.want)
		}
	}
	noItem := st(40_000, 5_000, 0)
	delete(noItem.ByEndpoint, "item")
	if r := judge(noItem); r.Verdict != checkers.Invalid || !strings.Contains(r.Summary, "endpoint item: no request measured") {
		t.Errorf("an endpoint without requests: %s %q", r.Verdict, r.Summary)
	}
}

// A header's environment variable is asked for when a scenario is
// validated for a run (exit 64 with its line, before anything starts), not
// when a saved run is judged on another machine.
func TestHTTPEnvAtValidation(t *testing.T) {
	t.Setenv("LOAD_TOKEN", "")
	_, err := Parse("load.yaml", []byte(httpScenario))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "workload.endpoints[1].headers.X-Token" || fe.Line != 14 || !strings.Contains(fe.Msg, "LOAD_TOKEN is not set") {
		t.Errorf("got %v; want the header's field at line 14 naming LOAD_TOKEN", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(httpScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadForJudging(path); err != nil {
		t.Errorf("judging a saved run needs no environment: %v", err)
	}
}
