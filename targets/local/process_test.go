//go:build linux

package local

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
)

// fakeProcess is a binary faultline did not write: `TESTBIN proc
// --listen ADDR --peer-listen ADDR ...`. It serves GET /health and
// GET /info (its argv, working directory, the environment variables
// FL_TEST_ID and FAULTLINE_NODE_TOKEN) on --listen, accepts connections on
// --peer-listen, and on SIGINT writes "SIGINT" to ./stopped and exits.
func fakeProcess(args []string) int {
	fs := flag.NewFlagSet("proc", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	peer := fs.String("peer-listen", "", "")
	fs.String("cluster", "", "")
	fs.String("dials", "", "")
	if err := fs.Parse(args); err != nil {
		return 64
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake process:", err)
		return 1
	}
	pl, err := net.Listen("tcp", *peer)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake process:", err)
		return 1
	}
	go func() {
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		tok, hasTok := os.LookupEnv(targets.TokenEnv)
		json.NewEncoder(w).Encode(map[string]any{
			"argv": os.Args[1:], "cwd": wd, "id": os.Getenv("FL_TEST_ID"), "token": tok != "" || hasTok,
		})
	})
	go http.Serve(l, mux)
	fmt.Println("fake process up")
	<-stop
	os.WriteFile("stopped", []byte("SIGINT"), 0o644)
	return 0
}

func TestProcessTarget(t *testing.T) {
	ps := &targets.ProcessSpec{
		Command: []string{os.Args[0], "proc",
			"--listen={{.ListenHost}}:{{.ClientPort}}", "--peer-listen={{.ListenHost}}:{{.PeerPort}}",
			"--cluster={{range $i, $n := .Nodes}}{{if $i}},{{end}}{{$n.ID}}={{$n.PeerAddr}}{{end}}",
			"--dials={{range .Peers}}{{.ID}}={{.Dial}};{{end}}"},
		Env:        map[string]string{"FL_TEST_ID": "id-{{.ID}}"},
		StopSignal: "SIGINT",
		StopGrace:  5 * time.Second,
		Ready:      targets.Probe{Kind: targets.ProbeHTTP, Path: "/health"},
		Peers:      targets.PeersNames,
	}
	if err := ps.Check(); err != nil {
		t.Fatal(err)
	}
	if err := ps.Resolve(); err != nil {
		t.Fatal(err)
	}
	nodes := specs("n1", "n2", "n3")
	for i := range nodes {
		nodes[i].Process = ps
	}
	dir := t.TempDir()
	c := startCluster(t, Options{}, targets.ClusterSpec{System: targets.ProcessSystem, Nodes: nodes, Dir: dir, Token: targets.NewToken()})

	info := func(id string) map[string]any {
		t.Helper()
		for _, n := range c.Nodes() {
			if n.ID != id {
				continue
			}
			if n.Admin != "" || n.Token != "" {
				t.Errorf("node %s: admin %q, token set %v: a process target has neither", id, n.Admin, n.Token != "")
			}
			resp, err := http.Get("http://" + n.Client + "/info")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		t.Fatalf("no node %s", id)
		return nil
	}
	m := info("n2")
	if m["id"] != "id-n2" {
		t.Errorf("FL_TEST_ID = %v, want id-n2 (env template)", m["id"])
	}
	if m["token"] != false {
		t.Errorf("the run's token reached a process target's environment")
	}
	if want := filepath.Join(dir, "data", "n2"); m["cwd"] != want {
		t.Errorf("cwd = %v, want the data directory %s", m["cwd"], want)
	}
	var argv []string
	for _, a := range m["argv"].([]any) {
		argv = append(argv, a.(string))
	}
	ns := c.Nodes()
	cluster := fmt.Sprintf("--cluster=n1=%s,n2=%s,n3=%s", ns[0].Peer, ns[1].Peer, ns[2].Peer)
	dials := fmt.Sprintf("--dials=n1=%s;n3=%s;", ns[0].Peer, ns[2].Peer) // peers: names dial the names themselves
	if !slices.Contains(argv, cluster) || !slices.Contains(argv, dials) {
		t.Errorf("argv %q lacks %q or %q", argv, cluster, dials)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "data", "n3", "stopped")); err != nil || string(b) != "SIGINT" {
		t.Errorf("a graceful stop did not send stop_signal SIGINT (stopped file: %q, %v)", b, err)
	}
	log, _ := os.ReadFile(c.LogPath("n1"))
	if strings.Count(string(log), "fake process up") != 2 {
		t.Errorf("node n1's log should show two starts:\n%s", log)
	}
}

func TestProcessSpecErrors(t *testing.T) {
	base := func() *targets.ProcessSpec {
		return &targets.ProcessSpec{Command: []string{"true", "--id={{.ID}}"}, Ready: targets.Probe{Kind: targets.ProbeTCP}}
	}
	for _, tc := range []struct {
		name, field string
		mod         func(p *targets.ProcessSpec)
	}{
		{"no command", "command", func(p *targets.ProcessSpec) { p.Command = nil }},
		{"unknown field", "command[1]", func(p *targets.ProcessSpec) { p.Command[1] = "--x={{.Nope}}" }},
		{"bad template", "command[1]", func(p *targets.ProcessSpec) { p.Command[1] = "--x={{.ID" }},
		{"templated binary", "command[0]", func(p *targets.ProcessSpec) { p.Command[0] = "{{.ID}}" }},
		{"bad env template", "env.A", func(p *targets.ProcessSpec) { p.Env = map[string]string{"A": "{{.Peers.Nope}}"} }},
		{"bad signal", "stop_signal", func(p *targets.ProcessSpec) { p.StopSignal = "SIGFOO" }},
		{"grace too long", "stop_grace", func(p *targets.ProcessSpec) { p.StopGrace = time.Hour }},
		{"no probe", "ready", func(p *targets.ProcessSpec) { p.Ready = targets.Probe{} }},
		{"http without path", "ready.path", func(p *targets.ProcessSpec) { p.Ready = targets.Probe{Kind: targets.ProbeHTTP} }},
		{"bad peers", "peers", func(p *targets.ProcessSpec) { p.Peers = "all" }},
	} {
		p := base()
		tc.mod(p)
		err := p.Check()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("field %q", tc.field)) {
			t.Errorf("%s: Check = %v, want an error about field %q", tc.name, err, tc.field)
		}
	}
	if err := (&targets.ProcessSpec{}).Resolve(); err == nil || !strings.Contains(err.Error(), `field "command"`) {
		t.Errorf("Resolve without a command = %v, want an error about the command (not a panic)", err)
	}
	p := base()
	p.Command[0] = "no-such-binary-faultline-test"
	if err := p.Resolve(); err == nil || !strings.Contains(err.Error(), "not found in PATH") {
		t.Errorf("Resolve of a missing binary = %v", err)
	}
}
