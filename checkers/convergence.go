package checkers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// ReplicaReadF is the f of the observer events that record one replica's
// own value of one key (the node kit's local read, bypassing replication):
//
//	{"type":"info","process":"observer","f":"replica-read","node":"n1","key":"k1",
//	 "value":{"round":3,"value":V}}            (or "error": TEXT in place of "value")
//
// The conductor records them in rounds, each round reading every key on
// every node, from the end of the heal until one round finds every replica
// agreeing on every key, or the convergence bound passes.
const ReplicaReadF = "replica-read"

// ReplicaRead is the value of a ReplicaReadF event.
type ReplicaRead struct {
	Round int             `json:"round"`
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
}

// ConvergenceParams configure the convergence checker (and the conductor's
// replica reads, which stop at the same bound).
type ConvergenceParams struct {
	// Within is how long after the heal every replica must agree on every
	// key; default 10s.
	Within time.Duration `yaml:"within"`
}

// DefaultConvergenceWithin is ConvergenceParams.Within's default.
const DefaultConvergenceWithin = 10 * time.Second

// Check checks the values.
func (p *ConvergenceParams) Check() error {
	if p.Within <= 0 || p.Within > time.Hour {
		return fmt.Errorf("within: %s: use a positive duration up to 1h", p.Within)
	}
	return nil
}

// Convergence judges whether the replicas agreed after the faults were
// healed: from the ReplicaReadF rounds the conductor recorded, it finds the
// first round in which every node answered and all held the same value
// of every key. Valid when that round ended within Within of the heal's
// end (the "heal" phase, else the first replica read); the time to
// converge is reported (Details "converged_after_ns", and the summary).
// Invalid when no round agreed within the bound: the evidence is the last
// round's disagreement, key by key, naming each node's value and its
// history line. Not applicable without replica reads (a system without
// local reads: the conductor records none). It says nothing of which
// value won: lost updates are another checker's.
type Convergence struct {
	Within time.Duration
}

// Name returns "convergence".
func (Convergence) Name() string { return "convergence" }

type replicaRound struct {
	start, end int64
	reads      map[string]map[string]int // key -> node -> event index
	nodes      map[string]bool
}

// Check runs the checker; it is linear in the history and ignores the
// budget.
func (c Convergence) Check(ctx context.Context, in Input) Result {
	t0 := time.Now()
	within := c.Within
	if within <= 0 {
		within = DefaultConvergenceWithin
	}
	r := Result{Name: "convergence"}
	done := func() Result { return finish(&r, t0) }
	rounds := map[int]*replicaRound{}
	var order []int
	healEnd := int64(-1)
	for _, p := range history.Phases(in.Events) {
		if p.Name == "heal" && !p.Open() {
			healEnd = p.End
		}
	}
	for i := range in.Events {
		e := &in.Events[i]
		if e.Process != history.Observer || e.F != ReplicaReadF || e.Node == "" {
			continue
		}
		var rr ReplicaRead
		if json.Unmarshal(e.Value, &rr) != nil {
			continue
		}
		rd := rounds[rr.Round]
		if rd == nil {
			rd = &replicaRound{start: e.Time, reads: map[string]map[string]int{}, nodes: map[string]bool{}}
			rounds[rr.Round] = rd
			order = append(order, rr.Round)
		}
		rd.end = max(rd.end, e.Time)
		rd.nodes[e.Node] = true
		if rd.reads[e.Key] == nil {
			rd.reads[e.Key] = map[string]int{}
		}
		rd.reads[e.Key][e.Node] = i
	}
	if len(order) == 0 {
		r.Verdict = NotApplicable
		r.Summary = "no replica reads: the system has no local read (the node kit's GET /admin/kv), or the run ended before the heal"
		return done()
	}
	sort.Ints(order)
	if healEnd < 0 {
		healEnd = rounds[order[0]].start
	}
	allNodes := map[string]bool{}
	for _, n := range order {
		for id := range rounds[n].nodes {
			allNodes[id] = true
		}
	}
	// agrees reports whether every node answered every key of round rd
	// with one value; else the keys that disagree, sorted.
	agrees := func(rd *replicaRound) []string {
		var bad []string
		for key, byNode := range rd.reads {
			var first json.RawMessage
			ok := len(byNode) == len(allNodes)
			for _, ev := range byNode {
				var rr ReplicaRead
				json.Unmarshal(in.Events[ev].Value, &rr)
				if rr.Error != "" {
					ok = false
					break
				}
				v := []byte(CanonicalValue(rr.Value))
				if first == nil {
					first = v
				} else if !bytes.Equal(first, v) {
					ok = false
					break
				}
			}
			if !ok {
				bad = append(bad, key)
			}
		}
		sort.Strings(bad)
		return bad
	}
	keys := 0
	for _, n := range order {
		keys = max(keys, len(rounds[n].reads))
	}
	r.Details = map[string]any{"rounds": len(order), "nodes": len(allNodes), "keys": keys, "within_ns": within.Nanoseconds()}
	for _, n := range order {
		rd := rounds[n]
		if len(agrees(rd)) > 0 {
			continue
		}
		after := max(rd.end-healEnd, 0)
		r.Details["converged_after_ns"] = after
		if after <= within.Nanoseconds() {
			r.Verdict = Valid
			r.Summary = fmt.Sprintf("converged: all %d replicas agreed on all %d keys %s after the heal (round %d of replica reads; bound %s)", len(allNodes), keys, fmtNs(after), n, within)
			return done()
		}
		r.Verdict = Invalid
		r.Summary = fmt.Sprintf("converged late: the %d replicas agreed on all %d keys only %s after the heal, beyond the bound %s", len(allNodes), keys, fmtNs(after), within)
		r.Explanation = fmt.Sprintf("Round %d of replica reads (%s to %s) is the first in which every node held the same value of every key; the scenario's bound is %s after the heal (at %s).", n, fmtNs(rd.start), fmtNs(rd.end), within, fmtNs(healEnd))
		return done()
	}
	last := rounds[order[len(order)-1]]
	bad := agrees(last)
	r.Verdict = Invalid
	for _, key := range bad {
		byNode := last.reads[key]
		ids := make([]string, 0, len(byNode))
		for id := range byNode {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var parts, refs []string
		var evs []int
		for _, id := range ids {
			ev := byNode[id]
			var rr ReplicaRead
			json.Unmarshal(in.Events[ev].Value, &rr)
			what := fmt.Sprintf("%.60s", CanonicalValue(rr.Value))
			if rr.Error != "" {
				what = "no answer (" + rr.Error + ")"
			}
			parts = append(parts, fmt.Sprintf("%s holds %s (%s)", id, what, in.Ref(ev)))
			refs = append(refs, in.Ref(ev))
			evs = append(evs, ev)
		}
		for id := range allNodes {
			if _, ok := byNode[id]; !ok {
				parts = append(parts, id+" was not read")
			}
		}
		slices.Sort(parts[len(ids):])
		r.Anomalies = append(r.Anomalies, Anomaly{
			Kind: "diverged", Key: key, Time: last.end, Node: ids[0], Refs: refs, Events: evs,
			Message: fmt.Sprintf("key %s: the replicas still disagree %s after the heal: %s", key, fmtNs(last.end-healEnd), strings.Join(parts, ", ")),
		})
	}
	r.Summary = fmt.Sprintf("not converged: %d of %d keys still differ between replicas %s after the heal (%d rounds of replica reads; bound %s)", len(bad), keys, fmtNs(last.end-healEnd), len(order), within)
	r.Explanation = fmt.Sprintf("After the heal (at %s) every replica's own value of every key was read in rounds until all agreed or the bound of %s passed; in the last round (%s to %s) %d keys still differ, listed with each node's value. An eventually consistent store must converge once the faults are healed and no write arrives.", fmtNs(healEnd), within, fmtNs(last.start), fmtNs(last.end), len(bad))
	return done()
}

// CanonicalValue is raw in history.CanonicalJSON form ("null" when empty;
// raw itself when it is not JSON), so that replicas holding one value in
// two spellings compare equal.
func CanonicalValue(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	c, err := history.CanonicalJSON(raw)
	if err != nil {
		return string(raw)
	}
	return c
}
