package checkers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// opKind is what a register operation does in the model.
type opKind uint8

const (
	opGet      opKind = iota // observes: state == val
	opPut                    // state := val
	opCAS                    // if state == from { state := to (val) }; ok ops require it
	opMismatch               // a cas that failed with "mismatch": observes state != from
)

// regOp is one operation on one register (key), as the model sees it. It is
// both the Input and the Metadata of the porcupine.Operation built from it.
type regOp struct {
	kind opKind
	info bool // outcome unknown: never returned, may or may not have taken effect
	key  history.Key
	f    string // f as written in the history
	val  int32  // get: value read; put: value written; cas: "to"
	from int32  // cas and mismatch: "from"
	proc history.Process
	call int64 // in the checker's clock (see regHistory.clock)
	ret  int64 // h.end for info ops
	inv  int   // event index of the invoke
	comp int   // event index of the completion, -1 if none
	node string
	err  string
	row  int // dense client row for the visualization
	// tookEffect is set on an info write whose value a completed operation
	// observed: it certainly took effect (see boundObservedInfoWrites).
	tookEffect bool
}

// regHistory is a history reduced to register operations, partitioned by key.
type regHistory struct {
	in    Input // the history (for references: in.Ref)
	vals  *valueTable
	keys  []history.Key            // in order of first appearance
	byKey map[history.Key][]*regOp // operations per key, in invoke order
	clock string                   // "time" (event times, ns) or "index" (event positions)
	times func(i int) int64        // the checker's clock for event i
	// foreign maps keys that operations other than get/put/cas (which may
	// have taken effect) touched to the first such f; they are not checked.
	foreign map[history.Key]string
	end     int64          // greater than every time in the clock: "never returned"
	count   map[string]int // what was kept and dropped, for Details
	ops     int            // operations kept for checking
}

// normalizeF maps the function names of faultline and of other tools
// (Jepsen's :read/:write/:cas, Knossos, Porcupine tests) to get, put, cas.
func normalizeF(f string) string {
	switch strings.ToLower(strings.TrimPrefix(f, ":")) {
	case "get", "read", "r":
		return "get"
	case "put", "write", "w", "set":
		return "put"
	case "cas", "compare-and-set", "compare_and_set", "compareandset":
		return "cas"
	}
	return ""
}

// parseCAS reads a cas argument: {"from":X,"to":Y}, or [X, Y] as other tools
// write it.
func parseCAS(raw json.RawMessage) (from, to json.RawMessage, err error) {
	if from, to, ok := parsePlainCAS(raw); ok {
		return from, to, nil
	}
	var c struct {
		// A JSON null arrives as "null"; a missing field stays nil.
		From json.RawMessage `json:"from"`
		To   json.RawMessage `json:"to"`
	}
	if json.Unmarshal(raw, &c) == nil && c.From != nil && c.To != nil {
		return c.From, c.To, nil
	}
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) == nil && len(a) == 2 {
		return a[0], a[1], nil
	}
	return nil, nil, fmt.Errorf("want {\"from\":X,\"to\":Y} or [X,Y], got %.80s", raw)
}

// parsePlainCAS reads a cas argument as faultline writes it,
// {"from":X,"to":Y} with X and Y null, true, false, plain integers or
// strings of printable ASCII without escapes, as json.Unmarshal would
// (without its cost, which a million operations feel); ok is false for
// anything else.
func parsePlainCAS(raw []byte) (from, to json.RawMessage, ok bool) {
	const pre, mid = `{"from":`, `,"to":`
	if len(raw) < len(pre)+len(mid)+3 || string(raw[:len(pre)]) != pre || raw[len(raw)-1] != '}' {
		return nil, nil, false
	}
	rest := raw[len(pre) : len(raw)-1]
	i := bytes.Index(rest, []byte(mid)) // a plain scalar holds no quote: the first is the separator
	if i < 0 {
		return nil, nil, false
	}
	from, to = rest[:i], rest[i+len(mid):]
	if !history.IsPlainScalar(from) || !history.IsPlainScalar(to) {
		return nil, nil, false
	}
	return from, to, true
}

// buildRegisterHistory pairs the client operations of in.Events and turns
// those on registers (get/read, put/write, cas) into model operations,
// partitioned by key identity (history.Event.KeyID: the number 1 and the
// string "1" are different registers). Operations with other f names are
// ignored (and counted).
//
// It returns the problems that make pairing ambiguous, if any, and an error
// for values it cannot read.
//
// If prune is true, info writes whose value nothing ever observed are
// dropped (see pruneUnobserved): this keeps the search from exploring orders
// that cannot matter, and does not change the verdict.
func buildRegisterHistory(in Input, prune bool) (*regHistory, []problem, error) {
	evs := in.Events
	cops, probs := pairOps(in)
	if amb := ambiguousOnly(probs); len(amb) > 0 {
		return nil, amb, nil
	}
	writes := 0 // at most this many distinct values are written
	for i := range cops {
		if f := normalizeF(cops[i].F); f == "put" || f == "cas" {
			writes++
		}
	}
	h := &regHistory{
		in:    in,
		vals:  newValueTableSize(writes + 1),
		byKey: make(map[history.Key][]*regOp),
		count: make(map[string]int),
	}
	// Use event times if they are usable; else positions (the recorded order
	// is a valid real-time order). Times are made strictly increasing in
	// file order: two events with the same time (a coarse clock, or another
	// tool's millisecond stamps) are still ordered as the file orders them,
	// which by contract is the order they happened in; Porcupine would
	// otherwise take a completion and a call at the same time as concurrent.
	monotone, varied := true, false
	for i := 1; i < len(evs); i++ {
		if evs[i].Time < evs[i-1].Time {
			monotone = false
			break
		}
		if evs[i].Time != evs[0].Time {
			varied = true
		}
	}
	if n := len(evs); monotone && varied && evs[0].Time >= 0 && evs[n-1].Time < math.MaxInt64/2 {
		clk := make([]int64, n)
		for i := range evs {
			clk[i] = evs[i].Time
			if i > 0 && clk[i] <= clk[i-1] {
				clk[i] = clk[i-1] + 1
			}
		}
		h.clock = "time"
		h.times = func(i int) int64 { return clk[i] }
		h.end = clk[n-1] + 1
	} else {
		h.clock = "index"
		h.times = func(i int) int64 { return int64(i) }
		h.end = int64(len(evs))
	}
	rows := make(map[history.Process]int)
	// The operations live in one block: a million small allocations cost
	// more than their contents.
	slab := make([]regOp, 0, len(cops))
	for ci := range cops {
		c := &cops[ci]
		f := normalizeF(c.F)
		if f == "" {
			h.count["other_ops"]++
			// An operation the register model does not know (delete,
			// incr, append...) that may have taken effect changes the key
			// in ways the model cannot follow: the key cannot be judged.
			if c.Type != history.Fail && c.Key.Text != "" {
				if h.foreign == nil {
					h.foreign = map[history.Key]string{}
				}
				if _, seen := h.foreign[c.Key]; !seen {
					h.foreign[c.Key] = c.F
				}
			}
			continue
		}
		inv := &evs[c.Inv]
		var comp *history.Event
		if c.Comp >= 0 {
			comp = &evs[c.Comp]
		}
		slab = append(slab, regOp{
			key: c.Key, f: c.F, proc: c.Process, inv: c.Inv, comp: c.Comp,
			call: h.times(c.Inv), ret: h.end,
			info: c.Type == history.Info,
		})
		op := &slab[len(slab)-1]
		if comp != nil {
			op.node, op.err = comp.Node, comp.Error
			if !op.info {
				op.ret = h.times(c.Comp)
			}
		}
		arg := inv.Value
		if arg == nil && comp != nil {
			arg = comp.Value
		}
		var err error
		switch f {
		case "get":
			if c.Type != history.OK {
				// A failed read did nothing; an unknown read tells nothing.
				h.count["dropped_"+string(c.Type)+"_reads"]++
				slab = slab[:len(slab)-1] // its slot is the next op's
				continue
			}
			op.kind = opGet
			op.val, err = h.vals.internRaw(comp.Value)
		case "put":
			if c.Type == history.Fail {
				h.count["dropped_fail_writes"]++
				slab = slab[:len(slab)-1] // its slot is the next op's
				continue
			}
			op.kind = opPut
			op.val, err = h.vals.internRaw(arg)
		case "cas":
			if c.Type == history.Fail && !history.IsMismatch(c.Type, comp.Error) {
				h.count["dropped_fail_cas"]++
				slab = slab[:len(slab)-1] // its slot is the next op's
				continue
			}
			var from, to json.RawMessage
			if from, to, err = parseCAS(arg); err == nil {
				if op.from, err = h.vals.internRaw(from); err == nil {
					op.val, err = h.vals.internRaw(to)
				}
			}
			op.kind = opCAS
			if c.Type == history.Fail {
				op.kind = opMismatch
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s (%s of key %s by process %s): %v", in.Ref(c.Inv), c.F, c.Key, c.Process, err)
		}
		if _, ok := h.byKey[op.key]; !ok {
			h.keys = append(h.keys, op.key)
		}
		if r, ok := rows[op.proc]; ok {
			op.row = r
		} else {
			op.row = len(rows)
			rows[op.proc] = op.row
		}
		h.byKey[op.key] = append(h.byKey[op.key], op)
	}
	if len(h.foreign) > 0 {
		kept := h.keys[:0]
		for _, k := range h.keys {
			if _, bad := h.foreign[k]; bad {
				delete(h.byKey, k)
				continue
			}
			kept = append(kept, k)
		}
		h.keys = kept
	}
	for _, k := range h.keys {
		if prune {
			var n int
			h.byKey[k], n = pruneUnobserved(h.byKey[k])
			h.count["pruned_unobserved_info_writes"] += n
			h.count["bounded_observed_info_writes"] += boundObservedInfoWrites(h.byKey[k])
		}
		for _, op := range h.byKey[k] {
			if op.info {
				h.count["info_ops"]++
			}
			if op.kind == opMismatch {
				h.count["cas_mismatch_ops"]++
			}
		}
		h.ops += len(h.byKey[k])
	}
	return h, nil, nil
}

// pruneUnobserved drops info writes (put or cas) of a value v on one key
// when nothing observes v: no ok read returned v, no cas of the key compares
// against v, and no mismatch cas of the key can be ordered after the write
// (every mismatch returned before the write was invoked).
//
// This does not change the verdict. An info write may always be ordered last
// (its return is at infinity), which is the same as never happening, so
// dropping it cannot make a linearizable history illegal. Conversely, given a
// linearization that contains the write, removing it changes the register
// only between the write and the next write; under the conditions above no
// operation there can tell: reads there would have returned v, cas ops
// comparing against v are excluded, info cas ops there did not take effect
// (the register held v, not their from) and can move to the end, and
// mismatch cas ops cannot be there.
func pruneUnobserved(ops []*regOp) ([]*regOp, int) {
	observed := make(map[int32]bool)
	lastMismatch := int64(-1 << 63)
	anyInfoWrite := false
	for _, op := range ops {
		switch op.kind {
		case opGet:
			observed[op.val] = true
		case opCAS, opMismatch:
			observed[op.from] = true
		}
		if op.kind == opMismatch && op.ret > lastMismatch {
			lastMismatch = op.ret
		}
		if op.info && (op.kind == opPut || op.kind == opCAS) {
			anyInfoWrite = true
		}
	}
	if !anyInfoWrite {
		return ops, 0
	}
	kept := ops[:0:0]
	n := 0
	for _, op := range ops {
		if op.info && (op.kind == opPut || op.kind == opCAS) && !observed[op.val] && lastMismatch < op.call {
			n++
			continue
		}
		kept = append(kept, op)
	}
	return kept, n
}

// boundObservedInfoWrites gives an info write of a value v a finite return
// when v is the value of no other write of the key and a completed
// operation observed v (an ok read of v, or an ok cas from v): the write
// then returns at the earliest such observer's return, and counts as having
// taken effect. It returns how many writes it bounded.
//
// This does not change the verdict. The write is the only way the register
// can hold v, so in every legal linearization it comes before each op that
// observed v, whose point is at or before its return: the new bound excludes
// no legal linearization. An info cas whose "to" was observed must have
// succeeded, so requiring it to find its "from" likewise excludes only
// illegal ones. What it buys is speed: an info write left open to infinity
// can be placed anywhere, and a few hundred of them (a killed node behind a
// live proxy turns every in-flight write into info) make the search
// explode.
func boundObservedInfoWrites(ops []*regOp) int {
	writers := make(map[int32]int)
	for _, op := range ops {
		if op.kind == opPut || op.kind == opCAS {
			writers[op.val]++
		}
	}
	firstObs := make(map[int32]int64) // value -> earliest return of an op that observed it
	note := func(v int32, ret int64) {
		if old, ok := firstObs[v]; !ok || ret < old {
			firstObs[v] = ret
		}
	}
	for _, op := range ops {
		if op.info {
			continue
		}
		switch op.kind {
		case opGet:
			note(op.val, op.ret)
		case opCAS:
			note(op.from, op.ret)
		}
	}
	n := 0
	for _, op := range ops {
		if !op.info || (op.kind != opPut && op.kind != opCAS) || op.val == 0 || writers[op.val] != 1 {
			continue
		}
		if r, ok := firstObs[op.val]; ok && r > op.call && r < op.ret {
			op.ret = r
			op.tookEffect = true
			n++
		}
	}
	return n
}

// registerModel is the Porcupine model of a register per key. States are
// value ids (int32) of h.vals; 0 is null, an absent key. If stop is not nil
// and becomes true, every step fails so that a search ends quickly; the
// caller must then discard the result.
func (h *regHistory) registerModel(stop *atomic.Bool) porcupine.Model {
	vals := h.vals
	step := func(state, input, _ any) (bool, any) {
		if stop != nil && stop.Load() {
			return false, state
		}
		s := state.(int32)
		ok, next := applyOp(s, input.(*regOp))
		if !ok {
			return false, state
		}
		if next == s {
			return true, state
		}
		return true, vals.boxed[next]
	}
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() any { return vals.boxed[0] },
		Step:      step,
		Equal:     func(a, b any) bool { return a.(int32) == b.(int32) },
		Hash:      func(s any) uint64 { return uint64(uint32(s.(int32))) * 0x9E3779B97F4A7C15 },
		DescribeOperation: func(input, _ any) string {
			return h.describeOp(input.(*regOp))
		},
		// Porcupine's page shows states and metadata as HTML: escape them
		// (values and errors come from the system under test).
		DescribeState: func(state any) string { return html.EscapeString(vals.text[state.(int32)]) },
		DescribeOperationMetadata: func(md any) string {
			op, ok := md.(*regOp)
			if !ok {
				return ""
			}
			return html.EscapeString(h.describeMeta(op))
		},
	}
}

// applyOp is the register's sequential specification: whether op can take
// effect when the register holds s, and what it holds afterwards.
func applyOp(s int32, op *regOp) (bool, int32) {
	switch op.kind {
	case opGet:
		return s == op.val, s
	case opPut:
		return true, op.val
	case opCAS:
		if s == op.from {
			return true, op.val
		}
		// An info cas that found another value did nothing; an ok cas
		// (or an info cas known to have taken effect) requires the value
		// it compared against.
		return op.info && !op.tookEffect, s
	case opMismatch:
		return s != op.from, s
	}
	panic("checkers: unknown register op kind")
}

// partitionByKey splits operations by key, in order of first appearance.
func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	idx := make(map[history.Key]int)
	var out [][]porcupine.Operation
	for _, o := range ops {
		k := o.Input.(*regOp).key
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], o)
	}
	return out
}

// porcupineOps converts one key's operations.
func porcupineOps(ops []*regOp) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		out[i] = porcupine.Operation{ClientId: op.row, Input: op, Call: op.call, Return: op.ret, Metadata: op}
	}
	return out
}

// describeOp renders an operation for the visualization and for messages.
func (h *regHistory) describeOp(op *regOp) string {
	var s string
	switch op.kind {
	case opGet:
		s = fmt.Sprintf("get(%s) → %s", op.key.Text, h.vals.String(op.val))
	case opPut:
		s = fmt.Sprintf("put(%s, %s)", op.key.Text, h.vals.String(op.val))
	case opCAS:
		s = fmt.Sprintf("cas(%s, %s→%s)", op.key.Text, h.vals.String(op.from), h.vals.String(op.val))
	case opMismatch:
		s = fmt.Sprintf("cas(%s, %s→%s) ✗ mismatch", op.key.Text, h.vals.String(op.from), h.vals.String(op.val))
	}
	if op.info {
		s += " ?"
	}
	return s
}

// describeMeta renders where an operation came from: first its line in the
// history (h.in.Ref of its completion, or of its invoke if it never
// completed), the reference the explanations and reports use.
func (h *regHistory) describeMeta(op *regOp) string {
	var b strings.Builder
	if op.comp >= 0 {
		fmt.Fprintf(&b, "%s (invoked at %s)", h.in.Ref(op.comp), h.in.Ref(op.inv))
	} else {
		fmt.Fprintf(&b, "%s, never completed", h.in.Ref(op.inv))
	}
	fmt.Fprintf(&b, ", process %s, f %q, key %s", op.proc, op.f, op.key)
	if op.info && op.tookEffect {
		b.WriteString(", outcome unknown (info) but its value was read later, so it took effect; drawn ending at the first such read")
	} else if op.info {
		b.WriteString(", outcome unknown (info)")
	}
	if op.node != "" {
		fmt.Fprintf(&b, ", answered by %s", op.node)
	}
	if op.err != "" {
		fmt.Fprintf(&b, ", error %q", op.err)
	}
	return b.String()
}

// keysBySize returns the keys, largest partition first (to balance workers).
func (h *regHistory) keysBySize() []history.Key {
	keys := append([]history.Key(nil), h.keys...)
	sort.SliceStable(keys, func(i, j int) bool { return len(h.byKey[keys[i]]) > len(h.byKey[keys[j]]) })
	return keys
}
