package targets

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Credentials of client adapters. An adapter Option with Secret set holds
// a credential (a password, a token). A scenario gives it either as NAME
// (the value in the file) or, better, as NAME_env: the name of an
// environment variable that holds it, read when a client is built. A
// secret's value never reaches the history, results.json, report.html or
// a log: the scenario saved into the run directory shows it as Redacted,
// and adapters must not put it in error texts.

// EnvSuffix ends the name of the option that names the environment
// variable holding a secret option's value (password_env for password).
const EnvSuffix = "_env"

// Redacted is what a saved scenario shows for a secret option's value.
const Redacted = "[redacted]"

// IsSecret reports whether option name (or name without EnvSuffix) is a
// secret option of the adapter.
func (a *Adapter) IsSecret(name string) bool {
	base := strings.TrimSuffix(name, EnvSuffix)
	for _, o := range a.Options {
		if o.Name == base && o.Secret {
			return name == base
		}
	}
	return false
}

// KnowsOption reports whether the adapter accepts option name: one of its
// Options, or NAME_env for a secret one.
func (a *Adapter) KnowsOption(name string) bool {
	return CheckOptionName(a.Name, a.Options, name) == nil
}

// Secret returns the value of secret option name from opts: opts[name],
// or the environment variable opts[name+"_env"] names ("" when neither is
// set). Both set, or a named variable that is unset or empty, is an error
// that names the option and the variable, never the value.
func Secret(opts map[string]string, name string) (string, error) {
	v, inline := opts[name]
	env, named := opts[name+EnvSuffix]
	switch {
	case inline && named:
		return "", fmt.Errorf("option %s and %s%s are both set: give one (better %s%s, the name of an environment variable)", name, name, EnvSuffix, name, EnvSuffix)
	case named:
		if env == "" {
			return "", fmt.Errorf("option %s%s is empty: name the environment variable that holds the %s", name, EnvSuffix, name)
		}
		val, ok := os.LookupEnv(env)
		if !ok || val == "" {
			return "", fmt.Errorf("option %s%s names environment variable %s, which is not set (or empty): export it before the run", name, EnvSuffix, env)
		}
		return val, nil
	}
	return v, nil
}

// TLSOptions are the options an adapter that speaks TLS declares (add
// them to its Options): tls turns it on; tls_ca, tls_cert and tls_key are
// PEM files; tls_server_name overrides the name checked;
// tls_insecure_skip_verify turns verification off (tests only).
var TLSOptions = []Option{
	{Name: "tls", Default: "false", Doc: "true: connect with TLS (also implied by any tls_* option)"},
	{Name: "tls_ca", Doc: "PEM file of the CA that signed the servers' certificates (default: the system's roots)"},
	{Name: "tls_cert", Doc: "PEM file of the client certificate (with tls_key)"},
	{Name: "tls_key", Doc: "PEM file of the client certificate's key"},
	{Name: "tls_server_name", Doc: "the name to verify in the servers' certificates (default: the host dialled)"},
	{Name: "tls_insecure_skip_verify", Default: "false", Doc: "true: do not verify the servers' certificates (never against a real cluster)"},
}

// TLSConfig returns the TLS configuration TLSOptions in opts describe, or
// nil when they ask for none.
func TLSConfig(opts map[string]string) (*tls.Config, error) {
	on := false
	for k, v := range opts {
		if k == "tls" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("option tls: %q is not true or false", v)
			}
			on = on || b
		} else if strings.HasPrefix(k, "tls_") && v != "" {
			on = true
		}
	}
	if !on {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts["tls_server_name"]}
	if v := opts["tls_insecure_skip_verify"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("option tls_insecure_skip_verify: %q is not true or false", v)
		}
		cfg.InsecureSkipVerify = b
	}
	if ca := opts["tls_ca"]; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("option tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("option tls_ca: %s holds no PEM certificate", ca)
		}
		cfg.RootCAs = pool
	}
	cert, key := opts["tls_cert"], opts["tls_key"]
	if (cert == "") != (key == "") {
		return nil, errors.New("options tls_cert and tls_key go together: give both or neither")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("options tls_cert, tls_key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
