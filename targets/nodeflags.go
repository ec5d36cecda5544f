package targets

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// NodeFlags are the flags of `faultline node`, defined once for the CLI and
// for any program that runs nodes itself (a test binary serving a system
// registered in a _test package).
type NodeFlags struct {
	cfg                    NodeConfig
	peers, peerRoles, opts []string
}

// Register defines the flags on fs.
func (f *NodeFlags) Register(fs *pflag.FlagSet) {
	c := &f.cfg
	fs.StringVar(&c.System, "system", "", "system to run")
	fs.StringVar(&c.ID, "id", "", "this node's id")
	fs.StringVar(&c.Role, "role", "", "this node's role (default: the system's first)")
	fs.StringVar(&c.Listen, "listen", "", "client API listen address")
	fs.StringVar(&c.Admin, "admin", "", "admin API listen address (HTTP; faults never cut it)")
	fs.StringVar(&c.PeerListen, "peer-listen", "", "replication listen address")
	fs.StringArrayVar(&f.peers, "peer", nil, "a peer as ID=HOST:PORT, the address this node dials to reach it (repeatable)")
	fs.StringArrayVar(&f.peerRoles, "peer-role", nil, "a peer's role as ID=ROLE (repeatable)")
	fs.StringVar(&c.DataDir, "data", "", "data directory (survives restarts)")
	fs.StringArrayVar(&c.Bugs, "bug", nil, "bug switch that breaks one guarantee on purpose (repeatable)")
	fs.StringArrayVar(&f.opts, "opt", nil, "system tunable as KEY=VALUE (repeatable)")
}

// Config returns the parsed configuration: required flags present,
// KEY=VALUE lists well formed, the system known.
func (f *NodeFlags) Config() (NodeConfig, error) {
	c := f.cfg
	var err error
	if c.Peers, err = parseKV(f.peers, "--peer", "ID=HOST:PORT"); err != nil {
		return c, err
	}
	if c.PeerRoles, err = parseKV(f.peerRoles, "--peer-role", "ID=ROLE"); err != nil {
		return c, err
	}
	if c.Opts, err = parseKV(f.opts, "--opt", "KEY=VALUE"); err != nil {
		return c, err
	}
	for _, r := range []struct{ flag, v string }{{"--system", c.System}, {"--id", c.ID}, {"--listen", c.Listen}, {"--admin", c.Admin}, {"--data", c.DataDir}} {
		if r.v == "" {
			return c, fmt.Errorf("node: %s is required", r.flag)
		}
	}
	if _, err := LookupSystem(c.System); err != nil {
		return c, err
	}
	return c, nil
}

func parseKV(items []string, flag, form string) (map[string]string, error) {
	m := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%s %q: want %s", flag, it, form)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s %s given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

// NodeMain runs `node ARGS...` when args (os.Args) ask for it and reports
// whether they did; a test binary calls it first thing in TestMain so the
// local runtime can run it as the nodes of a system registered in a test:
//
//	if code, ok := targets.NodeMain(os.Args); ok { os.Exit(code) }
//
// It runs the node until SIGTERM or SIGINT and returns 0, 64 for bad flags
// or 70 when the node fails.
func NodeMain(args []string) (code int, ran bool) {
	if len(args) < 2 || args[1] != "node" {
		return 0, false
	}
	var f NodeFlags
	fs := pflag.NewFlagSet("node", pflag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 64, true
	}
	cfg, err := f.Config()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 64, true
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := RunNode(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "node %s: %v\n", cfg.ID, err)
		return 70, true
	}
	return 0, true
}
