package faults

import (
	"context"
	"errors"
	"fmt"
)

// Pause freezes the target nodes (SIGSTOP, docker pause) and resumes them
// when the fault ends.
type Pause struct {
	Target Selector `yaml:"target" doc:"the nodes to pause"`
}

// Family is "pause".
func (*Pause) Family() string { return "pause" }

// Doc says what the fault does.
func (*Pause) Doc() string {
	return "pause the target nodes (SIGSTOP or docker pause) and resume them when the fault ends"
}

// Available needs the runtime to pause nodes.
func (*Pause) Available(env Env) error { return needPause(env) }

// Inject pauses each target; undoing resumes them.
func (p *Pause) Inject(ctx context.Context, in *Injection) (Undo, error) {
	pz, err := in.Pauser()
	if err != nil {
		return nil, err
	}
	var paused []string
	undo := func(ctx context.Context) error {
		var errs []error
		for _, id := range paused {
			if err := pz.Resume(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("resume %s: %w", id, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, id := range in.Targets {
		paused = append(paused, id)
		in.Touch(id, Paused)
		if err := pz.Pause(ctx, id); err != nil {
			return undo, fmt.Errorf("pause %s: %w", id, err)
		}
	}
	return undo, nil
}
