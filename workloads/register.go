package workloads

import (
	"context"
	"math"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/fielderr"
)

func init() {
	Register(Workload{
		Name:      "register",
		Doc:       "get, put and cas over a fixed set of keys, each a register; written values are unique per key; ends with a read of every key",
		Ops:       []string{FGet, FPut, FCAS},
		Checkers:  []string{"linearizability", "lost-writes", "split-brain", "convergence"},
		NewParams: func() Params { return &RegisterParams{Keys: 8} },
	})
}

// RegisterParams are the register workload's parameters.
type RegisterParams struct {
	// Keys is the number of keys, k0..k<Keys-1>.
	Keys int `yaml:"keys"`
	// Mix gives the relative weight of each operation; nil means
	// get 0.5, put 0.3, cas 0.2. When given, an absent weight is 0.
	Mix *Mix `yaml:"mix"`
}

// Mix gives the relative weight of each operation of the register workload.
type Mix struct {
	Get float64 `yaml:"get"`
	Put float64 `yaml:"put"`
	CAS float64 `yaml:"cas"`
}

// DefaultMix is the register workload's mix when none is given.
var DefaultMix = Mix{Get: 0.5, Put: 0.3, CAS: 0.2}

// Check checks the values.
func (p *RegisterParams) Check() error {
	if p.Keys < 1 || p.Keys > 1_000_000 {
		return fielderr.New("keys", "%d keys: use 1 to 1000000", p.Keys)
	}
	if p.Mix == nil {
		return nil
	}
	for _, w := range []struct {
		name string
		v    float64
	}{{"get", p.Mix.Get}, {"put", p.Mix.Put}, {"cas", p.Mix.CAS}} {
		if math.IsNaN(w.v) || math.IsInf(w.v, 0) || w.v < 0 {
			return fielderr.New("mix."+w.name, "weight %v: weights are relative and must be finite numbers, 0 or more", w.v)
		}
	}
	if p.Mix.Get+p.Mix.Put+p.Mix.CAS <= 0 {
		return fielderr.New("mix", "every weight is 0: give at least one operation a positive weight (e.g. {get: 0.5, put: 0.3, cas: 0.2})")
	}
	return nil
}

// New returns the workload for one run.
func (p *RegisterParams) New() (Instance, error) {
	m := DefaultMix
	if p.Mix != nil {
		m = *p.Mix
	}
	kv, err := NewKV(KVConfig{Keys: p.Keys, Get: m.Get, Put: m.Put, CAS: m.CAS})
	if err != nil {
		return nil, err
	}
	return registerRun{kv}, nil
}

type registerRun struct{ *KV }

// Final reads every key once (see FinalReads).
func (r registerRun) Final(ctx context.Context, c Client, rec *history.Recorder, process history.Process) (history.Process, error) {
	_, next, err := FinalReads(ctx, c, r.Keys(), rec, process)
	return next, err
}
