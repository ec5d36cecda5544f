package history

import (
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"
)

// HeaderLine is the first line of a history written by faultline.
type HeaderLine struct {
	Type      Type   `json:"type"` // always Header
	Faultline string `json:"faultline"`
	Scenario  string `json:"scenario"`
	Seed      int64  `json:"seed"`
	Start     string `json:"start"` // RFC 3339, UTC, wall clock at the run's start
	// Shard is "I/N" for shard I of a run split over N generators
	// (faultline run --shard), with the digest of the scenario every shard
	// of the run shares; both empty for a run that is not sharded.
	Shard          string `json:"shard,omitempty"`
	ScenarioDigest string `json:"scenario_digest,omitempty"`
}

// DefaultMaxBuffer is the default bound, in bytes, on encoded events held in
// memory while the disk catches up.
const DefaultMaxBuffer = 32 << 20

// DefaultFlushInterval is the default bound on how long a recorded event may
// stay in the Recorder's memory before it is handed to the writer: a crash
// of the process loses at most this much of the history.
const DefaultFlushInterval = 100 * time.Millisecond

// chunkSize is the capacity of the chunks that hold encoded events until
// they are written: pending events are a list of chunks, never one buffer
// that grows (and is copied) while the writer catches up.
const chunkSize = 64 << 10

// batchSize is how many pending bytes make the background writer write at
// once rather than wait for more events to join the batch.
const batchSize = 256 << 10

// Recorder stamps events with the time since the run's start and streams
// them, in the order recorded, to a writer as JSON Lines.
//
// Record is safe for concurrent use. The time is taken inside the recorder
// under the same lock that orders the output, so the times in the file are
// non-decreasing. Writing happens on a background goroutine: Record never
// waits for the disk unless more than MaxBuffer bytes are already pending
// (back-pressure that keeps memory bounded). The Recorder does not own the
// writer: Close flushes but does not close it.
//
// Durability: every event is handed to the writer (w.Write, then w.Flush
// when w has a Flush() error method, as a *bufio.Writer has) within the
// flush interval (DefaultFlushInterval, 100 ms; see SetFlushInterval) of
// Record returning, so when w is a file a crash of the process (SIGKILL)
// loses at most the last interval of the history: once write(2) returns the
// data is the kernel's (not fsynced: Sync the file for a machine crash).
// The Recorder does its own buffering: it writes a batch once 256 KiB are
// pending or once the oldest pending event has waited half the interval,
// the other half being a margin for a loaded machine and for the write
// itself. The bound holds as long as the writer keeps up (a stalled disk
// delays it; a failed write is reported by Err and Close). Pass the
// *os.File itself: a bufio.Writer in between only adds a copy (it is
// flushed after every batch, so it cannot hold events back either).
type Recorder struct {
	base time.Time
	w    io.Writer

	mu        sync.Mutex
	cond      *sync.Cond // signalled when chunks are taken or the writer fails
	chunks    [][]byte   // encoded, not yet written, in order (see put)
	pending   int        // bytes in chunks
	free      [][]byte   // empty chunks of chunkSize for reuse
	scratch   []byte     // the event being encoded
	oldest    int64      // Time of the first event in chunks
	maxBuffer int
	interval  time.Duration
	closed    bool
	err       error // first write error
	count     int64
	kick      chan struct{} // chunks became non-empty or full, or Close
	done      chan struct{}
	listeners []func(Event)
}

// NewRecorder writes the header (unless h is nil) and returns a recorder
// whose clock starts now.
func NewRecorder(w io.Writer, h *HeaderLine) (*Recorder, error) {
	return NewRecorderAt(w, h, time.Now())
}

// NewRecorderAt is NewRecorder with an explicit base time (which must carry
// a monotonic reading, i.e. come from time.Now).
func NewRecorderAt(w io.Writer, h *HeaderLine, base time.Time) (*Recorder, error) {
	if h != nil {
		hh := *h
		hh.Type = Header
		if hh.Start == "" {
			hh.Start = base.UTC().Format(time.RFC3339Nano)
		}
		b, err := json.Marshal(hh)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return nil, err
		}
		if f, ok := w.(flusher); ok {
			if err := f.Flush(); err != nil {
				return nil, err
			}
		}
	}
	r := &Recorder{
		base:      base,
		w:         w,
		maxBuffer: DefaultMaxBuffer,
		interval:  DefaultFlushInterval,
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	r.cond = sync.NewCond(&r.mu)
	go r.loop()
	return r, nil
}

// SetMaxBuffer changes the back-pressure bound (bytes). Call before use.
func (r *Recorder) SetMaxBuffer(n int) {
	r.mu.Lock()
	r.maxBuffer = n
	r.mu.Unlock()
}

// SetFlushInterval changes the bound on how long a recorded event may wait
// before it is handed to the writer (see Recorder); d <= 0 restores
// DefaultFlushInterval. Call before use.
func (r *Recorder) SetFlushInterval(d time.Duration) {
	if d <= 0 {
		d = DefaultFlushInterval
	}
	r.mu.Lock()
	r.interval = d
	r.mu.Unlock()
}

// FlushInterval returns the bound set by SetFlushInterval.
func (r *Recorder) FlushInterval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.interval
}

// OnRecord registers fn to be called, under the recorder's lock and in
// record order, with every event after it is stamped. fn must be fast and
// must not call the Recorder. Register listeners before recording starts.
func (r *Recorder) OnRecord(fn func(Event)) {
	r.mu.Lock()
	r.listeners = append(r.listeners, fn)
	r.mu.Unlock()
}

// Base returns the run's start time (time zero of every event).
func (r *Recorder) Base() time.Time { return r.base }

// Now returns the current time since the run's start, in the recorder's clock.
func (r *Recorder) Now() time.Duration { return time.Since(r.base) }

// Record stamps e.Time, queues it for writing and returns the stamped event.
// After Close, or after a write error, the event is dropped; Err reports it.
func (r *Recorder) Record(e Event) Event {
	r.mu.Lock()
	for r.pending >= r.maxBuffer && r.err == nil && !r.closed {
		r.cond.Wait()
	}
	e.Time = int64(time.Since(r.base))
	if r.closed || r.err != nil {
		r.mu.Unlock()
		return e
	}
	n := r.pending
	if n == 0 {
		r.oldest = e.Time
	}
	r.scratch = append(e.AppendJSON(r.scratch[:0]), '\n')
	r.put(r.scratch)
	r.count++
	for _, fn := range r.listeners {
		fn(e)
	}
	// Wake the writer when its state changes: a first pending event (it
	// starts waiting for the batch to fill) or a full batch.
	kick := n == 0 || !r.full(n) && r.full(r.pending)
	r.mu.Unlock()
	if kick {
		r.wake()
	}
	return e
}

// Count returns the number of events recorded so far (not counting the header).
func (r *Recorder) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Err returns the first write error, if any.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close writes every pending event and stops the background writer. It does
// not close the underlying writer. It is safe to call more than once.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return r.Err()
	}
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
	r.wake()
	<-r.done
	return r.Err()
}

type flusher interface{ Flush() error }

// full reports whether n pending bytes are a batch to write at once.
// Called with r.mu held.
// put appends an encoded event to the pending chunks: to the last one
// when it has room, else to a new chunk (one of its own when the event is
// larger than chunkSize). Called with r.mu held.
func (r *Recorder) put(b []byte) {
	last := len(r.chunks) - 1
	if last < 0 || cap(r.chunks[last])-len(r.chunks[last]) < len(b) {
		var c []byte
		switch {
		case len(b) > chunkSize:
			c = make([]byte, 0, len(b))
		case len(r.free) > 0:
			c = r.free[len(r.free)-1]
			r.free = r.free[:len(r.free)-1]
		default:
			c = make([]byte, 0, chunkSize)
		}
		r.chunks = append(r.chunks, c)
		last++
	}
	r.chunks[last] = append(r.chunks[last], b...)
	r.pending += len(b)
}

func (r *Recorder) full(n int) bool { return n >= batchSize || n >= r.maxBuffer }

// wake tells the background writer that something changed.
func (r *Recorder) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// setErr records the first write error. Called without r.mu.
func (r *Recorder) setErr(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.cond.Broadcast()
	r.mu.Unlock()
}

// loop is the background writer. It waits for a first pending event, lets
// the batch grow for half the flush interval (less when it fills up
// first), then takes every pending chunk and writes them (and flushes w when
// it can), so each event reaches the writer within the interval.
func (r *Recorder) loop() {
	defer close(r.done)
	fl, _ := r.w.(flusher)
	var spare [][]byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		r.mu.Lock()
		n, closed := r.pending, r.closed
		var wait time.Duration
		if n > 0 && !closed && !r.full(n) {
			wait = r.interval/2 - (time.Since(r.base) - time.Duration(r.oldest))
		}
		r.mu.Unlock()
		switch {
		case n == 0 && closed:
			if fl != nil {
				if err := fl.Flush(); err != nil {
					r.setErr(err)
				}
			}
			return
		case n == 0:
			<-r.kick
			continue
		case wait > 0:
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-r.kick:
				timer.Stop()
			}
			continue
		}
		r.mu.Lock()
		out := r.chunks
		r.chunks, r.pending = spare[:0], 0
		r.cond.Broadcast()
		r.mu.Unlock()
		var err error
		for _, c := range out {
			if _, err = r.w.Write(c); err != nil {
				break
			}
		}
		if err == nil && fl != nil {
			err = fl.Flush()
		}
		if err != nil {
			r.setErr(err)
		}
		// The written chunks go back for reuse, as many as the bound on
		// pending bytes can need.
		r.mu.Lock()
		for i, c := range out {
			if cap(c) == chunkSize && len(r.free) < r.maxBuffer/chunkSize+1 {
				r.free = append(r.free, c[:0])
			}
			out[i] = nil
		}
		r.mu.Unlock()
		spare = out
	}
}

// ErrNoEvents is returned by readers for an input with no events at all.
var ErrNoEvents = errors.New("history has no events")
