package checkers

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"strconv"

	"github.com/faultline/faultline/history"
)

// genConfig describes a synthetic register history.
type genConfig struct {
	Seed     int64
	Ops      int     // total client operations
	Keys     int     // registers
	Workers  int     // concurrent workers (a worker gets a fresh process after info)
	InfoProb float64 // chance an op ends info (then takes effect with chance 1/2)
	FailProb float64 // chance an op fails definitely (never takes effect)
	MaxDur   int64   // longest op, ns
	MaxGap   int64   // longest pause between a worker's ops, ns
	Faults   int     // nemesis windows to add
}

type genOp struct {
	worker      int
	proc        history.Process
	f           string
	key         string
	call, ret   int64
	lin         int64
	val         int64 // put: value; cas: to
	from        int64 // cas: from (-1 = null)
	readVal     int64 // get: value read (-1 = null)
	typ         history.Type
	casMismatch bool
}

// genHistory simulates a linearizable register store: every operation
// takes effect (or not) at a random point inside its interval, and the
// outcomes follow from applying them in that order. The result is a valid
// history by construction.
func genHistory(cfg genConfig) []history.Event {
	rng := rand.New(rand.NewSource(cfg.Seed))
	if cfg.MaxDur <= 0 {
		cfg.MaxDur = 100_000
	}
	if cfg.MaxGap <= 0 {
		cfg.MaxGap = 20_000
	}
	per := (cfg.Ops + cfg.Workers - 1) / cfg.Workers
	var ops []*genOp
	for w := 0; w < cfg.Workers && len(ops) < cfg.Ops; w++ {
		t := rng.Int63n(cfg.MaxGap) + 1
		for i := 0; i < per && len(ops) < cfg.Ops; i++ {
			call := t
			dur := rng.Int63n(cfg.MaxDur) + 1
			op := &genOp{worker: w, call: call, ret: call + dur, lin: call + rng.Int63n(dur+1), key: "k" + strconv.Itoa(rng.Intn(cfg.Keys))}
			switch r := rng.Float64(); {
			case r < 0.5:
				op.f = "get"
			case r < 0.8:
				op.f = "put"
			default:
				op.f = "cas"
			}
			ops = append(ops, op)
			t = op.ret + rng.Int63n(cfg.MaxGap) + 1
		}
	}
	// Apply in linearization order.
	lin := append([]*genOp(nil), ops...)
	sort.SliceStable(lin, func(i, j int) bool { return lin[i].lin < lin[j].lin })
	state := make(map[string]int64)
	written := make(map[string][]int64)
	next := int64(1)
	for _, op := range lin {
		cur, ok := state[op.key]
		if !ok {
			cur = -1
		}
		op.typ = history.OK
		effect := true
		switch r := rng.Float64(); {
		case r < cfg.InfoProb:
			op.typ = history.Info
			effect = rng.Intn(2) == 0
		case r < cfg.InfoProb+cfg.FailProb:
			op.typ = history.Fail
			effect = false
		}
		switch op.f {
		case "get":
			op.readVal = cur
		case "put":
			op.val = next
			next++
			written[op.key] = append(written[op.key], op.val)
			if effect {
				state[op.key] = op.val
			}
		case "cas":
			op.val = next
			next++
			written[op.key] = append(written[op.key], op.val)
			op.from = cur
			if rng.Float64() < 0.4 {
				if w := written[op.key]; len(w) > 0 {
					op.from = w[rng.Intn(len(w))]
				} else {
					op.from = 1 << 40
				}
			}
			if op.from == cur {
				if effect {
					state[op.key] = op.val
				}
			} else if op.typ == history.OK {
				op.typ = history.Fail
				op.casMismatch = true
			}
		}
	}
	// Processes: a worker moves to a fresh process after an info op.
	byWorker := make(map[int][]*genOp)
	for _, op := range ops {
		byWorker[op.worker] = append(byWorker[op.worker], op)
	}
	fresh := history.Process(cfg.Workers)
	for w := 0; w < cfg.Workers; w++ {
		p := history.Process(w)
		for _, op := range byWorker[w] {
			op.proc = p
			if op.typ == history.Info {
				p = fresh
				fresh++
			}
		}
	}
	type stamped struct {
		t   int64
		seq int
		ev  history.Event
	}
	var evs []stamped
	val := func(v int64) json.RawMessage {
		if v < 0 {
			return history.Null
		}
		return json.RawMessage(strconv.FormatInt(v, 10))
	}
	for _, op := range ops {
		inv := history.Event{Type: history.Invoke, Process: op.proc, F: op.f, Key: op.key}
		comp := history.Event{Type: op.typ, Process: op.proc, F: op.f, Key: op.key}
		switch op.f {
		case "get":
			if op.typ == history.OK {
				comp.Value = val(op.readVal)
			}
		case "put":
			inv.Value, comp.Value = val(op.val), val(op.val)
		case "cas":
			arg := json.RawMessage(fmt.Sprintf(`{"from":%s,"to":%d}`, val(op.from), op.val))
			inv.Value, comp.Value = arg, arg
		}
		switch {
		case op.casMismatch:
			comp.Error = "mismatch"
		case op.typ == history.Fail:
			comp.Error = "unavailable"
		case op.typ == history.Info:
			comp.Error = "timeout"
		}
		evs = append(evs, stamped{op.call, 0, inv}, stamped{op.ret, 1, comp})
	}
	var end int64
	for _, e := range evs {
		end = max(end, e.t)
	}
	for i := 0; i < cfg.Faults; i++ {
		s := rng.Int63n(end + 1)
		e := s + rng.Int63n(end-s+1)
		v := json.RawMessage(fmt.Sprintf(`{"nodes":["n%d"]}`, i%3+1))
		evs = append(evs,
			stamped{s, 0, history.Event{Type: history.Info, Process: history.Nemesis, F: "partition", Value: v, Phase: "start"}},
			stamped{e, 1, history.Event{Type: history.Info, Process: history.Nemesis, F: "partition", Value: v, Phase: "end"}})
	}
	// Order by time; at equal times invokes first (intervals are closed, so
	// either order is a faithful record).
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].t != evs[j].t {
			return evs[i].t < evs[j].t
		}
		return evs[i].seq < evs[j].seq
	})
	out := make([]history.Event, len(evs))
	for i, e := range evs {
		e.ev.Time = e.t
		out[i] = e.ev
	}
	return out
}

// corruptRead changes the value of one random ok read to another value
// written to its key (or null), which usually makes the history invalid.
// It returns false if the history has no ok read.
func corruptRead(evs []history.Event, rng *rand.Rand) bool {
	var reads []int
	written := make(map[string][]json.RawMessage)
	for i, ev := range evs {
		if ev.Type == history.OK && ev.F == "get" {
			reads = append(reads, i)
		}
		if ev.Type == history.Invoke && ev.F == "put" {
			written[ev.Key] = append(written[ev.Key], ev.Value)
		}
	}
	if len(reads) == 0 {
		return false
	}
	i := reads[rng.Intn(len(reads))]
	cands := append([]json.RawMessage{history.Null}, written[evs[i].Key]...)
	evs[i].Value = cands[rng.Intn(len(cands))]
	return true
}
