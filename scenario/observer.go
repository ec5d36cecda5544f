package scenario

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// observer polls every node's status on a path faults never cut and
// records each answer (or the failure to get one) as an observer event.
// Without a status reader it records nothing and knows no leader.
type observer struct {
	cluster  targets.Cluster
	status   targets.StatusReader
	rec      *history.Recorder
	interval time.Duration

	mu     sync.Mutex
	latest map[string]targets.Status
	cancel context.CancelFunc
	done   chan struct{}
}

func startObserver(ctx context.Context, c targets.Cluster, sr targets.StatusReader, rec *history.Recorder, interval time.Duration) *observer {
	ctx, cancel := context.WithCancel(ctx)
	o := &observer{cluster: c, status: sr, rec: rec, interval: interval, latest: map[string]targets.Status{}, cancel: cancel, done: make(chan struct{})}
	if sr == nil {
		close(o.done)
		return o
	}
	go o.loop(ctx)
	return o
}

func (o *observer) loop(ctx context.Context) {
	defer close(o.done)
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		o.pollAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *observer) pollAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range o.cluster.Nodes() {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, o.interval)
			defer cancel()
			st, err := o.status.Status(pctx, id)
			if ctx.Err() != nil {
				return
			}
			ev := history.Event{Type: history.Info, Process: history.Observer, F: "status", Node: id}
			if err != nil {
				ev.Error = err.Error()
				ev.Value = json.RawMessage(`{"role":"unreachable"}`)
			} else {
				v := map[string]any{"role": st.Role, "term": st.Term, "leader": st.Leader, "commit_index": st.CommitIndex}
				if st.AppliedIdx > 0 {
					v["applied_index"] = st.AppliedIdx
				}
				b, _ := json.Marshal(v)
				ev.Value = b
				o.mu.Lock()
				o.latest[id] = st
				o.mu.Unlock()
			}
			o.rec.Record(ev)
		}(n.ID)
	}
	wg.Wait()
}

// Leader returns the id of a node that reports itself leader, if any.
func (o *observer) Leader() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, st := range o.latest {
		if st.IsLeader() {
			return id
		}
	}
	return ""
}

func (o *observer) Stop() {
	o.cancel()
	<-o.done
}
