package checkers

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MetricsF is the f of the observer events that record one scrape of a
// node's Prometheus metrics (the scenario's metrics block):
//
//	{"type":"info","process":"observer","f":"metrics","node":"frontend1",
//	 "value":{"role":"frontend","metrics":{"retrysvc_attempts_total":512,
//	          "retrysvc_responses_total{code=\"200\"}":498}}}
//
// or, when the scrape failed, "value":{"role":"frontend"} and "error": TEXT.
// The conductor records one per sampled node every interval, from just
// before the main phase starts until the recovery phase ends; the event's
// time is when the answer was read. Checkers other than retry-storm, and
// every checker of client operations, ignore these events (they are not
// client events).
const MetricsF = "metrics"

// MetricsSample is the value of a MetricsF event.
type MetricsSample struct {
	// Role is the sampled node's role ("" when the scenario gave none for
	// a URL).
	Role string `json:"role,omitempty"`
	// Metrics maps each series (SeriesKey: the metric's name, then its
	// labels sorted by name, as Prometheus's text format writes them) to
	// its value at the scrape: counters, gauges and untyped metrics as
	// they are, a histogram or summary as its NAME_count and NAME_sum.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Dropped counts the series of the scrape left out because a sample
	// holds at most MaxSampleSeries of them.
	Dropped int `json:"dropped,omitempty"`
	// At, if set, is when the values were read, ns since the run's start
	// (the recorder's clock): midway between sending the scrape and
	// reading its answer. The event's own time is when it was recorded,
	// after the answer was parsed; checkers place the values at At.
	At int64 `json:"at,omitempty"`
}

// MaxSampleSeries is the most series one MetricsSample keeps (the first
// in sorted order); a scenario's metrics.names chooses which.
const MaxSampleSeries = 500

// SeriesKey writes a series as Prometheus's text format names it:
// name{a="x",b="y"}, labels sorted by name, values escaped (\\, \", \n);
// just name without labels. Labels with an empty value are left out (in
// Prometheus an empty label is no label).
func SeriesKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return name
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(labels[k]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }

// ParseSeriesKey reads a series key (SeriesKey's form) or a selector of
// the same form: name, or name{label="value",...}. In a selector the
// labels are those a series must have (with those values); others may
// be present.
func ParseSeriesKey(s string) (name string, labels map[string]string, err error) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, '{')
	if i < 0 {
		if !validMetricName(s) {
			return "", nil, fmt.Errorf("%q is not a metric name (letters, digits, _ and :, not starting with a digit)", s)
		}
		return s, nil, nil
	}
	name = strings.TrimSpace(s[:i])
	if !validMetricName(name) {
		return "", nil, fmt.Errorf("%q is not a metric name (letters, digits, _ and :, not starting with a digit)", name)
	}
	rest := s[i+1:]
	labels = map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " ,")
		if strings.HasPrefix(rest, "}") {
			if strings.TrimSpace(rest[1:]) != "" {
				return "", nil, fmt.Errorf("%q: text after the closing }", s)
			}
			return name, labels, nil
		}
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return "", nil, fmt.Errorf(`%q: want name{label="value",...}`, s)
		}
		ln := strings.TrimSpace(rest[:eq])
		if !validLabelName(ln) {
			return "", nil, fmt.Errorf("%q: %q is not a label name", s, ln)
		}
		rest = strings.TrimLeft(rest[eq+1:], " ")
		if !strings.HasPrefix(rest, `"`) {
			return "", nil, fmt.Errorf(`%q: the value of label %s must be quoted ("...")`, s, ln)
		}
		var v strings.Builder
		j, closed := 1, false
		for j < len(rest) {
			c := rest[j]
			if c == '\\' && j+1 < len(rest) {
				switch rest[j+1] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(rest[j+1])
				}
				j += 2
				continue
			}
			if c == '"' {
				closed = true
				j++
				break
			}
			v.WriteByte(c)
			j++
		}
		if !closed {
			return "", nil, fmt.Errorf("%q: the value of label %s is not closed", s, ln)
		}
		if _, dup := labels[ln]; dup {
			return "", nil, fmt.Errorf("%q: label %s appears twice", s, ln)
		}
		labels[ln] = v.String()
		rest = rest[j:]
	}
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool { return s != "" && !strings.Contains(s, ":") && validMetricName(s) }

// seriesMatcher selects the series of one metric (a selector of
// ParseSeriesKey's form).
type seriesMatcher struct {
	name   string
	labels map[string]string
}

func newSeriesMatcher(sel string) (seriesMatcher, error) {
	name, labels, err := ParseSeriesKey(sel)
	return seriesMatcher{name: name, labels: labels}, err
}

// matches reports whether series key k is one the selector names.
func (m seriesMatcher) matches(k string) bool {
	if !strings.HasPrefix(k, m.name) || len(k) > len(m.name) && k[len(m.name)] != '{' {
		return false
	}
	if len(m.labels) == 0 {
		return true
	}
	_, labels, err := ParseSeriesKey(k)
	if err != nil {
		return false
	}
	for ln, lv := range m.labels {
		if labels[ln] != lv {
			return false
		}
	}
	return true
}

// Floats is a series of figures that may have gaps: NaN is a missing
// value, written as null in JSON (and read back as NaN); the others are
// written rounded to 3 decimals, to keep results.json compact.
type Floats []float64

// MarshalJSON writes the values, null for NaN (and for ±Inf).
func (f Floats) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, v := range f {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, math.Round(v*1000)/1000, 'f', -1, 64)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads numbers, and null as NaN.
func (f *Floats) UnmarshalJSON(b []byte) error {
	var raw []*float64
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Floats, len(raw))
	for i, p := range raw {
		if p == nil {
			out[i] = math.NaN()
		} else {
			out[i] = *p
		}
	}
	*f = out
	return nil
}
