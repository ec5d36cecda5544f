package checkers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// LostWrites checks the final reads against the acknowledged writes.
//
// Final reads are the ok reads that began in the "final-reads" phase
// (history.Phases), which the conductor runs after the faults are healed
// and the workload has stopped. For a final read R of key k that returned
// v: if v was written by an ok write W_v, every ok write W to k that began
// after W_v completed and completed before R began took effect after W_v,
// so R missed W (values are unique per key, so nothing wrote v again). If R
// returned null, R missed every ok write that completed before it began. A
// read of a value written by an info write proves nothing (that write may
// have taken effect at any time). Writes are put/write and cas that did not
// fail (the value written is cas's "to"); keys are told apart by identity
// (history.Event.KeyID).
//
// If a later final read (one that began after R completed) returns the
// value of a write R missed, that state survived: R is a stale read (kind
// "stale-read", Node the node that answered R, first Ref R's completion).
// Otherwise every write R missed is a lost write (kind "lost-write", its
// Node the node that acknowledged the write, its first Ref the write's
// completion). A final read of a value no
// operation wrote is a phantom (kind "phantom-value"). Every anomaly is
// kept; any of them makes the verdict Invalid.
//
// The verdict is NotApplicable, with the reason in the Summary, when the
// history has no final reads (no "final-reads" phase marker, as in
// histories of other tools, or a final-reads phase that never ended, as in
// a run cut short: its last reads are not final reads), or when a value is
// written twice to one key (a read could not name the write it saw; the
// linearizability checker handles such histories). It is Unknown when the
// history is malformed, when keys with writes had no successful final read,
// or when other operations (delete, incr, ...) touched keys.
type LostWrites struct{}

// Name implements Checker.
func (LostWrites) Name() string { return "lost-writes" }

type lwWrite struct {
	op    clientOp
	value string
}

type lwRead struct {
	op clientOp
	v  string
}

// Check implements Checker.
func (LostWrites) Check(ctx context.Context, in Input) Result {
	start := time.Now()
	r := Result{Name: "lost-writes", Details: map[string]any{}}
	done := func() Result { return finish(&r, start) }
	ops, probs := pairOps(in)
	if amb := ambiguousOnly(probs); len(amb) > 0 {
		r.setMalformed("writes", amb[0])
		return done()
	}
	finalStart := -1 // the event that starts the final-reads phase
	for i := range in.Events {
		if name, edge, ok := history.ParsePhaseMarker(&in.Events[i]); ok && name == "final-reads" && edge == history.PhaseStart {
			finalStart = i
			break
		}
	}
	final, haveFinal := history.FindPhase(history.Phases(in.Events), "final-reads")
	writes := map[history.Key][]lwWrite{}         // key -> writes (ok and info)
	writers := map[history.Key]map[string][]int{} // key -> value -> indexes into writes[key]
	var reads []lwRead                            // ok reads
	foreign := map[history.Key]string{}           // keys touched by other operations
	for i := range ops {
		op := &ops[i]
		ev := &in.Events[op.Inv]
		f := normalizeF(op.F)
		if f == "" && op.Type != history.Fail {
			foreign[op.Key] = op.F // an operation this check cannot follow
			continue
		}
		switch {
		case (f == "put" || f == "cas") && op.Type != history.Fail:
			raw := ev.Value
			if raw == nil && op.Comp >= 0 {
				raw = in.Events[op.Comp].Value
			}
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
			v, err := canonicalJSON(in.Events[op.Comp].Value)
			if err != nil {
				continue
			}
			reads = append(reads, lwRead{*op, v})
		}
	}

	// What this check needs: final reads, and values unique per key.
	var na []string
	switch {
	case !haveFinal:
		na = append(na, "no final reads: the history has no final-reads phase marker")
	case final.Open():
		na = append(na, fmt.Sprintf("no final reads: the final-reads phase that began at %s never ended (the run was cut short)", in.Ref(finalStart)))
	}
	if k, v, n := repeatedValue(writers, foreign); n > 1 {
		na = append(na, fmt.Sprintf("values repeat: %.40s was written %d times to key %s", v, n, k))
	}
	if len(na) > 0 {
		r.Verdict = NotApplicable
		r.Summary = "not applicable: " + strings.Join(na, "; ")
		r.Explanation = "Lost writes are found by comparing the acknowledged writes with reads of every key after the workload stopped and the faults were healed (the final-reads phase), " +
			"and a read names the write it saw only if every write to a key wrote a different value. faultline's runs record both; histories of other tools or runs cut short may not. " +
			"The linearizability checker judges such histories."
		return done()
	}

	finals := map[history.Key][]lwRead{}
	for _, rd := range reads {
		if final.Covers(rd.op.Call) {
			finals[rd.op.Key] = append(finals[rd.op.Key], rd)
		}
	}
	if len(finals) == 0 {
		r.Verdict = Unknown
		r.Summary = "no final read succeeded, so acknowledged writes cannot be confirmed"
		r.Explanation = fmt.Sprintf("Lost writes are found by reading every key in the final-reads phase (from %s); no read there succeeded, so the cluster may not have recovered. Look at that phase in the history and the node logs.", in.Ref(finalStart))
		return done()
	}

	var anomalies []Anomaly
	lost, stale, phantom, acked, checkedKeys := 0, 0, 0, 0, 0
	keys := make([]history.Key, 0, len(writes))
	for k := range writes {
		keys = append(keys, k)
	}
	sortKeys(keys)
	var missingFinal []string
	for _, k := range keys {
		if ctx.Err() != nil {
			r.Verdict = Unknown
			r.Summary = "cancelled"
			r.Anomalies = nil
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
			missingFinal = append(missingFinal, k.String())
			continue
		}
		checkedKeys++
		lostHere := map[int]bool{}
		for ri, f := range fr {
			var after int64 // writes that began after this completed must be visible
			if idx, ok := writers[k][f.v]; ok {
				wv := ws[idx[0]]
				if wv.op.Type != history.OK {
					continue // an info write: it may have taken effect at any time
				}
				after = wv.op.Return
			} else if f.v == "null" {
				after = -1 << 63 // absent: no write was ever visible
			} else {
				phantom++
				anomalies = append(anomalies, Anomaly{Kind: "phantom-value", Key: k.Text, KeyIsNumber: k.Number, Time: f.op.Call, Node: nodeOf(in, f.op.Comp),
					Events: []int{f.op.Comp, f.op.Inv}, Refs: refs(in, f.op.Inv, f.op.Comp),
					Message: fmt.Sprintf("key %s: the final read at %s (%s) returned %.60s, a value no operation wrote", k, in.Ref(f.op.Comp), answeredBy(nodeOf(in, f.op.Comp)), f.v),
					Data:    map[string]any{"read": f.v}})
				continue
			}
			// The writes this read missed, newest first.
			var missed []int
			for wi := range ws {
				w := &ws[wi]
				if w.op.Type == history.OK && w.op.Call > after && w.op.Return < f.op.Call {
					missed = append(missed, wi)
				}
			}
			if len(missed) == 0 {
				continue
			}
			sort.Slice(missed, func(i, j int) bool { return ws[missed[i]].op.Return > ws[missed[j]].op.Return })
			// A later final read of a value this read missed shows that
			// state survived: this read was stale, those writes not lost
			// (staleOrLost).
			var later []lwRead
			for _, l := range fr[ri+1:] {
				if l.op.Call > f.op.Return {
					later = append(later, l)
				}
			}
			if wi, li, isStale := staleOrLost(missed, later, func(wi int) string { return ws[wi].value }, func(l lwRead) string { return l.v }); isStale {
				stale++
				anomalies = append(anomalies, staleFinalRead(in, k, f, &ws[missed[wi]], &later[li]))
				continue
			}
			for _, wi := range missed {
				if lostHere[wi] {
					continue
				}
				lostHere[wi] = true
				lost++
				anomalies = append(anomalies, lostWrite(in, k, f, &ws[wi]))
			}
		}
	}
	r.Anomalies = anomalies
	r.Details["acknowledged_writes"] = acked
	r.Details["keys_checked"] = checkedKeys
	r.Details["lost"] = lost
	r.Details["stale_final_reads"] = stale
	r.Details["phantom_values"] = phantom
	if len(missingFinal) > 0 {
		r.Details["keys_without_final_read"] = missingFinal
	}
	if len(foreign) > 0 {
		r.Details["keys_with_other_ops"] = len(foreign)
	}
	switch {
	case len(anomalies) > 0:
		r.Verdict = Invalid
		var parts []string
		if lost > 0 || (stale == 0 && phantom == 0) {
			parts = append(parts, fmt.Sprintf("%d of %d acknowledged writes lost", lost, acked))
		}
		if stale > 0 {
			parts = append(parts, plural(stale, "stale final read"))
		}
		if phantom > 0 {
			parts = append(parts, plural(phantom, "phantom value"))
		}
		r.Summary = strings.Join(parts, ", ")
		r.Explanation = lostWritesExplanation(in, anomalies, lost, stale, phantom, finalStart, final.Start)
	case len(missingFinal) > 0 && checkedKeys == 0:
		r.Verdict = Unknown
		r.Summary = "no key with writes had a successful final read"
		r.Explanation = fmt.Sprintf("No key with writes could be read in the final-reads phase (from %s), so no acknowledged write could be confirmed. The cluster may not have recovered; look at that phase in the history and the node logs.", in.Ref(finalStart))
	case len(missingFinal) > 0:
		r.Verdict = Unknown
		r.Summary = fmt.Sprintf("no loss among %d keys read at the end, but %d keys had no successful final read (%s)", checkedKeys, len(missingFinal), strings.Join(firstN(missingFinal, 5), ", "))
		r.Explanation = fmt.Sprintf("Some keys could not be read in the final-reads phase (from %s), so their acknowledged writes could not be confirmed. The cluster may not have recovered; look at that phase in the history and the node logs.", in.Ref(finalStart))
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

// repeatedValue returns a key (not in skip) and value written more than
// once, and how many times, preferring the first key in order; n is 0 if
// every value is unique.
func repeatedValue(writers map[history.Key]map[string][]int, skip map[history.Key]string) (history.Key, string, int) {
	keys := make([]history.Key, 0, len(writers))
	for k := range writers {
		if _, bad := skip[k]; !bad {
			keys = append(keys, k)
		}
	}
	sortKeys(keys)
	for _, k := range keys {
		vals := make([]string, 0, len(writers[k]))
		for v := range writers[k] {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		for _, v := range vals {
			if n := len(writers[k][v]); n > 1 {
				return k, v, n
			}
		}
	}
	return history.Key{}, "", 0
}

// readSaw says what a read returned.
func readSaw(v string) string {
	if v == "null" {
		return "nothing (the key was absent)"
	}
	return fmt.Sprintf("%.60s", v)
}

// lostWrite is the evidence that write w, which final read f missed, was
// lost: the write first (its node is the node that acknowledged it), then
// the read.
func lostWrite(in Input, k history.Key, f lwRead, w *lwWrite) Anomaly {
	wNode, rNode := nodeOf(in, w.op.Comp), nodeOf(in, f.op.Comp)
	ack := "acknowledged"
	if wNode != "" {
		ack += " by " + wNode
	}
	return Anomaly{
		Kind: "lost-write", Key: k.Text, KeyIsNumber: k.Number, Time: w.op.Return, Node: wNode,
		Events: []int{w.op.Comp, w.op.Inv, f.op.Comp, f.op.Inv},
		Refs:   append(refs(in, w.op.Inv, w.op.Comp), refs(in, f.op.Inv, f.op.Comp)...),
		Message: fmt.Sprintf("key %s: lost write: the write of %.60s by process %s, %s at %s (%s), is missing: the final read at %s (%s, %s) returned %s, which that write had replaced, and no later read shows it",
			k, w.value, w.op.Process, ack, in.Ref(w.op.Comp), fmtNs(w.op.Return), in.Ref(f.op.Comp), answeredBy(rNode), fmtNs(f.op.Call), readSaw(f.v)),
		Data: map[string]any{"process": int(w.op.Process), "value": w.value, "read": f.v, "read_node": rNode},
	}
}

// staleFinalRead is the evidence that final read f missed write w, which a
// later final read shows: the read first (its node answered it).
func staleFinalRead(in Input, k history.Key, f lwRead, w *lwWrite, later *lwRead) Anomaly {
	rNode, wNode, lNode := nodeOf(in, f.op.Comp), nodeOf(in, w.op.Comp), nodeOf(in, later.op.Comp)
	ack := "acknowledged"
	if wNode != "" {
		ack += " by " + wNode
	}
	evs := []int{f.op.Comp, f.op.Inv, w.op.Comp, w.op.Inv, later.op.Comp, later.op.Inv}
	return Anomaly{
		Kind: "stale-read", Key: k.Text, KeyIsNumber: k.Number, Time: f.op.Call, Node: rNode,
		Events: evs, Refs: refsOf(in, evs),
		Message: fmt.Sprintf("key %s: stale read: the final read at %s (%s) returned %s, older than the write of %.60s %s at %s; the write is not lost: the later final read at %s (%s) returned %.60s",
			k, in.Ref(f.op.Comp), answeredBy(rNode), readSaw(f.v), w.value, ack, in.Ref(w.op.Comp), in.Ref(later.op.Comp), answeredBy(lNode), later.v),
		Data: map[string]any{"value": w.value, "read": f.v, "write_node": wNode, "shown_by": in.Ref(later.op.Comp)},
	}
}

// lostWritesExplanation says what the anomalies show: how many of each
// kind, which nodes acknowledged the lost writes and answered the reads, the
// first few, and where the rest are.
func lostWritesExplanation(in Input, anomalies []Anomaly, lost, stale, phantom, finalStart int, finalTime int64) string {
	var b strings.Builder
	if lost > 0 {
		fmt.Fprintf(&b, "%s: the final reads (the final-reads phase, from %s) returned older values or nothing, and no later read showed the writes, so writes the cluster had acknowledged to a client are missing.",
			plural(lost, "lost write"), in.Ref(finalStart))
		ackBy, readBy := map[string]int{}, map[string]int{}
		for _, a := range anomalies {
			if a.Kind == "lost-write" {
				ackBy[a.Node]++
				readBy[a.Data["read_node"].(string)]++
			}
		}
		fmt.Fprintf(&b, " The lost writes were acknowledged by %s; the final reads that missed them were answered by %s.", nodeCounts(ackBy), nodeCounts(readBy))
		if n := countFaults(in.Events, finalTime); n > 0 {
			fmt.Fprintf(&b, " The history records %s before the final reads.", plural(n, "fault"))
		}
		b.WriteString(" See also linearizability, which judges every read, the final ones included.")
	}
	if stale > 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s: a final read returned an older value than an acknowledged write that a later final read shows, so the write was not lost but the node that answered the earlier read served an old state.",
			plural(stale, "stale final read"))
	}
	if phantom > 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s: a final read returned a value that no operation in the history wrote to its key.", plural(phantom, "phantom value"))
	}
	b.WriteString("\n")
	const shown = 5
	for i, a := range anomalies {
		if i == shown {
			fmt.Fprintf(&b, "... and %d more: all %d are listed in the anomalies (anomalies.jsonl)\n", len(anomalies)-shown, len(anomalies))
			break
		}
		b.WriteString(a.Message + "\n")
	}
	return strings.TrimSpace(b.String())
}

// nodeCounts renders "n1 (300), n2 (64)", most first; "" stands for
// operations whose node the history does not name.
func nodeCounts(m map[string]int) string {
	nodes := make([]string, 0, len(m))
	for n := range m {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool {
		if m[nodes[i]] != m[nodes[j]] {
			return m[nodes[i]] > m[nodes[j]]
		}
		return nodes[i] < nodes[j]
	})
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		name := n
		if n == "" {
			name = "a node the history does not name"
		}
		parts[i] = fmt.Sprintf("%s (%d)", name, m[n])
	}
	return strings.Join(parts, ", ")
}

// countFaults counts the fault windows (instants included) of a history
// that started before time t.
func countFaults(evs []history.Event, t int64) int {
	n := 0
	for _, w := range history.FaultWindows(evs) {
		if w.Start < t {
			n++
		}
	}
	return n
}

// fmtNs formats a time since the run's start, to the millisecond once it
// is a second or more.
func fmtNs(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		d = d.Round(time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
