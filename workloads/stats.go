package workloads

import (
	"math"
	"sort"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/history"
)

// Counts are the outcomes of one function (or of all). Three kinds of
// failure are kept apart: Fail counts definite rejections (the op certainly
// did not take effect), Mismatch counts cas ops whose comparison failed (a
// normal answer: fail with error "mismatch"), Info counts unknown outcomes.
// Ops == OK + Fail + Mismatch + Info.
type Counts struct {
	Ops, OK, Fail, Info int64
	Mismatch            int64
	// Latency is the latency histogram of this function's ops, in
	// microseconds (from the intended start in open loop).
	Latency *hdrhistogram.Histogram
	// Service is the service time histogram (completion - send), in
	// microseconds; kept only in Stats.ByKey (nil in Stats.ByF).
	Service *hdrhistogram.Histogram
}

func (c *Counts) add(t history.Type, mismatch bool) {
	c.Ops++
	switch {
	case t == history.OK:
		c.OK++
	case t == history.Fail && mismatch:
		c.Mismatch++
	case t == history.Fail:
		c.Fail++
	default:
		c.Info++
	}
}

// Stats summarizes one Run. Histograms hold microseconds.
type Stats struct {
	// Ops is the number of ops sent (each recorded as an invoke and a
	// completion); OK + Fail + Mismatch + Info == Ops. Fail counts definite
	// rejections only; Mismatch the cas ops whose comparison failed (see
	// Counts).
	Ops, OK, Fail, Info int64
	Mismatch            int64
	// Scheduled is the number of ops the open-loop schedule made due during
	// the phase: Scheduled == Ops + Missed + Unsent. Closed loop: Ops.
	Scheduled int64
	// Missed counts open-loop ops that became due while the backlog was full
	// (Config.MaxBacklog): never sent, not in the history.
	Missed int64
	// Unsent counts open-loop ops that were due but still waiting for a
	// worker when the phase ended: never sent, not in the history.
	Unsent int64
	// ByF has the counts and latency per function ("get", "put", ...).
	ByF map[string]*Counts
	// ByKey has the counts, latency and service time per key for the
	// keys a Generator implementing KeyFigures names (the http
	// workload's endpoints), each key present even if no op used it; nil
	// for other generators.
	ByKey map[string]*Counts

	OpenLoop bool
	// TargetRate is the scheduled load, ops/s averaged over Duration
	// (for a constant rate, Config.Rate); 0 in closed loop.
	TargetRate float64
	// AchievedRate is Ops / Duration: the rate at which ops were sent.
	AchievedRate float64
	// Duration is the main phase, from its start until it was stopped (by
	// Config.Duration or ctx). Drain is the time after that spent waiting
	// for in-flight ops to finish.
	Duration, Drain time.Duration

	// Latency is completion - intended start (open loop) or completion -
	// send (closed loop). Service is completion - send. Lag is send -
	// intended start; it is empty in closed loop.
	Latency, Service, Lag *hdrhistogram.Histogram

	// NextProcess is one past the highest process id the run used; pass it
	// as Config.FirstProcess (or to FinalReads) for the next phase.
	NextProcess history.Process
}

// Percentiles returns the latency percentiles, in microseconds, under the
// keys "p50", "p90", "p99", "p999", "max", "mean" and "count".
func (s *Stats) Percentiles() map[string]float64 { return history.PercentilesOf(s.Latency).Map() }

// Functions returns the function names in s.ByF, sorted.
func (s *Stats) Functions() []string {
	fs := make([]string, 0, len(s.ByF))
	for f := range s.ByF {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	return fs
}

// KeyFigures is implemented by a Generator whose ops use a few named keys
// that reports show apart (the http workload: its endpoints). Run calls
// FigureKeys once, before the phase starts, and keeps the counts, latency
// and service time of the ops on each key it names in Stats.ByKey; ops on
// other keys count in the totals only. Each key costs two latency
// histograms (about 200 KB each), so name few.
type KeyFigures interface {
	FigureKeys() []string
}

// keyFigures are one key's figures (KeyFigures), under their own lock:
// there are few keys, and an op touches one.
type keyFigures struct {
	mu sync.Mutex
	c  Counts
}

func newKeyFigures() *keyFigures {
	return &keyFigures{c: Counts{Latency: history.NewLatencyHistogram(), Service: history.NewLatencyHistogram()}}
}

func (k *keyFigures) record(t history.Type, mismatch bool, latency, service time.Duration) {
	k.mu.Lock()
	k.c.add(t, mismatch)
	history.RecordLatency(k.c.Latency, latency)
	history.RecordLatency(k.c.Service, service)
	k.mu.Unlock()
}

// shard holds the histograms and counts of a group of workers. Workers
// record under mu; the interval-log goroutine swaps the interval histogram
// under mu. A shard per worker would cost ~1 MB each (about 190 KB per
// histogram), so workers share min(Concurrency, 2*GOMAXPROCS) shards: the
// lock is then almost never contended.
type shard struct {
	mu       sync.Mutex
	all      Counts
	byF      map[string]*Counts
	lat      *hdrhistogram.Histogram
	svc      *hdrhistogram.Histogram
	lag      *hdrhistogram.Histogram
	interval *hdrhistogram.Histogram // latency since the last interval snapshot
	_        [64]byte                // keep shards' locks on separate cache lines
}

func newShard(withInterval bool) *shard {
	s := &shard{
		byF: make(map[string]*Counts),
		lat: history.NewLatencyHistogram(),
		svc: history.NewLatencyHistogram(),
		lag: history.NewLatencyHistogram(),
	}
	if withInterval {
		s.interval = history.NewLatencyHistogram()
	}
	return s
}

func (s *shard) record(f string, t history.Type, mismatch bool, latency, service, lag time.Duration, open bool) {
	s.mu.Lock()
	s.all.add(t, mismatch)
	c := s.byF[f]
	if c == nil {
		c = &Counts{Latency: history.NewLatencyHistogram()}
		s.byF[f] = c
	}
	c.add(t, mismatch)
	history.RecordLatency(c.Latency, latency)
	history.RecordLatency(s.lat, latency)
	history.RecordLatency(s.svc, service)
	if open {
		history.RecordLatency(s.lag, lag)
	}
	if s.interval != nil {
		history.RecordLatency(s.interval, latency)
	}
	s.mu.Unlock()
}

// swapInterval replaces the shard's interval histogram by fresh (which
// must be empty) and returns the old one.
func (s *shard) swapInterval(fresh *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	s.mu.Lock()
	old := s.interval
	s.interval = fresh
	s.mu.Unlock()
	return old
}

func (s *shard) counts() Counts {
	s.mu.Lock()
	c := s.all
	s.mu.Unlock()
	return c
}

// ProgressSnapshot is a live view of a running phase.
type ProgressSnapshot struct {
	Running bool          // false before the run starts and after it ends
	Elapsed time.Duration // since the phase start (frozen at its end)
	// Ops completed so far and their outcomes (Fail, Mismatch and Info
	// as in Counts); Missed as in Stats.
	Ops, OK, Fail, Info, Missed int64
	Mismatch                    int64
	Backlog                     int     // open loop: due ops waiting for a worker
	TargetRate                  float64 // open loop: the schedule's rate now; 0 closed loop
	// Rate is ops completed per second since the previous Snapshot (or
	// since the start, for the first one).
	Rate float64
}

// Progress lets another goroutine (a CLI progress line) watch a Run. Pass
// the same *Progress as Config.Progress; Snapshot is then safe to call
// concurrently with Run, at any time. A Progress watches one Run at a time.
type Progress struct {
	mu      sync.Mutex
	r       *runner
	lastOps int64
	lastAt  time.Duration
}

func (p *Progress) attach(r *runner) {
	p.mu.Lock()
	p.r = r
	p.lastOps, p.lastAt = 0, 0
	p.mu.Unlock()
}

// Snapshot returns the counts so far. It takes each shard's lock briefly.
func (p *Progress) Snapshot() ProgressSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.r
	if r == nil {
		return ProgressSnapshot{}
	}
	var snap ProgressSnapshot
	for _, s := range r.shards {
		c := s.counts()
		snap.Ops += c.Ops
		snap.OK += c.OK
		snap.Fail += c.Fail
		snap.Info += c.Info
		snap.Mismatch += c.Mismatch
	}
	snap.Missed = r.missed.Load()
	end := r.endAt.Load()
	snap.Running = end == 0
	if snap.Running {
		snap.Elapsed = time.Since(r.start)
	} else {
		snap.Elapsed = time.Duration(end)
	}
	if r.sched != nil {
		snap.Backlog = int(max(r.dueN.Load()-r.taken.Load(), 0))
		if snap.Running {
			snap.TargetRate = r.sched.rate(snap.Elapsed)
		}
	}
	if dt := (snap.Elapsed - p.lastAt).Seconds(); dt > 0 {
		snap.Rate = float64(snap.Ops-p.lastOps) / dt
	}
	if math.IsNaN(snap.Rate) {
		snap.Rate = 0
	}
	p.lastOps, p.lastAt = snap.Ops, snap.Elapsed
	return snap
}
