package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/faultline/faultline/targets"
)

// ClientID is the From of every client -> node link: the load generator and
// the final reads, as opposed to a node. No node may have this id.
const ClientID = "client"

// Link is one directed link: the connections that From opens to To. From is
// a node id, or ClientID for the link clients use to reach node To. One
// Toxiproxy proxy carries each link, both ways: To's answers to From travel
// back over the same connections.
type Link struct {
	From, To string
}

// String returns "from->to".
func (l Link) String() string { return l.From + "->" + l.To }

// IsClient reports whether l is a client -> node link.
func (l Link) IsClient() bool { return l.From == ClientID }

// LinksOptions says where proxies listen and how their addresses are reached.
// The zero value suits the local runtime: every proxy listens on a free
// 127.0.0.1 port that nodes and clients dial directly.
type LinksOptions struct {
	// Prefix starts every proxy name, so that several Links (runs) can share
	// one Toxiproxy server; it must be unique among them. Names are
	// Prefix + From + "_to_" + To, e.g. "n1_to_n2", "client_to_n3".
	Prefix string
	// ListenHost is the host every proxy listens on, on a free port; ""
	// means 127.0.0.1. In a container use 0.0.0.0.
	ListenHost string
	// Listen, if set, chooses the listen address (host:port, port 0 = any
	// free port) of the proxy for each link, overriding ListenHost; use it
	// when ports must be known beforehand (published container ports).
	Listen func(l Link) string
	// Upstream, if set, maps a node's address as MapLinks receives it
	// (NodeAddrs.Peer, or NodeAddrs.Client for a client link) to the address
	// the Toxiproxy server must dial to reach it, e.g. a container's name on
	// the Docker network. nil keeps the address.
	Upstream func(l Link, nodeAddr string) string
	// Dial, if set, maps the address a proxy really listens on, as the
	// Toxiproxy API reports it, to the address l.From must dial to reach the
	// proxy (a node for peer links, faultline for client links): e.g. the
	// proxy container's name and the same port for nodes, a published host
	// port for clients. nil means the listen address itself, with an
	// unspecified host (0.0.0.0, ::) replaced by 127.0.0.1.
	Dial func(l Link, listen string) (string, error)
	// NoClientLinks leaves client -> node links unproxied: MapLinks then
	// returns each node's own client address for clients.
	NoClientLinks bool
	// Token is what the Toxiproxy API requires (ProxyServer.Token,
	// targets.ProxyPlacement.Token), sent with every request; "" sends
	// none, unless the API is a ProxyServer of this process (see NewLinks).
	Token targets.Token
}

// linkProxy is one proxy Links created.
type linkProxy struct {
	link     Link
	name     string // Toxiproxy proxy name
	listen   string // as the API reported it
	dial     string // what From dials
	upstream string
}

// Links puts a Toxiproxy proxy on every directed link of a cluster and
// injects link faults into them. It works against any Toxiproxy v2 API
// address (a ProxyServer in this process, or `faultline proxy` in a
// container), only through Toxiproxy's client package.
//
// Links implements targets.LinkMapper. Its methods are safe for concurrent
// use; fault changes are serialized. Toxiproxy's client cannot be cancelled,
// so a context passed to a method is checked between API calls, and each
// call is bounded by the client's own 30 s timeout. Audit is the
// exception: it never waits for a fault change, and its one request ends
// with its context (see Audit).
type Links struct {
	api  string
	c    *toxiclient.Client
	opts LinksOptions

	mu       sync.Mutex
	mapped   bool
	closed   bool
	nodes    []string // in MapLinks order
	proxies  map[Link]*linkProxy
	order    []Link // creation order: peer links, then client links
	nextID   int
	active   []*LinkFault
	disabled map[Link]int // active refuse faults per link

	// What faults left behind when undoing them failed: toxics (by proxy
	// and name) and disabled proxies that may still be there, so that an
	// audit does not take them for tampering.
	staleToxics   map[string]bool
	staleDisabled map[Link]bool

	audit auditState // what Audit reads (never mu)
}

var _ targets.LinkMapper = (*Links)(nil)

// NewLinks returns a Links that drives the Toxiproxy API at apiAddr
// (host:port or an http:// URL), sending opts.Token with every request.
// Without opts.Token, when apiAddr is the APIAddr of a ProxyServer running
// in this process, it sends that server's token: the secret never leaves
// the process. It makes no call until MapLinks.
func NewLinks(apiAddr string, opts LinksOptions) *Links {
	if opts.Token == "" {
		if t, ok := embedded.Load(apiAddr); ok {
			opts.Token = t.(targets.Token)
		}
	}
	return &Links{
		api:      apiAddr,
		c:        newToxiClient(apiAddr, opts.Token),
		opts:     opts,
		proxies:  map[Link]*linkProxy{},
		disabled: map[Link]int{},
	}
}

// APIAddr returns the Toxiproxy API address this Links drives.
func (l *Links) APIAddr() string { return l.api }

func (l *Links) proxyName(k Link) string { return l.opts.Prefix + k.From + "_to_" + k.To }

// validID accepts ids that are safe in a proxy name and an API URL path.
func validID(id string) error {
	if id == "" {
		return errors.New("node id is empty")
	}
	if id == ClientID {
		return fmt.Errorf("node id %q is reserved for client links; rename the node", id)
	}
	for _, r := range id {
		ok := r == '-' || r == '.' || r == '_' ||
			(r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return fmt.Errorf("node id %q: only letters, digits, '-', '.' and '_' can name a proxy", id)
		}
	}
	return nil
}

// MapLinks creates one proxy per directed pair of nodes a -> b (upstream:
// b's Peer address; skipped when b has none) and, unless NoClientLinks, one
// per client -> node link (upstream: the node's Client address), and returns
// the addresses to dial: peers[from][to] and clients[id]. Every node gets a
// peers entry, empty when no peer has a Peer address.
//
// MapLinks succeeds at most once per Links. If it fails, it deletes the
// proxies it made and may be called again. A proxy name already taken on the
// server is an error (set a unique Prefix, or delete the stale proxy).
func (l *Links) MapLinks(ctx context.Context, nodes []targets.NodeAddrs) (peers map[string]map[string]string, clients map[string]string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.changeLocked()()
	if l.mapped {
		return nil, nil, errors.New("faults: MapLinks called twice on one Links; make a new Links per cluster")
	}
	if l.closed {
		return nil, nil, errors.New("faults: MapLinks on a closed Links")
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if err := validID(n.ID); err != nil {
			return nil, nil, fmt.Errorf("faults: %w", err)
		}
		if seen[n.ID] {
			return nil, nil, fmt.Errorf("faults: node id %q appears twice; node ids must be unique", n.ID)
		}
		seen[n.ID] = true
		if !l.opts.NoClientLinks && n.Client == "" {
			return nil, nil, fmt.Errorf("faults: node %s has no client address to proxy", n.ID)
		}
	}
	l.mapped = true
	defer func() {
		if err != nil {
			// Leave nothing behind, so that MapLinks can be tried again.
			if derr := l.deleteProxiesLocked(); derr != nil {
				err = fmt.Errorf("%w; deleting the proxies made so far also failed: %v", err, derr)
			}
			l.mapped = false
		}
	}()

	peers = make(map[string]map[string]string, len(nodes))
	clients = make(map[string]string, len(nodes))
	for _, from := range nodes {
		l.nodes = append(l.nodes, from.ID)
		peers[from.ID] = map[string]string{}
		for _, to := range nodes {
			if to.ID == from.ID || to.Peer == "" {
				continue
			}
			p, err := l.createLocked(ctx, Link{from.ID, to.ID}, to.Peer)
			if err != nil {
				return nil, nil, err
			}
			peers[from.ID][to.ID] = p.dial
		}
	}
	for _, n := range nodes {
		if l.opts.NoClientLinks {
			clients[n.ID] = n.Client
			continue
		}
		p, err := l.createLocked(ctx, Link{ClientID, n.ID}, n.Client)
		if err != nil {
			return nil, nil, err
		}
		clients[n.ID] = p.dial
	}
	return peers, clients, nil
}

func (l *Links) createLocked(ctx context.Context, k Link, nodeAddr string) (*linkProxy, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("faults: creating proxy for %s: %w", k, err)
	}
	listen := net.JoinHostPort(orDefault(l.opts.ListenHost, "127.0.0.1"), "0")
	if l.opts.Listen != nil {
		listen = l.opts.Listen(k)
	}
	upstream := nodeAddr
	if l.opts.Upstream != nil {
		upstream = l.opts.Upstream(k, nodeAddr)
	}
	name := l.proxyName(k)
	p, err := l.c.CreateProxy(name, listen, upstream)
	if err != nil {
		return nil, fmt.Errorf("faults: create proxy %s (%s, listen %s, upstream %s) on toxiproxy %s: %w",
			name, k, listen, upstream, l.api, err)
	}
	lp := &linkProxy{link: k, name: name, listen: p.Listen, upstream: upstream}
	l.proxies[k] = lp
	l.order = append(l.order, k)
	if l.opts.Dial != nil {
		lp.dial, err = l.opts.Dial(k, p.Listen)
		if err != nil {
			return nil, fmt.Errorf("faults: dial address for %s (proxy listens on %s): %w", k, p.Listen, err)
		}
	} else {
		lp.dial, err = loopbackDial(p.Listen)
		if err != nil {
			return nil, fmt.Errorf("faults: proxy %s reports listen address %q: %w", name, p.Listen, err)
		}
	}
	return lp, nil
}

// loopbackDial is the default Dial: the listen address, with an unspecified
// host replaced by 127.0.0.1.
func loopbackDial(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// deleteProxiesLocked removes this Links' toxics and proxies from the server.
func (l *Links) deleteProxiesLocked() error {
	var errs []error
	for _, k := range l.order {
		lp := l.proxies[k]
		p, err := l.c.Proxy(lp.name)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			errs = append(errs, fmt.Errorf("faults: read proxy %s: %w", lp.name, err))
			continue
		}
		// Remove toxics before the proxy: a held chunk would otherwise keep
		// its goroutines alive for the hold time.
		for _, t := range p.ActiveToxics {
			if err := p.RemoveToxic(t.Name); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("faults: remove toxic %s from %s: %w", t.Name, lp.name, err))
			}
		}
		if err := p.Delete(); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("faults: delete proxy %s: %w", lp.name, err))
		}
	}
	l.proxies = map[Link]*linkProxy{}
	l.order = nil
	l.nodes = nil
	l.active = nil
	l.disabled = map[Link]int{}
	l.staleToxics, l.staleDisabled = nil, nil
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var ae *toxiclient.ApiError
	return errors.As(err, &ae) && ae.Status == 404
}

// Close removes every toxic and every proxy this Links created, closing
// their listeners and connections. Other proxies on the server are left
// alone. Safe to call more than once; it does not stop the server.
func (l *Links) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	defer l.changeLocked()()
	l.closed = true
	return l.deleteProxiesLocked()
}

// Nodes returns the node ids MapLinks received, in its order.
func (l *Links) Nodes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.nodes...)
}

// All returns every proxied link: node -> node links first, then
// client -> node links, in creation order.
func (l *Links) All() []Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Link(nil), l.order...)
}

// PeerLinks returns every proxied node -> node link.
func (l *Links) PeerLinks() []Link {
	return filterLinks(l.All(), func(k Link) bool { return !k.IsClient() })
}

// ClientLinks returns every proxied client -> node link.
func (l *Links) ClientLinks() []Link { return filterLinks(l.All(), Link.IsClient) }

// Touching returns every proxied node -> node link from or to node id (both
// directions), plus client -> id if withClient.
func (l *Links) Touching(id string, withClient bool) []Link {
	return filterLinks(l.All(), func(k Link) bool {
		if k.IsClient() {
			return withClient && k.To == id
		}
		return k.From == id || k.To == id
	})
}

// Between returns the proxied links a -> b and b -> a.
func (l *Links) Between(a, b string) []Link {
	return filterLinks(l.All(), func(k Link) bool {
		return (k.From == a && k.To == b) || (k.From == b && k.To == a)
	})
}

func filterLinks(in []Link, keep func(Link) bool) []Link {
	var out []Link
	for _, k := range in {
		if keep(k) {
			out = append(out, k)
		}
	}
	return out
}

// ProxyAddr returns the address l.From dials to cross link k, as MapLinks
// returned it.
func (l *Links) ProxyAddr(k Link) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lp, ok := l.proxies[k]
	if !ok {
		return "", false
	}
	return lp.dial, true
}

// LinkState is one proxy as the Toxiproxy API reports it.
type LinkState struct {
	Link     Link
	Proxy    string // proxy name
	Listen   string // where the proxy listens (the server's view)
	Upstream string
	Enabled  bool
	Toxics   []toxiclient.Toxic
}

// Inspect asks the Toxiproxy API for the state of every proxy this Links
// created, in creation order. Use it to verify that a heal left no toxic.
func (l *Links) Inspect(ctx context.Context) ([]LinkState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := l.c.Proxies()
	if err != nil {
		return nil, fmt.Errorf("faults: list proxies on toxiproxy %s: %w", l.api, err)
	}
	out := make([]LinkState, 0, len(l.order))
	for _, k := range l.order {
		lp := l.proxies[k]
		p, ok := all[lp.name]
		if !ok {
			return out, fmt.Errorf("faults: proxy %s for %s is gone from toxiproxy %s (deleted by someone else?)", lp.name, k, l.api)
		}
		ts := append([]toxiclient.Toxic(nil), p.ActiveToxics...)
		sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
		out = append(out, LinkState{Link: k, Proxy: lp.name, Listen: p.Listen, Upstream: p.Upstream, Enabled: p.Enabled, Toxics: ts})
	}
	return out, nil
}

// linkList renders links for error messages and logs.
func linkList(ks []Link) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.String()
	}
	return strings.Join(s, " ")
}
