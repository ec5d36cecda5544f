package workloads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// Config configures one phase of a workload (warm-up, main, ...).
type Config struct {
	// Duration is the length of the phase. 0 means: the sum of the Stages'
	// durations if there are stages, else until ctx is cancelled. With
	// stages, a longer Duration holds the last stage's rate; a shorter one
	// cuts the profile.
	Duration time.Duration
	// Rate is the total target rate in ops/s for an open loop (the start
	// rate when there are Stages). Rate 0 without Stages means closed loop.
	Rate float64
	// Stages is an optional open-loop load profile (linear ramps).
	Stages []Stage
	// Concurrency is the number of workers (>= 1): each has its own Client,
	// so it is also the most ops in flight at once.
	Concurrency int
	// Seed seeds every worker's random source (worker w uses PCG(Seed, w)).
	Seed int64
	// NewClient returns the Client of worker w (0..Concurrency-1); it is
	// called once per worker before the phase starts, never concurrently.
	// A Client implementing io.Closer is closed when Run returns.
	NewClient func(worker int) (Client, error)
	// Generator produces the ops; see Generator for its contract.
	Generator Generator
	// Recorder receives every op's invoke and completion. nil records no
	// history (pure load generation, benchmarks).
	Recorder *history.Recorder
	// FirstProcess is the process id of worker 0; worker w starts as
	// FirstProcess+w and fresh process ids (after an info) continue from
	// FirstProcess+Concurrency. Pass the previous phase's Stats.NextProcess
	// so that process ids stay unique in the run.
	FirstProcess history.Process
	// OpTimeout, if > 0, bounds every op's context. Ops are otherwise only
	// bounded by the client's own timeouts: cancelling ctx does not cancel
	// ops in flight (they finish and are recorded).
	OpTimeout time.Duration
	// MaxBacklog bounds the open-loop ops that are due but waiting for a
	// free worker; when more are due, the oldest of them are never sent and
	// are counted in Stats.Missed. 0 means ten seconds of the peak target rate (at least
	// Concurrency, at most 1<<20): a stall of the system under test
	// shorter than that loses no op, each is sent late and its latency
	// counts the wait.
	MaxBacklog int
	// HLog, if set, receives the latency (from the intended start) as an
	// HdrHistogram interval log (latency.hlog), one interval every
	// HLogInterval; values in microseconds, timestamps in seconds since the
	// recorder's base (or the phase start without a Recorder). Run writes a complete
	// log, header included, so give each phase its own writer (normally
	// only the main phase has one).
	HLog io.Writer
	// HLogInterval is the interval of HLog; 0 means 1 s.
	HLogInterval time.Duration
	// Progress, if set, is attached to this run for live snapshots.
	Progress *Progress
}

// Pacer tuning: the pacer sleeps until the next op is due, but never less
// than minPacerSleep (so at high rates it dispatches ops in batches, one
// wake-up per batch) and never more than maxPacerSleep (so it notices
// ctx promptly).
//
// Waits under 1 ms use shortSleep (nanosleep on Linux), because Go timers
// there have millisecond resolution. coarsePacer turns that off (only the
// benchmarks set it, to measure the difference).
const (
	minPacerSleep = 50 * time.Microsecond
	maxPacerSleep = 10 * time.Millisecond
)

var coarsePacer = false

// defaultBacklog is how much of the peak rate the backlog holds by
// default (Config.MaxBacklog 0).
const defaultBacklog = 10 * time.Second

type runner struct {
	cfg    Config
	sched  *schedule // nil in closed loop
	end    time.Duration
	start  time.Time
	shards []*shard
	byKey  map[string]*keyFigures // KeyFigures' keys; read-only once running

	// Open loop: ops 0..dueN-1 are due (the pacer advances dueN as the
	// schedule makes them due), ops 0..taken-1 were taken by a worker or
	// dropped as missed; a worker takes op i by moving taken from i to i+1
	// and sends it at once (its intended start is sched.at(i)). Workers
	// with nothing due park on wake after counting themselves in idle; the
	// pacer sends one token per op it makes due, up to idle. So at high
	// rates dispatching an op costs one compare-and-swap, no channel.
	dueN    atomic.Int64
	taken   atomic.Int64
	idle    atomic.Int64
	wake    chan struct{}
	backlog int64 // MaxBacklog, or its default

	stop    chan struct{} // closed when the phase stops
	stopped atomic.Bool
	stopAt  atomic.Int64 // ns since start when the phase stopped
	endAt   atomic.Int64 // ns since start when Run finished (0 = running)

	nextProc  atomic.Int64
	missed    atomic.Int64
	unsent    atomic.Int64
	scheduled atomic.Int64
	haltOnce  sync.Once
}

type worker struct {
	id     int
	r      *runner
	client Client
	rng    *rand.Rand
	proc   history.Process
	sh     *shard
	ctx    context.Context
}

func (c *Config) validate() error {
	if c.Concurrency < 1 {
		return fmt.Errorf("workloads: concurrency must be at least 1 (the number of workers), got %d", c.Concurrency)
	}
	if c.Duration < 0 {
		return fmt.Errorf("workloads: duration must be >= 0 (0 = until cancelled or the end of the stages), got %v", c.Duration)
	}
	if c.NewClient == nil {
		return errors.New("workloads: NewClient is nil: set it to build each worker's client")
	}
	if c.Generator == nil {
		return errors.New("workloads: Generator is nil: set it (for example to a *KV from NewKV)")
	}
	if c.FirstProcess < 0 {
		return fmt.Errorf("workloads: FirstProcess must be a client process id (>= 0), got %d", c.FirstProcess)
	}
	if c.MaxBacklog < 0 {
		return fmt.Errorf("workloads: MaxBacklog must be >= 0 (0 = ten seconds of the peak rate), got %d", c.MaxBacklog)
	}
	if c.OpTimeout < 0 || c.HLogInterval < 0 {
		return errors.New("workloads: OpTimeout and HLogInterval must be >= 0")
	}
	return nil
}

// Run drives one phase of the workload and returns its statistics.
//
// It builds Concurrency clients, runs until cfg.Duration elapses or ctx is
// cancelled (neither is an error), waits for the ops in flight, closes the
// clients and returns. The error is non-nil when cfg is invalid or a client
// could not be built (then nothing ran), or when writing cfg.HLog failed
// (then the Stats are still complete). Run does not close cfg.Recorder.
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, end: cfg.Duration, stop: make(chan struct{})}
	if cfg.Rate > 0 || len(cfg.Stages) > 0 {
		s, err := newSchedule(cfg.Rate, cfg.Stages)
		if err != nil {
			return nil, err
		}
		r.sched = s
		if r.end == 0 {
			r.end = s.length()
		}
		backlog := cfg.MaxBacklog
		if backlog == 0 {
			backlog = int(math.Min(math.Ceil(defaultBacklog.Seconds()*s.peak), 1<<20))
			backlog = max(backlog, cfg.Concurrency)
		}
		r.backlog = int64(backlog)
		r.wake = make(chan struct{}, cfg.Concurrency)
	} else if cfg.Rate < 0 {
		return nil, fmt.Errorf("workloads: rate must be >= 0 ops/s (0 = closed loop), got %v", cfg.Rate)
	}

	nshards := min(cfg.Concurrency, 2*runtime.GOMAXPROCS(0))
	r.shards = make([]*shard, nshards)
	for i := range r.shards {
		r.shards[i] = newShard(cfg.HLog != nil)
	}

	if kf, ok := cfg.Generator.(KeyFigures); ok {
		r.byKey = map[string]*keyFigures{}
		for _, k := range kf.FigureKeys() {
			r.byKey[k] = newKeyFigures()
		}
	}

	opCtx := context.WithoutCancel(ctx)
	workers := make([]*worker, cfg.Concurrency)
	closeAll := func() error {
		var errs []error
		for _, w := range workers {
			if w == nil {
				continue
			}
			if c, ok := w.client.(io.Closer); ok {
				if err := c.Close(); err != nil {
					errs = append(errs, fmt.Errorf("closing worker %d's client: %w", w.id, err))
				}
			}
		}
		return errors.Join(errs...)
	}
	for i := range workers {
		c, err := cfg.NewClient(i)
		if err == nil && c == nil {
			err = errors.New("NewClient returned a nil Client")
		}
		if err != nil {
			_ = closeAll()
			return nil, fmt.Errorf("workloads: building the client of worker %d: %w", i, err)
		}
		workers[i] = &worker{
			id:     i,
			r:      r,
			client: c,
			rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i))),
			proc:   cfg.FirstProcess + history.Process(i),
			sh:     r.shards[i%nshards],
			ctx:    opCtx,
		}
	}
	r.nextProc.Store(int64(cfg.FirstProcess) + int64(cfg.Concurrency))

	r.start = time.Now()
	if cfg.Progress != nil {
		cfg.Progress.attach(r)
	}
	var hl *intervalLog
	hlogDone := make(chan struct{})
	var hlogWG sync.WaitGroup
	if cfg.HLog != nil {
		base := r.start
		if cfg.Recorder != nil {
			base = cfg.Recorder.Base()
		}
		hl = newIntervalLog(cfg.HLog, base)
		hl.begin(r.start)
		interval := cfg.HLogInterval
		if interval == 0 {
			interval = time.Second
		}
		hlogWG.Add(1)
		go func() {
			defer hlogWG.Done()
			r.intervalLoop(hl, interval, hlogDone)
		}()
	}

	var wg sync.WaitGroup
	wg.Add(len(workers))
	for _, w := range workers {
		if r.sched != nil {
			go func() { defer wg.Done(); w.openLoop() }()
		} else {
			go func() { defer wg.Done(); w.closedLoop() }()
		}
	}
	if r.sched != nil {
		r.pace(ctx)
	} else {
		r.waitStop(ctx)
	}
	wg.Wait()
	finished := time.Since(r.start)
	if r.sched != nil {
		r.unsent.Add(max(r.dueN.Load()-r.taken.Load(), 0))
	}

	var hlogErr error
	if hl != nil {
		close(hlogDone)
		hlogWG.Wait()
		r.flushInterval(hl, finished)
		hlogErr = hl.Err()
	}
	closeErr := closeAll()
	r.endAt.Store(max(int64(finished), 1))

	st := r.stats(finished)
	st.NextProcess = history.Process(r.nextProc.Load())
	var errs []error
	if hlogErr != nil {
		errs = append(errs, fmt.Errorf("workloads: writing the latency interval log: %w", hlogErr))
	}
	if closeErr != nil {
		errs = append(errs, fmt.Errorf("workloads: %w", closeErr))
	}
	return st, errors.Join(errs...)
}

// halt stops the phase (once): no op starts after it.
func (r *runner) halt(at time.Duration) {
	r.haltOnce.Do(func() {
		r.stopAt.Store(int64(at))
		r.stopped.Store(true)
		close(r.stop)
	})
}

// waitStop is the closed loop's stopper: it returns at the end of the
// phase or when ctx is cancelled.
func (r *runner) waitStop(ctx context.Context) {
	var deadline <-chan time.Time
	if r.end > 0 {
		t := time.NewTimer(r.end - time.Since(r.start))
		defer t.Stop()
		deadline = t.C
	}
	select {
	case <-deadline:
		r.halt(time.Since(r.start))
	case <-ctx.Done():
		r.halt(time.Since(r.start))
	}
}

// pace is the open-loop pacer. It runs until the end of the phase or ctx,
// making ops due in batches: on every wake-up it computes how many ops the
// schedule has made due since the start, publishes that count (dueN),
// drops the oldest waiting ops beyond the backlog (missed), and wakes as
// many parked workers as ops became due.
func (r *runner) pace(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var next int64 // ops made due so far
	for {
		now := time.Since(r.start)
		final := false
		if r.end > 0 && now >= r.end {
			now, final = r.end, true
		}
		due := max(r.sched.due(now), next)
		if due > next {
			for {
				t := r.taken.Load()
				if due-t <= r.backlog {
					break
				}
				if r.taken.CompareAndSwap(t, due-r.backlog) {
					r.missed.Add(due - r.backlog - t)
					break
				}
			}
			r.dueN.Store(due)
			woke := false
			for n := min(due-next, r.idle.Load()); n > 0; n-- {
				select {
				case r.wake <- struct{}{}:
					woke = true
				default:
					n = 0
				}
			}
			if woke {
				// Let a woken worker start on this processor now. The
				// wake-up put it next in this processor's queue, and
				// the pacer is about to sleep in nanosleep, holding
				// the processor: without the yield another thread has
				// to be woken to steal the worker. The yield cut the
				// generator's CPU per request by 20-45% at 1k-10k/s
				// (bench/run's HTTP part); the dispatch lag p99 (its
				// pacer part) stayed at 0.2 ms at 1k-50k ops/s and
				// was 0.2-0.45 ms at 200k (0.2-0.31 ms without).
				runtime.Gosched()
			}
			next = due
		}
		nextAt := r.sched.at(next)
		r.scheduled.Store(next)
		if final {
			r.halt(now)
			return
		}
		wait := nextAt - time.Since(r.start)
		if r.end > 0 {
			wait = min(wait, r.end-time.Since(r.start))
		}
		wait = max(min(wait, maxPacerSleep), minPacerSleep)
		if wait < time.Millisecond && haveShortSleep && !coarsePacer {
			shortSleep(wait)
			if ctx.Err() != nil {
				r.halt(time.Since(r.start))
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			r.halt(time.Since(r.start))
			return
		}
	}
}

func (w *worker) closedLoop() {
	for !w.r.stopped.Load() {
		w.one(0, false)
	}
}

func (w *worker) openLoop() {
	r := w.r
	for !r.stopped.Load() {
		i := r.taken.Load()
		if i < r.dueN.Load() {
			if r.taken.CompareAndSwap(i, i+1) {
				if r.stopped.Load() {
					r.unsent.Add(1)
					return
				}
				w.one(r.sched.at(i), true)
			}
			continue
		}
		// Nothing due: park. Counting in idle before the second look means
		// the pacer either sees this worker idle (and sends a token) or
		// made the op due before that look.
		r.idle.Add(1)
		if r.taken.Load() < r.dueN.Load() {
			r.idle.Add(-1)
			continue
		}
		select {
		case <-r.wake:
		case <-r.stop:
		}
		r.idle.Add(-1)
	}
}

// one performs and records one op. intended is only used in open loop.
func (w *worker) one(intended time.Duration, open bool) {
	r := w.r
	op := r.cfg.Generator.Next(w.rng, w.id)
	rec := r.cfg.Recorder
	if rec != nil {
		rec.Record(history.Event{Type: history.Invoke, Process: w.proc, F: op.F, Key: op.Key, Value: op.Value})
	}
	ctx := w.ctx
	var cancel context.CancelFunc
	if r.cfg.OpTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, r.cfg.OpTimeout)
	}
	sent := time.Since(r.start)
	out := w.client.Do(ctx, op)
	done := time.Since(r.start)
	if cancel != nil {
		cancel()
	}
	out = checkOutcome(out)
	if rec != nil {
		rec.Record(completionEvent(w.proc, op, out))
	}
	r.cfg.Generator.Observe(op, out)
	if !open {
		intended = sent
	}
	mismatch := history.IsMismatch(out.Type, out.Error)
	w.sh.record(op.F, out.Type, mismatch, done-intended, done-sent, sent-intended, open)
	if kf := r.byKey[op.Key]; kf != nil {
		kf.record(out.Type, mismatch, done-intended, done-sent)
	}
	if out.Type == history.Info {
		w.proc = history.Process(r.nextProc.Add(1) - 1)
	}
}

// completionEvent is the history event of op's completion by process p:
// its type, value (completionValue), the node that answered and its term
// ("term", when the client reports one), and the error.
func completionEvent(p history.Process, op history.Op, out history.Outcome) history.Event {
	e := history.Event{Type: out.Type, Process: p, F: op.F, Key: op.Key,
		Value: completionValue(op, out), Node: out.Node, Error: out.Error}
	if out.Term > 0 {
		e.Extra = map[string]json.RawMessage{"term": strconv.AppendUint(nil, out.Term, 10)}
	}
	return e
}

// completionValue is the value of an op's completion event: for a read,
// what was read (null for an absent key) when ok and nothing otherwise; for
// a write or cas, the op's own value (what it tried to write); for other
// functions, the client's value when ok and non-nil, else the op's.
func completionValue(op history.Op, out history.Outcome) []byte {
	switch op.F {
	case FGet, "read":
		if out.Type != history.OK {
			return nil
		}
		if out.Value == nil {
			return history.Null
		}
		return out.Value
	case FPut, "write", FCAS:
		return op.Value
	}
	if out.Type == history.OK && out.Value != nil {
		return out.Value
	}
	return op.Value
}

// intervalLoop writes one interval histogram every interval until done.
func (r *runner) intervalLoop(hl *intervalLog, interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			r.flushInterval(hl, time.Since(r.start))
		}
	}
}

// flushInterval writes the latency recorded since the last call, ending at
// `at` (since the phase start).
func (r *runner) flushInterval(hl *intervalLog, at time.Duration) {
	acc := hl.acc
	acc.Reset()
	for _, s := range r.shards {
		old := s.swapInterval(hl.spare)
		acc.Merge(old)
		old.Reset()
		hl.spare = old
	}
	hl.write(acc, r.start.Add(at))
}

func (r *runner) stats(finished time.Duration) *Stats {
	st := &Stats{
		ByF:      make(map[string]*Counts),
		OpenLoop: r.sched != nil,
		Latency:  history.NewLatencyHistogram(),
		Service:  history.NewLatencyHistogram(),
		Lag:      history.NewLatencyHistogram(),
		Missed:   r.missed.Load(),
		Unsent:   r.unsent.Load(),
	}
	for _, s := range r.shards {
		s.mu.Lock()
		st.Ops += s.all.Ops
		st.OK += s.all.OK
		st.Fail += s.all.Fail
		st.Info += s.all.Info
		st.Mismatch += s.all.Mismatch
		for f, c := range s.byF {
			m := st.ByF[f]
			if m == nil {
				m = &Counts{Latency: history.NewLatencyHistogram()}
				st.ByF[f] = m
			}
			m.Ops += c.Ops
			m.OK += c.OK
			m.Fail += c.Fail
			m.Info += c.Info
			m.Mismatch += c.Mismatch
			m.Latency.Merge(c.Latency)
		}
		st.Latency.Merge(s.lat)
		st.Service.Merge(s.svc)
		st.Lag.Merge(s.lag)
		s.mu.Unlock()
	}
	if r.byKey != nil {
		st.ByKey = make(map[string]*Counts, len(r.byKey))
		for k, kf := range r.byKey { // every worker has returned
			st.ByKey[k] = &kf.c
		}
	}
	st.Duration = time.Duration(r.stopAt.Load())
	st.Drain = finished - st.Duration
	if r.sched != nil {
		st.Scheduled = r.scheduled.Load()
		if secs := st.Duration.Seconds(); secs > 0 {
			st.TargetRate = r.sched.n(st.Duration) / secs
		}
	} else {
		st.Scheduled = st.Ops
	}
	if secs := st.Duration.Seconds(); secs > 0 {
		st.AchievedRate = float64(st.Ops) / secs
	}
	return st
}

// intervalLog writes an HdrHistogram interval log (the run directory's
// latency.hlog) with hdrhistogram-go's HistogramLogWriter: a header
// (format version, a comment, StartTime and BaseTime = the run's start),
// then one line per interval with its start in seconds since the run's
// start, its length, its max, and the compressed histogram. Values are
// microseconds; the "Interval_Max" column is the library's max/1e6, hence
// seconds. It is not safe for concurrent use; Run drives it from one
// goroutine.
type intervalLog struct {
	lw    *hdrhistogram.HistogramLogWriter
	base  time.Time
	last  time.Time
	acc   *hdrhistogram.Histogram
	spare *hdrhistogram.Histogram
	err   error
}

// newIntervalLog returns a log writing to w whose timestamps are relative
// to base (normally the recorder's base, so that intervals line up with
// the history's times).
func newIntervalLog(w io.Writer, base time.Time) *intervalLog {
	return &intervalLog{
		lw:    hdrhistogram.NewHistogramLogWriter(w),
		base:  base,
		acc:   history.NewLatencyHistogram(),
		spare: history.NewLatencyHistogram(),
	}
}

func (l *intervalLog) keep(err error) {
	if l.err == nil && err != nil {
		l.err = err
	}
}

// begin writes the header; the first interval starts at start.
func (l *intervalLog) begin(start time.Time) {
	ms := l.base.UnixMilli()
	l.keep(l.lw.OutputLogFormatVersion())
	l.keep(l.lw.OutputComment("[faultline latency from intended start; values in microseconds; Interval_Max = max/1e6, i.e. seconds]"))
	l.keep(l.lw.OutputStartTime(ms))
	l.keep(l.lw.OutputBaseTime(ms))
	l.lw.SetBaseTime(ms)
	l.keep(l.lw.OutputLegend())
	l.last = start
}

// write writes h as the interval from the previous end to end.
func (l *intervalLog) write(h *hdrhistogram.Histogram, end time.Time) {
	h.SetStartTimeMs(l.base.UnixMilli() + l.last.Sub(l.base).Milliseconds())
	h.SetEndTimeMs(l.base.UnixMilli() + end.Sub(l.base).Milliseconds())
	l.last = end
	l.keep(l.lw.OutputIntervalHistogram(h))
}

// Err returns the first write error.
func (l *intervalLog) Err() error { return l.err }

// checkOutcome holds a client to its contract: an outcome of any type but
// ok, fail or info becomes info (the op's effect is unknown), saying why.
func checkOutcome(out history.Outcome) history.Outcome {
	switch out.Type {
	case history.OK, history.Fail, history.Info:
		return out
	}
	return history.Outcome{Type: history.Info, Node: out.Node,
		Error: fmt.Sprintf("client returned outcome type %q (want ok, fail or info); %s", out.Type, out.Error)}
}
