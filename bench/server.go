package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverAnswer is the server's one answer: 200 with a small JSON body.
const serverAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"

// cmdServer is `bench server`: a minimal HTTP/1.1 server on loopback. It
// prints its address (host:port) as the first line on stdout, then serves
// until it is killed. Every request (any method, any path) is read whole,
// then answered 200 with serverAnswer's body after --service-time (0: at
// once), on a connection kept open. It is a separate process so that its
// CPU time is not counted as the load generator's, and so that it can be
// stalled (SIGSTOP) as a whole.
func cmdServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	service := fs.Duration("service-time", time.Millisecond, "how long each request takes before its answer (0: none)")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *service < 0 {
		return fmt.Errorf("--service-time %v: want 0 or more", *service)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return serve(ln, *service)
}

// serve accepts connections on ln until it is closed, each served by
// serveConn in its own goroutine.
func serve(ln net.Listener, service time.Duration) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go serveConn(c, service)
	}
}

// serveConn answers the requests of one connection in order (HTTP/1.1
// keep-alive; pipelined requests wait their turn). A request with a
// chunked body, or a head it cannot read, ends the connection (chunked
// with a 501 first): neither load generator sends one.
func serveConn(c net.Conn, service time.Duration) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	for {
		n, closeAfter, chunked, err := readHead(r)
		if err != nil {
			return
		}
		if chunked {
			io.WriteString(c, "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		if _, err := r.Discard(n); err != nil {
			return
		}
		if service > 0 {
			time.Sleep(service)
		}
		if _, err := io.WriteString(c, serverAnswer); err != nil || closeAfter {
			return
		}
	}
}

// readHead reads one request's line and headers and returns its body's
// length, whether the client asked to close the connection after it, and
// whether the body is chunked.
func readHead(r *bufio.Reader) (n int, closeAfter, chunked bool, err error) {
	first := true
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, false, false, err
		}
		if first {
			first = false
			if !bytes.Contains(line, []byte(" HTTP/1.")) {
				return 0, false, false, fmt.Errorf("not an HTTP/1.x request line: %q", line)
			}
			continue
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return n, closeAfter, chunked, nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if n, err = strconv.Atoi(string(v)); err != nil || n < 0 {
				return 0, false, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Connection")):
			closeAfter = bytes.EqualFold(v, []byte("close"))
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(v), []byte("chunked"))
		}
	}
}

// serverProc is a running `bench server` child.
type serverProc struct {
	cmd    *exec.Cmd
	Addr   string
	stderr bytes.Buffer
}

// startServer starts `bench server` with the given service time and waits
// for its address.
func startServer(ctx context.Context, self string, service time.Duration) (*serverProc, error) {
	s := &serverProc{cmd: exec.CommandContext(ctx, self, "server", "--service-time", service.String())}
	s.cmd.Stderr = &s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("the server printed no address (%v): %s", err, tail(s.stderr.String(), 400))
	}
	s.Addr = strings.TrimSpace(line)
	go io.Copy(io.Discard, out)
	return s, nil
}

// Pause stops the server's process (SIGSTOP): the kernel still completes
// TCP handshakes into its listen queue, but nothing is read or answered.
func (s *serverProc) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *serverProc) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Stop kills the server and reaps it.
func (s *serverProc) Stop() {
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// selfPath is this program's path, for its child processes.
func selfPath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this program's path for its child processes: %w", err)
	}
	return p, nil
}
