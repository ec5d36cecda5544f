package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// What a shard does of the planned faults (ShardInfo.Faults).
const (
	// ShardFaultsAll: shard 0 injects every planned fault, process faults
	// and hooks included.
	ShardFaultsAll = "all"
	// ShardFaultsClientLinks: a shard past 0 injects the client-link
	// faults of the schedule on its own proxies, and leaves the rest to
	// shard 0.
	ShardFaultsClientLinks = "client-links"
)

// MaxShardKeysListed bounds the keys results.json lists for a shard.
const MaxShardKeysListed = 1000

// ShardInfo is results.json's "shard": which part of a sharded run
// (faultline run --shard I/N) a run directory holds.
type ShardInfo struct {
	Index int `json:"index"`
	Count int `json:"count"`
	// ScenarioDigest fingerprints the scenario as run (seed included,
	// cluster addresses and secrets left out): the same on every shard of
	// one run.
	ScenarioDigest string `json:"scenario_digest"`
	// Keys are the keys this shard drove (register: k<j> with j mod Count
	// = Index) when KeysPartitioned, listed when there are at most
	// MaxShardKeysListed; KeyCount is how many. A workload that does not
	// split its keys sends to all of them (KeyCount 0).
	Keys            []string `json:"keys,omitempty"`
	KeyCount        int      `json:"key_count,omitempty"`
	KeysPartitioned bool     `json:"keys_partitioned"`
	// FirstProcess is the first client process id of the shard
	// (Index·1e9); its ids stay below the next shard's.
	FirstProcess int64 `json:"first_process"`
	// Rate (ops/s, 0 = closed loop) and Concurrency are this shard's part
	// of the scenario's total.
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	// Faults is ShardFaultsAll or ShardFaultsClientLinks; FaultsLeft
	// counts the planned faults this shard left to shard 0 (results.json's
	// schedule marks each).
	Faults     string `json:"faults"`
	FaultsLeft int    `json:"faults_left_to_shard_0,omitempty"`
}

// String is "I/N".
func (s ShardInfo) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// MergedShard is one entry of a merged run's results.json "shards": a
// shard's run directory and what its own results said.
type MergedShard struct {
	ShardInfo
	// Dir is the shard's run directory (absolute); History is its history
	// as the evidence of the merged run names it (FILE:LINE).
	Dir     string `json:"dir"`
	History string `json:"history"`
	// Verdict and ExitCode are the shard's own (its keys, its time base).
	Verdict   string `json:"verdict,omitempty"`
	ExitCode  int    `json:"exit_code"`
	KeyPrefix string `json:"key_prefix,omitempty"`
	RunID     string `json:"run_id,omitempty"`
	Start     string `json:"start,omitempty"`
	// Ops and AchievedRate are the shard's own load figures; Faults
	// counts the faults it injected.
	Ops          int64   `json:"ops"`
	AchievedRate float64 `json:"achieved_rate"`
	Faults       int     `json:"faults"`
	// TimeShift maps the shard's times onto the merged timeline (a time t
	// at or after from_ns is t + by_ns there, up to the next entry).
	TimeShift []history.Shift `json:"time_shift"`
}

// ShardLine is the terminal's and report.html's word on shards: for a
// shard, which it is and what it did of the faults; for a merged run, how
// many shards, and where each is.
func ShardLine(r *Results) string {
	switch {
	case r.Shard != nil:
		what := "every planned fault, process faults and hooks included"
		if r.Shard.Faults == ShardFaultsClientLinks {
			what = fmt.Sprintf("the client-link faults on its own proxies; %d left to shard 0", r.Shard.FaultsLeft)
		}
		keys := "every key"
		if r.Shard.KeysPartitioned {
			keys = fmt.Sprintf("%d keys", max(r.Shard.KeyCount, len(r.Shard.Keys)))
		}
		return fmt.Sprintf("shard %s (%s; faults: %s)", r.Shard, keys, what)
	case len(r.Shards) > 0:
		parts := make([]string, len(r.Shards))
		for i, s := range r.Shards {
			parts[i] = fmt.Sprintf("%d %s (%s, exit %d)", s.Index, s.Dir, firstNonEmpty(s.Verdict, "no verdict"), s.ExitCode)
		}
		return fmt.Sprintf("merged from %d shards: %s", len(r.Shards), strings.Join(parts, "; "))
	}
	return ""
}

// MergeStats adds up the load figures of a run's shards (each shard's
// results.json "stats"): counts and rates are summed, the main phase is
// the longest. Latency percentiles come from the shards' latency logs
// (hlogs, one path per shard, "" for none) merged into one histogram, so
// they are the percentiles of every operation of the run; without a log
// for every shard they are the worst shard's (an upper bound: a merged
// percentile lies between the shards' smallest and largest), and notes
// say so. Service time and dispatch lag are not merged (nil). Per
// endpoint, counts are summed and percentiles are the worst shard's.
func MergeStats(parts []Stats, hlogs []string) (st Stats, notes []string) {
	st.ByF = map[string]OpStats{}
	var total *hdrhistogram.Histogram
	haveAll := len(hlogs) == len(parts)
	for i, p := range parts {
		st.Ops += p.Ops
		st.OK += p.OK
		st.Fail += p.Fail
		st.Mismatch += p.Mismatch
		st.Info += p.Info
		st.Missed += p.Missed
		st.TargetRate += p.TargetRate
		st.AchievedRate += p.AchievedRate
		st.Duration = max(st.Duration, p.Duration)
		for f, c := range p.ByF {
			m := st.ByF[f]
			m.add(c)
			st.ByF[f] = m
		}
		for name, e := range p.ByEndpoint {
			if st.ByEndpoint == nil {
				st.ByEndpoint = map[string]EndpointStats{}
			}
			m := st.ByEndpoint[name]
			m.add(e.OpStats)
			m.Latency = worst(m.Latency, e.Latency)
			m.Service = worst(m.Service, e.Service)
			st.ByEndpoint[name] = m
		}
		if !haveAll || hlogs[i] == "" {
			haveAll = false
			continue
		}
		d, err := readHlog(hlogs[i])
		if err != nil {
			if p.Ops > 0 {
				haveAll = false
				notes = append(notes, fmt.Sprintf("shard %d: %v", i, err))
			}
			continue
		}
		if total == nil {
			total = history.NewLatencyHistogram()
		}
		total.Merge(d.total)
	}
	if len(st.ByF) == 0 {
		st.ByF = nil
	}
	switch {
	case haveAll && total != nil:
		st.Latency = history.PercentilesOf(total)
	default:
		for _, p := range parts {
			st.Latency = worst(st.Latency, p.Latency)
		}
		if st.Ops > 0 {
			notes = append(notes, "the merged latency percentiles are the worst shard's (not every shard has a readable latency.hlog): an upper bound of the run's")
		}
	}
	if len(st.ByEndpoint) > 0 {
		notes = append(notes, "per-endpoint latency percentiles of the merged run are the worst shard's: an upper bound of the run's")
	}
	return st, notes
}

// add adds b's counts to o's.
func (o *OpStats) add(b OpStats) {
	o.Ops += b.Ops
	o.OK += b.OK
	o.Fail += b.Fail
	o.Mismatch += b.Mismatch
	o.Info += b.Info
}

// worst is the larger of each percentile, and the sum of the counts.
func worst(a, b Percentiles) Percentiles {
	return Percentiles{P50: max(a.P50, b.P50), P90: max(a.P90, b.P90), P99: max(a.P99, b.P99), P999: max(a.P999, b.P999),
		Max: max(a.Max, b.Max), Mean: max(a.Mean, b.Mean), Count: a.Count + b.Count}
}

// WriteMergedHlog writes an HdrHistogram interval log of every shard's
// latency on the merged timeline: each shard's intervals (hlogs, one path
// per shard; "" or an unreadable log is left out) are placed by their
// middle, mapped through the shard's shifts (history.MapTime), and merged
// into intervals of one second. baseMs is the merged run's start (ms since
// the Unix epoch), the log's BaseTime. It returns how many shard logs it
// read.
func WriteMergedHlog(w io.Writer, hlogs []string, shifts [][]history.Shift, baseMs int64) (int, error) {
	buckets := map[int64]*hdrhistogram.Histogram{}
	read := 0
	for i, path := range hlogs {
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		base := 0.0
		if m := hlogBaseRe.FindSubmatch(b); m != nil {
			fmt.Sscanf(string(m[1]), "%g", &base)
		}
		r := hdrhistogram.NewHistogramLogReader(bytes.NewReader(b))
		ok := true
		for {
			h, err := r.NextIntervalHistogram()
			if err != nil {
				ok = false
				break
			}
			if h == nil {
				break
			}
			mid := int64((float64(h.StartTimeMs()+h.EndTimeMs())/2 - base*1e3) * 1e6) // ns since the shard's start
			var sh []history.Shift
			if i < len(shifts) {
				sh = shifts[i]
			}
			sec := history.MapTime(sh, mid) / 1e9
			if buckets[sec] == nil {
				buckets[sec] = history.NewLatencyHistogram()
			}
			buckets[sec].Merge(h)
		}
		if ok {
			read++
		}
	}
	secs := make([]int64, 0, len(buckets))
	for s := range buckets {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	lw := hdrhistogram.NewHistogramLogWriter(w)
	for _, err := range []error{
		lw.OutputLogFormatVersion(),
		lw.OutputComment("[faultline latency from intended start, every shard of a merged run on its merged timeline; values in microseconds; Interval_Max = max/1e6, i.e. seconds]"),
		lw.OutputStartTime(baseMs),
		lw.OutputBaseTime(baseMs),
	} {
		if err != nil {
			return read, err
		}
	}
	lw.SetBaseTime(baseMs)
	if err := lw.OutputLegend(); err != nil {
		return read, err
	}
	for _, s := range secs {
		h := buckets[s]
		h.SetStartTimeMs(baseMs + s*1000)
		h.SetEndTimeMs(baseMs + s*1000 + 1000)
		if err := lw.OutputIntervalHistogram(h); err != nil {
			return read, err
		}
	}
	return read, nil
}
