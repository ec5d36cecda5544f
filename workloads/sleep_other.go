//go:build !linux

package workloads

import "time"

func shortSleep(d time.Duration) { time.Sleep(d) }

const haveShortSleep = false
