package workloads

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/faultline/faultline/history"
)

// Client performs one operation at a time. It is the consumer-side view of
// targets.Client, which satisfies it. Do never returns an error: every
// failure is an Outcome of type history.Fail (certainly no effect) or
// history.Info (unknown effect). Run gives each worker its own Client and
// never calls one Client from two goroutines at once. If a Client also
// implements io.Closer, Run closes it when the run ends.
type Client interface {
	Do(ctx context.Context, op history.Op) history.Outcome
}

// Generator produces the ops of a workload.
//
// Next and Observe are called concurrently by every worker and must be safe
// for concurrent use. Next must take all its randomness from r, which
// belongs to the calling worker (worker is its index, 0..Concurrency-1) and
// is seeded from Config.Seed, so that a run's op sequence is reproducible
// for a seed (modulo timing: what other workers observed, and which worker
// takes which open-loop op). Observe is called with every op's outcome after
// its completion was recorded.
type Generator interface {
	Next(r *rand.Rand, worker int) history.Op
	Observe(op history.Op, out history.Outcome)
}

// KV function names, as they appear in the history's "f" field.
const (
	FGet = "get"
	FPut = "put"
	FCAS = "cas"
)

// KVConfig configures the register/KV workload.
type KVConfig struct {
	// Keys is the number of keys, named "k0" .. "k<Keys-1>"; 0 means 5.
	Keys int
	// Get, Put and CAS are relative weights of the three functions (only
	// their ratios matter). All zero means 1:1:1. Negative is an error.
	Get, Put, CAS float64
}

// KV is the register/KV workload: get, put and cas over a fixed set of keys,
// each key chosen uniformly.
//
// Written values (put values and cas "to" values) are JSON integers 1, 2, 3,
// ... from a counter held by the KV, so every written value is unique in the
// run (across all keys, hence per key) as long as the same *KV is used for
// every phase of the run (warm-up, main, ...). A cas op's value is
// {"from":X,"to":Y}: X is the last value this KV saw for the key (written by
// an ok put or cas, or returned by an ok get, by any worker), or null if it
// saw none; Y is a fresh value.
//
// With a single worker, the op sequence is a function of the seed alone.
// With several, functions and keys per worker still are, but written values
// and cas "from" values depend on the interleaving.
//
// KV is safe for concurrent use.
type KV struct {
	keys    []string
	cumGet  float64 // cumulative weights, normalized to 1
	cumPut  float64
	counter atomic.Int64
	last    []atomic.Pointer[json.RawMessage]
	index   map[string]int
	// stride and offset make written values stride·n + offset (ShardKeys);
	// stride 0 means plain n.
	stride, offset int64
}

// NewKV returns a KV workload. Errors name the bad field.
func NewKV(cfg KVConfig) (*KV, error) {
	if cfg.Keys < 0 {
		return nil, fmt.Errorf("workloads: kv keys must be at least 1 (or 0 for the default 5), got %d", cfg.Keys)
	}
	if cfg.Keys == 0 {
		cfg.Keys = 5
	}
	for _, w := range []struct {
		name string
		v    float64
	}{{"get", cfg.Get}, {"put", cfg.Put}, {"cas", cfg.CAS}} {
		if w.v < 0 || math.IsNaN(w.v) || math.IsInf(w.v, 0) {
			return nil, fmt.Errorf("workloads: kv weight %s must be a finite number >= 0, got %v", w.name, w.v)
		}
	}
	if cfg.Get == 0 && cfg.Put == 0 && cfg.CAS == 0 {
		cfg.Get, cfg.Put, cfg.CAS = 1, 1, 1
	}
	total := cfg.Get + cfg.Put + cfg.CAS
	g := &KV{
		keys:   make([]string, cfg.Keys),
		cumGet: cfg.Get / total,
		cumPut: (cfg.Get + cfg.Put) / total,
		last:   make([]atomic.Pointer[json.RawMessage], cfg.Keys),
		index:  make(map[string]int, cfg.Keys),
	}
	for i := range g.keys {
		g.keys[i] = "k" + strconv.Itoa(i)
		g.index[g.keys[i]] = i
	}
	return g, nil
}

// Keys returns the workload's keys (a copy), e.g. for final reads.
func (g *KV) Keys() []string { return append([]string(nil), g.keys...) }

// Next returns the next op for a worker. See KV for the values it writes.
func (g *KV) Next(r *rand.Rand, worker int) history.Op {
	x := r.Float64()
	k := r.IntN(len(g.keys))
	op := history.Op{Key: g.keys[k]}
	switch {
	case x < g.cumGet:
		op.F = FGet
	case x < g.cumPut:
		op.F = FPut
		op.Value = g.fresh(nil)
	default:
		op.F = FCAS
		from := history.Null
		if p := g.last[k].Load(); p != nil {
			from = *p
		}
		b := make([]byte, 0, len(from)+32)
		b = append(b, `{"from":`...)
		b = append(b, from...)
		b = append(b, `,"to":`...)
		b = g.fresh(b)
		op.Value = append(b, '}')
	}
	return op
}

// fresh appends a new unique value to dst.
func (g *KV) fresh(dst []byte) []byte {
	if g.stride > 1 {
		return strconv.AppendInt(dst, g.counter.Add(1)*g.stride+g.offset, 10)
	}
	return strconv.AppendInt(dst, g.counter.Add(1), 10)
}

// Observe remembers the last value known for the op's key.
func (g *KV) Observe(op history.Op, out history.Outcome) {
	if out.Type != history.OK {
		return
	}
	k, ok := g.index[op.Key]
	if !ok {
		return
	}
	var v json.RawMessage
	switch op.F {
	case FPut:
		v = op.Value
	case FGet:
		if out.Value == nil {
			v = history.Null
		} else {
			v = append(json.RawMessage(nil), out.Value...)
		}
	case FCAS:
		// Next wrote the value as {"from":X,"to":Y} with Y a number, so the
		// last `,"to":` starts Y; anything else is parsed properly.
		b := op.Value
		if i := bytes.LastIndex(b, []byte(`,"to":`)); i >= 0 && len(b) > 0 && b[len(b)-1] == '}' {
			v = b[i+len(`,"to":`) : len(b)-1]
		} else {
			var c history.CAS
			if json.Unmarshal(op.Value, &c) != nil {
				return
			}
			v = c.To
		}
	default:
		return
	}
	g.last[k].Store(&v)
}
