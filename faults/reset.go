package faults

import "context"

// Reset resets (RST) the connections of every link touching the target
// nodes as soon as either side sends on them.
type Reset struct {
	Target  Selector `yaml:"target" doc:"the nodes whose connections are reset"`
	Peers   bool     `yaml:"peers" doc:"reset connections between the target nodes and their peers"`
	Clients bool     `yaml:"clients" doc:"also reset connections from clients to the target nodes"`
}

// Family is "reset".
func (*Reset) Family() string { return "reset" }

// Doc says what the fault does.
func (*Reset) Doc() string { return "reset (RST) new connections on every link touching the target" }

// Available needs proxies on the links it resets.
func (r *Reset) Available(env Env) error { return needLinks(env, r.Peers, r.Clients) }

// Validate checks that some link is reset.
func (r *Reset) Validate(Env) error { return someLinks(r.Peers, r.Clients) }

// Inject adds a reset_peer toxic to the links.
func (r *Reset) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	lf, err := links.ResetPeer(ctx, in.LinksTouching(r.Peers, r.Clients))
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
