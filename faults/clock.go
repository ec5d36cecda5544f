package faults

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ClockSkew shifts the target nodes' clocks (through the system's SetClock:
// the node kit's admin API) and resets them when the fault ends.
type ClockSkew struct {
	Target Selector      `yaml:"target" doc:"the nodes whose clocks are shifted"`
	Offset time.Duration `yaml:"offset" signed:"true" doc:"how far to shift the clocks; negative goes back"`
}

// Family is "clock".
func (*ClockSkew) Family() string { return "clock" }

// Doc says what the fault does.
func (*ClockSkew) Doc() string {
	return "shift the target nodes' clocks through their admin API (systems with clock control) and reset them when the fault ends"
}

// Available needs the system's clock control.
func (*ClockSkew) Available(env Env) error { return needClock(env) }

// Validate refuses an offset of 0, which shifts nothing.
func (c *ClockSkew) Validate(Env) error {
	if c.Offset == 0 {
		return specErr("offset", "0 shifts nothing: give a duration such as 5s or -2s")
	}
	return nil
}

// Inject shifts each target's clock; undoing resets them.
func (c *ClockSkew) Inject(ctx context.Context, in *Injection) (Undo, error) {
	var clocked []string
	undo := func(ctx context.Context) error {
		var errs []error
		for _, id := range clocked {
			if err := in.SetClock(ctx, id, 0); err != nil {
				errs = append(errs, fmt.Errorf("reset clock of %s: %w", id, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, id := range in.Targets {
		if err := in.SetClock(ctx, id, c.Offset); err != nil {
			return undo, fmt.Errorf("clock-skew %s: %w", id, err)
		}
		clocked = append(clocked, id)
	}
	return undo, nil
}
