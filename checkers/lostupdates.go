package checkers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// LostUpdates finds acknowledged writes that an older write won over: an
// ok write W of key k is lost when a read that can judge it returned the
// value of a write that completed before W was invoked (or null, the
// initial state), so the older write beat W although W came later in real
// time. Concurrent writes that lost a race are counted, not judged.
//
// Real time is the history's order: "completed before invoked" compares the
// lines of the completion and the invoke. For each ok write W (put, or cas
// that succeeded; the value written is a cas's "to"), the read that judges
// it is the first ok read of k (a get, or an ok cas, which read its "from"),
// in invoke order, that
//
//   - began after W completed, and after every read that returned W had
//     completed (a later read of W shows W survived: an older value before
//     it was a stale read, not a loss); and
//   - can judge W: a final read (one that began in a final-reads phase that
//     ended: the conductor runs it after the heal and the recovery, when
//     every replica is assumed to hold every acknowledged write), or a read
//     answered by a node known to hold W by then: the node that
//     acknowledged W, or one that had returned W. A read from another node
//     that shows an older value may come from a replica that has not yet
//     received W: it is counted (writes_with_stale_reads), not judged.
//
// W's fate is what that read returned: a write that completed before W
// was invoked, or null: W is lost (Anomaly kind "lost-update", Node the node
// that acknowledged W, Refs W's completion and invoke, then the winning
// write, then the read); a write invoked after W completed: W was
// overwritten, as it should be; a write concurrent with W (neither
// completed before the other was invoked; an info write never completed):
// W lost a race, a figure counted per node that acknowledged W and per node
// whose write won, so that a node winning races (a fast clock under
// last-write-wins) shows. Without such a read, W survived if a read that
// began after W completed returned it, and is unjudged otherwise. A read of
// a value no write wrote names no write and is skipped.
//
// The lost-writes checker judges the final state only, by any final read,
// and counts no race: for a linearizable store a final read older than an
// acknowledged write is a loss. lost-updates also judges W by the reads
// after it that a node holding W answered, so it sees an update lost in the
// middle of a run and later overwritten, and it reports the races an
// eventually consistent store resolves, with the nodes that won them; both
// report a write the final state lost.
//
// Details: acknowledged_writes, writes_judged (lost, overwritten, survived
// or race lost), lost_updates, lost_in_final_reads (judged by a final
// read), overwritten, survived, race_losses, race_losses_by_loser_node,
// race_wins_by_winner_node (node "" is a node the history does not name),
// writes_unjudged, writes_with_stale_reads, reads_of_unknown_values,
// keys_checked, keys_excluded. The verdict is Invalid if any write is
// lost; NotApplicable if no acknowledged write could be judged (no final
// reads, no later read from a node that held it, no later read of it);
// Unknown if the history is malformed, ctx or the budget ran
// out, or some keys could not be judged (a value written twice or null
// written, or operations other than get/put/cas on them); else Valid.
type LostUpdates struct{}

// Name implements Checker.
func (LostUpdates) Name() string { return "lost-updates" }

// luFigures are the lost-updates figures.
type luFigures struct {
	acked, judged, lost, lostFinal, overwritten, survived, races, unjudged, stale int
	loserNode, winnerNode                                                         map[string]int
	lostBy, lostTo                                                                map[string]int // lost updates by the node that acknowledged them, by the winner's node
}

// Check implements Checker.
func (LostUpdates) Check(ctx context.Context, in Input) Result {
	start := time.Now()
	r := Result{Name: "lost-updates", Details: map[string]any{}}
	done := func() Result { return finish(&r, start) }
	budget := in.budgetOr(DefaultBudget)
	deadline := start.Add(budget)
	h, probs := buildKV(in)
	if h == nil {
		r.setMalformed("writes", probs[0])
		return done()
	}
	final, haveFinal := history.FindPhase(history.Phases(in.Events), "final-reads")
	haveFinal = haveFinal && !final.Open()
	fig := luFigures{loserNode: map[string]int{}, winnerNode: map[string]int{}, lostBy: map[string]int{}, lostTo: map[string]int{}}
	unknownVals, checked, incomplete := 0, 0, false
	for _, k := range h.keys {
		if ctx.Err() != nil || time.Now().After(deadline) {
			incomplete = true
			break
		}
		if h.excluded(k) != "" {
			continue
		}
		checked++
		unknownVals += lostUpdatesKey(h, k, haveFinal, final, &fig, &r.Anomalies)
	}
	sort.SliceStable(r.Anomalies, func(i, j int) bool { return r.Anomalies[i].Events[0] < r.Anomalies[j].Events[0] })
	reasons, nExcluded := h.excludedKeys()
	d := r.Details
	d["acknowledged_writes"] = fig.acked
	d["writes_judged"] = fig.judged
	d["lost_updates"] = fig.lost
	d["lost_in_final_reads"] = fig.lostFinal
	d["overwritten"] = fig.overwritten
	d["survived"] = fig.survived
	d["race_losses"] = fig.races
	d["race_losses_by_loser_node"] = fig.loserNode
	d["race_wins_by_winner_node"] = fig.winnerNode
	d["lost_updates_by_loser_node"] = fig.lostBy
	d["lost_updates_by_winner_node"] = fig.lostTo
	d["writes_unjudged"] = fig.unjudged
	d["writes_with_stale_reads"] = fig.stale
	d["keys_checked"] = checked
	if unknownVals > 0 {
		d["reads_of_unknown_values"] = unknownVals
	}
	if nExcluded > 0 {
		d["keys_excluded"] = nExcluded
	}
	races := "no race lost"
	if fig.races > 0 {
		races = fmt.Sprintf("%s to concurrent writes (acknowledged by %s; the winners by %s)", plural64(int64(fig.races), "race lost", "races lost"), nodeCounts(fig.loserNode), nodeCounts(fig.winnerNode))
	}
	switch {
	case fig.lost > 0:
		r.Verdict = Invalid
		r.Summary = fmt.Sprintf("%d of %d judged acknowledged writes lost to older writes (%d shown by the final reads; acknowledged by %s, lost to writes of %s); %s", fig.lost, fig.judged, fig.lostFinal, nodeCounts(fig.lostBy), nodeCounts(fig.lostTo), races)
		if incomplete {
			r.Summary += fmt.Sprintf(" (the budget ran out after %d of %d keys: there may be more)", checked, len(h.keys))
		}
		r.Explanation = lostUpdatesExplanation(r.Anomalies)
	case incomplete:
		r.Verdict = Unknown
		r.Summary = "ran out of time (or was cancelled) before every key was judged"
		r.Explanation = fmt.Sprintf("Lost updates were judged on %d of %d keys within the budget of %s; give the check more time (faultline check --budget).", checked, len(h.keys), budget)
	case fig.judged == 0 && nExcluded == 0:
		r.Verdict = NotApplicable
		r.Summary = "not applicable: no acknowledged write was followed by a read that can judge it"
		r.Explanation = "A lost update shows in a read after the write completed: a final read (a final-reads phase that ended), or a read answered by a node that held the write (it acknowledged or returned it). This history has none; runs of faultline's register workload end with final reads."
	case nExcluded > 0:
		r.Verdict = Unknown
		r.Summary = fmt.Sprintf("no lost update among %d judged writes, but %s could not be judged", fig.judged, plural(nExcluded, "key"))
		r.Explanation = fmt.Sprintf("A read names the write it saw only when every write to its key wrote a different value (not null), and keys that other operations change cannot be judged as registers. Left out: %s.", strings.Join(reasons, "; "))
	default:
		r.Verdict = Valid
		r.Summary = fmt.Sprintf("no lost update among %d judged acknowledged writes (%d unjudged); %s", fig.judged, fig.unjudged, races)
	}
	return done()
}

// lostUpdatesKey judges key k's acknowledged writes, adding to fig and
// anomalies; it returns the number of reads of values no write wrote.
func lostUpdatesKey(h *kvHistory, k history.Key, haveFinal bool, final history.Phase, fig *luFigures, anomalies *[]Anomaly) int {
	const never = int(^uint(0) >> 1)
	var (
		reads    []int                         // ok reads, in invoke order
		olderKey []int                         // per read: the completion of the write it read (-1 null; never if unknown or info)
		finals   []int                         // positions in reads of final reads of known values
		byNode   = map[string][]int{}          // node -> positions in reads of its reads of known values
		lastSeen = map[string]int{}            // value -> latest completion of a read of it
		lastRead = map[string]int{}            // value -> latest invoke of a read of it
		holders  = map[string]map[string]int{} // value -> node -> first read of it that node answered
		unknown  int
	)
	isFinal := func(i int) bool { return haveFinal && final.Covers(h.ops[i].Call) }
	for _, i := range h.byKey[k] {
		o := &h.ops[i]
		if !o.read || o.Type != history.OK {
			continue
		}
		q := len(reads)
		reads = append(reads, i)
		key := -1
		if o.got != "null" {
			key = never
			switch w := h.writerOf(k, o.got); {
			case w < 0:
				unknown++
			case h.ops[w].Type == history.OK:
				key = h.ops[w].Comp
			}
		}
		olderKey = append(olderKey, key)
		lastSeen[o.got] = max(lastSeen[o.got], o.Comp)
		lastRead[o.got] = max(lastRead[o.got], o.Inv)
		if o.got != "null" && h.writerOf(k, o.got) < 0 {
			continue // names no write: it judges nothing
		}
		if isFinal(i) {
			finals = append(finals, q)
		}
		if n := h.node(i); n != "" {
			byNode[n] = append(byNode[n], q)
			if holders[o.got] == nil {
				holders[o.got] = map[string]int{}
			}
			if _, ok := holders[o.got][n]; !ok {
				holders[o.got][n] = i
			}
		}
	}
	minOlder := newRangeMin(olderKey)
	firstFrom := func(pos []int, p int) int { // the first position >= p in pos, len(reads) if none
		j := sort.SearchInts(pos, p)
		if j == len(pos) {
			return len(reads)
		}
		return pos[j]
	}
	for _, wi := range h.byKey[k] {
		w := &h.ops[wi]
		if !w.write || w.Type != history.OK {
			continue
		}
		fig.acked++
		after := max(w.Comp, lastSeen[w.put])
		p := sort.Search(len(reads), func(i int) bool { return h.ops[reads[i]].Inv > after })
		// The deciding read: the first final read, or read by a node
		// that held W, from p on.
		wNode := h.node(wi)
		d := firstFrom(finals, p)
		if wNode != "" {
			d = min(d, firstFrom(byNode[wNode], p))
		}
		for n := range holders[w.put] {
			d = min(d, firstFrom(byNode[n], p))
		}
		if p < d && minOlder.min(p, d) < w.Inv {
			fig.stale++ // a read from a node not known to hold W showed an older value
		}
		if d == len(reads) {
			if lastRead[w.put] > w.Comp {
				fig.judged++
				fig.survived++
			} else {
				fig.unjudged++
			}
			continue
		}
		ri := reads[d]
		holder := -1 // what shows that ri's node held W: W itself, or a read of it
		if rNode := h.node(ri); rNode != "" && rNode == wNode {
			holder = wi
		} else if j, ok := holders[w.put][rNode]; ok && rNode != "" {
			holder = j
		}
		fig.judged++
		winner := h.writerOf(k, h.ops[ri].got)
		switch {
		case olderKey[d] < w.Inv:
			fig.lost++
			fig.lostBy[wNode]++
			fig.lostTo[winnerNode(h, winner)]++
			if isFinal(ri) {
				fig.lostFinal++
			}
			*anomalies = append(*anomalies, lostUpdate(h, k, wi, ri, winner, holder, isFinal(ri)))
		case h.ops[winner].Inv > w.Comp:
			fig.overwritten++
		default:
			fig.races++
			fig.loserNode[wNode]++
			fig.winnerNode[h.node(winner)]++
		}
	}
	return unknown
}

// rangeMin answers minimum queries over a fixed slice (a sparse table).
type rangeMin struct{ t [][]int }

func newRangeMin(a []int) *rangeMin {
	r := &rangeMin{t: [][]int{a}}
	for w := 1; 2*w <= len(a); w *= 2 {
		prev := r.t[len(r.t)-1]
		next := make([]int, len(a)-2*w+1)
		for i := range next {
			next[i] = min(prev[i], prev[i+w])
		}
		r.t = append(r.t, next)
	}
	return r
}

// min returns the minimum of a[i:j] (i < j).
func (r *rangeMin) min(i, j int) int {
	lvl, w := 0, 1
	for 2*w <= j-i {
		lvl, w = lvl+1, 2*w
	}
	return min(r.t[lvl][i], r.t[lvl][j-w])
}

// lostUpdate is the evidence that write wi was lost: read ri returned the
// value of winner (-1: null), which completed before wi was invoked.
// holder is what shows that ri's node held wi (-1 for a final read).
func lostUpdate(h *kvHistory, k history.Key, wi, ri, winner, holder int, final bool) Anomaly {
	w, rd := &h.ops[wi], &h.ops[ri]
	wNode, rNode := h.node(wi), h.node(ri)
	ack := "acknowledged"
	if wNode != "" {
		ack += " by " + wNode
	}
	judge := "a final read"
	switch {
	case final:
	case holder == wi:
		judge = "its node had acknowledged that write"
	default:
		judge = fmt.Sprintf("its node had returned that write at %s", h.ref(holder))
	}
	won := "nothing (the key absent): the initial state won"
	evs := []int{w.Comp, w.Inv}
	if winner >= 0 {
		v := &h.ops[winner]
		by := ""
		if n := h.node(winner); n != "" {
			by = " by " + n
		}
		won = fmt.Sprintf("%s, written by process %s and acknowledged%s at %s, before that write began at %s",
			shortVal(v.put), v.Process, by, h.ref(winner), h.in.Ref(w.Inv))
		evs = append(evs, h.ev(winner))
	}
	evs = append(evs, rd.Comp, rd.Inv)
	evidence := "read"
	if final {
		evidence = "final-read"
	}
	return Anomaly{
		Kind: "lost-update", Key: k.Text, KeyIsNumber: k.Number, Time: w.Return, Node: wNode,
		Message: fmt.Sprintf("key %s: lost update: the write of %s by process %s, %s at %s (%s), lost to an older write: the read at %s by process %s (%s; %s), which began after it, returned %s; no later read returned the write",
			k, shortVal(w.put), w.Process, ack, h.ref(wi), fmtNs(w.Return), h.ref(ri), rd.Process, answeredBy(rNode), judge, won),
		Events: evs, Refs: refsOf(h.in, evs),
		Data: map[string]any{"process": int(w.Process), "value": w.put, "read": rd.got, "read_node": rNode, "evidence": evidence, "winner_node": winnerNode(h, winner)},
	}
}

// winnerNode is the node that acknowledged write winner ("" for the
// initial state or an unknown node).
func winnerNode(h *kvHistory, winner int) string {
	if winner < 0 {
		return ""
	}
	return h.node(winner)
}

// lostUpdatesExplanation says which nodes acknowledged the lost writes and
// lists the first anomalies.
func lostUpdatesExplanation(as []Anomaly) string {
	var b strings.Builder
	ackBy, wonBy := map[string]int{}, map[string]int{}
	for _, a := range as {
		ackBy[a.Node]++
		if n, _ := a.Data["winner_node"].(string); n != "" {
			wonBy[n]++
		}
	}
	fmt.Fprintf(&b, "%s: a read that began after an acknowledged write completed, from a node that held the write (or in the final reads), returned a value written before that write began, and no later read returned the write. The lost writes were acknowledged by %s; the older writes that beat them by %s. The history shows the order of the writes, not why the older one won (a last-write-wins store decides by timestamps, which it does not record).",
		plural(len(as), "lost update"), nodeCounts(ackBy), nodeCounts(wonBy))
	listAnomalies(&b, as, func(a Anomaly) string { return a.Message })
	return b.String()
}
