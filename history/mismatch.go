package history

import "strings"

// Mismatch is the error text of a cas whose comparison failed: the
// register did not hold the cas's "from" value. Such a cas completes as
// type fail with this error (what the reference systems answer with 409
// {"error": "mismatch"}): it did not take effect, and it is a normal
// answer, not an error.
const Mismatch = "mismatch"

// IsMismatch reports whether a completion of type t with error errText
// is a cas whose comparison failed. This is the one rule that
// the checkers, the workloads' counts and the reports share: the text is
// exactly "mismatch" once leading and trailing white space is trimmed,
// compared without regard to case ("mismatch", " Mismatch\n", "MISMATCH";
// not "mismatch: key k", not "cas mismatch"), on a completion of type
// fail: an ok or info completion is never a mismatch, whatever its error
// says.
func IsMismatch(t Type, errText string) bool {
	return t == Fail && strings.EqualFold(strings.TrimSpace(errText), Mismatch)
}
