package faults

import "context"

// PartitionOneWay cuts the links one node dials: it can no longer open or
// use connections to the others, while they still reach it.
type PartitionOneWay struct {
	Target Selector `yaml:"target" doc:"the node whose outgoing links are cut (one node: one, leader, a node id, or a role that has one node)"`
	Mode   Mode     `yaml:"mode" doc:"how the cut links fail"`
}

// Family is "partition".
func (*PartitionOneWay) Family() string { return "partition" }

// Doc says what the fault does.
func (*PartitionOneWay) Doc() string {
	return "the target can no longer open or use connections to the others; they still reach it (a one-way cut of the links it dials)"
}

// Available needs a proxy on every peer link.
func (*PartitionOneWay) Available(env Env) error { return needPeerLinks(env) }

// Validate needs a single-node target and two nodes.
func (p *PartitionOneWay) Validate(env Env) error {
	if err := needSingle(env, p.Target, "cuts the links of"); err != nil {
		return err
	}
	return needNodes(env, 2, "")
}

// Inject cuts target -> every other node.
func (p *PartitionOneWay) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	if len(in.Targets) != 1 {
		return nil, errNoTarget("partition-one-way", in)
	}
	var cut []Link
	for _, to := range without(in.Nodes, in.Targets[0]) {
		cut = append(cut, Link{in.Targets[0], to})
	}
	lf, err := links.Cut(ctx, cut, p.Mode)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
