package checkers

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// maxAnnotations bounds the annotations added to linearizability.html.
const maxAnnotations = 1000

// faultAnnotations turns fault windows, phase markers and observed leader
// changes into Porcupine annotations, in the checker's clock. The windows,
// phases and roles are history's (history.FaultWindows, ParsePhaseMarker,
// Roles): the same report.html draws. Details name history lines as
// h.in.Ref does.
func faultAnnotations(h *regHistory) []porcupine.Annotation {
	evs, ref := h.in.Events, h.in.Ref
	var anns []porcupine.Annotation
	for _, w := range history.FaultWindows(evs) {
		if len(anns) >= maxAnnotations {
			break
		}
		val := "null"
		if len(w.Value) > 0 {
			if c, err := history.CanonicalJSON(w.Value); err == nil {
				val = c
			} else {
				val = string(w.Value)
			}
		}
		end := h.end
		endText := "not healed before the history ends"
		if !w.Open() {
			end = h.times(w.EndEvent)
			endText = fmt.Sprintf("ended at %s (%s)", durationText(w.End), ref(w.EndEvent))
		}
		desc := w.F
		if val != "null" && len(val) <= 40 {
			desc += " " + val
		}
		anns = append(anns, porcupine.Annotation{
			Tag:             "fault: " + w.F,
			Start:           h.times(w.StartEvent),
			End:             end,
			Description:     desc,
			Details:         fmt.Sprintf("%s %s: started at %s (%s), %s", w.F, val, durationText(w.Start), ref(w.StartEvent), endText),
			BackgroundColor: "#f8c9c4",
		})
	}
	// Phase markers and leader changes seen by the observer, in history order.
	type mark struct {
		event int
		ann   porcupine.Annotation
	}
	var marks []mark
	for i := range evs {
		name, edge, ok := history.ParsePhaseMarker(&evs[i])
		if !ok || evs[i].Process != history.Observer {
			continue
		}
		marks = append(marks, mark{i, porcupine.Annotation{
			Tag: "phase", Start: h.times(i),
			Description: fmt.Sprintf("%s %s", name, edge),
			Details:     fmt.Sprintf("phase %s %s at %s (%s)", name, edge, durationText(evs[i].Time), ref(i)),
		}})
	}
	roles := history.RolesOf(evs)
	for _, node := range roles.Nodes() {
		var prev *history.RoleSegment
		for _, s := range roles.Segments(node) {
			p := prev
			prev = &s
			if p != nil && p.Role == s.Role && p.Term == s.Term {
				continue // only role or term changes
			}
			if !s.IsLeader() && (p == nil || !p.IsLeader()) {
				continue // only show becoming or ceasing to be leader
			}
			desc := fmt.Sprintf("%s %s", node, s.Role)
			if s.IsLeader() && s.Term != "" {
				desc += " (term " + s.Term + ")"
			}
			ev := &evs[s.Event]
			marks = append(marks, mark{s.Event, porcupine.Annotation{
				Tag: "observer", Start: h.times(s.Event), Description: desc,
				Details:         fmt.Sprintf("observer at %s (%s): %s is %s, term %s", durationText(ev.Time), ref(s.Event), node, s.Role, s.Term),
				BackgroundColor: "#d6e6f5",
			}})
		}
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].event < marks[j].event })
	for _, m := range marks {
		if len(anns) >= maxAnnotations {
			break
		}
		anns = append(anns, m.ann)
	}
	return anns
}

func durationText(ns int64) string { return time.Duration(ns).String() }
