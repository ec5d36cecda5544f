package targets

import (
	"context"
	"testing"

	"github.com/faultline/faultline/history"
)

type named struct {
	id     string
	closed *int
}

func (n named) Do(context.Context, history.Op) history.Outcome {
	return history.Outcome{Type: history.OK, Node: n.id}
}
func (n named) Close() error { *n.closed++; return nil }

// Spread sends operations to every client, in a sequence its seed
// reproduces, and closes them all.
func TestSpread(t *testing.T) {
	closed := 0
	mk := func() Client {
		return Spread([]Client{named{"n1", &closed}, named{"n2", &closed}, named{"n3", &closed}}, 7)
	}
	a, b := mk(), mk()
	seen := map[string]int{}
	var seqA, seqB []string
	for range 300 {
		x := a.Do(context.Background(), history.Op{F: "get", Key: "k"}).Node
		seqA = append(seqA, x)
		seqB = append(seqB, b.Do(context.Background(), history.Op{F: "get", Key: "k"}).Node)
		seen[x]++
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if seen[id] < 50 {
			t.Errorf("node %s got %d of 300 operations: %v", id, seen[id], seen)
		}
	}
	for i := range seqA {
		if seqA[i] != seqB[i] {
			t.Fatalf("the same seed gave different sequences at op %d", i)
		}
	}
	if err := a.Close(); err != nil || closed != 3 {
		t.Errorf("Close: %v, %d of 3 clients closed", err, closed)
	}
}
