//go:build unix

package workloads

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// Run with:
//
//	go test ./workloads -run '^$' -bench HTTPOpenLoop -benchtime 1x
//
// Each iteration is a 2 s open-loop phase of the http workload (two
// endpoints, templated URLs and body, a status check) against an HTTP
// server on loopback in the same process (loopbackServer), with the
// history recorded to io.Discard: every request crosses the kernel's TCP
// stack, is sent and its answer parsed by the workload's net/http client.
// achieved/target is the rate of requests sent (Stats.Ops / phase) over the
// schedule's; missed+unsent are the scheduled requests never sent (backlog
// full, or still waiting when the phase ended).

const httpBenchConcurrency = 64

func httpBenchRun(b *testing.B, addr string, rate float64) *Stats {
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
	env := ClientEnv{Nodes: map[string]string{"n1": addr}, Home: "n1", Timeout: 2 * time.Second}
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

// loopbackServer is a minimal HTTP/1.1 server on loopback: it reads each
// request (its head, and a body of Content-Length bytes) and answers 200
// with a fixed JSON body, keeping the connection. It costs the benchmark's
// process far less CPU per request than net/http's server, so what the
// benchmark measures is the load generator: its client, pacer, checks
// and recorder. It returns the address and a stop func.
func loopbackServer(b *testing.B) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReaderSize(c, 4096)
				for {
					n := 0
					for {
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
							n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
						}
					}
					if _, err := r.Discard(n); err != nil {
						return
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

// cpuTime returns the CPU time this process has used (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawClosedLoop is the floor of the machine: 64 goroutines sending GET
// requests with plain net/http clients (one Transport each, as the
// workload's) for benchPhase, nothing recorded, nothing templated or
// checked. It returns the requests/s.
func rawClosedLoop(b *testing.B, addr string) float64 {
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
				resp, err := c.Get("http://" + addr + "/items/k1")
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
// of the machine for the load at all). cpu-µs/req is this process's CPU
// time (client, server, pacer, recorder) per request: what a target costs
// whatever else the machine runs.
func BenchmarkHTTPOpenLoop(b *testing.B) {
	addr, stop := loopbackServer(b)
	defer stop()
	b.Run("raw-net-http", func(b *testing.B) {
		var rate float64
		var cpu time.Duration
		for b.Loop() {
			c0 := cpuTime(b)
			rate = rawClosedLoop(b, addr)
			cpu = cpuTime(b) - c0
		}
		b.ReportMetric(rate, "req/s")
		b.ReportMetric(float64(cpu.Microseconds())/(rate*benchPhase.Seconds()), "cpu-µs/req")
	})
	b.Run("closed", func(b *testing.B) {
		var st *Stats
		var cpu time.Duration
		for b.Loop() {
			c0 := cpuTime(b)
			st = httpBenchRun(b, addr, 0)
			cpu = cpuTime(b) - c0
		}
		b.ReportMetric(st.AchievedRate, "req/s")
		b.ReportMetric(st.Percentiles()["p99"], "latency-p99-µs")
		b.ReportMetric(float64(cpu.Microseconds())/float64(st.Ops), "cpu-µs/req")
	})
	for _, rate := range []float64{1e3, 5e3, 20e3} {
		b.Run(fmt.Sprintf("rate=%dk", int(rate/1000)), func(b *testing.B) {
			var st *Stats
			var cpu time.Duration
			for b.Loop() {
				c0 := cpuTime(b)
				st = httpBenchRun(b, addr, rate)
				cpu = cpuTime(b) - c0
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(st.Ops), "cpu-µs/req")
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
