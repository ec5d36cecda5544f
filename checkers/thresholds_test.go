package checkers

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestThresholdsErrorRateAndEndpoints(t *testing.T) {
	zero, onePct := 0.0, 0.01
	figs := map[string]Figures{
		"a": {Latency: map[string]float64{"p50": 1000, "p99": 9000}, Ops: 100, Errors: 0},
		"b": {Latency: map[string]float64{"p50": 2000, "p99": 30000}, Ops: 50, Errors: 1},
	}
	for _, c := range []struct {
		name    string
		t       Thresholds
		verdict Verdict
		summary string
	}{
		{"error rate 0 met", Thresholds{MaxErrorRate: &zero, Ops: 10}, Valid, "error rate 0.00% <= 0.00%"},
		{"error rate 0 missed", Thresholds{MaxErrorRate: &zero, Ops: 10, Errors: 1}, Invalid, "error rate 10.00% (1 of 10 operations failed or ended unknown) > limit 0.00%"},
		{"error rate without ops", Thresholds{MaxErrorRate: &onePct}, NotApplicable, "no operation was sent"},
		{"endpoint latency met", Thresholds{Endpoints: map[string]EndpointLimits{"a": {Latency: map[string]time.Duration{"p99": 10 * time.Millisecond}}}, EndpointFigures: figs}, Valid, "endpoint a: p99 9ms <= 10ms"},
		{"endpoint latency missed", Thresholds{Endpoints: map[string]EndpointLimits{"b": {Latency: map[string]time.Duration{"p99": 10 * time.Millisecond}}}, EndpointFigures: figs}, Invalid, "endpoint b: latency p99 30ms > limit 10ms"},
		{"endpoint error rate missed", Thresholds{Endpoints: map[string]EndpointLimits{"b": {MaxErrorRate: &onePct}}, EndpointFigures: figs}, Invalid, "endpoint b: error rate 2.00% (1 of 50"},
		{"endpoint without figures", Thresholds{Endpoints: map[string]EndpointLimits{"c": {MaxErrorRate: &onePct}}, EndpointFigures: figs}, Invalid, "endpoint c: no request measured"},
		{"a percentile not measured", Thresholds{Endpoints: map[string]EndpointLimits{"a": {Latency: map[string]time.Duration{"p999": time.Second}}}, EndpointFigures: figs}, Invalid, "endpoint a: p999: no measurement"},
		{"no per-endpoint figures at all", Thresholds{Endpoints: map[string]EndpointLimits{"a": {MaxErrorRate: &onePct}}}, NotApplicable, "no per-endpoint figures"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.t.Check(context.Background(), Input{})
			if r.Verdict != c.verdict || !strings.Contains(r.Summary, c.summary) || !r.Threshold {
				t.Errorf("%s %q, want %s %q", r.Verdict, r.Summary, c.verdict, c.summary)
			}
		})
	}
}
