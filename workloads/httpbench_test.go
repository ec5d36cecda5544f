package workloads

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// Run with:
//
//	go test ./workloads -run '^$' -bench HTTPOpenLoop -benchtime 1x
//
// Each iteration is a 2 s open-loop phase of the http workload (two
// endpoints, templated URLs, a status check) against a real HTTP server on
// loopback in the same process, with the history recorded to io.Discard:
// every request crosses the kernel's TCP stack and is parsed by net/http on
// both sides. achieved/target is the rate of requests sent (Stats.Ops /
// phase) over the schedule's; missed+unsent are the scheduled requests
// never sent (backlog full, or still waiting when the phase ended).

const httpBenchConcurrency = 64

func httpBenchRun(b *testing.B, srv *httptest.Server, rate float64) *Stats {
	b.Helper()
	p := &HTTPParams{Keys: 1000, Endpoints: []Endpoint{
		{Name: "get", URL: "/items/{{.key}}?n={{.seq}}", Weight: 3, Check: &HTTPCheck{Status: []int{200}}},
		{Name: "post", Method: "POST", URL: "/items", Body: `{"seq": {{.seq}}}`},
	}}
	if err := p.Check(); err != nil {
		b.Fatal(err)
	}
	in, err := p.New()
	if err != nil {
		b.Fatal(err)
	}
	rec, err := history.NewRecorder(io.Discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	env := ClientEnv{Nodes: map[string]string{"n1": strings.TrimPrefix(srv.URL, "http://")}, Home: "n1", Timeout: 2 * time.Second}
	st, err := Run(context.Background(), Config{
		Duration: benchPhase, Rate: rate, Concurrency: httpBenchConcurrency, Seed: 1,
		Generator: in, Recorder: rec,
		NewClient: func(int) (Client, error) { return newHTTPClient(p, env) },
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
	if st.OK != st.Ops {
		b.Fatalf("%d of %d requests not ok", st.Ops-st.OK, st.Ops)
	}
	return st
}

// rawClosedLoop is the floor of the machine: 64 goroutines sending GET
// requests with plain net/http clients (one Transport each, as the
// workload's) for benchPhase, nothing recorded, nothing templated or
// checked. It returns the requests/s.
func rawClosedLoop(b *testing.B, srv *httptest.Server) float64 {
	var n atomic.Int64
	stop := time.Now().Add(benchPhase)
	var wg sync.WaitGroup
	for range httpBenchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for time.Now().Before(stop) {
				resp, err := c.Get(srv.URL + "/items/k1")
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / benchPhase.Seconds()
}

// BenchmarkHTTPOpenLoop runs the http workload at 1k, 5k and 20k
// requests/s against a loopback server and reports the achieved rate and
// its ratio to the target, with the latency and dispatch lag. The
// closed-loop sub-benchmark is the baseline: the most requests/s this
// machine pushes through the same client, server, recorder and 64 workers
// at that moment (a target above it cannot be met), and raw-net-http the
// most plain net/http clients push through the same server (what is left
// of the machine for the load at all).
func BenchmarkHTTPOpenLoop(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	b.Run("raw-net-http", func(b *testing.B) {
		var rate float64
		for b.Loop() {
			rate = rawClosedLoop(b, srv)
		}
		b.ReportMetric(rate, "req/s")
	})
	b.Run("closed", func(b *testing.B) {
		var st *Stats
		for b.Loop() {
			st = httpBenchRun(b, srv, 0)
		}
		b.ReportMetric(st.AchievedRate, "req/s")
		b.ReportMetric(st.Percentiles()["p99"], "latency-p99-µs")
	})
	for _, rate := range []float64{1e3, 5e3, 20e3} {
		b.Run(fmt.Sprintf("rate=%dk", int(rate/1000)), func(b *testing.B) {
			var st *Stats
			for b.Loop() {
				st = httpBenchRun(b, srv, rate)
			}
			lat, lag := st.Percentiles(), history.PercentilesOf(st.Lag).Map()
			b.ReportMetric(st.AchievedRate, "req/s")
			b.ReportMetric(st.AchievedRate/st.TargetRate, "achieved/target")
			b.ReportMetric(float64(st.Missed+st.Unsent), "missed+unsent")
			b.ReportMetric(lat["p50"], "latency-p50-µs")
			b.ReportMetric(lat["p99"], "latency-p99-µs")
			b.ReportMetric(lag["p99"], "lag-p99-µs")
		})
	}
}
