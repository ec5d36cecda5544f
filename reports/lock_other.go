//go:build !unix

package reports

import "os"

// lockFile does nothing where flock is not available.
func lockFile(*os.File) error { return nil }

// lockBusy is never true where lockFile cannot fail.
func lockBusy(error) bool { return false }

// lockHeld cannot tell where flock is not available.
func lockHeld(string) (held, known bool) { return false, false }
