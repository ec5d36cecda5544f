package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// A naive causal-consistency oracle, written from the definition (Bouajjani
// et al. 2017, CC) and sharing no code with the checker: a history is CC
// when some strict partial order co containing the session order makes
// every read legal: some linear extension of co over the read's strict
// causal past ends, among the writes of its key, with the write it read
// (or has none, for a read of null). Info writes may or may not have taken
// effect: some choice must work. bruteCC takes co to be the least
// candidate, (session order ∪ read-from)+: any co that makes every read
// legal contains it (a read can only end with its write if that write is
// in its past), and restricting a legal serialization to the smaller past
// keeps it legal; TestBruteCCMinimalOrder checks this against every
// candidate co on tiny histories.

// bruteCC decides CC over every choice of the info writes that took effect.
func bruteCC(all []bOp) bool {
	return anyTaken(all, func(ops []bOp) bool { return ccWithOrder(ops, leastCO(ops)) })
}

// anyTaken reports whether f holds for some choice of the info writes of
// all that took effect (f gets all without those that did not).
func anyTaken(all []bOp, f func(ops []bOp) bool) bool {
	var maybes []int
	for i, o := range all {
		if o.maybe {
			maybes = append(maybes, i)
		}
	}
	for mask := 0; mask < 1<<len(maybes); mask++ {
		var ops []bOp
		drop := map[int]bool{}
		for j, i := range maybes {
			drop[i] = mask&(1<<j) == 0
		}
		for i, o := range all {
			if !drop[i] {
				ops = append(ops, o)
			}
		}
		if f(ops) {
			return true
		}
	}
	return false
}

// writerIn returns the write of o's value to o's key (-1 if none).
func writerIn(ops []bOp, o bOp) int {
	for i, w := range ops {
		if !w.read && w.key == o.key && w.val == o.val {
			return i
		}
	}
	return -1
}

// leastCO is (session order ∪ read-from)+ as a matrix; nil if a read
// names no write (the history is then not CC).
func leastCO(ops []bOp) [][]bool {
	n := len(ops)
	co := make([][]bool, n)
	for i := range co {
		co[i] = make([]bool, n)
	}
	for i := range ops {
		for j := i + 1; j < n; j++ {
			if ops[i].sess == ops[j].sess {
				co[i][j] = true
			}
		}
		if ops[i].read && ops[i].val != "null" {
			w := writerIn(ops, ops[i])
			if w < 0 {
				return nil
			}
			co[w][i] = true
		}
	}
	for k := 0; k < n; k++ {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if co[i][k] && co[k][j] {
					co[i][j] = true
				}
			}
		}
	}
	return co
}

// ccWithOrder reports whether co is a strict partial order that contains
// the session order and makes every read legal.
func ccWithOrder(ops []bOp, co [][]bool) bool {
	if co == nil {
		return false
	}
	n := len(ops)
	for i := 0; i < n; i++ {
		if co[i][i] {
			return false
		}
		for j := i + 1; j < n; j++ {
			if ops[i].sess == ops[j].sess && !co[i][j] {
				return false
			}
		}
	}
	for r := range ops {
		if ops[r].read && !legalRead(ops, co, r) {
			return false
		}
	}
	return true
}

// legalRead searches the linear extensions of co over r's strict causal
// past for one whose last write of r's key is the write r read (none, for
// null). It memoizes on (placed set, last write of the key).
func legalRead(ops []bOp, co [][]bool, r int) bool {
	var past []int
	for o := range ops {
		if co[o][r] {
			past = append(past, o)
		}
	}
	want := -1
	if ops[r].val != "null" {
		want = writerIn(ops, ops[r])
		if want < 0 {
			return false
		}
	}
	type state struct{ mask, last int }
	memo := map[state]bool{}
	var rec func(mask, last int) bool
	rec = func(mask, last int) bool {
		if mask == 1<<len(past)-1 {
			return last == want
		}
		st := state{mask, last}
		if v, ok := memo[st]; ok {
			return v
		}
		res := false
		for i, o := range past {
			if mask&(1<<i) != 0 {
				continue
			}
			ready := true
			for j, p := range past {
				if mask&(1<<j) == 0 && co[p][o] {
					ready = false
					break
				}
			}
			if !ready {
				continue
			}
			nl := last
			if !ops[o].read && ops[o].key == ops[r].key {
				nl = o
			}
			if rec(mask|1<<i, nl) {
				res = true
				break
			}
		}
		memo[st] = res
		return res
	}
	return rec(0, -1)
}

// literalCC decides CC by trying every strict partial order on the
// operations (not only those containing read-from), for tiny histories.
func literalCC(all []bOp) bool {
	return anyTaken(all, func(ops []bOp) bool {
		n := len(ops)
		var pairs [][2]int
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if i != j {
					pairs = append(pairs, [2]int{i, j})
				}
			}
		}
		for rel := 0; rel < 1<<len(pairs); rel++ {
			co := make([][]bool, n)
			for i := range co {
				co[i] = make([]bool, n)
			}
			for b, p := range pairs {
				co[p[0]][p[1]] = rel&(1<<b) != 0
			}
			transitive := true
			for i := 0; i < n && transitive; i++ {
				for j := 0; j < n && transitive; j++ {
					for k := 0; k < n; k++ {
						if co[i][j] && co[j][k] && !co[i][k] {
							transitive = false
							break
						}
					}
				}
			}
			if transitive && ccWithOrder(ops, co) {
				return true
			}
		}
		return false
	})
}

// TestBruteCCMinimalOrder checks the brute force's shortcut (the least
// causal order suffices) against every strict partial order, on tiny
// histories.
func TestBruteCCMinimalOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	var valid, invalid int
	for i := 0; i < 400; i++ {
		evs := genSmall(rng, smallCfg{Sessions: 2, MaxOps: 2, Keys: 1 + rng.Intn(2), PutProb: 0.5, InfoProb: 0.15, FailProb: 0.05, ThinAir: 0.02})
		ops := smallOps(evs)
		if len(ops) > 4 {
			continue
		}
		want := literalCC(ops)
		if got := bruteCC(ops); got != want {
			var b strings.Builder
			history.WriteAll(&b, nil, evs)
			t.Fatalf("history %d: least order says %v, every order %v\n%s", i, got, want, b.String())
		}
		if want {
			valid++
		} else {
			invalid++
		}
	}
	if valid < 30 || invalid < 30 {
		t.Fatalf("lopsided: %d valid, %d invalid", valid, invalid)
	}
	t.Logf("%d tiny histories: %d CC, %d not", valid+invalid, valid, invalid)
}

// TestCausalAgainstBruteForce compares the checker's verdict with the
// brute force on random differentiated histories of up to 3 sessions of up
// to 3 operations (and a batch of 4 × 4), with info and failed writes.
func TestCausalAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	kinds := map[string]int{}
	var valid, invalid, compared int
	for i := 0; i < 6000; i++ {
		cfg := smallCfg{Sessions: 1 + rng.Intn(3), MaxOps: 3, Keys: 1 + rng.Intn(2), PutProb: 0.3 + 0.4*rng.Float64(),
			InfoProb: 0.1, FailProb: 0.05, ThinAir: 0.02, Nodes: 2}
		if i%6 == 5 {
			cfg.Sessions, cfg.MaxOps = 4, 4
		}
		evs := genSmall(rng, cfg)
		want := Valid
		if !bruteCC(smallOps(evs)) {
			want = Invalid
		}
		r := Causal{}.Check(context.Background(), Input{Events: evs})
		if r.Verdict == NotApplicable {
			continue
		}
		compared++
		if r.Verdict != want {
			var b strings.Builder
			history.WriteAll(&b, nil, evs)
			t.Fatalf("history %d: checker says %s, brute force %s\n%s\n%s", i, r.Verdict, want, r.Explanation, b.String())
		}
		if want == Valid {
			valid++
		} else {
			invalid++
		}
		for _, a := range r.Anomalies {
			kinds[a.Kind]++
		}
	}
	if valid < 500 || invalid < 500 {
		t.Fatalf("generator is lopsided: %d valid, %d invalid", valid, invalid)
	}
	for _, k := range []string{bpCyclicCO, bpThinAirRead, bpWriteCOInitRead, bpWriteCORead} {
		if kinds[k] == 0 {
			t.Errorf("no history showed %s", k)
		}
	}
	t.Logf("compared %d histories: %d CC, %d not; anomalies by pattern %v", compared, valid, invalid, kinds)
}

// TestCausalPatterns: hand-made histories that pass, and that fail with
// each bad pattern.
func TestCausalPatterns(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *cb)
		want  Verdict
		kind  string
	}{
		{"read of another session's write", func(b *cb) { b.put(0, "x", "1").get(1, "x", "1").get(1, "x", "1") }, Valid, ""},
		{"read of the initial value before a concurrent write", func(b *cb) { b.get(1, "x", "null").put(0, "x", "1") }, Valid, ""},
		{"a session flips between concurrent writes (CC allows it)", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(2, "x", "1").get(2, "x", "2").get(2, "x", "1")
		}, Valid, ""},
		{"each session reads the other's write over its own (CyclicCF: CCv fails, CC holds)", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(0, "x", "2").get(1, "x", "1")
		}, Valid, ""},
		{"CyclicCO: each session reads what the other writes after", func(b *cb) {
			b.op(0, "get", "x", history.OK, "", "1").put(0, "y", "2").get(1, "y", "2").put(1, "x", "1")
		}, Invalid, bpCyclicCO},
		{"CyclicCO: a read of its own session's later write", func(b *cb) { b.get(0, "x", "5").put(0, "x", "5") }, Invalid, bpCyclicCO},
		{"ThinAirRead: a value nobody wrote", func(b *cb) { b.put(0, "x", "1").get(1, "x", "7") }, Invalid, bpThinAirRead},
		{"ThinAirRead: a value only a failed write wrote", func(b *cb) {
			b.op(0, "put", "x", history.Fail, "7", "").get(1, "x", "7")
		}, Invalid, bpThinAirRead},
		{"WriteCOInitRead: own write, then null", func(b *cb) { b.put(0, "x", "1").get(0, "x", "null") }, Invalid, bpWriteCOInitRead},
		{"WriteCOInitRead: through another key", func(b *cb) {
			b.put(0, "x", "1").put(0, "y", "2").get(1, "y", "2").get(1, "x", "null")
		}, Invalid, bpWriteCOInitRead},
		{"WriteCOInitRead passes when the other key's read saw nothing", func(b *cb) {
			b.put(0, "x", "1").put(0, "y", "2").get(1, "y", "null").get(1, "x", "null")
		}, Valid, ""},
		{"WriteCORead: a session's two writes read in reverse", func(b *cb) {
			b.put(0, "x", "1").put(0, "x", "2").get(1, "x", "2").get(1, "x", "1")
		}, Invalid, bpWriteCORead},
		{"WriteCORead: an overwrite that followed a read", func(b *cb) {
			b.put(0, "x", "1").get(1, "x", "1").put(1, "x", "2").get(2, "x", "2").get(2, "x", "1")
		}, Invalid, bpWriteCORead},
		{"WriteCORead: through a cas", func(b *cb) {
			b.put(0, "x", "1").op(1, "cas", "x", history.OK, `{"from":1,"to":2}`, "").get(2, "x", "2").get(2, "x", "1")
		}, Invalid, bpWriteCORead},
		{"WriteCORead passes when the writes are concurrent", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(2, "x", "2").get(2, "x", "1")
		}, Valid, ""},
		{"an info write that was read took effect, after its session's earlier ops", func(b *cb) {
			b.put(0, "x", "1").op(0, "put", "y", history.Info, "2", "").get(1, "y", "2").get(1, "x", "null")
		}, Invalid, bpWriteCOInitRead},
		{"an info write nobody read is ignored", func(b *cb) {
			b.put(0, "x", "1").op(0, "put", "y", history.Info, "2", "").get(1, "y", "null").get(1, "x", "null")
		}, Valid, ""},
		{"failed reads and a failed write are ignored", func(b *cb) {
			b.put(0, "x", "1").op(1, "get", "x", history.Fail, "", "").op(1, "put", "x", history.Fail, "3", "").get(1, "x", "1")
		}, Valid, ""},
		{"not applicable: no read", func(b *cb) { b.put(0, "x", "1").put(1, "x", "2") }, NotApplicable, ""},
		{"not differentiated: a value written twice", func(b *cb) { b.put(0, "x", "1").put(1, "x", "1").get(2, "x", "1") }, Unknown, ""},
		{"not differentiated: null written", func(b *cb) { b.put(0, "x", "null").get(1, "x", "null") }, Unknown, ""},
		{"a violation on another key is still found when one key repeats values", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "1").put(2, "y", "5").get(2, "y", "null")
		}, Invalid, bpWriteCOInitRead},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &cb{}
			c.build(b)
			r := Causal{}.Check(context.Background(), Input{Events: b.evs})
			if r.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %s\n%s", r.Verdict, c.want, r.Summary, r.Explanation)
			}
			if r.Name != "causal" || r.Summary == "" {
				t.Errorf("incomplete result %+v", r)
			}
			if c.want != Invalid {
				if len(r.Anomalies) > 0 {
					t.Errorf("anomalies on a %s history: %v", c.want, r.Anomalies)
				}
				return
			}
			if len(r.Anomalies) == 0 || r.AnomalyCount != len(r.Anomalies) {
				t.Fatalf("no anomalies (count %d)", r.AnomalyCount)
			}
			a := r.Anomalies[0]
			if a.Kind != c.kind {
				t.Fatalf("kind %s, want %s: %s", a.Kind, c.kind, a.Message)
			}
			if a.Node != "n1" || len(a.Refs) < 2 || !strings.Contains(a.Message, a.Refs[0]) || !strings.Contains(a.Message, "process") {
				t.Errorf("evidence incomplete: node %q refs %v: %s", a.Node, a.Refs, a.Message)
			}
			if r.Explanation == "" || r.Details["bad_patterns"].(map[string]int)[c.kind] == 0 {
				t.Errorf("explanation or details missing: %v", r.Details)
			}
		})
	}
}

// TestCausalFixture checks the references of a WriteCORead found in a
// history file: the read's line first, then the two writes', and the
// causal paths in the message.
func TestCausalFixture(t *testing.T) {
	in := loadFixture(t, "causal-write-co-read.jsonl")
	r := Causal{}.Check(context.Background(), in)
	if r.Verdict != Invalid || len(r.Anomalies) != 1 {
		t.Fatalf("got %s with %d anomalies: %s\n%s", r.Verdict, len(r.Anomalies), r.Summary, r.Explanation)
	}
	a := r.Anomalies[0]
	want := []string{"testdata/causal-write-co-read.jsonl:13", "testdata/causal-write-co-read.jsonl:12", "testdata/causal-write-co-read.jsonl:3", "testdata/causal-write-co-read.jsonl:9"}
	if a.Kind != bpWriteCORead || a.Node != "n3" || fmt.Sprint(a.Refs) != fmt.Sprint(want) {
		t.Fatalf("kind %s node %s refs %v, want WriteCORead n3 %v\n%s", a.Kind, a.Node, a.Refs, want, a.Message)
	}
	for _, s := range []string{"causal paths", "read by get(k)=1", "then in process 1 put(k, 2)"} {
		if !strings.Contains(a.Message, s) {
			t.Errorf("message lacks %q: %s", s, a.Message)
		}
	}
}

// A linearizable history is causally consistent: the checker must accept
// every generated one, info and failed operations and cas included.
func TestCausalAcceptsLinearizableHistories(t *testing.T) {
	for seed := int64(0); seed < 40; seed++ {
		evs := genHistory(genConfig{Seed: seed, Ops: 400, Keys: 1 + int(seed%4), Workers: 2 + int(seed%5), InfoProb: 0.05, FailProb: 0.05})
		r := Causal{}.Check(context.Background(), Input{Events: evs})
		if r.Verdict != Valid {
			t.Fatalf("seed %d: %s: %s\n%s", seed, r.Verdict, r.Summary, r.Explanation)
		}
	}
}

// naiveCC finds the bad patterns from an explicit transitive closure of
// the causal order (bitsets), re-reading the history itself (put, get and
// cas; ok, info and fail; an info write counts once a get or a cas that
// took effect observed its value): whether CO is cyclic, and the
// "event/pattern" of each offending read (its completion event). It checks
// the checker's vector clocks on histories too large for the brute force.
func naiveCC(evs []history.Event) (cyclic bool, found map[string]bool) {
	type op struct {
		proc            history.Process
		f, key          string
		typ             history.Type
		from, val, read string // cas from; written value; value read
		comp            int
	}
	var ops []*op
	pending := map[history.Process]*op{}
	for i, ev := range evs {
		if !ev.Process.IsClient() {
			continue
		}
		if ev.Type == history.Invoke {
			o := &op{proc: ev.Process, f: ev.F, key: ev.Key, typ: history.Info, comp: i}
			switch ev.F {
			case "put":
				o.val = string(ev.Value)
			case "cas":
				var c struct{ From, To json.RawMessage }
				if err := json.Unmarshal(ev.Value, &c); err != nil {
					panic(err)
				}
				o.from, o.val = string(c.From), string(c.To)
			}
			pending[ev.Process] = o
			ops = append(ops, o)
			continue
		}
		o := pending[ev.Process]
		delete(pending, ev.Process)
		o.typ, o.comp = ev.Type, i
		if ev.F == "get" && ev.Type == history.OK {
			o.read = string(ev.Value)
		}
	}
	observed := map[string]bool{}
	happened := map[*op]bool{}
	for _, o := range ops {
		switch {
		case o.f == "get" && o.typ == history.OK:
			observed[o.key+"="+o.read] = true
		case o.f == "cas" && o.typ == history.OK:
			observed[o.key+"="+o.from] = true
		}
		if o.f != "get" && o.typ == history.OK {
			happened[o] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, o := range ops {
			if o.f != "get" && o.typ == history.Info && !happened[o] && observed[o.key+"="+o.val] {
				happened[o], changed = true, true
				if o.f == "cas" {
					observed[o.key+"="+o.from] = true
				}
			}
		}
	}
	type node struct {
		read      bool
		key, val  string
		comp      int
		prev, src int
	}
	var nodes []node
	last := map[history.Process]int{}
	add := func(o *op, read bool, val string) {
		p, ok := last[o.proc]
		if !ok {
			p = -1
		}
		last[o.proc] = len(nodes)
		nodes = append(nodes, node{read: read, key: o.key, val: val, comp: o.comp, prev: p, src: -1})
	}
	for _, o := range ops {
		switch {
		case o.f == "get" && o.typ == history.OK:
			add(o, true, o.read)
		case o.f != "get" && happened[o]:
			if o.f == "cas" {
				add(o, true, o.from)
			}
			add(o, false, o.val)
		}
	}
	writer := map[string]int{}
	for i, n := range nodes {
		if !n.read {
			writer[n.key+"="+n.val] = i
		}
	}
	found = map[string]bool{}
	for i := range nodes {
		n := &nodes[i]
		if !n.read || n.val == "null" {
			continue
		}
		if w, ok := writer[n.key+"="+n.val]; ok {
			n.src = w
		} else {
			found[fmt.Sprint(n.comp, "/", bpThinAirRead)] = true
		}
	}
	// Kahn, then the closure in that order.
	succ := make([][]int, len(nodes))
	indeg := make([]int, len(nodes))
	for i, n := range nodes {
		for _, p := range []int{n.prev, n.src} {
			if p >= 0 {
				succ[p] = append(succ[p], i)
				indeg[i]++
			}
		}
	}
	var order []int
	for i := range nodes {
		if indeg[i] == 0 {
			order = append(order, i)
		}
	}
	for q := 0; q < len(order); q++ {
		for _, j := range succ[order[q]] {
			if indeg[j]--; indeg[j] == 0 {
				order = append(order, j)
			}
		}
	}
	if len(order) < len(nodes) {
		return true, found
	}
	words := (len(nodes) + 63) / 64
	past := make([][]uint64, len(nodes))
	has := func(v, u int) bool { return past[v][u/64]&(1<<(u%64)) != 0 }
	for _, v := range order {
		past[v] = make([]uint64, words)
		for _, p := range []int{nodes[v].prev, nodes[v].src} {
			if p >= 0 {
				for w := range past[v] {
					past[v][w] |= past[p][w]
				}
				past[v][p/64] |= 1 << (p % 64)
			}
		}
	}
	for r, n := range nodes {
		if !n.read {
			continue
		}
		for w, m := range nodes {
			if m.read || m.key != n.key || !has(r, w) {
				continue
			}
			if n.val == "null" {
				found[fmt.Sprint(n.comp, "/", bpWriteCOInitRead)] = true
			} else if n.src >= 0 && w != n.src && has(w, n.src) {
				found[fmt.Sprint(n.comp, "/", bpWriteCORead)] = true
			}
		}
	}
	return false, found
}

// TestCausalAgainstNaiveClosure compares the checker, read by read, with
// naiveCC on linearizable histories of 300 operations with many sessions
// (info outcomes start new processes) and a few reads corrupted.
func TestCausalAgainstNaiveClosure(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	counts := map[string]int{}
	for i := 0; i < 150; i++ {
		evs := genHistory(genConfig{Seed: int64(i), Ops: 300, Keys: 1 + i%4, Workers: 3 + i%6, InfoProb: 0.1, FailProb: 0.05})
		for n := rng.Intn(5); n > 0; n-- {
			corruptRead(evs, rng)
		}
		cyclic, want := naiveCC(evs)
		r := Causal{}.Check(context.Background(), Input{Events: evs})
		got := map[string]bool{}
		gotCyclic := false
		for _, a := range r.Anomalies {
			if a.Kind == bpCyclicCO {
				gotCyclic = true
				continue
			}
			got[fmt.Sprint(a.Events[0], "/", a.Kind)] = true
		}
		if cyclic != gotCyclic || fmt.Sprint(sortedKeys(want)) != fmt.Sprint(sortedKeys(got)) {
			t.Fatalf("history %d: naive cyclic=%v %v, checker cyclic=%v %v\n%s", i, cyclic, sortedKeys(want), gotCyclic, sortedKeys(got), r.Explanation)
		}
		if (r.Verdict == Invalid) != (cyclic || len(want) > 0) {
			t.Fatalf("history %d: verdict %s", i, r.Verdict)
		}
		switch {
		case cyclic:
			counts["cyclic"]++
		case len(want) > 0:
			counts["invalid"]++
		default:
			counts["valid"]++
		}
		for k := range want {
			counts[k[strings.Index(k, "/")+1:]]++
		}
	}
	if counts["valid"] < 20 || counts["invalid"] < 20 || counts["cyclic"] < 5 {
		t.Fatalf("lopsided: %v", counts)
	}
	t.Logf("150 histories of 300 ops: %v", counts)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CC does not imply the session guarantees as judged under one version
// order per key: a session may read two concurrent writes a, b, a.
func TestCausalDoesNotImplyMonotonicReads(t *testing.T) {
	b := &cb{}
	b.put(0, "x", "1").put(1, "x", "2").get(2, "x", "1").get(2, "x", "2").get(2, "x", "1")
	in := Input{Events: b.evs}
	if r := (Causal{}).Check(context.Background(), in); r.Verdict != Valid {
		t.Fatalf("causal: %s %s", r.Verdict, r.Summary)
	}
	if r := (SessionGuarantees{}).Check(context.Background(), in); r.Verdict != Invalid || r.Anomalies[0].Kind != guarMR {
		t.Fatalf("session: %s %s", r.Verdict, r.Summary)
	}
}

// A cancelled context or an exhausted budget gives unknown, never valid.
func TestCausalBudget(t *testing.T) {
	evs := genHistory(genConfig{Seed: 1, Ops: 10000, Keys: 10, Workers: 8})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := (Causal{}).Check(ctx, Input{Events: evs}); r.Verdict != Unknown {
		t.Fatalf("cancelled: %s %s", r.Verdict, r.Summary)
	}
	if r := (Causal{}).Check(context.Background(), Input{Events: evs, Budget: time.Nanosecond}); r.Verdict != Unknown {
		t.Fatalf("budget 1ns: %s %s", r.Verdict, r.Summary)
	}
	if r := (Causal{}).Check(context.Background(), Input{Events: evs}); r.Verdict != Valid {
		t.Fatalf("default budget: %s %s", r.Verdict, r.Summary)
	}
}

// A malformed history is unknown.
func TestCausalMalformed(t *testing.T) {
	b := &cb{}
	b.put(0, "x", "1")
	b.evs = append(b.evs, history.Event{Type: history.OK, Process: 3, Time: 99, F: "get", Key: "x", Value: json.RawMessage("1")})
	if r := (Causal{}).Check(context.Background(), Input{Events: b.evs}); r.Verdict != Unknown || !strings.Contains(r.Summary, "malformed") {
		t.Fatalf("got %s: %s", r.Verdict, r.Summary)
	}
}

// BenchmarkCausal checks a generated linearizable history of 10k
// operations on 20 keys with 16 workers, and checks the same history for
// linearizability in the same loop: ms/op of each and their ratio.
func BenchmarkCausal(b *testing.B) {
	evs := genHistory(genConfig{Seed: 1, Ops: 10_000, Keys: 20, Workers: 16, InfoProb: 0.01, FailProb: 0.01})
	in := Input{Events: evs, Budget: 10 * time.Minute}
	var causal, lin time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r := Causal{}.Check(context.Background(), in)
		t1 := time.Now()
		l := Linearizability{}.Check(context.Background(), in)
		causal += t1.Sub(t0)
		lin += time.Since(t1)
		if r.Verdict != Valid || l.Verdict != Valid {
			b.Fatalf("causal %s (%s), linearizability %s", r.Verdict, r.Summary, l.Verdict)
		}
	}
	b.ReportMetric(float64(causal.Nanoseconds())/float64(b.N)/1e6, "causal-ms/op")
	b.ReportMetric(float64(lin.Nanoseconds())/float64(b.N)/1e6, "linearizability-ms/op")
	b.ReportMetric(float64(causal)/float64(lin), "x-linearizability")
}
