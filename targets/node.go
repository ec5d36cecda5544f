package targets

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// NodeConfig is what `faultline node` passes to a reference system. Flags:
//
//	faultline node --system NAME --id ID --listen ADDR --admin ADDR
//	               [--peer-listen ADDR] [--peer ID=ADDR]... --data DIR
//	               [--bug NAME]... [--opt KEY=VALUE]...
type NodeConfig struct {
	System     string
	ID         string
	Listen     string            // client API listen address (HTTP)
	Admin      string            // admin API listen address (HTTP); faults never touch it
	PeerListen string            // replication listen address, if the system has one
	Peers      map[string]string // peer id -> address this node dials to reach it (maybe a proxy)
	DataDir    string            // survives restarts; created if missing
	Bugs       []string          // bug switches that break one guarantee on purpose
	Opts       map[string]string // system-specific tunables (e.g. election timeouts)
	// Ready, if set, is called once the node serves its client and admin APIs.
	Ready func()
}

// System is a reference system that `faultline node` can run.
type System struct {
	Name        string
	Description string
	Bugs        map[string]string // bug name -> what guarantee it breaks
	// Run serves the node until ctx is cancelled (graceful stop) and returns
	// nil then; it returns an error if the node cannot start or fails.
	Run func(ctx context.Context, cfg NodeConfig) error
}

var (
	sysMu   sync.RWMutex
	systems = map[string]System{}
)

// RegisterSystem makes a system available to `faultline node`. It panics if
// the name is taken (a programming error). Call it from an init function.
func RegisterSystem(s System) {
	sysMu.Lock()
	defer sysMu.Unlock()
	if _, dup := systems[s.Name]; dup {
		panic("targets: system registered twice: " + s.Name)
	}
	systems[s.Name] = s
}

// LookupSystem returns the named system.
func LookupSystem(name string) (System, error) {
	sysMu.RLock()
	defer sysMu.RUnlock()
	s, ok := systems[name]
	if !ok {
		return System{}, fmt.Errorf("unknown system %q (known: %v)", name, systemNamesLocked())
	}
	return s, nil
}

// Systems returns every registered system, sorted by name.
func Systems() []System {
	sysMu.RLock()
	defer sysMu.RUnlock()
	out := make([]System, 0, len(systems))
	for _, s := range systems {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func systemNamesLocked() []string {
	var names []string
	for n := range systems {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RunNode runs cfg.System until ctx is cancelled, checking the bug switches.
func RunNode(ctx context.Context, cfg NodeConfig) error {
	s, err := LookupSystem(cfg.System)
	if err != nil {
		return err
	}
	for _, b := range cfg.Bugs {
		if _, ok := s.Bugs[b]; !ok {
			return fmt.Errorf("system %s has no bug switch %q (it has: %v)", s.Name, b, sortedBugNames(s))
		}
	}
	return s.Run(ctx, cfg)
}

func sortedBugNames(s System) []string {
	var out []string
	for b := range s.Bugs {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

var (
	rtMu     sync.RWMutex
	runtimes = map[string]func() Runtime{}
)

// RegisterRuntime makes a runtime available by name (local, docker, ...).
// newRuntime returns one with default options. It panics if the name is
// taken (a programming error). Call it from an init function; a program
// gets a runtime by importing its package.
func RegisterRuntime(name string, newRuntime func() Runtime) {
	rtMu.Lock()
	defer rtMu.Unlock()
	if _, dup := runtimes[name]; dup {
		panic("targets: runtime registered twice: " + name)
	}
	runtimes[name] = newRuntime
}

// NewRuntime returns the named runtime with default options.
func NewRuntime(name string) (Runtime, error) {
	rtMu.RLock()
	defer rtMu.RUnlock()
	f, ok := runtimes[name]
	if !ok {
		var names []string
		for n := range runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("runtime %q is not available in this build (available: %v)", name, names)
	}
	return f(), nil
}
