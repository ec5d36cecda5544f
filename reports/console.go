package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress is a snapshot of a run in progress.
type Progress struct {
	Phase   string
	Elapsed time.Duration // in the main phase
	Total   time.Duration // the main phase's length; 0 for phases without one
	Ops     int64         // completed operations
	Errors  int64         // fail + info
	Rate    float64       // completed ops/s over the last second
	Fault   string        // the faults in force, comma-separated, if any
}

// Console prints a run's log lines and its progress. On a terminal (tty)
// the progress is one status line, redrawn in place, that log lines scroll
// above; elsewhere (CI logs, pipes) every line is plain and the progress is
// a line every 5 s. Its methods are safe for concurrent use.
type Console struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	status  string
	partial []byte
	last    time.Duration
}

// NewConsole returns a console writing to w; tty says whether w is a
// terminal that understands "\r" and "\033[K".
func NewConsole(w io.Writer, tty bool) *Console {
	return &Console{w: w, tty: tty}
}

// Write prints log output, whole lines at a time (a partial line waits for
// its end).
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	i := bytes.LastIndexByte(c.partial, '\n')
	if i < 0 {
		return len(p), nil
	}
	lines := c.partial[:i+1]
	if c.tty && c.status != "" {
		fmt.Fprint(c.w, "\r\033[K")
	}
	c.w.Write(EscapeControls(lines))
	if c.tty && c.status != "" {
		fmt.Fprint(c.w, c.status)
	}
	c.partial = append(c.partial[:0], c.partial[i+1:]...)
	return len(p), nil
}

// Progress shows a progress snapshot. A snapshot with no Total (a phase
// without a set length began) clears the status line.
func (c *Console) Progress(p Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Total == 0 { // a phase without a set length began: no status line
		if c.tty && c.status != "" {
			fmt.Fprint(c.w, "\r\033[K")
		}
		c.status = ""
		return
	}
	line := fmt.Sprintf("%s %5.1fs/%s  %d ops  %.0f ops/s  %d errors", p.Phase, p.Elapsed.Seconds(), p.Total, p.Ops, p.Rate, p.Errors)
	if p.Fault != "" {
		line += "  fault: " + strings.ReplaceAll(p.Fault, ",", ", ")
	}
	if c.tty {
		bar := progressBar(p.Elapsed, p.Total, 20)
		c.status = "\r\033[K" + bar + " " + line
		fmt.Fprint(c.w, c.status)
		return
	}
	if c.last == 0 || p.Elapsed-c.last >= 5*time.Second {
		c.last = p.Elapsed
		fmt.Fprintln(c.w, "  "+line)
	}
}

// Done clears the status line.
func (c *Console) Done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.status != "" {
		fmt.Fprint(c.w, "\r\033[K")
	}
	c.status = ""
}

func progressBar(done, total time.Duration, width int) string {
	if total <= 0 {
		return ""
	}
	n := int(float64(width) * float64(done) / float64(total))
	if n > width {
		n = width
	}
	if n < 0 {
		n = 0
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}
