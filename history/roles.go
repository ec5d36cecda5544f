package history

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// Status is what one observer status event says about a node:
//
//	{"type":"info","process":"observer","f":"status","node":"n2","value":{"role":"leader","term":7,"leader":"n2"}}
type Status struct {
	// Role is the role the node reported ("leader", "follower", ...). When
	// the value names none it is "unreachable" if the event has an error,
	// else "unknown".
	Role string
	// Term is the value's "term" (else its "epoch") as text: a string
	// unquoted, a number as written; "" when absent.
	Term string
	// Leader is the leader the node named, as text; "" when absent.
	Leader string
	// Err is the event's error: why the status could not be read.
	Err string
}

// ParseStatus reads the value and error of an observer status event.
// Anything it cannot read leaves fields empty; it never fails.
func ParseStatus(value json.RawMessage, errText string) Status {
	st := Status{Err: errText}
	var v struct {
		Role, Term, Epoch, Leader json.RawMessage
	}
	if len(value) > 0 && json.Unmarshal(value, &v) == nil {
		st.Role = scalarText(v.Role)
		st.Term = scalarText(v.Term)
		if st.Term == "" {
			st.Term = scalarText(v.Epoch)
		}
		st.Leader = scalarText(v.Leader)
	}
	if st.Role == "" {
		st.Role = "unknown"
		if st.Err != "" {
			st.Role = "unreachable"
		}
	}
	return st
}

// StatusOf reads ev as an observer status event: process "observer", f
// "status" and a node. ok is false for any other event.
func StatusOf(ev *Event) (node string, st Status, ok bool) {
	if ev.Process != Observer || ev.F != "status" || ev.Node == "" {
		return "", Status{}, false
	}
	return ev.Node, ParseStatus(ev.Value, ev.Error), true
}

// IsLeaderRole reports whether role is a leading role: "leader" or
// "primary" (in any case).
func IsLeaderRole(role string) bool {
	return strings.EqualFold(role, "leader") || strings.EqualFold(role, "primary")
}

// IsLeader reports whether the node reported a leading role (IsLeaderRole).
func (s Status) IsLeader() bool { return IsLeaderRole(s.Role) }

// scalarText renders a JSON scalar as text: strings unquoted, other values
// as written, null or absent as "".
func scalarText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// RoleSegment is a stretch of time during which a node reported one Status.
type RoleSegment struct {
	Status
	// Start is when the node was first seen in this status; End when it was
	// last seen in it, or, once it reported another status, when it did.
	// The last segment of every node lasts until the last status event of
	// any node (the observer watched until then).
	Start, End int64
	// Event is the index (as given to Observe or Add) of the event that
	// began the segment.
	Event int
	// Flapping is set when a Limit merged several short segments into this
	// one; its Status is the last one seen among them.
	Flapping bool
}

// Roles derives each node's roles over time from observer status events:
// per node, segments of equal Status. Feed it in history order with Add (or
// Observe), or build it at once with RolesOf; then ask Segments, At,
// LeadersAt or IsLeaderAt. The zero value is ready to use. A Roles is not
// safe for concurrent use.
type Roles struct {
	// Limit, if positive, bounds memory: when a node has 4*Limit segments,
	// runs of short ones are merged (Flapping) until about Limit remain, and
	// Segments returns at most Limit. Answers about merged stretches are
	// then approximate; leave Limit 0 for exact ones.
	Limit int
	// MaxNodes, if positive, bounds the nodes followed: status events of
	// further nodes are ignored.
	MaxNodes int

	nodes map[string][]RoleSegment
	order []string
	last  int64 // time of the last status event
}

// RolesOf reads every observer status event of evs (StatusOf); segment
// Event fields index evs.
func RolesOf(evs []Event) *Roles {
	r := new(Roles)
	for i := range evs {
		r.Add(i, &evs[i])
	}
	return r
}

// Add takes ev into account if it is an observer status event, and reports
// whether it was. i is the event's index, recorded in RoleSegment.Event.
func (r *Roles) Add(i int, ev *Event) bool {
	node, st, ok := StatusOf(ev)
	if ok {
		r.Observe(i, ev.Time, node, st)
	}
	return ok
}

// Observe records that node reported st at time t (event index i). Times
// must not decrease.
func (r *Roles) Observe(i int, t int64, node string, st Status) {
	if r.nodes == nil {
		r.nodes = make(map[string][]RoleSegment)
	}
	if t > r.last {
		r.last = t
	}
	segs, known := r.nodes[node]
	if !known {
		if r.MaxNodes > 0 && len(r.order) >= r.MaxNodes {
			return
		}
		r.order = append(r.order, node)
	}
	if k := len(segs); k > 0 {
		p := &segs[k-1]
		p.End = t
		if p.Status == st {
			return
		}
		if r.Limit > 0 && k >= 4*r.Limit {
			segs = coalesce(segs, r.Limit)
		}
	}
	r.nodes[node] = append(segs, RoleSegment{Status: st, Start: t, End: t, Event: i})
}

// Nodes returns the nodes seen, in the order of their first status event.
func (r *Roles) Nodes() []string { return r.order }

// Segments returns node's segments in time order (nil for a node never
// seen). The slice belongs to r: do not modify it.
func (r *Roles) Segments(node string) []RoleSegment {
	segs := r.nodes[node]
	if len(segs) == 0 {
		return nil
	}
	if r.Limit > 0 && len(segs) > r.Limit {
		segs = coalesce(segs, r.Limit)
		r.nodes[node] = segs
	}
	if p := &segs[len(segs)-1]; p.End < r.last {
		p.End = r.last
	}
	return segs
}

// At returns the segment of node that holds time t: the last one with
// Start <= t, if t is not after its End. ok is false before the node's
// first status event and after the last status event of the history.
func (r *Roles) At(node string, t int64) (RoleSegment, bool) {
	segs := r.Segments(node)
	i := sort.Search(len(segs), func(i int) bool { return segs[i].Start > t }) - 1
	if i < 0 || t > segs[i].End {
		return RoleSegment{}, false
	}
	return segs[i], true
}

// IsLeaderAt reports whether node reported a leading role (IsLeaderRole)
// at time t.
func (r *Roles) IsLeaderAt(node string, t int64) bool {
	s, ok := r.At(node, t)
	return ok && s.IsLeader()
}

// LeadersAt returns the nodes that reported a leading role at time t, in
// the order of Nodes. More than one means the nodes disagreed (in
// different terms, or a split brain).
func (r *Roles) LeadersAt(t int64) []string {
	var out []string
	for _, n := range r.order {
		if r.IsLeaderAt(n, t) {
			out = append(out, n)
		}
	}
	return out
}

// coalesce merges the shortest runs of neighbouring segments until at most
// max remain: a run of short segments becomes one Flapping segment that
// keeps the status seen last.
func coalesce(segs []RoleSegment, max int) []RoleSegment {
	if len(segs) <= max {
		return segs
	}
	span := segs[len(segs)-1].End - segs[0].Start
	minDur := span / int64(max)
	for len(segs) > max {
		var out []RoleSegment
		for _, g := range segs {
			if k := len(out); k > 0 && (g.End-g.Start < minDur || out[k-1].End-out[k-1].Start < minDur) {
				p := &out[k-1]
				p.End = g.End
				p.Status = g.Status
				p.Flapping = true
				continue
			}
			out = append(out, g)
		}
		if len(out) == len(segs) {
			out = out[len(out)-max:]
		}
		segs = out
		minDur *= 2
	}
	return segs
}
