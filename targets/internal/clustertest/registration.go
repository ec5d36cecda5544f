package clustertest

import (
	"slices"
	"strings"
	"testing"

	"github.com/faultline/faultline/targets"
)

// Registration is what a reference key-value system's registration must
// say beyond what they all share, for CheckRegistration.
type Registration struct {
	// Checkers are its default checkers, in order (nil: none of its own).
	Checkers []string
	// Bugs are its bug switches' names, sorted.
	Bugs []string
	// BadOptions maps a text to options that CheckOptions must refuse
	// with an error containing that text.
	BadOptions map[string]map[string]string
}

// CheckRegistration checks what every reference key-value system declares
// for the conductor to look up: one role "node", 3 nodes by default,
// serving clients; the http client, the register workload, peer links;
// the kit's capabilities and CheckOptions; every option documented, with
// a default, and the defaults accepted; and want's checkers, bugs and
// refusals. It returns the system for the checks of its own.
func CheckRegistration(t *testing.T, system string, want Registration) *targets.System {
	t.Helper()
	sys, err := targets.LookupSystem(system)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := sys.Role(""); !ok || r.Name != "node" || r.Nodes != 3 || r.Min != 1 || !r.Serves || len(sys.Roles) != 1 {
		t.Fatalf("roles %+v", sys.Roles)
	}
	if sys.Client != "http" || sys.Workload != "register" || !slices.Equal(sys.Checkers, want.Checkers) || !sys.PeerLinks {
		t.Fatalf("defaults: client %q workload %q checkers %v peer links %v, want http, register, checkers %v and peer links", sys.Client, sys.Workload, sys.Checkers, sys.PeerLinks, want.Checkers)
	}
	if sys.Status == nil || sys.SetClock == nil || sys.LocalRead == nil || sys.CheckOptions == nil {
		t.Fatal("a kit capability or CheckOptions is missing")
	}
	if got := sys.BugNames(); !slices.Equal(got, want.Bugs) {
		t.Fatalf("bugs %v, want %v", got, want.Bugs)
	}
	for _, o := range sys.Options {
		if o.Doc == "" || o.Default == "" {
			t.Errorf("option %+v: want a doc and a default", o)
		}
	}
	if err := sys.CheckOptions(nil); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for text, opts := range want.BadOptions {
		if err := sys.CheckOptions(opts); err == nil || !strings.Contains(err.Error(), text) {
			t.Errorf("CheckOptions(%v) = %v, want an error containing %s", opts, err, text)
		}
	}
	return sys
}
