package history

import (
	"encoding/json"
	"math"
)

// NoEnd is the End of a fault window or phase whose end the history does not
// record: it lasts for ever (+inf). Clip it to the run's end for drawing.
const NoEnd int64 = math.MaxInt64

// FaultWindow is one fault as the history records it, from its start event
// to its end event.
type FaultWindow struct {
	F string // the fault's family: the nemesis event's "f"
	// Value is the start event's value as recorded (for an end without a
	// start, the end's); nil when the event had none.
	Value json.RawMessage
	// ID is the canonical JSON text of Value's "id" field ("" when it has none):
	// faultline numbers its faults, and pairs start and end by it.
	ID string
	// Start and End are ns since the run's start. An Instant window has
	// End == Start; an open one (no end recorded) has End == NoEnd.
	Start, End int64
	// StartEvent and EndEvent index the events given to FaultWindows;
	// EndEvent is -1 for an open window and StartEvent for an instant.
	StartEvent, EndEvent int
	// Instant marks a nemesis event without a phase (a kill, say), and an
	// end event no start matched (Unstarted).
	Instant bool
	// Unstarted marks an end event that matched no recorded start.
	Unstarted bool
	// Error is the start event's error, else the end event's.
	Error string
}

// Open reports whether the history records no end for w.
func (w FaultWindow) Open() bool { return w.End == NoEnd }

// EndOr returns w's end, or end if w is open.
func (w FaultWindow) EndOr(end int64) int64 {
	if w.Open() {
		return end
	}
	return w.End
}

// Covers reports whether the fault was in force at t: Start <= t <= End.
func (w FaultWindow) Covers(t int64) bool { return w.Start <= t && t <= w.End }

// FaultWindows pairs the nemesis events (process "nemesis") of evs into
// fault windows, in the order of their first events. This is the one pairing
// faultline uses: the checkers' annotations, report.html and the conductor
// all read fault windows from here.
//
// An event with phase "start" opens a window. An event with phase "end"
// closes the oldest open window of the same f that
//
//  1. has the same "id" in its value, when the end's value has one (the
//     value.id faultline writes: overlapping faults of one family pair up
//     right);
//  2. else has the same value, compared as canonical JSON (CanonicalJSON);
//  3. else is any open window of that f (histories from other tools whose
//     end events carry a different value, or none).
//
// An end with an id never closes a window whose start has another id.
//
// An end that closes nothing becomes an Instant, Unstarted window. A nemesis
// event without a phase is an Instant window, except a Jepsen-style "invoke"
// (its completion is the fault). Windows never closed are open: End is NoEnd.
// Values alias the events' values.
func FaultWindows(evs []Event) []FaultWindow {
	var out []FaultWindow
	var open []int     // indexes into out, oldest first
	var canon []string // canonical values of out, for pairing by value
	canonical := func(v json.RawMessage) string {
		if len(v) == 0 {
			return ""
		}
		s, err := CanonicalJSON(v)
		if err != nil {
			return string(v)
		}
		return s
	}
	add := func(w FaultWindow, c string) {
		out = append(out, w)
		canon = append(canon, c)
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Process != Nemesis {
			continue
		}
		switch ev.Phase {
		case PhaseStart:
			open = append(open, len(out))
			add(FaultWindow{F: ev.F, Value: ev.Value, ID: valueID(ev.Value), Start: ev.Time, End: NoEnd, StartEvent: i, EndEvent: -1, Error: ev.Error}, canonical(ev.Value))
		case PhaseEnd:
			id, val := valueID(ev.Value), canonical(ev.Value)
			oldest := func(same func(w int) bool) int {
				for j, w := range open {
					if out[w].F == ev.F && same(w) {
						return j
					}
				}
				return -1
			}
			match := -1
			if id != "" {
				match = oldest(func(w int) bool { return out[w].ID == id })
			}
			// An end with an id never closes a window with another id.
			free := func(w int) bool { return id == "" || out[w].ID == "" }
			if match < 0 && val != "" {
				match = oldest(func(w int) bool { return free(w) && canon[w] == val })
			}
			if match < 0 {
				match = oldest(free)
			}
			if match < 0 {
				add(FaultWindow{F: ev.F, Value: ev.Value, ID: id, Start: ev.Time, End: ev.Time, StartEvent: i, EndEvent: i, Instant: true, Unstarted: true, Error: ev.Error}, val)
				continue
			}
			w := &out[open[match]]
			w.End, w.EndEvent = ev.Time, i
			if w.Error == "" {
				w.Error = ev.Error
			}
			open = append(open[:match], open[match+1:]...)
		default:
			if ev.Type == Invoke {
				continue
			}
			add(FaultWindow{F: ev.F, Value: ev.Value, ID: valueID(ev.Value), Start: ev.Time, End: ev.Time, StartEvent: i, EndEvent: i, Instant: true, Error: ev.Error}, "")
		}
	}
	return out
}

// valueID returns the canonical JSON text of the "id" field of an object
// value, or "".
func valueID(v json.RawMessage) string {
	if len(v) == 0 || v[0] != '{' {
		return ""
	}
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(v, &m) != nil || len(m.ID) == 0 || string(m.ID) == "null" {
		return ""
	}
	if s, err := CanonicalJSON(m.ID); err == nil {
		return s
	}
	return string(m.ID)
}
