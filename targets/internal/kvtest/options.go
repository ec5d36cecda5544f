package kvtest

import (
	"context"
	"strings"
	"testing"

	"github.com/faultline/faultline/targets"
)

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
