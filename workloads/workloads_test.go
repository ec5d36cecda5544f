package workloads

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// store is a real (if tiny) linearizable register map: every op takes one
// lock, so the histories it produces are meaningful.
type store struct {
	mu sync.Mutex
	m  map[string]json.RawMessage
}

func newStore() *store { return &store{m: make(map[string]json.RawMessage)} }

// kvClient is a Client over a store, with an optional fixed delay (a real
// sleep) and an optional info outcome every infoEvery-th call (the op is
// then not applied: an ambiguous timeout).
type kvClient struct {
	s         *store
	delay     time.Duration
	infoEvery int
	n         int
	closed    *atomic.Int64
}

func (c *kvClient) Close() error {
	if c.closed != nil {
		c.closed.Add(1)
	}
	return nil
}

func (c *kvClient) Do(ctx context.Context, op history.Op) history.Outcome {
	c.n++
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	if err := ctx.Err(); err != nil {
		return history.Outcome{Type: history.Info, Error: err.Error()}
	}
	// A deadline passed is a timeout even before the context's timer has
	// run (on a loaded machine it runs late, and ctx.Err is still nil).
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return history.Outcome{Type: history.Info, Error: context.DeadlineExceeded.Error()}
	}
	if c.infoEvery > 0 && c.n%c.infoEvery == 0 {
		return history.Outcome{Type: history.Info, Error: "timeout", Node: "n1"}
	}
	if c.s == nil {
		if op.F == FGet {
			return history.Outcome{Type: history.OK, Value: history.Null}
		}
		return history.Outcome{Type: history.OK}
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	switch op.F {
	case FGet:
		v, ok := c.s.m[op.Key]
		if !ok {
			v = history.Null
		}
		return history.Outcome{Type: history.OK, Value: v, Node: "n1"}
	case FPut:
		c.s.m[op.Key] = op.Value
		return history.Outcome{Type: history.OK, Node: "n1"}
	case FCAS:
		var arg history.CAS
		if err := json.Unmarshal(op.Value, &arg); err != nil {
			return history.Outcome{Type: history.Fail, Error: "bad cas"}
		}
		cur, ok := c.s.m[op.Key]
		if !ok {
			cur = history.Null
		}
		if !bytes.Equal(cur, arg.From) {
			return history.Outcome{Type: history.Fail, Error: "mismatch", Node: "n1"}
		}
		c.s.m[op.Key] = arg.To
		return history.Outcome{Type: history.OK, Node: "n1"}
	}
	return history.Outcome{Type: history.Fail, Error: "unknown f " + op.F}
}

func mustKV(t testing.TB, cfg KVConfig) *KV {
	t.Helper()
	g, err := NewKV(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// record runs cfg with a recorder into memory and returns the stats and
// the recorded events.
func record(t *testing.T, ctx context.Context, cfg Config) (*Stats, []history.Event) {
	t.Helper()
	var buf bytes.Buffer
	rec, err := history.NewRecorder(&buf, &history.HeaderLine{Scenario: "test", Seed: cfg.Seed})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Recorder = rec
	st, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	_, evs, err := history.ReadAll(&buf, "mem")
	if err != nil {
		t.Fatal(err)
	}
	return st, evs
}

// checkHistory checks the Jepsen invariants every history of this package
// must hold: each process alternates invoke and completion of the same op,
// never invokes after an info, and ends with no op open. It returns the
// completions by type.
func checkHistory(t *testing.T, evs []history.Event) map[history.Type]int {
	t.Helper()
	open := map[history.Process]*history.Event{}
	dead := map[history.Process]bool{}
	n := map[history.Type]int{}
	for i := range evs {
		e := &evs[i]
		if !e.Process.IsClient() {
			continue
		}
		n[e.Type]++
		switch e.Type {
		case history.Invoke:
			if dead[e.Process] {
				t.Fatalf("event %d: process %d invokes after an info", i, e.Process)
			}
			if open[e.Process] != nil {
				t.Fatalf("event %d: process %d invokes twice without a completion", i, e.Process)
			}
			open[e.Process] = e
		case history.OK, history.Fail, history.Info:
			inv := open[e.Process]
			if inv == nil {
				t.Fatalf("event %d: process %d completes without an invoke", i, e.Process)
			}
			if inv.F != e.F || inv.Key != e.Key {
				t.Fatalf("event %d: completion %s %s does not match invoke %s %s", i, e.F, e.Key, inv.F, inv.Key)
			}
			// A write's completion repeats what it wrote; a read's, and an
			// http request's (its values and the status), is its output.
			if e.F != FGet && e.F != FRequest && !bytes.Equal(inv.Value, e.Value) {
				t.Fatalf("event %d: %s completion value %s differs from its invoke's %s", i, e.F, e.Value, inv.Value)
			}
			if e.Type == history.Info {
				dead[e.Process] = true
			}
			open[e.Process] = nil
		default:
			t.Fatalf("event %d: unexpected type %q", i, e.Type)
		}
	}
	for p, e := range open {
		if e != nil {
			t.Fatalf("process %d ends with an open %s", p, e.F)
		}
	}
	return n
}

func TestClosedLoopHistory(t *testing.T) {
	s := newStore()
	g := mustKV(t, KVConfig{Keys: 3})
	var closed atomic.Int64
	st, evs := record(t, context.Background(), Config{
		Duration:    300 * time.Millisecond,
		Concurrency: 4,
		Seed:        1,
		Generator:   g,
		NewClient: func(int) (Client, error) {
			return &kvClient{s: s, delay: 100 * time.Microsecond, closed: &closed}, nil
		},
	})
	n := checkHistory(t, evs)
	if st.Ops < 10 {
		t.Fatalf("only %d ops in 300 ms", st.Ops)
	}
	if int64(n[history.Invoke]) != st.Ops || int64(n[history.OK]) != st.OK ||
		int64(n[history.Fail]) != st.Fail+st.Mismatch || int64(n[history.Info]) != st.Info {
		t.Fatalf("history counts %v differ from stats ops=%d ok=%d fail=%d mismatch=%d info=%d", n, st.Ops, st.OK, st.Fail, st.Mismatch, st.Info)
	}
	// A cas whose comparison failed is a mismatch (a normal answer), not
	// a definite rejection: this client rejects nothing else.
	if st.Mismatch == 0 || st.Fail != 0 {
		t.Fatalf("fail %d, mismatch %d: want the failed compares counted as mismatches only", st.Fail, st.Mismatch)
	}
	if st.OK+st.Fail+st.Mismatch+st.Info != st.Ops || st.Scheduled != st.Ops || st.Missed != 0 {
		t.Fatalf("inconsistent stats %+v", st)
	}
	var sum int64
	for _, f := range st.Functions() {
		sum += st.ByF[f].Ops
		if st.ByF[f].Latency.TotalCount() != st.ByF[f].Ops {
			t.Errorf("%s: latency count %d != ops %d", f, st.ByF[f].Latency.TotalCount(), st.ByF[f].Ops)
		}
	}
	if sum != st.Ops || len(st.ByF) != 3 {
		t.Fatalf("by-f counts %v do not add up to %d", st.Functions(), st.Ops)
	}
	if closed.Load() != 4 {
		t.Errorf("%d clients closed, want 4", closed.Load())
	}
	if st.Lag.TotalCount() != 0 || st.OpenLoop || st.TargetRate != 0 {
		t.Errorf("closed loop has lag samples or a target rate: %+v", st)
	}
	if st.Latency.TotalCount() != st.Ops || st.Service.TotalCount() != st.Ops {
		t.Errorf("histogram counts %d/%d, want %d", st.Latency.TotalCount(), st.Service.TotalCount(), st.Ops)
	}
	if st.NextProcess != history.Process(4+st.Info) {
		t.Errorf("NextProcess = %d, want %d", st.NextProcess, 4+st.Info)
	}

	// Every ok read returns null or a value some put or cas tried to write
	// to that key (so reads name writes); mismatched cas ops are fail.
	written := map[string]map[string]bool{}
	for _, e := range evs {
		if e.Type != history.Invoke {
			continue
		}
		if written[e.Key] == nil {
			written[e.Key] = map[string]bool{}
		}
		switch e.F {
		case FPut:
			written[e.Key][string(e.Value)] = true
		case FCAS:
			var c history.CAS
			if err := json.Unmarshal(e.Value, &c); err != nil {
				t.Fatalf("cas value %s: %v", e.Value, err)
			}
			written[e.Key][string(c.To)] = true
		}
	}
	var reads, mismatches int
	for _, e := range evs {
		if e.F == FGet && e.Type == history.OK {
			reads++
			if string(e.Value) != "null" && !written[e.Key][string(e.Value)] {
				t.Fatalf("read of %s returned %s, which no op wrote", e.Key, e.Value)
			}
		}
		if e.F == FGet && e.Type == history.Invoke && e.Value != nil {
			t.Fatalf("get invoke carries a value: %s", e.Value)
		}
		if e.F == FCAS && e.Type == history.Fail && e.Error == "mismatch" {
			mismatches++
		}
	}
	if reads == 0 {
		t.Fatal("no ok reads")
	}
	t.Logf("ops=%d reads=%d cas mismatches=%d", st.Ops, reads, mismatches)
}

func TestUniqueWriteValues(t *testing.T) {
	g := mustKV(t, KVConfig{Keys: 2, Get: 1, Put: 2, CAS: 2})
	s := newStore()
	run := func() []history.Event {
		_, evs := record(t, context.Background(), Config{
			Duration: 50 * time.Millisecond, Concurrency: 3, Seed: 3, Generator: g,
			NewClient: func(int) (Client, error) { return &kvClient{s: s}, nil },
		})
		return evs
	}
	// Two phases with the same KV: values stay unique across them.
	evs := append(run(), run()...)
	seen := map[string]map[string]bool{}
	writes, cas := 0, 0
	for _, e := range evs {
		if e.Type != history.Invoke {
			continue
		}
		var v json.RawMessage
		switch e.F {
		case FPut:
			v = e.Value
		case FCAS:
			var c history.CAS
			if err := json.Unmarshal(e.Value, &c); err != nil || c.From == nil || c.To == nil {
				t.Fatalf("cas value %s is not {\"from\":X,\"to\":Y}: %v", e.Value, err)
			}
			v = c.To
			cas++
		default:
			continue
		}
		writes++
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			t.Fatalf("written value %s is not a JSON number", v)
		}
		if seen[e.Key] == nil {
			seen[e.Key] = map[string]bool{}
		}
		if seen[e.Key][string(v)] {
			t.Fatalf("value %s written twice to %s", v, e.Key)
		}
		seen[e.Key][string(v)] = true
	}
	if writes < 20 || cas == 0 {
		t.Fatalf("too few writes to judge: %d (cas %d)", writes, cas)
	}
}

func TestFixedDelayClosedLoop(t *testing.T) {
	const delay = 2 * time.Millisecond
	st, err := Run(context.Background(), Config{
		Duration: 200 * time.Millisecond, Concurrency: 2, Seed: 1, Generator: mustKV(t, KVConfig{}),
		NewClient: func(int) (Client, error) { return &kvClient{delay: delay}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops == 0 {
		t.Fatal("no ops")
	}
	// A sleep lasts at least its duration: every sample is >= delay.
	if min := st.Service.Min(); min < delay.Microseconds()-1 {
		t.Errorf("service time min %d µs < the client's %v sleep", min, delay)
	}
	p, q := st.Percentiles(), history.PercentilesOf(st.Service).Map()
	for _, k := range history.PercentileKeys {
		if p[k] != q[k] {
			t.Errorf("closed loop: latency %s = %v differs from service %v", k, p[k], q[k])
		}
	}
	if p["p50"] < float64(delay.Microseconds())-1 || p["max"] < p["p99"] || p["p99"] < p["p50"] {
		t.Errorf("percentiles not ordered or below the delay: %v", p)
	}
}

func TestOpenLoopRate(t *testing.T) {
	var buf bytes.Buffer
	st, err := Run(context.Background(), Config{
		Duration: time.Second, Rate: 2000, Concurrency: 8, Seed: 1, Generator: mustKV(t, KVConfig{}),
		NewClient: func(int) (Client, error) { return &kvClient{}, nil },
		HLog:      &buf, HLogInterval: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("target %.0f achieved %.0f ops/s, scheduled %d missed %d unsent %d, lag %v",
		st.TargetRate, st.AchievedRate, st.Scheduled, st.Missed, st.Unsent, history.PercentilesOf(st.Lag).Map())
	if !st.OpenLoop || math.Abs(st.TargetRate-2000) > 1 || st.Duration != time.Second {
		t.Fatalf("target rate %v over %v, want 2000 over 1s", st.TargetRate, st.Duration)
	}
	if st.AchievedRate < 1000 || st.AchievedRate > 3000 {
		t.Errorf("achieved %.0f ops/s, want roughly 2000", st.AchievedRate)
	}
	if st.Scheduled != st.Ops+st.Missed+st.Unsent {
		t.Errorf("scheduled %d != ops %d + missed %d + unsent %d", st.Scheduled, st.Ops, st.Missed, st.Unsent)
	}
	if st.Lag.TotalCount() != st.Ops {
		t.Errorf("lag samples %d, want %d", st.Lag.TotalCount(), st.Ops)
	}
	// Per op, latency = lag + service >= service, so every quantile too.
	lat, svc := st.Percentiles(), history.PercentilesOf(st.Service).Map()
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		if lat[k] < svc[k] {
			t.Errorf("latency %s %v < service %v", k, lat[k], svc[k])
		}
	}

	if !strings.Contains(buf.String(), "#[BaseTime:") {
		t.Errorf("interval log has no BaseTime header:\n%s", buf.String())
	}
	// The interval log reads back and holds every op.
	rd := hdrhistogram.NewHistogramLogReader(&buf)
	var total int64
	intervals := 0
	for {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		intervals++
		total += h.TotalCount()
	}
	if total != st.Ops || intervals < 2 {
		t.Errorf("interval log: %d ops in %d intervals, want %d ops in several", total, intervals, st.Ops)
	}
}

func TestOpenLoopBacklogOverflowIsCounted(t *testing.T) {
	st, evs := record(t, context.Background(), Config{
		Duration: 300 * time.Millisecond, Rate: 2000, Concurrency: 1, MaxBacklog: 5, Seed: 1,
		Generator: mustKV(t, KVConfig{}),
		NewClient: func(int) (Client, error) { return &kvClient{delay: 10 * time.Millisecond}, nil },
	})
	n := checkHistory(t, evs)
	if st.Missed == 0 {
		t.Fatalf("one worker with 10 ms ops at 2000 ops/s missed nothing: %+v", st)
	}
	if st.Scheduled != st.Ops+st.Missed+st.Unsent {
		t.Errorf("scheduled %d != ops %d + missed %d + unsent %d", st.Scheduled, st.Ops, st.Missed, st.Unsent)
	}
	if int64(n[history.Invoke]) != st.Ops {
		t.Errorf("history has %d invokes, want %d (missed ops are not recorded)", n[history.Invoke], st.Ops)
	}
	// Queued ops waited for the worker, and the backlog keeps the newest
	// five (the oldest are dropped as missed): when the worker comes back
	// after a 10 ms op, the op it takes was due about four intervals
	// (4 x 0.5 ms) before, so its lag shows the wait.
	if st.Lag.Max() < (1 * time.Millisecond).Microseconds() {
		t.Errorf("lag max %d µs, want the wait of a queued op (about 2 ms)", st.Lag.Max())
	}
}

func TestInfoGetsFreshProcess(t *testing.T) {
	s := newStore()
	st, evs := record(t, context.Background(), Config{
		Duration: 50 * time.Millisecond, Concurrency: 3, Seed: 5, FirstProcess: 10,
		Generator: mustKV(t, KVConfig{Keys: 2}),
		NewClient: func(int) (Client, error) { return &kvClient{s: s, infoEvery: 3}, nil },
	})
	n := checkHistory(t, evs)
	if st.Info == 0 || int64(n[history.Info]) != st.Info {
		t.Fatalf("want info outcomes: stats %d, history %d", st.Info, n[history.Info])
	}
	procs := map[history.Process]bool{}
	for _, e := range evs {
		if e.Process < 10 || e.Process >= st.NextProcess {
			t.Fatalf("process %d outside [10, %d)", e.Process, st.NextProcess)
		}
		procs[e.Process] = true
	}
	if st.NextProcess != history.Process(10+3+st.Info) {
		t.Errorf("NextProcess %d, want %d", st.NextProcess, 10+3+st.Info)
	}
	// Each info retires a process; all but at most one per worker go on.
	if n := int64(len(procs)); n < st.Info || n > 3+st.Info {
		t.Errorf("%d processes for %d infos", len(procs), st.Info)
	}
}

func opSeq(t *testing.T, seed int64) []string {
	t.Helper()
	_, evs := record(t, context.Background(), Config{
		Duration: 30 * time.Millisecond, Concurrency: 1, Seed: seed,
		Generator: mustKV(t, KVConfig{Keys: 4}),
		NewClient: func(int) (Client, error) { return &kvClient{}, nil },
	})
	var seq []string
	for _, e := range evs {
		if e.Type == history.Invoke {
			seq = append(seq, fmt.Sprintf("%s %s %s", e.F, e.Key, e.Value))
		}
	}
	return seq
}

func TestSameSeedSameOps(t *testing.T) {
	a, b, c := opSeq(t, 7), opSeq(t, 7), opSeq(t, 8)
	n := min(len(a), len(b), len(c))
	if n < 100 {
		t.Fatalf("too few ops to compare: %d", n)
	}
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			t.Fatalf("seed 7 op %d differs between runs: %q vs %q", i, a[i], b[i])
		}
	}
	same := 0
	for i := 0; i < n; i++ {
		if a[i] == c[i] {
			same++
		}
	}
	if same == n {
		t.Fatalf("seeds 7 and 8 gave the same %d ops", n)
	}
}

func TestCancelLetsInFlightOpsFinish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(120*time.Millisecond, cancel)
	st, evs := record(t, ctx, Config{
		Concurrency: 4, Seed: 1, Generator: mustKV(t, KVConfig{}),
		NewClient: func(int) (Client, error) { return &kvClient{delay: 50 * time.Millisecond}, nil },
	})
	n := checkHistory(t, evs)
	// The client turns a cancelled context into info: none means the ops in
	// flight at cancel kept their context and finished.
	if n[history.Info] != 0 || st.Info != 0 {
		t.Fatalf("%d ops ended info after cancel", n[history.Info])
	}
	if st.Ops < 4 || st.Duration <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOpTimeoutBoundsOps(t *testing.T) {
	st, err := Run(context.Background(), Config{
		Duration: 100 * time.Millisecond, Concurrency: 2, Seed: 1, Generator: mustKV(t, KVConfig{}),
		OpTimeout: time.Millisecond,
		NewClient: func(int) (Client, error) { return &kvClient{delay: 5 * time.Millisecond}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops == 0 || st.Info != st.Ops {
		t.Fatalf("every op outlives its 1 ms timeout and should end info: %d/%d", st.Info, st.Ops)
	}
}

func TestStagesRunTheProfile(t *testing.T) {
	p := &Progress{}
	if s := p.Snapshot(); s.Running || s.Ops != 0 {
		t.Fatalf("snapshot before run: %+v", s)
	}
	done := make(chan *Stats)
	go func() {
		st, err := Run(context.Background(), Config{
			Rate: 0, Stages: []Stage{{300 * time.Millisecond, 1000}, {300 * time.Millisecond, 0}},
			Concurrency: 4, Seed: 1, Generator: mustKV(t, KVConfig{}), Progress: p,
			NewClient: func(int) (Client, error) { return &kvClient{}, nil },
		})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	time.Sleep(200 * time.Millisecond)
	mid := p.Snapshot()
	st := <-done
	end := p.Snapshot()
	if !mid.Running || end.Running || end.Ops != st.Ops || mid.Ops > st.Ops {
		t.Errorf("progress mid %+v end %+v, stats ops %d", mid, end, st.Ops)
	}
	// 0 -> 1000 over 0.3 s, then 1000 -> 0: 300 ops scheduled in 0.6 s.
	if st.Duration != 600*time.Millisecond || math.Abs(st.TargetRate-500) > 1 {
		t.Errorf("duration %v target %v, want 600ms and 500 ops/s", st.Duration, st.TargetRate)
	}
	if st.Scheduled < 295 || st.Scheduled > 301 || st.Scheduled != st.Ops+st.Missed+st.Unsent {
		t.Errorf("scheduled %d (ops %d missed %d unsent %d), want ~300", st.Scheduled, st.Ops, st.Missed, st.Unsent)
	}
}

func TestScheduleMath(t *testing.T) {
	s, err := newSchedule(1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int64{0, 1, 999, 1000, 123456} {
		want := time.Duration(i) * time.Millisecond
		if got := s.at(i); got < want-time.Microsecond || got > want+time.Microsecond {
			t.Errorf("constant: at(%d) = %v, want %v", i, got, want)
		}
	}
	if d := s.due(time.Second); d != 1001 {
		t.Errorf("constant: due(1s) = %d, want 1001 (ops 0..1000)", d)
	}

	// Ramp up, a pause at rate 0, ramp up again, hold.
	s, err = newSchedule(0, []Stage{{time.Second, 100}, {time.Second, 0}, {time.Second, 0}, {time.Second, 100}})
	if err != nil {
		t.Fatal(err)
	}
	if s.length() != 4*time.Second || s.peak != 100 {
		t.Errorf("length %v peak %v", s.length(), s.peak)
	}
	if n := s.n(4 * time.Second); math.Abs(n-150) > 1e-9 {
		t.Errorf("n(4s) = %v, want 150 (three triangles of 50)", n)
	}
	if r := s.rate(1500 * time.Millisecond); math.Abs(r-50) > 1e-9 {
		t.Errorf("rate(1.5s) = %v, want 50", r)
	}
	prev := time.Duration(0)
	for i := int64(0); i < 400; i++ {
		at := s.at(i)
		if at < prev {
			t.Fatalf("at(%d) = %v < at(%d) = %v", i, at, i-1, prev)
		}
		if at > 2*time.Second && at < 3*time.Second {
			t.Fatalf("op %d scheduled at %v, inside the zero-rate stage", i, at)
		}
		// N(at(i)) is i (up to rounding), so op i is due at its time.
		if d := s.due(at + time.Nanosecond); d < i+1 {
			t.Fatalf("due(at(%d)=%v) = %d, want > %d", i, at, d, i)
		}
		prev = at
	}
	if got := s.at(100); got != 2*time.Second {
		t.Errorf("at(100) = %v, want 2s (the end of the first ramp down)", got)
	}

	// A profile that ends at rate 0 schedules nothing more.
	s, _ = newSchedule(10, []Stage{{time.Second, 0}})
	if got := s.at(5); got != time.Second {
		t.Errorf("at(5) = %v, want 1s", got)
	}
	if got := s.at(6); got != never {
		t.Errorf("at(6) = %v, want never", got)
	}
}

func TestConfigErrors(t *testing.T) {
	g := mustKV(t, KVConfig{})
	nc := func(int) (Client, error) { return &kvClient{}, nil }
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Generator: g, NewClient: nc}, "concurrency"},
		{Config{Concurrency: 1, NewClient: nc}, "Generator"},
		{Config{Concurrency: 1, Generator: g}, "NewClient"},
		{Config{Concurrency: 1, Generator: g, NewClient: nc, Rate: -1}, "rate"},
		{Config{Concurrency: 1, Generator: g, NewClient: nc, Rate: 1, Stages: []Stage{{0, 5}}}, "stage 1: duration"},
		{Config{Concurrency: 1, Generator: g, NewClient: nc, Stages: []Stage{{time.Second, math.NaN()}}}, "stage 1: rate"},
		{Config{Concurrency: 1, Generator: g, NewClient: nc, FirstProcess: history.Nemesis}, "FirstProcess"},
	}
	for _, c := range cases {
		_, err := Run(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %+v: err = %v, want one naming %q", c.cfg, err, c.want)
		}
	}
	if _, err := NewKV(KVConfig{Get: -1}); err == nil || !strings.Contains(err.Error(), "get") {
		t.Errorf("negative weight: err = %v", err)
	}
}

func TestNewClientErrorClosesBuiltClients(t *testing.T) {
	var closed atomic.Int64
	_, err := Run(context.Background(), Config{
		Duration: time.Second, Concurrency: 4, Generator: mustKV(t, KVConfig{}),
		NewClient: func(w int) (Client, error) {
			if w == 2 {
				return nil, errors.New("connection refused")
			}
			return &kvClient{closed: &closed}, nil
		},
	})
	if err == nil || !strings.Contains(err.Error(), "worker 2") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
	if closed.Load() != 2 {
		t.Errorf("%d clients closed, want the 2 already built", closed.Load())
	}
}

func TestKVWeightsAndKeys(t *testing.T) {
	g := mustKV(t, KVConfig{Put: 1})
	if len(g.Keys()) != 5 || g.Keys()[4] != "k4" {
		t.Fatalf("keys %v", g.Keys())
	}
	st, err := Run(context.Background(), Config{
		Duration: 50 * time.Millisecond, Concurrency: 1, Generator: g,
		NewClient: func(int) (Client, error) { return &kvClient{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops == 0 || st.ByF[FPut] == nil || st.ByF[FPut].Ops != st.Ops {
		t.Fatalf("put-only workload ran %v", st.Functions())
	}
}

// flaky answers info, then fail, then reads from the store.
type flaky struct {
	kvClient
	calls map[string]int
}

func (f *flaky) Do(ctx context.Context, op history.Op) history.Outcome {
	f.calls[op.Key]++
	switch f.calls[op.Key] {
	case 1:
		return history.Outcome{Type: history.Info, Error: "timeout"}
	case 2:
		return history.Outcome{Type: history.Fail, Error: "not leader"}
	}
	return f.kvClient.Do(ctx, op)
}

func TestFinalReads(t *testing.T) {
	s := newStore()
	s.m["a"] = json.RawMessage("7")
	var buf bytes.Buffer
	rec, _ := history.NewRecorder(&buf, nil)
	c := &flaky{kvClient: kvClient{s: s}, calls: map[string]int{}}
	vals, next, err := FinalReads(context.Background(), c, []string{"a", "b"}, rec, 20)
	if err != nil {
		t.Fatal(err)
	}
	_ = rec.Close()
	if string(vals["a"]) != "7" || string(vals["b"]) != "null" {
		t.Fatalf("values %v", vals)
	}
	if next != 22 {
		t.Errorf("next process %d, want 22 (one info per key)", next)
	}
	_, evs, err := history.ReadAll(&buf, "mem")
	if err != nil {
		t.Fatal(err)
	}
	n := checkHistory(t, evs)
	if n[history.Invoke] != 6 || n[history.OK] != 2 || n[history.Info] != 2 || n[history.Fail] != 2 {
		t.Errorf("final reads recorded %v, want 3 attempts per key", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	always := clientFunc(func(context.Context, history.Op) history.Outcome {
		return history.Outcome{Type: history.Fail, Error: "no quorum"}
	})
	_, _, err = FinalReads(ctx, always, []string{"x", "y"}, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "x, y") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want one naming x, y and the deadline", err)
	}
}

type clientFunc func(context.Context, history.Op) history.Outcome

func (f clientFunc) Do(ctx context.Context, op history.Op) history.Outcome { return f(ctx, op) }

func TestBadOutcomeTypeBecomesInfo(t *testing.T) {
	st, evs := record(t, context.Background(), Config{
		Duration: 30 * time.Millisecond, Concurrency: 1, Generator: mustKV(t, KVConfig{}),
		NewClient: func(int) (Client, error) {
			return clientFunc(func(context.Context, history.Op) history.Outcome {
				return history.Outcome{Type: "weird"}
			}), nil
		},
	})
	checkHistory(t, evs)
	if st.Ops == 0 || st.Info != st.Ops {
		t.Fatalf("ops %d info %d", st.Ops, st.Info)
	}
}

func TestKVCasFromLastSeen(t *testing.T) {
	g := mustKV(t, KVConfig{Keys: 1, CAS: 1})
	r := rand.New(rand.NewPCG(1, 2))
	from := func() string {
		op := g.Next(r, 0)
		var c history.CAS
		if op.F != FCAS || json.Unmarshal(op.Value, &c) != nil {
			t.Fatalf("op %+v is not a cas", op)
		}
		return string(c.From)
	}
	if f := from(); f != "null" {
		t.Fatalf("first cas from %s, want null", f)
	}
	g.Observe(history.Op{F: FPut, Key: "k0", Value: json.RawMessage("42")}, history.Outcome{Type: history.OK})
	if f := from(); f != "42" {
		t.Fatalf("cas after put 42: from %s", f)
	}
	g.Observe(history.Op{F: FPut, Key: "k0", Value: json.RawMessage("43")}, history.Outcome{Type: history.Fail})
	if f := from(); f != "42" {
		t.Fatalf("a failed put changed the cas from value to %s", f)
	}
	g.Observe(history.Op{F: FGet, Key: "k0"}, history.Outcome{Type: history.OK, Value: json.RawMessage(`"a,\"to\":1}"`)})
	if f := from(); f != `"a,\"to\":1}"` {
		t.Fatalf("cas after a read: from %s", f)
	}
	op := g.Next(r, 0)
	g.Observe(op, history.Outcome{Type: history.OK})
	var c history.CAS
	_ = json.Unmarshal(op.Value, &c)
	if f := from(); f != string(c.To) {
		t.Fatalf("cas after cas to %s: from %s", c.To, f)
	}
}
