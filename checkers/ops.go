package checkers

import (
	"fmt"

	"github.com/faultline/faultline/history"
)

// clientOp is one client operation: an invoke paired with its completion.
type clientOp struct {
	Process history.Process
	F       string
	Key     history.Key
	Inv     int          // index of the invoke event
	Comp    int          // index of the completion event, -1 if none
	Type    history.Type // OK, Fail or Info; Info if it never completed
	Call    int64        // invoke time, ns
	Return  int64        // completion time, ns; -1 if none
}

// Pending reports whether the operation never completed in the history.
func (o *clientOp) Pending() bool { return o.Comp < 0 }

// problemKind names a way a history breaks the process-sequential rule.
type problemKind string

const (
	probInvokeWhilePending problemKind = "invoke-while-pending"
	probCompletionNoInvoke problemKind = "completion-without-invoke"
	probInvokeAfterInfo    problemKind = "invoke-after-info"
	probMismatchedPair     problemKind = "completion-does-not-match-invoke"
	probTimeBackwards      problemKind = "completion-before-invoke"
)

// problem is one place where a history is malformed.
type problem struct {
	Kind    problemKind
	Event   int // index of the offending event
	Other   int // index of the related event, -1 if none
	Message string
}

// ambiguous reports whether the problem makes the pairing of invokes and
// completions uncertain (so no checker that relies on it can trust it).
func (p problem) ambiguous() bool { return p.Kind != probInvokeAfterInfo }

// ambiguousOnly returns the problems of probs that make the history
// ambiguous, in order.
func ambiguousOnly(probs []problem) []problem {
	var amb []problem
	for _, p := range probs {
		if p.ambiguous() {
			amb = append(amb, p)
		}
	}
	return amb
}

// pairOps pairs every client invoke of in.Events with the next completion
// by the same process, in history order. Nemesis and observer events are
// skipped. It never fails: problems (their messages naming lines as
// in.Ref does) are returned alongside the operations it could pair. An
// invoke that is followed by another invoke of the same process is kept as
// an operation that never completed. Keys are compared by identity
// (history.Event.KeyID).
func pairOps(in Input) ([]clientOp, []problem) {
	evs := in.Events
	var (
		ops      = make([]clientOp, 0, len(evs)/2+1)
		probs    []problem
		pending  = make(map[history.Process]int) // process -> index into ops
		infoedAt = make(map[history.Process]int) // process -> event index of its info completion
	)
	for i := range evs {
		ev := &evs[i]
		if !ev.Process.IsClient() {
			continue
		}
		p := ev.Process
		switch ev.Type {
		case history.Invoke:
			if j, ok := pending[p]; ok {
				probs = append(probs, problem{
					Kind: probInvokeWhilePending, Event: i, Other: ops[j].Inv,
					Message: fmt.Sprintf("process %s invoked %s at %s while its %s invoked at %s had not completed",
						p, fname(ev.F), in.Ref(i), fname(ops[j].F), in.Ref(ops[j].Inv)),
				})
			} else if j, ok := infoedAt[p]; ok {
				probs = append(probs, problem{
					Kind: probInvokeAfterInfo, Event: i, Other: j,
					Message: fmt.Sprintf("process %s invoked %s at %s after its previous operation ended \"info\" at %s (a process whose outcome is unknown must not invoke again; use a fresh process id)",
						p, fname(ev.F), in.Ref(i), in.Ref(j)),
				})
			}
			pending[p] = len(ops)
			ops = append(ops, clientOp{
				Process: p, F: ev.F, Key: ev.KeyID(), Inv: i, Comp: -1,
				Type: history.Info, Call: ev.Time, Return: -1,
			})
		case history.OK, history.Fail, history.Info:
			j, ok := pending[p]
			if !ok {
				probs = append(probs, problem{
					Kind: probCompletionNoInvoke, Event: i, Other: -1,
					Message: fmt.Sprintf("process %s completed %s (%s) at %s without a pending invoke",
						p, fname(ev.F), ev.Type, in.Ref(i)),
				})
				continue
			}
			delete(pending, p)
			op := &ops[j]
			key := ev.KeyID()
			if (ev.F != "" && op.F != "" && ev.F != op.F) || (key.Text != "" && op.Key.Text != "" && key != op.Key) {
				probs = append(probs, problem{
					Kind: probMismatchedPair, Event: i, Other: op.Inv,
					Message: fmt.Sprintf("process %s completed %s on key %s at %s, but its invoke at %s was %s on key %s",
						p, fname(ev.F), key, in.Ref(i), in.Ref(op.Inv), fname(op.F), op.Key),
				})
			}
			if ev.Time < op.Call {
				probs = append(probs, problem{
					Kind: probTimeBackwards, Event: i, Other: op.Inv,
					Message: fmt.Sprintf("process %s completed at %s (time %d) before its invoke at %s (time %d)",
						p, in.Ref(i), ev.Time, in.Ref(op.Inv), op.Call),
				})
			}
			op.Comp = i
			op.Type = ev.Type
			op.Return = ev.Time
			if op.F == "" {
				op.F = ev.F
			}
			if op.Key.Text == "" {
				op.Key = key
			}
			if ev.Type == history.Info {
				infoedAt[p] = i
			}
		}
	}
	return ops, probs
}

func fname(f string) string {
	if f == "" {
		return "an operation"
	}
	return fmt.Sprintf("%q", f)
}

// refs returns the references (Input.Ref) of an operation's events, the one
// that stands for it first (its completion, then its invoke).
func refs(in Input, inv, comp int) []string {
	if comp < 0 {
		return []string{in.Ref(inv)}
	}
	return []string{in.Ref(comp), in.Ref(inv)}
}

// nodeOf returns the node that answered event i ("" if the history does
// not say).
func nodeOf(in Input, i int) string {
	if i < 0 || i >= len(in.Events) {
		return ""
	}
	return in.Events[i].Node
}

// answeredBy is a clause naming the node that answered, or saying that the
// history does not name one.
func answeredBy(node string) string {
	if node == "" {
		return "no node named in the history"
	}
	return "answered by " + node
}
