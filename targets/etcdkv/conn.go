package etcdkv

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/faultline/faultline/targets/internal/kvadapter"
)

// connTracker watches every TCP connection one gRPC client opens, to
// answer one question about a failed operation: could its request have
// been sent at all?
//
// gRPC sends a request only on a transport that is ready, and grpc-go
// makes a transport ready only after it has read the server's preface,
// the first bytes the server writes (internal/transport/http2_client.go:
// "Block until the server preface is received successfully", in v1.83.2,
// the version this module builds with). So a request can have left this
// process only over a connection that has received bytes from the server.
// The tracker counts such connections: how many are open now (open), and
// how many ever became so (ever). If at an operation's start none was
// open, and none became so before it ended, no byte of its request reached
// the wire: the operation certainly had no effect, whatever error gRPC
// reports (with wait-for-ready, a refused dial surfaces as the operation's
// deadline, which alone would read as a timeout). TestCutAfterSendIsInfo
// checks the rule both ways against a real member behind a real proxy.
//
// The rule errs on the safe side: a connection counts as ready from its
// first byte read, however little of the preface that is, and as open
// until gRPC closes it, possibly long after it broke.
//
// Safe for concurrent use.
type connTracker struct {
	mu       sync.Mutex
	open     int          // connections that have read a byte and are not closed
	ever     uint64       // connections that have read a byte, ever
	last     *trackedConn // the last connection made, nil before the first
	lastDial error        // the last dial's error, nil if it succeeded
}

// connSnapshot is the tracker's state at an operation's start.
type connSnapshot struct {
	open int
	ever uint64
}

func (t *connTracker) snapshot() connSnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return connSnapshot{open: t.open, ever: t.ever}
}

// mayHaveSent reports whether a request begun at s may have been sent: a
// ready connection was open at s, or one became ready since.
func (t *connTracker) mayHaveSent(s connSnapshot) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return s.open > 0 || t.ever != s.ever
}

// notSentReason says why nothing could be sent, for an error text: the
// last dial's error; that the last connection made never got the
// member's handshake (a paused member, or a proxy in front of a member
// that does not answer); or that it got it but has closed since, and gRPC
// has not made another (it waits out its backoff).
func (t *connTracker) notSentReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.lastDial != nil:
		return "no connection: " + kvadapter.Shorten(t.lastDial.Error(), 160)
	case t.last == nil:
		return "no connection was made"
	case t.last.ready:
		return "the connection to the member closed, and no new one was ready"
	}
	return "connected, but the member never answered the handshake"
}

// dial is the gRPC context dialer: a plain TCP dial whose connection is
// tracked.
func (t *connTracker) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.mu.Lock()
		t.lastDial = err
		t.mu.Unlock()
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	t.lastDial, t.last = nil, tc
	t.mu.Unlock()
	return tc, nil
}

// trackedConn is a connection of a connTracker.
type trackedConn struct {
	net.Conn
	t      *connTracker
	seen   atomic.Bool // a byte has been read (fast path of Read)
	ready  bool        // guarded by t.mu: counted in t.open
	closed bool        // guarded by t.mu
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.seen.Load() {
		c.seen.Store(true)
		c.t.mu.Lock()
		if !c.ready {
			c.ready = true
			c.t.ever++
			if !c.closed {
				c.t.open++
			}
		}
		c.t.mu.Unlock()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.ready {
			c.t.open--
		}
	}
	c.t.mu.Unlock()
	return c.Conn.Close()
}
