package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// Mode is how a cut link fails. Every mode cuts both streams of a link's
// proxy: From's requests (Toxiproxy's "upstream") and To's answers
// ("downstream"), on connections that exist when the cut starts and on new
// ones.
type Mode string

// Cut modes, as measured against Toxiproxy v2.12.0 (see the tests).
const (
	// Drop adds a timeout toxic with timeout 0 to both streams: the proxy
	// keeps accepting connections and reading what either side sends, and
	// discards it; nothing arrives and nothing errors, so both ends see
	// timeouts. When the cut ends, Toxiproxy closes every connection that
	// was open during it (their byte streams lost data); new connections
	// work at once.
	Drop Mode = "drop"
	// Hold adds a latency toxic of HoldLatency to both streams: bytes are
	// accepted and buffered (up to 1024 chunks, then TCP back-pressure
	// blocks the sender) and delivered in order when the cut ends, on the
	// same connections.
	Hold Mode = "hold"
	// Refuse disables the proxy: its listener closes, so new connections
	// are refused (ECONNREFUSED), and every connection through it is closed
	// at once. When the cut ends the proxy listens on the same address
	// again.
	Refuse Mode = "refuse"
)

// HoldLatency is the latency of a Hold cut: long enough that nothing is
// delivered before the cut ends.
const HoldLatency = 24 * time.Hour

// ParseMode parses "drop", "hold" or "refuse".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Drop, Hold, Refuse:
		return m, nil
	}
	return "", fmt.Errorf("link cut mode %q: want drop, hold or refuse", s)
}

// MarshalText encodes a link as "from->to".
func (l Link) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes "from->to".
func (l *Link) UnmarshalText(b []byte) error {
	from, to, ok := strings.Cut(string(b), "->")
	if !ok || from == "" || to == "" {
		return fmt.Errorf("link %q: want FROM->TO", b)
	}
	*l = Link{from, to}
	return nil
}

// ToxicRef names one toxic on one proxy.
type ToxicRef struct {
	Link       Link                  `json:"link"`
	Proxy      string                `json:"proxy"`
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Stream     string                `json:"stream"` // "upstream" (From -> To) or "downstream" (To -> From)
	Attributes toxiclient.Attributes `json:"attributes,omitempty"`
}

// LinkFault records one active link fault: what it changed, so that ending
// it undoes exactly that.
type LinkFault struct {
	ID       int        `json:"id"`
	Kind     string     `json:"kind"`             // cut, partition, one-way, latency, bandwidth, reset-peer
	Mode     Mode       `json:"mode,omitempty"`   // cuts only
	Groups   [][]string `json:"groups,omitempty"` // partitions only
	Links    []Link     `json:"links"`
	Toxics   []ToxicRef `json:"toxics,omitempty"`
	Disabled []Link     `json:"disabled,omitempty"` // proxies this fault disabled (Refuse)
}

func (f *LinkFault) clone() LinkFault {
	c := *f
	c.Links = append([]Link(nil), f.Links...)
	c.Toxics = append([]ToxicRef(nil), f.Toxics...)
	c.Disabled = append([]Link(nil), f.Disabled...)
	c.Groups = make([][]string, len(f.Groups))
	for i, g := range f.Groups {
		c.Groups[i] = append([]string(nil), g...)
	}
	if f.Groups == nil {
		c.Groups = nil
	}
	return c
}

// toxicSpec is a toxic to add to both streams of each link.
type toxicSpec struct {
	typ   string
	attrs toxiclient.Attributes
}

var streams = []string{"upstream", "downstream"}

// Cut cuts every given link in mode: both streams of each link's proxy, so
// From can neither send to To nor hear back over it (To -> From is a
// separate link). It returns the fault's record; end it with End or Heal.
func (l *Links) Cut(ctx context.Context, links []Link, mode Mode) (LinkFault, error) {
	return l.cut(ctx, "cut", nil, links, mode)
}

// CutOneWay cuts the link from -> to only: from's connections to to carry
// nothing (neither requests nor answers), while to still reaches from over
// to -> from. This is the one-way partition at the level of connections.
func (l *Links) CutOneWay(ctx context.Context, from, to string, mode Mode) (LinkFault, error) {
	return l.cut(ctx, "one-way", nil, []Link{{from, to}}, mode)
}

// LargestGroup, given to ClientsIn, places clients with the largest group
// (the first of equal ones).
const LargestGroup = -1

// PartitionOption adjusts a partition.
type PartitionOption func(*partitionConfig)

type partitionConfig struct {
	cutClients  bool
	clientGroup int
}

// ClientsIn also cuts the client -> node links to every node outside
// groups[group] (or the largest group, for LargestGroup): clients then sit
// with that group, and the other side is cut from them too. Without it,
// partitions leave client links alone.
func ClientsIn(group int) PartitionOption {
	return func(c *partitionConfig) { c.cutClients, c.clientGroup = true, group }
}

// Partition splits the nodes into groups: every node -> node link between
// two different groups is cut in mode, both directions, and a node in no
// group is cut from every other node. Links inside a group are untouched.
// Every id in groups must be a mapped node, in at most one group.
func (l *Links) Partition(ctx context.Context, groups [][]string, mode Mode, opts ...PartitionOption) (LinkFault, error) {
	var cfg partitionConfig
	for _, o := range opts {
		o(&cfg)
	}
	nodes := l.Nodes()
	links, err := CrossingLinks(nodes, groups)
	if err != nil {
		return LinkFault{}, err
	}
	if cfg.cutClients {
		g := cfg.clientGroup
		if g == LargestGroup {
			g = 0
			for i := range groups {
				if len(groups[i]) > len(groups[g]) {
					g = i
				}
			}
		}
		if g < 0 || g >= len(groups) {
			return LinkFault{}, fmt.Errorf("faults: partition: clients placed in group %d, but there are %d groups", cfg.clientGroup, len(groups))
		}
		in := map[string]bool{}
		for _, id := range groups[g] {
			in[id] = true
		}
		for _, id := range nodes {
			if !in[id] {
				links = append(links, Link{ClientID, id})
			}
		}
	}
	// Pairs whose target has no peer listener have no proxy: nothing to cut.
	links = l.onlyMapped(links)
	return l.cut(ctx, "partition", groups, links, mode)
}

// CrossingLinks returns the directed node -> node links that a partition of
// nodes into groups cuts: a -> b whenever a and b are in different groups or
// either is in none. It fails if a group names an unknown node or a node is
// in two groups.
func CrossingLinks(nodes []string, groups [][]string) ([]Link, error) {
	known := map[string]bool{}
	for _, n := range nodes {
		known[n] = true
	}
	group := map[string]int{}
	for i, g := range groups {
		for _, id := range g {
			if !known[id] {
				return nil, fmt.Errorf("faults: partition group %d names node %q, which is not in the cluster %v", i, id, nodes)
			}
			if j, dup := group[id]; dup {
				return nil, fmt.Errorf("faults: partition puts node %q in groups %d and %d; a node can be in one group only", id, j, i)
			}
			group[id] = i
		}
	}
	var out []Link
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			ga, aok := group[a]
			gb, bok := group[b]
			if !aok || !bok || ga != gb {
				out = append(out, Link{a, b})
			}
		}
	}
	return out, nil
}

func (l *Links) onlyMapped(links []Link) []Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	return filterLinks(links, func(k Link) bool { return l.proxies[k] != nil })
}

func (l *Links) cut(ctx context.Context, kind string, groups [][]string, links []Link, mode Mode) (LinkFault, error) {
	var spec []toxicSpec
	switch mode {
	case Drop:
		spec = []toxicSpec{{"timeout", toxiclient.Attributes{"timeout": 0}}}
	case Hold:
		spec = []toxicSpec{{"latency", toxiclient.Attributes{"latency": HoldLatency.Milliseconds(), "jitter": 0}}}
	case Refuse:
		spec = nil
	default:
		return LinkFault{}, fmt.Errorf("faults: %s: unknown mode %q (want drop, hold or refuse)", kind, mode)
	}
	var gs [][]string
	for _, g := range groups {
		gs = append(gs, append([]string(nil), g...))
	}
	return l.apply(ctx, LinkFault{Kind: kind, Mode: mode, Groups: gs, Links: links}, spec, mode == Refuse)
}

// Latency delays every byte on the given links, both streams, by latency
// plus a uniform random offset in [-jitter, +jitter), so a request/answer
// round trip gains about twice latency. Toxiproxy works in whole
// milliseconds: both are rounded to the nearest one, and latency must be at
// least 1 ms.
func (l *Links) Latency(ctx context.Context, links []Link, latency, jitter time.Duration) (LinkFault, error) {
	ms, jms := latency.Round(time.Millisecond).Milliseconds(), jitter.Round(time.Millisecond).Milliseconds()
	if ms < 1 || jms < 0 {
		return LinkFault{}, fmt.Errorf("faults: latency %v jitter %v: want latency >= 1ms and jitter >= 0", latency, jitter)
	}
	return l.apply(ctx, LinkFault{Kind: "latency", Links: links},
		[]toxicSpec{{"latency", toxiclient.Attributes{"latency": ms, "jitter": jms}}}, false)
}

// Bandwidth limits each stream of each given link to rateKBps kilobytes
// (1000 bytes) per second. rateKBps must be positive (Toxiproxy takes 0 as
// "unlimited").
func (l *Links) Bandwidth(ctx context.Context, links []Link, rateKBps int64) (LinkFault, error) {
	if rateKBps <= 0 {
		return LinkFault{}, fmt.Errorf("faults: bandwidth %d KB/s: want a positive rate", rateKBps)
	}
	return l.apply(ctx, LinkFault{Kind: "bandwidth", Links: links},
		[]toxicSpec{{"bandwidth", toxiclient.Attributes{"rate": rateKBps}}}, false)
}

// ResetPeer resets the connections of the given links: as soon as either
// side sends anything on a connection (existing or new) while the fault
// lasts, Toxiproxy closes both ends of it, discarding unsent data. New
// connections are accepted, then reset at their first byte.
func (l *Links) ResetPeer(ctx context.Context, links []Link) (LinkFault, error) {
	return l.apply(ctx, LinkFault{Kind: "reset-peer", Links: links},
		[]toxicSpec{{"reset_peer", toxiclient.Attributes{"timeout": 0}}}, false)
}

// apply records f and adds spec's toxics to both streams of each link (or
// disables each link's proxy). On failure it undoes what it did.
func (l *Links) apply(ctx context.Context, f LinkFault, spec []toxicSpec, disable bool) (LinkFault, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeLocked()()
	if l.closed {
		return LinkFault{}, fmt.Errorf("faults: %s on a closed Links", f.Kind)
	}
	links, err := l.checkLinksLocked(f.Links)
	if err != nil {
		return LinkFault{}, fmt.Errorf("faults: %s: %w", f.Kind, err)
	}
	l.nextID++
	f.ID = l.nextID
	f.Links = links
	fail := func(err error) (LinkFault, error) {
		if uerr := l.undoLocked(&f); uerr != nil {
			err = fmt.Errorf("%w; undoing it also failed: %v (run Heal)", err, uerr)
		}
		return LinkFault{}, err
	}
	for _, k := range links {
		lp := l.proxies[k]
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("faults: %s on %s: %w", f.Kind, k, err))
		}
		if disable {
			if l.disabled[k] == 0 {
				if err := l.setEnabledLocked(lp, false); err != nil {
					return fail(fmt.Errorf("faults: %s: %w", f.Kind, err))
				}
			}
			l.disabled[k]++
			f.Disabled = append(f.Disabled, k)
			continue
		}
		for _, s := range spec {
			for _, stream := range streams {
				name := fmt.Sprintf("f%d_%s_%s", f.ID, s.typ, stream)
				p := l.c.NewProxy()
				p.Name = lp.name
				// Toxicity 1: every connection. (0 would mean never.)
				if _, err := p.AddToxic(name, s.typ, stream, 1, s.attrs); err != nil {
					return fail(fmt.Errorf("faults: %s: add %s toxic %s to proxy %s (%s): %w", f.Kind, s.typ, name, lp.name, k, err))
				}
				f.Toxics = append(f.Toxics, ToxicRef{Link: k, Proxy: lp.name, Name: name, Type: s.typ, Stream: stream, Attributes: s.attrs})
			}
		}
	}
	l.active = append(l.active, &f)
	return f.clone(), nil
}

// checkLinksLocked rejects unmapped links and drops repeats, keeping order.
func (l *Links) checkLinksLocked(links []Link) ([]Link, error) {
	if len(links) == 0 {
		return nil, errors.New("no link to act on (a partition with every node in one group cuts nothing)")
	}
	seen := map[Link]bool{}
	var out []Link
	for _, k := range links {
		if l.proxies[k] == nil {
			return nil, fmt.Errorf("link %s has no proxy (mapped links: %s)", k, linkList(l.order))
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

func (l *Links) setEnabledLocked(lp *linkProxy, enabled bool) error {
	p, err := l.c.Proxy(lp.name)
	if err != nil {
		return fmt.Errorf("read proxy %s (%s): %w", lp.name, lp.link, err)
	}
	if p.Enabled == enabled {
		return nil
	}
	if enabled {
		err = p.Enable()
	} else {
		err = p.Disable()
	}
	if err != nil {
		return fmt.Errorf("set proxy %s (%s) enabled=%v: %w", lp.name, lp.link, enabled, err)
	}
	return nil
}

// undoLocked removes f's toxics and re-enables the proxies it alone
// disabled. It does not touch l.active.
func (l *Links) undoLocked(f *LinkFault) error {
	var errs []error
	for _, t := range f.Toxics {
		p := l.c.NewProxy()
		p.Name = t.Proxy
		if err := p.RemoveToxic(t.Name); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove toxic %s from proxy %s: %w", t.Name, t.Proxy, err))
			l.markStaleToxic(t.Proxy, t.Name)
		}
	}
	for _, k := range f.Disabled {
		l.disabled[k]--
		if l.disabled[k] > 0 {
			continue
		}
		delete(l.disabled, k)
		if err := l.setEnabledLocked(l.proxies[k], true); err != nil {
			errs = append(errs, err)
			if l.staleDisabled == nil {
				l.staleDisabled = map[Link]bool{}
			}
			l.staleDisabled[k] = true
		}
	}
	return errors.Join(errs...)
}

// markStaleToxic notes a toxic of ours whose removal failed.
func (l *Links) markStaleToxic(proxy, name string) {
	if l.staleToxics == nil {
		l.staleToxics = map[string]bool{}
	}
	l.staleToxics[proxy+"/"+name] = true
}

// End ends one active fault: it removes exactly that fault's toxics and
// re-enables the proxies it disabled, unless another active fault also
// refuses them. Ending a fault that is not active (already ended, or
// healed) is an error.
func (l *Links) End(ctx context.Context, f LinkFault) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeLocked()()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, a := range l.active {
		if a.ID == f.ID {
			l.active = append(l.active[:i:i], l.active[i+1:]...)
			if err := l.undoLocked(a); err != nil {
				return fmt.Errorf("faults: end %s fault %d: %w (run Heal)", a.Kind, a.ID, err)
			}
			return nil
		}
	}
	return fmt.Errorf("faults: %s fault %d is not active (ended, or healed)", f.Kind, f.ID)
}

// Active returns the active faults, oldest first.
func (l *Links) Active() []LinkFault {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LinkFault, len(l.active))
	for i, f := range l.active {
		out[i] = f.clone()
	}
	return out
}

// HealReport says what Heal changed.
type HealReport struct {
	Ended   []LinkFault `json:"ended"`   // the faults that were active
	Removed []ToxicRef  `json:"removed"` // every toxic found and removed, whoever added it
	Enabled []Link      `json:"enabled"` // proxies that were disabled and were enabled
	// Foreign lists what Heal undid that no fault of this Links made (a
	// toxic added, a proxy disabled behind its back): tampering, as
	// Audit reports it, found at the last moment.
	Foreign []Tamper `json:"foreign,omitempty"`
}

// Heal ends every fault on this Links' proxies: it asks the Toxiproxy API
// for each proxy's state, removes every toxic found there (including ones
// it did not add) and enables every disabled proxy. It goes on after an
// error and returns all errors; the report lists what it did change, and
// what of that no fault of this Links had made (Foreign).
func (l *Links) Heal(ctx context.Context) (HealReport, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeLocked()()
	var rep HealReport
	want := l.expectedLocked()
	for _, f := range l.active {
		rep.Ended = append(rep.Ended, f.clone())
	}
	l.active = nil
	l.disabled = map[Link]int{}
	stale := l.staleToxics
	l.staleToxics, l.staleDisabled = nil, nil
	var errs []error
	for _, k := range l.order {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		lp := l.proxies[k]
		p, err := l.c.Proxy(lp.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("faults: heal: read proxy %s (%s): %w", lp.name, k, err))
			continue
		}
		for _, t := range p.ActiveToxics {
			ref := ToxicRef{Link: k, Proxy: lp.name, Name: t.Name, Type: t.Type, Stream: t.Stream, Attributes: t.Attributes}
			if _, ours := want.toxics[lp.name+"/"+t.Name]; !ours && !stale[lp.name+"/"+t.Name] {
				rep.Foreign = append(rep.Foreign, Tamper{Link: k, Proxy: lp.name, What: TamperToxicAdded, Toxic: &ref})
			}
			if err := p.RemoveToxic(t.Name); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("faults: heal: remove toxic %s from proxy %s: %w", t.Name, lp.name, err))
				l.markStaleToxic(lp.name, t.Name)
				continue
			}
			rep.Removed = append(rep.Removed, ref)
		}
		if !p.Enabled {
			if !want.disabled[k] && !want.staleDisabled[k] {
				rep.Foreign = append(rep.Foreign, Tamper{Link: k, Proxy: lp.name, What: TamperProxyDisabled})
			}
			if err := p.Enable(); err != nil {
				errs = append(errs, fmt.Errorf("faults: heal: enable proxy %s (%s) on %s: %w", lp.name, k, p.Listen, err))
				continue
			}
			rep.Enabled = append(rep.Enabled, k)
		}
	}
	return rep, errors.Join(errs...)
}
