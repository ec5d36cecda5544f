package targets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/faultline/faultline/internal/fielderr"
)

// ProcessSystem is the system name of a process target: a binary
// faultline did not write (etcd, Redis, a user's service), started by the
// runtime from a command line that the scenario gives per role (see
// ProcessSpec). Build one with NewProcessSystem.
const ProcessSystem = "process"

// Peering says how the nodes of a process target reach their peers, which
// decides where a proxy can take over one directed peer link.
type Peering string

// Peerings.
const (
	// PeersNone: the command names no peers (or faultline does not know
	// how they talk); faults on peer links are not available.
	PeersNone Peering = "none"
	// PeersDial: each node is given, per peer, the address it must dial
	// (ProcessPeer.Dial), as faultline's own nodes are; every runtime that
	// proxies peer links can put a proxy on each directed link.
	PeersDial Peering = "dial"
	// PeersNames: nodes find their peers by a host name and port that are
	// the same for every node (etcd's --initial-cluster, its advertised
	// peer URLs), and a node's messages to a peer travel over connections
	// that either side opened. Each directed link can be cut only where
	// the runtime makes every node resolve each peer's name to the proxy
	// of that link (Capabilities.PeerNames: Docker, with a network per
	// node); elsewhere peer-link faults are refused.
	PeersNames Peering = "names"
)

// Probe is how a runtime learns that a process node is ready.
type Probe struct {
	// Kind is "tcp" (the port accepts a connection), "http" (GET Path on
	// the port answers 200) or "adapter" (the client adapter's Ping
	// answers nil on the client port).
	Kind string
	// Port is "client" (default) or "peer": the port the tcp and http
	// probes try.
	Port string
	// Path is the http probe's path, starting with "/".
	Path string
}

// Probe kinds.
const (
	ProbeTCP     = "tcp"
	ProbeHTTP    = "http"
	ProbeAdapter = "adapter"
)

// ProcessSpec is how to start, stop and probe the nodes of one role of a
// process target. Command, Env and Dir are text/template texts executed
// with the node's ProcessVars (missing fields are errors); each element of
// Command is one argument, never split or given to a shell.
type ProcessSpec struct {
	Command []string          // argv templates; Command[0] names the binary (looked up in PATH)
	Env     map[string]string // extra environment variables (values are templates)
	Dir     string            // working directory template; "" = the node's data directory
	// StopSignal is what a graceful stop sends first ("SIGTERM" when
	// empty); SIGKILL follows after StopGrace.
	StopSignal string
	StopGrace  time.Duration // 0 = DefaultStopGrace
	Ready      Probe
	Peers      Peering // "" = PeersNone
	// OnePort says the node serves its peers on its client port (Redis:
	// a replica connects to its primary's one port): its peer address is
	// its client address, and PeerPort is ClientPort.
	OnePort bool

	// Path is Command[0] resolved to an absolute path (by Resolve).
	Path string
	// Ping is the adapter's readiness probe with the scenario's options,
	// for Ready.Kind "adapter": nil once the node at addr serves.
	Ping func(ctx context.Context, addr string) error
}

// DefaultStopGrace is how long a graceful stop of a process node waits
// after its stop signal before SIGKILL, when the scenario sets none.
const DefaultStopGrace = 10 * time.Second

// MaxStopGrace bounds ProcessSpec.StopGrace.
const MaxStopGrace = 10 * time.Minute

// ProcessVars are what the templates of a ProcessSpec see for one node.
// Addresses are host:port; ports are numbers.
type ProcessVars struct {
	ID    string // the node id (n1, ...; ROLE1, ... with several roles)
	Role  string
	Index int // 1-based position of the node in the cluster
	// DataDir is the node's data directory, which survives kills and
	// restarts (DIR/data/ID locally, /data in a container).
	DataDir string
	// Host is the name peers and clients know the node by (127.0.0.1
	// locally; its host name on its network in a container).
	Host string
	// ListenHost is the address to bind listeners to (127.0.0.1
	// locally, 0.0.0.0 in a container).
	ListenHost string
	ClientPort int
	PeerPort   int
	ClientAddr string // Host:ClientPort
	PeerAddr   string // Host:PeerPort, what the node advertises to peers
	// Peers are the other nodes, in cluster order; Nodes are all of them,
	// this one included.
	Peers []ProcessPeer
	Nodes []ProcessPeer
}

// ProcessPeer is one node as another node's templates see it.
type ProcessPeer struct {
	ID, Role   string
	Index      int
	Host       string
	ClientPort int
	PeerPort   int
	ClientAddr string // Host:ClientPort
	PeerAddr   string // Host:PeerPort, the same for every node
	// Dial is the address the node whose templates these are dials to
	// reach this peer's peer port: the proxy of that directed link where
	// the runtime puts one (PeersDial), else PeerAddr. For the node
	// itself it is its own PeerAddr. DialHost and DialPort are its parts,
	// for commands that take them apart (redis-server --replicaof HOST PORT).
	Dial     string
	DialHost string
	DialPort string
}

// stopSignals are the signals a scenario may name as stop_signal.
var stopSignals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGKILL": syscall.SIGKILL,
}

// Signal returns the stop signal (SIGTERM when StopSignal is empty).
func (p *ProcessSpec) Signal() syscall.Signal {
	if s, ok := stopSignals[p.signalName()]; ok {
		return s
	}
	return syscall.SIGTERM
}

// signalName normalises StopSignal: upper case, with the SIG prefix.
func (p *ProcessSpec) signalName() string {
	n := strings.ToUpper(p.StopSignal)
	if n == "" {
		return "SIGTERM"
	}
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	return n
}

// SignalName returns the stop signal's name, e.g. "SIGTERM".
func (p *ProcessSpec) SignalName() string { return p.signalName() }

// Grace returns StopGrace, or DefaultStopGrace when it is 0.
func (p *ProcessSpec) Grace() time.Duration {
	if p.StopGrace <= 0 {
		return DefaultStopGrace
	}
	return p.StopGrace
}

// templateFuncs are the functions the templates may call besides Go's
// built-ins.
var templateFuncs = template.FuncMap{
	// join joins strings: {{join "," .X .Y}}.
	"join": func(sep string, s ...string) string { return strings.Join(s, sep) },
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
}

// Check checks the spec without resolving the binary: templates that
// parse and execute on a sample cluster, a known stop signal and probe,
// a grace within MaxStopGrace. Its errors are *fielderr.Error, with
// fields as a scenario's role names them (command[2], ready.path, ...).
func (p *ProcessSpec) Check() error {
	if len(p.Command) == 0 || strings.TrimSpace(p.Command[0]) == "" {
		return fielderr.New("command", "a process role needs the command that starts a node, e.g. [etcd, --name, \"{{.ID}}\", ...]")
	}
	if strings.Contains(p.Command[0], "{{") {
		return fielderr.New("command[0]", "the binary's name cannot be a template: name the binary (found in PATH) or give its path")
	}
	if _, ok := stopSignals[p.signalName()]; !ok {
		return fielderr.New("stop_signal", "%q is not a stop signal faultline sends (use one of %s)", p.StopSignal, strings.Join(slices.Sorted(maps.Keys(stopSignals)), ", "))
	}
	if p.StopGrace < 0 || p.StopGrace > MaxStopGrace {
		return fielderr.New("stop_grace", "%s: use 0 (the default, %s) up to %s", p.StopGrace, DefaultStopGrace, MaxStopGrace)
	}
	switch p.Peers {
	case "", PeersNone, PeersDial, PeersNames:
	default:
		return fielderr.New("peers", "%q: use none (the nodes' peer links carry no faults), dial (each node is given the address to dial per peer: {{range .Peers}}{{.Dial}}{{end}}) or names (peers are named by host:port, the same for all nodes: {{.PeerAddr}})", p.Peers)
	}
	switch p.Ready.Kind {
	case ProbeTCP, ProbeAdapter:
		if p.Ready.Path != "" {
			return fielderr.New("ready.path", "only the http probe has a path")
		}
	case ProbeHTTP:
		if !strings.HasPrefix(p.Ready.Path, "/") {
			return fielderr.New("ready.path", "the http probe needs the path it GETs, starting with /, e.g. /health")
		}
	case "":
		return fielderr.New("ready", "say how to know a node is ready: tcp (its client port accepts connections), adapter (the client adapter's own ping), or {probe: http, path: /health}")
	default:
		return fielderr.New("ready.probe", "%q: use tcp, http or adapter", p.Ready.Kind)
	}
	switch p.Ready.Port {
	case "", "client", "peer":
	default:
		return fielderr.New("ready.port", "%q: use client or peer", p.Ready.Port)
	}
	if p.Ready.Kind == ProbeAdapter && p.Ready.Port == "peer" {
		return fielderr.New("ready.port", "the adapter's ping goes to the client port")
	}
	_, _, _, err := p.Render(SampleProcessVars(3, 2))
	return err
}

// Resolve finds the binary Command[0] names (in PATH, unless it holds a
// '/') and sets Path to its absolute path.
func (p *ProcessSpec) Resolve() error {
	if len(p.Command) == 0 {
		return fielderr.New("command", "a process role needs the command that starts a node")
	}
	name := p.Command[0]
	path, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fielderr.New("command[0]", "%s: not found in PATH: install it or give its path", name)
		}
		return fielderr.New("command[0]", "%s: %v", name, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fielderr.New("command[0]", "%s: %v", name, err)
	}
	p.Path = abs
	return nil
}

// Render executes the templates for one node: its argv (argv[0] is Path
// when set, else Command[0]), extra environment as KEY=VALUE (sorted) and
// working directory ("" = vars.DataDir). Errors are *fielderr.Error.
func (p *ProcessSpec) Render(v ProcessVars) (argv, env []string, dir string, err error) {
	exec := func(field, text string) (string, error) {
		t, err := parseTemplate(field, text)
		if err != nil {
			return "", fielderr.New(field, "template: %v", templateErr(err))
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return "", fielderr.New(field, "template: %v (the fields are %s)", templateErr(err), varsHelp)
		}
		return b.String(), nil
	}
	argv = make([]string, len(p.Command))
	for i, a := range p.Command {
		if argv[i], err = exec(fmt.Sprintf("command[%d]", i), a); err != nil {
			return nil, nil, "", err
		}
	}
	if p.Path != "" {
		argv[0] = p.Path
	}
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, nil, "", fielderr.New("env", "%q is not an environment variable name", k)
		}
		val, err := exec("env."+k, p.Env[k])
		if err != nil {
			return nil, nil, "", err
		}
		env = append(env, k+"="+val)
	}
	dir = v.DataDir
	if p.Dir != "" {
		if dir, err = exec("dir", p.Dir); err != nil {
			return nil, nil, "", err
		}
	}
	return argv, env, dir, nil
}

// varsHelp names the template fields, for errors.
const varsHelp = ".ID .Role .Index .DataDir .Host .ListenHost .ClientPort .PeerPort .ClientAddr .PeerAddr, and .Peers and .Nodes, lists of {.ID .Role .Index .Host .ClientPort .PeerPort .ClientAddr .PeerAddr .Dial .DialHost .DialPort}"

// templateErr drops text/template's "template: NAME:" prefix.
func templateErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "template: ")
	if i := strings.Index(s, ": "); i >= 0 && i < 40 {
		s = s[i+2:]
	}
	return s
}

// SampleProcessVars returns the vars of node index (1-based) of a cluster
// of n nodes on the local runtime, for checking templates.
func SampleProcessVars(n, index int) ProcessVars {
	var nodes []ProcessAddrs
	for i := 1; i <= n; i++ {
		nodes = append(nodes, ProcessAddrs{ID: fmt.Sprintf("n%d", i), Role: "node", Host: "127.0.0.1", ClientPort: 10000 + 2*i, PeerPort: 10001 + 2*i})
	}
	return BuildProcessVars(nodes, index-1, "/data", "127.0.0.1", nil)
}

// ProcessAddrs is one node of a process target as a runtime lays it out.
type ProcessAddrs struct {
	ID, Role   string
	Host       string
	ClientPort int
	PeerPort   int
}

// BuildProcessVars returns the template vars of nodes[i]: dataDir and
// listenHost as the runtime has them, and dial[peer id] the address it
// dials for each peer (missing entries: the peer's PeerAddr).
func BuildProcessVars(nodes []ProcessAddrs, i int, dataDir, listenHost string, dial map[string]string) ProcessVars {
	hp := func(h string, p int) string { return net.JoinHostPort(h, strconv.Itoa(p)) }
	me := nodes[i]
	v := ProcessVars{
		ID: me.ID, Role: me.Role, Index: i + 1, DataDir: dataDir,
		Host: me.Host, ListenHost: listenHost,
		ClientPort: me.ClientPort, PeerPort: me.PeerPort,
		ClientAddr: hp(me.Host, me.ClientPort), PeerAddr: hp(me.Host, me.PeerPort),
	}
	for j, n := range nodes {
		p := ProcessPeer{
			ID: n.ID, Role: n.Role, Index: j + 1, Host: n.Host,
			ClientPort: n.ClientPort, PeerPort: n.PeerPort,
			ClientAddr: hp(n.Host, n.ClientPort), PeerAddr: hp(n.Host, n.PeerPort),
		}
		p.Dial = p.PeerAddr
		if d := dial[n.ID]; d != "" && j != i {
			p.Dial = d
		}
		p.DialHost, p.DialPort, _ = net.SplitHostPort(p.Dial)
		v.Nodes = append(v.Nodes, p)
		if j != i {
			v.Peers = append(v.Peers, p)
		}
	}
	return v
}

// ProbeAddr returns the address a runtime probes for readiness: the
// node's client or peer address as faultline reaches it.
func (p *ProcessSpec) ProbeAddr(client, peer string) string {
	if p.Ready.Port == "peer" {
		return peer
	}
	return client
}

// WaitProbe waits until the node answers the spec's readiness probe at
// addr (host:port as this process reaches it), trying as WaitHTTP does;
// exited and timeout as for WaitHTTP (a *NotReadyError when the process
// ends or the timeout passes first).
func (p *ProcessSpec) WaitProbe(ctx context.Context, addr string, timeout time.Duration, exited func(context.Context) error) error {
	switch p.Ready.Kind {
	case ProbeHTTP:
		return WaitHTTP(ctx, "http://"+addr+p.Ready.Path, timeout, exited)
	case ProbeAdapter:
		if p.Ping == nil {
			return errors.New("the readiness probe is the adapter's ping, and the client adapter has none: use tcp or http")
		}
		what := "the adapter's ping of " + addr
		return poll(ctx, what, what, timeout, exited, func(ctx context.Context) error { return p.Ping(ctx, addr) })
	default:
		what := "a TCP connection to " + addr
		return poll(ctx, what, what, timeout, exited, func(ctx context.Context) error {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
}

// ProcessRole is one role of a process target: its name, its node count
// and how its nodes run.
type ProcessRole struct {
	Name  string
	Nodes int
	Spec  *ProcessSpec
}

// NewProcessSystem returns the System of a process target with the given
// roles (in order) and client adapter: it has no bug switches or options
// of its own (a binary's settings go on its command line), reads status
// through the adapter's Status (nil if it has none), and declares
// PeerLinks when every role's nodes dial the addresses they are given
// (PeersDial), PeerNames when any role names its peers (PeersNames). It
// cannot be run by `faultline node`: runtimes start its commands.
func NewProcessSystem(roles []ProcessRole, adapter *Adapter, adapterOpts map[string]string) *System {
	s := adapterSystem(ProcessSystem, "a binary faultline did not write, started from the scenario's command line", adapter, adapterOpts)
	dial, names := len(roles) > 0, false
	for _, r := range roles {
		s.Roles = append(s.Roles, Role{Name: r.Name, Nodes: r.Nodes, Serves: true})
		dial = dial && r.Spec.Peers == PeersDial
		names = names || r.Spec.Peers == PeersNames
	}
	s.PeerLinks, s.PeerNames = dial, names && !dial
	return s
}

// NewExternalSystem returns the System of a cluster someone else runs:
// one role per distinct role of nodes (in order of first use, counted),
// every role serving, status read through the adapter; its peer links
// carry no proxy.
func NewExternalSystem(nodes []ExternalNode, adapter *Adapter, adapterOpts map[string]string) *System {
	s := adapterSystem(ExternalSystem, "a cluster someone else runs", adapter, adapterOpts)
	idx := map[string]int{}
	for _, n := range nodes {
		i, ok := idx[n.Role]
		if !ok {
			i = len(s.Roles)
			idx[n.Role] = i
			s.Roles = append(s.Roles, Role{Name: n.Role, Serves: true})
		}
		s.Roles[i].Nodes++
	}
	return s
}

// adapterSystem is the System of a target that faultline's own code does
// not run: spoken to through adapter (its default client), the register
// workload by default, status read through the adapter's Status and
// replica reads through its LocalRead (nil where it has none), no roles
// yet. `faultline node` cannot run it.
func adapterSystem(name, doc string, adapter *Adapter, adapterOpts map[string]string) *System {
	s := &System{
		Name: name, Description: doc, Client: adapter.Name, Workload: "register",
		Run: func(context.Context, NodeConfig) error {
			return fmt.Errorf("a %s target's nodes are not started by `faultline node`", name)
		},
	}
	opts := maps.Clone(adapterOpts)
	if adapter.Status != nil {
		s.Status = func(ctx context.Context, n NodeInfo) (Status, error) { return adapter.Status(ctx, n, opts) }
	}
	if adapter.LocalRead != nil {
		s.LocalRead = func(ctx context.Context, n NodeInfo, key string) (json.RawMessage, error) {
			return adapter.LocalRead(ctx, n, key, opts)
		}
	}
	return s
}

// SampleProcessSystem is the System of a process target of 3 nodes of one
// role whose nodes reach their peers as peers says, spoken to through the
// named adapter: what `faultline faults --system process` judges
// availability against. Errors name the bad peering or adapter.
func SampleProcessSystem(peers Peering, adapter string) (*System, error) {
	spec := &ProcessSpec{Command: []string{"true"}, Ready: Probe{Kind: ProbeTCP}, Peers: peers}
	if err := spec.Check(); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	a, err := LookupAdapter(adapter)
	if err != nil {
		return nil, err
	}
	return NewProcessSystem([]ProcessRole{{Name: "node", Nodes: 3, Spec: spec}}, a, nil), nil
}
