package checkers

import (
	"fmt"

	"github.com/faultline/faultline/history"
)

// clientOp is one client operation: an invoke paired with its completion.
type clientOp struct {
	Process history.Process
	F       string
	Key     string
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

// pairOps pairs every client invoke with the next completion by the same
// process, in history order. Nemesis and observer events are skipped. It
// never fails: problems are returned alongside the operations it could pair.
// An invoke that is followed by another invoke of the same process is kept
// as an operation that never completed.
func pairOps(evs []history.Event) ([]clientOp, []problem) {
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
					Message: fmt.Sprintf("process %s invoked %s at event %d while its %s invoked at event %d had not completed",
						p, fname(ev.F), i, fname(ops[j].F), ops[j].Inv),
				})
			} else if j, ok := infoedAt[p]; ok {
				probs = append(probs, problem{
					Kind: probInvokeAfterInfo, Event: i, Other: j,
					Message: fmt.Sprintf("process %s invoked %s at event %d after its previous operation ended \"info\" at event %d (a process whose outcome is unknown must not invoke again; use a fresh process id)",
						p, fname(ev.F), i, j),
				})
			}
			pending[p] = len(ops)
			ops = append(ops, clientOp{
				Process: p, F: ev.F, Key: ev.Key, Inv: i, Comp: -1,
				Type: history.Info, Call: ev.Time, Return: -1,
			})
		case history.OK, history.Fail, history.Info:
			j, ok := pending[p]
			if !ok {
				probs = append(probs, problem{
					Kind: probCompletionNoInvoke, Event: i, Other: -1,
					Message: fmt.Sprintf("process %s completed %s (%s) at event %d without a pending invoke",
						p, fname(ev.F), ev.Type, i),
				})
				continue
			}
			delete(pending, p)
			op := &ops[j]
			if (ev.F != "" && op.F != "" && ev.F != op.F) || (ev.Key != "" && op.Key != "" && ev.Key != op.Key) {
				probs = append(probs, problem{
					Kind: probMismatchedPair, Event: i, Other: op.Inv,
					Message: fmt.Sprintf("process %s completed %s on key %q at event %d, but its invoke at event %d was %s on key %q",
						p, fname(ev.F), ev.Key, i, op.Inv, fname(op.F), op.Key),
				})
			}
			if ev.Time < op.Call {
				probs = append(probs, problem{
					Kind: probTimeBackwards, Event: i, Other: op.Inv,
					Message: fmt.Sprintf("process %s completed at event %d (time %d) before its invoke at event %d (time %d)",
						p, i, ev.Time, op.Inv, op.Call),
				})
			}
			op.Comp = i
			op.Type = ev.Type
			op.Return = ev.Time
			if op.F == "" {
				op.F = ev.F
			}
			if op.Key == "" {
				op.Key = ev.Key
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

// lineOf returns the line of history.jsonl that holds event i, assuming one
// event per line and no blank lines (true of files faultline writes).
func lineOf(in Input, i int) int {
	if in.Header != nil {
		return i + 2
	}
	return i + 1
}
