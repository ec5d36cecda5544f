//go:build unix

package checkers

import "syscall"

// setUmask sets the process's umask and returns the previous one.
func setUmask(m int) int { return syscall.Umask(m) }
