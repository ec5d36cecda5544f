package history

import "testing"

// TestIsMismatch: the one rule the checkers, the workloads' counts and the
// reports share.
func TestIsMismatch(t *testing.T) {
	for _, c := range []struct {
		t    Type
		err  string
		want bool
	}{
		{Fail, "mismatch", true},
		{Fail, " Mismatch\n", true},
		{Fail, "MISMATCH", true},
		{Fail, "mismatch: key k", false},
		{Fail, "cas mismatch", false},
		{Fail, "http 503: mismatch", false},
		{Info, "mismatch", false},
		{OK, "mismatch", false},
	} {
		if got := IsMismatch(c.t, c.err); got != c.want {
			t.Errorf("IsMismatch(%s, %q) = %v, want %v", c.t, c.err, got, c.want)
		}
	}
}
