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
}

// DefaultMaxBuffer is the default bound, in bytes, on encoded events held in
// memory while the disk catches up.
const DefaultMaxBuffer = 32 << 20

// Recorder stamps events with the time since the run's start and streams
// them, in the order recorded, to a writer as JSON Lines.
//
// Record is safe for concurrent use. The time is taken inside the recorder
// under the same lock that orders the output, so the times in the file are
// non-decreasing. Writing happens on a background goroutine: Record never
// waits for the disk unless more than MaxBuffer bytes are already pending
// (back-pressure that keeps memory bounded). The Recorder does not own the
// writer: Close flushes but does not close it.
type Recorder struct {
	base time.Time
	w    io.Writer

	mu        sync.Mutex
	cond      *sync.Cond // signalled when buf is taken or the writer fails
	buf       []byte     // encoded, not yet written
	maxBuffer int
	closed    bool
	err       error // first write error
	count     int64
	flushReq  chan struct{}
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
	}
	r := &Recorder{
		base:      base,
		w:         w,
		maxBuffer: DefaultMaxBuffer,
		flushReq:  make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	r.cond = sync.NewCond(&r.mu)
	go r.loop()
	return r, nil
}

// SetMaxBuffer changes the back-pressure bound (bytes). Call before use.
func (r *Recorder) SetMaxBuffer(n int) { r.maxBuffer = n }

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
	for len(r.buf) >= r.maxBuffer && r.err == nil && !r.closed {
		r.cond.Wait()
	}
	e.Time = int64(time.Since(r.base))
	if r.closed || r.err != nil {
		r.mu.Unlock()
		return e
	}
	wasEmpty := len(r.buf) == 0
	r.buf = e.AppendJSON(r.buf)
	r.buf = append(r.buf, '\n')
	r.count++
	for _, fn := range r.listeners {
		fn(e)
	}
	r.mu.Unlock()
	if wasEmpty {
		select {
		case r.flushReq <- struct{}{}:
		default:
		}
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
	select {
	case r.flushReq <- struct{}{}:
	default:
	}
	<-r.done
	return r.Err()
}

func (r *Recorder) loop() {
	defer close(r.done)
	var spare []byte
	for {
		<-r.flushReq
		for {
			r.mu.Lock()
			out := r.buf
			r.buf = spare[:0]
			closed := r.closed
			r.cond.Broadcast()
			r.mu.Unlock()
			if len(out) > 0 {
				if _, err := r.w.Write(out); err != nil {
					r.mu.Lock()
					if r.err == nil {
						r.err = err
					}
					r.cond.Broadcast()
					r.mu.Unlock()
				}
			}
			spare = out
			if len(out) == 0 {
				if closed {
					if f, ok := r.w.(interface{ Flush() error }); ok {
						if err := f.Flush(); err != nil {
							r.mu.Lock()
							if r.err == nil {
								r.err = err
							}
							r.mu.Unlock()
						}
					}
					return
				}
				break
			}
		}
	}
}

// ErrNoEvents is returned by readers for an input with no events at all.
var ErrNoEvents = errors.New("history has no events")
