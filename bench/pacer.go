package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/workloads"
)

// pacerReport is what `bench pacer` and `bench minpacer` print.
type pacerReport struct {
	Target   float64 `json:"target"` // ops/s; 0 for closed loop
	Achieved float64 `json:"achieved"`
	Ops      int64   `json:"ops"`
	Missed   int64   `json:"missed"` // missed + unsent
	LagP50us float64 `json:"lag_p50_us"`
	LagP99us float64 `json:"lag_p99_us"`
}

// noopClient answers every op at once: what is measured is the pacer,
// the workers, the generator and the recorder.
type noopClient struct{}

func (noopClient) Do(_ context.Context, op history.Op) history.Outcome {
	if op.F == workloads.FGet {
		return history.Outcome{Type: history.OK, Value: history.Null}
	}
	return history.Outcome{Type: history.OK}
}

// cmdPacer is `bench pacer`: one phase of the register workload (10 keys)
// against a no-op client with --concurrency workers, the history recorded
// to io.Discard, at --rate ops/s (0: closed loop), as workloads'
// BenchmarkOpenLoop runs it.
func cmdPacer(args []string) error {
	fs := flag.NewFlagSet("pacer", flag.ContinueOnError)
	rate := fs.Float64("rate", 0, "ops/s; 0 is closed loop")
	dur := fs.Duration("duration", 2*time.Second, "the phase")
	conc := fs.Int("concurrency", 16, "workers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rec, err := history.NewRecorder(io.Discard, nil)
	if err != nil {
		return err
	}
	g, err := workloads.NewKV(workloads.KVConfig{Keys: 10})
	if err != nil {
		return err
	}
	st, err := workloads.Run(context.Background(), workloads.Config{
		Duration: *dur, Rate: *rate, Concurrency: *conc, Seed: 1,
		Generator: g, Recorder: rec,
		NewClient: func(int) (workloads.Client, error) { return noopClient{}, nil },
	})
	if cerr := rec.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	lag := history.PercentilesOf(st.Lag).Map()
	return printJSON(pacerReport{
		Target: *rate, Achieved: st.AchievedRate, Ops: st.Ops, Missed: st.Missed + st.Unsent,
		LagP50us: lag["p50"], LagP99us: lag["p99"],
	})
}

// httpMaxReport is what `bench httpmax` prints.
type httpMaxReport struct {
	Tool     string  `json:"tool"`
	Requests int64   `json:"requests"`
	Rate     float64 `json:"rate"` // requests/s
}

// cmdHTTPMax is `bench httpmax`: --concurrency clients send GET /items to
// --addr in a closed loop for --duration. --tool faultline is the http
// workload (Rate 0), recording its history to --out; --tool raw is the
// floor, a minimal Go client: goroutines sharing one net/http client,
// nothing recorded, nothing checked but the status.
func cmdHTTPMax(args []string) error {
	fs := flag.NewFlagSet("httpmax", flag.ContinueOnError)
	tool := fs.String("tool", "", "faultline or raw")
	addr := fs.String("addr", "", "the server, host:port")
	dur := fs.Duration("duration", 2*time.Second, "the phase")
	conc := fs.Int("concurrency", 64, "clients")
	out := fs.String("out", "", "faultline: the history file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("--addr is required")
	}
	switch *tool {
	case "raw":
		n, err := rawClosedLoop(*addr, *dur, *conc)
		if err != nil {
			return err
		}
		return printJSON(httpMaxReport{Tool: "raw", Requests: n, Rate: float64(n) / dur.Seconds()})
	case "faultline":
		if *out == "" {
			return errors.New("--out is required with --tool faultline")
		}
		st, err := faultlineClosedLoop(*addr, *dur, *conc, *out)
		if err != nil {
			return err
		}
		return printJSON(httpMaxReport{Tool: "faultline", Requests: st.Ops, Rate: st.AchievedRate})
	}
	return fmt.Errorf("--tool %q: want faultline or raw", *tool)
}

// rawClosedLoop is the loopback round-trip limit: conc goroutines, one
// shared net/http client, each sending its next GET as soon as the last
// answer is read, for dur. It returns the requests answered 200.
func rawClosedLoop(addr string, dur time.Duration, conc int) (int64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + addr + "/items"
	var n atomic.Int64
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	errs := make([]error, conc)
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				resp, err := c.Get(url)
				if err != nil {
					errs[i] = err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs[i] = fmt.Errorf("GET %s: %s", url, resp.Status)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return n.Load(), errors.Join(errs...)
}

// faultlineClosedLoop runs the http workload in closed loop with conc
// workers, recording its history to out; every request must be ok.
func faultlineClosedLoop(addr string, dur time.Duration, conc int, out string) (*workloads.Stats, error) {
	st, err := runHTTP(addr, 0, dur, conc, out, 30*time.Second)
	if err != nil {
		return nil, err
	}
	if st.OK != st.Ops {
		return nil, fmt.Errorf("%d of %d requests were not ok", st.Ops-st.OK, st.Ops)
	}
	return st, nil
}
