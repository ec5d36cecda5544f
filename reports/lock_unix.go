//go:build unix

package reports

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on f; it is released
// when f is closed or the process dies.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// lockBusy reports whether err, from lockFile, says another open file
// holds a lock on the file.
func lockBusy(err error) bool { return errors.Is(err, syscall.EWOULDBLOCK) }

// lockHeld reports whether some process holds an exclusive flock on the
// file at path (a run's .lock while the run goes on). It opens the file
// read-only and takes a shared lock for an instant, which writes nothing;
// known is false when that cannot tell (no such file, or another error).
func lockHeld(path string) (held, known bool) {
	f, err := os.Open(path)
	if err != nil {
		return false, false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	switch {
	case err == nil:
		return false, true // released by the Close
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, true
	}
	return false, false
}
