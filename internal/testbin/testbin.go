// Package testbin builds the faultline binary for tests that run real nodes
// (child processes or containers). The binary is built once per test
// process, statically (CGO_ENABLED=0), into a temporary directory.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	once sync.Once
	path string
	err  error
	dir  string
)

// Build returns the path of a freshly built faultline binary. Call Cleanup
// from TestMain after the tests to remove it.
func Build() (string, error) {
	once.Do(func() {
		var root string
		root, err = moduleRoot()
		if err != nil {
			return
		}
		dir, err = os.MkdirTemp("", "faultline-testbin-")
		if err != nil {
			return
		}
		path = filepath.Join(dir, "faultline")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/faultline")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("building faultline for the tests: %v\n%s", e, out)
		}
	})
	return path, err
}

// Cleanup removes the built binary.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// ModuleRoot returns the directory of go.mod.
func ModuleRoot() (string, error) { return moduleRoot() }

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the faultline module")
	}
	return filepath.Dir(mod), nil
}
