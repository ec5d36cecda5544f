package checkers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// LostWrites checks the final reads against the acknowledged writes: an
// acknowledged write is lost when a final read of its key returns a value
// that it had already replaced. Precisely, for a final read R of key k that
// returned v: if v was written by an ok write W_v, every ok write W_a to k
// that began after W_v completed and completed before R began took effect
// after W_v, so R cannot see v unless W_a was lost (values are unique per
// key, so nothing wrote v again). If R returned null, every ok write that
// completed before R began was lost. A read of v written by an info write
// proves nothing (that write may have taken effect at any time). A value no
// operation wrote is reported as a phantom.
//
// Final reads are the reads that began in the "final-reads" phase
// (history.Phases); a history without phase markers uses, for each key, the
// ok reads that began after every write to it had completed. Writes are
// put/write and successful cas (the value written is cas's "to"). The
// checker needs unique values per key; with repeated values it says
// unknown rather than guess.
type LostWrites struct{}

// Name implements Checker.
func (LostWrites) Name() string { return "lost-writes" }

type lwWrite struct {
	op    clientOp
	value string
}

// Check implements Checker.
func (LostWrites) Check(ctx context.Context, in Input) Result {
	start := time.Now()
	r := Result{Name: "lost-writes", Details: map[string]any{}}
	done := func() Result { r.Elapsed = time.Since(start); return r }
	ops, probs := pairOps(in.Events)
	for _, p := range probs {
		if p.ambiguous() {
			r.Verdict = Unknown
			r.Summary = "the history is malformed, so writes cannot be paired with their outcomes"
			r.Explanation = p.Message
			return done()
		}
	}
	final, haveMarkers := history.FindPhase(history.Phases(in.Events), "final-reads")
	writes := map[string][]lwWrite{}         // key -> writes (ok and info)
	writers := map[string]map[string][]int{} // key -> value -> indexes into writes[key]
	var reads []clientOp                     // ok reads
	foreign := map[string]string{}           // keys touched by other operations
	var readVals []string
	for i := range ops {
		op := &ops[i]
		ev := &in.Events[op.Inv]
		f := normalizeF(op.F)
		if f == "" && op.Type != history.Fail {
			foreign[op.Key] = op.F // an operation this check cannot follow
			continue
		}
		switch {
		case f == "put" || (f == "cas" && op.Type == history.OK) || (f == "cas" && op.Type == history.Info):
			if op.Type == history.Fail {
				continue
			}
			raw := ev.Value
			if f == "cas" {
				_, to, err := parseCAS(raw)
				if err != nil {
					continue
				}
				raw = to
			}
			v, err := canonicalJSON(raw)
			if err != nil {
				continue
			}
			if writers[op.Key] == nil {
				writers[op.Key] = map[string][]int{}
			}
			writers[op.Key][v] = append(writers[op.Key][v], len(writes[op.Key]))
			writes[op.Key] = append(writes[op.Key], lwWrite{op: *op, value: v})
		case f == "get" && op.Type == history.OK:
			var raw = in.Events[op.Comp].Value
			v, err := canonicalJSON(raw)
			if err != nil {
				continue
			}
			reads = append(reads, *op)
			readVals = append(readVals, v)
		}
	}
	for k, byVal := range writers {
		for v, idx := range byVal {
			if len(idx) > 1 {
				r.Verdict = Unknown
				r.Summary = fmt.Sprintf("key %s has the value %.40s written %d times: lost writes cannot be told apart without unique values", k, v, len(idx))
				r.Explanation = "This check relies on every write to a key writing a different value (faultline's workloads do). Histories from other tools that repeat values can still be checked for linearizability."
				return done()
			}
		}
	}
	// Select the final reads.
	lastWriteEnd := map[string]int64{}
	for k, ws := range writes {
		for _, w := range ws {
			if w.op.Type == history.OK && w.op.Return > lastWriteEnd[k] {
				lastWriteEnd[k] = w.op.Return
			}
		}
	}
	type finalRead struct {
		op clientOp
		v  string
	}
	finals := map[string][]finalRead{}
	for i, op := range reads {
		if haveMarkers {
			if !final.Covers(op.Call) {
				continue
			}
		} else if op.Call <= lastWriteEnd[op.Key] {
			continue
		}
		finals[op.Key] = append(finals[op.Key], finalRead{op, readVals[i]})
	}
	if len(finals) == 0 {
		r.Verdict = Unknown
		if haveMarkers {
			r.Summary = "no final read succeeded, so acknowledged writes cannot be confirmed"
		} else {
			r.Summary = "no final reads: no key was read after its last write completed"
		}
		r.Explanation = "Lost writes are found by reading every key after the faults are healed. Look at the final-reads phase in the history: reads there failed or timed out, so the cluster may not have recovered."
		return done()
	}
	var anomalies []Anomaly
	lost, acked, checkedKeys := 0, 0, 0
	keys := make([]string, 0, len(writes))
	for k := range writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var missingFinal []string
	for _, k := range keys {
		if ctx.Err() != nil {
			r.Verdict = Unknown
			r.Summary = "cancelled"
			return done()
		}
		if _, bad := foreign[k]; bad {
			continue
		}
		ws := writes[k]
		for _, w := range ws {
			if w.op.Type == history.OK {
				acked++
			}
		}
		fr := finals[k]
		if len(fr) == 0 {
			missingFinal = append(missingFinal, k)
			continue
		}
		checkedKeys++
		lostHere := map[int]bool{}
		for _, f := range fr {
			var after int64 // writes that began after this completed must be visible
			if idx, ok := writers[k][f.v]; ok {
				wv := ws[idx[0]]
				if wv.op.Type != history.OK {
					continue // an info write: it may have taken effect at any time
				}
				after = wv.op.Return
			} else if f.v == "null" {
				after = -1 // absent: no write was ever visible
			} else {
				anomalies = append(anomalies, Anomaly{Kind: "phantom-value", Key: k, Time: f.op.Call, Events: []int{f.op.Inv, f.op.Comp},
					Message: fmt.Sprintf("final read of %s returned %.60s, a value no operation wrote", k, f.v)})
				continue
			}
			for wi, w := range ws {
				if w.op.Type != history.OK || lostHere[wi] {
					continue
				}
				if w.op.Call > after && w.op.Return < f.op.Call {
					lostHere[wi] = true
					lost++
					if len(anomalies) < 50 {
						saw := "nothing (the key was absent)"
						if f.v != "null" {
							saw = fmt.Sprintf("%.60s", f.v)
						}
						anomalies = append(anomalies, Anomaly{Kind: "lost-write", Key: k, Time: w.op.Return, Events: []int{w.op.Inv, w.op.Comp, f.op.Inv, f.op.Comp},
							Message: fmt.Sprintf("key %s: the write of %.60s was acknowledged at %s (event %d), but the final read at %s saw %s, which it had replaced",
								k, w.value, fmtNs(w.op.Return), w.op.Comp+1, fmtNs(f.op.Call), saw),
							Data: map[string]any{"process": int(w.op.Process), "value": w.value, "read": f.v}})
					}
				}
			}
		}
	}
	r.Anomalies = anomalies
	r.Details["acknowledged_writes"] = acked
	r.Details["keys_checked"] = checkedKeys
	r.Details["lost"] = lost
	if len(missingFinal) > 0 {
		r.Details["keys_without_final_read"] = missingFinal
	}
	if len(foreign) > 0 {
		r.Details["keys_with_other_ops"] = len(foreign)
	}
	switch {
	case len(anomalies) > 0:
		r.Verdict = Invalid
		kinds := map[string]int{}
		for _, a := range anomalies {
			kinds[a.Kind]++
		}
		r.Summary = fmt.Sprintf("%d of %d acknowledged writes lost", lost, acked)
		if kinds["phantom-value"] > 0 {
			r.Summary += fmt.Sprintf(", %d phantom values", kinds["phantom-value"])
		}
		var b strings.Builder
		b.WriteString("Acknowledged writes did not survive: after the faults were healed, the final reads returned older values (or nothing), so a write the cluster had confirmed to a client was lost. ")
		b.WriteString("This breaks durability of acknowledged writes; typical causes are acknowledging before the write is durable on a majority, or a leader elected without the latest committed entries.\n")
		for i, a := range anomalies {
			if i == 5 {
				fmt.Fprintf(&b, "... and %d more in results.json\n", len(anomalies)-5)
				break
			}
			b.WriteString(a.Message + "\n")
		}
		r.Explanation = strings.TrimSpace(b.String())
	case len(missingFinal) > 0 && checkedKeys == 0:
		r.Verdict = Unknown
		r.Summary = "no key with writes had a successful final read"
	case len(missingFinal) > 0:
		r.Verdict = Unknown
		r.Summary = fmt.Sprintf("no loss among %d keys read at the end, but %d keys had no successful final read (%s)", checkedKeys, len(missingFinal), strings.Join(firstN(missingFinal, 5), ", "))
		r.Explanation = "Some keys could not be read after the heal, so their acknowledged writes could not be confirmed. The cluster may not have recovered within the recovery window; look at the final-reads phase and the node logs."
	case len(foreign) > 0:
		r.Verdict = Unknown
		r.Summary = fmt.Sprintf("no loss among %d keys; %d keys undecided: touched by operations other than get/put/cas", checkedKeys, len(foreign))
		r.Explanation = "Keys that operations of other kinds (delete, incr, ...) may have changed cannot be judged by comparing final reads with writes; they are left undecided."
	default:
		r.Verdict = Valid
		r.Summary = fmt.Sprintf("all %d acknowledged writes consistent with the final reads of %d keys", acked, checkedKeys)
	}
	return done()
}

func fmtNs(ns int64) string {
	return (time.Duration(ns)).Round(time.Millisecond).String()
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
