package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// A naive oracle for the session guarantees, written from their
// definitions in the abstract-execution model (one version order per key,
// a visible set per read) and sharing no code with the checker. For one
// key and a set of guarantees it tries every version order of the key's
// writes (and every choice of the unread info writes that took effect),
// computes the least visible sets the guarantees force (each read sees the
// write it read; read-your-writes adds the session's earlier writes;
// monotonic reads the earlier reads' sets; monotonic writes, with a write
// seen, the session's earlier writes; writes-follow-reads, with a write
// seen, what its session's earlier reads saw), and checks that each read
// returns the last write it sees (none for null) and that monotonic writes
// and writes-follow-reads order the writes as they require.

type sOp struct {
	sess int
	read bool
	w    int // write: its index among the key's writes; read: the write it read, -1 for null
}

// sessionOracleKey is one key of a history as the oracle reads it.
type sessionOracleKey struct {
	ops    []sOp
	writes int
	maybe  []int // unread info writes (indexes among the writes)
}

// oracleKeys reads a genSmall history per key: ok gets are reads (skipped
// when no write that can have taken effect wrote their value), ok puts are
// writes, info puts are writes when read, maybe-writes otherwise.
func oracleKeys(evs []history.Event) map[string]*sessionOracleKey {
	ops := smallOps(evs)
	out := map[string]*sessionOracleKey{}
	idx := map[string]map[string]int{}
	read := map[string]map[string]bool{}
	for _, o := range ops {
		if o.read {
			if read[o.key] == nil {
				read[o.key] = map[string]bool{}
			}
			read[o.key][o.val] = true
		}
	}
	for _, o := range ops {
		if out[o.key] == nil {
			out[o.key] = &sessionOracleKey{}
			idx[o.key] = map[string]int{}
		}
		if !o.read {
			k := out[o.key]
			idx[o.key][o.val] = k.writes
			if o.maybe && !read[o.key][o.val] {
				k.maybe = append(k.maybe, k.writes)
			}
			k.writes++
		}
	}
	for _, o := range ops {
		k := out[o.key]
		switch w, ok := idx[o.key][o.val]; {
		case !o.read:
			k.ops = append(k.ops, sOp{sess: o.sess, w: w})
		case o.val == "null":
			k.ops = append(k.ops, sOp{sess: o.sess, read: true, w: -1})
		case ok:
			k.ops = append(k.ops, sOp{sess: o.sess, read: true, w: w})
		}
	}
	return out
}

// oracleSat reports whether the version order pos (write -> position),
// with the writes absent dropped, satisfies every guarantee of set.
func oracleSat(ops []sOp, pos []int, absent uint32, set map[string]bool) bool {
	var kept []sOp
	for _, o := range ops {
		if o.read || absent&(1<<o.w) == 0 {
			kept = append(kept, o)
		}
	}
	ops = kept
	vis := make([]uint32, len(ops))
	for i, o := range ops {
		if o.read && o.w >= 0 {
			vis[i] = 1 << o.w
		}
	}
	for changed := true; changed; {
		changed = false
		grow := func(i int, add uint32) {
			if vis[i]|add != vis[i] {
				vis[i] |= add
				changed = true
			}
		}
		for i, a := range ops {
			for j := i + 1; j < len(ops); j++ {
				b := ops[j]
				if a.sess != b.sess {
					continue
				}
				switch {
				case a.read && b.read && set[guarMR]:
					grow(j, vis[i])
				case !a.read && b.read && set[guarRYW]:
					grow(j, 1<<a.w)
				case !a.read && !b.read && set[guarMW]:
					for r := range ops {
						if ops[r].read && vis[r]&(1<<b.w) != 0 {
							grow(r, 1<<a.w)
						}
					}
				case a.read && !b.read && set[guarWFR]:
					for r := range ops {
						if ops[r].read && vis[r]&(1<<b.w) != 0 {
							grow(r, vis[i])
						}
					}
				}
			}
		}
	}
	before := func(set uint32, w int, strict bool) bool {
		for x := 0; x < 32; x++ {
			if set&(1<<x) != 0 && (pos[x] > pos[w] || (strict && pos[x] == pos[w])) {
				return false
			}
		}
		return true
	}
	for i, a := range ops {
		if a.read && ((a.w < 0 && vis[i] != 0) || (a.w >= 0 && !before(vis[i], a.w, false))) {
			return false
		}
		for j := i + 1; j < len(ops); j++ {
			b := ops[j]
			if a.sess != b.sess || b.read {
				continue
			}
			if !a.read && set[guarMW] && pos[a.w] >= pos[b.w] {
				return false
			}
			if a.read && set[guarWFR] && !before(vis[i], b.w, true) {
				return false
			}
		}
	}
	return true
}

// oracleAny reports whether some version order (and choice of unread info
// writes) satisfies every guarantee of set on key k.
func oracleAny(k *sessionOracleKey, set map[string]bool) bool {
	perm := make([]int, k.writes)
	for i := range perm {
		perm[i] = i
	}
	pos := make([]int, k.writes)
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(perm) {
			for p, w := range perm {
				pos[w] = p
			}
			for m := 0; m < 1<<len(k.maybe); m++ {
				var absent uint32
				for j, w := range k.maybe {
					if m&(1<<j) != 0 {
						absent |= 1 << w
					}
				}
				if oracleSat(k.ops, pos, absent, set) {
					return true
				}
			}
			return false
		}
		for j := i; j < len(perm); j++ {
			perm[i], perm[j] = perm[j], perm[i]
			ok := try(i + 1)
			perm[i], perm[j] = perm[j], perm[i]
			if ok {
				return true
			}
		}
		return false
	}
	return try(0)
}

// TestSessionAgainstOracle compares the checker with the oracle on random
// small histories, key by key and guarantee by guarantee: where the
// guarantees before G in the checker's order hold together on a key (some
// version order satisfies them), G must be reported exactly when no
// version order satisfies them together with G; where they do not, G may
// be reported only if no version order satisfies G alone.
func TestSessionAgainstOracle(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	must, pure := map[string]int{}, map[string]int{}
	histories, invalid := 0, 0
	for i := 0; i < 4000; i++ {
		cfg := smallCfg{Sessions: 2 + rng.Intn(2), MaxOps: 4, Keys: 1 + rng.Intn(2), PutProb: 0.35 + 0.2*rng.Float64(),
			InfoProb: 0.1, FailProb: 0.05, ThinAir: 0.02, Nodes: 2}
		if i%3 == 2 { // denser: one key, longer sessions
			cfg.Sessions, cfg.MaxOps, cfg.Keys, cfg.PutProb = 3, 5, 1, 0.4
		}
		evs := genSmall(rng, cfg)
		keys := oracleKeys(evs)
		skip := false
		for _, k := range keys {
			skip = skip || k.writes > 6
		}
		if skip {
			continue
		}
		histories++
		r := SessionGuarantees{}.Check(context.Background(), Input{Events: evs})
		reported := map[string]bool{}
		for _, a := range r.Anomalies {
			reported[a.Key+"/"+a.Kind] = true
		}
		if r.Verdict == Invalid {
			invalid++
		}
		fail := func(format string, args ...any) {
			var b strings.Builder
			history.WriteAll(&b, nil, evs)
			t.Fatalf("history %d: %s\n%v\n%s\n%s", i, fmt.Sprintf(format, args...), r.Anomalies, r.Summary, b.String())
		}
		anyReported := false
		for name, k := range keys {
			set := map[string]bool{}
			lowerSat := true
			for _, g := range sessionLadder {
				set[g] = true
				withG := lowerSat && oracleAny(k, set)
				mustG := lowerSat && !withG
				mayG := mustG || !oracleAny(k, map[string]bool{g: true})
				got := reported[name+"/"+g]
				anyReported = anyReported || got
				switch {
				case mustG && !got:
					fail("key %s: %s must be reported (the guarantees before it hold there, with it none does)", name, g)
				case got && !mayG:
					fail("key %s: %s reported, but a version order satisfies it (alone, and with those before it where they hold)", name, g)
				case mustG:
					must[g]++
				case got:
					pure[g]++
				}
				lowerSat = withG
			}
		}
		if (r.Verdict == Invalid) != anyReported {
			fail("verdict %s with anomalies %v", r.Verdict, reported)
		}
	}
	for _, g := range sessionLadder {
		if must[g] == 0 {
			t.Errorf("no history refuted %s given the guarantees before it", g)
		}
	}
	if invalid < 300 || histories-invalid < 300 {
		t.Fatalf("lopsided: %d of %d histories invalid", invalid, histories)
	}
	t.Logf("%d histories (%d invalid); refutations given the guarantees before: %v; alone, where those fail: %v", histories, invalid, must, pure)
}

// TestSessionGuarantees: hand-made histories that pass, and that fail each
// guarantee.
func TestSessionGuarantees(t *testing.T) {
	type want map[string]string // guarantee -> status; unnamed ones are not_applicable
	cases := []struct {
		name  string
		build func(b *cb)
		want  want
		kind  string // the anomaly expected, if any
	}{
		{"monotonic reads: a, then b, then b", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(2, "x", "1").get(2, "x", "2").get(2, "x", "2")
		}, want{guarMR: "valid"}, ""},
		{"monotonic reads: a, b, then a again", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(2, "x", "1").get(2, "x", "2").get(2, "x", "1")
		}, want{guarMR: "invalid"}, guarMR},
		{"monotonic reads: two sessions see two writes in opposite orders", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(2, "x", "1").get(2, "x", "2").get(3, "x", "2").get(3, "x", "1")
		}, want{guarMR: "invalid"}, guarMR},
		{"monotonic reads: a value, then null", func(b *cb) {
			b.put(0, "x", "1").get(2, "x", "1").get(2, "x", "null")
		}, want{guarMR: "invalid"}, guarMR},
		{"monotonic reads: b then a, once, is allowed (a version order puts b first)", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(2, "x", "2").get(2, "x", "1")
		}, want{guarMR: "valid"}, ""},
		{"monotonic writes: a session's writes read back in reverse by another", func(b *cb) {
			b.put(0, "x", "1").put(0, "x", "2").get(1, "x", "2").get(1, "x", "1")
		}, want{guarMR: "valid", guarMW: "invalid"}, guarMW},
		{"monotonic writes: read in order", func(b *cb) {
			b.put(0, "x", "1").put(0, "x", "2").get(1, "x", "1").get(1, "x", "2")
		}, want{guarMR: "valid", guarMW: "valid"}, ""},
		{"monotonic writes: the later write is info, and read", func(b *cb) {
			b.put(0, "x", "1").op(0, "put", "x", history.Info, "2", "").get(1, "x", "2").get(1, "x", "1")
		}, want{guarMR: "valid", guarMW: "invalid"}, guarMW},
		{"read-your-writes: own write, then null", func(b *cb) {
			b.put(0, "x", "1").get(0, "x", "null")
		}, want{guarRYW: "invalid"}, guarRYW},
		{"read-your-writes: own later write, then the earlier one", func(b *cb) {
			b.put(0, "x", "1").put(0, "x", "2").get(0, "x", "1")
		}, want{guarRYW: "invalid"}, guarRYW},
		{"read-your-writes: another session's concurrent write wins", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(0, "x", "2")
		}, want{guarRYW: "valid"}, ""},
		{"read-your-writes: each session reads the other's write over its own", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "2").get(0, "x", "2").get(1, "x", "1")
		}, want{guarRYW: "invalid"}, guarRYW},
		{"writes-follow-reads: a read of the session's own later write", func(b *cb) {
			b.get(0, "x", "5").put(0, "x", "5")
		}, want{guarWFR: "invalid"}, guarWFR},
		{"writes-follow-reads: a write seen before the value its writer had read", func(b *cb) {
			b.put(2, "x", "1").get(0, "x", "1").put(0, "x", "2").get(1, "x", "2").get(1, "x", "1")
		}, want{guarMR: "valid", guarWFR: "invalid"}, guarWFR},
		{"writes-follow-reads: each session writes over what the other wrote after", func(b *cb) {
			b.put(2, "x", "0").get(0, "x", "2").put(0, "x", "1").get(1, "x", "1").put(1, "x", "2")
		}, want{guarWFR: "invalid"}, guarWFR},
		{"writes-follow-reads: read, then write, seen in order", func(b *cb) {
			b.put(2, "x", "1").get(0, "x", "1").put(0, "x", "2").get(1, "x", "1").get(1, "x", "2")
		}, want{guarMR: "valid", guarWFR: "valid"}, ""},
		{"a cas reads then writes", func(b *cb) {
			b.put(0, "x", "1").op(1, "cas", "x", history.OK, `{"from":1,"to":2}`, "").get(2, "x", "2").get(2, "x", "1")
		}, want{guarMR: "valid", guarWFR: "invalid"}, guarWFR},
		{"keys are separate registers", func(b *cb) {
			b.put(0, "x", "1").get(0, "y", "null").put(1, "y", "2").get(1, "x", "null")
		}, want{}, ""},
		{"a later guarantee is not judged where an earlier one fails", func(b *cb) {
			b.put(0, "x", "1").put(0, "x", "2").get(1, "x", "1").get(1, "x", "2").get(1, "x", "1")
		}, want{guarMR: "invalid", guarMW: "unknown"}, guarMR},
		{"values that repeat leave the key unjudged", func(b *cb) {
			b.put(0, "x", "1").put(1, "x", "1").get(2, "x", "1").get(2, "x", "null")
		}, want{guarRYW: "unknown", guarMR: "unknown", guarMW: "unknown", guarWFR: "unknown"}, ""},
		{"a read of a value nobody wrote names no write", func(b *cb) {
			b.put(0, "x", "1").get(2, "x", "1").get(2, "x", "9").get(2, "x", "1")
		}, want{guarMR: "valid"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &cb{}
			c.build(b)
			r := SessionGuarantees{}.Check(context.Background(), Input{Events: b.evs})
			got := r.Details["guarantees"].(map[string]string)
			for _, g := range []string{guarRYW, guarMR, guarMW, guarWFR} {
				w := c.want[g]
				if w == "" {
					w = string(NotApplicable)
				}
				if got[g] != w {
					t.Errorf("%s: %s, want %s", g, got[g], w)
				}
			}
			var verdict Verdict
			switch {
			case c.kind != "":
				verdict = Invalid
			case strings.Contains(fmt.Sprint(c.want), "unknown"):
				verdict = Unknown
			case len(c.want) == 0:
				verdict = NotApplicable
			default:
				verdict = Valid
			}
			if r.Verdict != verdict {
				t.Fatalf("verdict %s, want %s: %s\n%s", r.Verdict, verdict, r.Summary, r.Explanation)
			}
			if c.kind == "" {
				if len(r.Anomalies) > 0 {
					t.Fatalf("anomalies: %v", r.Anomalies)
				}
				return
			}
			a := r.Anomalies[0]
			if a.Kind != c.kind || a.Node != "n1" || len(a.Refs) < 2 || !strings.Contains(a.Message, a.Refs[0]) || !strings.Contains(a.Message, "process") {
				t.Fatalf("anomaly %+v", a)
			}
			t.Log(a.Message)
		})
	}
}

// TestSessionFixture checks the references of a monotonic-writes anomaly in
// a history file: the offending read's line first, and the node that
// answered it.
func TestSessionFixture(t *testing.T) {
	in := loadFixture(t, "session-monotonic-writes.jsonl")
	r := SessionGuarantees{}.Check(context.Background(), in)
	if r.Verdict != Invalid || len(r.Anomalies) != 1 {
		t.Fatalf("got %s with %d anomalies: %s\n%s", r.Verdict, len(r.Anomalies), r.Summary, r.Explanation)
	}
	a := r.Anomalies[0]
	f := "testdata/session-monotonic-writes.jsonl:"
	want := []string{f + "10", f + "9", f + "3", f + "5", f + "8"}
	if a.Kind != guarMW || a.Node != "n2" || fmt.Sprint(a.Refs) != fmt.Sprint(want) {
		t.Fatalf("kind %s node %s refs %v, want monotonic-writes n2 %v\n%s", a.Kind, a.Node, a.Refs, want, a.Message)
	}
	if g := r.Details["guarantees"].(map[string]string); g[guarMW] != "invalid" || g[guarMR] != "valid" || g[guarRYW] != "not_applicable" {
		t.Errorf("guarantees %v", g)
	}
}

// A linearizable history keeps every session guarantee.
func TestSessionAcceptsLinearizableHistories(t *testing.T) {
	for seed := int64(0); seed < 40; seed++ {
		evs := genHistory(genConfig{Seed: seed, Ops: 400, Keys: 1 + int(seed%4), Workers: 2 + int(seed%5), InfoProb: 0.05, FailProb: 0.05})
		r := SessionGuarantees{}.Check(context.Background(), Input{Events: evs})
		if r.Verdict != Valid {
			t.Fatalf("seed %d: %s: %s\n%s", seed, r.Verdict, r.Summary, r.Explanation)
		}
	}
}

// A malformed history is unknown, as is a cancelled context or an
// exhausted budget when nothing was found.
func TestSessionMalformedCancelledAndBudget(t *testing.T) {
	b := &cb{}
	b.put(0, "x", "1")
	bad := append(append([]history.Event(nil), b.evs...), history.Event{Type: history.OK, Process: 3, Time: 99, F: "get", Key: "x", Value: []byte("1")})
	if r := (SessionGuarantees{}).Check(context.Background(), Input{Events: bad}); r.Verdict != Unknown {
		t.Fatalf("malformed: %s", r.Verdict)
	}
	b.get(0, "x", "1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := (SessionGuarantees{}).Check(ctx, Input{Events: b.evs}); r.Verdict != Unknown {
		t.Fatalf("cancelled: %s", r.Verdict)
	}
	// The budget runs out in the cycle search of key "b", after key "a"
	// showed a violation: that anomaly stands (invalid), and monotonic
	// reads, which held on "a" but was not judged on "b", is unknown.
	b = &cb{}
	b.put(0, "a", "1").get(0, "a", "null").get(1, "a", "1").get(1, "a", "1")
	b.put(2, "b", "1").put(3, "b", "2").get(4, "b", "1").get(4, "b", "2").get(4, "b", "1")
	calls := 0
	r := checkSessions(Input{Events: b.evs}, time.Second, func() bool { calls++; return calls >= 3 })
	g := r.Details["guarantees"].(map[string]string)
	if r.Verdict != Invalid || len(r.Anomalies) != 1 || g[guarRYW] != "invalid" || g[guarMR] != "unknown" || !strings.Contains(r.Summary, "there may be more") {
		t.Fatalf("%s %v %s", r.Verdict, g, r.Summary)
	}
	if r := checkSessions(Input{Events: b.evs}, time.Second, func() bool { return false }); r.Details["guarantees"].(map[string]string)[guarMR] != "invalid" {
		t.Fatalf("unbounded: %v", r.Details["guarantees"])
	}
	if r := (SessionGuarantees{}).Check(context.Background(), Input{Events: b.evs, Budget: time.Nanosecond}); r.Verdict != Unknown {
		t.Fatalf("budget 1ns: %s %s", r.Verdict, r.Summary)
	}
}

// smallCfg describes a small random register history for the brute-force
// cross-checks of the causal and session checkers.
type smallCfg struct {
	Sessions, MaxOps, Keys int
	PutProb                float64 // chance an op is a put (else a get)
	InfoProb               float64 // chance a put ends info (then its session ends)
	FailProb               float64 // chance a put fails
	ThinAir                float64 // chance a get returns a value nobody wrote
	Nodes                  int     // nodes answering (0: none named)
}

// genSmall writes a random history: each session's operations one after
// the other, sessions interleaved at random; puts write values unique per
// key; each get returns null, one of its key's written values (by any
// session, before or after, failed or not) or, rarely, a value nobody
// wrote. Most such histories are not consistent; the brute force decides.
func genSmall(rng *rand.Rand, cfg smallCfg) []history.Event {
	type op struct {
		f, key string
		val    int // put: the value; get: the value read (0 null)
		typ    history.Type
		node   string
	}
	sessions := make([][]*op, cfg.Sessions)
	written := map[string][]int{}
	next := 1
	for s := range sessions {
		n := 1 + rng.Intn(cfg.MaxOps)
		for i := 0; i < n; i++ {
			o := &op{key: string(rune('x' + rng.Intn(cfg.Keys))), typ: history.OK}
			if cfg.Nodes > 0 {
				o.node = "n" + strconv.Itoa(1+rng.Intn(cfg.Nodes))
			}
			if rng.Float64() < cfg.PutProb {
				o.f, o.val = "put", next
				next++
				written[o.key] = append(written[o.key], o.val)
				switch r := rng.Float64(); {
				case r < cfg.InfoProb:
					o.typ = history.Info
				case r < cfg.InfoProb+cfg.FailProb:
					o.typ = history.Fail
				}
			} else {
				o.f = "get"
			}
			sessions[s] = append(sessions[s], o)
			if o.typ == history.Info {
				break
			}
		}
	}
	for _, ops := range sessions {
		for _, o := range ops {
			if o.f != "get" {
				continue
			}
			if rng.Float64() < cfg.ThinAir {
				o.val = 999
				continue
			}
			cands := append([]int{0}, written[o.key]...)
			o.val = cands[rng.Intn(len(cands))]
		}
	}
	// Interleave: each step invokes or completes one session's next op.
	var evs []history.Event
	pos := make([]int, len(sessions))
	open := make([]bool, len(sessions))
	t := int64(0)
	for {
		var live []int
		for s := range sessions {
			if pos[s] < len(sessions[s]) {
				live = append(live, s)
			}
		}
		if len(live) == 0 {
			break
		}
		s := live[rng.Intn(len(live))]
		o := sessions[s][pos[s]]
		t += 10
		val := json.RawMessage(strconv.Itoa(o.val))
		if o.f == "get" && o.val == 0 {
			val = history.Null
		}
		if !open[s] {
			e := history.Event{Type: history.Invoke, Process: history.Process(s), Time: t, F: o.f, Key: o.key}
			if o.f == "put" {
				e.Value = val
			}
			evs = append(evs, e)
			open[s] = true
			continue
		}
		e := history.Event{Type: o.typ, Process: history.Process(s), Time: t, F: o.f, Key: o.key, Value: val, Node: o.node}
		if o.typ == history.Fail {
			e.Error = "unavailable"
		}
		evs = append(evs, e)
		open[s] = false
		pos[s]++
	}
	return evs
}

// bOp is an operation of a small history, as the oracles read it.
type bOp struct {
	sess  int
	read  bool
	key   string
	val   string
	maybe bool // an info write
}

// smallOps reads a history that genSmall wrote: ok gets are reads, ok puts
// writes, info puts maybe-writes; failed ops are dropped.
func smallOps(evs []history.Event) []bOp {
	pending := map[history.Process]history.Event{}
	var out []bOp
	add := func(inv history.Event, typ history.Type, comp *history.Event) {
		switch {
		case inv.F == "get" && typ == history.OK:
			out = append(out, bOp{sess: int(inv.Process), read: true, key: inv.Key, val: string(comp.Value)})
		case inv.F == "put" && typ != history.Fail:
			out = append(out, bOp{sess: int(inv.Process), key: inv.Key, val: string(inv.Value), maybe: typ != history.OK})
		}
	}
	for _, ev := range evs {
		if ev.Type == history.Invoke {
			pending[ev.Process] = ev
			continue
		}
		add(pending[ev.Process], ev.Type, &ev)
		delete(pending, ev.Process)
	}
	for _, inv := range pending {
		add(inv, history.Info, nil)
	}
	return out
}

// cb builds small histories for the hand-made cases: each op is invoked
// and completed at once, in the order written, answered by node n1.
type cb struct {
	evs []history.Event
	t   int64
}

func (b *cb) op(p int, f, key string, typ history.Type, arg, out string) *cb {
	b.t += 10
	var a json.RawMessage
	if arg != "" {
		a = json.RawMessage(arg)
	}
	b.evs = append(b.evs, history.Event{Type: history.Invoke, Process: history.Process(p), Time: b.t, F: f, Key: key, Value: a})
	c := history.Event{Type: typ, Process: history.Process(p), Time: b.t + 5, F: f, Key: key, Value: a, Node: "n1"}
	if out != "" {
		c.Value = json.RawMessage(out)
	}
	if typ == history.Fail {
		c.Error = "unavailable"
	}
	b.evs = append(b.evs, c)
	return b
}

func (b *cb) put(p int, key, v string) *cb { return b.op(p, "put", key, history.OK, v, "") }
func (b *cb) get(p int, key, v string) *cb { return b.op(p, "get", key, history.OK, "", v) }
