package checkers

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// SplitBrain judges the authority behind what a cluster did, from the
// terms (or epochs) the history records: observer status events (a node
// reporting itself leader or primary in a term) and completions that carry
// the term under which the node answered ("term"). It finds:
//
//   - two-leaders: two nodes each reported themselves leader in the same
//     term (Raft's election safety broken);
//
//   - deposed-leader: a node acknowledged an operation under term T,
//     having been observed leader in T, although the operation began after
//     a higher term T' was established (a node observed leader in T', or
//     an operation acknowledged under T' completed): a deposed leader still
//     serving.
//
//   - lost-on-deposed-side: once a node is shown to have served as a
//     deposed leader in term T (or to have shared term T with another
//     leader), the acknowledged writes it made under T that the final reads
//     show lost (the lost-writes checker's judgement, reused) are attributed
//     to its side: one anomaly per node and term, naming both sides, how
//     many of its writes are lost, and the first. Lost writes of a node
//     that no split brain involves stay the lost-writes checker's alone.
//
// The two-leaders and deposed-leader anomalies' Data carry "nodes" (the
// two sides) and "from"/"to" (ns since the run's start): the window in
// which the history shows both acting as leader, which the report shades
// on both nodes' lanes.
//
// It reports only what the recorded terms prove. A node counts as leader
// in a term only when two of its status polls in a row say so: a single
// poll can catch a node between taking the leadership and recording its
// new term (etcd 3.4's status does: a member that has just won term 3 can
// report itself leader in term 2 once). A node re-elected in a later term
// is not a second leader, and an operation that began before the higher
// term was seen established is not counted. A history without terms is not
// applicable. Lost writes at the heal are the lost-writes checker's.
type SplitBrain struct{}

// Name returns "split-brain".
func (SplitBrain) Name() string { return "split-brain" }

type leaderObs struct {
	node string
	time int64
	ev   int
}

type termAck struct {
	node         string
	term         uint64
	invoke, done int64
	inv, ev      int
	f, key       string
}

// Check runs the checker. It is linear in the history and ignores the
// budget.
func (SplitBrain) Check(ctx context.Context, in Input) Result {
	t0 := time.Now()
	r := Result{Name: "split-brain"}
	leaders := map[uint64][]leaderObs{}   // term -> first observation of each node leading it
	ledBy := map[string]map[uint64]bool{} // node -> terms it was observed leading
	est := map[uint64]int64{}             // term -> earliest time it was seen established
	estEv := map[uint64]int{}
	estBy := map[uint64]string{}
	var acks []termAck
	invokes := map[history.Process]int{}
	statuses := 0
	type claim struct {
		term uint64
		lead bool
		obs  leaderObs
	}
	prev := map[string]claim{}     // node -> its previous status poll
	lastLead := map[string]int64{} // node/term -> its last poll confirming it led the term
	establish := func(term uint64, t int64, i int, node string) {
		if e, ok := est[term]; !ok || t < e {
			est[term], estEv[term], estBy[term] = t, i, node
		}
	}
	for i := range in.Events {
		e := &in.Events[i]
		if node, st, ok := history.StatusOf(e); ok {
			term, err := strconv.ParseUint(st.Term, 10, 64)
			if err != nil || term == 0 {
				continue
			}
			statuses++
			lead := history.IsLeaderRole(st.Role)
			before := prev[node]
			prev[node] = claim{term: term, lead: lead, obs: leaderObs{node: node, time: e.Time, ev: i}}
			if lead && before.lead && before.term == term {
				lastLead[node+"/"+strconv.FormatUint(term, 10)] = e.Time
			}
			// Confirmed by two polls in a row: leader in term both times.
			if !lead || !before.lead || before.term != term {
				continue
			}
			if ledBy[node] == nil {
				ledBy[node] = map[uint64]bool{}
			}
			if !ledBy[node][term] {
				ledBy[node][term] = true
				leaders[term] = append(leaders[term], before.obs)
			}
			establish(term, before.obs.time, before.obs.ev, node)
			continue
		}
		if p := e.Process; p.IsClient() {
			switch e.Type {
			case history.Invoke:
				invokes[p] = i
			case history.OK:
				term := ackTerm(in, i)
				inv, invoked := invokes[p]
				if term == 0 || e.Node == "" || !invoked {
					continue
				}
				acks = append(acks, termAck{node: e.Node, term: term, invoke: in.Events[inv].Time, done: e.Time, inv: inv, ev: i, f: e.F, key: e.Key})
				establish(term, e.Time, i, e.Node)
			}
		}
	}
	if statuses == 0 && len(acks) == 0 {
		r.Verdict = NotApplicable
		r.Summary = "no terms recorded: neither status events with a term nor completions carrying one"
		r.Explanation = "split-brain needs the term (or epoch) under which nodes lead and answer: observer status events with role and term, or completions with \"term\". This system's adapter or status reader records none."
		r.Elapsed = time.Since(t0)
		return r
	}

	// (1) Two leaders in one term.
	var twoSides [][2]leaderObs // node, and the other leader of its term
	var twoTerms []uint64
	terms := make([]uint64, 0, len(leaders))
	for t := range leaders {
		terms = append(terms, t)
	}
	sort.Slice(terms, func(i, j int) bool { return terms[i] < terms[j] })
	for _, t := range terms {
		obs := leaders[t]
		for k := 1; k < len(obs); k++ {
			a, b := obs[0], obs[k]
			r.Anomalies = append(r.Anomalies, Anomaly{
				Kind: "two-leaders", Time: b.time, Node: b.node,
				Message: fmt.Sprintf("nodes %s and %s both reported themselves leader in term %d: %s at %s (%s), %s at %s (%s); a term has at most one leader (election safety)",
					a.node, b.node, t, a.node, fmtNs(a.time), in.Ref(a.ev), b.node, fmtNs(b.time), in.Ref(b.ev)),
				Refs: []string{in.Ref(b.ev), in.Ref(a.ev)}, Events: []int{b.ev, a.ev},
				Data: map[string]any{"term": t, "nodes": []string{a.node, b.node},
					"from": b.time, "to": max(b.time, min(lastLead[a.node+"/"+strconv.FormatUint(t, 10)], lastLead[b.node+"/"+strconv.FormatUint(t, 10)]))},
			})
			twoSides = append(twoSides, [2]leaderObs{a, b}, [2]leaderObs{b, a})
			twoTerms = append(twoTerms, t, t)
		}
	}

	// (2) Deposed leaders still serving: one anomaly per node and term,
	// naming its first such operation and counting the others.
	type window struct {
		first  termAck
		higher uint64
		count  int
		last   termAck
	}
	windows := map[string]*window{}
	var order []string
	for _, a := range acks {
		if !ledBy[a.node][a.term] {
			continue
		}
		var higher uint64
		for t, when := range est {
			if t > a.term && when < a.invoke && (higher == 0 || when < est[higher]) {
				higher = t
			}
		}
		if higher == 0 {
			continue
		}
		k := a.node + "/" + strconv.FormatUint(a.term, 10)
		w := windows[k]
		if w == nil {
			w = &window{first: a, higher: higher}
			windows[k] = w
			order = append(order, k)
		}
		w.count++
		w.last = a
	}
	// (3) The split sides' lost writes: acknowledgements by node/term
	// that (1) or (2) involve, which the final reads show lost.
	type side struct {
		node        string
		term        uint64
		other       string // the node of the other side
		otherTerm   uint64
		established int64 // when the other side's term was established; -1: shared term
	}
	sides := map[string]*side{}
	var sideOrder []string
	addSide := func(sd side) {
		k := sd.node + "/" + strconv.FormatUint(sd.term, 10)
		if sides[k] == nil {
			sides[k] = &sd
			sideOrder = append(sideOrder, k)
		}
	}

	for _, k := range order {
		w := windows[k]
		a := w.first
		addSide(side{node: a.node, term: a.term, other: estBy[w.higher], otherTerm: w.higher, established: est[w.higher]})
		msg := fmt.Sprintf("node %s, leader in term %d, acknowledged %s(%s) under term %d at %s (%s), which began at %s, after term %d had been established at %s by %s (%s): a deposed leader still serving",
			a.node, a.term, a.f, a.key, a.term, fmtNs(a.done), in.Ref(a.ev), fmtNs(a.invoke), w.higher, fmtNs(est[w.higher]), estBy[w.higher], in.Ref(estEv[w.higher]))
		if w.count > 1 {
			msg += fmt.Sprintf("; it acknowledged %d operations so under term %d, the last at %s (%s)", w.count, a.term, fmtNs(w.last.done), in.Ref(w.last.ev))
		}
		r.Anomalies = append(r.Anomalies, Anomaly{
			Kind: "deposed-leader", Key: a.key, Time: a.done, Node: a.node, Message: msg,
			Refs:   []string{in.Ref(a.ev), in.Ref(a.inv), in.Ref(estEv[w.higher])},
			Events: []int{a.ev, a.inv, estEv[w.higher]},
			Data: map[string]any{"term": a.term, "higher_term": w.higher, "established_by": estBy[w.higher], "operations": w.count,
				"nodes": []string{a.node, estBy[w.higher]}, "from": est[w.higher], "to": w.last.done},
		})
	}
	for i, pair := range twoSides {
		addSide(side{node: pair[0].node, term: twoTerms[i], other: pair[1].node, otherTerm: twoTerms[i], established: -1})
	}
	lostOnSides := 0
	if len(sides) > 0 {
		lost := lostWritesBy(ctx, in)
		for _, k := range sideOrder {
			sd := sides[k]
			var mine []Anomaly
			for _, a := range lost {
				if a.Node == sd.node && ackTerm(in, a.Events[0]) == sd.term {
					mine = append(mine, a)
				}
			}
			if len(mine) == 0 {
				continue
			}
			lostOnSides += len(mine)
			first := mine[0]
			other := fmt.Sprintf("while %s led term %d (established at %s)", sd.other, sd.otherTerm, fmtNs(sd.established))
			if sd.established < 0 {
				other = fmt.Sprintf("while %s also led term %d", sd.other, sd.otherTerm)
			}
			ev := first.Events[0]
			r.Anomalies = append(r.Anomalies, Anomaly{
				Kind: "lost-on-deposed-side", Key: first.Key, KeyIsNumber: first.KeyIsNumber, Time: first.Time, Node: sd.node,
				Message: fmt.Sprintf("%d acknowledged writes of node %s under term %d are lost (the final reads miss them); %s acknowledged under term %d %s: the side of %s, whose state the cluster kept, won; the first lost write: %s",
					len(mine), sd.node, sd.term, sd.node, sd.term, other, sd.other, first.Message),
				Refs: append([]string{in.Ref(ev)}, first.Refs...), Events: append([]int{ev}, first.Events...),
				Data: map[string]any{"term": sd.term, "other": sd.other, "other_term": sd.otherTerm, "lost": len(mine)},
			})
		}
	}
	r.AnomalyCount = len(r.Anomalies)
	r.Details = map[string]any{"lost_on_split_sides": lostOnSides, "status_events": statuses, "acks_with_term": len(acks), "terms_led": len(leaders)}
	checked := fmt.Sprintf("%d status events with a term, %d acknowledgements carrying one, %d terms with a leader", statuses, len(acks), len(leaders))
	if len(r.Anomalies) == 0 {
		r.Verdict = Valid
		r.Summary = "no split brain: " + checked
		r.Elapsed = time.Since(t0)
		return r
	}
	r.Verdict = Invalid
	two, deposed := 0, 0
	for _, a := range r.Anomalies {
		switch a.Kind {
		case "two-leaders":
			two++
		case "deposed-leader":
			deposed++
		}
	}
	r.Summary = fmt.Sprintf("split brain: %d terms with two leaders, %d deposed leaders still serving, %d acknowledged writes of their sides lost (%s)", two, deposed, lostOnSides, checked)
	var b strings.Builder
	b.WriteString("The recorded terms show more than one node acting as leader at once:")
	for i, a := range r.Anomalies {
		if i == 8 {
			fmt.Fprintf(&b, "\n- ... and %d more (anomalies.jsonl)", len(r.Anomalies)-8)
			break
		}
		d := a.Data
		switch a.Kind {
		case "two-leaders":
			fmt.Fprintf(&b, "\n- %s and %s both led term %v (from %s);", dataNodes(d, 0), dataNodes(d, 1), d["term"], fmtNs(dataInt(d["from"])))
		case "deposed-leader":
			fmt.Fprintf(&b, "\n- %s, leader in term %v, acknowledged %v operations under it from %s to %s, after %s had established term %v (%s);",
				a.Node, d["term"], d["operations"], fmtNs(dataInt(d["from"])), fmtNs(dataInt(d["to"])), d["established_by"], d["higher_term"], strings.Join(a.Refs[:1], ""))
		case "lost-on-deposed-side":
			fmt.Fprintf(&b, "\n- %v acknowledged writes of %s under term %v are lost; %s's side (term %v) is the one the cluster kept (%s);", d["lost"], a.Node, d["term"], d["other"], d["other_term"], strings.Join(a.Refs[:1], ""))
		}
	}
	b.WriteString("\nA node that answers under a term older than one already established acts on an authority it no longer has: its reads may miss what the new leader acknowledged, and its writes may be thrown away when the partition heals. Each anomaly names the operations and history lines.")
	r.Explanation = b.String()
	r.Elapsed = time.Since(t0)
	return r
}

// lostWritesBy returns the lost-writes checker's "lost-write" anomalies of
// in (none when it cannot judge: no final reads, a malformed history).
// Each one's Node is the node that acknowledged the write and Events[0]
// the write's completion.
func lostWritesBy(ctx context.Context, in Input) []Anomaly {
	var out []Anomaly
	for _, a := range (LostWrites{}).Check(ctx, in).Anomalies {
		if a.Kind == "lost-write" && len(a.Events) > 0 {
			out = append(out, a)
		}
	}
	return out
}

// ackTerm returns the term completion ev carries (0 if none).
func ackTerm(in Input, ev int) uint64 {
	if ev < 0 || ev >= len(in.Events) {
		return 0
	}
	raw, ok := in.Events[ev].Extra["term"]
	if !ok {
		return 0
	}
	t, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return 0
	}
	return t
}

// dataNodes returns the i-th name of an anomaly's Data["nodes"], "?" if
// it has none.
func dataNodes(d map[string]any, i int) string {
	if ns := DataStrings(d["nodes"]); i < len(ns) {
		return ns[i]
	}
	return "?"
}

// dataInt returns an anomaly's Data number as int64 (0 if it is none).
func dataInt(v any) int64 {
	n, _ := DataInt(v)
	return n
}

// DataInt reads a number from an anomaly's Data: an integer as a checker
// set it, or a float64 once read back from results.json. ok is false for
// anything else.
func DataInt(v any) (n int64, ok bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint64:
		return int64(x), true
	case float64:
		return int64(x), true
	}
	return 0, false
}

// DataStrings reads a list of strings from an anomaly's Data: a []string
// as a checker set it, or a []any once read back from results.json
// (elements that are not non-empty strings are left out).
func DataStrings(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
