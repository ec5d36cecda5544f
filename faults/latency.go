package faults

import (
	"context"
	"time"
)

// Latency delays both directions of every link touching the target nodes.
type Latency struct {
	Target  Selector      `yaml:"target" doc:"the nodes whose links are slowed (all: every link)"`
	Latency time.Duration `yaml:"latency" doc:"added delay per direction (at least 1ms; Toxiproxy works in whole milliseconds)"`
	Jitter  time.Duration `yaml:"jitter" doc:"random extra delay per direction, up to this much either way"`
	Peers   bool          `yaml:"peers" doc:"slow the links between the target nodes and their peers"`
	Clients bool          `yaml:"clients" doc:"also slow the links from clients to the target nodes"`
}

// Family is "latency".
func (*Latency) Family() string { return "latency" }

// Doc says what the fault does.
func (*Latency) Doc() string {
	return "add latency (plus jitter) to both directions of every link touching the target (all: every peer link)"
}

// Available needs proxies on the links it slows.
func (l *Latency) Available(env Env) error { return needLinks(env, l.Peers, l.Clients) }

// Validate checks the delays and that some link is slowed.
func (l *Latency) Validate(Env) error {
	if l.Latency < time.Millisecond {
		return specErr("latency", "%s: want at least 1ms", l.Latency)
	}
	if l.Jitter < 0 {
		return specErr("jitter", "%s: must not be negative", l.Jitter)
	}
	return someLinks(l.Peers, l.Clients)
}

// Inject adds a latency toxic to the links.
func (l *Latency) Inject(ctx context.Context, in *Injection) (Undo, error) {
	links, err := in.Links()
	if err != nil {
		return nil, err
	}
	lf, err := links.Latency(ctx, in.LinksTouching(l.Peers, l.Clients), l.Latency, l.Jitter)
	if err != nil {
		return nil, err
	}
	return in.LinkFault(lf), nil
}
