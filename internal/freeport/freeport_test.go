package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestTake(t *testing.T) {
	if _, err := Take(0); err == nil {
		t.Error("Take(0) succeeded")
	}
	a, err := Take(20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Take(20)
	if err != nil {
		t.Fatal(err)
	}
	elo, ehi := ephemeralRange()
	seen := map[int]bool{}
	for _, p := range append(a, b...) {
		if seen[p] {
			t.Errorf("port %d returned twice", p)
		}
		seen[p] = true
		if _, _, ok := candidateRange(); ok && p >= elo && p <= ehi {
			t.Errorf("port %d is in the ephemeral range %d-%d", p, elo, ehi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d is not free: %v", p, err)
			continue
		}
		l.Close()
	}
}
