package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faultline/faultline/targets"
)

// MaxServiceTime is the longest service time the service-time fault sets.
const MaxServiceTime = time.Minute

// ServiceTime sets the service time of the target nodes (through the
// system's SetServiceTime: retrysvc's PUT /admin/service-time) when the
// fault starts, and restores the value each node was started with when it
// ends (heal ends it too). Only nodes of a role with a service time
// (targets.Role.ServiceTime, e.g. retrysvc's backends) can be targets:
// all names every such node; a role or node id must name such nodes; one,
// majority, minority and leader, which pick among every node, are refused
// unless every role has one.
type ServiceTime struct {
	Target      Selector      `yaml:"target" doc:"the nodes whose service time is set: all (every node that has one), role:NAME or a node id of a role that has one (retrysvc: role:backend)"`
	ServiceTime time.Duration `yaml:"service_time" doc:"the time each request takes the targets while the fault lasts, from 0 to 1m (e.g. 60ms against retrysvc's default 10ms)"`
}

// Family is "service-time".
func (*ServiceTime) Family() string { return "service-time" }

// Doc says what the fault does.
func (*ServiceTime) Doc() string {
	return "set the service time of the target nodes through their admin API (systems with a service time, such as retrysvc's backends); restore it when the fault ends"
}

// Available needs the system's SetServiceTime and a role with a service time.
func (*ServiceTime) Available(env Env) error {
	if env.System != nil && env.System.SetServiceTime != nil && len(serviceTimeRoles(env.System)) > 0 {
		return nil
	}
	return errors.New("the system has no service time to set (retrysvc's backends have one, set through PUT /admin/service-time); remove this fault or test a system that has it")
}

// serviceTimeRoles returns the names of sys's roles with a service time.
func serviceTimeRoles(sys *targets.System) []string {
	var out []string
	for _, r := range sys.Roles {
		if r.ServiceTime {
			out = append(out, r.Name)
		}
	}
	return out
}

// hasServiceTime reports whether nodes of role have a service time.
func hasServiceTime(sys *targets.System, role string) bool {
	r, ok := sys.Role(role)
	return ok && r.ServiceTime
}

// Validate refuses a service time out of range and a target that names (or
// may pick) a node without a service time.
func (s *ServiceTime) Validate(env Env) error {
	if s.ServiceTime < 0 || s.ServiceTime > MaxServiceTime {
		return specErr("service_time", "%s is out of range: give a duration from 0 to %s, such as 60ms", s.ServiceTime, MaxServiceTime)
	}
	sys := env.System
	if sys == nil {
		return nil // Available refuses it
	}
	roles := serviceTimeRoles(sys)
	use := "use all, " + rolesList(roles) + " or a node id of those roles"
	if role, ok := s.Target.Role(); ok {
		if !hasServiceTime(sys, role) {
			return specErr("target", "%q: nodes of role %s have no service time: %s", s.Target, role, use)
		}
		return nil
	}
	switch s.Target {
	case TargetAll:
		return nil
	case TargetOne, TargetMajority, TargetMinority, TargetLeader:
		for _, n := range env.Nodes {
			if !hasServiceTime(sys, n.Role) {
				return specErr("target", "%q picks among every node, and node %s (role %s) has no service time: %s", s.Target, n.ID, n.Role, use)
			}
		}
		return nil
	}
	for _, n := range env.Nodes {
		if n.ID == string(s.Target) && !hasServiceTime(sys, n.Role) {
			return specErr("target", "%q: node %s is a %s, which has no service time: %s", s.Target, n.ID, n.Role, use)
		}
	}
	return nil
}

// Inject sets each target's service time (the nodes all names that have
// none are left out); undoing restores each one set.
func (s *ServiceTime) Inject(ctx context.Context, in *Injection) (Undo, error) {
	sys := in.nem.t.System
	if sys == nil || sys.SetServiceTime == nil {
		return nil, errors.New("the system has no service time to set")
	}
	nodes := map[string]targets.NodeInfo{}
	for _, ni := range in.nem.t.Cluster.Nodes() {
		nodes[ni.ID] = ni
	}
	var ids []string
	for _, id := range in.Targets {
		ni, ok := nodes[id]
		if !ok {
			return nil, fmt.Errorf("service-time: no node %q in this cluster", id)
		}
		if hasServiceTime(sys, ni.Role) {
			ids = append(ids, id)
		} else if Selector(id) == s.Target {
			return nil, fmt.Errorf("service-time: node %s is a %s, which has no service time", id, ni.Role)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("service-time: none of the targets (%s) has a service time", strings.Join(in.Targets, ", "))
	}
	in.Targets = ids
	var set []string
	undo := func(ctx context.Context) error {
		var errs []error
		for _, id := range set {
			if err := sys.SetServiceTime(ctx, nodes[id], nil); err != nil {
				errs = append(errs, fmt.Errorf("restore the service time of %s: %w", id, err))
			}
		}
		return errors.Join(errs...)
	}
	d := s.ServiceTime
	for _, id := range ids {
		// Noted before the call: a call that fails part way (its answer
		// lost) may still have set it.
		set = append(set, id)
		if err := sys.SetServiceTime(ctx, nodes[id], &d); err != nil {
			return undo, fmt.Errorf("service-time %s: %w", id, err)
		}
	}
	return undo, nil
}
