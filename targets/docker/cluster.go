package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/faultline/faultline/targets"
)

// Start starts spec.Nodes as containers of the run StartProxy prepared for
// spec.RunID, each with a data volume of its own at DataDir and
// spec.Token (if set) in its environment (targets.TokenEnv), and returns
// once every node is ready (its admin API answers GET targets.ReadyPath
// with 200, the token sent), or returns an error after
// removing every container, network and volume of the run (the proxy's
// too). ctx bounds the start only; call Close on the returned
// cluster (a *Cluster) to remove it.
//
// spec.Links is required: Start calls its MapLinks once, with every node's
// in-network addresses (ALIAS:7000 client, ALIAS:7001 admin, ALIAS:7002
// peer), before any node starts, and gives each node the peer addresses it
// returns (they must be reachable from the node's network: the proxy's).
// Client addresses it returns are used as NodeInfo.ClientVia (a returned
// in-network client address, a client link without a proxy, is replaced
// by the node's address as reached from here: see Nodes).
//
// Errors of the infrastructure are *targets.InfraError and quote the end
// of the node's log; an unusable spec, or Start without StartProxy, gives a
// plain error.
func (r *Runtime) Start(ctx context.Context, spec targets.ClusterSpec) (targets.Cluster, error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	r.mu.Lock()
	ru, reserved := r.runs[spec.RunID]
	if ru != nil {
		delete(r.runs, spec.RunID)
	}
	r.mu.Unlock()
	if ru == nil {
		if reserved {
			return nil, fmt.Errorf("docker runtime: Start of run %q while its StartProxy is still running: wait for StartProxy to return", spec.RunID)
		}
		return nil, fmt.Errorf("docker runtime: no proxy for run %q: call StartProxy with the same spec first (nodes reach peers only through the run's proxy container) and pass a faults.Links built from its placement as ClusterSpec.Links", spec.RunID)
	}
	fail := func(err error) (targets.Cluster, error) {
		ru.teardown(context.Background(), 0, true)
		return nil, cutShort(ctx, "Start", err)
	}
	if spec.Links == nil {
		return fail(errors.New("docker runtime: ClusterSpec.Links is nil: nodes reach peers only through the proxy; build a faults.Links from StartProxy's placement and pass it"))
	}
	if !slices.Equal(spec.IDs(), ru.spec.IDs()) {
		return fail(fmt.Errorf("docker runtime: Start's nodes %v differ from StartProxy's %v: give both the same spec", spec.IDs(), ru.spec.IDs()))
	}
	if spec.Log != nil {
		ru.logf = spec.Log
	}
	c, err := ru.startCluster(ctx, spec)
	if err != nil {
		return fail(err)
	}
	return c, nil
}

func (ru *run) startCluster(ctx context.Context, spec targets.ClusterSpec) (*Cluster, error) {
	t0 := time.Now()
	addrs := make([]targets.NodeAddrs, len(spec.Nodes))
	for i, id := range spec.IDs() {
		a := ru.alias[id]
		addrs[i] = targets.NodeAddrs{
			ID:     id,
			Client: net.JoinHostPort(a, strconv.Itoa(ClientPort)),
			Admin:  net.JoinHostPort(a, strconv.Itoa(AdminPort)),
			Peer:   net.JoinHostPort(a, strconv.Itoa(PeerPort)),
		}
		if spec.Nodes[i].Process != nil {
			addrs[i] = ru.processAddrs(i, id)
		}
	}
	peers, clients, err := spec.Links.MapLinks(ctx, addrs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("docker runtime: map links: %w", err)
		}
		return nil, infraf("map links through the proxy at %s: %w", ru.apiAddr, err)
	}
	if err := targets.CheckLinks(addrs, peers, clients); err != nil {
		return nil, fmt.Errorf("docker runtime: %w", err)
	}

	ops, opsCancel := context.WithCancel(context.Background())
	c := &Cluster{
		ru:        ru,
		opts:      ru.opts,
		nodes:     map[string]*node{},
		ops:       ops,
		opsCancel: opsCancel,
	}
	for i, ns := range spec.Nodes {
		id, a := ns.ID, ru.alias[ns.ID]
		listen := targets.NodeAddrs{
			ID:     id,
			Client: "0.0.0.0:" + strconv.Itoa(ClientPort),
			Admin:  "0.0.0.0:" + strconv.Itoa(AdminPort),
			Peer:   addrs[i].Peer,
		}
		l, err := ru.openLog("node "+id, filepath.Join(ru.dir, "nodes", id+".log"))
		if err != nil {
			return nil, &targets.InfraError{Err: err}
		}
		n := &node{
			id: id, alias: a, name: ru.prefix + a, net: ru.nets[id], vol: ru.prefix + a + DataVolumeSuffix,
			log:       l,
			clientVia: clients[id], inClient: addrs[i].Client,
			info: targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: id, Peer: addrs[i].Peer}, Role: ns.Role, Token: spec.Token},
		}
		if ns.Process != nil {
			n.info.Token = "" // its APIs are its own
			if err := ru.setProcess(n, i, peers[id]); err != nil {
				return nil, err
			}
		} else {
			n.argv = targets.NodeArgs(spec, ns, listen, peers[id], DataDir)
		}
		c.order = append(c.order, n)
		c.nodes[id] = n
	}

	errs := targets.StartEach(ctx, len(c.order), func(ctx context.Context, i int) error { return c.create(ctx, c.order[i]) })
	if err := targets.PickStartError(errs, ownFailure); err != nil {
		c.opsCancel()
		return nil, err
	}
	for _, n := range c.order {
		info := n.nodeInfo()
		ru.logf("docker: node %s ready (container %s, client %s via %s, admin %s)", n.id, n.name, info.Client, info.ClientVia, info.Admin)
	}
	ru.logf("docker: %d nodes of run %s ready in %s", len(c.order), spec.RunID, time.Since(t0).Round(time.Millisecond))
	return c, nil
}

// ownFailure is a node's own failure (an infrastructure error that is not
// a start cut short by another's), which targets.PickStartError prefers.
func ownFailure(err error) bool {
	var ie *targets.InfraError
	return errors.As(err, &ie) && !errors.Is(err, context.Canceled)
}

// Cluster is a set of node containers, with their data volumes, started by
// Runtime.Start, plus the run's proxy container and networks. Its methods
// are safe for concurrent use; process control of one node is serialised
// (a Kill waits for a Start of the same node in progress). Like the local
// runtime, Kill or Stop of a node that is not running, Start of a running
// node, Pause of a paused node and Resume of a running node do nothing and
// return nil.
type Cluster struct {
	ru    *run
	opts  Options
	order []*node
	nodes map[string]*node

	ops       context.Context // cancelled by Close: ends every operation in progress
	opsCancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

var (
	_ targets.Cluster        = (*Cluster)(nil)
	_ targets.ProcessControl = (*Cluster)(nil)
	_ targets.Pauser         = (*Cluster)(nil)
)

// node is one node container.
type node struct {
	id, alias, name, net string
	vol                  string // named volume mounted at /data
	argv                 []string
	log                  *containerLog
	// A process target's node (nil proc for faultline's own): argv is its
	// whole command (argv[0] the binary), with env, working directory and
	// extra hosts entries (NAME:IP).
	proc      *targets.ProcessSpec
	env       map[string]string
	dir       string
	hosts     []string
	clientVia string // from MapLinks
	inClient  string // ALIAS:7000

	mu  sync.Mutex // serialises process control
	ctr *testcontainers.DockerContainer

	amu  sync.Mutex // guards info
	info targets.NodeInfo
}

func (n *node) nodeInfo() targets.NodeInfo {
	n.amu.Lock()
	defer n.amu.Unlock()
	return n.info
}

func (n *node) containerID() string {
	n.amu.Lock()
	defer n.amu.Unlock()
	if n.ctr == nil {
		return ""
	}
	return n.ctr.ID
}

// create creates the node's data volume, then creates and starts the
// node's container with the volume at /data, and waits until it is ready.
func (c *Cluster) create(ctx context.Context, n *node) error {
	ru := c.ru
	if err := ru.createVolume(ctx, n); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("docker runtime: start of node %s cut short: %w", n.id, ctx.Err())
		}
		return err
	}
	// Only what faultline dials is published, and only when it cannot
	// reach the container's own address (see run.direct): the admin port,
	// and the client port when the client link has no proxy (faultline
	// then dials the node itself). The token, if any, goes in the
	// environment, not on the command line.
	var exposed []string
	if !ru.direct {
		if n.proc == nil {
			exposed = append(exposed, portSpec(AdminPort))
		}
		if n.unproxied() || n.proc != nil { // a process node's status is read on its client port
			exposed = append(exposed, portSpec(ClientPort))
		}
	}
	env := map[string]string{}
	if tok := n.nodeInfo().Token; tok != "" {
		env[targets.TokenEnv] = string(tok)
	}
	image, entry, cmd := ru.image, []string(nil), n.argv
	if n.proc != nil {
		image, entry, cmd, env = ru.procImage, n.argv[:1], n.argv[1:], n.env
	}
	req := testcontainers.ContainerRequest{
		Image:          image,
		Entrypoint:     entry,
		Cmd:            cmd,
		Env:            env,
		ExposedPorts:   exposed,
		Labels:         runLabels(ru.spec.RunID, LabelRole, "node", LabelNode, n.id),
		Name:           n.name,
		Networks:       []string{n.net},
		NetworkAliases: map[string][]string{n.net: {n.alias}},
		ConfigModifier: func(cfg *container.Config) {
			cfg.Hostname = n.alias
			if n.proc != nil {
				cfg.WorkingDir = n.dir
				cfg.StopSignal = n.proc.SignalName()
			}
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = container.NetworkMode(n.net)
			hc.ExtraHosts = n.hosts
			hc.PortBindings = ru.bindings(exposed)
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: n.vol, Target: DataDir})
		},
		LifecycleHooks: []testcontainers.ContainerLifecycleHooks{followHook(n.log)},
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req, Started: true, Logger: tclog.NewNoopLogger(),
	})
	if dc, ok := ctr.(*testcontainers.DockerContainer); ok && dc != nil {
		n.amu.Lock()
		n.ctr = dc
		n.amu.Unlock()
	}
	if err != nil {
		return c.startFailed(ctx, n, err)
	}
	return c.waitReady(ctx, n)
}

// waitReady reads the node's published ports (they change with every start
// of its container) and waits until it answers GET targets.ReadyPath with
// 200 there. If it does not, because its container exited or
// Options.ReadyTimeout passed, waitReady kills it and returns an
// InfraError quoting its log.
func (c *Cluster) waitReady(ctx context.Context, n *node) error {
	exited := func(ctx context.Context) error {
		st, err := c.state(ctx, n)
		if err != nil || st.Running {
			return nil // an inspect that failed says nothing: the wait goes on
		}
		return fmt.Errorf("container %s, exit code %d", st.Status, st.ExitCode)
	}
	if err := c.refresh(ctx, n); err != nil {
		if why := exited(ctx); why != nil { // a container that has exited publishes no ports
			err = &targets.NotReadyError{Exited: why}
		}
		return c.startFailed(ctx, n, err)
	}
	info := n.nodeInfo()
	var err error
	if n.proc != nil {
		addr := info.Client
		if n.proc.Ready.Port == "peer" {
			// The peer port is not published: only a process that
			// reaches the container's own address can probe it.
			ip := c.ru.containerIP(ctx, n.containerID(), n.net)
			if !c.ru.direct || ip == "" {
				return c.startFailed(ctx, n, errors.New("the readiness probe on the peer port needs this process to reach the container's own address (a local Docker daemon); probe the client port instead (ready: {port: client})"))
			}
			addr = net.JoinHostPort(ip, strconv.Itoa(ProcessPeerPort(c.ru.index[n.id])))
		}
		err = n.proc.WaitProbe(ctx, addr, c.opts.ReadyTimeout, exited)
	} else {
		err = targets.WaitReady(ctx, info.Admin, targets.ReadyPath, info.Token, c.opts.ReadyTimeout, exited)
	}
	if err != nil {
		return c.startFailed(ctx, n, err)
	}
	return nil
}

// createVolume creates the node's data volume, labelled like the run's
// other resources. Docker's create returns an existing volume of that name
// as is, so a volume already there (left over from an earlier run with this
// id, with its data) is refused rather than reused.
func (ru *run) createVolume(ctx context.Context, n *node) error {
	if _, err := ru.cli.VolumeInspect(ctx, n.vol, client.VolumeInspectOptions{}); err == nil {
		return infraf("create volume %s for node %s's %s: it already exists (left over from an earlier run with this id? remove it with `faultline clean`)", n.vol, n.id, DataDir)
	} else if !cerrdefs.IsNotFound(err) {
		return infraf("inspect volume %s for node %s's %s: %w", n.vol, n.id, DataDir, err)
	}
	_, err := ru.cli.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name:   n.vol,
		Labels: runLabels(ru.spec.RunID, LabelNode, n.id),
	})
	if err != nil {
		return infraf("create volume %s for node %s's %s: %w", n.vol, n.id, DataDir, err)
	}
	return nil
}

// startFailed kills a node that did not get ready and describes why.
func (c *Cluster) startFailed(ctx context.Context, n *node, err error) error {
	if id := n.containerID(); id != "" {
		kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.ru.cli.ContainerKill(kctx, id, client.ContainerKillOptions{Signal: "KILL"})
		cancel()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("docker runtime: start of node %s cut short: %w", n.id, ctx.Err())
	}
	n.log.wait(time.Second)
	probe := fmt.Sprintf("GET %s must answer 200", targets.ReadyPath)
	if n.proc != nil {
		probe = "its " + n.proc.Ready.Kind + " readiness probe must pass"
	}
	return infraf("node %s did not become ready (%s within %s): %w%s", n.id, probe, c.opts.ReadyTimeout, err, quoteTail(n.log))
}

// unproxied reports whether the LinkMapper left the node's client link
// without a proxy (it returned the node's in-network client address).
func (n *node) unproxied() bool { return n.clientVia == n.inClient }

// refresh re-reads the node's client and admin addresses: its own address
// on its network when run.direct, else its published admin port (and
// client port, when its client link has no proxy): they change when the
// container starts again.
func (c *Cluster) refresh(ctx context.Context, n *node) error {
	var clientAddr, admin string
	if c.ru.direct {
		ip := c.ru.containerIP(ctx, n.containerID(), n.net)
		if ip == "" {
			return infraf("node %s runs but has no IPv4 address on network %s", n.id, n.net)
		}
		clientAddr = net.JoinHostPort(ip, strconv.Itoa(ClientPort))
		if n.proc == nil {
			admin = net.JoinHostPort(ip, strconv.Itoa(AdminPort))
		}
	} else {
		ports, err := c.ru.hostPorts(ctx, n.containerID())
		if err != nil {
			return &targets.InfraError{Err: err}
		}
		admin, clientAddr = ports[AdminPort], n.inClient // not published: clients dial the client link's proxy
		if n.unproxied() || n.proc != nil {
			clientAddr = ports[ClientPort]
		}
		if clientAddr == "" || (admin == "" && n.proc == nil) {
			return infraf("node %s runs but its admin port %d (or its client port %d, which its unproxied client link needs) is not published (published: %v)", n.id, AdminPort, ClientPort, ports)
		}
	}
	n.amu.Lock()
	defer n.amu.Unlock()
	n.info.Client = clientAddr
	n.info.Admin = admin
	n.info.ClientVia = n.clientVia
	if n.unproxied() {
		n.info.ClientVia = clientAddr
	}
	return nil
}

func (c *Cluster) node(id string) (*node, error) {
	n, ok := c.nodes[id]
	if !ok {
		ids := make([]string, len(c.order))
		for i, n := range c.order {
			ids[i] = n.id
		}
		return nil, fmt.Errorf("docker runtime: no node %q in this cluster (nodes: %s)", id, strings.Join(ids, ", "))
	}
	return n, nil
}

// Nodes returns the nodes in the order of ClusterSpec.Nodes. When this
// process reaches the containers' own addresses (a local daemon), Client
// and Admin are the container's address on its network (nothing is
// published); else Admin is a published port, and Client is a published
// port when the client link has no proxy, else the in-network ALIAS:7000
// (not reachable from here, and not published: clients dial ClientVia).
// Both are as of the node's latest start (they change across restarts:
// call Nodes again). Peer is its in-network address (ALIAS:7002);
// ClientVia is the client link's proxy, which does not change. Token is
// the ClusterSpec's: both APIs require it when set.
func (c *Cluster) Nodes() []targets.NodeInfo {
	out := make([]targets.NodeInfo, len(c.order))
	for i, n := range c.order {
		out[i] = n.nodeInfo()
	}
	return out
}

// RunID returns the run id the cluster's resources are labelled with.
func (c *Cluster) RunID() string { return c.ru.spec.RunID }

// LogPath returns the file that receives the node's output ("" for an
// unknown node); "proxy" names the proxy's.
func (c *Cluster) LogPath(id string) string {
	if id == "proxy" {
		return filepath.Join(c.ru.dir, "nodes", "proxy.log")
	}
	n, ok := c.nodes[id]
	if !ok {
		return ""
	}
	return n.log.path
}

// ContainerName returns the Docker name of the node's container, or of the
// proxy's for "proxy".
func (c *Cluster) ContainerName(id string) string {
	if id == "proxy" {
		return c.ru.prefix + "proxy"
	}
	n, ok := c.nodes[id]
	if !ok {
		return ""
	}
	return n.name
}

// VolumeName returns the name of the node's data volume, mounted at
// DataDir ("" for an unknown node).
func (c *Cluster) VolumeName(id string) string {
	n, ok := c.nodes[id]
	if !ok {
		return ""
	}
	return n.vol
}

// NetworkName returns the name of the node's own network.
func (c *Cluster) NetworkName(id string) string {
	n, ok := c.nodes[id]
	if !ok {
		return ""
	}
	return n.net
}

// ProxyAPI returns the Toxiproxy API address of the run, host:port: the
// proxy container's own address when this process reaches it, else a
// published port. It requires the run's token when there is one.
func (c *Cluster) ProxyAPI() string { return c.ru.apiAddr }

// state returns the container's state as Docker reports it.
func (c *Cluster) state(ctx context.Context, n *node) (*container.State, error) {
	res, err := c.ru.cli.ContainerInspect(ctx, n.containerID(), client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker runtime: inspect node %s (container %s): %w", n.id, n.name, err)
	}
	if res.Container.State == nil {
		return &container.State{}, nil
	}
	return res.Container.State, nil
}

// control runs f on node id with the node's lock held and a context that
// Close cancels.
func (c *Cluster) control(ctx context.Context, id string, f func(ctx context.Context, n *node) error) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	ctx, cancel := mergeCtx(ctx, c.ops)
	defer cancel()
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.ops.Err() != nil {
		return fmt.Errorf("docker runtime: node %s: the cluster is closed", id)
	}
	return f(ctx, n)
}

// change is one process-control operation on node id. With the node's
// lock held (see control), it reads the container's state and asks skip
// about it: true means there is nothing to do, an error that the operation
// is impossible. Otherwise it runs act and logs "node ID done" (unless
// done is "": act logs).
func (c *Cluster) change(ctx context.Context, id, done string, skip func(st *container.State) (bool, error), act func(ctx context.Context, n *node) error) error {
	return c.control(ctx, id, func(ctx context.Context, n *node) error {
		st, err := c.state(ctx, n)
		if err != nil {
			return err
		}
		if ok, err := skip(st); ok || err != nil {
			return err
		}
		if err := act(ctx, n); err != nil {
			return err
		}
		if done != "" {
			c.ru.logf("docker: node %s %s", id, done)
		}
		return nil
	})
}

// notRunning is the skip of Kill and Stop: a stopped container has nothing
// to do.
func notRunning(st *container.State) (bool, error) { return !st.Running, nil }

// pausedIs is the skip of Pause (paused = true) and Resume (false): an
// error for a container that is not running, nothing to do for one that
// already is as paused says.
func pausedIs(paused bool, verb, id string) func(st *container.State) (bool, error) {
	return func(st *container.State) (bool, error) {
		if !st.Running {
			return false, fmt.Errorf("docker runtime: cannot %s node %s: it is not running", verb, id)
		}
		return st.Paused == paused, nil
	}
}

// apiErr names the operation and node of a failed Docker API call.
func apiErr(verb string, n *node, err error) error {
	if err != nil {
		return fmt.Errorf("docker runtime: %s node %s: %w", verb, n.id, err)
	}
	return nil
}

// Kill sends SIGKILL to the node's container (paused or not) and returns
// once Docker reports it stopped. Its data stays in its volume.
func (c *Cluster) Kill(ctx context.Context, id string) error {
	return c.change(ctx, id, "killed", notRunning, func(ctx context.Context, n *node) error {
		_, err := c.ru.cli.ContainerKill(ctx, n.containerID(), client.ContainerKillOptions{Signal: "KILL"})
		if err != nil {
			return apiErr("kill", n, err)
		}
		return c.waitStopped(ctx, n)
	})
}

// waitStopped polls until Docker reports the container not running.
func (c *Cluster) waitStopped(ctx context.Context, n *node) error {
	for {
		st, err := c.state(ctx, n)
		if err != nil {
			return err
		}
		if !st.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker runtime: node %s still running: %w", n.id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops the node's container: SIGTERM (a paused container is
// resumed by Docker to handle it), then SIGKILL after Options.StopTimeout.
// It returns once the container has stopped.
func (c *Cluster) Stop(ctx context.Context, id string) error {
	return c.change(ctx, id, "stopped", notRunning, func(ctx context.Context, n *node) error {
		grace, sig := c.opts.StopTimeout, ""
		if n.proc != nil {
			grace, sig = n.proc.Grace(), n.proc.SignalName()
		}
		secs := int((grace + time.Second - 1) / time.Second)
		_, err := c.ru.cli.ContainerStop(ctx, n.containerID(), client.ContainerStopOptions{Timeout: &secs, Signal: sig})
		return apiErr("stop", n, err)
	})
}

// Start starts the node's stopped or killed container again (same data
// volume; a new address, or new published ports) and waits until it is ready; if it does not
// get ready, Start kills it and returns an InfraError quoting its log.
// Start of a running (or paused) node returns nil at once.
func (c *Cluster) Start(ctx context.Context, id string) error {
	running := func(st *container.State) (bool, error) { return st.Running, nil }
	return c.change(ctx, id, "", running, func(ctx context.Context, n *node) error {
		if err := n.ctr.Start(ctx); err != nil {
			return c.startFailed(ctx, n, err)
		}
		if err := c.waitReady(ctx, n); err != nil {
			return err
		}
		info := n.nodeInfo()
		c.ru.logf("docker: node %s started (client %s, admin %s)", id, info.Client, info.Admin)
		return nil
	})
}

// Pause freezes every process of the node's container (docker pause, the
// cgroup freezer). Pausing a node that is not running is an error; pausing
// a paused node does nothing.
func (c *Cluster) Pause(ctx context.Context, id string) error {
	return c.change(ctx, id, "paused", pausedIs(true, "pause", id), func(ctx context.Context, n *node) error {
		_, err := c.ru.cli.ContainerPause(ctx, n.containerID(), client.ContainerPauseOptions{})
		return apiErr("pause", n, err)
	})
}

// Resume thaws a paused node. Resuming a node that is not running is an
// error; resuming a running node does nothing.
func (c *Cluster) Resume(ctx context.Context, id string) error {
	return c.change(ctx, id, "resumed", pausedIs(false, "resume", id), func(ctx context.Context, n *node) error {
		_, err := c.ru.cli.ContainerUnpause(ctx, n.containerID(), client.ContainerUnpauseOptions{})
		return apiErr("resume", n, err)
	})
}

// Close ends any operation in progress, stops every container of the run
// (SIGTERM, SIGKILL after Options.CloseGrace) so that logs are complete,
// and removes every container, network and volume labelled with the run
// id, the proxy's included. Logs stay in the run directory; node data (the
// nodes' volumes) is removed. Later calls return the first call's result;
// process control after Close fails.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.opsCancel()
		c.closeErr = c.ru.teardown(context.Background(), c.opts.CloseGrace, false)
	})
	return c.closeErr
}
