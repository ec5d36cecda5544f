package faults

import "context"

// ClientCut cuts the links from clients to the target nodes (the load's
// and the final reads' connections), leaving the nodes' links to one
// another alone: the fault every cluster takes, an external one included,
// since faultline's own proxies carry every client link.
type ClientCut struct {
	Target Selector `yaml:"target" doc:"the nodes clients can no longer reach (one node, a set, or all)"`
	Mode   Mode     `yaml:"mode" doc:"how the client links fail"`
}

// Family is "partition".
func (*ClientCut) Family() string { return "partition" }

// Doc says what the fault does.
func (*ClientCut) Doc() string {
	return "cut the links from clients to the target nodes (drop, hold or refuse); the nodes' links to one another stay up"
}

// Available needs a proxy on every client link.
func (*ClientCut) Available(env Env) error { return needClientLinks(env) }

// Inject cuts the client links into the targets.
func (c *ClientCut) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	var cut []Link
	for _, id := range in.Targets {
		cut = append(cut, Link{From: ClientID, To: id})
	}
	lf, err := links.Cut(ctx, cut, c.Mode)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
