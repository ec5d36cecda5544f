package nodekit

import (
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
)

func TestOptions(t *testing.T) {
	defaults := []targets.Option{{Name: "d", Default: "1s"}, {Name: "n", Default: "3"}, {Name: "log-level", Default: "info"}}
	p := ParseOptions("sys", defaults, map[string]string{"d": "250"})
	if d, n, l := p.Duration("d"), p.Positive("n"), p.LogLevel("log-level"); d != 250*time.Millisecond || n != 3 || l != "info" || p.Err() != nil {
		t.Fatalf("got %s %d %q %v, want 250ms (bare milliseconds), the default 3, info and no error", d, n, l, p.Err())
	}
	if d := ParseOptions("sys", defaults, map[string]string{"d": "1m30s"}).Duration("d"); d != 90*time.Second {
		t.Fatalf("Go syntax: %s", d)
	}
	p = ParseOptions("sys", defaults, map[string]string{"z": "1", "a": "1", "d": "9223372036854775807", "n": "0", "log-level": "loud"})
	p.Duration("d")
	p.Positive("n")
	p.LogLevel("log-level")
	want := []string{
		`sys: unknown option "a" (known: d, log-level, n)`,
		`sys: unknown option "z" (known: d, log-level, n)`,
		`sys: option d="9223372036854775807": want a positive duration`,
		`sys: option n="0": want a positive integer`,
		`sys: option log-level="loud": want trace, debug, info, warn or error`,
	}
	lines := strings.Split(p.Err().Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("errors:\n%v\nwant %d", p.Err(), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d: %s, want %s...", i, lines[i], w)
		}
	}
	if err := CheckBugs("sys", []string{"b", "x"}, map[string]string{"b": "", "c": ""}); err == nil || err.Error() != `sys: unknown bug switch "x" (known: b, c)` {
		t.Fatalf("CheckBugs: %v", err)
	}
}
