package faults

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/faultline/faultline/targets"
)

// MaxDrift is the largest clock drift clock-skew accepts: a clock gaining
// 10 s per real second. A drift must also be above -1, so that the clock
// still moves forward.
const MaxDrift = 10

// ClockSkew sets the target nodes' clocks (through the system's SetClock:
// the node kit's admin API) when the fault starts, and resets them to the
// wall clock when it ends. From the start, a target's clock reads the wall
// clock plus Offset plus Drift seconds per real second since the start
// (see targets.Clock): Offset is a step, Drift a rate error.
type ClockSkew struct {
	Target Selector      `yaml:"target" doc:"the nodes whose clocks are set"`
	Offset time.Duration `yaml:"offset" signed:"true" doc:"how far the clocks step when the fault starts; negative goes back; 0s with a drift for a clock that only drifts"`
	Drift  float64       `yaml:"drift" doc:"seconds the clocks gain per real second from the fault's start, on top of offset: -0.95 runs them at 5% speed, 1 at double speed; above -1, at most 10"`
}

// Family is "clock".
func (*ClockSkew) Family() string { return "clock" }

// Doc says what the fault does.
func (*ClockSkew) Doc() string {
	return "step the target nodes' clocks by offset and make them drift through their admin API (systems with clock control); reset them to the wall clock when the fault ends"
}

// Available needs the system's clock control.
func (*ClockSkew) Available(env Env) error { return needClock(env) }

// Validate refuses a drift outside (-1, MaxDrift], and an offset and drift
// both 0, which change nothing.
func (c *ClockSkew) Validate(Env) error {
	if math.IsNaN(c.Drift) || c.Drift <= -1 || c.Drift > MaxDrift {
		return specErr("drift", "%v is out of range: give a number above -1 (the clock must still move forward; -0.95 runs it at 5%% speed) and at most %d", c.Drift, MaxDrift)
	}
	if c.Offset == 0 && c.Drift == 0 {
		return specErr("offset", "0 shifts nothing and drift is 0: give an offset such as 5s or -2s, a drift such as -0.5, or both")
	}
	return nil
}

// Inject sets each target's clock; undoing resets them.
func (c *ClockSkew) Inject(ctx context.Context, in *Injection) (Undo, error) {
	var clocked []string
	undo := func(ctx context.Context) error {
		var errs []error
		for _, id := range clocked {
			if err := in.SetClock(ctx, id, targets.Clock{}); err != nil {
				errs = append(errs, fmt.Errorf("reset clock of %s: %w", id, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, id := range in.Targets {
		if err := in.SetClock(ctx, id, targets.Clock{Offset: c.Offset, Drift: c.Drift}); err != nil {
			return undo, fmt.Errorf("clock-skew %s: %w", id, err)
		}
		clocked = append(clocked, id)
	}
	return undo, nil
}
