//go:build unix

package etcdkv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testenv"
)

// member is one real etcd process started by startCluster.
type member struct {
	name   string
	client string // host:port of its client API
	peer   string // host:port of its peer API
	dir    string
	log    string // path of its log
	cmd    *exec.Cmd
	exited chan struct{}
}

// etcdBinary returns the path of the etcd binary, or skips the test (fails
// it under CI=true) when there is none.
func etcdBinary(t *testing.T) string {
	t.Helper()
	return testenv.Etcd(t)
}

// startCluster starts n etcd members n1..nn on free 127.0.0.1 ports, with
// data and logs in t.TempDir(), waits until each serves a linearizable
// read (Ping), and kills them (SIGCONT, then SIGKILL) when the test ends.
// Elections are fast (heartbeat 50 ms, election timeout 500 ms).
func startCluster(t *testing.T, n int) []*member {
	t.Helper()
	bin := etcdBinary(t)
	ports := testenv.FreePorts(t, 2*n)
	dir := t.TempDir()
	token := fmt.Sprintf("faultline-test-%d", time.Now().UnixNano())
	ms := make([]*member, n)
	var initial []string
	for i := range n {
		m := &member{
			name:   fmt.Sprintf("n%d", i+1),
			client: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			peer:   fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			exited: make(chan struct{}),
		}
		m.dir = filepath.Join(dir, m.name)
		m.log = filepath.Join(dir, m.name+".log")
		ms[i] = m
		initial = append(initial, m.name+"=http://"+m.peer)
	}
	for _, m := range ms {
		logf, err := os.Create(m.log)
		if err != nil {
			t.Fatal(err)
		}
		m.cmd = exec.Command(bin,
			"--name="+m.name,
			"--data-dir="+m.dir,
			"--listen-client-urls=http://"+m.client,
			"--advertise-client-urls=http://"+m.client,
			"--listen-peer-urls=http://"+m.peer,
			"--initial-advertise-peer-urls=http://"+m.peer,
			"--initial-cluster="+strings.Join(initial, ","),
			"--initial-cluster-state=new",
			"--initial-cluster-token="+token,
			"--heartbeat-interval=50",
			"--election-timeout=500",
			"--logger=zap",
			"--log-outputs=stderr",
		)
		m.cmd.Stdout, m.cmd.Stderr = logf, logf
		if err := m.cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("start etcd %s: %v", m.name, err)
		}
		go func() {
			m.cmd.Wait()
			logf.Close()
			close(m.exited)
		}()
		t.Cleanup(func() {
			m.cmd.Process.Signal(syscall.SIGCONT)
			m.cmd.Process.Kill()
			<-m.exited
			if t.Failed() {
				if b, err := os.ReadFile(m.log); err == nil {
					t.Logf("etcd %s log (last 3000 bytes):\n%s", m.name, tail(b, 3000))
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range ms {
		if err := m.waitReady(ctx); err != nil {
			t.Fatalf("etcd %s at %s did not serve a linearizable read: %v", m.name, m.client, err)
		}
	}
	return ms
}

// waitReady polls Ping until it answers nil, the process exits, or ctx
// ends.
func (m *member) waitReady(ctx context.Context) error {
	var last error
	for {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		last = Ping(tctx, m.client, nil)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-m.exited:
			return fmt.Errorf("exited (%v); last ping: %v", m.cmd.ProcessState, last)
		case <-ctx.Done():
			return fmt.Errorf("%v; last ping: %v", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pause freezes the member (SIGSTOP) until resume or the test's end.
func (m *member) pause(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", m.name, err)
	}
}

// resume thaws the member (SIGCONT).
func (m *member) resume(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", m.name, err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
