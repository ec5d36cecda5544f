package rediskv

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// connTracker watches every connection one go-redis client opens, to
// answer one question about a failed operation: could its command have
// been sent at all?
//
// go-redis writes a command only on an initialized connection, and it
// initializes a new connection by sending HELLO (always, with the
// credentials) and reading the answer before anything else
// (baseClient.initConn in v9.23.0, the version this module builds with).
// So a command can have left this process only through a Write on a
// connection that had already read a byte from the server. The tracker
// counts such writes (sent). Operations on one Client are serialized, so
// if the count did not change during an operation, no byte of its command
// was written: it certainly had no effect, whatever error go-redis
// reports (a dial refused or timed out, a failed TLS handshake, a server
// that accepted the TCP connection but never answered HELLO).
// TestNothingSentBeforeHandshake checks the premise against a
// listener that never answers, TestCutAfterSendIsInfo the rule both ways
// against a real server behind a real proxy.
//
// The rule errs on the safe side: every write on a connection that has
// read a byte counts, including what the initialization writes after
// HELLO's answer (AUTH, when HELLO was refused; the SELECT of option db)
// and writes that failed.
//
// Safe for concurrent use.
type connTracker struct {
	mu       sync.Mutex
	sent     uint64 // writes on connections that had read a byte
	dials    uint64 // connections made (TCP, and TLS if configured)
	ready    uint64 // connections that have read a byte
	dialErrs uint64 // dials that failed
	lastDial error  // the last failed dial's error
}

// connSnapshot is the tracker's state at an operation's start.
type connSnapshot struct{ sent, dials, ready, dialErrs uint64 }

func (t *connTracker) snapshot() connSnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return connSnapshot{sent: t.sent, dials: t.dials, ready: t.ready, dialErrs: t.dialErrs}
}

// mayHaveSent reports whether a command begun at s may have been
// written: a connection that had read from the server was written to
// since.
func (t *connTracker) mayHaveSent(s connSnapshot) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent != s.sent
}

// notSentReason says why nothing was written since s, for an error text
// that does not already say it.
func (t *connTracker) notSentReason(s connSnapshot) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.ready != s.ready:
		return "the connection's handshake was refused"
	case t.dials != s.dials:
		return "connected, but the server never answered the handshake"
	case t.dialErrs != s.dialErrs && t.lastDial != nil:
		return "no connection: " + kvadapter.Shorten(t.lastDial.Error(), 160)
	}
	return "no connection"
}

// dialer returns the go-redis Dialer of a client: a TCP dial (TLS on top
// when cfg is not nil) whose connection t tracks. t may be nil (the
// admin clients, which need no tracking).
func dialer(timeout time.Duration, cfg *tls.Config, t *connTracker) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, timeout, cfg, network, addr)
		if t == nil {
			return c, err
		}
		t.mu.Lock()
		if err != nil {
			t.dialErrs++
			t.lastDial = err
		} else {
			t.dials++
		}
		t.mu.Unlock()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: t}
		if sc, ok := c.(syscall.Conn); ok {
			// A plain TCP connection: let go-redis's pool check an idle
			// connection's health (a non-blocking peek at its socket)
			// before reusing it, as it does for its own connections.
			return &trackedSysConn{trackedConn: tc, sc: sc}, nil
		}
		return tc, nil
	}
}

// dial connects to addr, with TLS when cfg is not nil (verifying the
// host dialled unless cfg names a server).
func dial(ctx context.Context, timeout time.Duration, cfg *tls.Config, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil || cfg == nil {
		return c, err
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: err}
	}
	return tc, nil
}

// trackedConn is a connection of a connTracker (above TLS, if any: it
// sees what go-redis reads and writes).
type trackedConn struct {
	net.Conn
	t    *connTracker
	seen atomic.Bool // a byte has been read
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.seen.Load() {
		c.seen.Store(true)
		c.t.mu.Lock()
		c.t.ready++
		c.t.mu.Unlock()
	}
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	if c.seen.Load() {
		c.t.mu.Lock()
		c.t.sent++
		c.t.mu.Unlock()
	}
	return c.Conn.Write(b)
}

// trackedSysConn is a trackedConn over a plain TCP connection.
type trackedSysConn struct {
	*trackedConn
	sc syscall.Conn
}

func (c *trackedSysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }
