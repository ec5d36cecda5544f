package etcdkv

import (
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// Ping returns nil once the member at addr (host:port, its own client
// address) serves a linearizable read: one Range of a single key, count
// only, bounded by ctx, authenticated with the credentials in opts
// (checked as New checks them; the read mode does not change the probe).
// It does not wait for a connection: a refused dial is an error at once.
// Safe for concurrent use; it shares the connection to addr (with these
// credentials) with Status.
func Ping(ctx context.Context, addr string, opts map[string]string) error {
	cfg, err := parseOptions(opts)
	if err != nil {
		return err
	}
	return useAdmin(addr, cfg, func(ac *adminConn) error {
		conn := ac.cli.ActiveConnection()
		ctx, err := ac.auth.with(ctx, authenticateOn(conn))
		if err != nil {
			return fmt.Errorf("%s: authenticating as %s at %s", kvadapter.Redact(describe(err), cfg.Password), cfg.Username, addr)
		}
		kv := etcdserverpb.NewKVClient(conn)
		_, err = kv.Range(ctx, &etcdserverpb.RangeRequest{Key: []byte("faultline/ping"), CountOnly: true}, grpc.WaitForReady(false))
		if err != nil {
			ac.auth.failed(err)
			return fmt.Errorf("%s at %s", kvadapter.Redact(describe(err), cfg.Password), addr)
		}
		return nil
	})
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
// opts are checked as New checks them, and their credentials
// authenticate the calls. It shares one gRPC connection per address and
// credentials with Ping (an idlecache: no new connection per call;
// closed after 10 s idle) and does not wait for a connection. Safe for
// concurrent use: the observer polls every node every 250 ms.
func Status(ctx context.Context, n targets.NodeInfo, opts map[string]string) (targets.Status, error) {
	cfg, err := parseOptions(opts)
	if err != nil {
		return targets.Status{}, err
	}
	if n.Client == "" {
		return targets.Status{}, fmt.Errorf("etcd: node %s has no client address", n.ID)
	}
	var st targets.Status
	err = useAdmin(n.Client, cfg, func(ac *adminConn) error {
		conn := ac.cli.ActiveConnection()
		ctx, err := ac.auth.with(ctx, authenticateOn(conn))
		if err != nil {
			return fmt.Errorf("%s: authenticating as %s for the status of %s at %s", kvadapter.Redact(describe(err), cfg.Password), cfg.Username, n.ID, n.Client)
		}
		m := etcdserverpb.NewMaintenanceClient(conn)
		resp, err := m.Status(ctx, &etcdserverpb.StatusRequest{}, grpc.WaitForReady(false))
		if err != nil {
			ac.auth.failed(err)
			return fmt.Errorf("%s: status of %s at %s", kvadapter.Redact(describe(err), cfg.Password), n.ID, n.Client)
		}
		if resp.Header == nil {
			return fmt.Errorf("etcd: status of %s at %s: an answer without a header", n.ID, n.Client)
		}
		raw, err := json.Marshal(resp)
		if err != nil {
			return fmt.Errorf("etcd: status of %s: %v", n.ID, err)
		}
		self := resp.Header.MemberId
		st = targets.Status{
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
		return nil
	})
	return st, err
}

// admin is the process's cache of admin connections, one per address,
// credentials and TLS settings.
var admin = kvadapter.NewAdmin(AdapterName, func(ac *adminConn) { ac.cli.Close() })

// adminConn is one cached client, with its member names and its token.
type adminConn struct {
	cli   *clientv3.Client
	names *memberNames
	auth  *tokenAuth
}

// useAdmin calls f with the admin connection to addr with cfg's
// credentials and TLS settings (cfg.Key), making it if there is none
// (admin.Use). It keeps the connection whatever f's error: gRPC connects
// again by itself.
func useAdmin(addr string, cfg config, f func(*adminConn) error) error {
	return admin.Use(addr, cfg.Key(addr), func() (*adminConn, error) {
		cli, err := newEtcdClient(addr, &connTracker{}, cfg.TLS)
		if err != nil {
			return nil, err
		}
		ac := &adminConn{cli: cli, auth: newTokenAuth(cfg.Username, cfg.Password)}
		ac.names = &memberNames{list: func(ctx context.Context) ([]*etcdserverpb.Member, error) {
			resp, err := etcdserverpb.NewClusterClient(cli.ActiveConnection()).MemberList(ctx, &etcdserverpb.MemberListRequest{}, grpc.WaitForReady(false))
			if err != nil {
				return nil, err
			}
			return resp.Members, nil
		}}
		return ac, nil
	}, f, nil)
}

// LocalRead reads key from member n's own state on its own client address
// (n.Client, never a proxy) with a serializable Range, which the member
// answers from its local store without a quorum or a leader: what the
// convergence checker compares across members. An absent key is JSON
// null; a stored value that is not JSON is an error. opts and the
// connection are Status's. Safe for concurrent use.
func LocalRead(ctx context.Context, n targets.NodeInfo, key string, opts map[string]string) (json.RawMessage, error) {
	cfg, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	if n.Client == "" {
		return nil, fmt.Errorf("etcd: node %s has no client address", n.ID)
	}
	var out json.RawMessage
	err = useAdmin(n.Client, cfg, func(ac *adminConn) error {
		conn := ac.cli.ActiveConnection()
		ctx, err := ac.auth.with(ctx, authenticateOn(conn))
		if err != nil {
			return fmt.Errorf("%s: authenticating as %s to read %s at %s", kvadapter.Redact(describe(err), cfg.Password), cfg.Username, n.ID, n.Client)
		}
		resp, err := etcdserverpb.NewKVClient(conn).Range(ctx, &etcdserverpb.RangeRequest{Key: []byte(key), Serializable: true}, grpc.WaitForReady(false))
		if err != nil {
			ac.auth.failed(err)
			return fmt.Errorf("%s: local read of %s at %s", kvadapter.Redact(describe(err), cfg.Password), n.ID, n.Client)
		}
		if len(resp.Kvs) == 0 {
			out = json.RawMessage("null")
			return nil
		}
		out, err = kvadapter.LocalValue(resp.Kvs[0].Value)
		return err
	})
	return out, err
}
