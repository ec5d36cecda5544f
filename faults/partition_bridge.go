package faults

import "context"

// PartitionBridge splits the nodes into two halves joined by one bridge
// node that sees both.
type PartitionBridge struct {
	Mode Mode `yaml:"mode" doc:"how the links between the halves fail"`
}

// Family is "partition".
func (*PartitionBridge) Family() string { return "partition" }

// Doc says what the fault does.
func (*PartitionBridge) Doc() string { return "two halves joined by one bridge node that sees both" }

// Available needs a proxy on every peer link.
func (*PartitionBridge) Available(env Env) error { return needPeerLinks(env) }

// Validate needs three nodes.
func (*PartitionBridge) Validate(env Env) error { return needNodes(env, 3, "") }

// Resolve takes the first node of the seeded permutation as the bridge
// and splits the rest in two halves.
func (*PartitionBridge) Resolve(d Draw) ([]string, [][]string) {
	if len(d.Shuffled) == 0 {
		return nil, nil
	}
	rest := d.Shuffled[1:]
	k := len(rest) / 2
	return []string{d.Shuffled[0]}, [][]string{sortedCopy(rest[:k]), sortedCopy(rest[k:])}
}

// Inject cuts every link between the halves, except the bridge's.
func (p *PartitionBridge) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	if len(in.Targets) != 1 {
		return nil, errNoTarget("partition-bridge", in)
	}
	bridge := in.Targets[0]
	crossing, err := CrossingLinks(in.Nodes, in.Groups)
	if err != nil {
		return nil, err
	}
	var cut []Link
	for _, l := range crossing {
		if l.From != bridge && l.To != bridge {
			cut = append(cut, l)
		}
	}
	lf, err := links.Cut(ctx, cut, p.Mode)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
