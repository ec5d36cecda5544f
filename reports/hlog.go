package reports

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// hlogData is what the report takes from latency.hlog: every interval
// merged, and each interval's percentiles over time.
type hlogData struct {
	total     *hdrhistogram.Histogram
	intervals []hlogInterval
}

type hlogInterval struct {
	T             float64 // the interval's middle, seconds since the run's start
	P50, P99, Max float64 // µs
	Count         int64
}

var hlogBaseRe = regexp.MustCompile(`(?m)^#\[BaseTime: ([\d.]+)`)

// readHlog reads an HdrHistogram interval log (values in µs) as written by
// hdrhistogram-go's HistogramLogWriter. The log's timestamps are taken as
// relative to the run's start (faultline writes BaseTime = the run's start).
func readHlog(path string) (*hlogData, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	base := 0.0
	if m := hlogBaseRe.FindSubmatch(b); m != nil {
		base, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	r := hdrhistogram.NewHistogramLogReader(bytes.NewReader(b))
	d := &hlogData{}
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h == nil {
			break
		}
		if d.total == nil {
			d.total = hdrhistogram.New(h.LowestTrackableValue(), h.HighestTrackableValue(), int(h.SignificantFigures()))
		}
		d.total.Merge(h)
		t := float64(h.StartTimeMs()+h.EndTimeMs())/2e3 - base
		if t < 0 {
			t = 0
		}
		if h.TotalCount() > 0 {
			p := history.PercentilesOf(h)
			d.intervals = append(d.intervals, hlogInterval{T: t, P50: p.P50, P99: p.P99, Max: p.Max, Count: p.Count})
		}
	}
	if d.total == nil || d.total.TotalCount() == 0 {
		return nil, fmt.Errorf("%s: no recorded values", path)
	}
	return d, nil
}
