package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestConsolePlain(t *testing.T) {
	var b bytes.Buffer
	c := NewConsole(&b, false)
	c.Write([]byte("setup: starting"))
	if b.Len() != 0 {
		t.Fatalf("a partial line was printed: %q", b.String())
	}
	c.Write([]byte(" 3 nodes\n"))
	for _, s := range []int{1, 2, 6, 7, 12} {
		c.Progress(Progress{Phase: "main", Elapsed: time.Duration(s) * time.Second, Total: 20 * time.Second, Ops: int64(100 * s), Rate: 100, Fault: "kill,pause"})
	}
	c.Done()
	got := b.String()
	if strings.ContainsAny(got, "\r\033") {
		t.Fatalf("control characters in plain output: %q", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	// The log line, then progress at 1 s, 6 s and 12 s (every 5 s).
	if len(lines) != 4 || lines[0] != "setup: starting 3 nodes" || !strings.Contains(lines[2], "6.0s/20s") || !strings.Contains(lines[3], "fault: kill, pause") {
		t.Fatalf("plain output:\n%s", got)
	}
}

func TestConsoleTerminal(t *testing.T) {
	var b bytes.Buffer
	c := NewConsole(&b, true)
	c.Progress(Progress{Phase: "main", Elapsed: 5 * time.Second, Total: 10 * time.Second, Ops: 500})
	c.Write([]byte("local: node n1 killed\n"))
	got := b.String()
	// The status line is cleared, the log line printed, the status redrawn.
	i := strings.Index(got, "\r\033[Klocal: node n1 killed\n")
	if i < 0 || !strings.Contains(got[i:], "[##########----------] main") {
		t.Fatalf("terminal output: %q", got)
	}
	b.Reset()
	c.Progress(Progress{Phase: "recovery"}) // no length: the line goes
	c.Write([]byte("recovery: 3s\n"))
	if got := b.String(); got != "\r\033[Krecovery: 3s\n" {
		t.Fatalf("after the main phase: %q", got)
	}
}
