package etcdkv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/faultline/faultline/targets"
)

// Ping returns nil once the member at addr (host:port, its own client
// address) serves a linearizable read: one Range of a single key, count
// only, bounded by ctx. opts are the adapter's options, checked as New
// checks them (the read mode does not change the probe). It does not wait
// for a connection: a refused dial is an error at once. Safe for
// concurrent use; it shares the connection to addr with Status.
func Ping(ctx context.Context, addr string, opts map[string]string) error {
	if _, err := parseOptions(opts); err != nil {
		return err
	}
	ac, err := admin.acquire(addr)
	if err != nil {
		return err
	}
	defer admin.release(ac)
	kv := etcdserverpb.NewKVClient(ac.cli.ActiveConnection())
	_, err = kv.Range(ctx, &etcdserverpb.RangeRequest{Key: []byte("faultline/ping"), CountOnly: true}, grpc.WaitForReady(false))
	if err != nil {
		return fmt.Errorf("%s at %s", describe(err), addr)
	}
	return nil
}

// Status reads member n's status on its own client address (n.Client,
// never a proxy) with the Maintenance API's Status call, bounded by ctx:
//
//   - ID: the member's name (the node id), from MemberList;
//   - Role: "leader" if the member is the leader it names, "learner" if
//     it is a learner, else "follower" (also a candidate, or a member that
//     knows no leader);
//   - Term: its Raft term; Leader: the leader's name, "" when it knows
//     none (a name not in MemberList is the id in hex);
//   - CommitIndex: its Raft (committed) index; AppliedIdx: its applied
//     index (etcd 3.4 and later report it);
//   - Raw: the whole StatusResponse as JSON.
//
// opts are checked as New checks them. It shares one gRPC connection per
// address with Ping (admin.go's pool: no new connection per call; closed
// after 10 s idle) and does not wait for a connection. Safe for concurrent
// use: the observer polls every node every 250 ms.
func Status(ctx context.Context, n targets.NodeInfo, opts map[string]string) (targets.Status, error) {
	if _, err := parseOptions(opts); err != nil {
		return targets.Status{}, err
	}
	if n.Client == "" {
		return targets.Status{}, fmt.Errorf("etcd: node %s has no client address", n.ID)
	}
	ac, err := admin.acquire(n.Client)
	if err != nil {
		return targets.Status{}, err
	}
	defer admin.release(ac)
	m := etcdserverpb.NewMaintenanceClient(ac.cli.ActiveConnection())
	resp, err := m.Status(ctx, &etcdserverpb.StatusRequest{}, grpc.WaitForReady(false))
	if err != nil {
		return targets.Status{}, fmt.Errorf("%s: status of %s at %s", describe(err), n.ID, n.Client)
	}
	if resp.Header == nil {
		return targets.Status{}, fmt.Errorf("etcd: status of %s at %s: an answer without a header", n.ID, n.Client)
	}
	raw, err := json.Marshal(resp)
	if err != nil {
		return targets.Status{}, fmt.Errorf("etcd: status of %s: %v", n.ID, err)
	}
	self := resp.Header.MemberId
	st := targets.Status{
		ID:          ac.names.name(ctx, self),
		Role:        "follower",
		Term:        resp.RaftTerm,
		Leader:      ac.names.name(ctx, resp.Leader),
		CommitIndex: resp.RaftIndex,
		AppliedIdx:  resp.RaftAppliedIndex,
		Raw:         raw,
	}
	switch {
	case resp.Leader != 0 && resp.Leader == self:
		st.Role = "leader"
	case resp.IsLearner:
		st.Role = "learner"
	}
	return st, nil
}

// adminIdle is how long an admin connection may stay unused before it is
// closed.
const adminIdle = 10 * time.Second

// admin is the process's pool of admin connections, one per address.
var admin = &adminPool{conns: map[string]*adminConn{}, idle: adminIdle}

// adminPool caches one etcd client per member address for Ping and
// Status, and closes each after idle without use. Safe for concurrent
// use.
type adminPool struct {
	mu    sync.Mutex
	conns map[string]*adminConn
	idle  time.Duration // how long a connection may stay unused
}

// adminConn is one cached client. users and last are guarded by the
// pool's mu.
type adminConn struct {
	addr  string
	cli   *clientv3.Client
	names *memberNames
	timer *time.Timer
	users int
	last  time.Time
}

// acquire returns the connection to addr, making it if there is none; the
// caller must release it.
func (p *adminPool) acquire(addr string) (*adminConn, error) {
	if addr == "" {
		return nil, errors.New("etcd: no address")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ac := p.conns[addr]; ac != nil {
		ac.users++
		return ac, nil
	}
	cli, err := newEtcdClient(addr, &connTracker{})
	if err != nil {
		return nil, err
	}
	ac := &adminConn{addr: addr, cli: cli, users: 1}
	ac.names = &memberNames{list: func(ctx context.Context) ([]*etcdserverpb.Member, error) {
		resp, err := etcdserverpb.NewClusterClient(cli.ActiveConnection()).MemberList(ctx, &etcdserverpb.MemberListRequest{}, grpc.WaitForReady(false))
		if err != nil {
			return nil, err
		}
		return resp.Members, nil
	}}
	ac.timer = time.AfterFunc(p.idle, func() { p.expire(ac) })
	p.conns[addr] = ac
	return ac, nil
}

// release ends one use of ac.
func (p *adminPool) release(ac *adminConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ac.users--
	ac.last = time.Now()
	ac.timer.Reset(p.idle)
}

// expire closes ac if it is unused and has been idle for p.idle.
func (p *adminPool) expire(ac *adminConn) {
	p.mu.Lock()
	if ac.users > 0 || p.conns[ac.addr] != ac {
		p.mu.Unlock()
		return // in use (release arms the timer again), or gone
	}
	if left := p.idle - time.Since(ac.last); left > 0 {
		ac.timer.Reset(left) // used since the timer was armed
		p.mu.Unlock()
		return
	}
	delete(p.conns, ac.addr)
	p.mu.Unlock()
	ac.cli.Close()
}

// setIdle changes how long connections may stay unused, from their next
// use on, and returns the previous setting (for tests).
func (p *adminPool) setIdle(d time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.idle
	p.idle = d
	return old
}

// has reports whether a connection to addr is cached (for tests).
func (p *adminPool) has(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[addr] != nil
}
