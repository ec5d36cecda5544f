package retrysvc

import (
	"context"
	"strings"
	"testing"

	"github.com/faultline/faultline/targets"
)

// What the conductor looks up: two roles, clients to frontends only, the
// backend's service time settable, peer links proxied, the http workload;
// every option documented with a default, the defaults accepted.
func TestRegistration(t *testing.T) {
	sys, err := targets.LookupSystem(Name)
	if err != nil {
		t.Fatal(err)
	}
	fe, ok1 := sys.Role(RoleFrontend)
	be, ok2 := sys.Role(RoleBackend)
	if !ok1 || !ok2 || len(sys.Roles) != 2 || !fe.Serves || be.Serves || fe.ServiceTime || !be.ServiceTime || fe.Nodes != 1 || be.Nodes != 1 {
		t.Fatalf("roles %+v", sys.Roles)
	}
	if !sys.Serving(RoleFrontend) || sys.Serving(RoleBackend) {
		t.Error("clients would be sent to backends")
	}
	if ids := sys.NodeIDs(map[string]int{RoleFrontend: 1, RoleBackend: 2}); len(ids) != 3 || ids[0].ID != "frontend1" || ids[2].ID != "backend2" || ids[2].Role != RoleBackend {
		t.Errorf("node ids %+v", ids)
	}
	if sys.Client != "http" || sys.Workload != "http" || !sys.PeerLinks || sys.Status == nil || sys.SetServiceTime == nil || sys.SetClock != nil || sys.LocalRead != nil {
		t.Errorf("capabilities: %+v", sys)
	}
	for _, o := range sys.Options {
		if o.Doc == "" || o.Default == "" {
			t.Errorf("option %+v: want a doc and a default", o)
		}
	}
	if err := sys.CheckOptions(nil); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
}

// Bad option values are refused, each naming the option and what it
// wants; values that contradict each other are refused naming both.
func TestOptions(t *testing.T) {
	for opts, says := range map[string]string{
		"policy=retry":                   `policy="retry": want none, naive, backoff, breaker or budget`,
		"retries=21":                     `retries="21": want a whole number from 0 to 20`,
		"retries=-1":                     `retries="-1"`,
		"attempt-timeout=0":              `attempt-timeout="0": want a positive duration`,
		"attempt-timeout=2s":             "attempt-timeout=2s is longer than deadline=1s",
		"deadline=2m,attempt-timeout=1s": "deadline=2m0s: at most 1m0s",
		"backoff-base=300ms":             "backoff-cap=200ms is below backoff-base=300ms",
		"budget-ratio=1.5":               `budget-ratio="1.5": want a number from 0 to 1`,
		"budget-ratio=NaN":               `budget-ratio="NaN"`,
		"budget-reserve=0":               `budget-reserve="0": want a whole number from 1`,
		"breaker-probes=0":               `breaker-probes="0"`,
		"capacity=0":                     `capacity="0": want a whole number from 1 to 1024`,
		"queue=-1":                       `queue="-1": want a whole number from 0 to 65536`,
		"service-time=2m":                "service-time=2m0s: at most 1m0s",
		"service-time=slow":              `service-time="slow"`,
		"speed=1":                        `unknown option "speed"`,
		"policy=x,capacity=0":            `capacity="0"`,
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(opts, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		err := CheckOptions(m)
		if err == nil || !strings.Contains(err.Error(), says) || !strings.HasPrefix(err.Error(), "retrysvc: ") {
			t.Errorf("%s: %v, want an error saying %s", opts, err, says)
		}
	}
	for _, ok := range []map[string]string{
		{"service-time": "0"}, {"queue": "0"}, {"retries": "0"}, {"budget-ratio": "0"},
		{"attempt-timeout": "1s"}, {"policy": "budget", "budget-ratio": "1"}, {"service-time": "60"},
	} {
		if err := CheckOptions(ok); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}

// A frontend without a backend peer does not start, and says what to give it.
func TestFrontendNeedsABackend(t *testing.T) {
	err := targets.RunNode(context.Background(), targets.NodeConfig{System: Name, ID: "frontend1", Role: RoleFrontend,
		Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Peers: map[string]string{"frontend2": "127.0.0.1:1"}, PeerRoles: map[string]string{"frontend2": RoleFrontend}})
	if err == nil || !strings.Contains(err.Error(), "has no backend") || !strings.Contains(err.Error(), "--peer-role ID=backend") {
		t.Errorf("err %v", err)
	}
}
