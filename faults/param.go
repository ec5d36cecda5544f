package faults

import (
	"fmt"
	"strings"
)

// paramType is implemented by parameter types that check themselves: every
// parameter of such a type is checked by Schedule.Validate, whatever the
// kind it is on.
type paramType interface {
	// checkParam checks the value against env.Nodes.
	checkParam(env Env) error
	// availableParam checks that env can do what the value asks.
	availableParam(env Env) error
}

// valuesDoc is implemented by parameter types whose values the catalog
// lists (as `faultline faults` shows them).
type valuesDoc interface{ ValuesDoc() string }

// Selector names the nodes a fault acts on (its `target`): one (a seeded
// random node), leader (the node that leads when the fault starts),
// majority, minority, all, role:NAME (every node of that role) or a node
// id. Plan resolves every value but leader; the nemesis resolves leader.
type Selector string

// Selector values other than a node id or a role.
const (
	TargetOne      Selector = "one"
	TargetLeader   Selector = "leader"
	TargetMajority Selector = "majority"
	TargetMinority Selector = "minority"
	TargetAll      Selector = "all"
)

// RolePrefix starts a Selector naming a role: "role:backend".
const RolePrefix = "role:"

// Role returns the role a "role:NAME" selector names.
func (s Selector) Role() (string, bool) {
	return strings.CutPrefix(string(s), RolePrefix)
}

// ValuesDoc lists a Selector's values for the catalog.
func (Selector) ValuesDoc() string {
	return "one (a seeded random node), leader (resolved when the fault starts), majority, minority, all, role:NAME (every node of that role), or a node id"
}

func (s Selector) checkParam(env Env) error {
	switch s {
	case TargetOne, TargetLeader, TargetMajority, TargetMinority, TargetAll:
		return nil
	case "":
		return fmt.Errorf("empty: name the nodes: %s", s.ValuesDoc())
	}
	if role, ok := s.Role(); ok {
		roles := env.roles()
		for _, r := range roles {
			if r == role {
				return nil
			}
		}
		return fmt.Errorf("%q: no node has role %q (roles here: %s)", s, role, rolesList(roles))
	}
	for _, n := range env.Nodes {
		if n.ID == string(s) {
			return nil
		}
	}
	return fmt.Errorf("%q is not a node here: use one, leader, majority, minority, all, role:NAME (%s) or a node id (%s)",
		s, rolesList(env.roles()), strings.Join(nodeIDs(env.Nodes), ", "))
}

func rolesList(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = RolePrefix + r
	}
	return strings.Join(out, ", ")
}

func (s Selector) availableParam(env Env) error {
	if s == TargetLeader {
		return needStatus(env)
	}
	return nil
}

// single reports whether s names at most one node of env.
func (s Selector) single(env Env) bool {
	switch s {
	case TargetOne, TargetLeader:
		return true
	case TargetMajority, TargetMinority, TargetAll:
		return len(env.Nodes) <= 1
	}
	if role, ok := s.Role(); ok {
		n := 0
		for _, x := range env.Nodes {
			if x.Role == role {
				n++
			}
		}
		return n <= 1
	}
	return true
}

// Pick resolves the selector against a draw: one takes the first node of
// the seeded permutation, majority and minority its first n/2+1 and
// (n-1)/2 (at least one) nodes, sorted; all and role:NAME the nodes in
// cluster order; a node id itself. Leader gives nil (it is resolved when
// the fault starts).
func (s Selector) Pick(d Draw) []string {
	n := len(d.Shuffled)
	switch s {
	case TargetLeader, "":
		return nil
	case TargetOne:
		if n == 0 {
			return nil
		}
		return []string{d.Shuffled[0]}
	case TargetMajority:
		return sortedCopy(d.Shuffled[:min(n, n/2+1)])
	case TargetMinority:
		out := sortedCopy(d.Shuffled[:(n-1)/2])
		if len(out) == 0 && n > 0 {
			out = []string{d.Shuffled[0]}
		}
		return out
	case TargetAll:
		return d.IDs()
	}
	if role, ok := s.Role(); ok {
		var out []string
		for _, x := range d.Nodes {
			if x.Role == role {
				out = append(out, x.ID)
			}
		}
		return out
	}
	return []string{string(s)}
}

// ValuesDoc lists the cut modes for the catalog.
func (Mode) ValuesDoc() string {
	return "drop (bytes vanish: both ends time out), hold (bytes are held and delivered when healed), refuse (connections refused and closed)"
}

func (m Mode) checkParam(Env) error {
	if _, err := ParseMode(string(m)); err != nil {
		return fmt.Errorf("%q: use drop, hold or refuse", m)
	}
	return nil
}

func (Mode) availableParam(Env) error { return nil }

var _ = []paramType{Selector(""), Mode("")}
