package kvadapter

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
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

var declared = append([]targets.Option{
	{Name: "mode"},
	{Name: OptionUsername},
	{Name: OptionPassword, Secret: true},
}, targets.TLSOptions...)

// TestParseOptions: the shared options are read and resolved, the
// adapter's own go to own, unknown names and own's refusals are errors
// naming the adapter and the option, never the password.
func TestParseOptions(t *testing.T) {
	t.Setenv("FAULTLINE_TEST_KV_PW", "from-env")
	var own []string
	keep := func(k, v string) error {
		if v == "bad" {
			return fmt.Errorf("option %s=%q: want good", k, v)
		}
		own = append(own, k+"="+v)
		return nil
	}
	c, err := ParseOptions("kv", declared, map[string]string{"mode": "x", "username": "u", "password_env": "FAULTLINE_TEST_KV_PW", "tls_insecure_skip_verify": "true"}, keep)
	if err != nil || c.Username != "u" || c.Password != "from-env" || c.TLS == nil || !c.TLS.InsecureSkipVerify || len(own) != 1 || own[0] != "mode=x" {
		t.Fatalf("ParseOptions: %+v %v, own %v", c, err, own)
	}
	if c, err := ParseOptions("kv", declared, nil, keep); err != nil || c.Username != "" || c.Password != "" || c.TLS != nil {
		t.Errorf("no options: %+v %v", c, err)
	}
	const secret = "do-not-show-me"
	for _, tc := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"colour": "red"}, `client adapter kv has no option "colour"`},
		{map[string]string{"mode": "bad", "password": secret}, `client adapter kv: option mode="bad": want good`},
		{map[string]string{"password": secret, "password_env": "V"}, "client adapter kv: option password and password_env are both set"},
		{map[string]string{"password": secret, "tls": "maybe"}, `client adapter kv: option tls: "maybe" is not true or false`},
	} {
		_, err := ParseOptions("kv", declared, tc.opts, keep)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("options %v: %v, want an error starting %q", tc.opts, err, tc.want)
		}
	}
}

// TestKey: clients of one address with other credentials, other TLS
// options or other extras have other keys; the same settings the same.
func TestKey(t *testing.T) {
	parse := func(opts map[string]string) Conn {
		t.Helper()
		c, err := ParseOptions("kv", declared, opts, func(string, string) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	plain := parse(nil)
	keys := map[string]string{}
	for what, k := range map[string]string{
		"plain":          plain.Key("h:1", "0"),
		"another db":     plain.Key("h:1", "1"),
		"another host":   plain.Key("h:2", "0"),
		"a user":         parse(map[string]string{"username": "u", "password": "p"}).Key("h:1", "0"),
		"another pw":     parse(map[string]string{"username": "u", "password": "q"}).Key("h:1", "0"),
		"tls":            parse(map[string]string{"tls": "true"}).Key("h:1", "0"),
		"tls, no verify": parse(map[string]string{"tls": "true", "tls_insecure_skip_verify": "true"}).Key("h:1", "0"),
	} {
		if other, ok := keys[k]; ok {
			t.Errorf("%s and %s share a key", what, other)
		}
		keys[k] = what
	}
	if parse(map[string]string{"mode": "x"}).Key("h:1", "0") != plain.Key("h:1", "0") {
		t.Error("an option that is not a connection setting changed the key")
	}
}

func TestStoredValue(t *testing.T) {
	for stored, want := range map[string]string{`"a"`: `"a"`, ` 1.0 `: `1`, `{"b":1, "a":2}`: `{"a":2,"b":1}`} {
		if out := StoredValue("kv", []byte(stored)); out.Type != history.OK || string(out.Value) != want {
			t.Errorf("stored %q: %+v, want ok %s", stored, out, want)
		}
	}
	for _, stored := range []string{``, `{x`, `1e999`, `1 2`} {
		if out := StoredValue("kv", []byte(stored)); out.Type != history.Fail || !strings.HasPrefix(out.Error, "kv: get: the value is not JSON") {
			t.Errorf("stored %q: %+v, want fail, not JSON", stored, out)
		}
	}
}
