package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// row is one figure of the table: faultline's value, the peer's (nil: the
// figure has no peer) and faultline's over the peer's.
type row struct {
	Part      string   `json:"part"`
	Figure    string   `json:"figure"`
	Unit      string   `json:"unit"`
	Faultline float64  `json:"faultline"`
	Peer      *float64 `json:"peer,omitempty"`
	PeerName  string   `json:"peer_name,omitempty"`
	NoRatio   bool     `json:"-"` // the values are ratios themselves: no ratio of them
	Note      string   `json:"note,omitempty"`
}

// ratio returns faultline / peer, or NaN without a peer.
func (r row) ratio() float64 {
	if r.Peer == nil || *r.Peer == 0 || r.NoRatio {
		return math.NaN()
	}
	return r.Faultline / *r.Peer
}

func ptr(v float64) *float64 { return &v }

// median returns the median of vs (the mean of the middle two for an even
// count), NaN for none. vs is not modified.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianOf returns the median of f over runs.
func medianOf[T any](runs []T, f func(T) float64) float64 {
	vs := make([]float64, len(runs))
	for i, r := range runs {
		vs[i] = f(r)
	}
	return median(vs)
}

// writeTable writes rows as one Markdown table: figure, faultline, peer
// (named in the figure), ratio, note.
func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| figure | faultline | peer | ratio | note |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|")
	for _, r := range rows {
		fig := r.Figure
		if r.PeerName != "" {
			fig += " (peer: " + r.PeerName + ")"
		}
		peer, ratio := "", ""
		if r.Peer != nil {
			peer = formatValue(*r.Peer, r.Unit)
			if q := r.ratio(); !math.IsNaN(q) && !math.IsInf(q, 0) {
				ratio = strconv.FormatFloat(q, 'f', 2, 64)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", fig, formatValue(r.Faultline, r.Unit), peer, ratio, strings.ReplaceAll(r.Note, "|", "/"))
	}
}

// formatValue prints v with its unit, to a precision that suits a table.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if unit == "" {
		return formatNum(v)
	}
	return formatNum(v) + " " + unit
}

// formatNum prints three significant digits at most, with thousands
// separators for large values.
func formatNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return thousands(int64(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a >= 0.1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case a == 0:
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// rateName prints a rate as 1k, 20k, 1M.
func rateName(r float64) string {
	switch {
	case r >= 1e6 && math.Mod(r, 1e6) == 0:
		return strconv.Itoa(int(r/1e6)) + "M"
	case r >= 1e3 && math.Mod(r, 1e3) == 0:
		return strconv.Itoa(int(r/1e3)) + "k"
	}
	return formatNum(r)
}
