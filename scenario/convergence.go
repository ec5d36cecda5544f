package scenario

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// replicaRoundEvery is the pause between two rounds of replica reads.
const replicaRoundEvery = 100 * time.Millisecond

// convergenceWithin returns the convergence bound when the scenario runs
// the convergence checker on a system with local reads, else 0.
func (s *Scenario) convergenceWithin() time.Duration {
	if s.sys == nil || s.sys.LocalRead == nil || !slices.Contains(s.checkerNames(), "convergence") {
		return 0
	}
	if cc, ok := s.Checkers.Lookup("convergence"); ok {
		if p, ok := cc.Params.(*checkers.ConvergenceParams); ok && p.Within > 0 {
			return p.Within
		}
	}
	return checkers.DefaultConvergenceWithin
}

// readReplicas records rounds of replica reads (checkers.ReplicaReadF):
// each round reads every key on every node of c through the system's local
// read, concurrently per node, until a round finds all replicas agreeing
// on every key, or within has passed, or ctx ends. It returns the number
// of rounds and whether the last one agreed. Reads go over the admin path,
// which faults never cut.
func readReplicas(ctx context.Context, c targets.Cluster, read func(context.Context, targets.NodeInfo, string) (json.RawMessage, error), keys []string, rec *history.Recorder, within time.Duration) (int, bool) {
	deadline := time.Now().Add(within)
	nodes := c.Nodes()
	for round := 1; ; round++ {
		vals := make([]map[string]string, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			vals[i] = map[string]string{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, k := range keys {
					rctx, cancel := context.WithTimeout(ctx, time.Second)
					v, err := read(rctx, n, k)
					cancel()
					rr := checkers.ReplicaRead{Round: round, Value: v}
					if err != nil {
						rr = checkers.ReplicaRead{Round: round, Error: err.Error()}
					} else {
						vals[i][k] = checkers.CanonicalValue(v)
					}
					b, _ := json.Marshal(rr)
					rec.Record(history.Event{Type: history.Info, Process: history.Observer, F: checkers.ReplicaReadF, Node: n.ID, Key: k, Value: b})
				}
			}()
		}
		wg.Wait()
		agree := true
		for _, k := range keys {
			for i := range nodes {
				v, ok := vals[i][k]
				if !ok || v != vals[0][k] {
					agree = false
				}
			}
		}
		if agree || ctx.Err() != nil || time.Now().After(deadline) {
			return round, agree
		}
		select {
		case <-ctx.Done():
			return round, false
		case <-time.After(replicaRoundEvery):
		}
	}
}
