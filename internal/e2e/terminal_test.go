package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTerminalGetsNoEscapes: a history whose scenario name and keys hold
// escape sequences (retitle the terminal, clear the screen) is checked and
// reported with the sequences shown as text (issue 10, item 7); so is a
// scenario file's name in an error.
func TestTerminalGetsNoEscapes(t *testing.T) {
	dir := t.TempDir()
	hist := filepath.Join(dir, "h.jsonl")
	lines := []string{
		`{"type":"header","faultline":"dev","scenario":"evil\u001b]0;pwned\u0007\u001b[2J","seed":1,"start":"2026-12-01T00:00:00Z"}`,
		`{"type":"invoke","process":0,"time":1,"f":"put","key":"k\u001b[2J","value":1}`,
		`{"type":"ok","process":0,"time":2,"f":"put","key":"k\u001b[2J","value":1}`,
		`{"type":"invoke","process":1,"time":3,"f":"get","key":"k\u001b[2J"}`,
		`{"type":"ok","process":1,"time":4,"f":"get","key":"k\u001b[2J","value":2}`,
	}
	os.WriteFile(hist, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	code, out := faultline(t, time.Minute, "check", hist, "--no-artifacts")
	if code != 1 {
		t.Errorf("exit %d, want 1 (the read saw a value nobody wrote)\n%s", code, out)
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("escape sequences reached the terminal: %q", out)
	}
	if !strings.Contains(out, `\x1b`) {
		t.Errorf("the escaped key or name is not shown as text: %q", out)
	}
	bad := filepath.Join(dir, "b\x1b[2J.yaml")
	os.WriteFile(bad, []byte("system: \"no\x1b[2Jsuch\"\n"), 0o644)
	code, out = faultline(t, time.Minute, "run", bad, "--out", filepath.Join(dir, "run"))
	if code != 64 || strings.Contains(out, "\x1b") {
		t.Errorf("exit %d, want 64 without escapes: %q", code, out)
	}
}
