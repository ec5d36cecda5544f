package reports

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// BenchmarkBuildMillionOps builds the reports of a generated run of
// 1,000,000 client operations (2,000,000 history events over ~8 minutes of
// simulated time, with faults and observer events). It fails if report.html
// reaches 10 MB, and reports the report's size, the history's size and the
// peak live heap during the build.
//
//	go test ./reports -run '^$' -bench MillionOps -benchtime 1x
func BenchmarkBuildMillionOps(b *testing.B) {
	dir := b.TempDir()
	genRun(b, dir, genOpts{ops: 1_000_000, rate: 2000})
	hfi, err := os.Stat(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	peak := heapPeak()
	b.ReportAllocs()
	for b.Loop() {
		if err := Build(dir, BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "report.html"))
	if err != nil {
		b.Fatal(err)
	}
	if fi.Size() >= 10<<20 {
		b.Fatalf("report.html is %d bytes for 1,000,000 ops; it must stay under 10 MB", fi.Size())
	}
	b.ReportMetric(float64(fi.Size())/1e6, "report-MB")
	b.ReportMetric(float64(hfi.Size())/1e6, "history-MB")
	b.ReportMetric(float64(peak())/1e6, "peak-heap-MB")
}

// heapPeak samples the live heap every 5 ms until the returned func is
// called, which returns the largest sample.
func heapPeak() func() uint64 {
	var mu sync.Mutex
	var max uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			mu.Lock()
			if v := s[0].Value.Uint64(); v > max {
				max = v
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return max
	}
}
