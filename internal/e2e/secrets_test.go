package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testenv"
)

// TestSecretsStayOut plants a password (and a wrong one) and greps every
// file of the run directory for them: a secret given as password_env, or
// in the scenario itself, reaches neither the history nor results.json,
// report.html, the saved scenario or a log; a run refused by the
// preflight for a wrong password does not write it either.
func TestSecretsStayOut(t *testing.T) {
	redis := testenv.Command(t, "redis-server", "apt-get install redis-server")
	const secret, wrong = "s3cret-Planted-7f1b", "wr0ng-Planted-99ac"
	port := testenv.FreePorts(t, 1)[0]
	srv := exec.Command(redis, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--requirepass", secret)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := t.TempDir()
	scenario := func(name, options string) string {
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`runtime: external
client: {adapter: redis, options: {%s}}
cluster:
  nodes: [{id: n1, role: primary, client: "%s"}]
duration: 3s
warmup: 5s
recovery: 1s
min_ops: 10
workload: {keys: 4, rate: 100, concurrency: 4}
faults:
  schedule: timeline
  timeline: [{at: 1s, for: 1s, fault: latency, latency: 20ms, peers: false, clients: true}]
`, options, addr)), 0o644)
		return p
	}
	grep := func(run string) {
		t.Helper()
		filepath.WalkDir(run, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, s := range []string{secret, wrong} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds the planted password %q", p, s)
				}
			}
			return nil
		})
	}

	t.Setenv("FL_TEST_REDIS_PW", secret)
	run := filepath.Join(dir, "env")
	if code, out := faultline(t, 2*time.Minute, "run", scenario("env", "password_env: FL_TEST_REDIS_PW"), "--out", run, "--cleanup", "--quiet"); code != 0 {
		t.Fatalf("password_env: exit %d, want 0\n%s", code, out)
	}
	grep(run)

	run = filepath.Join(dir, "inline")
	if code, out := faultline(t, 2*time.Minute, "run", scenario("inline", "password: "+secret), "--out", run, "--quiet"); code != 0 {
		t.Fatalf("password in the scenario: exit %d, want 0\n%s", code, out)
	}
	grep(run)
	if saved, _ := os.ReadFile(filepath.Join(run, "scenario.yaml")); !strings.Contains(string(saved), "[redacted]") {
		t.Errorf("the saved scenario does not show the password as [redacted]:\n%s", saved)
	}

	t.Setenv("FL_TEST_REDIS_PW", wrong)
	run = filepath.Join(dir, "wrong")
	code, out := faultline(t, 2*time.Minute, "run", scenario("wrong", "password_env: FL_TEST_REDIS_PW"), "--out", run, "--quiet")
	if code != 70 || !strings.Contains(out, "preflight: node n1") {
		t.Errorf("wrong password: exit %d, want 70 from the preflight naming n1\n%s", code, out)
	}
	if strings.Contains(out, wrong) || strings.Contains(out, secret) {
		t.Errorf("the terminal output holds a password:\n%s", out)
	}
	grep(run)
}
