package httpsvc

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/nodekit"
)

func TestOptions(t *testing.T) {
	for v, ok := range map[string]bool{"2ms": true, "0": true, "1m": true, "-1ms": false, "2m": false, "fast": false} {
		if err := CheckOptions(map[string]string{"latency": v}); (err == nil) != ok {
			t.Errorf("latency=%s: %v", v, err)
		}
	}
	if err := CheckOptions(nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestServe runs a node as `faultline node` would and talks to both APIs.
func TestServe(t *testing.T) {
	ready := make(chan struct{})
	cl, al := freeAddr(t), freeAddr(t)
	cfg := targets.NodeConfig{System: Name, ID: "n1", Role: "node", Listen: cl, Admin: al,
		Opts: map[string]string{"latency": "30ms"}, Token: "tok", Ready: func() { close(ready) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	do := func(method, url, token string) (int, []byte, time.Duration) {
		req, _ := http.NewRequest(method, url, strings.NewReader("hello"))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, time.Since(start)
	}
	code, body, took := do("POST", "http://"+cl+"/some/path?x=1", "tok")
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || code != 200 || a.Node != "n1" || a.Method != "POST" || a.Path != "/some/path" || a.Query != "x=1" || a.Count != 1 || a.Bytes != 5 {
		t.Errorf("%d %s (%v)", code, body, err)
	}
	if took < 30*time.Millisecond {
		t.Errorf("answered in %s, before its 30ms service time", took)
	}
	if code, body, _ := do("GET", "http://"+cl+"/x?status=503", "tok"); code != 503 || !strings.Contains(string(body), `"count":2`) {
		t.Errorf("status=503: %d %s", code, body)
	}
	if code, _, _ := do("GET", "http://"+cl+"/x?status=42", "tok"); code != 400 {
		t.Errorf("status=42: %d", code)
	}
	if code, body, took := do("GET", "http://"+cl+"/x", ""); code != 401 || took >= 30*time.Millisecond || !strings.Contains(string(body), `"definite":true`) {
		t.Errorf("without the token: %d %s in %s", code, body, took)
	}
	st, err := nodekit.ReadStatus(context.Background(), targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n1", Admin: al}, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Role != "node" || st.Counters["requests"] != 2.0 || st.Counters["status_503"] != 1.0 || st.Counters["status_200"] != 1.0 || st.Counters["status_400"] != 1.0 {
		t.Errorf("status %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

// freeAddr returns a loopback address nothing listens on (a port the
// kernel just gave out and took back).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
