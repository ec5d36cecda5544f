package history

import "encoding/json"

// The phase field of nemesis and phase-marker events.
const (
	PhaseStart = "start"
	PhaseEnd   = "end"
)

// Phase is one phase of a run (setup, warmup, main, heal, recovery,
// final-reads, ...), in ns since the run's start. End is NoEnd when the
// history records no end for it. Its JSON form is results.json's "phases".
type Phase struct {
	Name  string `json:"name"`
	Start int64  `json:"start_ns"`
	End   int64  `json:"end_ns"`
}

// Open reports whether the history records no end for p.
func (p Phase) Open() bool { return p.End == NoEnd }

// Covers reports whether t is within the phase: Start <= t <= End.
func (p Phase) Covers(t int64) bool { return p.Start <= t && t <= p.End }

// PhaseMarker returns the event that marks a phase boundary: an observer
// event with f "phase", value the phase's name and phase edge (PhaseStart
// or PhaseEnd), as the conductor records it:
//
//	{"type":"info","process":"observer","f":"phase","value":"main","phase":"start"}
//
// The Recorder stamps its time.
func PhaseMarker(name, edge string) Event {
	v, _ := json.Marshal(name) // a string always encodes
	return Event{Type: Info, Process: Observer, F: "phase", Value: v, Phase: edge}
}

// ParsePhaseMarker reads a phase marker: an event of a process other than
// a client with f "phase", a JSON string value (the phase's name, not
// empty) and phase PhaseStart or PhaseEnd. ok is false for any other event.
func ParsePhaseMarker(ev *Event) (name, edge string, ok bool) {
	if ev.Process.IsClient() || ev.F != "phase" || (ev.Phase != PhaseStart && ev.Phase != PhaseEnd) {
		return "", "", false
	}
	if len(ev.Value) == 0 || ev.Value[0] != '"' {
		return "", "", false
	}
	// Declared here, not as the result: Unmarshal makes it escape, and a
	// heap string per event of a large history adds up.
	var s string
	if json.Unmarshal(ev.Value, &s) != nil || s == "" {
		return "", "", false
	}
	return s, ev.Phase, true
}

// Phases reads the phases of a history from its phase markers
// (ParsePhaseMarker), in the order they started. An end marker closes the
// phase of that name that started last and is still open; an end without
// a start is ignored; a phase never ended has End == NoEnd.
func Phases(evs []Event) []Phase {
	var out []Phase
	for i := range evs {
		name, edge, ok := ParsePhaseMarker(&evs[i])
		if !ok {
			continue
		}
		if edge == PhaseStart {
			out = append(out, Phase{Name: name, Start: evs[i].Time, End: NoEnd})
			continue
		}
		for j := len(out) - 1; j >= 0; j-- {
			if out[j].Name == name && out[j].Open() {
				out[j].End = evs[i].Time
				break
			}
		}
	}
	return out
}

// FindPhase returns the first phase named name.
func FindPhase(ps []Phase, name string) (Phase, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	return Phase{}, false
}
