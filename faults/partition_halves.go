package faults

import "context"

// PartitionHalves splits the nodes into two halves, the larger one a
// majority; every link across is cut, both ways.
type PartitionHalves struct {
	Mode    Mode `yaml:"mode" doc:"how the links between the halves fail"`
	Clients bool `yaml:"clients" doc:"also cut clients from the smaller half (they stay with the larger half, or the first of two equal ones)"`
}

// Family is "partition".
func (*PartitionHalves) Family() string { return "partition" }

// Doc says what the fault does.
func (*PartitionHalves) Doc() string {
	return "split the nodes into two halves (the larger half a majority); every link across is cut both ways"
}

// Available needs a proxy on every peer link, or a partition hook.
func (p *PartitionHalves) Available(env Env) error { return needPeerCut(env, p.Clients) }

// Validate needs two nodes.
func (*PartitionHalves) Validate(env Env) error { return needNodes(env, 2, "") }

// Resolve splits the seeded permutation: its first n/2 nodes, and the rest.
func (*PartitionHalves) Resolve(d Draw) ([]string, [][]string) {
	k := len(d.Shuffled) / 2
	return nil, [][]string{sortedCopy(d.Shuffled[:k]), sortedCopy(d.Shuffled[k:])}
}

// Inject cuts the links between in.Groups.
func (p *PartitionHalves) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	if undo, ok, err := in.hookPartition(ctx, links, p.Clients); ok {
		return undo, err
	}
	lf, err := links.Partition(ctx, in.Groups, p.Mode, clientsIn(p.Clients)...)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
