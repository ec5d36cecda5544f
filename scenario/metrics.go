package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// MetricsConfig is a scenario's metrics block: Prometheus metrics the
// conductor scrapes during the load and records into the history (one
// observer event per node and scrape, f checkers.MetricsF), so that
// checkers (retry-storm) judge them from history.jsonl alone:
//
//	metrics:
//	  interval: 500ms                 # default 500ms (50ms to 1m)
//	  scrape: [{role: frontend}]      # nodes of this run: their admin API's /metrics, with the run's token
//	  urls:                           # or any Prometheus endpoint, named as a node
//	    - {node: api1, role: frontend, url: "http://${API_1}/metrics"}
//	  names: ["retrysvc_*"]           # metric families to keep (path.Match patterns); default all
//
// Sampling starts just before the main phase (a first scrape of every
// target, so the main phase's start has a sample before it) and ends when
// the recovery phase ends.
type MetricsConfig struct {
	// Interval is the time between two scrapes of one target.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one scrape; default 2s, or the interval if longer
	// (a scrape that takes longer than the interval delays the next).
	Timeout Duration `yaml:"timeout,omitempty"`
	// Scrape names nodes of this run, each by role or by id, whose admin
	// API serves Prometheus text (faultline's own systems that declare it:
	// retrysvc).
	Scrape []MetricsScrape `yaml:"scrape,omitempty"`
	// URLs are Prometheus endpoints of services faultline did not start,
	// each recorded under the node name given.
	URLs []MetricsURL `yaml:"urls,omitempty"`
	// Names, if set, keeps only the metric families whose names match one
	// of these patterns (path.Match: retrysvc_*); every scrape keeps at
	// most checkers.MaxSampleSeries series.
	Names []string `yaml:"names,omitempty"`
}

// MetricsScrape selects nodes of this run: every node of Role, or the
// node Node (one of the two).
type MetricsScrape struct {
	Role string `yaml:"role,omitempty"`
	Node string `yaml:"node,omitempty"`
	// Path is the path on the node's admin API; default /metrics.
	Path string `yaml:"path,omitempty"`
}

// MetricsURL is a Prometheus endpoint recorded as node Node (with Role,
// which checkers select samples by). URL may hold ${VAR}, an environment
// variable read when the run starts (the saved scenario keeps ${VAR}); no
// token is ever sent to it.
type MetricsURL struct {
	Node string `yaml:"node"`
	Role string `yaml:"role,omitempty"`
	URL  string `yaml:"url"`
}

// Limits and defaults of the metrics block.
const (
	DefaultMetricsInterval = 500 * time.Millisecond
	MaxMetricsTargets      = 64
	maxMetricsBody         = 8 << 20
)

// validateMetrics checks the metrics block against the nodes of this
// run: each scrape names a role or a node that exists and has an admin
// API; each URL has a node name of its own and an http(s) address once
// its ${VAR}s are expanded.
func (s *Scenario) validateMetrics() error {
	m := s.Metrics
	if m == nil {
		return nil
	}
	if m.Interval == 0 {
		m.Interval = Duration(DefaultMetricsInterval)
	}
	if d := m.Interval.D(); d < 50*time.Millisecond || d > time.Minute {
		return s.errAt("metrics.interval", "%s: use 50ms to 1m (e.g. 500ms)", d)
	}
	if d := m.Timeout.D(); d < 0 || d > 10*time.Second {
		return s.errAt("metrics.timeout", "%s: use up to 10s (default: the interval)", d)
	}
	if len(m.Scrape) == 0 && len(m.URLs) == 0 {
		return s.errAt("metrics", "nothing to scrape: give scrape (nodes of this run, e.g. [{role: frontend}]) or urls (Prometheus endpoints)")
	}
	if n := len(m.Scrape) + len(m.URLs); n > MaxMetricsTargets {
		return s.errAt("metrics", "%d entries: at most %d", n, MaxMetricsTargets)
	}
	hasAdmin := func(n targets.NodeSpec) bool {
		if n.Process != nil {
			return false
		}
		if s.External() {
			for _, e := range s.extNodes {
				if e.ID == n.ID {
					return e.Admin != ""
				}
			}
			return false
		}
		return true
	}
	named := map[string]bool{}
	for i, sc := range m.Scrape {
		p := fmt.Sprintf("metrics.scrape[%d]", i)
		if (sc.Role == "") == (sc.Node == "") {
			return s.errAt(p, "give either role (every node of it) or node (one id), not both or neither")
		}
		if sc.Path != "" && !strings.HasPrefix(sc.Path, "/") {
			return s.errAt(p+".path", "%q: a path on the admin API starts with /, e.g. /metrics", sc.Path)
		}
		var picked []targets.NodeSpec
		for _, n := range s.nodes {
			if n.ID == sc.Node || sc.Role != "" && n.Role == sc.Role {
				picked = append(picked, n)
			}
		}
		switch {
		case sc.Node != "" && len(picked) == 0:
			return s.errAt(p+".node", "no node %q in this run (nodes: %s)", sc.Node, strings.Join(s.NodeIDs(), ", "))
		case sc.Role != "" && len(picked) == 0:
			return s.errAt(p+".role", "no node of role %q in this run (roles: %s)", sc.Role, strings.Join(s.roleNames(), ", "))
		}
		for _, n := range picked {
			if !hasAdmin(n) {
				return s.errAt(p, "node %s has no faultline admin API to scrape (a process target, or an external node without admin): give its Prometheus endpoint under metrics.urls", n.ID)
			}
			named[n.ID] = true
		}
	}
	for i, u := range m.URLs {
		p := fmt.Sprintf("metrics.urls[%d]", i)
		if u.Node == "" {
			return s.errAt(p+".node", "give the name its samples are recorded under (node: api1)")
		}
		if named[u.Node] {
			return s.errAt(p+".node", "%q is sampled twice (by scrape or another url): give each endpoint a name of its own", u.Node)
		}
		named[u.Node] = true
		if u.URL == "" {
			return s.errAt(p+".url", "give the Prometheus endpoint, e.g. http://${API_1}/metrics")
		}
		if s.judging {
			continue // a saved run is judged from its history: no environment needed
		}
		if _, err := expandMetricsURL(u.URL); err != nil {
			return s.errAt(p+".url", "%v", err)
		}
	}
	for i, n := range m.Names {
		if _, err := path.Match(n, ""); err != nil || n == "" {
			return s.errAt(fmt.Sprintf("metrics.names[%d]", i), "%q is not a name pattern (path.Match syntax: retrysvc_*)", n)
		}
	}
	return nil
}

// roleNames returns the roles of this run's nodes, in order.
func (s *Scenario) roleNames() []string {
	var out []string
	for _, n := range s.nodes {
		if !slices.Contains(out, n.Role) {
			out = append(out, n.Role)
		}
	}
	return out
}

// expandMetricsURL expands ${VAR}s and checks the result is an http(s)
// URL with a host. Errors never show the expanded text (it may hold a
// secret).
func expandMetricsURL(raw string) (string, error) {
	v, err := expand(raw)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if v != raw {
			return "", errors.New("once its ${VAR}s are expanded it is not an http(s) URL with a host, such as http://HOST:PORT/metrics")
		}
		return "", fmt.Errorf("%q is not an http(s) URL with a host, such as http://HOST:PORT/metrics", raw)
	}
	return v, nil
}

// metricsTarget is one endpoint the sampler scrapes.
type metricsTarget struct {
	node, role string
	url        string
	token      targets.Token // the run's token, for faultline's own nodes; "" for URLs
	external   bool          // a URL of the scenario: errors must not show it
}

// metricsTargets resolves the metrics block against the running cluster.
func (s *Scenario) metricsTargets(c targets.Cluster) ([]metricsTarget, error) {
	m := s.Metrics
	var out []metricsTarget
	seen := map[string]bool{}
	for _, sc := range m.Scrape {
		p := sc.Path
		if p == "" {
			p = "/metrics"
		}
		for _, n := range c.Nodes() {
			if seen[n.ID] || !(n.ID == sc.Node || sc.Role != "" && n.Role == sc.Role) {
				continue
			}
			if n.Admin == "" {
				return nil, fmt.Errorf("metrics: node %s has no admin API to scrape", n.ID)
			}
			seen[n.ID] = true
			out = append(out, metricsTarget{node: n.ID, role: n.Role, url: "http://" + n.Admin + p, token: n.Token})
		}
	}
	for _, u := range m.URLs {
		v, err := expandMetricsURL(u.URL)
		if err != nil {
			return nil, fmt.Errorf("metrics url of %s: %w", u.Node, err)
		}
		out = append(out, metricsTarget{node: u.Node, role: u.Role, url: v, external: true})
	}
	return out, nil
}

// metricsSampler scrapes its targets every interval, each on its own,
// and records every scrape (or its failure) into the history. Stop ends
// it; it is safe to call more than once.
type metricsSampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   func()
}

// startMetrics starts sampling the scenario's metrics block (a sampler
// that does nothing when there is none). It scrapes every target once
// before it returns, so that a phase begun after it has a sample before
// its start, then every interval until Stop.
func (s *Scenario) startMetrics(ctx context.Context, c targets.Cluster, rec *history.Recorder) (*metricsSampler, error) {
	ms := &metricsSampler{cancel: func() {}}
	ms.stop = sync.OnceFunc(func() { ms.cancel(); ms.wg.Wait() })
	if s.Metrics == nil {
		return ms, nil
	}
	ts, err := s.metricsTargets(c)
	if err != nil {
		return nil, err
	}
	interval := s.Metrics.Interval.D()
	if interval <= 0 {
		interval = DefaultMetricsInterval
	}
	timeout := s.Metrics.Timeout.D()
	if timeout <= 0 {
		timeout = min(max(interval, 2*time.Second), 10*time.Second)
	}
	sc := &scraper{
		client: &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		names: s.Metrics.Names,
	}
	ctx, ms.cancel = context.WithCancel(ctx)
	var first sync.WaitGroup
	for _, t := range ts {
		first.Add(1)
		ms.wg.Add(1)
		go func() {
			defer ms.wg.Done()
			sc.record(ctx, rec, t)
			first.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					sc.record(ctx, rec, t)
				}
			}
		}()
	}
	first.Wait()
	return ms, nil
}

// Stop ends the sampling and waits for scrapes in flight.
func (ms *metricsSampler) Stop() { ms.stop() }

// scraper reads Prometheus text from an endpoint.
type scraper struct {
	client *http.Client
	names  []string
}

// record scrapes t once and records the sample (or the error), unless
// ctx ended meanwhile.
func (sc *scraper) record(ctx context.Context, rec *history.Recorder, t metricsTarget) {
	sent := rec.Now()
	sample, err := sc.scrape(ctx, t)
	if ctx.Err() != nil {
		return
	}
	// The values were read between the send and the answer: place them
	// midway (the event itself is stamped when it is recorded).
	sample.At = int64(sent + (rec.Now()-sent)/2)
	ev := history.Event{Type: history.Info, Process: history.Observer, F: checkers.MetricsF, Node: t.node}
	if err != nil {
		ev.Error = err.Error()
		sample = checkers.MetricsSample{Role: t.role}
	}
	b, jerr := json.Marshal(sample)
	if jerr != nil {
		ev.Error = "encoding the sample: " + jerr.Error()
		b, _ = json.Marshal(checkers.MetricsSample{Role: t.role})
	}
	ev.Value = b
	rec.Record(ev)
}

// scrape reads one sample of t.
func (sc *scraper) scrape(ctx context.Context, t metricsTarget) (checkers.MetricsSample, error) {
	sample := checkers.MetricsSample{Role: t.role}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return sample, errors.New("scrape: the URL is not valid")
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	if t.token != "" {
		t.token.SetOn(req)
	}
	resp, err := sc.client.Do(req)
	if err != nil {
		var ue *url.Error
		if t.external && errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a secret
		}
		return sample, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return sample, fmt.Errorf("scrape: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBody+1))
	if err != nil {
		return sample, fmt.Errorf("scrape: reading the answer: %v", err)
	}
	if len(b) > maxMetricsBody {
		return sample, fmt.Errorf("scrape: the answer is larger than %d MiB", maxMetricsBody>>20)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return sample, fmt.Errorf("scrape: not Prometheus text format: %v", err)
	}
	sample.Metrics, sample.Dropped = sc.series(fams)
	return sample, nil
}

// series flattens metric families into series keys and values, keeping
// the families Names selects and at most checkers.MaxSampleSeries series
// (the first in key order); dropped counts the others, and the series
// whose names checkers.SeriesKey cannot write.
func (sc *scraper) series(fams map[string]*dto.MetricFamily) (map[string]float64, int) {
	all := map[string]float64{}
	dropped := 0
	add := func(name string, labels map[string]string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		if _, _, err := checkers.ParseSeriesKey(name); err != nil {
			dropped++
			return
		}
		all[checkers.SeriesKey(name, labels)] = v
	}
	for name, f := range fams {
		if len(sc.names) > 0 && !slices.ContainsFunc(sc.names, func(p string) bool { ok, _ := path.Match(p, name); return ok }) {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				add(name, labels, m.GetCounter().GetValue())
			case m.Gauge != nil:
				add(name, labels, m.GetGauge().GetValue())
			case m.Untyped != nil:
				add(name, labels, m.GetUntyped().GetValue())
			case m.Histogram != nil:
				add(name+"_count", labels, float64(m.GetHistogram().GetSampleCount()))
				add(name+"_sum", labels, m.GetHistogram().GetSampleSum())
			case m.Summary != nil:
				add(name+"_count", labels, float64(m.GetSummary().GetSampleCount()))
				add(name+"_sum", labels, m.GetSummary().GetSampleSum())
			}
		}
	}
	if len(all) <= checkers.MaxSampleSeries {
		return all, dropped
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys[checkers.MaxSampleSeries:] {
		delete(all, k)
	}
	return all, dropped + len(keys) - checkers.MaxSampleSeries
}
