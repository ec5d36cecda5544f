package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTamperedRunIsInvalid: someone who can read the proxy container's
// environment (a Docker user) takes the run's token and adds a latency
// toxic during the run. The nemesis's audit finds it; the run is invalid
// (exit 4), results.json lists the change, and the history records it
// (issue 10, item 2: before, such a run said VALID with p99 903 ms).
func TestTamperedRunIsInvalid(t *testing.T) {
	requireDocker(t)
	dir := filepath.Join(t.TempDir(), "run")
	var (
		wg      sync.WaitGroup
		tampErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tampErr = tamperOnce(3 * time.Minute)
	}()
	code, out := faultline(t, 4*time.Minute, "run", "examples/raft-basic.yaml", "--runtime", "docker", "--duration", "12s", "--out", dir, "--quiet")
	wg.Wait()
	if tampErr != nil {
		t.Fatalf("could not tamper with the run: %v", tampErr)
	}
	if code != 4 {
		t.Fatalf("exit %d, want 4 (the run was tampered with)\n%s", code, out)
	}
	r := readResults(t, dir)
	tp, _ := r["tampered"].([]any)
	if len(tp) == 0 || !strings.Contains(fmt.Sprint(tp), "tamper-latency") {
		t.Errorf("results.json tampered = %v, want the toxic named", r["tampered"])
	}
	if !strings.Contains(fmt.Sprint(r["run_invalid"]), "changed the run's proxies") {
		t.Errorf("run_invalid = %v", r["run_invalid"])
	}
	if b, err := exec.Command("grep", "-c", `"f":"tamper"`, filepath.Join(dir, "history.jsonl")).Output(); err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Errorf("no tamper event in the history (%v)", err)
	}
	if l := leftovers(t); l != "" {
		t.Errorf("left behind:\n%s", l)
	}
}

// tamperOnce waits for a run's proxy container, reads its token and
// address the way any Docker user can, and adds a toxic to one of its
// proxies through the Toxiproxy API.
func tamperOnce(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ids, _ := exec.Command("docker", "ps", "-q", "--filter", "label=faultline.run", "--filter", "label=faultline.role=proxy").Output()
		if len(bytes.TrimSpace(ids)) == 0 {
			ids, _ = exec.Command("docker", "ps", "-q", "--filter", "label=faultline.run", "--filter", "name=proxy").Output()
		}
		id := strings.TrimSpace(strings.Split(strings.TrimSpace(string(ids)), "\n")[0])
		if id == "" {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		env, err := exec.Command("docker", "inspect", "-f", `{{range .Config.Env}}{{println .}}{{end}}`, id).Output()
		if err != nil {
			return err
		}
		token := ""
		for _, l := range strings.Split(string(env), "\n") {
			if v, ok := strings.CutPrefix(l, "FAULTLINE_PROXY_TOKEN="); ok {
				token = v
			}
		}
		ip, err := exec.Command("docker", "inspect", "-f", `{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}`, id).Output()
		if err != nil {
			return err
		}
		addr := strings.Fields(string(ip))[0] + ":8474"
		// Wait until the run's proxies exist and the main phase is under way.
		time.Sleep(8 * time.Second)
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/proxies", nil)
		req.SetBasicAuth("", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		name := firstProxy(body.String())
		if name == "" {
			return fmt.Errorf("no proxy in %s", body.String())
		}
		toxic := `{"name":"tamper-latency","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":900}}`
		req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/proxies/"+name+"/toxics", strings.NewReader(toxic))
		req.SetBasicAuth("", token)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("adding the toxic: %s", resp.Status)
		}
		return nil
	}
	return fmt.Errorf("no proxy container appeared within %s", within)
}

// firstProxy returns the name of a client-link proxy in Toxiproxy's
// GET /proxies answer (a JSON object keyed by name).
func firstProxy(js string) string {
	i := strings.Index(js, `"client_to_`)
	if i < 0 {
		return ""
	}
	j := strings.Index(js[i+1:], `"`)
	return js[i+1 : i+1+j]
}
