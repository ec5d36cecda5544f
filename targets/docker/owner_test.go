package docker

import (
	"strings"
	"testing"
)

// TestOwnerCheck: the owner labels tell a live faultline from one that has
// exited, a pid reused by a later process from the process that had it,
// and say "cannot tell" for processes this one cannot see.
func TestOwnerCheck(t *testing.T) {
	me := Self()
	if me.PID <= 0 || me.Start == 0 || me.Boot == "" || me.Host == "" {
		t.Fatalf("Self() = %+v: every field should be known on Linux", me)
	}
	if got := ownerOf(me.labels()); got != me {
		t.Errorf("labels round trip: %+v, want %+v", got, me)
	}
	reused := me
	reused.Start++
	otherHost := me
	otherHost.Host += "-elsewhere"
	rebooted := me
	rebooted.Boot = "00000000-0000-0000-0000-000000000000"
	otherMachine := rebooted
	otherMachine.Host += "-elsewhere"
	cases := []struct {
		name string
		o    Owner
		want Liveness
		says string
	}{
		{"this process", me, Alive, "still running"},
		{"a process that exited", exitedOwner(t), Dead, "has exited"},
		{"a pid now used by a later process", reused, Dead, "started later"},
		{"the same machine before a reboot", rebooted, Dead, "last booted"},
		{"another container on this kernel", otherHost, Unknown, "cannot see"},
		{"another machine", otherMachine, Unknown, "another machine"},
		{"no owner labels (an older faultline)", ownerOf(map[string]string{LabelRun: "x"}), Unknown, "do not say"},
	}
	for _, c := range cases {
		got, why := c.o.Check()
		if got != c.want || !strings.Contains(why, c.says) {
			t.Errorf("%s: Check() = %v %q, want %v saying %q", c.name, got, why, c.want, c.says)
		}
	}
}

// TestRunLabelsCarryTheOwner: every resource of a run says who made it.
func TestRunLabelsCarryTheOwner(t *testing.T) {
	l := runLabels("r1", LabelNode, "n1")
	if l[LabelRun] != "r1" || l[LabelFaultline] != "1" || l[LabelNode] != "n1" {
		t.Errorf("runLabels = %v", l)
	}
	if got := ownerOf(l); got != Self() {
		t.Errorf("owner of runLabels = %+v, want Self() %+v", got, Self())
	}
}
