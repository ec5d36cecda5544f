package retrysvc

import (
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names, as GET /metrics serves them (see the package doc). The
// status (GET /admin/status) reports the same values under StatusKey's
// names.
const (
	MetricRequests    = "retrysvc_requests_total"
	MetricResponses   = "retrysvc_responses_total"
	MetricAttempts    = "retrysvc_attempts_total"
	MetricRetries     = "retrysvc_retries_total"
	MetricRejections  = "retrysvc_rejections_total"
	MetricBreaker     = "retrysvc_breaker_state"
	MetricTransitions = "retrysvc_breaker_transitions_total"
	MetricFailures    = "retrysvc_attempt_failures_total"
	MetricGaveUp      = "retrysvc_gave_up_total"
	MetricClientGone  = "retrysvc_client_gone_total"
	MetricCompleted   = "retrysvc_completed_total"
	MetricAbandoned   = "retrysvc_abandoned_total"
	MetricInService   = "retrysvc_in_service"
	MetricQueueDepth  = "retrysvc_queue_depth"
	MetricServiceTime = "retrysvc_service_time_seconds"
)

// sample is one value a node exports: a counter or a gauge, with at most
// one label.
type sample struct {
	name, help  string
	gauge       bool
	label, lval string
	value       float64
}

// StatusKey is the name under which the status reports a metric: the
// name without "retrysvc_" and "_total", then "_" and the label's value
// if it has one (retrysvc_responses_total{code="503"} is responses_503).
func StatusKey(name, labelValue string) string {
	k := strings.TrimSuffix(strings.TrimPrefix(name, "retrysvc_"), "_total")
	if labelValue != "" {
		k += "_" + labelValue
	}
	return k
}

// counter is a monotonic count, safe for concurrent use.
type counter struct{ n atomic.Int64 }

func (c *counter) inc()          { c.n.Add(1) }
func (c *counter) load() float64 { return float64(c.n.Load()) }

// collector exports a node's samples to a Prometheus registry. It reads
// the same counters as the status, so both tell the same story.
type collector struct {
	samples func() []sample
	descs   map[string]*prometheus.Desc
}

func newCollector(samples func() []sample) *collector {
	c := &collector{samples: samples, descs: map[string]*prometheus.Desc{}}
	for _, s := range samples() {
		if _, ok := c.descs[s.name]; ok {
			continue
		}
		var labels []string
		if s.label != "" {
			labels = []string{s.label}
		}
		c.descs[s.name] = prometheus.NewDesc(s.name, s.help, labels, nil)
	}
	return c
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect sends the current value of every sample.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.samples() {
		t := prometheus.CounterValue
		if s.gauge {
			t = prometheus.GaugeValue
		}
		var lv []string
		if s.label != "" {
			lv = []string{s.lval}
		}
		ch <- prometheus.MustNewConstMetric(c.descs[s.name], t, s.value, lv...)
	}
}

// metricsHandler serves samples in the Prometheus text format from a
// registry of the node's own (no Go runtime collectors).
func metricsHandler(samples func() []sample) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(samples))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}

// statusOf splits samples into the status's counters (StatusKey names)
// and its gauges (the Extra fields breaker_state, in_service, queue_depth,
// service_time_ms).
func statusOf(samples []sample) (map[string]int64, map[string]any) {
	counters := map[string]int64{}
	extra := map[string]any{}
	for _, s := range samples {
		switch {
		case !s.gauge:
			counters[StatusKey(s.name, s.lval)] = int64(s.value)
		case s.name == MetricServiceTime:
			extra["service_time_ms"] = s.value * 1000
		default:
			extra[StatusKey(s.name, s.lval)] = int64(s.value)
		}
	}
	return counters, extra
}
