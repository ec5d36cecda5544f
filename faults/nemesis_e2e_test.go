package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/httpkv"
	"github.com/faultline/faultline/targets/local"
	"github.com/faultline/faultline/targets/nodekit"
	_ "github.com/faultline/faultline/targets/raftkv"
)

// startRaft starts a real 3-node raftkv cluster as child processes, every
// link through the embedded Toxiproxy, and returns a nemesis target for it.
func startRaft(t *testing.T) (*local.Cluster, faults.Target, *faults.ProxyServer, *history.Recorder) {
	t.Helper()
	return startRaftLogged(t, nil)
}

// startRaftLogged is startRaft with the runtime's log (node started,
// killed, paused, resumed) going to logf.
func startRaftLogged(t *testing.T, logf func(format string, args ...any)) (*local.Cluster, faults.Target, *faults.ProxyServer, *history.Recorder) {
	t.Helper()
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	sys, err := targets.LookupSystem("raftkv")
	if err != nil {
		t.Fatal(err)
	}
	// Every fault used below is available there.
	rt := local.New(local.Options{})
	env := faults.Env{System: sys, Runtime: rt.Name(), Caps: rt.Capabilities(), Nodes: sys.NodeIDs(map[string]int{sys.Roles[0].Name: 3})}
	for _, name := range []string{"partition-one", "kill", "pause", "latency"} {
		if err := faults.Available(name, env); err != nil {
			t.Fatalf("%s on raftkv/local: %v", name, err)
		}
	}
	ctx := context.Background()
	srv, err := faults.NewProxyServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	links := faults.NewLinks(srv.APIAddr(), faults.LinksOptions{})
	c, err := rt.Start(ctx, targets.ClusterSpec{
		RunID: "e2e", System: "raftkv", Nodes: env.Nodes, Dir: t.TempDir(), Binary: bin, Links: links, Log: logf,
	})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	rec, err := history.NewRecorder(&strings.Builder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rec.Close()
		c.Close()
		links.Close()
		srv.Close()
	})
	return c.(*local.Cluster), faults.Target{Cluster: c, System: sys, Links: links}, srv, rec
}

// readStatus reads a node's status through the node kit's admin API.
func readStatus(ctx context.Context, c targets.Cluster, id string) (targets.Status, error) {
	for _, n := range c.Nodes() {
		if n.ID == id {
			return nodekit.ReadStatus(ctx, n)
		}
	}
	return targets.Status{}, fmt.Errorf("no node %s", id)
}

func status(t *testing.T, c targets.Cluster, id string) targets.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := readStatus(ctx, c, id)
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func clientFor(t *testing.T, c targets.Cluster, home string) *httpkv.Client {
	addrs := map[string]string{}
	for _, n := range c.Nodes() {
		addrs[n.ID] = n.ClientVia
	}
	cl, err := httpkv.New(addrs, home, httpkv.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestPartitionReallyCuts isolates n1 with the nemesis and shows, from the
// nodes' own state, that n1 can neither reach nor be reached by its peers
// while the partition lasts (the majority elects a leader among itself and
// commits writes n1 never receives), and that n1 catches up after the heal.
// It also checks at the TCP level that n1's peer proxies carry no data.
func TestPartitionReallyCuts(t *testing.T) {
	c, tgt, _, rec := startRaft(t)
	links := tgt.Links
	ctx := context.Background()
	waitFor(t, "a leader", 10*time.Second, func() bool { return status(t, c, "n2").Leader != "" })
	cl := clientFor(t, c, "n2")
	put := func(v int) history.Outcome {
		return cl.Do(ctx, history.Op{F: "put", Key: "k", Value: json.RawMessage(fmt.Sprint(v))})
	}
	if out := put(1); out.Type != history.OK {
		t.Fatalf("put before the partition: %+v", out)
	}

	nem := faults.NewNemesis(tgt, rec)
	a, err := nem.Start(ctx, faults.Planned{Spec: faults.NewSpec("partition-one", func(p *faults.PartitionOne) { p.Target, p.Mode = "n1", faults.Drop })})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Groups) != 2 || a.Groups[0][0] != "n1" {
		t.Fatalf("groups %v", a.Groups)
	}
	// The majority side has (or elects) a leader other than n1 and keeps
	// committing writes.
	waitFor(t, "a leader on the majority side", 10*time.Second, func() bool {
		l := status(t, c, "n2").Leader
		return l == "n2" || l == "n3"
	})
	before := status(t, c, "n1").CommitIndex
	for v := 2; v < 12; v++ {
		if out := put(v); out.Type != history.OK {
			t.Fatalf("put %d on the majority side during the partition: %+v", v, out)
		}
	}
	maj := status(t, c, "n2").CommitIndex
	time.Sleep(500 * time.Millisecond) // time for replication, were n1 reachable
	iso := status(t, c, "n1")
	if iso.CommitIndex != before || iso.CommitIndex >= maj {
		t.Fatalf("n1 is isolated but its commit index moved from %d to %d (majority at %d): it still hears from its peers", before, iso.CommitIndex, maj)
	}
	if iso.Role == "leader" {
		t.Fatalf("isolated n1 still claims leadership: %+v", iso)
	}
	// At the TCP level: a connection through n1's proxy to n2 carries no
	// data (raft's transport would close a connection on a garbage byte).
	if addr, ok := links.ProxyAddr(faults.Link{From: "n1", To: "n2"}); ok {
		if answered(t, addr) {
			t.Fatalf("the proxy n1->n2 (%s) still carries data during the partition", addr)
		}
	}
	if addr, ok := links.ProxyAddr(faults.Link{From: "n3", To: "n1"}); ok {
		if answered(t, addr) {
			t.Fatalf("the proxy n3->n1 (%s) still carries data during the partition", addr)
		}
	}
	if addr, ok := links.ProxyAddr(faults.Link{From: "n2", To: "n3"}); ok && !answered(t, addr) {
		t.Fatalf("the proxy n2->n3 (%s), inside the majority, carries no data", addr)
	}

	// Heal: n1 catches up to the majority's commit index.
	if err := nem.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n1 to catch up after the heal", 15*time.Second, func() bool {
		return status(t, c, "n1").CommitIndex >= maj
	})
	if addr, ok := links.ProxyAddr(faults.Link{From: "n1", To: "n2"}); ok && !answered(t, addr) {
		t.Fatalf("the proxy n1->n2 carries no data after the heal")
	}
	// No toxic is left and every proxy is enabled.
	states, err := links.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if len(s.Toxics) > 0 || !s.Enabled {
			t.Errorf("after heal, %s has toxics %v, enabled %v", s.Link, s.Toxics, s.Enabled)
		}
	}
}

// answered reports whether a peer behind the proxy reacts to a garbage
// byte within 1 s (raft's transport closes the connection); a cut proxy
// neither answers nor closes.
func answered(t *testing.T, addr string) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false // refused: cut in refuse mode
	}
	defer conn.Close()
	conn.Write([]byte{0xff, 0xff, 0xff, 0xff})
	conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 16)
	_, err = conn.Read(buf)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true // data or EOF/reset: the peer saw the byte
}

// TestKillPauseHealLeavesNothing injects a kill and a pause, heals, and
// checks every node is back and serving; after Close no node process and
// no proxy listener is left. The live log names each fault's nodes when it
// starts and marks when it ends, and the heal logs only what it changed:
// the runtime says once that it started the killed node and resumed the
// paused one, and a second heal changes nothing and says so.
func TestKillPauseHealLeavesNothing(t *testing.T) {
	var log liveLog
	c, tgt, srv, rec := startRaftLogged(t, log.logf)
	links := tgt.Links
	ctx := context.Background()
	waitFor(t, "a leader", 10*time.Second, func() bool { return status(t, c, "n1").Leader != "" })
	nem := faults.NewNemesis(tgt, rec)
	nem.SetLog(log.logf)
	_, mark := log.since(0)
	killed, err := nem.Start(ctx, faults.Planned{Spec: faults.NewSpec("kill", func(k *faults.Kill) { k.Target = faults.TargetLeader })})
	if err != nil {
		t.Fatal(err)
	}
	other := "n1"
	if killed.Targets[0] == other {
		other = "n2"
	}
	if _, err := nem.Start(ctx, faults.Planned{Spec: faults.NewSpec("pause", func(p *faults.Pause) { p.Target = faults.Selector(other) })}); err != nil {
		t.Fatal(err)
	}
	if _, err := nem.Start(ctx, faults.Planned{Spec: faults.NewSpec("latency", func(l *faults.Latency) { l.Latency = 20 * time.Millisecond })}); err != nil {
		t.Fatal(err)
	}
	if got := nem.InForce(); len(got) != 3 {
		t.Fatalf("in force: %v", got)
	}
	for _, id := range []string{killed.Targets[0], other} {
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		if _, err := readStatus(sctx, c, id); err == nil {
			t.Errorf("node %s answers its status while killed or paused", id)
		}
		cancel()
	}
	if err := nem.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		status(t, c, id) // every node answers again
	}
	lines, mark := log.since(mark)
	k, pz := killed.Targets[0], other
	want := []string{
		"local: node " + k + " killed", "fault #1 kill on " + k + " started at ",
		"local: node " + pz + " paused", "fault #2 pause on " + pz + " started at ",
		"fault #3 latency on n1 n2 n3 (latency 20ms; jitter 0s; peers true; clients false) started at ",
		"fault #3 latency on n1 n2 n3 ended at ",
		"local: node " + pz + " resumed", "fault #2 pause on " + pz + " ended at ",
		"local: node " + k + " started", "fault #1 kill on " + k + " ended at ",
		"heal: ended 3 faults still in force (#3 latency, #2 pause, #1 kill)",
	}
	if !inOrder(lines, want) {
		t.Errorf("live log:\n%s\nwant lines starting, in order, with:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// The heal resumes and starts every node a fault touched: the runtime
	// logs only what that changed, here nothing more.
	for _, once := range []string{"local: node " + k + " started", "local: node " + pz + " resumed"} {
		if n := countPrefix(lines, once); n != 1 {
			t.Errorf("%d lines %q, want 1:\n%s", n, once, strings.Join(lines, "\n"))
		}
	}
	if err := nem.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if lines, _ = log.since(mark); len(lines) != 1 || lines[0] != "heal: no fault in force, no toxic left, every proxy enabled" {
		t.Errorf("a heal with nothing to do logged %q", lines)
	}
	states, _ := links.Inspect(ctx)
	for _, s := range states {
		if len(s.Toxics) > 0 || !s.Enabled {
			t.Errorf("after heal, %s has toxics %v", s.Link, s.Toxics)
		}
	}
	inj := nem.Injected()
	if len(inj) != 3 {
		t.Fatalf("injected: %+v", inj)
	}
	for _, f := range inj {
		if f.End == 0 || f.Error != "" {
			t.Errorf("fault %s not ended cleanly: %+v", f.Name, f)
		}
	}
	var pids []int
	for _, id := range []string{"n1", "n2", "n3"} {
		pids = append(pids, c.PID(id))
	}
	var addrs []string
	for _, l := range links.All() {
		if a, ok := links.ProxyAddr(l); ok {
			addrs = append(addrs, a)
		}
	}
	c.Close()
	links.Close()
	srv.Close()
	for _, pid := range pids {
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				t.Errorf("node process %d still runs after Close", pid)
			}
		}
	}
	for _, a := range addrs {
		if conn, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
			conn.Close()
			t.Errorf("proxy listener %s still accepts after Close", a)
		}
	}
}

// liveLog collects the lines of a run's live log (the nemesis's and the
// runtime's), safe for concurrent use.
type liveLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *liveLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// since returns the lines logged from line i on, and how many there are.
func (l *liveLog) since(i int) ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[i:]...), len(l.lines)
}

// countPrefix counts the lines starting with prefix.
func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// inOrder reports whether lines has a line starting with each of prefixes,
// in that order (other lines may come between).
func inOrder(lines, prefixes []string) bool {
	i := 0
	for _, l := range lines {
		if i < len(prefixes) && strings.HasPrefix(l, prefixes[i]) {
			i++
		}
	}
	return i == len(prefixes)
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
