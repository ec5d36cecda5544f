//go:build unix

package etcdkv

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/targets/internal/kvtest"
)

// member is one real etcd process started by startCluster.
type member struct {
	*kvtest.Process
	name   string
	client string // host:port of its client API
	peer   string // host:port of its peer API
}

// startCluster starts n etcd members n1..nn on free 127.0.0.1 ports, with
// data and logs in t.TempDir(), waits until each serves a linearizable
// read (Ping), and kills them when the test ends. Without an etcd binary
// the test is skipped (fails under CI=true: testenv.Etcd). Elections are
// fast (heartbeat 50 ms, election timeout 500 ms).
func startCluster(t *testing.T, n int) []*member {
	t.Helper()
	bin := testenv.Etcd(t)
	ports := testenv.FreePorts(t, 2*n)
	dir := t.TempDir()
	token := fmt.Sprintf("faultline-test-%d", time.Now().UnixNano())
	ms := make([]*member, n)
	var initial []string
	for i := range n {
		ms[i] = &member{
			name:   fmt.Sprintf("n%d", i+1),
			client: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			peer:   fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
		}
		initial = append(initial, ms[i].name+"=http://"+ms[i].peer)
	}
	for _, m := range ms {
		m.Process = kvtest.Start(t, "etcd "+m.name, filepath.Join(dir, m.name+".log"), bin,
			"--name="+m.name,
			"--data-dir="+filepath.Join(dir, m.name),
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
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range ms {
		ping := func(ctx context.Context) error { return Ping(ctx, m.client, nil) }
		if err := m.WaitReady(ctx, 50*time.Millisecond, ping); err != nil {
			t.Fatalf("etcd %s at %s did not serve a linearizable read: %v", m.name, m.client, err)
		}
	}
	return ms
}
