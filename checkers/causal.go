package checkers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// Causal checks causal consistency (CC) as Bouajjani, Enea, Guerraoui and
// Hamza define it for a read/write memory ("On Verifying Causal
// Consistency", POPL 2017): a history is CC when some strict partial order
// CO containing the session order explains every read: for each read, some
// serialization of its causal past (the operations before it in CO), in an
// order that extends CO, ends with the write it read as the last write of
// its key (with none, for a read of the initial, absent value). Real time
// plays no part. Sessions are processes; keys are the memory's locations;
// a read of null reads the initial value.
//
// For a differentiated history (every value written to a key is written
// once, and not null), CC holds exactly when the history has none of the
// four bad patterns below (the paper's Table 3 for CC), with CO the least
// candidate, (session order ∪ read-from)+, and the check is polynomial:
//
//   - CyclicCO: CO is cyclic;
//   - ThinAirRead: a read returned a value that no write wrote (or that
//     only failed writes wrote: they did not take effect);
//   - WriteCOInitRead: a read returned null although a write of its key
//     precedes it in CO;
//   - WriteCORead: a read returned the value of write w1, although a write
//     w2 of the same key follows w1 and precedes the read in CO.
//
// CyclicCF belongs to causal convergence (CCv), and WriteHBInitRead and
// CyclicHB to causal memory (CM): both are stronger than CC and not checked.
//
// Operations: ok gets are reads; ok puts are writes; an ok cas is a read of
// its "from" followed, in its session, by a write of its "to" (the cas's
// atomicity is not used, so every violation found is one of CC, but a
// history whose only fault is a cas that read and wrote non-atomically
// passes). Failed operations did nothing and are ignored (a read of a value
// only they wrote is a ThinAirRead). An info write (put or cas) took effect
// once an operation that took effect read its value, and then is a write of
// its session, after everything its session did before; an info write
// nobody read is ignored (nothing can depend on it). Writes to keys nobody
// reads are dropped (they cannot take part in a bad pattern).
//
// CO is built as a graph of session-order and read-from edges; a cycle is
// reported once per strongly connected part. When CO is acyclic, vector
// clocks over chains of causally ordered writes (a session's writes, a
// chain passed on to a later session once its own has ended) give, for
// each read, the latest write of each chain in its causal past; the write
// patterns then cost one lookup per chain and read: time O(n·c·log n),
// memory O(w·c) for n operations, w writes and c chains (about the number
// of sessions running at once). A history whose clocks would need more
// than 64 Mi entries is Unknown.
//
// Anomalies have Kind the bad pattern's name, Node the node that answered
// the offending read, Refs the read first, then the writes (and, for
// CyclicCO, the operations of the cycle); the message names the causal
// paths (for the first 20). Details: model ("CC"), operations, reads,
// writes, sessions, clock_components, bad_patterns (pattern -> count),
// info_writes_read, keys_excluded. The verdict is Invalid if any bad pattern is found; Unknown if
// the history is malformed, if the budget (Input.Budget, default 60 s) or
// ctx runs out first, or if some key cannot be judged because a value is
// written twice or null is written (the history is not differentiated), or
// other operations touched it, those keys being left out; NotApplicable if
// no operation read a key; else Valid.
type Causal struct{}

// Name implements Checker.
func (Causal) Name() string { return "causal" }

// The bad patterns of CC, as Anomaly.Kind names them.
const (
	bpCyclicCO        = "CyclicCO"
	bpThinAirRead     = "ThinAirRead"
	bpWriteCOInitRead = "WriteCOInitRead"
	bpWriteCORead     = "WriteCORead"
)

// maxClockEntries bounds the vector clocks' table (writes × writing sessions).
const maxClockEntries = 64 << 20

const (
	ccInit    = -1 // a read of the initial value
	ccThinAir = -2 // a read of a value no write wrote
)

// ccOp is one operation of the causal order: a read or a write. An ok cas
// is two: its read, then its write.
type ccOp struct {
	op         int // index into kvHistory.ops
	read       bool
	key        history.Key
	val        string
	sess       int
	prev, next int // session order neighbours, -1 if none
	src        int // read: the write it read, or ccInit, ccThinAir
	comp       int // write: its chain (clock component)
	wpos       int32
	row        int // write: its index among the writes
}

// keyComp lists one chain's writes of one key: their positions in the
// chain, ascending, and their ccOp indexes.
type keyComp struct {
	comp int
	wpos []int32
	ids  []int
}

type ccCheck struct {
	h        *kvHistory
	ops      []ccOp
	sessions int
	chains   int // clock components
	writes   int
	reads    int
	keyComps map[history.Key][]keyComp
	keyChain map[history.Key]map[int]int // key -> chain -> index in keyComps[key]
	tooLarge string
	found    []Anomaly
	paths    [][][2]int // per anomaly: causal paths (from, to) to describe
	byKind   map[string]int
	deadline time.Time
	ctx      context.Context
	ticks    int
	stopped  bool
}

// tick reports whether the budget or ctx ran out (checked every 4096 calls).
func (c *ccCheck) tick() bool {
	if c.stopped {
		return true
	}
	c.ticks++
	if c.ticks&4095 == 0 && (c.ctx.Err() != nil || time.Now().After(c.deadline)) {
		c.stopped = true
	}
	return c.stopped
}

// Check implements Checker.
func (Causal) Check(ctx context.Context, in Input) Result {
	start := time.Now()
	r := Result{Name: "causal", Details: map[string]any{}}
	done := func() Result { return finish(&r, start) }
	budget := in.budgetOr(DefaultBudget)
	h, probs := buildKV(in)
	if h == nil {
		r.setMalformed("operations", probs[0])
		return done()
	}
	c := &ccCheck{h: h, byKind: map[string]int{}, deadline: start.Add(budget), ctx: ctx}
	c.build()
	reasons, nExcluded := h.excludedKeys()
	if c.reads == 0 && nExcluded == 0 {
		r.Verdict = NotApplicable
		r.Summary = "not applicable: no operation read a key"
		r.Explanation = "Causal consistency constrains what reads return; this history has no successful read of a key."
		return done()
	}
	c.thinAir()
	order := c.topo()
	switch {
	case c.stopped:
	case len(order) < len(c.ops):
		c.cycles()
	default:
		c.clocks(order)
	}
	tooLarge := c.tooLarge
	c.explainPaths()
	sort.SliceStable(c.found, func(i, j int) bool { return c.found[i].Events[0] < c.found[j].Events[0] })
	r.Anomalies = c.found
	r.Details["model"] = "CC"
	r.Details["operations"] = len(c.ops)
	r.Details["reads"] = c.reads
	r.Details["writes"] = c.writes
	r.Details["sessions"] = c.sessions
	if c.chains > 0 {
		r.Details["clock_components"] = c.chains
	}
	r.Details["bad_patterns"] = c.byKind
	if nExcluded > 0 {
		r.Details["keys_excluded"] = nExcluded
	}
	info := 0
	for i := range c.ops {
		if o := &h.ops[c.ops[i].op]; !c.ops[i].read && o.Type != history.OK {
			info++
		}
	}
	if info > 0 {
		r.Details["info_writes_read"] = info
	}
	checked := fmt.Sprintf("%s and %s in %s", plural(c.reads, "read"), plural(c.writes, "write"), plural(c.sessions, "session"))
	switch {
	case len(c.found) > 0:
		r.Verdict = Invalid
		r.Summary = "not causally consistent: " + kindCounts(c.found)
		if c.stopped || tooLarge != "" || len(order) < len(c.ops) {
			r.Summary += " (the check did not finish: there may be more)"
		}
		r.Explanation = causalExplanation(c.found)
	case c.stopped:
		r.Verdict = Unknown
		r.Summary = fmt.Sprintf("ran out of time (or was cancelled) after %s", time.Since(start).Round(time.Millisecond))
		r.Explanation = fmt.Sprintf("The causal check of %s did not finish within its budget of %s; no verdict. Give it more time (faultline check --budget).", checked, budget)
	case tooLarge != "":
		r.Verdict = Unknown
		r.Summary = "the history is too large for the causal check: " + tooLarge
		r.Explanation = "The write patterns are checked with one vector clock per write over chains of causally ordered writes; this history would need too many entries. Check a shorter run, or one with fewer concurrent processes."
	case nExcluded > 0:
		r.Verdict = Unknown
		r.Summary = fmt.Sprintf("no bad pattern among %s, but %s could not be judged", checked, plural(nExcluded, "key"))
		r.Explanation = fmt.Sprintf("The polynomial check of causal consistency needs a differentiated history: every value written once to its key, and never null, so that a read names the write it saw; keys that other operations change cannot be judged as registers. Left out: %s.", strings.Join(reasons, "; "))
	default:
		r.Verdict = Valid
		r.Summary = "causally consistent (CC): " + checked
	}
	return done()
}

// build turns the history's register operations into the causal order's
// operations.
func (c *ccCheck) build() {
	h := c.h
	readKeys := map[history.Key]bool{}
	for i := range h.ops {
		if o := &h.ops[i]; o.read && h.excluded(o.Key) == "" {
			readKeys[o.Key] = true
		}
	}
	sessID := map[history.Process]int{}
	var last []int // session -> its last ccOp
	wnode := map[history.Key]map[string]int{}
	add := func(i int, read bool, val string) int {
		o := &h.ops[i]
		s, ok := sessID[o.Process]
		if !ok {
			s = len(last)
			sessID[o.Process] = s
			last = append(last, -1)
		}
		id := len(c.ops)
		c.ops = append(c.ops, ccOp{op: i, read: read, key: o.Key, val: val, sess: s, prev: last[s], next: -1, src: ccInit, comp: -1})
		if p := last[s]; p >= 0 {
			c.ops[p].next = id
		}
		last[s] = id
		return id
	}
	for i := range h.ops {
		o := &h.ops[i]
		if h.excluded(o.Key) != "" {
			continue
		}
		if o.read {
			add(i, true, o.got)
			c.reads++
		}
		if o.write && o.happened && readKeys[o.Key] {
			id := add(i, false, o.put)
			c.ops[id].row = c.writes
			c.writes++
			if wnode[o.Key] == nil {
				wnode[o.Key] = map[string]int{}
			}
			wnode[o.Key][o.put] = id
		}
	}
	c.sessions = len(last)
	for id := range c.ops {
		o := &c.ops[id]
		if !o.read {
			continue
		}
		switch w, ok := wnode[o.key][o.val]; {
		case ok:
			o.src = w
		case o.val == "null":
			o.src = ccInit
		default:
			o.src = ccThinAir
		}
	}
}

// topo returns the operations in an order that extends CO, as far as CO is
// acyclic (Kahn): shorter than c.ops when it is not. Of the operations
// ready, the one invoked first comes first, so that the order follows the
// history's and sessions end in it about when they ended in the run.
func (c *ccCheck) topo() []int {
	n := len(c.ops)
	indeg := make([]int32, n)
	rfStart := make([]int32, n+1) // CSR of read-from successors
	for i := range c.ops {
		o := &c.ops[i]
		if o.prev >= 0 {
			indeg[i]++
		}
		if o.read && o.src >= 0 {
			indeg[i]++
			rfStart[o.src+1]++
		}
	}
	for i := 0; i < n; i++ {
		rfStart[i+1] += rfStart[i]
	}
	rf := make([]int32, rfStart[n])
	fill := append([]int32(nil), rfStart[:n]...)
	for i := range c.ops {
		if o := &c.ops[i]; o.read && o.src >= 0 {
			rf[fill[o.src]] = int32(i)
			fill[o.src]++
		}
	}
	order := make([]int, 0, n)
	ready := &intHeap{}
	for i := range c.ops {
		if indeg[i] == 0 {
			ready.push(i)
		}
	}
	for ready.len() > 0 {
		if c.tick() {
			return order
		}
		v := ready.pop()
		order = append(order, v)
		if nx := c.ops[v].next; nx >= 0 {
			if indeg[nx]--; indeg[nx] == 0 {
				ready.push(nx)
			}
		}
		for _, w := range rf[rfStart[v]:rfStart[v+1]] {
			if indeg[w]--; indeg[w] == 0 {
				ready.push(int(w))
			}
		}
	}
	return order
}

// intHeap is a min-heap of ints.
type intHeap struct{ a []int }

func (h *intHeap) len() int { return len(h.a) }

func (h *intHeap) push(x int) {
	h.a = append(h.a, x)
	for i := len(h.a) - 1; i > 0; {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *intHeap) pop() int {
	top := h.a[0]
	n := len(h.a) - 1
	h.a[0] = h.a[n]
	h.a = h.a[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && h.a[l] < h.a[m] {
			m = l
		}
		if l+1 < n && h.a[l+1] < h.a[m] {
			m = l + 1
		}
		if m == i {
			break
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
	return top
}

// successors visits v's successors in the graph of CO's generators.
func (c *ccCheck) successors(rfOut map[int][]int) func(v int, visit func(int)) {
	return func(v int, visit func(int)) {
		if nx := c.ops[v].next; nx >= 0 {
			visit(nx)
		}
		for _, w := range rfOut[v] {
			visit(w)
		}
	}
}

// cycles reports one CyclicCO anomaly per strongly connected part of CO's
// graph, naming one cycle through it.
func (c *ccCheck) cycles() {
	rfOut := map[int][]int{}
	for i := range c.ops {
		if o := &c.ops[i]; o.read && o.src >= 0 {
			rfOut[o.src] = append(rfOut[o.src], i)
		}
	}
	succ := c.successors(rfOut)
	comp, size := stronglyConnected(len(c.ops), succ)
	reported := map[int]bool{}
	for v := range c.ops {
		cv := comp[v]
		if size[cv] < 2 || reported[cv] {
			continue
		}
		reported[cv] = true
		// A shortest cycle through v, within its component.
		prev := map[int]int{v: -1}
		queue := []int{v}
		var cyc []int
		for len(queue) > 0 && cyc == nil {
			x := queue[0]
			queue = queue[1:]
			succ(x, func(y int) {
				if cyc != nil || comp[y] != cv {
					return
				}
				if y == v {
					for z := x; z != -1; z = prev[z] {
						cyc = append(cyc, z)
					}
					return
				}
				if _, seen := prev[y]; !seen {
					prev[y] = x
					queue = append(queue, y)
				}
			})
		}
		for i, j := 0, len(cyc)-1; i < j; i, j = i+1, j-1 {
			cyc[i], cyc[j] = cyc[j], cyc[i]
		}
		c.cyclicCO(cyc)
	}
}

// thinAir reports reads of values no write wrote.
func (c *ccCheck) thinAir() {
	h := c.h
	for id := range c.ops {
		o := &c.ops[id]
		if !o.read || o.src != ccThinAir {
			continue
		}
		why := "which no operation wrote"
		evs := []int{h.ev(o.op), h.ops[o.op].Inv}
		if ev, ok := h.failed[o.key][o.val]; ok {
			why = fmt.Sprintf("which only the failed write at %s wrote (a failed write did not take effect)", h.in.Ref(ev))
			evs = append(evs, ev)
		}
		c.add(bpThinAirRead, id, evs, fmt.Sprintf("key %s: ThinAirRead: %s returned %s, %s", o.key, c.describe(id), shortVal(o.val), why))
	}
}

// clocks computes the vector clocks in order (an order extending an
// acyclic CO) and checks the write patterns at each read.
//
// A clock's components are chains of writes totally ordered by CO, not
// sessions: the writes of the past of an operation in a chain are a prefix
// of it, so a clock entry (the length of that prefix) says which. A
// session's writes extend the chain it owns; a session's first write
// adopts the chain of a session that has ended, if that chain's last write
// is in its causal past, or starts a new one. Processes that end "info"
// are replaced by new ones, so a run has many short sessions; chains keep
// the clocks about as wide as the number of sessions running at once.
func (c *ccCheck) clocks(order []int) {
	var (
		chainLen  []int32
		orphans   []int                     // chains whose session ended
		sessChain = make([]int, c.sessions) // session -> the chain it owns, -1
		run       = make([][]int32, c.sessions)
		left      = make([]int, c.sessions)
		wvc       = make([][]int32, c.writes)
		entries   int
	)
	for s := range sessChain {
		sessChain[s] = -1
	}
	for i := range c.ops {
		left[c.ops[i].sess]++
	}
	c.keyComps = map[history.Key][]keyComp{}
	c.keyChain = map[history.Key]map[int]int{}
	for _, v := range order {
		if c.tick() {
			return
		}
		o := &c.ops[v]
		vc := run[o.sess]
		if o.read {
			if o.src >= 0 {
				src := wvc[c.ops[o.src].row]
				if len(src) > len(vc) {
					vc = append(vc, make([]int32, len(src)-len(vc))...)
				}
				for j, x := range src {
					if x > vc[j] {
						vc[j] = x
					}
				}
			}
			run[o.sess] = vc
			c.checkRead(v, vc, wvc)
		} else {
			ch := sessChain[o.sess]
			if ch < 0 {
				for i := len(orphans) - 1; i >= 0; i-- {
					if oc := orphans[i]; clockAt(vc, oc) == chainLen[oc] {
						ch = oc
						orphans = append(orphans[:i], orphans[i+1:]...)
						break
					}
				}
				if ch < 0 {
					ch = len(chainLen)
					chainLen = append(chainLen, 0)
				}
				sessChain[o.sess] = ch
			}
			chainLen[ch]++
			o.comp, o.wpos = ch, chainLen[ch]
			if len(vc) <= ch {
				vc = append(vc, make([]int32, ch+1-len(vc))...)
			}
			vc[ch] = o.wpos
			run[o.sess] = vc
			wvc[o.row] = append([]int32(nil), vc...)
			if entries += len(vc); entries > maxClockEntries {
				c.tooLarge = fmt.Sprintf("the vector clocks of %d writes over %d chains of causally ordered writes would need more than %d entries", c.writes, len(chainLen), maxClockEntries)
				return
			}
			c.addKeyWrite(v)
		}
		if left[o.sess]--; left[o.sess] == 0 {
			run[o.sess] = nil
			if ch := sessChain[o.sess]; ch >= 0 {
				orphans = append(orphans, ch)
			}
		}
		c.chains = len(chainLen)
	}
}

// clockAt is entry i of clock vc (0 beyond its length: a chain that began
// after the clock was taken).
func clockAt(vc []int32, i int) int32 {
	if i < len(vc) {
		return vc[i]
	}
	return 0
}

// addKeyWrite lists write w among its chain's writes of its key.
func (c *ccCheck) addKeyWrite(w int) {
	o := &c.ops[w]
	at := c.keyChain[o.key]
	if at == nil {
		at = map[int]int{}
		c.keyChain[o.key] = at
	}
	j, ok := at[o.comp]
	if !ok {
		j = len(c.keyComps[o.key])
		at[o.comp] = j
		c.keyComps[o.key] = append(c.keyComps[o.key], keyComp{comp: o.comp})
	}
	kc := &c.keyComps[o.key][j]
	kc.wpos = append(kc.wpos, o.wpos)
	kc.ids = append(kc.ids, w)
}

// checkRead looks for WriteCOInitRead and WriteCORead at read r, whose
// causal past has, of each chain, its first vc[chain] writes.
func (c *ccCheck) checkRead(r int, vc []int32, wvc [][]int32) {
	o := &c.ops[r]
	if o.src == ccThinAir {
		return
	}
	latest := func(kc *keyComp) int { // the chain's latest write of the key in r's past
		bound := clockAt(vc, kc.comp)
		j := sort.Search(len(kc.wpos), func(i int) bool { return kc.wpos[i] > bound }) - 1
		if j < 0 {
			return -1
		}
		return kc.ids[j]
	}
	kcs := c.keyComps[o.key]
	if o.src == ccInit {
		for i := range kcs {
			if w := latest(&kcs[i]); w >= 0 {
				c.writeCOInitRead(r, w)
				return
			}
		}
		return
	}
	w1 := &c.ops[o.src]
	for i := range kcs {
		w2 := latest(&kcs[i])
		if w2 < 0 || w2 == o.src {
			continue
		}
		if clockAt(wvc[c.ops[w2].row], w1.comp) >= w1.wpos {
			c.writeCORead(r, o.src, w2)
			return
		}
	}
}

// add records an anomaly about ccOp id (a read, or the first operation of
// a cycle), with evidence events evs (id's first).
func (c *ccCheck) add(kind string, id int, evs []int, msg string) {
	h := c.h
	o := &c.ops[id]
	c.byKind[kind]++
	c.found = append(c.found, Anomaly{
		Kind: kind, Key: o.key.Text, KeyIsNumber: o.key.Number, Time: h.ops[o.op].Call, Node: h.node(o.op),
		Message: msg, Events: evs, Refs: refsOf(h.in, evs),
		Data: map[string]any{"process": int(h.ops[o.op].Process)},
	})
	c.paths = append(c.paths, nil)
}

func (c *ccCheck) writeCOInitRead(r, w int) {
	h := c.h
	o := &c.ops[r]
	evs := []int{h.ev(o.op), h.ops[o.op].Inv, h.ev(c.ops[w].op)}
	c.add(bpWriteCOInitRead, r, evs, fmt.Sprintf("key %s: WriteCOInitRead: %s found the key absent, but %s precedes it causally",
		o.key, c.describe(r), c.describe(w)))
	c.paths[len(c.paths)-1] = [][2]int{{w, r}}
}

func (c *ccCheck) writeCORead(r, w1, w2 int) {
	h := c.h
	o := &c.ops[r]
	evs := []int{h.ev(o.op), h.ops[o.op].Inv, h.ev(c.ops[w1].op), h.ev(c.ops[w2].op)}
	c.add(bpWriteCORead, r, evs, fmt.Sprintf("key %s: WriteCORead: %s returned %s, written by %s; but %s follows that write causally and precedes the read causally, so the read returned an overwritten value",
		o.key, c.describe(r), shortVal(o.val), c.describe(w1), c.describe(w2)))
	c.paths[len(c.paths)-1] = [][2]int{{w1, w2}, {w2, r}}
}

func (c *ccCheck) cyclicCO(cyc []int) {
	h := c.h
	// Start the cycle at a read, whose node the anomaly names.
	for i, v := range cyc {
		if c.ops[v].read {
			cyc = append(cyc[i:], cyc[:i]...)
			break
		}
	}
	var steps []string
	var evs []int
	for i, v := range cyc {
		next := cyc[(i+1)%len(cyc)]
		how := "reads-from"
		if c.ops[next].prev == v {
			how = "session order"
		}
		steps = append(steps, fmt.Sprintf("%s, then (%s)", c.describe(v), how))
		evs = append(evs, h.ev(c.ops[v].op))
		if i == 0 {
			evs = append(evs, h.ops[c.ops[v].op].Inv)
		}
	}
	c.add(bpCyclicCO, cyc[0], evs, fmt.Sprintf("causal order is cyclic: %s %s again: an operation causally precedes itself (a read returned a value its own causal future wrote)",
		strings.Join(steps, " "), c.describe(cyc[0])))
}

// describe names ccOp id: what it did, in which process, where.
func (c *ccCheck) describe(id int) string {
	h := c.h
	o := &c.ops[id]
	k := &h.ops[o.op]
	switch {
	case o.read && k.cas:
		return fmt.Sprintf("process %s's cas of key %s at %s (%s), which found %s", k.Process, o.key, h.ref(o.op), answeredBy(h.node(o.op)), readSaw(o.val))
	case o.read:
		return fmt.Sprintf("process %s's read of key %s at %s (%s)", k.Process, o.key, h.ref(o.op), answeredBy(h.node(o.op)))
	case k.Type != history.OK:
		return fmt.Sprintf("process %s's write of %s to key %s at %s (outcome unknown, but read)", k.Process, shortVal(o.val), o.key, h.ref(o.op))
	}
	return fmt.Sprintf("process %s's write of %s to key %s at %s", k.Process, shortVal(o.val), o.key, h.ref(o.op))
}

// short names ccOp id briefly, for paths.
func (c *ccCheck) short(id int) string {
	h := c.h
	o := &c.ops[id]
	k := &h.ops[o.op]
	switch {
	case o.read && k.cas:
		return fmt.Sprintf("cas(%s) found %s at %s", o.key.Text, shortVal(o.val), h.ref(o.op))
	case o.read:
		return fmt.Sprintf("get(%s)=%s at %s", o.key.Text, shortVal(o.val), h.ref(o.op))
	}
	return fmt.Sprintf("put(%s, %s) at %s", o.key.Text, shortVal(o.val), h.ref(o.op))
}

// path describes a shortest causal path from a to b (a precedes b in CO),
// found backwards through b's causal predecessors.
func (c *ccCheck) path(a, b int) string {
	prev := map[int]int{b: -1}
	queue := []int{b}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if x == a {
			break
		}
		o := &c.ops[x]
		preds := []int{o.prev}
		if o.read {
			preds = append(preds, o.src)
		}
		for _, y := range preds {
			if y < 0 {
				continue
			}
			if _, seen := prev[y]; !seen {
				prev[y] = x
				queue = append(queue, y)
			}
		}
	}
	if _, ok := prev[a]; !ok {
		return ""
	}
	var p []int
	for x := a; x != -1; x = prev[x] {
		p = append(p, x)
	}
	parts := []string{c.short(p[0])}
	for i := 0; i < len(p)-1; {
		if c.ops[p[i+1]].prev == p[i] {
			j := i + 1
			for j+1 < len(p) && c.ops[p[j+1]].prev == p[j] {
				j++
			}
			parts = append(parts, fmt.Sprintf("then in process %s %s", c.h.ops[c.ops[p[j]].op].Process, c.short(p[j])))
			i = j
			continue
		}
		parts = append(parts, "read by "+c.short(p[i+1]))
		i++
	}
	return strings.Join(parts, ", ")
}

// explainPaths appends the causal paths to the first 20 anomalies'
// messages (each search walks a causal past).
func (c *ccCheck) explainPaths() {
	for i, paths := range c.paths {
		a := &c.found[i]
		if i >= 20 || len(paths) == 0 {
			continue
		}
		var ps []string
		for _, p := range paths {
			if s := c.path(p[0], p[1]); s != "" {
				ps = append(ps, s)
			}
		}
		if len(ps) > 0 {
			a.Message += " (causal paths: " + strings.Join(ps, "; ") + ")"
		}
	}
}

// causalExplanation lists the first anomalies and counts the rest.
func causalExplanation(as []Anomaly) string {
	var b strings.Builder
	b.WriteString("The causal order (each process's order of operations, and each read after the write it read) shows reads that no serialization of their causal past explains; each anomaly names the read first, then the writes.")
	listAnomalies(&b, as, func(a Anomaly) string { return a.Message })
	return b.String()
}
