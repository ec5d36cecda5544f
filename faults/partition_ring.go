package faults

import "context"

// PartitionRing puts the nodes in a ring, each linked to its nearest
// neighbours, so that every node sees a majority but no two see the same
// one (see RingLinks).
type PartitionRing struct {
	Mode Mode `yaml:"mode" doc:"how the links between nodes that are not neighbours fail"`
}

// Family is "partition".
func (*PartitionRing) Family() string { return "partition" }

// Doc says what the fault does.
func (*PartitionRing) Doc() string {
	return "every node sees a majority, but no two nodes see the same one (nodes in a ring, each linked to its nearest neighbours)"
}

// Available needs a proxy on every peer link.
func (*PartitionRing) Available(env Env) error { return needPeerLinks(env) }

// Validate needs four nodes.
func (*PartitionRing) Validate(env Env) error {
	return needNodes(env, 4, "with 3, every node already sees every majority")
}

// Resolve takes the seeded permutation as the ring order.
func (*PartitionRing) Resolve(d Draw) ([]string, [][]string) {
	return append([]string(nil), d.Shuffled...), nil
}

// Inject cuts RingLinks(in.Targets).
func (p *PartitionRing) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	lf, err := links.Cut(ctx, RingLinks(in.Targets), p.Mode)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
