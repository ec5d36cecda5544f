package checkers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// The session-guarantees, causal and lost-updates checkers share one
// reading of a register history (kvHistory): each client operation paired,
// its value canonical, each value named by the one write that wrote it.

// kvOp is one register operation as the eventual-consistency checkers read
// it.
type kvOp struct {
	clientOp
	// read: the operation observed the register: an ok get (got is the
	// value read), or a cas that took effect (it found got, its "from").
	read bool
	// write: a put or cas that did not fail (put is the value written, a
	// cas's "to"). happened: it took effect: ok, or info (pending) whose
	// value an operation that took effect observed.
	write, happened bool
	cas             bool
	got, put        string // canonical JSON
}

// kvHistory is a history reduced to register operations.
type kvHistory struct {
	in    Input
	ops   []kvOp                // in invoke order
	byKey map[history.Key][]int // indexes into ops, in invoke order
	keys  []history.Key         // sorted
	// writer maps a key's values to the write (index into ops) that wrote
	// them, on keys whose written values are unique.
	writer map[history.Key]map[string]int
	// failed maps a value that only failed writes wrote to the event of one.
	failed map[history.Key]map[string]int
	// undiff are keys whose reads cannot name the write they saw (a value
	// written twice, or null written), with the reason; foreign are keys
	// that operations other than get/put/cas touched (the first such f).
	undiff, foreign map[history.Key]string
	unreadable      int // operations dropped because a value was not JSON
}

// buildKV pairs the client operations of in (pairOps) and reads the
// register operations among them (get/put/cas under any of the names
// normalizeF knows). Failed gets and puts are dropped, as are cas
// operations that failed (mismatch or otherwise: none took effect); info
// gets tell nothing and are dropped. It returns the pairing problems that
// make the history ambiguous, if any, instead of a history.
func buildKV(in Input) (*kvHistory, []problem) {
	cops, probs := pairOps(in)
	if amb := ambiguousOnly(probs); len(amb) > 0 {
		return nil, amb
	}
	h := &kvHistory{
		in:      in,
		ops:     make([]kvOp, 0, len(cops)),
		byKey:   map[history.Key][]int{},
		writer:  map[history.Key]map[string]int{},
		failed:  map[history.Key]map[string]int{},
		undiff:  map[history.Key]string{},
		foreign: map[history.Key]string{},
	}
	noteFailed := func(k history.Key, v string, ev int) {
		if h.failed[k] == nil {
			h.failed[k] = map[string]int{}
		}
		if _, ok := h.failed[k][v]; !ok {
			h.failed[k][v] = ev
		}
	}
	for _, c := range cops {
		f := normalizeF(c.F)
		if f == "" {
			if c.Type != history.Fail && c.Key.Text != "" {
				if _, seen := h.foreign[c.Key]; !seen {
					h.foreign[c.Key] = c.F
				}
			}
			continue
		}
		inv := &in.Events[c.Inv]
		var comp *history.Event
		if c.Comp >= 0 {
			comp = &in.Events[c.Comp]
		}
		arg := inv.Value
		if arg == nil && comp != nil {
			arg = comp.Value
		}
		ev := c.Comp
		if ev < 0 {
			ev = c.Inv
		}
		op := kvOp{clientOp: c}
		switch f {
		case "get":
			if c.Type != history.OK {
				continue
			}
			v, err := canonicalJSON(comp.Value)
			if err != nil {
				h.unreadable++
				continue
			}
			op.read, op.got = true, v
		case "put":
			v, err := canonicalJSON(arg)
			if err != nil {
				h.unreadable++
				continue
			}
			if c.Type == history.Fail {
				noteFailed(c.Key, v, ev)
				continue
			}
			op.write, op.put, op.happened = true, v, c.Type == history.OK
		case "cas":
			from, to, err := parseCAS(arg)
			var fv, tv string
			if err == nil {
				fv, err = canonicalJSON(from)
			}
			if err == nil {
				tv, err = canonicalJSON(to)
			}
			if err != nil {
				h.unreadable++
				continue
			}
			if c.Type == history.Fail {
				noteFailed(c.Key, tv, ev)
				continue
			}
			op.cas, op.write, op.got, op.put = true, true, fv, tv
			op.read, op.happened = c.Type == history.OK, c.Type == history.OK
		}
		h.byKey[c.Key] = append(h.byKey[c.Key], len(h.ops))
		h.ops = append(h.ops, op)
	}
	for k := range h.byKey {
		h.keys = append(h.keys, k)
	}
	sortKeys(h.keys)
	for i := range h.ops {
		o := &h.ops[i]
		if !o.write {
			continue
		}
		m := h.writer[o.Key]
		if m == nil {
			m = map[string]int{}
			h.writer[o.Key] = m
		}
		if j, dup := m[o.put]; dup {
			if _, noted := h.undiff[o.Key]; !noted {
				h.undiff[o.Key] = fmt.Sprintf("%.40s was written twice to key %s (at %s and %s)", o.put, o.Key, in.Ref(h.ops[j].Inv), in.Ref(o.Inv))
			}
			continue
		}
		if o.put == "null" {
			if _, noted := h.undiff[o.Key]; !noted {
				h.undiff[o.Key] = fmt.Sprintf("null was written to key %s (at %s), so a read of null cannot tell that write from the absent key", o.Key, in.Ref(o.Inv))
			}
		}
		m[o.put] = i
	}
	// An info write whose value an operation that took effect observed
	// took effect; an info cas that took effect also found its "from",
	// which it thereby observed (hence the loop).
	observed := map[history.Key]map[string]bool{}
	see := func(k history.Key, v string) bool {
		if observed[k] == nil {
			observed[k] = map[string]bool{}
		}
		if observed[k][v] {
			return false
		}
		observed[k][v] = true
		return true
	}
	for i := range h.ops {
		if o := &h.ops[i]; o.read {
			see(o.Key, o.got)
		}
	}
	for changed := true; changed; {
		changed = false
		for i := range h.ops {
			o := &h.ops[i]
			if o.write && !o.happened && observed[o.Key][o.put] && h.writer[o.Key][o.put] == i {
				o.happened, changed = true, true
				if o.cas {
					o.read = true
					see(o.Key, o.got)
				}
			}
		}
	}
	return h, nil
}

// excluded says why key k cannot be judged ("" if it can).
func (h *kvHistory) excluded(k history.Key) string {
	if why, ok := h.undiff[k]; ok {
		return "values repeat: " + why
	}
	if f, ok := h.foreign[k]; ok {
		return fmt.Sprintf("operations other than get/put/cas (%q) touched it", f)
	}
	return ""
}

// excludedKeys lists the keys that cannot be judged (excluded), sorted,
// the reasons of the first few, and how many there are in all.
func (h *kvHistory) excludedKeys() (reasons []string, n int) {
	seen := map[history.Key]bool{}
	var keys []history.Key
	for _, m := range []map[history.Key]string{h.undiff, h.foreign} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sortKeys(keys)
	for i, k := range keys {
		if i == 3 {
			break
		}
		reasons = append(reasons, fmt.Sprintf("key %s: %s", k, h.excluded(k)))
	}
	return reasons, len(keys)
}

// writerOf returns the write that wrote v to k (-1 if none did).
func (h *kvHistory) writerOf(k history.Key, v string) int {
	if i, ok := h.writer[k][v]; ok {
		return i
	}
	return -1
}

// ev returns the event that stands for op i: its completion, or its invoke
// if it never completed.
func (h *kvHistory) ev(i int) int {
	if c := h.ops[i].Comp; c >= 0 {
		return c
	}
	return h.ops[i].Inv
}

// ref is op i's reference (h.in.Ref of h.ev(i)).
func (h *kvHistory) ref(i int) string { return h.in.Ref(h.ev(i)) }

// node is the node that answered op i ("" if the history does not say).
func (h *kvHistory) node(i int) string {
	if c := h.ops[i].Comp; c >= 0 {
		return h.in.Events[c].Node
	}
	return ""
}

// shortVal shortens a canonical value for messages.
func shortVal(v string) string {
	if len(v) > 60 {
		return v[:57] + "..."
	}
	return v
}

// SessionGuarantees checks the four session guarantees of Terry et al.
// (1994) per process (a session) on a register store whose written values
// are unique per key: read-your-writes, monotonic reads, monotonic writes
// and writes-follow-reads. Keys are registers judged independently.
//
// The model (Burckhardt's abstract executions, one version order per key):
// the writes to a key have an arbitration, a total "version" order the
// history does not show; a read sees a set of writes of its key and returns
// the last one in that order, null if it sees none. Because values are
// unique, a read of v names the write of v, which it saw, and shows that
// every write it saw precedes that write. Nothing else is assumed: no real
// time, no clocks, no node identity. A get, and the comparison of a cas
// that took effect (its "from"), are reads; a put or a cas that did not
// fail is a write; an info write counts once an operation that took effect
// read its value (an info write nobody read can be placed last in every
// order, so it never matters). Each guarantee constrains the version order
// within a session's operations on one key:
//
//   - monotonic reads: a read sees what the session's earlier reads saw, so
//     the value an earlier read returned precedes (or is) the value a later
//     one returned, and a read after a non-null read is not null;
//   - monotonic writes: a session's earlier write precedes its later write,
//     and a read that sees the later sees the earlier;
//   - read-your-writes: a read sees the session's earlier writes, so each
//     precedes (or is) the value read, and the read is not null;
//   - writes-follow-reads: a write follows what the session's earlier reads
//     saw, and a read that sees the write sees those too.
//
// A guarantee is reported violated on a key only when no version order
// satisfies it: on its own where the history can refute it alone, and
// otherwise together with the guarantees before it in the order monotonic
// reads, monotonic writes, read-your-writes, writes-follow-reads, when the
// history admits those on that key. Monotonic writes cannot be refuted
// alone by single-key reads (an order that follows each session's writes
// always exists), so it is judged together with monotonic reads: process T
// reading w2 and then w1, where one session wrote w1 then w2, breaks
// monotonic writes under every version order that keeps T's reads
// monotonic. Likewise a session that wrote w1 then w2 and then read w1 breaks
// read-your-writes under every order that keeps monotonic writes. A key on
// which a guarantee earlier in that order already fails is not judged for
// the later ones (Details "unjudged"), except for the single-observation
// refutations, which hold alone: a null read after a non-null one
// (monotonic reads) or after the session's own write (read-your-writes), and
// a read of a value its own session wrote only later (writes-follow-reads).
// The orders a history can refute form a graph on each key's writes; a
// violation is a cycle, found incrementally in history order: each anomaly
// is the first observation that closes one, with every constraint of the
// cycle named. Guarantees across keys (a write on one key following a read
// of another) cannot be seen by single-key reads and are not judged.
//
// One version order per key is what causal convergence (CCv) and
// linearizability provide, so both imply no anomaly here. Causal
// consistency (CC, the causal checker) does not: it lets a session read
// two concurrent writes a, b, a, which breaks monotonic reads here.
//
// Anomalies have Kind the guarantee's name, Node the node that answered
// the offending read (the latest read of the cycle), Refs its line first,
// then the other operations of the evidence, Data the process, the cycle's
// values and the guarantees it used. Details["guarantees"] maps each
// guarantee to "valid" (it applied and nothing refutes it), "invalid",
// "not_applicable" (no session's operations on a key constrain it), or
// "unknown" (it may apply where it could not be judged: keys whose values
// repeat, keys other operations touched, keys where an earlier guarantee
// already fails). Other Details: anomalies_by_guarantee, keys_checked,
// sessions, unjudged (guarantee -> keys where it applied but an earlier one
// failed), keys_excluded, reads_of_unknown_values (reads of a value no
// write wrote: they name no write and are skipped).
//
// The verdict is Invalid if any guarantee is violated; NotApplicable if
// none applies: no process read a key's value (one some write wrote) and
// later read or wrote that key, or wrote a key and later read it; Unknown
// if the history is malformed, the budget (Input.Budget, default 60 s) or
// ctx ran out, or a guarantee is unknown; else Valid. The check is linear
// in the history up to the cycle searches, which stay within the strongly
// connected parts of each key's graph.
type SessionGuarantees struct{}

// Name implements Checker.
func (SessionGuarantees) Name() string { return "session-guarantees" }

// The guarantees, as Details["guarantees"] and Anomaly.Kind name them.
const (
	guarRYW = "read-your-writes"
	guarMR  = "monotonic-reads"
	guarMW  = "monotonic-writes"
	guarWFR = "writes-follow-reads"
)

// sessionLadder is the order in which guarantees are judged: each one, where
// the history does not refute it alone, together with those before it.
var sessionLadder = []string{guarMR, guarMW, guarRYW, guarWFR}

// sgEdge is one order the history forces between two writes of a key under
// guarantee g: from precedes to. a and b (indexes into kvHistory.ops) are
// the operations of one session that show it, a first.
type sgEdge struct {
	from, to int // nodes (dense per key)
	g        string
	a, b     int
	at       int // event index at which the evidence is complete
}

// sgKey is one key's constraints.
type sgKey struct {
	k      history.Key
	node   map[int]int // write (op index) -> node
	write  []int       // node -> write (op index)
	edges  map[string][]sgEdge
	pairs  map[string]int // constraint instances per guarantee (applicability)
	single []Anomaly      // refutations by a single observation
}

// Check implements Checker.
func (SessionGuarantees) Check(ctx context.Context, in Input) Result {
	budget := in.budgetOr(DefaultBudget)
	deadline := time.Now().Add(budget)
	return checkSessions(in, budget, func() bool { return ctx.Err() != nil || time.Now().After(deadline) })
}

// checkSessions is Check with the budget's expiry as a function (tests
// trip it where they want).
func checkSessions(in Input, budget time.Duration, expired func() bool) Result {
	start := time.Now()
	r := Result{Name: "session-guarantees", Details: map[string]any{}}
	done := func() Result { return finish(&r, start) }
	h, probs := buildKV(in)
	if h == nil {
		r.setMalformed("operations", probs[0])
		return done()
	}
	var (
		anomalies  []Anomaly
		applies    = map[string]int{} // keys on which the guarantee applies and was judged
		unjudged   = map[string]int{} // keys on which it applies but an earlier guarantee fails
		unknownVal int
		sessions   = map[history.Process]bool{}
		checked    int
	)
	incomplete := false
	for _, k := range h.keys {
		if expired() {
			incomplete = true
			break
		}
		if h.excluded(k) != "" {
			continue
		}
		checked++
		sk, unk := sessionConstraints(h, k, sessions)
		unknownVal += unk
		anomalies = append(anomalies, sk.single...)
		failed := map[string]bool{}
		for _, a := range sk.single {
			failed[a.Kind] = true
		}
		ok := true // the guarantees before this one hold together on k
		var premise []string
		g := newSGGraph(len(sk.write), expired)
		for _, gu := range sessionLadder {
			applicable := sk.pairs[gu] > 0
			if gu == guarMW {
				applicable = applicable && sk.pairs[guarMR] > 0
			}
			if !ok {
				if applicable {
					unjudged[gu]++
				}
				continue
			}
			if applicable {
				applies[gu]++
			}
			cycles, complete := g.addAll(sk.edges[gu])
			for _, cyc := range cycles {
				anomalies = append(anomalies, sessionCycle(h, sk, gu, premise, cyc))
				failed[gu] = true
			}
			if !complete {
				incomplete = true
				break
			}
			if failed[gu] {
				ok = false
			}
			premise = append(premise, gu)
		}
	}
	sort.SliceStable(anomalies, func(i, j int) bool { return anomalies[i].Events[0] < anomalies[j].Events[0] })
	r.Anomalies = anomalies
	if incomplete && len(anomalies) == 0 {
		r.Verdict = Unknown
		r.Summary = "ran out of time (or was cancelled) before every key was judged"
		r.Explanation = fmt.Sprintf("The session guarantees were not judged on every key within the budget of %s; none is reported valid. Give the check more time (faultline check --budget).", budget)
		return done()
	}
	byG := map[string]int{}
	for _, a := range anomalies {
		byG[a.Kind]++
	}
	reasons, nExcluded := h.excludedKeys()
	status := map[string]string{}
	anyApplies, anyUnknown := false, false
	for _, gu := range []string{guarRYW, guarMR, guarMW, guarWFR} {
		switch {
		case byG[gu] > 0:
			status[gu] = string(Invalid)
		case unjudged[gu] > 0 || nExcluded > 0 || incomplete:
			status[gu] = string(Unknown)
		case applies[gu] > 0:
			status[gu] = string(Valid)
		default:
			status[gu] = string(NotApplicable)
		}
		anyApplies = anyApplies || applies[gu] > 0 || unjudged[gu] > 0
		anyUnknown = anyUnknown || status[gu] == string(Unknown)
	}
	r.Details["guarantees"] = status
	r.Details["anomalies_by_guarantee"] = byG
	r.Details["keys_checked"] = checked
	r.Details["sessions"] = len(sessions)
	if len(unjudged) > 0 {
		r.Details["unjudged"] = unjudged
	}
	if nExcluded > 0 {
		r.Details["keys_excluded"] = nExcluded
	}
	if unknownVal > 0 {
		r.Details["reads_of_unknown_values"] = unknownVal
	}
	summaryOf := func() string {
		var parts []string
		for _, gu := range []string{guarRYW, guarMR, guarMW, guarWFR} {
			parts = append(parts, gu+" "+strings.ReplaceAll(status[gu], "_", " "))
		}
		return strings.Join(parts, ", ")
	}
	switch {
	case len(anomalies) > 0:
		r.Verdict = Invalid
		r.Summary = fmt.Sprintf("%s: %s", plural64(int64(len(anomalies)), "session anomaly", "session anomalies"), summaryOf())
		if incomplete {
			r.Summary += " (the budget ran out before every key was judged: there may be more)"
		}
		r.Explanation = sessionExplanation(anomalies)
	case !anyApplies && nExcluded == 0:
		r.Verdict = NotApplicable
		r.Summary = "not applicable: no process read a key and then read or wrote it again, or wrote a key and then read it"
		r.Explanation = "Session guarantees constrain what one process (a session) sees of a key across its operations: they apply only where a process read a value of a key and later read or wrote that key, or wrote a key and later read it."
	case anyUnknown:
		r.Verdict = Unknown
		r.Summary = "no session anomaly found, but not every guarantee could be judged: " + summaryOf()
		var b strings.Builder
		if nExcluded > 0 {
			fmt.Fprintf(&b, "%s could not be judged (%s). ", plural(nExcluded, "key"), strings.Join(reasons, "; "))
		}
		b.WriteString("A read names the write it saw only if every write to its key wrote a different value (not null), and keys that other operations change cannot be judged as registers.")
		r.Explanation = b.String()
	default:
		r.Verdict = Valid
		r.Summary = fmt.Sprintf("no session anomaly on %s of %s: %s", plural(checked, "key"), plural(len(sessions), "session"), summaryOf())
	}
	return done()
}

// sessionConstraints reads key k's constraints: the edges each guarantee
// forces between its writes, and the refutations by a single observation.
// It adds the processes it sees to sessions and returns the number of reads
// whose value no write wrote (they are skipped: they name no write).
func sessionConstraints(h *kvHistory, k history.Key, sessions map[history.Process]bool) (*sgKey, int) {
	sk := &sgKey{k: k, node: map[int]int{}, edges: map[string][]sgEdge{}, pairs: map[string]int{}}
	nodeOf := func(w int) int {
		n, ok := sk.node[w]
		if !ok {
			n = len(sk.write)
			sk.node[w] = n
			sk.write = append(sk.write, w)
		}
		return n
	}
	type state struct {
		lastRead  int // last read of a known non-null value (op index), -1
		lastWrite int // last write, -1
		// wfrRead is the last read of a known non-null value since the last
		// write, unless its own session wrote that value later (-1): the
		// next write follows it. Writes-follow-reads is judged with
		// monotonic reads and monotonic writes, which order every earlier
		// read before it, so that one edge stands for all.
		wfrRead int
	}
	st := map[history.Process]*state{}
	unknown := 0
	addEdge := func(g string, fromW, toW, a, b int) {
		sk.pairs[g]++
		if fromW == toW {
			return
		}
		sk.edges[g] = append(sk.edges[g], sgEdge{from: nodeOf(fromW), to: nodeOf(toW), g: g, a: a, b: b, at: max(h.ev(a), h.ev(b))})
	}
	for _, i := range h.byKey[k] {
		o := &h.ops[i]
		sessions[o.Process] = true
		s := st[o.Process]
		if s == nil {
			s = &state{lastRead: -1, lastWrite: -1, wfrRead: -1}
			st[o.Process] = s
		}
		if o.read {
			switch w := h.writerOf(k, o.got); {
			case o.got == "null":
				if s.lastRead >= 0 {
					sk.pairs[guarMR]++
					sk.single = append(sk.single, sessionSingle(h, k, guarMR, s.lastRead, i))
				}
				if s.lastWrite >= 0 {
					sk.pairs[guarRYW]++
					sk.single = append(sk.single, sessionSingle(h, k, guarRYW, s.lastWrite, i))
				}
			case w < 0:
				unknown++
			default:
				if s.lastRead >= 0 {
					addEdge(guarMR, h.writerOf(k, h.ops[s.lastRead].got), w, s.lastRead, i)
				}
				if s.lastWrite >= 0 {
					addEdge(guarRYW, s.lastWrite, w, s.lastWrite, i)
				}
				if h.ops[w].Process == o.Process && h.ops[w].Inv > o.Inv {
					sk.pairs[guarWFR]++
					sk.single = append(sk.single, sessionSingle(h, k, guarWFR, i, w))
					s.wfrRead = -1
				} else {
					s.wfrRead = i
				}
				s.lastRead = i
			}
		}
		if o.write {
			nodeOf(i)
			if s.lastWrite >= 0 {
				addEdge(guarMW, s.lastWrite, i, s.lastWrite, i)
			}
			if rd := s.wfrRead; rd >= 0 {
				addEdge(guarWFR, h.writerOf(k, h.ops[rd].got), i, rd, i)
			}
			s.wfrRead = -1
			s.lastWrite = i
		}
	}
	for g := range sk.edges {
		es := sk.edges[g]
		sort.SliceStable(es, func(i, j int) bool { return es[i].at < es[j].at })
	}
	return sk, unknown
}

// sgGraph is a growing graph of a key's forced orders, kept acyclic.
type sgGraph struct {
	out [][]sgEdge
	// The path search's scratch: seen[v] == stamp marks v visited, via
	// edge prev[v].
	seen  []int32
	stamp int32
	prev  []sgEdge
	queue []int
	// expired reports whether the budget ran out (checked at each search).
	expired func() bool
}

func newSGGraph(n int, expired func() bool) *sgGraph {
	return &sgGraph{out: make([][]sgEdge, n), seen: make([]int32, n), prev: make([]sgEdge, n), expired: expired}
}

// addAll adds edges in order. An edge that would close a cycle is not
// added; the cycle (that edge first, then the path back) is returned.
// Cycles are searched only inside the strongly connected components of
// the graph with every edge added, which is where they can be. complete
// is false when the budget ran out first.
func (g *sgGraph) addAll(es []sgEdge) (cycles [][]sgEdge, complete bool) {
	if len(es) == 0 {
		return nil, true
	}
	n := len(g.out)
	extra := make([][]int, n)
	for _, e := range es {
		extra[e.from] = append(extra[e.from], e.to)
	}
	comp, size := stronglyConnected(n, func(v int, visit func(int)) {
		for _, e := range g.out[v] {
			visit(e.to)
		}
		for _, w := range extra[v] {
			visit(w)
		}
	})
	for _, e := range es {
		if comp[e.from] == comp[e.to] && size[comp[e.from]] > 1 {
			if g.expired() {
				return cycles, false
			}
			if p := g.path(e.to, e.from, comp); p != nil {
				cycles = append(cycles, append([]sgEdge{e}, p...))
				continue
			}
		}
		g.out[e.from] = append(g.out[e.from], e)
	}
	return cycles, true
}

// path finds a shortest path from a to b through nodes of a's component.
func (g *sgGraph) path(a, b int, comp []int) []sgEdge {
	if a == b {
		return []sgEdge{}
	}
	g.stamp++
	g.seen[a] = g.stamp
	g.queue = append(g.queue[:0], a)
	for q := 0; q < len(g.queue); q++ {
		for _, e := range g.out[g.queue[q]] {
			if comp[e.to] != comp[a] || g.seen[e.to] == g.stamp {
				continue
			}
			g.seen[e.to], g.prev[e.to] = g.stamp, e
			if e.to == b {
				var p []sgEdge
				for x := b; x != a; x = g.prev[x].from {
					p = append(p, g.prev[x])
				}
				for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
					p[i], p[j] = p[j], p[i]
				}
				return p
			}
			g.queue = append(g.queue, e.to)
		}
	}
	return nil
}

// stronglyConnected labels the nodes 0..n-1 of the graph whose successors
// succ visits with their strongly connected component (Tarjan, iterative),
// and returns each component's size.
func stronglyConnected(n int, succ func(v int, visit func(w int))) (comp []int, size []int) {
	const unvisited = -1
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	comp = make([]int, n)
	for i := range index {
		index[i] = unvisited
	}
	var stack []int
	next := 0
	type frame struct {
		v    int
		succ []int
		i    int
	}
	var succs []int
	successors := func(v int) []int {
		succs = succs[:0]
		succ(v, func(w int) { succs = append(succs, w) })
		return append([]int(nil), succs...)
	}
	for root := 0; root < n; root++ {
		if index[root] != unvisited {
			continue
		}
		frames := []frame{{v: root, succ: successors(root)}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(frames) > 0 {
			f := &frames[len(frames)-1]
			if f.i < len(f.succ) {
				w := f.succ[f.i]
				f.i++
				switch {
				case index[w] == unvisited:
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					frames = append(frames, frame{v: w, succ: successors(w)})
				case onStack[w]:
					low[f.v] = min(low[f.v], index[w])
				}
				continue
			}
			v := f.v
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				p := frames[len(frames)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == index[v] {
				c := len(size)
				size = append(size, 0)
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = c
					size[c]++
					if w == v {
						break
					}
				}
			}
		}
	}
	return comp, size
}

// sessionDo describes what op i of a session did, as a clause.
func sessionDo(h *kvHistory, i int, read bool) string {
	o := &h.ops[i]
	if read {
		return fmt.Sprintf("read %s at %s (%s)", readSaw(o.got), h.ref(i), answeredBy(h.node(i)))
	}
	ack := "never acknowledged"
	switch {
	case o.Type == history.OK && h.node(i) != "":
		ack = "acknowledged by " + h.node(i)
	case o.Type == history.OK:
		ack = "acknowledged"
	case o.happened:
		ack = "outcome unknown, but read later"
	}
	return fmt.Sprintf("wrote %s at %s (%s)", shortVal(o.put), h.ref(i), ack)
}

// sessionSingle is a refutation by one observation: op a then op b of one
// session on key k (for writes-follow-reads, a is the read and b the later
// write of the value it read).
func sessionSingle(h *kvHistory, k history.Key, g string, a, b int) Anomaly {
	oa := &h.ops[a]
	var msg string
	offending := b
	switch g {
	case guarMR:
		msg = fmt.Sprintf("key %s: monotonic reads violated: process %s %s and later read nothing (the key absent) at %s (%s): a read after one that saw a write must see a write too",
			k, oa.Process, sessionDo(h, a, true), h.ref(b), answeredBy(h.node(b)))
	case guarRYW:
		msg = fmt.Sprintf("key %s: read-your-writes violated: process %s %s and later read nothing (the key absent) at %s (%s): its own write was not visible",
			k, oa.Process, sessionDo(h, a, false), h.ref(b), answeredBy(h.node(b)))
	case guarWFR:
		offending = a
		msg = fmt.Sprintf("key %s: writes-follow-reads violated: process %s %s, a value it wrote itself only later (%s): no version order puts a write after a read that already saw it",
			k, oa.Process, sessionDo(h, a, true), h.ref(b))
	}
	other := a
	if offending == a {
		other = b
	}
	evs := []int{h.ev(offending), h.ops[offending].Inv, h.ev(other)}
	return Anomaly{
		Kind: g, Key: k.Text, KeyIsNumber: k.Number, Time: h.ops[offending].Call, Node: h.node(offending),
		Message: msg, Events: evs, Refs: refsOf(h.in, evs),
		Data: map[string]any{"process": int(h.ops[offending].Process)},
	}
}

// sessionEdgeText says what an edge's operations show and which guarantee
// orders its writes.
func sessionEdgeText(h *kvHistory, sk *sgKey, e sgEdge) string {
	p := h.ops[e.a].Process
	from, to := shortVal(h.ops[sk.write[e.from]].put), shortVal(h.ops[sk.write[e.to]].put)
	var what string
	switch {
	case e.a == e.b: // a cas: it found from and wrote to
		what = fmt.Sprintf("process %s's cas at %s (%s) found %s and wrote %s", p, h.ref(e.a), answeredBy(h.node(e.a)), from, to)
	case e.g == guarMR:
		what = fmt.Sprintf("process %s %s and later %s", p, sessionDo(h, e.a, true), sessionDo(h, e.b, true))
	case e.g == guarMW:
		what = fmt.Sprintf("process %s %s and later %s", p, sessionDo(h, e.a, false), sessionDo(h, e.b, false))
	case e.g == guarRYW:
		what = fmt.Sprintf("process %s %s and later %s", p, sessionDo(h, e.a, false), sessionDo(h, e.b, true))
	case e.g == guarWFR:
		what = fmt.Sprintf("process %s %s and later %s", p, sessionDo(h, e.a, true), sessionDo(h, e.b, false))
	}
	return fmt.Sprintf("%s, so %s puts %s before %s", what, e.g, from, to)
}

// sessionCycle is the anomaly of a cycle of forced orders on key sk.k that
// guarantee g closes, given the guarantees of premise.
func sessionCycle(h *kvHistory, sk *sgKey, g string, premise []string, cyc []sgEdge) Anomaly {
	// The offending read: the latest read of the evidence.
	offending := -1
	for _, e := range cyc {
		for _, x := range []int{e.a, e.b} {
			isRead := h.ops[x].read && !(e.g == guarMW || (x == e.a && e.g == guarRYW) || (x == e.b && e.g == guarWFR))
			if isRead && (offending < 0 || h.ev(x) > h.ev(offending)) {
				offending = x
			}
		}
	}
	if offending < 0 {
		offending = cyc[0].b
	}
	evs := []int{h.ev(offending), h.ops[offending].Inv}
	for _, e := range cyc {
		for _, x := range []int{e.a, e.b} {
			if x != offending {
				evs = append(evs, h.ev(x))
			}
		}
	}
	var steps []string
	vals := []string{}
	for _, e := range cyc {
		steps = append(steps, sessionEdgeText(h, sk, e))
		vals = append(vals, shortVal(h.ops[sk.write[e.from]].put))
	}
	vals = append(vals, vals[0])
	var why string
	switch {
	case len(premise) == 0 && g == guarMR:
		why = "so under every version order one of these reads returned a value older than one its session had already read"
	case len(premise) == 0:
		why = "so no version order satisfies " + g
	case g == guarMW:
		why = "so every version order that keeps these sessions' reads monotonic puts a session's later write before its earlier one"
	case g == guarRYW:
		why = "so every version order that keeps monotonic reads and monotonic writes on this key hides a session's own write from its later read"
	default:
		why = "so every version order that keeps the other guarantees on this key puts a write before a value its session had read"
	}
	uses := append(append([]string(nil), premise...), g)
	msg := fmt.Sprintf("key %s: %s violated: %s; these orders form a cycle (%s), %s",
		sk.k, g, strings.Join(steps, "; "), strings.Join(vals, " before "), why)
	return Anomaly{
		Kind: g, Key: sk.k.Text, KeyIsNumber: sk.k.Number, Time: h.ops[offending].Call, Node: h.node(offending),
		Message: msg, Events: evs, Refs: refsOf(h.in, evs),
		Data: map[string]any{"process": int(h.ops[offending].Process), "cycle": vals, "guarantees_used": uses},
	}
}

// sessionExplanation lists the first anomalies and counts the rest.
func sessionExplanation(as []Anomaly) string {
	var b strings.Builder
	b.WriteString("Some session (process) saw the store in an order that no version order of the writes allows under the guarantee named; each anomaly names the operations that prove it, the offending read first.")
	listAnomalies(&b, as, func(a Anomaly) string { return a.Kind + ": " + a.Message })
	return b.String()
}
