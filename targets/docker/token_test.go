package docker

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/moby/moby/client"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/httpkv"
	"github.com/faultline/faultline/targets/nodekit"
)

// TestControlSurfaces: a run with a token publishes only what faultline
// dials: nothing when it reaches the containers (a local daemon), else
// the Toxiproxy API, the client links and the admin APIs, on 127.0.0.1
// here, plus a node's own client port only when its client link has no
// proxy. Its Toxiproxy API and its node's client and admin APIs refuse
// requests without the token wherever they answer, while faultline's own
// calls (Links, status, the http adapter) carry it; the token is in the
// containers' environment, not their command lines.
func TestControlSurfaces(t *testing.T) {
	if faultsProxyTokenEnv != faults.ProxyTokenEnv {
		t.Fatalf("the proxy container gets its token in %s, but faultline proxy reads %s", faultsProxyTokenEnv, faults.ProxyTokenEnv)
	}
	for _, mode := range []struct {
		name              string
		direct, unproxied bool
	}{
		{"direct", true, false},
		{"direct, client link unproxied", true, true},
		{"published", false, false},
		{"published, client link unproxied", false, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.direct && !localDaemon() {
				t.Skip("the Docker daemon is not local: its containers' addresses are not reached from here")
			}
			if !mode.direct {
				reachContainers = func() bool { return false } // as with a remote daemon
				t.Cleanup(func() { reachContainers = localDaemon })
			}
			testControlSurfaces(t, mode.unproxied)
		})
	}
}

func testControlSurfaces(t *testing.T, unproxied bool) {
	tok := targets.NewToken()
	tr := startRunLinks(t, tok, unproxied, "n1")
	c := tr.c
	ctx := context.Background()
	cli := dockerClient(t)

	for _, name := range []string{c.ContainerName("proxy"), c.ContainerName("n1")} {
		res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var published []int
		for p, bs := range res.Container.NetworkSettings.Ports {
			for _, b := range bs {
				if b.HostIP.String() != "127.0.0.1" {
					t.Errorf("%s publishes port %d on %s, want only 127.0.0.1 (where faultline dials)", name, p.Num(), b.HostIP)
				}
			}
			if len(bs) > 0 {
				published = append(published, int(p.Num()))
			}
		}
		slices.Sort(published)
		var want []int // reached at the containers' own addresses
		switch {
		case c.ru.direct:
		case name == c.ContainerName("proxy"): // StartProxy cannot know that a client link will go unused
			want = []int{ProxyAPIPort, ClientLinkPort(0)}
		case unproxied:
			want = []int{ClientPort, AdminPort}
		default:
			want = []int{AdminPort}
		}
		if !slices.Equal(published, want) {
			t.Errorf("%s publishes %v, want only %v", name, published, want)
		}
		if strings.Contains(strings.Join(res.Container.Config.Cmd, " "), string(tok)) {
			t.Errorf("%s: the token is on the command line", name)
		}
		if !slices.ContainsFunc(res.Container.Config.Env, func(e string) bool { return strings.HasSuffix(e, "="+string(tok)) }) {
			t.Errorf("%s: the token is not in the environment", name)
		}
	}

	n := c.Nodes()[0]
	refused := func(what, url string) {
		t.Helper()
		for _, auth := range []string{"", "Bearer not-the-token"} {
			req, _ := http.NewRequest("GET", url, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s (%s): %v", what, url, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s (%s) with Authorization %q: %d %s, want 401", what, url, auth, resp.StatusCode, b)
			}
		}
		if code, ok := asNobody(url); ok && code != "401" {
			t.Errorf("%s (%s) asked by user nobody: HTTP %s, want 401", what, url, code)
		}
	}
	refused("Toxiproxy API", "http://"+c.ProxyAPI()+"/proxies")
	refused("admin API", "http://"+n.Admin+"/admin/status")
	if c.ru.direct || unproxied {
		refused("client API (the node's own)", "http://"+n.Client+"/kv/k")
	}
	refused("client API (ClientVia)", "http://"+n.ClientVia+"/kv/k")
	if unproxied != (n.ClientVia == n.Client) {
		t.Errorf("ClientVia %s, Client %s: want the node's own address only when the client link has no proxy", n.ClientVia, n.Client)
	}
	// Where else they answer: the containers' own addresses on the bridge.
	if localDaemon() {
		proxyIP := c.ru.containerIP(ctx, c.ru.proxy.ID, c.NetworkName("n1"))
		nodeIP := c.ru.containerIP(ctx, c.nodes["n1"].containerID(), c.NetworkName("n1"))
		refused("Toxiproxy API on the bridge", "http://"+proxyIP+":"+strconv.Itoa(ProxyAPIPort)+"/version")
		refused("admin API on the bridge", "http://"+nodeIP+":"+strconv.Itoa(AdminPort)+"/admin/clock")
		refused("client API on the bridge", "http://"+nodeIP+":"+strconv.Itoa(ClientPort)+"/kv/k")
	}
	if _, err := toxiclient.NewClient(c.ProxyAPI()).Proxies(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Toxiproxy's client without the token: %v, want 401", err)
	}

	if n.Token != tok {
		t.Error("NodeInfo.Token is not the run's")
	}
	if st, err := nodekit.ReadStatus(ctx, n); err != nil || st.ID != "n1" {
		t.Errorf("ReadStatus with the token: %+v %v", st, err)
	}
	wantProxies := 1 // the client link's
	if unproxied {
		wantProxies = 0
	}
	if states, err := tr.links.Inspect(ctx); err != nil || len(states) != wantProxies {
		t.Errorf("Links with the placement's token: %v %v", states, err)
	}
	kv, err := httpkv.New(map[string]string{"n1": n.ClientVia}, "n1", httpkv.Options{Timeout: 5 * time.Second, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	put(t, kv, "k", "v")
	if got := get(t, kv, "k"); got != `"v"` {
		t.Errorf("get through the proxy with the token = %s", got)
	}

	// A restart keeps all of it.
	if err := c.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "n1"); err != nil {
		t.Fatalf("restart with a token: %v", err)
	}
	n = c.Nodes()[0]
	refused("admin API after a restart", "http://"+n.Admin+"/admin/status")
	if _, err := nodekit.ReadStatus(ctx, n); err != nil {
		t.Errorf("ReadStatus after a restart: %v", err)
	}
}

// asNobody GETs url with curl as user nobody (setpriv), when this test
// runs as root and both are installed; ok is false otherwise.
func asNobody(url string) (code string, ok bool) {
	setpriv, err1 := exec.LookPath("setpriv")
	curl, err2 := exec.LookPath("curl")
	if err1 != nil || err2 != nil || os.Geteuid() != 0 {
		return "", false
	}
	out, _ := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", url).Output()
	return strings.TrimSpace(string(out)), true
}

// TestPublishedHost: published ports bind to the address faultline dials
// (here 127.0.0.1), or to BindIPEnv when it is set; a BindIPEnv that is
// not an IP address is refused, never taken for every interface.
func TestPublishedHost(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	host, bind, err := publishedHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && bind != ip.String() {
		t.Errorf("publishedHost() = %s, bind %s: want the bind address to be the host dialled", host, bind)
	}
	t.Setenv(BindIPEnv, "0.0.0.0")
	if _, bind, err := publishedHost(ctx); err != nil || bind != "0.0.0.0" {
		t.Errorf("with %s=0.0.0.0: bind %q, %v", BindIPEnv, bind, err)
	}
	t.Setenv(BindIPEnv, "everywhere")
	if _, bind, err := publishedHost(ctx); err == nil || !strings.Contains(err.Error(), BindIPEnv) {
		t.Errorf("with %s=everywhere: bind %q, %v; want an error naming %s", BindIPEnv, bind, err, BindIPEnv)
	}
}
