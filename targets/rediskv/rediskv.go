// Package rediskv is a targets.Client for Redis, through the official Go
// client github.com/redis/go-redis/v9 v9.23.0 (RESP2, one server per
// address: no Sentinel, no Cluster). It is tested against Debian's Redis
// 7.0 (apt-get install redis-server), a primary and its replica.
//
// Operations (history.Op), each one command (or one script) to one
// server:
//
//	get  Key            GET Key
//	put  Key Value      SET Key V; a null V is DEL Key
//	cas  Key {from,to}  EVALSHA (EVAL) of a script that compares GET Key
//	                    with from and then SETs to (DELs Key for to null)
//
// Values are JSON: the Redis string is the value's canonical JSON text
// (history.CanonicalJSON: compact, numbers by value), and a get returns
// it as read; an absent key reads as history.Null. Null and absence are
// the same register value: a put of null deletes the key, a cas to null
// deletes it, and a cas from null requires the key to be absent, so the
// adapter never stores the text null. A cas runs as one Lua script,
// atomically (Redis runs a script with nothing in between); a cas whose
// comparison fails (the key absent, or holding another value) is fail
// with error "mismatch" (history.Mismatch).
//
// Routing. ClientConfig.Nodes maps node ids to addresses (a proxy, when
// client links are proxied) and ClientConfig.Roles to roles, which are
// the scenario's and never change: the adapter does not follow a
// failover. Writes (put, cas) go to the primary: the one node whose role
// is option primary_role ("primary" by default), or the only node if
// none has that role and there is one node. Reads go where option read
// says: primary (the default), or replica: the worker's home node if it
// is not the primary, else the replica (a node that is not the primary)
// at the home node's index among the nodes (sorted by id), modulo the
// number of replicas. A replica answers from its own copy, which lags the
// primary's: replica reads can be stale, which is what they are for. A
// write sent to a replica (a primary_role that names one, or a primary
// demoted by a failover) is refused with READONLY: fail.
//
// Outcome.Node is, on every completion of a well-formed operation, the
// node the operation was sent to (or would have been, for one never
// sent). Redis names no answering server in its replies, but a Client
// talks to exactly one address per operation, so that node is the one
// that answered, when anything answered. Outcome.Term stays 0: Redis has no
// term or epoch (its replication ids change at a failover, but say
// nothing of which primary came first).
//
// Outcome mapping (Jepsen semantics; see classify):
//
//   - an answer: ok; a cas whose comparison failed: fail, "mismatch";
//   - a get that failed in any way: fail (a read has no effect);
//   - a write whose command was certainly never written, because no
//     byte of it went out on a connection that had read from the server
//     (a dial refused or timed out, a TLS handshake that failed, a server
//     that accepted the connection but never answered the HELLO
//     handshake; see connTracker): fail, "... (not sent: ...)";
//   - a write the server refused without executing it (READONLY,
//     NOSCRIPT, WRONGTYPE, NOAUTH, WRONGPASS, NOPERM, OOM, LOADING,
//     MASTERDOWN, BUSY, MISCONF, NOREPLICAS, the Cluster redirections,
//     ERR unknown command; see definiteCodes): fail;
//   - any other failed write (the operation's timeout, a connection
//     closed or reset once the command may have been sent, an error reply
//     not in the table): info.
//
// go-redis's own retries are off (Options.MaxRetries -1: its 0 means the
// default, 3): a command is written at most once, so a write can never
// take effect twice. The only command sent twice is a cas's EVALSHA
// answered NOSCRIPT (the server does not hold the script), followed by
// EVAL: NOSCRIPT certainly means not executed. Dials are tried once per
// operation (DialerRetries 1); when go-redis's pool stops dialing after
// repeated failures (it then waits for a background probe, once a
// second), the Client replaces its go-redis client and tries the
// operation once more, nothing having been sent, so that an operation
// right after a server comes back reaches it.
//
// Operations on one Client are serialized (one at a time): that is how
// the adapter knows whether an operation's command was written. Each op
// is bounded by the client's timeout through the socket deadlines (go-redis
// with ContextTimeoutEnabled); cancelling the caller's context without a
// deadline does not interrupt a command already written, which then ends
// at its timeout.
//
// Credentials: options username and password (or password_env, naming an
// environment variable: targets.Secret) are sent with HELLO on every new
// connection; option db selects a database; the TLS options
// (targets.TLSOptions) turn TLS on. A password never appears in an error
// text: go-redis's texts do not hold it, and Do redacts it all the same.
// go-redis logs to stderr through a process-wide logger; the adapter
// silences it when it builds its first client (failures reach the
// history as outcomes, not as log lines).
//
// Ping and Status (the adapter's readiness probe and status reader) share
// one cached client per address and credentials, closed after it has been
// idle for 10 s (admin.go).
//
// The package registers itself as the client adapter "redis" (see
// targets.RegisterAdapter); New builds a client for direct use.
package rediskv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// AdapterName is the name under which the package registers its adapter.
const AdapterName = "redis"

// The operations a client performs.
const (
	fGet = "get"
	fPut = "put"
	fCAS = "cas"
)

// The adapter's options.
const (
	OptionRead        = "read"
	OptionPrimaryRole = "primary_role"
	OptionUsername    = kvadapter.OptionUsername
	OptionPassword    = kvadapter.OptionPassword // secret: or password_env
	OptionDB          = "db"
)

// ReadMode is where a get reads: the value of option "read".
type ReadMode string

// Read modes.
const (
	// ReadPrimary: gets go to the primary, like writes. The default.
	ReadPrimary ReadMode = "primary"
	// ReadReplica: gets go to a replica, which answers from its own copy
	// (stale while replication lags).
	ReadReplica ReadMode = "replica"
)

// DefaultPrimaryRole is the role whose node takes the writes when option
// primary_role is not set.
const DefaultPrimaryRole = "primary"

// DefaultTimeout bounds one operation when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// options are the settings the adapter declares.
var options = append([]targets.Option{
	{Name: OptionRead, Default: string(ReadPrimary), Doc: "where gets go: primary (with the writes) or replica " +
		"(the worker's home node if it is a replica, else a replica chosen by the home node's index; it may answer stale values)"},
	{Name: OptionPrimaryRole, Default: DefaultPrimaryRole, Doc: "the role of the node that takes the writes (put, cas); " +
		"with one node and no node of that role, that node"},
	{Name: OptionUsername, Doc: "the ACL user to authenticate as (Redis 6+; default: the default user)"},
	{Name: OptionPassword, Secret: true, Doc: "the password (requirepass, or the ACL user's); better password_env: " +
		"the name of an environment variable that holds it"},
	{Name: OptionDB, Default: "0", Doc: "the database number to SELECT"},
}, targets.TLSOptions...)

func init() {
	targets.RegisterAdapter(targets.Adapter{
		Name: AdapterName,
		Doc: "Redis through the official Go client (github.com/redis/go-redis/v9 v9.23.0; tested against Redis 7.0): " +
			"get (GET), put (SET, DEL for null), cas (one Lua script: GET, compare, SET or DEL); " +
			"writes go to the node of role primary, gets to it or to a replica (option read)",
		Ops: []string{fGet, fPut, fCAS},
		Errors: "an answer is ok; a cas whose comparison failed is fail (mismatch); a get that failed is fail; " +
			"a write that was certainly never sent (no byte of it written on a connection that had answered: dial refused or timed out, " +
			"no answer to the HELLO handshake, a refused handshake) is fail; a write the server refused without executing it " +
			"(READONLY, NOSCRIPT, WRONGTYPE, NOAUTH, WRONGPASS, NOPERM, OOM, LOADING, MASTERDOWN, BUSY, MISCONF, NOREPLICAS, " +
			"MOVED, ASK, TRYAGAIN, CLUSTERDOWN, CROSSSLOT, ERR unknown command) is fail; any other failed write " +
			"(timeout, a connection closed once the command may have been sent, another error reply) is info",
		Options:   options,
		New:       newAdapterClient,
		Ping:      Ping,
		Status:    Status,
		LocalRead: LocalRead,
	})
}

// config is the adapter's options from a scenario, checked.
type config struct {
	read        ReadMode
	primaryRole string
	db          int
	kvadapter.Conn
}

// parseOptions checks the adapter's options from a scenario and resolves
// the password. Its errors name options, never a secret's value.
func parseOptions(opts map[string]string) (config, error) {
	cfg := config{read: ReadPrimary, primaryRole: DefaultPrimaryRole}
	var err error
	cfg.Conn, err = kvadapter.ParseOptions(AdapterName, options, opts, func(k, v string) error {
		switch k {
		case OptionRead:
			switch ReadMode(v) {
			case ReadPrimary, ReadReplica:
				cfg.read = ReadMode(v)
				return nil
			}
			return fmt.Errorf("option %s=%q: want %s or %s", k, v, ReadPrimary, ReadReplica)
		case OptionPrimaryRole:
			if v == "" {
				return fmt.Errorf("option %s is empty: name the role of the node that takes the writes", k)
			}
			cfg.primaryRole = v
		case OptionDB:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("option %s=%q: want a database number (0, 1, ...)", k, v)
			}
			cfg.db = n
		}
		return nil
	})
	if err != nil {
		return config{}, err
	}
	return cfg, nil
}

// options returns the Options of a Client with these settings, each op
// bounded by timeout.
func (c config) options(timeout time.Duration) Options {
	return Options{Timeout: timeout, Username: c.Username, Password: c.Password, DB: c.db, TLS: c.TLS}
}

// newAdapterClient is the adapter's New: a Client that writes to the
// primary among cfg.Nodes and reads where cfg.Options say, each op
// bounded by cfg.Timeout. cfg.Token is not sent: Redis does not speak
// faultline's node protocol.
func newAdapterClient(cfg targets.ClientConfig) (targets.Client, error) {
	c, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	write, read, err := route(cfg, c.read, c.primaryRole)
	if err != nil {
		return nil, err
	}
	return New(write, read, c.options(cfg.Timeout))
}

// route picks the node that takes the writes and the node that serves
// the gets (see the package doc).
func route(cfg targets.ClientConfig, mode ReadMode, primaryRole string) (write, read Node, err error) {
	ids := slices.Sorted(maps.Keys(cfg.Nodes))
	node := func(id string) (Node, error) {
		if cfg.Nodes[id] == "" {
			return Node{}, fmt.Errorf("redis: node %s has no address", id)
		}
		return Node{ID: id, Addr: cfg.Nodes[id]}, nil
	}
	if _, ok := cfg.Nodes[cfg.Home]; !ok {
		return Node{}, Node{}, fmt.Errorf("redis: home node %q is not among the nodes %v", cfg.Home, ids)
	}
	var primaries []string
	for _, id := range ids {
		if cfg.Roles[id] == primaryRole {
			primaries = append(primaries, id)
		}
	}
	switch {
	case len(primaries) == 0 && len(ids) == 1:
		primaries = ids
	case len(primaries) == 0:
		var roles []string
		for _, id := range ids {
			roles = append(roles, id+"="+cfg.Roles[id])
		}
		return Node{}, Node{}, fmt.Errorf("redis: no node has role %q (%s): set option %s to the role of the node that takes the writes",
			primaryRole, strings.Join(roles, ", "), OptionPrimaryRole)
	case len(primaries) > 1:
		return Node{}, Node{}, fmt.Errorf("redis: nodes %s all have role %q: the adapter writes to one primary (set option %s to a role with one node)",
			strings.Join(primaries, ", "), primaryRole, OptionPrimaryRole)
	}
	if write, err = node(primaries[0]); err != nil {
		return Node{}, Node{}, err
	}
	if mode != ReadReplica {
		return write, write, nil
	}
	var replicas []string
	for _, id := range ids {
		if id != write.ID {
			replicas = append(replicas, id)
		}
	}
	if len(replicas) == 0 {
		return Node{}, Node{}, fmt.Errorf("redis: option %s=%s, but every node is the primary %s: add a replica node", OptionRead, ReadReplica, write.ID)
	}
	id := cfg.Home
	if id == write.ID {
		id = replicas[slices.Index(ids, cfg.Home)%len(replicas)]
	}
	if read, err = node(id); err != nil {
		return Node{}, Node{}, err
	}
	return write, read, nil
}

// Node is one Redis server: its node id (what Outcome.Node records) and
// the address to dial (host:port, maybe a proxy).
type Node struct {
	ID   string
	Addr string
}

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// Timeout bounds one Do call (default DefaultTimeout): dial, HELLO
	// and command.
	Timeout time.Duration
	// Username and Password authenticate every connection (HELLO ...
	// AUTH); "" sends none (Redis's default user without a password).
	Username string
	Password string
	// DB is the database number each connection SELECTs (default 0).
	DB int
	// TLS, if set, is used for every connection (targets.TLSConfig).
	TLS *tls.Config
}

// Client sends writes to one Redis server and gets to one (the same, or
// a replica), one operation at a time.
//
// A Client is safe for concurrent use, but serializes its operations; a
// worker should have its own (one per process keeps every process
// sequential). It owns one go-redis client per server, each connecting
// lazily; Close releases them.
type Client struct {
	opts        Options
	write, read *endpoint // the same endpoint when one node serves both

	mu     sync.Mutex // serializes Do (connTracker relies on it) and guards closed
	closed bool
}

var _ targets.Client = (*Client)(nil)

// endpoint is one server, with its go-redis client and the tracker of its
// connections. rdb and conns are replaced together (reset), under the
// Client's mu.
type endpoint struct {
	node  Node
	rdb   *redis.Client
	conns *connTracker
}

// dialBudget is the PoolSize of a Client's go-redis clients. A Client
// uses one connection at a time (its ops are serialized), so the pool
// size only sets how many failed dials go-redis counts before its pool
// stops dialing (see Client.do), and how often a Client replaces a client
// whose pool did.
const dialBudget = 16

// quiet silences go-redis's process-wide logger, once.
var quiet sync.Once

// New returns a client that sends puts and cases to write and gets to
// read (the same node, or a replica). It returns at once: connections are
// made by the operations.
func New(write, read Node, opts Options) (*Client, error) {
	if write.Addr == "" || read.Addr == "" {
		return nil, errors.New("redis: no address")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.DB < 0 {
		return nil, fmt.Errorf("redis: database %d: want 0 or more", opts.DB)
	}
	quiet.Do(logging.Disable)
	c := &Client{opts: opts}
	c.write = &endpoint{node: write}
	c.write.reset(opts)
	c.read = c.write
	if read != write {
		c.read = &endpoint{node: read}
		c.read.reset(opts)
	}
	return c, nil
}

// reset gives e a new go-redis client and tracker, closing the old ones.
func (e *endpoint) reset(opts Options) {
	old := e.rdb
	e.conns = &connTracker{}
	e.rdb = newRedisClient(e.node.Addr, opts, e.conns, dialBudget)
	if old != nil {
		old.Close()
	}
}

// newRedisClient returns a go-redis client for the server at addr:
// RESP2, no retries, one dial per attempt, the socket deadlines from the
// context and opts.Timeout, no CLIENT SETINFO and no maintenance
// notifications (plain Redis commands only, which any Redis and most
// look-alikes serve), dialing through t (nil: untracked).
func newRedisClient(addr string, opts Options, t *connTracker, poolSize int) *redis.Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		Dialer:                dialer(timeout, opts.TLS, t),
		Protocol:              2,
		Username:              opts.Username,
		Password:              opts.Password,
		DB:                    opts.DB,
		MaxRetries:            -1, // -1, not 0 (the default, 3): one attempt, never a write sent twice
		DialTimeout:           timeout,
		DialerRetries:         1,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		ContextTimeoutEnabled: true,
		PoolSize:              poolSize,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
}

// Close releases the client's connections. Safe to call more than once;
// Do after Close fails.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	err := c.write.rdb.Close()
	if c.read != c.write {
		if err2 := c.read.rdb.Close(); err == nil {
			err = err2
		}
	}
	return err
}

// request is an Op checked and encoded for Redis.
type request struct {
	f        string
	key      string
	value    string // put: canonical JSON of the value; "null" deletes
	from, to string // cas: canonical JSON; "null" is absence
}

const jsonNull = "null"

// encode checks op and canonicalizes its values.
func encode(op history.Op) (request, error) {
	kv, err := targets.DecodeKV("redis", op)
	return request{f: kv.F, key: kv.Key, value: kv.Value, from: kv.From, to: kv.To}, err
}

// casScript is the cas: KEYS[1] the key, ARGV[1] from and ARGV[2] to,
// canonical JSON texts, "null" meaning absent. It returns 1 when it wrote
// (SET or DEL), 0 on a mismatch. Its only write is its last command, so
// an error (a WRONGTYPE GET, a READONLY or OOM write) leaves the key
// unchanged.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == 'null' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'null' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`)

// Do performs op (f = get, put or cas) and reports its outcome; it never
// returns an error. It is bounded by ctx and by the client's Timeout, and
// waits for the client's previous operation to end. See the package doc
// for the mapping.
func (c *Client) Do(ctx context.Context, op history.Op) history.Outcome {
	r, err := encode(op)
	if err != nil {
		return history.Outcome{Type: history.Fail, Error: err.Error()}
	}
	ep := c.write
	if r.f == fGet {
		ep = c.read
	}
	out := c.do(ctx, ep, r)
	out.Node = ep.node.ID
	out.Error = kvadapter.Redact(out.Error, c.opts.Password)
	return out
}

func (c *Client) do(ctx context.Context, ep *endpoint, r request) history.Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return history.Outcome{Type: history.Fail, Error: "redis: not sent: the client is closed"}
	}
	if err := ctx.Err(); err != nil {
		return history.Outcome{Type: history.Fail, Error: "redis: not sent: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()

	out, snap, err := c.send(ctx, ep, r)
	if err != nil && ep.breakerOpen(err, snap) {
		// go-redis failed the op without dialing: after as many failed
		// dials as its pool has connections, it stops dialing until a
		// background probe (once a second) connects, and would fail the
		// ops of the first second after the server is back. Nothing was
		// sent: start afresh and try once more.
		ep.reset(c.opts)
		out, snap, err = c.send(ctx, ep, r)
	}
	if err == nil {
		return out
	}
	sent := ep.conns.mayHaveSent(snap)
	typ, text := classify(r.f, err, sent, func() string { return ep.conns.notSentReason(snap) })
	return history.Outcome{Type: typ, Error: text}
}

// breakerOpen reports whether err, of an op begun at s that sent nothing
// and dialed nothing, is the last dial's error repeated by go-redis's pool
// without a dial.
func (e *endpoint) breakerOpen(err error, s connSnapshot) bool {
	t := e.conns
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent == s.sent && t.dials == s.dials && t.dialErrs == s.dialErrs &&
		t.lastDial != nil && errors.Is(err, t.lastDial)
}

// send performs r on ep and returns its outcome (Type and Value, or Error
// for a mismatch), or the error, with the tracker's state when the
// command (the last one, for a cas that had to send EVAL) began.
func (c *Client) send(ctx context.Context, ep *endpoint, r request) (history.Outcome, connSnapshot, error) {
	snap := ep.conns.snapshot()
	switch r.f {
	case fGet:
		v, err := ep.rdb.Get(ctx, r.key).Result()
		if errors.Is(err, redis.Nil) {
			return history.Outcome{Type: history.OK, Value: history.Null}, snap, nil
		}
		if err != nil {
			return history.Outcome{}, snap, err
		}
		return kvadapter.StoredValue(AdapterName, []byte(v)), snap, nil
	case fPut:
		var err error
		if r.value == jsonNull {
			err = ep.rdb.Del(ctx, r.key).Err()
		} else {
			err = ep.rdb.Set(ctx, r.key, r.value, 0).Err()
		}
		if err != nil {
			return history.Outcome{}, snap, err
		}
		return history.Outcome{Type: history.OK}, snap, nil
	default: // fCAS
		keys, args := []string{r.key}, []any{r.from, r.to}
		res, err := casScript.EvalSha(ctx, ep.rdb, keys, args...).Int64()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The server does not hold the script (a new or restarted
			// server, SCRIPT FLUSH): EVALSHA was not executed.
			snap = ep.conns.snapshot()
			res, err = casScript.Eval(ctx, ep.rdb, keys, args...).Int64()
		}
		switch {
		case err != nil:
			return history.Outcome{}, snap, err
		case res == 1:
			return history.Outcome{Type: history.OK}, snap, nil
		case res == 0:
			return history.Outcome{Type: history.Fail, Error: history.Mismatch}, snap, nil
		}
		// The script cannot answer this: the effect is unknown.
		return history.Outcome{Type: history.Info, Error: fmt.Sprintf("redis: cas: the script answered %d, want 0 or 1", res)}, snap, nil
	}
}
