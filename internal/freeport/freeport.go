// Package freeport hands out TCP ports that are free on 127.0.0.1, for
// the local runtime's nodes and for tests that start servers of their own.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

var portState struct {
	mu     sync.Mutex
	handed map[int]bool // ports Take returned in this process
}

// minPort is the lowest port Take picks outside the ephemeral range.
const minPort = 10000

// Take returns n distinct TCP ports that were free on 127.0.0.1 when
// it checked them. It is safe for concurrent use.
//
// A free port can still be taken by another process before its user binds
// it. To make that unlikely, Take picks ports outside the kernel's
// ephemeral range (from which connect() and bind to port 0 draw their
// ports; on Linux read from /proc/sys/net/ipv4/ip_local_port_range), and it
// never returns a port twice in the life of the process (until it runs
// short, then it forgets the old ones), so a killed node can restart on its
// ports while a later cluster of the same process allocates others. When no
// large enough range lies outside the ephemeral one, it asks the kernel for
// port 0.
func Take(n int) ([]int, error) {
	if n <= 0 {
		return nil, fmt.Errorf("Take: n must be positive, got %d", n)
	}
	lo, hi, ok := candidateRange()
	if !ok {
		return kernelPorts(n)
	}
	portState.mu.Lock()
	defer portState.mu.Unlock()
	if portState.handed == nil {
		portState.handed = map[int]bool{}
	}
	if len(portState.handed)+n > (hi-lo+1)/2 {
		portState.handed = map[int]bool{}
	}
	var (
		held  []net.Listener
		ports []int
		taken = map[int]bool{}
	)
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 100*n; tries++ {
		p := lo + rand.IntN(hi-lo+1)
		if taken[p] || portState.handed[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // in use: try another
		}
		taken[p] = true
		held = append(held, l)
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("Take: found only %d of %d free ports in %d-%d on 127.0.0.1", len(ports), n, lo, hi)
	}
	for _, p := range ports {
		portState.handed[p] = true
	}
	return ports, nil
}

// kernelPorts asks the kernel for n ports (bind to port 0), holding every
// listener until all are known so the ports are distinct.
func kernelPorts(n int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("Take: listen on 127.0.0.1:0: %w", err)
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// candidateRange returns a port range below or above the ephemeral range,
// if one of at least 1000 ports exists.
func candidateRange() (lo, hi int, ok bool) {
	elo, ehi := ephemeralRange()
	switch {
	case elo-minPort >= 1000:
		return minPort, elo - 1, true
	case 65535-ehi >= 1000:
		return ehi + 1, 65535, true
	}
	return 0, 0, false
}

// ephemeralRange returns the kernel's ephemeral port range (inclusive).
func ephemeralRange() (lo, hi int) {
	if runtime.GOOS == "linux" {
		if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
			f := strings.Fields(string(b))
			if len(f) == 2 {
				l, err1 := strconv.Atoi(f[0])
				h, err2 := strconv.Atoi(f[1])
				if err1 == nil && err2 == nil && l > 0 && h >= l {
					return l, h
				}
			}
		}
		return 32768, 60999 // the Linux default
	}
	return 49152, 65535 // IANA, the BSD and macOS default
}
