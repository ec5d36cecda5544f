package history

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Shift is one piece of the map from a shard's clock onto a merged
// timeline (MergeShards): a time t of the shard at or after From (and
// before the next Shift's From) is t + By on the merged timeline. Times
// are in ns since the shard's own start.
type Shift struct {
	From int64 `json:"from_ns"`
	By   int64 `json:"by_ns"`
}

// MapTime maps t, a time of a shard, onto the merged timeline through the
// shard's shifts (ordered by From; the first From is 0).
func MapTime(shifts []Shift, t int64) int64 {
	i := sort.Search(len(shifts), func(i int) bool { return shifts[i].From > t }) - 1
	if i < 0 {
		return t
	}
	return t + shifts[i].By
}

// Merged is the union of the histories of a run's shards on one timeline.
type Merged struct {
	// Events are every shard's events in merged-time order. Each keeps its
	// Line in its own shard's file; Time is on the merged timeline.
	Events []Event
	// Shard is the shard (index into MergeShards' argument) each event
	// came from.
	Shard []int
	// Shifts are, for each shard, how its times map onto the merged
	// timeline (MapTime).
	Shifts [][]Shift
	// Phases are the merged run's phases: phase k starts on the merged
	// timeline when every shard's phase k starts and ends after every
	// shard's phase k ended (open when one of them never ended).
	Phases []Phase
}

// MergeShards puts the histories of the shards of one run, each timed by
// its own clock, on one merged timeline, so that checkers which judge
// each key (or each client process) on its own can judge the union as one
// history: every shard's phases are aligned (phase k of every shard
// starts at the same merged time, the longest of them decides when the
// next starts), and within a phase a shard's times are only shifted, so
// the order of any two events of one shard is kept exactly, and so is
// every duration within a phase. Times of different shards are not
// comparable beyond their phases: judge what needs one time base on each
// shard's own history.
//
// Every shard must record the same phases in the same order, one of them
// possibly stopping early (a prefix); anything else is an error. The
// merged history has one set of phase markers (those of the first shard
// that has each phase, re-timed): the shards' own markers are dropped.
// MergeShards does not modify its argument.
func MergeShards(shards [][]Event) (*Merged, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("history: no shard to merge")
	}
	type marker struct {
		name         string
		start, end   int // event indexes of its markers; end -1 when none
		tStart, tEnd int64
	}
	phases := make([][]marker, len(shards))
	longest := 0
	for i, evs := range shards {
		var ms []marker
		for j := range evs {
			name, edge, ok := ParsePhaseMarker(&evs[j])
			if !ok {
				continue
			}
			if edge == PhaseStart {
				ms = append(ms, marker{name: name, start: j, end: -1, tStart: evs[j].Time})
				continue
			}
			for k := len(ms) - 1; k >= 0; k-- {
				if ms[k].name == name && ms[k].end < 0 {
					ms[k].end, ms[k].tEnd = j, evs[j].Time
					break
				}
			}
		}
		phases[i] = ms
		if len(ms) > len(phases[longest]) {
			longest = i
		}
	}
	names := func(ms []marker) []string {
		out := make([]string, len(ms))
		for k, m := range ms {
			out[k] = m.name
		}
		return out
	}
	ref := names(phases[longest])
	for i, ms := range phases {
		if got := names(ms); !slices.Equal(got, ref[:len(got)]) {
			return nil, fmt.Errorf("history: shard %d recorded the phases %s, shard %d %s: shards of one run go through the same phases", i, phaseList(got), longest, phaseList(ref))
		}
	}

	// The merged start of each phase: the longest stretch any shard
	// spent from the previous phase's start (or the run's start) to this
	// one's, summed. A shard that stopped in a phase spent until its last
	// event in it.
	last := func(evs []Event) int64 {
		if len(evs) == 0 {
			return 0
		}
		return evs[len(evs)-1].Time
	}
	starts := make([]int64, len(ref))
	for k := range ref {
		var stretch int64
		for i, ms := range phases {
			var from int64
			if k > 0 && k-1 < len(ms) {
				from = ms[k-1].tStart
			} else if k > 0 {
				continue // this shard stopped before phase k-1
			}
			switch {
			case k < len(ms):
				stretch = max(stretch, ms[k].tStart-from)
			case k == len(ms):
				// Stopped in phase k-1 (or, k = 0, never began one): its
				// events from then on all come before the merged phase k.
				stretch = max(stretch, last(shards[i])-from+1)
			}
		}
		if k > 0 {
			starts[k] = starts[k-1] + stretch
		} else {
			starts[k] = stretch
		}
	}

	m := &Merged{Shifts: make([][]Shift, len(shards))}
	for i, ms := range phases {
		sh := []Shift{{From: 0, By: 0}}
		if len(ms) > 0 && ms[0].tStart == 0 {
			sh = sh[:0]
		}
		for k, p := range ms {
			sh = append(sh, Shift{From: p.tStart, By: starts[k] - p.tStart})
		}
		m.Shifts[i] = sh
	}
	// The merged phases, and their markers: the first shard's that has
	// the phase, at the merged start and at the latest merged end.
	type placed struct {
		ev    Event
		shard int
		class int // 0 phase start, 1 any other event, 2 phase end
		seq   int
	}
	var all []placed
	for k, name := range ref {
		owner := -1
		open := false
		var end int64
		for i, ms := range phases {
			if k >= len(ms) {
				open = true // stopped before this phase ended
				continue
			}
			if owner < 0 {
				owner = i
			}
			if ms[k].end < 0 {
				open = true
				continue
			}
			end = max(end, MapTime(m.Shifts[i], ms[k].tEnd))
		}
		ph := Phase{Name: name, Start: starts[k], End: NoEnd}
		sm := shards[owner][phases[owner][k].start]
		sm.Time = starts[k]
		all = append(all, placed{ev: sm, shard: owner, class: 0})
		if !open {
			ph.End = end
			// The owner's end marker, or, if the owner has none, any
			// shard's (every one has one when the phase is not open).
			for i := owner; i < len(phases); i++ {
				if j := phases[i][k].end; j >= 0 {
					em := shards[i][j]
					em.Time = end
					all = append(all, placed{ev: em, shard: i, class: 2})
					break
				}
			}
		}
		m.Phases = append(m.Phases, ph)
	}
	for i, evs := range shards {
		for j := range evs {
			if _, _, ok := ParsePhaseMarker(&evs[j]); ok {
				continue
			}
			e := evs[j]
			e.Time = MapTime(m.Shifts[i], e.Time)
			all = append(all, placed{ev: e, shard: i, class: 1, seq: j})
		}
	}
	sort.SliceStable(all, func(a, b int) bool {
		x, y := &all[a], &all[b]
		if x.ev.Time != y.ev.Time {
			return x.ev.Time < y.ev.Time
		}
		if x.class != y.class {
			return x.class < y.class
		}
		if x.shard != y.shard {
			return x.shard < y.shard
		}
		return x.seq < y.seq
	})
	m.Events = make([]Event, len(all))
	m.Shard = make([]int, len(all))
	for i := range all {
		m.Events[i], m.Shard[i] = all[i].ev, all[i].shard
	}
	return m, nil
}

func phaseList(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
