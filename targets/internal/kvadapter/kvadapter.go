// Package kvadapter holds what the key-value client adapters (etcdkv,
// rediskv) share and no other package needs: the shaping of their error
// texts (Shorten, Redact), the options every one of them takes (the
// credentials and TLS: ParseOptions, Conn), the reading of a stored value
// (StoredValue), and the cache of the clients their Ping and Status use
// (Admin, keyed by Conn.Key).
package kvadapter

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/idlecache"
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

// The options every key-value adapter takes besides its own, with the
// TLS options (targets.TLSOptions): declare them in the adapter's Options
// (with its own docs), and read them with ParseOptions.
const (
	// OptionUsername is the user to authenticate as.
	OptionUsername = "username"
	// OptionPassword is the user's password, a secret: or password_env,
	// the name of an environment variable that holds it (targets.Secret).
	OptionPassword = "password"
)

// Conn is what the shared options say about a connection.
type Conn struct {
	Username string
	// Password is resolved: the value of option password, or of the
	// environment variable password_env names.
	Password string
	// TLS is targets.TLSConfig of the options: nil for no TLS.
	TLS *tls.Config

	tlsOpts []string // the TLS options as given, name and value, by name: part of Key
}

// ParseOptions checks opts, an adapter's options from a scenario, in
// name order: every name against the options the adapter declares
// (targets.CheckOptionName); every option but the shared ones (username,
// password, password_env, the TLS options) goes to own, which checks and
// keeps it. It returns the shared ones resolved: the password
// (targets.Secret) and the TLS configuration (targets.TLSConfig). Its
// errors, own's included, start "client adapter NAME: " and name options,
// never a secret's value.
func ParseOptions(adapter string, declared []targets.Option, opts map[string]string, own func(name, value string) error) (Conn, error) {
	var c Conn
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if err := targets.CheckOptionName(adapter, declared, k); err != nil {
			return Conn{}, err
		}
		v := opts[k]
		switch {
		case k == OptionUsername:
			c.Username = v
		case k == OptionPassword, k == OptionPassword+targets.EnvSuffix:
		case isTLSOption(k):
			c.tlsOpts = append(c.tlsOpts, k, v)
		default:
			if err := own(k, v); err != nil {
				return Conn{}, fmt.Errorf("client adapter %s: %w", adapter, err)
			}
		}
	}
	var err error
	if c.Password, err = targets.Secret(opts, OptionPassword); err != nil {
		return Conn{}, fmt.Errorf("client adapter %s: %w", adapter, err)
	}
	if c.TLS, err = targets.TLSConfig(opts); err != nil {
		return Conn{}, fmt.Errorf("client adapter %s: %w", adapter, err)
	}
	return c, nil
}

// isTLSOption reports whether name is one of targets.TLSOptions.
func isTLSOption(name string) bool {
	return slices.ContainsFunc(targets.TLSOptions, func(o targets.Option) bool { return o.Name == name })
}

// Key returns the cache key (idlecache.Key) of a client of addr with
// these settings: addr, and a digest of the user, the resolved password,
// extra (whatever else makes two clients of one address differ, a
// database number: as many parts on every call of one adapter) and the
// TLS options as given.
func (c Conn) Key(addr string, extra ...string) string {
	parts := append([]string{c.Username, c.Password}, extra...)
	return idlecache.Key(addr, append(parts, c.tlsOpts...)...)
}

// StoredValue is the outcome of a get that found stored under its key:
// ok with the value as canonical JSON (history.CanonicalJSON), as the
// adapters write it; a value that is not JSON (written by something else)
// is fail, "ADAPTER: get: the value is not JSON: ...": the read says
// nothing about the register, and has no effect. An absent key is the
// caller's: it reads history.Null.
func StoredValue(adapter string, stored []byte) history.Outcome {
	v, err := LocalValue(stored)
	if err != nil {
		return history.Outcome{Type: history.Fail, Error: fmt.Sprintf("%s: get: %v", adapter, err)}
	}
	return history.Outcome{Type: history.OK, Value: v}
}

// LocalValue is a stored value (the bytes an adapter wrote: canonical JSON
// text) as JSON, for an adapter's LocalRead; an error says it is not JSON
// (not a value faultline wrote).
func LocalValue(stored []byte) (json.RawMessage, error) {
	v, err := history.CanonicalJSON(stored)
	if err != nil {
		return nil, fmt.Errorf("the value is not JSON: %.60q", stored)
	}
	return json.RawMessage(v), nil
}
