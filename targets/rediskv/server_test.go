//go:build unix

package rediskv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/targets"
)

// server is one real redis-server process started by startServer.
type server struct {
	name   string
	addr   string // 127.0.0.1:port
	port   int
	log    string // path of its log
	opts   map[string]string
	cmd    *exec.Cmd
	exited chan struct{}
}

// redisBinary returns the path of redis-server, or skips the test (fails
// it under CI=true) when there is none.
func redisBinary(t *testing.T) string {
	t.Helper()
	return testenv.Command(t, "redis-server", "apt-get install redis-server (Debian's Redis 7.0), or put a redis-server 6+ binary on PATH")
}

// startServer starts redis-server as node name on a free 127.0.0.1 port
// (or port, if not 0), without persistence, with data and log in
// t.TempDir() and the extra arguments args (--replicaof, --requirepass,
// ...); waits until it answers PING (with the adapter options opts, the
// credentials it needs); and kills it (SIGCONT, then SIGKILL) when the
// test ends.
func startServer(t *testing.T, name string, port int, opts map[string]string, args ...string) *server {
	t.Helper()
	bin := redisBinary(t)
	if port == 0 {
		port = testenv.FreePorts(t, 1)[0]
	}
	dir := t.TempDir()
	s := &server{
		name:   name,
		port:   port,
		addr:   fmt.Sprintf("127.0.0.1:%d", port),
		log:    filepath.Join(dir, name+".log"),
		opts:   opts,
		exited: make(chan struct{}),
	}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, append([]string{
		"--port", fmt.Sprint(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--repl-diskless-sync-delay", "0", // a replica's first sync at once, not after 5 s
	}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start redis-server %s: %v", name, err)
	}
	go func() {
		s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGCONT)
		s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			if b, err := os.ReadFile(s.log); err == nil {
				t.Logf("redis-server %s log (last 2000 bytes):\n%s", name, tail(b, 2000))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		t.Fatalf("redis-server %s at %s did not answer PING: %v", name, s.addr, err)
	}
	return s
}

// startReplica starts redis-server as node name, a replica of primary,
// and waits until its link to the primary is up.
func startReplica(t *testing.T, name string, primary *server, args ...string) *server {
	t.Helper()
	s := startServer(t, name, 0, primary.opts, append([]string{"--replicaof", "127.0.0.1", fmt.Sprint(primary.port)}, args...)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.status()
		if err == nil && st.Counters["master_link_status"] == "up" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s: link to %s not up: %+v %v", name, primary.name, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// status reads the server's status through the adapter's Status.
func (s *server) status() (targets.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return Status(ctx, targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: s.name, Client: s.addr}}, s.opts)
}

// waitReady polls Ping until it answers nil, the process exits, or ctx
// ends.
func (s *server) waitReady(ctx context.Context) error {
	var last error
	for {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		last = Ping(tctx, s.addr, s.opts)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited (%v); last ping: %v", s.cmd.ProcessState, last)
		case <-ctx.Done():
			return fmt.Errorf("%v; last ping: %v", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pause freezes the server (SIGSTOP) until resume or the test's end.
func (s *server) pause(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", s.name, err)
	}
}

// resume thaws the server (SIGCONT).
func (s *server) resume(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", s.name, err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
