// Package testenv is how a test says what it needs from the machine (a
// command, a file, Docker): when the need is missing, the test fails under
// CI=true, where .ci/run installs everything the suite needs, and skips
// elsewhere, saying what is missing and how to get it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/faultline/faultline/internal/freeport"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Need fails t under CI=true and skips it elsewhere when err is not nil:
// what names the need, and hint says how to meet it.
func Need(t testing.TB, what string, err error, hint string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("this test needs %s (%v): %s", what, err, hint)
	if InCI() {
		t.Fatal(msg + " (CI=true: a missing need is a failure)")
	}
	t.Skip(msg + " (under CI=true this fails)")
}

// Command returns the path of the named command, as Need says when it is
// not on PATH.
func Command(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, name, err, hint)
	return p
}

// File is Need for a file that must exist.
func File(t testing.TB, path, hint string) {
	t.Helper()
	_, err := os.Stat(path)
	Need(t, path, err, hint)
}

// Etcd returns the path of the etcd binary (Debian's etcd-server, 3.4),
// as Need says when there is none.
func Etcd(t testing.TB) string {
	t.Helper()
	return Command(t, "etcd", "apt-get install etcd-server (Debian's etcd 3.4), or put an etcd 3.4+ binary on PATH")
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1,
// outside the kernel's ephemeral range when it can (freeport.Take), for
// servers a test starts itself.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	p, err := freeport.Take(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
