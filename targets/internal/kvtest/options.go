package kvtest

import (
	"context"
	"strings"
	"testing"

	"github.com/faultline/faultline/targets"
)

// Registered returns the adapter registered as e.Name and checks what
// every key-value adapter declares: get, put and cas; a doc, its error
// mapping, Ping and Status; options username, password (a secret, also
// as password_env) and the TLS options. Its Ping refuses an empty
// address ("NAME: no address") rather than probing some default.
func (e Expect) Registered(t *testing.T) *targets.Adapter {
	t.Helper()
	a, err := targets.LookupAdapter(e.Name)
	if err != nil {
		t.Fatal(err)
	}
	if a.Doc == "" || a.Errors == "" || a.Ping == nil || a.Status == nil || a.LocalRead == nil {
		t.Fatalf("adapter %s declares %+v", e.Name, a)
	}
	for _, op := range []string{"get", "put", "cas"} {
		if !a.Supports(op) {
			t.Errorf("adapter %s does not support %s", e.Name, op)
		}
	}
	if !a.KnowsOption("username") || !a.IsSecret("password") || !a.KnowsOption("password_env") || a.IsSecret("password_env") {
		t.Errorf("adapter %s: options username, password (secret) and password_env: %+v", e.Name, a.Options)
	}
	for _, o := range targets.TLSOptions {
		if !a.KnowsOption(o.Name) {
			t.Errorf("adapter %s has no option %s", e.Name, o.Name)
		}
	}
	if err := a.Ping(context.Background(), "", nil); err == nil || err.Error() != e.Name+": no address" {
		t.Errorf("Ping of no address: %v, want %q", err, e.Name+": no address")
	}
	return a
}

// OptionCase is a set of adapter options that must be refused, and the
// words the refusal must hold.
type OptionCase struct {
	Opts map[string]string
	Want []string
}

// RefusesOptions checks that adapter a's New (given cfg with each case's
// options), Ping and Status all refuse every case with an error that
// holds every word of the case's Want (so it is the options that were
// refused, not a dial to the address, where nothing listens) and never
// secret.
func RefusesOptions(t *testing.T, a *targets.Adapter, cfg targets.ClientConfig, secret string, cases []OptionCase) {
	t.Helper()
	const nowhere = "127.0.0.1:1"
	for _, tc := range cases {
		cfg.Options = tc.Opts
		c, err := a.New(cfg)
		if err == nil {
			c.Close()
		}
		_, serr := a.Status(context.Background(), targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n1", Client: nowhere}}, tc.Opts)
		for what, err := range map[string]error{
			"New":    err,
			"Ping":   a.Ping(context.Background(), nowhere, tc.Opts),
			"Status": serr,
		} {
			for _, w := range tc.Want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%s with options %v: %v, want an error naming %q", what, tc.Opts, err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s with options %v: the error %q shows the password", what, tc.Opts, err)
			}
		}
	}
}
