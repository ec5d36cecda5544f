package faults

import "context"

// PartitionOne isolates one node from every other node.
type PartitionOne struct {
	Target  Selector `yaml:"target" doc:"the node to isolate (one node: one, leader, a node id, or a role that has one node)"`
	Mode    Mode     `yaml:"mode" doc:"how the links to and from the isolated node fail"`
	Clients bool     `yaml:"clients" doc:"also cut clients from the isolated node"`
}

// Family is "partition".
func (*PartitionOne) Family() string { return "partition" }

// Doc says what the fault does.
func (*PartitionOne) Doc() string { return "isolate one node from every other node" }

// Available needs a proxy on every peer link, or a partition hook.
func (p *PartitionOne) Available(env Env) error { return needPeerCut(env, p.Clients) }

// Validate needs a single-node target and two nodes.
func (p *PartitionOne) Validate(env Env) error {
	if err := needSingle(env, p.Target, "isolates"); err != nil {
		return err
	}
	return needNodes(env, 2, "")
}

// Inject cuts every link between the target and the other nodes.
func (p *PartitionOne) Inject(ctx context.Context, in *Injection) (Undo, error) {
	return isolate(ctx, in, p.Mode, p.Clients)
}
