package faults

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// quorumStarts is a ProcessControl whose nodes get ready only once at
// least need of them are starting, as etcd members answer a linearizable
// read only once a quorum runs.
type quorumStarts struct {
	need int

	mu       sync.Mutex
	starting int
	ready    chan struct{}
}

func (q *quorumStarts) Kill(context.Context, string) error { return nil }
func (q *quorumStarts) Stop(context.Context, string) error { return nil }
func (q *quorumStarts) Start(ctx context.Context, id string) error {
	q.mu.Lock()
	q.starting++
	if q.starting == q.need {
		close(q.ready)
	}
	q.mu.Unlock()
	select {
	case <-q.ready:
		return nil
	case <-ctx.Done():
		return errors.New("not ready: no quorum")
	}
}

// TestRestartsTogether: nodes killed together start again together, so
// that nodes which get ready only with a quorum do.
func TestRestartsTogether(t *testing.T) {
	q := &quorumStarts{need: 2, ready: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := startAll(ctx, q, []string{"n1", "n2"}, "restart"); err != nil {
		t.Fatalf("startAll: %v (one start at a time would wait for ever)", err)
	}
}
