// Package kvadapter holds what the key-value client adapters (etcdkv,
// rediskv) share and no other package needs: the shaping of their error
// texts (Shorten, Redact), the options every one of them takes (the
// credentials and TLS: ParseOptions, Conn) and the key of the cached
// connection their Ping and Status use (Conn.Key).
package kvadapter

import (
	"strings"

	"github.com/faultline/faultline/targets"
)

// Shorten cuts s to at most n bytes (on a rune boundary), marking a cut
// with "...".
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !isRuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Redact replaces every occurrence of secret in text with
// targets.Redacted; an empty secret changes nothing. The clients' own
// error texts do not hold a password (a refused login names the user at
// most); this is the belt to those braces.
func Redact(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, targets.Redacted)
}
