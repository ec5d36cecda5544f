package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// writeHlog writes an interval log of values (µs), one interval per
// slice, each a second long from base (ms since the epoch), as the
// workloads write latency.hlog.
func writeHlog(t *testing.T, path string, baseMs int64, intervals ...[]int64) {
	t.Helper()
	var b bytes.Buffer
	lw := hdrhistogram.NewHistogramLogWriter(&b)
	lw.OutputLogFormatVersion()
	lw.OutputStartTime(baseMs)
	lw.OutputBaseTime(baseMs)
	lw.SetBaseTime(baseMs)
	lw.OutputLegend()
	for i, vs := range intervals {
		h := history.NewLatencyHistogram()
		for _, v := range vs {
			h.RecordValue(v)
		}
		h.SetStartTimeMs(baseMs + int64(i)*1000)
		h.SetEndTimeMs(baseMs + int64(i+1)*1000)
		if err := lw.OutputIntervalHistogram(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The merged latency percentiles are those of every shard's operations
// together (from their latency logs), not an average of the shards'
// percentiles; counts and rates add up.
func TestMergeStats(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.hlog"), filepath.Join(dir, "b.hlog")
	fast := make([]int64, 990)
	for i := range fast {
		fast[i] = 1000 + int64(i)
	}
	slow := make([]int64, 10)
	for i := range slow {
		slow[i] = 500_000 + int64(i)*1000
	}
	writeHlog(t, a, 1_700_000_000_000, fast[:500], fast[500:])
	writeHlog(t, b, 1_700_000_000_300, slow)
	all := history.NewLatencyHistogram()
	for _, v := range append(append([]int64{}, fast...), slow...) {
		all.RecordValue(v)
	}
	want := history.PercentilesOf(all)
	parts := []Stats{
		{Ops: 990, OK: 980, Fail: 10, TargetRate: 100, AchievedRate: 99, Duration: 10, ByF: map[string]OpStats{"get": {Ops: 990, OK: 980, Fail: 10}}},
		{Ops: 10, OK: 8, Info: 2, TargetRate: 100, AchievedRate: 1, Duration: 11, ByF: map[string]OpStats{"get": {Ops: 10, OK: 8, Info: 2}}},
	}
	st, notes := MergeStats(parts, []string{a, b})
	if len(notes) != 0 {
		t.Errorf("notes %q", notes)
	}
	if st.Ops != 1000 || st.OK != 988 || st.Fail != 10 || st.Info != 2 || st.TargetRate != 200 || st.AchievedRate != 100 || st.Duration != 11 || st.ByF["get"].Ops != 1000 {
		t.Errorf("merged stats %+v", st)
	}
	if st.Latency.P99 != want.P99 || st.Latency.P50 != want.P50 || st.Latency.Max != want.Max || st.Latency.Count != 1000 {
		t.Errorf("merged latency %+v, want every operation's %+v", st.Latency, want)
	}
	// Without every shard's log: the worst shard's, and a note.
	parts[0].Latency, parts[1].Latency = Percentiles{P99: 2000}, Percentiles{P99: 600_000}
	st, notes = MergeStats(parts, []string{a, ""})
	if st.Latency.P99 != 600_000 || len(notes) != 1 || !strings.Contains(notes[0], "upper bound") {
		t.Errorf("without b's log: p99 %v, notes %q", st.Latency.P99, notes)
	}

	// The merged log holds every value, on the merged timeline.
	var out bytes.Buffer
	shifts := [][]history.Shift{{{From: 0, By: 0}}, {{From: 0, By: 2e9}}}
	n, err := WriteMergedHlog(&out, []string{a, b}, shifts, 1_700_000_000_000)
	if err != nil || n != 2 {
		t.Fatalf("WriteMergedHlog: %d logs, %v", n, err)
	}
	p := filepath.Join(dir, "merged.hlog")
	os.WriteFile(p, out.Bytes(), 0o644)
	d, err := readHlog(p)
	if err != nil {
		t.Fatal(err)
	}
	if d.total.TotalCount() != 1000 || len(d.intervals) != 3 {
		t.Errorf("merged log: %d values in %d intervals, want 1000 in 3 (b's shifted 2 s past a's two)", d.total.TotalCount(), len(d.intervals))
	}
}

func TestShardLine(t *testing.T) {
	r := &Results{Shard: &ShardInfo{Index: 1, Count: 3, Keys: []string{"k1", "k4"}, KeysPartitioned: true, Faults: ShardFaultsClientLinks, FaultsLeft: 2}}
	if got := ShardLine(r); !strings.Contains(got, "shard 1/3") || !strings.Contains(got, "2 keys") || !strings.Contains(got, "2 left to shard 0") {
		t.Errorf("ShardLine = %q", got)
	}
	var b bytes.Buffer
	Summary(&b, r)
	if !strings.Contains(b.String(), "shard 1/3") {
		t.Errorf("the summary does not say which shard:\n%s", b.String())
	}
	m := &Results{Shards: []MergedShard{{ShardInfo: ShardInfo{Index: 0}, Dir: "/r/s0", Verdict: "valid"}, {ShardInfo: ShardInfo{Index: 1}, Dir: "/r/s1", Verdict: "invalid", ExitCode: 1}}}
	if got := ShardLine(m); !strings.Contains(got, "merged from 2 shards") || !strings.Contains(got, "1 /r/s1 (invalid, exit 1)") {
		t.Errorf("ShardLine = %q", got)
	}
}
