package history

import (
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// PercentileKeys are the latency figures faultline reports, in order: the
// keys of Percentiles.Map and of results.json's latency objects.
var PercentileKeys = []string{"p50", "p90", "p99", "p999", "max", "mean"}

// percentileRanks are the percentiles behind p50, p90, p99 and p999.
var percentileRanks = [...]float64{50, 90, 99, 99.9}

// Percentiles are faultline's latency figures, in microseconds. Every figure
// faultline reports as a latency percentile (results.json, the stats
// checker, report.html, thresholds) comes from PercentilesOf or
// PercentilesOfSamples, which share one rule: a percentile p is the value of
// nearest rank, the smallest recorded value with at least p% of the values
// at or below it. Max is the largest value and Mean the arithmetic mean.
// All are 0 for an empty distribution.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	// Count is the number of values (omitted from JSON when 0).
	Count int64 `json:"count,omitempty"`
}

// The range of latency histograms: microseconds, 1 µs .. 1 h, 3
// significant figures. Longer latencies are recorded as one hour.
const (
	LatencyLowestUS  = 1
	LatencyHighestUS = int64(time.Hour / time.Microsecond)
	LatencySigFigs   = 3
)

// NewLatencyHistogram returns an empty latency histogram with the range
// every latency histogram of faultline uses (LatencyLowestUS ..
// LatencyHighestUS µs, LatencySigFigs significant figures; about 190 KB).
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(LatencyLowestUS, LatencyHighestUS, LatencySigFigs)
}

// RecordLatency records d in h in whole microseconds (truncated), clamped
// to [0, LatencyHighestUS].
func RecordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := min(max(int64(d/time.Microsecond), 0), LatencyHighestUS)
	_ = h.RecordValue(us) // in range by construction
}

// nearestRank is the 1-based rank of percentile p among n values.
func nearestRank(p float64, n int64) int64 {
	r := int64(math.Ceil(p/100*float64(n) - 1e-9))
	return min(max(r, 1), n)
}

// PercentilesOf reads the figures from h, whose values are microseconds
// (as NewLatencyHistogram's). Values are those of h's buckets (its highest
// equivalent values), Mean is h.Mean(). A nil h reads as empty.
func PercentilesOf(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	n := h.TotalCount()
	var q [len(percentileRanks)]float64
	for i, p := range percentileRanks {
		// The histogram's own rank rule is round(p*n); asking for exactly
		// rank/n makes it answer the nearest rank.
		q[i] = float64(h.ValueAtPercentile(100 * float64(nearestRank(p, n)) / float64(n)))
	}
	return Percentiles{P50: q[0], P90: q[1], P99: q[2], P999: q[3], Max: float64(h.Max()), Mean: h.Mean(), Count: n}
}

// PercentilesOfSamples computes the figures from exact latencies given in
// nanoseconds (reported in microseconds, with fractions). It sorts ns.
func PercentilesOfSamples(ns []int64) Percentiles {
	n := int64(len(ns))
	if n == 0 {
		return Percentiles{}
	}
	slices.Sort(ns)
	us := func(v int64) float64 { return float64(v) / 1e3 }
	var q [len(percentileRanks)]float64
	for i, p := range percentileRanks {
		q[i] = us(ns[nearestRank(p, n)-1])
	}
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	return Percentiles{P50: q[0], P90: q[1], P99: q[2], P999: q[3], Max: us(ns[n-1]), Mean: sum / float64(n) / 1e3, Count: n}
}

// Map returns the figures keyed by PercentileKeys, plus "count".
func (p Percentiles) Map() map[string]float64 {
	return map[string]float64{"p50": p.P50, "p90": p.P90, "p99": p.P99, "p999": p.P999, "max": p.Max, "mean": p.Mean, "count": float64(p.Count)}
}

// PercentilesFromMap is the inverse of Map: it reads the keys of
// PercentileKeys and "count"; a missing key reads as 0.
func PercentilesFromMap(m map[string]float64) Percentiles {
	return Percentiles{P50: m["p50"], P90: m["p90"], P99: m["p99"], P999: m["p999"], Max: m["max"], Mean: m["mean"], Count: int64(m["count"])}
}
