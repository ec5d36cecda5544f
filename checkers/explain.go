package checkers

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
)

// Meanings of the violations the linearizability checker can name.
var violationMeaning = map[string]string{
	"stale-read": "A read returned a value that had been overwritten before the read began (a stale read): " +
		"the node that answered was behind, for example a leader serving reads without confirming it still leads, or a follower read.",
	"stale-cas": "A cas succeeded comparing against a value that had been overwritten before the cas began: " +
		"the node that compared was behind, so the update was applied to an old state (a lost update).",
	"never-written": "An operation observed a value that no operation ever wrote to this key: " +
		"corruption, a value taken from another key, or a history mixed from different runs.",
	"future-read": "An operation observed a value whose every write began only after that operation had completed: " +
		"the history's order is wrong (clock or recorder problem) or the system answered with data it could not yet have.",
	"mismatch-contradicted": "A cas reported \"mismatch\" (the register did not hold its expected value) although the register held that value throughout the cas: " +
		"the node that compared was behind, or the comparison is wrong (for example comparing JSON text rather than values).",
	"nonlinearizable": "No order of the operations on this key agrees with both a single register and the real-time order of the operations " +
		"(an operation that completed before another began must take effect first).",
}

// explainKey says why key has no linearization, using the longest partial
// linearization Porcupine found: after it, the operation that had to take
// effect next (the one that returned first among the rest) could not.
func (h *regHistory) explainKey(ko *keyOutcome, partials [][]porcupine.Operation, in Input, incomplete bool) Anomaly {
	key, ops := ko.key, ko.checked
	a := Anomaly{Kind: "nonlinearizable", Key: key, Data: map[string]any{"ops": len(ops)}}
	if ko.truncated {
		a.Data["truncated_from"] = ko.ops
	}
	var longest []porcupine.Operation
	for _, p := range partials {
		if len(p) > len(longest) {
			longest = p
		}
	}
	in_ := make(map[*regOp]bool, len(longest))
	state := int32(0)
	for _, o := range longest {
		op := o.Input.(*regOp)
		in_[op] = true
		_, state = applyOp(state, op)
	}
	var culprit *regOp
	for _, op := range ops {
		if op.info || in_[op] {
			continue
		}
		if culprit == nil || op.ret < culprit.ret || (op.ret == culprit.ret && op.call < culprit.call) {
			culprit = op
		}
	}
	a.Data["prefix"] = len(longest)
	a.Data["state"] = h.vals.String(state)
	generic := func(extra string) Anomaly {
		a.Message = fmt.Sprintf("Key %q is not linearizable: Porcupine found no order of its %d operations consistent with a single register and their real-time order.%s",
			key, len(ops), extra)
		a.Data["meaning"] = violationMeaning["nonlinearizable"]
		return a
	}
	if culprit == nil {
		return generic("")
	}
	if ok, _ := applyOp(state, culprit); ok || incomplete {
		// The prefix is not a dead end (the search was cut short).
		return generic(fmt.Sprintf(" Look at %s.", h.opRef(culprit, in)))
	}
	a.Time = in.Events[culprit.inv].Time
	a.Events = h.opEvents(culprit)
	a.Data["op"] = h.describeOp(culprit)
	prefix := fmt.Sprintf("after the longest valid order Porcupine found (%d of %d operations), the register held %s",
		len(longest), len(ops), h.vals.String(state))

	switch culprit.kind {
	case opGet, opCAS:
		v := culprit.val
		what := fmt.Sprintf("%s returned %s", h.opRef(culprit, in), h.vals.String(v))
		if culprit.kind == opCAS {
			v = culprit.from
			what = fmt.Sprintf("%s succeeded, so the register held %s", h.opRef(culprit, in), h.vals.String(v))
		}
		kind, why, related := h.classifyObservation(ops, culprit, v, in)
		if kind == "stale-read" && culprit.kind == opCAS {
			kind = "stale-cas"
		}
		a.Kind = kind
		a.Events = append(a.Events, related...)
		a.Message = fmt.Sprintf("Key %q: %s, but %s.", key, what, why)
		if kind == "nonlinearizable" {
			a.Message = fmt.Sprintf("Key %q: %s, but %s.", key, what, prefix)
		}
	case opMismatch:
		a.Kind = "mismatch-contradicted"
		f := culprit.from
		w, clean := h.lastWriteBefore(ops, culprit, f)
		switch {
		case w != nil && clean:
			a.Events = append(a.Events, h.opEvents(w)...)
			a.Message = fmt.Sprintf("Key %q: %s failed with mismatch, so the register did not hold %s, but %s wrote %s, completing before the cas began, and no other write could have taken effect before the cas completed.",
				key, h.opRef(culprit, in), h.vals.String(f), h.opRef(w, in), h.vals.String(f))
		case f == 0 && clean:
			a.Message = fmt.Sprintf("Key %q: %s failed with mismatch, so the key was not absent, but no write could have taken effect before the cas completed.",
				key, h.opRef(culprit, in))
		default:
			a.Message = fmt.Sprintf("Key %q: %s failed with mismatch, so the register did not hold %s, but %s.",
				key, h.opRef(culprit, in), h.vals.String(f), prefix)
		}
	default:
		return generic("")
	}
	a.Data["meaning"] = violationMeaning[a.Kind]
	return a
}

// classifyObservation says why op could not have observed value v. It
// returns the violation kind, a clause for the message and related events.
func (h *regHistory) classifyObservation(ops []*regOp, op *regOp, v int32, in Input) (string, string, []int) {
	// Writes that could have produced v; the initial absent state counts as
	// a write of null that completed at the beginning of time.
	type writer struct {
		op        *regOp // nil for the initial state
		call, ret int64
	}
	var writers []writer
	if v == 0 {
		writers = append(writers, writer{nil, math.MinInt64, math.MinInt64})
	}
	for _, w := range ops {
		if (w.kind == opPut || w.kind == opCAS) && w.val == v && w != op {
			writers = append(writers, writer{w, w.call, w.ret})
		}
	}
	if len(writers) == 0 {
		return "never-written", fmt.Sprintf("no operation on key %q ever wrote %s", op.key, h.vals.String(v)), nil
	}
	var candidates []writer
	for _, w := range writers {
		if w.call <= op.ret {
			candidates = append(candidates, w)
		}
	}
	if len(candidates) == 0 {
		w := writers[0].op
		return "future-read", fmt.Sprintf("every write of %s began after the %s completed (the first: %s)", h.vals.String(v), opNoun(op), h.opRef(w, in)), h.opEvents(w)
	}
	// Stale: every candidate write was certainly followed by a write of
	// another value that completed before op began.
	var lastW writer
	var lastO *regOp
	for _, w := range candidates {
		var over *regOp
		for _, o := range ops {
			if o.info || o == op || (o.kind != opPut && o.kind != opCAS) || o.val == v {
				continue
			}
			if o.call > w.ret && o.ret < op.call && (over == nil || o.ret > over.ret) {
				over = o
			}
		}
		if over == nil {
			return "nonlinearizable", "", nil
		}
		if lastO == nil || w.ret > lastW.ret {
			lastW, lastO = w, over
		}
	}
	var src string
	var related []int
	if lastW.op == nil {
		src = fmt.Sprintf("the key was absent only before %s", h.opRef(lastO, in))
	} else {
		src = fmt.Sprintf("%s was written by %s and then overwritten by %s", h.vals.String(v), h.opRef(lastW.op, in), h.opRef(lastO, in))
		related = append(related, h.opEvents(lastW.op)...)
	}
	related = append(related, h.opEvents(lastO)...)
	return "stale-read", fmt.Sprintf("%s, which completed at %s, before the %s began at %s", src, h.at(lastO.ret, in), opNoun(op), h.at(op.call, in)), related
}

func opNoun(op *regOp) string {
	if op.kind == opGet {
		return "read"
	}
	return "cas"
}

// lastWriteBefore finds the ok write of f that completed last before op
// began, and reports whether no other write (of another value) could have
// taken effect between that write and op's completion. With f null and no
// such write, it reports whether no write at all could precede op's end.
func (h *regHistory) lastWriteBefore(ops []*regOp, op *regOp, f int32) (*regOp, bool) {
	var w *regOp
	for _, o := range ops {
		if o.info || (o.kind != opPut && o.kind != opCAS) || o.val != f || o.ret >= op.call {
			continue
		}
		if w == nil || o.ret > w.ret {
			w = o
		}
	}
	if w == nil && f != 0 {
		return nil, false
	}
	since := int64(math.MinInt64)
	if w != nil {
		since = w.call
	}
	for _, o := range ops {
		if o == w || (o.kind != opPut && o.kind != opCAS) || o.val == f {
			continue
		}
		if o.call <= op.ret && o.ret >= since {
			return w, false
		}
	}
	return w, true
}

// opRef names an operation for a person: who, what, when, where.
func (h *regHistory) opRef(op *regOp, in Input) string {
	if op == nil {
		return "the initial state"
	}
	when := fmt.Sprintf("invoked at %s", h.at(op.call, in))
	if op.comp >= 0 && !op.info {
		when = fmt.Sprintf("%s–%s", h.at(op.call, in), h.at(op.ret, in))
	} else if op.comp >= 0 {
		when += ", outcome unknown"
	} else {
		when += ", never completed"
	}
	ev := fmt.Sprintf("event %d", op.inv)
	if op.comp >= 0 {
		ev = fmt.Sprintf("events %d/%d", op.inv, op.comp)
	}
	return fmt.Sprintf("process %s's %s [%s, %s]", op.proc, h.describeOp(op), when, ev)
}

// at formats a time of the checker's clock.
func (h *regHistory) at(t int64, in Input) string {
	if h.clock == "time" {
		return time.Duration(t).String()
	}
	if t >= 0 && t < int64(len(in.Events)) {
		return fmt.Sprintf("%s (event %d)", time.Duration(in.Events[t].Time), t)
	}
	return fmt.Sprintf("event %d", t)
}

func (h *regHistory) opEvents(op *regOp) []int {
	if op == nil {
		return nil
	}
	if op.comp >= 0 {
		return []int{op.inv, op.comp}
	}
	return []int{op.inv}
}
