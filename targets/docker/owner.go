package docker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Owner labels: which faultline process made a run's containers, networks
// and volumes, so that Clean can tell a live run from a dead one. A pid
// alone would not do: pids are reused, so the process's start time is
// recorded with it, and the kernel's boot id and the host name say which
// machine's processes they are.
const (
	// LabelOwnerHost holds the host name of the machine faultline ran on.
	LabelOwnerHost = "faultline.owner.host"
	// LabelOwnerBoot holds that machine's boot id
	// (/proc/sys/kernel/random/boot_id), where known.
	LabelOwnerBoot = "faultline.owner.boot"
	// LabelOwnerPID holds faultline's process id.
	LabelOwnerPID = "faultline.owner.pid"
	// LabelOwnerStart holds the start time of that process, in clock ticks
	// since boot (/proc/PID/stat, field 22), where known.
	LabelOwnerStart = "faultline.owner.start"
)

// Owner identifies the faultline process that made a run's resources.
type Owner struct {
	Host  string // host name
	Boot  string // boot id; "" where unknown
	PID   int    // process id; 0 when the resources do not say
	Start uint64 // process start time, clock ticks since boot; 0 where unknown
}

// String describes the owner for messages: "faultline pid N on host H".
func (o Owner) String() string {
	if o.PID <= 0 {
		return "an unknown faultline"
	}
	return fmt.Sprintf("faultline pid %d on host %s", o.PID, o.Host)
}

var (
	selfOnce sync.Once
	self     Owner
)

// Self returns the owner of the resources this process makes.
func Self() Owner {
	selfOnce.Do(func() {
		self.Host, _ = os.Hostname()
		self.Boot = bootID()
		self.PID = os.Getpid()
		self.Start, _ = procStart(self.PID)
	})
	return self
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procStart returns the start time of process pid in clock ticks since
// boot. An error wrapping os.ErrNotExist means there is no such process.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold anything;
	// the fields after its closing parenthesis start with field 3.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	const startField = 22 - 3
	if len(f) <= startField {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name, want more than %d", pid, len(f), startField)
	}
	return strconv.ParseUint(f[startField], 10, 64)
}

// labels returns o as owner labels.
func (o Owner) labels() map[string]string {
	m := map[string]string{LabelOwnerHost: o.Host, LabelOwnerPID: strconv.Itoa(o.PID)}
	if o.Boot != "" {
		m[LabelOwnerBoot] = o.Boot
	}
	if o.Start != 0 {
		m[LabelOwnerStart] = strconv.FormatUint(o.Start, 10)
	}
	return m
}

// ownerOf reads the owner labels; PID is 0 when there are none.
func ownerOf(labels map[string]string) Owner {
	o := Owner{Host: labels[LabelOwnerHost], Boot: labels[LabelOwnerBoot]}
	o.PID, _ = strconv.Atoi(labels[LabelOwnerPID])
	o.Start, _ = strconv.ParseUint(labels[LabelOwnerStart], 10, 64)
	return o
}

// Liveness is what Clean can tell about a run's faultline process.
type Liveness int

// Liveness values, in the order Clean combines them: a run with any
// resource whose owner is Alive is alive; else with any Unknown, unknown.
const (
	Dead    Liveness = iota // it has exited (or its pid now names a later process, or the machine rebooted)
	Unknown                 // this process cannot tell (another machine or container, or no owner labels)
	Alive                   // it is running
)

// String names the liveness: "dead", "unknown" or "alive".
func (l Liveness) String() string {
	switch l {
	case Dead:
		return "dead"
	case Alive:
		return "alive"
	}
	return "unknown"
}

// Check tells whether o is still running, as seen from this process, and
// says why.
func (o Owner) Check() (Liveness, string) {
	me := Self()
	switch {
	case o.PID <= 0:
		return Unknown, "its resources do not say which faultline made them (made by an older faultline?)"
	case o.Boot != "" && me.Boot != "" && o.Boot != me.Boot:
		if o.Host == me.Host {
			return Dead, fmt.Sprintf("%s ran before this machine last booted", o)
		}
		return Unknown, fmt.Sprintf("%s ran on another machine, whose processes this one cannot see", o)
	case o.Host != me.Host:
		return Unknown, fmt.Sprintf("%s ran in another container or host, whose processes this one cannot see", o)
	}
	start, err := procStart(o.PID)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Dead, fmt.Sprintf("%s has exited", o)
	case err != nil:
		return Unknown, fmt.Sprintf("cannot tell whether %s runs: %v", o, err)
	case o.Start != 0 && start != o.Start:
		return Dead, fmt.Sprintf("%s has exited (its pid now names a process started later)", o)
	}
	return Alive, fmt.Sprintf("%s is still running", o)
}
