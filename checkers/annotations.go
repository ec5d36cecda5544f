package checkers

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// maxAnnotations bounds the annotations added to linearizability.html.
const maxAnnotations = 1000

// faultWindow is one fault, from its start event to its end event.
type faultWindow struct {
	F          string
	Value      string // canonical JSON of the start event's value
	Start, End int    // event indexes; End is -1 if the fault never ended
}

// faultWindows pairs the nemesis "start" and "end" events of a history. An
// end matches the oldest open fault with the same f and value, or, failing
// that, the oldest open fault with the same f. Nemesis events without a
// phase are instantaneous faults (Start == End).
func faultWindows(evs []history.Event) []faultWindow {
	var out []faultWindow
	var open []int // indexes into out
	for i := range evs {
		ev := &evs[i]
		if ev.Process != history.Nemesis {
			continue
		}
		val, err := canonicalJSON(ev.Value)
		if err != nil {
			val = string(ev.Value)
		}
		switch ev.Phase {
		case "start":
			open = append(open, len(out))
			out = append(out, faultWindow{F: ev.F, Value: val, Start: i, End: -1})
		case "end":
			match := -1
			// faultline's events carry the fault's id: pair by it first,
			// so overlapping faults of one family pair up right.
			if id := faultID(ev.Value); id != "" {
				for j, w := range open {
					if out[w].F == ev.F && faultID(json.RawMessage(out[w].Value)) == id {
						match = j
						break
					}
				}
			}
			for j, w := range open {
				if match >= 0 {
					break
				}
				if out[w].F == ev.F && (out[w].Value == val || ev.Value == nil) {
					match = j
					break
				}
			}
			if match < 0 {
				for j, w := range open {
					if out[w].F == ev.F {
						match = j
						break
					}
				}
			}
			if match < 0 {
				// An end with no start: show it as a point.
				out = append(out, faultWindow{F: ev.F, Value: val, Start: i, End: i})
				continue
			}
			out[open[match]].End = i
			open = append(open[:match], open[match+1:]...)
		default:
			if ev.Type == history.Invoke {
				continue // Jepsen-style nemesis invoke: its info completion is the fault
			}
			out = append(out, faultWindow{F: ev.F, Value: val, Start: i, End: i})
		}
	}
	return out
}

// faultAnnotations turns fault windows, phase markers and observed leader
// changes into Porcupine annotations, in the checker's clock.
func faultAnnotations(evs []history.Event, h *regHistory) []porcupine.Annotation {
	var anns []porcupine.Annotation
	for _, w := range faultWindows(evs) {
		if len(anns) >= maxAnnotations {
			break
		}
		end := h.end
		endText := "not healed before the history ends"
		if w.End >= 0 {
			end = h.times(w.End)
			endText = fmt.Sprintf("ended at %s (event %d)", durationText(evs[w.End].Time), w.End)
		}
		desc := w.F
		if w.Value != "null" && len(w.Value) <= 40 {
			desc += " " + w.Value
		}
		anns = append(anns, porcupine.Annotation{
			Tag:             "fault: " + w.F,
			Start:           h.times(w.Start),
			End:             end,
			Description:     desc,
			Details:         fmt.Sprintf("%s %s: started at %s (event %d), %s", w.F, w.Value, durationText(evs[w.Start].Time), w.Start, endText),
			BackgroundColor: "#f8c9c4",
		})
	}
	// Phase markers and leader changes seen by the observer.
	leaders := make(map[string]string) // node -> last "role/term"
	for i := range evs {
		if len(anns) >= maxAnnotations {
			break
		}
		ev := &evs[i]
		if ev.Process != history.Observer {
			continue
		}
		if ev.F == "phase" {
			var name string
			if json.Unmarshal(ev.Value, &name) == nil && name != "" {
				anns = append(anns, porcupine.Annotation{
					Tag: "phase", Start: h.times(i),
					Description: fmt.Sprintf("%s %s", name, ev.Phase),
					Details:     fmt.Sprintf("phase %s %s at %s (event %d)", name, ev.Phase, durationText(ev.Time), i),
				})
			}
			continue
		}
		if ev.F != "status" || ev.Node == "" {
			continue
		}
		var st struct {
			Role  string          `json:"role"`
			Term  json.RawMessage `json:"term"`
			Epoch json.RawMessage `json:"epoch"`
		}
		if json.Unmarshal(ev.Value, &st) != nil || st.Role == "" {
			continue
		}
		term := string(st.Term)
		if term == "" {
			term = string(st.Epoch)
		}
		cur := st.Role + "/" + term
		if leaders[ev.Node] == cur {
			continue
		}
		prev, seen := leaders[ev.Node]
		leaders[ev.Node] = cur
		if st.Role != "leader" && (!seen || !strings.HasPrefix(prev, "leader/")) {
			continue // only show becoming or ceasing to be leader
		}
		desc := fmt.Sprintf("%s leader", ev.Node)
		if term != "" {
			desc += " (term " + term + ")"
		}
		if st.Role != "leader" {
			desc = fmt.Sprintf("%s %s", ev.Node, st.Role)
		}
		anns = append(anns, porcupine.Annotation{
			Tag: "observer", Start: h.times(i), Description: desc,
			Details:         fmt.Sprintf("observer at %s (event %d): %s is %s, term %s", durationText(ev.Time), i, ev.Node, st.Role, term),
			BackgroundColor: "#d6e6f5",
		})
	}
	return anns
}

func durationText(ns int64) string { return time.Duration(ns).String() }

// faultID returns the "id" field of a nemesis event's value, or "".
func faultID(v json.RawMessage) string {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &m) != nil || len(m.ID) == 0 {
		return ""
	}
	return string(m.ID)
}
