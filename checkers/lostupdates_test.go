package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
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
