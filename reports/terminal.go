package reports

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// TerminalWriter passes text to W with every control character other than
// newline and tab shown as \xNN (and bytes that are not UTF-8 likewise), so
// that names and keys from scenario files and histories cannot move the
// cursor, clear the screen or retitle a terminal. Its Write reports
// len(p) when W took the escaped text.
type TerminalWriter struct{ W io.Writer }

func (t *TerminalWriter) Write(p []byte) (int, error) {
	if _, err := t.W.Write(EscapeControls(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap returns the writer under a TerminalWriter (w itself otherwise),
// for code that writes its own control sequences (the live status line).
func Unwrap(w io.Writer) io.Writer {
	if t, ok := w.(*TerminalWriter); ok {
		return t.W
	}
	return w
}

// EscapeControls returns b with control characters (C0 but newline and
// tab, DEL, C1) and invalid UTF-8 bytes written as \xNN. It returns b itself
// when there is nothing to escape.
func EscapeControls(b []byte) []byte {
	clean := true
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if isControl(r, n) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if isControl(r, n) {
			for _, c := range b[i : i+n] {
				out = fmt.Appendf(out, `\x%02x`, c)
			}
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

func isControl(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n <= 1:
		return true
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r <= 0x9f:
		return true
	}
	return false
}
