package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

// lub builds histories for the lost-updates tests: each op is invoked and
// completed at the given times and answered by node.
type lub struct{ hb }

func (b *lub) op(p int, f, key string, inv, comp int64, typ history.Type, arg, out, node string) *lub {
	b.hb.op(p, f, key, inv, comp, typ, arg, out)
	b.evs[len(b.evs)-1].Node = node
	return b
}

func (b *lub) put(p int, v string, inv, comp int64, node string) *lub {
	return b.op(p, "put", "k", inv, comp, history.OK, v, "", node)
}

func (b *lub) get(p int, v string, inv, comp int64, node string) *lub {
	return b.op(p, "get", "k", inv, comp, history.OK, "", v, node)
}

func TestLostUpdates(t *testing.T) {
	type figs map[string]any
	cases := []struct {
		name  string
		build func(b *lub)
		want  Verdict
		figs  figs   // Details that must hold
		msg   string // text the first anomaly's message must contain
	}{
		{"an older write wins in the final state", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2")
			b.final()
			b.get(2, "1", 60, 70, "n1")
		}, Invalid, figs{"lost_updates": 1, "lost_in_final_reads": 1, "survived": 1}, "a final read"},
		{"the newest write wins", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2")
			b.final()
			b.get(2, "2", 60, 70, "n1")
		}, Valid, figs{"overwritten": 1, "survived": 1, "writes_judged": 2}, ""},
		{"concurrent writes race: a figure", func(b *lub) {
			b.put(0, "1", 10, 40, "n1").put(1, "2", 20, 30, "n2")
			b.final()
			b.get(2, "1", 60, 70, "n3")
		}, Valid, figs{"race_losses": 1, "race_losses_by_loser_node": map[string]int{"n2": 1}, "race_wins_by_winner_node": map[string]int{"n1": 1}}, ""},
		{"the node that acknowledged the write later shows the older value", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2").get(2, "1", 50, 60, "n2")
		}, Invalid, figs{"lost_updates": 1, "lost_in_final_reads": 0}, "its node had acknowledged that write"},
		{"another node shows the older value: a stale read, not judged", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2").get(2, "1", 50, 60, "n1")
		}, Valid, figs{"writes_with_stale_reads": 1, "writes_unjudged": 1, "survived": 1}, ""},
		{"only stale reads: not applicable", func(b *lub) {
			b.put(1, "2", 30, 40, "n2").get(2, "null", 50, 60, "n1")
		}, NotApplicable, figs{"writes_with_stale_reads": 1, "writes_unjudged": 1}, ""},
		{"the write read again after an older value: stale, it survived", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2").get(2, "1", 50, 60, "n2").get(2, "2", 70, 80, "n2")
		}, Valid, figs{"survived": 1, "lost_updates": 0}, ""},
		{"a node that had returned the write later returns the older value", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2").get(2, "2", 50, 60, "n3").get(2, "1", 70, 80, "n3")
		}, Invalid, figs{"lost_updates": 1}, "its node had returned that write at"},
		{"the key absent after the write", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").get(1, "null", 30, 40, "n1")
		}, Invalid, figs{"lost_updates": 1}, "the initial state won"},
		{"an info write that won is a race", func(b *lub) {
			b.op(0, "put", "k", 5, 90, history.Info, "1", "", "")
			b.put(1, "2", 10, 20, "n1")
			b.final()
			b.get(2, "1", 60, 70, "n1")
		}, Valid, figs{"race_losses": 1, "race_wins_by_winner_node": map[string]int{"": 1}}, ""},
		{"an info write that timed out before the write began may still land after it: a race", func(b *lub) {
			b.op(0, "put", "k", 5, 8, history.Info, "1", "", "n3")
			b.put(1, "2", 10, 20, "n1")
			b.final()
			b.get(2, "1", 60, 70, "n1")
		}, Valid, figs{"race_losses": 1, "race_wins_by_winner_node": map[string]int{"n3": 1}}, ""},
		{"overwritten, then the state goes back: only the overwriting write is lost", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(0, "2", 30, 40, "n1").put(0, "3", 50, 55, "n1").get(1, "3", 56, 58, "n1")
			b.final()
			b.get(2, "1", 60, 70, "n1")
		}, Invalid, figs{"lost_updates": 1, "overwritten": 1, "survived": 1}, "the write of 3"},
		{"a cas that succeeded is a write", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").op(1, "cas", "k", 30, 40, history.OK, `{"from":1,"to":2}`, "", "n2")
			b.final()
			b.get(2, "1", 60, 70, "n1")
		}, Invalid, figs{"lost_updates": 1}, "the write of 2"},
		{"failed writes are not acknowledged", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").op(1, "put", "k", 30, 40, history.Fail, "2", "", "n2")
			b.final()
			b.get(2, "1", 60, 70, "n1")
		}, Valid, figs{"acknowledged_writes": 1, "survived": 1}, ""},
		{"final reads of a phase that never ended judge nothing", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2")
			b.phase("final-reads", "start", 50)
			b.get(2, "1", 60, 70, "n3")
		}, Valid, figs{"writes_unjudged": 1, "writes_with_stale_reads": 1, "lost_updates": 0}, ""},
		{"no read: not applicable", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2")
		}, NotApplicable, figs{"acknowledged_writes": 2}, ""},
		{"values that repeat: unknown", func(b *lub) {
			b.put(0, "1", 10, 20, "n1").put(1, "1", 30, 40, "n2")
			b.final()
			b.get(2, "1", 60, 70, "n1")
		}, Unknown, figs{"keys_excluded": 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &lub{}
			c.build(b)
			r := LostUpdates{}.Check(context.Background(), Input{Events: b.sorted()})
			if r.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %s\n%s\n%v", r.Verdict, c.want, r.Summary, r.Explanation, r.Details)
			}
			for k, v := range c.figs {
				if got := r.Details[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("%s = %v, want %v (details %v)", k, got, v, r.Details)
				}
			}
			if c.want != Invalid {
				if len(r.Anomalies) > 0 {
					t.Fatalf("anomalies: %v", r.Anomalies)
				}
				return
			}
			a := r.Anomalies[0]
			if a.Kind != "lost-update" || len(a.Refs) < 4 || !strings.Contains(a.Message, c.msg) || !strings.Contains(a.Message, a.Refs[0]) {
				t.Fatalf("anomaly %+v", a)
			}
			t.Log(a.Message)
		})
	}
}

// TestLostUpdatesFixture: a node whose clock is behind acknowledges writes
// that an older write beats (lost, in the run and in the final state);
// the node whose clock is ahead wins the races. The anomaly's references
// are the lost write's lines, the winner's, then the read's.
func TestLostUpdatesFixture(t *testing.T) {
	in := loadFixture(t, "lost-updates-skew.jsonl")
	r := LostUpdates{}.Check(context.Background(), in)
	if r.Verdict != Invalid || len(r.Anomalies) != 2 {
		t.Fatalf("got %s with %d anomalies: %s\n%s", r.Verdict, len(r.Anomalies), r.Summary, r.Explanation)
	}
	f := "testdata/lost-updates-skew.jsonl:"
	want := [][]string{
		{f + "5", f + "4", f + "3", f + "7", f + "6"},
		{f + "15", f + "14", f + "13", f + "22", f + "21"},
	}
	for i, a := range r.Anomalies {
		if a.Node != "n2" || fmt.Sprint(a.Refs) != fmt.Sprint(want[i]) {
			t.Errorf("anomaly %d: node %s refs %v, want n2 %v\n%s", i, a.Node, a.Refs, want[i], a.Message)
		}
	}
	if e := r.Anomalies[1].Data["evidence"]; e != "final-read" {
		t.Errorf("second anomaly's evidence %v", e)
	}
	wantFigs := map[string]any{
		"lost_updates": 2, "lost_in_final_reads": 1, "race_losses": 2,
		"race_losses_by_loser_node": map[string]int{"n1": 2}, "race_wins_by_winner_node": map[string]int{"n3": 2},
	}
	for k, v := range wantFigs {
		if got := r.Details[k]; !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
}

// A linearizable store answered by one node loses no update: every
// generated linearizable history, each op answered by n1, is valid (or, if
// nothing followed a write, not applicable).
func TestLostUpdatesAcceptsLinearizableHistories(t *testing.T) {
	races := 0
	for seed := int64(0); seed < 40; seed++ {
		evs := genHistory(genConfig{Seed: seed, Ops: 400, Keys: 1 + int(seed%4), Workers: 2 + int(seed%5), InfoProb: 0.05, FailProb: 0.05})
		for i := range evs {
			if evs[i].Type != history.Invoke {
				evs[i].Node = "n1"
			}
		}
		r := LostUpdates{}.Check(context.Background(), Input{Events: evs})
		if r.Verdict != Valid {
			t.Fatalf("seed %d: %s: %s\n%s", seed, r.Verdict, r.Summary, r.Explanation)
		}
		races += r.Details["race_losses"].(int)
	}
	if races == 0 {
		t.Fatal("no race in 40 histories: the generator's writes never overlap")
	}
}

// Corrupting reads to older values makes a node that acknowledged the
// writes show them lost.
func TestLostUpdatesFindsOlderReads(t *testing.T) {
	b := &lub{}
	b.put(0, "1", 10, 20, "n1").put(0, "2", 30, 40, "n1").get(1, "2", 50, 60, "n1")
	evs := b.sorted()
	if r := (LostUpdates{}).Check(context.Background(), Input{Events: evs}); r.Verdict != Valid {
		t.Fatalf("before: %s %s", r.Verdict, r.Summary)
	}
	for i := range evs {
		if evs[i].Type == history.OK && evs[i].F == "get" {
			evs[i].Value = json.RawMessage("1")
		}
	}
	if r := (LostUpdates{}).Check(context.Background(), Input{Events: evs}); r.Verdict != Invalid {
		t.Fatalf("after: %s %s", r.Verdict, r.Summary)
	}
}

// naiveLostUpdates judges each acknowledged write by scanning the later
// reads one by one, as the checker's doc states it: it returns the lost
// writes' completion events and the figures.
func naiveLostUpdates(evs []history.Event) (lost []int, figs map[string]int) {
	type op struct {
		f, val, got, node string // val: written; got: read (a get's value, a cas's from)
		typ               history.Type
		inv, comp         int
		final             bool
	}
	final, haveFinal := history.FindPhase(history.Phases(evs), "final-reads")
	haveFinal = haveFinal && !final.Open()
	byKey := map[string][]*op{}
	pending := map[history.Process]*op{}
	keyOf := map[*op]string{}
	for i, ev := range evs {
		if !ev.Process.IsClient() {
			continue
		}
		if ev.Type == history.Invoke {
			o := &op{f: ev.F, inv: i, comp: -1, typ: history.Info, final: haveFinal && final.Covers(ev.Time)}
			if ev.F == "put" {
				o.val = string(ev.Value)
			}
			if ev.F == "cas" {
				var c struct{ From, To json.RawMessage }
				if err := json.Unmarshal(ev.Value, &c); err != nil {
					panic(err)
				}
				o.val, o.got = string(c.To), string(c.From)
			}
			pending[ev.Process] = o
			byKey[ev.Key] = append(byKey[ev.Key], o)
			keyOf[o] = ev.Key
			continue
		}
		o := pending[ev.Process]
		delete(pending, ev.Process)
		o.typ, o.comp, o.node = ev.Type, i, ev.Node
		if ev.F == "get" {
			o.got = string(ev.Value)
		}
	}
	figs = map[string]int{}
	for _, ops := range byKey {
		writer := map[string]*op{}
		var reads []*op
		for _, o := range ops {
			if o.f != "get" && o.typ != history.Fail {
				writer[o.val] = o
			}
			if o.f != "put" && o.typ == history.OK {
				reads = append(reads, o) // a get, or a cas that found its from
			}
		}
		for _, w := range ops {
			if w.f == "get" || w.typ != history.OK {
				continue
			}
			after := w.comp
			holds := map[string]bool{w.node: w.node != ""}
			seenAfter := false
			for _, r := range reads {
				if r.got == w.val {
					after = max(after, r.comp)
					holds[r.node] = r.node != ""
					seenAfter = seenAfter || r.inv > w.comp
				}
			}
			decided, stale := false, false
			for _, r := range reads {
				if r.inv <= after {
					continue
				}
				v, known := writer[r.got]
				if !known && r.got != "null" {
					continue
				}
				older := r.got == "null" || (v.typ == history.OK && v.comp < w.inv)
				if !r.final && !holds[r.node] {
					stale = stale || older
					continue
				}
				decided = true
				switch {
				case older:
					figs["lost_updates"]++
					lost = append(lost, w.comp)
				case v.inv > w.comp:
					figs["overwritten"]++
				default:
					figs["race_losses"]++
				}
				break
			}
			if stale {
				figs["writes_with_stale_reads"]++
			}
			if !decided && seenAfter {
				figs["survived"]++
			}
		}
	}
	sort.Ints(lost)
	return lost, figs
}

// TestLostUpdatesAgainstNaiveScan compares the checker with
// naiveLostUpdates on linearizable histories answered by random nodes, with
// a final-reads phase over their last tenth and some reads made older.
func TestLostUpdatesAgainstNaiveScan(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	total := map[string]int{}
	for i := 0; i < 200; i++ {
		evs := genHistory(genConfig{Seed: int64(i), Ops: 200, Keys: 1 + i%3, Workers: 2 + i%5, InfoProb: 0.05, FailProb: 0.05})
		for j := range evs {
			if evs[j].Type != history.Invoke {
				evs[j].Node = fmt.Sprintf("n%d", 1+rng.Intn(3))
			}
		}
		for n := rng.Intn(6); n > 0; n-- {
			corruptRead(evs, rng)
		}
		if i%2 == 0 {
			start := evs[len(evs)*9/10].Time
			evs = append(evs, history.Event{}, history.Event{})
			pos := len(evs) * 9 / 10
			copy(evs[pos+1:], evs[pos:len(evs)-1])
			evs[pos] = history.PhaseMarker("final-reads", history.PhaseStart)
			evs[pos].Time = start
			evs[len(evs)-1] = history.PhaseMarker("final-reads", history.PhaseEnd)
			evs[len(evs)-1].Time = evs[len(evs)-2].Time
		}
		wantLost, want := naiveLostUpdates(evs)
		r := LostUpdates{}.Check(context.Background(), Input{Events: evs})
		var gotLost []int
		for _, a := range r.Anomalies {
			gotLost = append(gotLost, a.Events[0])
		}
		sort.Ints(gotLost)
		if fmt.Sprint(gotLost) != fmt.Sprint(wantLost) {
			t.Fatalf("history %d: lost %v, naive %v", i, gotLost, wantLost)
		}
		for k, v := range want {
			if r.Details[k] != v {
				t.Fatalf("history %d: %s = %v, naive %d (details %v)", i, k, r.Details[k], v, r.Details)
			}
			total[k] += v
		}
	}
	for _, k := range []string{"lost_updates", "overwritten", "race_losses", "writes_with_stale_reads", "survived"} {
		if total[k] == 0 {
			t.Errorf("no history showed %s: %v", k, total)
		}
	}
	t.Logf("200 histories: %v", total)
}

// A cancelled context gives unknown when nothing was found.
func TestLostUpdatesCancelled(t *testing.T) {
	b := &lub{}
	b.put(0, "1", 10, 20, "n1").put(1, "2", 30, 40, "n2").get(2, "1", 50, 60, "n2")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := (LostUpdates{}).Check(ctx, Input{Events: b.sorted()}); r.Verdict != Unknown {
		t.Fatalf("cancelled: %s %s", r.Verdict, r.Summary)
	}
}
