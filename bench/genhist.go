package main

import (
	"bufio"
	"container/heap"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/faultline/faultline/history"
)

// genConfig describes a generated KV history.
type genConfig struct {
	Ops      int     // client operations
	Keys     int     // registers k0 .. k<Keys-1>, chosen uniformly
	Workers  int     // concurrent clients (a client takes a fresh process after an info)
	Seed     uint64  // the same config and seed give the same file
	InfoProb float64 // chance an op ends info (a timeout); it takes effect with chance 1/2
	FailProb float64 // chance an op fails definitely (never takes effect)
}

// genStats counts what writeHistory wrote.
type genStats struct {
	Ops, Info, Fail, Mismatch int
	Events                    int
}

// cmdGenHist is `bench genhist`: write a KV history of --ops operations.
func cmdGenHist(args []string) error {
	fs := flag.NewFlagSet("genhist", flag.ContinueOnError)
	cfg := genConfig{}
	fs.IntVar(&cfg.Ops, "ops", 100_000, "client operations")
	fs.IntVar(&cfg.Keys, "keys", 1000, "keys")
	fs.IntVar(&cfg.Workers, "workers", 32, "concurrent clients")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.Float64Var(&cfg.InfoProb, "info", 0.01, "fraction of operations that end info")
	fs.Float64Var(&cfg.FailProb, "fail", 0.01, "fraction of operations that fail definitely")
	out := fs.String("out", "", "the file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	_, err := genHistoryFile(*out, cfg)
	return err
}

// genHistoryFile writes the history of cfg to path.
func genHistoryFile(path string, cfg genConfig) (genStats, error) {
	f, err := os.Create(path)
	if err != nil {
		return genStats{}, err
	}
	defer f.Close()
	st, err := writeHistory(f, cfg)
	if err != nil {
		return st, fmt.Errorf("writing %s: %w", path, err)
	}
	return st, f.Close()
}

// Event kinds of the simulation (events at equal times happen in the order
// they were queued).
const (
	evReturn = iota // an op completes: its line is written
	evInvoke        // a client invokes its next op: its line is written
	evEffect        // the op takes effect (its linearization point)
)

type simEvent struct {
	t      int64
	kind   uint8
	worker int32
	seq    uint64
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].t != q[j].t {
		return q[i].t < q[j].t
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// simOp is a client's op in flight.
type simOp struct {
	f        string
	key      int
	val      int64 // put: written; cas: to
	from     int64 // cas: compared against (0: null)
	read     int64 // get: the value read (0: null)
	typ      history.Type
	effect   bool // an info op: whether it takes effect
	mismatch bool // a cas whose compare failed
}

// writeHistory simulates a linearizable KV store (a register per key)
// serving cfg.Workers clients and writes the history, in faultline's
// format (a header, then JSON Lines in time order), to w. Every op takes
// effect, or not, at a random instant inside its interval, and its outcome
// follows from the store's state at that instant, so the history is
// linearizable by construction. The mix is the register workload's (get
// 0.5, put 0.3, cas 0.2); written values are unique (1, 2, ...); a cas
// compares against the key's current value with chance 0.6, else against
// an older one (then it fails with "mismatch"); an op that ends info
// (a timeout) takes effect with chance 1/2, and its client continues under
// a fresh process id; a definite failure ("unavailable") has no effect.
// It streams: memory does not grow with cfg.Ops.
func writeHistory(w io.Writer, cfg genConfig) (genStats, error) {
	if cfg.Ops < 1 || cfg.Keys < 1 || cfg.Workers < 1 {
		return genStats{}, fmt.Errorf("ops %d, keys %d and workers %d must be at least 1", cfg.Ops, cfg.Keys, cfg.Workers)
	}
	if cfg.InfoProb < 0 || cfg.FailProb < 0 || cfg.InfoProb+cfg.FailProb > 1 {
		return genStats{}, fmt.Errorf("info %v and fail %v must be fractions adding up to at most 1", cfg.InfoProb, cfg.FailProb)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	bw := bufio.NewWriterSize(w, 1<<20)
	hdr, err := json.Marshal(history.HeaderLine{Type: history.Header, Faultline: "bench", Scenario: "bench-kv", Seed: int64(cfg.Seed), Start: time.Unix(0, 0).UTC().Format(time.RFC3339)})
	if err != nil {
		return genStats{}, err
	}
	bw.Write(append(hdr, '\n'))

	state := make([]int64, cfg.Keys)    // 0: absent (null)
	recent := make([][]int64, cfg.Keys) // the key's last few written values
	procs := make([]int, cfg.Workers)   // each worker's process id
	ops := make([]simOp, cfg.Workers)   // each worker's op in flight
	nextProc, nextVal := cfg.Workers, int64(1)
	var q simQueue
	var seq uint64
	push := func(t int64, kind uint8, worker int) {
		seq++
		heap.Push(&q, simEvent{t: t, kind: kind, worker: int32(worker), seq: seq})
	}
	for i := range cfg.Workers {
		procs[i] = i
		push(rng.Int64N(100_000), evInvoke, i)
	}
	var st genStats
	var buf []byte
	val := func(v int64) json.RawMessage {
		if v == 0 {
			return history.Null
		}
		return strconv.AppendInt(nil, v, 10)
	}
	emit := func(e history.Event) error {
		buf = e.AppendJSON(buf[:0])
		buf = append(buf, '\n')
		st.Events++
		_, err := bw.Write(buf)
		return err
	}
	issued := 0
	for q.Len() > 0 {
		ev := heap.Pop(&q).(simEvent)
		wk := int(ev.worker)
		op := &ops[wk]
		key := "k" + strconv.Itoa(op.key)
		switch ev.kind {
		case evInvoke:
			if issued == cfg.Ops {
				continue // this worker is done
			}
			issued++
			*op = simOp{key: rng.IntN(cfg.Keys), typ: history.OK}
			key = "k" + strconv.Itoa(op.key)
			switch r := rng.Float64(); {
			case r < 0.5:
				op.f = "get"
			case r < 0.8:
				op.f = "put"
			default:
				op.f = "cas"
			}
			dur := 100_000 + rng.Int64N(1_900_000) // 0.1 to 2 ms
			switch r := rng.Float64(); {
			case r < cfg.InfoProb:
				op.typ, op.effect = history.Info, rng.IntN(2) == 0
				dur = 50_000_000 + rng.Int64N(50_000_000) // a timeout: 50 to 100 ms
			case r < cfg.InfoProb+cfg.FailProb:
				op.typ = history.Fail
			default:
				op.effect = true
			}
			inv := history.Event{Type: history.Invoke, Process: history.Process(procs[wk]), Time: ev.t, F: op.f, Key: key}
			switch op.f {
			case "put":
				op.val, nextVal = nextVal, nextVal+1
				inv.Value = val(op.val)
			case "cas":
				op.val, nextVal = nextVal, nextVal+1
				op.from = state[op.key]
				if rc := recent[op.key]; len(rc) > 0 && rng.Float64() >= 0.6 {
					op.from = rc[rng.IntN(len(rc))]
				}
				inv.Value = casValue(val(op.from), val(op.val))
			}
			if err := emit(inv); err != nil {
				return st, err
			}
			push(ev.t+1+rng.Int64N(dur-1), evEffect, wk)
			push(ev.t+dur, evReturn, wk)
		case evEffect:
			cur := state[op.key]
			switch op.f {
			case "get":
				op.read = cur
			case "put":
				if op.effect {
					state[op.key] = op.val
				}
			case "cas":
				switch {
				case cur != op.from && op.typ == history.OK:
					op.typ, op.mismatch = history.Fail, true
				case cur == op.from && op.effect:
					state[op.key] = op.val
				}
			}
			if (op.f == "put" || op.f == "cas") && op.typ != history.Fail {
				rc := append(recent[op.key], op.val)
				if len(rc) > 8 {
					rc = rc[1:]
				}
				recent[op.key] = rc
			}
		case evReturn:
			comp := history.Event{Type: op.typ, Process: history.Process(procs[wk]), Time: ev.t, F: op.f, Key: key}
			switch op.f {
			case "get":
				if op.typ == history.OK {
					comp.Value = val(op.read)
				}
			case "put":
				comp.Value = val(op.val)
			case "cas":
				comp.Value = casValue(val(op.from), val(op.val))
			}
			st.Ops++
			switch {
			case op.mismatch:
				comp.Error = "mismatch"
				st.Mismatch++
			case op.typ == history.Fail:
				comp.Error = "unavailable"
				st.Fail++
			case op.typ == history.Info:
				comp.Error = "timeout"
				st.Info++
				procs[wk], nextProc = nextProc, nextProc+1
			}
			if err := emit(comp); err != nil {
				return st, err
			}
			push(ev.t+1+rng.Int64N(50_000), evInvoke, wk)
		}
	}
	return st, bw.Flush()
}

// casValue is a cas op's value, {"from":X,"to":Y}.
func casValue(from, to json.RawMessage) json.RawMessage {
	b := append([]byte(`{"from":`), from...)
	b = append(b, `,"to":`...)
	b = append(b, to...)
	return append(b, '}')
}
