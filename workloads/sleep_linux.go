package workloads

import (
	"syscall"
	"time"
)

// shortSleep sleeps about d (d < 1 ms) with nanosleep(2). Go's own timers
// wake up through the network poller, whose timeout has millisecond
// resolution on Linux, so a 100 µs time.Sleep lasts about 1 ms; nanosleep
// lasts d plus the kernel's timer slack (about 100 µs on a busy VM). The
// calling goroutine holds its thread meanwhile, which only the pacer does.
func shortSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // EINTR just ends the sleep early
}

const haveShortSleep = true
