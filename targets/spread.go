package targets

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"

	"github.com/faultline/faultline/history"
)

// Spread returns a Client that sends each operation to one of clients,
// chosen uniformly by a generator seeded with seed: a client process whose
// operations spread over the nodes (each client homed on one node) rather
// than sticking to one, so that it observes the cluster as a session
// without affinity would. The choice sequence is reproducible for a seed.
// Spread owns clients: Close closes every one. Do is safe for concurrent
// use (a worker calls it one op at a time). It panics if clients is empty.
func Spread(clients []Client, seed uint64) Client {
	if len(clients) == 0 {
		panic("targets: Spread of no clients")
	}
	return &spread{clients: clients, rng: rand.New(rand.NewPCG(seed, 0x5e55107))}
}

type spread struct {
	clients []Client
	mu      sync.Mutex
	rng     *rand.Rand
}

func (s *spread) Do(ctx context.Context, op history.Op) history.Outcome {
	s.mu.Lock()
	c := s.clients[s.rng.IntN(len(s.clients))]
	s.mu.Unlock()
	return c.Do(ctx, op)
}

func (s *spread) Close() error {
	var errs []error
	for _, c := range s.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
