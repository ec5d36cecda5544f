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

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/faultline/faultline/targets"
)

// run is what one RunID owns: its networks, its proxy container, and later
// its node containers; and the logs of all of them.
type run struct {
	opts   Options
	spec   targets.ClusterSpec
	logf   func(string, ...any)
	cli    *testcontainers.DockerClient
	dir    string // absolute run directory
	image  string
	host   string // where published ports are reachable (not direct)
	bindIP string // host IP published ports bind to (not direct)
	// direct is true when this process reaches the containers' own
	// addresses (a local daemon in its network namespace): nothing is
	// published then, and faultline dials the containers' addresses.
	direct bool
	prefix string // NamePrefix + sanitized RunID + "-"

	index map[string]int    // node id -> position in spec.Nodes
	alias map[string]string // node id -> DNS name on its network
	nets  map[string]string // node id -> network name

	procImage string            // the image of process targets' nodes (EnsureProcessImage); "" when there are none
	proxyIPs  map[string]string // node id -> the proxy container's IPv4 address on that node's network

	proxy       *testcontainers.DockerContainer
	apiAddr     string         // Toxiproxy API, host:port
	clientAddrs map[int]string // proxy container port -> address clients dial (container IP:port, or published host:port)

	logsCtx    context.Context // ends every log stream
	logsCancel context.CancelFunc
	logsMu     sync.Mutex
	logs       []*containerLog

	tornOnce sync.Once
	tornErr  error
}

// StartProxy creates the run's networks (one per node) and its proxy
// container, `faultline proxy --listen 0.0.0.0:8474` attached to all of
// them with spec.Token (if set) as its API's token, builds the node image
// first if needed, and returns where the proxy listens: the placement to
// build a faults.Links from (see the package doc; its Token is
// spec.Token).
// It fails with a *targets.InfraError when Docker is unreachable or a
// container does not start, and removes whatever it created then.
//
// ctx bounds the start only. The run's resources are removed by the
// Cluster's Close, by Start when it fails, or by Abort.
func (r *Runtime) StartProxy(ctx context.Context, spec targets.ClusterSpec) (targets.ProxyPlacement, error) {
	if err := validateSpec(spec); err != nil {
		return targets.ProxyPlacement{}, err
	}
	r.mu.Lock()
	if _, dup := r.runs[spec.RunID]; dup {
		r.mu.Unlock()
		return targets.ProxyPlacement{}, fmt.Errorf("docker runtime: StartProxy called twice for run %q: one proxy per run", spec.RunID)
	}
	r.runs[spec.RunID] = nil // reserved while starting
	r.mu.Unlock()

	ru, err := r.newRun(ctx, spec)
	err = cutShort(ctx, "StartProxy", err)
	r.mu.Lock()
	if err != nil {
		delete(r.runs, spec.RunID)
	} else {
		r.runs[spec.RunID] = ru
	}
	r.mu.Unlock()
	if err != nil {
		return targets.ProxyPlacement{}, err
	}
	return ru.placement(), nil
}

func (r *Runtime) newRun(ctx context.Context, spec targets.ClusterSpec) (_ *run, err error) {
	logf := spec.Log
	if logf == nil {
		logf = r.opts.Log
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := filepath.Abs(spec.Dir)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: run directory %q: %w", spec.Dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		return nil, &targets.InfraError{Err: fmt.Errorf("docker runtime: create %s: %w", filepath.Join(dir, "nodes"), err)}
	}
	binary := spec.Binary
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return nil, &targets.InfraError{Err: fmt.Errorf("docker runtime: cannot find this executable to build the node image from (%v): set ClusterSpec.Binary", err)}
		}
	}
	if err := CheckStatic(binary); err != nil {
		return nil, &targets.InfraError{Err: err}
	}
	cli, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	image, err := EnsureImage(ctx, cli, binary, logf)
	if err != nil {
		cli.Close()
		return nil, &targets.InfraError{Err: err}
	}
	var procImage string
	if bins := processBinaries(spec); len(bins) > 0 {
		if procImage, err = EnsureProcessImage(ctx, cli, binary, bins, logf); err != nil {
			cli.Close()
			return nil, &targets.InfraError{Err: err}
		}
	}
	direct := reachContainers()
	var host, bindIP string
	if !direct {
		if host, bindIP, err = publishedHost(ctx); err != nil {
			cli.Close()
			return nil, &targets.InfraError{Err: fmt.Errorf("docker runtime: find the host of published ports: %w", err)}
		}
	}
	activeRuns.add(spec.RunID)
	lctx, lcancel := context.WithCancel(context.Background())
	ru := &run{
		opts: r.opts, spec: spec, logf: logf, cli: cli, dir: dir, image: image, procImage: procImage,
		host: host, bindIP: bindIP, direct: direct,
		prefix: NamePrefix + sanitizeName(spec.RunID) + "-",
		index:  map[string]int{}, alias: aliases(spec.IDs()), nets: map[string]string{},
		logsCtx: lctx, logsCancel: lcancel,
	}
	defer func() {
		if err != nil {
			ru.teardown(context.Background(), 0, true)
		}
	}()
	for i, id := range spec.IDs() {
		ru.index[id] = i
		ru.nets[id] = ru.prefix + ru.alias[id]
	}
	t0 := time.Now()
	for _, id := range spec.IDs() {
		_, err := cli.NetworkCreate(ctx, ru.nets[id], client.NetworkCreateOptions{
			Driver: "bridge",
			Labels: runLabels(spec.RunID, LabelNode, id),
		})
		if err != nil {
			return nil, infraf("create network %s: %w%s", ru.nets[id], err, conflictHint(err))
		}
	}

	proxyLog, err := ru.openLog("proxy", filepath.Join(dir, "nodes", "proxy.log"))
	if err != nil {
		return nil, &targets.InfraError{Err: err}
	}
	// Only what faultline dials is published, and only when it cannot
	// reach the proxy container's own address (a remote daemon): the
	// Toxiproxy API and the client links' ports, on the address it dials
	// (see publishedHost). (A LinkMapper that leaves client links without
	// a proxy, which the conductor never does, leaves those ports unused:
	// they cannot be published later.) The API requires the run's token
	// (spec.Token), given in the environment, not on the command line.
	var exposed []string
	if !ru.direct {
		exposed = append(exposed, portSpec(ProxyAPIPort))
		for j := range spec.Nodes {
			exposed = append(exposed, portSpec(ClientLinkPort(j)))
		}
	}
	networks := make([]string, len(spec.Nodes))
	netAliases := map[string][]string{}
	for i, id := range spec.IDs() {
		networks[i] = ru.nets[id]
		netAliases[ru.nets[id]] = []string{ProxyAlias}
	}
	env := map[string]string{}
	if spec.Token != "" {
		env[faultsProxyTokenEnv] = string(spec.Token)
	}
	req := testcontainers.ContainerRequest{
		Image:          image,
		Cmd:            []string{"proxy", "--listen", "0.0.0.0:" + strconv.Itoa(ProxyAPIPort)},
		Env:            env,
		ExposedPorts:   exposed,
		Labels:         runLabels(spec.RunID, LabelRole, "proxy"),
		Name:           ru.prefix + "proxy",
		Networks:       networks,
		NetworkAliases: netAliases,
		ConfigModifier: func(c *container.Config) { c.Hostname = ProxyAlias },
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = container.NetworkMode(networks[0])
			hc.PortBindings = ru.bindings(exposed)
		},
		LifecycleHooks: []testcontainers.ContainerLifecycleHooks{followHook(proxyLog)},
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req, Started: true, Logger: tclog.NewNoopLogger(),
	})
	if dc, ok := ctr.(*testcontainers.DockerContainer); ok && dc != nil {
		ru.proxy = dc
	}
	if err != nil {
		proxyLog.wait(time.Second)
		return nil, infraf("the proxy container did not start: %w%s", err, quoteTail(proxyLog))
	}
	ru.proxyIPs = map[string]string{}
	for _, id := range spec.IDs() {
		ru.proxyIPs[id] = ru.containerIP(ctx, ru.proxy.ID, ru.nets[id])
	}
	ru.clientAddrs = map[int]string{}
	if ru.direct {
		// Clients dial the proxy container's own address when this host
		// can reach it (a local daemon in our network namespace). A
		// published port goes through Docker's userland proxy, which
		// accepts every connection and closes it when the container port
		// refuses: a request to a killed node (whose links refuse) would
		// look like one cut after sending, an unknown outcome, instead of
		// the definite refusal it is.
		ip := ru.containerIP(ctx, ru.proxy.ID, networks[0])
		if ip == "" {
			return nil, infraf("the proxy container has no IPv4 address on network %s", networks[0])
		}
		ru.apiAddr = net.JoinHostPort(ip, strconv.Itoa(ProxyAPIPort))
		for j := range spec.Nodes {
			p := ClientLinkPort(j)
			ru.clientAddrs[p] = net.JoinHostPort(ip, strconv.Itoa(p))
		}
		logf("docker: the proxy's API and client links are reached at %s directly (nothing is published)", ip)
	} else {
		ports, err := ru.hostPorts(ctx, ru.proxy.ID)
		if err != nil {
			return nil, &targets.InfraError{Err: err}
		}
		for j := range spec.Nodes {
			p := ClientLinkPort(j)
			if ports[p] == "" {
				return nil, infraf("the proxy container's port %d is not published", p)
			}
			ru.clientAddrs[p] = ports[p]
		}
		if ru.apiAddr = ports[ProxyAPIPort]; ru.apiAddr == "" {
			return nil, infraf("the proxy container's API port %d is not published", ProxyAPIPort)
		}
		logf("docker: the proxy's API and client links are published on %s", orAll(ru.bindIP))
	}
	exited := func(ctx context.Context) error {
		res, err := cli.ContainerInspect(ctx, ru.proxy.ID, client.ContainerInspectOptions{})
		if err != nil || res.Container.State == nil || res.Container.State.Running {
			return nil
		}
		return fmt.Errorf("container %s, exit code %d", res.Container.State.Status, res.Container.State.ExitCode)
	}
	if err := targets.WaitReady(ctx, ru.apiAddr, "/version", spec.Token, r.opts.ReadyTimeout, exited); err != nil {
		proxyLog.wait(time.Second)
		return nil, infraf("the proxy container's API did not answer GET /version with 200: %w%s", err, quoteTail(proxyLog))
	}
	logf("docker: proxy of run %s ready in %s (API %s, image %s)", spec.RunID, time.Since(t0).Round(time.Millisecond), ru.apiAddr, image)
	return ru, nil
}

// placement says where the run's proxies listen; see the package doc.
func (ru *run) placement() targets.ProxyPlacement {
	n := len(ru.spec.Nodes)
	return targets.ProxyPlacement{
		APIAddr: ru.apiAddr,
		Listen: func(from, to string) string {
			j, ok := ru.index[to]
			if !ok {
				return "0.0.0.0:0"
			}
			if from == targets.ClientLink {
				return "0.0.0.0:" + strconv.Itoa(ClientLinkPort(j))
			}
			i, ok := ru.index[from]
			if !ok {
				return "0.0.0.0:0"
			}
			if namesPeers(ru.spec, j) {
				// On from's network, to's name leads to the proxy
				// (extra hosts): listen there on to's own peer port.
				return net.JoinHostPort(ru.proxyIPs[from], strconv.Itoa(ProcessPeerPort(j)))
			}
			return "0.0.0.0:" + strconv.Itoa(PeerLinkPort(i, j, n))
		},
		Dial: func(from, to, listen string) (string, error) {
			_, ps, err := net.SplitHostPort(listen)
			if err != nil {
				return "", fmt.Errorf("docker runtime: proxy listen address %q: %w", listen, err)
			}
			if j, ok := ru.index[to]; ok && from != targets.ClientLink && namesPeers(ru.spec, j) {
				return net.JoinHostPort(ru.alias[to], ps), nil
			}
			if from != targets.ClientLink {
				return net.JoinHostPort(ProxyAlias, ps), nil
			}
			p, _ := strconv.Atoi(ps)
			addr, ok := ru.clientAddrs[p]
			if !ok {
				return "", fmt.Errorf("docker runtime: the proxy of link %s -> %s listens on port %s, which is not published on the Docker host (client links must listen where ProxyPlacement.Listen says)", from, to, ps)
			}
			return addr, nil
		},
		Upstream: func(from, to, nodeAddr string) string { return nodeAddr },
		Token:    ru.spec.Token,
	}
}

// faultsProxyTokenEnv is faults.ProxyTokenEnv, the variable `faultline
// proxy` reads its token from (this package does not import faults).
const faultsProxyTokenEnv = "FAULTLINE_PROXY_TOKEN"

// orAll names a bind address for logs.
func orAll(ip string) string {
	if ip == "0.0.0.0" || ip == "::" {
		return "all interfaces"
	}
	return ip
}

func portSpec(p int) string { return strconv.Itoa(p) + "/tcp" }

// bindings publishes every port on a random host port of ru.bindIP.
func (ru *run) bindings(ports []string) network.PortMap {
	m := network.PortMap{}
	if len(ports) == 0 {
		return m
	}
	ip, err := netip.ParseAddr(ru.bindIP)
	if err != nil {
		panic("docker runtime: publishing a port without a bind address (" + ru.bindIP + ")") // publishedHost checks it
	}
	for _, p := range ports {
		m[network.MustParsePort(p)] = []network.PortBinding{{HostIP: ip, HostPort: "0"}}
	}
	return m
}

// containerIP returns a container's IPv4 address on the named network, or
// "" if it has none.
func (ru *run) containerIP(ctx context.Context, id, network string) string {
	res, err := ru.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || res.Container.NetworkSettings == nil {
		return ""
	}
	ep := res.Container.NetworkSettings.Networks[network]
	if ep == nil || !ep.IPAddress.IsValid() || !ep.IPAddress.Is4() {
		return ""
	}
	return ep.IPAddress.String()
}

// hostPorts returns the published address, host:port, of every published
// TCP port of a container (by container port), as Docker reports it now.
func (ru *run) hostPorts(ctx context.Context, id string) (map[int]string, error) {
	res, err := ru.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker runtime: inspect container %.12s: %w", id, err)
	}
	out := map[int]string{}
	if res.Container.NetworkSettings == nil {
		return out, nil
	}
	v6, _ := netip.ParseAddr(ru.bindIP)
	for p, bs := range res.Container.NetworkSettings.Ports {
		if p.Proto() != "tcp" {
			continue
		}
		for _, b := range bs {
			if b.HostPort == "" || (b.HostIP.IsValid() && b.HostIP.Is6() && !v6.Is6()) {
				continue
			}
			out[int(p.Num())] = net.JoinHostPort(ru.host, b.HostPort)
			break
		}
	}
	return out, nil
}

func (ru *run) openLog(name, path string) (*containerLog, error) {
	l, err := openContainerLog(ru.logsCtx, ru.cli, name, path)
	if err != nil {
		return nil, err
	}
	ru.logsMu.Lock()
	ru.logs = append(ru.logs, l)
	ru.logsMu.Unlock()
	return l, nil
}

// followHook starts following a container's output right after each start,
// before the readiness check.
func followHook(l *containerLog) testcontainers.ContainerLifecycleHooks {
	return testcontainers.ContainerLifecycleHooks{
		PostStarts: []testcontainers.ContainerHook{func(_ context.Context, c testcontainers.Container) error {
			l.follow(c.GetContainerID())
			return nil
		}},
	}
}

// teardown stops every container of the run (SIGTERM, SIGKILL after
// grace; at once for grace 0), lets the log streams drain, then removes
// every container, network and volume labelled with the run id. Later calls return
// the first result.
//
// settle sweeps a second time after a pause: for the failure paths of a
// start, where a create request cut short may still complete.
func (ru *run) teardown(ctx context.Context, grace time.Duration, settle bool) error {
	ru.tornOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+60*time.Second)
		defer cancel()
		var errs []error
		stopRun(ctx, ru.cli, ru.spec.RunID, grace)
		ru.logsMu.Lock()
		logs := append([]*containerLog(nil), ru.logs...)
		ru.logsMu.Unlock()
		var wg sync.WaitGroup
		for _, l := range logs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.close(2 * time.Second)
			}()
		}
		wg.Wait()
		ru.logsCancel()
		removed, err := removeByLabel(ctx, ru.cli, ru.spec.RunID)
		if settle && err == nil {
			// A create cut short by a cancelled context may still complete
			// in the daemon after the first sweep saw nothing.
			time.Sleep(500 * time.Millisecond)
			var more []string
			more, err = removeByLabel(ctx, ru.cli, ru.spec.RunID)
			removed = append(removed, more...)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if err == nil {
			activeRuns.remove(ru.spec.RunID)
		}
		ru.logf("docker: run %s removed (%d containers, networks and volumes)", ru.spec.RunID, len(removed))
		ru.cli.Close()
		ru.tornErr = errors.Join(errs...)
	})
	return ru.tornErr
}

// stopRun stops every running container of the run at once, each with
// SIGTERM and SIGKILL after grace (whole seconds, rounded up; 0 = SIGKILL
// at once).
func stopRun(ctx context.Context, cli client.APIClient, runID string, grace time.Duration) {
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: runFilter(runID)})
	if err != nil {
		return
	}
	secs := int((grace + time.Second - 1) / time.Second)
	var wg sync.WaitGroup
	for _, c := range list.Items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &secs})
		}()
	}
	wg.Wait()
}

// cutShort turns the error of a start that ctx cancelled into a plain error
// that wraps ctx's (an interruption is not an infrastructure failure).
func cutShort(ctx context.Context, what string, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("docker runtime: %s cut short (%w); everything it created is removed: %v", what, ctx.Err(), err)
}

func infraf(format string, args ...any) error {
	return &targets.InfraError{Err: fmt.Errorf("docker runtime: "+format, args...)}
}

func conflictHint(err error) string {
	switch {
	case cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err):
		return " (left over from an earlier run with this id? remove it with `faultline clean`)"
	case strings.Contains(err.Error(), "address pool"):
		return " (Docker has no address range left for another network, and every node needs one: remove unused networks with `faultline clean` or `docker network prune`)"
	}
	return ""
}

// activeRuns holds the runs this process started and has not removed yet.
var activeRuns = runSet{m: map[string]bool{}}

type runSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *runSet) add(id string)    { s.mu.Lock(); s.m[id] = true; s.mu.Unlock() }
func (s *runSet) remove(id string) { s.mu.Lock(); delete(s.m, id); s.mu.Unlock() }
func (s *runSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for id := range s.m {
		out = append(out, id)
	}
	return out
}

// RemoveAll removes, within timeout, every container, network and volume
// of every run this process started and has not removed yet, without
// waiting for anything else (no graceful stop, logs may miss their last
// lines). It is the last resort of a signal handler before exiting; it
// returns how many containers, networks and volumes it removed.
func RemoveAll(timeout time.Duration) int {
	runs := activeRuns.list()
	if len(runs) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cli, err := connect(ctx)
	if err != nil {
		return 0
	}
	defer cli.Close()
	n := 0
	for _, id := range runs {
		removed, err := removeByLabel(ctx, cli, id)
		n += len(removed)
		if err == nil {
			activeRuns.remove(id)
		}
	}
	return n
}

func quoteTail(l *containerLog) string {
	if l == nil {
		return ""
	}
	t := l.tail(20)
	if t == "" {
		return " (its log " + l.path + " is empty)"
	}
	return "; the end of " + l.path + ":\n" + t
}
