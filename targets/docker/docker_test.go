package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/runtimetest"
	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/httpkv"
)

// childEnv makes the test binary run one scenario as a child process (see
// TestMain) instead of the tests.
const childEnv = "FAULTLINE_DOCKER_TEST_CHILD"

var (
	binPath   string // static faultline built by TestMain (testbin)
	probePath string // static testdata/probe built by TestMain
	buildErr  error
	dockerErr error // nil when Docker answered

	runsMu sync.Mutex
	runIDs []string // every run id a test used, swept at the end
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "unreachable" {
		childUnreachable()
		return
	}
	dir, err := os.MkdirTemp("", "faultline-docker-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	probePath = filepath.Join(dir, "probe")
	binPath, buildErr = testbin.Build()
	if buildErr == nil {
		buildErr = goBuild(probePath, "./testdata/probe")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if cli, err := connect(ctx); err != nil {
		dockerErr = err
	} else {
		cli.Close()
	}
	cancel()

	code := m.Run()

	if dockerErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		runsMu.Lock()
		for _, id := range runIDs {
			if rep, _ := Clean(ctx, CleanOptions{Run: id, Force: true}); len(rep.Removed) > 0 {
				removed := rep.Removed
				fmt.Fprintf(os.Stderr, "swept after the tests, run %s: %v\n", id, removed)
				if code == 0 {
					code = 1 // a test left something behind
				}
			}
		}
		runsMu.Unlock()
		cancel()
	}
	os.RemoveAll(dir)
	testbin.Cleanup()
	os.Exit(code)
}

// goBuild builds a static binary of pkg.
func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// requireDocker fails the test when Docker is needed but missing in CI
// (CI=true), and skips it elsewhere, saying why.
func requireDocker(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	testenv.Need(t, "Docker", dockerErr, "start a Docker daemon")
}

func newRunID(t *testing.T) string {
	id := fmt.Sprintf("t%d-%s-%d", os.Getpid(), strings.ToLower(t.Name()), time.Now().UnixNano()%1e6)
	id = strings.NewReplacer("/", "-", "_", "-").Replace(id)
	runsMu.Lock()
	runIDs = append(runIDs, id)
	runsMu.Unlock()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		Clean(ctx, CleanOptions{Run: id, Force: true})
	})
	return id
}

// testRun is a started cluster with its links.
type testRun struct {
	rt    *Runtime
	spec  targets.ClusterSpec
	c     *Cluster
	links *faults.Links
	ready time.Duration // StartProxy + Start
}

// linksFor builds a faults.Links from a placement exactly as the
// conductor does.
func linksFor(pl targets.ProxyPlacement) *faults.Links { return linksWith(pl, false) }

// linksWith is linksFor, with client links left unproxied if noClientLinks.
func linksWith(pl targets.ProxyPlacement, noClientLinks bool) *faults.Links {
	return faults.NewLinks(pl.APIAddr, faults.LinksOptions{
		Listen:        func(l faults.Link) string { return pl.Listen(l.From, l.To) },
		Dial:          func(l faults.Link, listen string) (string, error) { return pl.Dial(l.From, l.To, listen) },
		Upstream:      func(l faults.Link, addr string) string { return pl.Upstream(l.From, l.To, addr) },
		Token:         pl.Token,
		NoClientLinks: noClientLinks,
	})
}

// raftkvRole is raftkv's one role.
const raftkvRole = "node"

// specs returns a raftkv node spec for each id.
func specs(ids ...string) []targets.NodeSpec {
	out := make([]targets.NodeSpec, len(ids))
	for i, id := range ids {
		out[i] = targets.NodeSpec{ID: id, Role: raftkvRole}
	}
	return out
}

// startRun starts a raftkv cluster of the given nodes with its proxy.
func startRun(t *testing.T, ids ...string) *testRun { return startRunWith(t, "", ids...) }

// startRunWith starts a raftkv cluster of the given nodes with its proxy,
// all requiring token (if set).
func startRunWith(t *testing.T, token targets.Token, ids ...string) *testRun {
	t.Helper()
	return startRunLinks(t, token, false, ids...)
}

// startRunLinks is startRunWith, with client links left unproxied if
// noClientLinks.
func startRunLinks(t *testing.T, token targets.Token, noClientLinks bool, ids ...string) *testRun {
	t.Helper()
	requireDocker(t)
	rt := New(Options{Log: t.Logf, ReadyTimeout: 20 * time.Second})
	spec := targets.ClusterSpec{
		RunID: newRunID(t), System: "raftkv", Nodes: specs(ids...), Dir: t.TempDir(), Binary: binPath, Token: token,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Build the image first (the binary changes with every edit), so that
	// ready measures a start with the image cached.
	if _, err := EnsureImage(ctx, dockerClient(t), binPath, t.Logf); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	pl, err := rt.StartProxy(ctx, spec)
	if err != nil {
		t.Fatalf("StartProxy: %v", err)
	}
	links := linksWith(pl, noClientLinks)
	spec.Links = links
	cl, err := rt.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	tr := &testRun{rt: rt, spec: spec, c: cl.(*Cluster), links: links, ready: time.Since(t0)}
	t.Cleanup(func() {
		links.Close()
		if err := tr.c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// leader waits until every node in ids names the same leader, one of ids,
// with a term above minTerm, and returns it.
func leader(t *testing.T, c *Cluster, ids []string, minTerm uint64, within time.Duration) (string, uint64) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last []string
	for time.Now().Before(deadline) {
		last = last[:0]
		lead, term, agree := "", uint64(0), true
		for _, id := range ids {
			st, err := runtimetest.Status(context.Background(), c, id)
			if err != nil {
				last = append(last, fmt.Sprintf("%s: %v", id, err))
				agree = false
				continue
			}
			last = append(last, fmt.Sprintf("%s: %s term %d leader %q", id, st.Role, st.Term, st.Leader))
			if lead == "" {
				lead = st.Leader
			}
			if st.Leader == "" || st.Leader != lead || st.Term <= minTerm {
				agree = false
			}
			term = max(term, st.Term)
		}
		isMember := false
		for _, id := range ids {
			isMember = isMember || id == lead
		}
		if agree && isMember {
			return lead, term
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no agreed leader among %v (term > %d) within %s: %s", ids, minTerm, within, strings.Join(last, "; "))
	return "", 0
}

func kvClient(t *testing.T, c *Cluster, home string) *httpkv.Client {
	t.Helper()
	addrs := map[string]string{}
	for _, n := range c.Nodes() {
		addrs[n.ID] = n.ClientVia
	}
	cl, err := httpkv.New(addrs, home, httpkv.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func jsonStr(s string) json.RawMessage { b, _ := json.Marshal(s); return b }

// put writes key=value, retrying definite failures (no leader yet).
func put(t *testing.T, kv *httpkv.Client, key, value string) {
	t.Helper()
	var out history.Outcome
	for range 20 {
		out = kv.Do(context.Background(), history.Op{F: "put", Key: key, Value: jsonStr(value)})
		if out.Type == history.OK {
			return
		}
		if out.Type == history.Info {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("put %s=%s: %+v", key, value, out)
}

func get(t *testing.T, kv *httpkv.Client, key string) string {
	t.Helper()
	var out history.Outcome
	for range 20 {
		out = kv.Do(context.Background(), history.Op{F: "get", Key: key})
		if out.Type == history.OK {
			return string(out.Value)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("get %s: %+v", key, out)
	return ""
}

// TestCluster starts a 3-node raftkv cluster with its proxy and exercises
// it end to end: readiness time, client traffic through the client-link
// proxies, the network isolation of the nodes, a partition through the
// proxies, every process fault, data surviving a full stop/start, logs,
// and Close removing everything.
func TestCluster(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	tr := startRun(t, nodes...)
	c := tr.c
	t.Logf("3-node raftkv cluster + proxy ready in %s (StartProxy + Start, image cached)", tr.ready.Round(time.Millisecond))
	t0 := time.Now()
	lead, term := leader(t, c, nodes, 0, 20*time.Second)
	t.Logf("leader %s (term %d) elected %s after ready", lead, term, time.Since(t0).Round(time.Millisecond))

	proxyIP := c.ru.containerIP(context.Background(), c.ru.proxy.ID, c.NetworkName(nodes[0]))
	for j, n := range c.Nodes() {
		// The node's APIs are reached at the container's own address when
		// the daemon is local (nothing published), else the admin API
		// through a published port, and the client API only through its
		// client link's proxy.
		ip := c.ru.containerIP(context.Background(), c.nodes[n.ID].containerID(), c.NetworkName(n.ID))
		ownAdmin, ownClient := net.JoinHostPort(ip, strconv.Itoa(AdminPort)), net.JoinHostPort(ip, strconv.Itoa(ClientPort))
		if c.ru.direct && (n.Admin != ownAdmin || n.Client != ownClient) {
			t.Errorf("%s Admin, Client = %q, %q, want the container's own %s, %s (local daemon)", n.ID, n.Admin, n.Client, ownAdmin, ownClient)
		} else if !c.ru.direct && (!strings.HasPrefix(n.Admin, "127.0.0.1:") || n.Client != n.ID+":7000") {
			t.Errorf("%s Admin, Client = %q, %q, want a published address on 127.0.0.1 and the in-network %s:7000", n.ID, n.Admin, n.Client, n.ID)
		}
		// Clients reach the proxy container directly when the daemon is
		// local (see newRun), else through a published port.
		direct := net.JoinHostPort(proxyIP, strconv.Itoa(ClientLinkPort(j)))
		if c.ru.direct && n.ClientVia != direct {
			t.Errorf("%s ClientVia = %q, want the proxy container's own %s (local daemon)", n.ID, n.ClientVia, direct)
		} else if !c.ru.direct && !strings.HasPrefix(n.ClientVia, "127.0.0.1:") {
			t.Errorf("%s ClientVia = %q, want a published address on 127.0.0.1", n.ID, n.ClientVia)
		}
		if want := n.ID + ":7002"; n.Peer != want {
			t.Errorf("%s Peer = %q, want %q", n.ID, n.Peer, want)
		}
		if n.Role != raftkvRole {
			t.Errorf("%s Role = %q, want its NodeSpec's %q", n.ID, n.Role, raftkvRole)
		}
	}
	checkLabels(t, tr)

	kv1 := kvClient(t, c, "n1")
	kv3 := kvClient(t, c, "n3")
	put(t, kv1, "k1", "v1")
	if got := get(t, kv3, "k1"); got != `"v1"` {
		t.Errorf("get k1 through n3's client proxy = %s, want \"v1\"", got)
	}

	t.Run("isolation", func(t *testing.T) { testIsolation(t, tr) })
	t.Run("partition", func(t *testing.T) { testPartition(t, tr) })
	t.Run("process", func(t *testing.T) { testProcess(t, tr) })
	t.Run("persistence", func(t *testing.T) { testPersistence(t, tr) })
	t.Run("logs", func(t *testing.T) { testLogs(t, tr) })
	t.Run("close", func(t *testing.T) { testClose(t, tr) })
}

func checkLabels(t *testing.T, tr *testRun) {
	cli := dockerClient(t)
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: runFilter(tr.spec.RunID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items) != 4 {
		t.Errorf("%d running containers labelled %s=%s, want 4 (3 nodes + proxy)", len(cs.Items), LabelRun, tr.spec.RunID)
	}
	for _, ct := range cs.Items {
		if name := strings.TrimPrefix(ct.Names[0], "/"); !strings.HasPrefix(name, NamePrefix+tr.spec.RunID+"-") {
			t.Errorf("container %s is not named %s%s-...", name, NamePrefix, tr.spec.RunID)
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: runFilter(tr.spec.RunID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Items) != 3 {
		t.Errorf("%d networks labelled with the run, want 3 (one per node)", len(ns.Items))
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: runFilter(tr.spec.RunID)})
	if err != nil {
		t.Fatal(err)
	}
	vols := map[string]string{} // name -> node label
	for _, v := range vs.Items {
		vols[v.Name] = v.Labels[LabelNode]
	}
	if len(vols) != 3 {
		t.Errorf("volumes labelled with the run: %v, want 3 (one per node)", vols)
	}
	// Each node's /data is its own named volume (not the container's layer).
	for _, id := range tr.spec.IDs() {
		want := NamePrefix + tr.spec.RunID + "-" + id + "-data"
		if got := tr.c.VolumeName(id); got != want {
			t.Errorf("VolumeName(%s) = %q, want %q", id, got, want)
		}
		if vols[want] != id {
			t.Errorf("volume %s: labelled %s=%q, want %q (labelled volumes: %v)", want, LabelNode, vols[want], id, vols)
		}
		res, err := cli.ContainerInspect(ctx, tr.c.ContainerName(id), client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, m := range res.Container.Mounts {
			if m.Destination == DataDir {
				found = true
				if m.Type != "volume" || m.Name != want || !m.RW {
					t.Errorf("%s's %s is a %s mount of %q (rw %v), want the writable volume %s", id, DataDir, m.Type, m.Name, m.RW, want)
				}
			}
		}
		if !found {
			t.Errorf("%s has nothing mounted at %s (mounts %+v): its data would be on the container's layer", id, DataDir, res.Container.Mounts)
		}
	}
}

func dockerClient(t *testing.T) *testcontainers.DockerClient {
	t.Helper()
	cli, err := connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// probe runs testdata/probe in a container on network, dialing addrs, and
// returns its verdict per address ("OK" or "FAIL ...").
func probe(t *testing.T, runID, network string, addrs ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := dockerClient(t)
	image, err := ensureImage(ctx, cli, probePath, "faultline-probe", "probe", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:              image,
			Cmd:                addrs,
			Labels:             runLabels(runID, LabelRole, "probe"),
			Networks:           []string{network},
			HostConfigModifier: func(hc *container.HostConfig) { hc.NetworkMode = container.NetworkMode(network) },
			WaitingFor:         wait.ForExit().WithExitTimeout(30 * time.Second),
		},
		Started: true, Logger: tclog.NewNoopLogger(),
	})
	if ctr != nil {
		defer ctr.Terminate(context.Background())
	}
	if err != nil {
		t.Fatalf("probe container: %v", err)
	}
	rc, err := ctr.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	res := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		addr, verdict, _ := strings.Cut(line, " ")
		res[addr] = verdict
	}
	return res
}

// testIsolation checks the topology from inside Docker: from n1's network
// the proxy is reachable but n2 is not, by name or by address, while n2's
// address does answer from n2's own network.
func testIsolation(t *testing.T, tr *testRun) {
	c := tr.c
	cli := dockerClient(t)
	res, err := cli.ContainerInspect(context.Background(), c.ContainerName("n2"), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep := res.Container.NetworkSettings.Networks[c.NetworkName("n2")]
	if ep == nil || !ep.IPAddress.IsValid() {
		t.Fatalf("n2 has no address on its network %s", c.NetworkName("n2"))
	}
	if len(res.Container.NetworkSettings.Networks) != 1 {
		t.Errorf("n2 is on %d networks, want only its own", len(res.Container.NetworkSettings.Networks))
	}
	n2IP := ep.IPAddress.String()
	viaProxy, ok := tr.links.ProxyAddr(faults.Link{From: "n1", To: "n2"})
	if !ok {
		t.Fatal("no proxy for n1 -> n2")
	}
	direct := []string{"n2:7002", n2IP + ":7002", n2IP + ":7000"}
	var wg sync.WaitGroup
	var fromN1, fromN2 map[string]string
	wg.Add(2)
	go func() {
		defer wg.Done()
		fromN1 = probe(t, tr.spec.RunID, c.NetworkName("n1"), append(direct, viaProxy, "n1:7002")...)
	}()
	go func() {
		defer wg.Done()
		fromN2 = probe(t, tr.spec.RunID, c.NetworkName("n2"), n2IP+":7002", "n2:7002")
	}()
	wg.Wait()
	for _, a := range direct {
		if !strings.HasPrefix(fromN1[a], "FAIL") {
			t.Errorf("from n1's network, dialing n2 directly at %s: %q, want a failure", a, fromN1[a])
		}
	}
	for _, a := range []string{viaProxy, "n1:7002"} {
		if fromN1[a] != "OK" {
			t.Errorf("from n1's network, dialing %s: %q, want OK", a, fromN1[a])
		}
	}
	for _, a := range []string{n2IP + ":7002", "n2:7002"} {
		if fromN2[a] != "OK" {
			t.Errorf("from n2's own network, dialing %s: %q, want OK (the direct attempts above must fail for isolation, not for a wrong address)", a, fromN2[a])
		}
	}
	t.Logf("from n1's network: %v; from n2's: %v", fromN1, fromN2)
}

// testPartition cuts the leader off through the proxies: the other two must
// elect a new leader, which they can only if the cut is where their
// traffic goes.
func testPartition(t *testing.T, tr *testRun) {
	c := tr.c
	ctx := context.Background()
	nodes := tr.spec.IDs()
	old, term := leader(t, c, nodes, 0, 20*time.Second)
	var rest []string
	for _, id := range nodes {
		if id != old {
			rest = append(rest, id)
		}
	}
	f, err := tr.links.Partition(ctx, [][]string{{old}, rest}, faults.Refuse)
	if err != nil {
		t.Fatal(err)
	}
	lead, newTerm := leader(t, c, rest, term, 20*time.Second)
	t.Logf("leader %s (term %d) cut off through the proxies; %s elected in term %d", old, term, lead, newTerm)
	if err := tr.links.End(ctx, f); err != nil {
		t.Fatal(err)
	}
	leader(t, c, nodes, 0, 20*time.Second)
}

// testProcess checks the contract of process control on n3, then what is
// Docker's own: a start gives the node a new address (or new published
// ports), which Nodes reports, while the client link's proxy stays where
// it was.
func testProcess(t *testing.T, tr *testRun) {
	c := tr.c
	ctx := context.Background()
	before := c.Nodes()[2]
	runtimetest.ProcessControl(t, c, "n3")
	after := c.Nodes()[2]
	ports, err := c.ru.hostPorts(ctx, c.nodes["n3"].containerID())
	if err != nil {
		t.Fatal(err)
	}
	wantAdmin, wantClient := ports[AdminPort], "n3:7000"
	if c.ru.direct {
		ip := c.ru.containerIP(ctx, c.nodes["n3"].containerID(), c.NetworkName("n3"))
		wantAdmin, wantClient = net.JoinHostPort(ip, strconv.Itoa(AdminPort)), net.JoinHostPort(ip, strconv.Itoa(ClientPort))
	}
	if after.Admin != wantAdmin || after.Client != wantClient {
		t.Errorf("after restarts Nodes() says admin %s client %s, Docker says admin %s client %s (published: %v)", after.Admin, after.Client, wantAdmin, wantClient, ports)
	}
	if after.ClientVia != before.ClientVia {
		t.Errorf("ClientVia changed across restarts: %s -> %s", before.ClientVia, after.ClientVia)
	}
	t.Logf("n3 admin at first %s, after restarts %s", before.Admin, after.Admin)
	leader(t, c, tr.spec.IDs(), 0, 20*time.Second)
}

// testPersistence stops every node and starts them again: the data written
// before must still be there (a node that lost its data would bootstrap an
// empty cluster).
func testPersistence(t *testing.T, tr *testRun) {
	c := tr.c
	ctx := context.Background()
	kv := kvClient(t, c, "n2")
	put(t, kv, "k2", "v2")
	each := func(f func(context.Context, string) error) {
		var wg sync.WaitGroup
		for _, id := range tr.spec.IDs() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(ctx, id); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	each(c.Stop)
	for _, id := range tr.spec.IDs() {
		if _, err := runtimetest.Status(ctx, c, id); err == nil {
			t.Errorf("Status of stopped node %s succeeded", id)
		}
	}
	each(c.Start)
	leader(t, c, tr.spec.IDs(), 0, 20*time.Second)
	if got := get(t, kvClient(t, c, "n1"), "k2"); got != `"v2"` {
		t.Errorf("after stopping and starting every node, k2 = %s, want \"v2\"", got)
	}
}

func testLogs(t *testing.T, tr *testRun) {
	c := tr.c
	b, err := os.ReadFile(c.LogPath("n3"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if n := strings.Count(s, startMarker+"node n3"); n < 3 {
		t.Errorf("n3.log has %d start markers, want at least 3 (start, start after kill, start after stop)", n)
	}
	if !strings.Contains(s, "node n3 exited (exit code 137)") {
		t.Errorf("n3.log does not record the kill (exit code 137)")
	}
	if !strings.Contains(s, "raftkv/n3") {
		t.Errorf("n3.log has none of the node's own output")
	}
	if filepath.Base(filepath.Dir(c.LogPath("n3"))) != "nodes" || filepath.Dir(filepath.Dir(c.LogPath("n3"))) != tr.spec.Dir {
		t.Errorf("log path %s is not DIR/nodes/n3.log", c.LogPath("n3"))
	}
	p, err := os.ReadFile(filepath.Join(tr.spec.Dir, "nodes", "proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p), startMarker+"proxy") || !strings.Contains(string(p), "Toxiproxy API on 0.0.0.0:8474") {
		t.Errorf("proxy.log lacks the start marker or the proxy's output:\n%s", p)
	}
}

func testClose(t *testing.T, tr *testRun) {
	c := tr.c
	tr.links.Close()
	t0 := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %s", time.Since(t0).Round(time.Millisecond))
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	assertGone(t, tr.spec.RunID)
	if err := c.Start(context.Background(), "n1"); err == nil {
		t.Error("Start after Close succeeded")
	}
	if _, err := os.Stat(c.LogPath("n1")); err != nil {
		t.Errorf("log gone after Close: %v", err)
	}
}

// assertGone checks, as `docker ps -a --filter label=faultline.run=ID`,
// `docker network ls --filter ...` and `docker volume ls --filter ...`
// would, that nothing of the run is left.
func assertGone(t *testing.T, runID string) {
	t.Helper()
	cli := dockerClient(t)
	ctx := context.Background()
	f := client.Filters{}.Add("label", LabelRun+"="+runID)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Items {
		t.Errorf("container %v (%s) left behind", c.Names, c.State)
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		t.Errorf("network %s left behind", n.Name)
	}
	for _, v := range vs.Items {
		t.Errorf("volume %s left behind", v.Name)
	}
}

// TestStartFailure starts nodes that cannot run: Start must fail with an
// InfraError quoting the node's log and remove everything of the run.
func TestStartFailure(t *testing.T) {
	requireDocker(t)
	t0 := time.Now()
	rt := New(Options{ReadyTimeout: 15 * time.Second, Log: func(f string, a ...any) {
		t.Logf("%s "+f, append([]any{time.Since(t0).Round(time.Millisecond)}, a...)...)
	}})
	spec := targets.ClusterSpec{RunID: newRunID(t), System: "no-such-system", Nodes: specs("a", "b"), Dir: t.TempDir(), Binary: binPath}
	ctx := context.Background()

	if _, err := rt.Start(ctx, spec); err == nil || !strings.Contains(err.Error(), "StartProxy") {
		t.Errorf("Start without StartProxy: %v, want an error saying to call StartProxy", err)
	}
	pl, err := rt.StartProxy(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.StartProxy(ctx, spec); err == nil {
		t.Error("second StartProxy of one run succeeded")
	}
	links := linksFor(pl)
	defer links.Close()
	spec.Links = links
	_, err = rt.Start(ctx, spec)
	var ie *targets.InfraError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "no-such-system") {
		t.Errorf("Start with an unknown system: %v, want an InfraError quoting the node's log", err)
	}
	t.Logf("Start with an unknown system: %v", err)
	assertGone(t, spec.RunID)

	// Abort removes a proxy whose Start never comes.
	spec2 := spec
	spec2.RunID = newRunID(t)
	spec2.Links = nil
	if _, err := rt.StartProxy(ctx, spec2); err != nil {
		t.Fatal(err)
	}
	if err := rt.Abort(ctx, spec2.RunID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, spec2.RunID)

	// A data volume left over from an earlier run with this id is refused,
	// not reused (it holds that run's data), and removed with the run.
	spec3 := spec
	spec3.RunID = newRunID(t)
	spec3.System = "raftkv"
	spec3.Nodes = specs("a")
	cli := dockerClient(t)
	stale := NamePrefix + spec3.RunID + "-a" + DataVolumeSuffix
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: stale, Labels: runLabels(spec3.RunID, LabelNode, "a")}); err != nil {
		t.Fatal(err)
	}
	pl3, err := rt.StartProxy(ctx, spec3)
	if err != nil {
		t.Fatal(err)
	}
	links3 := linksFor(pl3)
	defer links3.Close()
	spec3.Links = links3
	_, err = rt.Start(ctx, spec3)
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), stale) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Start with a leftover data volume: %v, want an InfraError saying %s already exists", err, stale)
	}
	assertGone(t, spec3.RunID)
}

// TestClean removes what a killed run would leave: containers (one running,
// using a volume), networks and volumes of a run whose faultline has
// exited; a run whose faultline lives (this test process) is kept unless
// forced.
func TestClean(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	cli := dockerClient(t)
	image, err := EnsureImage(ctx, cli, binPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	dead := exitedOwner(t)
	victim, live := newRunID(t), newRunID(t)
	labels := map[string]map[string]string{victim: ownedLabels(victim, dead), live: runLabels(live)}
	for _, run := range []string{victim, live} {
		if _, err := cli.NetworkCreate(ctx, NamePrefix+run+"-net", client.NetworkCreateOptions{Driver: "bridge", Labels: labels[run]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range []string{victim, live} {
		if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: NamePrefix + run + "-vol", Labels: labels[run]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range []string{victim, live} {
		for i, cmd := range [][]string{{"version"}, {"proxy", "--listen", "0.0.0.0:8474"}} {
			res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
				Name:   fmt.Sprintf("%s%s-c%d", NamePrefix, run, i),
				Config: &container.Config{Image: image, Cmd: cmd, Labels: labels[run]},
				HostConfig: &container.HostConfig{
					NetworkMode: container.NetworkMode(NamePrefix + run + "-net"),
					Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: NamePrefix + run + "-vol", Target: DataDir}},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every run, as `faultline clean` without --run sees them.
	runs, err := runsOf(ctx, cli, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := runs[victim]; st == nil || st.live != Dead {
		t.Errorf("the run of an exited faultline: %+v, want Dead", st)
	}
	if st := runs[live]; st == nil || st.live != Alive {
		t.Errorf("the run of this live process: %+v, want Alive", st)
	}

	rep, err := Clean(ctx, CleanOptions{Run: victim})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"container " + NamePrefix + victim + "-c0", "container " + NamePrefix + victim + "-c1", "network " + NamePrefix + victim + "-net", "volume " + NamePrefix + victim + "-vol"}
	if strings.Join(sortedCopy(rep.Removed), ",") != strings.Join(want, ",") || len(rep.Kept) != 0 {
		t.Errorf("Clean of a dead run removed %v and kept %v, want %v removed", rep.Removed, rep.Kept, want)
	}
	assertGone(t, victim)

	rep, err = Clean(ctx, CleanOptions{Run: live})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 0 || len(rep.Kept) != 1 || rep.Kept[0].Run != live || !strings.Contains(rep.Kept[0].Why, "still running") {
		t.Errorf("Clean of a live run removed %v and kept %+v, want it kept as still running", rep.Removed, rep.Kept)
	}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: runFilter(live)})
	if err != nil || len(cs.Items) != 2 {
		t.Errorf("the live run's containers: %d found (%v), want both kept", len(cs.Items), err)
	}
	rep, err = Clean(ctx, CleanOptions{Run: live, Force: true})
	if err != nil || len(rep.Removed) != 4 {
		t.Errorf("forced Clean of the live run = %v, %v, want its 2 containers, network and volume", rep.Removed, err)
	}
	assertGone(t, live)
}

// exitedOwner returns the owner labels a faultline that has exited would
// have left: a process of this machine that ran and was reaped.
func exitedOwner(t *testing.T) Owner {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start, err := procStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	o := Self()
	o.PID, o.Start = cmd.Process.Pid, start
	return o
}

// ownedLabels are runLabels(run) with o as the owner.
func ownedLabels(run string, o Owner) map[string]string {
	m := runLabels(run)
	for k, v := range o.labels() {
		m[k] = v
	}
	return m
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestCheckStatic(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if err := CheckStatic(binPath); err != nil {
		t.Errorf("CGO_ENABLED=0 build: %v", err)
	}
	dynamic := ""
	for _, p := range []string{"/bin/sh", "/usr/bin/env", "/bin/ls"} {
		if err := CheckStatic(p); err != nil && strings.Contains(err.Error(), "dynamically linked") {
			dynamic = p
			break
		}
	}
	if dynamic == "" {
		t.Log("no dynamically linked executable found on this machine to check the refusal with")
	} else if err := CheckStatic(dynamic); !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("CheckStatic(%s) = %v, want advice to build with CGO_ENABLED=0", dynamic, err)
	}
	text := filepath.Join(t.TempDir(), "script")
	os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755)
	if err := CheckStatic(text); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("CheckStatic(shell script) = %v, want 'not an ELF executable'", err)
	}
	// StartProxy refuses before it touches Docker.
	_, err := New(Options{}).StartProxy(context.Background(), targets.ClusterSpec{RunID: "x", System: "raftkv", Nodes: specs("n1"), Dir: t.TempDir(), Binary: text})
	var ie *targets.InfraError
	if !errors.As(err, &ie) {
		t.Errorf("StartProxy with a script as binary: %v, want an InfraError", err)
	}
}

func TestValidateSpec(t *testing.T) {
	rt := New(Options{})
	var many []string
	for i := range MaxNodes + 1 {
		many = append(many, fmt.Sprintf("n%d", i+1))
	}
	for name, spec := range map[string]targets.ClusterSpec{
		"no run id":    {System: "s", Nodes: specs("n1"), Dir: "x"},
		"no dir":       {RunID: "r", System: "s", Nodes: specs("n1")},
		"no nodes":     {RunID: "r", System: "s", Dir: "x"},
		"no system":    {RunID: "r", Nodes: specs("n1"), Dir: "x"},
		"duplicate id": {RunID: "r", System: "s", Nodes: specs("n1", "n1"), Dir: "x"},
		"bad id":       {RunID: "r", System: "s", Nodes: specs("a=b"), Dir: "x"},
		"client id":    {RunID: "r", System: "s", Nodes: specs("client"), Dir: "x"},
		"proxy id":     {RunID: "r", System: "s", Nodes: specs("proxy"), Dir: "x"},
		"too many":     {RunID: "r", System: "s", Nodes: specs(many...), Dir: "x"},
	} {
		for op, f := range map[string]func() error{
			"StartProxy": func() error { _, err := rt.StartProxy(context.Background(), spec); return err },
			"Start":      func() error { _, err := rt.Start(context.Background(), spec); return err },
		} {
			err := f()
			var ie *targets.InfraError
			if err == nil || errors.As(err, &ie) {
				t.Errorf("%s %s: %v, want a plain error (bad input)", op, name, err)
			}
		}
	}
}

func TestAliasesAndPorts(t *testing.T) {
	a := aliases([]string{"N1", "n1", "a.b_c", "faultline-proxy", "", "Proxy"})
	want := map[string]string{"N1": "n1", "n1": "n1-2", "a.b_c": "a-b-c", "faultline-proxy": "faultline-proxy-4", "": "node", "Proxy": "proxy-6"}
	for id, w := range want {
		if a[id] != w {
			t.Errorf("alias of %q = %q, want %q", id, a[id], w)
		}
	}
	seen := map[int]bool{}
	n := MaxNodes
	for i := range n {
		for j := range n {
			p := PeerLinkPort(i, j, n)
			if seen[p] || p >= ClientLinkPort(0) {
				t.Fatalf("peer link port %d (%d -> %d) repeats or reaches the client range", p, i, j)
			}
			seen[p] = true
		}
	}
}

// childUnreachable runs in a child process whose DOCKER_HOST points
// nowhere; it prints StartProxy's error.
func childUnreachable() {
	dir, _ := os.MkdirTemp("", "faultline-docker-child-")
	defer os.RemoveAll(dir)
	bin := os.Getenv("FAULTLINE_DOCKER_TEST_BIN")
	_, err := New(Options{}).StartProxy(context.Background(), targets.ClusterSpec{RunID: "child", System: "raftkv", Nodes: specs("n1"), Dir: dir, Binary: bin})
	var ie *targets.InfraError
	fmt.Printf("infra=%v err=%v\n", errors.As(err, &ie), err)
}

func TestUnreachable(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=unreachable", "DOCKER_HOST=unix:///nonexistent/docker.sock", "FAULTLINE_DOCKER_TEST_BIN="+binPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "infra=true") || !strings.Contains(s, "Docker daemon is not reachable at unix:///nonexistent/docker.sock") || !strings.Contains(s, "--runtime local") {
		t.Errorf("StartProxy with an unreachable daemon said:\n%s\nwant an InfraError naming the address and --runtime local", s)
	}
}

// TestConcurrentControl drives the nodes' process control from several
// goroutines at once; every node must end up controllable and ready.
func TestConcurrentControl(t *testing.T) {
	tr := startRun(t, "n1", "n2")
	runtimetest.Storm(t, tr.c, tr.spec.IDs(), 4, 5)
}

// TestStartCancelled cancels StartProxy and Start part way (as Ctrl-C
// does): each must return an error wrapping the cancellation, not an
// InfraError, and leave nothing of the run behind.
func TestStartCancelled(t *testing.T) {
	requireDocker(t)
	if _, err := EnsureImage(context.Background(), dockerClient(t), binPath, nil); err != nil {
		t.Fatal(err)
	}
	rt := New(Options{})
	base := targets.ClusterSpec{System: "raftkv", Nodes: specs("n1", "n2", "n3"), Dir: t.TempDir(), Binary: binPath}
	check := func(what string, err error, runID string) {
		t.Helper()
		var ie *targets.InfraError
		if !errors.Is(err, context.Canceled) || errors.As(err, &ie) {
			t.Errorf("%s: %v, want a plain error wrapping context.Canceled", what, err)
		}
		assertGone(t, runID)
	}

	spec := base
	spec.RunID = newRunID(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := rt.StartProxy(ctx, spec)
	check("StartProxy cancelled after 100ms", err, spec.RunID)

	for _, after := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond} {
		spec := base
		spec.RunID = newRunID(t)
		pl, err := rt.StartProxy(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		links := linksFor(pl)
		spec.Links = links
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		_, err = rt.Start(ctx, spec)
		links.Close()
		check(fmt.Sprintf("Start cancelled after %s", after), err, spec.RunID)
	}
}
