//go:build unix

package rediskv

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvtest"
)

// server is one real redis-server process started by startServer.
type server struct {
	*kvtest.Process
	name string
	addr string // 127.0.0.1:port
	port int
	opts map[string]string // the adapter options it needs (credentials, TLS)
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
// credentials it needs); and kills it when the test ends.
func startServer(t *testing.T, name string, port int, opts map[string]string, args ...string) *server {
	t.Helper()
	bin := redisBinary(t)
	if port == 0 {
		port = testenv.FreePorts(t, 1)[0]
	}
	dir := t.TempDir()
	s := &server{name: name, port: port, addr: fmt.Sprintf("127.0.0.1:%d", port), opts: opts}
	s.Process = kvtest.Start(t, "redis-server "+name, filepath.Join(dir, name+".log"), bin, append([]string{
		"--port", fmt.Sprint(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--repl-diskless-sync-delay", "0", // a replica's first sync at once, not after 5 s
	}, args...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ping := func(ctx context.Context) error { return Ping(ctx, s.addr, s.opts) }
	if err := s.WaitReady(ctx, 20*time.Millisecond, ping); err != nil {
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
