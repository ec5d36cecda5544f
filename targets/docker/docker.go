// Package docker is the Docker runtime: every node of a cluster, and the
// run's Toxiproxy server, is a container of one image built locally from
// the static faultline binary, driven through testcontainers-go and the
// Docker API. No image is ever pulled: the image is built FROM scratch and
// Ryuk (testcontainers' reaper, an image from a registry) is disabled;
// cleanup is by label instead.
//
// # Topology
//
// Every node gets a bridge network of its own, faultline-RUN-ALIAS, that
// holds only that node (DNS name ALIAS: the node id in lower case,
// [a-z0-9-], made unique) and the proxy container (DNS name ProxyAlias),
// which is attached to every node network. Docker isolates bridge networks
// from one another, so a node can reach no peer directly (the peer's name
// does not resolve and its address is not routed): it reaches peer B only
// through the proxy of link A -> B, which listens inside the proxy
// container on a fixed port (PeerLinkPort) and dials B's alias on B's
// network. Client links (faultline -> node) listen on ClientLinkPort.
//
// A node runs as /faultline followed by targets.NodeArgs:
//
//	/faultline node --system S --id ID [--role R] --listen 0.0.0.0:7000
//	    --admin 0.0.0.0:7001 --peer-listen ALIAS:7002
//	    [--peer ID2=ProxyAlias:PORT [--peer-role ID2=R2]]... --data /data
//	    [--bug X]... [--opt K=V]...
//
// with its hostname set to ALIAS, so ALIAS:7002 resolves (through
// /etc/hosts) to the node's own address: the peer listener binds that one
// address, which a system such as raftkv can also advertise. Its data lives in DataDir (/data), on a named volume of
// its own, faultline-RUN-ALIAS-data, created before the container: it
// survives kills, stops and restarts of the container and is removed with
// the run's containers. A volume is a directory on the Docker host's own
// file system, so fsync does not go through the storage driver (on
// fuse-overlayfs, a container's writable layer is a FUSE mount).
//
// # Use
//
// A run calls StartProxy, builds a faults.Links from the placement (see
// targets.ProxyPlacement) and passes it as ClusterSpec.Links to Start, which
// calls MapLinks with the nodes' in-network addresses (ALIAS:7000,
// ALIAS:7001, ALIAS:7002) before it starts any node. Cluster.Close removes
// every container, network and volume of the run; Clean removes what a
// killed run left behind. Every container, network and volume carries the
// labels faultline=1 and faultline.run=RUN, and the owner labels
// (LabelOwnerHost, LabelOwnerBoot, LabelOwnerPID, LabelOwnerStart) that
// tell Clean whether the faultline process that made them still lives.
//
// # Control surfaces
//
// Only what faultline dials is published, and only when it must be. When
// this process reaches the containers' own addresses (a local daemon in its
// network namespace, the usual case), nothing is published: it dials the
// proxy container's address for the Toxiproxy API and the client links,
// and the nodes' addresses for their admin APIs. Otherwise (a remote
// daemon) it publishes exactly those ports (the Toxiproxy API, one port
// per client link, each node's admin port; a node's own client port only
// when its client link has no proxy), bound to the one address faultline
// dials on the daemon's host (see publishedHost; BindIPEnv overrides it).
// Either way the containers' ports are reachable from the Docker host's
// bridges, so a run's token (ClusterSpec.Token) protects the client, admin
// and Toxiproxy APIs: it is given to every node (targets.TokenEnv) and to
// the proxy (FAULTLINE_PROXY_TOKEN) in the environment, never on the
// command line, and the APIs answer 401 to any request without it. The
// nodes' peer (replication) listeners and the proxy's peer-link ports carry
// no token: whoever reaches the bridges can speak to them.
package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/faultline/faultline/targets"
)

// Labels and names shared by every resource of a run.
const (
	// LabelFaultline marks every container, network, volume and image
	// faultline made.
	LabelFaultline = "faultline"
	// LabelRun holds the run id (ClusterSpec.RunID) of a container, network
	// or volume.
	LabelRun = "faultline.run"
	// LabelRole is "node" or "proxy" on a container.
	LabelRole = "faultline.role"
	// LabelNode holds the node id of a node container, network or volume.
	LabelNode = "faultline.node"
	// LabelImage marks images built by EnsureImage.
	LabelImage = "faultline.image"
	// NamePrefix starts every container, network and volume name:
	// NamePrefix + RUN + "-" + ALIAS for a node's container and network,
	// the same + DataVolumeSuffix for its data volume, NamePrefix + RUN +
	// "-proxy" for the proxy container.
	NamePrefix = "faultline-"
	// DataVolumeSuffix ends the name of a node's data volume.
	DataVolumeSuffix = "-data"
	// DataDir is where a node's data volume is mounted in its container,
	// and the node's --data.
	DataDir = "/data"
	// ProxyAlias is the proxy container's DNS name on every node network.
	ProxyAlias = "faultline-proxy"
)

// Ports inside the containers.
const (
	ClientPort   = 7000 // node client API
	AdminPort    = 7001 // node admin API
	PeerPort     = 7002 // node peer listener
	ProxyAPIPort = 8474 // Toxiproxy API in the proxy container
	// MaxNodes bounds a cluster so that link ports stay in their ranges.
	MaxNodes = 99
)

// PeerLinkPort is the port, in the proxy container, of the proxy of link
// nodes[i] -> nodes[j] of a cluster of n nodes.
func PeerLinkPort(i, j, n int) int { return 20000 + i*n + j }

// ClientLinkPort is the port, in the proxy container, of the proxy of the
// client link to nodes[j]; it is published on the Docker host only when
// faultline cannot reach the proxy container's own address.
func ClientLinkPort(j int) int { return 30000 + j }

// DefaultReadyTimeout is the ReadyTimeout of a zero Options: containers
// take longer to start than local processes.
const DefaultReadyTimeout = 30 * time.Second

// Options configure a Runtime: see targets.RuntimeOptions. The zero value
// is ready to use; zero fields get targets.DefaultRuntimeOptions, except
// ReadyTimeout, which gets DefaultReadyTimeout.
type Options = targets.RuntimeOptions

func withDefaults(o Options) Options {
	def := targets.DefaultRuntimeOptions()
	def.ReadyTimeout = DefaultReadyTimeout
	return o.WithDefaults(def)
}

func init() {
	targets.RegisterRuntime("docker", func() targets.Runtime { return New(Options{}) })
}

// Runtime starts clusters of containers. It is safe for concurrent use and
// may host any number of runs at once, each with a distinct RunID.
//
// A run's resources belong to the Runtime from StartProxy until Start
// returns: to the returned Cluster then, or removed by Start when it fails.
// If Start is never called after StartProxy, call Abort (or Clean).
type Runtime struct {
	opts Options

	mu   sync.Mutex
	runs map[string]*run // RunID -> a run between StartProxy and Start
}

var (
	_ targets.Runtime   = (*Runtime)(nil)
	_ targets.ProxyHost = (*Runtime)(nil)
)

// New returns a Docker Runtime. It does not contact Docker until a run
// starts.
func New(opts Options) *Runtime {
	return &Runtime{opts: withDefaults(opts), runs: map[string]*run{}}
}

// Name returns "docker".
func (r *Runtime) Name() string { return "docker" }

// Capabilities: every cluster of this runtime has process control (Kill,
// Stop, Start), pause (Pause, Resume), and a proxy on every directed peer
// link and every client link (nodes reach peers only through the proxy),
// also for process targets whose nodes name their peers (PeerNames: each
// node has a network and a hosts file of its own; see ProcessPeerPort).
func (r *Runtime) Capabilities() targets.Capabilities {
	return targets.Capabilities{Process: true, Pause: true, Links: targets.PeerLinks, PeerNames: true}
}

// Abort removes what StartProxy made for runID when Start will not be
// called. It does nothing for a run already handed to a Cluster (close
// that) or unknown to this Runtime.
func (r *Runtime) Abort(ctx context.Context, runID string) error {
	r.mu.Lock()
	ru := r.runs[runID]
	delete(r.runs, runID)
	r.mu.Unlock()
	if ru == nil {
		return nil
	}
	return ru.teardown(ctx, r.opts.CloseGrace, false)
}

// ---------------------------------------------------------------------------
// Environment and connection

var (
	envOnce sync.Once
	envErr  error
)

// envHostOverride and envRyuk are the testcontainers settings faultline
// makes for itself.
const (
	envHostOverride = "TESTCONTAINERS_HOST_OVERRIDE"
	envRyuk         = "TESTCONTAINERS_RYUK_DISABLED"
)

// setupEnv prepares testcontainers-go before its first use in this process:
// Ryuk off (TESTCONTAINERS_RYUK_DISABLED=true: its image cannot be pulled),
// and, when this process runs in a container (/.dockerenv) and shares its
// network namespace with a local dockerd, TESTCONTAINERS_HOST_OVERRIDE=
// 127.0.0.1 (else testcontainers guesses the default gateway, where the
// published ports are not). A host override the user set is kept. It also
// silences testcontainers' own logging (a process-wide setting).
func setupEnv() error {
	envOnce.Do(func() {
		os.Setenv(envRyuk, "true")
		if _, set := os.LookupEnv(envHostOverride); !set && inContainer() && localDaemon() {
			os.Setenv(envHostOverride, "127.0.0.1")
		}
		tclog.SetDefault(tclog.NewNoopLogger())
		if !testcontainers.ReadConfig().RyukDisabled {
			envErr = errors.New("docker runtime: testcontainers read its configuration before faultline could disable Ryuk (its image cannot be pulled here): set TESTCONTAINERS_RYUK_DISABLED=true in the environment")
		}
	})
	return envErr
}

func inContainer() bool {
	_, err := os.Stat("/.dockerenv")
	return err == nil
}

// localDaemon reports whether the Docker daemon is reached through a unix
// socket and runs in this process's network namespace, so that ports it
// publishes are on this host's 127.0.0.1.
func localDaemon() bool {
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		return false
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
			continue
		}
		ns, err := os.Readlink(filepath.Join("/proc", p.Name(), "ns", "net"))
		if err == nil && ns == self {
			return true
		}
	}
	return false
}

// dockerHostForErrors names the daemon faultline tries, for error messages.
func dockerHostForErrors() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// connect returns a Docker client that has answered a ping, or an
// InfraError saying that Docker is not reachable.
func connect(ctx context.Context) (*testcontainers.DockerClient, error) {
	if err := setupEnv(); err != nil {
		return nil, &targets.InfraError{Err: err}
	}
	unreachable := func(err error) error {
		return &targets.InfraError{Err: fmt.Errorf("the Docker daemon is not reachable at %s (%v): start it or use --runtime local", dockerHostForErrors(), err)}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// testcontainers falls back to the default socket when DOCKER_HOST does
	// not answer; a DOCKER_HOST the user set is the daemon they mean.
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		plain, err := client.New(client.FromEnv)
		if err == nil {
			_, err = plain.Ping(pctx, client.PingOptions{})
			plain.Close()
		}
		if err != nil {
			return nil, unreachable(err)
		}
	}
	cli, err := testcontainers.NewDockerClientWithOpts(pctx)
	if err != nil {
		return nil, unreachable(err)
	}
	if _, err := cli.Ping(pctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, unreachable(err)
	}
	return cli, nil
}

// BindIPEnv names the variable that sets the host IP published ports
// bind to when the daemon is not local (see publishedHost): e.g. the
// daemon host's private address when faultline reaches it through NAT, or
// 0.0.0.0 for every interface.
const BindIPEnv = "FAULTLINE_DOCKER_BIND_IP"

// reachContainers is localDaemon, for newRun: whether faultline dials the
// containers' own addresses (tests make it false to use published ports).
var reachContainers = localDaemon

// publishedHost returns the host on which published ports are reachable
// (testcontainers' choice, after setupEnv) and the host IP to bind them
// to: the address faultline dials, so that a port is published on that
// one interface of the daemon's host, not on all of them: the host itself
// when it is an IP address (127.0.0.1 for localhost), else the first IPv4
// address it resolves to. BindIPEnv, when set, overrides the bind address.
func publishedHost(ctx context.Context) (host, bindIP string, err error) {
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
	if err != nil {
		return "", "", err
	}
	defer p.Close()
	host, err = p.DaemonHost(ctx)
	if err != nil {
		return "", "", err
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if v, ok := os.LookupEnv(BindIPEnv); ok {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return "", "", fmt.Errorf("%s=%q: want an IP address (0.0.0.0 for every interface)", BindIPEnv, v)
		}
		return host, ip.String(), nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return host, ip.Unmap().String(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return "", "", fmt.Errorf("the Docker host %q has no IPv4 address to publish ports on (%v): set %s to the address to bind them to", host, err, BindIPEnv)
	}
	return host, ips[0].Unmap().String(), nil
}

// ---------------------------------------------------------------------------
// Names

// sanitizeName keeps [a-zA-Z0-9_.-] (what Docker allows in names) and
// replaces anything else with '-'.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// dnsLabel turns a node id into a DNS label: lower case, [a-z0-9-].
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		out = "node"
	}
	if len(out) > 50 {
		out = out[:50]
	}
	return out
}

// aliases gives every node a distinct DNS name on its network.
func aliases(nodes []string) map[string]string {
	out := map[string]string{}
	used := map[string]bool{ProxyAlias: true, "proxy": true}
	for i, id := range nodes {
		a := dnsLabel(id)
		if used[a] {
			a = fmt.Sprintf("%s-%d", a, i+1)
		}
		used[a] = true
		out[id] = a
	}
	return out
}

// validateSpec checks the parts of a ClusterSpec this runtime relies on:
// targets.ClusterSpec.Check, a run id, at most MaxNodes nodes, none named
// "proxy".
func validateSpec(spec targets.ClusterSpec) error {
	if spec.RunID == "" {
		return errors.New("docker runtime: ClusterSpec.RunID is empty: it labels and names the run's containers, and Close removes by it")
	}
	if err := spec.Check(); err != nil {
		return fmt.Errorf("docker runtime: %w", err)
	}
	if len(spec.Nodes) > MaxNodes {
		return fmt.Errorf("docker runtime: %d nodes, at most %d are supported", len(spec.Nodes), MaxNodes)
	}
	for _, id := range spec.IDs() {
		if id == "proxy" {
			return fmt.Errorf("docker runtime: node id %q is reserved (it names the proxy's log and container); rename the node", id)
		}
	}
	return nil
}

// runLabels returns the labels of a resource of run runID: faultline=1,
// the run id, this process as its owner (see Owner), and extra as
// key/value pairs.
func runLabels(runID string, extra ...string) map[string]string {
	m := Self().labels()
	m[LabelFaultline] = "1"
	m[LabelRun] = runID
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// mergeCtx returns a context cancelled when either parent is.
func mergeCtx(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}
