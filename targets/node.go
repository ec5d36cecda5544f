package targets

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/internal/registry"
)

// NodeConfig is what `faultline node` passes to a reference system. Flags:
//
//	faultline node --system NAME --id ID [--role ROLE] --listen ADDR --admin ADDR
//	               [--peer-listen ADDR] [--peer ID=ADDR]... [--peer-role ID=ROLE]...
//	               --data DIR [--bug NAME]... [--opt KEY=VALUE]...
type NodeConfig struct {
	System     string
	ID         string
	Role       string            // the node's role; "" means the system's first role
	Listen     string            // client API listen address
	Admin      string            // admin API listen address (HTTP); faults never touch it
	PeerListen string            // replication listen address, if the system has one
	Peers      map[string]string // peer id -> address this node dials to reach it (maybe a proxy)
	PeerRoles  map[string]string // peer id -> its role (multi-role systems)
	DataDir    string            // survives restarts; created if missing
	Bugs       []string          // bug switches that break one guarantee on purpose
	Opts       map[string]string // system-specific tunables (e.g. election timeouts)
	// Token, if set, is required by the node's client and admin APIs (see
	// Token.Allows); "" leaves them open. RunNode takes it from the
	// environment (TokenEnv) when it is empty: it is never a flag, so that
	// `ps` does not show it.
	Token Token
	// Ready, if set, is called once the node serves its client and admin APIs.
	Ready func()
}

// Role is one kind of node of a system (replica; primary and backup;
// frontend and backend; coordinator and participant).
type Role struct {
	Name string
	Doc  string
	// Nodes is the default count of nodes of this role.
	Nodes int
	// Min and Max bound the count (0: no bound beyond 0..MaxNodes).
	Min, Max int
	// Serves is true for the roles whose nodes take the workload's
	// operations. When no role of a system says so, every role does.
	Serves bool
	// ServiceTime is true for the roles whose nodes have a service time
	// that System.SetServiceTime sets (the service-time fault acts on
	// them only).
	ServiceTime bool
}

// Option is one system tunable, passed to nodes as --opt NAME=VALUE.
type Option struct {
	Name    string
	Default string
	Doc     string
	// Secret marks a credential (a client adapter's password): a scenario
	// may give it as NAME_env, the name of an environment variable, and a
	// saved scenario shows its value as Redacted (see Secret).
	Secret bool
}

// MaxNodes is the most nodes one cluster may have, over all roles.
const MaxNodes = 15

// System is a reference system (or another kind of target) that
// `faultline node` can run and a scenario can name. It is a struct of
// funcs, as porcupine.Model is: a nil func is a capability the system does
// not have.
type System struct {
	Name        string
	Description string
	// Roles lists the system's kinds of node; at least one. With one role,
	// node ids are n1..nN; with several, ROLE1..ROLEN per role.
	Roles []Role
	// Bugs maps each bug switch to the guarantee it breaks.
	Bugs map[string]string
	// Options lists the accepted tunables with their defaults.
	Options []Option
	// CheckOptions, if set, checks option values (names are checked
	// against Options already) and says what is wrong with the first bad
	// one. It runs at validation, before anything starts, and in the node.
	CheckOptions func(opts map[string]string) error

	// Client is the default client adapter (e.g. "http"); Workload the
	// default workload (e.g. "register"); Checkers the default checkers.
	Client   string
	Workload string
	Checkers []string
	// PeerLinks is true when the system's nodes dial their peers at the
	// addresses given with --peer, so a proxy can sit on every directed
	// peer link.
	PeerLinks bool
	// PeerNames is true when the system's nodes find their peers by host
	// names that are the same for every node (a process target with
	// peers: names): a proxy can take over each directed peer link only on
	// a runtime with Capabilities.PeerNames.
	PeerNames bool

	// Status, if set, reads a node's status on a path faults never cut (the
	// node kit's GET /admin/status).
	Status func(ctx context.Context, n NodeInfo) (Status, error)
	// SetClock, if set, sets a node's clock to c (the zero Clock resets
	// it to the wall clock); the node counts the drift from this call.
	SetClock func(ctx context.Context, n NodeInfo, c Clock) error
	// LocalRead, if set, reads key from the node's own state, bypassing
	// replication; absent keys give JSON null.
	LocalRead func(ctx context.Context, n NodeInfo, key string) (json.RawMessage, error)
	// SetServiceTime, if set, sets the service time of node n (of a role
	// with Role.ServiceTime) to *d, the time each request it serves takes
	// from then on; a nil d restores the value the node was started with.
	SetServiceTime func(ctx context.Context, n NodeInfo, d *time.Duration) error

	// Run serves the node until ctx is cancelled (graceful stop) and returns
	// nil then; it returns an error if the node cannot start or fails.
	Run func(ctx context.Context, cfg NodeConfig) error
}

// Role returns the named role, or the first role for "".
func (s *System) Role(name string) (Role, bool) {
	if name == "" && len(s.Roles) > 0 {
		return s.Roles[0], true
	}
	for _, r := range s.Roles {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// Serving reports whether nodes of role name take the workload's operations.
func (s *System) Serving(name string) bool {
	any := false
	for _, r := range s.Roles {
		if r.Serves {
			any = true
			if r.Name == name {
				return true
			}
		}
	}
	return !any
}

// RoleNames returns the names of the system's roles, in declared order.
func (s *System) RoleNames() []string {
	out := make([]string, len(s.Roles))
	for i, r := range s.Roles {
		out[i] = r.Name
	}
	return out
}

// BugNames returns the bug switches, sorted.
func (s *System) BugNames() []string { return slices.Sorted(maps.Keys(s.Bugs)) }

// OptionNames returns the names of the tunables, sorted.
func (s *System) OptionNames() []string {
	out := make([]string, len(s.Options))
	for i, o := range s.Options {
		out[i] = o.Name
	}
	sort.Strings(out)
	return out
}

// CheckBug returns an error naming the known switches if b is not one.
func (s *System) CheckBug(b string) error {
	if _, ok := s.Bugs[b]; !ok {
		known := "it has none"
		if len(s.Bugs) > 0 {
			known = "known: " + strings.Join(s.BugNames(), ", ")
		}
		return fmt.Errorf("system %s has no bug switch %q (%s)", s.Name, b, known)
	}
	return nil
}

// CheckOption returns an error naming the known options if name is not one.
func (s *System) CheckOption(name string) error {
	for _, o := range s.Options {
		if o.Name == name {
			return nil
		}
	}
	known := "it has none"
	if len(s.Options) > 0 {
		known = "known: " + strings.Join(s.OptionNames(), ", ")
	}
	return fmt.Errorf("system %s has no option %q (%s)", s.Name, name, known)
}

// NodeIDs returns the ids of a cluster of the given role counts (in the
// system's role order): n1..nN for a single-role system, ROLE1..ROLEN per
// role otherwise.
func (s *System) NodeIDs(counts map[string]int) []NodeSpec {
	var out []NodeSpec
	for _, r := range s.Roles {
		for i := 1; i <= counts[r.Name]; i++ {
			id := fmt.Sprintf("n%d", len(out)+1)
			if len(s.Roles) > 1 {
				id = fmt.Sprintf("%s%d", r.Name, i)
			}
			out = append(out, NodeSpec{ID: id, Role: r.Name})
		}
	}
	return out
}

var systems = registry.New[*System]("system")

// RegisterSystem makes a system available by name. It panics if the name is
// taken or the system has no Run or no role (programming errors). Call it
// from an init function; a program gets a system by importing its package.
func RegisterSystem(s System) {
	if s.Run == nil || len(s.Roles) == 0 {
		panic("targets: system " + s.Name + " needs Run and at least one role")
	}
	systems.Add(s.Name, &s)
}

// LookupSystem returns the named system.
func LookupSystem(name string) (*System, error) { return systems.Get(name) }

// Systems returns every registered system, sorted by name.
func Systems() []*System { return systems.All() }

// CheckNodeConfig checks a node's role, bug switches and options against
// its system, as RunNode does before running it.
func (s *System) CheckNodeConfig(cfg NodeConfig) error {
	if _, ok := s.Role(cfg.Role); !ok {
		return fmt.Errorf("system %s has no role %q (roles: %s)", s.Name, cfg.Role, strings.Join(s.RoleNames(), ", "))
	}
	for _, b := range cfg.Bugs {
		if err := s.CheckBug(b); err != nil {
			return err
		}
	}
	for k := range cfg.Opts {
		if err := s.CheckOption(k); err != nil {
			return err
		}
	}
	if s.CheckOptions != nil {
		if err := s.CheckOptions(cfg.Opts); err != nil {
			return err
		}
	}
	return nil
}

// RunNode runs cfg.System until ctx is cancelled, after checking the role,
// bug switches and options.
func RunNode(ctx context.Context, cfg NodeConfig) error {
	s, err := LookupSystem(cfg.System)
	if err != nil {
		return err
	}
	if err := s.CheckNodeConfig(cfg); err != nil {
		return err
	}
	if cfg.Role == "" {
		cfg.Role = s.Roles[0].Name
	}
	if cfg.Token == "" {
		cfg.Token = Token(os.Getenv(TokenEnv))
	}
	return s.Run(ctx, cfg)
}

// TokenEnv is the environment variable that gives a node of faultline's
// own its run's token (see NodeConfig.Token). Runtimes set it; a node
// started by hand without it serves open APIs.
const TokenEnv = "FAULTLINE_NODE_TOKEN"

// Token is a run's secret: whoever holds it may use the control surfaces
// of the run (its nodes' client and admin APIs, its Toxiproxy API). Its
// String method hides it, so printing a value that holds one (%v, %+v)
// does not reveal it; send it with SetOn, or string(t).
type Token string

// NewToken returns a fresh random token (128 bits from crypto/rand).
func NewToken() Token { return Token(rand.Text()) }

// String returns "" for no token and "[token]" otherwise, never the secret.
func (t Token) String() string {
	if t == "" {
		return ""
	}
	return "[token]"
}

// GoString is String, for %#v.
func (t Token) GoString() string { return t.String() }

// TokenUser is the user name sent with a token in HTTP basic auth (the
// Toxiproxy client can send a token only that way, in its URL).
const TokenUser = "faultline"

// SetOn makes req carry t as "Authorization: Bearer T"; it does nothing
// when t is "".
func (t Token) SetOn(req *http.Request) {
	if t != "" {
		req.Header.Set("Authorization", "Bearer "+string(t))
	}
}

// Allows reports whether r may use an API that requires t: always when t
// is "", else when r carries t as "Authorization: Bearer T" or as the
// password of HTTP basic auth (any user name). The comparison takes
// constant time.
func (t Token) Allows(r *http.Request) bool {
	if t == "" {
		return true
	}
	got := ""
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") {
		got = strings.TrimSpace(auth[7:])
	} else if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(t)) == 1
}

// NodeArgs returns the arguments after the binary that start node n of
// spec (`node --system ... --data DATA ...`): listen addresses from a,
// peer addresses from peers (the address n dials for each other node),
// and the data directory as the node sees it. Every runtime that runs
// faultline's own nodes builds its command line here.
func NodeArgs(spec ClusterSpec, n NodeSpec, a NodeAddrs, peers map[string]string, data string) []string {
	argv := []string{"node", "--system", spec.System, "--id", n.ID}
	if n.Role != "" {
		argv = append(argv, "--role", n.Role)
	}
	argv = append(argv, "--listen", a.Client, "--admin", a.Admin)
	if a.Peer != "" {
		argv = append(argv, "--peer-listen", a.Peer)
	}
	for _, other := range spec.Nodes {
		if other.ID == n.ID {
			continue
		}
		if addr := peers[other.ID]; addr != "" {
			argv = append(argv, "--peer", other.ID+"="+addr)
		}
		if other.Role != "" {
			argv = append(argv, "--peer-role", other.ID+"="+other.Role)
		}
	}
	argv = append(argv, "--data", data)
	for _, b := range n.Bugs {
		argv = append(argv, "--bug", b)
	}
	for _, k := range slices.Sorted(maps.Keys(n.Opts)) {
		argv = append(argv, "--opt", k+"="+n.Opts[k])
	}
	return argv
}

var runtimes = registry.New[func() Runtime]("runtime")

// RegisterRuntime makes a runtime available by name (local, docker, ...).
// newRuntime returns one with default options. It panics if the name is
// taken (a programming error). Call it from an init function; a program
// gets a runtime by importing its package.
func RegisterRuntime(name string, newRuntime func() Runtime) { runtimes.Add(name, newRuntime) }

// NewRuntime returns the named runtime with default options.
func NewRuntime(name string) (Runtime, error) {
	f, err := runtimes.Get(name)
	if err != nil {
		return nil, err
	}
	return f(), nil
}

// RuntimeNames returns the registered runtimes, sorted.
func RuntimeNames() []string { return runtimes.Names() }

// Clock is what a clock fault sets on a node (System.SetClock): from the
// moment it is set, the node's clock reads
//
//	wall + Offset + Drift × (wall − the moment it was set)
//
// so Offset is a step and Drift a rate error: the clock gains Drift seconds
// per real second (-0.95 runs it at 5% speed, 1 at double speed; Drift must
// be above -1, so the clock still moves forward). The zero Clock is the wall
// clock.
type Clock struct {
	Offset time.Duration
	Drift  float64
}
