// Package etcdkv is a targets.Client for etcd, through the official Go
// client go.etcd.io/etcd/client/v3 v3.6.16 (gRPC, the v3 API). It is
// tested against Debian's etcd 3.4.23 (apt-get install etcd-server), the
// oldest server it is meant for; the v3 API it uses (Range, Put,
// DeleteRange, Txn, MemberList, Status) is the same from 3.4 to 3.6.
//
// Operations (history.Op), each one request to the client's home member:
//
//	get  Key            Range(Key), linearizable unless read=serializable
//	put  Key Value      Put(Key, V); a null V deletes the key
//	cas  Key {from,to}  Txn If(Value(Key) == from) Then(Put(Key, to))
//
// Values are JSON: the etcd value is the value's canonical JSON text
// (history.CanonicalJSON: compact, numbers by value), and a get returns it
// as read; an absent key reads as history.Null. Null and absence are the
// same register value: a put of null deletes the key, a cas to null
// deletes it, and a cas from null compares CreateRevision(Key) == 0 (the
// key is absent), so the adapter never stores the text null. A cas whose
// comparison fails (the key absent, or holding another value) is fail with
// error "mismatch" (history.Mismatch).
//
// Every completion that got an answer names the member that answered
// (Outcome.Node): the answer's header MemberId, mapped to the member's
// name through MemberList (the names are the node ids: a scenario starts
// etcd with --name {{.ID}}), or the id in hex (as etcd prints member ids)
// if no member of that id has a name; never the home node by assumption.
// Outcome.Term is the header's RaftTerm. A failure without an answer has
// neither.
//
// Outcome mapping (Jepsen semantics; see classify):
//
//   - an answer: ok; a cas whose comparison failed: fail, "mismatch";
//   - a get that failed in any way: fail (a read has no effect);
//   - a write whose request was certainly never sent, because no
//     connection to the member was ready at any moment of the operation
//     (dial refused or timed out, or the member never answered gRPC's
//     handshake): fail, "... (not sent: ...)";
//   - a write the server refused in a way that certainly left the store
//     unchanged ("no leader", "too many requests", "database space
//     exceeded", "raft proposal dropped", invalid arguments, permission
//     errors; see definiteTexts and definiteCodes): fail;
//   - any other failed write (the operation's timeout, etcd's "request
//     timed out" family, a connection cut once the request may have been
//     sent, "leader changed", "server stopped", anything else): info.
//
// Two properties of the client make that mapping sound. Its unary retries
// are off (one attempt per call, Config.MaxUnaryRetries = 1): clientv3's
// retry interceptor sends a call again, writes included, when it ended
// DeadlineExceeded or Canceled while the caller's context was still live
// (a server-side deadline, a stream reset), so one put could take effect
// twice, the second time after another client's write. And gRPC's
// wait-for-ready (clientv3's default) makes a refused dial look like the
// operation's deadline passing, not like a dial error: whether a request
// was sent is therefore not read from the error but from the connections
// themselves (connTracker): gRPC sends a request only once a connection
// has read the server's handshake.
//
// Writes carry clientv3.WithRequireLeader: a member that knows no leader
// refuses them at once ("no leader", fail) rather than proposing and
// timing out (info). Reads do not: a serializable read is answered by a
// member with no leader, from its local state, which is the point of the
// option.
//
// A client talks only to its home member's address (which may be a
// Toxiproxy proxy): it never syncs endpoints, so a linearizable get is
// served (through the leader's read index) by the home member, and a
// serializable get by the home member alone, stale if that member is cut
// off.
//
// Credentials: options username and password (or password_env, naming an
// environment variable: targets.Secret) authenticate as an etcd user, in
// the first operation that needs a token, not in New (see tokenAuth); the
// TLS options (targets.TLSOptions) turn TLS on (clientv3.Config.TLS),
// with client certificates for etcd's certificate auth. A password never
// appears in an error text. With TLS, the "not sent" rule (connTracker)
// counts a connection as ready from the TLS handshake's first byte, before
// gRPC's own handshake: a member that completes TLS but never answers
// gRPC makes a write info rather than fail, on the safe side.
//
// Ping and Status (the adapter's readiness probe and status reader) share
// one cached gRPC connection per address and credentials, closed after it
// has been idle for 10 s (admin.go).
//
// The package registers itself as the client adapter "etcd" (see
// targets.RegisterAdapter); New builds a client for direct use.
package etcdkv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// AdapterName is the name under which the package registers its adapter.
const AdapterName = "etcd"

// The operations a client performs.
const (
	fGet = "get"
	fPut = "put"
	fCAS = "cas"
)

// The adapter's options.
const (
	// OptionRead chooses how gets read.
	OptionRead = "read"
	// OptionUsername and OptionPassword (a secret: or password_env) are
	// the etcd user to authenticate as.
	OptionUsername = kvadapter.OptionUsername
	OptionPassword = kvadapter.OptionPassword
)

// ReadMode is how a get reads: the value of option "read".
type ReadMode string

// Read modes.
const (
	// Linearizable reads go through the leader's read index (etcd's
	// default): the member answers only once it has caught up with a
	// quorum. The default.
	Linearizable ReadMode = "linearizable"
	// Serializable reads (clientv3.WithSerializable) are answered by the
	// member from its local state, without a quorum: stale if the member
	// is behind or cut off.
	Serializable ReadMode = "serializable"
)

// DefaultTimeout bounds one operation when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

func init() {
	targets.RegisterAdapter(targets.Adapter{
		Name: AdapterName,
		Doc: "etcd's v3 API through the official Go client (go.etcd.io/etcd/client/v3 v3.6.16; tested against etcd 3.4.23): " +
			"get (Range), put (Put), cas (Txn If(Value == from) Then(Put to)); each worker talks only to its home member",
		Ops: []string{fGet, fPut, fCAS},
		Errors: "an answer is ok; a cas whose comparison failed is fail (mismatch); a get that failed is fail; " +
			"a write that was certainly never sent (no connection to the member was ready during the op: dial refused, no handshake) is fail; " +
			"a write the server refused without effect (no leader, too many requests, database space exceeded, raft proposal dropped, " +
			"invalid argument, permission denied) is fail; any other failed write (timeout, request timed out, a connection cut once the " +
			"request may have been sent, leader changed, server stopped) is info",
		Options:   options,
		New:       newAdapterClient,
		Ping:      Ping,
		Status:    Status,
		LocalRead: LocalRead,
	})
}

// options are the settings the adapter declares.
var options = append([]targets.Option{
	{Name: OptionRead, Default: string(Linearizable), Doc: "how gets read: linearizable (through the leader's read index) or serializable " +
		"(the home member answers from its local state, stale when it is cut off)"},
	{Name: OptionUsername, Doc: "the etcd user to authenticate as (with password); none: no auth, or TLS certificate auth"},
	{Name: OptionPassword, Secret: true, Doc: "the etcd user's password; better password_env: the name of an environment variable that holds it"},
}, targets.TLSOptions...)

// config is the adapter's options from a scenario, checked.
type config struct {
	read ReadMode
	kvadapter.Conn
}

// parseOptions checks the adapter's options from a scenario (read:
// linearizable or serializable; username and password, both or neither;
// the TLS options) and resolves the password. Its errors name options,
// never a secret's value.
func parseOptions(opts map[string]string) (config, error) {
	cfg := config{read: Linearizable}
	var err error
	cfg.Conn, err = kvadapter.ParseOptions(AdapterName, options, opts, func(k, v string) error {
		// k is read, the one option of etcd's own.
		switch ReadMode(v) {
		case Linearizable, Serializable:
			cfg.read = ReadMode(v)
			return nil
		}
		return fmt.Errorf("option %s=%q: want %s or %s", k, v, Linearizable, Serializable)
	})
	if err != nil {
		return config{}, err
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return config{}, fmt.Errorf("client adapter %s: options %s and %s (or %s%s) go together: etcd authenticates a user with a password",
			AdapterName, OptionUsername, OptionPassword, OptionPassword, targets.EnvSuffix)
	}
	return cfg, nil
}

// newAdapterClient is the adapter's New: a Client for the address of
// cfg.Home in cfg.Nodes, each op bounded by cfg.Timeout, reading as
// cfg.Options say. cfg.Token is not sent: etcd does not speak faultline's
// node protocol.
func newAdapterClient(cfg targets.ClientConfig) (targets.Client, error) {
	c, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	addr, ok := cfg.Nodes[cfg.Home]
	switch {
	case !ok:
		return nil, fmt.Errorf("etcd: home node %q is not among the nodes %v", cfg.Home, slices.Sorted(maps.Keys(cfg.Nodes)))
	case addr == "":
		return nil, fmt.Errorf("etcd: node %s has no address", cfg.Home)
	}
	return New(addr, Options{Timeout: cfg.Timeout, Read: c.read, Username: c.Username, Password: c.Password, TLS: c.TLS})
}

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// Timeout bounds one Do call (default DefaultTimeout), the lookup of
	// the answering member's name included.
	Timeout time.Duration
	// Read is how gets read (default Linearizable).
	Read ReadMode
	// Username and Password, if set (both), are the etcd user the
	// client authenticates as, in its first operation (see tokenAuth).
	Username string
	Password string
	// TLS, if set, is used for the connection (targets.TLSConfig).
	TLS *tls.Config
}

// Client sends every operation to one etcd member, at one address.
//
// A Client is safe for concurrent use, but a worker should have its own
// (one per process keeps every process sequential, and its connection its
// own). It owns one gRPC connection, opened lazily and re-opened after it
// breaks (backoff from 100 ms to 1 s); Close releases it.
type Client struct {
	addr  string
	opts  Options
	cli   *clientv3.Client
	conns *connTracker
	names *memberNames
	auth  *tokenAuth // nil: no credentials

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ targets.Client = (*Client)(nil)

// New returns a client for the member at addr (host:port, maybe a proxy).
// It returns at once: gRPC connects in the background, an operation waits
// for the connection within its timeout, and the first one authenticates
// (with opts.Username and Password, if set).
func New(addr string, opts Options) (*Client, error) {
	if addr == "" {
		return nil, errors.New("etcd: no address")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	switch opts.Read {
	case "":
		opts.Read = Linearizable
	case Linearizable, Serializable:
	default:
		return nil, fmt.Errorf("etcd: read mode %q: want %s or %s", opts.Read, Linearizable, Serializable)
	}
	if (opts.Username == "") != (opts.Password == "") {
		return nil, errors.New("etcd: a username needs a password, and a password a username")
	}
	t := &connTracker{}
	cli, err := newEtcdClient(addr, t, opts.TLS)
	if err != nil {
		return nil, err
	}
	c := &Client{addr: addr, opts: opts, cli: cli, conns: t, auth: newTokenAuth(opts.Username, opts.Password)}
	c.names = &memberNames{list: c.memberList}
	return c, nil
}

// newEtcdClient returns a clientv3 client for the one endpoint addr, quiet,
// with one attempt per call, dialing through t, with TLS if tlsCfg is not
// nil. It has no credentials (tokenAuth authenticates), so it does not
// connect before it returns.
func newEtcdClient(addr string, t *connTracker, tlsCfg *tls.Config) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:       []string{addr},
		TLS:             tlsCfg,
		Logger:          zap.NewNop(),
		MaxUnaryRetries: 1, // one attempt: a write is never sent twice
		DialOptions: []grpc.DialOption{
			grpc.WithContextDialer(t.dial),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff: backoff.Config{
					BaseDelay:  100 * time.Millisecond,
					Multiplier: 1.6,
					Jitter:     0.2,
					MaxDelay:   time.Second,
				},
				MinConnectTimeout: 20 * time.Second,
			}),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: client for %s: %w", addr, err)
	}
	return cli, nil
}

// Addr returns the address the client dials.
func (c *Client) Addr() string { return c.addr }

// Close releases the client's connection. Safe to call more than once;
// Do after Close fails, not sent.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.closeOnce.Do(func() {
		if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// request is an Op checked and encoded for etcd.
type request struct {
	f        string
	key      string
	value    string // put: canonical JSON of the value; "null" deletes
	from, to string // cas: canonical JSON
}

// encode checks op and canonicalizes its values.
func encode(op history.Op) (request, error) {
	kv, err := targets.DecodeKV("etcd", op)
	return request{f: kv.F, key: kv.Key, value: kv.Value, from: kv.From, to: kv.To}, err
}

const jsonNull = "null"

// Do performs op (f = get, put or cas) and reports its outcome; it never
// returns an error. It is bounded by ctx and by the client's Timeout. See
// the package doc for the mapping.
func (c *Client) Do(ctx context.Context, op history.Op) history.Outcome {
	r, err := encode(op)
	if err != nil {
		return history.Outcome{Type: history.Fail, Error: err.Error()}
	}
	if c.closed.Load() {
		return history.Outcome{Type: history.Fail, Error: "etcd: not sent: the client is closed"}
	}
	if err := ctx.Err(); err != nil {
		return history.Outcome{Type: history.Fail, Error: "etcd: not sent: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()

	ctx, err = c.auth.with(ctx, c.authenticate)
	if err != nil {
		// The operation's own request was never sent.
		return history.Outcome{Type: history.Fail, Error: kvadapter.Redact(describe(err)+" (not sent: authenticating as "+c.opts.Username+")", c.opts.Password)}
	}
	snap := c.conns.snapshot()
	header, out, err := c.send(ctx, r)
	if err != nil {
		c.auth.failed(err)
		sent := c.conns.mayHaveSent(snap)
		typ, text := classify(r.f, err, sent, c.conns.notSentReason)
		return history.Outcome{Type: typ, Error: kvadapter.Redact(text, c.opts.Password)}
	}
	out.Node = c.names.name(ctx, header.MemberId)
	out.Term = header.RaftTerm
	return out
}

// authenticate exchanges the client's user and password for a token,
// through its own connection (waiting for it, within ctx).
func (c *Client) authenticate(ctx context.Context, user, password string) (string, error) {
	resp, err := c.cli.Auth.Authenticate(ctx, user, password)
	if err != nil {
		return "", err
	}
	return resp.Token, nil
}

// send performs r and returns the answer's header and outcome (Type and
// Value, or Error for a mismatch).
func (c *Client) send(ctx context.Context, r request) (*etcdserverpb.ResponseHeader, history.Outcome, error) {
	switch r.f {
	case fGet:
		var opts []clientv3.OpOption
		if c.opts.Read == Serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		resp, err := c.cli.Get(ctx, r.key, opts...)
		if err != nil {
			return nil, history.Outcome{}, err
		}
		if len(resp.Kvs) == 0 {
			return resp.Header, history.Outcome{Type: history.OK, Value: history.Null}, nil
		}
		return resp.Header, kvadapter.StoredValue(AdapterName, resp.Kvs[0].Value), nil
	case fPut:
		wctx := clientv3.WithRequireLeader(ctx)
		if r.value == jsonNull {
			resp, err := c.cli.Delete(wctx, r.key)
			if err != nil {
				return nil, history.Outcome{}, err
			}
			return resp.Header, history.Outcome{Type: history.OK}, nil
		}
		resp, err := c.cli.Put(wctx, r.key, r.value)
		if err != nil {
			return nil, history.Outcome{}, err
		}
		return resp.Header, history.Outcome{Type: history.OK}, nil
	default: // fCAS
		cmp := clientv3.Compare(clientv3.Value(r.key), "=", r.from)
		if r.from == jsonNull {
			cmp = clientv3.Compare(clientv3.CreateRevision(r.key), "=", 0)
		}
		then := clientv3.OpPut(r.key, r.to)
		if r.to == jsonNull {
			then = clientv3.OpDelete(r.key)
		}
		resp, err := c.cli.Txn(clientv3.WithRequireLeader(ctx)).If(cmp).Then(then).Commit()
		if err != nil {
			return nil, history.Outcome{}, err
		}
		if !resp.Succeeded {
			return resp.Header, history.Outcome{Type: history.Fail, Error: history.Mismatch}, nil
		}
		return resp.Header, history.Outcome{Type: history.OK}, nil
	}
}

// memberList lists the members through the client's own connection,
// serializable (answered by the home member without a quorum).
func (c *Client) memberList(ctx context.Context) ([]*etcdserverpb.Member, error) {
	resp, err := c.cli.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		return nil, err
	}
	return resp.Members, nil
}

// memberNames maps member ids to names, asking list (MemberList) when an
// id is not known, at most once a second. Safe for concurrent use.
type memberNames struct {
	list func(ctx context.Context) ([]*etcdserverpb.Member, error)

	mu     sync.Mutex
	names  map[uint64]string
	listed time.Time // when list was last called
}

// refreshEvery is how often memberNames may list the members again.
const refreshEvery = time.Second

// name returns the name of member id: its name in MemberList, else its
// id in hex (etcd's own spelling). 0 (no member) is "".
func (m *memberNames) name(ctx context.Context, id uint64) string {
	if id == 0 {
		return ""
	}
	m.mu.Lock()
	n, ok := m.names[id]
	stale := time.Since(m.listed) >= refreshEvery
	if !ok && stale {
		m.listed = time.Now()
	}
	m.mu.Unlock()
	if ok {
		return n
	}
	if stale {
		if members, err := m.list(ctx); err == nil {
			names := make(map[uint64]string, len(members))
			for _, mem := range members {
				if mem.Name != "" {
					names[mem.ID] = mem.Name
				}
			}
			m.mu.Lock()
			m.names = names
			n, ok = names[id]
			m.mu.Unlock()
			if ok {
				return n
			}
		}
	}
	return strconv.FormatUint(id, 16)
}
