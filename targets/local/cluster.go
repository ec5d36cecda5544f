//go:build unix

package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/faultline/faultline/targets"
)

// startAttempts is how many times Start tries a whole cluster when a node
// could not bind a port it was given (only without a LinkMapper: the mapper
// is called once, with the first ports).
const startAttempts = 3

// logTailLines is how many lines of a node's log an error quotes.
const logTailLines = 20

// startMarker begins the line written to a node's log before every start.
const startMarker = "=== faultline local: start node "

// Capabilities: every cluster of this runtime has process control
// (Kill, Stop, Start), pause (Pause, Resume), and a proxy can sit on every
// directed peer link and every client link (through spec.Links).
func (r *Runtime) Capabilities() targets.Capabilities {
	return targets.Capabilities{Process: true, Pause: true, Links: targets.PeerLinks}
}

// Start starts spec.Nodes as child processes and returns once every node
// is ready (its admin API answers GET targets.ReadyPath with 200), or
// returns an error after stopping whatever it started. ctx bounds the start
// only, not the cluster's life: call Close on the returned cluster (a
// *Cluster) to stop it.
//
// Every node runs as BINARY followed by targets.NodeArgs:
//
//	BINARY node --system S --id ID [--role R] --listen 127.0.0.1:P1
//	     --admin 127.0.0.1:P2 --peer-listen 127.0.0.1:P3
//	     [--peer ID2=ADDR [--peer-role ID2=R2]]... --data DIR/data/ID
//	     [--bug X]... [--opt K=V]...
//
// with its NodeSpec's role, bug switches and options, where BINARY is
// spec.Binary, or this executable when it is empty, and the --peer
// addresses come from spec.Links (direct peer addresses when it is nil).
// spec.Token, if set, is given to every node in its environment
// (targets.TokenEnv; an inherited setting is replaced), never in argv, and
// is each NodeInfo's Token. Children receive SIGKILL if this process dies (Linux
// PR_SET_PDEATHSIG). That signal follows the death of the forking thread,
// not of the process, and Go ends a thread when a goroutine locked to it
// exits; so every node is forked from one goroutine that stays locked to
// its thread for the life of the process.
//
// Errors of the infrastructure (missing binary, a node that exits or does
// not become ready) are *targets.InfraError and quote the end of the node's
// log; an unusable spec gives a plain error.
func (r *Runtime) Start(ctx context.Context, spec targets.ClusterSpec) (targets.Cluster, error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	logf := r.opts.LogFor(spec)
	binary := spec.Binary
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, &targets.InfraError{Err: fmt.Errorf("local runtime: cannot find this executable to run nodes with (%v): set ClusterSpec.Binary", err)}
		}
		binary = exe
	}
	if st, err := os.Stat(binary); err != nil {
		return nil, &targets.InfraError{Err: fmt.Errorf("local runtime: node binary %s: %w: set ClusterSpec.Binary to a faultline executable", binary, err)}
	} else if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return nil, &targets.InfraError{Err: fmt.Errorf("local runtime: node binary %s is not an executable file: set ClusterSpec.Binary to a faultline executable", binary)}
	}
	dir, err := filepath.Abs(spec.Dir)
	if err != nil {
		return nil, fmt.Errorf("local runtime: run directory %q: %w", spec.Dir, err)
	}
	for _, d := range []string{filepath.Join(dir, "nodes"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, &targets.InfraError{Err: fmt.Errorf("local runtime: create %s: %w", d, err)}
		}
	}
	for _, id := range spec.IDs() {
		if err := os.MkdirAll(filepath.Join(dir, "data", id), 0o700); err != nil {
			return nil, &targets.InfraError{Err: fmt.Errorf("local runtime: create data directory of node %s: %w", id, err)}
		}
	}

	for attempt := 1; ; attempt++ {
		c, err := r.startOnce(ctx, spec, binary, dir, logf)
		if err == nil {
			return c, nil
		}
		var se *startError
		if errors.As(err, &se) && se.bind && spec.Links == nil && attempt < startAttempts && ctx.Err() == nil {
			logf("local: node %s could not bind its port (taken since allocation); retrying with new ports (attempt %d of %d)", se.id, attempt+1, startAttempts)
			continue
		}
		if ctx.Err() != nil && !errors.As(err, &se) {
			return nil, err
		}
		return nil, &targets.InfraError{Err: err}
	}
}

// startOnce allocates ports, maps links, starts every node and waits for
// them. On failure it stops every node it started.
func (r *Runtime) startOnce(ctx context.Context, spec targets.ClusterSpec, binary, dir string, logf func(string, ...any)) (*Cluster, error) {
	ports, err := allocPorts(3 * len(spec.Nodes))
	if err != nil {
		return nil, fmt.Errorf("local runtime: allocate ports: %w", err)
	}
	addrs := make([]targets.NodeAddrs, len(spec.Nodes))
	for i, ns := range spec.Nodes {
		addrs[i] = targets.NodeAddrs{
			ID:     ns.ID,
			Client: hostPort(ports[3*i]),
			Admin:  hostPort(ports[3*i+1]),
			Peer:   hostPort(ports[3*i+2]),
		}
		if ns.Process != nil {
			addrs[i].Admin = "" // a process target has no admin API
			if ns.Process.OnePort {
				addrs[i].Peer = addrs[i].Client
			}
		}
	}
	peers, clients, err := mapLinks(ctx, spec.Links, proxiedPeers(spec, addrs))
	if err != nil {
		return nil, err
	}

	c := &Cluster{
		opts:  r.opts,
		logf:  logf,
		nodes: map[string]*node{},
	}
	for i, ns := range spec.Nodes {
		a := addrs[i]
		data := filepath.Join(dir, "data", a.ID)
		n := &node{
			c:       c,
			info:    targets.NodeInfo{NodeAddrs: a, Role: ns.Role, ClientVia: clients[a.ID], Token: spec.Token},
			binary:  binary,
			logPath: filepath.Join(dir, "nodes", a.ID+".log"),
			stopSig: syscall.SIGTERM,
			grace:   r.opts.StopTimeout,
		}
		if ns.Process != nil {
			if err := n.setProcess(spec, i, ns.Process, addrs, peers[a.ID], data); err != nil {
				return nil, err
			}
		} else {
			n.argv = targets.NodeArgs(spec, ns, a, peers[a.ID], data)
		}
		c.order = append(c.order, n)
		c.nodes[a.ID] = n
	}

	// Start every node at once; the first failure stops the others' waits.
	errs := targets.StartEach(ctx, len(c.order), func(ctx context.Context, i int) error {
		_, err := c.order[i].start(ctx)
		return err
	})
	first := targets.PickStartError(errs, preferStartErrors...)
	if first != nil {
		c.Close()
		return nil, first
	}
	for _, n := range c.order {
		logf("local: node %s ready (pid %d, client %s, admin %s, peer %s)", n.info.ID, n.pid(), n.info.Client, n.info.Admin, n.info.Peer)
	}
	return c, nil
}

// preferStartErrors ranks the nodes' start errors for targets.PickStartError: a
// node that could not bind (it decides whether Start retries), then any
// node that failed by itself, then the rest (waits cut short by the first).
var preferStartErrors = []func(error) bool{
	func(err error) bool { var se *startError; return errors.As(err, &se) && se.bind },
	func(err error) bool { var se *startError; return errors.As(err, &se) },
}

// mapLinks asks the LinkMapper for the addresses to dial and checks that it
// answered for every link. A nil mapper, or a nil map from it, means direct
// addresses.
func mapLinks(ctx context.Context, lm targets.LinkMapper, addrs []targets.NodeAddrs) (map[string]map[string]string, map[string]string, error) {
	directPeers, directClients := targets.DirectLinks(addrs)
	if lm == nil {
		return directPeers, directClients, nil
	}
	peers, clients, err := lm.MapLinks(ctx, addrs)
	if err != nil {
		return nil, nil, fmt.Errorf("local runtime: map links: %w", err)
	}
	if peers == nil {
		peers = directPeers
	}
	if clients == nil {
		clients = directClients
	}
	if err := targets.CheckLinks(addrs, peers, clients); err != nil {
		return nil, nil, fmt.Errorf("local runtime: %w (or return a nil map for direct links)", err)
	}
	return peers, clients, nil
}

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

// Cluster is a set of local node processes started by Runtime.Start. Its
// methods are safe for concurrent use. Process control on one node is
// idempotent where that is meaningful: Kill or Stop of a node that is not
// running, Start of a running node, Pause of a paused node and Resume of a
// running node do nothing and return nil.
type Cluster struct {
	opts  Options
	logf  func(string, ...any)
	order []*node
	nodes map[string]*node

	mu     sync.Mutex
	closed bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ targets.Cluster        = (*Cluster)(nil)
	_ targets.ProcessControl = (*Cluster)(nil)
	_ targets.Pauser         = (*Cluster)(nil)
)

// node is one node of a cluster. mu serialises changes of cur: a start and
// the signalling decisions; waiting (readiness, exit) happens outside it.
type node struct {
	c       *Cluster
	info    targets.NodeInfo
	binary  string
	argv    []string
	logPath string
	stopSig syscall.Signal // what Stop sends first
	grace   time.Duration  // how long Stop waits for it before SIGKILL
	// A process target's node (nil proc for faultline's own): its extra
	// environment, working directory and readiness probe.
	proc *targets.ProcessSpec
	env  []string
	dir  string

	mu  sync.Mutex
	cur *proc // the latest process; nil before the first start
}

// proc is one run of a node's process.
type proc struct {
	n   *node
	cmd *exec.Cmd
	pid int

	mu       sync.Mutex // guards reaped, expected, ready; held while reaping
	reaped   bool
	expected bool // we asked it to exit (kill, stop, close)
	ready    bool // it answered GET targets.ReadyPath once

	paused bool // Pause stopped it and no Resume continued it since; guarded by n.mu

	done    chan struct{} // closed once reaped
	waitErr error         // cmd.Wait's error; read after done
}

func (c *Cluster) node(id string) (*node, error) {
	n, ok := c.nodes[id]
	if !ok {
		ids := make([]string, len(c.order))
		for i, n := range c.order {
			ids[i] = n.info.ID
		}
		return nil, fmt.Errorf("local runtime: no node %q in this cluster (nodes: %s)", id, strings.Join(ids, ", "))
	}
	return n, nil
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Nodes returns the nodes in the order of ClusterSpec.Nodes. Addresses do
// not change for the life of the cluster, across restarts.
func (c *Cluster) Nodes() []targets.NodeInfo {
	out := make([]targets.NodeInfo, len(c.order))
	for i, n := range c.order {
		out[i] = n.info
	}
	return out
}

// PID returns the process id of the node's current process, or 0 when it
// is not running. The node's process group id is the same number.
func (c *Cluster) PID(id string) int {
	n, ok := c.nodes[id]
	if !ok {
		return 0
	}
	return n.pid()
}

// LogPath returns the file that receives the node's output.
func (c *Cluster) LogPath(id string) string {
	n, ok := c.nodes[id]
	if !ok {
		return ""
	}
	return n.logPath
}

// Kill sends SIGKILL to the node's process group and returns once the
// process is reaped, so its ports are free. A paused node is killed too.
func (c *Cluster) Kill(ctx context.Context, id string) error {
	return c.ifRunning(id, func(p *proc) error {
		p.expect()
		p.signal(syscall.SIGKILL)
		c.logf("local: node %s killed (pid %d)", id, p.pid)
		return p.wait(ctx)
	})
}

// Stop sends SIGTERM to the node's process group (and SIGCONT, so a paused
// node handles it), waits up to Options.StopTimeout for the process to
// exit, then sends SIGKILL. It returns once the process is reaped.
func (c *Cluster) Stop(ctx context.Context, id string) error {
	return c.ifRunning(id, func(p *proc) error {
		c.logf("local: stopping node %s (pid %d)", id, p.pid)
		return p.terminate(ctx, p.n.stopSig, p.n.grace)
	})
}

// ifRunning runs f on node id's process if it is running, and does nothing
// if it is not.
func (c *Cluster) ifRunning(id string, f func(p *proc) error) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if p := n.running(); p != nil {
		return f(p)
	}
	return nil
}

// Start starts a node that was killed, stopped or exited, with the same
// ports, arguments and data directory, and waits until it is ready; if it
// does not get ready, Start kills it and returns an InfraError quoting its
// log. Start of a running node returns nil at once (it does not resume a
// paused node), or, while another Start of it is in progress, waits for
// that node to be ready.
func (c *Cluster) Start(ctx context.Context, id string) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	spawned, err := n.start(ctx)
	if err != nil {
		var se *startError
		if errors.As(err, &se) {
			return &targets.InfraError{Err: err}
		}
		return err
	}
	if spawned {
		// Only what changed is logged: the heal starts every node a
		// fault touched, most of them running again by then.
		c.logf("local: node %s started (pid %d)", id, n.pid())
	}
	return nil
}

// Pause sends SIGSTOP to the node's process group. On Linux it returns once
// the process is stopped. Pausing a node that is not running is an error.
func (c *Cluster) Pause(ctx context.Context, id string) error {
	return c.signalRunning(ctx, id, syscall.SIGSTOP, true, "pause", "paused")
}

// Resume sends SIGCONT to the node's process group. Resuming a node that is
// not paused does nothing; resuming one that is not running is an error.
func (c *Cluster) Resume(ctx context.Context, id string) error {
	return c.signalRunning(ctx, id, syscall.SIGCONT, false, "resume", "resumed")
}

// signalRunning sends sig to a running node's process group and waits (on
// Linux) until the process is stopped or running again, as stopped says.
func (c *Cluster) signalRunning(ctx context.Context, id string, sig syscall.Signal, stopped bool, verb, done string) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	n.mu.Lock()
	p := n.cur
	if p == nil || p.isReaped() {
		n.mu.Unlock()
		return fmt.Errorf("local runtime: cannot %s node %s: it is not running", verb, id)
	}
	p.signal(sig)
	// A resume of a node that was not paused changes nothing, and is not
	// logged (the heal resumes every node a fault touched).
	changed := p.paused != stopped
	p.paused = stopped
	n.mu.Unlock()
	waitState(ctx, p.pid, stopped)
	if changed {
		c.logf("local: node %s %s (pid %d)", id, done, p.pid)
	}
	return nil
}

// Close terminates every node (SIGTERM and SIGCONT to each process group,
// then SIGKILL after Options.CloseGrace) and reaps them. Logs and data stay in the run directory. Later calls return
// the first call's result; process control after Close fails.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		errs := make([]error, len(c.order))
		var wg sync.WaitGroup
		for i, n := range c.order {
			n.mu.Lock() // waits for a start in progress to spawn its process
			p := n.cur
			n.mu.Unlock()
			if p == nil || p.isReaped() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.terminate(context.Background(), n.stopSig, c.opts.CloseGrace); err != nil {
					errs[i] = fmt.Errorf("node %s: %w", n.info.ID, err)
				}
			}()
		}
		wg.Wait()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// running returns the node's process if it has not exited.
func (n *node) running() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cur == nil || n.cur.isReaped() {
		return nil
	}
	return n.cur
}

func (n *node) pid() int {
	if p := n.running(); p != nil {
		return p.pid
	}
	return 0
}

// startError is a node that failed to start.
type startError struct {
	id   string
	bind bool // its log says a port was taken
	msg  string
}

func (e *startError) Error() string { return e.msg }

// start spawns the node unless it is running, then waits until it is
// ready; spawned says whether it started a process. A failure leaves no
// process behind.
func (n *node) start(ctx context.Context) (spawned bool, err error) {
	n.mu.Lock()
	if n.c.isClosed() {
		n.mu.Unlock()
		return false, fmt.Errorf("local runtime: cannot start node %s: the cluster is closed", n.info.ID)
	}
	p := n.cur
	if p == nil || p.isReaped() {
		p, err = n.spawn()
		if err != nil {
			n.mu.Unlock()
			return false, err
		}
		n.cur = p
		spawned = true
	}
	n.mu.Unlock()

	if !spawned && p.isReady() {
		return false, nil // running (perhaps paused: Start does not resume)
	}
	err = n.waitReady(ctx, p)
	if err == nil {
		p.mu.Lock()
		p.ready = true
		p.mu.Unlock()
	} else if spawned {
		p.expect()
		p.signal(syscall.SIGKILL)
		<-p.done
	}
	return spawned, err
}

// spawn writes the start marker and starts the process. Called with n.mu.
func (n *node) spawn() (*proc, error) {
	logf, err := os.OpenFile(n.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, &targets.InfraError{Err: fmt.Errorf("local runtime: open log of node %s: %w", n.info.ID, err)}
	}
	defer logf.Close() // the child holds its own copy
	fmt.Fprintf(logf, "%s%s at %s: %s %s\n", startMarker, n.info.ID,
		time.Now().UTC().Format(time.RFC3339Nano), n.binary, strings.Join(n.argv, " "))

	cmd := exec.Command(n.binary, n.argv...)
	// The token goes in the environment, which only this user can read
	// (/proc/PID/environ is 0400), never in argv, which `ps` shows. A
	// process target gets none (it would not know what to do with it),
	// but its own variables.
	cmd.Env = append(targets.NodeEnv(nil, n.info.Token), n.env...)
	cmd.Dir = n.dir
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := spawn(cmd); err != nil {
		fmt.Fprintf(logf, "=== faultline local: node %s could not start: %v\n", n.info.ID, err)
		return nil, &targets.InfraError{Err: fmt.Errorf("local runtime: start node %s (%s): %w", n.info.ID, n.binary, err)}
	}
	p := &proc{n: n, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	register(p)
	go p.reap()
	return p, nil
}

// waitReady waits until the node answers GET targets.ReadyPath with 200.
// It fails as soon as the process exits, or after Options.ReadyTimeout,
// with a *startError quoting the node's log.
func (n *node) waitReady(ctx context.Context, p *proc) error {
	exited := func(context.Context) error {
		select {
		case <-p.done:
			return errors.New(exitText(p.waitErr))
		default:
			return nil
		}
	}
	var err error
	if n.proc != nil {
		err = n.proc.WaitProbe(ctx, n.proc.ProbeAddr(n.info.Client, n.info.Peer), n.c.opts.ReadyTimeout, exited)
	} else {
		err = targets.WaitReady(ctx, n.info.Admin, targets.ReadyPath, n.info.Token, n.c.opts.ReadyTimeout, exited)
	}
	var nr *targets.NotReadyError
	if !errors.As(err, &nr) {
		if err != nil {
			return fmt.Errorf("local runtime: waiting for node %s to be ready: %w", n.info.ID, err)
		}
		return nil
	}
	tail, bind := logTail(n.logPath)
	hint := bindHint(bind)
	if nr.Exited == nil {
		hint = "; raise the ready timeout if it is just slow"
	}
	return &startError{id: n.info.ID, bind: bind, msg: fmt.Sprintf(
		"local runtime: node %s %v%s; its log is %s, last lines:\n%s",
		n.info.ID, nr, hint, n.logPath, tail)}
}

func bindHint(bind bool) string {
	if !bind {
		return ""
	}
	return "; a port it was given was taken by another process between allocation and start (address already in use): run again"
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail returns the last lines written since the latest start marker, and
// whether they report a port already in use.
func logTail(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "    (log unreadable: " + err.Error() + ")", false
	}
	defer f.Close()
	const max = 64 << 10
	var off int64
	if st, err := f.Stat(); err == nil && st.Size() > max {
		off = st.Size() - max
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, off, max))
	if i := bytes.LastIndex(b, []byte(startMarker)); i >= 0 {
		b = b[i:]
		if j := bytes.IndexByte(b, '\n'); j >= 0 {
			b = b[j+1:]
		} else {
			b = nil
		}
	}
	text := strings.TrimRight(string(b), "\n")
	if text == "" {
		return "    (empty)", false
	}
	lines := strings.Split(text, "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	bind := strings.Contains(text, "address already in use")
	return "    " + strings.Join(lines, "\n    "), bind
}

func (p *proc) isReaped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reaped
}

func (p *proc) isReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

func (p *proc) expect() {
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
}

// signal sends sig to the process group unless the process is reaped. On
// Linux the process is not reaped before the group is done with, so the
// group id cannot name another group.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		_ = syscall.Kill(-p.pid, sig) // ESRCH: already gone
	}
}

// wait returns once the process is reaped or ctx is done.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("local runtime: waiting for node %s (pid %d) to exit: %w", p.n.info.ID, p.pid, ctx.Err())
	}
}

// terminate sends sig (and SIGCONT for a paused process), waits up to
// grace, then sends SIGKILL, and returns once the process is reaped.
func (p *proc) terminate(ctx context.Context, sig syscall.Signal, grace time.Duration) error {
	p.expect()
	p.signal(sig)
	p.signal(syscall.SIGCONT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		p.n.c.logf("local: node %s (pid %d) still running %v after %v; sending SIGKILL", p.n.info.ID, p.pid, grace, sig)
	case <-ctx.Done():
	}
	p.signal(syscall.SIGKILL)
	// SIGKILL cannot be ignored; waiting is bounded unless the process is
	// stuck in the kernel, so ctx is not needed for correctness here.
	kt := time.NewTimer(10 * time.Second)
	defer kt.Stop()
	select {
	case <-p.done:
		return nil
	case <-kt.C:
		return fmt.Errorf("local runtime: node %s (pid %d) did not exit 10s after SIGKILL", p.n.info.ID, p.pid)
	}
}

// reap waits for the process to exit, kills what is left of its group,
// reaps it and records the exit in its log.
func (p *proc) reap() {
	if waitNoReap != nil {
		waitNoReap(p.pid) // the process is a zombie now: its pid stays taken
		p.mu.Lock()
		unregister(p)
		_ = syscall.Kill(-p.pid, syscall.SIGKILL) // leftover group members
		p.waitErr = p.cmd.Wait()
		p.reaped = true
		p.mu.Unlock()
	} else {
		err := p.cmd.Wait()
		p.mu.Lock()
		unregister(p)
		p.waitErr = err
		p.reaped = true
		p.mu.Unlock()
	}
	p.mu.Lock()
	expected := p.expected
	p.mu.Unlock()
	n := p.n
	if f, err := os.OpenFile(n.logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "=== faultline local: node %s (pid %d) exited at %s: %s\n", n.info.ID, p.pid,
			time.Now().UTC().Format(time.RFC3339Nano), exitText(p.waitErr))
		f.Close()
	}
	if !expected && !n.c.isClosed() {
		n.c.logf("local: node %s (pid %d) exited on its own: %s (see %s)", n.info.ID, p.pid, exitText(p.waitErr), n.logPath)
	}
	close(p.done)
}

// The spawner: one goroutine, locked to its OS thread for the life of the
// process, forks every node, so the parent-death signal fires only when
// this process dies (it follows the forking thread).
type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawnCh {
				r.res <- r.cmd.Start()
			}
		}()
	})
	req := spawnReq{cmd: cmd, res: make(chan error, 1)}
	spawnCh <- req
	return <-req.res
}

// The registry of live node processes in this process, for KillAll.
var live struct {
	mu    sync.Mutex
	procs map[*proc]struct{}
}

func register(p *proc) {
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.procs == nil {
		live.procs = map[*proc]struct{}{}
	}
	live.procs[p] = struct{}{}
}

func unregister(p *proc) {
	live.mu.Lock()
	defer live.mu.Unlock()
	delete(live.procs, p)
}

// KillAll sends SIGKILL (and SIGCONT) to the process group of every node
// process that any cluster of this process started and that has not been
// reaped yet, then waits up to timeout for them to be reaped. It returns
// how many it signalled. It is a last resort for a signal handler or a
// deferred cleanup in main: the normal path is Cluster.Close. Safe to call
// at any time and from any goroutine; clusters stay usable (their nodes
// count as killed).
func KillAll(timeout time.Duration) int {
	live.mu.Lock()
	procs := make([]*proc, 0, len(live.procs))
	for p := range live.procs {
		procs = append(procs, p)
	}
	live.mu.Unlock()
	for _, p := range procs {
		p.expect()
		p.signal(syscall.SIGKILL)
		p.signal(syscall.SIGCONT)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-t.C:
			return len(procs)
		}
	}
	return len(procs)
}
