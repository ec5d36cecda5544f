// Package exitcode holds faultline's stable exit codes (documented in the
// README) and an error type that carries one.
package exitcode

import (
	"errors"
	"fmt"
)

// Exit codes. They are part of faultline's contract with CI scripts.
const (
	Valid      = 0  // every checker valid, every threshold met
	Violation  = 1  // a checker found a violation
	Unknown    = 2  // a checker ran out of budget or the history was inconclusive
	Threshold  = 3  // a performance threshold was not met
	InvalidRun = 4  // the run itself was invalid (workload not driven, too few ops)
	Usage      = 64 // bad usage or an invalid scenario file
	Internal   = 70 // internal or infrastructure error
)

// Error is an error that tells the CLI which exit code to use.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New wraps err with a code.
func New(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Usagef returns a usage error (exit 64).
func Usagef(format string, args ...any) error {
	return &Error{Code: Usage, Err: fmt.Errorf(format, args...)}
}

// Of returns the exit code for err: 0 for nil, the code of an *Error in
// its chain, else def.
func Of(err error, def int) int {
	if err == nil {
		return Valid
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return def
}
