package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/faultline/faultline/targets"
)

// Kill kills the target nodes (SIGKILL, docker kill) and starts them again
// when the fault ends; their data on disk survives.
type Kill struct {
	Target Selector `yaml:"target" doc:"the nodes to kill"`
}

// Family is "kill".
func (*Kill) Family() string { return "kill" }

// Doc says what the fault does.
func (*Kill) Doc() string {
	return "kill the target nodes (SIGKILL or docker kill) and start them again when the fault ends; data on disk survives"
}

// Available needs process control.
func (*Kill) Available(env Env) error { return needProcess(env) }

// Inject first makes the links into the targets refuse connections (when
// there are proxies), then kills each target. A dead process refuses
// connections; a live proxy in front of it would instead accept and close
// them, turning requests that never reached any process into unknown
// outcomes. The links are cut first so that no request slips in between.
// Undoing starts the nodes before their links open again.
func (k *Kill) Inject(ctx context.Context, in *Injection) (Undo, error) {
	pc, err := in.Process()
	if err != nil {
		return nil, err
	}
	var refuse Undo
	if links, _ := in.Links(); links != nil {
		if into := in.LinksInto(in.Targets); len(into) > 0 {
			lf, err := links.Cut(ctx, into, Refuse)
			if err != nil {
				return nil, fmt.Errorf("kill: refusing the links into %v: %w", in.Targets, err)
			}
			refuse = in.LinkFault(lf)
		}
	}
	var killed []string
	start := func(ctx context.Context) error { return startAll(ctx, pc, killed, "restart") }
	undo := undoAll(refuse, start)
	for _, id := range in.Targets {
		// Noted before the call: a kill that fails part way (its wait
		// cancelled) may still have killed the node, and ending the fault
		// must start it again (Start of a running node does nothing).
		killed = append(killed, id)
		in.Touch(id, Killed)
		if err := pc.Kill(ctx, id); err != nil {
			return undo, fmt.Errorf("kill %s: %w", id, err)
		}
	}
	return undo, nil
}

// startAll starts the nodes ids all at once and waits for them: a node
// may be ready only once others are (an etcd member answers a
// linearizable read once a quorum runs), so one at a time could wait out a
// readiness timeout per node. Each failure is named "VERB ID: ...".
func startAll(ctx context.Context, pc targets.ProcessControl, ids []string, verb string) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pc.Start(ctx, id); err != nil {
				errs[i] = fmt.Errorf("%s %s: %w", verb, id, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
