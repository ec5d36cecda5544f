package faults

import "context"

// Bandwidth limits both directions of every link touching the target
// nodes.
type Bandwidth struct {
	Target  Selector `yaml:"target" doc:"the nodes whose links are limited (all: every link)"`
	Rate    int64    `yaml:"rate" doc:"KB/s per direction (a positive number)"`
	Peers   bool     `yaml:"peers" doc:"limit the links between the target nodes and their peers"`
	Clients bool     `yaml:"clients" doc:"also limit the links from clients to the target nodes"`
}

// Family is "bandwidth".
func (*Bandwidth) Family() string { return "bandwidth" }

// Doc says what the fault does.
func (*Bandwidth) Doc() string { return "limit the bandwidth of every link touching the target" }

// Available needs proxies on the links it limits.
func (b *Bandwidth) Available(env Env) error { return needLinks(env, b.Peers, b.Clients) }

// Validate checks the rate and that some link is limited.
func (b *Bandwidth) Validate(Env) error {
	if b.Rate <= 0 {
		return specErr("rate", "%d: want a positive number of KB/s", b.Rate)
	}
	return someLinks(b.Peers, b.Clients)
}

// Inject adds a bandwidth toxic to the links.
func (b *Bandwidth) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	lf, err := links.Bandwidth(ctx, in.LinksTouching(b.Peers, b.Clients), b.Rate)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
