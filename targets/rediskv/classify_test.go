package rediskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/kvtest"
)

// reply is a server's error reply, as go-redis returns one.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

var _ redis.Error = reply("")

// TestClassify is the error-mapping rule as a table: gets fail, writes
// that were never sent fail, definite refusals fail, everything else is
// info.
func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	for _, tc := range []struct {
		f    string
		err  error
		sent bool
		want history.Type
		text string
	}{
		{"get", timeout, true, history.Fail, "redis: timeout"},
		{"get", io.EOF, true, history.Fail, "redis: connection closed (EOF)"},
		{"get", reply("LOADING Redis is loading the dataset in memory"), true, history.Fail, "redis: LOADING Redis is loading the dataset in memory"},
		{"get", reply("ERR something new"), true, history.Fail, "redis: ERR something new"},
		{"put", refused, false, history.Fail, "redis: dial tcp: connect: connection refused (not sent: no connection)"},
		{"cas", timeout, false, history.Fail, "redis: timeout (not sent: no connection)"},
		{"put", reply("WRONGPASS invalid username-password pair or user is disabled."), false, history.Fail, "redis: WRONGPASS invalid username-password pair or user is disabled. (not sent: no connection)"},
		// Sent, or maybe sent: info unless the reply is a definite refusal.
		{"put", timeout, true, history.Info, "redis: timeout"},
		{"put", context.DeadlineExceeded, true, history.Info, "redis: timeout"},
		{"put", context.Canceled, true, history.Info, "redis: canceled"},
		{"put", io.EOF, true, history.Info, "redis: connection closed (EOF)"},
		{"cas", io.ErrUnexpectedEOF, true, history.Info, "redis: connection closed (EOF)"},
		{"put", reset, true, history.Info, "redis: read tcp: read: connection reset by peer"},
		{"put", errors.New("redis: client is closed"), true, history.Info, "redis: client is closed"},
		{"put", reply("ERR something new"), true, history.Info, "redis: ERR something new"},
		{"cas", reply("ERR Error running script (call to f_1): @user_script:1: -READONLY You can't write against a read only replica."), true, history.Info,
			"redis: ERR Error running script (call to f_1): @user_script:1: -READONLY You can't write against a read only replica."},
		{"put", reply("UNKNOWNCODE what"), true, history.Info, "redis: UNKNOWNCODE what"},
		// Definite refusals (Redis 7.0's texts).
		{"put", reply("READONLY You can't write against a read only replica."), true, history.Fail, "redis: READONLY You can't write against a read only replica."},
		{"cas", reply("READONLY You can't write against a read only replica. script: 5a9c, on @user_script:11."), true, history.Fail, "redis: READONLY You can't write against a read only replica. script: 5a9c, on @user_script:11."},
		{"cas", redis.ErrNoScript, true, history.Fail, "redis: NOSCRIPT No matching script. Please use EVAL."},
		{"cas", reply("WRONGTYPE Operation against a key holding the wrong kind of value"), true, history.Fail, "redis: WRONGTYPE Operation against a key holding the wrong kind of value"},
		{"put", reply("NOAUTH Authentication required."), true, history.Fail, "redis: NOAUTH Authentication required."},
		{"put", fmt.Errorf("failed to authenticate: %w", reply("WRONGPASS invalid username-password pair or user is disabled.")), true, history.Fail,
			"redis: failed to authenticate: WRONGPASS invalid username-password pair or user is disabled."},
		{"put", reply("NOPERM User u has no permissions to run the 'set' command"), true, history.Fail, "redis: NOPERM User u has no permissions to run the 'set' command"},
		{"put", reply("ERR unknown command 'EVALSHA', with args beginning with: "), true, history.Fail, "redis: ERR unknown command 'EVALSHA', with args beginning with: "},
		{"put", reply("OOM command not allowed when used memory > 'maxmemory'."), true, history.Fail, "redis: OOM command not allowed when used memory > 'maxmemory'."},
		{"put", reply("LOADING Redis is loading the dataset in memory"), true, history.Fail, "redis: LOADING Redis is loading the dataset in memory"},
		{"put", reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true, history.Fail, "redis: MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."},
		{"cas", reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."), true, history.Fail, "redis: BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."},
		{"put", reply("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."), true, history.Fail, "redis: MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."},
		{"put", reply("NOREPLICAS Not enough good replicas to write."), true, history.Fail, "redis: NOREPLICAS Not enough good replicas to write."},
		{"put", reply("MOVED 3999 127.0.0.1:6381"), true, history.Fail, "redis: MOVED 3999 127.0.0.1:6381"},
		{"put", reply("CLUSTERDOWN The cluster is down"), true, history.Fail, "redis: CLUSTERDOWN The cluster is down"},
	} {
		typ, text := classify(tc.f, tc.err, tc.sent, func() string { return "no connection" })
		if typ != tc.want || text != tc.text {
			t.Errorf("%s, %v, sent %v: %s %q, want %s %q", tc.f, tc.err, tc.sent, typ, text, tc.want, tc.text)
		}
		if !strings.HasPrefix(text, "redis: ") || history.IsMismatch(typ, text) {
			t.Errorf("%s, %v: text %q", tc.f, tc.err, text)
		}
	}
}

// TestNotSentReason: the reason the tracker gives is added to the text,
// unless the text already says it.
func TestNotSentReason(t *testing.T) {
	tlsErr := fmt.Errorf("dial tcp: %w", errors.New("tls: failed to verify certificate"))
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		err       error
		why, text string
	}{
		{tlsErr, "no connection: dial tcp: tls: failed to verify certificate", "redis: dial tcp: tls: failed to verify certificate (not sent: no connection)"},
		{timeout, "no connection: dial tcp: i/o timeout", "redis: timeout (not sent: no connection: dial tcp: i/o timeout)"},
		{timeout, "connected, but the server never answered the handshake", "redis: timeout (not sent: connected, but the server never answered the handshake)"},
	} {
		typ, text := classify("put", tc.err, false, func() string { return tc.why })
		if typ != history.Fail || text != tc.text {
			t.Errorf("%v, %q: %s %q, want fail %q", tc.err, tc.why, typ, text, tc.text)
		}
	}
}

func TestDescribeShort(t *testing.T) {
	text := describe(errors.New(strings.Repeat("é", 300)))
	if len(text) > 220 || !strings.HasSuffix(text, "...") {
		t.Errorf("long error: %d bytes: %q", len(text), text)
	}
}

// TestRoute: writes go to the one node of the primary role (or the only
// node), gets to it or to a replica chosen by the home node.
func TestRoute(t *testing.T) {
	nodes := map[string]string{"n1": "a1", "n2": "a2", "n3": "a3"}
	roles := map[string]string{"n1": "replica", "n2": "primary", "n3": "replica"}
	for _, tc := range []struct {
		home        string
		mode        ReadMode
		role        string
		write, read string
	}{
		{"n1", ReadPrimary, "primary", "n2", "n2"},
		{"n2", ReadPrimary, "primary", "n2", "n2"},
		{"n1", ReadReplica, "primary", "n2", "n1"}, // home is a replica
		{"n3", ReadReplica, "primary", "n2", "n3"},
		{"n2", ReadReplica, "primary", "n2", "n3"}, // home n2 is index 1 of n1 n2 n3: replicas [n1 n3][1]
	} {
		w, r, err := route(targets.ClientConfig{Nodes: nodes, Roles: roles, Home: tc.home}, tc.mode, tc.role)
		if err != nil || w.ID != tc.write || r.ID != tc.read || w.Addr != nodes[tc.write] || r.Addr != nodes[tc.read] {
			t.Errorf("home %s read %s: write %+v read %+v (%v), want %s and %s", tc.home, tc.mode, w, r, err, tc.write, tc.read)
		}
	}
	// A home that is the primary: the replica at its index (p is the
	// fourth of a b c p: replicas [a b c][3 % 3]).
	four := map[string]string{"a": "1", "b": "2", "c": "3", "p": "4"}
	if _, r, err := route(targets.ClientConfig{Nodes: four, Roles: map[string]string{"p": "primary"}, Home: "p"}, ReadReplica, "primary"); err != nil || r.ID != "a" {
		t.Errorf("home p of a b c p: read %+v (%v), want a", r, err)
	}
	one := map[string]string{"n1": "a1"}
	if w, r, err := route(targets.ClientConfig{Nodes: one, Roles: map[string]string{"n1": "server"}, Home: "n1"}, ReadPrimary, "primary"); err != nil || w.ID != "n1" || r.ID != "n1" {
		t.Errorf("one node of another role: %+v %+v %v", w, r, err)
	}
	for _, tc := range []struct {
		cfg  targets.ClientConfig
		mode ReadMode
		role string
		want []string
	}{
		{targets.ClientConfig{Nodes: nodes, Roles: roles, Home: "n9"}, ReadPrimary, "primary", []string{"n9"}},
		{targets.ClientConfig{Nodes: nodes, Roles: roles, Home: "n1"}, ReadPrimary, "leader", []string{`"leader"`, "n1=replica", "primary_role"}},
		{targets.ClientConfig{Nodes: nodes, Roles: roles, Home: "n1"}, ReadPrimary, "replica", []string{"n1, n3", "primary_role"}},
		{targets.ClientConfig{Nodes: one, Home: "n1"}, ReadReplica, "primary", []string{"replica"}},
		{targets.ClientConfig{Nodes: map[string]string{"n1": ""}, Home: "n1"}, ReadPrimary, "primary", []string{"n1", "no address"}},
	} {
		_, _, err := route(tc.cfg, tc.mode, tc.role)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v %s %s: %v, want an error naming %q", tc.cfg, tc.mode, tc.role, err, w)
			}
		}
	}
}

// TestOptions: what the adapter declares, and the options New refuses,
// by name, never showing a secret.
func TestOptions(t *testing.T) {
	a := want.Registered(t) // Ping of no address is an error, not a probe of go-redis's default localhost:6379
	cfg := func(opts map[string]string) targets.ClientConfig {
		return targets.ClientConfig{Nodes: map[string]string{"n1": "127.0.0.1:1"}, Home: "n1", Timeout: time.Second, Options: opts}
	}
	cl, err := a.New(cfg(map[string]string{"read": "primary", "primary_role": "main", "username": "u", "password": "p", "db": "2", "tls": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if c := cl.(*Client); c.opts.DB != 2 || c.opts.Username != "u" || c.opts.Password != "p" || c.opts.TLS != nil || c.opts.Timeout != time.Second {
		t.Errorf("options: %+v", c.opts)
	}
	cl.Close()
	cl, err = a.New(cfg(map[string]string{"tls_insecure_skip_verify": "true"}))
	if err != nil || cl.(*Client).opts.TLS == nil {
		t.Fatalf("tls_insecure_skip_verify: %v", err)
	}
	cl.Close()

	const secret = "do-not-show-me"
	kvtest.RefusesOptions(t, a, cfg(nil), secret, []kvtest.OptionCase{
		{Opts: map[string]string{"consistency": "strong"}, Want: []string{"consistency", "password_env"}},
		{Opts: map[string]string{"read": "stale"}, Want: []string{"read", "stale"}},
		{Opts: map[string]string{"db": "x"}, Want: []string{"db", "x"}},
		{Opts: map[string]string{"db": "-1"}, Want: []string{"db"}},
		{Opts: map[string]string{"primary_role": ""}, Want: []string{"primary_role"}},
		{Opts: map[string]string{"password": secret, "password_env": "V"}, Want: []string{"password", "password_env"}},
		{Opts: map[string]string{"password_env": "FAULTLINE_TEST_NOT_SET"}, Want: []string{"FAULTLINE_TEST_NOT_SET"}},
		{Opts: map[string]string{"password": secret, "tls_cert": "c.pem"}, Want: []string{"tls_cert", "tls_key"}},
		{Opts: map[string]string{"password": secret, "tls": "maybe"}, Want: []string{"tls"}},
	})
}

// TestParseReplication: INFO replication of a primary and of a replica,
// as Redis 7.0 writes them.
func TestParseReplication(t *testing.T) {
	primary := "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=1234,lag=0\r\nmaster_failover_state:no-failover\r\nmaster_replid:abc\r\nmaster_repl_offset:1234\r\n"
	st, err := parseReplication("n1", primary)
	if err != nil || st.ID != "n1" || st.Role != "primary" || st.CommitIndex != 1234 || st.Counters["connected_slaves"] != int64(1) || st.Term != 0 || st.Leader != "" {
		t.Errorf("primary: %+v %v", st, err)
	}
	replica := "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:down\r\nslave_repl_offset:1200\r\nmaster_repl_offset:1210\r\n"
	st, err = parseReplication("n2", replica)
	if err != nil || st.Role != "replica" || st.CommitIndex != 1210 || st.Counters["master_link_status"] != "down" || st.Counters["slave_repl_offset"] != int64(1200) {
		t.Errorf("replica: %+v %v", st, err)
	}
	var raw map[string]string
	if json.Unmarshal(st.Raw, &raw) != nil || raw["master_host"] != "127.0.0.1" {
		t.Errorf("raw: %s", st.Raw)
	}
	if _, err := parseReplication("n3", "# Replication\r\n"); err == nil {
		t.Error("no role: no error")
	}
}

// TestNothingSentBeforeHandshake guards the premise of the "not sent"
// rule (connTracker): go-redis writes no command on a new connection
// before the server has answered HELLO. A listener that accepts and reads
// but never writes gets HELLO, and nothing else; the put and the cas are
// fail, not sent. If a go-redis upgrade breaks this, the rule must change.
func TestNothingSentBeforeHandshake(t *testing.T) {
	l := kvtest.Listen(t)
	n := Node{"n1", l.Addr}
	c, err := New(n, n, Options{Timeout: 300 * time.Millisecond, Password: "pw", DB: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []history.Op{{F: "put", Key: "k", Value: json.RawMessage(`1`)}, {F: "cas", Key: "k", Value: json.RawMessage(`{"from": 1, "to": 2}`)}} {
		out := c.Do(context.Background(), op)
		if out.Type != history.Fail || !strings.Contains(out.Error, "not sent: connected, but the server never answered the handshake") {
			t.Errorf("%s to a listener that never answers: %+v, want fail, not sent (no handshake)", op.F, out)
		}
	}
	c.Close()
	conns := l.Close(t, 2*time.Second)
	if len(conns) != 2 {
		t.Fatalf("%d connections were made, want 2 (one per op)", len(conns))
	}
	for i, b := range conns {
		cmds, err := commands(b)
		if err != nil || len(cmds) != 1 || !strings.EqualFold(cmds[0], "HELLO") {
			t.Fatalf("connection %d: commands %q (%v) in %q, want HELLO alone", i, cmds, err, b)
		}
	}
}

// commands returns the names of the RESP commands (arrays of bulk
// strings) in b.
func commands(b []byte) ([]string, error) {
	var names []string
	rest := string(b)
	line := func() (string, error) {
		l, r, ok := strings.Cut(rest, "\r\n")
		if !ok {
			return "", fmt.Errorf("a line without CRLF: %q", rest)
		}
		rest = r
		return l, nil
	}
	for rest != "" {
		l, err := line()
		if err != nil {
			return names, err
		}
		var n int
		if _, err := fmt.Sscanf(l, "*%d", &n); err != nil || n < 1 {
			return names, fmt.Errorf("not an array: %q", l)
		}
		for i := range n {
			l, err := line()
			if err != nil {
				return names, err
			}
			var size int
			if _, err := fmt.Sscanf(l, "$%d", &size); err != nil || size < 0 || len(rest) < size+2 {
				return names, fmt.Errorf("not a bulk string: %q", l)
			}
			if i == 0 {
				names = append(names, rest[:size])
			}
			rest = rest[size+2:]
		}
	}
	return names, nil
}
