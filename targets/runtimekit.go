package targets

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// What the runtimes that start nodes of their own (local, docker) share:
// the defaults of their options, the checks of a spec and of a
// LinkMapper's answer, and starting every node at once.

// DefaultRuntimeOptions returns the defaults for the zero fields of
// RuntimeOptions (see RuntimeOptions.WithDefaults): ready within 20 s,
// SIGKILL 5 s after a stop's SIGTERM and 2 s after a close's, status within
// 2 s. A runtime whose nodes start slower raises ReadyTimeout.
func DefaultRuntimeOptions() RuntimeOptions {
	return RuntimeOptions{
		ReadyTimeout: 20 * time.Second,
		StopTimeout:  5 * time.Second,
		CloseGrace:   2 * time.Second,
	}
}

// LogFor returns where a runtime logs the progress of spec's cluster:
// spec.Log, else o.Log, else nowhere. The result is never nil.
func (o RuntimeOptions) LogFor(spec ClusterSpec) func(format string, args ...any) {
	switch {
	case spec.Log != nil:
		return spec.Log
	case o.Log != nil:
		return o.Log
	}
	return func(string, ...any) {}
}

// Check checks what every runtime that starts nodes needs of a spec: a
// system, a run directory, at least one node, and node ids that can name a
// file and appear in --peer ID=ADDR: not empty, not "." or "..", without
// '=', '/', '\\' or white space, not ClientLink (which names the client end
// of a link), each listed once. Its errors are plain (bad input), and say
// what to change.
func (s ClusterSpec) Check() error {
	switch {
	case s.System == "":
		return errors.New("ClusterSpec.System is empty: name the system to run (e.g. raftkv)")
	case s.Dir == "":
		return errors.New("ClusterSpec.Dir is empty: set the run directory that receives nodes/<id>.log")
	case len(s.Nodes) == 0:
		return errors.New("ClusterSpec.Nodes is empty: list at least one node")
	}
	seen := map[string]bool{}
	for _, n := range s.Nodes {
		id := n.ID
		if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "=/\\ \t\r\n") {
			return fmt.Errorf("node id %q is not usable: ids name files and appear in --peer ID=ADDR, so they must be non-empty without '=', '/', '\\' or spaces", id)
		}
		if id == ClientLink {
			return fmt.Errorf("node id %q is reserved (it names the client end of a link): rename the node", id)
		}
		if seen[id] {
			return fmt.Errorf("node id %q is listed twice in ClusterSpec.Nodes: node ids must be unique", id)
		}
		seen[id] = true
	}
	return nil
}

// DirectLinks returns the links of nodes without any proxy, which is what
// a nil LinkMapper (or a nil map from one) means: every node dials its
// peers at their NodeAddrs.Peer, and clients dial NodeAddrs.Client.
func DirectLinks(nodes []NodeAddrs) (peers map[string]map[string]string, clients map[string]string) {
	peers = make(map[string]map[string]string, len(nodes))
	clients = make(map[string]string, len(nodes))
	for _, from := range nodes {
		peers[from.ID] = map[string]string{}
		for _, to := range nodes {
			if to.ID != from.ID {
				peers[from.ID][to.ID] = to.Peer
			}
		}
		clients[from.ID] = from.Client
	}
	return peers, clients
}

// CheckLinks checks a LinkMapper's answer for nodes: an address for every
// directed link between two of them (to a node with a Peer address), and
// for every node's client link. The error names the first link without one.
func CheckLinks(nodes []NodeAddrs, peers map[string]map[string]string, clients map[string]string) error {
	for _, from := range nodes {
		for _, to := range nodes {
			if to.ID != from.ID && to.Peer != "" && peers[from.ID][to.ID] == "" {
				return fmt.Errorf("the LinkMapper gave no address for link %s -> %s: it must map every directed pair", from.ID, to.ID)
			}
		}
		if clients[from.ID] == "" {
			return fmt.Errorf("the LinkMapper gave no client address for node %s: it must map every node", from.ID)
		}
	}
	return nil
}

// StartEach runs start(ctx, i) for every i in [0, n) at once and returns
// each one's error, when all have returned. The first failure cancels the
// context the others run under, so that their waits end early: their
// errors then wrap context.Canceled, and a caller reporting one error
// should prefer a failure of its own.
func StartEach(ctx context.Context, n int, start func(ctx context.Context, i int) error) []error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = start(ctx, i); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	return errs
}

// PickStartError returns the most telling of StartEach's errors, nil when
// all are nil: the first that satisfies prefer[0], else the first that
// satisfies prefer[1], and so on; else the first that does not wrap
// context.Canceled (a failure of its own, not a wait cut short by
// another's); else the first error.
func PickStartError(errs []error, prefer ...func(error) bool) error {
	for _, p := range prefer {
		for _, err := range errs {
			if err != nil && p(err) {
				return err
			}
		}
	}
	var first error
	for _, err := range errs {
		switch {
		case err == nil:
		case !errors.Is(err, context.Canceled):
			return err
		case first == nil:
			first = err
		}
	}
	return first
}

// WaitReady is WaitHTTP for GET http://addr+path with token (if any) sent
// as HTTP basic auth (user TokenUser), as Token.Allows accepts it: the
// readiness probe of an API that requires the run's token. Its errors
// never contain the token: a *NotReadyError names the URL without it.
func WaitReady(ctx context.Context, addr, path string, token Token, timeout time.Duration, exited func(context.Context) error) error {
	u := url.URL{Scheme: "http", Host: addr, Path: path}
	if token == "" {
		return WaitHTTP(ctx, u.String(), timeout, exited)
	}
	shown := u.String()
	u.User = url.UserPassword(TokenUser, string(token))
	err := WaitHTTP(ctx, u.String(), timeout, exited)
	var nr *NotReadyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nr):
		nr.URL = shown
		return nr
	case ctx.Err() != nil:
		return fmt.Errorf("waiting for GET %s to answer 200: %w", shown, ctx.Err())
	}
	return errors.New(strings.ReplaceAll(err.Error(), string(token), "[token]"))
}

// NodeEnv returns env (os.Environ() when nil) without any TokenEnv
// setting, plus TokenEnv=token when token is set: the environment of a
// node process that must require exactly the run's token, whatever the
// parent's environment holds.
func NodeEnv(env []string, token Token) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, TokenEnv+"=") {
			out = append(out, kv)
		}
	}
	if token != "" {
		out = append(out, TokenEnv+"="+string(token))
	}
	return out
}
