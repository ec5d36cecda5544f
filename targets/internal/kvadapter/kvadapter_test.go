package kvadapter

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShorten(t *testing.T) {
	if got := Shorten("abc", 3); got != "abc" {
		t.Errorf("Shorten of a short text: %q", got)
	}
	if got := Shorten("abcdef", 3); got != "abc..." {
		t.Errorf("Shorten(abcdef, 3) = %q", got)
	}
	long := strings.Repeat("é", 300) // 2 bytes each: a cut at 201 falls inside one
	got := Shorten(long, 201)
	if len(got) > 204 || !strings.HasSuffix(got, "...") || !utf8.ValidString(got) {
		t.Errorf("Shorten of %d bytes to 201: %d bytes, %q", len(long), len(got), got)
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("bad pw hunter2 here, hunter2", "hunter2"); got != "bad pw [redacted] here, [redacted]" {
		t.Errorf("Redact: %q", got)
	}
	if got := Redact("x", ""); got != "x" {
		t.Errorf("Redact of no secret: %q", got)
	}
}
