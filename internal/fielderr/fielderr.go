// Package fielderr is the error a part's parameter check returns about one
// field, so that the scenario loader can point at its line and column.
package fielderr

import "fmt"

// Error is a problem with one field. Field is a dotted path relative to
// the section the parameters were decoded from (e.g. "mix.get").
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Msg)
}

// New returns an *Error for field.
func New(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}
