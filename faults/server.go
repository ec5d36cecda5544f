// Package faults injects faults into a running cluster.
//
// Each fault kind is a small type whose fields are its parameters
// (PartitionHalves, Latency, Kill, ClockSkew, ...; one file each),
// registered by name in one table (catalog.go) with a constructor that sets
// its defaults; the catalog `faultline faults` shows is derived from those
// types. A kind says what it needs (Available) given an Env: the system,
// the runtime's capabilities and the nodes. A scenario's faults section is
// a Schedule of Specs; Schedule.Validate refuses, before anything starts,
// a spec its target cannot perform, and Schedule.Plan resolves the seeded
// choices. A Nemesis injects a plan into a Target (the cluster, its
// optional capabilities, the system's clock control, the link proxies) and
// records every start and end in the history.
//
// Link faults go through Toxiproxy proxies on every directed link
// (server.go, links.go, linkfaults.go). A ProxyServer is Toxiproxy's own
// server (github.com/Shopify/toxiproxy/v2) running in this process with
// its HTTP API on a loopback port; `faultline proxy` runs the same server
// in a container through ServeProxy. Links talks to any Toxiproxy API
// address, embedded or remote, through Toxiproxy's client package (the
// audit alone sends its own GET /proxies, to bound it with a context): it
// creates one proxy per directed node pair and per client -> node link (it
// is the targets.LinkMapper), and adds and removes named toxics to cut,
// slow down or reset those links.
//
// The Toxiproxy API is a control surface of the run, and a loopback port
// is open to every user of the machine: a server started with a token
// (ServerOptions.Token; NewProxyServer makes a fresh one; `faultline
// proxy` reads ProxyTokenEnv) answers 401 to every request that does not
// carry it, and a Links given the token (LinksOptions.Token) sends it. The
// nemesis also audits the proxies while a run goes (Nemesis.Watch): a
// toxic or a disabled proxy it did not make is recorded as tampering.
package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/rs/zerolog"

	"github.com/faultline/faultline/targets"
)

// ServerOptions configures a Toxiproxy server started by StartProxyServer.
type ServerOptions struct {
	// Listen is the address of the HTTP API, host:port. "" means
	// "127.0.0.1:0" (a free loopback port; read it back with APIAddr).
	Listen string
	// Verbose makes the server log every request, proxy and connection
	// (Toxiproxy's zerolog output, JSON lines) to Log. Off by default: the
	// server is silent.
	Verbose bool
	// Log receives the verbose log; nil means io.Discard.
	Log io.Writer
	// Token, if set, is required by every request to the API (as
	// "Authorization: Bearer TOKEN" or the password of HTTP basic auth, see
	// targets.Token.Allows); others get 401 {"error": TEXT, "status": 401}.
	// "" leaves the API open to anyone who can reach it.
	Token targets.Token
}

// ProxyTokenEnv is the environment variable `faultline proxy` reads its
// token from (ServerOptions.Token): never a flag, so that `ps` does not
// show it.
const ProxyTokenEnv = "FAULTLINE_PROXY_TOKEN"

// ProxyServer is a Toxiproxy v2 server running inside this process. Control
// it through its HTTP API at APIAddr (for example with Links); its methods
// are safe for concurrent use.
type ProxyServer struct {
	api   *toxiproxy.ApiServer
	http  *http.Server
	addr  string
	token targets.Token

	served   chan struct{} // closed when http.Serve has returned
	serveErr error         // Serve's result, readable once served is closed

	closeOnce sync.Once
	closeErr  error
}

// NewProxyServer starts a silent Toxiproxy server with its API on a free
// 127.0.0.1 port behind a fresh token (Token). ctx bounds the start only;
// the server runs until Close. A Links for its APIAddr made in this process
// uses the token by itself (see NewLinks).
func NewProxyServer(ctx context.Context) (*ProxyServer, error) {
	return StartProxyServer(ctx, ServerOptions{Token: targets.NewToken()})
}

// StartProxyServer starts a Toxiproxy server as opts say and returns once its
// API answers. ctx bounds the start only; the server runs until Close.
func StartProxyServer(ctx context.Context, opts ServerOptions) (*ProxyServer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	logger := zerolog.Nop()
	if opts.Verbose {
		w := opts.Log
		if w == nil {
			w = io.Discard
		}
		logger = zerolog.New(w).With().Timestamp().Str("component", "toxiproxy").Logger()
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy API: cannot listen on %s: %w (pick a free address)", listen, err)
	}
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), logger)
	s := &ProxyServer{
		api:    api,
		addr:   ln.Addr().String(),
		token:  opts.Token,
		served: make(chan struct{}),
		// Same limits as toxiproxy's own ApiServer.Listen.
		http: &http.Server{
			Handler:      requireToken(opts.Token, api.Routes()),
			ReadTimeout:  15 * time.Second,
			WriteTimeout: 30 * time.Second,
			IdleTimeout:  60 * time.Second,
		},
	}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr = err
		close(s.served)
	}()
	// The listener is bound, so the API answers; check it once through the
	// client so a broken server fails here and not at the first fault.
	if _, err := newToxiClient(s.addr, s.token).Version(); err != nil {
		s.Close()
		return nil, fmt.Errorf("toxiproxy API at %s does not answer: %w", s.addr, err)
	}
	if s.token != "" {
		embedded.Store(s.addr, s.token)
	}
	return s, nil
}

// embedded maps the API address of every ProxyServer of this process that
// has a token to that token, for NewLinks.
var embedded sync.Map

// requireToken answers 401, in the form Toxiproxy's client decodes, to
// every request that does not carry token; with no token it is h.
func requireToken(token targets.Token, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !token.Allows(r) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Basic realm="faultline toxiproxy"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"error":"this Toxiproxy API requires its run's token (faultline gives it to its own clients)","status":401}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// newToxiClient returns a Toxiproxy client for the API at endpoint
// (host:port or an http:// URL) that sends token, if any, as HTTP basic
// auth: Toxiproxy's client takes no http.Client, but net/http sends the
// user info of a request's URL, and strips the password from its errors.
func newToxiClient(endpoint string, token targets.Token) *toxiclient.Client {
	if token == "" {
		return toxiclient.NewClient(endpoint)
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		endpoint = "http://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return toxiclient.NewClient(endpoint) // its requests fail and say why
	}
	u.User = url.UserPassword(targets.TokenUser, string(token))
	return toxiclient.NewClient(u.String())
}

// APIAddr returns the host:port of the server's HTTP API (the address to
// give NewLinks).
func (s *ProxyServer) APIAddr() string { return s.addr }

// Token returns the token the API requires ("" when it is open); give it
// to a Links as LinksOptions.Token.
func (s *ProxyServer) Token() targets.Token { return s.token }

// Close deletes every proxy on the server (removing their toxics first, so
// no held data or goroutine outlives them), which closes every proxy
// listener and proxied connection, then stops the HTTP API. It returns the
// first error met but always does all of it. Safe to call more than once;
// later calls return the first call's result.
func (s *ProxyServer) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *ProxyServer) close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	select {
	case <-s.served:
		// The API is gone, so the client cannot reach the proxies: stop
		// them directly as the last resort.
		keep(s.api.Collection.Clear())
	default:
		keep(removeAllProxies(newToxiClient(s.addr, s.token)))
	}
	embedded.CompareAndDelete(s.addr, s.token)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		keep(fmt.Errorf("toxiproxy API shutdown: %w", err))
		keep(s.http.Close())
	}
	<-s.served
	keep(s.serveErr)
	// Whatever the API could not remove (it failed half way) must not keep
	// a port open.
	keep(s.api.Collection.Clear())
	return first
}

// removeAllProxies removes every toxic of every proxy, then every proxy.
func removeAllProxies(c *toxiclient.Client) error {
	proxies, err := c.Proxies()
	if err != nil {
		return fmt.Errorf("toxiproxy: list proxies: %w", err)
	}
	var first error
	for name, p := range proxies {
		for _, t := range p.ActiveToxics {
			if err := p.RemoveToxic(t.Name); err != nil && first == nil {
				first = fmt.Errorf("toxiproxy: remove toxic %s from proxy %s: %w", t.Name, name, err)
			}
		}
		if err := p.Delete(); err != nil && first == nil {
			first = fmt.Errorf("toxiproxy: delete proxy %s: %w", name, err)
		}
	}
	return first
}

// ServeProxy runs a Toxiproxy server with its API on apiListenAddr (for
// example ":8474" in a container), open to whoever reaches it, until ctx
// is cancelled, then deletes every proxy and stops. It returns nil after a
// clean stop and an error if the server cannot start or stop cleanly.
func ServeProxy(ctx context.Context, apiListenAddr string) error {
	return ServeProxyWith(ctx, ServerOptions{Listen: apiListenAddr})
}

// ServeProxyWith is ServeProxy with every server option (a token, verbose
// logging). This is `faultline proxy`.
func ServeProxyWith(ctx context.Context, opts ServerOptions) error {
	s, err := StartProxyServer(ctx, opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return s.Close()
	case <-s.served:
		// The API stopped by itself; release the proxies and say why.
		err := s.serveErr
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = errors.New("toxiproxy API stopped unexpectedly")
		}
		return err
	}
}
