package docker

import (
	"context"
	"io"
	"net/http"
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

// TestControlSurfaces: a run with a token publishes nothing but client
// ports (with a local daemon); its Toxiproxy API and its node's client and
// admin APIs refuse requests without the token wherever they answer, while
// faultline's own calls (Links, status, the http adapter) carry it; the
// token is in the containers' environment, not their command lines.
func TestControlSurfaces(t *testing.T) {
	if faultsProxyTokenEnv != faults.ProxyTokenEnv {
		t.Fatalf("the proxy container gets its token in %s, but faultline proxy reads %s", faultsProxyTokenEnv, faults.ProxyTokenEnv)
	}
	tok := targets.NewToken()
	tr := startRunWith(t, tok, "n1")
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
			if len(bs) > 0 {
				published = append(published, int(p.Num()))
			}
		}
		slices.Sort(published)
		want := []int{ClientLinkPort(0)}
		if name == c.ContainerName("n1") {
			want = []int{ClientPort}
		}
		if !localDaemon() {
			want = append([]int{ProxyAPIPort}, want...) // reached only through published ports
			if name == c.ContainerName("n1") {
				want = []int{ClientPort, AdminPort}
			}
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
	refused("client API (published)", "http://"+n.Client+"/kv/k")
	refused("client API (through the proxy)", "http://"+n.ClientVia+"/kv/k")
	// Where else they answer: the containers' own addresses on the bridge.
	proxyIP := c.ru.containerIP(ctx, c.ru.proxy.ID, c.NetworkName("n1"))
	nodeIP := c.ru.containerIP(ctx, c.nodes["n1"].containerID(), c.NetworkName("n1"))
	refused("Toxiproxy API on the bridge", "http://"+proxyIP+":"+strconv.Itoa(ProxyAPIPort)+"/version")
	refused("admin API on the bridge", "http://"+nodeIP+":"+strconv.Itoa(AdminPort)+"/admin/clock")
	refused("client API on the bridge", "http://"+nodeIP+":"+strconv.Itoa(ClientPort)+"/kv/k")
	if _, err := toxiclient.NewClient(c.ProxyAPI()).Proxies(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Toxiproxy's client without the token: %v, want 401", err)
	}

	if n.Token != tok {
		t.Error("NodeInfo.Token is not the run's")
	}
	if st, err := nodekit.ReadStatus(ctx, n); err != nil || st.ID != "n1" {
		t.Errorf("ReadStatus with the token: %+v %v", st, err)
	}
	if states, err := tr.links.Inspect(ctx); err != nil || len(states) != 1 {
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
