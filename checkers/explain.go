package checkers

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Meanings of the violations the linearizability checker can name. Each
// says what the history shows, never a cause it cannot show.
var violationMeaning = map[string]string{
	"stale-read": "A stale read: the read returned a value that an acknowledged write had replaced before the read began: " +
		"the node that answered the read served an older state than one already acknowledged to a client. " +
		"When a later read shows a write the read missed (or a later cas found the register holding it), that state was certainly not lost; " +
		"when later reads show only newer states, whether the missed writes survived is for lost-writes (the final reads) to judge.",
	"lost-write": "A lost write: the read returned a value that an acknowledged write had replaced before the read began, " +
		"and a later read (or successful cas) of the key observes that older state again, never the value of a write the read missed: what the system served afterwards does not include them. " +
		"See also lost-writes, which judges the acknowledged writes against the final reads.",
	"stale-cas": "A cas succeeded comparing against a value that an acknowledged write had replaced before the cas began: " +
		"the update was applied to an older state than one already acknowledged to a client (a lost update).",
	"never-written": "An operation observed a value that no operation in the history wrote to this key.",
	"future-read":   "An operation observed a value whose every write began only after that operation had completed.",
	"mismatch-contradicted": "A cas failed with \"mismatch\" (the register did not hold its expected value), " +
		"although by the real-time order of the history the register held that value throughout the cas.",
	"nonlinearizable": "No order of the operations on this key agrees with both a single register and the real-time order of the operations " +
		"(an operation that completed before another began must take effect first).",
}

// explainKey says why key has no linearization, using the longest partial
// linearization Porcupine found: after it, the operation that had to take
// effect next (the one that returned first among the rest) could not. The
// anomaly's Node is the node that answered that operation; its Events and
// Refs start with that operation (its completion, then its invoke).
func (h *regHistory) explainKey(ko *keyOutcome, partials [][]porcupine.Operation, in Input, incomplete bool) (a Anomaly) {
	key, ops := ko.key, ko.checked
	a = Anomaly{Kind: "nonlinearizable", Key: key.Text, KeyIsNumber: key.Number, Data: map[string]any{"ops": len(ops)}}
	defer func() { a.Refs = refsOf(in, a.Events) }()
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
		a.Message = fmt.Sprintf("Key %s is not linearizable: Porcupine found no order of its %d operations consistent with a single register and their real-time order.%s",
			key, len(ops), extra)
		a.Data["meaning"] = violationMeaning["nonlinearizable"]
		return a
	}
	if culprit == nil {
		return generic("")
	}
	if ok, _ := applyOp(state, culprit); ok || incomplete {
		// The prefix is not a dead end (the search was cut short).
		a.Node, a.Events = culprit.node, h.opEvents(culprit)
		return generic(fmt.Sprintf(" Look at %s.", h.opRef(culprit, in)))
	}
	a.Time = in.Events[culprit.inv].Time
	a.Node = culprit.node
	a.Events = h.opEvents(culprit)
	a.Data["op"] = h.describeOp(culprit)
	prefix := fmt.Sprintf("after the longest valid order Porcupine found (%d of %d operations), the register held %s",
		len(longest), len(ops), h.vals.String(state))

	switch culprit.kind {
	case opGet, opCAS:
		v := culprit.val
		what := h.opRef(culprit, in)
		if culprit.kind == opCAS {
			v = culprit.from
			what = fmt.Sprintf("%s succeeded, so the register held %s", h.opRef(culprit, in), h.vals.String(v))
		}
		obs := h.classifyObservation(ops, culprit, v, in)
		if obs.kind == "stale-read" && culprit.kind == opCAS {
			obs.kind = "stale-cas"
		}
		a.Kind = obs.kind
		a.Events = append(a.Events, obs.related...)
		for k, v := range obs.data {
			a.Data[k] = v
		}
		a.Message = fmt.Sprintf("Key %s: %s, but %s.", key, what, obs.why)
		if obs.kind == "nonlinearizable" {
			a.Message = fmt.Sprintf("Key %s: %s, but %s.", key, what, prefix)
		}
	case opMismatch:
		a.Kind = "mismatch-contradicted"
		f := culprit.from
		w, clean := h.lastWriteBefore(ops, culprit, f)
		switch {
		case w != nil && clean:
			a.Events = append(a.Events, h.opEvents(w)...)
			a.Message = fmt.Sprintf("Key %s: %s failed with mismatch, so the register did not hold %s, but %s wrote %s, completing before the cas began, and no other write could have taken effect before the cas completed.",
				key, h.opRef(culprit, in), h.vals.String(f), h.opRef(w, in), h.vals.String(f))
		case f == 0 && clean:
			a.Message = fmt.Sprintf("Key %s: %s failed with mismatch, so the key was not absent, but no write could have taken effect before the cas completed.",
				key, h.opRef(culprit, in))
		default:
			a.Message = fmt.Sprintf("Key %s: %s failed with mismatch, so the register did not hold %s, but %s.",
				key, h.opRef(culprit, in), h.vals.String(f), prefix)
		}
	default:
		return generic("")
	}
	a.Data["meaning"] = violationMeaning[a.Kind]
	return a
}

// observation is why an operation could not have observed a value.
type observation struct {
	kind    string         // the violation
	why     string         // a clause for the message ("" for nonlinearizable)
	related []int          // events of the other operations in the evidence
	data    map[string]any // for Anomaly.Data
}

// classifyObservation says why op could not have observed value v. A read
// of a value that acknowledged writes had replaced before it began (the
// writes it missed) is a stale read or a lost write by staleOrLost's rule.
func (h *regHistory) classifyObservation(ops []*regOp, op *regOp, v int32, in Input) observation {
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
		return observation{kind: "never-written", why: fmt.Sprintf("no operation on key %s ever wrote %s", op.key, h.vals.String(v))}
	}
	var candidates []writer
	for _, w := range writers {
		if w.call <= op.ret {
			candidates = append(candidates, w)
		}
	}
	if len(candidates) == 0 {
		w := writers[0].op
		return observation{kind: "future-read",
			why:     fmt.Sprintf("every write of %s began after the %s completed (the first: %s)", h.vals.String(v), opNoun(op), h.opRef(w, in)),
			related: h.opEvents(w)}
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
			return observation{kind: "nonlinearizable"}
		}
		if lastO == nil || w.ret > lastW.ret {
			lastW, lastO = w, over
		}
	}
	var src string
	var related []int
	if lastW.op == nil {
		src = fmt.Sprintf("the key was absent only before the acknowledged write %s", h.opRef(lastO, in))
	} else {
		src = fmt.Sprintf("%s was written by %s and then overwritten by the acknowledged write %s", h.vals.String(v), h.opRef(lastW.op, in), h.opRef(lastO, in))
	}
	related = append(related, h.opEvents(lastO)...)
	if lastW.op != nil {
		related = append(related, h.opEvents(lastW.op)...)
	}
	why := fmt.Sprintf("%s, which completed at %s, before the %s began at %s", src, h.at(lastO.ret, in), opNoun(op), h.at(op.call, in))
	data := map[string]any{"missed_write": in.Ref(h.opEvents(lastO)[0])}
	if lastO.node != "" {
		data["missed_write_node"] = lastO.node
	}
	if op.kind != opGet {
		return observation{kind: "stale-read", why: why, related: related, data: data}
	}
	// The acknowledged writes the read missed, newest first: they
	// completed before it began and began after the write of what it read
	// completed.
	var missed []*regOp
	for _, o := range h.byKey[op.key] {
		if o.info || o == op || (o.kind != opPut && o.kind != opCAS) || o.val == v {
			continue
		}
		if o.call > lastW.ret && o.ret < op.call {
			missed = append(missed, o)
		}
	}
	sort.SliceStable(missed, func(i, j int) bool { return missed[i].ret > missed[j].ret })
	n := len(missed)
	later := h.laterObservations(op)
	data["later_reads"] = len(later)
	data["missed_writes"] = n
	if wi, ri, stale := staleOrLost(missed, later, func(o *regOp) int32 { return o.val }, observedValue); stale {
		w, r := missed[wi], later[ri]
		related = append(related, h.opEvents(r)...)
		data["shown_by"] = in.Ref(h.opEvents(r)[0])
		what := "that write"
		if w != lastO {
			related = append(related, h.opEvents(w)...)
			what = fmt.Sprintf("%s, another write the read missed", h.opRef(w, in))
		}
		if r.kind == opCAS {
			why += fmt.Sprintf("; a later cas found the register holding %s (%s), which it compared against and replaced: %s", h.vals.String(r.from), what, h.opRef(r, in))
		} else {
			why += fmt.Sprintf("; a later read shows %s: %s", what, h.opRef(r, in))
		}
		return observation{kind: "stale-read", why: why, related: related, data: data}
	}
	writes := h.vals.String(lastO.val)
	if n > 1 {
		writes = fmt.Sprintf("the value of any of the %d acknowledged writes the read missed", n)
	}
	// Lost is the stronger claim. It needs the system to serve the old
	// state again without the missed writes: the read is the last of the
	// key, or a later observation shows the old state (the value read,
	// or one written before the first missed write began) where it is the
	// system's and not one lagging node's (see firstOlder). When later
	// observations show only newer states (written after the missed
	// writes), the history shows a stale read and cannot tell whether the
	// missed writes survived: the final reads (lost-writes) judge that.
	if len(later) > 0 && h.firstOlder(op, later, v, missed) == nil {
		old := h.oldValues(v, missed)
		var newer, again *regOp
		for _, o := range later {
			switch {
			case !old[observedValue(o)] && newer == nil:
				newer = o
			case old[observedValue(o)] && again == nil:
				again = o
			}
		}
		why += fmt.Sprintf("; no later observation of key %s returns %s", op.key, writes)
		if newer != nil {
			related = append(related, h.opEvents(newer)...)
			why += fmt.Sprintf("; later observations show newer states, written after the writes the read missed (the first: %s)", h.opRef(newer, in))
		}
		if again != nil {
			related = append(related, h.opEvents(again)...)
			why += fmt.Sprintf("; only the node that answered the read returned the old state again (the first time: %s)", h.opRef(again, in))
		}
		why += ": whether the writes the read missed survived, the history does not show (lost-writes judges the final reads)"
		return observation{kind: "stale-read", why: why, related: related, data: data}
	}
	switch len(later) {
	case 0:
		why += fmt.Sprintf("; no later read of key %s returns %s (this is the last read of the key in the history)", op.key, writes)
	default:
		first := later[0]
		related = append(related, h.opEvents(first)...)
		what, verb := plural(len(later), "later read"), "returns"
		for _, o := range later {
			if o.kind == opCAS {
				what, verb = fmt.Sprintf("%d later reads and successful cas operations", len(later)), "observes"
				if len(later) == 1 {
					what = "1 later successful cas"
				}
				break
			}
		}
		if len(later) == 1 {
			why += fmt.Sprintf("; the only later observation of key %s does not return %s: %s", op.key, writes, h.opRef(first, in))
		} else {
			why += fmt.Sprintf("; none of the %s of key %s %s %s (the first: %s)", what, op.key, verb, writes, h.opRef(first, in))
		}
	}
	return observation{kind: "lost-write", why: why, related: related, data: data}
}

// staleOrLost is the one rule, shared by the linearizability checker's
// explanations and the lost-writes checker, that tells a stale read from
// a lost write. A read of a value that acknowledged writes had replaced
// before it began (the writes it missed) is a stale read when a later
// observation (one that began after the read completed: a read, or a
// successful cas, which observed the value it compared against) shows the
// value of one of the writes it missed: the state the read missed is seen
// again, so it was not lost. Otherwise it is a lost write: none of the states it missed is
// ever seen again (writes that began later prove nothing: after a
// rollback, new writes build on the old state).
//
// missed are the writes the read missed, the one to name first when
// several wrote the value shown (newest first); later are the later
// reads, in the order they began. writeVal and readVal give a write's and
// a read's value, compared with ==. staleOrLost returns whether the read
// was stale and, if so, the indexes of the missed write shown and of the
// first later read that shows it.
func staleOrLost[W, R any, V comparable](missed []W, later []R, writeVal func(W) V, readVal func(R) V) (w, r int, stale bool) {
	first := make(map[V]int, len(missed)) // value -> the first missed write of it
	for wi := range missed {
		v := writeVal(missed[wi])
		if _, ok := first[v]; !ok {
			first[v] = wi
		}
	}
	for ri := range later {
		if wi, ok := first[readVal(later[ri])]; ok {
			return wi, ri, true
		}
	}
	return -1, -1, false
}

// laterObservations returns the ok operations of op's key that observed
// the register and began after op completed, in invoke order: reads (the
// value read) and successful cas operations (the value they compared
// against, which the register held: see observedValue).
func (h *regHistory) laterObservations(op *regOp) []*regOp {
	var out []*regOp
	for _, o := range h.byKey[op.key] {
		if (o.kind == opGet || o.kind == opCAS) && !o.info && o.call > op.ret {
			out = append(out, o)
		}
	}
	return out
}

// firstOlder returns the first of later that observed the old state
// again, v (what the stale read op returned) or a value whose write (ok)
// completed before the first of missed began, where that shows the
// system's state rather than one lagging node's: a successful cas (it
// compared against the state writes see), or a read answered by another
// node than op (a node that lags can return the old state again without
// anything being lost). nil if none did.
func (h *regHistory) firstOlder(op *regOp, later []*regOp, v int32, missed []*regOp) *regOp {
	if len(missed) == 0 {
		return nil
	}
	old := h.oldValues(v, missed)
	for _, o := range later {
		if !old[observedValue(o)] {
			continue
		}
		if o.kind == opCAS || op.node == "" || o.node != op.node {
			return o
		}
	}
	return nil
}

// oldValues are the states older than the writes a stale read missed: v
// (what it returned) and every value an ok write wrote that completed
// before the first missed write began.
func (h *regHistory) oldValues(v int32, missed []*regOp) map[int32]bool {
	old := map[int32]bool{v: true}
	if len(missed) == 0 {
		return old
	}
	first := missed[0].call
	for _, m := range missed {
		first = min(first, m.call)
	}
	for _, o := range h.byKey[missed[0].key] {
		if !o.info && (o.kind == opPut || o.kind == opCAS) && o.ret < first {
			old[o.val] = true
		}
	}
	return old
}

// observedValue is the value an ok read or cas observed the register
// holding: what the read returned, or what the cas compared against.
func observedValue(o *regOp) int32 {
	if o.kind == opCAS {
		return o.from
	}
	return o.val
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

// opRef names an operation for a person: who, what, when, its line in the
// history (in.Ref of its completion, or of its invoke if it never
// completed) and the node that answered.
func (h *regHistory) opRef(op *regOp, in Input) string {
	if op == nil {
		return "the initial state"
	}
	var when string
	if h.clock == "time" {
		when = fmt.Sprintf("invoked at %s, ", h.at(op.call, in))
		if op.comp >= 0 && !op.info {
			when = fmt.Sprintf("%s–%s, ", h.at(op.call, in), h.at(op.ret, in))
		}
	}
	switch {
	case op.comp >= 0 && op.info:
		when += "outcome unknown, "
	case op.comp < 0:
		when += "never completed, "
	}
	s := fmt.Sprintf("process %s's %s (%s%s", op.proc, h.describeOp(op), when, in.Ref(h.opEvents(op)[0]))
	if op.node != "" {
		s += ", answered by " + op.node
	}
	return s + ")"
}

// at formats a time of the checker's clock: a duration since the run's
// start, or, with the index clock, the line of the event at that position.
func (h *regHistory) at(t int64, in Input) string {
	if h.clock == "time" {
		return time.Duration(t).String()
	}
	if t >= 0 && t < int64(len(in.Events)) {
		return in.Ref(int(t))
	}
	return "the end of the history"
}

// opEvents returns the events of an operation, the one that stands for it
// first: its completion, then its invoke.
func (h *regHistory) opEvents(op *regOp) []int {
	if op == nil {
		return nil
	}
	if op.comp >= 0 {
		return []int{op.comp, op.inv}
	}
	return []int{op.inv}
}

// refsOf returns the references of events, in order, each once.
func refsOf(in Input, evs []int) []string {
	out := make([]string, 0, len(evs))
	seen := make(map[int]bool, len(evs))
	for _, e := range evs {
		if !seen[e] {
			seen[e] = true
			out = append(out, in.Ref(e))
		}
	}
	return out
}
