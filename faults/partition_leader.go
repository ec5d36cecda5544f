package faults

import (
	"context"
	"errors"
)

// PartitionLeader isolates the node that leads when the fault starts.
type PartitionLeader struct {
	Mode    Mode `yaml:"mode" doc:"how the links to and from the leader fail"`
	Clients bool `yaml:"clients" doc:"also cut clients from the isolated leader"`
}

// Family is "partition".
func (*PartitionLeader) Family() string { return "partition" }

// Doc says what the fault does.
func (*PartitionLeader) Doc() string { return "isolate the node that is leader when the fault starts" }

// Available needs a proxy on every peer link and a status reader.
func (p *PartitionLeader) Available(env Env) error {
	if err := needPeerCut(env, p.Clients); err != nil {
		return err
	}
	if needStatus(env) != nil {
		return errors.New("the system has no status reader, so no node can be named leader; isolate a node another way (partition-one with target one, a node id or role:NAME)")
	}
	return nil
}

// Validate needs two nodes.
func (*PartitionLeader) Validate(env Env) error { return needNodes(env, 2, "") }

// Inject asks the nodes which one leads, and cuts every link between it
// and the others.
func (p *PartitionLeader) Inject(ctx context.Context, in *Injection) (Undo, error) {
	l, err := in.Leader(ctx)
	if err != nil {
		return nil, err
	}
	in.Targets = []string{l}
	return isolate(ctx, in, p.Mode, p.Clients)
}
