package scenario

import (
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/workloads"
)

// ownClient reports whether the scenario's workload builds its clients
// itself (workloads.Workload.NewClient: the http workload) in place of
// the client adapter.
func (s *Scenario) ownClient() bool { return s.wl != nil && s.wl.NewClient != nil }

// workloadClient is the workload's own client for cfg: the same nodes'
// addresses (through the client links' proxies), home node, timeout and
// token an adapter's client would get. Keys are not prefixed: such a
// workload sends no keys of a store.
func (s *Scenario) workloadClient(cfg targets.ClientConfig) (targets.Client, error) {
	c, err := s.wl.NewClient(s.Workload.Params, workloads.ClientEnv{
		Nodes: cfg.Nodes, Home: cfg.Home, Timeout: cfg.Timeout, Token: string(cfg.Token),
	})
	if err != nil {
		return nil, err
	}
	return closingClient{c}, nil
}

// closingClient gives a workload's client the Close a targets.Client has.
type closingClient struct{ workloads.Client }

func (c closingClient) Close() error {
	if cl, ok := c.Client.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// endpointNames returns the endpoints of the scenario's workload (the
// names checkers.latency.endpoints may give limits for), and whether it
// has endpoints at all.
func (s *Scenario) endpointNames() ([]string, bool) {
	e, ok := s.Workload.Params.(interface{ EndpointNames() []string })
	if !ok {
		return nil, false
	}
	return e.EndpointNames(), true
}

// validateEndpointLimits checks the error rates of checkers.latency and
// that every endpoint it gives limits for is one of the workload's.
func (s *Scenario) validateEndpointLimits() error {
	l := s.Checkers.Latency
	if l == nil {
		return nil
	}
	rate := func(path string, v *float64) error {
		if v != nil && !(*v >= 0 && *v <= 1) {
			return s.errAt(path, "%v: use a fraction between 0 and 1, e.g. 0.01 (0 allows no error)", *v)
		}
		return nil
	}
	if err := rate("checkers.latency.error_rate", l.ErrorRate); err != nil {
		return err
	}
	if len(l.Endpoints) == 0 {
		return nil
	}
	names, ok := s.endpointNames()
	if !ok {
		return s.errAt("checkers.latency.endpoints", "workload %s has no endpoints: limits per endpoint are for the http workload", s.Workload.Type)
	}
	for _, name := range slices.Sorted(maps.Keys(l.Endpoints)) {
		p := "checkers.latency.endpoints." + name
		if !slices.Contains(names, name) {
			return s.errAt(p, "the workload has no endpoint %q (endpoints: %s)", name, strings.Join(names, ", "))
		}
		if err := rate(p+".error_rate", l.Endpoints[name].ErrorRate); err != nil {
			return err
		}
	}
	return nil
}

// endpointStats are the results' figures per endpoint, from the
// workload's figures per key (nil when it keeps none).
func endpointStats(byKey map[string]*workloads.Counts) map[string]reports.EndpointStats {
	if byKey == nil {
		return nil
	}
	out := make(map[string]reports.EndpointStats, len(byKey))
	for k, c := range byKey {
		out[k] = reports.EndpointStats{
			OpStats: reports.OpStats{Ops: c.Ops, OK: c.OK, Fail: c.Fail, Mismatch: c.Mismatch, Info: c.Info},
			Latency: history.PercentilesOf(c.Latency),
			Service: history.PercentilesOf(c.Service),
		}
	}
	return out
}

// endpointThresholds adds to t the error rate and the per-endpoint limits
// of l, and the figures of st they are judged against.
func endpointThresholds(t *checkers.Thresholds, l *LatencyLimits, st *reports.Stats) {
	t.MaxErrorRate, t.Ops, t.Errors = l.ErrorRate, st.Ops, st.Fail+st.Info
	if len(l.Endpoints) == 0 {
		return
	}
	t.Endpoints = map[string]checkers.EndpointLimits{}
	for name, el := range l.Endpoints {
		lim := checkers.EndpointLimits{Latency: map[string]time.Duration{}, MaxErrorRate: el.ErrorRate}
		for p, d := range map[string]Duration{"p50": el.P50, "p99": el.P99, "p999": el.P999, "max": el.Max} {
			if d > 0 {
				lim.Latency[p] = d.D()
			}
		}
		t.Endpoints[name] = lim
	}
	if st.ByEndpoint == nil {
		return
	}
	t.EndpointFigures = map[string]checkers.Figures{}
	for name, e := range st.ByEndpoint {
		t.EndpointFigures[name] = checkers.Figures{
			Latency: map[string]float64{"p50": e.Latency.P50, "p90": e.Latency.P90, "p99": e.Latency.P99, "p999": e.Latency.P999, "max": e.Latency.Max},
			Ops:     e.Ops, Errors: e.Fail + e.Info,
		}
	}
}

// checkWorkloadHere asks a workload whose parameters take something from
// this machine (the http workload: the environment variables of header
// values, a CA file) whether it is there, unless the scenario is read to
// judge a saved run (which needs neither).
func (s *Scenario) checkWorkloadHere() error {
	if s.judging {
		return nil
	}
	if r, ok := s.Workload.Params.(interface{ Resolve() error }); ok {
		if err := r.Resolve(); err != nil {
			return s.fieldErr("workload", err)
		}
	}
	return nil
}
