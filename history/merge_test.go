package history

import (
	"strings"
	"testing"
)

// shardHistory builds a history with the conductor's phases, each of the
// given length (ns), and a client op (invoke and ok) in the middle of the
// main phase and of the final reads, on key key by process p.
func shardHistory(p Process, key string, lengths map[string]int64, stopAfter string) []Event {
	var evs []Event
	t := int64(1000)
	line := 2
	add := func(e Event) {
		e.Line = line
		line++
		evs = append(evs, e)
	}
	for _, name := range []string{"setup", "warmup", "main", "heal", "recovery", "final-reads"} {
		m := PhaseMarker(name, PhaseStart)
		m.Time = t
		add(m)
		d := lengths[name]
		if name == "main" || name == "final-reads" {
			add(Event{Type: Invoke, Process: p, Time: t + d/4, F: "get", Key: key})
			add(Event{Type: OK, Process: p, Time: t + d/2, F: "get", Key: key, Value: Null})
			p++
		}
		if name == stopAfter {
			return evs
		}
		t += d
		m = PhaseMarker(name, PhaseEnd)
		m.Time = t
		add(m)
		t += 500 // a gap between phases
	}
	return evs
}

func TestMergeShardsAlignsPhases(t *testing.T) {
	a := shardHistory(0, "k0", map[string]int64{"setup": 10e6, "warmup": 300e6, "main": 8e9, "heal": 5e6, "recovery": 3e9, "final-reads": 50e6}, "")
	b := shardHistory(1e9, "k1", map[string]int64{"setup": 30e6, "warmup": 100e6, "main": 8.2e9, "heal": 90e6, "recovery": 3e9, "final-reads": 20e6}, "")
	m, err := MergeShards([][]Event{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Events) != len(a)+len(b)-12 {
		t.Errorf("%d events, want %d (every shard's but one set of 12 markers)", len(m.Events), len(a)+len(b)-12)
	}
	ph := Phases(m.Events)
	if len(ph) != 6 || len(m.Phases) != 6 {
		t.Fatalf("phases %v (results %v), want one of each of 6", ph, m.Phases)
	}
	for i := range ph {
		if ph[i] != m.Phases[i] {
			t.Errorf("phase %d: markers say %v, Phases %v", i, ph[i], m.Phases[i])
		}
	}
	// Non-decreasing merged time; within each shard, the original order
	// and every duration inside a phase are kept.
	last := int64(-1 << 62)
	prev := map[int]Event{}
	for i, e := range m.Events {
		if e.Time < last {
			t.Fatalf("event %d at %d before %d", i, e.Time, last)
		}
		last = e.Time
		sh := m.Shard[i]
		if _, _, mk := ParsePhaseMarker(&e); mk {
			continue
		}
		if p, ok := prev[sh]; ok && p.Line >= e.Line {
			t.Errorf("shard %d: line %d after line %d", sh, e.Line, p.Line)
		}
		prev[sh] = e
	}
	// Each shard's main-phase and final-read ops lie inside the merged
	// phase of the same name; an invoke-to-ok duration is unchanged.
	for si, evs := range [][]Event{a, b} {
		for _, e := range evs {
			if !e.Process.IsClient() {
				continue
			}
			mt := MapTime(m.Shifts[si], e.Time)
			in := ""
			for _, p := range m.Phases {
				if p.Covers(mt) {
					in = p.Name
				}
			}
			want := "main"
			if e.Line > 14 {
				want = "final-reads"
			}
			if in != want {
				t.Errorf("shard %d line %d (%d ns) maps to %d ns, in phase %q, want %q (phases %v)", si, e.Line, e.Time, mt, in, want, m.Phases)
			}
		}
		inv, ok := evs[6], evs[7] // the main phase's op
		if d := MapTime(m.Shifts[si], ok.Time) - MapTime(m.Shifts[si], inv.Time); d != ok.Time-inv.Time {
			t.Errorf("shard %d: the op took %d ns, %d on the merged timeline", si, ok.Time-inv.Time, d)
		}
	}
	// The merged main phase starts when the longer setup and warm-up
	// (b's 30 ms, a's 300 ms) have both passed.
	if main := m.Phases[2]; main.Start < 1000+30e6+300e6 {
		t.Errorf("merged main starts at %d, before the longest setup and warm-up", main.Start)
	}
}

// A shard stopped in its main phase: its ops stay before the merged heal,
// and the phases from its last on are open (never ended on every shard).
func TestMergeShardsStoppedShard(t *testing.T) {
	lengths := map[string]int64{"setup": 1e6, "warmup": 1e6, "main": 1e9, "heal": 1e6, "recovery": 1e9, "final-reads": 1e6}
	a := shardHistory(0, "k0", lengths, "")
	b := shardHistory(1e9, "k1", map[string]int64{"setup": 1e6, "warmup": 1e6, "main": 5e9}, "main")
	m, err := MergeShards([][]Event{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Phases[2].Open() {
		t.Errorf("main phase %v: want open (shard 1 never ended it)", m.Phases[2])
	}
	heal := m.Phases[3]
	for i, e := range m.Events {
		if m.Shard[i] == 1 && e.Process.IsClient() && e.Time >= heal.Start {
			t.Errorf("shard 1's op at %d is after the merged heal started (%d)", e.Time, heal.Start)
		}
	}
}

func TestMergeShardsRefusesOtherPhases(t *testing.T) {
	a := shardHistory(0, "k0", map[string]int64{"main": 1e9}, "")
	b := []Event{PhaseMarker("setup", PhaseStart), PhaseMarker("main", PhaseStart)}
	_, err := MergeShards([][]Event{a, b})
	if err == nil || !strings.Contains(err.Error(), "setup, main") || !strings.Contains(err.Error(), "same phases") {
		t.Errorf("err = %v, want the phases of each named", err)
	}
}
