package checkers

import (
	"encoding/json"
	"math"

	"github.com/faultline/faultline/history"
)

// A deliberately naive linearizability checker, written from the
// definitions and sharing no code with the real one, to cross-check it on
// small histories. It expects faultline's own f names and well-formed
// histories whose values are already canonical (as genHistory writes them).

type bruteOp struct {
	f         string // get, put, cas, mismatch
	info      bool
	val, from string
	call, ret int64
}

func bruteOps(evs []history.Event) map[string][]bruteOp {
	pending := make(map[history.Process]history.Event)
	out := make(map[string][]bruteOp)
	add := func(inv history.Event, comp *history.Event) {
		op := bruteOp{f: inv.F, call: inv.Time, ret: math.MaxInt64}
		typ := history.Info
		if comp != nil {
			typ = comp.Type
		}
		switch typ {
		case history.OK:
			op.ret = comp.Time
		case history.Info:
			op.info = true
		case history.Fail:
			if inv.F != "cas" || comp.Error != "mismatch" {
				return
			}
			op.f = "mismatch"
			op.ret = comp.Time
		}
		switch inv.F {
		case "get":
			if typ != history.OK {
				return
			}
			op.val = string(comp.Value)
		case "put":
			op.val = string(inv.Value)
		case "cas":
			var c struct{ From, To json.RawMessage }
			if err := json.Unmarshal(inv.Value, &c); err != nil {
				panic(err)
			}
			op.from, op.val = string(c.From), string(c.To)
		}
		out[inv.Key] = append(out[inv.Key], op)
	}
	for _, ev := range evs {
		if !ev.Process.IsClient() {
			continue
		}
		if ev.Type == history.Invoke {
			pending[ev.Process] = ev
			continue
		}
		inv := pending[ev.Process]
		delete(pending, ev.Process)
		add(inv, &ev)
	}
	for _, inv := range pending {
		add(inv, nil)
	}
	return out
}

// bruteLinearizable searches every order: at each step any op that no
// unplaced op must precede (one that returned before it was invoked) may
// take effect; ok ops must all take effect, info ops may or may not.
func bruteLinearizable(ops []bruteOp) bool {
	n := len(ops)
	if n > 20 {
		panic("brute force is for small histories")
	}
	type memo struct {
		mask  uint32
		state string
	}
	seen := make(map[memo]bool)
	var rec func(mask uint32, state string) bool
	rec = func(mask uint32, state string) bool {
		done := true
		for i := 0; i < n; i++ {
			if mask&(1<<i) == 0 && !ops[i].info {
				done = false
			}
		}
		if done {
			return true
		}
		if seen[memo{mask, state}] {
			return false
		}
		seen[memo{mask, state}] = true
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				continue
			}
			blocked := false
			for j := 0; j < n; j++ {
				if j != i && mask&(1<<j) == 0 && !ops[j].info && ops[j].ret < ops[i].call {
					blocked = true
					break
				}
			}
			if blocked {
				continue
			}
			o := ops[i]
			next, ok := state, false
			switch o.f {
			case "get":
				ok = state == o.val
			case "put":
				ok, next = true, o.val
			case "cas":
				ok = state == o.from
				next = o.val
			case "mismatch":
				ok = state != o.from
			}
			if ok && rec(mask|1<<i, next) {
				return true
			}
		}
		return false
	}
	return rec(0, "null")
}
