package kvtest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// SilentListener is a server that never answers: it accepts connections
// on a free loopback port and reads each to its end without writing a
// byte, so a client's handshake never completes. What a client wrote
// before giving up is what it would send before a server's first answer.
type SilentListener struct {
	Addr string

	ln       net.Listener
	accepted chan struct{} // closed when the accept loop has returned
	readers  sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	got   [][]byte // what each connection carried, in the order they ended
}

// Listen starts a SilentListener; the test's end closes it and every
// connection it accepted.
func Listen(t testing.TB) *SilentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &SilentListener{Addr: ln.Addr().String(), ln: ln, accepted: make(chan struct{})}
	go func() {
		defer close(l.accepted)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.conns = append(l.conns, conn)
			l.mu.Unlock()
			l.readers.Add(1)
			go func() {
				defer l.readers.Done()
				b, _ := io.ReadAll(conn)
				l.mu.Lock()
				l.got = append(l.got, b)
				l.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, c := range l.conns {
			c.Close()
		}
	})
	return l
}

// Close stops accepting and returns what each accepted connection
// carried, from its first byte to its close by the client, once every one
// has been closed; it fails t if one is still open after within.
func (l *SilentListener) Close(t testing.TB, within time.Duration) [][]byte {
	t.Helper()
	l.ln.Close()
	<-l.accepted
	ended := make(chan struct{})
	go func() {
		l.readers.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(within):
		t.Fatalf("a connection to %s was still open %v after the listener closed: close the client first", l.Addr, within)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got
}
