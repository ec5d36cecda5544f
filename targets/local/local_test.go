//go:build linux

package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/internal/runtimetest"
	"github.com/faultline/faultline/targets"
)

// The test binary doubles as the node binary: the runtime runs
// `os.Args[0] node --system ...`, and TestMain serves a fake node then.
// With parentEnv set, it is instead a faultline-like parent that starts a
// one-node cluster, prints the node's pid and waits to be killed.
const parentEnv = "FAULTLINE_LOCAL_TEST_PARENT_DIR"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		os.Exit(fakeNode(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "proc" {
		os.Exit(fakeProcess(os.Args[2:]))
	}
	if dir := os.Getenv(parentEnv); dir != "" {
		os.Exit(fakeParent(dir))
	}
	os.Exit(m.Run())
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// fakeNode speaks just enough of the node protocol: GET /admin/status (its
// term is the number of starts, counted in the data directory),
// GET /admin/argv, GET /kv/KEY, and a peer listener; both APIs require the
// token in targets.TokenEnv when it is set. Its bug switches
// misbehave: fail-start exits at once, not-ready answers 503 for ever,
// ignore-term ignores SIGTERM.
func fakeNode(args []string) int {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	var (
		system, id, role, listen, admin, peerListen, data string
		peers, peerRoles, bugs, opts                      multiFlag
	)
	fs.StringVar(&system, "system", "", "")
	fs.StringVar(&id, "id", "", "")
	fs.StringVar(&role, "role", "", "")
	fs.StringVar(&listen, "listen", "", "")
	fs.StringVar(&admin, "admin", "", "")
	fs.StringVar(&peerListen, "peer-listen", "", "")
	fs.StringVar(&data, "data", "", "")
	fs.Var(&peers, "peer", "")
	fs.Var(&peerRoles, "peer-role", "")
	fs.Var(&bugs, "bug", "")
	fs.Var(&opts, "opt", "")
	if err := fs.Parse(args); err != nil {
		return 64
	}
	failStart, notReady, ignoreTerm := slices.Contains(bugs, "fail-start"), slices.Contains(bugs, "not-ready"), slices.Contains(bugs, "ignore-term")
	if failStart {
		fmt.Fprintln(os.Stderr, "fake node: cannot open data directory: boom")
		return 3
	}
	term := make(chan os.Signal, 1)
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(term, syscall.SIGTERM)
	}

	starts := 1
	countFile := filepath.Join(data, "starts")
	if b, err := os.ReadFile(countFile); err == nil {
		n, _ := strconv.Atoi(string(b))
		starts = n + 1
	}
	if err := os.WriteFile(countFile, []byte(strconv.Itoa(starts)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "fake node:", err)
		return 1
	}
	var ls []net.Listener
	for _, a := range []string{listen, admin, peerListen} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake node:", err)
			return 1
		}
		ls = append(ls, l)
	}
	client := http.NewServeMux()
	client.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"value":null}`))
	})
	adm := http.NewServeMux()
	adm.HandleFunc("GET /admin/status", func(w http.ResponseWriter, r *http.Request) {
		if notReady {
			http.Error(w, `{"error":"not ready"}`, http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": id, "role": "follower", "term": starts, "leader": "",
			"counters": map[string]any{"pid": os.Getpid()},
		})
	})
	adm.HandleFunc("GET /admin/argv", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(os.Args[1:])
	})
	// Like the node kit, both APIs require the token given in the
	// environment, if any.
	tok := targets.Token(os.Getenv(targets.TokenEnv))
	guard := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !tok.Allows(r) {
				http.Error(w, `{"error":"token"}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	go http.Serve(ls[0], guard(client))
	go http.Serve(ls[1], guard(adm))
	go func() {
		for {
			c, err := ls[2].Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	fmt.Printf("fake node %s up (system %s, pid %d)\n", id, system, os.Getpid())
	<-term
	fmt.Printf("fake node %s stopping\n", id)
	return 0
}

// fakeParent starts a one-node cluster, prints "PID n" and blocks.
func fakeParent(dir string) int {
	c, err := New(Options{}).Start(context.Background(), targets.ClusterSpec{
		System: "fake", Nodes: specs("p1"), Dir: dir, Binary: os.Args[0],
	})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Printf("PID %d\n", c.(*Cluster).PID("p1"))
	select {}
}

// specs returns a node spec for each id.
func specs(ids ...string) []targets.NodeSpec { return withBugs(ids) }

// withBugs returns a node spec for each id with the bug switches given (the
// fake node's misbehaviours).
func withBugs(ids []string, bugs ...string) []targets.NodeSpec {
	out := make([]targets.NodeSpec, len(ids))
	for i, id := range ids {
		out[i] = targets.NodeSpec{ID: id, Bugs: bugs}
	}
	return out
}

func startCluster(t *testing.T, opts Options, spec targets.ClusterSpec) *Cluster {
	t.Helper()
	if spec.System == "" {
		spec.System = "fake"
	}
	if spec.Nodes == nil {
		spec.Nodes = specs("n1", "n2", "n3")
	}
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	spec.Binary = os.Args[0]
	spec.Log = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(opts).Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	lc := c.(*Cluster)
	t.Cleanup(func() { lc.Close() })
	return lc
}

// gone reports whether pid names no process, or only a zombie (which is not
// ours once we reaped it: a process killed after its parent died waits for
// init to reap it).
func gone(pid int) bool {
	st, ok := procState(pid)
	return !ok || st == 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 500 && !gone(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !gone(pid) {
		t.Fatalf("process %d still running", pid)
	}
}

func status(t *testing.T, c *Cluster, id string) targets.Status {
	t.Helper()
	st, err := runtimetest.Status(context.Background(), c, id)
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	return st
}

func TestLifecycle(t *testing.T) {
	c := startCluster(t, Options{}, targets.ClusterSpec{})
	ctx := context.Background()

	nodes := c.Nodes()
	if len(nodes) != 3 {
		t.Fatalf("Nodes() = %d nodes, want 3", len(nodes))
	}
	seen := map[string]bool{}
	for i, n := range nodes {
		if n.ID != fmt.Sprintf("n%d", i+1) {
			t.Errorf("node %d is %q, want the spec's order", i, n.ID)
		}
		if n.ClientVia != n.Client {
			t.Errorf("%s: ClientVia %q, want the direct address %q without a LinkMapper", n.ID, n.ClientVia, n.Client)
		}
		for _, a := range []string{n.Client, n.Admin, n.Peer} {
			if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
				t.Errorf("%s: address %q is not a distinct 127.0.0.1 address", n.ID, a)
			}
			seen[a] = true
		}
		st := status(t, c, n.ID)
		if st.ID != n.ID || st.Role != "follower" || st.Term != 1 || len(st.Raw) == 0 {
			t.Errorf("Status(%s) = %+v, want id %s, follower, term 1, raw kept", n.ID, st, n.ID)
		}
	}
	// The client API is reachable at ClientVia.
	resp, err := http.Get("http://" + nodes[0].ClientVia + "/kv/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Kill: the process is gone when Kill returns; Start: same ports, same
	// data.
	pid := c.PID("n2")
	if err := c.Kill(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Errorf("n2 (pid %d) still exists after Kill returned", pid)
	}
	if c.PID("n2") != 0 {
		t.Error("PID of a killed node is not 0")
	}
	if err := c.Start(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if st := status(t, c, "n2"); st.Term != 2 {
		t.Errorf("n2 term after restart = %d, want 2 (the data directory must survive)", st.Term)
	}
	if got := c.Nodes()[1]; got != nodes[1] {
		t.Errorf("n2 addresses changed across a restart: %+v -> %+v", nodes[1], got)
	}

	// Pause stops the process group; Start leaves it stopped.
	if err := c.Pause(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if st, _ := procState(c.PID("n3")); st != 'T' {
		t.Errorf("n3 state after Pause = %q, want T (stopped)", st)
	}
	if pid := c.PID("n3"); c.Start(ctx, "n3") != nil || c.PID("n3") != pid {
		t.Error("Start of a paused node must leave it alone and return nil")
	}
	if err := c.Resume(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if st, _ := procState(c.PID("n3")); st == 'T' {
		t.Errorf("n3 still stopped after Resume")
	}

	// Stop is graceful; Restart is Stop then Start.
	if err := c.Stop(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := targets.Restart(ctx, c, "n1"); err != nil {
		t.Fatal(err)
	}
	if st := status(t, c, "n1"); st.Term != 3 {
		t.Errorf("n1 term after stop+start+restart = %d, want 3", st.Term)
	}
	log, _ := os.ReadFile(c.LogPath("n1"))
	if got := strings.Count(string(log), startMarker); got != 3 {
		t.Errorf("n1 log has %d start markers, want 3 (one per start, appended):\n%s", got, log)
	}
	if got := strings.Count(string(log), "fake node n1 stopping"); got != 2 {
		t.Errorf("n1 log shows %d graceful stops, want 2:\n%s", got, log)
	}

	// The contract of process control that every runtime keeps.
	runtimetest.ProcessControl(t, c, "n3")

	// Close: nothing left.
	var pids []int
	for _, n := range c.Nodes() {
		pids = append(pids, c.PID(n.ID))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("pid %d still exists after Close", pid)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Start(ctx, "n1"); err == nil {
		t.Error("Start after Close succeeded")
	}
	if err := c.Kill(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "n1, n2, n3") {
		t.Errorf("Kill of an unknown node: %v, want an error listing the nodes", err)
	}
}

func TestKillAndStopPausedNode(t *testing.T) {
	c := startCluster(t, Options{}, targets.ClusterSpec{Nodes: specs("n1", "n2")})
	ctx := context.Background()
	for _, id := range []string{"n1", "n2"} {
		if err := c.Pause(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	pid := c.PID("n1")
	if err := c.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Errorf("paused n1 (pid %d) survived Kill", pid)
	}
	if err := c.Stop(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(c.LogPath("n2"))
	if !strings.Contains(string(log), "fake node n2 stopping") {
		t.Errorf("paused n2 did not stop gracefully (SIGTERM must be followed by SIGCONT):\n%s", log)
	}
	if err := c.Pause(ctx, "n2"); err == nil {
		t.Error("Pause of a stopped node succeeded")
	}
}

func TestStopFallsBackToKill(t *testing.T) {
	c := startCluster(t, Options{StopTimeout: 200 * time.Millisecond},
		targets.ClusterSpec{Nodes: withBugs([]string{"n1"}, "ignore-term")})
	if err := c.Stop(context.Background(), "n1"); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(c.LogPath("n1"))
	if !strings.Contains(string(log), "signal: killed") || strings.Contains(string(log), "stopping") {
		t.Errorf("a node ignoring SIGTERM must end by SIGKILL:\n%s", log)
	}
}

func liveCount() int {
	live.mu.Lock()
	defer live.mu.Unlock()
	return len(live.procs)
}

func TestStartFailureQuotesLog(t *testing.T) {
	dir := t.TempDir()
	_, err := New(Options{}).Start(context.Background(), targets.ClusterSpec{
		System: "fake", Nodes: withBugs([]string{"n1", "n2"}, "fail-start"), Dir: dir, Binary: os.Args[0],
	})
	t.Logf("Start with a failing node: %v", err)
	var ie *targets.InfraError
	if !errors.As(err, &ie) {
		t.Fatalf("Start with a failing node: %v, want an InfraError", err)
	}
	for _, want := range []string{"exited before it was ready", "exit status 3", "boom", filepath.Join(dir, "nodes")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if n := liveCount(); n != 0 {
		t.Errorf("%d node processes left after a failed Start", n)
	}
}

func TestNotReadyTimesOut(t *testing.T) {
	_, err := New(Options{ReadyTimeout: 300 * time.Millisecond}).Start(context.Background(), targets.ClusterSpec{
		System: "fake", Nodes: withBugs([]string{"n1"}, "not-ready"), Dir: t.TempDir(), Binary: os.Args[0],
	})
	t.Logf("Start with a node that never gets ready: %v", err)
	var ie *targets.InfraError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("Start with a node that never gets ready: %v, want an InfraError naming the timeout and the last answer", err)
	}
	if !strings.Contains(err.Error(), "fake node n1 up") {
		t.Errorf("error does not quote the log:\n%v", err)
	}
	if n := liveCount(); n != 0 {
		t.Errorf("%d node processes left after a failed Start", n)
	}
}

func TestBadBinaryAndSpec(t *testing.T) {
	rt := New(Options{})
	ctx := context.Background()
	_, err := rt.Start(ctx, targets.ClusterSpec{System: "fake", Nodes: specs("n1"), Dir: t.TempDir(), Binary: "/nonexistent/faultline"})
	var ie *targets.InfraError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "/nonexistent/faultline") {
		t.Errorf("missing binary: %v, want an InfraError naming it", err)
	}
	for name, spec := range map[string]targets.ClusterSpec{
		"no dir":       {System: "fake", Nodes: specs("n1")},
		"no nodes":     {System: "fake", Dir: "x"},
		"no system":    {Nodes: specs("n1"), Dir: "x"},
		"duplicate id": {System: "fake", Nodes: specs("n1", "n1"), Dir: "x"},
		"bad id":       {System: "fake", Nodes: specs("a=b"), Dir: "x"},
		"dot id":       {System: "fake", Nodes: specs(".."), Dir: "x"},
		"client id":    {System: "fake", Nodes: specs(targets.ClientLink), Dir: "x"},
	} {
		_, err := rt.Start(ctx, spec)
		if err == nil || errors.As(err, &ie) {
			t.Errorf("%s: %v, want a plain error (bad input, not infrastructure)", name, err)
		}
	}
}

// mapper maps every link to a made-up address and records its input.
type mapper struct {
	got      []targets.NodeAddrs
	omitLink bool
}

func (m *mapper) MapLinks(ctx context.Context, nodes []targets.NodeAddrs) (map[string]map[string]string, map[string]string, error) {
	m.got = nodes
	peers := map[string]map[string]string{}
	clients := map[string]string{}
	for i, from := range nodes {
		peers[from.ID] = map[string]string{}
		for j, to := range nodes {
			if i != j && !(m.omitLink && i == 0 && j == 1) {
				peers[from.ID][to.ID] = fmt.Sprintf("127.0.0.2:%d", 20000+10*i+j)
			}
		}
		clients[from.ID] = fmt.Sprintf("127.0.0.3:%d", 30000+i)
	}
	return peers, clients, nil
}

// TestLinkMapperAddresses checks each node's command line: its own role,
// bug switches and options, and its peers' mapped addresses and roles.
func TestLinkMapperAddresses(t *testing.T) {
	m := &mapper{}
	c := startCluster(t, Options{}, targets.ClusterSpec{Links: m, Nodes: []targets.NodeSpec{
		{ID: "n1", Role: "primary", Bugs: []string{"b1"}, Opts: map[string]string{"k": "v", "a": "1"}},
		{ID: "n2", Role: "backup"},
		{ID: "n3", Role: "backup", Bugs: []string{"b2", "b3"}},
	}})
	nodes := c.Nodes()
	own := map[string]string{
		"n1": "--bug b1 --opt a=1 --opt k=v",
		"n2": "",
		"n3": "--bug b2 --bug b3",
	}
	roles := map[string]string{"n1": "primary", "n2": "backup", "n3": "backup"}
	for i, n := range nodes {
		if m.got[i] != n.NodeAddrs {
			t.Errorf("mapper got %+v, node has %+v", m.got[i], n.NodeAddrs)
		}
		if n.Role != roles[n.ID] {
			t.Errorf("%s Role = %q, want its NodeSpec's %q", n.ID, n.Role, roles[n.ID])
		}
		if want := fmt.Sprintf("127.0.0.3:%d", 30000+i); n.ClientVia != want {
			t.Errorf("%s ClientVia = %q, want the mapper's %q", n.ID, n.ClientVia, want)
		}
		resp, err := http.Get("http://" + n.Admin + "/admin/argv")
		if err != nil {
			t.Fatal(err)
		}
		var argv []string
		json.NewDecoder(resp.Body).Decode(&argv)
		resp.Body.Close()
		got := strings.Join(argv, " ")
		var peers []string
		for j, o := range nodes {
			if j != i {
				peers = append(peers, fmt.Sprintf("--peer %s=127.0.0.2:%d --peer-role %s=%s", o.ID, 20000+10*i+j, o.ID, roles[o.ID]))
			}
		}
		want := strings.TrimSpace(fmt.Sprintf("node --system fake --id %s --role %s --listen %s --admin %s --peer-listen %s %s --data %s %s",
			n.ID, roles[n.ID], n.Client, n.Admin, n.Peer, strings.Join(peers, " "),
			filepath.Join(filepath.Dir(filepath.Dir(c.LogPath(n.ID))), "data", n.ID), own[n.ID]))
		if got != want {
			t.Errorf("%s argv:\n got %s\nwant %s", n.ID, got, want)
		}
	}

	_, err := New(Options{}).Start(context.Background(), targets.ClusterSpec{
		System: "fake", Nodes: specs("n1", "n2"), Dir: t.TempDir(), Binary: os.Args[0], Links: &mapper{omitLink: true},
	})
	if err == nil || !strings.Contains(err.Error(), "n1 -> n2") {
		t.Errorf("incomplete mapping: %v, want an error naming the link", err)
	}
}

// nilMapper maps nothing: direct links, but it disables the port retry.
type nilMapper struct{}

func (nilMapper) MapLinks(context.Context, []targets.NodeAddrs) (map[string]map[string]string, map[string]string, error) {
	return nil, nil, nil
}

func TestBindFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	allocPorts = func(n int) ([]int, error) {
		calls++
		ps, err := freeport.Take(n)
		if calls == 1 && err == nil {
			ps[4] = taken.Addr().(*net.TCPAddr).Port // n2's admin port
		}
		return ps, err
	}
	defer func() { allocPorts = freeport.Take }()

	c := startCluster(t, Options{}, targets.ClusterSpec{})
	if calls != 2 {
		t.Errorf("ports allocated %d times, want 2 (one retry after the bind failure)", calls)
	}
	status(t, c, "n2")
	c.Close()

	calls = 0
	_, err = New(Options{}).Start(context.Background(), targets.ClusterSpec{
		System: "fake", Nodes: specs("n1", "n2"), Dir: t.TempDir(), Binary: os.Args[0], Links: nilMapper{},
	})
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "node n2") {
		t.Errorf("bind failure with a LinkMapper: %v, want an error naming n2 and the taken port", err)
	}
	if calls != 1 {
		t.Errorf("ports allocated %d times with a LinkMapper, want 1 (it is called once)", calls)
	}
}

func TestKillAll(t *testing.T) {
	c := startCluster(t, Options{}, targets.ClusterSpec{Nodes: specs("n1", "n2")})
	p1, p2 := c.PID("n1"), c.PID("n2")
	if err := c.Pause(context.Background(), "n2"); err != nil {
		t.Fatal(err)
	}
	if n := KillAll(5 * time.Second); n != 2 {
		t.Errorf("KillAll signalled %d, want 2", n)
	}
	if !gone(p1) || !gone(p2) {
		t.Errorf("processes left after KillAll: %v %v", !gone(p1), !gone(p2))
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after KillAll: %v", err)
	}
}

// TestParentDeath kills a faultline-like parent with SIGKILL; its node must
// die with it (PR_SET_PDEATHSIG).
func TestParentDeath(t *testing.T) {
	// Adopt the orphaned node, so it can be reaped here rather than left a
	// zombie under a PID 1 that does not reap (as in many containers).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err == nil {
		defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), parentEnv+"="+t.TempDir())
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "PID ") {
		t.Fatalf("parent said %q (%v)", line, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "PID ")))
	if gone(pid) {
		t.Fatalf("node %d is not running", pid)
	}
	defer syscall.Kill(-pid, syscall.SIGKILL) // cleanup if the test fails
	parent.Process.Signal(syscall.SIGKILL)
	parent.Wait()
	waitGone(t, pid)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}

func TestConcurrentControl(t *testing.T) {
	c := startCluster(t, Options{ReadyTimeout: 3 * time.Second}, targets.ClusterSpec{})
	runtimetest.Storm(t, c, []string{"n1", "n2", "n3"}, 6, 6)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := liveCount(); n != 0 {
		t.Errorf("%d node processes left after Close", n)
	}
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.log")
	var b strings.Builder
	b.WriteString(startMarker + "n1 at T: x\nold address already in use\n")
	b.WriteString(startMarker + "n1 at T: x\n")
	for i := range 30 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
	tail, bind := logTail(path)
	if bind {
		t.Error("logTail looked before the latest start marker")
	}
	lines := strings.Split(tail, "\n")
	if len(lines) != logTailLines || strings.TrimSpace(lines[0]) != "line 10" || strings.TrimSpace(lines[19]) != "line 29" {
		t.Errorf("logTail = %q, want lines 10-29", tail)
	}
}

// BenchmarkKillStart measures a Kill and Start of one node (start includes
// the readiness poll) against the baseline of running the same binary to
// completion (fork, exec, exit), measured in the same run.
func BenchmarkKillStart(b *testing.B) {
	cl, err := New(Options{}).Start(context.Background(), targets.ClusterSpec{
		System: "fake", Nodes: specs("n1"), Dir: b.TempDir(), Binary: os.Args[0],
	})
	if err != nil {
		b.Fatal(err)
	}
	c := cl.(*Cluster)
	defer c.Close()
	ctx := context.Background()
	const baseRuns = 10
	t0 := time.Now()
	for range baseRuns {
		exec.Command(os.Args[0], "node", "--fail-start").Run()
	}
	base := time.Since(t0) / baseRuns
	b.ResetTimer()
	t1 := time.Now()
	for b.Loop() {
		if err := c.Kill(ctx, "n1"); err != nil {
			b.Fatal(err)
		}
		if err := c.Start(ctx, "n1"); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(t1) / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "x_spawn")
	b.ReportMetric(float64(base.Microseconds()), "spawn_us")
}

// TestNodeToken: the run's token reaches each node in its environment,
// never on its command line (which `ps` shows every user), replacing one
// this process inherited; readiness sends it; NodeInfo carries it; the
// nodes' APIs refuse requests without it. Without a token nodes get none.
func TestNodeToken(t *testing.T) {
	t.Setenv(targets.TokenEnv, "inherited-from-the-parent")
	tok := targets.NewToken()
	c := startCluster(t, Options{ReadyTimeout: 5 * time.Second}, targets.ClusterSpec{Nodes: specs("n1", "n2"), Token: tok})
	for _, n := range c.Nodes() {
		if n.Token != tok {
			t.Errorf("%s: NodeInfo.Token is not the run's", n.ID)
		}
		pid := c.PID(n.ID)
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cmdline), string(tok)) {
			t.Errorf("%s: the token is on the command line: %q", n.ID, cmdline)
		}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		vars := strings.Split(string(environ), "\x00")
		if !slices.Contains(vars, targets.TokenEnv+"="+string(tok)) || slices.Contains(vars, targets.TokenEnv+"=inherited-from-the-parent") {
			t.Errorf("%s: environment has %v, want exactly the run's token", n.ID, slices.DeleteFunc(vars, func(v string) bool { return !strings.HasPrefix(v, "FAULTLINE") }))
		}
		for _, u := range []string{"http://" + n.Admin + "/admin/status", "http://" + n.Client + "/kv/k"} {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without the token: %d, want 401", u, resp.StatusCode)
			}
			req, _ := http.NewRequest("GET", u, nil)
			tok.SetOn(req)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
				t.Errorf("GET %s with the token: %v %v", u, resp, err)
			} else {
				resp.Body.Close()
			}
		}
	}
	// A restart gets the token again.
	if err := c.Kill(context.Background(), "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background(), "n1"); err != nil {
		t.Fatalf("restart with a token: %v", err)
	}

	open := startCluster(t, Options{}, targets.ClusterSpec{Nodes: specs("n1")})
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", open.PID("n1")))
	if strings.Contains(string(environ), targets.TokenEnv) {
		t.Errorf("a node of a run without a token has %s in its environment", targets.TokenEnv)
	}
	if st := status(t, open, "n1"); st.ID != "n1" {
		t.Errorf("status of an open node: %+v", st)
	}
}
