package docker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// markerPrefix begins every line faultline itself writes into a log.
const markerPrefix = "=== faultline docker: "

// startMarker begins the line written before every start of a container.
const startMarker = markerPrefix + "start "

// containerLog appends one container's standard output and error to a
// file, across every start of the container: after each start, follow
// streams the output written after the last line already saved (Docker
// timestamps every line), so a line is saved once. Its methods are safe for
// concurrent use.
type containerLog struct {
	cli  client.APIClient
	name string // "node n1", "proxy": for the markers
	path string
	ctx  context.Context // the run's log context: cancelling it ends every stream

	followMu sync.Mutex // serialises follow

	mu     sync.Mutex // guards the fields below and writes to f
	f      *os.File
	last   time.Time          // Docker's timestamp of the last line written
	done   chan struct{}      // closed when the current stream ends; nil before the first
	cancel context.CancelFunc // cancels the current stream
	closed bool
}

func openContainerLog(ctx context.Context, cli client.APIClient, name, path string) (*containerLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: open log of %s: %w", name, err)
	}
	return &containerLog{cli: cli, name: name, path: path, ctx: ctx, f: f}, nil
}

// follow writes a start marker and starts streaming the output of the
// container's current run into the file. Call it right after every start.
// The stream of the previous run, if any, is given 2 s to end (it ends
// when that run's process exits) and cut then.
func (l *containerLog) follow(containerID string) {
	l.followMu.Lock()
	defer l.followMu.Unlock()
	l.mu.Lock()
	prev, prevCancel := l.done, l.cancel
	l.mu.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-time.After(2 * time.Second):
			prevCancel()
			<-prev
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	ctx, cancel := context.WithCancel(l.ctx)
	done := make(chan struct{})
	l.done, l.cancel = done, cancel
	l.writeLocked(fmt.Sprintf("%s%s at %s (container %.12s)", startMarker, l.name, time.Now().UTC().Format(time.RFC3339Nano), containerID))
	go l.stream(ctx, containerID, l.last, done)
}

// marker writes one line of faultline's own into the log.
func (l *containerLog) marker(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.writeLocked(markerPrefix + fmt.Sprintf(format, args...))
	}
}

func (l *containerLog) writeLocked(line string) {
	l.f.WriteString(line + "\n")
}

func (l *containerLog) stream(ctx context.Context, containerID string, since time.Time, done chan struct{}) {
	defer close(done)
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := l.cli.ContainerLogs(ctx, containerID, opts)
	if err != nil {
		if ctx.Err() == nil {
			l.marker("cannot follow the output of %s: %v", l.name, err)
		}
		return
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	defer pr.Close() // unblocks StdCopy if the scanner stops early
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ts, msg, _ := strings.Cut(line, " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		l.mu.Lock()
		switch {
		case l.closed:
		case err == nil:
			// Lines up to since were written from the previous run's
			// stream (Docker's since is inclusive); within one stream
			// every line counts, equal timestamps or not.
			if since.IsZero() || t.After(since) {
				if t.After(l.last) {
					l.last = t
				}
				l.writeLocked(msg) // msg is "" for an empty line
			}
		default:
			l.writeLocked(line)
		}
		l.mu.Unlock()
	}
	if ctx.Err() != nil {
		return
	}
	// The stream ended by itself: the process exited. Say how.
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := l.cli.ContainerInspect(ictx, containerID, client.ContainerInspectOptions{})
	if err == nil && res.Container.State != nil && !res.Container.State.Running {
		st := res.Container.State
		how := fmt.Sprintf("exit code %d", st.ExitCode)
		if st.OOMKilled {
			how += ", killed for lack of memory"
		}
		l.marker("%s exited (%s) at %s", l.name, how, time.Now().UTC().Format(time.RFC3339Nano))
	}
}

// wait waits up to d for the current stream to end by itself.
func (l *containerLog) wait(d time.Duration) bool {
	l.mu.Lock()
	done := l.done
	l.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// close gives the current stream up to d to end by itself, cuts it, and
// closes the file. Safe to call more than once.
func (l *containerLog) close(d time.Duration) error {
	l.wait(d)
	l.followMu.Lock()
	defer l.followMu.Unlock()
	l.mu.Lock()
	done, cancel := l.done, l.cancel
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.f.Close()
}

// tail returns up to n lines of the log written since the latest start
// marker, for error messages.
func (l *containerLog) tail(n int) string {
	b, err := os.ReadFile(l.path)
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndex(s, startMarker); i >= 0 {
		s = s[i:]
		if j := strings.IndexByte(s, '\n'); j >= 0 {
			s = s[j+1:]
		} else {
			s = ""
		}
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, "\n")
	if strings.TrimSpace(out) == "" {
		return ""
	}
	return out
}
