package reports

import (
	"bytes"
	"strings"
	"testing"
)

// TestTerminalWriterEscapes: escape sequences in names and keys reach the
// terminal as text (issue 10, item 7).
func TestTerminalWriterEscapes(t *testing.T) {
	var b bytes.Buffer
	w := &TerminalWriter{W: &b}
	in := "scenario \x1b]0;pwned\x07 key \x1b[2J\x9b1m k\xff\r done\n\tnext é\n"
	if n, err := w.Write([]byte(in)); n != len(in) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := b.String()
	for _, bad := range []string{"\x1b", "\x07", "\x9b", "\r", "\xff"} {
		if strings.Contains(got, bad) {
			t.Errorf("%q passed through: %q", bad, got)
		}
	}
	if !strings.Contains(got, `\x1b]0;pwned\x07`) || !strings.Contains(got, "\tnext é\n") {
		t.Errorf("escaped text %q", got)
	}
	if Unwrap(w) != &b {
		t.Errorf("Unwrap")
	}
}

// TestConsoleEscapesLogLines: log lines are escaped, the console's own
// status line is not.
func TestConsoleEscapesLogLines(t *testing.T) {
	var b bytes.Buffer
	c := NewConsole(&b, true)
	c.Progress(Progress{Phase: "main", Total: 10e9, Elapsed: 1e9})
	c.Write([]byte("node \x1b[2J started\n"))
	got := b.String()
	if strings.Contains(got, "\x1b[2J") || !strings.Contains(got, `node \x1b[2J started`) {
		t.Errorf("log line not escaped: %q", got)
	}
	if !strings.Contains(got, "\r\033[K") {
		t.Errorf("the status line's own sequences are gone: %q", got)
	}
}
