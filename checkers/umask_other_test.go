//go:build !unix

package checkers

// setUmask does nothing where there is no umask.
func setUmask(m int) int { return m }
