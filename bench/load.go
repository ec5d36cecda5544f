package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/workloads"
)

// loadReport is what `bench load` prints: the figures the tool itself
// reports (for vegeta, none: like `vegeta attack`, it only writes its
// results file, which the parent reads as `vegeta report` would).
type loadReport struct {
	Tool string `json:"tool"`
	// Faultline only: its Stats, as results.json would show them.
	Ops          int64   `json:"ops,omitempty"`
	OK           int64   `json:"ok,omitempty"`
	Missed       int64   `json:"missed,omitempty"`
	Unsent       int64   `json:"unsent,omitempty"`
	AchievedRate float64 `json:"achieved_rate,omitempty"`
	P50us        float64 `json:"p50_us,omitempty"`
	P99us        float64 `json:"p99_us,omitempty"`
}

// cmdLoad is `bench load`: one open-loop run of --tool (faultline or
// vegeta) at --rate requests/s for --duration against http://--addr/items,
// writing every request to --out as the tool does: faultline's http
// workload records its history (history.jsonl, JSON Lines) through its
// Recorder; vegeta's Attacker hands each result to its default (gob)
// encoder over the file, exactly as `vegeta attack -output FILE` does.
func cmdLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	tool := fs.String("tool", "", "faultline or vegeta")
	addr := fs.String("addr", "", "the server, host:port")
	rate := fs.Float64("rate", 1000, "requests/s")
	dur := fs.Duration("duration", 5*time.Second, "how long requests are sent")
	out := fs.String("out", "", "file the tool writes each request to")
	conc := fs.Int("concurrency", 200, "faultline: workers, the most requests in flight")
	maxWorkers := fs.Uint64("max-workers", 0, "vegeta: -max-workers (0: vegeta's default, unbounded)")
	timeout := fs.Duration("timeout", 30*time.Second, "per request (vegeta's default)")
	buffered := fs.Bool("buffered", false, "vegeta: buffer its results file (vegeta attack does not: one write per result)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *out == "" {
		return errors.New("--addr and --out are required")
	}
	if *rate <= 0 || *dur <= 0 {
		return fmt.Errorf("--rate %v and --duration %v must be positive", *rate, *dur)
	}
	switch *tool {
	case "faultline":
		r, err := loadFaultline(*addr, *rate, *dur, *out, *conc, *timeout)
		if err != nil {
			return err
		}
		return printJSON(r)
	case "vegeta":
		if err := loadVegeta(*addr, *rate, *dur, *out, *maxWorkers, *timeout, *buffered); err != nil {
			return err
		}
		return printJSON(loadReport{Tool: "vegeta"})
	}
	return fmt.Errorf("--tool %q: want faultline or vegeta", *tool)
}

// httpWorkload returns faultline's http workload sending GET /items to the
// node n1 at addr, with the default check (any status below 400, as
// vegeta counts success), and its clients' environment.
func httpWorkload(addr string, timeout time.Duration) (*workloads.Workload, *workloads.HTTPParams, workloads.Instance, workloads.ClientEnv, error) {
	w, err := workloads.Lookup("http")
	if err != nil {
		return nil, nil, nil, workloads.ClientEnv{}, err
	}
	p, ok := w.NewParams().(*workloads.HTTPParams)
	if !ok {
		return nil, nil, nil, workloads.ClientEnv{}, fmt.Errorf("the http workload's parameters are a %T, not *workloads.HTTPParams", w.NewParams())
	}
	p.Endpoints = []workloads.Endpoint{{Name: "items", URL: "/items"}}
	if err := p.Check(); err != nil {
		return nil, nil, nil, workloads.ClientEnv{}, err
	}
	in, err := p.New()
	if err != nil {
		return nil, nil, nil, workloads.ClientEnv{}, err
	}
	env := workloads.ClientEnv{Nodes: map[string]string{"n1": addr}, Home: "n1", Timeout: timeout}
	return w, p, in, env, nil
}

// runHTTP runs faultline's http workload against addr as a scenario's
// main phase does, at rate requests/s (0: closed loop) with conc workers,
// recording its history to out through its Recorder.
func runHTTP(addr string, rate float64, dur time.Duration, conc int, out string, timeout time.Duration) (*workloads.Stats, error) {
	w, p, in, env, err := httpWorkload(addr, timeout)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec, err := history.NewRecorderAt(f, &history.HeaderLine{Faultline: "bench", Scenario: "bench-http", Seed: 1}, time.Now())
	if err != nil {
		return nil, err
	}
	st, err := workloads.Run(context.Background(), workloads.Config{
		Duration: dur, Rate: rate, Concurrency: conc, Seed: 1,
		Generator: in, Recorder: rec,
		NewClient: func(int) (workloads.Client, error) { return w.NewClient(p, env) },
	})
	if cerr := rec.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return st, f.Close()
}

// loadFaultline is one open-loop run of the http workload.
func loadFaultline(addr string, rate float64, dur time.Duration, out string, conc int, timeout time.Duration) (*loadReport, error) {
	st, err := runHTTP(addr, rate, dur, conc, out, timeout)
	if err != nil {
		return nil, err
	}
	pc := st.Percentiles()
	return &loadReport{
		Tool: "faultline", Ops: st.Ops, OK: st.OK, Missed: st.Missed, Unsent: st.Unsent,
		AchievedRate: st.AchievedRate, P50us: pc["p50"], P99us: pc["p99"],
	}, nil
}

// loadVegeta is `vegeta attack -rate R/s -duration D -output out` with a
// single GET target and vegeta's defaults (-max-workers: maxWorkers when
// not 0), as a library: the same attacker and the same results loop,
// writing each result to the file as it comes (buffered: through a
// bufio.Writer instead, which vegeta attack does not do).
func loadVegeta(addr string, rate float64, dur time.Duration, out string, maxWorkers uint64, timeout time.Duration, buffered bool) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	var w io.Writer = f
	var bw *bufio.Writer
	if buffered {
		bw = bufio.NewWriterSize(f, 256<<10)
		w = bw
	}
	opts := []func(*vegeta.Attacker){vegeta.Timeout(timeout)}
	if maxWorkers > 0 {
		opts = append(opts, vegeta.MaxWorkers(maxWorkers))
	}
	atk := vegeta.NewAttacker(opts...)
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: "http://" + addr + "/items"})
	pacer := vegetaPacer(rate)
	enc := vegeta.NewEncoder(w)
	for r := range atk.Attack(tr, pacer, dur, "bench") {
		if err := enc.Encode(r); err != nil {
			atk.Stop()
			return err
		}
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return f.Close()
}

// vegetaPacer is vegeta's constant pacer at rate requests/s (a fractional
// rate is kept exact by counting per millisecond when need be).
func vegetaPacer(rate float64) vegeta.ConstantPacer {
	if rate == math.Trunc(rate) {
		return vegeta.ConstantPacer{Freq: int(rate), Per: time.Second}
	}
	return vegeta.ConstantPacer{Freq: int(math.Round(rate * 1000)), Per: 1000 * time.Second}
}

// request is one request as a tool's output file shows it: when it was
// sent and when its answer (or error) came, since the file's own origin.
type request struct {
	Sent, Done time.Duration
	OK         bool
}

// readFaultlineRequests reads the requests of a faultline history: each
// client invoke paired with its process's completion. An invoke without a
// completion is ignored (a run cut short).
func readFaultlineRequests(path string) ([]request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := history.NewDecoder(bufio.NewReaderSize(f, 1<<20), path)
	open := map[history.Process]time.Duration{}
	var reqs []request
	for {
		e, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if !e.Process.IsClient() {
			continue
		}
		if e.Type == history.Invoke {
			open[e.Process] = e.Duration()
			continue
		}
		sent, ok := open[e.Process]
		if !ok {
			return nil, fmt.Errorf("%s:%d: a completion of process %s without its invoke", path, e.Line, e.Process)
		}
		delete(open, e.Process)
		reqs = append(reqs, request{Sent: sent, Done: e.Duration(), OK: e.Type == history.OK})
	}
	return reqs, nil
}

// readVegetaResults reads a vegeta results file (gob, as `vegeta attack`
// writes it), returning its requests and the metrics `vegeta report`
// computes from it.
func readVegetaResults(path string) ([]request, *vegeta.Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	dec := vegeta.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	var m vegeta.Metrics
	var reqs []request
	var origin time.Time
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if err == io.EOF {
				break
			}
			return nil, nil, fmt.Errorf("%s: result %d: %w", path, len(reqs)+1, err)
		}
		m.Add(&r)
		if origin.IsZero() || r.Timestamp.Before(origin) {
			origin = r.Timestamp
		}
		reqs = append(reqs, request{Sent: time.Duration(r.Timestamp.UnixNano()), Done: time.Duration(r.End().UnixNano()), OK: r.Error == ""})
	}
	m.Close()
	for i := range reqs {
		reqs[i].Sent -= time.Duration(origin.UnixNano())
		reqs[i].Done -= time.Duration(origin.UnixNano())
	}
	return reqs, &m, nil
}

// truth is the latency of the requests of an open-loop schedule of `rate`
// requests/s over `dur`, measured from when each was due, whatever the
// tool reports.
type truth struct {
	Scheduled int     // requests the schedule made due
	Sent      int     // of which the tool sent
	P50us     float64 // percentiles over every scheduled request
	P99us     float64
	// LowerBound: more than 1% of the requests were never sent; they
	// count as answered when the last answer came, so the p99 is a lower
	// bound.
	LowerBound bool
}

// trueLatency computes the latency each scheduled request really had: the
// k-th request sent (in order of sending; both tools send in the order
// their schedule makes requests due) was due at start + k/rate, and its
// latency is its answer's time minus that. The schedule's start is not in
// either file, so it is taken as the latest start under which no request
// was sent before it was due: min over k of (sent_k - k/rate), which errs
// (by the smallest dispatch lag of the run, microseconds) towards shorter
// latencies. Requests the schedule made due (rate * dur of them) but the
// tool never sent count as answered at the last answer of the run.
func trueLatency(reqs []request, rate float64, dur time.Duration) truth {
	sorted := append([]request(nil), reqs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Sent < sorted[j].Sent })
	due := func(k int) time.Duration { return time.Duration(float64(k) / rate * 1e9) }
	t := truth{Scheduled: max(len(sorted), int(rate*dur.Seconds())), Sent: len(sorted)}
	if t.Scheduled == 0 {
		return t
	}
	start := time.Duration(math.MaxInt64)
	var last time.Duration
	for k, r := range sorted {
		start = min(start, r.Sent-due(k))
		last = max(last, r.Done)
	}
	if len(sorted) == 0 {
		start = 0
	}
	lat := make([]float64, t.Scheduled)
	for k := range lat {
		done := last
		if k < len(sorted) {
			done = sorted[k].Done
		}
		lat[k] = float64(done-(start+due(k))) / 1e3
	}
	t.LowerBound = (t.Scheduled-len(sorted))*100 > t.Scheduled
	sort.Float64s(lat)
	t.P50us, t.P99us = quantile(lat, 0.50), quantile(lat, 0.99)
	return t
}

// quantile returns the q-quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
